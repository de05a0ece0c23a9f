//! `lago-audit verify URL` and `lago-audit keygen FILE`: an archive that proves itself complete
//! and unaltered, on `lago_audit_sink::verify`.

use crate::cli::{Global, VerifyArgs, VerifyKind};
use crate::error::{CliError, Exit};
use crate::kinds::{self, LogKind as _};
use lago_audit_client::{DateFilter, Export, ExportOptions, ExportProgress};
use lago_audit_sink::digest::{public_key_from, SigningKey};
use lago_audit_sink::verify::{against_lago, lago_window, verify, Report, VerifyOptions};
use lago_audit_sink::{Destination, LogKind};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The signing key `--signing-key` or `LAGO_AUDIT_SIGNING_KEY` names, if any.
pub fn signing_key(flag: Option<&Path>) -> Result<Option<Arc<SigningKey>>, CliError> {
    let from_env = std::env::var_os("LAGO_AUDIT_SIGNING_KEY").filter(|v| !v.is_empty());
    let (path, origin) = match (flag, &from_env) {
        (Some(p), _) => (p.to_owned(), "--signing-key"),
        (None, Some(p)) => (p.into(), "LAGO_AUDIT_SIGNING_KEY"),
        (None, None) => return Ok(None),
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        CliError::new(
            Exit::Config,
            format!(
                "cannot read the signing key {} ({origin}): {e}",
                path.display()
            ),
        )
    })?;
    let key = SigningKey::from_pkcs8(&bytes).map_err(|e| {
        CliError::new(
            Exit::Config,
            format!("the signing key {} ({origin}): {e}", path.display()),
        )
        .hint("`lago-audit keygen FILE` writes one")
    })?;
    Ok(Some(Arc::new(key)))
}

/// `keygen FILE`: a new key at FILE (mode 600, never over an existing file), its public half at
/// FILE.pub.
pub fn keygen(file: &Path) -> Result<(), CliError> {
    let pem = SigningKey::generate_pem().map_err(|e| CliError::new(Exit::Failure, e))?;
    let key =
        SigningKey::from_pkcs8(pem.as_bytes()).map_err(|e| CliError::new(Exit::Failure, e))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = options
        .open(file)
        .map_err(|e| CliError::io(format!("cannot create {}", file.display()), &e))?;
    out.write_all(pem.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| CliError::io(format!("cannot write {}", file.display()), &e))?;
    let mut public = file.as_os_str().to_owned();
    public.push(".pub");
    let public = std::path::PathBuf::from(public);
    std::fs::write(&public, key.public_key_pem())
        .map_err(|e| CliError::io(format!("cannot write {}", public.display()), &e))?;
    crate::note(&format!(
        "wrote the signing key {} (keep it secret) and its public key {}",
        file.display(),
        public.display(),
    ));
    // The fingerprint on stdout: digests name it, and it is worth writing down elsewhere.
    println!("fingerprint {}", key.fingerprint());
    Ok(())
}

fn kinds(k: Option<VerifyKind>) -> Vec<LogKind> {
    match k {
        Some(VerifyKind::Activity) => vec![LogKind::Activity],
        Some(VerifyKind::Api) => vec![LogKind::Api],
        Some(VerifyKind::Security) => vec![LogKind::Security],
        None => vec![LogKind::Activity, LogKind::Api, LogKind::Security],
    }
}

fn day(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// `--against-lago` for one kind `K`: an exactly-once export of the span [`lago_window`] gives,
/// compared with the archive. Says so in a warning when nothing is left to compare.
async fn compare<K: kinds::LogKind>(
    lago: &crate::config::Connection,
    attempts: u32,
    dest: &Destination,
    kind: LogKind,
    report: &mut Report,
) -> Result<(), CliError> {
    let Some(window) = lago_window(
        report,
        kind,
        chrono::Utc::now(),
        lago_audit_client::export::DEFAULT_SETTLE,
    ) else {
        report.warnings.push(
            "not compared with Lago: no part of the archive is inside Lago's retention and older than the settle margin".to_owned(),
        );
        return Ok(());
    };
    let mut filters = K::Filters::default();
    let w = K::window_mut(&mut filters);
    w.from = Some(DateFilter::DateTime(window.0));
    w.to = Some(DateFilter::DateTime(
        window.1 - chrono::Duration::seconds(1),
    ));
    let progress = ExportProgress::default();
    let events =
        K::list(&lago.client, &filters).export(ExportOptions::default().progress(progress.clone()));
    against_lago(dest, kind, report, window, events, 8)
        .await
        .map_err(|e| match e {
            lago_audit_sink::SinkError::Export(e) => crate::error::explain(
                &e,
                &crate::error::Context {
                    key_source: lago.key_source.clone(),
                    host: lago.host.clone(),
                    attempts,
                    noun: K::NOUN,
                    flags: Vec::new(),
                },
            ),
            lago_audit_sink::SinkError::Checkpoint { reason, .. } => {
                CliError::new(Exit::Usage, format!("--against-lago: {reason}"))
            }
            other => CliError::store(&other),
        })?;
    if let Some(d) = report.against_lago.as_mut() {
        d.lago_duplicates = progress.duplicates();
    }
    Ok(())
}

/// `verify URL`: one line per problem, a summary per kind; exit 0 valid, 14 invalid.
pub async fn run(args: &VerifyArgs, global: &Global) -> Result<(), CliError> {
    let quiet = global.quiet;
    // `--format json` is `--json`; `-v` lists every file, as `--list`.
    let json = args.json
        || match global.format {
            None | Some(crate::output::Format::Table) => false,
            Some(crate::output::Format::Json | crate::output::Format::Ndjson) => true,
            Some(other) => {
                return Err(CliError::new(
                    Exit::Usage,
                    format!("verify prints text or JSON, not {other:?}"),
                )
                .hint("use --format json (or --json)"))
            }
        };
    let list = args.list || global.verbose > 0;
    let dest = crate::archive::destination(&args.url)?;
    let public_key = match &args.public_key {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                CliError::new(
                    Exit::Usage,
                    format!("cannot read --public-key {}: {e}", path.display()),
                )
            })?;
            Some(public_key_from(&bytes).map_err(|e| {
                CliError::new(Exit::Usage, format!("--public-key {}: {e}", path.display()))
            })?)
        }
        None => None,
    };
    let options = VerifyOptions {
        public_key,
        expect_head: args.expect_head.clone(),
        require_signature: args.require_signature,
        ..VerifyOptions::default()
    };
    let mut reports = Vec::new();
    let mut lago: Option<crate::config::Connection> = None;
    for kind in kinds(args.kind) {
        let Some(mut report) = verify(&dest, kind, &options)
            .await
            .map_err(|e| CliError::store(&e))?
        else {
            continue;
        };
        if args.against_lago {
            let (name, noun) = match kind {
                LogKind::Activity => (kinds::Activity::NAME, kinds::Activity::NOUN),
                LogKind::Api => (kinds::Api::NAME, kinds::Api::NOUN),
                LogKind::Security => (kinds::Security::NAME, kinds::Security::NOUN),
            };
            if lago.is_none() {
                lago = Some(crate::config::connect(global, false, name, noun).await?);
            }
            let (c, attempts) = (lago.as_ref().expect("connected above"), global.retries + 1);
            let r = &mut report;
            match kind {
                LogKind::Activity => {
                    compare::<kinds::Activity>(c, attempts, &dest, kind, r).await?
                }
                LogKind::Api => compare::<kinds::Api>(c, attempts, &dest, kind, r).await?,
                LogKind::Security => {
                    compare::<kinds::Security>(c, attempts, &dest, kind, r).await?
                }
            }
        }
        reports.push(report);
    }
    if reports.is_empty() {
        return Err(CliError::new(
            Exit::Unverified,
            format!(
                "no archive at {}: no checkpoint chain and no object of any kind",
                args.url
            ),
        )
        .hint("verify takes the URL given to -o (file:///dir, s3://bucket/prefix, …)"));
    }
    let valid = reports.iter().all(Report::is_valid);
    if json {
        let doc = serde_json::json!({ "valid": valid, "kinds": reports });
        println!("{doc:#}");
    } else {
        print_text(&dest, &reports, list, quiet);
    }
    if valid {
        Ok(())
    } else {
        let problems: usize = reports.iter().map(|r| r.problems.len()).sum();
        let noun = if problems == 1 { "problem" } else { "problems" };
        Err(CliError::new(
            Exit::Unverified,
            format!("{problems} {noun}: the archive is incomplete or altered"),
        ))
    }
}

fn print_text(dest: &Destination, reports: &[Report], list: bool, quiet: bool) {
    let mut out = std::io::stdout().lock();
    for r in reports {
        if list {
            for f in &r.files {
                let _ = writeln!(
                    out,
                    "{} {}/{}",
                    if f.valid { "valid  " } else { "INVALID" },
                    r.location,
                    f.path
                );
            }
        }
        for p in &r.problems {
            let at = if p.path.is_empty() {
                r.location.clone()
            } else {
                format!("{}/{}", r.location, p.path)
            };
            let _ = writeln!(out, "{}: {at}: {}", p.code, p.detail);
        }
        if !quiet {
            for w in &r.warnings {
                let _ = writeln!(out, "warning: {}: {w}", r.location);
            }
        }
        if let Some(d) = &r.against_lago {
            for n in &d.late {
                let _ = writeln!(
                    out,
                    "late: {}: record {} ({}) is in Lago, not in the archive: Lago made it readable after the archive had read its second (a longer settle margin would have waited for it)",
                    r.location,
                    n.id,
                    day(Some(n.logged_at))
                );
            }
            let _ = writeln!(
                out,
                "{}: against Lago {}..{}: {} records in Lago, {} in the archive, {} in both; {} late, {} in declared gaps, {} stored duplicates in Lago",
                r.location,
                day(d.from),
                day(d.to),
                d.lago_records,
                d.archive_records,
                d.matched,
                d.late.len(),
                d.in_gaps,
                d.lago_duplicates
            );
        }
        let gaps = match r.gaps.len() {
            0 => "no declared gap".to_owned(),
            n => format!(
                "{n} declared gaps ({})",
                r.gaps
                    .iter()
                    .map(|g| format!("{}..{}: {}", day(g.from), day(Some(g.to)), g.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        let _ = writeln!(
            out,
            "{}: {}/{} digests valid, {}/{} objects valid, {} records, coverage {}..{}, {gaps}; {}",
            r.location,
            r.digests_valid,
            r.digests,
            r.objects_valid,
            r.objects,
            r.records,
            day(r.coverage_from),
            day(r.coverage_to),
            match (&r.head, r.signed) {
                (Some(h), true) => format!("signed, newest digest {h}"),
                (Some(h), false) => format!("unsigned, newest digest {h}"),
                (None, _) => "no digest".to_owned(),
            }
        );
    }
    let _ = dest;
}
