//! `export` and `tail`, on the library's exactly-once export ([`Export`]): this module reads what
//! the library yields in one loop ([`drive`]) and hands it to a [`Writer`] (stdout, `-o FILE`,
//! the resumable file), and shows progress.

use crate::archive::{destination, open_archive, sink_options};
use crate::cli::{ExportArgs, TailArgs};
use crate::drive::drive;
use crate::env::Env;
use crate::error::{CliError, Exit};
use crate::kinds::{sent, whole_second, LogKind};
use crate::resume::{Expected, ExportFiles, Resume};
use crate::writer::{FileWriter, SinkWriter, StreamWriter, Writer};
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lago_audit_client::export::DEFAULT_SETTLE;
use lago_audit_client::pagination::Page;
use lago_audit_client::{Checkpoint, DateFilter, Export, ExportOptions, ExportProgress, Paginate};
use lago_audit_sink::{BatchLimits, SinkProgress};
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

/// `export`: every record of the window, exactly once.
pub async fn export<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &ExportArgs,
) -> Result<(), CliError> {
    let counters = ExportProgress::default();
    let store = SinkProgress::default();
    let opts = options(args, &counters);
    let to_store = crate::output::store_url(env.global.output.as_deref()).is_some();
    let watched = crate::metrics::Watched::of::<K>(&counters);
    let watched = if to_store {
        watched.store(&store)
    } else {
        watched
    };
    let _metrics = crate::metrics::serve(&args.metrics, watched, env.global.quiet).await?;
    if let Some(url) = crate::output::store_url(env.global.output.as_deref()) {
        if args.restart {
            return Err(CliError::new(
                Exit::Usage,
                "--restart: an object store is appended to, never rewritten",
            ));
        }
        // `--resume` is accepted: a store always continues from the checkpoint it holds.
        let options = sink_options(
            env,
            &args.batch,
            &args.archive,
            BatchLimits::default(),
            &store,
        )?;
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
        nothing_in_window::<K>(env, filters).await;
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
    let counters = ExportProgress::default();
    let watched = crate::metrics::Watched::of::<K>(&counters);
    let _metrics = crate::metrics::serve(&args.metrics, watched, env.global.quiet).await?;
    let events = K::list(&env.conn.client, &sent).follow(o.progress(counters));
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

/// After an export that wrote no record: says so on stderr, with the span of the records Lago
/// holds for the same filters without `--from`/`--to` (two one-record requests: the newest, and
/// the oldest), so an export whose window misses the data is not silent.
async fn nothing_in_window<K: LogKind>(env: &Env, filters: &K::Filters) {
    use lago_audit_client::export::Logged;
    let window = K::window(filters);
    let shown = |d: Option<lago_audit_client::DateFilter>, none: &str| {
        d.map_or_else(|| none.to_owned(), |d| d.to_string())
    };
    let asked = format!(
        "from {} to {}",
        shown(window.from, "the start"),
        shown(window.to, "now")
    );
    let mut all = filters.clone();
    *K::window_mut(&mut all) = crate::parse::Window::default();
    let all = sent::<K>(&all, chrono::Utc::now());
    let page = |n: i64| {
        let request = K::per_page(K::list(&env.conn.client, &all), 1);
        async move { request.fetch_page(n).await.ok() }
    };
    let held = match page(1).await {
        Some(newest) => {
            let total = newest.meta().total_count;
            let last = newest.into_items().into_iter().next();
            let first = match total {
                0 | 1 => last.clone(),
                n => page(n)
                    .await
                    .and_then(|p| p.into_items().into_iter().next()),
            };
            match (first, last) {
                (Some(a), Some(b)) => format!(
                    "; Lago holds {total} of them, logged from {} to {}",
                    a.logged_at().format("%Y-%m-%dT%H:%M:%SZ"),
                    b.logged_at().format("%Y-%m-%dT%H:%M:%SZ")
                ),
                _ => "; Lago holds none with these filters at any time".to_owned(),
            }
        }
        None => String::new(),
    };
    crate::note(&format!("0 {}s in the window {asked}{held}", K::NOUN));
}
