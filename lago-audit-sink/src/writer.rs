//! The exactly-once writer: [`Sink`].

use crate::batch::{complete_before, BatchLimits, Batcher, Sealed};
use crate::chain::{self, ChainEvent, ChainRecord, Gap, ObjectEntry, WriterId, CHAIN_VERSION};
use crate::destination::Destination;
use crate::digest::{self, Digest, DigestPayload, PreviousDigest, RecordHash, SigningKey};
use crate::format::{Format, SinkRecord};
use crate::layout::{object_path, parse_object_name, second, Layout, CHECKPOINT_FILE, STATE_DIR};
use crate::SinkError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use lago_audit_client::{Checkpoint, ExportEvent};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::Read;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options of a [`Sink`].
#[derive(Clone, Debug)]
pub struct SinkOptions {
    format: Format,
    layout: Layout,
    limits: BatchLimits,
    put_attempts: u32,
    checkpoint_every: Duration,
    progress: SinkProgress,
    lease: Duration,
    take_over: bool,
    trust_store: bool,
    signing_key: Option<Arc<SigningKey>>,
    digest_every: Duration,
    lose: Option<String>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            format: Format::Lago,
            layout: Layout::Hive,
            limits: BatchLimits::default(),
            put_attempts: 5,
            checkpoint_every: Duration::from_secs(60),
            progress: SinkProgress::default(),
            lease: DEFAULT_LEASE,
            take_over: false,
            trust_store: false,
            signing_key: None,
            digest_every: Duration::from_secs(3600),
            lose: None,
        }
    }
}

impl SinkOptions {
    /// The shape of each line (default: Lago's own). A prefix keeps the format it was started
    /// with: opening it with another is an error.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }
    /// Where the objects go and what they hold (default [`Layout::Hive`], gzip NDJSON).
    /// [`Layout::SecurityLake`] writes Parquet objects of OCSF 1.3 events for Amazon Security
    /// Lake; it needs [`Format::Ocsf`] and the `security-lake` feature. The chain stays in
    /// `{prefix}/{kind}/_lago-audit/` and records the layout: a prefix keeps the layout it was
    /// started with.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// Batch limits (default [`BatchLimits::default`]; [`BatchLimits::for_follow`] for `tail`).
    /// Security Lake narrows them ([`BatchLimits::for_layout`]).
    pub fn limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }
    /// Attempts per upload before a store error is returned (default 5, at least 1), with
    /// capped, jittered backoff between them, on top of the store client's own retries.
    pub fn put_attempts(mut self, n: u32) -> Self {
        self.put_attempts = n.max(1);
        self
    }
    /// While no batch is open, the checkpoint is saved at most this often when the export's
    /// position moved on without records (default 60 s), so a quiet `tail` resumes near where it
    /// stopped.
    pub fn checkpoint_every(mut self, every: Duration) -> Self {
        self.checkpoint_every = every;
        self
    }
    /// Counts into these shared counters (read them from another task for a status line).
    pub fn progress(mut self, progress: SinkProgress) -> Self {
        self.progress = progress;
        self
    }
    /// How long a writer holds the prefix after each record it writes (default
    /// [`DEFAULT_LEASE`], at least 10 s). Another writer is refused while the lease runs, unless
    /// the holder is provably gone (a process of this host that no longer runs). An object is
    /// only uploaded within the first half of the lease that its commit started, so a writer
    /// that stalls longer never writes over the one that took over.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(10));
        self
    }
    /// Takes the prefix even if another writer's lease runs: for an operator who knows that
    /// writer is gone (a machine that died) and will not wait for its lease (default false).
    pub fn take_over(mut self, take_over: bool) -> Self {
        self.take_over = take_over;
        self
    }
    /// Skips the check, at open, that the store refuses to create an object over an existing
    /// one and to update one with a stale version (default false: the check runs, and a store
    /// that fails it is refused with [`SinkError::Untrusted`]). Exactly-once and the refusal of
    /// a second writer rest on those two refusals: trust a store that lacks them only for a
    /// prefix that one writer ever uses.
    pub fn trust_store(mut self, trust: bool) -> Self {
        self.trust_store = trust;
        self
    }
}

impl SinkOptions {
    /// Signs every digest with this Ed25519 key (default none: the digests are hash-linked but
    /// unsigned, which proves the archive whole against accident, not against someone who can
    /// rewrite the bucket). See [`crate::digest`].
    pub fn signing_key(mut self, key: Option<Arc<SigningKey>>) -> Self {
        self.signing_key = key;
        self
    }

    /// A deliberately broken writer, for testing verifiers only: the record whose event id
    /// ([`SinkRecord::event_id`](crate::SinkRecord::event_id)) is `event_id` is taken from the
    /// export and never written, as a bug between the two would. The chain still says how
    /// many records were taken, so `verify` reports the loss.
    #[doc(hidden)]
    pub fn broken_writer_loses(mut self, event_id: impl Into<String>) -> Self {
        self.lose = Some(event_id.into());
        self
    }

    /// A digest is written at the end of every run and, during a run, once this long has
    /// passed since the last one (default 1 hour, at least 1 s).
    pub fn digest_every(mut self, every: Duration) -> Self {
        self.digest_every = every.max(Duration::from_secs(1));
        self
    }
}

/// The default [`SinkOptions::lease`]: 5 minutes.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(300);

/// Live counters of a sink, shared: clone it into [`SinkOptions::progress`] and read it anywhere.
#[derive(Clone, Debug, Default)]
pub struct SinkProgress(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    objects: AtomicU64,
    objects_found: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    put_retries: AtomicU64,
    checkpoints: AtomicU64,
    deliveries: AtomicU64,
    last_delivery: AtomicU64,
    position: AtomicU64,
    held: AtomicU64,
    head_digest: std::sync::Mutex<Option<String>>,
    /// Requests to the store: `[operation][outcome]` (see [`crate::counted`]).
    requests: [[AtomicU64; 4]; 6],
}

impl SinkProgress {
    /// Objects written by this process.
    pub fn objects(&self) -> u64 {
        self.0.objects.load(Ordering::Relaxed)
    }
    /// Uploads that met an object with the same content (a retry after a lost answer, or an
    /// object adopted from a run killed before its checkpoint was saved).
    pub fn objects_found(&self) -> u64 {
        self.0.objects_found.load(Ordering::Relaxed)
    }
    /// Records in the objects written by this process.
    pub fn records(&self) -> u64 {
        self.0.records.load(Ordering::Relaxed)
    }
    /// Compressed bytes uploaded by this process.
    pub fn bytes(&self) -> u64 {
        self.0.bytes.load(Ordering::Relaxed)
    }
    /// Uploads retried after a store error.
    pub fn put_retries(&self) -> u64 {
        self.0.put_retries.load(Ordering::Relaxed)
    }
    /// Records of the checkpoint chain written.
    pub fn checkpoints(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Relaxed)
    }
    /// Deliveries that moved the stored position on: an object stored, or a quiet span
    /// recorded. A writer whose store takes its small chain records but not its objects (a full
    /// disk, a policy that denies uploads of data) makes none.
    pub fn deliveries(&self) -> u64 {
        self.0.deliveries.load(Ordering::Relaxed)
    }
    /// The SHA-256 of the archive's newest digest (found when the sink opened, then each one it
    /// writes): write it down elsewhere, and `lago-audit verify --expect-head` catches a rollback
    /// of the archive to an older digest.
    pub fn head_digest(&self) -> Option<String> {
        self.0
            .head_digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    fn set_head_digest(&self, sha256: &str) {
        *self.0.head_digest.lock().unwrap_or_else(|p| p.into_inner()) = Some(sha256.to_owned());
    }
    /// When the last delivery succeeded.
    pub fn last_delivery(&self) -> Option<DateTime<Utc>> {
        match self.0.last_delivery.load(Ordering::Relaxed) {
            0 => None,
            ms => DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(0)),
        }
    }
    /// Records held in memory now (awaiting confirmation or in the open batch).
    pub fn held(&self) -> u64 {
        self.0.held.load(Ordering::Relaxed)
    }
    /// Every record logged before this instant is in the store (`None` before the first
    /// checkpoint).
    pub fn position(&self) -> Option<DateTime<Utc>> {
        match self.0.position.load(Ordering::Relaxed) {
            0 => None,
            s => second(i64::try_from(s).unwrap_or(0)),
        }
    }
    /// Requests sent to the store, by operation and outcome: `(operation, outcome, count)` for
    /// every pair of [`OPERATIONS`](crate::counted::OPERATIONS) and
    /// [`OUTCOMES`](crate::counted::OUTCOMES), zeros included. Every call of the store's API is
    /// one (each attempt of the sink's own retries apart; see [`crate::counted`]).
    pub fn store_requests(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut out = Vec::new();
        for (o, operation) in crate::counted::OPERATIONS.iter().enumerate() {
            for (r, outcome) in crate::counted::OUTCOMES.iter().enumerate() {
                out.push((
                    *operation,
                    *outcome,
                    self.0.requests[o][r].load(Ordering::Relaxed),
                ));
            }
        }
        out
    }
    pub(crate) fn count_request(&self, operation: usize, outcome: usize) {
        if let Some(c) = self.0.requests.get(operation).and_then(|o| o.get(outcome)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// What a call to [`Sink::write`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Objects written.
    pub objects: u64,
    /// Objects found already in place with the same content (not written again).
    pub objects_found: u64,
    /// Records in the objects written or found.
    pub records: u64,
    /// Every record logged before this instant is in the store.
    pub position: Option<DateTime<Utc>>,
}

/// The checkpoint file of versions before the chain: `{kind}/_lago-audit/checkpoint.json`. Read
/// once, to start a chain from it.
#[derive(Deserialize)]
struct LegacyState {
    kind: String,
    format: String,
    position: Option<DateTime<Utc>>,
    export: Option<Checkpoint>,
    objects: u64,
    records: u64,
}

/// The newest record of the chain, with the SHA-256 of its bytes (the next record's `prev`).
#[derive(Clone, Debug)]
struct Head {
    record: ChainRecord,
    sha256: String,
}

/// What a new record says, beyond what every record carries.
struct Entry {
    event: ChainEvent,
    position: Option<DateTime<Utc>>,
    export: Option<Checkpoint>,
    objects: Vec<ObjectEntry>,
    abandoned: Vec<String>,
    gap: Option<Gap>,
    release: bool,
}

impl Entry {
    fn new(event: ChainEvent, position: Option<DateTime<Utc>>, export: Option<Checkpoint>) -> Self {
        Self {
            event,
            position,
            export,
            objects: Vec::new(),
            abandoned: Vec::new(),
            gap: None,
            release: false,
        }
    }
}

/// Writes one kind of log into a [`Destination`], exactly once. See the [crate documentation]
/// (crate) for the guarantees and the layout, and [`chain`](crate::chain) for the protocol.
///
/// ```no_run
/// # async fn run(client: lago_audit_client::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use lago_audit_client::{Export, ExportOptions};
/// use lago_audit_sink::{Destination, Format, Sink, SinkOptions};
///
/// let destination = Destination::parse("s3://audit-archive/lago")?;
/// let mut sink = Sink::open(&destination, SinkOptions::default().format(Format::Ocsf)).await?;
/// let mut options = ExportOptions::default();
/// if let Some(checkpoint) = sink.resume_from() {
///     options = options.resume_from(checkpoint);
/// }
/// let events = client.find_all_activity_logs().export(options);
/// let summary = sink.write(events).await?;
/// println!("{} objects, up to {:?}", summary.objects, summary.position);
/// # Ok(()) }
/// ```
pub struct Sink<T> {
    dest: Destination,
    options: SinkOptions,
    head: Option<Head>,
    writer: WriterId,
    /// The newest digest, and when this sink last wrote one.
    digest: Option<Digest>,
    digested_at: Instant,
    /// Hashes of the records this sink appended (the next digest commits them).
    appended: std::collections::BTreeMap<u64, String>,
    _record: PhantomData<fn(T)>,
}

impl<T> Drop for Sink<T> {
    fn drop(&mut self) {
        chain::unregister(&self.writer.id);
    }
}

impl<T> std::fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("destination", &self.dest.url())
            .field(
                "position",
                &self.head.as_ref().and_then(|h| h.record.position),
            )
            .finish_non_exhaustive()
    }
}

fn store_err(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(object_store::Error) -> SinkError {
    let path = path.to_string();
    move |source| SinkError::Store {
        operation,
        path,
        source,
    }
}

fn gunzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

fn describe(w: &WriterId) -> String {
    let host = if w.host.is_empty() {
        "an unknown host"
    } else {
        &w.host
    };
    format!("process {} on {host}", w.pid)
}

impl<T: SinkRecord> Sink<T> {
    /// Opens the destination for `T`'s kind of log.
    ///
    /// - Checks that the store refuses a create over an existing object and an update with a
    ///   stale version (unless [`SinkOptions::trust_store`]).
    /// - Reads the newest record of the chain (a `checkpoint.json` of an earlier version starts
    ///   the chain), checks it belongs to this kind and format, and that no other writer holds
    ///   the prefix ([`SinkError::Concurrent`] otherwise).
    /// - Sets back a commit whose object never arrived (its writer is gone), and takes in
    ///   objects found after the position that no record names.
    /// - Claims the prefix with a record of its own.
    ///
    /// Then [`resume_from`](Self::resume_from) and [`position`](Self::position) say where the
    /// export must start.
    pub async fn open(destination: &Destination, options: SinkOptions) -> Result<Self, SinkError> {
        if let Layout::SecurityLake(_) = &options.layout {
            if !cfg!(feature = "security-lake") {
                return Err(SinkError::Encode(crate::batch::NO_LAKE.into()));
            }
            if options.format != Format::Ocsf {
                return Err(SinkError::Encode(format!(
                    "Security Lake takes OCSF events only, not the `{}` format",
                    options.format
                )));
            }
        }
        let writer = chain::this_writer();
        chain::register(&writer.id);
        let mut sink = Self {
            dest: destination.counted(&options.progress),
            options,
            head: None,
            writer,
            digest: None,
            digested_at: Instant::now(),
            appended: Default::default(),
            _record: PhantomData,
        };
        if !sink.options.trust_store {
            sink.probe().await?;
        }
        sink.take().await?;
        Ok(sink)
    }

    /// The export checkpoint to start the export from (`None`: from [`position`](Self::position)
    /// if there is one, else from the request's `from_date`). Records the export yields that are
    /// already stored are skipped, so it may start earlier.
    pub fn resume_from(&self) -> Option<Checkpoint> {
        self.head.as_ref().and_then(|h| h.record.export.clone())
    }

    /// Every record logged before this instant is in the store (or in a declared gap).
    pub fn position(&self) -> Option<DateTime<Utc>> {
        self.head.as_ref().and_then(|h| h.record.position)
    }

    /// The newest record of the chain (this writer's own claim, after [`open`](Self::open)).
    pub fn head(&self) -> Option<&ChainRecord> {
        self.head.as_ref().map(|h| &h.record)
    }

    /// The SHA-256 of the newest record's bytes: pins the chain as it is now (write it down
    /// elsewhere to detect a rollback of the archive later).
    pub fn head_hash(&self) -> Option<&str> {
        self.head.as_ref().map(|h| h.sha256.as_str())
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    /// `{prefix}/{kind}`, for messages.
    pub fn location(&self) -> String {
        format!(
            "{}/{}",
            self.dest.url().trim_end_matches('/'),
            T::KIND.dir()
        )
    }

    /// A new archive starts at `at`: records logged before it are not wanted. Records a `start`
    /// record, so a restart continues from `at` even before anything was stored. Does nothing
    /// when the archive already has a position.
    pub async fn start(&mut self, at: DateTime<Utc>) -> Result<(), SinkError> {
        if self.position().is_some() {
            return Ok(());
        }
        let at = second(at.timestamp()).unwrap_or(at);
        self.append(Entry::new(ChainEvent::Start, Some(at), None))
            .await
    }

    /// Declares the span from the position to `to` missing (or possibly missing), with
    /// `reason` (a short word: `accepted`, `retention`) and `detail` (for people). With `skip`,
    /// the position moves to `to` when it is later, and the export must then start at `to` (the
    /// export checkpoint is cleared); without, the position stays, and what the source still
    /// holds of the span is stored as usual.
    pub async fn record_gap(
        &mut self,
        to: DateTime<Utc>,
        skip: bool,
        reason: &str,
        detail: &str,
    ) -> Result<(), SinkError> {
        let from = self.position();
        let moves = skip && from.is_none_or(|p| p < to);
        let (position, export) = if moves {
            (Some(to), None)
        } else {
            (from, self.resume_from())
        };
        let mut entry = Entry::new(ChainEvent::Gap, position, export);
        entry.gap = Some(Gap {
            from,
            to,
            reason: reason.to_owned(),
            detail: detail.to_owned(),
        });
        self.append(entry).await
    }

    fn kind_path(&self, rel: &str) -> Path {
        self.dest.path(&format!("{}/{rel}", T::KIND.dir()))
    }
    fn record_path(&self, seq: u64) -> Path {
        self.kind_path(&chain::record_name(seq))
    }

    /// Consumes an export's events (from [`resume_from`](Self::resume_from), or from
    /// [`position`](Self::position)) and writes them. Returns when the stream ends (after sealing
    /// its last batch, recording the position and releasing the lease) or at the first error.
    /// After an error nothing is half-done at the destination: call `write` again with a new
    /// export (it re-reads the destination first), or [`open`](Self::open) again.
    ///
    /// Dropping the future mid-way (a kill) leaves the destination consistent too: a commit
    /// whose object was not written is set back by the next writer. In a local directory a
    /// write already handed to a blocking thread still completes after the drop; give it a
    /// moment before the next writer, as a new process would.
    pub async fn write<S>(&mut self, events: S) -> Result<WriteSummary, SinkError>
    where
        S: Stream<Item = Result<ExportEvent<T>, lago_audit_client::Error>>,
    {
        self.still_ours().await?;
        let mut summary = WriteSummary {
            position: self.position(),
            ..WriteSummary::default()
        };
        let start = self.position().map(|p| p.timestamp());
        let mut batcher = Batcher::<T>::new(
            self.options.format,
            self.options.layout.clone(),
            self.options.limits,
            start,
        )
        .lose(self.options.lose.clone());
        // Export checkpoints newer than the saved one, oldest first.
        let mut seen: VecDeque<(i64, Checkpoint)> = VecDeque::new();
        let mut last_save = Instant::now();
        let progress = self.options.progress.clone();
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event? {
                ExportEvent::Record(r) => batcher.record(r)?,
                ExportEvent::Checkpoint(c) => {
                    let complete = complete_before(c.resume_at());
                    seen.push_back((complete, c));
                    for sealed in batcher.checkpoint(complete)? {
                        self.deliver(sealed, &mut seen, &mut summary).await?;
                        last_save = Instant::now();
                    }
                    if self.digested_at.elapsed() >= self.options.digest_every {
                        self.write_digest().await?;
                    }
                    // Nothing open: every record before `complete` is stored; record it now
                    // and then, so a quiet follow resumes near its end and keeps its lease.
                    if !batcher.is_open()
                        && last_save.elapsed() >= self.options.checkpoint_every
                        && self.position().map(|p| p.timestamp()) < Some(complete)
                    {
                        self.advance(complete, &mut seen).await?;
                        last_save = Instant::now();
                    }
                }
            }
            progress.0.held.store(batcher.held(), Ordering::Relaxed);
        }
        if let Some(sealed) = batcher.finish()? {
            self.deliver(sealed, &mut seen, &mut summary).await?;
        }
        if let Some(c) = batcher.confirmed() {
            if self.position().map(|p| p.timestamp()) < Some(c) {
                self.advance(c, &mut seen).await?;
            }
        }
        // The run ends: release the prefix, so the next run (here or elsewhere) need not wait.
        let mut close = Entry::new(ChainEvent::Close, self.position(), self.resume_from());
        close.release = true;
        self.append(close).await?;
        self.write_digest().await?;
        progress.0.held.store(0, Ordering::Relaxed);
        summary.position = self.position();
        Ok(summary)
    }

    /// The newest export checkpoint at or before `cut` (taken out of `seen`).
    fn export_at(&self, cut: i64, seen: &mut VecDeque<(i64, Checkpoint)>) -> Option<Checkpoint> {
        let mut export = self.resume_from();
        while seen.front().is_some_and(|(c, _)| *c <= cut) {
            if let Some((_, c)) = seen.pop_front() {
                export = Some(c);
            }
        }
        export
    }

    async fn deliver(
        &mut self,
        sealed: Sealed,
        seen: &mut VecDeque<(i64, Checkpoint)>,
        summary: &mut WriteSummary,
    ) -> Result<(), SinkError> {
        let export = self.export_at(sealed.cut, seen);
        let mut commit = Entry::new(ChainEvent::Commit, second(sealed.cut), export);
        for part in &sealed.parts {
            commit.objects.push(ObjectEntry {
                name: part.name.clone(),
                sha256: part.sha256.clone(),
                records: part.records,
                first: second(part.first).unwrap_or_default(),
                last: second(part.last).unwrap_or_default(),
                received: Some(part.received),
            });
        }
        // The commit first: only the writer whose commit the store took writes the objects.
        self.append(commit).await?;
        let deadline = Instant::now() + self.options.lease / 2;
        for part in &sealed.parts {
            let path = object_path(&self.dest, T::KIND, &part.name);
            let found = match self.put_once(&path, part.body.clone(), deadline).await {
                Ok(found) => found,
                Err(e) => {
                    // Set the commit back now, if the store lets us; else the next writer will.
                    // Its objects already stored are named too: the next writer writes the same
                    // bytes under the same names, and finds them in place.
                    let names = sealed.parts.iter().map(|p| p.name.clone()).collect();
                    let _ = self.abandon(names).await;
                    return Err(e);
                }
            };
            let p = &self.options.progress.0;
            if found {
                summary.objects_found += 1;
                SinkProgress::add(&p.objects_found, 1);
            } else {
                summary.objects += 1;
                SinkProgress::add(&p.objects, 1);
                SinkProgress::add(&p.bytes, part.body.len() as u64);
            }
        }
        let p = &self.options.progress.0;
        summary.records += sealed.records;
        SinkProgress::add(&p.records, sealed.records);
        self.delivered();
        Ok(())
    }

    fn delivered(&self) {
        let p = &self.options.progress.0;
        SinkProgress::add(&p.deliveries, 1);
        let now = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
        p.last_delivery.store(now, Ordering::Relaxed);
    }

    /// Records the position `cut` (every record before it stored) without an object.
    async fn advance(
        &mut self,
        cut: i64,
        seen: &mut VecDeque<(i64, Checkpoint)>,
    ) -> Result<(), SinkError> {
        let export = self.export_at(cut, seen);
        self.append(Entry::new(ChainEvent::Position, second(cut), export))
            .await?;
        self.delivered();
        Ok(())
    }

    /// Sets back the newest record, a commit whose objects `missing` never arrived: the
    /// position and export checkpoint return to the record before it.
    async fn abandon(&mut self, missing: Vec<String>) -> Result<(), SinkError> {
        let Some(head) = self.head.clone() else {
            return Ok(());
        };
        let before = match head.record.seq {
            0 | 1 => None,
            seq => Some(self.read_record(seq - 1).await?.0),
        };
        let mut entry = Entry::new(
            ChainEvent::Abandon,
            head.record.since,
            before.and_then(|b| b.export),
        );
        entry.abandoned = missing;
        self.append(entry).await
    }

    /// Appends a record after the head, created only if absent. The store refusing it means
    /// another writer appended first: [`SinkError::Concurrent`], before any data is written.
    async fn append(&mut self, entry: Entry) -> Result<(), SinkError> {
        let now = Utc::now();
        let prev = self.head.as_ref();
        let (objects_total, records_total) =
            prev.map_or((0, 0), |h| (h.record.objects_total, h.record.records_total));
        let (mut objects_total, mut records_total) = (
            objects_total + entry.objects.len() as u64,
            records_total + entry.objects.iter().map(|o| o.records).sum::<u64>(),
        );
        if entry.event == ChainEvent::Abandon {
            if let Some(h) = prev {
                objects_total -= h.record.objects.len() as u64;
                records_total -= h.record.objects.iter().map(|o| o.records).sum::<u64>();
            }
        }
        let lease = chrono::Duration::from_std(self.options.lease).unwrap_or_default();
        let record = ChainRecord {
            v: CHAIN_VERSION,
            seq: prev.map_or(1, |h| h.record.seq + 1),
            prev: prev.map(|h| h.sha256.clone()),
            kind: T::KIND.dir().to_owned(),
            format: self.options.layout.tag(self.options.format),
            event: entry.event,
            writer: self.writer.clone(),
            created_at: now,
            lease_until: if entry.release { now } else { now + lease },
            since: prev.and_then(|h| h.record.position),
            position: entry.position,
            export: entry.export,
            objects: entry.objects,
            abandoned: entry.abandoned,
            gap: entry.gap,
            objects_total,
            records_total,
        };
        let body = chain::encode(&record).map_err(|e| SinkError::Encode(e.to_string()))?;
        let path = self.record_path(record.seq);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opts = self.create_opts();
            match self
                .dest
                .store
                .put_opts(&path, PutPayload::from(body.clone()), opts)
                .await
            {
                Ok(_) => break,
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    // Our own write whose answer was lost, or another writer's?
                    let (other, bytes) = self.read_record(record.seq).await?;
                    if bytes == body {
                        break;
                    }
                    return Err(SinkError::Concurrent {
                        prefix: self.location(),
                        holder: describe(&other.writer),
                    });
                }
                Err(e) if attempt < self.options.put_attempts && !is_permanent(&e) => {
                    SinkProgress::add(&self.options.progress.0.put_retries, 1);
                    backoff(attempt).await;
                }
                Err(e) => return Err(store_err("put", &path)(e)),
            }
        }
        let p = &self.options.progress.0;
        if let Some(at) = record.position {
            p.position.store(
                u64::try_from(at.timestamp()).unwrap_or(0),
                Ordering::Relaxed,
            );
        }
        SinkProgress::add(&p.checkpoints, 1);
        let sha256 = chain::sha256_hex(&body);
        self.appended.insert(record.seq, sha256.clone());
        self.head = Some(Head { sha256, record });
        Ok(())
    }

    /// The newest digest (after [`open`](Self::open), or the one this sink wrote last).
    pub fn newest_digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    async fn read_digest(&self, seq: u64) -> Result<Digest, SinkError> {
        let path = digest::digest_path(&self.dest, T::KIND, seq);
        let bytes = chain::get(&self.dest, &path).await?;
        Digest::parse(&bytes).map_err(|reason| SinkError::Checkpoint {
            path: path.to_string(),
            reason: format!("digest cannot be read ({reason})"),
        })
    }

    /// Writes a digest of the chain records since the previous digest (if any), created only if
    /// absent. See [`crate::digest`].
    async fn write_digest(&mut self) -> Result<(), SinkError> {
        self.digested_at = Instant::now();
        let Some(head) = self.head.as_ref().map(|h| h.record.clone()) else {
            return Ok(());
        };
        let from = self.digest.as_ref().map_or(1, |d| d.payload.chain_to + 1);
        if from > head.seq {
            return Ok(());
        }
        let mut records = Vec::new();
        for seq in from..=head.seq {
            let sha256 = match self.appended.get(&seq) {
                Some(sha) => sha.clone(),
                // Written by an earlier run that ended before its digest.
                None => chain::sha256_hex(&self.read_record(seq).await?.1),
            };
            records.push(RecordHash { seq, sha256 });
        }
        let seq = self.digest.as_ref().map_or(1, |d| d.payload.seq + 1);
        let payload = DigestPayload {
            v: digest::DIGEST_VERSION,
            kind: T::KIND.dir().to_owned(),
            seq,
            created_at: Utc::now(),
            chain_from: from,
            chain_to: head.seq,
            records,
            position: head.position,
            previous: self.digest.as_ref().map(|d| PreviousDigest {
                seq: d.payload.seq,
                sha256: d.sha256.clone(),
                signature: d.signature.clone(),
            }),
            signature_algorithm: None,
            public_key: None,
            public_key_fingerprint: None,
        };
        let body = digest::encode(payload, self.options.signing_key.as_deref())?;
        let path = digest::digest_path(&self.dest, T::KIND, seq);
        if let Err(e) = self
            .put_retrying(&path, PutPayload::from(body.clone()), self.create_opts())
            .await
        {
            let taken = matches!(
                &e,
                SinkError::Store {
                    source: object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ..
                }
            );
            // A lost answer to our own write, or another writer's digest.
            let ours = taken && self.read_digest(seq).await?.sha256 == chain::sha256_hex(&body);
            if !ours {
                return Err(if taken {
                    SinkError::Concurrent {
                        prefix: self.location(),
                        holder: "another writer (it wrote the next digest)".to_owned(),
                    }
                } else {
                    e
                });
            }
        }
        self.appended.retain(|s, _| *s > head.seq);
        let written = Digest::parse(&body).map_err(SinkError::Encode)?;
        self.options.progress.set_head_digest(&written.sha256);
        self.digest = Some(written);
        Ok(())
    }

    fn create_opts(&self) -> PutOptions {
        PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        }
    }

    async fn read_record(&self, seq: u64) -> Result<(ChainRecord, Bytes), SinkError> {
        chain::read_record(&self.dest, T::KIND, seq).await
    }

    async fn exists(&self, seq: u64) -> Result<bool, SinkError> {
        chain::exists(&self.dest, T::KIND, seq).await
    }

    async fn read_head(&self, from: u64) -> Result<Option<Head>, SinkError> {
        Ok(chain::head_from(&self.dest, T::KIND, from)
            .await?
            .map(|(record, sha256)| Head { record, sha256 }))
    }

    /// Before writing again: the head must still be this writer's.
    async fn still_ours(&mut self) -> Result<(), SinkError> {
        let Some(ours) = self.head.clone() else {
            return self.take().await;
        };
        if self.exists(ours.record.seq + 1).await? {
            let (other, _) = self.read_record(ours.record.seq + 1).await?;
            return Err(SinkError::Concurrent {
                prefix: self.location(),
                holder: describe(&other.writer),
            });
        }
        Ok(())
    }

    /// Reads the chain's head and takes the prefix: see [`open`](Self::open).
    async fn take(&mut self) -> Result<(), SinkError> {
        let head = self.read_head(1).await?;
        let head = match head {
            Some(h) => Some(h),
            None => self.legacy().await?,
        };
        if let Some(h) = &head {
            self.check(&h.record)?;
            let other = &h.record.writer;
            if other.id != self.writer.id
                && h.record.leased_at(Utc::now())
                && !chain::gone(other, &self.writer)
                && !self.options.take_over
            {
                return Err(SinkError::Concurrent {
                    prefix: self.location(),
                    holder: format!(
                        "{}, whose lease runs until {}",
                        describe(other),
                        h.record.lease_until.format("%Y-%m-%dT%H:%M:%SZ")
                    ),
                });
            }
        }
        let migrated = head.as_ref().is_some_and(|h| h.record.seq == 0);
        self.head = head;
        if migrated {
            // The chain starts from the old checkpoint (its hash is the first record's `prev`).
            let head = self.head.as_ref().map(|h| &h.record);
            let entry = Entry::new(
                ChainEvent::Migrate,
                head.and_then(|h| h.position),
                head.and_then(|h| h.export.clone()),
            );
            self.append(entry).await?;
        }
        // A commit whose object never arrived: its writer is gone (checked above).
        if let Some(h) = self.head.clone() {
            if h.record.event == ChainEvent::Commit {
                let mut missing = Vec::new();
                for o in &h.record.objects {
                    let path = object_path(&self.dest, T::KIND, &o.name);
                    match self.dest.store.head(&path).await {
                        Ok(_) => {}
                        Err(object_store::Error::NotFound { .. }) => missing.push(o.name.clone()),
                        Err(e) => return Err(store_err("head", &path)(e)),
                    }
                }
                if !missing.is_empty() {
                    // All of the commit's objects, the ones that arrived too: the seconds are
                    // written again, and no object of a set-back commit may stay committed.
                    let all = h.record.objects.iter().map(|o| o.name.clone()).collect();
                    self.abandon(all).await?;
                }
            }
        }
        self.adopt().await?;
        let dir = self.dest.path(&format!(
            "{}/{STATE_DIR}/{}",
            T::KIND.dir(),
            crate::layout::DIGEST_DIR
        ));
        let (dest, kind) = (&self.dest, T::KIND);
        self.digest =
            match chain::newest_in(dest, &dir, 1, |s| digest::digest_path(dest, kind, s)).await? {
                Some(seq) => Some(self.read_digest(seq).await?),
                None => None,
            };
        if let Some(d) = &self.digest {
            // The archive's head digest from the start, not only once this run writes one.
            self.options.progress.set_head_digest(&d.sha256);
        }
        let head = self.head.as_ref().map(|h| &h.record);
        let entry = Entry::new(
            ChainEvent::Open,
            head.and_then(|h| h.position),
            head.and_then(|h| h.export.clone()),
        );
        self.append(entry).await
    }

    fn check(&self, record: &ChainRecord) -> Result<(), SinkError> {
        let path = if record.seq == 0 {
            self.kind_path(&format!("{STATE_DIR}/{CHECKPOINT_FILE}"))
        } else {
            self.record_path(record.seq)
        };
        let reason = if record.v > CHAIN_VERSION {
            format!(
                "format {} is not supported (this version writes {CHAIN_VERSION})",
                record.v
            )
        } else if record.kind != T::KIND.dir() {
            format!("it belongs to {}, not {}", record.kind, T::KIND)
        } else if record.format != self.options.layout.tag(self.options.format) {
            format!(
                "this prefix holds the `{}` format, not `{}`; use another prefix",
                record.format,
                self.options.layout.tag(self.options.format)
            )
        } else {
            return Ok(());
        };
        Err(SinkError::Checkpoint {
            path: path.to_string(),
            reason,
        })
    }

    /// A `checkpoint.json` of a version before the chain, as a record numbered 0 (not stored).
    async fn legacy(&self) -> Result<Option<Head>, SinkError> {
        let path = self.kind_path(&format!("{STATE_DIR}/{CHECKPOINT_FILE}"));
        let Some(bytes) = chain::get_opt(&self.dest, &path).await? else {
            return Ok(None);
        };
        let old: LegacyState =
            serde_json::from_slice(&bytes).map_err(|e| SinkError::Checkpoint {
                path: path.to_string(),
                reason: format!("cannot be read ({e})"),
            })?;
        let now = Utc::now();
        Ok(Some(Head {
            sha256: chain::sha256_hex(&bytes),
            record: ChainRecord {
                v: CHAIN_VERSION,
                seq: 0,
                prev: None,
                kind: old.kind,
                format: old.format,
                event: ChainEvent::Migrate,
                writer: WriterId {
                    id: String::new(),
                    host: String::new(),
                    pid: 0,
                    boot: String::new(),
                },
                created_at: now,
                lease_until: now,
                since: None,
                position: old.position,
                export: old.export,
                objects: Vec::new(),
                abandoned: Vec::new(),
                gap: None,
                objects_total: old.objects,
                records_total: old.records,
            },
        }))
    }

    /// Proves the store refuses what exactly-once rests on: a create over an existing object,
    /// and an update with a stale version. Uses one object, `{kind}/_lago-audit/probe`, created
    /// once and never replaced by a store that passes.
    async fn probe(&self) -> Result<(), SinkError> {
        let path = self.kind_path(&format!("{STATE_DIR}/probe"));
        let untrusted = |missing: &str| SinkError::Untrusted {
            prefix: self.location(),
            missing: missing.to_owned(),
        };
        let body = |n: u32| {
            PutPayload::from(format!(
                "lago-audit store check by {} ({n})\n",
                self.writer.id
            ))
        };
        // Two creates in a row: a store that honours `If-None-Match: *` refuses one of them
        // (the first if the probe is there already).
        let mut created = 0;
        for n in 0..2 {
            match self.put_retrying(&path, body(n), self.create_opts()).await {
                Ok(()) => created += 1,
                Err(SinkError::Store {
                    source:
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. },
                    ..
                }) => break,
                // A retention policy's 403 over the existing probe is a refusal too; a 403 with
                // no probe there is the credentials' (said as the store said it).
                Err(e @ SinkError::Store { .. }) if e.refused_credentials() => {
                    if self.dest.store.head(&path).await.is_ok() {
                        break;
                    }
                    return Err(e);
                }
                Err(SinkError::Store { source, .. }) if !is_transient_store(&source) => break,
                Err(e) => return Err(e),
            }
        }
        if created == 2 {
            return Err(untrusted(
                "it accepted a create-only write (If-None-Match: *) over an existing object, \
                 and overwrote it",
            ));
        }
        let stale = PutOptions {
            // An ETag for S3 and Azure, a generation for GCS: neither is the object's.
            mode: PutMode::Update(UpdateVersion {
                e_tag: Some("\"lago-audit-stale-version\"".to_owned()),
                version: Some("1".to_owned()),
            }),
            ..PutOptions::default()
        };
        match self.put_retrying(&path, body(2), stale).await {
            Ok(()) => Err(untrusted(
                "it accepted an update with a stale version (If-Match) and overwrote the object",
            )),
            Err(SinkError::Store { source, .. }) if !is_transient_store(&source) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn put_retrying(
        &self,
        path: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<(), SinkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .dest
                .store
                .put_opts(path, payload.clone(), opts.clone())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < self.options.put_attempts && is_transient_store(&e) => {
                    SinkProgress::add(&self.options.progress.0.put_retries, 1);
                    backoff(attempt).await;
                }
                Err(e) => return Err(store_err("put", path)(e)),
            }
        }
    }

    /// Writes `body` at `path` only if absent, retrying until `deadline`. Returns whether it was
    /// found already there with the same content (a retried upload whose first answer was
    /// lost); other content is a [`SinkError::Conflict`].
    async fn put_once(
        &self,
        path: &Path,
        body: Bytes,
        deadline: Instant,
    ) -> Result<bool, SinkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let put =
                self.dest
                    .store
                    .put_opts(path, PutPayload::from(body.clone()), self.create_opts());
            let result = match tokio::time::timeout(left, put).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(SinkError::Stalled {
                        path: path.to_string(),
                        lease: self.options.lease,
                    })
                }
            };
            match result {
                Ok(_) => return Ok(false),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let existing = chain::get(&self.dest, path).await?;
                    // Same bytes, or the same lines compressed by another version of the
                    // compressor.
                    if existing == body
                        || gunzip(&existing).is_some_and(|a| Some(a) == gunzip(&body))
                    {
                        return Ok(true);
                    }
                    return Err(SinkError::Conflict {
                        path: path.to_string(),
                    });
                }
                Err(e)
                    if attempt < self.options.put_attempts
                        && !is_permanent(&e)
                        && Instant::now() < deadline =>
                {
                    SinkProgress::add(&self.options.progress.0.put_retries, 1);
                    backoff(attempt).await;
                }
                Err(e) => return Err(store_err("put", path)(e)),
            }
        }
    }

    /// Takes in the objects found after the position that no record names: written by a
    /// version of this crate before the chain, or copied in. Each is read to record its hash,
    /// count and seconds.
    async fn adopt(&mut self) -> Result<(), SinkError> {
        let position = self.position().map(|p| p.timestamp());
        let kind_dir = self.dest.path(T::KIND.dir());
        let offset = match position.and_then(second) {
            Some(p) => self
                .dest
                .path(&format!("{}/dt={}", T::KIND.dir(), p.format("%Y-%m-%d"))),
            None => kind_dir.clone(),
        };
        let kind_prefix = format!("{kind_dir}/");
        let mut found: Vec<(i64, i64, String)> =
            self.dest
                .store
                .list_with_offset(Some(&kind_dir), &offset)
                .try_filter_map(|m| {
                    let rel = m
                        .location
                        .as_ref()
                        .strip_prefix(&kind_prefix)
                        .map(str::to_owned);
                    async move {
                        Ok(rel.and_then(|rel| parse_object_name(&rel).map(|(a, b)| (a, b, rel))))
                    }
                })
                .try_collect()
                .await
                .map_err(store_err("list", &kind_dir))?;
        found.retain(|(_, last, _)| position.is_none_or(|p| *last >= p));
        if found.is_empty() {
            return Ok(());
        }
        found.sort();
        let mut at = position;
        let mut objects = Vec::new();
        for (first, last, name) in found {
            if at.is_some_and(|p| first < p) {
                return Err(SinkError::Layout {
                    prefix: self.location(),
                    reason: format!(
                        "object `{name}` overlaps the checkpoint's position ({}); was it copied \
                         in by hand?",
                        at.and_then(second).unwrap_or_default()
                    ),
                });
            }
            let body = chain::get(&self.dest, &self.kind_path(&name)).await?;
            let raw = gunzip(&body).ok_or_else(|| SinkError::Layout {
                prefix: self.location(),
                reason: format!("object `{name}` is not a whole gzip object"),
            })?;
            at = Some(last + 1);
            objects.push(ObjectEntry {
                sha256: chain::sha256_hex(&raw),
                records: raw.iter().filter(|b| **b == b'\n').count() as u64,
                first: second(first).unwrap_or_default(),
                last: second(last).unwrap_or_default(),
                received: None,
                name,
            });
            SinkProgress::add(&self.options.progress.0.objects_found, 1);
        }
        let mut entry = Entry::new(ChainEvent::Adopt, at.and_then(second), self.resume_from());
        entry.objects = objects;
        self.append(entry).await
    }
}

fn is_permanent(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. }
            | object_store::Error::InvalidPath { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
    )
}

/// Errors that say nothing about the request itself (a 5xx, a reset, a timeout).
fn is_transient_store(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
    )
}

/// Capped, jittered exponential backoff: about 200 ms, 400 ms, … up to 10 s.
async fn backoff(attempt: u32) {
    let base = 200u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let wait = base / 2 + fastrand::u64(0..=base / 2);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}
