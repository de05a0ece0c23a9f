//! Fixtures derived from the spec itself, never hand-copied: for every operation and every
//! documented response status, the example body.
//!
//! The body is the media type's `example` (or each of its `examples`) where the spec has one;
//! otherwise an instance composed from the per-property `example`s, following `$ref`, `allOf`,
//! `oneOf`/`anyOf` (first non-null member), arrays and nullable types, the way Lago's docs render
//! examples (seed `001_2542ca6a60a949bb.txt`).

use serde_json::{Map, Value};

/// The HTTP methods of OpenAPI path items.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// One operation of the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// `operationId`, e.g. `findAllActivityLogs`.
    pub id: String,
    /// Lower-case HTTP method.
    pub method: String,
    /// Path template, e.g. `/activity_logs/{activity_id}`.
    pub path: String,
    /// JSON pointer to the operation.
    pub pointer: String,
    /// Documented statuses, e.g. `["200", "401", "404"]`.
    pub statuses: Vec<String>,
}

/// One example response of one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Fixture {
    /// `operationId`.
    pub operation_id: String,
    /// The documented status.
    pub status: u16,
    /// The example body.
    pub body: Value,
    /// JSON pointer to the schema the body must match.
    pub schema_pointer: String,
    /// Where the body came from: a pointer to the media-type example, or `composed`.
    pub source: String,
}

/// Escapes a JSON pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Follows `$ref`s (local only) until a non-reference value, returning it and its pointer.
pub fn resolve<'a>(doc: &'a Value, value: &'a Value, pointer: &str) -> (&'a Value, String) {
    let mut current = (value, pointer.to_owned());
    for _ in 0..32 {
        match current.0.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = r.trim_start_matches('#');
                match doc.pointer(target) {
                    Some(v) => current = (v, target.to_owned()),
                    None => return current,
                }
            }
            None => return current,
        }
    }
    current
}

/// Every operation in the document, in path order.
pub fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let statuses = op["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            out.push(Operation {
                id: op["operationId"].as_str().unwrap_or_default().to_owned(),
                method: method.clone(),
                path: path.clone(),
                pointer: format!("/paths/{}/{method}", escape(path)),
                statuses,
            });
        }
    }
    out
}

/// An instance composed from per-property examples. Fails, naming the pointer, on a required
/// property that has no example anywhere below it.
pub fn compose(doc: &Value, schema: &Value, pointer: &str) -> Result<Value, String> {
    compose_at(doc, schema, pointer, 0)
}

fn compose_at(doc: &Value, schema: &Value, pointer: &str, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err(format!("{pointer}: schema nests too deeply (a cycle?)"));
    }
    let (schema, pointer) = resolve(doc, schema, pointer);
    if let Some(example) = schema.get("example") {
        return Ok(example.clone());
    }
    if let Some(first) = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Ok(first.clone());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for (i, member) in all.iter().enumerate() {
            match compose_at(doc, member, &format!("{pointer}/allOf/{i}"), depth + 1)? {
                Value::Object(m) => merged.extend(m),
                other if all.len() == 1 => return Ok(other),
                _ => return Err(format!("{pointer}/allOf/{i}: a non-object member of allOf")),
            }
        }
        return Ok(Value::Object(merged));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(members) = schema.get(key).and_then(Value::as_array) {
            for (i, member) in members.iter().enumerate() {
                if member.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                return compose_at(doc, member, &format!("{pointer}/{key}/{i}"), depth + 1);
            }
            return Ok(Value::Null);
        }
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Ok(first.clone());
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => Some(t.as_str()),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ => None,
    };
    let has_properties = schema.get("properties").is_some();
    match ty {
        Some("object") | None if has_properties => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                let p = format!("{pointer}/properties/{}", escape(name));
                match compose_at(doc, prop, &p, depth + 1) {
                    Ok(v) => {
                        out.insert(name.clone(), v);
                    }
                    Err(e) if required.contains(&name.as_str()) => return Err(e),
                    Err(_) => {}
                }
            }
            Ok(Value::Object(out))
        }
        Some("object") => Ok(Value::Object(Map::new())),
        Some("array") => {
            let items = schema.get("items").unwrap_or(&Value::Null);
            Ok(Value::Array(vec![compose_at(
                doc,
                items,
                &format!("{pointer}/items"),
                depth + 1,
            )?]))
        }
        Some("null") => Ok(Value::Null),
        _ => Err(format!("{pointer}: no example")),
    }
}

/// Every fixture of the document: one per operation, documented status and example.
pub fn fixtures(doc: &Value) -> Result<Vec<Fixture>, String> {
    let mut out = Vec::new();
    for op in operations(doc) {
        for status in &op.statuses {
            let code: u16 = status
                .parse()
                .map_err(|_| format!("{}/responses/{status}: not a status code", op.pointer))?;
            let r_pointer = format!("{}/responses/{status}", op.pointer);
            let raw = doc.pointer(&r_pointer).cloned().unwrap_or_default();
            let (response, r_pointer) = resolve(doc, &raw, &r_pointer);
            let response = response.clone();
            let m_pointer = format!("{r_pointer}/content/application~1json");
            let Some(media) = response.pointer("/content/application~1json") else {
                return Err(format!("{r_pointer}: no application/json content"));
            };
            let schema_pointer = format!("{m_pointer}/schema");
            let mut bodies = Vec::new();
            if let Some(example) = media.get("example") {
                bodies.push((example.clone(), format!("{m_pointer}/example")));
            }
            for (name, ex) in media
                .get("examples")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let (ex, p) = resolve(doc, ex, &format!("{m_pointer}/examples/{}", escape(name)));
                if let Some(v) = ex.get("value") {
                    bodies.push((v.clone(), format!("{p}/value")));
                }
            }
            if bodies.is_empty() {
                bodies.push((
                    compose(doc, &media["schema"], &schema_pointer)?,
                    "composed".to_owned(),
                ));
            }
            for (body, source) in bodies {
                out.push(Fixture {
                    operation_id: op.id.clone(),
                    status: code,
                    body,
                    schema_pointer: schema_pointer.clone(),
                    source,
                });
            }
        }
    }
    Ok(out)
}

/// The example of a parameter (by name) of an operation, from the parameter or its schema.
pub fn parameter_example(doc: &Value, op: &Operation, name: &str) -> Option<Value> {
    // The operation's own parameters, then those its path item shares (as Lago declares path
    // parameters).
    let own = doc
        .pointer(&format!("{}/parameters", op.pointer))
        .and_then(Value::as_array);
    let shared = doc
        .pointer(&format!("/paths/{}/parameters", escape(&op.path)))
        .and_then(Value::as_array);
    let params = own.into_iter().chain(shared).flatten();
    params.into_iter().find_map(|p| {
        let (p, ptr) = resolve(doc, p, "");
        if p.get("name")?.as_str()? != name {
            return None;
        }
        p.get("example")
            .cloned()
            .or_else(|| compose(doc, p.get("schema")?, &format!("{ptr}/schema")).ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn composes_through_refs_all_of_arrays_and_nullables() {
        let doc = json!({"components": {"schemas": {
            "Meta": {"type": "object", "required": ["n"], "properties": {
                "n": {"type": "integer", "example": 3},
                "next": {"type": ["integer", "null"], "example": 4},
                "missing": {"type": "string"}
            }},
            "Page": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Item"}]}},
                "meta": {"$ref": "#/components/schemas/Meta"}
            }},
            "Item": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["a", "b"]}}}
        }}});
        let page = compose(&doc, &json!({"$ref": "#/components/schemas/Page"}), "/x").unwrap();
        assert_eq!(
            page,
            json!({"items": [{"kind": "a"}], "meta": {"n": 3, "next": 4}})
        );
    }

    #[test]
    fn a_required_property_without_example_is_reported() {
        let doc = json!({});
        let err = compose(
            &doc,
            &json!({"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}}),
            "/s",
        )
        .unwrap_err();
        assert_eq!(err, "/s/properties/a: no example");
    }
}
