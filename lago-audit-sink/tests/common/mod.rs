//! Helpers shared by the sink's tests: a client for the fake, reading back what a destination
//! holds, and the exactly-once comparison with the fake's ground truth.
#![allow(dead_code)]

use futures::TryStreamExt;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_client::{Client, ClientBuilder, Export, ExportOptions, RetryPolicy};
use lago_audit_fake::data::Kind;
use lago_audit_fake::{FakeLago, FakeLagoBuilder};
use lago_audit_sink::layout::parse_object_name;
use lago_audit_sink::{Destination, Sink, SinkError, SinkOptions, SinkRecord, WriteSummary};
use object_store::ObjectStoreExt;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::Duration;

pub mod proxy;

pub fn client(fake: &FakeLago) -> Client {
    ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .retry_policy(RetryPolicy {
            max_retries: 12,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(4),
            max_wait: Duration::from_secs(2),
            ..RetryPolicy::default()
        })
        .rate_limit(0)
        .build()
        .unwrap()
}

/// Lago at its worst: 5xx, resets, truncated bodies, 429 bursts, inserts while reading, shuffled
/// ties.
pub fn hostile(seed: u64) -> FakeLagoBuilder {
    FakeLago::builder()
        .seed(seed)
        .error_rate(0.05)
        .reset_rate(0.01)
        .truncate_rate(0.01)
        .throttle_rate(0.004)
        .shuffle_ties(true)
}

/// A record type the tests can export from the fake.
pub trait TestRecord: SinkRecord + serde::de::DeserializeOwned + Clone {
    const FAKE: Kind;
    fn export_stream(
        client: &Client,
        to: chrono::DateTime<chrono::Utc>,
        options: ExportOptions,
    ) -> impl futures::Stream<
        Item = Result<lago_audit_client::ExportEvent<Self>, lago_audit_client::Error>,
    > + Send
           + Unpin
           + 'static;
}

macro_rules! test_record {
    ($t:ty, $kind:expr, $method:ident) => {
        impl TestRecord for $t {
            const FAKE: Kind = $kind;
            fn export_stream(
                client: &Client,
                to: chrono::DateTime<chrono::Utc>,
                options: ExportOptions,
            ) -> impl futures::Stream<
                Item = Result<lago_audit_client::ExportEvent<Self>, lago_audit_client::Error>,
            > + Send
                   + Unpin
                   + 'static {
                // The builder borrows the client: keep a clone alive inside the stream.
                let client = Box::leak(Box::new(client.clone()));
                client.$method().to_date(to).export(options)
            }
        }
    };
}
test_record!(ActivityLogObject, Kind::Activity, find_all_activity_logs);
test_record!(ApiLogObject, Kind::Api, find_all_api_logs);
test_record!(SecurityLogObject, Kind::Security, find_all_security_logs);

/// One run: open the destination, export from its checkpoint, write.
pub async fn run<T: TestRecord>(
    fake: &FakeLago,
    dest: &Destination,
    options: SinkOptions,
    per_page: u32,
) -> Result<WriteSummary, SinkError> {
    let mut sink = Sink::<T>::open(dest, options).await?;
    let mut export = ExportOptions::default()
        .max_per_page(per_page)
        .read_ahead(4);
    if let Some(c) = sink.resume_from() {
        export = export.resume_from(c);
    }
    let events = T::export_stream(&client(fake), fake.generator().now(), export);
    sink.write(events).await
}

/// The ground truth as record keys.
pub fn truth<T: TestRecord>(fake: &FakeLago) -> Vec<String> {
    fake.ground_truth(T::FAKE, None, Some(fake.generator().now()))
        .iter()
        .map(|id| {
            let json = fake.record_json(T::FAKE, id).unwrap();
            serde_json::from_value::<T>(json).unwrap().record_key()
        })
        .collect()
}

/// Every object under `{prefix}/{kind}/`: name → decompressed bytes. Panics on anything that is
/// not a whole gzip NDJSON object (a partial object) or that has an unexpected name.
pub async fn objects<T: TestRecord>(dest: &Destination) -> BTreeMap<String, Vec<u8>> {
    let kind = format!("{}/", T::KIND.dir());
    let prefix = if dest.prefix().as_ref().is_empty() {
        kind.clone()
    } else {
        format!("{}/{kind}", dest.prefix())
    };
    let listed: Vec<_> = dest
        .store()
        .list(Some(&object_store::path::Path::from(
            prefix.trim_end_matches('/'),
        )))
        .try_collect()
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for meta in listed {
        let rel = meta
            .location
            .as_ref()
            .strip_prefix(&prefix)
            .unwrap()
            .to_owned();
        // What Hive, Spark and Athena skip: the writer's own folder, hidden staging files.
        if rel.starts_with("_lago-audit/") || rel.split('/').any(|p| p.starts_with(['.', '_'])) {
            continue;
        }
        assert!(parse_object_name(&rel).is_some(), "unexpected object {rel}");
        let body = dest
            .store()
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{rel} is not a whole gzip object: {e}"));
        assert!(
            raw.is_empty() || raw.ends_with(b"\n"),
            "{rel}: last line cut"
        );
        out.insert(rel, raw);
    }
    out
}

/// The records of every object, as keys, checking each object's name matches its records.
pub async fn stored_keys<T: TestRecord>(dest: &Destination) -> Vec<String> {
    let mut keys = Vec::new();
    for (name, raw) in objects::<T>(dest).await {
        let (first, last) = parse_object_name(&name).unwrap();
        let mut seconds = Vec::new();
        for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let r: T = serde_json::from_slice(line).unwrap();
            seconds.push(r.logged_at().timestamp());
            keys.push(r.record_key());
        }
        assert_eq!(seconds.first(), Some(&first), "{name}");
        assert_eq!(seconds.last(), Some(&last), "{name}");
        assert!(
            seconds.windows(2).all(|w| w[0] <= w[1]),
            "{name}: not in time order"
        );
    }
    keys
}

pub use lago_audit_fake::check::assert_exactly_once;

/// Runs until a run completes, killing the first `kills` runs at random points (the future is
/// dropped: mid-export, mid-upload, between an object and its checkpoint). A kill point is a
/// number of requests to Lago, 1 to `max_requests`, counted from the run's start: the runs are
/// cut by their progress, not by the clock, so a faster build or machine kills them as often.
/// Returns the number of runs killed.
pub async fn run_with_kills<T: TestRecord>(
    fake: &FakeLago,
    dest: &Destination,
    options: impl Fn() -> SinkOptions,
    per_page: u32,
    kills: usize,
    max_requests: u64,
    seed: u64,
) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut killed = 0;
    for attempt in 0.. {
        let fut = run::<T>(fake, dest, options(), per_page);
        if attempt < kills {
            let at = fake.counts().requests + rng.u64(1..=max_requests.max(1));
            // Dropped the moment the fake has served that many requests, wherever it is then.
            let progress = async {
                while fake.counts().requests < at {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            };
            tokio::pin!(fut);
            let outcome = tokio::select! {
                biased;
                () = progress => None,
                r = &mut fut => Some(r),
            };
            match outcome {
                None => {
                    killed += 1;
                    // A dropped future is not a dead process: a local-directory write already
                    // handed to a blocking thread still completes. Let it, as a killed process's
                    // writes have ended before the next process starts.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Some(Ok(_)) => return killed,
                Some(Err(e)) if e.is_transient() => continue,
                Some(Err(e)) => panic!("run {attempt}: {e}"),
            }
        }
        match fut.await {
            Ok(_) => return killed,
            Err(e) if e.is_transient() && attempt < kills + 20 => {
                eprintln!("run {attempt}: {e} (retrying, as a shipper would)");
            }
            Err(e) => panic!("run {attempt}: {e}"),
        }
    }
    killed
}

/// The child side of a SIGKILL test (a `#[tokio::test]` named `sigkill_child` calls it): when
/// started by [`sigkill_runs`], exports `T` from the fake into the destination named in its
/// environment (the store's own variables, `AWS_*`, apply) until done or killed.
pub async fn sigkill_child_main<T: TestRecord>(options: SinkOptions) {
    let (Ok(url), Ok(dest)) = (
        std::env::var("LAGO_SINK_CHILD_FAKE"),
        std::env::var("LAGO_SINK_CHILD_DEST"),
    ) else {
        return; // Only meaningful when started by a parent test.
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = std::env::var("LAGO_SINK_CHILD_KEY").unwrap();
    let to: chrono::DateTime<chrono::Utc> = std::env::var("LAGO_SINK_CHILD_TO")
        .unwrap()
        .parse()
        .unwrap();
    let client = ClientBuilder::new(key)
        .base_url(url)
        .rate_limit(0)
        .build()
        .unwrap();
    let dest = Destination::parse(&dest).unwrap();
    // A parent may shorten the lease (a suspended-writer test).
    let options = match std::env::var("LAGO_SINK_CHILD_LEASE_MS") {
        Ok(ms) => options.lease(Duration::from_millis(ms.parse().unwrap())),
        Err(_) => options,
    };
    let mut sink = Sink::<T>::open(&dest, options).await.unwrap();
    let mut export = ExportOptions::default().max_per_page(100).read_ahead(2);
    if let Some(c) = sink.resume_from() {
        export = export.resume_from(c);
    }
    sink.write(T::export_stream(&client, to, export))
        .await
        .unwrap();
}

/// This test binary's `sigkill_child` test as a child process (see [`sigkill_child_main`]),
/// exporting from `fake` into `url`, with `env` added; run through `wrapper` (a program and its
/// arguments, e.g. `strace …`) when one is given.
pub fn child_command(
    wrapper: &[&std::ffi::OsStr],
    fake: &FakeLago,
    url: &str,
    env: &[(&str, String)],
) -> std::process::Command {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = std::process::Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => std::process::Command::new(exe),
    };
    cmd.args([
        "--exact",
        "sigkill_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("LAGO_SINK_CHILD_FAKE", fake.base_url())
    .env("LAGO_SINK_CHILD_KEY", fake.api_key())
    .env("LAGO_SINK_CHILD_DEST", url)
    .env("LAGO_SINK_CHILD_TO", fake.generator().now().to_rfc3339())
    .envs(env.iter().map(|(k, v)| (k, v)))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cmd
}

/// Starts this test binary's `sigkill_child` test as a child process `runs` times, SIGKILLs each
/// once the fake has served it a random number of requests (1 to `max_requests`: by progress,
/// not by the clock), then runs it to the end. Returns how many were killed mid-way.
pub fn sigkill_runs(
    fake: &FakeLago,
    url: &str,
    env: &[(&str, String)],
    runs: usize,
    max_requests: u64,
    seed: u64,
) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let spawn = || child_command(&[], fake, url, env).spawn().unwrap();
    let mut killed = 0;
    for _ in 0..runs {
        let at = fake.counts().requests + rng.u64(1..=max_requests.max(1));
        let mut child = spawn();
        while fake.counts().requests < at && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    let status = spawn().wait().unwrap();
    assert!(status.success(), "the last run failed: {status}");
    killed
}

/// Writers with different batch limits started one after another on one prefix while Lago
/// keeps logging, the first one killed mid-way: the prefix never holds a record twice (every
/// object a reader would read is counted, not only those the chain names), a refused writer is
/// refused as concurrent, and a last run completes the trail.
pub async fn overlapping_writers(dest: &Destination, seed: u64) {
    use lago_audit_sink::BatchLimits;
    let fake = FakeLago::builder()
        .seed(seed)
        .records_per_kind(5_000, 0, 0)
        .latency(Duration::from_millis(3))
        .insert_per_request(1)
        .start()
        .await
        .unwrap();
    let limits = [300u64, 700, 1000, 450];
    let runs = limits.iter().enumerate().map(|(i, n)| {
        let (fake, dest) = (&fake, dest);
        async move {
            tokio::time::sleep(Duration::from_millis(150 * i as u64)).await;
            let options = SinkOptions::default().limits(BatchLimits::default().max_records(*n));
            let run = run::<ActivityLogObject>(fake, dest, options, 200);
            if i == 0 {
                // Killed mid-way: its sink is dropped, so the next writer may take over.
                tokio::time::timeout(Duration::from_millis(250), run)
                    .await
                    .ok()
            } else {
                Some(run.await)
            }
        }
    });
    let results = futures::future::join_all(runs).await;
    for r in results.iter().flatten() {
        if let Err(e) = r {
            assert!(matches!(e, SinkError::Concurrent { .. }), "{e}");
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let options = SinkOptions::default().limits(BatchLimits::default().max_records(850));
    run::<ActivityLogObject>(&fake, dest, options, 1000)
        .await
        .unwrap();
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(dest).await,
        &truth::<ActivityLogObject>(&fake),
        "overlapping writers",
    );
}

/// `verify`'s report on the activity logs of `dest` (which must hold an archive).
pub async fn verified(dest: &Destination) -> lago_audit_sink::verify::Report {
    lago_audit_sink::verify::verify(
        dest,
        lago_audit_sink::LogKind::Activity,
        &Default::default(),
    )
    .await
    .unwrap()
    .expect("an archive")
}

/// The archive of activity logs at `dest` holds the fake's every record once and verifies.
pub async fn assert_whole(dest: &Destination, fake: &FakeLago, what: &str) {
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(dest).await,
        &truth::<ActivityLogObject>(fake),
        what,
    );
    let report = verified(dest).await;
    assert!(report.is_valid(), "{what}: {:?}", report.problems);
}

// Real stores started by `.ci/run`.

/// The URL of a server `.ci/run` started (`LAGO_SINK_TEST_S3`, `LAGO_SINK_TEST_AZURITE`), or
/// `None` (said on stderr) outside CI.
pub fn server(var: &str) -> Option<String> {
    // The test's own HTTP clients (creating buckets) need rustls' provider, as the sink's do.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        // CI must run them: `.ci/run` starts the servers and sets the variables.
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI=true: .ci/run should have started the server")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set (`.ci/run` starts the server and sets it)");
            None
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

pub async fn create_bucket(s3: &str, bucket: &str) {
    let r = reqwest::Client::new()
        .put(format!("{s3}/{bucket}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
}

pub fn s3_destination(endpoint: &str, bucket: &str) -> Destination {
    Destination::parse_with_options(
        &format!("s3://{bucket}/archive/lago"),
        [
            ("aws_endpoint", endpoint),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
            ("aws_region", "us-east-1"),
            ("aws_virtual_hosted_style_request", "false"),
        ],
    )
    .unwrap()
}

/// The vendored class schemas of one OCSF version.
pub fn schemas_of(version: &str) -> HashMap<u64, jsonschema::Validator> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/ocsf-{version}"));
    [
        (3001, "account_change"),
        (3002, "authentication"),
        (3004, "entity_management"),
        (3005, "user_access"),
        (4002, "http_activity"),
    ]
    .into_iter()
    .map(|(uid, name)| {
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        (uid, validator)
    })
    .collect()
}
