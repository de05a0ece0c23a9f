//! Throughput of delivery: the same export of activity logs from the fake Lago, gzip NDJSON, into
//! a local directory and into S3 (moto, when `LAGO_SINK_TEST_S3` names one, as `.ci/run` sets
//! it), as records/s and their ratio, with the peak heap of each run next to the batch size.
//!
//! `cargo bench -p lago-audit-sink` (`LAGO_SINK_BENCH_RECORDS` changes the count, 100,000;
//! `LAGO_SINK_BENCH_ONLY=verify` runs only the configuration verify is measured on).

use futures::{StreamExt, TryStreamExt};
use lago_audit_client::{ClientBuilder, Export, ExportOptions};
use lago_audit_fake::FakeLago;
use lago_audit_sink::verify::{verify, VerifyOptions};
use lago_audit_sink::{BatchLimits, Destination, LogKind, Sink, SinkOptions, SinkProgress};
use object_store::ObjectStoreExt;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts the live heap and its peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: f64 = 1024.0 * 1024.0;

/// Records/s, peak heap, objects, mean object size (gzip bytes), uploads per object (the objects,
/// the chain's records, retries, and the store check's three).
async fn deliver(
    fake: &FakeLago,
    dest: &Destination,
    limits: BatchLimits,
) -> (f64, usize, u64, f64, f64) {
    let client = ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .rate_limit(0)
        .build()
        .expect("a client");
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let base = LIVE.load(Ordering::Relaxed);
    let start = Instant::now();
    let progress = SinkProgress::default();
    let options = SinkOptions::default()
        .limits(limits)
        .progress(progress.clone());
    let mut sink = Sink::open(dest, options).await.expect("open");
    let events = client
        .find_all_activity_logs()
        .to_date(fake.generator().now())
        .export(ExportOptions::default());
    let summary = sink.write(events).await.expect("write");
    let secs = start.elapsed().as_secs_f64();
    (
        summary.records as f64 / secs,
        PEAK.load(Ordering::Relaxed).saturating_sub(base),
        summary.objects,
        progress.bytes() as f64 / summary.objects.max(1) as f64,
        (progress.objects() + progress.checkpoints() + progress.put_retries() + 3) as f64
            / summary.objects.max(1) as f64,
    )
}

/// Seconds to verify `dest`'s activity logs, and seconds to download every object of it with
/// object_store alone (one listing, eight GETs at a time), the floor of any verification.
async fn verify_vs_download(dest: &Destination) -> (f64, f64, u64) {
    let start = Instant::now();
    let report = verify(dest, LogKind::Activity, &VerifyOptions::default())
        .await
        .expect("verify")
        .expect("an archive");
    assert!(report.is_valid(), "{:?}", report.problems);
    let verified = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let store = dest.store().clone();
    let listed: Vec<_> = store
        .list(Some(&object_store::path::Path::from(
            format!("{}/activity_logs", dest.prefix()).trim_start_matches('/'),
        )))
        .try_collect()
        .await
        .expect("a listing");
    let bytes: usize = futures::stream::iter(listed)
        .map(|m| {
            let store = store.clone();
            async move {
                store
                    .get(&m.location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("body")
                    .len()
            }
        })
        .buffer_unordered(8)
        .fold(0, |a, n| async move { a + n })
        .await;
    assert!(bytes > 0);
    (verified, start.elapsed().as_secs_f64(), report.records)
}

fn main() {
    let records: u64 = std::env::var("LAGO_SINK_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    rt.block_on(async {
        let fake = FakeLago::builder()
            .seed(1)
            .records_per_kind(records, 0, 0)
            .start()
            .await
            .expect("the fake");
        let s3 = std::env::var("LAGO_SINK_TEST_S3").ok().filter(|s| !s.is_empty());
        println!("{records} activity logs, gzip NDJSON, batch limits as given, read-ahead 8");
        // LAGO_SINK_BENCH_ONLY=verify: only the configuration verify is measured on.
        let only_verify = std::env::var("LAGO_SINK_BENCH_ONLY").is_ok_and(|v| v == "verify");
        for limits in [
            BatchLimits::default(),
            BatchLimits::default().max_bytes(8 << 20),
            BatchLimits::default().max_bytes(2 << 20),
            BatchLimits::default().max_records(1_000),
        ] {
            if only_verify && limits.records() != 1_000 {
                continue;
            }
            let dir = tempfile::tempdir().expect("a temporary directory");
            let local = Destination::parse(&format!("file://{}", dir.path().display()))
                .expect("a directory");
            let (file_rate, file_peak, objects, size, puts) = deliver(&fake, &local, limits).await;
            let batch = format!(
                "{:>5.1} MiB raw, {:>6} records",
                limits.bytes() as f64 / MIB,
                limits.records()
            );
            println!(
                "batch ≤ {batch}: file://  {file_rate:>9.0} records/s, {objects} objects of {:.2} MiB gzip, {puts:.2} uploads/object, peak heap {:.1} MiB",
                size / MIB,
                file_peak as f64 / MIB
            );
            let Some(s3) = &s3 else {
                println!("(no S3 run: set LAGO_SINK_TEST_S3 to a moto server, as .ci/run does)");
                continue;
            };
            let bucket = format!("lago-bench-{:08x}", fastrand::u32(..));
            let created = reqwest::Client::new()
                .put(format!("{s3}/{bucket}"))
                .send()
                .await
                .expect("create the bucket");
            assert!(created.status().is_success());
            let remote = Destination::parse_with_options(
                &format!("s3://{bucket}/bench"),
                [
                    ("aws_endpoint", s3.as_str()),
                    ("aws_allow_http", "true"),
                    ("aws_access_key_id", "test"),
                    ("aws_secret_access_key", "test"),
                    ("aws_region", "us-east-1"),
                ],
            )
            .expect("an S3 destination");
            let (s3_rate, s3_peak, objects, size, puts) = deliver(&fake, &remote, limits).await;
            if limits.records() == 1_000 {
                for (name, d) in [("file://", &local), ("s3 moto", &remote)] {
                    let (verified, downloaded, records) = verify_vs_download(d).await;
                    println!(
                        "verify {name}: {records} records in {verified:.2} s; downloading the objects alone {downloaded:.2} s; ratio {:.2} (target ≥ 0.8)",
                        downloaded / verified
                    );
                }
            }
            println!(
                "batch ≤ {batch}: s3 moto {s3_rate:>9.0} records/s, {objects} objects of {:.2} MiB gzip, {puts:.2} uploads/object, peak heap {:.1} MiB; ratio to file {:.2} (target ≥ 0.8)",
                size / MIB,
                s3_peak as f64 / MIB,
                s3_rate / file_rate
            );
        }
    });
}
