//! The command line: global options, one subcommand per kind of log, one flag per filter.
//!
//! Every flag value is parsed and checked here, by clap's value parsers, so a bad value fails
//! with a message naming the flag and the reason before any request is sent.

use crate::error::EXIT_CODES_HELP;
use crate::kinds::{Activity, Api, LogKind, Security};
use crate::output::Format;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use lago_audit_client::config::DEFAULT_REQUEST_TIMEOUT;
use lago_audit_client::export::DEFAULT_SETTLE;
use lago_audit_client::export::{DEFAULT_MAX_PER_PAGE, DEFAULT_POLL_INTERVAL, DEFAULT_READ_AHEAD};
use lago_audit_client::ratelimit::DEFAULT_RATE_LIMIT;
use lago_audit_client::{
    ActivitySource, DateFilter, HttpMethod, HttpStatusFilter, RetryPolicy, SecurityLogType,
};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Read Lago's audit trail: activity logs, API logs and security logs.
///
/// `export` reads a whole window exactly once (and `--resume`s after an interruption); `tail`
/// follows new records until Ctrl-C. Try any command with `--demo`: it needs no Lago account.
#[derive(Parser, Debug)]
#[command(name = "lago-audit", version, after_help = EXIT_CODES_HELP)]
pub struct Invocation {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A command that reads logs, with the options every command takes.
#[derive(Debug)]
pub struct Cli {
    /// Options every command takes.
    pub global: Global,
    /// What to read.
    pub resource: Resource,
}

/// Reading logs, or describing the tool itself (completions, man page).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// The three kinds of log (boxed: their filters make them much larger than the others).
    #[command(flatten)]
    Read(Box<Resource>),
    /// Print the completion script for a shell, from this command line's own definition.
    ///
    /// bash: `lago-audit completions bash > ~/.local/share/bash-completion/completions/lago-audit`;
    /// zsh: `lago-audit completions zsh > "${fpath[1]}/_lago-audit"`;
    /// fish: `lago-audit completions fish > ~/.config/fish/completions/lago-audit.fish`;
    /// PowerShell: `lago-audit completions powershell | Out-String | Invoke-Expression` in $PROFILE.
    Completions {
        /// The shell.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write one page per command into a directory.
    ///
    /// `lago-audit man | man -l -` reads it; `lago-audit man --dir /usr/local/share/man/man1`
    /// installs every page.
    Man {
        /// Write lago-audit.1 and a page per subcommand (lago-audit-activity-logs-export.1, …)
        /// into this directory instead of printing the main page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// The command line with its full `--version` (crate version, Lago spec, commit): what parsing,
/// completions and the man page are all generated from.
pub fn command() -> clap::Command {
    Invocation::command().long_version(long_version())
}

/// Parses the process's arguments (as `Parser::try_parse` does, with the full `--version`).
pub fn parse() -> Result<Invocation, clap::Error> {
    let mut matches = command().try_get_matches()?;
    Invocation::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command()))
}

/// `info.version` of the Lago OpenAPI spec the client was generated from (`LAGO_AUDIT_OPENAPI_SPEC`
/// at build time, else the workspace's `openapi/lago-audit-logs.yaml`).
pub fn spec_version() -> &'static str {
    <lago_audit_client::Client as lago_audit_client::ClientInfo<
        lago_audit_client::config::Inner,
    >>::api_version()
}

/// What `lago-audit --version` prints after the name: the crate version, the Lago spec and, when
/// built from git or from a package made from it, the commit.
pub fn long_version() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let mut text = format!(
            "{}\nLago OpenAPI spec {}",
            env!("CARGO_PKG_VERSION"),
            spec_version()
        );
        let commit = env!("LAGO_AUDIT_COMMIT");
        if !commit.is_empty() {
            text.push_str("\ncommit ");
            text.push_str(commit);
        }
        text
    })
}

/// Options every command takes (they may come before or after the subcommand).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Lago API key (else LAGO_API_KEY). Prefer the variable: flags show in `ps`.
    #[arg(long, global = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Lago base URL, with or without /api/v1 (else LAGO_REGION, then LAGO_API_URL).
    #[arg(long, global = true, value_name = "URL", conflicts_with = "region")]
    pub api_url: Option<String>,
    /// Lago Cloud region: us, eu, or a base URL (else LAGO_REGION, then LAGO_API_URL).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Allow plain http:// to a host that is not loopback (a self-hosted Lago on a private network).
    #[arg(long, global = true)]
    pub allow_insecure_http: bool,
    /// Retries after a network error, 429 or 5xx, per request.
    #[arg(long, global = true, value_name = "N", default_value_t = RetryPolicy::default().max_retries,
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
    /// Time limit of one request attempt (e.g. 30s, 500ms, 2m) [default: the client's].
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration,
          help = format!("Time limit of one request attempt (e.g. 30s, 500ms, 2m) [default: {}]",
                         seconds(DEFAULT_REQUEST_TIMEOUT)))]
    pub timeout: Option<Duration>,

    /// Most requests per second, shared by every request (0: no limit) [default: the client's].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100_000),
          help = format!("Most requests per second, shared by every request (0: no limit) [default: \
                          the client's, {DEFAULT_RATE_LIMIT}, under Lago Cloud's 50 per organisation]"))]
    pub rate_limit: Option<u32>,

    /// Start a built-in fake Lago with seeded data and read from it (no account needed).
    #[arg(long, global = true, conflicts_with_all = ["api_key", "api_url", "region"])]
    pub demo: bool,
    /// With --demo: inject faults (5xx, resets, truncated bodies, 429s, inserts, shuffled ties).
    #[arg(long, global = true, requires = "demo")]
    pub demo_faults: bool,
    /// With --demo: how many activity and API logs the fake holds (security logs: a quarter).
    #[arg(long, global = true, value_name = "N", default_value_t = 20_000, requires = "demo",
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub demo_records: u64,

    /// Output format [default: table on a terminal, else ndjson].
    #[arg(long, short = 'f', global = true, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE (atomically: a temporary file beside it, then a rename) instead of stdout;
    /// for export and tail also an object store: file:///dir, s3://bucket/prefix,
    /// az://container/prefix, gs://bucket/prefix.
    #[arg(long, short = 'o', global = true, value_name = "FILE|URL")]
    pub output: Option<PathBuf>,
    /// No progress bar, no notes on stderr (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Show the client's requests, retries and waits on stderr (-vv: more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The kinds of audit log (named as the subcommands people type), each a [`LogKind`].
#[derive(Subcommand, Debug)]
#[allow(clippy::enum_variant_names)]
pub enum Resource {
    /// Activity logs: who changed what (plans, customers, invoices, …).
    #[command(subcommand)]
    ActivityLogs(KindCommand<Activity>),
    /// API logs: the API calls that changed data.
    #[command(subcommand)]
    ApiLogs(KindCommand<Api>),
    /// Security logs: sign-ins, API keys, roles, webhooks (needs Lago's security_logs add-on).
    #[command(subcommand)]
    SecurityLogs(KindCommand<Security>),
}

/// What to do with one kind of log: the same four commands for every kind.
#[derive(Subcommand, Debug)]
pub enum KindCommand<K: LogKind> {
    /// One page of records, newest first.
    List {
        /// Filters.
        #[command(flatten)]
        filters: K::Filters,
        /// Which page.
        #[command(flatten)]
        page: PageArgs,
    },
    /// One record by its id.
    Get {
        /// The record's id.
        #[arg(value_name = K::ID, value_parser = non_empty)]
        id: String,
    },
    /// Every record of the window, exactly once (with -o FILE: resumable).
    Export {
        /// Filters.
        #[command(flatten)]
        filters: K::Filters,
        /// Export settings.
        #[command(flatten)]
        export: ExportArgs,
    },
    /// Follow new records until Ctrl-C, one line each as they arrive.
    Tail {
        /// Filters.
        #[command(flatten)]
        filters: K::Filters,
        /// Follow settings.
        #[command(flatten)]
        tail: TailArgs,
    },
}

/// Lago's query parameters of `K` and the flags that set them (`to_date`, `--to`), from the flags'
/// own definitions: each filter's clap id is the parameter it sets.
pub fn parameter_flags<K: LogKind>() -> Vec<(String, String)> {
    let args = PageArgs::augment_args(K::Filters::augment_args(clap::Command::new(K::NAME)));
    args.get_arguments()
        .filter_map(|a| Some((a.get_id().to_string(), format!("--{}", a.get_long()?))))
        .collect()
}

impl<K: LogKind> KindCommand<K> {
    /// The filters, for the commands that take them.
    pub fn filters(&self) -> Option<&K::Filters> {
        match self {
            KindCommand::List { filters, .. }
            | KindCommand::Export { filters, .. }
            | KindCommand::Tail { filters, .. } => Some(filters),
            KindCommand::Get { .. } => None,
        }
    }
}

/// `--from` / `--to`, common to every list.
#[derive(Args, Debug, Clone, Default, serde::Serialize)]
pub struct Window {
    /// Oldest logged_at to include: a date (00:00:00 UTC) or an RFC 3339 date-time. Inclusive.
    #[arg(id = "from_date", long = "from", value_name = "DATE", value_parser = parse_date)]
    pub from: Option<DateFilter>,
    /// Newest logged_at to include: a date (00:00:00 UTC, so the rest of that day is left out)
    /// or an RFC 3339 date-time. Inclusive.
    #[arg(id = "to_date", long = "to", value_name = "DATE", value_parser = parse_date)]
    pub to: Option<DateFilter>,
}

/// `list` paging.
#[derive(Args, Debug, Clone)]
pub struct PageArgs {
    /// Page number, from 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Records per page.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub per_page: u32,
}

/// `export` settings.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Continue the interrupted export into -o FILE from the checkpoint kept beside it; when
    /// FILE is complete, say so and exit 0; when no export into it started, start one.
    #[arg(long, requires = "output")]
    pub resume: bool,
    /// Discard an interrupted export into -o FILE and start again.
    #[arg(long, requires = "output", conflicts_with = "resume")]
    pub restart: bool,
    /// Requests in flight at once [default: the library's].
    #[arg(long, value_name = "N", help = format!("Requests in flight at once [default: {DEFAULT_READ_AHEAD}]"), value_parser = clap::value_parser!(u32).range(1..=64))]
    pub read_ahead: Option<u32>,
    /// Largest page size to ask for [default: the library's].
    #[arg(long, value_name = "N", help = format!("Largest page size to ask for [default: {DEFAULT_MAX_PER_PAGE}]"), value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_per_page: Option<u32>,
    /// How far behind now the window ends when --to is not given, so late records are not
    /// missed [default: the library's].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help = format!("How far behind now the window ends when --to is not given, so late \
                          records are not missed [default: {}]", seconds(DEFAULT_SETTLE)))]
    pub settle: Option<Duration>,
    /// Write a log Lago stored twice (same id, or for API logs same content, in the same
    /// second) twice, instead of once.
    #[arg(long)]
    pub keep_duplicates: bool,
    /// Objects of an object store (-o URL).
    #[command(flatten)]
    pub batch: BatchArgs,
}

/// How large an object of `-o URL` may grow (a batch is cut at the first limit reached, and at
/// midnight UTC).
#[derive(Args, Debug, Clone, Default)]
pub struct BatchArgs {
    /// With -o URL: most records an object [default: 100000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_records: Option<u64>,
    /// With -o URL: most bytes of NDJSON an object, before gzip [default: 32 MiB].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_bytes: Option<u64>,
    /// With -o URL: most time of logged_at an object spans [default: none for export, 1m for tail].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub batch_span: Option<Duration>,
}

impl BatchArgs {
    /// The limits the flags ask for, over `base`.
    pub fn limits(&self, base: lago_audit_sink::BatchLimits) -> lago_audit_sink::BatchLimits {
        let mut limits = base;
        if let Some(n) = self.batch_records {
            limits = limits.max_records(n);
        }
        if let Some(n) = self.batch_bytes {
            limits = limits.max_bytes(n);
        }
        if let Some(span) = self.batch_span {
            limits = limits.max_span(Some(span));
        }
        limits
    }
}

/// `tail` settings.
#[derive(Args, Debug, Clone)]
pub struct TailArgs {
    /// Time between polls [default: the library's].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help = format!("Time between polls [default: {}]", seconds(DEFAULT_POLL_INTERVAL)))]
    pub poll_interval: Option<Duration>,
    /// How long to wait for late records before showing a second [default: the library's].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help = format!("How long to wait for late records before showing a second [default: {}]",
                         seconds(DEFAULT_SETTLE)))]
    pub settle: Option<Duration>,
    /// Objects of an object store (-o URL).
    #[command(flatten)]
    pub batch: BatchArgs,
    /// With -o URL: give up when Lago or the store has been failing this long [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_outage: Option<Duration>,
    /// With -o URL: a status line on stderr this often (0: none).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub status_every: Duration,
}

pub(crate) fn non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

pub(crate) fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_owned())
    }
}

pub(crate) fn parse_date(s: &str) -> Result<DateFilter, String> {
    s.trim().parse::<DateFilter>().map_err(|_| {
        "expected a date (2025-03-31) or an RFC 3339 date-time (2025-03-31T12:00:00Z)".into()
    })
}

pub(crate) fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim();
    match s.split_once('@') {
        Some((user, host)) if !user.is_empty() && !host.is_empty() && !s.contains(' ') => {
            Ok(s.to_owned())
        }
        _ => Err("expected an e-mail address such as jane@example.com".into()),
    }
}

pub(crate) fn parse_uuid(s: &str) -> Result<uuid::Uuid, String> {
    uuid::Uuid::parse_str(s.trim())
        .map_err(|_| "expected a uuid such as 1a901a90-1a90-1a90-1a90-1a901a901a90".into())
}

pub(crate) fn parse_uuid_text(s: &str) -> Result<String, String> {
    parse_uuid(s).map(|u| u.to_string())
}

/// Checks `s` (any case) against an open enum's known values.
fn known<T: From<String>>(s: &str, known: &[&str]) -> Result<T, String> {
    let lower = s.trim().to_ascii_lowercase();
    if known.contains(&lower.as_str()) {
        Ok(T::from(lower))
    } else {
        Err(format!("expected one of {}", known.join(", ")))
    }
}

pub(crate) fn parse_activity_source(s: &str) -> Result<ActivitySource, String> {
    known(s, ActivitySource::KNOWN)
}

/// Lago stores methods in lower case; its own CLI's upper case matches nothing.
pub(crate) fn parse_http_method(s: &str) -> Result<HttpMethod, String> {
    known(s, HttpMethod::KNOWN)
}

pub(crate) fn parse_log_type(s: &str) -> Result<SecurityLogType, String> {
    known(s, SecurityLogType::KNOWN)
}

pub(crate) fn parse_http_status(s: &str) -> Result<HttpStatusFilter, String> {
    s.trim()
        .to_ascii_lowercase()
        .parse::<HttpStatusFilter>()
        .map_err(|_| "expected failed, succeeded, or a status code from 100 to 599".into())
}

/// A duration as `--help` shows it and [`parse_duration`] reads it: `30s`, `1.5s`.
pub fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds (`1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let bad = || format!("expected a duration such as 500ms, 30s or 2m, got {s:?}");
    let (number, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0 * 365.0).contains(&seconds) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Window {
    /// Checks the bounds against each other: `--from` must not be after `--to`.
    pub fn check(&self) -> Result<(), String> {
        if let (Some(from), Some(to)) = (self.from, self.to) {
            if start_of(from) > start_of(to) {
                return Err(format!(
                    "invalid value for '--from': {from} is after --to {to}, so no record can match"
                ));
            }
        }
        Ok(())
    }
}

fn start_of(d: DateFilter) -> chrono::DateTime<chrono::Utc> {
    match d {
        DateFilter::Date(d) => d.and_time(chrono::NaiveTime::MIN).and_utc(),
        DateFilter::DateTime(t) => t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn the_long_version_names_the_spec() {
        let text = long_version();
        assert!(
            text.starts_with(concat!(env!("CARGO_PKG_VERSION"), "\n")),
            "{text}"
        );
        assert!(text.contains(&format!("Lago OpenAPI spec {}", spec_version())));
        assert!(spec_version()
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit()));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn enums_are_checked_and_lower_cased() {
        assert_eq!(parse_http_method("POST").unwrap(), HttpMethod::Post);
        assert!(parse_http_method("patch").is_err());
        assert_eq!(
            parse_http_status("Failed").unwrap(),
            HttpStatusFilter::Failed
        );
        assert_eq!(
            parse_http_status("422").unwrap(),
            HttpStatusFilter::code(422).unwrap()
        );
        assert!(parse_http_status("99").is_err());
        assert!(parse_activity_source("fornt").is_err());
    }

    #[test]
    fn windows_must_not_be_reversed() {
        let w = Window {
            from: Some("2025-05-01".parse().unwrap()),
            to: Some("2025-04-01".parse().unwrap()),
        };
        assert!(w.check().unwrap_err().contains("--from"));
        let same = Window {
            from: Some("2025-04-01".parse().unwrap()),
            to: Some("2025-04-01T00:00:00Z".parse().unwrap()),
        };
        assert!(same.check().is_ok());
    }
}
