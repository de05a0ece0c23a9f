//! Lists the newest activity logs, then counts every API log that failed, across all pages.
//!
//! With `LAGO_API_KEY` set, it talks to Lago (region from `LAGO_REGION` or `LAGO_API_URL`).
//! Without it, it starts the built-in fake Lago on a loopback port, so it runs with no account:
//!
//! ```text
//! cargo run -p lago-audit-client --example list_activity_logs          # 10 newest logs
//! cargo run -p lago-audit-client --example list_activity_logs -- 25    # 25 newest logs
//! ```

mod common;

use common::out;
use futures::TryStreamExt;
use lago_audit_client::{Client, ClientInfo, HttpStatusFilter, Paginate};

#[tokio::main]
async fn main() {
    common::exit_on_error(start().await);
}

async fn start() -> Result<(), Box<dyn std::error::Error>> {
    let limit: i64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|_| format!("expected a number of logs to show, got {n:?}"))?,
        None => 10,
    };
    // Keep the fake alive for as long as the client uses it.
    let (_fake, client) = common::connect().await?;
    // Errors print as this crate's `Error`: status, Lago's code, details; never the API key.
    run(&client, limit).await
}

async fn run(client: &Client, limit: i64) -> Result<(), Box<dyn std::error::Error>> {
    let page = client
        .find_all_activity_logs()
        .per_page(limit)
        .send()
        .await?;
    if !out(format_args!(
        "{} activity logs on {} pages at {}; the newest {}:",
        page.meta.total_count,
        page.meta.total_pages,
        client.baseurl(),
        page.activity_logs.len()
    ))? {
        return Ok(());
    }
    for log in &page.activity_logs {
        let by = log
            .user_email
            .as_deref()
            .unwrap_or(log.activity_source.as_str());
        if !out(format_args!(
            "  {}  {:<34} {:<22} by {by}",
            log.logged_at.format("%Y-%m-%d %H:%M:%S"),
            log.activity_type,
            log.resource_type,
        ))? {
            return Ok(());
        }
    }

    let failed: Vec<_> = client
        .find_all_api_logs()
        .http_statuses([HttpStatusFilter::Failed])
        .per_page(100)
        .items()
        .try_collect()
        .await?;
    if !out(format_args!(
        "{} failed API calls in the retention window",
        failed.len()
    ))? {
        return Ok(());
    }
    if let Some(call) = failed.first() {
        out(format_args!(
            "  newest: {} {} -> {} ({})",
            call.http_method.as_str().to_uppercase(),
            call.request_path,
            call.http_status,
            call.client
        ))?;
    }
    Ok(())
}
