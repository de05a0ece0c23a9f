//! `verify` on archives written through kills and restarts, in a local directory and in S3
//! (moto, when `.ci/run` started it): untouched archives verify as valid, signed and unsigned;
//! each kind of tampering is named with the file it touched.

mod common;

use common::*;
use lago_audit_client::types::ActivityLogObject;
use lago_audit_fake::FakeLago;
use lago_audit_sink::digest::{self, Digest, SigningKey};
use lago_audit_sink::verify::{verify, Report, VerifyOptions};
use lago_audit_sink::{BatchLimits, Destination, LogKind, SinkOptions};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use std::io::{Read, Write};
use std::sync::Arc;

fn key() -> Arc<SigningKey> {
    Arc::new(SigningKey::from_pkcs8(SigningKey::generate_pem().unwrap().as_bytes()).unwrap())
}

/// An archive of 1,500 activity logs written through two kills, then two more runs (each run
/// that ends writes a digest).
async fn archive(dest: &Destination, signing: Option<Arc<SigningKey>>, seed: u64) -> FakeLago {
    let fake = FakeLago::builder()
        .seed(seed)
        .records_per_kind(1_500, 0, 0)
        // The records span midnight: two dt= partitions.
        .now("2025-04-02T00:04:00Z".parse().unwrap())
        .latency(std::time::Duration::from_millis(1))
        .start()
        .await
        .unwrap();
    let options = || {
        SinkOptions::default()
            .limits(BatchLimits::default().max_records(200))
            .signing_key(signing.clone())
    };
    run_with_kills::<ActivityLogObject>(&fake, dest, options, 200, 2, 5, seed).await;
    for _ in 0..2 {
        run::<ActivityLogObject>(&fake, dest, options(), 1000)
            .await
            .unwrap();
    }
    fake
}

async fn check(dest: &Destination, options: &VerifyOptions) -> Report {
    verify(dest, LogKind::Activity, options)
        .await
        .unwrap()
        .expect("an archive")
}

fn path(dest: &Destination, rel: &str) -> Path {
    let p = dest.prefix().as_ref();
    Path::from(if p.is_empty() {
        format!("activity_logs/{rel}")
    } else {
        format!("{p}/activity_logs/{rel}")
    })
}

async fn get(dest: &Destination, rel: &str) -> Vec<u8> {
    let got = dest.store().get(&path(dest, rel)).await.unwrap();
    got.bytes().await.unwrap().to_vec()
}

async fn put(dest: &Destination, rel: &str, body: Vec<u8>) {
    dest.store()
        .put(&path(dest, rel), PutPayload::from(body))
        .await
        .unwrap();
}

async fn delete(dest: &Destination, rel: &str) {
    dest.store().delete(&path(dest, rel)).await.unwrap();
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The data objects of the archive, in name order.
async fn objects(dest: &Destination) -> Vec<String> {
    stored_names(dest).await
}

async fn stored_names(dest: &Destination) -> Vec<String> {
    common::objects::<ActivityLogObject>(dest)
        .await
        .into_keys()
        .collect()
}

fn codes(report: &Report) -> Vec<(&'static str, String)> {
    report
        .problems
        .iter()
        .map(|p| (p.code, p.path.clone()))
        .collect()
}

fn digest_name(seq: u64) -> String {
    format!("_lago-audit/digests/{seq:020}.json")
}

/// Empty destinations, each a new folder under `root`.
fn fresh_dirs(root: &std::path::Path) -> impl Fn() -> std::future::Ready<Destination> + '_ {
    let n = std::sync::atomic::AtomicU64::new(0);
    move || {
        let dir = root.join(
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        );
        std::future::ready(Destination::parse(&format!("file://{}", dir.display())).unwrap())
    }
}

/// Empty destinations, each a new bucket of the S3 server at `s3`.
fn fresh_buckets<'a>(
    s3: &'a str,
    name: &'a str,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Destination> + 'a>> + 'a {
    move || {
        Box::pin(async move {
            let bucket = unique(name);
            create_bucket(s3, &bucket).await;
            s3_destination(s3, &bucket)
        })
    }
}

/// Every case on one kind of store: `fresh()` gives an empty destination.
async fn every_case<F, Fut>(fresh: F, seed: u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Destination>,
{
    // Unsigned, untouched: valid, with the warning; invalid when a signature is required.
    let dest = fresh().await;
    let fake = archive(&dest, None, seed).await;
    let report = check(&dest, &VerifyOptions::default()).await;
    assert!(report.is_valid(), "{:?}", report.problems);
    assert!(!report.signed);
    assert!(report.digests >= 2, "{} digests", report.digests);
    assert_eq!(
        report.records,
        truth::<ActivityLogObject>(&fake).len() as u64
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("unsigned")),
        "{:?}",
        report.warnings
    );
    let strict = VerifyOptions {
        require_signature: true,
        ..VerifyOptions::default()
    };
    assert_eq!(codes(&check(&dest, &strict).await)[0].0, "unsigned");

    // Signed, untouched: valid with the pinned key.
    let signer = key();
    let pinned = VerifyOptions {
        public_key: Some(signer.public_key().to_vec()),
        require_signature: true,
        ..VerifyOptions::default()
    };
    let dest = fresh().await;
    archive(&dest, Some(signer.clone()), seed + 1).await;
    let report = check(&dest, &pinned).await;
    assert!(report.is_valid(), "{:?}", report.problems);
    assert!(report.signed && report.objects_valid == report.objects);
    let names = objects(&dest).await;
    assert!(names.len() >= 6, "{names:?}");

    // One byte changed in one object's content (recompressed, so the gzip is whole).
    let mut raw = gunzip(&get(&dest, &names[1]).await);
    let at = raw.iter().position(|b| *b == b'"').unwrap() + 1;
    raw[at] ^= 0x01;
    put(&dest, &names[1], gzip(&raw)).await;
    assert_eq!(
        codes(&check(&dest, &pinned).await),
        [("object-hash", names[1].clone())]
    );

    // An object deleted.
    delete(&dest, &names[2]).await;
    let report = check(&dest, &pinned).await;
    assert!(
        codes(&report).contains(&("object-missing", names[2].clone())),
        "{:?}",
        report.problems
    );

    // An object added: a copy of another's records under a name of its own.
    let copy = names[3].replace(".ndjson.gz", "");
    let (day, span) = copy.split_once('/').unwrap();
    let (first, _) = span.split_once('_').unwrap();
    let extra = format!("{day}/{first}_{first}.ndjson.gz");
    assert!(!names.contains(&extra));
    put(&dest, &extra, get(&dest, &names[3]).await).await;
    let report = check(&dest, &pinned).await;
    assert!(
        codes(&report).contains(&("object-extra", extra.clone())),
        "{:?}",
        report.problems
    );

    // A digest deleted: the span of chain records it covered is named.
    let dest = fresh().await;
    archive(&dest, Some(signer.clone()), seed + 2).await;
    delete(&dest, &digest_name(2)).await;
    let report = check(&dest, &pinned).await;
    let missing = report
        .problems
        .iter()
        .find(|p| p.code == "digest-missing")
        .unwrap();
    assert_eq!(missing.path, digest_name(2));
    assert!(
        missing.detail.contains("chain records"),
        "{}",
        missing.detail
    );

    // A digest re-signed with another key: refused with the pinned key, and without a pin the
    // key changes within the chain.
    let dest = fresh().await;
    archive(&dest, Some(signer.clone()), seed + 3).await;
    let d = Digest::parse(&get(&dest, &digest_name(2)).await).unwrap();
    let forged = digest::encode(d.payload.clone(), Some(&key())).unwrap();
    delete(&dest, &digest_name(2)).await;
    put(&dest, &digest_name(2), forged.to_vec()).await;
    let report = check(&dest, &pinned).await;
    assert!(
        codes(&report).contains(&("digest-signature", digest_name(2))),
        "{:?}",
        report.problems
    );
    let report = check(&dest, &VerifyOptions::default()).await;
    assert!(
        codes(&report).contains(&("digest-signature", digest_name(2))),
        "{:?}",
        report.problems
    );
    assert!(
        codes(&report).contains(&("digest-link", digest_name(3))),
        "{:?}",
        report.problems
    );

    // A record moved to another dt= partition.
    let dest = fresh().await;
    archive(&dest, Some(signer.clone()), seed + 4).await;
    let names = objects(&dest).await;
    let (a, b) = (names.first().unwrap(), names.last().unwrap());
    assert_ne!(a[..13], b[..13], "the records span two days: {names:?}");
    let mut from = gunzip(&get(&dest, a).await);
    let last = from[..from.len() - 1]
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(0, |i| i + 1);
    let moved = from.split_off(last);
    let mut to = gunzip(&get(&dest, b).await);
    to.extend_from_slice(&moved);
    put(&dest, a, gzip(&from)).await;
    put(&dest, b, gzip(&to)).await;
    let report = check(&dest, &pinned).await;
    assert!(
        codes(&report).contains(&("object-partition", b.clone())),
        "{:?}",
        report.problems
    );
    assert!(
        codes(&report).contains(&("object-count", a.clone())),
        "{:?}",
        report.problems
    );

    // The newest digests dropped, with the head pinned.
    let dest = fresh().await;
    let fake = archive(&dest, Some(signer.clone()), seed + 5).await;
    let head = check(&dest, &pinned).await.head.unwrap();
    let newest = check(&dest, &pinned).await.digests;
    let options = || SinkOptions::default().signing_key(Some(signer.clone()));
    run::<ActivityLogObject>(&fake, &dest, options(), 1000)
        .await
        .unwrap();
    let pinned_newest = VerifyOptions {
        expect_head: Some(check(&dest, &pinned).await.head.unwrap()),
        ..pinned.clone()
    };
    assert!(check(&dest, &pinned_newest).await.is_valid());
    delete(&dest, &digest_name(newest + 1)).await;
    let report = check(&dest, &pinned_newest).await;
    assert_eq!(report.head.as_deref(), Some(head.as_str()));
    assert!(
        codes(&report).iter().any(|(c, _)| *c == "head-mismatch"),
        "{:?}",
        report.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_tampering_in_a_directory() {
    let root = tempfile::tempdir().unwrap();
    every_case(fresh_dirs(root.path()), 81).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_each_tampering_in_s3() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    every_case(fresh_buckets(&s3, "lago-verify"), 91).await;
}

/// An exactly-once export of `window` from the fake, as `verify --against-lago` reads it; the
/// export's progress counts Lago's stored duplicates.
fn lago_side(
    fake: &FakeLago,
    window: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
    progress: lago_audit_client::ExportProgress,
) -> impl futures::Stream<
    Item = Result<lago_audit_client::ExportEvent<ActivityLogObject>, lago_audit_client::Error>,
> {
    use lago_audit_client::Export;
    let client = Box::leak(Box::new(client(fake)));
    client
        .find_all_activity_logs()
        .from_date(window.0)
        .to_date(window.1 - chrono::Duration::seconds(1))
        .export(
            lago_audit_client::ExportOptions::default()
                .max_per_page(500)
                .progress(progress),
        )
}

/// `verify` and then `against_lago` over the whole archive (the fake's clock is the present).
async fn check_against_lago(
    dest: &Destination,
    fake: &FakeLago,
) -> (Report, lago_audit_sink::verify::LagoDiff) {
    let mut report = check(dest, &VerifyOptions::default()).await;
    let window = lago_audit_sink::verify::lago_window(
        &report,
        LogKind::Activity,
        fake.generator().now(),
        std::time::Duration::ZERO,
    )
    .expect("a span inside the retention window");
    let progress = lago_audit_client::ExportProgress::default();
    let mut diff = lago_audit_sink::verify::against_lago(
        dest,
        LogKind::Activity,
        &mut report,
        window,
        lago_side(fake, window, progress.clone()),
        4,
    )
    .await
    .unwrap();
    diff.lago_duplicates = progress.duplicates();
    (report, diff)
}

/// A fake holding each log twice now and then (fact 17), 1,500 activity logs over two days.
async fn fake_with_duplicates(seed: u64) -> FakeLago {
    FakeLago::builder()
        .seed(seed)
        .records_per_kind(1_500, 0, 0)
        .now("2025-04-02T00:04:00Z".parse().unwrap())
        .duplicate_rate(0.05)
        .latency(std::time::Duration::from_millis(1))
        .start()
        .await
        .unwrap()
}

fn limits() -> SinkOptions {
    SinkOptions::default().limits(BatchLimits::default().max_records(200))
}

async fn against_lago_cases<F, Fut>(fresh: F, seed: u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Destination>,
{
    // Untouched, written through kills, with Lago's stored duplicates and a record that Lago
    // made readable only after the archive had read its second: no problem; the late arrival
    // and the duplicates are explained.
    let dest = fresh().await;
    let fake = fake_with_duplicates(seed).await;
    run_with_kills::<ActivityLogObject>(&fake, &dest, limits, 200, 2, 5, seed).await;
    let names = objects(&dest).await;
    let (first, _) = lago_audit_sink::layout::parse_object_name(&names[2]).unwrap();
    let late_at = chrono::DateTime::from_timestamp(first, 0).unwrap();
    let late = fake.insert(
        lago_audit_fake::data::Kind::Activity,
        late_at,
        std::time::Duration::ZERO,
    );
    let (report, diff) = check_against_lago(&dest, &fake).await;
    assert!(report.is_valid(), "{:?}", report.problems);
    assert_eq!(
        diff.late.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        [late.to_string()]
    );
    assert!(diff.lago_duplicates > 0, "the fake stored no duplicate");
    assert!(diff.matched > 1_000, "{diff:?}");
    assert_eq!(diff.matched, diff.archive_records);
    assert_eq!(diff.lago_records, diff.archive_records + 1);

    // A record removed from an object (its gzip whole again, the chain left alone): tampering,
    // and against Lago the record is named.
    let mut raw = gunzip(&get(&dest, &names[1]).await);
    let first_end = raw.iter().position(|b| *b == b'\n').unwrap() + 1;
    let removed = lago_audit_sink::line_event_id(&raw[..first_end]).unwrap();
    raw.drain(..first_end);
    put(&dest, &names[1], gzip(&raw)).await;
    let (report, diff) = check_against_lago(&dest, &fake).await;
    let found = codes(&report);
    assert!(
        found.contains(&("object-hash", names[1].clone())),
        "{found:?}"
    );
    let named: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.code == "lago-removed")
        .collect();
    assert_eq!(named.len(), 1, "{:?}", report.problems);
    assert_eq!(named[0].path, names[1]);
    assert!(named[0].detail.contains(&removed), "{}", named[0].detail);
    assert_eq!(diff.late.len(), 1, "only the late arrival: {:?}", diff.late);

    // The same record never written by a deliberately broken writer: the archive is consistent
    // with itself except for the count of records taken, and against Lago the record is named
    // as lost by the writer, not as late.
    let dest = fresh().await;
    let fake = fake_with_duplicates(seed).await;
    let options = || limits().broken_writer_loses(removed.clone());
    run_with_kills::<ActivityLogObject>(&fake, &dest, options, 200, 1, 5, seed).await;
    let plain = check(&dest, &VerifyOptions::default()).await;
    let lost: Vec<_> = codes(&plain);
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0].0, "object-lost");
    let (report, diff) = check_against_lago(&dest, &fake).await;
    let named: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.code == "lago-missing")
        .collect();
    assert_eq!(named.len(), 1, "{:?}", report.problems);
    assert!(named[0].detail.contains(&removed), "{}", named[0].detail);
    assert_eq!(named[0].path, lost[0].1);
    assert!(diff.late.is_empty(), "{:?}", diff.late);

    // The overlap of issue 21 before its fix, recreated: a second writer's objects (other batch
    // limits, no chain of its own) beside the first one's. Every one of them is named as extra.
    let dest = fresh().await;
    let other = fresh().await;
    let fake = fake_with_duplicates(seed + 1).await;
    run::<ActivityLogObject>(&fake, &dest, limits(), 500)
        .await
        .unwrap();
    let wide = SinkOptions::default().limits(BatchLimits::default().max_records(700));
    run::<ActivityLogObject>(&fake, &other, wide, 500)
        .await
        .unwrap();
    let mut copied = Vec::new();
    for name in objects(&other).await {
        if !objects(&dest).await.contains(&name) {
            put(&dest, &name, get(&other, &name).await).await;
            copied.push(name);
        }
    }
    assert!(!copied.is_empty());
    let report = check(&dest, &VerifyOptions::default()).await;
    let extra: Vec<String> = codes(&report)
        .into_iter()
        .filter(|(c, _)| *c == "object-extra")
        .map(|(_, p)| p)
        .collect();
    assert_eq!(extra, copied);
    assert_eq!(report.problems.len(), copied.len(), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_lago_tells_lost_and_removed_records_from_late_ones_in_a_directory() {
    let root = tempfile::tempdir().unwrap();
    against_lago_cases(fresh_dirs(root.path()), 181).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_lago_tells_lost_and_removed_records_from_late_ones_in_s3() {
    let Some(s3) = server("LAGO_SINK_TEST_S3") else {
        return;
    };
    against_lago_cases(fresh_buckets(&s3, "lago-against"), 191).await;
}

/// Every line of every kind, in every format, gives back the event id of the record it was
/// written from: what `against_lago` compares.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lines_event_id_is_its_records_in_every_format_and_kind() {
    use lago_audit_client::types::{ApiLogObject, SecurityLogObject};
    use lago_audit_sink::Format;
    let fake = FakeLago::builder()
        .seed(12)
        .records_per_kind(200, 200, 200)
        .start()
        .await
        .unwrap();
    fn each<T: TestRecord>(fake: &FakeLago) -> usize {
        let mut checked = 0;
        for id in fake.ground_truth(T::FAKE, None, Some(fake.generator().now())) {
            let record: T =
                serde_json::from_value(fake.record_json(T::FAKE, &id).unwrap()).unwrap();
            for format in [Format::Lago, Format::Ocsf, Format::Ecs] {
                let line = lago_audit_sink::line(&record, format).unwrap();
                assert_eq!(
                    lago_audit_sink::line_event_id(&line).as_deref(),
                    Some(record.event_id().as_str()),
                    "{format}: {}",
                    String::from_utf8_lossy(&line)
                );
                checked += 1;
            }
        }
        checked
    }
    assert!(each::<ActivityLogObject>(&fake) >= 600);
    assert!(each::<ApiLogObject>(&fake) >= 600);
    assert!(each::<SecurityLogObject>(&fake) >= 150);
    assert_eq!(lago_audit_sink::line_event_id(b"{\"other\":1}"), None);
    assert_eq!(lago_audit_sink::line_event_id(b"not json"), None);
}
