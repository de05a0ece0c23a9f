//! Lago's audit logs as [OCSF](https://schema.ocsf.io) 1.8.0 events: pure functions from the
//! client's record types to JSON.
//!
//! | Lago logs | OCSF class |
//! |---|---|
//! | activity logs | Entity Management (3004) |
//! | API logs | HTTP Activity (4002) |
//! | security logs: user sign-up, deletion, password | Account Change (3001) |
//! | security logs: role change | User Access Management (3005) |
//! | security logs: new-device login | Authentication (3002) |
//! | security logs: API keys, webhooks, integrations, exports, anything else | Entity Management (3004) |
//!
//! Every event carries its class's required attributes, `metadata.product` (Lago),
//! `metadata.version` (1.8.0), an id unique to the record as `metadata.uid` (the log's own id;
//! for an API log, which has none, [one derived from the record](crate::api_log_event_id)) and
//! `type_uid = class_uid × 100 + activity_id`. Values that have no OCSF attribute go under
//! `unmapped`, never dropped. The full field table is in the crate's README.

use lago_audit_client::records::decode_map;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_client::HttpMethod;
use serde_json::{json, Map, Value};

/// The OCSF version the events follow.
pub const OCSF_VERSION: &str = "1.8.0";

struct Class {
    uid: u64,
    name: &'static str,
    category_uid: u64,
    category_name: &'static str,
}

const ENTITY_MANAGEMENT: Class = Class {
    uid: 3004,
    name: "Entity Management",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const ACCOUNT_CHANGE: Class = Class {
    uid: 3001,
    name: "Account Change",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const AUTHENTICATION: Class = Class {
    uid: 3002,
    name: "Authentication",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const USER_ACCESS: Class = Class {
    uid: 3005,
    name: "User Access Management",
    category_uid: 3,
    category_name: "Identity & Access Management",
};
const HTTP_ACTIVITY: Class = Class {
    uid: 4002,
    name: "HTTP Activity",
    category_uid: 4,
    category_name: "Network Activity",
};

/// Milliseconds since the epoch (OCSF's `timestamp_t`).
fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// What every event says about itself.
struct Head<'a> {
    class: &'a Class,
    activity_id: u64,
    activity_name: &'a str,
    uid: &'a str,
    log_name: &'a str,
    event_code: &'a str,
    logged_at: chrono::DateTime<chrono::Utc>,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// The attributes every event has.
fn base(head: Head<'_>) -> Map<String, Value> {
    let Head {
        class,
        activity_id,
        activity_name,
        uid,
        log_name,
        event_code,
        logged_at,
        created_at,
    } = head;
    let mut e = Map::new();
    e.insert("class_uid".into(), json!(class.uid));
    e.insert("class_name".into(), json!(class.name));
    e.insert("category_uid".into(), json!(class.category_uid));
    e.insert("category_name".into(), json!(class.category_name));
    e.insert("activity_id".into(), json!(activity_id));
    e.insert("activity_name".into(), json!(activity_name));
    e.insert("type_uid".into(), json!(class.uid * 100 + activity_id));
    e.insert(
        "type_name".into(),
        json!(format!("{}: {activity_name}", class.name)),
    );
    e.insert("severity_id".into(), json!(1));
    e.insert("severity".into(), json!("Informational"));
    e.insert("time".into(), json!(ms(logged_at)));
    e.insert(
        "metadata".into(),
        json!({
            "version": OCSF_VERSION,
            "product": {"name": "Lago", "vendor_name": "Lago"},
            "uid": uid,
            "log_name": log_name,
            "log_provider": "Lago audit logs",
            "event_code": event_code,
            "logged_time": ms(created_at),
        }),
    );
    e
}

/// The verb of an `<object>.<verb>` event name.
fn verb(event: &str) -> &str {
    event.rsplit_once('.').map_or(event, |(_, v)| v)
}

/// Entity Management's activity for a verb: Create 1, Update 3, Delete 4, else Other 99.
fn entity_activity(event: &str) -> (u64, &'static str) {
    match verb(event) {
        "created" | "one_off_created" | "version_created" | "signed_up" => (1, "Create"),
        "updated" | "rotated" | "regenerated" | "payment_status_updated" => (3, "Update"),
        "deleted" | "destroyed" | "removed" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn put_opt(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        m.insert(key.into(), v);
    }
}

fn user(email: Option<&str>, uid: Option<&str>) -> Option<Value> {
    let mut u = Map::new();
    if let Some(e) = email {
        u.insert("email_addr".into(), json!(e));
        u.insert("name".into(), json!(e));
    }
    if let Some(id) = uid {
        u.insert("uid".into(), json!(id));
    }
    (!u.is_empty()).then_some(Value::Object(u))
}

/// An activity log as an Entity Management (3004) event.
pub fn activity(log: &ActivityLogObject) -> Value {
    let (activity_id, activity_name) = entity_activity(&log.activity_type);
    let mut e = base(Head {
        class: &ENTITY_MANAGEMENT,
        activity_id,
        activity_name,
        uid: &log.activity_id.to_string(),
        log_name: "activity_logs",
        event_code: &log.activity_type,
        logged_at: log.logged_at,
        created_at: log.created_at,
    });
    let mut entity = Map::new();
    entity.insert("uid".into(), json!(log.resource_id.to_string()));
    entity.insert("type".into(), json!(log.resource_type));
    entity.insert("name".into(), json!(log.resource_type));
    put_opt(&mut entity, "data", log.object_json());
    e.insert("entity".into(), Value::Object(entity));
    // The changes of an update, `{field: [old, new]}`, describe the entity after it.
    if let Some(changes) = log
        .activity_object_changes
        .as_ref()
        .filter(|c| !c.is_empty())
    {
        e.insert(
            "entity_result".into(),
            json!({
                "uid": log.resource_id.to_string(),
                "type": log.resource_type,
                "data": decode_map(changes),
            }),
        );
    }
    let source = log.activity_source.as_str();
    let actor = match (&log.user_email, source) {
        (Some(email), _) => json!({"user": user(Some(email), None)}),
        (None, "api") => json!({"app_name": "Lago API (API key)"}),
        (None, other) => json!({"app_name": format!("Lago ({other})")}),
    };
    e.insert("actor".into(), actor);
    let mut unmapped = Map::new();
    unmapped.insert("activity_source".into(), json!(source));
    put_opt(
        &mut unmapped,
        "external_customer_id",
        log.external_customer_id.as_ref().map(|v| json!(v)),
    );
    put_opt(
        &mut unmapped,
        "external_subscription_id",
        log.external_subscription_id.as_ref().map(|v| json!(v)),
    );
    put_opt(
        &mut unmapped,
        "organization_id",
        log.organization_id.map(|v| json!(v.to_string())),
    );
    e.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(e)
}

/// HTTP Activity's activity for a method.
fn http_activity(method: &HttpMethod) -> (u64, &'static str) {
    match method.as_str().to_ascii_lowercase().as_str() {
        "connect" => (1, "Connect"),
        "delete" => (2, "Delete"),
        "get" => (3, "Get"),
        "head" => (4, "Head"),
        "options" => (5, "Options"),
        "post" => (6, "Post"),
        "put" => (7, "Put"),
        "trace" => (8, "Trace"),
        "patch" => (9, "Patch"),
        _ => (99, "Other"),
    }
}

/// An API log as an HTTP Activity (4002) event. API logs have no id of their own, and callers
/// reuse their `request_id`: `metadata.uid` is derived from the whole record
/// ([`crate::api_log_event_id`]) and the `request_id` is `http_request.uid`.
pub fn api(log: &ApiLogObject) -> Value {
    let (activity_id, activity_name) = http_activity(&log.http_method);
    let mut e = base(Head {
        class: &HTTP_ACTIVITY,
        activity_id,
        activity_name,
        uid: &crate::api_log_event_id(log).to_string(),
        log_name: "api_logs",
        event_code: &format!(
            "{} {}",
            log.http_method.as_str().to_ascii_uppercase(),
            log.request_path
        ),
        logged_at: log.logged_at,
        created_at: log.created_at,
    });
    e.insert(
        "http_request".into(),
        json!({
            "http_method": log.http_method.as_str().to_ascii_uppercase(),
            "uid": log.request_id,
            "user_agent": log.client,
            "url": {"path": log.request_path},
            "http_headers": [{"name": "Origin", "value": log.request_origin}],
        }),
    );
    let code = log.http_status;
    e.insert("http_response".into(), json!({"code": code}));
    let (status_id, status) = if (100..400).contains(&code) {
        (1, "Success")
    } else {
        (2, "Failure")
    };
    e.insert("status_id".into(), json!(status_id));
    e.insert("status".into(), json!(status));
    e.insert("status_code".into(), json!(code.to_string()));
    let mut unmapped = Map::new();
    unmapped.insert("api_version".into(), json!(log.api_version));
    unmapped.insert("request_body".into(), log.body_json());
    put_opt(&mut unmapped, "request_response", log.response_json());
    e.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(e)
}

/// Which class a security log event goes to, with its activity.
fn security_class(log_type: &str, event: &str) -> (&'static Class, u64, &'static str) {
    let v = verb(event);
    match log_type {
        "user" if v == "new_device_logged_in" || v == "logged_in" => (&AUTHENTICATION, 1, "Logon"),
        "user" => match v {
            "signed_up" | "created" | "invited" => (&ACCOUNT_CHANGE, 1, "Create"),
            "deleted" | "destroyed" | "removed" => (&ACCOUNT_CHANGE, 6, "Delete"),
            "password_reset_requested" | "password_reset" => (&ACCOUNT_CHANGE, 4, "Password Reset"),
            "password_edited" | "password_changed" | "password_updated" => {
                (&ACCOUNT_CHANGE, 3, "Password Change")
            }
            _ => (&ACCOUNT_CHANGE, 99, "Other"),
        },
        "role" => match v {
            "revoked" | "removed" | "deleted" => (&USER_ACCESS, 2, "Revoke Privileges"),
            "assigned" | "updated" | "granted" | "created" => {
                (&USER_ACCESS, 1, "Assign Privileges")
            }
            _ => (&USER_ACCESS, 99, "Other"),
        },
        _ => {
            let (id, name) = entity_activity(event);
            (&ENTITY_MANAGEMENT, id, name)
        }
    }
}

fn str_field(map: Option<&Map<String, Value>>, key: &str) -> Option<String> {
    match map?.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// A security log as an Account Change (3001), Authentication (3002), User Access Management
/// (3005) or Entity Management (3004) event.
pub fn security(log: &SecurityLogObject) -> Value {
    let log_type = log.log_type.as_str();
    let (class, activity_id, activity_name) = security_class(log_type, &log.log_event);
    let mut e = base(Head {
        class,
        activity_id,
        activity_name,
        uid: &log.log_id.to_string(),
        log_name: "security_logs",
        event_code: &log.log_event,
        logged_at: log.logged_at,
        created_at: log.created_at,
    });
    let resources = log.resources.as_ref();
    let user_id = str_field(resources, "user_id");
    let the_user = user(log.user_email.as_deref(), user_id.as_deref());
    let mut unmapped = Map::new();
    unmapped.insert("log_type".into(), json!(log_type));
    match class.uid {
        3001 | 3002 | 3005 => {
            // These classes require a user; one with neither e-mail nor id is named unknown.
            e.insert(
                "user".into(),
                the_user.unwrap_or_else(|| json!({"name": "unknown", "type_id": 0})),
            );
            if class.uid == 3005 {
                let role = str_field(resources, "role")
                    .or_else(|| str_field(resources, "new_role"))
                    .unwrap_or_else(|| log.log_event.clone());
                e.insert("privileges".into(), json!([role]));
            }
            if class.uid == 3002 {
                // The service logged on to (the class requires it or a destination endpoint).
                e.insert("service".into(), json!({"name": "Lago"}));
                e.insert("is_new_logon".into(), json!(true));
            }
            put_opt(
                &mut unmapped,
                "resources",
                log.resources.clone().map(Value::Object),
            );
        }
        _ => {
            let kind_id = format!("{log_type}_id");
            let uid = str_field(resources, &kind_id)
                .or_else(|| str_field(resources, "id"))
                .or_else(|| str_field(resources, "api_key_id"));
            let mut entity = Map::new();
            entity.insert("type".into(), json!(log_type));
            entity.insert("name".into(), json!(log_type));
            put_opt(&mut entity, "uid", uid.map(Value::String));
            put_opt(
                &mut entity,
                "data",
                log.resources.clone().map(Value::Object),
            );
            e.insert("entity".into(), Value::Object(entity));
            if let Some(u) = the_user {
                e.insert("actor".into(), json!({"user": u}));
            } else {
                e.insert("actor".into(), json!({"app_name": "Lago"}));
            }
        }
    }
    if let Some(device) = &log.device_info {
        if let Some(ip) = str_field(Some(device), "ip_address")
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok())
        {
            e.insert("src_endpoint".into(), json!({"ip": ip}));
        }
        unmapped.insert("device_info".into(), Value::Object(device.clone()));
    }
    e.insert("unmapped".into(), Value::Object(unmapped));
    Value::Object(e)
}

/// OCSF 1.3.0: the newest version Amazon Security Lake's custom sources take.
pub const OCSF_1_3_VERSION: &str = "1.3.0";

/// An event of this module (OCSF 1.8.0) as OCSF 1.3.0. The classes, activities and attributes are
/// the same but for two, checked against the 1.3.0 class schemas in the tests:
///
/// - Entity Management (3004) has no `actor` in 1.3.0: it goes under `unmapped.actor`.
/// - HTTP Activity (4002) requires `dst_endpoint` in 1.3.0: the endpoint the request reached,
///   Lago's API (`{"svc_name": "Lago API"}`).
pub fn to_1_3(mut event: Value) -> Value {
    let Some(e) = event.as_object_mut() else {
        return event;
    };
    if let Some(Value::Object(metadata)) = e.get_mut("metadata") {
        metadata.insert("version".into(), json!(OCSF_1_3_VERSION));
    }
    match e.get("class_uid").and_then(Value::as_u64) {
        Some(3004) => {
            if let Some(actor) = e.remove("actor") {
                let unmapped = e
                    .entry("unmapped")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(u) = unmapped.as_object_mut() {
                    u.insert("actor".into(), actor);
                }
            }
        }
        Some(4002) => {
            e.entry("dst_endpoint")
                .or_insert_with(|| json!({"svc_name": "Lago API"}));
        }
        _ => {}
    }
    event
}
