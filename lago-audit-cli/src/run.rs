//! The commands: `list`, `get`, `export`, `tail`, written once for every kind of log.

use crate::cli::{Cli, Global, KindCommand, PageArgs, Resource};
use crate::config::connect;
use crate::env::Env;
use crate::error::{explain, CliError, Exit};
use crate::kinds::{sent, Activity, Api, LogKind, Security};
use crate::output::{self, write_error, Emitter, Format, Output};
use lago_audit_client::pagination::Page;
use lago_audit_client::Paginate;

/// Runs the command on its kind of log.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.resource {
        Resource::ActivityLogs(c) => run_kind::<Activity>(cli.global, c).await,
        Resource::ApiLogs(c) => run_kind::<Api>(cli.global, c).await,
        Resource::SecurityLogs(c) => run_kind::<Security>(cli.global, c).await,
    }
}

/// Checks what clap cannot check alone, connects, and runs the command.
pub async fn run_kind<K: LogKind>(global: Global, command: KindCommand<K>) -> Result<(), CliError> {
    // Checks between flags, before anything is sent (clap has checked each value alone).
    if let Some(filters) = command.filters() {
        K::window(filters)
            .check()
            .map_err(|m| CliError::new(Exit::Usage, m))?;
    }
    let format = global
        .format
        .unwrap_or_else(|| Format::default_for(global.output.is_some()));
    let tail = matches!(command, KindCommand::Tail { .. });
    output::check_output(global.output.as_deref())?;
    if let Some(url) = output::store_url(global.output.as_deref()) {
        if !matches!(
            command,
            KindCommand::Export { .. } | KindCommand::Tail { .. }
        ) {
            return Err(CliError::new(
                Exit::Usage,
                format!(
                    "-o {url}: an object store takes export and tail; list and get write a file"
                ),
            ));
        }
        if format.sink().is_none() {
            return Err(CliError::new(
                Exit::Usage,
                format!(
                    "--format {}: an object store holds ndjson, ocsf or ecs",
                    format.name()
                ),
            ));
        }
    }
    let conn = connect(&global, tail, K::NAME, K::NOUN).await?;
    let env = Env {
        conn,
        global,
        format,
    };
    match command {
        KindCommand::List { filters, page } => list::<K>(&env, &filters, &page).await,
        KindCommand::Get { id } => get::<K>(&env, id).await,
        KindCommand::Export {
            filters,
            mut export,
        } => {
            export.archive.key = crate::verify::signing_key(export.archive.signing_key.as_deref())?;
            crate::export::export::<K>(&env, &filters, &export).await
        }
        KindCommand::Tail { filters, mut tail } => {
            tail.archive.key = crate::verify::signing_key(tail.archive.signing_key.as_deref())?;
            crate::export::tail::<K>(&env, &filters, &tail).await
        }
    }
}

/// `list`: one page.
async fn list<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    page: &PageArgs,
) -> Result<(), CliError> {
    let filters = sent::<K>(filters, chrono::Utc::now());
    let request = K::per_page(K::list(&env.conn.client, &filters), page.per_page);
    let result = request.fetch_page(i64::from(page.page)).await;
    let body = result.map_err(|e| explain(&e, &env.context::<K>()))?;
    let meta = body.meta().clone();
    let records = body.into_items();
    let dest = env.global.output.as_deref();
    let mut out = Output::open(dest)?;
    let mut emitter = Emitter::<K>::new(env.format, env.width());
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
            K::NOUN
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
    output::single::<K>(&mut out, env.format, env.width(), &record)
        .map_err(|e| write_error(&e, dest))?;
    out.commit()
}
