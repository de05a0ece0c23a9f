//! Typed errors for every documented and undocumented error status, retries, and the API key
//! kept out of every text.

use lago_audit_client::{ClientBuilder, Error, RetryPolicy};
use lago_audit_client_tests::{client_for, scripted, Answer, TEST_KEY};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

fn fast_retries(max: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: max,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_wait: Duration::from_secs(2),
        ..RetryPolicy::default()
    }
}

fn retrying_client(base: &str, max: u32) -> lago_audit_client::Client {
    ClientBuilder::new(TEST_KEY)
        .base_url(base)
        .retry_policy(fast_retries(max))
        .build()
        .unwrap()
}

async fn get_error(answer: Answer) -> Error {
    let (base, _) = scripted(vec![answer]).await;
    let err = client_for(&base)
        .find_activity_log()
        .activity_id("1a901a90-1a90-1a90-1a90-1a901a901a90")
        .send()
        .await
        .expect_err("an error status");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(TEST_KEY), "the key leaked into {text}");
    err
}

#[tokio::test]
async fn lago_error_bodies_become_typed_errors_with_their_codes() {
    let cases = [
        (json!({"status": 401, "error": "Unauthorized"}), None),
        (
            json!({"status": 403, "error": "Forbidden", "code": "feature_unavailable"}),
            Some("feature_unavailable"),
        ),
        (
            json!({"status": 403, "error": "Forbidden", "code": "read_action_not_allowed_for_activity_log"}),
            Some("read_action_not_allowed_for_activity_log"),
        ),
        (
            json!({"status": 404, "error": "Not Found", "code": "activity_log_not_found"}),
            Some("activity_log_not_found"),
        ),
        (
            json!({"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                   "error_details": {"to_date": ["invalid_date"]}}),
            Some("validation_errors"),
        ),
    ];
    for (body, code) in cases {
        let status = body["status"].as_u64().unwrap() as u16;
        let err = get_error(Answer::json(status, &body)).await;
        let api = err.as_api().unwrap_or_else(|| panic!("{err:?}"));
        assert_eq!(api.status.as_u16(), status);
        assert_eq!(err.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(err.code(), code);
        assert_eq!(api.error.as_deref(), body["error"].as_str());
        assert_eq!(
            api.details.clone().map(serde_json::Value::Object),
            body.get("error_details").cloned()
        );
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
}

#[tokio::test]
async fn html_bodies_keep_their_status_documented_or_not() {
    for status in [401u16, 403, 404, 500, 502, 504] {
        let err = get_error(Answer::Http(
            status,
            vec!["content-type: text/html".into()],
            b"<html><body>upstream went away</body></html>".to_vec(),
        ))
        .await;
        let api = err.as_api().unwrap_or_else(|| panic!("{status}: {err:?}"));
        assert_eq!(api.status.as_u16(), status);
        assert!(api
            .raw_body
            .as_deref()
            .unwrap()
            .contains("upstream went away"));
        assert_eq!(api.code, None);
        assert_eq!(err.is_retryable(), [500, 502, 504].contains(&status));
    }
}

#[tokio::test]
async fn huge_error_bodies_are_truncated() {
    let err = get_error(Answer::Http(500, vec![], vec![b'x'; 3 * 1024 * 1024])).await;
    let raw = err.as_api().unwrap().raw_body.clone().unwrap();
    assert_eq!(raw.len(), lago_audit_client::error::MAX_ERROR_BODY);
    assert!(
        err.to_string().len() < 2_000,
        "the message quotes a snippet only"
    );
}

#[tokio::test]
async fn rate_limits_report_the_wait() {
    let err = get_error(Answer::Http(
        429,
        vec![
            "x-ratelimit-limit: 50".into(),
            "x-ratelimit-remaining: 0".into(),
            "x-ratelimit-reset: 17".into(),
        ],
        br#"{"status":429,"error":"Too Many Requests"}"#.to_vec(),
    ))
    .await;
    assert_eq!(
        err.as_api().unwrap().retry_after,
        Some(Duration::from_secs(17))
    );
    assert!(err.is_retryable());
}

#[tokio::test]
async fn transient_failures_are_retried_then_succeed() {
    let ok = json!({"activity_logs": [], "meta": {"current_page": 0, "next_page": null, "prev_page": null, "total_pages": 0, "total_count": 0}});
    let (base, seen) = scripted(vec![
        Answer::Hangup,
        Answer::json(503, &json!({"status": 503, "error": "Service Unavailable"})),
        Answer::Http(429, vec!["retry-after: 0".into()], vec![]),
        Answer::json(200, &ok),
    ])
    .await;
    let page = retrying_client(&base, 3)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap();
    assert_eq!(page.meta.total_count, 0);
    assert_eq!(seen.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn retries_are_capped() {
    let (base, seen) = scripted(vec![Answer::json(
        502,
        &json!({"status": 502, "error": "Bad Gateway"}),
    )])
    .await;
    let err = retrying_client(&base, 2)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.status().map(|s| s.as_u16()), Some(502));
    assert_eq!(
        seen.load(Ordering::SeqCst),
        3,
        "one attempt and two retries"
    );
}

#[tokio::test]
async fn permanent_errors_and_long_waits_are_not_retried() {
    let (base, seen) = scripted(vec![Answer::json(
        404,
        &json!({"status": 404, "error": "Not Found", "code": "activity_log_not_found"}),
    )])
    .await;
    let err = retrying_client(&base, 3)
        .find_activity_log()
        .activity_id("x")
        .send()
        .await
        .expect_err("a 404");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(err.code(), Some("activity_log_not_found"));
    assert!(!err.is_retryable());
    assert_eq!(seen.load(Ordering::SeqCst), 1, "a 404 is not retried");

    let (base, seen) = scripted(vec![Answer::Http(
        429,
        vec!["retry-after: 3600".into()],
        vec![],
    )])
    .await;
    let err = retrying_client(&base, 3)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "an hour is longer than max_wait"
    );
    assert_eq!(
        err.as_api().unwrap().retry_after,
        Some(Duration::from_secs(3600))
    );
}

#[tokio::test]
async fn transport_errors_name_no_url_and_no_key() {
    let client = client_for("http://127.0.0.1:9");
    let err = client
        .find_all_activity_logs()
        .user_emails(["private.person@example.com"])
        .send()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("127.0.0.1:9"),
        "names the host: {err}"
    );
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains("private.person"),
        "query values stay out of errors: {text}"
    );
    assert!(!text.contains(TEST_KEY));
    assert!(!format!("{client:?}").contains(TEST_KEY));
}

#[tokio::test]
async fn network_errors_name_the_host_and_the_attempts() {
    let err = retrying_client("http://127.0.0.1:9", 2)
        .find_all_activity_logs()
        .send()
        .await
        .unwrap_err();
    let Error::Transport(t) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(t.attempts, 3, "one attempt and two retries");
    assert_eq!(t.host.as_deref(), Some("127.0.0.1:9"));
    let text = err.to_string();
    assert!(
        text.starts_with("could not reach 127.0.0.1:9 (after 3 attempts): "),
        "{text}"
    );
}

#[tokio::test]
async fn errors_need_no_conversion_and_survive_boxing() {
    async fn boxed(base: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        client_for(base)
            .find_activity_log()
            .activity_id("nope")
            .send()
            .await?;
        Ok(())
    }
    let (base, _) = scripted(vec![Answer::json(
        404,
        &json!({"status": 404, "error": "Not Found", "code": "activity_log_not_found"}),
    )])
    .await;
    // `send()` returns this crate's `Error`: `code()` with no `map_err`.
    let direct = client_for(&base)
        .find_activity_log()
        .activity_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(direct.code(), Some("activity_log_not_found"));
    let boxed = boxed(&base).await.unwrap_err();
    let err = boxed.downcast_ref::<Error>().expect("still our Error");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(404));
    assert_eq!(err.code(), Some("activity_log_not_found"));
    let text = boxed.to_string();
    assert!(
        text.contains("404") && text.contains("activity_log_not_found"),
        "{text}"
    );
}

#[tokio::test]
async fn messages_carry_status_code_details_and_a_hint() {
    let (base, _) = scripted(vec![Answer::json(
        401,
        &json!({"status": 401, "error": "Unauthorized"}),
    )])
    .await;
    let from_env = ClientBuilder::from_lookup(|name| {
        (name == "LAGO_API_KEY").then(|| "env-key-that-is-wrong".to_owned())
    })
    .base_url(&base)
    .retry_policy(RetryPolicy::none())
    .build()
    .unwrap();
    let err = from_env.find_all_activity_logs().send().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("from LAGO_API_KEY"), "{text}");
    assert!(!text.contains("env-key-that-is-wrong"), "{text}");
    let given = client_for(&base).find_all_activity_logs().send().await;
    let text = given.unwrap_err().to_string();
    assert!(text.contains("given to the client"), "{text}");

    let err = get_error(Answer::json(
        403,
        &json!({"status": 403, "error": "Forbidden", "code": "feature_unavailable"}),
    ))
    .await;
    let text = err.to_string();
    assert!(
        text.contains("feature_unavailable") && text.contains("premium"),
        "{text}"
    );

    let err = get_error(Answer::json(
        422,
        &json!({"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
               "error_details": {"to_date": ["invalid_date"]}}),
    ))
    .await;
    let text = err.to_string();
    assert!(
        text.contains("422") && text.contains("validation_errors") && text.contains("invalid_date"),
        "{text}"
    );

    let err = get_error(Answer::json(
        404,
        &json!({"status": 404, "error": "Not Found", "code": "resource_not_found"}),
    ))
    .await;
    assert!(err.to_string().contains("base URL"), "{err}");
}

#[tokio::test]
async fn bad_filter_values_name_the_parameter_the_value_and_the_reason() {
    let client = client_for("http://127.0.0.1:9");
    let err = client
        .find_all_activity_logs()
        .from_date("2025-13-01")
        .send()
        .await
        .unwrap_err();
    let Error::InvalidRequest(m) = &err else {
        panic!("{err:?}")
    };
    assert!(m.contains("from_date"), "{m}");
    assert!(m.contains("2025-13-01"), "{m}");
    assert!(m.contains("YYYY-MM-DD"), "the reason: {m}");
    assert!(!m.contains("::"), "no type paths: {m}");

    let err = client
        .find_all_api_logs()
        .http_statuses([200, 999])
        .send()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("http_statuses") && text.contains("999") && text.contains("100..=599"),
        "{text}"
    );
    let err = client
        .find_all_activity_logs()
        .resource_ids(["not-a-uuid"])
        .send()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("resource_ids") && text.contains("not-a-uuid"),
        "{text}"
    );
}
