//! Cutting the stream of records into objects, deterministically.
//!
//! A batch holds whole seconds only, and a second is only added once a checkpoint has confirmed
//! it complete (every record of it was yielded). Within a second, records are sorted by their
//! stable key ([`RecordKey`](lago_audit_client::pagination::RecordKey)), because Lago returns ties
//! in a new order on every query. A batch is cut before a second when adding it would pass
//! [`BatchLimits::max_records`] or [`BatchLimits::max_bytes`] (uncompressed), at each UTC midnight
//! (so `dt=` holds that day's records only), and at each multiple of
//! [`BatchLimits::max_span`] when one is set. Every rule looks at the records alone, so a run
//! resumed from the same checkpoint cuts the same batches, with the same bytes. A single second
//! holding more than the limits forms a batch of its own.
//!
//! A batch is sealed as soon as no later second could join it (it is full, or a checkpoint has
//! passed its midnight or span boundary), so a quiet `follow` still delivers within
//! `max_span + settle + poll interval`. The last batch of a run that ends is sealed where the
//! run's window ends.
//!
//! With [`Layout::SecurityLake`] the same batches are cut (the bytes limit counts the events'
//! compact JSON), except that the span is at least 5 minutes and at most a day (Security Lake
//! wants objects 5 minutes to a day apart) and the bytes at most 256 MiB (its row group limit);
//! a sealed batch then becomes one Parquet object per OCSF class of its events
//! ([`crate::layout::Lake`]), all committed by one chain record.

use crate::format::{canonical, document, line, Format, SinkRecord};
use crate::layout::{object_name, Layout};
use crate::SinkError;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// How large a batch (one object) may grow. The default (100,000 records, 32 MiB of JSON before
/// compression, no time bound) gives objects of a few MiB once gzipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    max_records: u64,
    max_bytes: u64,
    max_span: Option<Duration>,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_records: 100_000,
            max_bytes: 32 << 20,
            max_span: None,
        }
    }
}

impl BatchLimits {
    /// The defaults for a long-running `follow`/`tail`: as [`Default`], plus a batch never spans
    /// more than one aligned minute of `logged_at`, so records reach the store about a minute
    /// (plus the export's settle margin) after they are logged.
    pub fn for_follow() -> Self {
        Self::default().max_span(Some(Duration::from_secs(60)))
    }
    /// At most `n` records a batch (at least 1), unless one second holds more.
    pub fn max_records(mut self, n: u64) -> Self {
        self.max_records = n.max(1);
        self
    }
    /// At most `n` bytes of uncompressed NDJSON a batch (at least 1), unless one second holds
    /// more.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n.max(1);
        self
    }
    /// Batches never cross a multiple of `span` (whole seconds, at least 1, counted from the
    /// unix epoch, so with a divisor of a day they align with the clock) in `logged_at`.
    /// `None`: only midnight and the size limits cut.
    pub fn max_span(mut self, span: Option<Duration>) -> Self {
        self.max_span = span.map(|d| Duration::from_secs(d.as_secs().max(1)));
        self
    }
    /// The record limit.
    pub fn records(&self) -> u64 {
        self.max_records
    }
    /// The byte limit (uncompressed).
    pub fn bytes(&self) -> u64 {
        self.max_bytes
    }
    /// The time limit.
    pub fn span(&self) -> Option<Duration> {
        self.max_span
    }

    /// The limits as `layout` needs them: for Security Lake, a span of 5 minutes to a day and
    /// at most 256 MiB a batch.
    pub fn for_layout(self, layout: &Layout) -> Self {
        match layout {
            Layout::Hive => self,
            Layout::SecurityLake(_) => {
                let span = self
                    .max_span
                    .map(|s| s.clamp(LAKE_MIN_SPAN, Duration::from_secs(86_400)));
                let bytes = self.max_bytes.min(LAKE_MAX_BYTES);
                self.max_span(span).max_bytes(bytes)
            }
        }
    }

    /// The first second a batch starting at `first` may not include.
    fn boundary(&self, first: i64) -> i64 {
        let day = first.div_euclid(86_400) * 86_400 + 86_400;
        match self.max_span {
            Some(span) => {
                let span = i64::try_from(span.as_secs()).unwrap_or(i64::MAX).max(1);
                day.min(
                    first
                        .div_euclid(span)
                        .saturating_mul(span)
                        .saturating_add(span),
                )
            }
            None => day,
        }
    }
}

/// The shortest span of a Security Lake object (its objects are 5 minutes to a day apart).
pub const LAKE_MIN_SPAN: Duration = Duration::from_secs(300);
/// The most bytes (events' JSON) of a Security Lake object: its row group limit.
pub const LAKE_MAX_BYTES: u64 = 256 << 20;

/// A finished batch: the objects of one commit (one for gzip NDJSON; one per OCSF class for
/// Security Lake).
#[derive(Debug)]
pub(crate) struct Sealed {
    /// Its objects, in name order.
    pub parts: Vec<Part>,
    /// Records in them all.
    pub records: u64,
    /// Once these objects are stored, every record logged before this second is stored.
    pub cut: i64,
}

/// One object of a sealed batch.
#[derive(Debug)]
pub(crate) struct Part {
    /// Its name (see [`crate::layout`]).
    pub name: String,
    /// First and last second of its records.
    pub first: i64,
    pub last: i64,
    pub records: u64,
    /// The records taken from the export for it (`records` plus any the writer lost).
    pub received: u64,
    /// The object's bytes.
    pub body: Bytes,
    /// The SHA-256 the chain records: of the uncompressed lines (gzip NDJSON) or of the bytes
    /// (Parquet), lowercase hex.
    pub sha256: String,
}

enum Body {
    /// Boxed: the encoder and the hash are large, the Security Lake variant is not.
    Ndjson {
        gz: Box<GzEncoder<Vec<u8>>>,
        sha: Box<ring::digest::Context>,
    },
    /// OCSF 1.3 events with their seconds, encoded when the batch is sealed, and the records
    /// lost by a deliberately broken writer, by class.
    Lake {
        events: Vec<(i64, serde_json::Value)>,
        lost: BTreeMap<u64, u64>,
    },
}

struct Open {
    first: i64,
    last: i64,
    records: u64,
    received: u64,
    bytes: u64,
    body: Body,
}

/// The deterministic batcher (no I/O).
pub(crate) struct Batcher<T> {
    format: Format,
    layout: Layout,
    limits: BatchLimits,
    /// Records logged before this second are stored already: dropped.
    position: Option<i64>,
    /// Every second before this one is complete.
    confirmed: Option<i64>,
    /// Records of seconds not yet confirmed, in arrival order.
    pending: Vec<T>,
    open: Option<Open>,
    /// A deliberately broken writer, for tests of `verify`: the record with this event id is
    /// taken and never written.
    lose: Option<String>,
}

/// The first second not covered by a checkpoint at `at`: every second before it is complete.
pub(crate) fn complete_before(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

impl<T: SinkRecord> Batcher<T> {
    pub fn new(format: Format, layout: Layout, limits: BatchLimits, position: Option<i64>) -> Self {
        Self {
            format,
            limits: limits.for_layout(&layout),
            layout,
            position,
            confirmed: None,
            pending: Vec::new(),
            open: None,
            lose: None,
        }
    }

    /// Breaks this writer on purpose: the record whose event id is `event_id` is never written.
    pub fn lose(mut self, event_id: Option<String>) -> Self {
        self.lose = event_id;
        self
    }

    /// Whether a batch is being filled (records taken but not yet sealed).
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Records held in memory (unconfirmed plus the open batch).
    pub fn held(&self) -> u64 {
        self.pending.len() as u64 + self.open.as_ref().map_or(0, |o| o.records)
    }

    pub fn record(&mut self, record: T) -> Result<(), SinkError> {
        let s = record.logged_at().timestamp();
        if self.position.is_some_and(|p| s < p) {
            return Ok(());
        }
        if let Some(c) = self.confirmed.filter(|c| s < *c) {
            return Err(SinkError::OutOfOrder(format!(
                "a record logged at {} arrived after a checkpoint at {}",
                record.logged_at(),
                crate::layout::second(c).unwrap_or_default()
            )));
        }
        self.pending.push(record);
        Ok(())
    }

    /// Every second before `complete` is complete: add them to batches. Returns the batches
    /// sealed on the way.
    pub fn checkpoint(&mut self, complete: i64) -> Result<Vec<Sealed>, SinkError> {
        if self.confirmed.is_some_and(|c| complete <= c) {
            return Ok(Vec::new());
        }
        self.confirmed = Some(complete);
        let mut ready: Vec<T> = Vec::new();
        let mut rest = Vec::new();
        for r in self.pending.drain(..) {
            if r.logged_at().timestamp() < complete {
                ready.push(r);
            } else {
                rest.push(r);
            }
        }
        self.pending = rest;
        ready.sort_by_cached_key(|r| (r.logged_at().timestamp(), r.record_key()));
        let mut sealed = Vec::new();
        let mut i = 0;
        while i < ready.len() {
            let s = ready[i].logged_at().timestamp();
            let (mut lines, mut bytes, mut received) = (Vec::new(), 0u64, 0u64);
            let mut lost_classes = Vec::new();
            while i < ready.len() && ready[i].logged_at().timestamp() == s {
                received += 1;
                let l = match self.layout {
                    Layout::Hive => Line::Ndjson(line(&ready[i], self.format)?),
                    Layout::SecurityLake(_) => {
                        Line::Event(crate::ocsf::to_1_3(document(&ready[i], self.format)?))
                    }
                };
                let lost = self
                    .lose
                    .as_ref()
                    .is_some_and(|id| *id == ready[i].event_id());
                if lost {
                    if let Line::Event(e) = &l {
                        lost_classes.push(class_of(e)?);
                    }
                } else {
                    bytes += l.len();
                    lines.push(l);
                }
                i += 1;
            }
            sealed.extend(self.add_second(s, lines, bytes, received, lost_classes)?);
        }
        // Seal early when no later second could join the batch: the result is the same batch
        // the next second would have cut, only sooner.
        if let Some(open) = &self.open {
            let full =
                open.records >= self.limits.max_records || open.bytes >= self.limits.max_bytes;
            if full || complete >= self.limits.boundary(open.first) {
                sealed.extend(self.seal(complete)?);
            }
        }
        Ok(sealed)
    }

    /// The stream ended: seal what is open at the last confirmed second.
    pub fn finish(&mut self) -> Result<Option<Sealed>, SinkError> {
        match self.confirmed {
            Some(c) => self.seal(c),
            None => Ok(None),
        }
    }

    /// The last confirmed second, if any.
    pub fn confirmed(&self) -> Option<i64> {
        self.confirmed
    }

    fn add_second(
        &mut self,
        s: i64,
        lines: Vec<Line>,
        bytes: u64,
        received: u64,
        lost_classes: Vec<u64>,
    ) -> Result<Option<Sealed>, SinkError> {
        let n = lines.len() as u64;
        let mut sealed = None;
        if let Some(open) = &self.open {
            if open.records + n > self.limits.max_records
                || open.bytes + bytes > self.limits.max_bytes
                || s >= self.limits.boundary(open.first)
            {
                sealed = self.seal(s)?;
            }
        }
        let lake = matches!(self.layout, Layout::SecurityLake(_));
        let open = self.open.get_or_insert_with(|| Open {
            first: s,
            last: s,
            records: 0,
            received: 0,
            bytes: 0,
            body: if lake {
                Body::Lake {
                    events: Vec::new(),
                    lost: BTreeMap::new(),
                }
            } else {
                Body::Ndjson {
                    gz: Box::new(GzEncoder::new(Vec::new(), Compression::default())),
                    sha: Box::new(ring::digest::Context::new(&ring::digest::SHA256)),
                }
            },
        });
        for l in lines {
            match (&mut open.body, l) {
                (Body::Ndjson { gz, sha }, Line::Ndjson(l)) => {
                    gz.write_all(&l)
                        .map_err(|e| SinkError::Encode(e.to_string()))?;
                    sha.update(&l);
                }
                (Body::Lake { events, .. }, Line::Event(e)) => events.push((s, e)),
                _ => return Err(SinkError::Encode("a line of another layout".into())),
            }
        }
        if let Body::Lake { lost, .. } = &mut open.body {
            for class in lost_classes {
                *lost.entry(class).or_default() += 1;
            }
        }
        open.last = s;
        open.records += n;
        open.received += received;
        open.bytes += bytes;
        Ok(sealed)
    }

    fn seal(&mut self, cut: i64) -> Result<Option<Sealed>, SinkError> {
        let Some(open) = self.open.take() else {
            return Ok(None);
        };
        let parts = match (open.body, &self.layout) {
            (Body::Ndjson { gz, sha }, _) => {
                let body = gz.finish().map_err(|e| SinkError::Encode(e.to_string()))?;
                vec![Part {
                    name: object_name(open.first, open.last),
                    first: open.first,
                    last: open.last,
                    records: open.records,
                    received: open.received,
                    body: Bytes::from(body),
                    sha256: crate::chain::hex(sha.finish().as_ref()),
                }]
            }
            (Body::Lake { events, lost }, Layout::SecurityLake(lake)) => {
                lake_parts::<T>(lake, events, &lost)?
            }
            (Body::Lake { .. }, Layout::Hive) => {
                return Err(SinkError::Encode("events of another layout".into()))
            }
        };
        Ok(Some(Sealed {
            parts,
            records: open.records,
            cut,
        }))
    }
}

/// A record ready for a batch: an NDJSON line, or an OCSF 1.3 event for Security Lake.
enum Line {
    Ndjson(Vec<u8>),
    Event(serde_json::Value),
}

impl Line {
    /// Its size for the bytes limit: the line, or the event's compact JSON with a newline.
    fn len(&self) -> u64 {
        match self {
            Line::Ndjson(l) => l.len() as u64,
            Line::Event(e) => {
                let mut out = Vec::new();
                canonical(e, &mut out);
                out.len() as u64 + 1
            }
        }
    }
}

fn class_of(event: &serde_json::Value) -> Result<u64, SinkError> {
    event
        .get("class_uid")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| SinkError::Encode("an OCSF event without class_uid".into()))
}

/// One Parquet object per OCSF class of `events` (in time order, as the batch holds them). Each
/// object's `received` adds the records of its class that a deliberately broken writer lost (one
/// of a class with no other record in the batch makes no object, and is not counted).
fn lake_parts<T: SinkRecord>(
    lake: &crate::layout::Lake,
    events: Vec<(i64, serde_json::Value)>,
    lost: &BTreeMap<u64, u64>,
) -> Result<Vec<Part>, SinkError> {
    let mut classes: BTreeMap<u64, Vec<(i64, serde_json::Value)>> = BTreeMap::new();
    for (s, e) in events {
        classes.entry(class_of(&e)?).or_default().push((s, e));
    }
    let mut parts = Vec::new();
    for (class, events) in classes {
        let (first, last) = match (events.first(), events.last()) {
            (Some(a), Some(b)) => (a.0, b.0),
            _ => continue,
        };
        let records = events.len() as u64;
        let events: Vec<_> = events.into_iter().map(|(_, e)| e).collect();
        let body = encode_lake(&events)?;
        parts.push(Part {
            name: lake.object_name(T::KIND, class, first, last),
            first,
            last,
            records,
            received: records + lost.get(&class).copied().unwrap_or(0),
            sha256: crate::chain::sha256_hex(&body),
            body,
        });
    }
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(parts)
}

#[cfg(feature = "security-lake")]
fn encode_lake(events: &[serde_json::Value]) -> Result<Bytes, SinkError> {
    crate::lake::encode(events).map_err(SinkError::Encode)
}

#[cfg(not(feature = "security-lake"))]
fn encode_lake(_: &[serde_json::Value]) -> Result<Bytes, SinkError> {
    Err(SinkError::Encode(NO_LAKE.into()))
}

/// What a build without the `security-lake` feature says when asked for Parquet.
#[cfg_attr(feature = "security-lake", allow(dead_code))]
pub(crate) const NO_LAKE: &str =
    "Security Lake (Parquet) needs lago-audit-sink's `security-lake` feature, which this build \
     does not have";

#[cfg(test)]
mod tests {
    use super::*;
    use lago_audit_client::types::ActivityLogObject;

    fn log(at: i64, n: u32) -> ActivityLogObject {
        let t = crate::layout::second(at).unwrap().to_rfc3339();
        serde_json::from_value(serde_json::json!({
            "activity_id": format!("00000000-0000-4000-8000-{n:012}"),
            "activity_type": "invoice.created",
            "activity_source": "api",
            "resource_id": "00000000-0000-4000-8000-000000000001",
            "resource_type": "Invoice",
            "logged_at": t,
            "created_at": t,
        }))
        .unwrap()
    }

    /// Feeds `(second, records)` groups, a checkpoint after each second, then ends.
    fn cut(limits: BatchLimits, seconds: &[(i64, u32)]) -> Vec<(i64, i64, u64, i64)> {
        let mut b = Batcher::<ActivityLogObject>::new(Format::Lago, Layout::Hive, limits, None);
        let mut out = Vec::new();
        let mut n = 0;
        for &(s, count) in seconds {
            for _ in 0..count {
                n += 1;
                b.record(log(s, n)).unwrap();
            }
            out.extend(b.checkpoint(s + 1).unwrap());
        }
        out.extend(b.finish().unwrap());
        out.iter()
            .map(|s| (s.parts[0].first, s.parts[0].last, s.records, s.cut))
            .collect()
    }

    const DAY: i64 = 1_740_787_200; // 2025-03-01T00:00:00Z

    #[test]
    fn batches_hold_whole_seconds_within_the_record_limit() {
        let seconds: Vec<_> = (0..5).map(|i| (DAY + i, 3)).collect();
        let limits = BatchLimits::default().max_records(7);
        assert_eq!(
            cut(limits, &seconds),
            vec![
                (DAY, DAY + 1, 6, DAY + 2),
                (DAY + 2, DAY + 3, 6, DAY + 4),
                (DAY + 4, DAY + 4, 3, DAY + 5)
            ]
        );
        // A second larger than the limit is a batch of its own.
        assert_eq!(
            cut(limits, &[(DAY, 2), (DAY + 1, 9), (DAY + 2, 1)]),
            vec![
                (DAY, DAY, 2, DAY + 1),
                (DAY + 1, DAY + 1, 9, DAY + 2),
                (DAY + 2, DAY + 2, 1, DAY + 3)
            ]
        );
    }

    #[test]
    fn midnight_and_the_span_cut_and_seal_early() {
        let got = cut(
            BatchLimits::default(),
            &[(DAY - 2, 1), (DAY - 1, 1), (DAY, 1)],
        );
        assert_eq!(
            got,
            vec![(DAY - 2, DAY - 1, 2, DAY), (DAY, DAY, 1, DAY + 1)]
        );
        // With a 60 s span, the batch of the first minute is sealed as soon as a checkpoint
        // passes the minute, before any later record arrives.
        let mut b = Batcher::<ActivityLogObject>::new(
            Format::Lago,
            Layout::Hive,
            BatchLimits::for_follow(),
            None,
        );
        b.record(log(DAY + 10, 1)).unwrap();
        assert!(b.checkpoint(DAY + 59).unwrap().is_empty());
        let sealed = b.checkpoint(DAY + 61).unwrap();
        assert_eq!(sealed.len(), 1);
        assert_eq!(
            (sealed[0].parts[0].first, sealed[0].cut),
            (DAY + 10, DAY + 61)
        );
    }

    #[test]
    fn the_bytes_do_not_depend_on_arrival_order() {
        let body = |order: &[u32]| {
            let mut b = Batcher::<ActivityLogObject>::new(
                Format::Lago,
                Layout::Hive,
                BatchLimits::default(),
                None,
            );
            for n in order {
                b.record(log(DAY, *n)).unwrap();
            }
            b.checkpoint(DAY + 1).unwrap();
            b.finish().unwrap().unwrap().parts.remove(0).body
        };
        assert_eq!(body(&[1, 2, 3, 4]), body(&[3, 1, 4, 2]));
    }

    #[test]
    fn stored_records_are_skipped_and_late_ones_refused() {
        let mut b = Batcher::<ActivityLogObject>::new(
            Format::Lago,
            Layout::Hive,
            BatchLimits::default(),
            Some(DAY + 5),
        );
        b.record(log(DAY + 4, 1)).unwrap(); // before the position: already stored
        b.record(log(DAY + 5, 2)).unwrap();
        b.checkpoint(DAY + 6).unwrap();
        let err = b.record(log(DAY + 5, 3)).unwrap_err();
        assert!(matches!(err, SinkError::OutOfOrder(_)), "{err}");
        let sealed = b.finish().unwrap().unwrap();
        assert_eq!((sealed.parts[0].first, sealed.records), (DAY + 5, 1));
    }
}
