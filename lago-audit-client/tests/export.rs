//! Exactly-once exports against the fake Lago, compared with its ground truth: every fault at
//! once, resume after a kill, follow with late arrivals, and random data layouts.

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use lago_audit_client::pagination::RecordKey;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject};
use lago_audit_client::{
    Checkpoint, Client, ClientBuilder, Error, Export, ExportEvent, ExportOptions, ExportProgress,
    RetryPolicy,
};
use lago_audit_fake::data::{Kind, Shape};
use lago_audit_fake::{FakeLago, FakeLagoBuilder};
use std::time::Duration;

fn client(fake: &FakeLago) -> Client {
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

/// Every fault at once: 5% 5xx, 1% resets, 1% truncated bodies, 429 bursts, 2 inserts per
/// request, shuffled ties.
fn hostile(seed: u64) -> FakeLagoBuilder {
    FakeLago::builder()
        .seed(seed)
        .error_rate(0.05)
        .reset_rate(0.01)
        .truncate_rate(0.01)
        .throttle_rate(0.004)
        .insert_per_request(2)
        .shuffle_ties(true)
}

use lago_audit_fake::check::assert_exactly_once;

fn records<T>(events: Vec<ExportEvent<T>>) -> Vec<T> {
    events
        .into_iter()
        .filter_map(|e| match e {
            ExportEvent::Record(r) => Some(r),
            ExportEvent::Checkpoint(_) => None,
        })
        .collect()
}

fn activity_truth(fake: &FakeLago, from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> Vec<String> {
    fake.ground_truth(Kind::Activity, from, Some(to))
        .iter()
        .map(|id| id.to_string())
        .collect()
}

/// API logs have no id of their own: the key is the record's content, computed the same way on
/// both sides (the fake's JSON decoded into the client's type).
fn api_truth(fake: &FakeLago, to: DateTime<Utc>) -> Vec<String> {
    fake.ground_truth(Kind::Api, None, Some(to))
        .iter()
        .map(|id| {
            let json = fake.record_json(Kind::Api, id).unwrap();
            serde_json::from_value::<ApiLogObject>(json)
                .unwrap()
                .record_key()
        })
        .collect()
}

async fn export_activity(
    fake: &FakeLago,
    per_page: u32,
    read_ahead: usize,
) -> (Vec<ActivityLogObject>, ExportProgress) {
    let progress = ExportProgress::default();
    let events: Vec<_> = client(fake)
        .find_all_activity_logs()
        .to_date(fake.generator().now())
        .export(
            ExportOptions::default()
                .max_per_page(per_page)
                .read_ahead(read_ahead)
                .progress(progress.clone()),
        )
        .try_collect()
        .await
        .unwrap();
    (records(events), progress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_logs_export_exactly_once_under_every_fault() {
    for (seed, per_page, read_ahead) in [(7u64, 10u32, 8usize), (8, 100, 4), (9, 1000, 2)] {
        let fake = hostile(seed)
            .records_per_kind(100_000, 0, 0)
            .start()
            .await
            .unwrap();
        let (logs, progress) = export_activity(&fake, per_page, read_ahead).await;
        let got: Vec<String> = logs.iter().map(|l| l.activity_id.to_string()).collect();
        let want = activity_truth(&fake, None, fake.generator().now());
        assert_eq!(want.len(), 100_000);
        assert_exactly_once(&got, &want, &format!("seed {seed}, per_page {per_page}"));
        // Oldest first, across slices.
        assert!(logs.windows(2).all(|w| w[0].logged_at <= w[1].logged_at));
        let counts = fake.counts();
        assert!(
            counts.server_errors > 0 && counts.inserted > 0,
            "{counts:?}"
        );
        // Faults drawn at 1% (resets, truncations) or 0.4% (429s) are only sure to occur over
        // enough requests: 1,000 and 10,000 here; 112 requests often see no 429 at all.
        if per_page <= 100 {
            assert!(counts.resets > 0 && counts.truncations > 0, "{counts:?}");
        }
        if per_page <= 10 {
            assert!(counts.rate_limited > 0, "{counts:?}");
        }
        assert_eq!(progress.records(), 100_000);
        assert_eq!(progress.requests(), counts.requests);
        assert!(progress.retries() > 0);
        assert_eq!(progress.expected_total(), Some(100_000));
        // The request budget: pages are nearly full (two probes, and a few re-reads).
        let ideal = 100_000u64.div_ceil(u64::from(per_page));
        let sent = counts.requests
            - counts.server_errors
            - counts.rate_limited
            - counts.resets
            - counts.truncations;
        assert!(
            (sent as f64) < ideal as f64 * 1.12 + 4.0,
            "{sent} successful requests for {ideal} full pages"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_logs_with_reused_request_ids_export_exactly_once_under_every_fault() {
    for (seed, per_page, read_ahead) in [(21u64, 10u32, 4usize), (22, 250, 8)] {
        let fake = hostile(seed)
            .records_per_kind(0, 100_000, 0)
            .start()
            .await
            .unwrap();
        let to = fake.generator().now();
        let events: Vec<_> = client(&fake)
            .find_all_api_logs()
            .to_date(to)
            .export(
                ExportOptions::default()
                    .max_per_page(per_page)
                    .read_ahead(read_ahead),
            )
            .try_collect()
            .await
            .unwrap();
        let logs = records(events);
        let got: Vec<String> = logs.iter().map(RecordKey::record_key).collect();
        let want = api_truth(&fake, to);
        // The data reuses request ids: a request_id is not an identity.
        let mut ids: Vec<&str> = logs.iter().map(|l| l.request_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert!(ids.len() < 99_000, "{} distinct request ids", ids.len());
        assert_exactly_once(&got, &want, &format!("seed {seed}, per_page {per_page}"));
    }
}

#[tokio::test]
async fn a_window_with_filters_exports_only_what_matches() {
    let fake = hostile(5)
        .records_per_kind(6_000, 0, 0)
        .start()
        .await
        .unwrap();
    let now = fake.generator().now();
    let from = now - chrono::Duration::seconds(1500);
    let to = now - chrono::Duration::seconds(100);
    let events: Vec<_> = client(&fake)
        .find_all_activity_logs()
        .from_date(from)
        .to_date(to)
        .activity_sources(vec![lago_audit_client::ActivitySource::Front])
        .export(ExportOptions::default().max_per_page(20))
        .try_collect()
        .await
        .unwrap();
    let got: Vec<String> = records(events)
        .iter()
        .map(|l| l.activity_id.to_string())
        .collect();
    let want: Vec<String> = fake
        .ground_truth(Kind::Activity, Some(from), Some(to))
        .into_iter()
        .filter(|id| fake.record_json(Kind::Activity, id).unwrap()["activity_source"] == "front")
        .map(|id| id.to_string())
        .collect();
    assert!(want.len() > 1000, "{}", want.len());
    assert_exactly_once(&got, &want, "filtered window");
}

/// A consumer that commits its records together with each checkpoint, killed at random points
/// (including in the middle of a slice), and restarted from its last checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_killed_anywhere_resumes_with_nothing_lost_or_repeated() {
    let fake = hostile(31)
        .records_per_kind(20_000, 0, 0)
        .start()
        .await
        .unwrap();
    let c = client(&fake);
    let to = fake.generator().now();
    let mut committed: Vec<String> = Vec::new();
    let mut checkpoint: Option<Checkpoint> = None;
    let mut rng = 0x5EED_u64;
    let mut sessions = 0;
    loop {
        sessions += 1;
        assert!(sessions < 500, "the export does not progress");
        rng = lago_audit_fake::data::mix(rng);
        // Stop after 1..=1,500 events: often mid-slice, sometimes right after a checkpoint.
        let kill_after = 1 + (rng % 1500) as usize;
        let mut options = ExportOptions::default().max_per_page(100).read_ahead(3);
        if let Some(cp) = checkpoint.clone() {
            // Through JSON, as a real consumer would store it.
            let stored = serde_json::to_string(&cp).unwrap();
            options = options.resume_from(serde_json::from_str(&stored).unwrap());
        }
        let mut stream = c.find_all_activity_logs().to_date(to).export(options);
        let mut pending: Vec<String> = Vec::new();
        let mut seen = 0;
        let mut finished = true;
        while let Some(event) = stream.next().await {
            match event.unwrap() {
                ExportEvent::Record(r) => pending.push(r.activity_id.to_string()),
                ExportEvent::Checkpoint(cp) => {
                    committed.append(&mut pending);
                    checkpoint = Some(cp);
                }
            }
            seen += 1;
            if seen == kill_after {
                finished = false;
                break;
            }
        }
        drop(stream);
        if finished {
            assert!(pending.is_empty(), "an export ends with a checkpoint");
            break;
        }
    }
    assert!(sessions > 5, "only {sessions} sessions");
    assert_exactly_once(
        &committed,
        &activity_truth(&fake, None, to),
        &format!("{sessions} sessions"),
    );
}

#[tokio::test]
async fn a_checkpoint_is_refused_by_another_query() {
    let fake = FakeLago::builder()
        .records_per_kind(300, 300, 0)
        .start()
        .await
        .unwrap();
    let c = client(&fake);
    let events: Vec<_> = c
        .find_all_activity_logs()
        .to_date(fake.generator().now())
        .activity_types(["plan.created"])
        .export(ExportOptions::default())
        .try_collect()
        .await
        .unwrap();
    let Some(ExportEvent::Checkpoint(cp)) = events.last().cloned() else {
        panic!("an export ends with a checkpoint");
    };
    let other_filters = c
        .find_all_activity_logs()
        .activity_types(["plan.deleted"])
        .export(ExportOptions::default().resume_from(cp.clone()))
        .next()
        .await
        .unwrap();
    assert!(
        matches!(&other_filters, Err(Error::InvalidRequest(m)) if m.contains("other filters")),
        "{other_filters:?}"
    );
    let other_operation = c
        .find_all_api_logs()
        .export(ExportOptions::default().resume_from(cp.clone()))
        .next()
        .await
        .unwrap();
    assert!(matches!(other_operation, Err(Error::InvalidRequest(_))));
    // The same filters in another order resume fine, with nothing left to read.
    let same: Vec<_> = c
        .find_all_activity_logs()
        .activity_types(["plan.created"])
        .to_date(fake.generator().now())
        .export(ExportOptions::default().resume_from(cp))
        .try_collect()
        .await
        .unwrap();
    assert!(records(same).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_sees_new_and_late_records_exactly_once() {
    let start = Utc::now();
    let start =
        DateTime::from_timestamp(start.timestamp(), 0).unwrap() - chrono::Duration::seconds(20);
    let fake = std::sync::Arc::new(
        FakeLago::builder()
            .now(start)
            .records_per_kind(600, 0, 0)
            .shuffle_ties(true)
            .start()
            .await
            .unwrap(),
    );
    let c = client(&fake);
    // A record is late by up to 2.5 s here: logged_at is cut to the second (up to 1 s earlier),
    // logged a second back, visible 0.5 s later. The settle margin must cover that.
    let settle = Duration::from_secs(3);
    let mut stream = c.find_all_activity_logs().follow(
        ExportOptions::default()
            .max_per_page(50)
            .settle(settle)
            .poll_interval(Duration::from_millis(100)),
    );
    // While following: records logged now, and late ones logged a second ago that only become
    // visible half a second later.
    let mut writer = Some({
        let fake = fake.clone();
        tokio::spawn(async move {
            let mut last = Utc::now();
            for i in 0..30u32 {
                let now = Utc::now();
                fake.insert(Kind::Activity, now, Duration::ZERO);
                if i % 3 == 0 {
                    fake.insert(
                        Kind::Activity,
                        now - chrono::Duration::seconds(1),
                        Duration::from_millis(500),
                    );
                }
                last = now;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
            last
        })
    });
    let mut committed = Vec::new();
    let mut pending = Vec::new();
    let mut last_inserted: Option<DateTime<Utc>> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("follow keeps up")
            .unwrap()
            .unwrap();
        match event {
            ExportEvent::Record(r) => pending.push(r.activity_id.to_string()),
            ExportEvent::Checkpoint(cp) => {
                committed.append(&mut pending);
                if writer.as_ref().is_some_and(|w| w.is_finished()) {
                    last_inserted = Some(writer.take().unwrap().await.unwrap());
                    continue;
                }
                if let Some(last) = last_inserted {
                    if cp.resume_at().timestamp() > last.timestamp() + 1 {
                        let truth = activity_truth(
                            &fake,
                            None,
                            cp.resume_at() - chrono::Duration::seconds(1),
                        );
                        assert_eq!(truth.len(), 600 + 40);
                        assert_exactly_once(&committed, &truth, "follow");
                        return;
                    }
                }
            }
        }
    }
}

mod random_layouts {
    use super::*;
    use proptest::prelude::*;

    fn layout() -> impl Strategy<Value = Vec<(i64, u64)>> {
        // Groups newest first: gaps of 1 s to a day (retention cut-offs fall inside), sizes from
        // empty-ish to thousands in one second.
        prop::collection::vec(
            (
                prop_oneof![1i64..5, 5i64..600, 3_000i64..40_000],
                prop_oneof![8 => 1u64..6, 3 => 6u64..80, 1 => 1_000u64..3_000],
            ),
            0..40,
        )
        .prop_map(|groups| {
            let mut offset = 0;
            groups
                .into_iter()
                .map(|(gap, n)| {
                    offset += gap;
                    (offset, n)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn any_layout_exports_exactly_once(
            groups in layout(),
            per_page in 1u32..60,
            read_ahead in 1usize..5,
            retention in 0i64..3,
            seed in 0u64..1000,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let fake = FakeLago::builder()
                    .seed(seed)
                    .groups(groups)
                    .retention_days(retention, 0, 0)
                    .shuffle_ties(true)
                    .insert_per_request(1)
                    .start()
                    .await
                    .unwrap();
                let (logs, _) = export_activity(&fake, per_page, read_ahead).await;
                let got: Vec<String> = logs.iter().map(|l| l.activity_id.to_string()).collect();
                let want = activity_truth(&fake, None, fake.generator().now());
                assert_exactly_once(&got, &want, "random layout");
            });
        }
    }
}

/// Security logs require `to_date`; an export without one reads up to now − settle, like the other
/// operations, instead of failing before its first request.
#[tokio::test]
async fn security_logs_export_without_a_to_date() {
    let fake = FakeLago::builder()
        .seed(31)
        .records_per_kind(0, 0, 3_000)
        .start()
        .await
        .unwrap();
    let events: Vec<_> = client(&fake)
        .find_all_security_logs()
        .export(ExportOptions::default().max_per_page(250))
        .try_collect()
        .await
        .unwrap();
    let got: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ExportEvent::Record(r) => Some(r.log_id.to_string()),
            ExportEvent::Checkpoint(_) => None,
        })
        .collect();
    let want: Vec<String> = fake
        .ground_truth(Kind::Security, None, None)
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert!(!want.is_empty());
    assert_exactly_once(&got, &want, "security logs without to_date");
}

/// The shapes of Lago's real server that a fake of whole seconds and honest counts does not
/// have (facts 15-17 and a clock behind the client's), one at a time and all at once.
mod world {
    use super::*;
    use lago_audit_client::types::SecurityLogObject;

    /// The keys of every record of `kind` up to `to` (everything without it), as the client
    /// identifies them: the fake's id, or for API logs the content.
    pub fn truth(fake: &FakeLago, kind: Kind, to: Option<DateTime<Utc>>) -> Vec<String> {
        fake.ground_truth(kind, None, to)
            .iter()
            .map(|id| match kind {
                Kind::Api => {
                    let json = fake.record_json(kind, id).unwrap();
                    serde_json::from_value::<ApiLogObject>(json)
                        .unwrap()
                        .record_key()
                }
                _ => id.to_string(),
            })
            .collect()
    }

    /// Exports `kind` up to `to` (with no `to_date` at all when `None`) and returns the keys.
    pub async fn export_keys(
        fake: &FakeLago,
        kind: Kind,
        to: Option<DateTime<Utc>>,
        options: ExportOptions,
    ) -> Vec<String> {
        let c = client(fake);
        fn keys<T: RecordKey>(events: Vec<ExportEvent<T>>) -> Vec<String> {
            records(events).iter().map(RecordKey::record_key).collect()
        }
        match kind {
            Kind::Activity => {
                let mut b = c.find_all_activity_logs();
                if let Some(to) = to {
                    b = b.to_date(to);
                }
                let events: Vec<ExportEvent<ActivityLogObject>> =
                    b.export(options).try_collect().await.unwrap();
                keys(events)
            }
            Kind::Api => {
                let mut b = c.find_all_api_logs();
                if let Some(to) = to {
                    b = b.to_date(to);
                }
                let events: Vec<ExportEvent<ApiLogObject>> =
                    b.export(options).try_collect().await.unwrap();
                keys(events)
            }
            Kind::Security => {
                let mut b = c.find_all_security_logs();
                if let Some(to) = to {
                    b = b.to_date(to);
                }
                let events: Vec<ExportEvent<SecurityLogObject>> =
                    b.export(options).try_collect().await.unwrap();
                keys(events)
            }
        }
    }

    /// While records are inserted: every record that existed when the export started comes out
    /// once, nothing comes out twice, and nothing comes out that does not exist at the end.
    pub fn assert_once_while_inserting(
        got: &[String],
        before: &[String],
        after: &[String],
        context: &str,
    ) {
        let mut seen = std::collections::HashSet::new();
        let repeated = got.iter().filter(|k| !seen.insert(k.as_str())).count();
        let lost = before.iter().filter(|k| !seen.contains(k.as_str())).count();
        let known: std::collections::HashSet<&str> = after.iter().map(String::as_str).collect();
        let unknown = got.iter().filter(|k| !known.contains(k.as_str())).count();
        assert!(
            repeated == 0 && lost == 0 && unknown == 0,
            "{context}: {lost} of {} lost, {repeated} repeated, {unknown} unknown ({} read)",
            before.len(),
            got.len()
        );
    }

    fn kinds(fake: FakeLagoBuilder, n: u64) -> FakeLagoBuilder {
        fake.records_per_kind(n, n, n)
            .retention_days(3650, 3650, 3650)
    }

    /// A server clock behind the client's: records inserted while the export starts land
    /// inside its window, between the probes that size it. The window's lower bound must
    /// not come from a probe (it did: the oldest second was skipped).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn inserts_inside_the_window_never_move_its_start() {
        for kind in [Kind::Activity, Kind::Api, Kind::Security] {
            for pinned in [true, false] {
                // 3,000 records span 1,000 s; inserts land 300 s back, four per request: more
                // than the oldest second holds, so a shifted probe names a later second.
                let fake = kinds(FakeLago::builder().seed(3), 3_000)
                    .insert_per_request(4)
                    .inserts_behind(Duration::from_secs(300))
                    .start()
                    .await
                    .unwrap();
                let to = pinned.then(|| fake.generator().now());
                let before = truth(&fake, kind, to);
                let got =
                    export_keys(&fake, kind, to, ExportOptions::default().max_per_page(100)).await;
                let after = truth(&fake, kind, to);
                assert!(after.len() > before.len(), "records were inserted");
                assert_once_while_inserting(
                    &got,
                    &before,
                    &after,
                    &format!("{kind:?}, window pinned: {pinned}"),
                );
            }
        }
    }

    /// Debug events of the export, written while `run` runs on this thread (a current-thread
    /// runtime keeps every task of the export and of the fake on it).
    fn with_export_events<T>(run: impl FnOnce() -> T) -> (T, String) {
        let captured = lago_audit_fake::capture::Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let out = tracing::subscriber::with_default(subscriber, run);
        (out, captured.text())
    }

    /// Parts of a slice read by position are trusted only for the seconds inside them, and
    /// overlap by more than the largest second seen. Where they do not meet after all, the
    /// seconds between are read again as a slice: here, seconds of one record set the overlap
    /// at 2, then seconds of 30 records (under half a page, so not read whole) fall across part
    /// boundaries, with ties reordered on every query; and records land inside the window
    /// while it is read, moving every older row. Nothing is lost, and the log shows the
    /// bridging happened. (With the bridge removed, the seconds between two parts that do not
    /// meet are skipped: this test then fails with records lost.)
    #[test]
    fn parts_that_do_not_meet_are_bridged() {
        // Newest first: seconds of one record, and every 150th holds 30. Whether the first
        // slice's top page (the export starts at the oldest end) already shows such a second,
        // and where inserts land, depends on the order answers arrive in; over the four
        // exports below, parts missed each other every time this was run.
        let groups: Vec<(i64, u64)> = (0..12_000i64)
            .map(|i| (i, if i >= 120 && i % 150 == 120 { 30 } else { 1 }))
            .collect();
        let mut bridged = 0;
        for (inserts, kind) in [
            (0u64, Kind::Activity),
            (6, Kind::Activity),
            (0, Kind::Api),
            (6, Kind::Api),
        ] {
            let (result, events) = with_export_events(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let fake = FakeLago::builder()
                            .seed(31)
                            .groups(groups.clone())
                            .retention_days(3650, 3650, 3650)
                            .shuffle_ties(true)
                            .insert_per_request(inserts)
                            .inserts_behind(Duration::from_secs(6_000))
                            .start()
                            .await
                            .unwrap();
                        let to = Some(fake.generator().now());
                        let before = truth(&fake, kind, to);
                        let options = ExportOptions::default().max_per_page(100);
                        let got = export_keys(&fake, kind, to, options).await;
                        let after = truth(&fake, kind, to);
                        (got, before, after)
                    })
            });
            let (got, before, after) = result;
            if inserts > 0 {
                assert!(after.len() > before.len(), "records were inserted");
            }
            assert_once_while_inserting(&got, &before, &after, &format!("{kind:?}"));
            let here = events.matches("export parts did not meet").count();
            eprintln!("{kind:?}, {inserts} inserts a request: {here} bridges");
            bridged += here;
        }
        assert!(bridged > 0, "no two parts failed to meet in any export");
    }

    /// Lago has no maximum `per_page` (fact 9), and the export asks for a little more than a
    /// page when it reads parts by position. Another server, or a proxy, may cap it: fewer
    /// rows than asked then come with a `next_page`, and must not be taken as the end of the
    /// window. Nothing is lost, at a page size under the cap, at the cap and above it; a
    /// second with more records than the cap cannot be read exactly once, and says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_caps_per_page_loses_nothing() {
        for (shape, max_per_page) in [
            (Shape::Ties, 100u32),
            (Shape::Even, 100),
            (Shape::Bursty, 1000),
            (Shape::DenseHour, 60),
        ] {
            let fake = FakeLago::builder()
                .seed(17)
                .records_per_kind(12_000, 0, 0)
                .shape(shape, 12_000)
                .retention_days(3650, 3650, 3650)
                .shuffle_ties(true)
                .per_page_cap(100)
                .start()
                .await
                .unwrap();
            let to = Some(fake.generator().now());
            let want = truth(&fake, Kind::Activity, to);
            let options = ExportOptions::default().max_per_page(max_per_page);
            let got = export_keys(&fake, Kind::Activity, to, options).await;
            assert_exactly_once(
                &got,
                &want,
                &format!("{shape:?}, max_per_page {max_per_page}, cap 100"),
            );
        }
        // A second of 150 records behind a cap of 100.
        let groups: Vec<(i64, u64)> = (0..3_000i64)
            .map(|i| (i, if i == 1_500 { 150 } else { 1 }))
            .collect();
        let fake = FakeLago::builder()
            .groups(groups)
            .retention_days(3650, 3650, 3650)
            .per_page_cap(100)
            .start()
            .await
            .unwrap();
        let result: Result<Vec<_>, _> = client(&fake)
            .find_all_activity_logs()
            .to_date(fake.generator().now())
            .export(ExportOptions::default().max_per_page(100))
            .try_collect()
            .await;
        let e = result.unwrap_err();
        assert!(e.to_string().contains("caps per_page"), "{e}");
    }

    /// A count of any size (a broken server, fact 16 taken to the extreme: off by up to 10^15,
    /// so zero half the time) neither hangs the planning of parts nor loses a record: the
    /// rows decide what is read, the count only how.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_count_of_any_size_loses_nothing_and_ends() {
        for kind in [Kind::Activity, Kind::Security] {
            let fake = kinds(FakeLago::builder().seed(14), 5_000)
                .count_skew(1_000_000_000_000_000)
                .start()
                .await
                .unwrap();
            let to = Some(fake.generator().now());
            let want = truth(&fake, kind, to);
            let options = ExportOptions::default().max_per_page(100);
            // On a thread and runtime of its own (the fake keeps serving from this one), so that
            // a planning loop that never yields fails the test instead of hanging it (it hung,
            // before parts were bounded by depth).
            let (sent, received) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let got = runtime.block_on(export_keys(&fake, kind, to, options));
                let _ = sent.send(got);
            });
            let got =
                tokio::task::spawn_blocking(move || received.recv_timeout(Duration::from_secs(60)))
                    .await
                    .unwrap()
                    .expect("the export ends within a minute");
            assert_exactly_once(&got, &want, &format!("{kind:?}, count off by up to 10^15"));
        }
    }

    /// `logged_at` with milliseconds: a slice `[a, b]` covers the whole of second `b`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn milliseconds_are_read_exactly_once() {
        for kind in [Kind::Activity, Kind::Api, Kind::Security] {
            let fake = kinds(FakeLago::builder().seed(11), 5_000)
                .millis(true)
                .start()
                .await
                .unwrap();
            let to = Some(fake.generator().now() + chrono::Duration::seconds(1));
            let want = truth(&fake, kind, to);
            let got = export_keys(&fake, kind, to, ExportOptions::default().max_per_page(40)).await;
            assert_exactly_once(&got, &want, &format!("{kind:?} with milliseconds"));
        }
    }

    /// A log stored twice comes out once (by id, or for API logs by content), and the copies
    /// dropped are counted; `keep_duplicates` writes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_log_stored_twice_comes_out_once() {
        for kind in [Kind::Activity, Kind::Api, Kind::Security] {
            let fake = kinds(FakeLago::builder().seed(12), 4_000)
                .duplicate_rate(0.05)
                .shuffle_ties(true)
                .start()
                .await
                .unwrap();
            let to = Some(fake.generator().now());
            let want = truth(&fake, kind, to);
            let progress = ExportProgress::default();
            let options = ExportOptions::default()
                .max_per_page(50)
                .progress(progress.clone());
            let got = export_keys(&fake, kind, to, options).await;
            assert_exactly_once(&got, &want, &format!("{kind:?} stored twice"));
            let dropped = progress.duplicates();
            assert!(
                dropped > 100 && dropped < 400,
                "{kind:?}: {dropped} dropped"
            );
            let kept = export_keys(
                &fake,
                kind,
                to,
                ExportOptions::default()
                    .max_per_page(50)
                    .keep_duplicates(true),
            )
            .await;
            assert_eq!(kept.len() as u64, want.len() as u64 + dropped, "{kind:?}");
        }
    }

    /// `total_count` comes from a query of its own (fact 16): lower or higher than the rows.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_count_that_disagrees_with_the_rows_loses_nothing() {
        for (per_page, skew) in [(10u32, 3u64), (100, 40), (7, 50)] {
            let fake = kinds(FakeLago::builder().seed(13), 6_000)
                .count_skew(skew)
                .start()
                .await
                .unwrap();
            let to = Some(fake.generator().now());
            let want = truth(&fake, Kind::Activity, to);
            let got = export_keys(
                &fake,
                Kind::Activity,
                to,
                ExportOptions::default().max_per_page(per_page),
            )
            .await;
            assert_exactly_once(&got, &want, &format!("per_page {per_page}, skew {skew}"));
        }
    }
}

/// Every fault of the fake at once, drawn with the window (pinned or open), the page size
/// (1 to 1,000) and the read-ahead, for each kind of log: 0 lost, 0 repeated.
mod every_fault_at_once {
    use super::world::{assert_once_while_inserting, export_keys, truth};
    use super::*;
    use proptest::prelude::*;

    /// Up to 100,000 records; fewer for small pages, so that a case stays near 1,000 requests.
    fn records_for(per_page: u32) -> u64 {
        (u64::from(per_page) * 800).min(100_000)
    }

    /// `inserts`: records the fake adds inside the window on every request. With an open
    /// window they stay inside it for good, so they must come slower than the export reads (an
    /// export whose window receives records faster than it reads them cannot end).
    fn hostile_world(
        seed: u64,
        shape: Shape,
        records: u64,
        millis: bool,
        inserts: u64,
    ) -> FakeLagoBuilder {
        FakeLago::builder()
            .seed(seed)
            .records_per_kind(records, records, records)
            .shape(shape, records)
            .retention_days(3650, 3650, 3650)
            .error_rate(0.03)
            .reset_rate(0.01)
            .chunked_cut_rate(0.01)
            .truncate_rate(0.01)
            .throttle_rate(0.002)
            .insert_per_request(inserts)
            .inserts_behind(Duration::from_secs(records / 6))
            .shuffle_ties(true)
            .duplicate_rate(0.02)
            .count_skew(5)
            .millis(millis)
    }

    async fn check(
        kind: Kind,
        shape: Shape,
        records: u64,
        pinned: bool,
        per_page: u32,
        read_ahead: usize,
        seed: u64,
    ) {
        // Pinned, the inserts leave the window after `records / 2` of them.
        let inserts = match (pinned, per_page) {
            (true, _) => 3,
            (false, 8..) => 1,
            (false, _) => 0,
        };
        let fake = hostile_world(seed, shape, records, seed.is_multiple_of(2), inserts)
            .start()
            .await
            .unwrap();
        let to = pinned.then(|| fake.generator().now() + chrono::Duration::seconds(1));
        let before = truth(&fake, kind, to);
        let options = ExportOptions::default()
            .max_per_page(per_page)
            .read_ahead(read_ahead);
        let got = export_keys(&fake, kind, to, options).await;
        let after = truth(&fake, kind, to);
        assert_once_while_inserting(
            &got,
            &before,
            &after,
            &format!(
                "{kind:?}, {records} records {shape:?}, pinned {pinned}, per_page {per_page}, \
                 read_ahead {read_ahead}, seed {seed}: {:?}",
                fake.counts()
            ),
        );
    }

    /// The whole 100,000 records once per kind, at a page size that keeps it quick.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hundred_thousand_records_of_each_kind() {
        for (i, kind) in [Kind::Activity, Kind::Api, Kind::Security]
            .into_iter()
            .enumerate()
        {
            check(kind, Shape::Even, 100_000, i != 1, 1000, 8, 40 + i as u64).await;
        }
    }

    /// Every shape of data the request budget is measured on, with every fault at once: parts
    /// read by position while rows are inserted, counted wrong, stored twice and reordered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_shape_of_data() {
        for (i, shape) in Shape::ALL.into_iter().enumerate() {
            let kind = [Kind::Activity, Kind::Api, Kind::Security][i % 3];
            let per_page = [100, 1000][i % 2];
            check(kind, shape, 30_000, i % 3 != 1, per_page, 8, 60 + i as u64).await;
        }
    }

    /// Draws the property test below once failed, kept as cases of their own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn draws_that_failed_once() {
        // A second of 3 records read whole at 4 a page, under a count 2 too high: `meta` named
        // a next page, which was taken for a server that caps `per_page`.
        check(
            Kind::Activity,
            Shape::BigSeconds,
            records_for(4),
            false,
            4,
            1,
            75,
        )
        .await;
    }

    fn page_size() -> impl Strategy<Value = u32> {
        prop_oneof![1u32..10, 10u32..100, 100u32..=1000]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn any_draw_exports_exactly_once(
            kind in prop_oneof![Just(Kind::Activity), Just(Kind::Api), Just(Kind::Security)],
            pinned in any::<bool>(),
            per_page in page_size(),
            read_ahead in 1usize..9,
            seed in 0u64..10_000,
            shape in proptest::sample::select(Shape::ALL.to_vec()),
        ) {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(check(kind, shape, records_for(per_page), pinned, per_page, read_ahead, seed));
        }
    }
}

/// Requests are the budget under Lago Cloud's limit (fact 19): whatever the shape of the data
/// (even, ties of 1 to 40 records a second, billing runs, dense hours days apart, a single
/// dense hour, seconds holding more than a page), an export sends at most 1.05 requests per
/// full page, plus two (the two probes that size the first slice). Three
/// seeds of each, at 1,000 and 100 records a page. (Slices of one page each took up to 1.56
/// times the ideal on ties.)
///
/// One exception, measured at 1.15 to 1.22: seconds of 1.5 to 3 pages every few thousand
/// records, at 1,000 a page. Such a second must be read whole, in a request of its own (its
/// records come back in any order, so pieces of it cannot be joined), and where it lies is
/// only known once a part has fallen inside it: about one request per such second is spent
/// finding it. At 100 a page the same seconds are 15 to 30 pages, read whole in one request
/// each, and the export sends fewer requests than full pages would need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_sends_at_most_1_05_requests_per_full_page_on_every_shape() {
    let mut failures = Vec::new();
    for shape in Shape::ALL {
        for (per_page, records) in [(1000u32, 60_000u64), (100, 12_000)] {
            for seed in [5u64, 6, 7] {
                let fake = FakeLago::builder()
                    .seed(seed)
                    .records_per_kind(records, 0, 0)
                    .shape(shape, records)
                    .start()
                    .await
                    .unwrap();
                let (logs, progress) = export_activity(&fake, per_page, 8).await;
                let got: Vec<String> = logs.iter().map(|l| l.activity_id.to_string()).collect();
                let want = activity_truth(&fake, None, fake.generator().now());
                assert_exactly_once(&got, &want, &format!("{shape:?} seed {seed}"));
                let ideal = records.div_ceil(u64::from(per_page));
                let sent = progress.requests();
                let line = format!(
                    "{:<12} per_page {per_page:>4} seed {seed}: {sent} requests, ideal {ideal}, {:.3}",
                    shape.name(),
                    sent as f64 / ideal as f64
                );
                eprintln!("{line}");
                let bound = if shape == Shape::BigSeconds && per_page == 1000 {
                    1.25
                } else {
                    1.05
                };
                if sent as f64 > bound * ideal as f64 + 2.0 {
                    failures.push(line);
                }
            }
        }
    }
    assert!(failures.is_empty(), "over budget:\n{}", failures.join("\n"));
}
