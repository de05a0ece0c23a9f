//! `export` and `tail`, on the library's exactly-once export ([`Export`]): this module reads what
//! the library yields in one loop ([`drive`]) and hands it to a [`Writer`] (stdout, `-o FILE`,
//! the resumable file), and shows progress.

use crate::cli::{ArchiveArgs, BatchArgs, ExportArgs, TailArgs};
use crate::env::Env;
use crate::error::{explain, CliError, Exit};
use crate::kinds::{sent, whole_second, LogKind};
use crate::resume::{Expected, ExportFiles, Resume};
use crate::writer::{FileWriter, SinkWriter, StreamWriter, Writer};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lago_audit_client::export::DEFAULT_SETTLE;
use lago_audit_client::{
    Checkpoint, DateFilter, Export, ExportEvent, ExportOptions, ExportProgress,
};
use lago_audit_sink::{BatchLimits, Destination, Sink, SinkOptions, SinkProgress};
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// The progress bar of an export, on stderr; hidden when stderr is not a terminal, with
/// `--quiet`, with `--verbose` (whose lines would tear it), and when the records themselves go
/// to the terminal.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
    counters: ExportProgress,
    started: Instant,
    before: u64,
    store: Option<SinkProgress>,
}

impl Progress {
    fn start(
        env: &Env,
        counters: ExportProgress,
        before: u64,
        store: Option<SinkProgress>,
    ) -> Progress {
        // Records printed to the same terminal would tear the bar: they are the progress then.
        let records_on_screen = env.global.output.is_none() && std::io::stdout().is_terminal();
        let visible = !env.global.quiet
            && env.global.verbose == 0
            && !records_on_screen
            && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::term_like_with_hz(Box::new(Narrow(console::Term::stderr())), 10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        // `wide_bar` takes what the rest leaves, so the line fits any terminal width.
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {human_pos}/{human_len} records [{wide_bar}] {msg} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_position(before);
        let (b, c, st) = (bar.clone(), counters.clone(), store.clone());
        let started = Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                if let Some(total) = c.expected_total() {
                    b.set_length(before + total.max(c.records()));
                }
                b.set_position(before + c.records());
                let rate = c.records() as f64 / started.elapsed().as_secs_f64().max(1e-3);
                let waits = match c.rate_limit_waits() {
                    0 => String::new(),
                    n => format!(" {n} waits"),
                };
                let objects = st.as_ref().map_or(String::new(), |s| {
                    let at = s.position().map_or(String::new(), |p| format!(" to {p}"));
                    format!(" {} objects, checkpoint{at}", s.objects())
                });
                b.set_message(format!(
                    "{rate:.0}/s {} req {} retries{waits}{objects}",
                    c.requests(),
                    c.retries()
                ));
                b.tick();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Progress {
            bar,
            ticker,
            counters,
            started: Instant::now(),
            before,
            store,
        }
    }

    /// Removes the bar; with `summary`, says what was done in one line (unless `--quiet`: to a
    /// person, and to a log when stderr is not a terminal).
    async fn finish(self, env: &Env, noun: &str, dest: Option<&str>, summary: bool) {
        // Stop the ticker first: it runs on another thread and would draw the bar again.
        self.ticker.abort();
        let _ = self.ticker.await;
        self.bar.finish_and_clear();
        if summary && !env.global.quiet {
            let c = &self.counters;
            let secs = self.started.elapsed().as_secs_f64();
            let rate = c.records() as f64 / secs.max(1e-3);
            let resumed = if self.before > 0 {
                format!(" (+{} before the resume)", self.before)
            } else {
                String::new()
            };
            let duplicates = match c.duplicates() {
                0 => String::new(),
                n => format!(" ({n} stored twice by Lago, written once)"),
            };
            let objects = self.store.as_ref().map_or(String::new(), |s| {
                let head = s
                    .head_digest()
                    .map_or(String::new(), |h| format!(", newest digest {h}"));
                format!(" ({} objects{head})", s.objects())
            });
            let to = dest.map_or(String::new(), |d| format!(" into {d}{objects}"));
            let counts = format!(
                "{} requests, {} retries, {} rate-limit waits",
                c.requests(),
                c.retries(),
                c.rate_limit_waits()
            );
            let done = format!("exported {} {noun}s{resumed}{duplicates}", c.records());
            if std::io::stderr().is_terminal() {
                // Two lines that fit 80 columns.
                crate::note(&format!("{done} in {secs:.1} s, {rate:.0}/s"));
                crate::note(&format!("  {counts}{to}"));
            } else {
                // One line, so a cron job's log holds one line per run.
                crate::note(&format!(
                    "{done}{to} in {secs:.1} s, {rate:.0}/s ({counts})"
                ));
            }
        }
    }
}

/// stderr as a terminal three columns narrower than it is, so the `^C` a terminal echoes on
/// Ctrl-C still fits on the bar's line: were it to wrap, the bar could no longer be cleared.
#[derive(Debug)]
struct Narrow(console::Term);

impl indicatif::TermLike for Narrow {
    fn width(&self) -> u16 {
        self.0.size().1.saturating_sub(3).max(20)
    }
    fn height(&self) -> u16 {
        self.0.size().0
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_up(n)
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_down(n)
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_right(n)
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.0.move_cursor_left(n)
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.0.write_line(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.0.write_str(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.clear_line()
    }
    fn flush(&self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The export options the flags ask for.
fn options(args: &ExportArgs, counters: &ExportProgress) -> ExportOptions {
    let mut o = ExportOptions::default().progress(counters.clone());
    if let Some(n) = args.read_ahead {
        o = o.read_ahead(n as usize);
    }
    if let Some(n) = args.max_per_page {
        o = o.max_per_page(n);
    }
    if let Some(s) = args.settle {
        o = o.settle(s);
    }
    o.keep_duplicates(args.keep_duplicates)
}

/// Reads `events` into `writer` until they end, fail, or Ctrl-C: the one export loop.
pub async fn drive<K, W, S>(env: &Env, events: S, writer: W) -> Result<(), CliError>
where
    K: LogKind,
    W: Writer<K>,
    S: Stream<Item = Result<ExportEvent<K::Record>, lago_audit_client::Error>> + Unpin,
{
    drive_until::<K, W, S>(env, events, writer, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// [`drive`], stopped by `stop` (Ctrl-C for [`drive`]; also SIGTERM for a shipper).
pub(crate) async fn drive_until<K, W, S>(
    env: &Env,
    mut events: S,
    mut writer: W,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), CliError>
where
    K: LogKind,
    W: Writer<K>,
    S: Stream<Item = Result<ExportEvent<K::Record>, lago_audit_client::Error>> + Unpin,
{
    tokio::pin!(stop);
    loop {
        let written = tokio::select! {
            event = events.next() => match event {
                None => return writer.finish().await,
                Some(Ok(ExportEvent::Record(r))) => writer.record(r).await,
                Some(Ok(ExportEvent::Checkpoint(c))) => writer.checkpoint(c).await,
                Some(Err(e)) => {
                    let error = explain(&e, &env.context::<K>());
                    return Err(writer.failed(error, false).await);
                }
            },
            () = &mut stop => return writer.interrupted().await,
        };
        if let Err(e) = written {
            return Err(writer.failed(e, true).await);
        }
    }
}

/// `export`: every record of the window, exactly once.
pub async fn export<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &ExportArgs,
) -> Result<(), CliError> {
    let counters = ExportProgress::default();
    let opts = options(args, &counters);
    if let Some(url) = crate::output::store_url(env.global.output.as_deref()) {
        if args.restart {
            return Err(CliError::new(
                Exit::Usage,
                "--restart: an object store is appended to, never rewritten",
            ));
        }
        // `--resume` is accepted: a store always continues from the checkpoint it holds.
        let store = SinkProgress::default();
        let options = sink_options(
            env,
            &args.batch,
            &args.archive,
            BatchLimits::default(),
            &store,
        );
        let from = K::window(filters).start_instant();
        let (sink, start) =
            open_archive::<K>(&destination(url)?, options, &args.archive, from, None).await?;
        let writer = SinkWriter::<K>::start(sink, false);
        let opts = match start.resume {
            Some(c) => opts.resume_from(c),
            None => opts,
        };
        let location = writer.location().to_owned();
        let (progress_of, to) = (Some(store), Some(location.as_str()));
        return run_export::<K, _>(
            env,
            filters,
            start.from,
            opts,
            counters,
            writer,
            to,
            progress_of,
        )
        .await;
    }
    match env.global.output.clone() {
        Some(dest) => {
            let filters_json = serde_json::to_value(filters).unwrap_or_default();
            let Some(writer) = open_file::<K>(env, args, &dest, filters_json)? else {
                return Ok(());
            };
            let opts = match writer.resume_from() {
                Some(c) => opts.resume_from(c),
                None => opts,
            };
            let to = dest.display().to_string();
            run_export::<K, _>(env, filters, None, opts, counters, writer, Some(&to), None).await
        }
        None => {
            let writer = StreamWriter::<K>::stdout(env.format, env.width(), false);
            run_export::<K, _>(env, filters, None, opts, counters, writer, None, None).await
        }
    }
}

/// The resumable file of `export -o FILE`; `None` when `--resume` finds the export into it
/// finished.
fn open_file<K: LogKind>(
    env: &Env,
    args: &ExportArgs,
    dest: &Path,
    filters: serde_json::Value,
) -> Result<Option<FileWriter<K>>, CliError> {
    if args.resume {
        let flags = crate::cli::parameter_flags::<K>();
        let expected = Expected {
            kind: K::NAME,
            format: env.global.format,
            filters: &filters,
            flags: &flags,
        };
        match ExportFiles::resume::<Checkpoint>(dest, &expected)? {
            Resume::Continue(opened) => {
                let (files, saved) = *opened;
                return FileWriter::resume(files, saved, env.global.format, filters).map(Some);
            }
            Resume::Finished => {
                if !env.global.quiet {
                    crate::note(&format!(
                        "{} is complete: the export into it has finished, nothing to resume",
                        dest.display()
                    ));
                }
                return Ok(None);
            }
            Resume::NotStarted => {}
        }
    }
    FileWriter::create(dest, args.restart, env.format, filters).map(Some)
}

/// The destination `-o URL` names.
pub(crate) fn destination(url: &str) -> Result<Destination, CliError> {
    Destination::parse(url).map_err(|e| crate::error::destination_error(url, &e))
}

/// The sink's options the flags ask for.
pub(crate) fn sink_options(
    env: &Env,
    batch: &BatchArgs,
    archive: &ArchiveArgs,
    base: BatchLimits,
    progress: &SinkProgress,
) -> SinkOptions {
    SinkOptions::default()
        .format(env.format.sink().unwrap_or_default())
        .limits(batch.limits(base))
        .progress(progress.clone())
        .take_over(archive.take_over)
        .trust_store(archive.trust_store)
        .signing_key(archive.key.clone())
}

/// Where an export into an archive starts.
pub(crate) struct ArchiveStart {
    /// The export checkpoint the archive holds.
    pub resume: Option<Checkpoint>,
    /// Else the instant to start at (the request's `from_date`), when it differs from the flag's.
    pub from: Option<DateTime<Utc>>,
}

/// Opens the archive at `dest` and decides where the export starts, so that a restart never
/// loses a record:
///
/// - the archive's export checkpoint, or else its position, whatever `--from` says, unless
///   `--from` is later: that would leave a gap, refused unless `--accept-gap` (then recorded);
/// - a new archive starts at `from`, or at `start_now` (a `tail` without `--from`), recorded as
///   the archive's start, so a restart before the first object still continues from there;
/// - a position older than Lago's retention is said loudly and recorded as a gap.
pub(crate) async fn open_archive<K: LogKind>(
    dest: &Destination,
    options: SinkOptions,
    archive: &ArchiveArgs,
    from: Option<DateTime<Utc>>,
    start_now: Option<DateTime<Utc>>,
) -> Result<(Sink<K::Record>, ArchiveStart), CliError> {
    use lago_audit_sink::SinkRecord;
    let mut sink = Sink::<K::Record>::open(dest, options)
        .await
        .map_err(|e| CliError::store(&e))?;
    let store = |e: lago_audit_sink::SinkError| CliError::store(&e);
    let Some(position) = sink.position() else {
        if let Some(at) = from.or(start_now) {
            sink.start(at).await.map_err(store)?;
        }
        return Ok((
            sink,
            ArchiveStart {
                resume: None,
                from: start_now.filter(|_| from.is_none()),
            },
        ));
    };
    if let Some(from) = from.filter(|f| *f > position) {
        if !archive.accept_gap {
            return Err(CliError::new(
                Exit::Usage,
                format!(
                    "--from {} is later than the archive's position {position}: the records \
                     between them would be missing from {}",
                    from.to_rfc3339(),
                    sink.location()
                ),
            )
            .hint(
                "drop --from to continue from the position, or add --accept-gap to skip that \
                 span and record the gap in the archive",
            ));
        }
        let detail = "--from later than the position, with --accept-gap";
        sink.record_gap(from, true, "accepted", detail)
            .await
            .map_err(store)?;
        return Ok((
            sink,
            ArchiveStart {
                resume: None,
                from: Some(from),
            },
        ));
    }
    let kind = <K::Record as SinkRecord>::KIND;
    let retention = chrono::Duration::from_std(kind.retention()).unwrap_or_default();
    let kept_from = Utc::now() - retention;
    if position < kept_from {
        crate::note(&format!(
            "warning: {} stopped at {position}, older than Lago keeps {kind} ({} days): records \
             logged between then and {} may be gone; the span is recorded in the archive as a gap",
            sink.location(),
            retention.num_days(),
            kept_from.format("%Y-%m-%dT%H:%M:%SZ")
        ));
        // Declared, not skipped: what Lago still returns of that span is stored all the same.
        let detail = "the position was older than Lago's retention: records may be gone";
        sink.record_gap(kept_from, false, "retention", detail)
            .await
            .map_err(store)?;
    }
    let resume = sink.resume_from();
    let from = resume.is_none().then_some(position);
    Ok((sink, ArchiveStart { resume, from }))
}

/// Runs an export into `writer`, with its progress bar; `from` overrides the filters' start.
#[allow(clippy::too_many_arguments)]
async fn run_export<K: LogKind, W: Writer<K>>(
    env: &Env,
    filters: &K::Filters,
    from: Option<DateTime<Utc>>,
    opts: ExportOptions,
    counters: ExportProgress,
    writer: W,
    dest: Option<&str>,
    store: Option<SinkProgress>,
) -> Result<(), CliError> {
    // Security logs need a `to_date`, which for an export is now (it ends at now − settle anyway).
    let mut sent = sent::<K>(filters, chrono::Utc::now());
    if let Some(from) = from {
        K::window_mut(&mut sent).from = Some(DateFilter::DateTime(from));
    }
    let events = K::list(&env.conn.client, &sent).export(opts);
    let progress = Progress::start(env, counters, writer.before(), store);
    let outcome = drive::<K, W, _>(env, events, writer).await;
    let empty = outcome.is_ok() && progress.counters.records() + progress.before == 0;
    progress.finish(env, K::NOUN, dest, outcome.is_ok()).await;
    if empty && !env.global.quiet {
        crate::run::nothing_in_window::<K>(env, filters).await;
    }
    outcome
}

/// `tail`: new records as they arrive, one flushed line each, until Ctrl-C.
pub async fn tail<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &TailArgs,
) -> Result<(), CliError> {
    // The follow stream of a kind that requires `to_date` stops there: the end of time.
    let end = chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default();
    let mut sent = sent::<K>(filters, end);
    // Without --from: from now on (or, in the demo, from its first new record), not the whole
    // history; an archive continues from its own position instead.
    let now = env
        .conn
        .demo_tail_from
        .unwrap_or_else(|| whole_second(chrono::Utc::now()));
    let mut o = ExportOptions::default();
    let demo = env.conn.demo_tail_from.is_some();
    if let Some(every) = args
        .poll_interval
        .or(demo.then_some(Duration::from_secs(1)))
    {
        o = o.poll_interval(every);
    }
    let settle = args.settle.or(demo.then_some(Duration::ZERO));
    if let Some(settle) = settle {
        o = o.settle(settle);
    }
    if let Some(url) = crate::output::store_url(env.global.output.as_deref()) {
        return crate::ship::ship::<K>(env, &sent, now, args, o, url).await;
    }
    let window = K::window_mut(&mut sent);
    if window.from.is_none() {
        window.from = Some(DateFilter::DateTime(now));
    }
    let events = K::list(&env.conn.client, &sent).follow(o);
    let writer = match env.global.output.as_deref() {
        Some(path) => StreamWriter::<K>::append(path, env.format, env.width())?,
        None => StreamWriter::<K>::stdout(env.format, env.width(), true),
    };
    if env.chatty() {
        let settle = match settle {
            Some(s) => format!("{} s", s.as_secs_f64()),
            None => format!(
                "the default settle margin, {} s",
                DEFAULT_SETTLE.as_secs_f64()
            ),
        };
        crate::note(&format!(
            "following new records, each shown once it is older than {settle} (Lago stores logs \
             through a queue); Ctrl-C stops"
        ));
    }
    drive::<K, _, _>(env, events, writer).await
}
