//! Verifying an archive: is anything missing, has anything been changed?
//!
//! [`verify`] reads one kind's folder of a [`Destination`] (in place, or any copy of it: a
//! `file://` directory after `aws s3 sync` verifies the same) and checks, in one listing of the
//! folder and one read of each file:
//!
//! - **the digests** ([`crate::digest`]): each signature (with the pinned key, or the key each
//!   digest names), each link to the previous digest, the hash of every chain record they
//!   commit, and that they follow each other without a hole;
//! - **the chain** ([`crate::chain`]): records from 1 without a hole, each linked to the
//!   previous one by its hash, each starting where the previous one ended (a hole in time that
//!   no declared gap explains is a problem);
//! - **the objects**: every object the chain commits exists, with the SHA-256 of its
//!   uncompressed content, its record count, records inside its own seconds and its `dt=`
//!   partition; every object in the folder that a reader would read (`dt=*/*.ndjson.gz`, not
//!   hidden) is one the chain commits, else it is extra (it duplicates data);
//! - **the head**: with [`VerifyOptions::expect_head`], the newest digest is the one pinned (a
//!   rollback that drops the newest digests is caught).
//!
//! Objects are read side by side, a few at a time, and decoded as a stream of lines.
//!
//! A digest proves the archive unaltered, not complete against its source. [`against_lago`]
//! does that for the part still inside Lago's retention: it compares the archive, second by
//! second, with an exactly-once export of the same span, and names each record only one side
//! holds, telling a record the writer lost or an altered object removed from a late arrival.

use crate::chain::{self, ChainEvent, ChainRecord, Gap, ObjectEntry};
use crate::digest::{self, Digest};
use crate::layout::{parse_object_name, LogKind, CHAIN_DIR, DIGEST_DIR, STATE_DIR};
use crate::{Destination, SinkError};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

/// What to check beyond the defaults.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The public key (raw 32 bytes) every digest must be signed with.
    pub public_key: Option<Vec<u8>>,
    /// The SHA-256 the newest digest must have.
    pub expect_head: Option<String>,
    /// An unsigned archive is invalid (not only a warning).
    pub require_signature: bool,
    /// Objects read at once (default 8).
    pub concurrency: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            public_key: None,
            expect_head: None,
            require_signature: false,
            concurrency: 8,
        }
    }
}

/// One finding: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// A short code: `digest-signature`, `digest-link`, `digest-missing`, `digest-record`,
    /// `chain-missing`, `chain-link`, `chain-hole`, `object-missing`, `object-hash`,
    /// `object-count`, `object-lost`, `object-seconds`, `object-partition`, `object-extra`,
    /// `head-mismatch`, `unsigned`, `unreadable`; against Lago ([`against_lago`]):
    /// `lago-missing`, `lago-removed`, `lago-unknown`, `archive-duplicate`.
    pub code: &'static str,
    /// The file concerned, relative to the kind's folder.
    pub path: String,
    /// What was found, for people.
    pub detail: String,
}

/// One file checked, for `--verbose`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Checked {
    /// The file, relative to the kind's folder.
    pub path: String,
    /// Whether it passed.
    pub valid: bool,
}

/// What [`verify`] found in one kind's folder.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// The kind's folder (`{prefix}/{kind}`).
    pub location: String,
    /// Every problem found; empty for a valid archive.
    pub problems: Vec<Problem>,
    /// Things worth saying that do not make it invalid (unsigned digests, records not yet in a
    /// digest).
    pub warnings: Vec<String>,
    /// Digests found valid, and in all.
    pub digests_valid: u64,
    /// Digests expected (the newest's number, or those found).
    pub digests: u64,
    /// Objects found valid, and committed in all.
    pub objects_valid: u64,
    /// Objects committed by the chain.
    pub objects: u64,
    /// Records in the valid objects.
    pub records: u64,
    /// Chain records.
    pub chain_records: u64,
    /// Where the archive starts: every record logged from there to [`Report::coverage_to`] is in
    /// an object, or in a declared gap.
    pub coverage_from: Option<DateTime<Utc>>,
    /// The archive's position (the end of its coverage).
    pub coverage_to: Option<DateTime<Utc>>,
    /// The declared gaps.
    pub gaps: Vec<Gap>,
    /// Whether every digest is signed.
    pub signed: bool,
    /// The SHA-256 of the newest digest.
    pub head: Option<String>,
    /// Every file checked.
    pub files: Vec<Checked>,
    /// The comparison with Lago, when [`against_lago`] ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against_lago: Option<LagoDiff>,
    /// The objects the chain commits, oldest first (for [`against_lago`]).
    #[serde(skip)]
    entries: Vec<ObjectEntry>,
    /// The newest export checkpoint the chain holds: the query the archive was written from.
    #[serde(skip)]
    export: Option<lago_audit_client::Checkpoint>,
}

impl Report {
    /// No problem found.
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, code: &'static str, path: impl Into<String>, detail: impl Into<String>) {
        self.problems.push(Problem {
            code,
            path: path.into(),
            detail: detail.into(),
        });
    }
}

fn at(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "the beginning".to_owned(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// Verifies `kind`'s folder of `dest`. Returns `Ok(None)` when the folder holds no archive (no
/// chain, no object); an error only when the store cannot be read.
pub async fn verify(
    dest: &Destination,
    kind: LogKind,
    options: &VerifyOptions,
) -> Result<Option<Report>, SinkError> {
    let kind_dir = dest.path(kind.dir());
    let kind_prefix = format!("{kind_dir}/");
    let mut report = Report {
        location: format!("{}/{}", dest.url().trim_end_matches('/'), kind.dir()),
        ..Report::default()
    };
    // One listing: data objects, chain records, digests.
    let (mut data, mut records, mut digests) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let chain_dir = format!("{STATE_DIR}/{CHAIN_DIR}/");
    let digest_dir = format!("{STATE_DIR}/{DIGEST_DIR}/");
    let mut listing = dest.store.list(Some(&kind_dir));
    while let Some(meta) = listing
        .try_next()
        .await
        .map_err(|e| chain::store_err("list", &kind_dir, e))?
    {
        let Some(rel) = meta.location.as_ref().strip_prefix(&kind_prefix) else {
            continue;
        };
        if let Some(name) = rel.strip_prefix(&chain_dir) {
            records.extend(chain::parse_record_name(name));
        } else if let Some(name) = rel.strip_prefix(&digest_dir) {
            digests.extend(chain::parse_record_name(name));
        } else if !rel.split('/').any(|p| p.starts_with(['.', '_'])) && rel.ends_with(".ndjson.gz")
        {
            data.insert(rel.to_owned());
        }
    }
    if records.is_empty() && data.is_empty() {
        return Ok(None);
    }

    // The chain, in order.
    let newest = records.last().copied().unwrap_or(0);
    report.chain_records = records.len() as u64;
    let mut hashes: BTreeMap<u64, String> = BTreeMap::new();
    let mut committed: BTreeMap<String, ObjectEntry> = BTreeMap::new();
    let mut abandoned: BTreeSet<String> = BTreeSet::new();
    let mut prev: Option<(ChainRecord, String)> = None;
    let mut start: Option<Option<DateTime<Utc>>> = None;
    let mut fetched = futures::stream::iter(1..=newest)
        .map(|seq| async move {
            let path = chain::record_path(dest, kind, seq);
            (seq, chain::get_opt(dest, &path).await)
        })
        .buffered(16);
    while let Some((seq, bytes)) = fetched.next().await {
        let rel = chain::record_name(seq);
        let Some(bytes) = bytes? else {
            report.problem(
                "chain-missing",
                &rel,
                "a record of the checkpoint chain is missing: what it committed cannot be known",
            );
            report.files.push(Checked {
                path: rel,
                valid: false,
            });
            prev = None;
            continue;
        };
        let sha = chain::sha256_hex(&bytes);
        hashes.insert(seq, sha.clone());
        let record = match serde_json::from_slice::<ChainRecord>(&bytes) {
            Ok(r) if r.seq == seq && r.kind == kind.dir() => r,
            Ok(r) => {
                report.problem(
                    "chain-link",
                    &rel,
                    format!("it says it is record {} of {}", r.seq, r.kind),
                );
                report.files.push(Checked {
                    path: rel,
                    valid: false,
                });
                continue;
            }
            Err(e) => {
                report.problem("unreadable", &rel, format!("not a chain record ({e})"));
                report.files.push(Checked {
                    path: rel,
                    valid: false,
                });
                continue;
            }
        };
        let mut valid = true;
        if let Some((p, p_sha)) = &prev {
            if record.prev.as_deref() != Some(p_sha.as_str()) {
                valid = false;
                report.problem(
                    "chain-link",
                    &rel,
                    format!(
                        "its `prev` does not match record {}'s hash: one of them was changed",
                        p.seq
                    ),
                );
            }
            if record.since != p.position {
                valid = false;
                report.problem(
                    "chain-hole",
                    &rel,
                    format!(
                        "it starts at {} but record {} ended at {}: no log files were delivered between them",
                        at(record.since),
                        p.seq,
                        at(p.position)
                    ),
                );
            }
        }
        // Where the archive starts: its `start` record, or the first object's first second.
        if start.is_none() {
            let first = record
                .since
                .or_else(|| record.objects.first().map(|o| o.first))
                .or(record.position);
            if first.is_some() {
                start = Some(first);
            }
        }
        match record.event {
            ChainEvent::Abandon => {
                for name in &record.abandoned {
                    if committed.remove(name).is_some() {
                        abandoned.insert(name.clone());
                    }
                }
            }
            _ => {
                for o in &record.objects {
                    committed.insert(o.name.clone(), o.clone());
                }
            }
        }
        if let Some(gap) = &record.gap {
            report.gaps.push(gap.clone());
        }
        if record.export.is_some() {
            report.export.clone_from(&record.export);
        }
        report.files.push(Checked { path: rel, valid });
        prev = Some((record, sha));
    }
    let head_position = prev.as_ref().and_then(|(r, _)| r.position);
    // The objects of the newest record, if it is a commit: their upload may be in flight, or
    // was cut short with the writer (killed, or its credentials refused).
    let pending: BTreeSet<String> = prev
        .as_ref()
        .filter(|(r, _)| r.event == ChainEvent::Commit)
        .map(|(r, _)| r.objects.iter().map(|o| o.name.clone()).collect())
        .unwrap_or_default();
    report.coverage_from = start.flatten();
    report.coverage_to = head_position;

    // The digests.
    let newest_digest = digests.last().copied().unwrap_or(0);
    report.digests = newest_digest;
    let mut previous: Option<Digest> = None;
    let mut signed = newest_digest > 0;
    let mut covered_to = 0u64;
    for seq in 1..=newest_digest {
        let path = digest::digest_path(dest, kind, seq);
        let rel = format!("{STATE_DIR}/{DIGEST_DIR}/{seq:020}.json");
        let Some(bytes) = chain::get_opt(dest, &path).await? else {
            let next_from =
                match chain::get_opt(dest, &digest::digest_path(dest, kind, seq + 1)).await? {
                    Some(b) => Digest::parse(&b).ok().map(|d| d.payload.chain_from),
                    None => None,
                };
            let (from, to) = (
                covered_to + 1,
                next_from.map_or(newest, |n| n.saturating_sub(1)),
            );
            report.problem(
                "digest-missing",
                &rel,
                format!(
                    "the digest is missing: chain records {from}..{to} are not covered by a digest"
                ),
            );
            report.files.push(Checked {
                path: rel,
                valid: false,
            });
            signed = false;
            previous = None;
            covered_to = to;
            continue;
        };
        let d = match Digest::parse(&bytes) {
            Ok(d) => d,
            Err(e) => {
                report.problem("unreadable", &rel, format!("not a digest ({e})"));
                report.files.push(Checked {
                    path: rel,
                    valid: false,
                });
                previous = None;
                continue;
            }
        };
        let mut valid = true;
        match (&d.signature, &options.public_key) {
            (None, _) => signed = false,
            (Some(_), Some(pinned)) => {
                if !d.signed_by(pinned) {
                    valid = false;
                    report.problem(
                        "digest-signature",
                        &rel,
                        format!(
                            "INVALID signature: not signed by the pinned key (it names key {})",
                            d.payload
                                .public_key_fingerprint
                                .as_deref()
                                .unwrap_or("none")
                        ),
                    );
                }
            }
            (Some(_), None) => {
                let named = d.named_key().unwrap_or_default();
                if !d.signed_by(&named) {
                    valid = false;
                    report.problem(
                        "digest-signature",
                        &rel,
                        "INVALID signature for the key it names",
                    );
                }
                let first_key = previous
                    .as_ref()
                    .and_then(|p| p.payload.public_key_fingerprint.clone());
                if first_key.is_some() && first_key != d.payload.public_key_fingerprint {
                    valid = false;
                    report.problem(
                        "digest-signature",
                        &rel,
                        "signed by another key than the digest before it",
                    );
                }
            }
        }
        match (&previous, &d.payload.previous) {
            (Some(p), Some(link)) => {
                if link.sha256 != p.sha256 || link.signature != p.signature || link.seq + 1 != seq {
                    valid = false;
                    report.problem(
                        "digest-link",
                        &rel,
                        format!("it does not name digest {} as it is stored", seq - 1),
                    );
                }
            }
            (None, None) if seq == 1 => {}
            (None, _) if seq > 1 => {} // the previous one is missing or unreadable: said above
            _ => {
                valid = false;
                report.problem(
                    "digest-link",
                    &rel,
                    "its link to the previous digest is wrong",
                );
            }
        }
        if d.payload.chain_from != covered_to + 1 {
            valid = false;
            report.problem(
                "digest-link",
                &rel,
                format!(
                    "it starts at chain record {} where {} was expected",
                    d.payload.chain_from,
                    covered_to + 1
                ),
            );
        }
        for r in &d.payload.records {
            match hashes.get(&r.seq) {
                Some(h) if *h == r.sha256 => {}
                Some(_) => {
                    valid = false;
                    report.problem(
                        "digest-record",
                        chain::record_name(r.seq),
                        format!("INVALID: the record was changed after digest {seq} signed it"),
                    );
                }
                None => {
                    valid = false;
                    report.problem(
                        "digest-record",
                        chain::record_name(r.seq),
                        format!("not found, though digest {seq} commits it"),
                    );
                }
            }
        }
        covered_to = d.payload.chain_to;
        report.digests_valid += u64::from(valid);
        report.files.push(Checked { path: rel, valid });
        previous = Some(d);
    }
    report.head = previous.as_ref().map(|d| d.sha256.clone());
    report.signed = signed;
    if covered_to < newest {
        report.warnings.push(format!(
            "chain records {}..{newest} are not yet in a digest (a run that is still going, or was killed): they are hash-linked, not signed",
            covered_to + 1
        ));
    }
    if newest_digest == 0 {
        report
            .warnings
            .push("no digest: the archive was written by a version without digests".to_owned());
    } else if !signed {
        let text = "unsigned: the digests prove the archive whole against accident, not against someone who can rewrite the bucket";
        if options.require_signature {
            report.problem("unsigned", "", text);
        } else {
            report.warnings.push(text.to_owned());
        }
    }
    if let Some(expected) = &options.expect_head {
        if report.head.as_deref() != Some(expected.as_str()) {
            let found = report.head.clone().unwrap_or_else(|| "none".to_owned());
            report.problem(
                "head-mismatch",
                "",
                format!(
                    "the newest digest is {found}, not the pinned {expected}: digests were dropped (a rollback) or the pin is stale"
                ),
            );
        }
    }

    // The objects: committed ones read and checked, side by side; listed ones accounted for.
    report.objects = committed.len() as u64;
    report.entries = committed.values().cloned().collect();
    report.entries.sort_by_key(|e| (e.first, e.last));
    let concurrency = options.concurrency.max(1);
    let checks = futures::stream::iter(committed.values().cloned())
        .map(|entry| async move {
            let path = crate::layout::object_path(dest, kind, &entry.name);
            let Some(body) = open_object(dest, &path).await? else {
                return Ok::<_, SinkError>((entry, None));
            };
            // Decoding is the CPU's work: off the runtime's threads, objects side by side.
            let checked = tokio::task::spawn_blocking({
                let entry = entry.clone();
                move || check_object(&entry, body)
            })
            .await
            .map_err(|e| SinkError::Encode(format!("checking an object: {e}")))?;
            Ok((entry, Some(checked)))
        })
        .buffer_unordered(concurrency);
    futures::pin_mut!(checks);
    let mut results = Vec::new();
    while let Some(r) = checks.next().await {
        results.push(r?);
    }
    results.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    for (entry, outcome) in results {
        match outcome {
            None => {
                report.problem(
                    "object-missing",
                    &entry.name,
                    if pending.contains(&entry.name) {
                        "not found: the chain's newest record commits it, so its upload is under way or was cut short (a writer killed, or refused by the store); the next run sets it back and writes its records again"
                    } else {
                        "not found, though the chain commits it"
                    },
                );
                report.files.push(Checked {
                    path: entry.name,
                    valid: false,
                });
            }
            Some(Ok(records)) => {
                report.objects_valid += 1;
                report.records += records;
                report.files.push(Checked {
                    path: entry.name,
                    valid: true,
                });
            }
            Some(Err(problems)) => {
                for (code, detail) in problems {
                    report.problem(code, &entry.name, detail);
                }
                report.files.push(Checked {
                    path: entry.name,
                    valid: false,
                });
            }
        }
    }
    for name in &data {
        if committed.contains_key(name) {
            continue;
        }
        let detail = if abandoned.contains(name) {
            "an object whose commit was set back (its writer stalled past its lease): its records were written again in another object"
        } else if parse_object_name(name).is_some() {
            "extra: no record of the chain commits it, so it duplicates data a reader would read twice"
        } else {
            "extra: a file readers would read, which this archive did not write"
        };
        report.problem("object-extra", name, detail);
        report.files.push(Checked {
            path: name.clone(),
            valid: false,
        });
    }
    Ok(Some(report))
}

/// An object as a blocking reader of its bytes as they arrive (for `spawn_blocking`): never
/// more than a chunk of it in memory. `None` when it does not exist.
async fn open_object(
    dest: &Destination,
    path: &object_store::path::Path,
) -> Result<Option<impl std::io::Read + Send + 'static>, SinkError> {
    let got = match object_store::ObjectStoreExt::get(&dest.store, path).await {
        Ok(got) => got,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(chain::store_err("get", path, e)),
    };
    let chunks = got.into_stream().map_err(std::io::Error::other);
    Ok(Some(tokio_util::io::SyncIoBridge::new(
        tokio_util::io::StreamReader::new(chunks),
    )))
}

/// Checks one object against its chain entry (its content, and the records its writer took
/// against those it wrote): the record count, or the problems. A store error while reading is
/// said as an unreadable object.
fn check_object(
    entry: &ObjectEntry,
    body: impl std::io::Read,
) -> Result<u64, Vec<(&'static str, String)>> {
    // The chain's own count of records taken against those written, whatever the format.
    let lost = entry.received.filter(|r| *r != entry.records).map(|received| {
        (
            "object-lost",
            format!(
                "the writer took {received} records from the export for it and wrote {}: {} lost before they were written",
                entry.records,
                received.abs_diff(entry.records)
            ),
        )
    });
    match (check_content(entry, body), lost) {
        (Ok(count), None) => Ok(count),
        (Ok(_), Some(lost)) => Err(vec![lost]),
        (Err(mut problems), Some(lost)) => {
            problems.insert(0, lost);
            Err(problems)
        }
        (Err(problems), None) => Err(problems),
    }
}

/// Checks an object's content (NDJSON, or a Security Lake Parquet object) against its entry.
fn check_content(
    entry: &ObjectEntry,
    body: impl std::io::Read,
) -> Result<u64, Vec<(&'static str, String)>> {
    // Security Lake's Parquet objects (`ext/…`), read whole (Parquet's footer is at its end):
    // see `crate::lake::check`.
    if crate::layout::is_lake_object(&entry.name) {
        #[cfg(feature = "security-lake")]
        {
            let mut body = body;
            let mut bytes = Vec::new();
            if let Err(e) = std::io::Read::read_to_end(&mut body, &mut bytes) {
                return Err(vec![(
                    "unreadable",
                    format!("the store failed while it was read ({e}): run verify again"),
                )]);
            }
            return crate::lake::check(entry, &bytes);
        }
        #[cfg(not(feature = "security-lake"))]
        return Err(vec![("unreadable", crate::batch::NO_LAKE.to_owned())]);
    }
    let mut decoder = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(body));
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let (mut count, mut outside, mut partition) = (0u64, 0u64, 0u64);
    let day = entry
        .name
        .split('/')
        .next()
        .and_then(|d| d.strip_prefix("dt="))
        .unwrap_or_default()
        .to_owned();
    let mut line = Vec::new();
    loop {
        line.clear();
        match decoder.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            // The store failing mid-read (its errors come through as `Other`) is not tampering.
            Err(e) if e.kind() == std::io::ErrorKind::Other => {
                return Err(vec![(
                    "unreadable",
                    format!("the store failed while it was read ({e}): run verify again"),
                )])
            }
            Err(e) => {
                return Err(vec![(
                    "object-hash",
                    format!("INVALID: not a whole gzip object ({e})"),
                )])
            }
        }
        sha.update(&line);
        count += 1;
        if let Some(t) = logged_at(&line) {
            if t < entry.first || t >= entry.last + chrono::Duration::seconds(1) {
                outside += 1;
            }
            if t.format("%Y-%m-%d").to_string() != day {
                partition += 1;
            }
        }
    }
    let got = chain::hex(sha.finish().as_ref());
    let mut problems = Vec::new();
    if got != entry.sha256 {
        problems.push((
            "object-hash",
            format!(
                "INVALID hash: the chain says {}, the object holds {got}",
                entry.sha256
            ),
        ));
    }
    if count != entry.records {
        problems.push((
            "object-count",
            format!("{count} records, the chain says {}", entry.records),
        ));
    }
    if partition > 0 {
        problems.push((
            "object-partition",
            format!("{partition} records are not of its dt= partition"),
        ));
    }
    if outside > 0 {
        problems.push((
            "object-seconds",
            format!("{outside} records lie outside its seconds"),
        ));
    }
    if problems.is_empty() {
        Ok(count)
    } else {
        Err(problems)
    }
}

/// The fields that carry a line's time, and nothing else (the rest of the line is skipped).
#[derive(serde::Deserialize)]
struct Times<'a> {
    #[serde(borrow, default)]
    logged_at: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default, rename = "@timestamp")]
    timestamp: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    time: Option<i64>,
}

/// A line's time: Lago's `logged_at`, OCSF's `time` (ms), ECS's `@timestamp`.
fn logged_at(line: &[u8]) -> Option<DateTime<Utc>> {
    let t: Times = serde_json::from_slice(line).ok()?;
    if let Some(s) = t.logged_at.or(t.timestamp) {
        return s.parse::<DateTime<Utc>>().ok();
    }
    t.time.and_then(DateTime::from_timestamp_millis)
}

/// What [`against_lago`] found: the archive compared with what Lago returns today.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LagoDiff {
    /// The span compared (from its first second, up to but not including `to`): the part of
    /// the archive's coverage still inside Lago's retention and older than the settle margin.
    pub from: Option<DateTime<Utc>>,
    /// The end of the span compared (exclusive).
    pub to: Option<DateTime<Utc>>,
    /// Records Lago returned for the span.
    pub lago_records: u64,
    /// Records the archive holds for the span.
    pub archive_records: u64,
    /// Records found on both sides.
    pub matched: u64,
    /// Records Lago has and the archive lacks, in a second the archive read before Lago made
    /// them readable (fact 14: Lago writes logs through a queue): late arrivals, explained,
    /// not problems. The remedy is a longer settle margin.
    pub late: Vec<Named>,
    /// Records Lago has inside a gap the archive declared: explained, not problems.
    pub in_gaps: u64,
    /// Second copies of a record Lago returned (fact 17), dropped by the export: explained,
    /// not problems. Set by the caller from its export's progress.
    pub lago_duplicates: u64,
}

/// One record named by [`against_lago`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Named {
    /// Its event id ([`crate::SinkRecord::event_id`]).
    pub id: String,
    /// Its second.
    pub logged_at: DateTime<Utc>,
}

/// The span [`against_lago`] can compare, or `None`: the part of the archive's coverage
/// (`report.coverage_from..coverage_to`) that is still inside Lago's retention for `kind` (with
/// an hour to spare, so that records leaving it while the comparison runs are not taken for
/// missing ones) and older than `now - settle`.
pub fn lago_window(
    report: &Report,
    kind: LogKind,
    now: DateTime<Utc>,
    settle: std::time::Duration,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let retention = chrono::Duration::from_std(kind.retention()).ok()?;
    let settle = chrono::Duration::from_std(settle).ok()?;
    let oldest = now - retention + chrono::Duration::hours(1);
    let from = report.coverage_from.map_or(oldest, |f| f.max(oldest));
    let to = report.coverage_to?.min(now - settle);
    let (from, to) = (whole(from, true), whole(to, false));
    if from >= to {
        return None;
    }
    Some((crate::layout::second(from)?, crate::layout::second(to)?))
}

/// A time as whole seconds, rounded up or down.
fn whole(t: DateTime<Utc>, up: bool) -> i64 {
    t.timestamp() + i64::from(up && t.timestamp_subsec_nanos() > 0)
}

/// Compares the archive of a [`verify`]ed `report` with Lago, record by record, over `window`
/// (see [`lago_window`]); `lago` is an exactly-once export of that window (oldest first, as
/// [`lago_audit_client::Export`] yields it) with the filters the archive was written with: a
/// checkpoint of another query is refused, as its records differ. Adds a problem to the report for each record:
///
/// - `lago-missing`: Lago has it, and the writer took it from the export but never wrote it
///   (the chain's count of records taken for the object covering its second says so);
/// - `lago-removed`: Lago has it, and the object covering its second was changed or deleted
///   after it was written (its hash, count or existence does not match the chain);
/// - `lago-unknown`: the archive holds it and Lago does not return it: added to the archive,
///   or gone from Lago;
/// - `archive-duplicate`: the archive holds it twice.
///
/// A record Lago has and the archive lacks with none of these explanations was not returned
/// when the archive read its second: a late arrival ([`LagoDiff::late`]). Records inside a
/// declared gap are counted, not flagged. Both sides are read as streams in time order,
/// second by second: memory holds an object's ids and the seconds in between, not the span.
pub async fn against_lago<T, S>(
    dest: &Destination,
    kind: LogKind,
    report: &mut Report,
    window: (DateTime<Utc>, DateTime<Utc>),
    lago: S,
    concurrency: usize,
) -> Result<LagoDiff, SinkError>
where
    T: crate::SinkRecord,
    S: futures::Stream<Item = Result<lago_audit_client::ExportEvent<T>, lago_audit_client::Error>>,
{
    let (from, to) = (window.0.timestamp(), window.1.timestamp());
    let mut diff = LagoDiff {
        from: Some(window.0),
        to: Some(window.1),
        ..LagoDiff::default()
    };
    let altered: BTreeSet<String> = report
        .problems
        .iter()
        .filter(|p| {
            matches!(
                p.code,
                "object-hash" | "object-count" | "object-missing" | "object-seconds"
            )
        })
        .map(|p| p.path.clone())
        .collect();
    let entries: Vec<ObjectEntry> = report
        .entries
        .iter()
        .filter(|e| e.last.timestamp() >= from && e.first.timestamp() < to)
        .cloned()
        .collect();
    // Records each object's writer lost (taken, never written), still to be named.
    let mut lost: Vec<u64> = entries
        .iter()
        .map(|e| e.received.unwrap_or(e.records).saturating_sub(e.records))
        .collect();
    let gaps: Vec<(i64, i64)> = report
        .gaps
        .iter()
        .map(|g| (g.from.map_or(i64::MIN, |f| f.timestamp()), g.to.timestamp()))
        .collect();

    // The archive's side: each object's (second, id), objects oldest first, a few read ahead.
    let firsts: Vec<i64> = entries.iter().map(|e| e.first.timestamp()).collect();
    let mut objects = futures::stream::iter(entries.clone())
        .map(|entry| async move {
            let path = crate::layout::object_path(dest, kind, &entry.name);
            let Some(body) = open_object(dest, &path).await? else {
                return Ok::<_, SinkError>(Vec::new());
            };
            tokio::task::spawn_blocking(move || ids_of(body))
                .await
                .map_err(|e| SinkError::Encode(format!("reading an object: {e}")))
        })
        .buffered(concurrency.max(1));
    let mut next_object = 0usize;
    let lago = lago.fuse();
    futures::pin_mut!(lago);
    let mut lago_frontier = i64::MIN;
    let mut lago_done = false;
    let mut seconds: BTreeMap<i64, (Vec<String>, Vec<String>)> = BTreeMap::new();
    loop {
        let archive_frontier = firsts.get(next_object).copied().unwrap_or(i64::MAX);
        let archive_done = next_object >= entries.len();
        if archive_done && lago_done {
            break;
        }
        if !archive_done && (lago_done || archive_frontier <= lago_frontier) {
            let ids = objects.next().await.transpose()?.unwrap_or_default();
            next_object += 1;
            for (s, id) in ids {
                if (from..to).contains(&s) {
                    seconds.entry(s).or_default().0.push(id);
                }
            }
        } else {
            match lago.next().await {
                Some(event) => {
                    let record = match event? {
                        lago_audit_client::ExportEvent::Record(r) => r,
                        lago_audit_client::ExportEvent::Checkpoint(c) => {
                            if report.export.as_ref().is_some_and(|a| !a.same_query(&c)) {
                                return Err(SinkError::Checkpoint {
                                    path: report.location.clone(),
                                    reason: "the archive was written from a query with filters; the comparison with Lago reads the whole trail, so it would take every record the filters left out for a missing one".into(),
                                });
                            }
                            continue;
                        }
                    };
                    let s = record.logged_at().timestamp();
                    lago_frontier = lago_frontier.max(s);
                    if (from..to).contains(&s) {
                        seconds.entry(s).or_default().1.push(record.event_id());
                    }
                }
                None => {
                    lago_done = true;
                    lago_frontier = i64::MAX;
                }
            }
        }
        // Every second before both frontiers is whole on both sides.
        let frontier = firsts
            .get(next_object)
            .copied()
            .unwrap_or(i64::MAX)
            .min(lago_frontier);
        while let Some(entry) = seconds.first_entry() {
            if *entry.key() >= frontier {
                break;
            }
            let (s, (archive, lago_ids)) = entry.remove_entry();
            compare_second(
                s, archive, lago_ids, &entries, &mut lost, &altered, &gaps, report, &mut diff,
            );
        }
    }
    report.against_lago = Some(diff.clone());
    Ok(diff)
}

/// The (second, event id) of each line of an object; lines without either are skipped (the
/// object checks of [`verify`] report them).
fn ids_of(body: impl std::io::Read) -> Vec<(i64, String)> {
    #[cfg_attr(not(feature = "security-lake"), allow(unused_mut))]
    let mut body = std::io::BufReader::new(body);
    // A Security Lake object (Parquet, `PAR1` first), read whole: its footer is at its end.
    #[cfg(feature = "security-lake")]
    if body.fill_buf().is_ok_and(|b| b.starts_with(b"PAR1")) {
        let mut bytes = Vec::new();
        return match std::io::Read::read_to_end(&mut body, &mut bytes) {
            Ok(_) => crate::lake::ids(&bytes),
            Err(_) => Vec::new(),
        };
    }
    let decoder = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(body));
    decoder
        .split(b'\n')
        .map_while(Result::ok)
        .filter_map(|line| Some((logged_at(&line)?.timestamp(), crate::line_event_id(&line)?)))
        .collect()
}

/// Compares one second's ids on both sides and says what differs.
#[allow(clippy::too_many_arguments)]
fn compare_second(
    s: i64,
    archive: Vec<String>,
    lago: Vec<String>,
    entries: &[ObjectEntry],
    lost: &mut [u64],
    altered: &BTreeSet<String>,
    gaps: &[(i64, i64)],
    report: &mut Report,
    diff: &mut LagoDiff,
) {
    let when = crate::layout::second(s).unwrap_or_default();
    let shown = when.format("%Y-%m-%dT%H:%M:%SZ");
    diff.archive_records += archive.len() as u64;
    let lago: BTreeSet<String> = lago.into_iter().collect();
    diff.lago_records += lago.len() as u64;
    let mut held = BTreeSet::new();
    // The object whose seconds hold `s`, if any (objects do not overlap).
    let covering = entries
        .partition_point(|e| e.first.timestamp() <= s)
        .checked_sub(1)
        .filter(|i| entries[*i].last.timestamp() >= s);
    for id in archive {
        let object = covering.map_or("", |i| entries[i].name.as_str());
        if !held.insert(id.clone()) {
            report.problem(
                "archive-duplicate",
                object,
                format!("record {id} ({shown}) is in the archive twice"),
            );
        } else if !lago.contains(&id) {
            report.problem(
                "lago-unknown",
                object,
                format!(
                    "record {id} ({shown}) is in the archive but Lago does not return it: added to the archive, or gone from Lago"
                ),
            );
        }
    }
    for id in lago {
        if held.contains(&id) {
            diff.matched += 1;
            continue;
        }
        if gaps.iter().any(|(f, t)| (*f..*t).contains(&s)) {
            diff.in_gaps += 1;
            continue;
        }
        match covering {
            Some(i) if altered.contains(&entries[i].name) => report.problem(
                "lago-removed",
                &entries[i].name,
                format!(
                    "record {id} ({shown}): Lago has it, and the object that held its second was changed after it was written"
                ),
            ),
            Some(i) if lost[i] > 0 => {
                lost[i] -= 1;
                report.problem(
                    "lago-missing",
                    &entries[i].name,
                    format!(
                        "record {id} ({shown}): Lago has it; the writer took it from the export and never wrote it (the chain counts {} taken, {} written)",
                        entries[i].received.unwrap_or_default(),
                        entries[i].records
                    ),
                );
            }
            _ => diff.late.push(Named {
                id,
                logged_at: when,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lines_time_in_each_format() {
        let want: DateTime<Utc> = "2025-03-01T00:00:01Z".parse().unwrap();
        let lago = br#"{"activity_id":"a","logged_at":"2025-03-01T00:00:01Z","activity_object":{"time":5}}"#;
        let ocsf = br#"{"class_uid":3004,"time":1740787201000,"metadata":{"logged_time":1}}"#;
        let ecs = br#"{"@timestamp":"2025-03-01T00:00:01.000Z","event":{"created":"x"}}"#;
        for line in [&lago[..], &ocsf[..], &ecs[..]] {
            assert_eq!(
                logged_at(line),
                Some(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(logged_at(b"{\"other\":1}"), None);
        assert_eq!(logged_at(b"not json"), None);
    }
}
