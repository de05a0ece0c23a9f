//! What every command needs: [`Env`], the connection, the options and the output format.

use crate::cli::Global;
use crate::config::Connection;
use crate::error::Context;
use crate::kinds::LogKind;
use crate::output::{self, Format};
use std::io::IsTerminal;

/// What every command needs: the connection, the options, the output format.
pub struct Env {
    /// The client and what messages need to know about it.
    pub conn: Connection,
    /// The global options.
    pub global: Global,
    /// The output format.
    pub format: Format,
}

impl Env {
    /// What error messages about `K` need.
    pub fn context<K: LogKind>(&self) -> Context {
        Context {
            key_source: self.conn.key_source.clone(),
            host: self.conn.host.clone(),
            attempts: self.conn.attempts,
            noun: K::NOUN,
            flags: crate::cli::parameter_flags::<K>(),
        }
    }

    /// The width tables are laid out for.
    pub fn width(&self) -> usize {
        output::table_width(self.global.output.is_some())
    }

    /// Whether notes may go to stderr: not with --quiet, and only to a person.
    pub fn chatty(&self) -> bool {
        !self.global.quiet && std::io::stderr().is_terminal()
    }
}
