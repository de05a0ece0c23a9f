//! `export` and `tail`, on the library's exactly-once export ([`Export`]): this module only
//! writes what the library yields, keeps its checkpoints beside `-o FILE`, and shows progress.

use crate::cli::{ExportArgs, TailArgs};
use crate::error::{explain, CliError, Exit};
use crate::kinds::LogKind;
use crate::output::{write_error, Emitter, Format};
use crate::records::Record;
use crate::resume::{ExportFiles, Resume, Saved};
use crate::run::Env;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lago_audit_client::{
    Checkpoint, DateFilter, Export, ExportEvent, ExportOptions, ExportProgress,
};
use std::io::{BufWriter, IsTerminal, Write};
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
}

impl Progress {
    fn start(env: &Env, counters: ExportProgress, before: u64) -> Progress {
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
        let (b, c) = (bar.clone(), counters.clone());
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
                b.set_message(format!(
                    "{rate:.0}/s {} req {} retries{waits}",
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
        }
    }

    /// Removes the bar; with `summary`, says what was done (only to a person at a terminal).
    async fn finish(self, env: &Env, noun: &str, dest: Option<&Path>, summary: bool) {
        // Stop the ticker first: it runs on another thread and would draw the bar again.
        self.ticker.abort();
        let _ = self.ticker.await;
        self.bar.finish_and_clear();
        if summary && env.chatty() {
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
            crate::note(&format!(
                "exported {} {noun}s{resumed}{duplicates} in {secs:.1} s, {rate:.0}/s",
                c.records()
            ));
            let to = dest.map_or(String::new(), |d| format!(" into {}", d.display()));
            crate::note(&format!(
                "  {} requests, {} retries, {} rate-limit waits{to}",
                c.requests(),
                c.retries(),
                c.rate_limit_waits()
            ));
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

/// The filters to send: security logs need a `to_date`, which for an export is "now" (the
/// export ends at now − settle anyway).
fn export_filters<K: LogKind>(filters: &K::Filters) -> K::Filters {
    let mut f = filters.clone();
    if K::NAME == "security-logs" && K::window(&f).to.is_none() {
        K::window_mut(&mut f).to = Some(DateFilter::DateTime(whole_second(chrono::Utc::now())));
    }
    f
}

fn whole_second(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// `export`: every record of the window, exactly once.
pub async fn export<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &ExportArgs,
) -> Result<(), CliError> {
    match env.global.output.clone() {
        Some(dest) => export_to_file::<K>(env, filters, args, &dest).await,
        None => export_to_stdout::<K>(env, filters, args).await,
    }
}

async fn export_to_stdout<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &ExportArgs,
) -> Result<(), CliError> {
    let counters = ExportProgress::default();
    let sent = export_filters::<K>(filters);
    let mut events = K::list(&env.conn.client, &sent).export(options(args, &counters));
    let progress = Progress::start(env, counters, 0);
    let mut out = BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let mut emitter = Emitter::<K::Record>::new(env.format, env.width());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let outcome: Result<(), CliError> = async {
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => break,
                    Some(Ok(ExportEvent::Record(r))) => emitter.record(&mut out, &r).map_err(|e| write_error(&e, None))?,
                    // A safe point: let the reader have everything so far.
                    Some(Ok(ExportEvent::Checkpoint(_))) => out.flush().map_err(|e| write_error(&e, None))?,
                    Some(Err(e)) => return Err(explain(&e, &env.context::<K>())),
                },
                _ = &mut ctrl_c => {
                    let _ = out.flush();
                    return Err(CliError::new(Exit::Interrupted, format!("interrupted after {} {}s", emitter.records(), <K::Record as Record>::NOUN))
                        .hint("export -o FILE keeps a checkpoint, so an interrupted export can continue with --resume"));
                }
            }
        }
        emitter.end(&mut out).map_err(|e| write_error(&e, None))?;
        out.flush().map_err(|e| write_error(&e, None))
    }
    .await;
    progress
        .finish(env, <K::Record as Record>::NOUN, None, outcome.is_ok())
        .await;
    outcome
}

/// What the checkpoint file must say at a safe point: the library's checkpoint, and the output
/// written up to it.
#[derive(Clone)]
struct SafePoint {
    checkpoint: Option<Checkpoint>,
    bytes: u64,
    records: u64,
    started: bool,
}

async fn export_to_file<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &ExportArgs,
    dest: &Path,
) -> Result<(), CliError> {
    let noun = <K::Record as Record>::NOUN;
    let filters_json = serde_json::to_value(filters).unwrap_or_default();
    let counters = ExportProgress::default();
    let mut opts = options(args, &counters);
    let width = crate::output::table_width(true);
    let resumed = if args.resume {
        match ExportFiles::resume::<Checkpoint>(dest)? {
            Resume::Continue(opened) => Some(*opened),
            Resume::Finished => {
                if !env.global.quiet {
                    crate::note(&format!(
                        "{} is complete: the export into it has finished, nothing to resume",
                        dest.display()
                    ));
                }
                return Ok(());
            }
            Resume::NotStarted => None,
        }
    } else {
        None
    };
    let (mut files, mut emitter, format, resumed_from) = if let Some((files, saved)) = resumed {
        let refuse = |m: String| {
            CliError::new(Exit::Resume, m).hint(
                "resume with the same command as the interrupted export, or start again with --restart",
            )
        };
        if saved.kind != K::NAME {
            return Err(refuse(format!(
                "the interrupted export into {} is of {}, not {}",
                dest.display(),
                saved.kind,
                K::NAME
            )));
        }
        let format = env.global.format.unwrap_or(saved.format);
        if format != saved.format {
            return Err(refuse(format!(
                "--format {} differs from the interrupted export's {}",
                format_name(format),
                format_name(saved.format)
            )));
        }
        if saved.filters != filters_json {
            return Err(refuse(format!(
                "the filters differ from the interrupted export's: {}",
                saved.filters
            )));
        }
        if let Some(c) = saved.checkpoint.clone() {
            opts = opts.resume_from(c);
        }
        let emitter = Emitter::<K::Record>::resumed(format, width, saved.records, saved.started);
        (files, emitter, format, saved.checkpoint)
    } else {
        let format = env.format;
        let mut files = ExportFiles::create(dest, args.restart)?;
        // A checkpoint from the start, so an export killed before its first safe point resumes.
        let first = files.saved(K::NAME, format, filters_json.clone(), &start_point());
        files.save(&first)?;
        (
            files,
            Emitter::<K::Record>::new(format, width),
            format,
            None,
        )
    };
    // Until the first new safe point, the one this run started from (saving it again after an
    // interruption must keep both its checkpoint and its length).
    let mut safe = SafePoint {
        checkpoint: resumed_from,
        bytes: files.data.bytes(),
        records: emitter.records(),
        started: emitter.started(),
    };
    let save = |files: &mut ExportFiles, safe: &SafePoint| -> Result<(), CliError> {
        let saved: Saved<Checkpoint> = files.saved(K::NAME, format, filters_json.clone(), safe);
        files.save(&saved)
    };

    let sent = export_filters::<K>(filters);
    let mut events = K::list(&env.conn.client, &sent).export(opts);
    let progress = Progress::start(env, counters, emitter.records());
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let outcome: Result<(), CliError> = async {
        loop {
            tokio::select! {
                event = events.next() => match event {
                    None => break,
                    Some(Ok(ExportEvent::Record(r))) => {
                        emitter.record(&mut files.data, &r).map_err(|e| write_error(&e, Some(dest)))?;
                    }
                    Some(Ok(ExportEvent::Checkpoint(c))) => {
                        safe = SafePoint {
                            checkpoint: Some(c),
                            bytes: files.data.bytes(),
                            records: emitter.records(),
                            started: emitter.started(),
                        };
                        if files.due() {
                            save(&mut files, &safe)?;
                        }
                    }
                    Some(Err(e)) => {
                        let mut err = explain(&e, &env.context::<K>());
                        if safe.records == 0 && safe.checkpoint.is_none() {
                            // Nothing to resume (a refused key, a wrong URL): leave no files.
                            return Err(err);
                        }
                        save(&mut files, &safe)?;
                        err.hint = Some(format!(
                            "{}; {} {noun}s are safe in {} and the same command with --resume continues",
                            err.hint.unwrap_or_default(),
                            safe.records,
                            crate::resume::part_path(dest).display()
                        ));
                        return Err(err);
                    }
                },
                _ = &mut ctrl_c => {
                    save(&mut files, &safe)?;
                    return Err(CliError::new(Exit::Interrupted, format!("interrupted: {} {noun}s are safe in {}", safe.records, crate::resume::part_path(dest).display()))
                        .hint("run the same command with --resume to continue"));
                }
            }
        }
        emitter.end(&mut files.data).map_err(|e| write_error(&e, Some(dest)))?;
        Ok(())
    }
    .await;
    progress
        .finish(env, noun, Some(dest), outcome.is_ok())
        .await;
    match outcome {
        Ok(()) => files.finish(),
        Err(e) => {
            if safe.records == 0 && safe.checkpoint.is_none() && e.exit != Exit::Interrupted {
                files.discard();
            }
            Err(e)
        }
    }
}

fn start_point() -> SafePoint {
    SafePoint {
        checkpoint: None,
        bytes: 0,
        records: 0,
        started: false,
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Table => "table",
        Format::Json => "json",
        Format::Ndjson => "ndjson",
        Format::Csv => "csv",
    }
}

impl ExportFiles {
    /// The checkpoint record of a safe point of this export.
    fn saved(
        &self,
        kind: &str,
        format: Format,
        filters: serde_json::Value,
        safe: &SafePoint,
    ) -> Saved<Checkpoint> {
        Saved {
            tool: crate::resume::TOOL.into(),
            version: crate::resume::VERSION,
            kind: kind.into(),
            format,
            filters,
            bytes: safe.bytes,
            records: safe.records,
            started: safe.started,
            checkpoint: safe.checkpoint.clone(),
        }
    }
}

/// `tail`: new records as they arrive, one flushed line each, until Ctrl-C.
pub async fn tail<K: LogKind>(
    env: &Env,
    filters: &K::Filters,
    args: &TailArgs,
) -> Result<(), CliError> {
    let mut sent = filters.clone();
    let window = K::window_mut(&mut sent);
    if window.from.is_none() {
        // From now on (or, in the demo, from its first new record), not the whole history.
        let from = env
            .conn
            .demo_tail_from
            .unwrap_or_else(|| whole_second(chrono::Utc::now()));
        window.from = Some(DateFilter::DateTime(from));
    }
    if K::NAME == "security-logs" && window.to.is_none() {
        // Lago requires to_date on security logs; the follow stream stops there.
        window.to = Some(DateFilter::DateTime(
            chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap_or_default(),
        ));
    }
    let mut o = ExportOptions::default();
    let demo = env.conn.demo_tail_from.is_some();
    if let Some(every) = args
        .poll_interval
        .or(demo.then_some(Duration::from_secs(1)))
    {
        o = o.poll_interval(every);
    }
    if let Some(settle) = args.settle.or(demo.then_some(Duration::ZERO)) {
        o = o.settle(settle);
    }
    let mut events = K::list(&env.conn.client, &sent).follow(o);
    let dest = env.global.output.as_deref();
    let mut out: Box<dyn Write> = match dest {
        // A tail never ends, so its file is appended to as it goes, not renamed at the end.
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| CliError::io(format!("cannot open {}", path.display()), &e))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut emitter = Emitter::<K::Record>::new(env.format, env.width());
    if env.chatty() {
        let settle = match args.settle.or(demo.then_some(Duration::ZERO)) {
            Some(s) => format!("{} s", s.as_secs_f64()),
            None => "the default settle margin, 60 s".to_owned(),
        };
        crate::note(&format!(
            "following new records, each shown once it is older than {settle} (Lago stores logs \
             through a queue); Ctrl-C stops"
        ));
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            event = events.next() => match event {
                None => break,
                Some(Ok(ExportEvent::Record(r))) => {
                    let mut line = Vec::with_capacity(1024);
                    emitter.record(&mut line, &r).map_err(|e| write_error(&e, dest))?;
                    out.write_all(&line).and_then(|()| out.flush()).map_err(|e| write_error(&e, dest))?;
                }
                Some(Ok(ExportEvent::Checkpoint(_))) => {}
                Some(Err(e)) => return Err(explain(&e, &env.context::<K>())),
            },
            _ = &mut ctrl_c => break,
        }
    }
    if env.format == Format::Json {
        emitter.end(&mut out).map_err(|e| write_error(&e, dest))?;
    }
    out.flush().map_err(|e| write_error(&e, dest))
}
