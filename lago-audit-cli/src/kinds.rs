//! The three kinds of log, behind one trait, so every command is written once.

use crate::cli::{ActivityFilters, ApiFilters, SecurityFilters, Window};
use crate::records::Record;
use lago_audit_client::builder::{FindAllActivityLogs, FindAllApiLogs, FindAllSecurityLogs};
use lago_audit_client::pagination::Page;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_client::{Client, DateFilter, Error, Export, Paginate};
use std::future::Future;

/// One kind of audit log: its filters, its list request, its lookup by id.
pub trait LogKind {
    /// The record type.
    type Record: Record + Clone;
    /// The filter flags.
    type Filters: Clone + Send + Sync + serde::Serialize;
    /// The list request.
    type List<'a>: Paginate<Page: Page<Item = Self::Record>>
        + Export<'a, Record = Self::Record>
        + 'a;
    /// The subcommand's name (`activity-logs`).
    const NAME: &'static str;

    /// The list request with every filter set (no page, no page size).
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
}

/// Activity logs.
pub struct Activity;
/// API logs.
pub struct Api;
/// Security logs.
pub struct Security;

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

impl LogKind for Activity {
    const NAME: &'static str = "activity-logs";
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
}

impl LogKind for Api {
    const NAME: &'static str = "api-logs";
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
}

impl LogKind for Security {
    const NAME: &'static str = "security-logs";
    type Record = SecurityLogObject;
    type Filters = SecurityFilters;
    type List<'a> = FindAllSecurityLogs<'a>;

    /// Lago requires `to_date` on security logs: without `--to`, it is now.
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
        let mut window = f.window.clone();
        if window.to.is_none() {
            let now = chrono::Utc::now();
            let now = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
            window.to = Some(DateFilter::DateTime(now));
        }
        set_window(b, &window, |b, d| b.from_date(d), |b, d| b.to_date(d))
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
}
