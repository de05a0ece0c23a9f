//! `lago-audit-codegen diff OLD NEW` from the command line, on synthetic upstream changes made to
//! our own spec (`openapi/lago-audit-logs.yaml`): whatever upstream does to what the overlay
//! relies on, the report completes with its three parts and the exit status says what it found.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ours() -> Value {
    lago_audit_codegen::read_document(&root().join("openapi/lago-audit-logs.yaml")).unwrap()
}

struct Run {
    code: i32,
    text: String,
}

/// Writes `old` and `new` to a fresh folder and runs `diff` on them (text, then JSON).
fn diff(name: &str, old: &Value, new: &Value) -> (Run, Value) {
    let dir = std::env::temp_dir().join(format!("lago-diff-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (o, n) = (dir.join("old.json"), dir.join("new.json"));
    std::fs::write(&o, serde_json::to_string_pretty(old).unwrap()).unwrap();
    std::fs::write(&n, serde_json::to_string_pretty(new).unwrap()).unwrap();
    let run = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_lago-audit-codegen"))
            .current_dir(root())
            .args(["diff".as_ref(), o.as_os_str(), n.as_os_str()])
            // The text report is the default: no flag for it.
            .args(if format == "text" {
                vec![]
            } else {
                vec!["--format", format]
            })
            .args(["--overlay", "openapi/lago-audit-logs.overlay.yaml"])
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            text: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    };
    let text = run("text");
    let json = run("json");
    // Checked by the callers after the text (`Null` when it is not JSON), so that a failure shows
    // what the text report got wrong first.
    let parsed: Value = serde_json::from_str(&json.text).unwrap_or(Value::Null);
    if !parsed.is_null() {
        assert_eq!(json.code, text.code, "{}", json.text);
        assert_eq!(parsed["exit_code"], text.code);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    (text, parsed)
}

/// Asserts each line is in the report.
fn has(run: &Run, lines: &[&str]) {
    for l in lines {
        assert!(run.text.contains(l), "missing {l:?} in:\n{}", run.text);
    }
}

fn status_of(json: &Value, index: usize) -> (String, Value) {
    let a = &json["overlay"][index];
    assert_eq!(a["index"], index);
    (a["status"].as_str().unwrap().to_owned(), a.clone())
}

fn statuses(json: &Value, status: &str) -> Vec<u64> {
    json["overlay"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == status)
        .map(|a| a["index"].as_u64().unwrap())
        .collect()
}

fn params<'a>(doc: &'a mut Value, path: &str) -> &'a mut Vec<Value> {
    doc["paths"][path]["get"]["parameters"]
        .as_array_mut()
        .unwrap()
}

fn schema<'a>(doc: &'a mut Value, name: &str) -> &'a mut Value {
    &mut doc["components"]["schemas"][name]
}

#[test]
fn the_same_spec_is_no_change_and_exits_0() {
    let (run, json) = diff("same", &ours(), &ours());
    assert_eq!(run.code, 0, "{}", run.text);
    has(
        &run,
        &[
            "== 1. Upstream changes (Lago's spec as published, audit-log operations): 0 (0 breaking)",
            "== 2. Overlay actions against the new spec: 0 broken, 0 obsolete, 47 apply",
            "== 3. Generated client: unchanged",
        ],
    );
    assert_eq!(json["verdict"], "no_change");
}

/// Upstream removes an operation the overlay corrects and changes five more things: every change
/// is reported, the actions on the removed operation are broken, the client diff is one line.
#[test]
fn an_operation_the_overlay_corrects_removed_with_other_changes() {
    let old = ours();
    let mut new = old.clone();
    new["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/api_logs/{request_id}");
    let log = schema(&mut new, "ApiLogObject");
    log["properties"].as_object_mut().unwrap().remove("client");
    log["properties"]["http_status"] = json!({"type": "string", "example": "200"});
    log["properties"]["duration_ms"] = json!({"type": "integer", "example": 12});
    let p = params(&mut new, "/activity_logs");
    let types = p
        .iter_mut()
        .find(|p| p["name"] == "activity_types[]")
        .unwrap();
    types["required"] = json!(true);
    p.push(
        json!({"name": "api_key_ids[]", "in": "query", "required": false,
                  "schema": {"type": "array", "items": {"type": "string"}}}),
    );

    let (run, json) = diff("op-removed", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            "[BREAKING] findApiLog: operation removed (GET /api_logs/{request_id})",
            "[BREAKING] findAllApiLogs: response field api_logs[].client removed (string)",
            "[BREAKING] findAllApiLogs: response field api_logs[].http_status: type integer became string",
            "[BREAKING] findAllActivityLogs: parameter activity_types[] became required",
            "[non-breaking] findAllApiLogs: response field api_logs[].duration_ms (integer) added",
            "[non-breaking] findAllActivityLogs: optional parameter api_key_ids[] (array<string>) added",
            "broken: actions[40] (update $.paths['/api_logs/{request_id}'].get.responses): broken: the operation GET /api_logs/{request_id} is gone: removed upstream",
            "broken: actions[44] (update $.paths['/api_logs/{request_id}'].get.responses['200'].content['application/json']): broken: the operation GET /api_logs/{request_id} is gone",
            "== 3. Generated client: no diff: the new spec plus the overlay does not build:",
            "== Verdict: overlay needs work (exit 4)",
        ],
    );
    assert_eq!(statuses(&json, "broken"), vec![40, 44]);
    assert_eq!(json["client"]["status"], "new_not_built");
    assert_eq!(json["changes"].as_array().unwrap().len(), 6, "{json:#}");
    assert!(
        !run.text.contains("the overlay already says this"),
        "{}",
        run.text
    );
}

/// Upstream fixes what fact 4 corrects: `request_paths` becomes `request_paths[]`.
#[test]
fn a_parameter_correction_made_obsolete_upstream() {
    let old = ours();
    let mut new = old.clone();
    let p = params(&mut new, "/api_logs");
    let rp = p.iter_mut().find(|p| p["name"] == "request_paths").unwrap();
    *rp = json!({"name": "request_paths[]", "in": "query", "required": false, "explode": true,
                 "description": "Paths to filter by.",
                 "schema": {"type": "array", "items": {"type": "string"}}});
    let (run, json) = diff("obsolete-param", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            "[BREAKING] findAllApiLogs: parameter request_paths removed",
            "[non-breaking] findAllApiLogs: optional parameter request_paths[] (array<string>) added",
            "obsolete: actions[33] (remove $.paths['/api_logs'].get.parameters[?@.name=='request_paths']; fact 4): obsolete: upstream renamed request_paths → request_paths[], what this correction does",
            "obsolete: actions[34] (update $.paths['/api_logs'].get.parameters; fact 4): obsolete: upstream now defines the parameter request_paths[] (array<string>) itself",
        ],
    );
    assert_eq!(statuses(&json, "obsolete"), vec![33, 34]);
    assert!(statuses(&json, "broken").is_empty());
    assert_eq!(status_of(&json, 33).1["fact"], "fact 4");
}

/// Upstream fixes what fact 1 corrects: `organization_id` is no longer required.
#[test]
fn a_required_field_correction_made_obsolete_upstream() {
    let old = ours();
    let mut new = old.clone();
    let record = schema(&mut new, "ActivityLogObject");
    let required: Vec<Value> = record["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| *r != "organization_id")
        .cloned()
        .collect();
    record["required"] = Value::Array(required);
    let (run, json) = diff("obsolete-required", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            "[BREAKING] findAllActivityLogs: response field activity_logs[].organization_id became optional (T becomes Option<T>) (the overlay already says this: the client does not change while it applies)",
            "obsolete: actions[4] (remove $.components.schemas.ActivityLogObject.required; fact 1): obsolete: with actions[5] it changes nothing: upstream already says this",
            "obsolete: actions[5] (update $.components.schemas.ActivityLogObject; fact 1): obsolete: with actions[4] it changes nothing",
            // The client is built from the overlaid spec: nothing changes for its users.
            "== 3. Generated client: unchanged",
        ],
    );
    assert_eq!(statuses(&json, "obsolete"), vec![4, 5]);
    assert!(json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["masked_by_overlay"] == true));
}

/// Upstream renames a schema the overlay patches: each action on it is broken and names the new
/// target.
#[test]
fn a_schema_the_overlay_targets_renamed() {
    let old = ours();
    let text = serde_json::to_string(&old)
        .unwrap()
        .replace("\"ApiLogObject\"", "\"ApiLogRecord\"")
        .replace(
            "#/components/schemas/ApiLogObject\"",
            "#/components/schemas/ApiLogRecord\"",
        );
    let new: Value = serde_json::from_str(&text).unwrap();
    assert!(new["components"]["schemas"].get("ApiLogRecord").is_some());
    let (run, json) = diff("renamed", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            // The generated Rust type is renamed with it: code that names it no longer compiles.
            "[BREAKING] findApiLog: response field api_log: type object ApiLogObject became object ApiLogRecord",
            "broken: actions[11] (remove $.components.schemas.ApiLogObject.properties.http_method; fact 12): broken: components.schemas.ApiLogObject was renamed ApiLogRecord upstream (100% of its properties match); new target: $.components.schemas.ApiLogRecord.properties.http_method",
            "new target: $.components.schemas.ApiLogRecord.properties.request_path",
            "no diff: the new spec plus the overlay does not build",
        ],
    );
    assert_eq!(statuses(&json, "broken"), (11..=16).collect::<Vec<_>>());
    assert_eq!(
        status_of(&json, 15).1["new_target"],
        "$.components.schemas.ApiLogRecord.properties"
    );
}

/// Upstream inlines a schema the overlay patches into the one place that used it.
#[test]
fn a_schema_the_overlay_targets_inlined() {
    let old = ours();
    let mut new = old.clone();
    let record = new["components"]["schemas"]
        .as_object_mut()
        .unwrap()
        .remove("ApiLogObject")
        .unwrap();
    new["components"]["schemas"]["ApiLog"]["properties"]["api_log"] = record.clone();
    new["components"]["schemas"]["ApiLogsPaginated"]["properties"]["api_logs"]["items"] = record;
    let (run, _) = diff("inlined", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &["broken: components.schemas.ApiLogObject was inlined upstream (at /components/schemas/ApiLog/properties/api_log); new target: $.components.schemas.ApiLog.properties.api_log.properties.http_method"],
    );
}

/// A parameter moved from the operation to its path item: the same client, but the overlay's
/// actions on it must follow it; and back the other way for one no action touches.
#[test]
fn a_parameter_moved_between_path_level_and_operation_level() {
    let old = ours();
    let mut new = old.clone();
    let p = params(&mut new, "/activity_logs");
    let i = p.iter().position(|p| p["name"] == "from_date").unwrap();
    let from = p.remove(i);
    new["paths"]["/activity_logs"]["parameters"] = json!([from]);
    // The other way: the path id of one log moves into its operation.
    let shared = new["paths"]["/activity_logs/{activity_id}"]
        .as_object_mut()
        .unwrap()
        .remove("parameters")
        .unwrap();
    new["paths"]["/activity_logs/{activity_id}"]["get"]["parameters"] = shared;

    let (run, json) = diff("moved-param", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            "[non-breaking] findAllActivityLogs: parameter from_date moved from the operation to the path item level (the client is the same)",
            "[non-breaking] findActivityLog: parameter activity_id moved from the path item to the operation level (the client is the same)",
            "broken: actions[17] (remove $.paths['/activity_logs'].get.parameters[?@.name=='from_date'].schema; fact 8): broken: the parameter from_date moved from the operation to its path item (/activity_logs); new target: $.paths['/activity_logs'].parameters[?@.name=='from_date'].schema",
            "new target: $.paths['/activity_logs'].parameters[?@.name=='from_date']",
        ],
    );
    assert_eq!(statuses(&json, "broken"), vec![17, 18]);
    assert_eq!(json["changes"].as_array().unwrap().len(), 2);
}

/// What the report says under a value added to `ActivitySource`: where the hand-written code names
/// its values.
const ACTIVITY_SOURCE_PLACES: &[&str] = &[
    "      - lago-audit-client/src/open_enum.rs (ActivitySource): a variant for the value",
    "      - lago-audit-cli/src/parse.rs (fn parse_activity_source): ",
    "      - lago-audit-cli/src/kinds.rs (ActivityFilters.activity_sources): the --activity-source help lists the values",
    "      - lago-audit-sink/src/ocsf.rs (fn activity): ",
    "      - lago-audit-sink/src/ecs.rs (fn activity): ",
];

/// The JSON entry of the change whose `what` starts with `what`.
fn entry<'a>(json: &'a Value, operation: &str, what: &str) -> &'a Value {
    json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["operation"] == operation && c["what"].as_str().unwrap().starts_with(what))
        .unwrap_or_else(|| panic!("no change {operation}: {what}... in {json:#}"))
}

/// The files of an entry's `hand_written` places.
fn files(entry: &Value) -> Vec<&str> {
    entry["hand_written"]
        .as_array()
        .map(|ps| ps.iter().map(|p| p["file"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

const PLACE_FILES: [&str; 5] = [
    "lago-audit-client/src/open_enum.rs",
    "lago-audit-cli/src/parse.rs",
    "lago-audit-cli/src/kinds.rs",
    "lago-audit-sink/src/ocsf.rs",
    "lago-audit-sink/src/ecs.rs",
];

/// Gives `activity_types[]` of the activity-log list a closed enum of these values.
fn closed_activity_types(doc: &mut Value, values: &[&str]) {
    let p = params(doc, "/activity_logs");
    let types = p
        .iter_mut()
        .find(|p| p["name"] == "activity_types[]")
        .unwrap();
    types["schema"]["items"]["enum"] = json!(values);
}

fn param_items<'a>(doc: &'a mut Value, path: &str, name: &str) -> &'a mut Value {
    &mut params(doc, path)
        .iter_mut()
        .find(|p| p["name"] == name)
        .unwrap()["schema"]["items"]
}

/// Values added to enums of response fields: one of a closed enum breaks older clients; one of a
/// type the client keeps open (`ActivitySource`) does not, and the report says where the
/// hand-written code would take it.
#[test]
fn enum_values_added_to_response_fields_open_and_closed() {
    let mut old = ours();
    schema(&mut old, "ApiLogObject")["properties"]["api_version"]["enum"] = json!(["v1"]);
    let mut new = old.clone();
    schema(&mut new, "ApiLogObject")["properties"]["api_version"]["enum"] = json!(["v1", "v2"]);
    schema(&mut new, "ActivityLogObject")["properties"]["activity_source"]["enum"] =
        json!(["api", "front", "system", "mcp"]);
    let (run, json) = diff("added-to-fields", &old, &new);
    assert_eq!(run.code, 3, "{}", run.text);
    has(
        &run,
        &["[BREAKING] findAllApiLogs: response field api_logs[].api_version: enum value \"v2\" added (older clients cannot decode it (closed enum))"],
    );
    has(
        &run,
        &["[non-breaking] findActivityLog: response field activity_log.activity_source: enum value \"mcp\" added (open enum ActivitySource: the client takes it as ActivitySource::Other until the hand-written code names it)"],
    );
    // Under the first change of the open enum, the places in full; under the others, a pointer.
    let first = run
        .text
        .find("activity_log.activity_source: enum value")
        .unwrap();
    let places = &run.text[first..];
    has(
        &Run {
            code: 3,
            text: places.to_owned(),
        },
        ACTIVITY_SOURCE_PLACES,
    );
    has(
        &run,
        &["[non-breaking] findAllActivityLogs: response field activity_logs[].activity_source: enum value \"mcp\" added (open enum ActivitySource: the client takes it as ActivitySource::Other until the hand-written code names it)\n      - the hand-written code listed above for ActivitySource"],
    );
    assert_eq!(json["verdict"], "breaking");
    assert_eq!(json["changes"].as_array().unwrap().len(), 4, "{json:#}");
    let open = entry(
        &json,
        "findAllActivityLogs",
        "response field activity_logs[].activity_source: enum value \"mcp\" added",
    );
    assert_eq!(open["severity"], "non_breaking");
    assert_eq!(open["masked_by_overlay"], false);
    assert_eq!(open["open_enum"], "ActivitySource");
    assert_eq!(files(open), PLACE_FILES);
    let closed = entry(
        &json,
        "findAllApiLogs",
        "response field api_logs[].api_version: enum value \"v2\" added",
    );
    assert_eq!(closed["severity"], "breaking");
    assert!(
        closed.get("open_enum").is_none() && closed.get("hand_written").is_none(),
        "{closed:#}"
    );
}

/// Values removed from enums of response fields: from a closed enum it breaks code that names
/// the variant; from an open one (`HttpMethod`) it does not: the variant stays, for old data.
#[test]
fn enum_values_removed_from_response_fields_open_and_closed() {
    let mut old = ours();
    schema(&mut old, "ApiLogObject")["properties"]["api_version"]["enum"] = json!(["v1", "v2"]);
    let mut new = old.clone();
    schema(&mut new, "ApiLogObject")["properties"]["api_version"]["enum"] = json!(["v1"]);
    schema(&mut new, "ApiLogObject")["properties"]["http_method"]["enum"] = json!(["post", "put"]);
    let (run, json) = diff("removed-from-fields", &old, &new);
    assert_eq!(run.code, 3, "{}", run.text);
    has(
        &run,
        &[
            "[BREAKING] findAllApiLogs: response field api_logs[].api_version: enum value \"v2\" removed",
            "[non-breaking] findAllApiLogs: response field api_logs[].http_method: enum value \"delete\" removed (open enum HttpMethod: its variant stays, for old data)",
            "[non-breaking] findApiLog: response field api_log.http_method: enum value \"delete\" removed (open enum HttpMethod: its variant stays, for old data)",
            "      - lago-audit-client/src/open_enum.rs (HttpMethod): ",
            "      - lago-audit-sink/src/ocsf.rs (fn http_activity): ",
        ],
    );
    assert_eq!(json["changes"].as_array().unwrap().len(), 4, "{json:#}");
    let open = entry(
        &json,
        "findApiLog",
        "response field api_log.http_method: enum value \"delete\" removed",
    );
    assert_eq!(open["severity"], "non_breaking");
    assert_eq!(open["open_enum"], "HttpMethod");
    assert_eq!(files(open), PLACE_FILES);
}

/// Values added to enums of request parameters: new values to filter by, closed or open; for the
/// open one (`ActivitySource`), where the hand-written code (the CLI's parser first) would take it.
#[test]
fn enum_values_added_to_parameters_open_and_closed() {
    let mut old = ours();
    closed_activity_types(&mut old, &["invoice.created", "invoice.voided"]);
    let mut new = old.clone();
    closed_activity_types(
        &mut new,
        &["invoice.created", "invoice.voided", "plan.deleted"],
    );
    param_items(&mut new, "/activity_logs", "activity_sources[]")["enum"] =
        json!(["api", "front", "system", "mcp"]);
    let (run, json) = diff("added-to-params", &old, &new);
    assert_eq!(run.code, 2, "{}", run.text);
    has(
        &run,
        &[
            "[non-breaking] findAllActivityLogs: parameter activity_types[]: enum value \"plan.deleted\" added (a new value to filter by)",
            "[non-breaking] findAllActivityLogs: parameter activity_sources[]: enum value \"mcp\" added (open enum ActivitySource: the client takes it as ActivitySource::Other until the hand-written code names it)",
        ],
    );
    has(&run, ACTIVITY_SOURCE_PLACES);
    assert_eq!(json["verdict"], "non_breaking");
    assert_eq!(json["changes"].as_array().unwrap().len(), 2, "{json:#}");
    let open = entry(
        &json,
        "findAllActivityLogs",
        "parameter activity_sources[]: enum value \"mcp\" added",
    );
    assert_eq!(open["open_enum"], "ActivitySource");
    assert_eq!(files(open), PLACE_FILES);
    assert!(
        entry(&json, "findAllActivityLogs", "parameter activity_types[]")
            .get("open_enum")
            .is_none()
    );
}

/// Values removed from enums of request parameters: from a closed enum it breaks code that sets
/// it; from an open one (`HttpMethod`) it does not.
#[test]
fn enum_values_removed_from_parameters_open_and_closed() {
    let mut old = ours();
    closed_activity_types(&mut old, &["invoice.created", "invoice.voided"]);
    let mut new = old.clone();
    closed_activity_types(&mut new, &["invoice.created"]);
    param_items(&mut new, "/api_logs", "http_methods[]")["enum"] = json!(["post", "put"]);
    let (run, json) = diff("removed-from-params", &old, &new);
    assert_eq!(run.code, 3, "{}", run.text);
    has(
        &run,
        &[
            "[BREAKING] findAllActivityLogs: parameter activity_types[]: enum value \"invoice.voided\" removed",
            "[non-breaking] findAllApiLogs: parameter http_methods[]: enum value \"delete\" removed (open enum HttpMethod: its variant stays, for old data)",
            "      - lago-audit-cli/src/parse.rs (fn parse_http_method): ",
        ],
    );
    assert_eq!(json["changes"].as_array().unwrap().len(), 2, "{json:#}");
    let open = entry(
        &json,
        "findAllApiLogs",
        "parameter http_methods[]: enum value \"delete\" removed",
    );
    assert_eq!(open["severity"], "non_breaking");
    assert_eq!(open["open_enum"], "HttpMethod");
}

/// Issue 25's revision: `activity_source` gains `mcp` (filter and records) while upstream also
/// adds a field and a filter, removes a field, changes a type and removes an operation. Every
/// change is in part 1, `mcp` as non-breaking with where the hand-written code would take it.
#[test]
fn a_value_added_to_an_open_enum_among_other_changes() {
    let old = ours();
    let mut new = old.clone();
    new["paths"]
        .as_object_mut()
        .unwrap()
        .remove("/api_logs/{request_id}");
    let log = schema(&mut new, "ApiLogObject");
    log["properties"].as_object_mut().unwrap().remove("client");
    log["properties"]["http_status"] = json!({"type": "string", "example": "200"});
    log["properties"]["duration_ms"] = json!({"type": "integer", "example": 12});
    params(&mut new, "/activity_logs").push(
        json!({"name": "api_key_ids[]", "in": "query", "required": false,
               "schema": {"type": "array", "items": {"type": "string"}}}),
    );
    param_items(&mut new, "/activity_logs", "activity_sources[]")["enum"] =
        json!(["api", "front", "system", "mcp"]);
    schema(&mut new, "ActivityLogObject")["properties"]["activity_source"]["enum"] =
        json!(["api", "front", "system", "mcp"]);

    let (run, json) = diff("mcp-among-others", &old, &new);
    assert_eq!(run.code, 4, "{}", run.text);
    has(
        &run,
        &[
            "== 1. Upstream changes (Lago's spec as published, audit-log operations): 8 (3 breaking)",
            "[BREAKING] findApiLog: operation removed (GET /api_logs/{request_id})",
            "[BREAKING] findAllApiLogs: response field api_logs[].client removed (string)",
            "[BREAKING] findAllApiLogs: response field api_logs[].http_status: type integer became string",
            "[non-breaking] findAllApiLogs: response field api_logs[].duration_ms (integer) added",
            "[non-breaking] findAllActivityLogs: optional parameter api_key_ids[] (array<string>) added",
            "[non-breaking] findAllActivityLogs: parameter activity_sources[]: enum value \"mcp\" added (open enum ActivitySource",
            "[non-breaking] findActivityLog: response field activity_log.activity_source: enum value \"mcp\" added (open enum ActivitySource",
            "[non-breaking] findAllActivityLogs: response field activity_logs[].activity_source: enum value \"mcp\" added (open enum ActivitySource",
        ],
    );
    has(&run, ACTIVITY_SOURCE_PLACES);
    let open: Vec<&Value> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["open_enum"] == "ActivitySource")
        .collect();
    assert_eq!(open.len(), 3, "{json:#}");
    assert!(open
        .iter()
        .all(|c| c["severity"] == "non_breaking" && files(c) == PLACE_FILES));
}

/// A documented error code is not breaking: the client already returns it as an error.
#[test]
fn a_response_code_added() {
    let old = ours();
    let mut new = old.clone();
    new["paths"]["/activity_logs"]["get"]["responses"]["429"] =
        json!({"description": "Too many requests"});
    let (run, json) = diff("response-code", &old, &new);
    assert_eq!(run.code, 2, "{}", run.text);
    has(
        &run,
        &["[non-breaking] findAllActivityLogs: response 429 added (an error the client already returns as an error)"],
    );
    assert_eq!(json["verdict"], "non_breaking");
}

#[test]
fn help_documents_the_exit_statuses_and_bad_usage_exits_1() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lago-audit-codegen"))
            .args(args)
            .output()
            .unwrap()
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for line in [
        "0  no change",
        "1  usage error",
        "2  changes, none of them breaking",
        "3  breaking changes",
        "4  the overlay needs work",
        "--format",
    ] {
        assert!(text.contains(line), "{line:?} not in --help:\n{text}");
    }
    assert_eq!(run(&["diff", "only-one.yaml"]).status.code(), Some(1));
    assert_eq!(
        run(&["diff", "a.yaml", "b.yaml", "--format", "xml"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        run(&["diff", "/nonexistent/a.yaml", "/nonexistent/b.yaml"])
            .status
            .code(),
        Some(1)
    );
}
