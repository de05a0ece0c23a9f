//! Keeping only the audit-log operations of a (possibly whole) Lago spec, and only the components
//! they reach.

use crate::{join_pointer, SpecError};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, VecDeque};
use std::path::Path;

/// The HTTP methods an OpenAPI path item may hold.
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The problem reported for a `$ref` whose target does not exist.
pub const DANGLING_REF: &str = "the reference points at nothing";

/// Removes every operation that carries none of `tags`, every path left without operations, the
/// tags no operation uses, top-level `webhooks`, and every component (schema, parameter, response,
/// …) that the kept operations do not reach through `$ref`. Security schemes are kept.
pub fn keep_audit_operations(doc: &mut Value, tags: &[&str], file: &Path) -> Result<(), SpecError> {
    let root = doc
        .as_object_mut()
        .ok_or_else(|| SpecError::new(file, "", "the document is not a mapping"))?;
    root.remove("webhooks");

    let paths = root
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| SpecError::new(file, "/paths", "missing, or not a mapping"))?;
    let mut used_tags = BTreeSet::new();
    paths.retain(|_, item| {
        let Some(item) = item.as_object_mut() else {
            return false;
        };
        item.retain(|key, op| {
            if !METHODS.contains(&key.as_str()) {
                return true;
            }
            let op_tags: Vec<String> = op
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let keep = op_tags.iter().any(|t| tags.contains(&t.as_str()));
            if keep {
                used_tags.extend(op_tags);
            }
            keep
        });
        item.keys().any(|k| METHODS.contains(&k.as_str()))
    });
    if paths.is_empty() {
        return Err(SpecError::new(
            file,
            "/paths",
            format!("no operation is tagged with any of {tags:?}"),
        ));
    }
    if let Some(Value::Array(all_tags)) = root.get_mut("tags") {
        all_tags.retain(|t| {
            t.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| used_tags.contains(n))
        });
    }

    // Walk $refs from the kept paths until no new component is found.
    let mut reached: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    collect_refs(&root["paths"], &mut |r| queue.push_back(r.to_owned()));
    while let Some(reference) = queue.pop_front() {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(SpecError::new(
                file,
                "",
                format!("external reference {reference:?} is not supported"),
            ));
        };
        if !reached.insert(pointer.to_owned()) {
            continue;
        }
        let Some(target) = pointer_get(root, pointer) else {
            return Err(SpecError::new(file, pointer, DANGLING_REF));
        };
        collect_refs(target, &mut |r| queue.push_back(r.to_owned()));
    }

    if let Some(Value::Object(components)) = root.get_mut("components") {
        for (kind, entries) in components.iter_mut() {
            if kind == "securitySchemes" {
                continue;
            }
            if let Value::Object(entries) = entries {
                entries.retain(|name, _| {
                    reached.iter().any(|p| {
                        let prefix = join_pointer(&join_pointer("/components", kind), name);
                        p == &prefix || p.starts_with(&format!("{prefix}/"))
                    })
                });
            }
        }
        components.retain(|_, v| !v.as_object().is_some_and(Map::is_empty));
    }
    Ok(())
}

/// Keeps only the paths with an audit-log operation (Lago's whole spec has ~200 operations), and
/// leaves the components alone: lighter than [`keep_audit_operations`], for comparing two specs.
pub fn audit_paths_only(doc: &mut Value) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        paths.retain(|_, item| {
            item.as_object().is_some_and(|ops| {
                ops.iter().any(|(m, op)| {
                    METHODS.contains(&m.as_str())
                        && op["tags"].as_array().is_some_and(|t| {
                            t.iter()
                                .any(|t| t.as_str().is_some_and(|t| crate::AUDIT_TAGS.contains(&t)))
                        })
                })
            })
        });
    }
}

/// Calls `f` with every `$ref` string under `value`.
pub fn collect_refs(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => f(s),
                    _ => collect_refs(v, f),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, f)),
        _ => {}
    }
}

/// Looks up an RFC 6901 pointer in a JSON object.
pub fn pointer_get<'a>(root: &'a Map<String, Value>, pointer: &str) -> Option<&'a Value> {
    let mut parts = pointer.strip_prefix('/')?.split('/');
    let first = unescape(parts.next()?);
    let mut current = root.get(&first)?;
    for part in parts {
        let part = unescape(part);
        current = match current {
            Value::Object(m) => m.get(&part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(current)
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({
            "openapi": "3.1.0",
            "tags": [{"name": "activity_logs"}, {"name": "invoices"}],
            "webhooks": {"x": {}},
            "paths": {
                "/activity_logs": {"get": {"tags": ["activity_logs"], "responses": {
                    "200": {"$ref": "#/components/responses/Ok"}}}},
                "/invoices": {"get": {"tags": ["invoices"], "responses": {
                    "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Invoice"}}}}}}},
                "/mixed": {
                    "parameters": [],
                    "get": {"tags": ["invoices"]},
                    "post": {"tags": ["activity_logs"]}
                }
            },
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
                "responses": {"Ok": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Page"}}}}},
                "schemas": {
                    "Page": {"properties": {"meta": {"$ref": "#/components/schemas/Meta"}}},
                    "Meta": {"type": "object"},
                    "Invoice": {"type": "object"}
                },
                "parameters": {"unused": {"name": "x", "in": "query"}}
            }
        })
    }

    #[test]
    fn keeps_tagged_operations_and_what_they_reach() {
        let mut doc = spec();
        keep_audit_operations(&mut doc, &["activity_logs"], Path::new("s.yaml")).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(
            paths.keys().collect::<Vec<_>>(),
            ["/activity_logs", "/mixed"]
        );
        assert!(doc["paths"]["/mixed"].get("get").is_none());
        assert!(doc["paths"]["/mixed"].get("post").is_some());
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert_eq!(schemas.keys().collect::<Vec<_>>(), ["Meta", "Page"]);
        assert!(doc["components"].get("parameters").is_none());
        assert!(doc["components"]["securitySchemes"]
            .get("bearerAuth")
            .is_some());
        assert!(doc.get("webhooks").is_none());
        assert_eq!(doc["tags"], json!([{"name": "activity_logs"}]));
    }

    #[test]
    fn a_dangling_reference_is_reported_with_its_pointer() {
        let mut doc = spec();
        doc["components"]["schemas"]
            .as_object_mut()
            .unwrap()
            .remove("Meta");
        let err =
            keep_audit_operations(&mut doc, &["activity_logs"], Path::new("s.yaml")).unwrap_err();
        assert_eq!(err.pointer, "/components/schemas/Meta");
        assert!(err.problem.contains("points at nothing"));
    }

    #[test]
    fn no_matching_operation_is_an_error() {
        let mut doc = spec();
        let err = keep_audit_operations(&mut doc, &["nope"], Path::new("s.yaml")).unwrap_err();
        assert_eq!(err.pointer, "/paths");
    }
}
