//! Bad input from a server: a clear, typed error, never a panic.
//!
//! Fixed cases and property-based tests (bounded: a few hundred requests in all) start from the
//! spec's own 200 fixtures, mutate them, serve the result from a loopback server and call the
//! generated client. Unknown fields and unknown enum values must decode; everything else must come
//! back as an [`Error`] that names the status and the problem.

use lago_audit_client::{types, Error};
use lago_audit_client_tests::fixtures::{self, Fixture};
use lago_audit_client_tests::{client_for, scripted, spec, Answer};
use proptest::prelude::*;
use serde_json::{json, Value};

fn fixture(operation: &str) -> Fixture {
    fixtures::fixtures(&spec())
        .unwrap()
        .into_iter()
        .find(|f| f.operation_id == operation && f.status == 200)
        .expect("a 200 fixture")
}

/// Calls `findAllActivityLogs` against a server answering `answer`.
async fn list(answer: Answer) -> Result<types::ActivityLogsPaginated, Error> {
    let (base, _) = scripted(vec![answer]).await;
    Ok(client_for(&base)
        .find_all_activity_logs()
        .send()
        .await?
        .into_inner())
}

fn json_bytes(status: u16, body: Vec<u8>) -> Answer {
    Answer::Http(status, vec!["content-type: application/json".into()], body)
}

fn assert_decode_error(result: Result<types::ActivityLogsPaginated, Error>, mentions: &str) {
    match result {
        Err(Error::Decode {
            status, message, ..
        }) => {
            assert_eq!(status.as_u16(), 200);
            assert!(
                message.contains(mentions),
                "{message:?} should mention {mentions:?}"
            );
        }
        other => panic!("expected a decode error mentioning {mentions:?}, got {other:?}"),
    }
}

fn mutate(body: &Value, field: &str, value: Option<Value>) -> Vec<u8> {
    let mut b = body.clone();
    let record = b["activity_logs"][0].as_object_mut().unwrap();
    match value {
        Some(v) => {
            record.insert(field.into(), v);
        }
        None => {
            record.remove(field);
        }
    }
    b.to_string().into_bytes()
}

#[tokio::test]
async fn fixed_mutations_of_a_list_page() {
    let body = fixture("findAllActivityLogs").body;
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("activity_id", None, "missing field `activity_id`"),
        ("logged_at", None, "missing field `logged_at`"),
        ("activity_type", Some(Value::Null), "invalid type: null"),
        ("resource_type", Some(json!(7)), "invalid type: integer"),
        ("activity_id", Some(json!("1a901a90")), "UUID"),
        (
            "created_at",
            Some(json!("2025-02-30T10:00:00Z")),
            "input is out of range",
        ),
        (
            "logged_at",
            Some(json!("last tuesday")),
            "input contains invalid characters",
        ),
        (
            "activity_object",
            Some(json!({"nested": {"a": 1}})),
            "invalid type: map",
        ),
        (
            "activity_object_changes",
            Some(json!(["x"])),
            "invalid type: sequence",
        ),
    ];
    for (field, value, mention) in cases {
        assert_decode_error(
            list(json_bytes(200, mutate(&body, field, value))).await,
            mention,
        );
    }
    let mut no_meta = body.clone();
    no_meta.as_object_mut().unwrap().remove("meta");
    assert_decode_error(
        list(Answer::json(200, &no_meta)).await,
        "missing field `meta`",
    );
}

#[tokio::test]
async fn unknown_fields_and_values_decode() {
    let mut body = fixture("findAllActivityLogs").body;
    body["activity_logs"][0]["activity_source"] = json!("ai_agent");
    body["activity_logs"][0]["activity_type"] = json!("invoice.teleported");
    body["activity_logs"][0]["resource_type"] = json!("Entitlement::Privilege");
    body["activity_logs"][0]["added_by_lago_later"] = json!({"deep": [1, 2, {"x": null}]});
    body["meta"]["cursor"] = json!("abc");
    body["also_new"] = json!(true);
    let page = list(Answer::json(200, &body)).await.unwrap();
    assert_eq!(page.activity_logs[0].activity_source.as_str(), "ai_agent");
    assert!(page.activity_logs[0].activity_source.is_other());
    assert_eq!(page.activity_logs[0].activity_type, "invoice.teleported");

    let mut api = fixture("findAllApiLogs").body;
    api["api_logs"][0]["http_method"] = json!("patch");
    let (base, _) = scripted(vec![Answer::json(200, &api)]).await;
    let page = client_for(&base).find_all_api_logs().send().await.unwrap();
    assert_eq!(page.api_logs[0].http_method.as_str(), "patch");

    let mut sec = fixture("findAllSecurityLogs").body;
    sec["security_logs"][0]["log_type"] = json!("billing_portal");
    let (base, _) = scripted(vec![Answer::json(200, &sec)]).await;
    let page = client_for(&base)
        .find_all_security_logs()
        .to_date("2025-03-31")
        .send()
        .await
        .unwrap();
    assert_eq!(page.security_logs[0].log_type.as_str(), "billing_portal");
}

#[tokio::test]
async fn broken_bodies() {
    let body = fixture("findAllActivityLogs").body.to_string().into_bytes();
    assert_decode_error(
        list(json_bytes(200, body[..body.len() / 2].to_vec())).await,
        "EOF",
    );
    assert_decode_error(list(json_bytes(200, Vec::new())).await, "EOF");
    assert_decode_error(
        list(json_bytes(200, b"<html>hello</html>".to_vec())).await,
        "expected value",
    );
    // Declared as HTML or text: refused before decoding, even when the bytes are JSON.
    assert_decode_error(
        list(Answer::Http(
            200,
            vec!["content-type: text/html".into()],
            b"<html></html>".to_vec(),
        ))
        .await,
        "text/html",
    );
    assert_decode_error(
        list(Answer::Http(
            200,
            vec!["content-type: text/plain".into()],
            body.clone(),
        ))
        .await,
        "text/plain",
    );
    // Deeply nested JSON in an ignored field is skipped without recursion; cut short, it is EOF.
    let mut deep = b"{\"activity_logs\":[],\"unknown\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    assert_decode_error(list(json_bytes(200, deep)).await, "EOF");
    // In a free-form field (security logs' `resources`) it hits serde_json's recursion limit
    // instead of the stack.
    let mut sec = fixture("findAllSecurityLogs").body;
    sec["security_logs"][0]["resources"] = json!({"x": "HOLE"});
    let nested = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let text = sec.to_string().replace("\"HOLE\"", &nested);
    let (base, _) = scripted(vec![json_bytes(200, text.into_bytes())]).await;
    let err = client_for(&base)
        .find_all_security_logs()
        .to_date("2025-03-31")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Decode { message, .. } if message.contains("recursion limit")),
        "{err}"
    );
}

#[tokio::test]
async fn ten_megabyte_bodies() {
    // Valid and large: a 10 MB unknown field decodes.
    let mut body = fixture("findAllActivityLogs").body;
    body["padding"] = json!("x".repeat(10 * 1024 * 1024));
    let page = list(Answer::json(200, &body)).await.unwrap();
    assert_eq!(page.activity_logs.len(), 2);
    // Invalid and large: a decode error with a bounded message.
    let err = list(json_bytes(200, vec![b'{'; 10 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decode { .. }));
    assert!(err.to_string().len() < 2_000);
}

/// One runtime, server and client for all property cases (building a client loads the system's
/// certificates, which would dominate the run time). Each case sets the server's answer.
struct Harness {
    runtime: tokio::runtime::Runtime,
    answer: std::sync::Arc<std::sync::Mutex<Vec<Answer>>>,
    client: lago_audit_client::Client,
    list_body: Value,
}

static HARNESS: std::sync::LazyLock<Harness> = std::sync::LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = std::sync::Arc::new(std::sync::Mutex::new(vec![Answer::Hangup]));
    let (base, _) = runtime.block_on(lago_audit_client_tests::scripted_with(answer.clone()));
    Harness {
        runtime,
        answer,
        client: client_for(&base),
        list_body: fixture("findAllActivityLogs").body,
    }
});

/// Cases run one after another, so one shared answer slot is enough.
static CASE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn list_blocking(answer: Answer) -> Result<types::ActivityLogsPaginated, Error> {
    let _one_at_a_time = CASE.lock().unwrap_or_else(|p| p.into_inner());
    let h = &*HARNESS;
    *h.answer.lock().unwrap() = vec![answer];
    h.runtime
        .block_on(h.client.find_all_activity_logs().send())
        .map(|r| r.into_inner())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Cutting a valid body anywhere gives a decode error, never a panic.
    #[test]
    fn truncated_bodies(cut in 0.0f64..1.0) {
        let body = HARNESS.list_body.to_string().into_bytes();
        let at = ((body.len() as f64) * cut) as usize;
        let result = list_blocking(json_bytes(200, body[..at].to_vec()));
        prop_assert!(matches!(result, Err(Error::Decode { .. })), "{result:?}");
    }

    /// Arbitrary bytes with any status: a success or a typed error carrying that status.
    #[test]
    fn arbitrary_bodies(
        status in prop::sample::select(vec![200u16, 401, 403, 404, 422, 429, 500, 502, 503]),
        body in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let result = list_blocking(Answer::Http(status, vec![], body));
        match result {
            // Arbitrary bytes with 200: a decode error that keeps the status (or, by chance, a page).
            Ok(_) => prop_assert_eq!(status, 200),
            Err(Error::Decode { status: s, .. }) => {
                prop_assert_eq!(status, 200);
                prop_assert_eq!(s.as_u16(), 200);
            }
            // Any error status: an API error with that status, whatever the body.
            Err(Error::Api(api)) => prop_assert_eq!(api.status.as_u16(), status),
            Err(other) => prop_assert!(false, "{} gave {:?}", status, other),
        }
    }

    /// A record field replaced by an arbitrary JSON value decodes or fails with a decode error.
    #[test]
    fn arbitrary_field_values(
        field in prop::sample::select(vec![
            "activity_id", "activity_type", "activity_source", "activity_object",
            "activity_object_changes", "user_email", "resource_id", "logged_at", "unknown",
        ]),
        value in arb_json(),
    ) {
        let decodes = field_accepts(field, &value);
        let result = list_blocking(json_bytes(200, mutate(&HARNESS.list_body, field, Some(value.clone()))));
        match result {
            Ok(_) => prop_assert!(decodes, "{} = {} should not decode", field, value),
            Err(Error::Decode { ref message, .. }) => {
                prop_assert!(!decodes, "{} = {} should decode: {}", field, value, message);
            }
            Err(other) => prop_assert!(false, "{} = {}: {:?}", field, value, other),
        }
    }
}

/// Whether a record whose `field` is `value` must decode: the outcome the client's types promise,
/// field by field.
fn field_accepts(field: &str, value: &Value) -> bool {
    let string_map = |v: &Value| {
        v.is_null()
            || v.as_object()
                .is_some_and(|m| m.values().all(|x| x.is_string() || x.is_null()))
    };
    match field {
        // Required uuids.
        "activity_id" | "resource_id" => value
            .as_str()
            .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
        // Required open strings (an unknown source is kept, not refused).
        "activity_type" | "activity_source" => value.is_string(),
        // Maps of string-or-null values, or null.
        "activity_object" | "activity_object_changes" => string_map(value),
        // Nullable text.
        "user_email" => value.is_null() || value.is_string(),
        // A required date-time.
        "logged_at" => value
            .as_str()
            .is_some_and(|s| s.parse::<chrono::DateTime<chrono::Utc>>().is_ok()),
        // Unknown fields are ignored.
        "unknown" => true,
        other => unreachable!("no expectation for {other}"),
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        // Valid values of the typed fields, so both outcomes are exercised for them.
        Just(json!("1a901a90-1a90-1a90-1a90-1a901a901a90")),
        Just(json!("2025-03-31T12:31:44Z")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
