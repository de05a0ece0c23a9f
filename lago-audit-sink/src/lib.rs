//! Delivers Lago's audit trail into object storage **exactly once**: gzip NDJSON objects in a
//! Hive layout that Athena, Spark, Splunk's and Elastic's S3 inputs read, with the archive's own
//! checkpoint chain beside the data, raw or mapped to [OCSF](ocsf) 1.8.0 or [ECS](ecs).
//!
//! ```text
//! {prefix}/
//!   activity_logs/
//!     _lago-audit/chain/00000000000000000001.json   (the checkpoint chain, see [chain])
//!     _lago-audit/probe                              (the store check's object)
//!     dt=2025-03-01/20250301T000000Z_20250301T004159Z.ndjson.gz
//!     dt=2025-03-01/20250301T004200Z_20250301T012359Z.ndjson.gz
//!     dt=2025-03-02/…
//!   api_logs/…
//!   security_logs/…
//! ```
//!
//! With the `security-lake` feature, [`Layout::SecurityLake`] writes OCSF 1.3 events as zstd
//! Parquet for Amazon Security Lake custom sources instead, one object per OCSF class under
//! `ext/{source}/region={region}/accountId={id}/eventDay=YYYYMMDD/`, with the same chain and the
//! same guarantees ([`layout`], [`lake`](crate#amazon-security-lake)).
//!
//! A [`Destination`] comes from a URL (`file:///dir`, `s3://bucket/prefix`,
//! `az://container/prefix`, `gs://bucket/prefix`); a [`Sink`] consumes the events of one
//! [`Export`](lago_audit_client::Export) (`export` or `follow`) and writes them.
//!
//! # Why exactly once
//!
//! - **Names come from content.** An object is named by the first and last second of its
//!   records, never by the time of the upload, and written create-only-if-absent. A retried
//!   upload that meets an object with the same content is a success; other content is an error
//!   ([`SinkError::Conflict`]) and nothing is overwritten.
//! - **Batches are a function of the checkpoint and the records** ([`batch`]): whole seconds
//!   only, each confirmed complete by an export checkpoint, sorted within a second by a stable key
//!   (Lago returns ties in a new order on every query), cut by record count, bytes, midnight and
//!   an optional time span. A run resumed from the same checkpoint writes the same objects.
//! - **A record of the [chain] commits each object before it is uploaded**, created only if
//!   absent under the next number, with the object's SHA-256, record count and seconds. Only the
//!   writer whose record the store took uploads the object, so two writers can never both store
//!   records of one second; the loser is refused ([`SinkError::Concurrent`]) before it writes
//!   data. A lease keeps a second writer out while the first runs.
//! - **A kill between a commit and its object** leaves a commit whose object is missing; the next
//!   writer sets it back (an `abandon` record) and writes those seconds again.
//! - **Nothing is replaced or deleted**: write-once storage holds the archive as it is.
//! - **The store is checked** when a sink opens: it must refuse a create over an existing object
//!   and an update with a stale version ([`SinkError::Untrusted`] otherwise).
//! - **No partial object**: each object is one PUT (atomic in every object store); in a local
//!   directory it is written to a hidden staging file (`.name.….tmp`, which readers skip), synced,
//!   linked into place, and its folder synced.
//!
//! # Amazon Security Lake
//!
//! [`SinkOptions::layout`] with [`Layout::SecurityLake`] and [`Format::Ocsf`]: the batches are cut
//! as above (5 minutes to a day apart, at most 256 MiB), each split into one Parquet object per
//! OCSF class, all named by one chain commit before any is uploaded. The Parquet encoding, the
//! schema and what an object's SHA-256 covers (its bytes as stored) are in the `lake` module
//! (built with the feature).
//!
//! # Limits
//!
//! - Records that Lago makes visible later than the export's settle margin, in seconds already
//!   stored, are not delivered (the export's own limit, see `lago_audit_client::export`).
//! - One second holding more records than the batch limits is one object, held in memory.
//! - The last batch of a run that ends is cut where its window ends, so a run of `export` every
//!   hour writes at least one object an hour; `follow` is not affected.
//! - Leases compare the writers' clocks: keep them within a minute of each other. A writer that
//!   stalls (a suspended VM) for longer than its lease after committing an object may upload it
//!   after another writer took over; such an object is one that no live record names.

#![warn(missing_docs)]

pub mod batch;
pub mod chain;
pub mod counted;
mod destination;
pub mod digest;
pub mod ecs;
mod error;
mod format;
#[cfg(feature = "security-lake")]
pub mod lake;
pub mod layout;
mod local;
pub mod ocsf;
pub mod preflight;
pub mod verify;
mod writer;

pub use batch::BatchLimits;
pub use destination::Destination;
pub use error::SinkError;
pub use format::{api_log_event_id, line, line_event_id, Format, SinkRecord, API_LOG_ID_NAMESPACE};
pub use layout::{Lake, Layout, LogKind};
pub use writer::{Sink, SinkOptions, SinkProgress, WriteSummary, DEFAULT_LEASE};

/// The README's Rust example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
