//! Lago's audit logs as [Elastic Common Schema](https://www.elastic.co/guide/en/ecs/current/)
//! documents: pure functions from the client's record types to JSON.
//!
//! ECS fields: `@timestamp`, `event.*` (`id`, `action`, `category`, `type`, `kind`, `outcome`,
//! `dataset`, `module`, `provider`, `created`), `user.email`/`user.id`, and for API logs
//! `http.request.method`, `http.response.status_code`, `url.path`, `http.request.id` and
//! `user_agent.original`; for security logs `source.ip`. Everything else of the record is kept
//! under `lago.*`. The full field table is in the crate's README.

use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use serde_json::{json, Map, Value};

/// The ECS version the documents follow (checked against its field definitions in the tests).
pub const ECS_VERSION: &str = "9.4.0";

fn event_type(event: &str) -> &'static str {
    match event.rsplit_once('.').map_or(event, |(_, v)| v) {
        "created" | "one_off_created" | "version_created" | "signed_up" => "creation",
        "deleted" | "destroyed" | "removed" => "deletion",
        "updated" | "rotated" | "regenerated" | "payment_status_updated" => "change",
        _ => "info",
    }
}

fn base(
    id: &str,
    action: &str,
    dataset: &str,
    category: &[&str],
    types: &[&str],
    logged_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert(
        "@timestamp".into(),
        json!(logged_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    d.insert("ecs".into(), json!({"version": ECS_VERSION}));
    d.insert(
        "event".into(),
        json!({
            "id": id,
            "action": action,
            "kind": "event",
            "category": category,
            "type": types,
            "dataset": format!("lago.{dataset}"),
            "module": "lago",
            "provider": "lago",
            "created": created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }),
    );
    d.insert(
        "observer".into(),
        json!({"vendor": "Lago", "product": "Lago"}),
    );
    d
}

/// The record as JSON, less the fields already placed in ECS.
fn rest<T: serde::Serialize>(record: &T, placed: &[&str]) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in placed {
            m.remove(*k);
        }
    }
    v
}

/// An activity log as an ECS document (`event.category: configuration`).
pub fn activity(log: &ActivityLogObject) -> Value {
    let mut d = base(
        &log.activity_id.to_string(),
        &log.activity_type,
        "activity_logs",
        &["configuration"],
        &[event_type(&log.activity_type)],
        log.logged_at,
        log.created_at,
    );
    if let Some(email) = &log.user_email {
        d.insert("user".into(), json!({"email": email}));
    }
    let mut lago = rest(
        log,
        &[
            "activity_id",
            "activity_type",
            "logged_at",
            "created_at",
            "user_email",
        ],
    );
    // Lago stores nested values as JSON text; give them as JSON.
    if let Some(m) = lago.as_object_mut() {
        if let Some(o) = log.object_json() {
            m.insert("activity_object".into(), o);
        }
        if let Some(c) = &log.activity_object_changes {
            m.insert(
                "activity_object_changes".into(),
                lago_audit_client::records::decode_map(c),
            );
        }
    }
    d.insert("lago".into(), json!({"activity": lago}));
    Value::Object(d)
}

/// An API log as an ECS document (`event.category: web`, `event.type: access`). `event.id` is
/// derived from the whole record ([`crate::api_log_event_id`]), since callers reuse their
/// `request_id`, which is `http.request.id`.
pub fn api(log: &ApiLogObject) -> Value {
    let method = log.http_method.as_str().to_ascii_uppercase();
    let mut d = base(
        &crate::api_log_event_id(log).to_string(),
        "api-request",
        "api_logs",
        &["web"],
        &["access"],
        log.logged_at,
        log.created_at,
    );
    let outcome = if (100..400).contains(&log.http_status) {
        "success"
    } else {
        "failure"
    };
    if let Some(event) = d.get_mut("event").and_then(Value::as_object_mut) {
        event.insert("outcome".into(), json!(outcome));
    }
    d.insert(
        "http".into(),
        json!({
            "request": {"method": method, "id": log.request_id},
            "response": {"status_code": log.http_status},
        }),
    );
    d.insert("url".into(), json!({"path": log.request_path}));
    d.insert("user_agent".into(), json!({"original": log.client}));
    let mut lago = rest(
        log,
        &[
            "request_id",
            "http_method",
            "http_status",
            "request_path",
            "client",
            "logged_at",
            "created_at",
        ],
    );
    if let Some(m) = lago.as_object_mut() {
        m.insert("request_body".into(), log.body_json());
        if let Some(r) = log.response_json() {
            m.insert("request_response".into(), r);
        }
    }
    d.insert("lago".into(), json!({"api": lago}));
    Value::Object(d)
}

/// A security log as an ECS document: `iam` for users and roles, `authentication` for logins,
/// `configuration` for API keys, webhooks, integrations and exports.
pub fn security(log: &SecurityLogObject) -> Value {
    let log_type = log.log_type.as_str();
    let verb = log.log_event.rsplit_once('.').map_or("", |(_, v)| v);
    let (category, types): (&[&str], Vec<&str>) = match log_type {
        "user" if verb.ends_with("logged_in") => (&["authentication"], vec!["start"]),
        "user" => (&["iam"], vec!["user", event_type(&log.log_event)]),
        "role" => (&["iam"], vec!["user", "change"]),
        _ => (&["configuration"], vec![event_type(&log.log_event)]),
    };
    let mut d = base(
        &log.log_id.to_string(),
        &log.log_event,
        "security_logs",
        category,
        &types,
        log.logged_at,
        log.created_at,
    );
    let mut user = Map::new();
    if let Some(email) = &log.user_email {
        user.insert("email".into(), json!(email));
    }
    if let Some(Value::String(id)) = log.resources.as_ref().and_then(|r| r.get("user_id")) {
        user.insert("id".into(), json!(id));
    }
    if !user.is_empty() {
        d.insert("user".into(), Value::Object(user));
    }
    if let Some(Value::String(ip)) = log.device_info.as_ref().and_then(|r| r.get("ip_address")) {
        if ip.parse::<std::net::IpAddr>().is_ok() {
            d.insert("source".into(), json!({"ip": ip}));
        }
    }
    let lago = rest(
        log,
        &[
            "log_id",
            "log_event",
            "logged_at",
            "created_at",
            "user_email",
        ],
    );
    d.insert("lago".into(), json!({"security": lago}));
    Value::Object(d)
}
