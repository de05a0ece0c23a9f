//! Request conformance on the wire: what the generated client really sends, byte for byte, for
//! every parameter of every list operation and for path ids.

use chrono::{NaiveDate, TimeZone, Utc};
use lago_audit_client::{
    config::USER_AGENT, ActivitySource, Error, HttpMethod, HttpStatusFilter, SecurityLogType,
};
use lago_audit_client_tests::{capture_one, client_for, empty_page, TEST_KEY};

/// The request line's target and the lower-cased header lines.
fn split(head: &str) -> (String, Vec<String>) {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    (target, headers)
}

/// Asserts that each `expected` pair is in the request target's query.
fn assert_pairs(target: &str, expected: &[&str]) {
    let pairs = query_pairs(target);
    for e in expected {
        assert!(pairs.iter().any(|p| p == e), "missing {e} in {pairs:?}");
    }
}

fn query_pairs(target: &str) -> Vec<String> {
    target
        .split_once('?')
        .map(|(_, q)| q.split('&').map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn activity_log_filters_are_bracketed_repeated_and_percent_encoded() {
    let (base, head) = capture_one(200, &empty_page("activity_logs")).await;
    let client = client_for(&base);
    let page = client
        .find_all_activity_logs()
        .activity_types(vec!["plan.updated".to_owned(), "a b&c=d#e/f".to_owned()])
        .activity_sources(vec![ActivitySource::Api, ActivitySource::from("ai agent")])
        .user_emails(vec!["dinesh+ops@piedpiper.test".to_owned()])
        .external_customer_id("client é/1")
        .external_subscription_id("sub?x=1")
        .resource_ids(vec![uuid::Uuid::nil()])
        .resource_types(vec!["Entitlement::Feature".to_owned()])
        .from_date(NaiveDate::from_ymd_opt(2022, 8, 9).unwrap())
        .to_date(Utc.with_ymd_and_hms(2022, 8, 10, 23, 59, 59).unwrap())
        .page(2)
        .per_page(50)
        .send()
        .await
        .expect("an empty page decodes");
    assert_eq!(page.meta.total_count, 0);
    let (target, headers) = split(&head.await.unwrap());
    assert!(target.starts_with("/api/v1/activity_logs?"), "{target}");
    assert_pairs(
        &target,
        &[
            "activity_types%5B%5D=plan.updated",
            "activity_types%5B%5D=a+b%26c%3Dd%23e%2Ff",
            "activity_sources%5B%5D=api",
            "activity_sources%5B%5D=ai+agent",
            "user_emails%5B%5D=dinesh%2Bops%40piedpiper.test",
            "external_customer_id=client+%C3%A9%2F1",
            "external_subscription_id=sub%3Fx%3D1",
            "resource_ids%5B%5D=00000000-0000-0000-0000-000000000000",
            "resource_types%5B%5D=Entitlement%3A%3AFeature",
            "from_date=2022-08-09",
            "to_date=2022-08-10T23%3A59%3A59Z",
            "page=2",
            "per_page=50",
        ],
    );
    let pairs = query_pairs(&target);
    assert_eq!(pairs.len(), 13, "{pairs:?}");
    assert!(headers.contains(&format!(
        "authorization: bearer {}",
        TEST_KEY.to_ascii_lowercase()
    )));
    assert!(headers.contains(&format!("user-agent: {USER_AGENT}")));
    assert!(headers.contains(&"accept: application/json".to_owned()));
    assert!(headers.iter().any(|h| h.starts_with("api-version: ")));
}

#[tokio::test]
async fn omitted_parameters_are_not_sent() {
    let (base, head) = capture_one(200, &empty_page("activity_logs")).await;
    client_for(&base)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_eq!(target, "/api/v1/activity_logs");
}

#[tokio::test]
async fn api_log_filters() {
    let (base, head) = capture_one(200, &empty_page("api_logs")).await;
    client_for(&base)
        .find_all_api_logs()
        .http_methods(vec![HttpMethod::Post, HttpMethod::Get])
        .http_statuses(vec![
            HttpStatusFilter::Failed,
            HttpStatusFilter::code(422).unwrap(),
        ])
        .api_version("v1")
        .request_paths(vec!["/api/v1/plans*".to_owned()])
        .clients(vec!["Lago Ruby v1.26.0".to_owned()])
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_pairs(
        &target,
        &[
            "http_methods%5B%5D=post",
            "http_methods%5B%5D=get",
            "http_statuses%5B%5D=failed",
            "http_statuses%5B%5D=422",
            "api_version=v1",
            "request_paths%5B%5D=%2Fapi%2Fv1%2Fplans*",
            "clients%5B%5D=Lago+Ruby+v1.26.0",
        ],
    );
    assert!(
        !target.contains("request_paths="),
        "the scalar form makes Lago fail with 500"
    );
}

#[tokio::test]
async fn security_log_filters_and_the_mandatory_to_date() {
    // Without to_date the request is refused before anything is sent.
    let err = client_for("http://127.0.0.1:9")
        .find_all_security_logs()
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidRequest(m) if m.contains("to_date")),
        "{err}"
    );

    let (base, head) = capture_one(200, &empty_page("security_logs")).await;
    client_for(&base)
        .find_all_security_logs()
        .to_date(NaiveDate::from_ymd_opt(2025, 3, 31).unwrap())
        .log_types(vec![SecurityLogType::ApiKey])
        .log_events(vec!["api_key.rotated".to_owned()])
        .user_ids(vec!["u1".to_owned()])
        .api_key_ids(vec!["k1".to_owned(), "k2".to_owned()])
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_pairs(
        &target,
        &[
            "to_date=2025-03-31",
            "log_types%5B%5D=api_key",
            "log_events%5B%5D=api_key.rotated",
            "user_ids%5B%5D=u1",
            "api_key_ids%5B%5D=k1",
            "api_key_ids%5B%5D=k2",
        ],
    );
}

#[tokio::test]
async fn path_ids_stay_inside_their_segment() {
    let log = r#"{"activity_log":{"activity_id":"1a901a90-1a90-1a90-1a90-1a901a901a90","activity_type":"plan.created","activity_source":"api","resource_id":"1a901a90-1a90-1a90-1a90-1a901a901a90","resource_type":"Plan","logged_at":"2025-03-31T12:31:44Z","created_at":"2025-03-31T12:31:44Z"}}"#;
    for (id, expected) in [
        ("../customers", "/api/v1/activity_logs/..%2Fcustomers"),
        ("a b#c?d", "/api/v1/activity_logs/a%20b%23c%3Fd"),
        ("é", "/api/v1/activity_logs/%C3%A9"),
        ("x%2F..", "/api/v1/activity_logs/x%252F.."),
        ("%2e%2e", "/api/v1/activity_logs/%252e%252e"),
        // URL parsers read `\` as `/` in http(s) URLs: this one went to /activity_logs/victim.
        (
            r"someone-else\..\victim",
            "/api/v1/activity_logs/someone-else%5C..%5Cvictim",
        ),
        (r"..\", "/api/v1/activity_logs/..%5C"),
        ("a;b=c", "/api/v1/activity_logs/a%3Bb%3Dc"),
        ("...", "/api/v1/activity_logs/..."),
        ("tab\there", "/api/v1/activity_logs/tab%09here"),
    ] {
        let (base, head) = capture_one(200, log).await;
        client_for(&base)
            .find_activity_log()
            .activity_id(id)
            .send()
            .await
            .unwrap();
        let (target, _) = split(&head.await.unwrap());
        assert_eq!(target, expected, "{id}");
        // Whatever it holds, the id is exactly one segment after /activity_logs/.
        let rest = target.strip_prefix("/api/v1/activity_logs/").unwrap();
        assert!(!rest.contains(['/', '\\', '?', '#']), "{id}: {target}");
    }
    // Ids that URL normalisation would turn into another endpoint are refused before sending.
    for id in ["..", ".", ""] {
        let err = client_for("http://127.0.0.1:9")
            .find_activity_log()
            .activity_id(id)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidRequest(_)), "{id:?}: {err}");
    }
}

#[tokio::test]
async fn array_filters_take_whatever_people_pass() {
    let (base, head) = capture_one(200, &empty_page("activity_logs")).await;
    let types = vec!["plan.updated"];
    client_for(&base)
        .find_all_activity_logs()
        .activity_types(types)
        .activity_sources(["api", "front"])
        .user_emails(vec!["a@example.com".to_owned()])
        .resource_ids(["1a901a90-1a90-1a90-1a90-1a901a901a90"])
        .resource_types(["Plan"].iter().copied())
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_pairs(
        &target,
        &[
            "activity_types%5B%5D=plan.updated",
            "activity_sources%5B%5D=api",
            "activity_sources%5B%5D=front",
            "user_emails%5B%5D=a%40example.com",
            "resource_ids%5B%5D=1a901a90-1a90-1a90-1a90-1a901a901a90",
            "resource_types%5B%5D=Plan",
        ],
    );

    let (base, head) = capture_one(200, &empty_page("api_logs")).await;
    client_for(&base)
        .find_all_api_logs()
        .http_statuses([422, 500])
        .http_methods(["post"])
        .request_paths(["/api/v1/plans*"])
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_pairs(
        &target,
        &[
            "http_statuses%5B%5D=422",
            "http_statuses%5B%5D=500",
            "http_methods%5B%5D=post",
            "request_paths%5B%5D=%2Fapi%2Fv1%2Fplans*",
        ],
    );
    let (base, head) = capture_one(200, &empty_page("api_logs")).await;
    client_for(&base)
        .find_all_api_logs()
        .http_statuses(["failed", "404"])
        .send()
        .await
        .unwrap();
    let (target, _) = split(&head.await.unwrap());
    assert_pairs(
        &target,
        &["http_statuses%5B%5D=failed", "http_statuses%5B%5D=404"],
    );
}
