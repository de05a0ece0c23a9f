//! The exactly-once writer: [`Sink`].

use crate::batch::{complete_before, BatchLimits, Batcher, Sealed};
use crate::destination::{Cas, Destination};
use crate::format::{Format, SinkRecord};
use crate::layout::{object_name, parse_object_name, second, CHECKPOINT_FILE, STATE_DIR};
use crate::SinkError;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt, TryStreamExt};
use lago_audit_client::{Checkpoint, ExportEvent};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
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
    limits: BatchLimits,
    put_attempts: u32,
    checkpoint_every: Duration,
    progress: SinkProgress,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            format: Format::Lago,
            limits: BatchLimits::default(),
            put_attempts: 5,
            checkpoint_every: Duration::from_secs(60),
            progress: SinkProgress::default(),
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
    /// Batch limits (default [`BatchLimits::default`]; [`BatchLimits::for_follow`] for `tail`).
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
}

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
    position: AtomicU64,
    held: AtomicU64,
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
    /// Checkpoints saved.
    pub fn checkpoints(&self) -> u64 {
        self.0.checkpoints.load(Ordering::Relaxed)
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

/// The checkpoint file: `{prefix}/{kind}/_lago-audit/checkpoint.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct State {
    v: u32,
    kind: String,
    format: String,
    /// Every record logged before this instant is in an object.
    position: Option<DateTime<Utc>>,
    /// The export's checkpoint to resume from (at or before `position`; records before
    /// `position` are skipped).
    export: Option<Checkpoint>,
    /// The newest object written.
    last_object: Option<String>,
    objects: u64,
    records: u64,
    /// Which writer saved it, and its count: tells a lost answer from another writer.
    writer: String,
    seq: u64,
    updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
enum Version {
    Absent,
    Native(UpdateVersion),
    Generation(u64),
}

/// Writes one kind of log into a [`Destination`], exactly once. See the [crate documentation]
/// (crate) for the guarantees and the layout.
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
    state: Option<State>,
    version: Version,
    writer: String,
    _record: PhantomData<fn(T)>,
}

impl<T> std::fmt::Debug for Sink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("destination", &self.dest.url())
            .field("position", &self.state.as_ref().and_then(|s| s.position))
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

impl<T: SinkRecord> Sink<T> {
    /// Opens the destination for `T`'s kind of log: reads its checkpoint (if any), checks it
    /// belongs to this kind and format, and adopts any object written after it by a run that
    /// was killed before saving its checkpoint. Then [`resume_from`](Self::resume_from) says
    /// where the export must start.
    pub async fn open(destination: &Destination, options: SinkOptions) -> Result<Self, SinkError> {
        let mut sink = Self {
            dest: destination.clone(),
            options,
            state: None,
            version: Version::Absent,
            writer: uuid::Uuid::new_v4().to_string(),
            _record: PhantomData,
        };
        sink.refresh(true).await?;
        Ok(sink)
    }

    /// The export checkpoint to start the export from (`None`: from the request's `from_date`).
    /// Records the export yields that are already stored are skipped, so it may start earlier.
    pub fn resume_from(&self) -> Option<Checkpoint> {
        self.state.as_ref().and_then(|s| s.export.clone())
    }

    /// Every record logged before this instant is in the store.
    pub fn position(&self) -> Option<DateTime<Utc>> {
        self.state.as_ref().and_then(|s| s.position)
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

    fn checkpoint_path(&self) -> Path {
        self.dest
            .path(&format!("{}/{STATE_DIR}/{CHECKPOINT_FILE}", T::KIND.dir()))
    }
    fn generations_dir(&self) -> Path {
        self.dest
            .path(&format!("{}/{STATE_DIR}/generations", T::KIND.dir()))
    }
    fn generation_path(&self, g: u64) -> Path {
        self.dest.path(&format!(
            "{}/{STATE_DIR}/generations/{g:020}.json",
            T::KIND.dir()
        ))
    }

    /// Consumes an export's events (from [`resume_from`](Self::resume_from)) and writes them.
    /// Returns when the stream ends (after sealing its last batch and saving the checkpoint) or
    /// at the first error. After an error nothing is half-done at the destination: call `write`
    /// again with a new export from [`resume_from`](Self::resume_from) (it re-reads the
    /// destination first), or [`open`](Self::open) again.
    ///
    /// Dropping the future mid-way (a kill) leaves the destination consistent too. In a local
    /// directory, though, a write already handed to a blocking thread still completes after the
    /// drop; a new writer started in the same process before it does is refused as concurrent.
    /// Give it a moment, as a new process would.
    pub async fn write<S>(&mut self, events: S) -> Result<WriteSummary, SinkError>
    where
        S: Stream<Item = Result<ExportEvent<T>, lago_audit_client::Error>>,
    {
        self.refresh(false).await?;
        let mut summary = WriteSummary {
            position: self.position(),
            ..WriteSummary::default()
        };
        let start = self.position().map(|p| p.timestamp());
        let mut batcher = Batcher::<T>::new(self.options.format, self.options.limits, start);
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
                    // Nothing open: every record before `complete` is stored; save now and
                    // then, so a quiet follow resumes near its end.
                    if !batcher.is_open()
                        && last_save.elapsed() >= self.options.checkpoint_every
                        && self.position().map(|p| p.timestamp()) < Some(complete)
                    {
                        self.advance(complete, &mut seen, None, 0).await?;
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
                self.advance(c, &mut seen, None, 0).await?;
            }
        }
        progress.0.held.store(0, Ordering::Relaxed);
        summary.position = self.position();
        Ok(summary)
    }

    async fn deliver(
        &mut self,
        sealed: Sealed,
        seen: &mut VecDeque<(i64, Checkpoint)>,
        summary: &mut WriteSummary,
    ) -> Result<(), SinkError> {
        let name = object_name(sealed.first, sealed.last);
        let path = self.dest.path(&format!("{}/{name}", T::KIND.dir()));
        let found = self.put_once(&path, sealed.body.clone()).await?;
        let p = &self.options.progress.0;
        if found {
            summary.objects_found += 1;
            SinkProgress::add(&p.objects_found, 1);
        } else {
            summary.objects += 1;
            SinkProgress::add(&p.objects, 1);
            SinkProgress::add(&p.bytes, sealed.body.len() as u64);
        }
        summary.records += sealed.records;
        SinkProgress::add(&p.records, sealed.records);
        let _ = sealed.raw_bytes;
        self.advance(sealed.cut, seen, Some(name), sealed.records)
            .await
    }

    /// Saves the checkpoint at `cut` (every record before it stored), with the newest export
    /// checkpoint at or before it.
    async fn advance(
        &mut self,
        cut: i64,
        seen: &mut VecDeque<(i64, Checkpoint)>,
        object: Option<String>,
        records: u64,
    ) -> Result<(), SinkError> {
        let mut export = self.state.as_ref().and_then(|s| s.export.clone());
        while seen.front().is_some_and(|(c, _)| *c <= cut) {
            if let Some((_, c)) = seen.pop_front() {
                export = Some(c);
            }
        }
        let mut next = self.state.clone().unwrap_or_else(|| self.fresh_state());
        next.position = second(cut);
        next.export = export;
        if object.is_some() {
            next.objects += 1;
            next.last_object = object;
        }
        next.records += records;
        self.save(next).await
    }

    fn fresh_state(&self) -> State {
        State {
            v: 1,
            kind: T::KIND.dir().to_owned(),
            format: self.options.format.as_str().to_owned(),
            position: None,
            export: None,
            last_object: None,
            objects: 0,
            records: 0,
            writer: self.writer.clone(),
            seq: 0,
            updated_at: Utc::now(),
        }
    }

    /// Re-reads the checkpoint; on `open`, takes it, else checks it is still the one this writer
    /// saved. Then adopts objects written after it.
    async fn refresh(&mut self, first: bool) -> Result<(), SinkError> {
        let (state, version) = self.read_state().await?;
        // Changed since this writer read or saved it, and not by this writer (a save whose
        // answer was lost after the last attempt is still this writer's): another exporter.
        let ours = state.as_ref().is_some_and(|s| s.writer == self.writer);
        if !first && version != self.version && state != self.state && !ours {
            return Err(SinkError::Concurrent {
                prefix: self.location(),
            });
        }
        if let Some(s) = &state {
            let path = self.checkpoint_path().to_string();
            if s.v != 1 {
                return Err(SinkError::Checkpoint {
                    path,
                    reason: format!("format {} is not supported (this version writes 1)", s.v),
                });
            }
            if s.kind != T::KIND.dir() {
                return Err(SinkError::Checkpoint {
                    path,
                    reason: format!("it belongs to {}, not {}", s.kind, T::KIND),
                });
            }
            if s.format != self.options.format.as_str() {
                return Err(SinkError::Checkpoint {
                    path,
                    reason: format!(
                        "this prefix holds the `{}` format, not `{}`; use another prefix",
                        s.format, self.options.format
                    ),
                });
            }
        }
        self.state = state;
        self.version = version;
        self.adopt().await
    }

    async fn read_state(&self) -> Result<(Option<State>, Version), SinkError> {
        let (bytes, version) = match self.dest.cas {
            Cas::Native => {
                let path = self.checkpoint_path();
                match self.dest.store.get(&path).await {
                    Ok(got) => {
                        let v = UpdateVersion {
                            e_tag: got.meta.e_tag.clone(),
                            version: got.meta.version.clone(),
                        };
                        let bytes = got.bytes().await.map_err(store_err("get", &path))?;
                        (Some(bytes), Version::Native(v))
                    }
                    Err(object_store::Error::NotFound { .. }) => (None, Version::Absent),
                    Err(e) => return Err(store_err("get", &path)(e)),
                }
            }
            Cas::Generations => {
                let dir = self.generations_dir();
                let newest = self
                    .dest
                    .store
                    .list(Some(&dir))
                    .try_filter_map(|m| async move {
                        Ok(m.location
                            .filename()
                            .and_then(|f| f.strip_suffix(".json"))
                            .and_then(|g| g.parse::<u64>().ok()))
                    })
                    .try_fold(None, |max: Option<u64>, g| async move {
                        Ok(Some(max.map_or(g, |m| m.max(g))))
                    })
                    .await
                    .map_err(store_err("list", &dir))?;
                match newest {
                    None => (None, Version::Absent),
                    Some(g) => {
                        let path = self.generation_path(g);
                        let got = self.dest.store.get(&path).await;
                        let bytes = match got {
                            Ok(got) => got.bytes().await.map_err(store_err("get", &path))?,
                            // Pruned by a writer that moved on meanwhile: that is another
                            // writer at work.
                            Err(object_store::Error::NotFound { .. }) => {
                                return Err(SinkError::Concurrent {
                                    prefix: self.location(),
                                })
                            }
                            Err(e) => return Err(store_err("get", &path)(e)),
                        };
                        (Some(bytes), Version::Generation(g))
                    }
                }
            }
        };
        let state =
            match bytes {
                None => None,
                Some(b) => Some(serde_json::from_slice::<State>(&b).map_err(|e| {
                    SinkError::Checkpoint {
                        path: self.checkpoint_path().to_string(),
                        reason: format!("cannot be read ({e})"),
                    }
                })?),
            };
        Ok((state, version))
    }

    /// Saves `next` conditionally on the version read or saved last.
    async fn save(&mut self, mut next: State) -> Result<(), SinkError> {
        next.writer = self.writer.clone();
        next.seq = self.state.as_ref().map_or(0, |s| s.seq) + 1;
        next.updated_at = Utc::now();
        let body = Bytes::from(
            serde_json::to_vec_pretty(&next).map_err(|e| SinkError::Encode(e.to_string()))?,
        );
        let concurrent = || SinkError::Concurrent {
            prefix: self.location(),
        };
        let mut attempt = 0;
        let version = loop {
            attempt += 1;
            let (path, mode) = match (&self.version, self.dest.cas) {
                (Version::Absent, Cas::Native) => (self.checkpoint_path(), PutMode::Create),
                (Version::Native(v), _) => (self.checkpoint_path(), PutMode::Update(v.clone())),
                (Version::Absent, Cas::Generations) => (self.generation_path(1), PutMode::Create),
                (Version::Generation(g), _) => (self.generation_path(g + 1), PutMode::Create),
            };
            let opts = PutOptions {
                mode,
                ..PutOptions::default()
            };
            match self
                .dest
                .store
                .put_opts(&path, PutPayload::from(body.clone()), opts)
                .await
            {
                Ok(result) => {
                    break match self.dest.cas {
                        Cas::Native => Version::Native(result.into()),
                        Cas::Generations => Version::Generation(match self.version {
                            Version::Generation(g) => g + 1,
                            _ => 1,
                        }),
                    };
                }
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    // Our own write whose answer was lost, or another writer's?
                    let (state, version) = self.read_state().await?;
                    if state
                        .as_ref()
                        .is_some_and(|s| s.writer == next.writer && s.seq == next.seq)
                    {
                        break version;
                    }
                    return Err(concurrent());
                }
                Err(e) if attempt < self.options.put_attempts => {
                    let _ = e;
                    SinkProgress::add(&self.options.progress.0.put_retries, 1);
                    backoff(attempt).await;
                }
                Err(e) => return Err(store_err("put", &path)(e)),
            }
        };
        if let Version::Generation(g) = version {
            // `checkpoint.json` is a copy of the newest generation for people and tools; the
            // generation files are what writers compare. Older generations are pruned.
            let copy = self.checkpoint_path();
            let _ = self.dest.store.put(&copy, PutPayload::from(body)).await;
            if g > 1 {
                let _ = self.dest.store.delete(&self.generation_path(g - 1)).await;
            }
        }
        if let Some(p) = next.position {
            self.options
                .progress
                .0
                .position
                .store(u64::try_from(p.timestamp()).unwrap_or(0), Ordering::Relaxed);
        }
        SinkProgress::add(&self.options.progress.0.checkpoints, 1);
        self.state = Some(next);
        self.version = version;
        Ok(())
    }

    /// Writes `body` at `path` only if absent. Returns whether it was found already there with
    /// the same content (a retried upload whose first answer was lost, or a run that died before
    /// saving its checkpoint); other content is a [`SinkError::Conflict`].
    async fn put_once(&self, path: &Path, body: Bytes) -> Result<bool, SinkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let opts = PutOptions {
                mode: PutMode::Create,
                ..PutOptions::default()
            };
            match self
                .dest
                .store
                .put_opts(path, PutPayload::from(body.clone()), opts)
                .await
            {
                Ok(_) => return Ok(false),
                Err(object_store::Error::AlreadyExists { .. }) => {
                    let existing = match self.dest.store.get(path).await {
                        Ok(got) => got.bytes().await.map_err(store_err("get", path))?,
                        Err(e) => return Err(store_err("get", path)(e)),
                    };
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
                Err(e) if attempt < self.options.put_attempts && !is_permanent(&e) => {
                    SinkProgress::add(&self.options.progress.0.put_retries, 1);
                    backoff(attempt).await;
                }
                Err(e) => return Err(store_err("put", path)(e)),
            }
        }
    }

    /// Adopts the objects found after the checkpoint: a run killed between writing an object
    /// and saving its checkpoint left it there, whole (uploads are atomic). The next batch
    /// starts after it, so nothing is written twice.
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
        let mut next = self.state.clone().unwrap_or_else(|| self.fresh_state());
        let mut at = position;
        for (first, last, name) in found {
            if at.is_some_and(|p| first < p) {
                return Err(SinkError::Layout {
                    prefix: self.location(),
                    reason: format!(
                        "object `{name}` overlaps the checkpoint's position ({}); was the \
                         checkpoint replaced by hand?",
                        at.and_then(second).unwrap_or_default()
                    ),
                });
            }
            at = Some(last + 1);
            next.objects += 1;
            next.last_object = Some(name);
            SinkProgress::add(&self.options.progress.0.objects_found, 1);
        }
        next.position = at.and_then(second);
        self.save(next).await
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

/// Capped, jittered exponential backoff: about 200 ms, 400 ms, … up to 10 s.
async fn backoff(attempt: u32) {
    let base = 200u64.saturating_mul(1 << attempt.min(6)).min(10_000);
    let wait = base / 2 + fastrand::u64(0..=base / 2);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}
