//! Where `export` and `tail` put what the library's export yields: one [`Writer`] trait, so
//! the loop (`drive`) that reads the export is written once. A writer is told of
//! each record and each safe point (a [`Checkpoint`]), and of how the export ended.
//!
//! - [`StreamWriter`]: stdout, or the file `tail -o FILE` appends to;
//! - [`FileWriter`]: the resumable `export -o FILE` (data, and a checkpoint file beside it);
//! - [`SinkWriter`]: an object store, `-o URL` (the records and checkpoints go on to a
//!   `lago_audit_sink::Sink`).

use crate::error::{CliError, Exit};
use crate::kinds::LogKind;
use crate::output::{write_error, Emitter, Format};
use crate::resume::{part_path, ExportFiles, Saved};
use lago_audit_client::{Checkpoint, ExportEvent};
use lago_audit_sink::{Sink, SinkError, WriteSummary};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Where an export's records go. See the [module documentation](self).
pub trait Writer<K: LogKind> {
    /// The records written by an earlier run that this one continues (a resume).
    fn before(&self) -> u64 {
        0
    }
    /// Writes one record.
    async fn record(&mut self, record: K::Record) -> Result<(), CliError>;
    /// A safe point: every record before `checkpoint` was passed to [`record`](Self::record).
    async fn checkpoint(&mut self, checkpoint: Checkpoint) -> Result<(), CliError>;
    /// The export ended: completes the output.
    async fn finish(self) -> Result<(), CliError>;
    /// Ctrl-C: keeps what can be kept, and says what to report.
    async fn interrupted(self) -> Result<(), CliError>;
    /// The export failed with `error` (or writing did, with `written`): keeps what can be
    /// resumed, and says so in the error.
    async fn failed(self, error: CliError, written: bool) -> CliError;
}

/// stdout, or a file appended to as records arrive (`tail -o FILE`). An export flushes at each
/// safe point; a follow flushes each record, so a reader sees it at once.
pub struct StreamWriter<K> {
    out: BufWriter<Box<dyn Write + Send>>,
    emitter: Emitter<K>,
    dest: Option<PathBuf>,
    follow: bool,
}

impl<K: LogKind> StreamWriter<K> {
    /// stdout.
    pub fn stdout(format: Format, width: usize, follow: bool) -> Self {
        Self {
            out: BufWriter::with_capacity(64 * 1024, Box::new(std::io::stdout())),
            emitter: Emitter::new(format, width),
            dest: None,
            follow,
        }
    }

    /// `path`, appended to (a follow never ends, so its file is not renamed at the end).
    pub fn append(path: &Path, format: Format, width: usize) -> Result<Self, CliError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| CliError::io(format!("cannot open {}", path.display()), &e))?;
        Ok(Self {
            out: BufWriter::with_capacity(64 * 1024, Box::new(file)),
            emitter: Emitter::new(format, width),
            dest: Some(path.to_owned()),
            follow: true,
        })
    }

    fn error(&self, e: &std::io::Error) -> CliError {
        write_error(e, self.dest.as_deref())
    }

    /// Ends the output: a follow closes only a JSON array; an export also writes the header
    /// of an empty CSV or table.
    fn end(mut self) -> Result<(), CliError> {
        if !self.follow || self.emitter.format() == Format::Json {
            let end = self.emitter.end(&mut self.out);
            end.map_err(|e| self.error(&e))?;
        }
        self.out.flush().map_err(|e| self.error(&e))
    }
}

impl<K: LogKind> Writer<K> for StreamWriter<K> {
    async fn record(&mut self, record: K::Record) -> Result<(), CliError> {
        let mut written = self.emitter.record(&mut self.out, &record);
        if self.follow {
            written = written.and_then(|()| self.out.flush());
        }
        written.map_err(|e| self.error(&e))
    }

    async fn checkpoint(&mut self, _: Checkpoint) -> Result<(), CliError> {
        // A safe point: let the reader have everything so far.
        self.out.flush().map_err(|e| self.error(&e))
    }

    async fn finish(self) -> Result<(), CliError> {
        self.end()
    }

    async fn interrupted(mut self) -> Result<(), CliError> {
        if self.follow {
            // Ctrl-C is how a follow ends.
            return self.end();
        }
        let _ = self.out.flush();
        Err(CliError::new(
            Exit::Interrupted,
            format!("interrupted after {} {}s", self.emitter.records(), K::NOUN),
        )
        .hint("export -o FILE keeps a checkpoint, so an interrupted export can continue with --resume"))
    }

    async fn failed(self, error: CliError, _: bool) -> CliError {
        error
    }
}

/// What the checkpoint file must say at a safe point: the library's checkpoint, and the output
/// written up to it.
#[derive(Clone)]
pub struct SafePoint {
    /// The library's checkpoint; `None` before the first one.
    pub checkpoint: Option<Checkpoint>,
    /// The length of the data file.
    pub bytes: u64,
    /// The records in it.
    pub records: u64,
    /// Whether the header (or opening bracket) is written.
    pub started: bool,
}

/// The resumable `export -o FILE`: data in `FILE.part`, safe points in `FILE.checkpoint.json`
/// (see [`resume`](crate::resume)).
pub struct FileWriter<K> {
    files: ExportFiles,
    emitter: Emitter<K>,
    dest: PathBuf,
    format: Format,
    filters: serde_json::Value,
    safe: SafePoint,
    before: u64,
}

impl<K: LogKind> FileWriter<K> {
    /// A new export into `dest` (`restart`: discarding an interrupted one), with a checkpoint
    /// from the start, so an export killed before its first safe point resumes.
    pub fn create(
        dest: &Path,
        restart: bool,
        format: Format,
        filters: serde_json::Value,
    ) -> Result<Self, CliError> {
        let files = ExportFiles::create(dest, restart)?;
        let safe = SafePoint {
            checkpoint: None,
            bytes: 0,
            records: 0,
            started: false,
        };
        let mut w = Self {
            files,
            emitter: Emitter::new(format, crate::output::table_width(true)),
            dest: dest.to_owned(),
            format,
            filters,
            safe,
            before: 0,
        };
        w.save()?;
        Ok(w)
    }

    /// Continues the interrupted export `saved` in `files` (checked to be of this kind, format
    /// and filters by [`ExportFiles::resume`]), in `format` (`None`: the saved one). The export
    /// continues from its [`resume_from`](Self::resume_from).
    pub fn resume(
        files: ExportFiles,
        saved: Saved<Checkpoint>,
        format: Option<Format>,
        filters: serde_json::Value,
    ) -> Result<Self, CliError> {
        // `ExportFiles::resume` checked the kind, format and filters against the saved ones.
        let dest = files.dest().to_owned();
        let format = format.unwrap_or(saved.format);
        let width = crate::output::table_width(true);
        let emitter = Emitter::resumed(format, width, saved.records, saved.started);
        // Until the first new safe point, the one this run started from (saving it again after
        // an interruption must keep both its checkpoint and its length).
        let safe = SafePoint {
            checkpoint: saved.checkpoint.clone(),
            bytes: files.data.bytes(),
            records: emitter.records(),
            started: emitter.started(),
        };
        Ok(Self {
            files,
            before: emitter.records(),
            emitter,
            dest,
            format,
            filters,
            safe,
        })
    }

    /// Where the export continues: the checkpoint of the interrupted export it resumes.
    pub fn resume_from(&self) -> Option<Checkpoint> {
        self.safe.checkpoint.clone()
    }

    fn save(&mut self) -> Result<(), CliError> {
        let saved = self.saved();
        self.files.save(&saved)
    }

    /// What the checkpoint file says now.
    fn saved(&self) -> Saved<Checkpoint> {
        Saved {
            tool: crate::resume::TOOL.into(),
            version: crate::resume::VERSION,
            kind: K::NAME.into(),
            format: self.format,
            filters: self.filters.clone(),
            bytes: self.safe.bytes,
            records: self.safe.records,
            started: self.safe.started,
            checkpoint: self.safe.checkpoint.clone(),
            finished: false,
        }
    }

    /// Nothing to resume: no record and no checkpoint yet.
    fn nothing_safe(&self) -> bool {
        self.safe.records == 0 && self.safe.checkpoint.is_none()
    }
}

impl<K: LogKind> Writer<K> for FileWriter<K> {
    fn before(&self) -> u64 {
        self.before
    }

    async fn record(&mut self, record: K::Record) -> Result<(), CliError> {
        self.emitter
            .record(&mut self.files.data, &record)
            .map_err(|e| write_error(&e, Some(&self.dest)))
    }

    async fn checkpoint(&mut self, checkpoint: Checkpoint) -> Result<(), CliError> {
        self.safe = SafePoint {
            checkpoint: Some(checkpoint),
            bytes: self.files.data.bytes(),
            records: self.emitter.records(),
            started: self.emitter.started(),
        };
        if self.files.due() {
            self.save()?;
        }
        Ok(())
    }

    async fn finish(mut self) -> Result<(), CliError> {
        match self.emitter.end(&mut self.files.data) {
            Ok(()) => {
                let receipt = Saved {
                    records: self.emitter.records(),
                    started: self.emitter.started(),
                    ..self.saved()
                };
                self.files.finish(receipt)
            }
            Err(e) => {
                let error = write_error(&e, Some(&self.dest));
                Err(self.failed(error, true).await)
            }
        }
    }

    async fn interrupted(mut self) -> Result<(), CliError> {
        self.save()?;
        Err(CliError::new(
            Exit::Interrupted,
            format!(
                "interrupted: {} {}s are safe in {}",
                self.safe.records,
                K::NOUN,
                part_path(&self.dest).display()
            ),
        )
        .hint("run the same command with --resume to continue"))
    }

    async fn failed(mut self, error: CliError, written: bool) -> CliError {
        if self.nothing_safe() {
            // Nothing to resume (a refused key, a wrong URL): leave no files.
            self.files.discard();
            return error;
        }
        if written {
            return error;
        }
        if let Err(e) = self.save() {
            return e;
        }
        error.add_hint(&format!(
            "{} {}s are safe in {} and the same command with --resume continues",
            self.safe.records,
            K::NOUN,
            part_path(&self.dest).display()
        ))
    }
}

type Event<R> = Result<ExportEvent<R>, lago_audit_client::Error>;

/// An object store (`-o s3://…`, `file:///…`): the records and checkpoints are handed on to a
/// [`lago_audit_sink::Sink`], which writes gzip NDJSON objects and keeps the checkpoint beside
/// them. The sink runs as a task reading a channel, so the export loop stays the same.
pub struct SinkWriter<K: LogKind> {
    tx: Option<tokio::sync::mpsc::Sender<Event<K::Record>>>,
    task: tokio::task::JoinHandle<Result<WriteSummary, SinkError>>,
    location: String,
    follow: bool,
}

impl<K: LogKind> SinkWriter<K> {
    /// Starts writing into `sink`, opened (and its start recorded) by the caller.
    pub fn start(sink: Sink<K::Record>, follow: bool) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Event<K::Record>>(1024);
        let location = sink.location();
        let mut sink = sink;
        let task = tokio::spawn(async move {
            let events = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
            sink.write(events).await
        });
        Self {
            tx: Some(tx),
            task,
            location,
            follow,
        }
    }

    /// `{prefix}/{kind}`, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    async fn send(&mut self, event: ExportEvent<K::Record>) -> Result<(), CliError> {
        let sent = match &self.tx {
            Some(tx) => tx.send(Ok(event)).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(())
        } else {
            // The sink stopped: its error is what `failed` reports.
            Err(CliError::new(Exit::Store, "the object store writer stopped").transient(true))
        }
    }

    /// Ends the stream of events (the sink seals what is confirmed and saves its checkpoint)
    /// and waits for the sink.
    async fn close(mut self) -> Result<WriteSummary, CliError> {
        self.tx = None;
        match self.task.await {
            Ok(Ok(summary)) => Ok(summary),
            Ok(Err(e)) => Err(CliError::store(&e)),
            Err(e) => Err(CliError::new(
                Exit::Failure,
                format!("the object store writer failed: {e}"),
            )),
        }
    }
}

impl<K: LogKind> Writer<K> for SinkWriter<K> {
    async fn record(&mut self, record: K::Record) -> Result<(), CliError> {
        self.send(ExportEvent::Record(record)).await
    }

    async fn checkpoint(&mut self, checkpoint: Checkpoint) -> Result<(), CliError> {
        self.send(ExportEvent::Checkpoint(checkpoint)).await
    }

    async fn finish(self) -> Result<(), CliError> {
        self.close().await.map(|_| ())
    }

    async fn interrupted(self) -> Result<(), CliError> {
        let (follow, location) = (self.follow, self.location.clone());
        let summary = self.close().await?;
        if follow {
            return Ok(());
        }
        let upto = summary.position.map_or_else(
            || "nothing yet".to_owned(),
            |p| format!("every record before {p}"),
        );
        Err(CliError::new(
            Exit::Interrupted,
            format!("interrupted: {upto} is stored in {location}"),
        )
        .hint("run the same command again to continue from the checkpoint there"))
    }

    async fn failed(self, error: CliError, written: bool) -> CliError {
        let location = self.location.clone();
        match self.close().await {
            // Writing failed because the sink did: its error says why.
            Err(e) if written => e,
            Err(e) => {
                // Both failed: report Lago's failure, and what the store said.
                error.add_hint(&format!("and the store: {}", e.message))
            }
            // Another export's checkpoint: the same command would fail the same way.
            Ok(_) if error.exit == Exit::Resume => error,
            Ok(_) => error.add_hint(&format!(
                "what was confirmed is stored in {location}, and the same command continues \
                 from there"
            )),
        }
    }
}
