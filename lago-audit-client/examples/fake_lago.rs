//! Tests your own code against the bundled fake Lago: seeded data, faults on request, and counts
//! of what happened. Here, every page of a query is read through 5% server errors, 1% connection
//! resets and a rate limit, and the retries absorb them.
//!
//! ```text
//! cargo run -p lago-audit-client --example fake_lago
//! ```

use futures::TryStreamExt;
use lago_audit_client::{ClientBuilder, Paginate, RetryPolicy};
use lago_audit_fake::FakeLago;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = FakeLago::builder()
        .seed(42)
        .records(5_000)
        .error_rate(0.05)
        .reset_rate(0.01)
        .rate_limit(200)
        .start()
        .await?;
    let client = ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .retry_policy(RetryPolicy {
            max_retries: 6,
            base_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        })
        .build()?;

    let logs: Vec<_> = client
        .find_all_activity_logs()
        .per_page(100)
        .items()
        .try_collect()
        .await?;
    println!("read {} activity logs", logs.len());
    let c = fake.counts();
    println!(
        "the fake saw {} requests: {} server errors, {} resets, {} rate-limited, all retried",
        c.requests, c.server_errors, c.resets, c.rate_limited
    );
    Ok(())
}
