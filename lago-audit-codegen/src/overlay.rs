//! Applying our corrections (an OpenAPI Overlay 1.0 document) to Lago's spec.

use crate::SpecError;
use roas_overlay::apply::Apply;
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

/// Applies `overlay` (already parsed into the JSON data model) to `document` in place and returns
/// the actions that matched nothing.
pub fn apply(
    document: &mut Value,
    overlay: Value,
    overlay_file: &Path,
) -> Result<Vec<StaleAction>, SpecError> {
    let overlay: Overlay = serde_path_to_error::deserialize(overlay).map_err(|e| {
        SpecError::new(
            overlay_file,
            pointer_from_serde_path(&e.path().to_string()),
            format!("not an OpenAPI Overlay 1.0 document: {}", e.inner()),
        )
    })?;
    let report = overlay
        .apply(document, enumset::EnumSet::empty())
        .map_err(|e| {
            SpecError::new(
                overlay_file,
                format!("/actions/{}", e.action_index),
                format!("cannot apply (target {}): {}", e.target, e.kind),
            )
        })?;
    Ok(report
        .actions
        .into_iter()
        .filter(|a| a.matched == 0)
        .map(|a| StaleAction {
            index: a.index,
            target: a.target,
            operation: a.operation.to_string(),
        })
        .collect())
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
        let stale = apply(
            &mut doc,
            overlay(json!([
                {"target": "$.components.schemas.A.required", "remove": true},
                {"target": "$.components.schemas.A", "update": {"required": ["a"]}}
            ])),
            Path::new("o.yaml"),
        )
        .unwrap();
        assert!(stale.is_empty());
        assert_eq!(doc["components"]["schemas"]["A"]["required"], json!(["a"]));
    }

    #[test]
    fn reports_actions_that_match_nothing() {
        let mut doc = json!({"paths": {}});
        let stale = apply(
            &mut doc,
            overlay(json!([{"target": "$.components.schemas.Gone", "remove": true}])),
            Path::new("o.yaml"),
        )
        .unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].index, 0);
        assert!(
            stale[0].to_string().contains("$.components.schemas.Gone"),
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
