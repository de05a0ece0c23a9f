//! What went wrong, said so that a person can act on it: one line, a hint, and an exit code per
//! class of failure.

use lago_audit_client::{ConfigError, Error as LagoError, KeySource};
use std::fmt;
use std::io;

/// The exit codes, one per class of failure, as `--help` lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything went well (or stdout was closed by the reader, as `| head` does).
    Ok = 0,
    /// A failure with no class of its own (a file could not be written, …).
    Failure = 1,
    /// A bad flag or flag value; nothing was sent.
    Usage = 2,
    /// The configuration is incomplete or wrong (no API key, a bad URL).
    Config = 3,
    /// Lago refused the API key (401).
    Auth = 4,
    /// The organisation or key may not read these logs (403).
    Forbidden = 5,
    /// No such record or route (404).
    NotFound = 6,
    /// Lago refused the query (422).
    Invalid = 7,
    /// Still rate limited after every retry (429).
    RateLimited = 8,
    /// Lago (or a proxy) kept failing (5xx).
    Server = 9,
    /// Lago could not be reached, or the connection failed.
    Network = 10,
    /// Lago's answer did not have the expected shape.
    Decode = 11,
    /// An interrupted export cannot be resumed as asked.
    Resume = 12,
    /// The destination (an object store, a directory given as a URL) failed.
    Store = 13,
    /// `verify`: the archive is incomplete or altered.
    Unverified = 14,
    /// Interrupted by Ctrl-C (an export keeps its checkpoint).
    Interrupted = 130,
}

/// The destinations `-o` takes besides a file, as error messages list them.
pub const STORE_FORMS: &str =
    "file:///absolute/dir, s3://bucket/prefix, az://container/prefix or gs://bucket/prefix";

/// The table of exit codes, as `--help` prints it: every [`Exit`] once, in order. The functions
/// of this module are where a failure gets its code: [`explain`] for Lago's answers,
/// [`config_error`] for the configuration, [`store_error`] and [`destination_error`] for an
/// object store, [`CliError::io`] for files; a bad flag is clap's (exit 2, in `main`).
pub const EXIT_CODES: &[(Exit, &str)] = &[
    (
        Exit::Ok,
        "success (also when the reader closes stdout, as `| head` does)",
    ),
    (
        Exit::Failure,
        "other failure (e.g. the output file cannot be written)",
    ),
    (
        Exit::Usage,
        "bad flag or flag value, a mistyped -o URL, or an -o naming a directory (nothing was sent)",
    ),
    (
        Exit::Config,
        "configuration: no API key, bad URL or region, no object store credentials",
    ),
    (Exit::Auth, "401: Lago refused the API key"),
    (
        Exit::Forbidden,
        "403: audit logs need Lago premium, or the key may not read them",
    ),
    (Exit::NotFound, "404: no such record"),
    (Exit::Invalid, "422: Lago refused the query"),
    (
        Exit::RateLimited,
        "429: still rate limited after every retry",
    ),
    (Exit::Server, "5xx: Lago kept failing"),
    (Exit::Network, "network: Lago could not be reached"),
    (
        Exit::Decode,
        "Lago's answer did not have the expected shape",
    ),
    (
        Exit::Resume,
        "--resume cannot continue as asked: other kind, format or filters, or a file no export \
         of this command finished",
    ),
    (
        Exit::Store,
        "the object store (-o URL) failed or refused: unknown bucket, refused key, wrong region, \
         or another exporter writes to the same prefix",
    ),
    (
        Exit::Unverified,
        "verify: the archive is incomplete or altered (each problem on its own line)",
    ),
    (
        Exit::Interrupted,
        "interrupted by Ctrl-C (export -o keeps its checkpoint: --resume continues)",
    ),
];

/// The list of exit codes shown at the end of `--help`, from [`EXIT_CODES`].
pub fn exit_codes_help() -> String {
    let mut text = String::from("Exit codes:\n");
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("  {:<4} {meaning}\n", *code as u8));
    }
    text.push_str(
        "\nEnvironment: LAGO_API_KEY, LAGO_REGION (us, eu or a URL), LAGO_API_URL; for -o URL \
         each store's own (AWS_*, AZURE_STORAGE_*, GOOGLE_*).",
    );
    text
}

/// A failure to report: one line, an optional hint, an exit code.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub exit: Exit,
    /// What happened, one line.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Whether trying again later may succeed (Lago or the store is down for a while).
    pub transient: bool,
    /// The store refused the credentials (401/403): expired, revoked, or never allowed.
    pub refused_credentials: bool,
}

impl CliError {
    /// A failure of class `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Self {
            exit,
            message: message.into(),
            hint: None,
            transient: false,
            refused_credentials: false,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds `more` to the hint (after a `;` when there is one already).
    pub fn add_hint(mut self, more: &str) -> Self {
        self.hint = Some(match self.hint.take() {
            Some(h) if !h.is_empty() => format!("{h}; {more}"),
            _ => more.to_owned(),
        });
        self
    }

    /// Marks the failure as one that trying again later may cure.
    pub fn transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// A failure of the object store (`-o URL`): see [`store_error`].
    pub fn store(e: &lago_audit_sink::SinkError) -> Self {
        let mut error = store_error(e);
        error.refused_credentials =
            e.refused_credentials() || error.message.contains("refused the credentials");
        error
    }

    /// A file could not be read or written.
    pub fn io(what: impl fmt::Display, e: &io::Error) -> Self {
        Self::new(Exit::Failure, format!("{what}: {e}"))
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The library's configuration error, in the command line's words: the flags and variables
/// that set the field, never the library's method names.
pub fn config_error(e: &ConfigError) -> CliError {
    let (message, hint) = match e {
        ConfigError::MissingApiKey => (
            "no Lago API key".to_owned(),
            "set LAGO_API_KEY (or pass --api-key), or try --demo to use a built-in fake Lago",
        ),
        ConfigError::InsecureUrl { url } => (
            format!("refusing to send the API key in clear text to {url:?}"),
            "use https, or pass --allow-insecure-http for a self-hosted Lago on a private network",
        ),
        ConfigError::InvalidUrl { .. } => (
            e.to_string(),
            "--region / LAGO_REGION take us, eu or Lago's base URL; --api-url / LAGO_API_URL take \
             the base URL (with or without /api/v1)",
        ),
        ConfigError::InvalidApiKey => (e.to_string(), "check --api-key / LAGO_API_KEY"),
        _ => (
            e.to_string(),
            "check --api-url, --region and the LAGO_* variables",
        ),
    };
    CliError::new(Exit::Config, message).hint(hint)
}

/// `-o URL` could not be used as given: a store whose settings are missing (exit 3, naming the
/// variables), a directory that cannot be created (exit 13), or a URL the sink refuses (exit 2).
pub fn destination_error(url: &str, e: &lago_audit_sink::SinkError) -> CliError {
    if let Some(missing) = lago_audit_sink::preflight::missing::<&str, &str>(url, &[]) {
        return CliError::new(Exit::Config, format!("-o {url}: {missing}"))
            .hint("set them in the environment of this command; nothing was read from Lago");
    }
    let text = e.to_string();
    if url.starts_with("file:") && text.contains("cannot create") {
        return CliError::new(Exit::Store, text)
            .hint("-o file:///dir needs a directory this user can create and write to");
    }
    CliError::new(Exit::Usage, text).hint(format!("-o takes a file, or {}", STORE_FORMS))
}

/// A failure of the object store, in one line: the store's own error code read out of its
/// answer, and for the failures a first run meets (unknown bucket or container, refused key,
/// wrong region, no credentials from the metadata server) what to set. Those are not transient:
/// a shipper stops on them instead of waiting them out.
pub fn store_error(e: &lago_audit_sink::SinkError) -> CliError {
    let text = e.to_string();
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))?;
        Some(text[start..start + end].trim().to_owned())
    };
    let code = tag("Code").unwrap_or_default();
    // Where the store was asked: `object store, get p/activity_logs/…`.
    let what = text.split(": ").next().unwrap_or("object store").to_owned();
    let fixed = |exit: Exit, message: String, hint: &str| {
        CliError::new(exit, format!("{message} ({what})"))
            .hint(hint)
            .transient(false)
    };
    let metadata = text.contains("169.254.169.254") || text.contains("metadata.google.internal");
    // S3 answers a request to the wrong region with a redirect that has no Location.
    let code = if code.is_empty() && text.contains("redirect without LOCATION") {
        "PermanentRedirect".to_owned()
    } else {
        code
    };
    match code.as_str() {
        "NoSuchBucket" => fixed(
            Exit::Store,
            "the bucket does not exist (S3 answered NoSuchBucket)".into(),
            "create it, or correct the bucket in -o s3://BUCKET/prefix (and AWS_ENDPOINT_URL, \
             for a server other than AWS)",
        ),
        "ContainerNotFound" => fixed(
            Exit::Store,
            "the container does not exist in this storage account (Azure answered \
             ContainerNotFound)"
                .into(),
            "create it, or correct -o az://CONTAINER/prefix and AZURE_STORAGE_ACCOUNT_NAME",
        ),
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "InvalidToken"
        | "ExpiredToken"
        | "InvalidClientTokenId"
        | "TokenRefreshRequired" => fixed(
            Exit::Store,
            format!("S3 refused the credentials ({code})"),
            "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN",
        ),
        "AuthenticationFailed" | "AuthorizationFailure" | "InvalidAuthenticationInfo" => fixed(
            Exit::Store,
            format!("Azure refused the credentials ({code})"),
            "check AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or the SAS token)",
        ),
        "PermanentRedirect"
        | "AuthorizationHeaderMalformed"
        | "IllegalLocationConstraintException" => {
            let region = tag("Region")
                .map(|r| format!(": it is in {r}"))
                .unwrap_or_default();
            fixed(
                Exit::Store,
                format!("the bucket is in another region than the one asked ({code}){region}"),
                "set AWS_REGION to the bucket's region",
            )
        }
        "AccessDenied" | "AuthorizationPermissionMismatch" | "Forbidden" => fixed(
            Exit::Store,
            format!("the store refused access ({code})"),
            "the credentials work, but may not list, read and write this prefix: grant those",
        ),
        _ if metadata => fixed(
            Exit::Config,
            "no credentials in the environment, so the instance metadata server was asked, and \
             it gave none"
                .into(),
            "set the store's credentials in the environment (AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY; AZURE_STORAGE_ACCOUNT_KEY; GOOGLE_APPLICATION_CREDENTIALS)",
        ),
        _ if text.contains("The specified bucket does not exist") => fixed(
            Exit::Store,
            "the bucket does not exist (Google Cloud Storage)".into(),
            "create it, or correct the bucket in -o gs://BUCKET/prefix",
        ),
        _ => CliError::new(Exit::Store, one_line(&text)).transient(e.is_transient()),
    }
}

/// `text` on one line: the store's XML or JSON answer cut off, whitespace collapsed.
fn one_line(text: &str) -> String {
    let cut = ["<?xml", "<Error"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    text[..cut].split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What an error message needs to know about the request that failed.
#[derive(Clone, Debug)]
pub struct Context {
    /// Where the API key came from.
    pub key_source: KeySource,
    /// The host requests went to.
    pub host: String,
    /// Attempts per request (1 + retries).
    pub attempts: u32,
    /// `activity log`, `API log` or `security log`.
    pub noun: &'static str,
    /// Lago's query parameters and the flags that set them (`to_date`, `--to`).
    pub flags: Vec<(String, String)>,
}

impl Context {
    /// A query parameter Lago named, with the flag that sets it: `to_date (--to)`.
    fn flag_of(&self, field: &str) -> String {
        match self.flags.iter().find(|(id, _)| id == field) {
            Some((_, flag)) => format!("{field} ({flag})"),
            None => field.to_owned(),
        }
    }
}

/// The library's hint, with what the command line adds.
fn hint(e: &LagoError, cli_words: &str) -> String {
    match e.hint() {
        Some(h) if cli_words.is_empty() => h,
        Some(h) => format!("{h}; {cli_words}"),
        None => cli_words.to_owned(),
    }
}

/// Where an export stands after a failure, for hints that say what to run next.
const RESUME: &str = "an export -o FILE continues with --resume";

/// Turns a client error into a message a person can act on: the class of failure (its exit code
/// and one line) is the command line's, the hint is the library's plus the flags to change.
pub fn explain(e: &LagoError, cx: &Context) -> CliError {
    explain_class(e, cx).transient(e.is_retryable())
}

fn explain_class(e: &LagoError, cx: &Context) -> CliError {
    let host = &cx.host;
    match e {
        LagoError::Api(api) => {
            let status = api.status.as_u16();
            let code = api.code.as_deref().unwrap_or("");
            match status {
                401 => CliError::new(
                    Exit::Auth,
                    format!(
                        "Lago at {host} refused the API key read from {}",
                        cx.key_source.origin()
                    ),
                )
                .hint(hint(e, "--region / --api-url name the Lago it belongs to")),
                403 if code == "feature_unavailable" => CliError::new(
                    Exit::Forbidden,
                    format!("Lago at {host} says audit logs are not available to this organisation (403 feature_unavailable)"),
                )
                .hint(hint(e, "try --demo to see the tool work")),
                403 if code.starts_with("read_action_not_allowed") => CliError::new(
                    Exit::Forbidden,
                    format!("this API key may not read {}s (403 {code})", cx.noun),
                )
                .hint(hint(e, "give the key read permission for audit logs in Lago, or use another key")),
                403 => CliError::new(
                    Exit::Forbidden,
                    format!("Lago at {host} refused access to {}s (403 {code})", cx.noun),
                )
                .hint(hint(e, "")),
                404 if code == "resource_not_found" || code.is_empty() => CliError::new(
                    Exit::NotFound,
                    format!("{host} has no such route (404 {code})"),
                )
                .hint(hint(e, "check --api-url / LAGO_API_URL: Lago's API, with or without /api/v1")),
                404 => CliError::new(Exit::NotFound, format!("no such {} (404 {code})", cx.noun))
                    .hint(hint(e, "ids come from the `list` or `export` output")),
                422 => {
                    let fields = api
                        .details
                        .as_ref()
                        .map(|d| {
                            d.iter()
                                .map(|(k, v)| {
                                    let codes = match v {
                                        serde_json::Value::Array(a) => a
                                            .iter()
                                            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
                                            .collect::<Vec<_>>()
                                            .join(", "),
                                        other => other.to_string(),
                                    };
                                    format!("{}: {codes}", cx.flag_of(k))
                                })
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "no details given".into());
                    CliError::new(Exit::Invalid, format!("Lago refused the query (422): {fields}"))
                        .hint(hint(e, "correct the flags named above"))
                }
                429 => CliError::new(
                    Exit::RateLimited,
                    format!("Lago at {host} still answered 429 (rate limited) after the client waited and retried"),
                )
                .hint(hint(e, "or with a lower --rate-limit / --read-ahead")),
                500..=599 => CliError::new(
                    Exit::Server,
                    format!("Lago at {host} answered {} after {} attempts", api.status, cx.attempts),
                )
                .hint(hint(e, RESUME)),
                _ => CliError::new(Exit::Failure, format!("Lago at {host}: {api}")),
            }
        }
        LagoError::Transport(t) => {
            // The client says which host and how many attempts, when it knows.
            let host = t.host.as_deref().unwrap_or(host);
            let attempts = if t.attempts > 0 {
                t.attempts
            } else {
                cx.attempts
            };
            let source = &t.source;
            let mut cause = String::new();
            let mut next = std::error::Error::source(source);
            while let Some(s) = next {
                cause = s.to_string();
                next = s.source();
            }
            let what = if source.is_timeout() {
                "timed out".to_owned()
            } else if source.is_connect() {
                format!("could not connect ({cause})")
            } else if cause.is_empty() {
                source.to_string()
            } else {
                cause
            };
            if t.body_cut_short() {
                return CliError::new(
                    Exit::Network,
                    format!(
                        "the response body from Lago at {host} was cut short, {attempts} attempts in a row: {what}"
                    ),
                )
                .hint(hint(e, RESUME));
            }
            CliError::new(
                Exit::Network,
                format!("cannot reach Lago at {host} after {attempts} attempts: {what}"),
            )
            .hint(hint(e, &format!("--api-url / --region name it; {RESUME}")))
        }
        LagoError::Decode {
            status, message, ..
        } => CliError::new(
            Exit::Decode,
            format!(
                "Lago at {host} answered {status} with a body this tool cannot read: {message}"
            ),
        )
        .hint(hint(e, "run again with --verbose to see it")),
        LagoError::InvalidRequest(m) => {
            // The library names its operation first (`find_activity_log: …`): not a word of
            // this command line.
            let m = match m.split_once(": ") {
                Some((op, rest)) if op.chars().all(|c| c.is_ascii_lowercase() || c == '_') => rest,
                _ => m.as_str(),
            };
            if m.contains("checkpoint") {
                // The checkpoint kept at an -o URL belongs to another export: the library
                // compares a fingerprint of the filters, so which flag differs is not known.
                return CliError::new(
                    Exit::Resume,
                    format!(
                        "the checkpoint at the destination belongs to another export: {m} \
                         (--from, --to or a filter flag differs from the export that wrote it)"
                    ),
                )
                .hint(
                    "run the export with the flags of the one that wrote the destination, or \
                     give this one a prefix of its own",
                );
            }
            CliError::new(Exit::Usage, format!("invalid request: {m}"))
        }
        other => CliError::new(Exit::Failure, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lago_audit_client::ApiError;

    fn cx() -> Context {
        Context {
            key_source: KeySource::Environment("LAGO_API_KEY"),
            host: "lago.example".into(),
            attempts: 4,
            noun: "activity log",
            flags: vec![
                ("to_date".into(), "--to".into()),
                ("from_date".into(), "--from".into()),
                ("per_page".into(), "--per-page".into()),
            ],
        }
    }

    fn api(status: u16, body: &str) -> LagoError {
        LagoError::Api(Box::new(ApiError::from_parts(
            status.try_into().unwrap(),
            &Default::default(),
            body.as_bytes(),
        )))
    }

    #[test]
    fn the_table_lists_every_exit_code_once_in_order() {
        let all = [
            Exit::Ok,
            Exit::Failure,
            Exit::Usage,
            Exit::Config,
            Exit::Auth,
            Exit::Forbidden,
            Exit::NotFound,
            Exit::Invalid,
            Exit::RateLimited,
            Exit::Server,
            Exit::Network,
            Exit::Decode,
            Exit::Resume,
            Exit::Store,
            Exit::Unverified,
            Exit::Interrupted,
        ];
        for e in all {
            // A new exit code fails to compile here until it is in `all`, hence in the table.
            match e {
                Exit::Ok
                | Exit::Failure
                | Exit::Usage
                | Exit::Config
                | Exit::Auth
                | Exit::Forbidden
                | Exit::NotFound
                | Exit::Invalid
                | Exit::RateLimited
                | Exit::Server
                | Exit::Network
                | Exit::Decode
                | Exit::Resume
                | Exit::Store
                | Exit::Unverified
                | Exit::Interrupted => {}
            }
        }
        let listed: Vec<Exit> = EXIT_CODES.iter().map(|(e, _)| *e).collect();
        assert_eq!(listed, all);
        let help = exit_codes_help();
        for (code, meaning) in EXIT_CODES {
            assert!(help.contains(&format!("  {:<4} {meaning}\n", *code as u8)));
        }
    }

    #[test]
    fn store_answers_become_one_line_with_what_to_set() {
        let answer = |code: &str| lago_audit_sink::SinkError::BadUrl {
            url: "s3://b/p".into(),
            reason: format!(
                "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?>\n\
                 <Error><Code>{code}</Code><Message>x</Message></Error>"
            ),
        };
        for (code, exit, says) in [
            ("NoSuchBucket", Exit::Store, "bucket does not exist"),
            ("ContainerNotFound", Exit::Store, "container does not exist"),
            (
                "SignatureDoesNotMatch",
                Exit::Store,
                "AWS_SECRET_ACCESS_KEY",
            ),
            (
                "AuthenticationFailed",
                Exit::Store,
                "AZURE_STORAGE_ACCOUNT_KEY",
            ),
            ("PermanentRedirect", Exit::Store, "AWS_REGION"),
            ("AccessDenied", Exit::Store, "may not list"),
        ] {
            let e = store_error(&answer(code));
            assert_eq!(e.exit, exit, "{code}");
            assert!(!e.transient, "{code} does not pass by waiting");
            assert!(!e.message.contains('\n'), "{code}: {}", e.message);
            let all = format!("{} {}", e.message, e.hint.unwrap_or_default());
            assert!(all.contains(says), "{code}: {all}");
        }
        let imds = lago_audit_sink::SinkError::BadUrl {
            url: "s3://b/p".into(),
            reason: "Error performing PUT http://169.254.169.254/latest/api/token: 403".into(),
        };
        let e = store_error(&imds);
        assert_eq!(e.exit, Exit::Config);
        assert!(e.message.contains("metadata server was asked"), "{e}");
    }

    #[test]
    fn each_class_has_its_code_and_says_why() {
        let e = explain(&api(401, r#"{"status":401,"error":"Unauthorized"}"#), &cx());
        assert_eq!(e.exit, Exit::Auth);
        assert!(e.message.contains("LAGO_API_KEY"), "{e}");
        let e = explain(
            &api(
                403,
                r#"{"status":403,"error":"Forbidden","code":"feature_unavailable"}"#,
            ),
            &cx(),
        );
        assert_eq!(e.exit, Exit::Forbidden);
        assert!(e.hint.unwrap().contains("premium"));
        let e = explain(
            &api(
                422,
                r#"{"status":422,"error":"Unprocessable Entity","code":"validation_errors","error_details":{"to_date":["invalid_date"]}}"#,
            ),
            &cx(),
        );
        assert_eq!(e.exit, Exit::Invalid);
        assert!(e.message.contains("to_date (--to): invalid_date"), "{e}");
        let e = explain(&api(503, "<html>down</html>"), &cx());
        assert_eq!(e.exit, Exit::Server);
        assert!(e.message.contains("4 attempts"));
    }
}
