//! Rewriting an OpenAPI 3.1 document into the OpenAPI 3.0 that progenitor (through the `openapiv3`
//! crate) reads.
//!
//! Only Schema Objects are rewritten, and only where 3.1 and 3.0 differ:
//!
//! | 3.1 | 3.0 |
//! |---|---|
//! | `type: [T, 'null']` | `type: T`, `nullable: true` |
//! | `type: [T, U]` | `anyOf: [{type: T}, {type: U}]` |
//! | `type: 'null'` | `enum: [null]` |
//! | `anyOf`/`oneOf` with a `null` member | the member dropped, `nullable: true` (a lone remaining member goes into `allOf`) |
//! | `const: v` | `enum: [v]` |
//! | `examples: [a, …]` | `example: a` |
//! | `exclusiveMinimum: n` | `minimum: n`, `exclusiveMinimum: true` (same for maximum) |
//! | `$ref` with sibling keywords | annotations dropped; other siblings kept beside `allOf: [{$ref}]` |
//! | `format` on an object, array or boolean (Lago's `format: object`) | dropped |
//!
//! Outside schemas: `openapi` becomes `3.0.3`; `webhooks`, `jsonSchemaDialect`, `info.summary`,
//! `info.license.identifier` and `components.pathItems` are dropped. A `style: deepObject`
//! parameter is refused with its pointer (progenitor rejects the whole document on it).

use crate::filter::METHODS;
use crate::{join_pointer, SpecError};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Keywords that only annotate a schema: safe to drop beside a `$ref`.
const ANNOTATIONS: &[&str] = &[
    "description",
    "summary",
    "title",
    "example",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Rewrites `doc` in place.
pub fn to_openapi_30(doc: &mut Value, file: &Path) -> Result<(), SpecError> {
    let root = doc
        .as_object_mut()
        .ok_or_else(|| SpecError::new(file, "", "the document is not a mapping"))?;
    match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") || v.starts_with("3.1.") => {}
        Some(v) => {
            return Err(SpecError::new(
                file,
                "/openapi",
                format!("OpenAPI version {v:?} is not supported (3.0.x or 3.1.x)"),
            ))
        }
        None => return Err(SpecError::new(file, "/openapi", "missing OpenAPI version")),
    }
    root.insert("openapi".into(), json!("3.0.3"));
    root.remove("webhooks");
    root.remove("jsonSchemaDialect");
    if let Some(Value::Object(info)) = root.get_mut("info") {
        info.remove("summary");
        if let Some(Value::Object(license)) = info.get_mut("license") {
            license.remove("identifier");
        }
    }

    if let Some(Value::Object(components)) = root.get_mut("components") {
        components.remove("pathItems");
        if let Some(Value::Object(schemas)) = components.get_mut("schemas") {
            for (name, schema) in schemas.iter_mut() {
                rewrite_schema(schema, &join_pointer("/components/schemas", name));
            }
        }
        for kind in ["parameters", "headers"] {
            if let Some(Value::Object(entries)) = components.get_mut(kind) {
                for (name, entry) in entries.iter_mut() {
                    let ptr = join_pointer(&join_pointer("/components", kind), name);
                    rewrite_parameter(entry, &ptr, file)?;
                }
            }
        }
        for kind in ["responses", "requestBodies"] {
            if let Some(Value::Object(entries)) = components.get_mut(kind) {
                for (name, entry) in entries.iter_mut() {
                    let ptr = join_pointer(&join_pointer("/components", kind), name);
                    rewrite_body(entry, &ptr, file)?;
                }
            }
        }
    }

    if let Some(Value::Object(paths)) = root.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let item_ptr = join_pointer("/paths", path);
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (key, value) in item.iter_mut() {
                let ptr = join_pointer(&item_ptr, key);
                if key == "parameters" {
                    rewrite_parameter_list(value, &ptr, file)?;
                } else if METHODS.contains(&key.as_str()) {
                    rewrite_operation(value, &ptr, file)?;
                }
            }
        }
    }
    Ok(())
}

fn rewrite_operation(op: &mut Value, ptr: &str, file: &Path) -> Result<(), SpecError> {
    let Some(op) = op.as_object_mut() else {
        return Ok(());
    };
    if let Some(params) = op.get_mut("parameters") {
        rewrite_parameter_list(params, &join_pointer(ptr, "parameters"), file)?;
    }
    if let Some(body) = op.get_mut("requestBody") {
        rewrite_body(body, &join_pointer(ptr, "requestBody"), file)?;
    }
    if let Some(Value::Object(responses)) = op.get_mut("responses") {
        for (status, response) in responses.iter_mut() {
            rewrite_body(
                response,
                &join_pointer(&join_pointer(ptr, "responses"), status),
                file,
            )?;
        }
    }
    Ok(())
}

fn rewrite_parameter_list(params: &mut Value, ptr: &str, file: &Path) -> Result<(), SpecError> {
    if let Value::Array(params) = params {
        for (i, p) in params.iter_mut().enumerate() {
            rewrite_parameter(p, &format!("{ptr}/{i}"), file)?;
        }
    }
    Ok(())
}

/// A Parameter or Header Object (or a reference to one).
fn rewrite_parameter(param: &mut Value, ptr: &str, file: &Path) -> Result<(), SpecError> {
    let Some(param) = param.as_object_mut() else {
        return Ok(());
    };
    if param.get("style").and_then(Value::as_str) == Some("deepObject") {
        return Err(SpecError::new(
            file,
            join_pointer(ptr, "style"),
            "`style: deepObject` parameters are not supported by progenitor",
        ));
    }
    if let Some(schema) = param.get_mut("schema") {
        rewrite_schema(schema, &join_pointer(ptr, "schema"));
    }
    rewrite_content(param, ptr);
    Ok(())
}

/// A Response or Request Body Object (or a reference to one).
fn rewrite_body(body: &mut Value, ptr: &str, file: &Path) -> Result<(), SpecError> {
    let Some(body) = body.as_object_mut() else {
        return Ok(());
    };
    if let Some(Value::Object(headers)) = body.get_mut("headers") {
        for (name, header) in headers.iter_mut() {
            rewrite_parameter(
                header,
                &join_pointer(&join_pointer(ptr, "headers"), name),
                file,
            )?;
        }
    }
    rewrite_content(body, ptr);
    Ok(())
}

fn rewrite_content(owner: &mut Map<String, Value>, ptr: &str) {
    if let Some(Value::Object(content)) = owner.get_mut("content") {
        for (media, mt) in content.iter_mut() {
            if let Some(schema) = mt.get_mut("schema") {
                let p = join_pointer(
                    &join_pointer(&join_pointer(ptr, "content"), media),
                    "schema",
                );
                rewrite_schema(schema, &p);
            }
        }
    }
}

fn is_null_schema(s: &Value) -> bool {
    match s {
        Value::Object(m) => {
            m.get("type").and_then(Value::as_str) == Some("null")
                || (m.get("enum") == Some(&json!([null])) && !m.contains_key("type"))
        }
        _ => false,
    }
}

/// Rewrites one Schema Object (and every schema inside it) in place. Infallible: anything it does
/// not recognise is left for progenitor to judge.
pub fn rewrite_schema(schema: &mut Value, ptr: &str) {
    // Boolean schemas (3.1): `true` accepts anything, `false` nothing.
    if let Value::Bool(b) = schema {
        *schema = if *b { json!({}) } else { json!({"not": {}}) };
        return;
    }
    let Some(map) = schema.as_object_mut() else {
        return;
    };

    // Children first, so `null` members are already normalised when this schema looks at them.
    for key in [
        "properties",
        "patternProperties",
        "$defs",
        "definitions",
        "dependentSchemas",
    ] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            for (name, child) in children.iter_mut() {
                rewrite_schema(child, &join_pointer(&join_pointer(ptr, key), name));
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf", "prefixItems"] {
        if let Some(Value::Array(children)) = map.get_mut(key) {
            for (i, child) in children.iter_mut().enumerate() {
                rewrite_schema(child, &format!("{}/{i}", join_pointer(ptr, key)));
            }
        }
    }
    for key in [
        "items",
        "additionalProperties",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "unevaluatedProperties",
        "unevaluatedItems",
    ] {
        if let Some(child) = map.get_mut(key) {
            if child.is_object() || (child.is_boolean() && key != "additionalProperties") {
                rewrite_schema(child, &join_pointer(ptr, key));
            }
        }
    }

    // `$ref` with siblings.
    if map.contains_key("$ref") && map.len() > 1 {
        map.retain(|k, _| k == "$ref" || !ANNOTATIONS.contains(&k.as_str()));
        if map.len() > 1 {
            let reference = map.remove("$ref").expect("checked above");
            map.insert("allOf".into(), json!([{"$ref": reference}]));
        }
    }

    // `type` arrays and `type: 'null'`.
    let mut nullable = false;
    match map.remove("type") {
        Some(Value::Array(types)) => {
            let names: Vec<String> = types
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect();
            nullable = names.iter().any(|t| t == "null");
            let concrete: Vec<&String> = names.iter().filter(|t| *t != "null").collect();
            match concrete.as_slice() {
                [] => {
                    nullable = false;
                    map.insert("enum".into(), json!([null]));
                }
                [one] => {
                    map.insert("type".into(), json!(one));
                }
                many => {
                    let variants: Vec<Value> = many.iter().map(|t| json!({"type": t})).collect();
                    map.insert("anyOf".into(), Value::Array(variants));
                }
            }
        }
        Some(Value::String(t)) if t == "null" => {
            map.insert("enum".into(), json!([null]));
        }
        Some(other) => {
            map.insert("type".into(), other);
        }
        None => {}
    }

    // `null` members of anyOf / oneOf.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(members)) = map.get_mut(key) {
            let before = members.len();
            members.retain(|m| !is_null_schema(m));
            if members.len() != before {
                nullable = true;
                if members.len() == 1 {
                    let only = members.pop().expect("one member");
                    map.remove(key);
                    map.insert("allOf".into(), json!([only]));
                }
            }
        }
    }
    if nullable {
        map.insert("nullable".into(), json!(true));
    }

    if let Some(value) = map.remove("const") {
        map.insert("enum".into(), json!([value]));
    }
    if let Some(examples) = map.remove("examples") {
        if !map.contains_key("example") {
            if let Some(first) = examples.as_array().and_then(|a| a.first()) {
                map.insert("example".into(), first.clone());
            }
        }
    }
    for (exclusive, inclusive) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = map.get(exclusive).filter(|v| v.is_number()).cloned() {
            map.insert(inclusive.into(), n);
            map.insert(exclusive.into(), json!(true));
        }
    }
    // Lago writes `format: object` on free-form objects; typify panics on it.
    let structural = matches!(
        map.get("type").and_then(Value::as_str),
        Some("object" | "array" | "boolean")
    ) || (map.get("format").and_then(Value::as_str) == Some("object"));
    if structural {
        map.remove("format");
    }
    map.remove("$schema");
    map.remove("$id");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema(s: Value) -> Value {
        let mut s = s;
        rewrite_schema(&mut s, "/x");
        s
    }

    #[test]
    fn nullable_type_arrays() {
        assert_eq!(
            schema(json!({"type": ["string", "null"], "format": "email"})),
            json!({"type": "string", "format": "email", "nullable": true})
        );
        assert_eq!(
            schema(json!({"type": ["object", "null"], "format": "object"})),
            json!({"type": "object", "nullable": true})
        );
        assert_eq!(
            schema(json!({"type": ["string", "integer"]})),
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
        );
        assert_eq!(schema(json!({"type": "null"})), json!({"enum": [null]}));
        assert_eq!(schema(json!({"type": ["null"]})), json!({"enum": [null]}));
    }

    #[test]
    fn any_of_with_null_member() {
        assert_eq!(
            schema(
                json!({"anyOf": [{"$ref": "#/components/schemas/A"}, {"type": "null"}], "description": "d"})
            ),
            json!({"allOf": [{"$ref": "#/components/schemas/A"}], "nullable": true, "description": "d"})
        );
        assert_eq!(
            schema(json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})),
            json!({"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": true})
        );
    }

    #[test]
    fn const_examples_and_exclusive_bounds() {
        assert_eq!(
            schema(json!({"type": "integer", "const": 401, "examples": [401, 402]})),
            json!({"type": "integer", "enum": [401], "example": 401})
        );
        assert_eq!(
            schema(json!({"type": "integer", "exclusiveMinimum": 0})),
            json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true})
        );
    }

    #[test]
    fn ref_with_siblings() {
        assert_eq!(
            schema(json!({"$ref": "#/a", "description": "d", "example": 1})),
            json!({"$ref": "#/a"})
        );
        assert_eq!(
            schema(json!({"$ref": "#/a", "nullable": true})),
            json!({"allOf": [{"$ref": "#/a"}], "nullable": true})
        );
    }

    #[test]
    fn nested_schemas_are_rewritten() {
        let s = schema(json!({
            "type": "object",
            "properties": {"a": {"type": ["integer", "null"]}},
            "additionalProperties": {"type": ["string", "null"]},
            "items": {"const": "x"}
        }));
        assert_eq!(
            s["properties"]["a"],
            json!({"type": "integer", "nullable": true})
        );
        assert_eq!(
            s["additionalProperties"],
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(s["items"], json!({"enum": ["x"]}));
    }

    /// A synthetic document carrying every 3.1 construct seen in Lago's full published spec.
    pub(crate) fn synthetic_31() -> Value {
        json!({
            "openapi": "3.1.0",
            "info": {"title": "t", "version": "1.51.0", "summary": "s",
                     "license": {"name": "AGPLv3", "identifier": "AGPL-3.0"}},
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "webhooks": {"invoice.created": {"post": {"responses": {"200": {"description": "ok"}}}}},
            "paths": {
                "/activity_logs": {"get": {
                    "operationId": "findAllActivityLogs",
                    "tags": ["activity_logs"],
                    "parameters": [
                        {"name": "page", "in": "query", "schema": {"type": "integer", "examples": [1]}},
                        {"name": "types[]", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}}
                    ],
                    "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/Page", "description": "sibling"}}}}}
                }},
                "/invoices": {"get": {
                    "operationId": "findAllInvoices",
                    "tags": ["invoices"],
                    "parameters": [{"name": "search", "in": "query", "style": "deepObject",
                                    "schema": {"type": "object"}}],
                    "responses": {"200": {"description": "ok"}}
                }}
            },
            "components": {
                "pathItems": {},
                "schemas": {
                    "Page": {"type": "object", "properties": {
                        "email": {"type": ["string", "null"], "format": "email"},
                        "nothing": {"type": "null"},
                        "meta": {"anyOf": [{"$ref": "#/components/schemas/Meta"}, {"type": "null"}]},
                        "status": {"type": "integer", "const": 401},
                        "object": {"type": ["object", "null"], "format": "object"},
                        "legacy": {"type": "string", "nullable": true}
                    }},
                    "Meta": {"type": "object", "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}}}
                }
            }
        })
    }

    #[test]
    fn the_synthetic_document_becomes_valid_openapi_30() {
        let mut doc = synthetic_31();
        crate::filter::keep_audit_operations(&mut doc, crate::AUDIT_TAGS, Path::new("s.yaml"))
            .unwrap();
        to_openapi_30(&mut doc, Path::new("s.yaml")).unwrap();
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(doc.get("webhooks").is_none() && doc.get("jsonSchemaDialect").is_none());
        assert!(doc["info"]["license"].get("identifier").is_none());
        let page = &doc["components"]["schemas"]["Page"]["properties"];
        assert_eq!(
            page["email"],
            json!({"type": "string", "format": "email", "nullable": true})
        );
        assert_eq!(page["nothing"], json!({"enum": [null]}));
        assert_eq!(page["status"], json!({"type": "integer", "enum": [401]}));
        assert_eq!(page["object"], json!({"type": "object", "nullable": true}));
        assert_eq!(page["legacy"], json!({"type": "string", "nullable": true}));
        // The result parses as OpenAPI 3.0.
        let parsed: openapiv3::OpenAPI = serde_json::from_value(doc).expect("valid 3.0");
        assert_eq!(parsed.paths.paths.len(), 1);
    }

    #[test]
    fn deep_object_parameters_in_kept_operations_are_refused_with_their_pointer() {
        let mut doc = synthetic_31();
        let err = to_openapi_30(&mut doc, Path::new("s.yaml")).unwrap_err();
        assert_eq!(err.pointer, "/paths/~1invoices/get/parameters/0/style");
    }

    #[test]
    fn unsupported_versions_are_refused() {
        let mut doc = json!({"openapi": "2.0", "paths": {}});
        let err = to_openapi_30(&mut doc, Path::new("s.yaml")).unwrap_err();
        assert_eq!(err.pointer, "/openapi");
    }
}
