//! Reading what Lago stores as text.
//!
//! Lago keeps `activity_object` and `activity_object_changes` (and API logs' `request_body` and
//! `request_response`) as flat maps of strings: nested data arrives as JSON text inside a string, and each change as the JSON text
//! of an `[old, new]` pair. These helpers decode them without guessing at plain strings.
//!
//! ```
//! use lago_audit_client::types::ActivityLogObject;
//! use serde_json::json;
//!
//! let log: ActivityLogObject = serde_json::from_value(json!({
//!     "activity_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
//!     "activity_type": "plan.updated",
//!     "activity_source": "front",
//!     "activity_object": {"name": "Startup", "amount_cents": "10000", "taxes": "[{\"code\":\"vat\"}]"},
//!     "activity_object_changes": {"amount_cents": "[5000, 10000]"},
//!     "resource_id": "b9155544-e261-4e92-b54e-f65d7609294c",
//!     "resource_type": "Plan",
//!     "logged_at": "2025-03-31T12:31:44Z",
//!     "created_at": "2025-03-31T12:31:44Z"
//! }))?;
//! assert_eq!(log.object_value("taxes"), Some(json!([{"code": "vat"}])));
//! assert_eq!(log.object_value("name"), Some(json!("Startup")));
//! assert_eq!(log.object_value("amount_cents"), Some(json!("10000")), "scalars stay text");
//! let change = log.changes().next().unwrap().unwrap();
//! assert_eq!((change.field, change.before, change.after), ("amount_cents", json!(5000), json!(10000)));
//! # Ok::<(), serde_json::Error>(())
//! ```

use crate::types::{ActivityLogObject, ApiLogObject};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One attribute an `*.updated` activity changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change<'a> {
    /// The attribute's name.
    pub field: &'a str,
    /// Its value before the change (`null` when it was unset).
    pub before: Value,
    /// Its value after the change.
    pub after: Value,
}

/// A change entry that is not the JSON text of an `[old, new]` pair, kept as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndecodedChange<'a> {
    /// The attribute's name.
    pub field: &'a str,
    /// The text as sent (`None` for a JSON null).
    pub raw: Option<&'a str>,
}

/// Decodes JSON text that holds an array or an object; anything else stays a string.
pub fn decode_nested(text: &str) -> Value {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        if let Ok(v) = serde_json::from_str(text) {
            return v;
        }
    }
    Value::String(text.to_owned())
}

type TextMap = HashMap<String, Option<String>>;

/// One value of a string map: null stays null, text goes through [`decode_nested`].
fn decode_value(value: Option<&str>) -> Value {
    value.map_or(Value::Null, decode_nested)
}

fn lookup(map: Option<&TextMap>, key: &str) -> Option<Value> {
    Some(decode_value(map?.get(key)?.as_deref()))
}

/// A whole string map as one JSON object, each value decoded with [`decode_nested`] (keys sorted).
pub fn decode_map(map: &HashMap<String, Option<String>>) -> Value {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.clone(), decode_value(v.as_deref())))
            .collect::<Map<String, Value>>(),
    )
}

impl ApiLogObject {
    /// A value of the logged call's `request_body`, with nested JSON text decoded. `None` when the
    /// key is absent; `Some(Value::Null)` when Lago sent null.
    pub fn body_value(&self, key: &str) -> Option<Value> {
        lookup(Some(&self.request_body), key)
    }

    /// A value of the logged call's `request_response`, decoded like [`body_value`](Self::body_value).
    pub fn response_value(&self, key: &str) -> Option<Value> {
        lookup(self.request_response.as_ref(), key)
    }

    /// The whole `request_body` as a JSON object, nested JSON text decoded.
    pub fn body_json(&self) -> Value {
        decode_map(&self.request_body)
    }

    /// The whole `request_response` as a JSON object (`None` when Lago sent none).
    pub fn response_json(&self) -> Option<Value> {
        self.request_response.as_ref().map(decode_map)
    }
}

impl ActivityLogObject {
    /// A value of `activity_object`, with nested JSON text (arrays, objects) decoded. `None` when
    /// the key is absent; `Some(Value::Null)` when Lago sent null.
    pub fn object_value(&self, key: &str) -> Option<Value> {
        lookup(self.activity_object.as_ref(), key)
    }

    /// The whole `activity_object` as a JSON object, nested JSON text decoded (`None` when Lago
    /// sent none).
    pub fn object_json(&self) -> Option<Value> {
        self.activity_object.as_ref().map(decode_map)
    }

    /// The attributes this activity changed, sorted by name. Each entry is decoded from Lago's
    /// `"[old, new]"` text; one that is not such a pair comes back as [`UndecodedChange`].
    pub fn changes(&self) -> impl Iterator<Item = Result<Change<'_>, UndecodedChange<'_>>> {
        let mut entries: Vec<_> = self.activity_object_changes.iter().flatten().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries.into_iter().map(|(field, raw)| {
            let undecoded = || UndecodedChange {
                field,
                raw: raw.as_deref(),
            };
            let text = raw.as_deref().ok_or_else(undecoded)?;
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Array(pair)) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    Ok(Change {
                        field,
                        before: pair.next().unwrap_or_default(),
                        after: pair.next().unwrap_or_default(),
                    })
                }
                _ => Err(undecoded()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(changes: Value) -> ActivityLogObject {
        serde_json::from_value(json!({
            "activity_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
            "activity_type": "subscription.updated", "activity_source": "api",
            "activity_object": {"plan": null, "meta": "{\"a\":1}", "broken": "[1,"},
            "activity_object_changes": changes,
            "resource_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "resource_type": "Subscription",
            "logged_at": "2025-03-31T12:31:44Z", "created_at": "2025-03-31T12:31:44Z"
        }))
        .unwrap()
    }

    #[test]
    fn changes_decode_pairs_and_keep_what_they_cannot() {
        let l = log(
            json!({"plan_id": "[null, \"b915\"]", "odd": "not json", "nothing": null, "three": "[1,2,3]"}),
        );
        let all: Vec<_> = l.changes().collect();
        assert_eq!(
            all,
            vec![
                Err(UndecodedChange {
                    field: "nothing",
                    raw: None
                }),
                Err(UndecodedChange {
                    field: "odd",
                    raw: Some("not json")
                }),
                Ok(Change {
                    field: "plan_id",
                    before: Value::Null,
                    after: json!("b915")
                }),
                Err(UndecodedChange {
                    field: "three",
                    raw: Some("[1,2,3]")
                }),
            ]
        );
        assert_eq!(log(json!({})).changes().count(), 0);
        assert_eq!(log(Value::Null).changes().count(), 0);
    }

    #[test]
    fn api_log_bodies_decode_like_activity_objects() {
        let call: ApiLogObject = serde_json::from_value(json!({
            "request_id": "req-1", "api_version": "v1", "client": "Lago Ruby v1.26.0",
            "http_method": "post", "http_status": 200, "request_origin": "https://app.lago.dev/",
            "request_path": "/api/v1/plans",
            "request_body": {"plan": "{\"code\":\"startup\",\"taxes\":[\"vat\"]}", "note": null, "name": "x"},
            "request_response": {"plan": "{\"lago_id\":\"1\"}"},
            "logged_at": "2025-03-31T12:31:44Z", "created_at": "2025-03-31T12:31:44Z"
        }))
        .unwrap();
        assert_eq!(
            call.body_value("plan"),
            Some(json!({"code": "startup", "taxes": ["vat"]}))
        );
        assert_eq!(call.body_value("note"), Some(Value::Null));
        assert_eq!(call.body_value("name"), Some(json!("x")));
        assert_eq!(call.body_value("absent"), None);
        assert_eq!(call.response_value("plan"), Some(json!({"lago_id": "1"})));
        assert_eq!(
            call.body_json(),
            json!({"name": "x", "note": null, "plan": {"code": "startup", "taxes": ["vat"]}})
        );
        assert_eq!(
            call.response_json(),
            Some(json!({"plan": {"lago_id": "1"}}))
        );
    }

    #[test]
    fn object_values() {
        let l = log(json!({}));
        assert_eq!(l.object_value("plan"), Some(Value::Null));
        assert_eq!(l.object_value("meta"), Some(json!({"a": 1})));
        assert_eq!(
            l.object_value("broken"),
            Some(json!("[1,")),
            "invalid JSON stays text"
        );
        assert_eq!(l.object_value("absent"), None);
    }
}
