//! Exactly-once delivery into real object stores on loopback, started by `.ci/run`: moto's S3
//! server (`LAGO_SINK_TEST_S3`) and Azurite (`LAGO_SINK_TEST_AZURITE`), each behind a fault
//! proxy, with Lago's faults at the same time and runs killed at random points. Without the
//! variables the tests say so and pass (plain `cargo test`); CI sets them.

mod common;

use common::proxy::{FaultProxy, StoreFaults};
use common::*;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_sink::{BatchLimits, Destination, SinkError, SinkOptions};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn small() -> SinkOptions {
    SinkOptions::default()
        .limits(BatchLimits::default().max_records(400).max_bytes(150_000))
        .put_attempts(8)
}

// S3 (moto): `server`, `create_bucket`, `s3_destination` are in `common`.

// Azure Blob (Azurite).

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development key.
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a Shared Key-signed request (object_store cannot create one).
async fn create_container(azurite: &str, container: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n\
         /{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &b64.decode(AZURITE_KEY).unwrap());
    let signature = b64.encode(ring::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let r = reqwest::Client::new()
        .put(format!(
            "{azurite}/{AZURITE_ACCOUNT}/{container}?restype=container"
        ))
        .header("x-ms-date", date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header(
            "authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "create container: {status} {}",
        r.text().await.unwrap_or_default()
    );
}

fn azure_destination(endpoint: &str, container: &str) -> Destination {
    Destination::parse_with_options(
        &format!("az://{container}/archive/lago"),
        [
            ("azure_storage_account_name", AZURITE_ACCOUNT.to_owned()),
            ("azure_storage_account_key", AZURITE_KEY.to_owned()),
            (
                "azure_storage_endpoint",
                format!("{endpoint}/{AZURITE_ACCOUNT}"),
            ),
            ("azure_allow_http", "true".to_owned()),
        ],
    )
    .unwrap()
}

/// Lago's faults and the store's at once, each kind of log exported with runs killed at random
/// points, then checked through a direct (fault-free) connection: every record once, every
/// object whole.
async fn exactly_once_under_faults(
    proxy: &FaultProxy,
    through_proxy: &Destination,
    direct: &Destination,
    seed: u64,
) {
    let fake = hostile(seed)
        .records_per_kind(5_000, 3_000, 1_000)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let k1 =
        run_with_kills::<ActivityLogObject>(&fake, through_proxy, small, 250, 6, 12, seed).await;
    let k2 = run_with_kills::<ApiLogObject>(&fake, through_proxy, small, 250, 6, 8, seed + 1).await;
    let k3 =
        run_with_kills::<SecurityLogObject>(&fake, through_proxy, small, 100, 3, 6, seed + 2).await;
    eprintln!("{} runs killed; proxy: {}", k1 + k2 + k3, proxy.summary());
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(direct).await,
        &truth::<ActivityLogObject>(&fake),
        "activity logs",
    );
    assert_exactly_once(
        &stored_keys::<ApiLogObject>(direct).await,
        &truth::<ApiLogObject>(&fake),
        "API logs",
    );
    assert_exactly_once(
        &stored_keys::<SecurityLogObject>(direct).await,
        &truth::<SecurityLogObject>(&fake),
        "security logs",
    );
    let c = proxy.counts();
    for (name, n) in [
        ("503 SlowDown", &c.slow_downs),
        ("cut mid-upload", &c.resets),
        ("answer lost", &c.lost_answers),
    ] {
        assert!(n.load(Ordering::Relaxed) > 0, "no upload met `{name}`");
    }
    assert!(fake.counts().server_errors > 0);
}

/// Two exporters at once on one prefix: one is refused; the prefix holds every record once
/// after a last run.
async fn second_exporter_is_refused(dest: &Destination, seed: u64) {
    let fake = lago_audit_fake::FakeLago::builder()
        .seed(seed)
        .records_per_kind(3_000, 0, 0)
        .latency(Duration::from_millis(3))
        .start()
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        run::<ActivityLogObject>(&fake, dest, small(), 200),
        run::<ActivityLogObject>(&fake, dest, small(), 200),
    );
    let refused: Vec<&SinkError> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert!(!refused.is_empty(), "both exporters ran to the end");
    for e in refused {
        assert!(matches!(e, SinkError::Concurrent { .. }), "{e}");
    }
    run::<ActivityLogObject>(&fake, dest, small(), 1000)
        .await
        .unwrap();
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(dest).await,
        &truth::<ActivityLogObject>(&fake),
        "after a concurrent exporter",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_exactly_once_under_lago_and_store_faults_with_kills() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-sink");
    create_bucket(&s3, &bucket).await;
    let proxy = FaultProxy::start(&s3, StoreFaults::hostile(), 31).await;
    exactly_once_under_faults(
        &proxy,
        &s3_destination(&proxy.url, &bucket),
        &s3_destination(&s3, &bucket),
        31,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_a_second_concurrent_exporter() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-sink");
    create_bucket(&s3, &bucket).await;
    second_exporter_is_refused(&s3_destination(&s3, &bucket), 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_exactly_once_under_lago_and_store_faults_with_kills() {
    let Some(azurite) = server("LAGO_SINK_TEST_AZURITE") else {
        return;
    };
    let container = unique("lago-sink");
    create_container(&azurite, &container).await;
    let proxy = FaultProxy::start(&azurite, StoreFaults::hostile(), 41).await;
    exactly_once_under_faults(
        &proxy,
        &azure_destination(&proxy.url, &container),
        &azure_destination(&azurite, &container),
        41,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_refuses_a_second_concurrent_exporter() {
    let Some(azurite) = server("LAGO_SINK_TEST_AZURITE") else {
        return;
    };
    let container = unique("lago-sink");
    create_container(&azurite, &container).await;
    second_exporter_is_refused(&azure_destination(&azurite, &container), 42).await;
}

/// The child half of the SIGKILL test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child() {
    sigkill_child_main::<ActivityLogObject>(small()).await;
}

/// A child process exporting into S3 through the fault proxy, configured the way a user
/// configures it (`AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP` and keys in its environment), is SIGKILLed
/// at random points and run again; every record is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_a_sigkilled_process_resumes_exactly_once() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-sink");
    create_bucket(&s3, &bucket).await;
    let proxy = FaultProxy::start(&s3, StoreFaults::hostile(), 51).await;
    let fake = hostile(51)
        .records_per_kind(6_000, 0, 0)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let url = format!("s3://{bucket}/archive/lago");
    let env = [
        ("AWS_ENDPOINT_URL", proxy.url.clone()),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ];
    let (fake_ref, url_ref) = (&fake, url.as_str());
    // The children block this thread while they run; the proxy and the fake serve from the
    // runtime's other worker.
    let killed = tokio::task::block_in_place(|| sigkill_runs(fake_ref, url_ref, &env, 5, 30, 52));
    eprintln!("{killed} SIGKILLs; proxy: {}", proxy.summary());
    assert!(killed >= 2, "only {killed} children were killed mid-way");
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&s3_destination(&s3, &bucket)).await,
        &truth::<ActivityLogObject>(&fake),
        &format!("S3, {killed} SIGKILLs"),
    );
}

// The archive's life: overlapping writers, stores that lie, write-once storage.

/// Creates an S3 bucket with Object Lock on and a default retention in COMPLIANCE mode: every
/// upload must then carry `Content-MD5` (or a checksum header), and nothing can be overwritten.
async fn create_locked_bucket(s3: &str, bucket: &str) {
    use base64::Engine;
    use md5::Digest;
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{s3}/{bucket}"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let config = "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
        <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
        <Mode>COMPLIANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(config));
    let r = http
        .put(format!("{s3}/{bucket}?object-lock"))
        .header("content-md5", md5)
        .body(config)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "object lock: {status} {}",
        r.text().await.unwrap_or_default()
    );
    // The rule is enforced: an upload without Content-MD5 is refused.
    let r = http
        .put(format!("{s3}/{bucket}/probe-without-md5"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "moto no longer enforces Object Lock uploads"
    );
}

/// S3 with Object Lock in compliance mode and a default retention: a full run with kills, and
/// nothing is refused (every upload carries Content-MD5; nothing is overwritten or deleted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_object_lock_compliance_bucket_takes_the_archive_through_kills() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-locked");
    create_locked_bucket(&s3, &bucket).await;
    let fake = hostile(71)
        .records_per_kind(3_000, 0, 0)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let dest = s3_destination(&s3, &bucket);
    let killed = run_with_kills::<ActivityLogObject>(&fake, &dest, small, 500, 4, 4, 71).await;
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        &format!("S3 Object Lock, {killed} kills"),
    );
}

/// Write-once containers the way Azure immutability policies (409) and GCS retention locks
/// (403) refuse an upload over an existing object: a full run with kills, nothing refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immutable_stores_refuse_overwrites_and_the_archive_needs_none() {
    let (Some(s3), Some(azurite)) = (
        server("LAGO_SINK_TEST_S3"),
        server("LAGO_SINK_TEST_AZURITE"),
    ) else {
        return;
    };
    let fake = hostile(72)
        .records_per_kind(2_000, 0, 0)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let container = unique("lago-immutable");
    create_container(&azurite, &container).await;
    let bucket = unique("lago-retention");
    create_bucket(&s3, &bucket).await;
    let immutable = |status| StoreFaults {
        immutable: Some(status),
        ..StoreFaults::default()
    };
    let azure = FaultProxy::start(&azurite, immutable(409), 72).await;
    let gcs_like = FaultProxy::start(&s3, immutable(403), 73).await;
    for (name, proxy, via, direct) in [
        (
            "Azure immutability (409)",
            &azure,
            azure_destination(&azure.url, &container),
            azure_destination(&azurite, &container),
        ),
        (
            "GCS retention lock (403)",
            &gcs_like,
            s3_destination(&gcs_like.url, &bucket),
            s3_destination(&s3, &bucket),
        ),
    ] {
        let killed = run_with_kills::<ActivityLogObject>(&fake, &via, small, 500, 3, 3, 72).await;
        assert_exactly_once(
            &stored_keys::<ActivityLogObject>(&direct).await,
            &truth::<ActivityLogObject>(&fake),
            &format!("{name}, {killed} kills"),
        );
        // The store check's stale update is the only upload the policy refused: no overwrite
        // was ever attempted on an object of the archive.
        let refused = proxy.counts().immutable_refusals.load(Ordering::Relaxed);
        eprintln!("{name}: {refused} uploads over existing objects refused");
    }
}

/// A store that ignores `If-None-Match` and `If-Match` (they are stripped on the way) is refused
/// when the sink opens, before anything is read or written; `trust_store` opens it anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_preconditions_is_refused_at_open() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-lying");
    create_bucket(&s3, &bucket).await;
    let lying = StoreFaults {
        strip_preconditions: true,
        ..StoreFaults::default()
    };
    let proxy = FaultProxy::start(&s3, lying, 74).await;
    let dest = s3_destination(&proxy.url, &bucket);
    let err = lago_audit_sink::Sink::<ActivityLogObject>::open(&dest, small())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("If-None-Match"), "{err}");
    // Nothing of the archive was written: only the check's own object.
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        s3_destination(&s3, &bucket).store().list(None),
    )
    .await
    .unwrap();
    assert!(
        listed
            .iter()
            .all(|m| m.location.as_ref().ends_with("_lago-audit/probe")),
        "{listed:?}"
    );
    lago_audit_sink::Sink::<ActivityLogObject>::open(&dest, small().trust_store(true))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_overlapping_writers_never_store_a_second_twice() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let bucket = unique("lago-overlap");
    create_bucket(&s3, &bucket).await;
    overlapping_writers(&s3_destination(&s3, &bucket), 75).await;
}

/// Credentials that expire in the middle of a run (an STS session, a SAS token): the run stops
/// with an error that says so (refused credentials, not worth retrying as is) and leaves the
/// archive whole; once they are refreshed, the next run continues from where it stopped, every
/// record once, and the archive verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_that_expire_mid_run_stop_it_and_a_refreshed_run_loses_nothing() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    let fake = hostile(74)
        .records_per_kind(4_000, 0, 0)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let bucket = unique("lago-expired");
    create_bucket(&s3, &bucket).await;
    // The session expires at the third object's upload: its commit is in the chain, the object
    // is not stored.
    let expiring = StoreFaults {
        expire_at_object: Some(3),
        ..StoreFaults::default()
    };
    let proxy = FaultProxy::start(&s3, expiring, 74).await;
    let via = s3_destination(&proxy.url, &bucket);
    let direct = s3_destination(&s3, &bucket);
    let options = || {
        SinkOptions::default()
            .limits(BatchLimits::default().max_records(200))
            .put_attempts(3)
    };
    let err = run::<ActivityLogObject>(&fake, &via, options(), 200)
        .await
        .expect_err("the run outlived its credentials");
    assert!(err.refused_credentials(), "{err}");
    assert!(!err.is_transient(), "{err}");
    let stored = stored_keys::<ActivityLogObject>(&direct).await;
    assert!(!stored.is_empty(), "nothing was stored before the expiry");
    // Nothing half-written: the newest commit's object, whose upload was refused, is missing,
    // and verify says why.
    let partial = verified(&direct).await;
    assert_eq!(partial.problems.len(), 1, "{:?}", partial.problems);
    assert_eq!(partial.problems[0].code, "object-missing");
    assert!(
        partial.problems[0].detail.contains("newest record"),
        "{}",
        partial.problems[0].detail
    );

    // Refreshed: the same prefix continues.
    proxy.set_faults(StoreFaults::default());
    run::<ActivityLogObject>(&fake, &via, options(), 200)
        .await
        .unwrap();
    assert_whole(
        &direct,
        &fake,
        "credentials expired mid-run, then refreshed",
    )
    .await;
}
