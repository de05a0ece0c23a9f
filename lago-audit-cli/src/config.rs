//! Which Lago to talk to, with which key: the library's lookup of `LAGO_API_KEY`, `LAGO_REGION`
//! and `LAGO_API_URL`, overridden by the flags, or the built-in demo.

use crate::cli::Global;
use crate::error::{config_error, CliError};
use lago_audit_client::{Client, ClientBuilder, KeySource, Region, RetryPolicy};
use lago_audit_fake::{FakeLago, Faults};
use std::time::Duration;

/// A client ready to use, and what error messages need to know about it.
pub struct Connection {
    /// The client.
    pub client: Client,
    /// Where the API key came from.
    pub key_source: KeySource,
    /// The host requests go to (for messages).
    pub host: String,
    /// Attempts per request.
    pub attempts: u32,
    /// The demo server, kept alive as long as the client (it serves from a background task).
    #[allow(dead_code)]
    pub demo: Option<FakeLago>,
    /// In the demo, where `tail` starts: the first record the demo adds while it runs.
    pub demo_tail_from: Option<chrono::DateTime<chrono::Utc>>,
}

/// The fake Lago that `--demo` starts: seeded data whose newest record is from a minute ago, and
/// with `--demo-faults` every fault the fake can inject.
pub async fn start_demo(g: &Global, tail: bool) -> Result<FakeLago, CliError> {
    // The demo's data ends at the last midnight (UTC), so two runs on one day serve the same
    // records and an interrupted demo export resumes exactly. For `tail`, records keep arriving:
    // each poll adds one second's worth, from one second ago on.
    let real = chrono::Utc::now();
    let now = if tail {
        real - chrono::Duration::seconds(1)
    } else {
        real.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
    };
    let now = crate::kinds::whole_second(now);
    let mut builder = FakeLago::builder()
        .seed(42)
        .records(g.demo_records())
        .now(now);
    if tail {
        builder = builder.insert_per_request(3);
    }
    if g.demo_faults {
        builder = builder.faults(Faults {
            latency: Duration::from_millis(5),
            rate_limit: Some(100),
            error_rate: 0.05,
            reset_rate: 0.01,
            chunked_cut_rate: 0.01,
            truncate_rate: 0.01,
            // Whole seconds at a time while tailing, as Lago's store shows them.
            insert_per_request: if tail { 3 } else { 2 },
            // An export's inserts land among the records it is reading (a server clock ten
            // minutes behind); a tail's arrive as new seconds, as they do on a live Lago.
            inserts_behind: Duration::from_secs(if tail { 0 } else { 600 }),
            shuffle_ties: true,
            duplicate_rate: 0.01,
            count_skew: 2,
            ..Faults::default()
        });
    }
    builder
        .start()
        .await
        .map_err(|e| CliError::io("cannot start the demo server on 127.0.0.1", &e))
}

/// How many records of kind `kind` (`activity-logs`, …) the demo holds: the fake holds
/// `--demo-records` activity and API logs, and a quarter as many security logs.
pub fn demo_holds(g: &Global, kind: &str) -> u64 {
    let n = g.demo_records();
    if kind == "security-logs" {
        n / 4
    } else {
        n
    }
}

/// Builds the client from the library's lookup (`LAGO_API_KEY`, `LAGO_REGION`, `LAGO_API_URL`)
/// plus the flags, or starts the demo. `tail` says whether the command is `tail` (the demo then
/// keeps adding records); `kind` and `noun` name the kind of log read (for the demo's banner).
pub async fn connect(
    g: &Global,
    tail: bool,
    kind: &str,
    noun: &str,
) -> Result<Connection, CliError> {
    let mut builder = ClientBuilder::from_env();
    let demo = if g.demo {
        let fake = start_demo(g, tail).await?;
        if !g.quiet {
            crate::note(&format!(
                "demo: a fake Lago at {} ({} {noun}s{})",
                fake.addr(),
                demo_holds(g, kind),
                if g.demo_faults { ", with faults" } else { "" }
            ));
        }
        builder = builder
            .api_key_from(fake.api_key(), KeySource::Named("the demo".into()))
            .base_url(fake.base_url());
        Some(fake)
    } else {
        if let Some(key) = &g.api_key {
            builder = builder.api_key_from(key, KeySource::Named("the --api-key flag".into()));
        }
        if let Some(url) = &g.api_url {
            builder = builder.base_url(url);
        } else if let Some(region) = &g.region {
            builder = builder.region(Region::parse(region));
        }
        None
    };
    let retry = RetryPolicy {
        max_retries: g.retries,
        ..RetryPolicy::default()
    };
    builder = builder
        .allow_insecure_http(g.allow_insecure_http)
        .user_agent(concat!("lago-audit/", env!("CARGO_PKG_VERSION")))
        .retry_policy(retry);
    if let Some(timeout) = g.timeout {
        builder = builder.request_timeout(timeout);
    }
    if let Some(per_second) = g.rate_limit {
        builder = builder.rate_limit(per_second);
    }
    let key_source = builder.key_source().clone();
    let host = builder.host().unwrap_or_else(|| "Lago".into());
    let client = builder.build().map_err(|e| config_error(&e))?;
    Ok(Connection {
        client,
        key_source,
        host,
        attempts: g.retries + 1,
        demo_tail_from: demo.as_ref().filter(|_| tail).map(|f| {
            f.generator()
                .logged_at(lago_audit_fake::data::Slot::Inserted(0))
        }),
        demo,
    })
}
