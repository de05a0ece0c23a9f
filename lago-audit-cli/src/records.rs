//! How each kind of record becomes a CSV row and a table row.

use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A table column: its title, the narrowest it may get, the widest it needs, and whether it is
/// dropped first when the terminal is narrow (higher `drop_order` goes first; 0 is never dropped).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    /// The title.
    pub title: &'static str,
    /// The narrowest width worth showing.
    pub min: usize,
    /// The widest the values get.
    pub max: usize,
    /// Columns with a higher number are left out first when the terminal is narrow.
    pub drop_order: u8,
}

const fn col(title: &'static str, min: usize, max: usize, drop_order: u8) -> Column {
    Column {
        title,
        min,
        max,
        drop_order,
    }
}

/// A record the tool can print.
pub trait Record: Serialize + Send + 'static {
    /// `activity log`, `API log`, `security log`.
    const NOUN: &'static str;
    /// The CSV header: every field, in a stable order.
    const CSV_HEADER: &'static [&'static str];
    /// The table's columns.
    const COLUMNS: &'static [Column];
    /// The CSV fields, in [`Record::CSV_HEADER`] order. Maps are JSON text in one column; a
    /// missing value is an empty field.
    fn csv_row(&self) -> Vec<String>;
    /// The table cells, in [`Record::COLUMNS`] order.
    fn table_row(&self) -> Vec<String>;
}

fn time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// A string map as JSON text, keys sorted so the same record always gives the same text.
fn map_text(m: &HashMap<String, Option<String>>) -> String {
    let sorted: BTreeMap<_, _> = m.iter().collect();
    serde_json::to_string(&sorted).unwrap_or_default()
}

fn opt_map_text(m: &Option<HashMap<String, Option<String>>>) -> String {
    m.as_ref().map(map_text).unwrap_or_default()
}

fn opt_json(m: &Option<serde_json::Map<String, serde_json::Value>>) -> String {
    m.as_ref()
        .map(|m| serde_json::to_string(m).unwrap_or_default())
        .unwrap_or_default()
}

impl Record for ActivityLogObject {
    const NOUN: &'static str = "activity log";
    const CSV_HEADER: &'static [&'static str] = &[
        "activity_id",
        "logged_at",
        "created_at",
        "activity_type",
        "activity_source",
        "user_email",
        "resource_type",
        "resource_id",
        "external_customer_id",
        "external_subscription_id",
        "organization_id",
        "activity_object",
        "activity_object_changes",
    ];
    const COLUMNS: &'static [Column] = &[
        col("LOGGED AT (UTC)", 19, 19, 0),
        col("ACTIVITY", 24, 34, 0),
        col("SOURCE", 6, 6, 5),
        col("RESOURCE", 12, 20, 1),
        col("BY", 16, 30, 2),
        col("CUSTOMER", 8, 12, 3),
        col("ACTIVITY ID", 36, 36, 4),
    ];
    fn csv_row(&self) -> Vec<String> {
        vec![
            self.activity_id.to_string(),
            time(&self.logged_at),
            time(&self.created_at),
            self.activity_type.clone(),
            self.activity_source.to_string(),
            opt(&self.user_email),
            self.resource_type.clone(),
            self.resource_id.to_string(),
            opt(&self.external_customer_id),
            opt(&self.external_subscription_id),
            self.organization_id
                .map(|u| u.to_string())
                .unwrap_or_default(),
            opt_map_text(&self.activity_object),
            opt_map_text(&self.activity_object_changes),
        ]
    }
    fn table_row(&self) -> Vec<String> {
        vec![
            short_time(&self.logged_at),
            self.activity_type.clone(),
            self.activity_source.to_string(),
            self.resource_type.clone(),
            self.user_email
                .clone()
                .unwrap_or_else(|| format!("({})", self.activity_source)),
            opt(&self.external_customer_id),
            self.activity_id.to_string(),
        ]
    }
}

impl Record for ApiLogObject {
    const NOUN: &'static str = "API log";
    const CSV_HEADER: &'static [&'static str] = &[
        "request_id",
        "logged_at",
        "created_at",
        "http_method",
        "http_status",
        "request_path",
        "api_version",
        "client",
        "request_origin",
        "request_body",
        "request_response",
    ];
    const COLUMNS: &'static [Column] = &[
        col("LOGGED AT (UTC)", 19, 19, 0),
        col("METHOD", 6, 6, 0),
        col("STATUS", 6, 6, 0),
        col("PATH", 16, 40, 0),
        col("CLIENT", 12, 20, 1),
        col("REQUEST ID", 36, 41, 2),
    ];
    fn csv_row(&self) -> Vec<String> {
        vec![
            self.request_id.clone(),
            time(&self.logged_at),
            time(&self.created_at),
            self.http_method.to_string(),
            self.http_status.to_string(),
            self.request_path.clone(),
            self.api_version.clone(),
            self.client.clone(),
            self.request_origin.clone(),
            map_text(&self.request_body),
            opt_map_text(&self.request_response),
        ]
    }
    fn table_row(&self) -> Vec<String> {
        vec![
            short_time(&self.logged_at),
            self.http_method.as_str().to_ascii_uppercase(),
            self.http_status.to_string(),
            self.request_path.clone(),
            self.client.clone(),
            self.request_id.clone(),
        ]
    }
}

impl Record for SecurityLogObject {
    const NOUN: &'static str = "security log";
    const CSV_HEADER: &'static [&'static str] = &[
        "log_id",
        "logged_at",
        "created_at",
        "log_type",
        "log_event",
        "user_email",
        "resources",
        "device_info",
    ];
    const COLUMNS: &'static [Column] = &[
        col("LOGGED AT (UTC)", 19, 19, 0),
        col("TYPE", 8, 16, 2),
        col("EVENT", 16, 28, 0),
        col("USER", 16, 30, 1),
        col("LOG ID", 36, 36, 3),
    ];
    fn csv_row(&self) -> Vec<String> {
        vec![
            self.log_id.to_string(),
            time(&self.logged_at),
            time(&self.created_at),
            self.log_type.to_string(),
            self.log_event.clone(),
            opt(&self.user_email),
            opt_json(&self.resources),
            opt_json(&self.device_info),
        ]
    }
    fn table_row(&self) -> Vec<String> {
        vec![
            short_time(&self.logged_at),
            self.log_type.to_string(),
            self.log_event.clone(),
            self.user_email
                .clone()
                .unwrap_or_else(|| "(API key)".into()),
            self.log_id.to_string(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_headers() {
        let a: ActivityLogObject = serde_json::from_value(serde_json::json!({
            "activity_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
            "activity_type": "plan.updated", "activity_source": "front",
            "activity_object": {"b": "2", "a": null},
            "resource_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "resource_type": "Plan",
            "logged_at": "2025-03-31T12:31:44Z", "created_at": "2025-03-31T12:31:44Z"
        }))
        .unwrap();
        let row = a.csv_row();
        assert_eq!(row.len(), ActivityLogObject::CSV_HEADER.len());
        assert_eq!(row[11], r#"{"a":null,"b":"2"}"#, "sorted keys, nulls kept");
        assert_eq!(row[12], "", "an absent map is an empty field");
        assert_eq!(a.table_row().len(), ActivityLogObject::COLUMNS.len());
    }
}
