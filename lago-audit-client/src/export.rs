//! Reading a whole audit trail exactly once: [`Export::export`] and [`Export::follow`].
//!
//! ```no_run
//! # async fn run(client: lago_audit_client::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use futures::TryStreamExt;
//! use lago_audit_client::{Export, ExportEvent, ExportOptions};
//!
//! let mut events = client
//!     .find_all_activity_logs()
//!     .activity_types(vec!["invoice.voided".to_owned()])
//!     .from_date("2025-03-01")
//!     .export(ExportOptions::default());
//! while let Some(event) = events.try_next().await? {
//!     match event {
//!         ExportEvent::Record(log) => println!("{} {}", log.logged_at, log.activity_id),
//!         // Persist it: a new export with `.resume_from(checkpoint)` continues from here.
//!         ExportEvent::Checkpoint(checkpoint) => println!("{}", serde_json::to_string(&checkpoint)?),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Why not page numbers
//!
//! Lago pages by offset, newest first, with no tie-breaker: records sharing a `logged_at` come
//! back in a different order on every query, and new records push every page boundary while
//! you read. Walking pages 1, 2, 3… therefore loses and repeats records, silently. Nor is one
//! response a snapshot: `meta.total_count` comes from a `COUNT` query of its own, so the count
//! and the rows can disagree when a record lands between the two (fact 16). What a response
//! does guarantee is this: when it holds fewer rows than `per_page`, its query found no more.
//!
//! # The algorithm
//!
//! The export walks the window by **time**, oldest second first, in *slices* `[a, b]` of whole
//! seconds. Lago keeps `logged_at` to the millisecond (fact 15), so a slice is sent as
//! `from_date = a.000`, `to_date = b.999`: a record at `b.500` belongs to exactly one slice.
//!
//! 1. The window is `[from_date, to_date]` of the request (every other filter is kept), or
//!    from a checkpoint on. Without `to_date` it ends at *now − settle*
//!    ([`ExportOptions::settle`]): Lago writes logs through a queue, so a record can become
//!    visible seconds after its `logged_at`; a second is only read once it is older than the
//!    settle margin. Two probe requests (`per_page=1`: the newest record and the count, then
//!    the record at the count's offset) guess where the records start and how dense they
//!    are. The guess only sizes slices: **the first slice starts at the window's own lower
//!    bound, or has no `from_date` at all**, so records landing while the probes run, a
//!    server clock behind this one, or retention moving cannot make it skip a record.
//! 2. Each slice's first request is `page=1`, `per_page` = [`ExportOptions::max_per_page`]. A
//!    page that comes back short holds the whole slice.
//! 3. A full page holds the newest records of the slice, so every second *after* the oldest
//!    second on it is complete and is kept. The rest, `[a, that second]`, is read **by
//!    position**: its count is known from the first answer's `meta.total_count`, and Lago
//!    serves rows `(page − 1) × per_page ..` of a window newest first, so the rest is covered
//!    by *parts*, pages of the same window placed from its oldest row up, each bringing about
//!    `max_per_page` rows not in the part below it, and read side by side. A
//!    position is not a promise: ties come back in a different order on every query, rows
//!    can be inserted or merged between two reads, and the count may be off. So a part is
//!    only trusted for the seconds **strictly inside** it (plus its newest second on page 1,
//!    and its oldest when it came back short, reaching the window's start), and consecutive
//!    parts overlap by more than the largest second seen, so that every second lies inside
//!    one of them. Where two parts do not meet after all (a larger second, rows that moved),
//!    the seconds between are read as a slice of their own: a gap costs a request, never a
//!    record. A part may therefore ask for up to `max_per_page` plus the overlap plus a
//!    quarter page, at least 32 rows (the room needed to place it on Lago's grid of
//!    `page × per_page`). A page with fewer rows than asked ends its window only when
//!    `meta.next_page` names no other page: a server or proxy that caps `per_page` sends fewer
//!    and says so; then only what a full page proves is kept, and a single second larger
//!    than the cap is an error.
//!    A second with more records than half a page is read whole, in one request with
//!    `per_page` above its count (Lago has no maximum): **that second is held in memory at
//!    once**, the one case where memory grows with the data rather than with the page size.
//!    When parts meet such a second, the parts still to send above it are replaced by a slice
//!    if they would mostly fall inside it.
//! 4. Slices aim at 16 pages of records, from the observed density: a slice too
//!    wide costs nothing (its rest is read a full page a request), a slice too narrow costs
//!    one request for a few records, once per slice. A sparser slice than expected widens the
//!    next one at once; a denser one narrows it halfway.
//! 5. Up to [`ExportOptions::read_ahead`] requests are in flight; records are yielded in time
//!    order, oldest first (within a second, in no particular order: ties have none). New
//!    slices go side by side only while slices come back near full: after one far from full
//!    (a quiet hour after a billing run) they are cut one at a time until the density is
//!    known again. Memory is bounded by the pages in flight and held (about `read_ahead + 1`
//!    of them, each at most a part's size), whatever the total.
//! 6. Lago can hold the same log twice (fact 17: at-least-once delivery, tables read without
//!    `FINAL`). Each second is taken from one response, so a second copy is dropped within it:
//!    same `activity_id` or `log_id`, or for an API log the same content
//!    ([`RecordKey`]); [`ExportProgress::duplicates`] counts
//!    them, [`ExportOptions::keep_duplicates`] keeps them.
//! 7. After each slice or part a [`Checkpoint`] is yielded: every record before its instant
//!    has been yielded, none after it. A new export started with
//!    [`ExportOptions::resume_from`] reads from that instant on, so a killed process resumes
//!    with nothing lost and nothing repeated. It refuses a checkpoint from another operation or
//!    from other filters.
//!
//! [`Export::follow`] does the same, then keeps polling ([`ExportOptions::poll_interval`]) for
//! seconds that have become older than the settle margin, until the stream is dropped.
//!
//! # Limits
//!
//! - A record that becomes visible more than `settle` after its `logged_at` is missed if its
//!   second was already read. Choose `settle` above the worst queue lag you expect (default 60 s).
//!   The same holds for a record logged by a server whose clock is behind this one by more than
//!   `settle`, once its second was read: exactly once covers the records that existed when
//!   their second was read.
//! - The window's upper bound comes from this machine's clock: a clock ahead of Lago's by more
//!   than `settle` has the same effect as a late arrival.
//! - Records leaving the retention window (30 days; 90 for security logs) while an export runs
//!   are not read if their slice had not been reached.
//! - A record outside the slice it was asked for ends the export with an error rather than
//!   risk a duplicate.
//! - A `to_date` later than now − settle is cut to now − settle: the export ends there, and its
//!   last checkpoint lets a later run (or [`Export::follow`]) continue.
//! - An error (after the client's retries) ends the stream; resume from the last checkpoint.

use crate::pagination::{IdSet, Page, Paginate, RecordKey};
pub use crate::progress::ExportProgress;
use crate::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use crate::{DateFilter, Error};
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// One item of an export: a record, or a safe point to resume from.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportEvent<T> {
    /// A record; each record of the window is yielded exactly once.
    Record(T),
    /// Every record logged before [`Checkpoint::resume_at`] has been yielded; none after it.
    Checkpoint(Checkpoint),
}

/// Where an export can resume: every record logged before [`resume_at`](Self::resume_at) was
/// yielded. Small, and serialisable with serde (JSON:
/// `{"v":1,"operation":"find_all_activity_logs","filters":"…","resume_at":"…"}`). The filters
/// are kept as a hash, so no filter value (an e-mail, a customer id) is written down.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    v: u32,
    operation: String,
    filters: String,
    resume_at: DateTime<Utc>,
}

impl Checkpoint {
    /// The instant the next export starts at: everything logged before it was yielded.
    pub fn resume_at(&self) -> DateTime<Utc> {
        self.resume_at
    }

    /// The operation this checkpoint belongs to (`find_all_activity_logs`, …).
    pub fn operation(&self) -> &str {
        &self.operation
    }

    /// Whether `other` comes from the same query: the same operation and the same filters
    /// (the date window and paging aside). Two exports of the same query hold the same records
    /// for the same seconds.
    pub fn same_query(&self, other: &Checkpoint) -> bool {
        self.operation == other.operation && self.filters == other.filters
    }

    fn check(&self, operation: &str, filters: &str) -> Result<(), Error> {
        if self.v != 1 {
            return Err(Error::InvalidRequest(format!(
                "checkpoint format {} is not supported (this client writes 1)",
                self.v
            )));
        }
        if self.operation != operation {
            return Err(Error::InvalidRequest(format!(
                "this checkpoint belongs to {}, not {operation}",
                self.operation
            )));
        }
        if self.filters != filters {
            return Err(Error::InvalidRequest(
                "this checkpoint comes from a query with other filters; resuming it would skip \
                 or repeat records"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Options of an export. `ExportOptions::default()` reads 8 slices ahead, 1,000 records per
/// request, with a 60 s settle margin and (for [`Export::follow`]) a 10 s poll interval.
#[derive(Clone, Debug)]
pub struct ExportOptions {
    read_ahead: usize,
    max_per_page: u32,
    settle: Duration,
    poll_interval: Duration,
    resume_from: Option<Checkpoint>,
    progress: ExportProgress,
    keep_duplicates: bool,
}

/// The default number of requests in flight, chosen from the measurements in `BENCHMARKS.md`.
/// Eight: with 20 ms of latency it reads 5.8 times as fast as one request at a time, and at the
/// latencies of Lago Cloud (hundreds of ms for a 1,000-record page) it takes about this many to
/// use the 45 requests/s the rate limiter allows; memory stays near nine pages.
pub const DEFAULT_READ_AHEAD: usize = 8;
/// The default page size of an export.
pub const DEFAULT_MAX_PER_PAGE: u32 = 1000;
/// The default settle margin ([`ExportOptions::settle`]): how much older than now a second must
/// be before it is read.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(60);
/// The default poll interval of [`Export::follow`] ([`ExportOptions::poll_interval`]).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            read_ahead: DEFAULT_READ_AHEAD,
            max_per_page: DEFAULT_MAX_PER_PAGE,
            settle: DEFAULT_SETTLE,
            poll_interval: DEFAULT_POLL_INTERVAL,
            resume_from: None,
            progress: ExportProgress::default(),
            keep_duplicates: false,
        }
    }
}

impl ExportOptions {
    /// Up to `n` requests in flight (at least 1). Memory is about `n + 1` pages.
    pub fn read_ahead(mut self, n: usize) -> Self {
        self.read_ahead = n.max(1);
        self
    }
    /// The number of records each request brings (at least 1): a slice's first request asks
    /// for this many; a part of a larger slice read by position asks for this many rows not
    /// read yet plus an overlap with its neighbour (more than the largest second seen) and up
    /// to a quarter page of room; a single second holding more than half a page is read whole.
    /// See the [module documentation](self).
    pub fn max_per_page(mut self, n: u32) -> Self {
        self.max_per_page = n.max(1);
        self
    }
    /// Seconds younger than `now - settle` are not read yet (records reach Lago's store through a
    /// queue, seconds after their `logged_at`). Used when the request has no `to_date`.
    pub fn settle(mut self, settle: Duration) -> Self {
        self.settle = settle;
        self
    }
    /// How often [`Export::follow`] looks for new records once caught up.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }
    /// Continues after this checkpoint (from an export of the same operation and filters).
    pub fn resume_from(mut self, checkpoint: Checkpoint) -> Self {
        self.resume_from = Some(checkpoint);
        self
    }
    /// Counts into these shared counters.
    pub fn progress(mut self, progress: ExportProgress) -> Self {
        self.progress = progress;
        self
    }
    /// Keeps a log that Lago stored twice as two records. By default the second copy is
    /// dropped (and counted in [`ExportProgress::duplicates`]): a copy is a record of the same
    /// second with the same `activity_id` (activity logs), `log_id` (security logs) or the same
    /// content in every field (API logs, whose `request_id` callers reuse).
    pub fn keep_duplicates(mut self, keep: bool) -> Self {
        self.keep_duplicates = keep;
        self
    }
}

/// A record with a `logged_at`.
pub trait Logged {
    /// When the record was logged.
    fn logged_at(&self) -> DateTime<Utc>;
}
impl Logged for ActivityLogObject {
    fn logged_at(&self) -> DateTime<Utc> {
        self.logged_at
    }
}
impl Logged for ApiLogObject {
    fn logged_at(&self) -> DateTime<Utc> {
        self.logged_at
    }
}
impl Logged for SecurityLogObject {
    fn logged_at(&self) -> DateTime<Utc> {
        self.logged_at
    }
}

/// Exactly-once reading of a list request's whole window. Implemented for the builders of
/// `find_all_activity_logs`, `find_all_api_logs` and `find_all_security_logs`; every filter set on
/// the builder is kept, while `from_date`/`to_date` bound the window and `page`/`per_page` are
/// driven by the export. See the [module documentation](self) for the algorithm and its limits.
pub trait Export<'a>: Paginate + 'a {
    /// The record type.
    type Record: Send + 'a;

    /// Every record matching the filters with `logged_at` in `[from_date, to_date]` (without
    /// `to_date`: up to now − settle), exactly once, oldest first, with a [`Checkpoint`] after
    /// each safe point. Ends after the window, or after the first error.
    fn export(
        self,
        options: ExportOptions,
    ) -> impl Stream<Item = Result<ExportEvent<Self::Record>, Error>> + Send + Unpin + 'a;

    /// Like [`export`](Self::export), then keeps polling every
    /// [`poll_interval`](ExportOptions::poll_interval) for records older than now − settle, with
    /// no gaps and no duplicates, until the stream is dropped (or `to_date` is reached).
    fn follow(
        self,
        options: ExportOptions,
    ) -> impl Stream<Item = Result<ExportEvent<Self::Record>, Error>> + Send + Unpin + 'a;
}

/// What the export needs from a builder beyond [`Paginate`].
trait Sliced: Paginate {
    const OPERATION: &'static str;
    /// This request limited to `[from, to]` (unix milliseconds, inclusive; no `from_date` when
    /// `from` is `None`), `per_page` records.
    fn slice(&self, from: Option<i64>, to: i64, per_page: u64) -> Self;
    /// The query string this request would send, without sending it.
    fn query(&self) -> impl std::future::Future<Output = Result<String, Error>> + Send;
}

/// The number of pages a slice cut at the frontier aims at. Each slice costs at most one request
/// that is not a full page (its last part); 16 keeps that under 1/32 of the requests on average.
const SLICE_PAGES: u64 = 16;

/// Parts that read the `count` rows of a window by position, oldest first, as `(page,
/// per_page)` pairs: Lago serves rows `(page − 1) × per_page ..` of the window's rows newest
/// first, so a part's position is a multiple of its size. Each part brings at least `new` rows
/// not in the part before it and overlaps that part by `overlap` rows, so that a second split
/// between two parts (its records come back in any order) lies inside one of them; the
/// oldest part reaches `overlap` rows past `count`, so that it comes back short when the count
/// was right. `None` when a part would need more than `limit` rows.
fn tile(count: u64, new: u64, overlap: u64, limit: u64) -> Option<Vec<(u64, u64)>> {
    let mut plan = Vec::new();
    // Where the part placed last starts (the first, at the end of the rows).
    let mut start = count;
    while start > 0 {
        if start + overlap <= limit {
            // The newest part: page 1, up to the top of the window.
            plan.push((1, start + overlap));
            break;
        }
        // Near the top of the window the grid is coarse: when no part brings `new` rows, one
        // brings fewer.
        let (k, q) = (0..8)
            .map(|i| (new.max(1) >> i).max(1))
            .find_map(|new| place(start, new, overlap, limit))?;
        plan.push((k + 1, q));
        start = k * q;
    }
    Some(plan)
}

/// The part below `start` (see [`tile`]): page `k + 1` of size `q` covers `[k q, (k + 1) q)`; it
/// must reach `overlap` rows into the part before, `(k + 1) q ≥ start + overlap`, and bring
/// `new` rows, `k q ≤ start − new`. The smallest such `q`, at most `limit`.
fn place(start: u64, new: u64, overlap: u64, limit: u64) -> Option<(u64, u64)> {
    let mut k = start.checked_sub(new)? / (new + overlap);
    while k >= 1 {
        let lo = (start + overlap).div_ceil(k + 1);
        if lo > limit {
            return None;
        }
        if lo <= (start - new) / k {
            return Some((k, lo));
        }
        k -= 1;
    }
    None
}

/// A date filter at unix milliseconds `ms` (Lago filters at millisecond precision).
fn at_ms(ms: i64) -> DateFilter {
    DateFilter::DateTime(Utc.timestamp_millis_opt(ms).single().unwrap_or_default())
}

/// The instant of unix second `secs`.
fn instant(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

macro_rules! export {
    ($builder:ident, $record:ty, $operation:literal) => {
        impl<'a> Sliced for crate::generated::builder::$builder<'a> {
            const OPERATION: &'static str = $operation;
            fn slice(&self, from: Option<i64>, to: i64, per_page: u64) -> Self {
                let b = self
                    .clone()
                    .to_date(at_ms(to))
                    .page(1)
                    .per_page(i64::try_from(per_page).unwrap_or(i64::MAX));
                match from {
                    Some(from) => b.from_date(at_ms(from)),
                    None => b,
                }
            }
            fn query(&self) -> impl std::future::Future<Output = Result<String, Error>> + Send {
                let request = self.clone();
                async move {
                    // Boxed: a generated request's future is large, and this one is rarely awaited.
                    match Box::pin(capture(request.clone().send())).await {
                        // A required `to_date` (security logs) left unset means "up to now",
                        // as for the other operations: capture the filters with a placeholder
                        // bound, then drop it.
                        Err(Error::InvalidRequest(m)) if m.starts_with("to_date ") => {
                            let query = Box::pin(capture(request.to_date(at_ms(0)).send())).await?;
                            Ok(without_pair(&query, "to_date"))
                        }
                        other => other,
                    }
                }
            }
        }

        impl<'a> Export<'a> for crate::generated::builder::$builder<'a> {
            type Record = $record;
            fn export(
                self,
                options: ExportOptions,
            ) -> impl Stream<Item = Result<ExportEvent<$record>, Error>> + Send + Unpin + 'a {
                run(self, options, false)
            }
            fn follow(
                self,
                options: ExportOptions,
            ) -> impl Stream<Item = Result<ExportEvent<$record>, Error>> + Send + Unpin + 'a {
                run(self, options, true)
            }
        }
    };
}
export!(
    FindAllActivityLogs,
    ActivityLogObject,
    "find_all_activity_logs"
);
export!(FindAllApiLogs, ApiLogObject, "find_all_api_logs");
export!(
    FindAllSecurityLogs,
    SecurityLogObject,
    "find_all_security_logs"
);

/// The query string a generated request would send, captured without sending it.
async fn capture<T>(
    send: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<String, Error> {
    let mut outcome = None;
    let captured = crate::transport::capture_query(async {
        outcome = Some(send.await.map(|_| ()));
    })
    .await;
    match (captured, outcome) {
        (Some(q), _) => Ok(q),
        (None, Some(Err(e))) => Err(e),
        (None, _) => Err(Error::InvalidRequest(
            "the request could not be prepared".into(),
        )),
    }
}

/// A query string without the pairs named `name`.
fn without_pair(query: &str, name: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != name))
        .finish()
}

/// FNV-1a, 64 bits: a hash that stays the same across processes, platforms and versions.
fn fnv1a(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The filters of a query string: every pair but the window and paging, sorted, hashed.
fn fingerprint(operation: &str, query: &str) -> String {
    let mut pairs: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !matches!(k.as_ref(), "page" | "per_page" | "from_date" | "to_date"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.sort();
    let mut parts = vec![operation];
    parts.extend(pairs.iter().map(String::as_str));
    fnv1a(&parts)
}

/// A date bound as unix milliseconds, as Lago compares it: a bare date is midnight UTC; a
/// lower bound finer than a millisecond rounds up, an upper one down, so neither admits a
/// record the request excludes.
fn bound(query: &str, name: &str, lower: bool) -> Result<Option<i64>, Error> {
    let Some((_, value)) = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name)
    else {
        return Ok(None);
    };
    let filter: DateFilter = value
        .parse()
        .map_err(|e| Error::InvalidRequest(format!("{name}: {e}")))?;
    Ok(Some(match filter {
        DateFilter::Date(d) => d
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
            .timestamp_millis(),
        DateFilter::DateTime(t) => {
            t.timestamp_millis() + i64::from(lower && t.timestamp_subsec_nanos() % 1_000_000 > 0)
        }
    }))
}

#[derive(Clone, Copy, Debug)]
struct Job {
    /// The first second of the slice; `None`: no lower bound at all (the start of a window the
    /// request leaves open), so that no record older than a guess can be left out.
    from: Option<i64>,
    /// Where the slice is taken to start when sizing it (`from`, or a probe's guess).
    origin: i64,
    /// Whether it was cut at the frontier (not the rest of a slice read again).
    frontier: bool,
    /// The last second of the slice, read to its last millisecond.
    to: i64,
    per_page: u64,
    /// The page of `[from, to]` this job reads: 1, except for a part.
    page: u64,
    /// A part of a slice read by position ([`tile`]): only the seconds strictly inside its
    /// page are taken from it (and, on page 1, its newest; when short, its oldest), never its
    /// rest read again.
    part: bool,
}

impl Job {
    /// A slice read again, not cut at the frontier: `[from, to]`, page 1, sized from `origin`.
    fn again(from: Option<i64>, origin: i64, to: i64, per_page: u64) -> Self {
        Job {
            from,
            origin,
            frontier: false,
            to,
            per_page,
            page: 1,
            part: false,
        }
    }

    /// The second `second` alone, read whole: `per_page` above its count.
    fn second(second: i64, per_page: u64) -> Self {
        Job::again(Some(second), second, second, per_page)
    }

    /// The records of a slice from `from` below its second `second`, as a slice of their own
    /// (whose first page tells their count), then `second` read whole.
    fn below_then_whole(
        from: Option<i64>,
        origin: i64,
        second: i64,
        per_page: u64,
        whole: u64,
    ) -> Vec<Job> {
        let mut jobs = Vec::with_capacity(2);
        if from.is_none_or(|f| f < second) {
            jobs.push(Job::again(
                from,
                origin.min(second - 1),
                second - 1,
                per_page,
            ));
        }
        jobs.push(Job::second(second, whole));
        jobs
    }
}

enum Slot<T> {
    Waiting(Job),
    Running,
    /// Every record of the seconds `start..=end` (`start` `None`: from the window's start),
    /// oldest first. A slot with `start > end` holds nothing and claims nothing.
    Done {
        records: Vec<T>,
        start: Option<i64>,
        end: i64,
    },
}

struct Entry<T> {
    id: u64,
    slot: Slot<T>,
}

struct Fetched<T> {
    records: Vec<T>,
    total: u64,
    /// Whether `meta.next_page` names a page after this one.
    more: bool,
    /// Whether the server paged with fewer rows a page than asked: its `meta.total_pages` is
    /// more than its own `total_count` makes at the `per_page` sent (a cap; a count that is
    /// merely off, fact 16, moves both together).
    capped: bool,
}

type Completion<T> = (u64, Job, Result<Fetched<T>, Error>);

/// The stream an export returns.
type Events<'a, T> =
    std::pin::Pin<Box<dyn Stream<Item = Result<ExportEvent<T>, Error>> + Send + 'a>>;

#[derive(PartialEq, Eq)]
enum Phase {
    Start,
    Running,
    Over,
}

struct Run<'a, B, T> {
    builder: B,
    options: ExportOptions,
    follow: bool,
    phase: Phase,
    operation: &'static str,
    filters: String,
    /// The window's lower bound in unix milliseconds (the request's `from_date`, or the
    /// checkpoint's instant, whichever is later), if any.
    from_ms: Option<i64>,
    /// The request's `to_date` in unix milliseconds, if any.
    to_ms: Option<i64>,
    /// The last second of the request's `to_date`, if any.
    to_date: Option<i64>,
    /// Inclusive end of the part of the window known to be readable now.
    hi: i64,
    /// The first second not yet given to a slice.
    frontier: i64,
    /// The lower bound of the first slice, when it has not been cut yet: the window's own
    /// (`None` when the request has none), never a probe's answer.
    first_from: Option<Option<i64>>,
    /// Records per second, from recent responses.
    density: f64,
    /// The width of the last slice cut at the frontier.
    last_width: i64,
    /// How many slices cut at the frontier may be in flight: one after a slice came back far
    /// from full, doubling (up to `read_ahead`) while slices come back near full. On bursty
    /// data, eight slices cut at once into a quiet hour from a burst's density would be eight
    /// requests for a handful of records; sized one after another, the second is already wide.
    lanes: usize,
    /// Slices cut at the frontier now in flight.
    frontier_running: usize,
    /// The first second not yet yielded (`None`: the window's start, which may be open).
    cursor: Option<i64>,
    /// The most records seen in one second that fits in half a page: parts of a slice read by
    /// position overlap by more than this, so that each second lies inside one of them.
    max_second: u64,
    /// The most records seen in one second read whole.
    max_big: u64,
    /// Seconds being read whole after a part met them, with the window of that part: above
    /// such a second the window is read again as a slice, so a part above it is not acted on.
    big: Vec<(Option<i64>, i64, i64)>,
    queue: VecDeque<Entry<T>>,
    running: FuturesUnordered<BoxFuture<'a, Completion<T>>>,
    out: VecDeque<ExportEvent<T>>,
    next_id: u64,
}

fn run<'a, B>(
    builder: B,
    options: ExportOptions,
    follow: bool,
) -> Events<'a, <B::Page as Page>::Item>
where
    B: Sliced + 'a,
    <B::Page as Page>::Item: Logged + RecordKey + Send + 'a,
{
    let state = Run {
        builder,
        options,
        follow,
        phase: Phase::Start,
        operation: B::OPERATION,
        filters: String::new(),
        from_ms: None,
        to_ms: None,
        to_date: None,
        hi: 0,
        frontier: 0,
        first_from: None,
        density: 0.0,
        last_width: 1,
        lanes: 1,
        frontier_running: 0,
        cursor: None,
        max_second: 1,
        max_big: 0,
        big: Vec::new(),
        queue: VecDeque::new(),
        running: FuturesUnordered::new(),
        out: VecDeque::new(),
        next_id: 0,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        let event = state.next_event().await?;
        Some((event, state))
    }))
}

/// The second of a record's `logged_at` (milliseconds are kept within it).
fn second_of<T: Logged>(record: &T) -> i64 {
    record.logged_at().timestamp()
}

/// Drops the second copy of a record stored twice (fact 17), looking only within each second:
/// `records` are ordered by time, so the records of one second are adjacent. Returns how many
/// were dropped.
fn drop_stored_duplicates<T: Logged + RecordKey>(records: &mut Vec<T>) -> u64 {
    let before = records.len();
    let mut kept: Vec<T> = Vec::with_capacity(before);
    let mut seen = IdSet::default();
    let mut second = None;
    let mut run_start = 0;
    for record in records.drain(..) {
        let s = second_of(&record);
        if second != Some(s) {
            second = Some(s);
            seen.clear();
            run_start = kept.len();
        }
        // A second with a single record so far holds no duplicate: its key is only computed
        // once a second record arrives.
        if kept.len() > run_start {
            if seen.is_empty() {
                seen.insert(kept[run_start].record_id());
            }
            if !seen.insert(record.record_id()) {
                continue;
            }
        }
        kept.push(record);
    }
    *records = kept;
    (before - records.len()) as u64
}

impl<'a, B> Run<'a, B, <B::Page as Page>::Item>
where
    B: Sliced + 'a,
    <B::Page as Page>::Item: Logged + RecordKey + Send + 'a,
{
    fn now_hi(&self) -> i64 {
        let settle =
            chrono::Duration::from_std(self.options.settle).unwrap_or(chrono::Duration::MAX);
        let hi = Utc::now()
            .checked_sub_signed(settle)
            .map_or(i64::MIN / 2, |t| t.timestamp());
        self.to_date.map_or(hi, |to| to.min(hi))
    }

    fn checkpoint(&self, resume_at: i64) -> Checkpoint {
        Checkpoint {
            v: 1,
            operation: self.operation.to_owned(),
            filters: self.filters.clone(),
            resume_at: instant(resume_at),
        }
    }

    /// The request of a slice: `[from, to]` in whole seconds, sent in milliseconds (the last
    /// second to its last millisecond) and kept inside the window's own bounds.
    fn request(&self, from: Option<i64>, to: i64, per_page: u64) -> B {
        let from_ms = match (from, self.from_ms) {
            (Some(f), Some(lo)) => Some(f.saturating_mul(1000).max(lo)),
            (Some(f), None) => Some(f.saturating_mul(1000)),
            (None, lo) => lo,
        };
        let to_ms = to.saturating_mul(1000).saturating_add(999);
        let to_ms = self.to_ms.map_or(to_ms, |t| t.min(to_ms));
        self.builder.slice(from_ms, to_ms, per_page)
    }

    /// One request (owned, so `self` is not borrowed while it runs).
    fn fetch(
        &self,
        from: Option<i64>,
        to: i64,
        per_page: u64,
        page: i64,
    ) -> impl std::future::Future<Output = Result<B::Page, Error>> + Send + 'a {
        let request = self.request(from, to, per_page);
        let progress = self.options.progress.clone();
        async move { crate::progress::with_progress(progress, request.fetch_page(page)).await }
    }

    /// Reads the request's window and probes it for the number of records and where they
    /// start. The probes only size the slices: the first slice starts at the window's own lower
    /// bound (or has none), so a record landing while they run cannot move the start.
    async fn start(&mut self) -> Result<(), Error> {
        let query = {
            let builder = self.builder.clone();
            builder.query().await?
        };
        self.filters = fingerprint(self.operation, &query);
        self.from_ms = bound(&query, "from_date", true)?;
        self.to_ms = bound(&query, "to_date", false)?;
        self.to_date = self.to_ms.map(|t| t.div_euclid(1000));
        if let Some(checkpoint) = &self.options.resume_from {
            checkpoint.check(self.operation, &self.filters)?;
            let at = checkpoint.resume_at.timestamp_millis();
            self.from_ms = Some(self.from_ms.map_or(at, |lo| lo.max(at)));
        }
        // The first whole second the window can hold a record in.
        let lo = self.from_ms.map(|ms| ms.div_euclid(1000));
        self.cursor = lo;
        self.hi = self.now_hi();
        self.phase = Phase::Running;
        let first = self.fetch(lo, self.hi, 1, 1).await?;
        let total = u64::try_from(first.meta().total_count).unwrap_or(0);
        let newest = first.into_items().first().map(second_of);
        let Some(newest) = newest else {
            // No row up to hi (the rows decide, not the count): nothing to read there yet.
            self.options.progress.set_expected_total(0);
            self.frontier = self.hi.saturating_add(1).max(lo.unwrap_or(i64::MIN));
            self.cursor = Some(self.frontier);
            self.out
                .push_back(ExportEvent::Checkpoint(self.checkpoint(self.frontier)));
            return Ok(());
        };
        self.options.progress.set_expected_total(total);
        // Where the records seem to start: a hint for sizing, which an insert between the two
        // probes can move; the first slice does not start there.
        let oldest = if total > 1 {
            let last = self
                .fetch(lo, self.hi, 1, i64::try_from(total).unwrap_or(i64::MAX))
                .await?;
            last.into_items().first().map(second_of)
        } else {
            Some(newest)
        };
        let guess = oldest.map_or(newest, |o| o.min(newest));
        self.frontier = lo.map_or(guess, |lo| lo.max(guess)).min(self.hi);
        self.first_from = Some(lo);
        let span = (self.hi.min(newest) - self.frontier + 1).max(1) as f64;
        self.density = total.max(1) as f64 / span;
        Ok(())
    }

    async fn next_event(&mut self) -> Option<Result<ExportEvent<<B::Page as Page>::Item>, Error>> {
        loop {
            if let Some(event) = self.out.pop_front() {
                if let ExportEvent::Record(_) = event {
                    self.options.progress.add_record();
                }
                return Some(Ok(event));
            }
            match self.phase {
                Phase::Over => return None,
                Phase::Start => {
                    if let Err(e) = self.start().await {
                        self.phase = Phase::Over;
                        return Some(Err(e));
                    }
                    continue;
                }
                Phase::Running => {}
            }
            if matches!(
                self.queue.front(),
                Some(Entry {
                    slot: Slot::Done { .. },
                    ..
                })
            ) {
                self.yield_front();
                continue;
            }
            self.schedule();
            if self.running.is_empty() {
                // Everything up to hi has been yielded.
                let window_over = self.to_date.is_some_and(|to| self.frontier > to);
                if !self.follow || window_over {
                    self.phase = Phase::Over;
                    return None;
                }
                let hi = self.now_hi();
                if hi >= self.frontier {
                    self.hi = hi;
                } else {
                    tokio::time::sleep(self.options.poll_interval).await;
                }
                continue;
            }
            let Some((id, job, result)) = self.running.next().await else {
                continue;
            };
            if let Err(e) = self.complete(id, job, result) {
                self.phase = Phase::Over;
                return Some(Err(e));
            }
        }
    }

    /// Yields the records of the oldest entry, which is done, from the first second not yet
    /// yielded on. When the entry does not reach back to that second (parts of a slice read by
    /// position that did not overlap: a second larger than the overlap, or rows that moved
    /// between the two reads), the seconds in between are read first, as a slice of their own.
    fn yield_front(&mut self) {
        let Some(Entry {
            slot:
                Slot::Done {
                    records,
                    start,
                    end,
                },
            ..
        }) = self.queue.front_mut()
        else {
            return;
        };
        let (start, end) = (*start, *end);
        if start.is_some_and(|s| s > end) {
            // Claims nothing (a part holding a single second, or none at all).
            self.queue.pop_front();
            return;
        }
        let covered = match (start, self.cursor) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(s), Some(c)) => s <= c,
        };
        if !covered {
            let to = start.unwrap_or(i64::MIN).saturating_sub(1);
            // A single second between two parts is one larger than their overlap: room for
            // it whole in one request.
            let single = self.cursor == Some(to);
            let per_page = if single {
                self.whole_guess(0)
            } else {
                u64::from(self.options.max_per_page)
            };
            let job = Job::again(self.cursor, self.cursor.unwrap_or(to), to, per_page);
            tracing::debug!(
                from = job.from,
                to,
                "export parts did not meet; reading between"
            );
            let id = self.new_id();
            self.queue.push_front(Entry {
                id,
                slot: Slot::Waiting(job),
            });
            return;
        }
        let records = std::mem::take(records);
        self.queue.pop_front();
        if self.cursor.is_some_and(|c| end < c) {
            return;
        }
        let cursor = self.cursor;
        let mut records = records;
        if let Some(c) = cursor {
            records.retain(|r| second_of(r) >= c);
        }
        // Only now: a copy is counted once, when its second is yielded.
        self.dedup(&mut records);
        self.out
            .extend(records.into_iter().map(ExportEvent::Record));
        let next = end.saturating_add(1);
        self.cursor = Some(next);
        self.out
            .push_back(ExportEvent::Checkpoint(self.checkpoint(next)));
    }

    /// The number of records a single request aims at when it must hold its whole slice: a
    /// little under a page, because only a page that comes back short is known to.
    fn target(&self) -> f64 {
        let page = f64::from(self.options.max_per_page);
        (page - (page / 32.0).max(1.0)).max(1.0)
    }

    /// The number of records a slice at the frontier aims at: [`SLICE_PAGES`] pages. A slice
    /// cut too wide costs nothing (its rest is read by position, a full page a request); one
    /// cut too narrow costs a request for a few records, once per slice.
    fn slice_target(&self) -> f64 {
        f64::from(self.options.max_per_page) * SLICE_PAGES as f64
    }

    /// Room above a page and the overlap for placing parts on Lago's grid: a part `k` pages
    /// below the top of its window needs about `k` more ([`tile`]).
    fn grid_room(&self) -> u64 {
        (u64::from(self.options.max_per_page) / 4).max(2 * SLICE_PAGES)
    }

    /// How far parts of a slice read by position overlap: more than any second seen that fits
    /// in half a page (a larger one is read on its own).
    fn overlap(&self) -> u64 {
        self.max_second.saturating_add(1).max(2)
    }

    /// The largest page a part may ask for: a page, the overlap, and room to place parts on
    /// Lago's grid of `page × per_page` ([`tile`]).
    fn part_limit(&self) -> u64 {
        u64::from(self.options.max_per_page) + self.overlap() + self.grid_room()
    }

    /// Learns the largest second that fits in half a page from `records` (newest first): only
    /// seconds inside the page count, the first and last may be cut.
    fn learn_seconds(&mut self, records: &[<B::Page as Page>::Item]) {
        let half = u64::from(self.options.max_per_page) / 2;
        let mut runs = records.chunk_by(|a, b| second_of(a) == second_of(b));
        runs.next();
        runs.next_back();
        for run in runs {
            let n = run.len() as u64;
            if n <= half {
                self.max_second = self.max_second.max(n);
            }
        }
    }

    /// Starts waiting slices, then new ones at the frontier, up to `read_ahead` in flight and
    /// about as many pages held.
    fn schedule(&mut self) {
        let limit = self.options.read_ahead;
        while self.running.len() < limit {
            let held = self
                .queue
                .iter()
                .filter(|e| matches!(e.slot, Slot::Done { .. }))
                .count();
            // The rest of an overflowing slice: the oldest unfinished entry always goes (the
            // export waits for it); others while fewer than `read_ahead` pages are held.
            let first_unfinished = self
                .queue
                .iter()
                .position(|e| !matches!(e.slot, Slot::Done { .. }));
            if let Some(i) = self
                .queue
                .iter()
                .position(|e| matches!(e.slot, Slot::Waiting(_)))
                .filter(|i| Some(*i) == first_unfinished || self.running.len() + held < limit)
            {
                let id = self.queue[i].id;
                if let Slot::Waiting(job) =
                    std::mem::replace(&mut self.queue[i].slot, Slot::Running)
                {
                    self.launch(id, job);
                }
                continue;
            }
            if self.frontier > self.hi
                || self.running.len() + held >= limit
                || self.frontier_running >= self.lanes
            {
                break;
            }
            let width = if self.density > 0.0 {
                (self.slice_target() / self.density)
                    .round()
                    .clamp(1.0, 1e12) as i64
            } else {
                self.last_width.saturating_mul(4)
            };
            let width = width.clamp(1, self.hi - self.frontier + 1);
            self.last_width = width;
            let job = Job {
                from: self.first_from.take().unwrap_or(Some(self.frontier)),
                origin: self.frontier,
                frontier: true,
                to: self.frontier + width - 1,
                per_page: u64::from(self.options.max_per_page),
                page: 1,
                part: false,
            };
            self.frontier = job.to + 1;
            self.frontier_running += 1;
            let id = self.new_id();
            self.queue.push_back(Entry {
                id,
                slot: Slot::Running,
            });
            self.launch(id, job);
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn launch(&mut self, id: u64, job: Job) {
        let request = self.request(job.from, job.to, job.per_page);
        let progress = self.options.progress.clone();
        tracing::trace!(
            from = job.from,
            to = job.to,
            per_page = job.per_page,
            page = job.page,
            "export slice"
        );
        self.running.push(Box::pin(async move {
            let page = i64::try_from(job.page).unwrap_or(i64::MAX);
            let result = crate::progress::with_progress(progress, request.fetch_page(page)).await;
            let per_page = job.per_page;
            let fetched = result.map(|page| {
                let meta = page.meta();
                let total = u64::try_from(meta.total_count).unwrap_or(0);
                let pages = u64::try_from(meta.total_pages).unwrap_or(0);
                Fetched {
                    total,
                    more: meta.next_page.is_some(),
                    capped: pages > total.div_ceil(per_page.max(1)),
                    records: page.into_items(),
                }
            });
            (id, job, fetched)
        }));
    }

    /// Learns the density of a slice that held `records`. A sparser slice is believed at once
    /// (a slice cut too narrow costs a request for few records), a denser one only halfway (a
    /// slice cut too wide costs nothing but the next page).
    fn learn_density(&mut self, job: &Job, records: u64) {
        let observed = records as f64 / (job.to - job.origin + 1).max(1) as f64;
        self.density = if observed < self.density || self.density <= 0.0 {
            observed
        } else {
            0.5 * self.density + 0.5 * observed
        };
    }

    /// Replaces a finished slice's entry: by its records when the page came back short, which
    /// means the query found no more (whatever `total_count` says: Lago counts in a query of
    /// its own, fact 16), else by the parts still to read followed by the complete part. A
    /// part's entry holds the seconds its page is sure to hold whole.
    fn complete(
        &mut self,
        id: u64,
        job: Job,
        result: Result<Fetched<<B::Page as Page>::Item>, Error>,
    ) -> Result<(), Error> {
        if job.frontier {
            self.frontier_running -= 1;
        }
        let Fetched {
            mut records,
            total,
            more,
            capped,
        } = result?;
        let Some(index) = self.queue.iter().position(|e| e.id == id) else {
            return Ok(());
        };
        if let Some(r) = records.iter().find(|r| {
            let t = second_of(*r);
            job.from.is_some_and(|from| t < from) || t > job.to
        }) {
            return Err(Error::Decode {
                status: reqwest::StatusCode::OK,
                message: format!(
                    "a record logged at {} is outside the requested window {}..={}",
                    r.logged_at(),
                    job.from
                        .map_or("the start".to_owned(), |f| instant(f).to_string()),
                    instant(job.to)
                ),
                body_snippet: String::new(),
            });
        }
        self.learn_seconds(&records);
        let n = records.len() as u64;
        // Fewer rows than asked means the query found no more, unless `meta` names a next
        // page: a server or proxy that caps `per_page` (Lago has no cap) sends fewer and says
        // so. Such a page is taken as full: only what a full page proves is kept (a count that
        // is merely too high, fact 16, costs the same: a request to read the rest again).
        // A single second read whole has no rest to read again: there a next page counts only
        // when the server paged by a smaller size than asked; a count that is merely off moves
        // `total_pages` with it.
        let single = job.from == Some(job.to) && job.page == 1;
        let short = n < job.per_page && (n == 0 || !more || (single && !capped));
        if !short && n < job.per_page && single {
            return Err(Error::Decode {
                status: reqwest::StatusCode::OK,
                message: format!(
                    "the server sent {n} records of the second {} for per_page {} and names a \
                     next page: it caps per_page below what that second holds, so the second \
                     cannot be read whole, and its records (tied, in no order) cannot be \
                     joined from several pages",
                    instant(job.to),
                    job.per_page
                ),
                body_snippet: String::new(),
            });
        }
        if job.part {
            // Seconds strictly inside the page are whole; so is its newest on page 1 (nothing
            // newer in the window) and, when the page came back short, its oldest.
            let newest = records.first().map(second_of);
            let oldest = records.last().map(second_of);
            if let Some(newest) = newest.filter(|_| !short) {
                // A second too large to lie inside a part (the part's newest, with more than
                // half a page of it here, or all of a full part): the parts above it would
                // read it piece by piece, and pieces of a second cannot be joined (ties come
                // back in any order). It is read whole, and what is above it as a new slice.
                let run = records
                    .iter()
                    .take_while(|r| second_of(*r) == newest)
                    .count() as u64;
                if run == n || (run >= self.big_threshold() && job.page > 1) {
                    self.read_whole(index, &job, newest, run);
                }
            }
            let (start, end) = match (newest, oldest) {
                (Some(newest), Some(oldest)) => (
                    if short { job.from } else { Some(oldest + 1) },
                    if job.page == 1 { job.to } else { newest - 1 },
                ),
                // Empty: page 1 says the window is empty; a later page says nothing.
                _ if job.page == 1 => (job.from, job.to),
                _ => (Some(i64::MAX), i64::MIN),
            };
            records.retain(|r| {
                let t = second_of(r);
                start.is_none_or(|s| t >= s) && t <= end
            });
            records.reverse();
            self.queue[index].slot = Slot::Done {
                records,
                start,
                end,
            };
            return Ok(());
        }
        // A frontier slice near full or over it confirms the density: more may go side by side.
        // One far from full (unless it ends the readable window, short by nature) does not.
        if job.frontier && job.to < self.hi {
            let held = if short { n } else { total.max(n) };
            self.lanes = if (held as f64) < 0.5 * self.target() {
                1
            } else {
                (self.lanes * 2).min(self.options.read_ahead)
            };
        }
        if short {
            // The whole slice. Lago sends newest first; yield oldest first.
            if job.from == Some(job.to) {
                self.max_big = self.max_big.max(n);
            }
            if job.frontier {
                self.learn_density(&job, n);
            }
            records.reverse();
            self.queue[index].slot = Slot::Done {
                records,
                start: job.from,
                end: job.to,
            };
            return Ok(());
        }
        if job.frontier {
            self.learn_density(&job, total.max(n));
        }
        let oldest = records.iter().map(second_of).min().unwrap_or(job.to);
        let max_pp = u64::from(self.options.max_per_page);
        let mut replacement: Vec<Slot<_>> = Vec::new();
        if oldest >= job.to {
            // The page holds only the slice's last second, which has at least a page of records.
            let whole = job
                .per_page
                .saturating_mul(2)
                .max(total.saturating_add(total / 8 + 16));
            // The rest below it, then that second whole, with per_page above its count (and
            // growing, in case the count is low); a slice of that second alone is read again
            // whole.
            replacement.extend(
                Job::below_then_whole(job.from, job.origin, job.to, max_pp, whole)
                    .into_iter()
                    .map(Slot::Waiting),
            );
        } else {
            // The page holds the newest records of the slice, so every second after the oldest
            // second on it is complete; that second and the ones before are read again.
            let tail = records
                .iter()
                .rev()
                .take_while(|r| second_of(*r) == oldest)
                .count() as u64;
            let whole = (tail >= self.big_threshold()).then(|| self.whole_guess(tail));
            records.retain(|r| second_of(r) > oldest);
            records.reverse();
            let kept = records.len() as u64;
            // What is left, by the count (which may be off): one request when it fits in a
            // page; else parts of the window `[from, oldest]` read by position, a full page of
            // records not yet read each, side by side ([`tile`]); else, when there are too many
            // pages of it to place parts on Lago's grid, pieces by time, each a slice again.
            let left = total.saturating_sub(kept).max(1);
            let start = job.from.unwrap_or(job.origin.min(oldest));
            // Parts can be placed about `grid_room` pages deep (deeper, a part would need more
            // room than that, and `tile` says so); a count far beyond it, true or not, goes
            // straight to pieces by time, so that a count of any size costs no planning.
            let deep = max_pp.saturating_mul(self.grid_room()).saturating_mul(4);
            let plan = if (left as f64) <= self.target() || whole.is_some() || left > deep {
                None
            } else {
                tile(left, max_pp, self.overlap(), self.part_limit())
            };
            if let Some(whole) = whole {
                // Its oldest second has more than half a page here: read it whole, and what
                // is below it as a slice of its own.
                replacement.extend(
                    Job::below_then_whole(job.from, start, oldest, max_pp, whole)
                        .into_iter()
                        .map(Slot::Waiting),
                );
            } else if let Some(plan) = plan {
                for (page, per_page) in plan {
                    replacement.push(Slot::Waiting(Job {
                        from: job.from,
                        origin: start,
                        frontier: false,
                        to: oldest,
                        per_page,
                        page,
                        part: true,
                    }));
                }
            } else {
                let pages = (self.grid_room() / 2).clamp(1, SLICE_PAGES);
                let per_piece = pages as f64 * f64::from(self.options.max_per_page);
                let width = oldest - start + 1;
                // At most 4,096 at once (a count can be anything): each piece that is still too
                // large is cut again when its first page comes back.
                let pieces = ((left as f64 / per_piece).ceil() as i64).clamp(1, width.min(4096));
                let step = (width + pieces - 1) / pieces;
                let mut from = start;
                while from <= oldest {
                    let to = (from + step - 1).min(oldest);
                    // The first piece keeps the slice's own lower bound, even none.
                    let lower = if from == start { job.from } else { Some(from) };
                    replacement.push(Slot::Waiting(Job::again(lower, from, to, max_pp)));
                    from = to + 1;
                }
            }
            replacement.push(Slot::Done {
                records,
                start: Some(oldest + 1),
                end: job.to,
            });
        }
        tracing::debug!(
            from = job.from,
            to = job.to,
            total,
            read = n,
            pieces = replacement.len(),
            "export slice larger than its page; reading the rest again"
        );
        self.queue.remove(index);
        self.insert_slots(index, replacement);
        Ok(())
    }

    /// Puts `slots` into the queue at `at`, in order, each as a new entry.
    fn insert_slots(&mut self, at: usize, slots: Vec<Slot<<B::Page as Page>::Item>>) {
        for (k, slot) in slots.into_iter().enumerate() {
            let id = self.new_id();
            self.queue.insert(at + k, Entry { id, slot });
        }
    }

    /// How many records of one second on a page make it a second to read whole.
    fn big_threshold(&self) -> u64 {
        (u64::from(self.options.max_per_page) / 2).max(self.overlap() + 1)
    }

    /// Reads `second` whole (it has at least `seen` records), then the rest of the part's
    /// window above it as a slice, in place of the parts still waiting there. A second above
    /// one already met in the same window is left alone: that window is read again from there.
    fn read_whole(&mut self, index: usize, job: &Job, second: i64, seen: u64) {
        let cursor = self.cursor;
        self.big
            .retain(|(_, to, _)| cursor.is_none_or(|c| *to >= c));
        let same = |b: &&(Option<i64>, i64, i64)| b.0 == job.from && b.1 == job.to;
        // When more than a couple of the parts above it would fall inside it (a second of many
        // pages), the window above it is read again as a slice instead: a second above one
        // already met there is then left alone. Else the parts are kept (those inside it bring
        // nothing, the others are read as planned).
        let expected = self
            .max_big
            .max(seen.saturating_mul(2))
            .saturating_sub(seen);
        let reslice = expected > job.per_page.saturating_mul(2);
        if self
            .big
            .iter()
            .filter(same)
            .any(|b| b.2 == second || (reslice && b.2 < second))
        {
            return;
        }
        // Up to the lowest second already met above this one, if any.
        let top = self
            .big
            .iter()
            .filter(same)
            .filter(|b| b.2 > second)
            .map(|b| b.2 - 1)
            .min()
            .unwrap_or(job.to);
        self.big.push((job.from, job.to, second));
        let mut jobs = vec![Job::second(second, self.whole_guess(seen))];
        if reslice {
            let mut i = index + 1;
            while i < self.queue.len() {
                match &self.queue[i].slot {
                    Slot::Waiting(w) if w.part && w.from == job.from && w.to == job.to => {
                        self.queue.remove(i);
                    }
                    _ => i += 1,
                }
            }
            if second < top {
                let per_page = u64::from(self.options.max_per_page);
                jobs.push(Job::again(Some(second + 1), second + 1, top, per_page));
            }
        }
        tracing::debug!(
            second,
            seen,
            "a second larger than a part: reading it whole"
        );
        self.insert_slots(index + 1, jobs.into_iter().map(Slot::Waiting).collect());
    }

    /// `per_page` for a first read of a second known to hold at least `seen` records: room for
    /// several times that and twice the largest second read whole so far, so that one request
    /// usually does (a `per_page` above the rows costs nothing: only the rows are sent).
    fn whole_guess(&self, seen: u64) -> u64 {
        let page = u64::from(self.options.max_per_page);
        seen.saturating_mul(4)
            .max(self.max_big.saturating_mul(2))
            .max(page.saturating_mul(8))
    }

    /// Drops stored duplicates unless the options keep them, and counts them.
    fn dedup(&self, records: &mut Vec<<B::Page as Page>::Item>) {
        if !self.options.keep_duplicates {
            let dropped = drop_stored_duplicates(records);
            self.options.progress.add_duplicates(dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_the_window_and_the_order_of_filters() {
        let a = fingerprint("op", "activity_types%5B%5D=a&activity_types%5B%5D=b&page=3");
        let b = fingerprint(
            "op",
            "from_date=2025-01-01&activity_types%5B%5D=b&activity_types%5B%5D=a&per_page=9",
        );
        assert_eq!(a, b);
        assert_ne!(a, fingerprint("op", "activity_types%5B%5D=a"));
        assert_ne!(
            a,
            fingerprint("other", "activity_types%5B%5D=a&activity_types%5B%5D=b")
        );
        assert_eq!(a.len(), 16);
        // Stable across versions and processes: a known value.
        assert_eq!(fnv1a(&[]), "cbf29ce484222325");
    }

    #[test]
    fn bounds_keep_milliseconds_and_round_inwards_below_them() {
        let ms = |t: &str| t.parse::<DateTime<Utc>>().unwrap().timestamp_millis();
        let q = "from_date=2025-03-31T12%3A00%3A00.5Z&to_date=2025-04-01";
        assert_eq!(
            bound(q, "from_date", true).unwrap(),
            Some(ms("2025-03-31T12:00:00.500Z"))
        );
        assert_eq!(
            bound(q, "to_date", false).unwrap(),
            Some(ms("2025-04-01T00:00:00Z"))
        );
        // Finer than a millisecond: a lower bound rounds up, an upper one down.
        let q = "from_date=2025-03-31T12%3A00%3A00.0001Z&to_date=2025-03-31T12%3A00%3A05.9999Z";
        assert_eq!(
            bound(q, "from_date", true).unwrap(),
            Some(ms("2025-03-31T12:00:00.001Z"))
        );
        assert_eq!(
            bound(q, "to_date", false).unwrap(),
            Some(ms("2025-03-31T12:00:05.999Z"))
        );
        assert_eq!(bound("x=1", "to_date", false).unwrap(), None);
        assert!(bound("to_date=soon", "to_date", false).is_err());
    }

    #[test]
    fn slice_bounds_go_out_in_milliseconds() {
        assert_eq!(
            at_ms(1_743_508_805_999).to_string(),
            "2025-04-01T12:00:05.999Z"
        );
        assert_eq!(at_ms(1_743_508_805_000).to_string(), "2025-04-01T12:00:05Z");
    }

    #[test]
    fn checkpoints_are_small_json_and_refuse_other_queries() {
        let c = Checkpoint {
            v: 1,
            operation: "find_all_api_logs".into(),
            filters: fingerprint("find_all_api_logs", "clients%5B%5D=curl"),
            resume_at: "2025-04-01T12:00:00Z".parse().unwrap(),
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.len() < 160, "{json}");
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(c.check("find_all_api_logs", &c.filters).is_ok());
        let other = fingerprint("find_all_api_logs", "clients%5B%5D=wget");
        assert!(
            matches!(c.check("find_all_api_logs", &other), Err(Error::InvalidRequest(m)) if m.contains("other filters"))
        );
        assert!(matches!(
            c.check("find_all_activity_logs", &c.filters),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn parts_overlap_reach_past_the_count_and_bring_a_page_each() {
        for new in [1u64, 7, 10, 100, 1000] {
            // The overlap is at most half a page and one (`learn_seconds`).
            for overlap in [2u64, 4, 41, new / 2 + 1]
                .into_iter()
                .filter(|o| *o <= new / 2 + 1)
            {
                let limit = new + overlap + (new / 4).max(32);
                for count in (1..40 * new).step_by((new as usize / 3).max(1)) {
                    let Some(plan) = tile(count, new, overlap, limit) else {
                        // Only when the window is too deep for the grid.
                        assert!(count > 20 * new, "{count} {new} {overlap}");
                        continue;
                    };
                    let (page, q) = plan[0];
                    assert!(page * q >= count + overlap, "{plan:?}");
                    assert_eq!(plan.last().unwrap().0, 1, "{plan:?}");
                    for w in plan.windows(2) {
                        let ((p0, q0), (p1, q1)) = (w[0], w[1]);
                        let start = (p0 - 1) * q0;
                        assert!(p1 * q1 >= start + overlap, "{count}: {plan:?}");
                        assert!((p1 - 1) * q1 < start, "{count}: {plan:?}");
                    }
                    assert!(plan.iter().all(|&(_, q)| q <= limit && q >= 1));
                    // One part a page, and one more at most, for the top.
                    let ideal = count.div_ceil(new);
                    assert!(plan.len() as u64 <= ideal + 1, "{count} {new}: {plan:?}");
                }
            }
        }
    }

    #[test]
    fn progress_is_shared_between_clones() {
        let p = ExportProgress::default();
        let q = p.clone();
        assert_eq!(p.expected_total(), None);
        q.add_request();
        q.add_record();
        q.set_expected_total(7);
        assert_eq!(
            (p.requests(), p.records(), p.expected_total()),
            (1, 1, Some(7))
        );
    }
}
