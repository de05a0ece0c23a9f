//! Which Lago to talk to, with which key: flags, then `LAGO_API_KEY`, `LAGO_REGION`,
//! `LAGO_API_URL` (the region wins over the URL, as in the library), or the built-in demo.

use crate::cli::Global;
use crate::error::{CliError, Exit, KeySource};
use lago_audit_client::{Client, ClientBuilder, ConfigError, Region, RetryPolicy};
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

/// Reads a variable; empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
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
    let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    let mut builder = FakeLago::builder()
        .seed(42)
        .records(g.demo_records)
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
        });
    }
    builder
        .start()
        .await
        .map_err(|e| CliError::io("cannot start the demo server on 127.0.0.1", &e))
}

/// Builds the client from flags and the environment, or starts the demo.
/// `tail` says whether the command is `tail` (the demo then keeps adding records).
pub async fn connect(g: &Global, tail: bool) -> Result<Connection, CliError> {
    let (key, key_source, region, demo) = if g.demo {
        let fake = start_demo(g, tail).await?;
        if !g.quiet {
            crate::note(&format!(
                "demo: a fake Lago at {} ({} activity logs{})",
                fake.addr(),
                g.demo_records,
                if g.demo_faults { ", with faults" } else { "" }
            ));
        }
        (
            fake.api_key().to_owned(),
            KeySource::Demo,
            Region::Custom(fake.base_url()),
            Some(fake),
        )
    } else {
        let (key, source) = match (&g.api_key, env("LAGO_API_KEY")) {
            (Some(k), _) => (k.clone(), KeySource::Flag),
            (None, Some(k)) => (k, KeySource::Env),
            (None, None) => return Err(CliError::new(Exit::Config, "no Lago API key").hint(
                "set LAGO_API_KEY (or pass --api-key), or try --demo to use a built-in fake Lago",
            )),
        };
        let region = if let Some(url) = &g.api_url {
            Region::Custom(url.clone())
        } else if let Some(r) = &g.region {
            Region::parse(r)
        } else if let Some(r) = env("LAGO_REGION") {
            Region::parse(&r)
        } else if let Some(url) = env("LAGO_API_URL") {
            Region::Custom(url)
        } else {
            Region::Us
        };
        (key, source, region, None)
    };

    let retry = RetryPolicy {
        max_retries: g.retries,
        ..RetryPolicy::default()
    };
    let mut builder = ClientBuilder::new(key)
        .region(region)
        .allow_insecure_http(g.allow_insecure_http)
        .request_timeout(g.timeout)
        .user_agent(concat!("lago-audit/", env!("CARGO_PKG_VERSION")))
        .retry_policy(retry);
    if let Some(per_second) = g.rate_limit {
        builder = builder.rate_limit(per_second);
    }
    let host = builder
        .resolved_base_url()
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                u.port()
                    .map_or_else(|| h.to_owned(), |p| format!("{h}:{p}"))
            })
        })
        .unwrap_or_else(|| "Lago".into());
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

fn config_error(e: &ConfigError) -> CliError {
    let hint = match e {
        ConfigError::InsecureUrl { .. } => {
            "use https, or pass --allow-insecure-http for a self-hosted Lago on a private network"
        }
        ConfigError::InvalidUrl { .. } => {
            "--api-url / LAGO_API_URL takes Lago's base URL, e.g. https://lago.example.com (with or without /api/v1); --region takes us or eu"
        }
        ConfigError::InvalidApiKey | ConfigError::MissingApiKey => {
            "copy the key again from Lago (Developers > API keys)"
        }
        _ => "check --api-url, --region and the LAGO_* variables",
    };
    CliError::new(Exit::Config, e.to_string()).hint(hint)
}
