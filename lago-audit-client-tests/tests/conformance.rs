//! Every (operation, documented status, example) of the spec, served by an httpmock server through
//! progenitor's generated helpers and called with the generated client.
//!
//! A 200 must decode into the typed model and serialise back to the example (after dropping
//! null-valued keys: the models skip `None` fields). An error status must come back as a typed
//! [`Error::Api`] with the example's status, code and details. An operation or status the spec
//! documents but this file does not exercise fails the coverage test, listed by name.

use httpmock::MockServer;
use lago_audit_client::{config::USER_AGENT, types, Client, Error};
use lago_audit_client_tests::fixtures::{self, Fixture, Operation};
use lago_audit_client_tests::mocks::MockServerExt;
use lago_audit_client_tests::{client_for, spec, without_nulls, TEST_KEY};
use serde_json::Value;

enum Outcome {
    Decoded(Value),
    Failed(Error),
}

fn expect_request(when: httpmock::When) {
    when.header("authorization", format!("Bearer {TEST_KEY}"))
        .header("user-agent", USER_AGENT)
        .header("accept", "application/json");
}

fn raw_json(then: httpmock::Then, status: u16, body: &Value) {
    then.status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string());
}

macro_rules! exercise {
    (
        $server:ident, $fixture:ident, $mock:ident, $model:ty,
        when = |$w:ident| $when:expr,
        call = $call:expr,
        errors = { $($status:literal => $then:ident),* $(,)? }
    ) => {{
        let body = $fixture.body.clone();
        match $fixture.status {
            200 => {
                let expected: $model = serde_json::from_value(body.clone())
                    .map_err(|e| format!("the example at {} does not decode: {e}", $fixture.source))?;
                let mock = $server.$mock(|$w, then| {
                    expect_request($when.into_inner());
                    raw_json(then.into_inner(), 200, &body);
                });
                let result = $call.send().await;
                mock.assert_async().await;
                let value = result.map_err(|e| Error::from(e).to_string())?.into_inner();
                assert_eq!(value, expected);
                Ok(Outcome::Decoded(serde_json::to_value(&value).unwrap()))
            }
            $(
                $status => {
                    let mock = $server.$mock(|$w, then| {
                        expect_request($when.into_inner());
                        then.$then(body.clone());
                    });
                    let result = $call.send().await;
                    mock.assert_async().await;
                    match result {
                        Ok(_) => Err(format!("status {} decoded as a success", $status)),
                        Err(e) => Ok(Outcome::Failed(Error::from(e))),
                    }
                }
            )*
            other => Err(format!("MISSING: {} {other}", $fixture.operation_id)),
        }
    }};
}

fn path_example(doc: &Value, op: &Operation, name: &str) -> String {
    match fixtures::parameter_example(doc, op, name) {
        Some(Value::String(s)) => s,
        other => panic!("{} has no string example for {name}: {other:?}", op.id),
    }
}

async fn exercise(
    server: &MockServer,
    client: &Client,
    doc: &Value,
    f: &Fixture,
) -> Result<Outcome, String> {
    let ops = fixtures::operations(doc);
    let op = ops
        .iter()
        .find(|o| o.id == f.operation_id)
        .expect("fixture of a known operation");
    match f.operation_id.as_str() {
        "findAllActivityLogs" => {
            exercise!(server, f, find_all_activity_logs, types::ActivityLogsPaginated,
            when = |w| w,
            call = client.find_all_activity_logs(),
            errors = { 401 => unauthorized, 403 => forbidden, 422 => unprocessable_entity })
        }
        "findActivityLog" => {
            let id = path_example(doc, op, "activity_id");
            exercise!(server, f, find_activity_log, types::ActivityLog,
                when = |w| w.activity_id(&id),
                call = client.find_activity_log().activity_id(id.as_str()),
                errors = { 401 => unauthorized, 403 => forbidden, 404 => not_found })
        }
        "findAllApiLogs" => exercise!(server, f, find_all_api_logs, types::ApiLogsPaginated,
            when = |w| w,
            call = client.find_all_api_logs(),
            errors = { 401 => unauthorized, 403 => forbidden, 422 => unprocessable_entity }),
        "findApiLog" => {
            let id = path_example(doc, op, "request_id");
            exercise!(server, f, find_api_log, types::ApiLog,
                when = |w| w.request_id(&id),
                call = client.find_api_log().request_id(id.as_str()),
                errors = { 401 => unauthorized, 403 => forbidden, 404 => not_found })
        }
        "findAllSecurityLogs" => {
            let to: lago_audit_client::DateFilter = serde_json::from_value(
                fixtures::parameter_example(doc, op, "to_date").expect("to_date has an example"),
            )
            .expect("the to_date example is a DateFilter");
            exercise!(server, f, find_all_security_logs, types::SecurityLogsPaginated,
                when = |w| w.to_date(&to),
                call = client.find_all_security_logs().to_date(to),
                errors = { 401 => unauthorized, 403 => forbidden, 422 => unprocessable_entity })
        }
        "findSecurityLog" => {
            let id = path_example(doc, op, "log_id");
            exercise!(server, f, find_security_log, types::SecurityLog,
                when = |w| w.log_id(&id),
                call = client.find_security_log().log_id(id.as_str()),
                errors = { 401 => unauthorized, 403 => forbidden, 404 => not_found })
        }
        other => Err(format!("MISSING: operation {other}")),
    }
}

#[tokio::test]
async fn every_operation_and_status_conforms_to_its_examples() {
    let doc = spec();
    let all = fixtures::fixtures(&doc).unwrap_or_else(|e| panic!("{e}"));
    let server = MockServer::start_async().await;
    let client = client_for(&server.base_url());
    let mut problems = Vec::new();
    let mut covered = std::collections::BTreeSet::new();
    for f in &all {
        server.reset_async().await;
        match exercise(&server, &client, &doc, f).await {
            Ok(Outcome::Decoded(value)) => {
                covered.insert((f.operation_id.clone(), f.status));
                if without_nulls(&value) != without_nulls(&f.body) {
                    problems.push(format!(
                        "{} {}: round trip changed the example ({}):\n  sent {}\n  got  {}",
                        f.operation_id, f.status, f.source, f.body, value
                    ));
                }
            }
            Ok(Outcome::Failed(err)) => {
                covered.insert((f.operation_id.clone(), f.status));
                let api = err
                    .as_api()
                    .unwrap_or_else(|| panic!("{} {}: {err}", f.operation_id, f.status));
                assert_eq!(api.status.as_u16(), f.status, "{}", f.operation_id);
                assert_eq!(
                    api.code.as_deref(),
                    f.body["code"].as_str(),
                    "{} {}",
                    f.operation_id,
                    f.status
                );
                assert_eq!(api.error.as_deref(), f.body["error"].as_str());
                assert_eq!(
                    api.details.clone().map(Value::Object),
                    f.body.get("error_details").cloned()
                );
                assert!(!err.to_string().contains(TEST_KEY));
            }
            Err(problem) => problems.push(format!("{} {}: {problem}", f.operation_id, f.status)),
        }
    }
    let documented: usize = fixtures::operations(&doc)
        .iter()
        .map(|o| o.statuses.len())
        .sum();
    let composed = all.iter().filter(|f| f.source == "composed").count();
    println!(
        "conformance: {} operations, {} (operation, status) pairs covered of {documented} documented, \
         {} fixtures ({} from media-type examples, {composed} composed from per-property examples)",
        fixtures::operations(&doc).len(),
        covered.len(),
        all.len(),
        all.len() - composed,
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        covered.len(),
        documented,
        "every documented status has a fixture test"
    );
}

#[test]
fn the_spec_documents_the_six_operations_with_their_statuses() {
    let doc = spec();
    let ops: Vec<(String, Vec<String>)> = fixtures::operations(&doc)
        .into_iter()
        .map(|o| (o.id, o.statuses))
        .collect();
    let expect = |id: &str, statuses: &[&str]| {
        let found = ops
            .iter()
            .find(|(o, _)| o == id)
            .unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(found.1, statuses, "{id}");
    };
    expect("findAllActivityLogs", &["200", "401", "403", "422"]);
    expect("findActivityLog", &["200", "401", "403", "404"]);
    expect("findAllApiLogs", &["200", "401", "403", "422"]);
    expect("findApiLog", &["200", "401", "403", "404"]);
    expect("findAllSecurityLogs", &["200", "401", "403", "422"]);
    expect("findSecurityLog", &["200", "401", "403", "404"]);
    assert_eq!(ops.len(), 6);
}

#[test]
fn every_overlay_correction_still_applies() {
    let (spec_path, overlay) = lago_audit_client_tests::spec_paths();
    let loaded = lago_audit_codegen::load(&spec_path, &overlay).unwrap();
    let stale: Vec<String> = loaded
        .stale_actions
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        stale.is_empty(),
        "corrections that no longer match the spec:\n{}",
        stale.join("\n")
    );
}

/// The spec in force (`LAGO_AUDIT_OPENAPI_SPEC`, e.g. Lago's own `openapi.yaml` dropped in) generates
/// the same client API as the spec in `openapi/` (doc comments and `info.version` aside), so a
/// correction that silently stops applying to the drop-in (say, the date filters falling back to
/// `NaiveDate`) fails here with the difference as a unified diff. Without a drop-in both are ours.
#[test]
fn the_spec_in_force_generates_the_same_client_api_as_ours() {
    use lago_audit_codegen::{build_from, paths_in, report, Target};
    let surface = |(spec, overlay): (std::path::PathBuf, std::path::PathBuf)| {
        let code = build_from(Target::Client, &spec, &overlay)
            .unwrap_or_else(|e| panic!("{e}"))
            .code;
        (report::api_surface(&code).unwrap(), spec)
    };
    let (ours, ours_path) = surface(paths_in(&lago_audit_client_tests::spec_dir()));
    let (in_force, in_force_path) = surface(lago_audit_client_tests::spec_paths());
    let diff = report::unified_diff(
        &ours,
        &in_force,
        &ours_path.display().to_string(),
        &in_force_path.display().to_string(),
    );
    assert!(
        diff.is_empty(),
        "the spec in force generates another client API:\n{diff}"
    );
}

/// Each type-level correction of the overlay, as the generated client must show it. This compiles
/// only if every correction applied to the spec the client was built from.
#[test]
fn each_correction_shows_in_the_generated_types() {
    use lago_audit_client::{ActivitySource, DateFilter, HttpMethod, HttpStatusFilter};
    use std::collections::HashMap;
    fn activity(o: &types::ActivityLogObject) {
        // Fact 1: organization_id is optional.
        let _: Option<&uuid::Uuid> = o.organization_id.as_ref();
        // Fact 3: flat string-or-null maps.
        let _: Option<&HashMap<String, Option<String>>> = o.activity_object.as_ref();
        let _: Option<&HashMap<String, Option<String>>> = o.activity_object_changes.as_ref();
        // Facts 11-12: open enums.
        let _: &ActivitySource = &o.activity_source;
    }
    fn api(o: &types::ApiLogObject) {
        // Facts 2-3: objects, not strings.
        let _: &HashMap<String, Option<String>> = &o.request_body;
        let _: Option<&HashMap<String, Option<String>>> = o.request_response.as_ref();
        // Fact 12: request_id is not necessarily a uuid.
        let _: &String = &o.request_id;
        let _: &HttpMethod = &o.http_method;
    }
    let _ = (activity, api);
    // Fact 8: every date bound takes a date or a date-time.
    let c = client_for("http://127.0.0.1:9");
    let day: DateFilter = "2022-08-09".parse().unwrap();
    let _ = c.find_all_activity_logs().from_date(day).to_date(day);
    let _ = c.find_all_api_logs().from_date(day).to_date(day);
    let _ = c.find_all_security_logs().from_date(day).to_date(day);
    let _ = HttpStatusFilter::code(404).unwrap();
    // Facts 6-7: 403/404/422 bodies have their models.
    let _ = (
        std::mem::size_of::<types::ApiErrorForbidden>(),
        std::mem::size_of::<types::ApiErrorUnprocessableEntity>(),
    );
    // The filters the overlay adds exist (fact 4: request_paths[], fact 5: clients[]).
    let doc = spec();
    let names: Vec<&str> = doc["paths"]["/api_logs"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"request_paths[]") && names.contains(&"clients[]"),
        "{names:?}"
    );
    assert!(!names.contains(&"request_paths"), "{names:?}");
}
