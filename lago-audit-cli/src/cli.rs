//! The command line: global options, one subcommand per kind of log, one flag per filter.
//!
//! Every flag value is parsed and checked here, by clap's value parsers, so a bad value fails
//! with a message naming the flag and the reason before any request is sent.

use crate::error::exit_codes_help;
use crate::kinds::{Activity, Api, LogKind, Security};
use crate::output::Format;
use crate::parse::{parse_bytes, parse_duration, seconds};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use lago_audit_client::config::DEFAULT_REQUEST_TIMEOUT;
use lago_audit_client::export::DEFAULT_SETTLE;
use lago_audit_client::export::{DEFAULT_MAX_PER_PAGE, DEFAULT_POLL_INTERVAL, DEFAULT_READ_AHEAD};
use lago_audit_client::ratelimit::DEFAULT_RATE_LIMIT;
use lago_audit_client::RetryPolicy;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// Read Lago's audit trail: activity logs, API logs and security logs.
///
/// `export` reads a whole window exactly once (and `--resume`s after an interruption); `tail`
/// follows new records until Ctrl-C. Try any command with `--demo`: it needs no Lago account.
#[derive(Parser, Debug)]
#[command(name = "lago-audit", version, after_help = exit_codes_help())]
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
    /// Check an archive written with -o URL: is anything missing, has anything been changed?
    ///
    /// Checks every kind's folder under URL (the same URLs as -o, and any copy of the archive:
    /// `file:///dir` after `aws s3 sync`): the signed digests and their chain, every record of
    /// the checkpoint chain, every object's SHA-256, record count, seconds and dt= partition,
    /// and that no object a reader would read is missing from the chain. One line per problem,
    /// then a summary per kind. Exit 0: valid; 14: incomplete or altered; 2: bad flags.
    Verify(VerifyArgs),
    /// Write a new Ed25519 signing key (PKCS#8 PEM, mode 600) to FILE and its public key to
    /// FILE.pub, for `--signing-key` (or LAGO_AUDIT_SIGNING_KEY) and `verify --public-key`.
    Keygen {
        /// Where to write the private key (refused if it exists).
        #[arg(value_name = "FILE")]
        file: PathBuf,
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
    parse_from(std::env::args_os())
}

/// Parses `args` (the program's name first), then checks what clap cannot: the demo's own flags
/// need `--demo`, wherever each of them is given (a global flag may follow the subcommand, where
/// clap's `requires` would not see a `--demo` given before it).
pub fn parse_from<I, T>(args: I) -> Result<Invocation, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    let invocation =
        Invocation::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command()))?;
    let g = &invocation.global;
    if !g.demo {
        let given = [
            (g.demo_faults, "--demo-faults"),
            (g.demo_records.is_some(), "--demo-records"),
        ];
        if let Some((_, flag)) = given.into_iter().find(|(on, _)| *on) {
            return Err(command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{flag} works with --demo only: add --demo"),
            ));
        }
    }
    Ok(invocation)
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
    #[arg(long, global = true)]
    pub demo_faults: bool,
    /// With --demo: how many activity and API logs the fake holds (security logs: a quarter)
    /// [default: 20000].
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub demo_records: Option<u64>,

    /// Output format [default: table on a terminal, else ndjson].
    #[arg(long, short = 'f', global = true, value_enum)]
    pub format: Option<Format>,
    /// Write to FILE instead of stdout. list and get write a temporary file beside it and rename
    /// it at the end; export writes FILE.part (with a checkpoint for --resume) and renames it at
    /// the end; tail appends to FILE as records arrive. export and tail also take an object
    /// store: file:///dir, s3://bucket/prefix, az://container/prefix, gs://bucket/prefix.
    #[arg(long, short = 'o', global = true, value_name = "FILE|URL")]
    pub output: Option<PathBuf>,
    /// No progress bar, no notes on stderr (errors are still printed).
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Show the client's requests, retries and waits on stderr (-vv: more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// `--demo-records`, or its default.
    pub fn demo_records(&self) -> u64 {
        self.demo_records.unwrap_or(20_000)
    }
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
        #[arg(value_name = K::ID, value_parser = record_id)]
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
    /// The archive's life (-o URL).
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// Prometheus metrics and a health check.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// How large an object of `-o URL` may grow (a batch is cut at the first limit reached, and at
/// midnight UTC).
#[derive(Args, Debug, Clone, Default)]
pub struct BatchArgs {
    /// With -o URL: most records an object [default: 100000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_records: Option<u64>,
    /// With -o URL: most bytes of NDJSON an object, before gzip, e.g. 32MiB, 10MB, 500k
    /// [default: 32MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    pub batch_bytes: Option<u64>,
    /// With -o URL: most time of logged_at an object spans [default: none for export, 1m for tail;
    /// with --layout security-lake, 5m to 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub batch_span: Option<Duration>,
    /// With -o URL: how the objects are laid out. `hive`: gzip NDJSON under {kind}/dt=YYYY-MM-DD/.
    /// `security-lake`: Parquet of OCSF 1.3 events for Amazon Security Lake custom sources, under
    /// ext/{source}-{kind}-{class}/region=…/accountId=…/eventDay=…/ (needs --format ocsf,
    /// --lake-source, --lake-region and --lake-account-id).
    #[arg(long, value_enum, default_value_t = LayoutArg::Hive)]
    pub layout: LayoutArg,
    /// With --layout security-lake: the custom sources' common name; each kind writes one source
    /// per OCSF class, NAME-{activity|api|security}-{class_uid} (e.g. lago-api-4002).
    #[arg(long, value_name = "NAME")]
    pub lake_source: Option<String>,
    /// With --layout security-lake: the region of the partitions (the data lake's region).
    #[arg(long, value_name = "REGION")]
    pub lake_region: Option<String>,
    /// With --layout security-lake: the account id of the partitions (the AWS account that
    /// writes; for a source outside AWS, your choice).
    #[arg(long, value_name = "ID")]
    pub lake_account_id: Option<String>,
}

/// How the objects of `-o URL` are laid out (`--layout`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayoutArg {
    /// gzip NDJSON in Hive partitions.
    #[default]
    Hive,
    /// Parquet for Amazon Security Lake custom sources.
    #[value(name = "security-lake")]
    SecurityLake,
}

impl BatchArgs {
    /// The layout the flags ask for, checked.
    pub fn layout(&self) -> Result<lago_audit_sink::Layout, String> {
        let lake = (&self.lake_source, &self.lake_region, &self.lake_account_id);
        match self.layout {
            LayoutArg::Hive => match lake {
                (None, None, None) => Ok(lago_audit_sink::Layout::Hive),
                _ => Err(
                    "--lake-source, --lake-region and --lake-account-id go with --layout \
                          security-lake"
                        .into(),
                ),
            },
            LayoutArg::SecurityLake => match lake {
                (Some(source), Some(region), Some(account)) => {
                    lago_audit_sink::Lake::new(source, region, account)
                        .map(lago_audit_sink::Layout::SecurityLake)
                }
                _ => Err(
                    "--layout security-lake needs --lake-source, --lake-region and \
                          --lake-account-id (the partitions ext/{source}/region=…/accountId=…/)"
                        .into(),
                ),
            },
        }
    }
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

/// `verify` settings.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The archive: file:///dir, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix.
    #[arg(value_name = "URL")]
    pub url: String,
    /// Every digest must be signed by this key (a PEM public key from `keygen`, or the private
    /// key file itself).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
    /// The SHA-256 the newest digest must have (printed by the shipper): catches a rollback
    /// that drops the newest digests. Only with a single kind (--kind).
    #[arg(long, value_name = "HASH", requires = "kind")]
    pub expect_head: Option<String>,
    /// An unsigned archive is invalid, not only a warning.
    #[arg(long)]
    pub require_signature: bool,
    /// Only this kind's folder [default: every kind found].
    #[arg(long, value_enum)]
    pub kind: Option<VerifyKind>,
    /// Print every file checked, not only the problems (also -v).
    #[arg(long)]
    pub list: bool,
    /// The report as one JSON document on stdout (also --format json).
    #[arg(long)]
    pub json: bool,
    /// Also compare the archive with Lago, record by record, over the part still inside
    /// Lago's retention (30 days; 90 for security logs) and older than a minute: read again
    /// with an exactly-once export (the same credentials as the other commands: LAGO_API_KEY,
    /// or --demo), it names each record Lago has and the archive lacks, and each the archive
    /// has and Lago does not. Late arrivals and Lago's stored duplicates are explained, not
    /// flagged.
    #[arg(long)]
    pub against_lago: bool,
}

/// A kind of log, as `verify --kind` names it.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyKind {
    /// activity_logs/.
    #[value(name = "activity-logs")]
    Activity,
    /// api_logs/.
    #[value(name = "api-logs")]
    Api,
    /// security_logs/.
    #[value(name = "security-logs")]
    Security,
}

/// How an archive (-o URL) is continued: what may be skipped, who may write.
#[derive(Args, Debug, Clone, Default)]
pub struct ArchiveArgs {
    /// With -o URL: start at --from even though it is later than the archive's position,
    /// recording the span between them in the archive as a gap the operator accepted.
    #[arg(long)]
    pub accept_gap: bool,
    /// With -o URL: take the prefix from the writer that holds it, without waiting for its
    /// lease (5 min) to run out. Only when that writer is gone for good (its machine died).
    #[arg(long)]
    pub take_over: bool,
    /// With -o URL: sign the archive's digests with this Ed25519 key (PKCS#8, from `keygen`)
    /// [default: LAGO_AUDIT_SIGNING_KEY, else unsigned].
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<PathBuf>,
    /// The key `signing_key` names, once read (by `run`, before anything is sent).
    #[arg(skip)]
    pub key: Option<std::sync::Arc<lago_audit_sink::digest::SigningKey>>,
    /// With -o URL: do not check that the store refuses overwrites (If-None-Match / If-Match).
    /// On a store that ignores them, a second writer or a retried upload can overwrite data.
    #[arg(long)]
    pub trust_store: bool,
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
    /// The archive's life (-o URL).
    #[command(flatten)]
    pub archive: ArchiveArgs,
    /// With -o URL: give up when Lago or the store has been failing this long [default: never].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_outage: Option<Duration>,
    /// With -o URL: a status line on stderr this often (0: none).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub status_every: Duration,
    /// Prometheus metrics and a health check.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// A record's id: not empty, and not `.` or `..` (which would name another route).
pub(crate) fn record_id(s: &str) -> Result<String, String> {
    match s.trim() {
        "" => Err("must not be empty".into()),
        "." | ".." => Err(format!(
            "{s:?} is not an id: ids come from the `list` or `export` output"
        )),
        _ => Ok(s.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::*;
    use lago_audit_client::{HttpMethod, HttpStatusFilter};

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
    fn sizes_take_the_units_help_prints() {
        assert_eq!(parse_bytes("32M").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("32MiB").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("32 MiB").unwrap(), 32 << 20);
        assert_eq!(parse_bytes("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_bytes("10mib").unwrap(), 10 << 20);
        assert_eq!(parse_bytes("500k").unwrap(), 500 << 10);
        assert_eq!(parse_bytes("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_bytes("4096").unwrap(), 4096);
        for bad in ["", "0", "-1M", "10 parsecs", "MiB", "1e3"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
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
