//! Figures for `BENCHMARKS.md`, all against `lago-audit-fake` on loopback, in one run:
//!
//! 1. records/s of `export()` and of `items()`, as a ratio to a raw `reqwest` + `serde_json` loop
//!    decoding the same pages into the same types (latency 0, client rate limiter off);
//! 2. the speed-up of read-ahead over one request at a time, with 20 ms latency;
//! 3. peak heap memory of an export of 1,000,000 records against one of 10,000 (a counting global
//!    allocator; the fake serving in the same process is counted too);
//! 4. records/s with the fake limiting to 50 requests/s and the client's default limiter on.
//!
//! ```text
//! cargo bench -p lago-audit-client --bench export          # every section
//! cargo bench -p lago-audit-client --bench export -- 1 3   # sections 1 and 3 only
//! cargo bench -p lago-audit-client --bench export -- 0 items   # one reader alone, to profile
//! ```
//!
//! Figures are printed, not asserted. The fake and the client share the machine's cores.

use futures::TryStreamExt;
use lago_audit_client::export::DEFAULT_READ_AHEAD;
use lago_audit_client::types::ActivityLogsPaginated;
use lago_audit_client::{Client, ClientBuilder, Export, ExportEvent, ExportOptions, Paginate};
use lago_audit_fake::data::Shape;
use lago_audit_fake::FakeLago;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn client(fake: &FakeLago, rate_limit: u32) -> Client {
    ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .rate_limit(rate_limit)
        .build()
        .expect("a loopback client")
}

async fn raw_loop(fake: &FakeLago, to: &str, per_page: u64, pages: u64) -> u64 {
    let http = reqwest::Client::new();
    let url = format!("{}/activity_logs", fake.base_url());
    let mut n = 0;
    for page in 1..=pages {
        let body = http
            .get(&url)
            .query(&[
                ("page", page.to_string()),
                ("per_page", per_page.to_string()),
                ("to_date", to.to_owned()),
            ])
            .bearer_auth(fake.api_key())
            .send()
            .await
            .expect("request")
            .bytes()
            .await
            .expect("body");
        let parsed: ActivityLogsPaginated = serde_json::from_slice(&body).expect("decode");
        n += parsed.activity_logs.len() as u64;
    }
    n
}

async fn items(c: &Client, to: &str, per_page: i64) -> u64 {
    c.find_all_activity_logs()
        .to_date(to)
        .per_page(per_page)
        .items()
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await
        .expect("items")
}

async fn export(c: &Client, to: &str, options: ExportOptions) -> u64 {
    c.find_all_activity_logs()
        .to_date(to)
        .export(options)
        .try_fold(0u64, |n, e| async move {
            Ok(n + u64::from(matches!(e, ExportEvent::Record(_))))
        })
        .await
        .expect("export")
}

/// The best of `runs` timings of `f`, as records per second.
async fn best<F, Fut>(runs: usize, mut f: F) -> (f64, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = u64>,
{
    let mut best = 0.0f64;
    let mut n = 0;
    for _ in 0..runs {
        let started = Instant::now();
        n = f().await;
        best = best.max(n as f64 / started.elapsed().as_secs_f64());
    }
    (best, n)
}

/// The sections named on the command line (numbers), or every one. `cargo bench` passes
/// `--bench` too, which is not a number.
fn sections() -> impl Fn(u32) -> bool {
    let chosen: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    move |n| chosen.is_empty() || chosen.contains(&n)
}

/// Section 0, for a profiler: `-- 0 raw` or `-- 0 items` reads 200,000 records at 100 a page
/// with that reader alone, once (the difference of two profiles is what `items()` adds).
fn profiling() -> bool {
    std::env::args().any(|a| a == "0")
}

fn main() {
    let run = sections();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        println!("lago-audit-client export bench ({} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));

        if profiling() {
            // 0. For a profiler: one reader, once, at 100 records a page.
            let fake = FakeLago::builder().records_per_kind(200_000, 0, 0).start().await.expect("fake");
            let to = fake.generator().now().to_rfc3339();
            let c = client(&fake, 0);
            let started = Instant::now();
            let n = if std::env::args().any(|a| a == "items") {
                items(&c, &to, 100).await
            } else {
                raw_loop(&fake, &to, 100, 2000).await
            };
            assert_eq!(n, 200_000);
            println!("0. {n} records in {:.2} s", started.elapsed().as_secs_f64());
            return;
        }
        if run(1) {
            // 1. Decoding overhead: the same fake, 200,000 records, 1,000 per page, no latency.
            let records = 200_000u64;
            let per_page = 1000u64;
            let fake = FakeLago::builder().records_per_kind(records, 0, 0).start().await.expect("fake");
            let to = fake.generator().now().to_rfc3339();
            let c = client(&fake, 0);
            raw_loop(&fake, &to, per_page, 20).await; // warm-up
            // Interleaved rounds, best of each: the machine is shared, so slow phases hit every
            // reader alike instead of one.
            let (mut raw, mut it, mut ex1, mut exd) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
            let (mut n_raw, mut n_items, mut n_ex1) = (0, 0, 0);
            for _ in 0..5 {
                let (r, n) = best(1, || raw_loop(&fake, &to, per_page, records / per_page)).await;
                (raw, n_raw) = (raw.max(r), n);
                let (r, n) = best(1, || items(&c, &to, per_page as i64)).await;
                (it, n_items) = (it.max(r), n);
                let (r, n) = best(1, || {
                    export(&c, &to, ExportOptions::default().max_per_page(per_page as u32).read_ahead(1))
                })
                .await;
                (ex1, n_ex1) = (ex1.max(r), n);
                let (r, _) = best(1, || {
                    export(&c, &to, ExportOptions::default().max_per_page(per_page as u32))
                })
                .await;
                exd = exd.max(r);
            }
            assert_eq!((n_raw, n_items, n_ex1), (records, records, records));
            println!("\n1. records/s, {records} records, per_page {per_page}, latency 0, best of 5 interleaved rounds");
            println!("| reader | records/s | ratio to raw loop |");
            println!("|---|---:|---:|");
            println!("| raw reqwest + serde_json loop | {raw:.0} | 1.00 |");
            println!("| items() | {it:.0} | {:.2} |", it / raw);
            println!("| export(), read_ahead 1 | {ex1:.0} | {:.2} |", ex1 / raw);
            println!(
                "| export(), default read_ahead ({DEFAULT_READ_AHEAD}) | {exd:.0} | {:.2} |",
                exd / raw
            );
            // items() at 100 a page: ten times the requests, where a per-response cost shows.
            let (mut raw100, mut it100) = (0.0f64, 0.0f64);
            for _ in 0..5 {
                let (r, _) = best(1, || raw_loop(&fake, &to, 100, records / 100)).await;
                raw100 = raw100.max(r);
                let (r, n) = best(1, || items(&c, &to, 100)).await;
                assert_eq!(n, records);
                it100 = it100.max(r);
            }
            println!("| raw loop, per_page 100 | {raw100:.0} | 1.00 |");
            println!("| items(), per_page 100 | {it100:.0} | {:.2} |", it100 / raw100);
            drop(fake);
        }
        if run(2) {
            // 2. Read-ahead with 20 ms latency: 100 pages of 100 records.
            let fake = FakeLago::builder()
                .records_per_kind(10_000, 0, 0)
                .latency(Duration::from_millis(20))
                .start()
                .await
                .expect("fake");
            let to = fake.generator().now().to_rfc3339();
            let c = client(&fake, 0);
            println!("\n2. read-ahead, 10,000 records, per_page 100, 20 ms latency");
            println!("| requests in flight | seconds | speed-up |");
            println!("|---:|---:|---:|");
            let mut one = 0.0;
            for ahead in [1usize, 2, 4, 8, 16] {
                let started = Instant::now();
                let n = export(&c, &to, ExportOptions::default().max_per_page(100).read_ahead(ahead)).await;
                assert_eq!(n, 10_000);
                let secs = started.elapsed().as_secs_f64();
                if ahead == 1 {
                    one = secs;
                }
                println!("| {ahead} | {secs:.2} | {:.1}x |", one / secs);
            }
            drop(fake);
        }
        if run(3) {
            // 3. Peak memory: 10,000 vs 1,000,000 records, default read-ahead. A short export may end
            // before its pipeline is full, so 100 records a page (100 slices for 10,000 records) is
            // the fair comparison; 1,000 a page is shown too.
            println!(
                "\n3. peak heap during an export (read_ahead {DEFAULT_READ_AHEAD}, highest of 3 runs; the fake's buffers are counted too)"
            );
            println!("| per_page | records | peak heap above baseline |");
            println!("|---:|---:|---:|");
            for per_page in [100u32, 1000] {
                let mut peaks = Vec::new();
                for n in [10_000u64, 1_000_000] {
                    let fake = FakeLago::builder().records_per_kind(n, 0, 0).start().await.expect("fake");
                    let to = fake.generator().now().to_rfc3339();
                    let c = client(&fake, 0);
                    let options = ExportOptions::default().max_per_page(per_page);
                    // Warm up connection pools and lazily built state before measuring; a peak is a
                    // maximum, so the highest of three runs is kept.
                    export(&c, &to, options.clone()).await;
                    let mut peak = 0;
                    for _ in 0..3 {
                        let baseline = LIVE.load(Ordering::Relaxed);
                        PEAK.store(baseline, Ordering::Relaxed);
                        let got = export(&c, &to, options.clone()).await;
                        assert_eq!(got, n);
                        peak = peak.max(PEAK.load(Ordering::Relaxed).saturating_sub(baseline));
                    }
                    peaks.push(peak as f64);
                    println!("| {per_page} | {n} | {:.1} MiB |", peak as f64 / (1024.0 * 1024.0));
                }
                println!("| {per_page} | ratio 1,000,000 / 10,000 | {:.2} |", peaks[1] / peaks[0]);
            }
            // The densest shapes at 1,000,000 records: every record within one hour (about 280 a
            // second), and seconds of 1,500 to 3,000 records, each read whole.
            for shape in [Shape::DenseHour, Shape::BigSeconds] {
                let n = 1_000_000u64;
                let fake = FakeLago::builder().records_per_kind(n, 0, 0).shape(shape, n).start().await.expect("fake");
                let to = fake.generator().now().to_rfc3339();
                let c = client(&fake, 0);
                let options = ExportOptions::default().max_per_page(1000);
                export(&c, &to, options.clone()).await;
                let baseline = LIVE.load(Ordering::Relaxed);
                PEAK.store(baseline, Ordering::Relaxed);
                assert_eq!(export(&c, &to, options).await, n);
                let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
                println!("| 1000 | {n} {} | {:.1} MiB |", shape.name(), peak as f64 / (1024.0 * 1024.0));
            }
        }
        if run(4) {
            // 4. Under Lago Cloud's limit: the fake allows 50 requests/s; the client keeps its default
            // limiter (45/s, bursts of 3) and default read-ahead. One row per shape of data
            // (`lago_audit_fake::data::Shape`), seed 5. The ideal is one full page a request; the
            // limiter caps the rate at 45 x per_page records/s.
            println!("\n4. under a 50 requests/s limit (fake), default client limiter and read-ahead");
            println!("| data | per_page | records | seconds | records/s | / (45 x per_page) | requests | ideal | / ideal | 429s |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for (per_page, n) in [(1000u32, 200_000u64), (100, 20_000)] {
                for shape in Shape::ALL {
                    let fake = FakeLago::builder()
                        .seed(5)
                        .records_per_kind(n, 0, 0)
                        .shape(shape, n)
                        // Dense hours days apart span more than Lago's 30 days at this size.
                        .retention_days(3650, 3650, 3650)
                        .rate_limit(50)
                        .start()
                        .await
                        .expect("fake");
                    let to = fake.generator().now().to_rfc3339();
                    let c = ClientBuilder::new(fake.api_key())
                        .base_url(fake.base_url())
                        .build()
                        .expect("client");
                    let started = Instant::now();
                    let got = export(&c, &to, ExportOptions::default().max_per_page(per_page)).await;
                    assert_eq!(got, n);
                    let secs = started.elapsed().as_secs_f64();
                    let counts = fake.counts();
                    let rate = n as f64 / secs;
                    let ideal = n.div_ceil(u64::from(per_page));
                    println!(
                        "| {} | {per_page} | {n} | {secs:.1} | {rate:.0} | {:.2} | {} | {ideal} | {:.3} | {} |",
                        shape.name(),
                        rate / (45.0 * f64::from(per_page)),
                        counts.requests,
                        counts.requests as f64 / ideal as f64,
                        counts.rate_limited
                    );
                }
            }
        }
    });
}
