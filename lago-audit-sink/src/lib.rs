//! Delivers Lago's audit trail into object storage **exactly once**: gzip NDJSON objects in a
//! Hive layout that Athena, Security Lake, Splunk's and Elastic's S3 inputs read, with the
//! export's checkpoint kept beside the data, raw or mapped to [OCSF](ocsf) 1.8.0 or [ECS](ecs).
//!
//! ```text
//! {prefix}/
//!   activity_logs/
//!     _lago-audit/checkpoint.json
//!     dt=2025-03-01/20250301T000000Z_20250301T004159Z.ndjson.gz
//!     dt=2025-03-01/20250301T004200Z_20250301T012359Z.ndjson.gz
//!     dt=2025-03-02/…
//!   api_logs/…
//!   security_logs/…
//! ```
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
//! - **The checkpoint lives beside the data** (`{kind}/_lago-audit/checkpoint.json`), advances
//!   only after the object it covers is stored, and is updated conditionally on the version read
//!   (create-if-absent the first time), so a second exporter on the same prefix fails with
//!   [`SinkError::Concurrent`]. A local directory has no conditional update: there each
//!   checkpoint generation is a file created only if absent, and `checkpoint.json` is a copy.
//! - **A kill between an object and its checkpoint** leaves a whole object after the
//!   checkpoint's position; the next [`Sink::open`] adopts it and starts after it.
//! - **No partial object**: each object is one PUT (atomic in every object store); in a local
//!   directory it is written to a staging file and linked into place.
//!
//! # Limits
//!
//! - Records that Lago makes visible later than the export's settle margin, in seconds already
//!   stored, are not delivered (the export's own limit, see `lago_audit_client::export`).
//! - One second holding more records than the batch limits is one object, held in memory.
//! - The last batch of a run that ends is cut where its window ends, so a run of `export` every
//!   hour writes at least one object an hour; `follow` is not affected.

#![warn(missing_docs)]

pub mod batch;
mod destination;
pub mod ecs;
mod error;
mod format;
pub mod layout;
pub mod ocsf;
pub mod preflight;
mod writer;

pub use batch::BatchLimits;
pub use destination::Destination;
pub use error::SinkError;
pub use format::{line, Format, SinkRecord};
pub use layout::LogKind;
pub use writer::{Sink, SinkOptions, SinkProgress, WriteSummary};

/// The README's Rust example, compiled as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
