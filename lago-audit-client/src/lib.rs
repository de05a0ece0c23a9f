//! A typed async client for [Lago](https://getlago.com)'s audit logs: activity logs, API logs and
//! security logs.
//!
//! The client and its models are generated at build time by
//! [progenitor](https://github.com/oxidecomputer/progenitor) from the OpenAPI spec in the
//! workspace's `openapi/` folder, with corrections that make it match what Lago's server really
//! sends (see `openapi/README.md`). Around the generated code, hand-written modules add what a
//! generator cannot know:
//!
//! - [`config`]: one builder for the API key (never printed), region or base URL, timeouts,
//!   user agent and retries, also from `LAGO_API_KEY` / `LAGO_REGION` / `LAGO_API_URL`;
//! - [`error`]: errors with the HTTP status, Lago's `code` and `error_details`;
//! - [`retry`]: capped, jittered retries that honour the server's wait hints;
//! - [`pagination`]: streams over the pages of one query (simple, not exactly-once);
//! - [`export`]: reading a whole window exactly once, with read-ahead, checkpoints and follow;
//! - [`ratelimit`]: the client-side rate limiter shared by every request of a client;
//! - [`progress`]: the live counters of an export, written by the export and the transport;
//! - [`open_enum`]: enums that keep values Lago adds later;
//! - [`filters`]: date-or-date-time bounds and HTTP status filters;
//! - [`records`]: decoding the JSON text Lago stores inside activity objects, changes and API-log
//!   bodies;
//! - [`path`]: path ids encoded so that they can only ever be one path segment.
//!
//! ```no_run
//! use lago_audit_client::ClientBuilder;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ClientBuilder::from_env().build()?;
//! let page = client.find_all_activity_logs().per_page(20).send().await?;
//! for log in &page.activity_logs {
//!     println!("{} {} {}", log.logged_at, log.activity_type, log.resource_type);
//! }
//! match client.find_activity_log().activity_id("unknown").send().await {
//!     Err(e) if e.code() == Some("activity_log_not_found") => println!("no such log"),
//!     other => println!("{other:?}"),
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

// The generated code names hand-written types through `::lago_audit_client::…`, a path that
// resolves both here and in the test crate's generated mocks.
extern crate self as lago_audit_client;

pub mod config;
pub mod error;
pub mod export;
pub mod filters;
pub mod open_enum;
pub mod pagination;
pub mod path;
pub mod progress;
pub mod ratelimit;
pub mod records;
pub mod retry;
mod transport;

/// The code progenitor generates from the spec. Never edited by hand.
#[allow(
    missing_docs,
    unused_imports,
    clippy::all,
    clippy::pedantic,
    rustdoc::bare_urls,
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags
)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/lago_audit_generated.rs"));
}

pub use config::{ClientBuilder, ConfigError, KeySource, Region};
pub use error::{ApiError, Error, TransportError};
pub use export::{Checkpoint, Export, ExportEvent, ExportOptions, ExportProgress};
pub use filters::{DateFilter, HttpStatusFilter};
pub use generated::{builder, types, Client, OPERATION_PATHS};
pub use open_enum::{ActivitySource, HttpMethod, SecurityLogType, UnknownValue};
pub use pagination::Paginate;
pub use progenitor_client::{ByteStream, ClientInfo, ResponseValue};
pub use reqwest::StatusCode;
pub use retry::RetryPolicy;

/// The workspace README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
