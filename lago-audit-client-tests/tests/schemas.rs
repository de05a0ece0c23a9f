//! Examples against schemas, and the Rust types against the spec.
//!
//! - Every example in the spec (media-type, per-property, parameter) and every fixture validates
//!   against its schema with the `jsonschema` crate, formats checked (JSON Schema 2020-12, as
//!   OpenAPI 3.1 uses). A wrong example fails with its JSON pointer.
//! - The JSON Schema that `schemars` derives for each generated model accepts the same fixtures
//!   and rejects mutated ones, so the Rust types and the spec cannot drift apart unnoticed.

use jsonschema::{Draft, Validator};
use lago_audit_client::types;
use lago_audit_client_tests::fixtures::{self, escape};
use lago_audit_client_tests::spec;
use serde_json::{json, Value};

/// A validator for the schema at `pointer` inside the whole document, so `$ref`s resolve.
fn validator_at(doc: &Value, pointer: &str) -> Validator {
    let mut root = doc.clone();
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$ref"] = json!(format!("#{fragment}"));
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("schema at {pointer} does not compile: {e}"))
}

fn problems(v: &Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Every example in the document, with the pointer of the schema it must match and the pointer of
/// the example itself:
///
/// - `example` on a schema (recursively), checked against that schema;
/// - `example` on a parameter or a media type, and each `examples.<name>.value` of a media type,
///   checked against the object's `schema` (not against the parameter or media-type object, which
///   as a JSON Schema would accept anything).
fn property_examples(value: &Value, pointer: &str, out: &mut Vec<(String, String, Value)>) {
    let Some(map) = value.as_object() else { return };
    // A parameter or a media type: its examples describe the value of its `schema`.
    let wraps_a_schema = map.contains_key("schema");
    let schema_ptr = if wraps_a_schema {
        format!("{pointer}/schema")
    } else {
        pointer.to_owned()
    };
    if let Some(example) = map.get("example") {
        out.push((
            schema_ptr.clone(),
            format!("{pointer}/example"),
            example.clone(),
        ));
    }
    if wraps_a_schema {
        for (name, ex) in map
            .get("examples")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(v) = ex.get("value") {
                out.push((
                    schema_ptr.clone(),
                    format!("{pointer}/examples/{}/value", escape(name)),
                    v.clone(),
                ));
            }
        }
    }
    for (key, child) in map {
        if key == "example" || key == "examples" {
            continue;
        }
        match child {
            Value::Object(_) => {
                property_examples(child, &format!("{pointer}/{}", escape(key)), out)
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    property_examples(item, &format!("{pointer}/{}/{i}", escape(key)), out);
                }
            }
            _ => {}
        }
    }
}

fn all_examples(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    property_examples(&doc["components"], "/components", &mut out);
    property_examples(&doc["paths"], "/paths", &mut out);
    out
}

fn check_examples(doc: &Value) -> Vec<String> {
    let mut failures = Vec::new();
    for (schema_ptr, example_ptr, example) in all_examples(doc) {
        let v = validator_at(doc, &schema_ptr);
        for p in problems(&v, &example) {
            failures.push(format!("{example_ptr}: {p}"));
        }
    }
    failures
}

#[test]
fn every_example_and_fixture_matches_its_schema() {
    let doc = spec();
    let examples = all_examples(&doc);
    let mut failures = check_examples(&doc);
    let all = fixtures::fixtures(&doc).unwrap();
    for f in &all {
        let v = validator_at(&doc, &f.schema_pointer);
        for p in problems(&v, &f.body) {
            failures.push(format!(
                "fixture {} {} ({}): {p}",
                f.operation_id, f.status, f.source
            ));
        }
    }
    let media = examples
        .iter()
        .filter(|(schema, _, _)| schema.contains("/content/"))
        .count();
    let params = examples
        .iter()
        .filter(|(schema, _, _)| schema.contains("/parameters/") && !schema.contains("/content/"))
        .count();
    println!(
        "schemas: {} examples ({media} of responses' media types, {params} of parameters, {} of \
         schema properties) and {} fixtures validated against their schemas",
        examples.len(),
        examples.len() - media - params,
        all.len()
    );
    assert!(
        examples.len() > 50,
        "the walk found the per-property examples"
    );
    // The 200 examples of the six operations, and the 403 (two each), 404 and 422 examples.
    let expected = 6 + 3 * 2 + 3 + 1;
    assert!(
        media >= expected,
        "{media} media-type examples, expected {expected}"
    );
    assert!(
        examples
            .iter()
            .all(|(schema, _, _)| !schema.ends_with("/application~1json")),
        "no example is checked against a media-type object"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A media-type example is checked against its schema: a broken `activity_id` in the 200 example
/// of `findAllActivityLogs`, or a 403 named example without its `code`, is reported at its pointer.
#[test]
fn a_wrong_media_type_example_is_reported_with_its_pointer() {
    let mut doc = spec();
    let media = "/paths/~1activity_logs/get/responses/200/content/application~1json";
    doc.pointer_mut(&format!("{media}/example/activity_logs/0/activity_id"))
        .map(|v| *v = json!("not-a-uuid"))
        .expect("the 200 example has a first activity log");
    let forbidden = "/components/responses/ActivityLogForbidden/content/application~1json";
    doc.pointer_mut(&format!("{forbidden}/examples/feature_unavailable/value"))
        .and_then(Value::as_object_mut)
        .map(|o| o.remove("code"))
        .expect("the 403 has a feature_unavailable example");
    let failures = check_examples(&doc);
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with(&format!("{media}/example:"))
                && f.contains("not-a-uuid")
                && f.contains("/activity_logs/0/activity_id")),
        "{failures:#?}"
    );
    assert!(
        failures.iter().any(|f| f
            .starts_with(&format!("{forbidden}/examples/feature_unavailable/value:"))
            && f.contains("code")),
        "{failures:#?}"
    );
}

#[test]
fn a_wrong_example_is_reported_with_its_pointer() {
    let mut doc = spec();
    doc["components"]["schemas"]["ActivityLogObject"]["properties"]["activity_id"]["example"] =
        json!("not-a-uuid");
    doc["components"]["schemas"]["PaginationMeta"]["properties"]["total_count"]["example"] =
        json!("seventy");
    let failures = check_examples(&doc);
    assert!(
        failures.iter().any(|f| f
            .starts_with("/components/schemas/ActivityLogObject/properties/activity_id/example")),
        "{failures:#?}"
    );
    assert!(failures.iter().any(
        |f| f.starts_with("/components/schemas/PaginationMeta/properties/total_count/example")
    ));
}

/// The schemars schema of `T` as a validator, formats checked. schemars 0.8 writes draft-07, whose
/// format vocabulary has no `uuid`; its output is read as 2020-12 (same keywords, `definitions`
/// refs are plain pointers) so that `format: uuid` is checked like the spec's.
fn rust_validator<T: schemars::JsonSchema>() -> Validator {
    let mut schema = serde_json::to_value(schemars::schema_for!(T)).unwrap();
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn fixture_bodies(doc: &Value, operation: &str, status: u16) -> Vec<Value> {
    let bodies: Vec<Value> = fixtures::fixtures(doc)
        .unwrap()
        .into_iter()
        .filter(|f| f.operation_id == operation && f.status == status)
        .map(|f| f.body)
        .collect();
    assert!(!bodies.is_empty(), "{operation} {status} has fixtures");
    bodies
}

/// Mutations every record schema must reject: (description, pointer into the body, new value or
/// removal).
fn assert_rejects(v: &Validator, body: &Value, record: &str, mutations: &[(&str, Option<Value>)]) {
    for (field, replacement) in mutations {
        let mut m = body.clone();
        let target = m
            .pointer_mut(record)
            .and_then(Value::as_object_mut)
            .expect("record");
        match replacement {
            None => {
                target.remove(*field);
            }
            Some(value) => {
                target.insert((*field).to_owned(), value.clone());
            }
        }
        assert!(
            !v.is_valid(&m),
            "the Rust schema accepted {record}/{field} -> {replacement:?}"
        );
    }
    let mut unknown = body.clone();
    unknown
        .pointer_mut(record)
        .and_then(Value::as_object_mut)
        .unwrap()
        .insert("added_by_lago_later".into(), json!({"x": 1}));
    assert!(v.is_valid(&unknown), "unknown fields are accepted");
}

#[test]
fn the_rust_types_accept_the_fixtures_and_reject_mutations() {
    let doc = spec();
    let mut checked = 0;

    let v = rust_validator::<types::ActivityLogsPaginated>();
    for body in fixture_bodies(&doc, "findAllActivityLogs", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/activity_logs/0",
            &[
                ("activity_id", None),
                ("activity_id", Some(json!("not-a-uuid"))),
                ("logged_at", Some(json!("yesterday"))),
                ("resource_type", Some(json!(42))),
                ("activity_object", Some(json!({"nested": {"a": 1}}))),
                ("activity_source", Some(json!(null))),
            ],
        );
        let mut unknown_source = body.clone();
        unknown_source["activity_logs"][0]["activity_source"] = json!("ai_agent");
        assert!(
            v.is_valid(&unknown_source),
            "unknown enum values are accepted"
        );
        checked += 1;
    }

    let v = rust_validator::<types::ActivityLog>();
    for body in fixture_bodies(&doc, "findActivityLog", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/activity_log",
            &[("created_at", None), ("resource_id", Some(json!("x")))],
        );
        checked += 1;
    }

    let v = rust_validator::<types::ApiLogsPaginated>();
    for body in fixture_bodies(&doc, "findAllApiLogs", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/api_logs/0",
            &[
                ("request_body", None),
                ("request_body", Some(json!("{\"a\":1}"))),
                ("http_status", Some(json!("200"))),
                ("created_at", Some(json!("2025-13-45T99:00:00Z"))),
            ],
        );
        checked += 1;
    }

    let v = rust_validator::<types::ApiLog>();
    for body in fixture_bodies(&doc, "findApiLog", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/api_log",
            &[("request_id", None), ("http_method", Some(json!(1)))],
        );
        checked += 1;
    }

    let v = rust_validator::<types::SecurityLogsPaginated>();
    for body in fixture_bodies(&doc, "findAllSecurityLogs", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/security_logs/0",
            &[("log_id", Some(json!("?"))), ("log_event", None)],
        );
        assert_rejects(
            &v,
            &body,
            "/meta",
            &[("total_count", None), ("next_page", Some(json!("2")))],
        );
        checked += 1;
    }

    let v = rust_validator::<types::SecurityLog>();
    for body in fixture_bodies(&doc, "findSecurityLog", 200) {
        assert!(v.is_valid(&body), "{:?}", problems(&v, &body));
        assert_rejects(
            &v,
            &body,
            "/security_log",
            &[("logged_at", None), ("resources", Some(json!([1])))],
        );
        checked += 1;
    }

    // Error bodies against the generated error models.
    let v404 = rust_validator::<types::ApiErrorNotFound>();
    for op in ["findActivityLog", "findApiLog", "findSecurityLog"] {
        for body in fixture_bodies(&doc, op, 404) {
            assert!(v404.is_valid(&body), "{op}: {:?}", problems(&v404, &body));
            checked += 1;
        }
    }
    let v422 = rust_validator::<types::ApiErrorUnprocessableEntity>();
    for body in fixture_bodies(&doc, "findAllActivityLogs", 422) {
        assert!(v422.is_valid(&body));
        let mut wrong = body.clone();
        wrong["error_details"]["to_date"] = json!("invalid_date");
        assert!(!v422.is_valid(&wrong), "details are lists of codes");
        checked += 1;
    }
    println!("schemars: {checked} fixtures checked against the Rust types' schemas");
}
