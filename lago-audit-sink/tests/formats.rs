//! Every event of a demo export of all three kinds validates as OCSF 1.8.0 (against the vendored
//! class schemas) and as ECS (against the vendored field definitions).

mod common;

use common::*;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_fake::FakeLago;
use lago_audit_sink::{ocsf, Format, SinkRecord};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

fn schemas() -> HashMap<u64, jsonschema::Validator> {
    schemas_of("1.8.0")
}

async fn records<T: TestRecord>(fake: &FakeLago) -> Vec<T> {
    use futures::TryStreamExt;
    let events: Vec<_> = T::export_stream(
        &client(fake),
        fake.generator().now(),
        lago_audit_client::ExportOptions::default(),
    )
    .try_collect()
    .await
    .unwrap();
    events
        .into_iter()
        .filter_map(|e| match e {
            lago_audit_client::ExportEvent::Record(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn check_ocsf<T: SinkRecord>(
    records: &[T],
    schemas: &HashMap<u64, jsonschema::Validator>,
    seen: &mut BTreeMap<(u64, u64), usize>,
) {
    for r in records {
        let event = r.to_ocsf();
        let class = event["class_uid"].as_u64().unwrap();
        let activity = event["activity_id"].as_u64().unwrap();
        assert_eq!(event["type_uid"].as_u64(), Some(class * 100 + activity));
        assert_eq!(event["metadata"]["product"]["name"], "Lago");
        assert_eq!(event["metadata"]["version"], ocsf::OCSF_VERSION);
        assert!(event["metadata"]["uid"].is_string());
        let validator = schemas.get(&class).expect("a vendored class");
        let errors: Vec<String> = validator
            .iter_errors(&event)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{event:#}");
        // The line written for it is the same event, keys sorted.
        let line = lago_audit_sink::line(r, Format::Ocsf).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&line).unwrap(), event);
        *seen.entry((class, activity)).or_default() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_all_three_kinds_validates_as_ocsf_1_8_0() {
    let fake = FakeLago::builder()
        .seed(17)
        .records_per_kind(3_000, 2_000, 1_000)
        .start()
        .await
        .unwrap();
    let schemas = schemas();
    let mut seen = BTreeMap::new();
    check_ocsf(
        &records::<ActivityLogObject>(&fake).await,
        &schemas,
        &mut seen,
    );
    check_ocsf(&records::<ApiLogObject>(&fake).await, &schemas, &mut seen);
    check_ocsf(
        &records::<SecurityLogObject>(&fake).await,
        &schemas,
        &mut seen,
    );
    eprintln!("(class, activity) → events: {seen:?}");
    for class in [3001, 3002, 3004, 3005, 4002] {
        assert!(
            seen.keys().any(|(c, _)| *c == class),
            "no event of class {class}"
        );
    }
}

/// The vendored subset of ECS's `ecs_flat.yml`: field → definition.
fn ecs_fields() -> serde_json::Map<String, Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ecs-9.4.0/ecs_flat_subset.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Flattens a document into `a.b.c` → leaf value (arrays of scalars stay whole).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

fn type_fits(ecs_type: &str, v: &Value) -> bool {
    let scalar = |v: &Value| match ecs_type {
        "keyword" | "constant_keyword" | "wildcard" | "text" | "match_only_text" => v.is_string(),
        "date" => v
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "long" | "integer" | "short" | "byte" => v.is_i64() || v.is_u64(),
        "ip" => v
            .as_str()
            .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok()),
        "boolean" => v.is_boolean(),
        other => panic!("an ECS type this test does not know: {other}"),
    };
    match v {
        Value::Array(items) => items.iter().all(scalar),
        other => scalar(other),
    }
}

fn check_ecs<T: SinkRecord>(records: &[T], fields: &serde_json::Map<String, Value>) -> usize {
    let mut checked = 0;
    for r in records {
        let doc = r.to_ecs();
        let mut leaves = Vec::new();
        flatten("", &doc, &mut leaves);
        for (name, value) in leaves {
            if name.starts_with("lago.") || value.is_null() {
                continue; // Lago's own field set.
            }
            let def = fields
                .get(&name)
                .unwrap_or_else(|| panic!("`{name}` is not an ECS field"));
            let ty = def["type"].as_str().unwrap();
            assert!(
                type_fits(ty, &value),
                "`{name}` = {value} is not of ECS type {ty}"
            );
            let is_array = def["normalize"]
                .as_array()
                .is_some_and(|n| n.iter().any(|x| x == "array"));
            assert_eq!(value.is_array(), is_array, "`{name}`: array or not");
            if let Some(allowed) = def.get("allowed_values").and_then(Value::as_array) {
                let values = match &value {
                    Value::Array(items) => items.clone(),
                    scalar => vec![scalar.clone()],
                };
                for v in &values {
                    assert!(
                        allowed.iter().any(|a| a["name"] == *v),
                        "`{name}`: {v} is not an allowed value"
                    );
                }
            }
            checked += 1;
        }
        // Each event.type is one the event.category expects.
        let categories = fields["event.category"]["allowed_values"]
            .as_array()
            .unwrap();
        for c in doc["event"]["category"].as_array().unwrap() {
            let expected = categories
                .iter()
                .find(|a| a["name"] == *c)
                .and_then(|a| a["expected_event_types"].as_array())
                .unwrap();
            for t in doc["event"]["type"].as_array().unwrap() {
                assert!(
                    expected.contains(t),
                    "category {c} does not expect type {t}"
                );
            }
        }
        for required in ["@timestamp", "event.id", "event.action"] {
            let mut leaves = Vec::new();
            flatten("", &doc, &mut leaves);
            assert!(leaves.iter().any(|(n, _)| n == required), "no {required}");
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_document_of_all_three_kinds_uses_ecs_fields_correctly() {
    let fake = FakeLago::builder()
        .seed(18)
        .records_per_kind(1_000, 1_000, 600)
        .start()
        .await
        .unwrap();
    let fields = ecs_fields();
    let n = check_ecs(&records::<ActivityLogObject>(&fake).await, &fields)
        + check_ecs(&records::<ApiLogObject>(&fake).await, &fields)
        + check_ecs(&records::<SecurityLogObject>(&fake).await, &fields);
    assert!(n > 10_000, "{n} fields checked");
    // API logs carry the HTTP fields the issue names.
    let api = records::<ApiLogObject>(&fake).await;
    let doc = api[0].to_ecs();
    for path in [
        "/http/request/method",
        "/http/response/status_code",
        "/url/path",
        "/http/request/id",
        "/user_agent/original",
    ] {
        assert!(doc.pointer(path).is_some(), "{path} missing");
    }
}

/// UUIDv5 (RFC 9562) of `text` in `namespace`, written out here so that the test does not trust
/// the code it checks: SHA-1 of the namespace's bytes and the text, cut to 16 bytes, with the
/// version (5) and variant bits set.
fn uuid5(namespace: uuid::Uuid, text: &[u8]) -> String {
    let mut sha1 = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    sha1.update(namespace.as_bytes());
    sha1.update(text);
    let mut b = [0u8; 16];
    b.copy_from_slice(&sha1.finish().as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_logs_that_share_a_request_id_get_distinct_event_ids() {
    // The fake's callers reuse their X-Request-Id, as Lago's do.
    let fake = FakeLago::builder()
        .seed(19)
        .records_per_kind(10, 2_000, 10)
        .start()
        .await
        .unwrap();
    let api = records::<ApiLogObject>(&fake).await;
    let request_ids: std::collections::HashSet<&str> =
        api.iter().map(|r| r.request_id.as_str()).collect();
    assert!(
        request_ids.len() < api.len(),
        "the export should hold API logs that share a request_id"
    );
    let schemas = schemas();
    let mut ocsf_ids = std::collections::HashSet::new();
    let mut ecs_ids = std::collections::HashSet::new();
    for r in &api {
        let event = r.to_ocsf();
        let doc = r.to_ecs();
        // The request_id stays in its own field.
        assert_eq!(event["http_request"]["uid"], r.request_id.as_str());
        assert_eq!(doc["http"]["request"]["id"], r.request_id.as_str());
        // The id is a UUIDv5 of the record's line in Lago's own format, which anyone can
        // recompute from a raw archive.
        let raw = lago_audit_sink::line(r, Format::Lago).unwrap();
        let expected = uuid5(lago_audit_sink::API_LOG_ID_NAMESPACE, &raw[..raw.len() - 1]);
        assert_eq!(event["metadata"]["uid"], expected.as_str());
        assert_eq!(doc["event"]["id"], expected.as_str());
        ocsf_ids.insert(expected.clone());
        ecs_ids.insert(doc["event"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ocsf_ids.len(), api.len(), "one OCSF id per record");
    assert_eq!(ecs_ids.len(), api.len(), "one ECS id per record");

    // Stable across re-exports: a second export gives every record the same id.
    let again: std::collections::HashSet<String> = records::<ApiLogObject>(&fake)
        .await
        .iter()
        .map(|r| r.to_ocsf()["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, ocsf_ids);

    // Two calls that differ only in their status, sharing one X-Request-Id: two events, two
    // ids, both valid OCSF 1.8.0 and ECS.
    let first: ApiLogObject = serde_json::from_value(serde_json::json!({
        "api_version": "v1",
        "client": "curl/8.5.0",
        "created_at": "2025-03-01T10:00:01Z",
        "http_method": "post",
        "http_status": 500,
        "logged_at": "2025-03-01T10:00:00Z",
        "request_body": {"code": "plan_1"},
        "request_id": "retry-1",
        "request_origin": "https://app.example.com",
        "request_path": "/api/v1/plans",
    }))
    .unwrap();
    let mut second = first.clone();
    second.http_status = 200;
    let (a, b) = (first.to_ocsf(), second.to_ocsf());
    assert_ne!(a["metadata"]["uid"], b["metadata"]["uid"]);
    assert_ne!(
        first.to_ecs()["event"]["id"],
        second.to_ecs()["event"]["id"]
    );
    assert_eq!(a["http_request"]["uid"], b["http_request"]["uid"]);
    check_ecs(&[first.clone(), second.clone()], &ecs_fields());
    check_ocsf(&[first, second], &schemas, &mut BTreeMap::new());
    // The same id as Python's `uuid.uuid5(uuid.UUID("a7c02064-9203-4e0d-a055-1a01b8892eda"),
    // json.dumps(record, sort_keys=True, separators=(",", ":")))` over that record.
    assert_eq!(a["metadata"]["uid"], "22956199-ac31-54e5-b4a8-5791e21df97f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_all_three_kinds_validates_as_ocsf_1_3_0() {
    let fake = FakeLago::builder()
        .seed(21)
        .records_per_kind(2_000, 2_000, 1_000)
        .start()
        .await
        .unwrap();
    let schemas = schemas_of("1.3.0");
    let mut classes = BTreeMap::<u64, usize>::new();
    let mut check = |event: Value| {
        let event = ocsf::to_1_3(event);
        assert_eq!(event["metadata"]["version"], ocsf::OCSF_1_3_VERSION);
        let class = event["class_uid"].as_u64().unwrap();
        let errors: Vec<String> = schemas[&class]
            .iter_errors(&event)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:#?}\n{event:#}");
        *classes.entry(class).or_default() += 1;
    };
    for r in records::<ActivityLogObject>(&fake).await {
        check(r.to_ocsf());
    }
    for r in records::<ApiLogObject>(&fake).await {
        check(r.to_ocsf());
    }
    for r in records::<SecurityLogObject>(&fake).await {
        check(r.to_ocsf());
    }
    assert_eq!(
        classes.keys().copied().collect::<Vec<_>>(),
        [3001, 3002, 3004, 3005, 4002],
        "{classes:?}"
    );
}
