//! What each kind of failure looks like, and how to tell them apart: a missing record (404 with
//! Lago's code), a bad filter value (refused before sending), a refused key (401, with where the
//! key came from), and an unreachable host (with the attempts made).
//!
//! ```text
//! cargo run -p lago-audit-client --example errors
//! ```

mod common;

use lago_audit_client::{ClientBuilder, Error, RetryPolicy};

#[tokio::main]
async fn main() {
    common::exit_on_error(start().await);
}

fn describe(what: &str, result: Result<(), Error>) {
    match result {
        Ok(()) => println!("{what}: ok"),
        Err(e) if e.code() == Some("activity_log_not_found") => {
            println!("{what}: no such log ({e})")
        }
        Err(Error::InvalidRequest(reason)) => println!("{what}: refused before sending: {reason}"),
        Err(e @ Error::Api(_)) => println!("{what}: {e}"),
        Err(e @ Error::Transport(_)) => println!("{what}: network: {e}"),
        Err(e) => println!("{what}: {e}"),
    }
}

async fn start() -> Result<(), Box<dyn std::error::Error>> {
    let (fake, client) = common::connect().await?;

    let missing = client
        .find_activity_log()
        .activity_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await;
    describe("a missing log", missing.map(drop));

    let bad_date = client
        .find_all_activity_logs()
        .from_date("2025-02-30")
        .send()
        .await;
    describe("a bad date", bad_date.map(drop));

    if let Some(fake) = &fake {
        let wrong_key = ClientBuilder::new("not-the-key")
            .base_url(fake.base_url())
            .build()?;
        let refused = wrong_key.find_all_activity_logs().send().await;
        describe("a wrong key", refused.map(drop));
    }

    // Port 9 on loopback has no server: the connection is refused, retried, then reported.
    let nowhere = ClientBuilder::new("k")
        .base_url("http://127.0.0.1:9")
        .retry_policy(RetryPolicy {
            base_delay: std::time::Duration::from_millis(10),
            ..RetryPolicy::default()
        })
        .build()?;
    let unreachable = nowhere.find_all_activity_logs().send().await;
    describe("no server", unreachable.map(drop));
    Ok(())
}
