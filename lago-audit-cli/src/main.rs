//! `lago-audit`: Lago's audit trail (activity, API and security logs) from the command line.
//!
//! `list` shows one page, `get` one record, `export` a whole window exactly once (resumable
//! with `-o FILE --resume`), `tail` follows new records until Ctrl-C. Output is a table fitted to
//! the terminal, JSON, NDJSON or CSV. `--demo` starts a built-in fake Lago, so every command
//! works with no account. Run `lago-audit --help` for the flags and exit codes.

mod archive;
mod cli;
mod config;
mod describe;
mod drive;
mod env;
mod error;
mod export;
#[cfg(test)]
mod fourth_kind;
mod kinds;
mod metrics;
mod output;
mod parse;
mod resume;
mod rows;
mod run;
mod ship;
mod verify;
mod writer;

use error::Exit;
use std::io::Write;
use std::process::ExitCode;

/// A note for the person at the terminal, on stderr (never fails, never panics).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// `--verbose`: the client's tracing events on stderr (`RUST_LOG` overrides the level).
fn init_tracing(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = if verbose == 1 { "debug" } else { "trace" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "warn,lago_audit_client={level},lago_audit={level}"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        // One line per request as it ends, with its fields (status, records, wait) and timing.
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .try_init();
}

fn main() -> ExitCode {
    let invocation = match cli::parse() {
        Ok(invocation) => invocation,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { Exit::Usage as u8 } else { 0 });
        }
    };
    let cli = match invocation.command {
        cli::Command::Read(resource) => cli::Cli {
            global: invocation.global,
            resource: *resource,
        },
        cli::Command::Keygen { file } => {
            return finish(verify::keygen(&file));
        }
        cli::Command::Verify(args) => {
            if args.against_lago {
                init_tracing(invocation.global.verbose);
            }
            return match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let result = rt.block_on(verify::run(&args, &invocation.global));
                    rt.shutdown_background();
                    finish(result)
                }
                Err(e) => {
                    note(&format!("error: cannot start the runtime: {e}"));
                    ExitCode::from(Exit::Failure as u8)
                }
            };
        }
        // Completions and the man page: no runtime, no network.
        other => {
            let (exit, message) = describe::run(other);
            if let Some(message) = message {
                note(&message);
            }
            return ExitCode::from(exit as u8);
        }
    };
    init_tracing(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            note(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(Exit::Failure as u8);
        }
    };
    let result = runtime.block_on(run::run(cli));
    // Do not wait for a demo server's connections or a stalled request to wind down.
    runtime.shutdown_background();
    finish(result)
}

/// The exit code of a command's outcome, saying the error (with its hint) on stderr.
fn finish(result: Result<(), error::CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.exit == Exit::Ok => ExitCode::SUCCESS,
        Err(e) => {
            note(&e.to_string());
            ExitCode::from(e.exit as u8)
        }
    }
}
