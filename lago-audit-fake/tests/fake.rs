//! The fake against the generated client: every filter, the meta arithmetic, auth and gating,
//! and each fault.
//!
//! Filters are checked against an independent computation: the whole unfiltered data set is
//! fetched once and filtered here, in the test, then compared with what the fake returns.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use futures::TryStreamExt;
use lago_audit_client::pagination::{Page, RecordKey};
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, PaginationMeta};
use lago_audit_client::{
    ActivitySource, Client, ClientBuilder, DateFilter, Error, HttpMethod, HttpStatusFilter,
    Paginate, RetryPolicy,
};
use lago_audit_fake::data::Kind;
use lago_audit_fake::{FakeLago, FakeLagoBuilder};
use std::time::Duration;

fn client(fake: &FakeLago, retry: RetryPolicy) -> Client {
    ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .retry_policy(retry)
        .build()
        .unwrap()
}

fn no_retry(fake: &FakeLago) -> Client {
    client(fake, RetryPolicy::none())
}

async fn start(b: FakeLagoBuilder) -> FakeLago {
    b.start().await.expect("bind loopback")
}

/// Every record a list request returns, across all pages.
async fn every<P>(request: P) -> Vec<<P::Page as Page>::Item>
where
    P: Paginate,
    <P::Page as Page>::Item: RecordKey + Send,
{
    request.items().try_collect().await.unwrap()
}

async fn all_activity(c: &Client) -> Vec<ActivityLogObject> {
    c.find_all_activity_logs()
        .per_page(1000)
        .items()
        .try_collect()
        .await
        .unwrap()
}

async fn all_api(c: &Client) -> Vec<ApiLogObject> {
    c.find_all_api_logs()
        .per_page(1000)
        .items()
        .try_collect()
        .await
        .unwrap()
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(id).collect()
}

#[tokio::test]
async fn activity_log_filters_match_an_independent_computation() {
    let fake = start(FakeLago::builder().seed(3).records_per_kind(1200, 10, 10)).await;
    let c = no_retry(&fake);
    let everything = all_activity(&c).await;
    assert_eq!(everything.len(), 1200);
    let id = |l: &ActivityLogObject| l.activity_id.to_string();
    let pick = &everything[17];

    let expect = |pred: &dyn Fn(&ActivityLogObject) -> bool| -> Vec<String> {
        everything.iter().filter(|l| pred(l)).map(id).collect()
    };
    let got: Vec<ActivityLogObject> = c
        .find_all_activity_logs()
        .activity_types([pick.activity_type.as_str(), "plan.deleted"])
        .per_page(1000)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        ids(&got, id),
        expect(&|l| l.activity_type == pick.activity_type || l.activity_type == "plan.deleted")
    );

    let got: Vec<_> = every(
        c.find_all_activity_logs()
            .activity_sources(vec![ActivitySource::Front])
            .user_emails(vec!["monica+finance@piedpiper.test"])
            .per_page(1000),
    )
    .await;
    let want = expect(&|l| {
        l.activity_source == ActivitySource::Front
            && l.user_email.as_deref() == Some("monica+finance@piedpiper.test")
    });
    assert!(!want.is_empty());
    assert_eq!(ids(&got, id), want);

    let with_customer = everything
        .iter()
        .find(|l| l.external_subscription_id.is_some())
        .unwrap();
    let got: Vec<_> = every(
        c.find_all_activity_logs()
            .external_customer_id(with_customer.external_customer_id.clone().unwrap())
            .external_subscription_id(with_customer.external_subscription_id.clone().unwrap())
            .per_page(1000),
    )
    .await;
    assert_eq!(
        ids(&got, id),
        expect(
            &|l| l.external_customer_id == with_customer.external_customer_id
                && l.external_subscription_id == with_customer.external_subscription_id
        )
    );

    let got: Vec<_> = c
        .find_all_activity_logs()
        .resource_ids(vec![pick.resource_id])
        .resource_types(vec![pick.resource_type.clone()])
        .send()
        .await
        .unwrap()
        .into_inner()
        .activity_logs;
    assert_eq!(ids(&got, id), vec![id(pick)]);

    // Inclusive bounds; a bare date means 00:00:00 UTC.
    let from = everything[300].logged_at;
    let to = everything[100].logged_at;
    let got: Vec<_> = every(
        c.find_all_activity_logs()
            .from_date(from)
            .to_date(to)
            .per_page(1000),
    )
    .await;
    assert_eq!(
        ids(&got, id),
        expect(&|l| l.logged_at >= from && l.logged_at <= to)
    );
    let day = NaiveDate::from_ymd_opt(2025, 4, 1).unwrap();
    let got: Vec<_> = every(c.find_all_activity_logs().to_date(day).per_page(1000)).await;
    let midnight: DateTime<Utc> = Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap());
    assert_eq!(ids(&got, id), expect(&|l| l.logged_at <= midnight));
}

#[tokio::test]
async fn api_log_filters_match_an_independent_computation() {
    let fake = start(FakeLago::builder().seed(5).records_per_kind(10, 1500, 10)).await;
    let c = no_retry(&fake);
    let everything = all_api(&c).await;
    let id = |l: &ApiLogObject| l.request_id.clone();
    let expect = |pred: &dyn Fn(&ApiLogObject) -> bool| -> Vec<String> {
        everything.iter().filter(|l| pred(l)).map(id).collect()
    };
    async fn query(b: lago_audit_client::builder::FindAllApiLogs<'_>) -> Vec<ApiLogObject> {
        every(b.per_page(1000)).await
    }

    let got = query(c.find_all_api_logs().http_methods(vec![HttpMethod::Delete])).await;
    assert_eq!(
        ids(&got, id),
        expect(&|l| l.http_method == HttpMethod::Delete)
    );

    let got = query(
        c.find_all_api_logs()
            .http_statuses(vec![HttpStatusFilter::Failed]),
    )
    .await;
    assert_eq!(ids(&got, id), expect(&|l| l.http_status >= 400));
    let got = query(c.find_all_api_logs().http_statuses(vec![
        HttpStatusFilter::Succeeded,
        HttpStatusFilter::code(404).unwrap(),
    ]))
    .await;
    assert_eq!(
        ids(&got, id),
        expect(&|l| l.http_status < 400 || l.http_status == 404)
    );

    let got = query(c.find_all_api_logs().request_paths(vec!["/api/v1/plans*"])).await;
    let want = expect(&|l| l.request_path.starts_with("/api/v1/plans"));
    assert!(!want.is_empty());
    assert_eq!(ids(&got, id), want);
    let got = query(c.find_all_api_logs().request_paths(vec!["/api/v1/plans"])).await;
    assert_eq!(
        ids(&got, id),
        expect(&|l| l.request_path == "/api/v1/plans")
    );

    let got = query(
        c.find_all_api_logs()
            .clients(vec!["curl/8.5.0"])
            .api_version("v1"),
    )
    .await;
    assert_eq!(ids(&got, id), expect(&|l| l.client == "curl/8.5.0"));
    assert!(query(c.find_all_api_logs().api_version("v2"))
        .await
        .is_empty());

    // Some request ids are callers' own X-Request-Ids, not uuids; they decode and can be fetched.
    let own = everything
        .iter()
        .find(|l| l.request_id.starts_with("req-"))
        .expect("a custom request id");
    let fetched = c
        .find_api_log()
        .request_id(own.request_id.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(&fetched.api_log, own);
}

#[tokio::test]
async fn security_logs_need_to_date_and_filter() {
    let fake = start(FakeLago::builder().records_per_kind(10, 10, 400)).await;
    let c = no_retry(&fake);
    // Sent without to_date (bypassing the client's check), the fake answers like Lago: 422.
    let raw = reqwest::Client::new()
        .get(format!("{}/security_logs", fake.base_url()))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["error_details"]["to_date"][0], "value_is_mandatory");

    let to = DateFilter::from(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
    let all: Vec<_> = every(c.find_all_security_logs().to_date(to).per_page(1000)).await;
    assert_eq!(all.len(), 400);
    let rotated: Vec<_> = every(
        c.find_all_security_logs()
            .to_date(to)
            .log_types(vec![lago_audit_client::SecurityLogType::ApiKey])
            .log_events(vec!["api_key.rotated"])
            .per_page(1000),
    )
    .await;
    let want: Vec<_> = all
        .iter()
        .filter(|l| l.log_event == "api_key.rotated")
        .map(|l| l.log_id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(rotated.iter().map(|l| l.log_id).collect::<Vec<_>>(), want);
    let one = c
        .find_security_log()
        .log_id(all[3].log_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(one.security_log, all[3]);
}

fn meta(page: i64, next: Option<i64>, prev: Option<i64>, pages: i64, count: i64) -> PaginationMeta {
    PaginationMeta {
        current_page: page,
        next_page: next,
        prev_page: prev,
        total_pages: pages,
        total_count: count,
    }
}

#[tokio::test]
async fn meta_arithmetic_and_defaults() {
    let fake = start(FakeLago::builder().records_per_kind(250, 0, 0)).await;
    let c = no_retry(&fake);
    let first = c.find_all_activity_logs().send().await.unwrap();
    assert_eq!(first.activity_logs.len(), 100, "per_page defaults to 100");
    assert_eq!(first.meta, meta(1, Some(2), None, 3, 250));
    let last = c.find_all_activity_logs().page(3).send().await.unwrap();
    assert_eq!(last.activity_logs.len(), 50);
    assert_eq!(last.meta, meta(3, None, Some(2), 3, 250));
    let beyond = c.find_all_activity_logs().page(9).send().await.unwrap();
    assert!(beyond.activity_logs.is_empty());
    assert_eq!(beyond.meta, meta(9, None, Some(8), 3, 250));
    let big = c
        .find_all_activity_logs()
        .per_page(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(big.meta, meta(1, None, None, 1, 250), "no maximum per_page");
    // Newest first, at second precision.
    let logs = &big.activity_logs;
    assert!(logs.windows(2).all(|w| w[0].logged_at >= w[1].logged_at));
    assert!(logs
        .iter()
        .all(|l| l.logged_at.timestamp_subsec_nanos() == 0));
    // An empty result has Lago's 0/0 meta.
    let empty = c.find_all_api_logs().send().await.unwrap();
    assert_eq!(empty.meta, meta(0, None, None, 0, 0));
    let none = c
        .find_all_activity_logs()
        .activity_types(vec!["nothing.happened"])
        .send()
        .await
        .unwrap();
    assert_eq!(none.meta, meta(0, None, None, 0, 0));
}

#[tokio::test]
async fn retention_limits_lists_but_not_lookups() {
    let fake = start(FakeLago::builder().records_per_kind(600, 0, 0)).await;
    let page = no_retry(&fake)
        .find_all_activity_logs()
        .per_page(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.meta.total_count, 600,
        "600 records span 200 seconds, inside 30 days"
    );

    // A zero-day window keeps only the newest second (three records share it).
    let fake = start(
        FakeLago::builder()
            .records_per_kind(600, 0, 0)
            .retention_days(0, 0, 0),
    )
    .await;
    let c = no_retry(&fake);
    let page = c
        .find_all_activity_logs()
        .per_page(1000)
        .send()
        .await
        .unwrap();
    assert_eq!(page.meta.total_count, 3);
    let oldest = fake.generator().id(
        lago_audit_fake::data::Kind::Activity,
        lago_audit_fake::data::Slot::Base(599),
    );
    let found = c
        .find_activity_log()
        .activity_id(oldest.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(found.activity_log.activity_id, oldest);
}

#[tokio::test]
async fn auth_gating_and_not_found() {
    let fake = start(FakeLago::builder()).await;
    let wrong = ClientBuilder::new("wrong-key")
        .base_url(fake.base_url())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let err = wrong.find_all_activity_logs().send().await.unwrap_err();
    assert_eq!(err.status().unwrap().as_u16(), 401);
    assert_eq!(fake.counts().unauthorized, 1);

    let c = no_retry(&fake);
    for (err, code) in [
        (
            c.find_activity_log()
                .activity_id("nope")
                .send()
                .await
                .unwrap_err(),
            "activity_log_not_found",
        ),
        (
            c.find_api_log()
                .request_id(uuid::Uuid::nil().to_string())
                .send()
                .await
                .unwrap_err(),
            "api_log_not_found",
        ),
        (
            c.find_security_log().log_id("x").send().await.unwrap_err(),
            "security_log_not_found",
        ),
    ] {
        assert_eq!(err.status().unwrap().as_u16(), 404);
        assert_eq!(err.code(), Some(code));
    }
    let bad_date = reqwest::Client::new()
        .get(format!(
            "{}/activity_logs?from_date=yesterday",
            fake.base_url()
        ))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(bad_date.status(), 422);
    let unknown_route = reqwest::Client::new()
        .get(format!("{}/invoices", fake.base_url()))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = unknown_route.json().await.unwrap();
    assert_eq!(body["code"], "resource_not_found");

    let basic = start(FakeLago::builder().premium(false)).await;
    let err = no_retry(&basic)
        .find_all_api_logs()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.status().unwrap().as_u16(), err.code()),
        (403, Some("feature_unavailable"))
    );
    let no_addon = start(FakeLago::builder().security_logs_addon(false)).await;
    let c = no_retry(&no_addon);
    let err = c
        .find_all_security_logs()
        .to_date("2025-01-01")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (err.status().unwrap().as_u16(), err.code()),
        (403, Some("forbidden"))
    );
    assert!(c.find_all_activity_logs().send().await.is_ok());
}

fn fast_retries(n: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: n,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_wait: Duration::from_secs(3),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn injected_server_errors_are_counted_and_retried_away() {
    let fake = start(FakeLago::builder().seed(11).error_rate(0.4)).await;
    let c = client(&fake, fast_retries(10));
    for _ in 0..20 {
        c.find_all_activity_logs().per_page(5).send().await.unwrap();
    }
    let counts = fake.counts();
    assert!(counts.server_errors > 0, "{counts:?}");
    assert_eq!(counts.requests, 20 + counts.server_errors);
    let plain = no_retry(&fake);
    let mut statuses = std::collections::BTreeSet::new();
    for _ in 0..60 {
        if let Err(e) = plain.find_all_activity_logs().per_page(5).send().await {
            statuses.insert(e.status().unwrap().as_u16());
        }
    }
    assert_eq!(statuses, [500, 502, 503].into_iter().collect());
}

#[tokio::test]
async fn rate_limits_answer_429_with_headers_and_the_client_waits() {
    let fake = start(FakeLago::builder().rate_limit(3)).await;
    let raw = reqwest::Client::new()
        .get(format!("{}/activity_logs?per_page=1", fake.base_url()))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap();
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(raw.headers().contains_key(h), "{h}");
    }
    assert_eq!(raw.headers()["x-ratelimit-limit"], "3");
    // Without its own limiter, the client runs into 429s and waits them out (they do not use up
    // the one retry it has for other faults).
    let unlimited = ClientBuilder::new(fake.api_key())
        .base_url(fake.base_url())
        .retry_policy(fast_retries(1))
        .rate_limit(0)
        .build()
        .unwrap();
    for _ in 0..8 {
        unlimited
            .find_all_activity_logs()
            .per_page(1)
            .send()
            .await
            .unwrap();
    }
    let throttled = fake.counts().rate_limited;
    assert!(throttled > 0, "{:?}", fake.counts());
    // With its limiter, the client slows down when X-RateLimit-Remaining runs low: no 429 at all.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let c = client(&fake, fast_retries(0));
    for _ in 0..8 {
        c.find_all_activity_logs().per_page(1).send().await.unwrap();
    }
    assert_eq!(fake.counts().rate_limited, throttled, "{:?}", fake.counts());
}

#[tokio::test]
async fn resets_and_truncations_become_errors_and_are_counted() {
    let fake = start(FakeLago::builder().reset_rate(1.0)).await;
    let err = no_retry(&fake)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    assert_eq!(fake.counts().resets, 1);

    let fake = start(FakeLago::builder().truncate_rate(1.0)).await;
    let err = no_retry(&fake)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    assert_eq!(fake.counts().truncations, 1);
}

#[tokio::test]
async fn connections_cut_mid_body_are_retried_away() {
    let fake = start(FakeLago::builder().seed(9).reset_rate(0.5)).await;
    let c = client(&fake, fast_retries(10));
    for _ in 0..20 {
        let page = c
            .find_all_activity_logs()
            .per_page(20)
            .send()
            .await
            .unwrap();
        assert_eq!(page.activity_logs.len(), 20);
    }
    let counts = fake.counts();
    assert!(counts.resets > 0, "{counts:?}");
    assert_eq!(counts.requests, 20 + counts.resets);
}

#[tokio::test]
async fn latency_is_added() {
    let fake = start(FakeLago::builder().latency(Duration::from_millis(150))).await;
    let started = std::time::Instant::now();
    no_retry(&fake)
        .find_all_activity_logs()
        .per_page(1)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn inserts_while_paging_shift_pages_and_items_drops_the_repeats() {
    let fake = start(
        FakeLago::builder()
            .records_per_kind(100, 0, 0)
            .insert_per_request(3),
    )
    .await;
    let c = no_retry(&fake);
    let pages: Vec<_> = c
        .find_all_activity_logs()
        .per_page(10)
        .pages()
        .try_collect()
        .await
        .unwrap();
    let raw: Vec<String> = pages
        .iter()
        .flat_map(|p| p.activity_logs.iter().map(|l| l.activity_id.to_string()))
        .collect();
    let unique: std::collections::HashSet<_> = raw.iter().collect();
    assert!(
        unique.len() < raw.len(),
        "inserts pushed records across page boundaries"
    );
    assert!(fake.counts().inserted >= 30);

    // With to_date pinned, inserts (all newer) stay out of the query, and without shuffled ties
    // items() reads exactly the base records, in order.
    let to = fake.generator().now();
    let items: Vec<_> = every(c.find_all_activity_logs().to_date(to).per_page(10)).await;
    let ids: Vec<uuid::Uuid> = items.iter().map(|l| l.activity_id).collect();
    assert_eq!(ids, fake.ground_truth(Kind::Activity, None, Some(to)));
    assert_eq!(ids.len(), 100);
}

#[tokio::test]
async fn ground_truth_lists_base_inserted_and_visible_late_records() {
    let fake = start(
        FakeLago::builder()
            .records_per_kind(30, 30, 0)
            .insert_per_request(2),
    )
    .await;
    let c = no_retry(&fake);
    let now = fake.generator().now();
    let base = fake.ground_truth(Kind::Activity, None, None);
    assert_eq!(base.len(), 30);
    c.find_all_activity_logs().send().await.unwrap();
    let late = fake.insert(
        Kind::Activity,
        now - chrono::Duration::seconds(5),
        Duration::from_millis(300),
    );
    let truth = fake.ground_truth(Kind::Activity, None, None);
    assert_eq!(
        truth.len(),
        32,
        "two inserts, the late record not visible yet"
    );
    assert!(!truth.contains(&late));
    let listed: Vec<uuid::Uuid> = every(c.find_all_activity_logs().per_page(100))
        .await
        .iter()
        .map(|l| l.activity_id)
        .collect();
    // Listing inserted two more (newest): the ground truth now holds them too.
    assert_eq!(listed, fake.ground_truth(Kind::Activity, None, None));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let page = c
        .find_all_activity_logs()
        .from_date(now - chrono::Duration::seconds(5))
        .to_date(now - chrono::Duration::seconds(5))
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = page.activity_logs.iter().map(|l| l.activity_id).collect();
    assert!(ids.contains(&late), "visible once its delay passed");
    assert_eq!(
        page.meta.total_count, 4,
        "three base records share that second"
    );
    assert_eq!(
        c.find_activity_log()
            .activity_id(late.to_string())
            .send()
            .await
            .unwrap()
            .activity_log
            .logged_at,
        now - chrono::Duration::seconds(5)
    );
}

#[tokio::test]
async fn api_logs_reuse_request_ids_with_different_content() {
    let fake = start(FakeLago::builder().seed(4).records_per_kind(0, 3000, 0)).await;
    let all = all_api(&no_retry(&fake)).await;
    let mut by_id: std::collections::HashMap<&str, Vec<&ApiLogObject>> = Default::default();
    for l in &all {
        by_id.entry(l.request_id.as_str()).or_default().push(l);
    }
    let shared: Vec<_> = by_id.values().filter(|v| v.len() > 1).collect();
    assert!(shared.len() > 50, "{} shared request ids", shared.len());
    assert!(shared.iter().any(|v| v
        .iter()
        .any(|l| l.logged_at == v[0].logged_at && l != &v[0])));
    for group in shared {
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                assert_ne!(a, b, "records sharing a request id still differ");
            }
        }
    }
}

#[tokio::test]
async fn a_prefixed_id_of_another_kind_is_not_found() {
    let fake = start(FakeLago::builder()).await;
    let c = no_retry(&fake);
    let activity = fake
        .generator()
        .id(Kind::Activity, lago_audit_fake::data::Slot::Base(1));
    assert!(c
        .find_activity_log()
        .activity_id(activity.to_string())
        .send()
        .await
        .is_ok());
    let err = c
        .find_activity_log()
        .activity_id(format!("req-{activity}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("activity_log_not_found"));
}

#[tokio::test]
async fn timelines_lay_records_out_in_groups_with_gaps() {
    // 5 records now, nothing for 10 s, 2,000 in one second, then 1.
    let fake = start(FakeLago::builder().groups(vec![(0, 5), (10, 2000), (11, 1)])).await;
    let c = no_retry(&fake);
    let now = fake.generator().now();
    let page = c
        .find_all_activity_logs()
        .from_date(now - chrono::Duration::seconds(10))
        .to_date(now - chrono::Duration::seconds(1))
        .per_page(3)
        .send()
        .await
        .unwrap();
    assert_eq!(page.meta.total_count, 2000);
    assert!(page
        .activity_logs
        .iter()
        .all(|l| l.logged_at == now - chrono::Duration::seconds(10)));
    let gap = c
        .find_all_activity_logs()
        .from_date(now - chrono::Duration::seconds(9))
        .to_date(now - chrono::Duration::seconds(1))
        .send()
        .await
        .unwrap();
    assert_eq!(gap.meta.total_count, 0);
    assert_eq!(fake.ground_truth(Kind::Activity, None, None).len(), 2006);
}

#[tokio::test]
async fn shuffled_ties_reorder_equal_timestamps_only() {
    let fake = start(
        FakeLago::builder()
            .records_per_kind(300, 0, 0)
            .shuffle_ties(true),
    )
    .await;
    let c = no_retry(&fake);
    let mut orders = std::collections::HashSet::new();
    for _ in 0..5 {
        let page = c
            .find_all_activity_logs()
            .per_page(300)
            .send()
            .await
            .unwrap();
        let logs = page.into_inner().activity_logs;
        assert!(
            logs.windows(2).all(|w| w[0].logged_at >= w[1].logged_at),
            "still newest first"
        );
        orders.insert(logs.iter().map(|l| l.activity_id).collect::<Vec<_>>());
    }
    assert!(orders.len() > 1, "ties came back in different orders");
    assert_eq!(fake.counts().shuffled_queries, 5);
}

#[tokio::test]
async fn a_million_records_page_from_both_ends() {
    let fake = start(FakeLago::builder().records_per_kind(1_000_000, 0, 0)).await;
    let c = no_retry(&fake);
    let first = c
        .find_all_activity_logs()
        .per_page(100)
        .send()
        .await
        .unwrap();
    assert_eq!(first.meta.total_count, 1_000_000);
    assert_eq!(first.meta.total_pages, 10_000);
    let last = c
        .find_all_activity_logs()
        .page(10_000)
        .per_page(100)
        .send()
        .await
        .unwrap();
    assert_eq!(last.activity_logs.len(), 100);
    assert!(last.activity_logs[99].logged_at < first.activity_logs[0].logged_at);
    // A filtered query scans all of them, holding one page.
    let filtered = c
        .find_all_activity_logs()
        .activity_types(vec!["order.executed"])
        .per_page(100)
        .send()
        .await
        .unwrap();
    let share = filtered.meta.total_count as f64 / 1_000_000.0;
    assert!((share - 1.0 / 75.0).abs() < 0.002, "{share}");
    assert!(filtered
        .activity_logs
        .iter()
        .all(|l| l.activity_type == "order.executed"));
}
