//! Reads every page of a filtered query with `pages()`, and every record with `items()`.
//!
//! `pages()`/`items()` are "one query, page by page": simple, and right for a query whose
//! results do not change while you read. To read a whole window exactly once while Lago inserts
//! and reorders, use the export (see the README).
//!
//! ```text
//! cargo run -p lago-audit-client --example stream_pages
//! ```

mod common;

use common::out;
use futures::TryStreamExt;
use lago_audit_client::Paginate;

#[tokio::main]
async fn main() {
    common::exit_on_error(start().await);
}

async fn start() -> Result<(), Box<dyn std::error::Error>> {
    let (_fake, client) = common::connect().await?;

    // Page by page: the meta of each page, as Lago reports it.
    let mut pages = client
        .find_all_activity_logs()
        .activity_sources(["api"])
        .per_page(500)
        .pages();
    while let Some(page) = pages.try_next().await? {
        let m = &page.meta;
        if !out(format_args!(
            "page {} of {}: {} records ({} in all)",
            m.current_page,
            m.total_pages,
            page.activity_logs.len(),
            m.total_count
        ))? {
            return Ok(());
        }
    }

    // Record by record, across pages, with a filter on the outcome.
    let failed = client
        .find_all_api_logs()
        .http_statuses(["failed"])
        .per_page(200)
        .items();
    let by_status = failed
        .try_fold(
            std::collections::BTreeMap::<i64, usize>::new(),
            |mut counts, call| async move {
                *counts.entry(call.http_status).or_default() += 1;
                Ok(counts)
            },
        )
        .await?;
    for (status, n) in by_status {
        if !out(format_args!("{n:>6} failed calls answered {status}"))? {
            break;
        }
    }
    Ok(())
}
