//! `lago-audit-fake`: serve a fake Lago audit-log API on loopback until interrupted.

use clap::Parser;
use lago_audit_fake::{FakeLago, Faults};
use std::time::Duration;

/// A local fake of Lago's audit-log API (activity, API and security logs).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of activity logs and of API logs (security logs: a quarter of it).
    #[arg(long, default_value_t = 3_000)]
    records: u64,
    /// The API key to accept.
    #[arg(long, default_value = lago_audit_fake::DEFAULT_API_KEY)]
    api_key: String,
    /// Answer every call with 403 feature_unavailable (no premium licence).
    #[arg(long)]
    no_premium: bool,
    /// Answer security-log calls with 403 forbidden (no add-on).
    #[arg(long)]
    no_security_logs: bool,
    /// Latency added to every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Requests allowed per second before 429.
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Share of requests answered with 500/502/503.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Share of responses cut mid-body under their declared Content-Length.
    #[arg(long, default_value_t = 0.0)]
    reset_rate: f64,
    /// Share of responses sent chunked and cut before their last chunk.
    #[arg(long, default_value_t = 0.0)]
    chunked_cut_rate: f64,
    /// Share of responses whose JSON is cut short.
    #[arg(long, default_value_t = 0.0)]
    truncate_rate: f64,
    /// Records inserted before each list request.
    #[arg(long, default_value_t = 0)]
    insert_per_request: u64,
    /// Insert records this many seconds before the newest (a server clock behind the
    /// client's), so they land among existing records.
    #[arg(long, default_value_t = 0)]
    inserts_behind_secs: u64,
    /// Reorder records with equal logged_at on each query.
    #[arg(long)]
    shuffle_ties: bool,
    /// Share of records stored twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate_rate: f64,
    /// Report total_count off by up to this many records.
    #[arg(long, default_value_t = 0)]
    count_skew: u64,
    /// Serve at most this many records a page whatever per_page asks (0: no cap), as a server
    /// or proxy with a maximum would.
    #[arg(long, default_value_t = 0)]
    per_page_cap: u64,
    /// Give timestamps milliseconds.
    #[arg(long)]
    millis: bool,
    /// Lay records out in bursts (quiet hours, then billing runs); the same as `--shape bursty`.
    #[arg(long)]
    bursty: bool,
    /// Lay records out in a shape: even, ties (1-40 a second, 1-30 s apart), bursty, dense-hours
    /// (days apart), dense-hour (all in one hour), big-seconds (some seconds hold 1,500+).
    #[arg(long, conflicts_with = "bursty")]
    shape: Option<lago_audit_fake::data::Shape>,
    /// Length of the rate limit's window, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    rate_limit_window_ms: u64,
    /// Share of requests that start a burst of four 429 answers.
    #[arg(long, default_value_t = 0.0)]
    throttle_rate: f64,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    for (name, share) in [
        ("--error-rate", args.error_rate),
        ("--reset-rate", args.reset_rate),
        ("--chunked-cut-rate", args.chunked_cut_rate),
        ("--duplicate-rate", args.duplicate_rate),
        ("--truncate-rate", args.truncate_rate),
        ("--throttle-rate", args.throttle_rate),
    ] {
        if !(0.0..=1.0).contains(&share) {
            eprintln!("error: {name} must be between 0 and 1, got {share}");
            std::process::exit(2);
        }
    }
    let mut builder = FakeLago::builder()
        .port(args.port)
        .seed(args.seed)
        .records(args.records);
    if args.bursty {
        builder = builder.bursty(args.records);
    }
    if let Some(shape) = args.shape {
        builder = builder.shape(shape, args.records);
    }
    let fake = builder
        .api_key(args.api_key)
        .premium(!args.no_premium)
        .security_logs_addon(!args.no_security_logs)
        .faults(Faults {
            latency: Duration::from_millis(args.latency_ms),
            rate_limit: args.rate_limit,
            error_rate: args.error_rate,
            reset_rate: args.reset_rate,
            chunked_cut_rate: args.chunked_cut_rate,
            truncate_rate: args.truncate_rate,
            insert_per_request: args.insert_per_request,
            inserts_behind: Duration::from_secs(args.inserts_behind_secs),
            shuffle_ties: args.shuffle_ties,
            duplicate_rate: args.duplicate_rate,
            count_skew: args.count_skew,
            per_page_cap: args.per_page_cap,
        })
        .millis(args.millis)
        .rate_limit_window(Duration::from_millis(args.rate_limit_window_ms))
        .throttle_rate(args.throttle_rate)
        .start()
        .await?;
    println!("LAGO_API_URL={}", fake.base_url());
    println!("LAGO_API_KEY={}", fake.api_key());
    tokio::signal::ctrl_c().await?;
    let counts = fake.counts();
    eprintln!("{counts:?}");
    fake.shutdown().await;
    Ok(())
}
