//! Fetches one activity log, one API log and one security log by id, and shows what Lago stores
//! as text decoded: an activity's changes, an API call's body.
//!
//! ```text
//! cargo run -p lago-audit-client --example get_by_id
//! ```

mod common;

use common::out;
use lago_audit_client::Client;

#[tokio::main]
async fn main() {
    common::exit_on_error(start().await);
}

async fn start() -> Result<(), Box<dyn std::error::Error>> {
    let (_fake, client) = common::connect().await?;
    run(&client).await
}

async fn run(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    // Take the newest id of each kind from its list, then fetch it by id.
    let updated = client
        .find_all_activity_logs()
        .activity_types(["plan.updated", "customer.updated", "wallet.updated"])
        .per_page(1)
        .send()
        .await?;
    if let Some(first) = updated.activity_logs.first() {
        let log = client
            .find_activity_log()
            .activity_id(first.activity_id.to_string())
            .send()
            .await?
            .into_inner()
            .activity_log;
        out(format_args!(
            "{} {} {}",
            log.activity_id, log.activity_type, log.resource_type
        ))?;
        for change in log.changes() {
            match change {
                Ok(c) => out(format_args!("  {}: {} -> {}", c.field, c.before, c.after))?,
                Err(raw) => out(format_args!(
                    "  {}: {:?} (not an [old, new] pair)",
                    raw.field, raw.raw
                ))?,
            };
        }
    }

    let calls = client.find_all_api_logs().per_page(1).send().await?;
    if let Some(first) = calls.api_logs.first() {
        let call = client
            .find_api_log()
            .request_id(first.request_id.clone())
            .send()
            .await?
            .into_inner()
            .api_log;
        out(format_args!(
            "{} {} {} -> {}\n  body: {}",
            call.request_id,
            call.http_method,
            call.request_path,
            call.http_status,
            call.body_json()
        ))?;
    }

    let today = chrono::Utc::now().date_naive();
    let security = client
        .find_all_security_logs()
        .to_date(today)
        .per_page(1)
        .send()
        .await?;
    if let Some(first) = security.security_logs.first() {
        let log = client
            .find_security_log()
            .log_id(first.log_id.to_string())
            .send()
            .await?
            .into_inner()
            .security_log;
        out(format_args!(
            "{} {} {}",
            log.log_id, log.log_type, log.log_event
        ))?;
    }
    Ok(())
}
