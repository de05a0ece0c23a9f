//! Requests per second the fake serves over loopback, for a 100-record page, against a baseline
//! measured in the same run: a 1-record page through the same server, auth and routing, so the
//! ratio is the cost of generating and serialising 99 more records.
//!
//! ```text
//! cargo bench -p lago-audit-fake --bench throughput
//! ```
//!
//! The load generator runs in the same process and shares the machine's cores with the server, so
//! absolute figures are a floor; the ratio is what to compare between runs.

use lago_audit_fake::FakeLago;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 8;
const WINDOW: Duration = Duration::from_secs(3);

async fn measure(url: &str, key: &str) -> f64 {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let url = url.to_owned();
        let key = key.to_owned();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut done = 0u64;
            while started.elapsed() < WINDOW {
                let response = client
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .expect("request");
                assert!(response.status().is_success());
                response.bytes().await.expect("body");
                done += 1;
            }
            done
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fake = FakeLago::builder().records(100_000).start().await.unwrap();
        let base = fake.base_url();
        let one = format!("{base}/activity_logs?per_page=1&page=7");
        let hundred = format!("{base}/activity_logs?per_page=100&page=7");
        // Warm up connections and caches.
        measure(&one, fake.api_key()).await;
        let baseline = measure(&one, fake.api_key()).await;
        let page = measure(&hundred, fake.api_key()).await;
        let bytes = reqwest::Client::new()
            .get(&hundred)
            .bearer_auth(fake.api_key())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .len();
        println!("fake throughput over loopback ({CONNECTIONS} connections, {WINDOW:?} each, client in-process):");
        println!("  baseline: 1-record page    {baseline:>9.0} req/s");
        println!("  100-record page ({bytes} B) {page:>9.0} req/s   ratio to baseline {:.3}", page / baseline);
        println!("  records served per second: {:.0}", page * 100.0);
    });
}
