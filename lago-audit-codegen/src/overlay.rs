//! Applying our corrections (an OpenAPI Overlay 1.0 document) to Lago's spec.

use crate::SpecError;
use roas_overlay::v1_0::Overlay;
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// An overlay action whose target selected nothing: a correction that no longer applies
/// (perhaps because Lago fixed its spec, perhaps because it moved what we patch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleAction {
    /// Index in the overlay's `actions` array.
    pub index: usize,
    /// The JSONPath target.
    pub target: String,
    /// `update` or `remove`.
    pub operation: String,
}

impl fmt::Display for StaleAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "actions[{}] ({}) matched nothing: {}",
            self.index, self.operation, self.target
        )
    }
}

/// What applying the overlay found besides the patched document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Actions that matched nothing although what they rely on is there: corrections that no
    /// longer apply (perhaps Lago fixed its spec). Warnings, and a failing conformance test.
    pub stale: Vec<StaleAction>,
    /// Upstream changes the overlay relies on: what an action patches is gone, renamed or moved,
    /// or the spec now defines something the overlay adds itself. The build fails on these.
    pub broken: Vec<Broken>,
}

/// An upstream change that breaks an overlay action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Index in the overlay's `actions` array.
    pub index: usize,
    /// The action's JSONPath target.
    pub target: String,
    /// The action's own description, if it has one.
    pub description: Option<String>,
    /// JSON pointer (in the spec) of what the action relies on.
    pub pointer: String,
    /// The upstream change, in words.
    pub change: String,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (at {}); overlay actions[{}] ({}) relies on it",
            self.change, self.pointer, self.index, self.target
        )?;
        if let Some(d) = &self.description {
            write!(
                f,
                ": {}",
                d.split_whitespace().collect::<Vec<_>>().join(" ")
            )?;
        }
        Ok(())
    }
}

/// What an action's target relies on in Lago's spec, read from the target itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// A path item, `$.paths['/x']…`.
    PathItem {
        /// The path template.
        path: String,
    },
    /// An operation, `$.paths['/x'].get…`.
    Operation {
        /// The path template.
        path: String,
        /// Lower-case method.
        method: String,
    },
    /// An inline parameter of an operation, `$.paths['/x'].get.parameters[?@.name=='n']…`.
    Parameter {
        /// The path template.
        path: String,
        /// Lower-case method.
        method: String,
        /// The parameter name.
        name: String,
    },
    /// A named component, `$.components.<kind>.<name>…`.
    Component {
        /// `schemas`, `parameters`, `responses`, …
        kind: String,
        /// The component name.
        name: String,
    },
    /// A collection the action adds entries to (`$.paths`, `$.tags`, `$.components.schemas`):
    /// each key it adds must not exist yet.
    Collection {
        /// JSON pointer of the collection.
        pointer: String,
    },
}

/// Reads what a target relies on. `None` for targets outside the forms this overlay uses (they are
/// then only checked for matching something).
pub fn anchor(target: &str) -> Option<Anchor> {
    if let Some(rest) = target.strip_prefix("$.paths['") {
        let (path, rest) = rest.split_once("']")?;
        let path = path.to_owned();
        let Some(rest) = rest.strip_prefix('.') else {
            return Some(Anchor::PathItem { path });
        };
        let (method, rest) = rest.split_once('.').unwrap_or((rest, ""));
        if !crate::filter::METHODS.contains(&method) {
            return Some(Anchor::PathItem { path });
        }
        let method = method.to_owned();
        if let Some(p) = rest.strip_prefix("parameters[?@.name=='") {
            if let Some((name, _)) = p.split_once("']") {
                return Some(Anchor::Parameter {
                    path,
                    method,
                    name: name.to_owned(),
                });
            }
        }
        return Some(Anchor::Operation { path, method });
    }
    if target == "$.paths" || target == "$.tags" {
        return Some(Anchor::Collection {
            pointer: format!("/{}", &target[2..]),
        });
    }
    let rest = target.strip_prefix("$.components.")?;
    let mut parts = rest.splitn(3, '.');
    let kind = parts.next()?.to_owned();
    match parts.next() {
        None => Some(Anchor::Collection {
            pointer: format!("/components/{kind}"),
        }),
        Some(name) => {
            let name = name.split('[').next().unwrap_or(name).to_owned();
            Some(Anchor::Component { kind, name })
        }
    }
}

fn operation_pointer(path: &str, method: &str) -> String {
    crate::join_pointer(&crate::join_pointer("/paths", path), method)
}

fn describe_operation(doc: &Value, path: &str, method: &str) -> String {
    let id = doc
        .pointer(&operation_pointer(path, method))
        .and_then(|o| o.get("operationId"))
        .and_then(Value::as_str);
    match id {
        Some(id) => format!("{} {path} ({id})", method.to_uppercase()),
        None => format!("{} {path}", method.to_uppercase()),
    }
}

/// Checks that what `anchor` names exists in `doc` as the action expects it; returns the pointer
/// and the upstream change otherwise.
fn check_anchor(doc: &Value, anchor: &Anchor, update: Option<&Value>) -> Option<(String, String)> {
    match anchor {
        Anchor::PathItem { path } => {
            let ptr = crate::join_pointer("/paths", path);
            doc.pointer(&ptr)
                .is_none()
                .then(|| (ptr, format!("the path {path} is gone")))
        }
        Anchor::Operation { path, method } => {
            let ptr = operation_pointer(path, method);
            doc.pointer(&ptr).is_none().then(|| {
                (
                    ptr,
                    format!("the operation {} {path} is gone", method.to_uppercase()),
                )
            })
        }
        Anchor::Parameter { path, method, name } => {
            let op_ptr = operation_pointer(path, method);
            let Some(op) = doc.pointer(&op_ptr) else {
                return Some((
                    op_ptr,
                    format!("the operation {} {path} is gone", method.to_uppercase()),
                ));
            };
            let op_name = describe_operation(doc, path, method);
            let params = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let params_ptr = format!("{op_ptr}/parameters");
            let name_of = |p: &Value| {
                let (p, _) = resolve(doc, p);
                p.get("name").and_then(Value::as_str).map(str::to_owned)
            };
            for (i, p) in params.iter().enumerate() {
                if name_of(p).as_deref() == Some(name.as_str()) {
                    return p.get("$ref").and_then(Value::as_str).map(|r| {
                        (
                            format!("{params_ptr}/{i}"),
                            format!(
                                "the parameter {name} of {op_name} is now the shared component {r} \
                                 (the action expects it inline)"
                            ),
                        )
                    });
                }
            }
            let bare = name.trim_end_matches("[]");
            let similar: Vec<String> = params
                .iter()
                .filter_map(name_of)
                .filter(|n| n.trim_end_matches("[]") == bare)
                .collect();
            let hint = match similar.first() {
                Some(n) => format!(" (the spec has {n:?} instead)"),
                None => String::new(),
            };
            Some((
                params_ptr,
                format!("the parameter {name} of {op_name} is gone{hint}"),
            ))
        }
        Anchor::Component { kind, name } => {
            let ptr = crate::join_pointer(&format!("/components/{kind}"), name);
            doc.pointer(&ptr)
                .is_none()
                .then(|| (ptr, format!("components.{kind}.{name} is gone")))
        }
        Anchor::Collection { pointer } => {
            let existing = doc.pointer(pointer)?.as_object()?;
            let added = update?.as_object()?;
            let clash: Vec<&String> = added.keys().filter(|k| existing.contains_key(*k)).collect();
            (!clash.is_empty()).then(|| {
                (
                    pointer.clone(),
                    format!(
                        "the spec now defines {clash:?} under {pointer}, which the overlay \
                         defines itself (rely on the spec's, or rename the overlay's)"
                    ),
                )
            })
        }
    }
}

/// Follows one local `$ref`.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> (&'a Value, Option<&'a str>) {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(target) => (target, Some(r)),
            None => (value, Some(r)),
        },
        None => (value, None),
    }
}

/// Applies `overlay` (already parsed into the JSON data model) to `document` in place, one action
/// at a time. Before each action, checks that what its target relies on is there (see [`anchor`]);
/// an action whose anchor is missing is skipped and reported in [`Outcome::broken`].
pub fn apply(
    document: &mut Value,
    overlay: Value,
    overlay_file: &Path,
) -> Result<Outcome, SpecError> {
    let mut overlay: Overlay = serde_path_to_error::deserialize(overlay).map_err(|e| {
        SpecError::new(
            overlay_file,
            pointer_from_serde_path(&e.path().to_string()),
            format!("not an OpenAPI Overlay 1.0 document: {}", e.inner()),
        )
    })?;
    let mut outcome = Outcome::default();
    // One action at a time, so each is checked against the document as the earlier ones left it.
    let actions = std::mem::take(&mut overlay.actions);
    for (index, action) in actions.into_iter().enumerate() {
        if let Some(anchor) = anchor(&action.target) {
            let update = if action.is_remove() {
                None
            } else {
                action.update.as_ref()
            };
            if let Some((pointer, change)) = check_anchor(document, &anchor, update) {
                outcome.broken.push(Broken {
                    index,
                    target: action.target.clone(),
                    description: action.description.clone(),
                    pointer,
                    change,
                });
                continue;
            }
        }
        // Applied in place with roas-overlay's own primitives (its `Apply` clones the whole
        // document per call, which is slow on Lago's whole spec when done per action).
        let matched = apply_one(document, &action).map_err(|problem| {
            SpecError::new(
                overlay_file,
                format!("/actions/{index}"),
                format!("cannot apply (target {}): {problem}", action.target),
            )
        })?;
        if matched == 0 {
            outcome.stale.push(StaleAction {
                index,
                operation: if action.is_remove() {
                    "remove"
                } else {
                    "update"
                }
                .to_owned(),
                target: action.target,
            });
        }
    }
    Ok(outcome)
}

/// Applies one Overlay 1.0 action as the specification says (§4.4): `remove` deletes every
/// selected node; `update` merges into each selected object, or appends to each selected array.
/// Returns how many nodes it changed.
fn apply_one(document: &mut Value, action: &roas_overlay::v1_0::Action) -> Result<usize, String> {
    use roas_overlay::common::apply::{compile_path, locate, merge_json, remove_at};
    let path = compile_path(&action.target)?;
    let pointers = locate(document, &path);
    if pointers.iter().any(|p| {
        !matches!(
            document.pointer(p),
            Some(Value::Object(_) | Value::Array(_))
        )
    }) {
        return Err("the target selects a primitive value (only objects and arrays)".to_owned());
    }
    if action.is_remove() {
        // In reverse, so earlier siblings in one array keep their indices.
        return Ok(pointers
            .iter()
            .rev()
            .filter(|p| remove_at(document, p))
            .count());
    }
    let Some(update) = &action.update else {
        return Ok(0);
    };
    for p in &pointers {
        match document.pointer_mut(p) {
            Some(Value::Array(items)) => items.push(update.clone()),
            Some(node) => merge_json(node, update),
            None => {}
        }
    }
    Ok(pointers.len())
}

fn dedup(items: Vec<&str>) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The one error a build fails with when upstream changed what the overlay relies on: each change
/// and the action concerned, then the stale actions.
pub fn broken_error(spec: &Path, overlay_file: &Path, outcome: &Outcome) -> SpecError {
    let mut problem = format!(
        "Lago's spec changed where our overlay ({}) relies on it:",
        overlay_file.display()
    );
    // One line per upstream change, with every action that relies on it.
    let mut groups: Vec<(&str, &str, Vec<&Broken>)> = Vec::new();
    for b in &outcome.broken {
        match groups
            .iter_mut()
            .find(|(p, c, _)| *p == b.pointer && *c == b.change)
        {
            Some(g) => g.2.push(b),
            None => groups.push((&b.pointer, &b.change, vec![b])),
        }
    }
    for (pointer, change, actions) in groups {
        let indices: Vec<String> = actions.iter().map(|a| a.index.to_string()).collect();
        let why: Vec<&str> = actions
            .iter()
            .filter_map(|a| a.description.as_deref())
            .map(|d| d.split(['.', ';', '(']).next().unwrap_or(d).trim())
            .collect();
        problem.push_str(&format!(
            "\n  - {change} (at {pointer}); overlay actions [{}] rely on it{}",
            indices.join(", "),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", dedup(why).join("; "))
            }
        ));
    }
    for s in &outcome.stale {
        problem.push_str(&format!("\n  also: stale overlay action: {s}"));
    }
    problem.push_str(
        "\n  Update the overlay's targets to the spec's new shape (see openapi/README.md), \
         then run the update report: cargo run -p lago-audit-codegen -- diff OLD NEW",
    );
    let pointer = outcome
        .broken
        .first()
        .map(|b| b.pointer.clone())
        .unwrap_or_default();
    SpecError::new(spec, pointer, problem)
}

/// Turns serde_path_to_error's `a.b[3].c` into `/a/b/3/c`.
pub(crate) fn pointer_from_serde_path(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            out.push('/');
            out.push_str(&crate::escape_pointer(&rest[..i]));
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push('/');
                out.push_str(&rest[1..end]);
                rest = &rest[end + 1..];
            }
        } else {
            out.push('/');
            out.push_str(&crate::escape_pointer(rest));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn overlay(actions: Value) -> Value {
        json!({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": actions})
    }

    #[test]
    fn applies_updates_and_removes_in_order() {
        let mut doc =
            json!({"components": {"schemas": {"A": {"required": ["a", "b"], "type": "object"}}}});
        let outcome = apply(
            &mut doc,
            overlay(json!([
                {"target": "$.components.schemas.A.required", "remove": true},
                {"target": "$.components.schemas.A", "update": {"required": ["a"]}}
            ])),
            Path::new("o.yaml"),
        )
        .unwrap();
        assert_eq!(outcome, Outcome::default());
        assert_eq!(doc["components"]["schemas"]["A"]["required"], json!(["a"]));
    }

    #[test]
    fn reports_actions_that_match_nothing() {
        let mut doc = json!({"paths": {}, "components": {"schemas": {"A": {"type": "object"}}}});
        let outcome = apply(
            &mut doc,
            overlay(json!([{"target": "$.components.schemas.A.required", "remove": true}])),
            Path::new("o.yaml"),
        )
        .unwrap();
        assert!(outcome.broken.is_empty());
        let stale = outcome.stale;
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].index, 0);
        assert!(
            stale[0]
                .to_string()
                .contains("$.components.schemas.A.required"),
            "{}",
            stale[0]
        );
    }

    #[test]
    fn a_malformed_overlay_names_the_file_and_pointer() {
        let mut doc = json!({});
        let err = apply(
            &mut doc,
            json!({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": [{"remove": true}]}),
            Path::new("o.yaml"),
        )
        .unwrap_err();
        assert_eq!(err.file, Path::new("o.yaml"));
        assert!(err.pointer.starts_with("/actions/0"), "{err}");
    }

    #[test]
    fn serde_paths_become_pointers() {
        assert_eq!(
            pointer_from_serde_path("actions[3].target"),
            "/actions/3/target"
        );
        assert_eq!(
            pointer_from_serde_path("paths./a/b.get"),
            "/paths/~1a~1b/get"
        );
        assert_eq!(pointer_from_serde_path("."), "");
    }
}

#[cfg(test)]
mod anchor_tests {
    use super::*;
    use serde_json::json;

    fn overlay(actions: Value) -> Value {
        json!({"overlay": "1.0.0", "info": {"title": "t", "version": "1"}, "actions": actions})
    }

    fn spec() -> Value {
        json!({
            "paths": {"/logs": {"get": {"operationId": "findAllLogs", "parameters": [
                {"name": "from_date", "in": "query", "schema": {"type": "string"}},
                {"$ref": "#/components/parameters/to_date"},
                {"name": "kinds", "in": "query", "schema": {"type": "array"}}
            ]}}},
            "components": {"parameters": {"to_date": {"name": "to_date", "in": "query"}},
                           "schemas": {"Log": {"type": "object"}}}
        })
    }

    #[test]
    fn targets_name_what_they_rely_on() {
        assert_eq!(
            anchor("$.paths['/a'].get.parameters[?@.name=='x[]'].schema"),
            Some(Anchor::Parameter {
                path: "/a".into(),
                method: "get".into(),
                name: "x[]".into()
            })
        );
        assert_eq!(
            anchor("$.paths['/a'].get.responses"),
            Some(Anchor::Operation {
                path: "/a".into(),
                method: "get".into()
            })
        );
        assert_eq!(
            anchor("$.components.schemas.A.properties.b"),
            Some(Anchor::Component {
                kind: "schemas".into(),
                name: "A".into()
            })
        );
        assert_eq!(
            anchor("$.components.schemas"),
            Some(Anchor::Collection {
                pointer: "/components/schemas".into()
            })
        );
        assert_eq!(
            anchor("$.paths"),
            Some(Anchor::Collection {
                pointer: "/paths".into()
            })
        );
    }

    fn broken(actions: Value) -> Vec<String> {
        let mut doc = spec();
        apply(&mut doc, overlay(actions), Path::new("o.yaml"))
            .unwrap()
            .broken
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_gone_operation_is_an_upstream_change_not_a_stale_action() {
        let b =
            broken(json!([{"target": "$.paths['/other'].get.responses", "update": {"403": {}}}]));
        assert_eq!(b.len(), 1);
        assert!(b[0].contains("the operation GET /other is gone"), "{b:?}");
        assert!(b[0].contains("actions[0]"), "{b:?}");
    }

    #[test]
    fn a_parameter_moved_into_components_is_named() {
        let b = broken(json!([
            {"target": "$.paths['/logs'].get.parameters[?@.name=='to_date'].schema", "remove": true}
        ]));
        assert!(
            b[0].contains("now the shared component #/components/parameters/to_date"),
            "{b:?}"
        );
    }

    #[test]
    fn a_renamed_array_parameter_is_named_with_what_the_spec_has() {
        let b = broken(json!([
            {"target": "$.paths['/logs'].get.parameters[?@.name=='kinds[]'].schema", "remove": true}
        ]));
        assert!(
            b[0].contains("kinds[] of GET /logs (findAllLogs) is gone"),
            "{b:?}"
        );
        assert!(b[0].contains("the spec has \"kinds\" instead"), "{b:?}");
    }

    #[test]
    fn the_overlay_may_not_silently_merge_into_a_component_the_spec_now_has() {
        let b = broken(json!([
            {"target": "$.components.schemas", "update": {"Log": {"type": "string"}, "New": {}}}
        ]));
        assert!(b[0].contains("[\"Log\"]"), "{b:?}");
        let ok = broken(json!([{"target": "$.components.schemas", "update": {"New": {}}}]));
        assert!(ok.is_empty());
    }

    #[test]
    fn what_an_earlier_action_adds_counts_as_there() {
        let b = broken(json!([
            {"target": "$.paths", "update": {"/new": {"get": {"parameters": []}}}},
            {"target": "$.paths['/new'].get.parameters", "update": {"name": "x", "in": "query"}}
        ]));
        assert!(b.is_empty(), "{b:?}");
    }

    #[test]
    fn the_error_lists_every_change_and_the_stale_actions() {
        let mut doc = spec();
        let outcome = apply(
            &mut doc,
            overlay(json!([
                {"target": "$.paths['/gone'].get.responses", "update": {}},
                {"target": "$.components.schemas.Log.required", "remove": true},
                {"target": "$.components.schemas.Gone", "update": {}}
            ])),
            Path::new("o.yaml"),
        )
        .unwrap();
        let e = broken_error(Path::new("lago.yaml"), Path::new("o.yaml"), &outcome).to_string();
        assert!(e.starts_with("lago.yaml: at /paths/~1gone/get:"), "{e}");
        assert!(e.contains("GET /gone is gone") && e.contains("components.schemas.Gone is gone"));
        assert!(e.contains("stale overlay action: actions[1]"), "{e}");
    }
}
