//! An archive (`-o URL`): where it is, the sink's options the flags ask for, and where an export
//! into it starts, for `export` and the shipper alike.

use crate::cli::{ArchiveArgs, BatchArgs};
use crate::env::Env;
use crate::error::{CliError, Exit};
use crate::kinds::LogKind;
use chrono::{DateTime, Utc};
use lago_audit_client::Checkpoint;
use lago_audit_sink::{BatchLimits, Destination, Format, Layout, Sink, SinkOptions, SinkProgress};

/// The destination `-o URL` names.
pub(crate) fn destination(url: &str) -> Result<Destination, CliError> {
    Destination::parse(url).map_err(|e| crate::error::destination_error(url, &e))
}

/// The sink's options the flags ask for: a usage error when `--layout` and its flags disagree
/// with each other or with `--format`.
pub(crate) fn sink_options(
    env: &Env,
    batch: &BatchArgs,
    archive: &ArchiveArgs,
    base: BatchLimits,
    progress: &SinkProgress,
) -> Result<SinkOptions, CliError> {
    let format = env.format.sink().unwrap_or_default();
    let layout = batch.layout().map_err(|e| CliError::new(Exit::Usage, e))?;
    if let Layout::SecurityLake(_) = &layout {
        if format != Format::Ocsf {
            return Err(CliError::new(
                Exit::Usage,
                format!("--layout security-lake takes OCSF events, not --format {format}"),
            )
            .hint("add --format ocsf"));
        }
        if !cfg!(feature = "security-lake") {
            return Err(CliError::new(
                Exit::Usage,
                "--layout security-lake: this build has no `security-lake` feature",
            )
            .hint("cargo install lago-audit-cli (its default features include it)"));
        }
    }
    Ok(SinkOptions::default()
        .format(format)
        .layout(layout)
        .limits(batch.limits(base))
        .progress(progress.clone())
        .take_over(archive.take_over)
        .trust_store(archive.trust_store)
        .signing_key(archive.key.clone()))
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
