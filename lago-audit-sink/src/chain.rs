//! The checkpoint chain: the archive's own record of what it holds, written only by creating new
//! objects, never by replacing or deleting one.
//!
//! ```text
//! {prefix}/{kind}/_lago-audit/chain/00000000000000000001.json
//! {prefix}/{kind}/_lago-audit/chain/00000000000000000002.json
//! …
//! ```
//!
//! Each [`ChainRecord`] is a small JSON object created only if absent (`If-None-Match: *`, a
//! hard link in a directory) under the next sequence number. The newest record is the archive's
//! state: its position (every record logged before it is stored), the export checkpoint to
//! resume from, and the writer that holds the prefix. A record carries the SHA-256 of the
//! previous record's bytes (`prev`), so the chain is hash-linked from the first record on.
//!
//! # The protocol
//!
//! - **A writer claims the prefix** by creating record `n + 1` after reading record `n`. Two
//!   writers that read the same `n` race for the same name: the store lets one create it, and
//!   the other is refused ([`SinkError::Concurrent`]) before it
//!   has written any data.
//! - **A record commits an object before the object is written** (`event: "commit"`): it names
//!   the object, the SHA-256 of its uncompressed content, its record count and its first and last
//!   second, and the position after it. Only the writer that created that record writes the
//!   object. So two objects holding records of the same second cannot both be committed, and an
//!   object that no record names was written by no writer of this chain.
//! - **A writer holds a lease** (`lease_until`, renewed by each record it creates, released by
//!   its last one). Another writer opening the prefix while the lease runs is refused, unless
//!   the holder is provably gone: a process of this host (same host name and boot) that no
//!   longer runs. A holder on another machine is waited out, or overridden by an operator who
//!   knows it is gone ([`SinkOptions::take_over`](crate::SinkOptions::take_over)).
//! - **A commit whose object never arrived** (the writer was killed between the two, or lost
//!   power) is followed by an `abandon` record once its writer is gone, which sets the position
//!   back to where it was before the commit. The next run writes those seconds again.
//! - **Nothing is overwritten or deleted**, so the archive works unchanged in write-once storage
//!   (S3 Object Lock, Azure immutability policies, GCS retention locks).
//!
//! The newest record is found with `HEAD` requests (doubling, then bisecting over the sequence
//! numbers, about 40 requests after a year of one-minute records), not by listing the chain.

use crate::layout::{LogKind, CHAIN_DIR, STATE_DIR};
use crate::{Destination, SinkError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use lago_audit_client::Checkpoint;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

/// The version of the record format this crate writes.
pub const CHAIN_VERSION: u32 = 2;

/// What a record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ChainEvent {
    /// The first record of a new archive: the position is where the archive starts (records
    /// logged before it were not asked for).
    Start,
    /// A writer claimed the prefix (its lease starts).
    Open,
    /// The objects listed will be written by this record's writer (they are written after the
    /// record is stored); the position is the one after them.
    Commit,
    /// The position moved on without records (a quiet span).
    Position,
    /// The objects committed by the previous record never arrived; the position is set back.
    Abandon,
    /// Objects found in the prefix that no record named (written by a version of this crate
    /// before the chain, or by a run killed between an object and its record) are taken in.
    Adopt,
    /// A span the archive does not hold, with the reason: accepted by the operator, or past
    /// Lago's retention when the archive resumed.
    Gap,
    /// The state was taken over from a `checkpoint.json` of an earlier version of this crate.
    Migrate,
    /// The writer ended its run and released its lease.
    Close,
}

/// Which process wrote a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterId {
    /// A random id per opened sink.
    pub id: String,
    /// The host name (empty when unknown).
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The host's boot id (Linux: `/proc/sys/kernel/random/boot_id`; empty when unknown).
    pub boot: String,
}

/// An object a record commits or adopts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    /// Its name relative to `{prefix}/{kind}/`: `dt=YYYY-MM-DD/{first}_{last}.ndjson.gz`; or,
    /// for Security Lake, relative to `{prefix}/`: `ext/{source}/…/{first}_{last}.parquet`
    /// ([`crate::layout::object_path`]).
    pub name: String,
    /// The SHA-256 of its uncompressed content (the NDJSON lines), or of a Parquet object's
    /// bytes as stored ([`crate::layout::Lake`]), lowercase hex.
    pub sha256: String,
    /// The number of records (lines).
    pub records: u64,
    /// The second of its first record.
    pub first: DateTime<Utc>,
    /// The second of its last record.
    pub last: DateTime<Utc>,
    /// The records the sink took from the export for this object: the same as `records`
    /// unless the writer lost some between taking and writing them (`verify` says so, and
    /// `verify --against-lago` names them). Absent in archives written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<u64>,
}

/// A span the archive does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// Where the span starts (`None`: from the beginning).
    pub from: Option<DateTime<Utc>>,
    /// Where it ends (exclusive).
    pub to: DateTime<Utc>,
    /// Why: `accepted` (the operator started after the position), `retention` (the position was
    /// older than Lago keeps records, so some may be gone).
    pub reason: String,
    /// The words behind the reason, for people.
    pub detail: String,
}

/// One record of the chain: `{prefix}/{kind}/_lago-audit/chain/{seq:020}.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainRecord {
    /// The record format ([`CHAIN_VERSION`]).
    pub v: u32,
    /// Its sequence number, from 1, without holes.
    pub seq: u64,
    /// The SHA-256 (lowercase hex) of the previous record's bytes as stored; `None` for the
    /// first.
    pub prev: Option<String>,
    /// The kind of log (`activity_logs`, `api_logs`, `security_logs`).
    pub kind: String,
    /// The format of the objects (`lago`, `ocsf`, `ecs`; for Security Lake, the layout's
    /// [`tag`](crate::layout::Layout::tag) with its source, region and account).
    pub format: String,
    /// What happened.
    pub event: ChainEvent,
    /// Who wrote it.
    pub writer: WriterId,
    /// When (the writer's clock).
    pub created_at: DateTime<Utc>,
    /// The writer holds the prefix until then (its clock); equal to `created_at` once released.
    pub lease_until: DateTime<Utc>,
    /// The position before this record.
    pub since: Option<DateTime<Utc>>,
    /// Every record logged before this instant is in an object this chain names (or in a
    /// declared gap). `None` before anything was stored.
    pub position: Option<DateTime<Utc>>,
    /// The export checkpoint to resume from (at or before `position`).
    pub export: Option<Checkpoint>,
    /// The objects this record commits or adopts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectEntry>,
    /// The objects of the previous record that never arrived (`abandon`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abandoned: Vec<String>,
    /// The span declared missing (`gap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<Gap>,
    /// Objects named by the chain up to this record, abandoned ones excluded.
    pub objects_total: u64,
    /// Records in those objects.
    pub records_total: u64,
}

impl ChainRecord {
    /// Whether its writer still holds the prefix at `now` by its lease.
    pub fn leased_at(&self, now: DateTime<Utc>) -> bool {
        self.lease_until > now
    }
}

/// The path of record `seq` relative to `{prefix}/{kind}/`.
pub fn record_name(seq: u64) -> String {
    format!("{STATE_DIR}/{CHAIN_DIR}/{seq:020}.json")
}

/// The sequence number of a record's file name (`00000000000000000042.json`).
pub fn parse_record_name(file: &str) -> Option<u64> {
    let digits = file.strip_suffix(".json")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

pub(crate) fn store_err(
    operation: &'static str,
    path: &Path,
    source: object_store::Error,
) -> SinkError {
    SinkError::Store {
        operation,
        path: path.to_string(),
        source,
    }
}

/// The bytes at `path`, or `None` when there is no such object.
pub(crate) async fn get_opt(dest: &Destination, path: &Path) -> Result<Option<Bytes>, SinkError> {
    match dest.store.get(path).await {
        Ok(got) => got
            .bytes()
            .await
            .map(Some)
            .map_err(|e| store_err("get", path, e)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(store_err("get", path, e)),
    }
}

/// The bytes at `path`.
pub(crate) async fn get(dest: &Destination, path: &Path) -> Result<Bytes, SinkError> {
    match dest.store.get(path).await {
        Ok(got) => got.bytes().await.map_err(|e| store_err("get", path, e)),
        Err(e) => Err(store_err("get", path, e)),
    }
}

pub(crate) fn record_path(dest: &Destination, kind: LogKind, seq: u64) -> Path {
    dest.path(&format!("{}/{}", kind.dir(), record_name(seq)))
}

/// Reads record `seq` of `kind`'s chain: the record and its bytes as stored.
pub async fn read_record(
    dest: &Destination,
    kind: LogKind,
    seq: u64,
) -> Result<(ChainRecord, Bytes), SinkError> {
    let path = record_path(dest, kind, seq);
    let bytes = get(dest, &path).await?;
    let record =
        serde_json::from_slice::<ChainRecord>(&bytes).map_err(|e| SinkError::Checkpoint {
            path: path.to_string(),
            reason: format!("cannot be read ({e})"),
        })?;
    if record.seq != seq {
        return Err(SinkError::Checkpoint {
            path: path.to_string(),
            reason: format!("it says it is record {}, not {seq}", record.seq),
        });
    }
    Ok((record, bytes))
}

/// Whether record `seq` of `kind`'s chain exists (one `HEAD`).
pub async fn exists(dest: &Destination, kind: LogKind, seq: u64) -> Result<bool, SinkError> {
    path_exists(dest, &record_path(dest, kind, seq)).await
}

/// Whether an object is at `path` (one `HEAD`).
async fn path_exists(dest: &Destination, path: &Path) -> Result<bool, SinkError> {
    match dest.store.head(path).await {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(store_err("head", path, e)),
    }
}

/// The newest record of `kind`'s chain and the SHA-256 of its bytes, or `None` for no chain.
pub async fn head(
    dest: &Destination,
    kind: LogKind,
) -> Result<Option<(ChainRecord, String)>, SinkError> {
    head_from(dest, kind, 1).await
}

/// [`head`], searching from record `from` on (a record known to exist).
pub(crate) async fn head_from(
    dest: &Destination,
    kind: LogKind,
    from: u64,
) -> Result<Option<(ChainRecord, String)>, SinkError> {
    let Some(seq) = newest_seq(dest, kind, from).await? else {
        return Ok(None);
    };
    let (record, bytes) = read_record(dest, kind, seq).await?;
    Ok(Some((record, sha256_hex(&bytes))))
}

/// The newest record's sequence number, `from` a known one on.
async fn newest_seq(
    dest: &Destination,
    kind: LogKind,
    from: u64,
) -> Result<Option<u64>, SinkError> {
    let dir = dest.path(&format!("{}/{STATE_DIR}/{CHAIN_DIR}", kind.dir()));
    newest_in(dest, &dir, from, |seq| record_path(dest, kind, seq)).await
}

/// The newest of the numbered files `path_of(1)`, `path_of(2)`, … in `dir`, `from` a known one
/// on: doubling, then bisecting (this crate never deletes them, so they exist from 1 to the
/// newest). Falls back to a listing of `dir` when `from` is gone (oldest files removed by a
/// lifecycle rule).
pub(crate) async fn newest_in(
    dest: &Destination,
    dir: &Path,
    from: u64,
    path_of: impl Fn(u64) -> Path,
) -> Result<Option<u64>, SinkError> {
    let exists = |seq: u64| {
        let path = path_of(seq);
        async move { path_exists(dest, &path).await }
    };
    if !exists(from).await? {
        return dest
            .store
            .list(Some(dir))
            .try_fold(None, |max: Option<u64>, m| async move {
                let seq = m.location.filename().and_then(parse_record_name);
                Ok(max.max(seq))
            })
            .await
            .map_err(|e| store_err("list", dir, e));
    }
    let (mut lo, mut step) = (from, 1u64);
    let mut hi = loop {
        let probe = lo.saturating_add(step);
        if !exists(probe).await? {
            break probe;
        }
        lo = probe;
        step = step.saturating_mul(2);
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if exists(mid).await? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(Some(lo))
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The bytes a record is stored as (pretty JSON, a newline at the end).
pub(crate) fn encode(record: &ChainRecord) -> Result<Bytes, serde_json::Error> {
    let mut body = serde_json::to_vec_pretty(record)?;
    body.push(b'\n');
    Ok(Bytes::from(body))
}

/// This process, as a writer of records.
pub(crate) fn this_writer() -> WriterId {
    WriterId {
        id: uuid::Uuid::new_v4().to_string(),
        host: read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_default(),
        pid: std::process::id(),
        boot: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Writers open in this process (a writer whose sink was dropped is gone, though its process
/// runs on).
static LIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub(crate) fn register(id: &str) {
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(id.to_owned());
}

pub(crate) fn unregister(id: &str) {
    LIVE.lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|l| l != id);
}

/// Whether `other` is provably gone: a writer of this host and boot whose process no longer
/// runs (or, in this process, whose sink was dropped), or one of this host from an earlier boot.
/// A writer of another host is never provably gone: its lease decides.
pub(crate) fn gone(other: &WriterId, me: &WriterId) -> bool {
    if other.host.is_empty() || other.host != me.host {
        return false;
    }
    if !other.boot.is_empty() && !me.boot.is_empty() && other.boot != me.boot {
        return true;
    }
    if other.pid == me.pid {
        return !LIVE
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&other.id);
    }
    process_gone(other.pid)
}

#[cfg(target_os = "linux")]
fn process_gone(pid: u32) -> bool {
    // A zombie (killed, not yet reaped by its parent) runs no more code either.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

#[cfg(not(target_os = "linux"))]
fn process_gone(_pid: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(
            record_name(42),
            "_lago-audit/chain/00000000000000000042.json"
        );
        assert_eq!(parse_record_name("00000000000000000042.json"), Some(42));
        for bad in [
            "42.json",
            "0000000000000000004x.json",
            "00000000000000000042",
        ] {
            assert_eq!(parse_record_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_writer_of_this_process_is_gone_once_its_sink_is() {
        let me = this_writer();
        let other = this_writer();
        register(&other.id);
        assert!(!gone(&other, &me));
        unregister(&other.id);
        assert!(gone(&other, &me));
        let elsewhere = WriterId {
            host: format!("{}-elsewhere", me.host),
            ..other.clone()
        };
        assert!(
            !gone(&elsewhere, &me),
            "another host is never provably gone"
        );
        if !me.boot.is_empty() && !me.host.is_empty() {
            let rebooted = WriterId {
                boot: "another-boot".into(),
                pid: me.pid,
                ..other
            };
            assert!(gone(&rebooted, &me));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_process_is_gone_and_a_live_one_is_not() {
        let me = this_writer();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let other = WriterId {
            pid: child.id(),
            ..this_writer()
        };
        assert!(!gone(&other, &me));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(gone(&other, &me));
    }
}
