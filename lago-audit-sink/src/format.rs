//! What goes into an object: one JSON document a line, in Lago's own shape, OCSF or ECS.

use crate::layout::LogKind;
use crate::SinkError;
use lago_audit_client::export::Logged;
use lago_audit_client::pagination::RecordKey;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use serde::Serialize;
use serde_json::Value;

/// The shape of each line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// The record as Lago sends it (the client's type, serialised).
    #[default]
    Lago,
    /// An OCSF 1.8.0 event ([`crate::ocsf`]).
    Ocsf,
    /// An Elastic Common Schema document ([`crate::ecs`]).
    Ecs,
}

impl Format {
    /// `lago`, `ocsf` or `ecs`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Lago => "lago",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lago" | "raw" | "json" => Ok(Format::Lago),
            "ocsf" => Ok(Format::Ocsf),
            "ecs" => Ok(Format::Ecs),
            other => Err(format!("unknown format `{other}` (use lago, ocsf or ecs)")),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespace of the event ids of API logs (a UUID chosen once for this purpose; never change
/// it, or every API log's id changes).
pub const API_LOG_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0xa7c0_2064_9203_4e0d_a055_1a01_b889_2eda);

/// The event id of an API log: OCSF's `metadata.uid` and ECS's `event.id`.
///
/// An API log has no id of its own, and its `request_id` is a caller's `X-Request-Id` when one
/// was sent, which callers reuse; readers that de-duplicate by event id (Elastic's `_id`, many
/// SIEM pipelines) would merge two calls that share it. The id is therefore a name-based UUID
/// (version 5, RFC 9562) in [`API_LOG_ID_NAMESPACE`] over the record's identity, the canonical
/// JSON of the whole record ([`RecordKey`]: object keys sorted, no spaces): unique to the record,
/// the same on every export of it, and reproducible by anyone, e.g. with Python's
/// `uuid.uuid5(namespace, text)`. The `request_id` stays in `http_request.uid` /
/// `http.request.id`.
pub fn api_log_event_id(log: &ApiLogObject) -> uuid::Uuid {
    let mut sha1 = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    sha1.update(API_LOG_ID_NAMESPACE.as_bytes());
    sha1.update(log.record_key().as_bytes());
    let digest = sha1.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

/// A record a sink can write: one of the client's three log types.
pub trait SinkRecord: Logged + RecordKey + Serialize + Send + 'static {
    /// Which kind of log it is (the folder it goes to).
    const KIND: LogKind;
    /// The record as an OCSF 1.8.0 event.
    fn to_ocsf(&self) -> Value;
    /// The record as an ECS document.
    fn to_ecs(&self) -> Value;
    /// The record's event id: its `activity_id` or `log_id`, or for an API log the id
    /// [`api_log_event_id`] derives. OCSF's `metadata.uid` and ECS's `event.id` carry it.
    fn event_id(&self) -> String;
}

impl SinkRecord for ActivityLogObject {
    const KIND: LogKind = LogKind::Activity;
    fn to_ocsf(&self) -> Value {
        crate::ocsf::activity(self)
    }
    fn to_ecs(&self) -> Value {
        crate::ecs::activity(self)
    }
    fn event_id(&self) -> String {
        self.activity_id.to_string()
    }
}
impl SinkRecord for ApiLogObject {
    const KIND: LogKind = LogKind::Api;
    fn to_ocsf(&self) -> Value {
        crate::ocsf::api(self)
    }
    fn to_ecs(&self) -> Value {
        crate::ecs::api(self)
    }
    fn event_id(&self) -> String {
        api_log_event_id(self).to_string()
    }
}
impl SinkRecord for SecurityLogObject {
    const KIND: LogKind = LogKind::Security;
    fn to_ocsf(&self) -> Value {
        crate::ocsf::security(self)
    }
    fn to_ecs(&self) -> Value {
        crate::ecs::security(self)
    }
    fn event_id(&self) -> String {
        self.log_id.to_string()
    }
}

/// The fields of a line that carry its event id, in each format. OCSF's own `activity_id` is a
/// number, so every field is read leniently: a string, or skipped.
#[derive(serde::Deserialize)]
struct Ids<'a> {
    #[serde(borrow, default)]
    activity_id: Text<'a>,
    #[serde(borrow, default)]
    log_id: Text<'a>,
    #[serde(borrow, default)]
    metadata: Option<Inner<'a>>,
    #[serde(borrow, default)]
    event: Option<Inner<'a>>,
    #[serde(borrow, default)]
    request_id: Text<'a>,
}

#[derive(serde::Deserialize)]
struct Inner<'a> {
    #[serde(borrow, default)]
    uid: Text<'a>,
    #[serde(borrow, default)]
    id: Text<'a>,
}

/// A string field, or `None` for anything else.
#[derive(Default)]
struct Text<'a>(Option<std::borrow::Cow<'a, str>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Any<'a> {
            Str(#[serde(borrow)] std::borrow::Cow<'a, str>),
            Other(serde::de::IgnoredAny),
        }
        Ok(Text(match Any::deserialize(d)? {
            Any::Str(s) => Some(s),
            Any::Other(_) => None,
        }))
    }
}

/// The event id of an archived line, whatever its format: the same as
/// [`SinkRecord::event_id`] of the record it was written from. `None` for a line that is not
/// one of ours.
pub fn line_event_id(line: &[u8]) -> Option<String> {
    let ids: Ids = serde_json::from_slice(line).ok()?;
    if let Some(id) = (ids.metadata.and_then(|m| m.uid.0))
        .or(ids.event.and_then(|e| e.id.0))
        .or(ids.activity_id.0)
        .or(ids.log_id.0)
    {
        return Some(id.into_owned());
    }
    // An API log in Lago's shape: its id is derived from the whole record.
    ids.request_id.0?;
    let log: ApiLogObject = serde_json::from_slice(line).ok()?;
    Some(api_log_event_id(&log).to_string())
}

/// The record as one line (with its `\n`) in `format`. Object keys are written in sorted order,
/// so the bytes depend only on the record, never on a map's iteration order.
pub fn line<T: SinkRecord>(record: &T, format: Format) -> Result<Vec<u8>, SinkError> {
    let value = document(record, format)?;
    let mut out = Vec::with_capacity(512);
    canonical(&value, &mut out);
    out.push(b'\n');
    Ok(out)
}

/// The record as a JSON document in `format` (what [`line`] writes).
pub(crate) fn document<T: SinkRecord>(record: &T, format: Format) -> Result<Value, SinkError> {
    Ok(match format {
        Format::Lago => {
            serde_json::to_value(record).map_err(|e| SinkError::Encode(e.to_string()))?
        }
        Format::Ocsf => record.to_ocsf(),
        Format::Ecs => record.to_ecs(),
    })
}

/// Writes `value` as compact JSON with every object's keys sorted.
pub(crate) fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Serialising a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(v, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 1, "x": null} ], "c": "é\n"}});
        let mut out = Vec::new();
        canonical(&v, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":"é\n","z":[{"x":null,"y":1}]},"b":1}"#
        );
    }
}
