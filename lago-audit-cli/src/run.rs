//! The commands: `list`, `get`, `export`, `tail` for each kind of log.

use crate::cli::{ActivityCommand, ApiCommand, Cli, Global, PageArgs, Resource, SecurityCommand};
use crate::config::{connect, Connection};
use crate::error::{explain, CliError, Context, Exit};
use crate::kinds::{Activity, Api, LogKind, Security};
use crate::output::{self, write_error, Emitter, Format, Output};
use crate::records::Record;
use lago_audit_client::pagination::Page;
use lago_audit_client::Paginate;
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
            key_source: self.conn.key_source,
            host: self.conn.host.clone(),
            attempts: self.conn.attempts,
            noun: <K::Record as Record>::NOUN,
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

/// Checks what clap cannot check alone, connects, and runs the command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    check(&cli.resource)?;
    let format = cli
        .global
        .format
        .unwrap_or_else(|| Format::default_for(cli.global.output.is_some()));
    let tail = matches!(
        cli.resource,
        Resource::ActivityLogs(ActivityCommand::Tail { .. })
            | Resource::ApiLogs(ApiCommand::Tail { .. })
            | Resource::SecurityLogs(SecurityCommand::Tail { .. })
    );
    let conn = connect(&cli.global, tail).await?;
    let env = Env {
        conn,
        global: cli.global,
        format,
    };
    match cli.resource {
        Resource::ActivityLogs(c) => match c {
            ActivityCommand::List { filters, page } => {
                list::<Activity>(&env, &filters, &page).await
            }
            ActivityCommand::Get { id } => get::<Activity>(&env, id).await,
            ActivityCommand::Export { filters, export } => {
                crate::export::export::<Activity>(&env, &filters, &export).await
            }
            ActivityCommand::Tail { filters, tail } => {
                crate::export::tail::<Activity>(&env, &filters, &tail).await
            }
        },
        Resource::ApiLogs(c) => match c {
            ApiCommand::List { filters, page } => list::<Api>(&env, &filters, &page).await,
            ApiCommand::Get { id } => get::<Api>(&env, id).await,
            ApiCommand::Export { filters, export } => {
                crate::export::export::<Api>(&env, &filters, &export).await
            }
            ApiCommand::Tail { filters, tail } => {
                crate::export::tail::<Api>(&env, &filters, &tail).await
            }
        },
        Resource::SecurityLogs(c) => match c {
            SecurityCommand::List { filters, page } => {
                list::<Security>(&env, &filters, &page).await
            }
            SecurityCommand::Get { id } => get::<Security>(&env, id).await,
            SecurityCommand::Export { filters, export } => {
                crate::export::export::<Security>(&env, &filters, &export).await
            }
            SecurityCommand::Tail { filters, tail } => {
                crate::export::tail::<Security>(&env, &filters, &tail).await
            }
        },
    }
}

/// Checks between flags, before anything is sent (clap has checked each value alone).
fn check(resource: &Resource) -> Result<(), CliError> {
    let window = match resource {
        Resource::ActivityLogs(
            ActivityCommand::List { filters, .. }
            | ActivityCommand::Export { filters, .. }
            | ActivityCommand::Tail { filters, .. },
        ) => Activity::window(filters),
        Resource::ApiLogs(
            ApiCommand::List { filters, .. }
            | ApiCommand::Export { filters, .. }
            | ApiCommand::Tail { filters, .. },
        ) => Api::window(filters),
        Resource::SecurityLogs(
            SecurityCommand::List { filters, .. }
            | SecurityCommand::Export { filters, .. }
            | SecurityCommand::Tail { filters, .. },
        ) => Security::window(filters),
        _ => return Ok(()),
    };
    window.check().map_err(|m| CliError::new(Exit::Usage, m))
}

/// `list`: one page.
async fn list<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    page: &PageArgs,
) -> Result<(), CliError> {
    let request = K::per_page(K::list(&env.conn.client, filters), page.per_page);
    let result = request.fetch_page(i64::from(page.page)).await;
    let body = result.map_err(|e| explain(&e, &env.context::<K>()))?;
    let meta = body.meta().clone();
    let records = body.into_items();
    let dest = env.global.output.as_deref();
    let mut out = Output::open(dest)?;
    let mut emitter = Emitter::<K::Record>::new(env.format, env.width());
    for r in &records {
        emitter
            .record(&mut out, r)
            .map_err(|e| write_error(&e, dest))?;
    }
    emitter.end(&mut out).map_err(|e| write_error(&e, dest))?;
    out.commit()?;
    if env.chatty() {
        let next = match meta.next_page {
            Some(n) => format!("; next: --page {n}"),
            None => String::new(),
        };
        crate::note(&format!(
            "page {} of {} ({} {}s){next}",
            meta.current_page,
            meta.total_pages,
            meta.total_count,
            <K::Record as Record>::NOUN
        ));
    }
    Ok(())
}

/// `get`: one record by id.
async fn get<K: LogKind>(env: &Env, id: String) -> Result<(), CliError> {
    let record = K::get(&env.conn.client, id)
        .await
        .map_err(|e| explain(&e, &env.context::<K>()))?;
    let dest = env.global.output.as_deref();
    let mut out = Output::open(dest)?;
    output::single(&mut out, env.format, env.width(), &record)
        .map_err(|e| write_error(&e, dest))?;
    out.commit()
}
