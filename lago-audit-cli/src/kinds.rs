//! The kinds of log, behind one trait that holds every difference between them: names, filters
//! and their flags, the `to_date` rule, identity, and the columns of tables and CSV. Every
//! command is written once, generically; adding a filter is one field in its kind's filters and
//! one line in its `list`; adding a kind is one impl (and its line in `cli::Resource`).

use crate::parse::{non_blank, parse_activity_source, parse_email, parse_http_method};
use crate::parse::{parse_http_status, parse_log_type, parse_uuid, parse_uuid_text, Window};
use crate::rows::{col, map_text, opt, opt_json, opt_map_text, short_time, time, Column};
use chrono::{DateTime, Utc};
use clap::Args;
use lago_audit_client::builder::{FindAllActivityLogs, FindAllApiLogs, FindAllSecurityLogs};
use lago_audit_client::pagination::Page;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_client::{ActivitySource, HttpMethod, HttpStatusFilter, SecurityLogType};
use lago_audit_client::{Client, DateFilter, Error, Export, Paginate};
use std::future::Future;

/// One kind of audit log. See the [module documentation](self).
pub trait LogKind: Send + Sync + 'static {
    /// The subcommand's name (`activity-logs`); an export's checkpoint file records it.
    const NAME: &'static str;
    /// One record, in messages (`activity log`).
    const NOUN: &'static str;
    /// What `get` takes, in `--help` (`ACTIVITY_ID`).
    const ID: &'static str;
    /// Whether Lago requires `to_date` (security logs): without `--to`, the commands send one
    /// ([`sent`]).
    const REQUIRES_TO_DATE: bool = false;
    /// The CSV header: every field, in a stable order.
    const CSV_HEADER: &'static [&'static str];
    /// The table's columns.
    const COLUMNS: &'static [Column];

    /// The record type.
    type Record: lago_audit_sink::SinkRecord + Clone;
    /// The filter flags. Each field's clap id is Lago's query parameter (`activity_types`,
    /// `from_date`), so an error that names a parameter can name its flag.
    type Filters: Args + Clone + Default + std::fmt::Debug + Send + Sync + serde::Serialize;
    /// The list request.
    type List<'a>: Paginate<Page: Page<Item = Self::Record>>
        + Export<'a, Record = Self::Record>
        + 'a;

    /// The list request with every filter set as given (no page, no page size).
    fn list<'a>(client: &'a Client, filters: &Self::Filters) -> Self::List<'a>;
    /// Sets the page size of a list request.
    fn per_page<'a>(list: Self::List<'a>, per_page: u32) -> Self::List<'a>;
    /// Looks a record up by id.
    fn get(client: &Client, id: String)
        -> impl Future<Output = Result<Self::Record, Error>> + Send;
    /// The date bounds of the filters.
    fn window(filters: &Self::Filters) -> &Window;
    /// The date bounds of the filters, to change.
    fn window_mut(filters: &mut Self::Filters) -> &mut Window;
    /// The CSV fields, in [`LogKind::CSV_HEADER`] order. Maps are JSON text in one column; a
    /// missing value is an empty field.
    fn csv_row(record: &Self::Record) -> Vec<String>;
    /// The table cells, in [`LogKind::COLUMNS`] order.
    fn table_row(record: &Self::Record) -> Vec<String>;
}

/// `t` without its fraction of a second.
pub fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The filters to send: when `K` requires `to_date` and `--to` is not given, `open_end` (now for
/// `list` and `export`, the end of time for `tail`, whose stream stops there).
pub fn sent<K: LogKind>(filters: &K::Filters, open_end: DateTime<Utc>) -> K::Filters {
    let mut f = filters.clone();
    let window = K::window_mut(&mut f);
    if K::REQUIRES_TO_DATE && window.to.is_none() {
        window.to = Some(DateFilter::DateTime(whole_second(open_end)));
    }
    f
}

fn set_window<B>(
    mut b: B,
    w: &Window,
    from: impl Fn(B, DateFilter) -> B,
    to: impl Fn(B, DateFilter) -> B,
) -> B {
    if let Some(d) = w.from {
        b = from(b, d);
    }
    if let Some(d) = w.to {
        b = to(b, d);
    }
    b
}

/// Activity logs.
#[derive(Debug)]
pub struct Activity;
/// API logs.
#[derive(Debug)]
pub struct Api;
/// Security logs.
#[derive(Debug)]
pub struct Security;

/// Filters of `/activity_logs`.
#[derive(Args, Debug, Clone, Default, serde::Serialize)]
pub struct ActivityFilters {
    /// Only this activity type, e.g. invoice.voided (repeat for several).
    #[arg(long = "activity-type", value_name = "TYPE", value_parser = non_blank)]
    pub activity_types: Vec<String>,
    /// Only this source: api, front or system (repeat for several).
    #[arg(long = "activity-source", value_name = "SOURCE", value_parser = parse_activity_source)]
    pub activity_sources: Vec<ActivitySource>,
    /// Only actions by this user (repeat for several).
    #[arg(long = "user-email", value_name = "EMAIL", value_parser = parse_email)]
    pub user_emails: Vec<String>,
    /// Only this customer (its external id).
    #[arg(long, value_name = "ID", value_parser = non_blank)]
    pub external_customer_id: Option<String>,
    /// Only this subscription (its external id).
    #[arg(long, value_name = "ID", value_parser = non_blank)]
    pub external_subscription_id: Option<String>,
    /// Only this resource, a uuid (repeat for several).
    #[arg(long = "resource-id", value_name = "UUID", value_parser = parse_uuid)]
    pub resource_ids: Vec<uuid::Uuid>,
    /// Only this resource type, e.g. Invoice (repeat for several).
    #[arg(long = "resource-type", value_name = "TYPE", value_parser = non_blank)]
    pub resource_types: Vec<String>,
    /// Date bounds.
    #[command(flatten)]
    pub window: Window,
}

impl LogKind for Activity {
    const NAME: &'static str = "activity-logs";
    const ID: &'static str = "ACTIVITY_ID";
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
    type Record = ActivityLogObject;
    type Filters = ActivityFilters;
    type List<'a> = FindAllActivityLogs<'a>;

    fn list<'a>(client: &'a Client, f: &ActivityFilters) -> FindAllActivityLogs<'a> {
        let mut b = client.find_all_activity_logs();
        if !f.activity_types.is_empty() {
            b = b.activity_types(f.activity_types.clone());
        }
        if !f.activity_sources.is_empty() {
            b = b.activity_sources(f.activity_sources.clone());
        }
        if !f.user_emails.is_empty() {
            b = b.user_emails(f.user_emails.clone());
        }
        if let Some(c) = &f.external_customer_id {
            b = b.external_customer_id(c.clone());
        }
        if let Some(s) = &f.external_subscription_id {
            b = b.external_subscription_id(s.clone());
        }
        if !f.resource_ids.is_empty() {
            b = b.resource_ids(f.resource_ids.clone());
        }
        if !f.resource_types.is_empty() {
            b = b.resource_types(f.resource_types.clone());
        }
        set_window(b, &f.window, |b, d| b.from_date(d), |b, d| b.to_date(d))
    }
    fn per_page<'a>(list: Self::List<'a>, per_page: u32) -> Self::List<'a> {
        list.per_page(per_page)
    }
    async fn get(client: &Client, id: String) -> Result<ActivityLogObject, Error> {
        let r = client.find_activity_log().activity_id(id).send().await?;
        Ok(r.into_inner().activity_log)
    }
    fn window(f: &ActivityFilters) -> &Window {
        &f.window
    }
    fn window_mut(f: &mut ActivityFilters) -> &mut Window {
        &mut f.window
    }

    fn csv_row(r: &Self::Record) -> Vec<String> {
        vec![
            r.activity_id.to_string(),
            time(&r.logged_at),
            time(&r.created_at),
            r.activity_type.clone(),
            r.activity_source.to_string(),
            opt(&r.user_email),
            r.resource_type.clone(),
            r.resource_id.to_string(),
            opt(&r.external_customer_id),
            opt(&r.external_subscription_id),
            r.organization_id.map(|u| u.to_string()).unwrap_or_default(),
            opt_map_text(&r.activity_object),
            opt_map_text(&r.activity_object_changes),
        ]
    }
    fn table_row(r: &Self::Record) -> Vec<String> {
        vec![
            short_time(&r.logged_at),
            r.activity_type.clone(),
            r.activity_source.to_string(),
            r.resource_type.clone(),
            r.user_email
                .clone()
                .unwrap_or_else(|| format!("({})", r.activity_source)),
            opt(&r.external_customer_id),
            r.activity_id.to_string(),
        ]
    }
}

/// Filters of `/api_logs`.
#[derive(Args, Debug, Clone, Default, serde::Serialize)]
pub struct ApiFilters {
    /// Only this HTTP method, any case (repeat for several).
    #[arg(long = "http-method", value_name = "METHOD", value_parser = parse_http_method,
          help = format!("Only this HTTP method: {}, any case (repeat for several)",
                         HttpMethod::KNOWN.join(", ")))]
    pub http_methods: Vec<HttpMethod>,
    /// Only this outcome: failed, succeeded, or a status code such as 422 (repeat for several).
    #[arg(long = "http-status", visible_alias = "status", value_name = "STATUS",
          value_parser = parse_http_status)]
    pub http_statuses: Vec<HttpStatusFilter>,
    /// Only this API version, e.g. v1.
    #[arg(long, value_name = "VERSION", value_parser = non_blank)]
    pub api_version: Option<String>,
    /// Only this request path, with /api/v1; `*` is a wildcard (repeat for several).
    #[arg(long = "request-path", value_name = "PATH", value_parser = non_blank)]
    pub request_paths: Vec<String>,
    /// Only this client (user agent), exactly (repeat for several).
    #[arg(long = "client", value_name = "CLIENT", value_parser = non_blank)]
    pub clients: Vec<String>,
    /// Date bounds.
    #[command(flatten)]
    pub window: Window,
}

impl LogKind for Api {
    const NAME: &'static str = "api-logs";
    const ID: &'static str = "REQUEST_ID";
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
    type Record = ApiLogObject;
    type Filters = ApiFilters;
    type List<'a> = FindAllApiLogs<'a>;

    fn list<'a>(client: &'a Client, f: &ApiFilters) -> FindAllApiLogs<'a> {
        let mut b = client.find_all_api_logs();
        if !f.http_methods.is_empty() {
            b = b.http_methods(f.http_methods.clone());
        }
        if !f.http_statuses.is_empty() {
            b = b.http_statuses(f.http_statuses.clone());
        }
        if let Some(v) = &f.api_version {
            b = b.api_version(v.clone());
        }
        if !f.request_paths.is_empty() {
            b = b.request_paths(f.request_paths.clone());
        }
        if !f.clients.is_empty() {
            b = b.clients(f.clients.clone());
        }
        set_window(b, &f.window, |b, d| b.from_date(d), |b, d| b.to_date(d))
    }
    fn per_page<'a>(list: Self::List<'a>, per_page: u32) -> Self::List<'a> {
        list.per_page(per_page)
    }
    async fn get(client: &Client, id: String) -> Result<ApiLogObject, Error> {
        let r = client.find_api_log().request_id(id).send().await?;
        Ok(r.into_inner().api_log)
    }
    fn window(f: &ApiFilters) -> &Window {
        &f.window
    }
    fn window_mut(f: &mut ApiFilters) -> &mut Window {
        &mut f.window
    }

    fn csv_row(r: &Self::Record) -> Vec<String> {
        vec![
            r.request_id.clone(),
            time(&r.logged_at),
            time(&r.created_at),
            r.http_method.to_string(),
            r.http_status.to_string(),
            r.request_path.clone(),
            r.api_version.clone(),
            r.client.clone(),
            r.request_origin.clone(),
            map_text(&r.request_body),
            opt_map_text(&r.request_response),
        ]
    }
    fn table_row(r: &Self::Record) -> Vec<String> {
        vec![
            short_time(&r.logged_at),
            r.http_method.as_str().to_ascii_uppercase(),
            r.http_status.to_string(),
            r.request_path.clone(),
            r.client.clone(),
            r.request_id.clone(),
        ]
    }
}

/// Filters of `/security_logs`.
#[derive(Args, Debug, Clone, Default, serde::Serialize)]
pub struct SecurityFilters {
    /// Only this user, a uuid (repeat for several).
    #[arg(long = "user-id", value_name = "UUID", value_parser = parse_uuid_text)]
    pub user_ids: Vec<String>,
    /// Only this API key, a uuid (repeat for several).
    #[arg(long = "api-key-id", value_name = "UUID", value_parser = parse_uuid_text)]
    pub api_key_ids: Vec<String>,
    /// Only this log type: api_key, billing_entity, export, integration, role, user,
    /// webhook_endpoint (repeat for several).
    #[arg(long = "log-type", value_name = "TYPE", value_parser = parse_log_type)]
    pub log_types: Vec<SecurityLogType>,
    /// Only this event, e.g. user.signed_up (repeat for several).
    #[arg(long = "log-event", value_name = "EVENT", value_parser = non_blank)]
    pub log_events: Vec<String>,
    /// Date bounds (`--to` defaults to now: Lago requires it for security logs).
    #[command(flatten)]
    pub window: Window,
}

impl LogKind for Security {
    const NAME: &'static str = "security-logs";
    const ID: &'static str = "LOG_ID";
    /// Lago requires `to_date` on security logs.
    const REQUIRES_TO_DATE: bool = true;
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
    type Record = SecurityLogObject;
    type Filters = SecurityFilters;
    type List<'a> = FindAllSecurityLogs<'a>;

    fn list<'a>(client: &'a Client, f: &SecurityFilters) -> FindAllSecurityLogs<'a> {
        let mut b = client.find_all_security_logs();
        if !f.user_ids.is_empty() {
            b = b.user_ids(f.user_ids.clone());
        }
        if !f.api_key_ids.is_empty() {
            b = b.api_key_ids(f.api_key_ids.clone());
        }
        if !f.log_types.is_empty() {
            b = b.log_types(f.log_types.clone());
        }
        if !f.log_events.is_empty() {
            b = b.log_events(f.log_events.clone());
        }
        set_window(b, &f.window, |b, d| b.from_date(d), |b, d| b.to_date(d))
    }
    fn per_page<'a>(list: Self::List<'a>, per_page: u32) -> Self::List<'a> {
        list.per_page(per_page)
    }
    async fn get(client: &Client, id: String) -> Result<SecurityLogObject, Error> {
        let r = client.find_security_log().log_id(id).send().await?;
        Ok(r.into_inner().security_log)
    }
    fn window(f: &SecurityFilters) -> &Window {
        &f.window
    }
    fn window_mut(f: &mut SecurityFilters) -> &mut Window {
        &mut f.window
    }

    fn csv_row(r: &Self::Record) -> Vec<String> {
        vec![
            r.log_id.to_string(),
            time(&r.logged_at),
            time(&r.created_at),
            r.log_type.to_string(),
            r.log_event.clone(),
            opt(&r.user_email),
            opt_json(&r.resources),
            opt_json(&r.device_info),
        ]
    }
    fn table_row(r: &Self::Record) -> Vec<String> {
        vec![
            short_time(&r.logged_at),
            r.log_type.to_string(),
            r.log_event.clone(),
            r.user_email.clone().unwrap_or_else(|| "(API key)".into()),
            r.log_id.to_string(),
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
        let row = Activity::csv_row(&a);
        assert_eq!(row.len(), Activity::CSV_HEADER.len());
        assert_eq!(row[11], r#"{"a":null,"b":"2"}"#, "sorted keys, nulls kept");
        assert_eq!(row[12], "", "an absent map is an empty field");
        assert_eq!(Activity::table_row(&a).len(), Activity::COLUMNS.len());
    }
}
