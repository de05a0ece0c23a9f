//! The client-relevant model of a spec: its operations (keyed by `operationId`, which names the
//! client's methods), each with its parameters, the fields of its success response and its
//! response codes, every value described by the [`Shape`] the generated code gives it. The update
//! report ([`crate::report`]) compares two of them; the overlay statuses ([`crate::status`])
//! describe parameters with [`shape`].

use crate::generate::REPLACEMENTS;
use serde_json::Value;
use std::collections::BTreeMap;

/// The shape of one value (parameter or response field) as the generated code sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// A type description, e.g. `string(date-time)`, `array<string(uuid)>`,
    /// `ActivitySource (open, hand-written)`.
    pub ty: String,
    /// Whether `null` is allowed.
    pub nullable: bool,
    /// The enum values the spec lists (of the items, for an array), `None` when not an enum.
    pub values: Option<Vec<String>>,
    /// The hand-written type the client uses instead (for an array, for its items), e.g.
    /// `ActivitySource`: it keeps values it does not know, so its values may change freely.
    pub open: Option<String>,
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// `query` or `path`.
    pub location: String,
    /// Whether it is required.
    pub required: bool,
    /// Its schema.
    pub shape: Shape,
    /// Where it is declared: `operation`, or `path item` (shared by the path's operations).
    pub level: String,
}

/// One field of a success response, at a path like `activity_logs[].user_email`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Whether its parent object requires it.
    pub required: bool,
    /// Its schema.
    pub shape: Shape,
}

/// One operation, as the generated client exposes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case method and path, e.g. `GET /activity_logs`.
    pub route: String,
    /// Parameters by name.
    pub params: BTreeMap<String, Param>,
    /// The 200 body's fields by path (the body itself is `.`).
    pub fields: BTreeMap<String, Field>,
    /// The documented response codes (`200`, `404`, `default`, …).
    pub responses: Vec<String>,
}

/// The client-relevant model of an (overlaid, audit-only) spec, keyed by `operationId`.
pub type Model = BTreeMap<String, Operation>;

fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> (&'a Value, Option<String>) {
    let mut name = None;
    for _ in 0..16 {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                name = r.rsplit('/').next().map(str::to_owned);
                match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
                    Some(t) => v = t,
                    None => break,
                }
            }
            None => break,
        }
    }
    (v, name)
}

fn types_of(schema: &Value) -> (Vec<String>, bool) {
    match schema.get("type") {
        Some(Value::String(t)) => (vec![t.clone()], t == "null"),
        Some(Value::Array(ts)) => {
            let names: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .map(str::to_owned)
                .collect();
            let nullable = ts.iter().any(|t| t == "null");
            (names, nullable)
        }
        _ => (Vec::new(), false),
    }
}

/// Describes a schema's shape (following `$ref`s, stopping at replaced types).
pub fn shape(doc: &Value, schema: &Value) -> Shape {
    let (s, name) = resolve(doc, schema);
    if let Some(name) = &name {
        if REPLACEMENTS.iter().any(|(n, _)| n == name) {
            return Shape {
                ty: format!("{name} (open, hand-written)"),
                nullable: false,
                values: enum_values(s),
                open: Some(name.clone()),
            };
        }
    }
    let (types, mut nullable) = types_of(s);
    let mut ty = match types.as_slice() {
        [one] => one.clone(),
        [] => String::new(),
        many => many.join("|"),
    };
    for key in ["anyOf", "oneOf"] {
        if let Some(members) = s.get(key).and_then(Value::as_array) {
            let mut parts = Vec::new();
            for m in members {
                let inner = shape(doc, m);
                if inner.ty == "null" {
                    nullable = true;
                } else {
                    nullable |= inner.nullable;
                    parts.push(inner.ty);
                }
            }
            ty = if parts.len() == 1 {
                parts.remove(0)
            } else {
                format!("{key}({})", parts.join(", "))
            };
        }
    }
    let (mut item_values, mut open) = (None, None);
    if ty == "array" {
        let item = s.get("items").map(|i| shape(doc, i));
        item_values = item.as_ref().and_then(|i| i.values.clone());
        open = item.as_ref().and_then(|i| i.open.clone());
        ty = format!("array<{}>", item.map(|i| i.ty).unwrap_or_default());
    } else if ty == "object" {
        if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
            ty = format!("map<{}>", shape(doc, ap).ty);
        }
    } else if let Some(format) = s.get("format").and_then(Value::as_str) {
        ty = format!("{ty}({format})");
    }
    if let Some(name) = name {
        if ty == "object" {
            ty = format!("object {name}");
        }
    }
    Shape {
        ty,
        nullable,
        values: enum_values(s).or(item_values),
        open,
    }
}

fn enum_values(schema: &Value) -> Option<Vec<String>> {
    schema.get("enum").and_then(Value::as_array).map(|vs| {
        vs.iter()
            .filter(|v| !v.is_null())
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect()
    })
}

fn collect_fields(
    doc: &Value,
    schema: &Value,
    path: &str,
    required: bool,
    out: &mut BTreeMap<String, Field>,
    depth: usize,
) {
    let sh = shape(doc, schema);
    // A replaced type is the hand-written code's: its insides are not the client's (an array of
    // one still has items).
    let replaced = sh.open.is_some() && !sh.ty.starts_with("array<");
    out.insert(
        path.to_owned(),
        Field {
            required,
            shape: sh,
        },
    );
    if replaced || depth > 8 {
        return;
    }
    let (s, _) = resolve(doc, schema);
    if let Some(items) = s.get("items") {
        collect_fields(doc, items, &format!("{path}[]"), true, out, depth + 1);
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        let req: Vec<&str> = s
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (name, p) in props {
            let child = if path == "." {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            collect_fields(doc, p, &child, req.contains(&name.as_str()), out, depth + 1);
        }
    }
}

/// Builds the model of an overlaid, audit-only document (see [`crate::audit_document`]).
pub fn model(doc: &Value) -> Model {
    let mut out = Model::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let shared: Vec<Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for (method, op) in item.as_object().into_iter().flatten() {
            if !crate::filter::METHODS.contains(&method.as_str()) {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or(path).to_owned();
            let mut params = BTreeMap::new();
            let own = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let levels = shared
                .iter()
                .map(|p| (p, "path item"))
                .chain(own.iter().map(|p| (p, "operation")));
            for (p, level) in levels {
                let (p, _) = resolve(doc, p);
                let Some(name) = p.get("name").and_then(Value::as_str) else {
                    continue;
                };
                params.insert(
                    name.to_owned(),
                    Param {
                        location: p["in"].as_str().unwrap_or_default().to_owned(),
                        required: p.get("required").and_then(Value::as_bool) == Some(true),
                        shape: p.get("schema").map(|s| shape(doc, s)).unwrap_or(Shape {
                            ty: String::new(),
                            nullable: false,
                            values: None,
                            open: None,
                        }),
                        level: level.to_owned(),
                    },
                );
            }
            let mut fields = BTreeMap::new();
            if let Some(schema) = op
                .pointer("/responses/200")
                .map(|r| resolve(doc, r).0)
                .and_then(|r| r.pointer("/content/application~1json/schema"))
            {
                collect_fields(doc, schema, ".", true, &mut fields, 0);
            }
            let responses = op
                .get("responses")
                .and_then(Value::as_object)
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            out.insert(
                id,
                Operation {
                    route: format!("{} {path}", method.to_uppercase()),
                    params,
                    fields,
                    responses,
                },
            );
        }
    }
    out
}
