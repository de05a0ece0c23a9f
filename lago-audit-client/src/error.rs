//! Errors that keep their structure: HTTP status, Lago's `code` and `error_details`, the raw body
//! when it is not Lago's JSON, and whether trying again may help.
//!
//! Every operation's `send()` returns [`Error`] directly (the code generator wraps progenitor's
//! own `send`, whose `progenitor_client::Error<ByteStream>` also converts through `From`). The
//! conversion is synchronous because the client's transport hook has already read error bodies (up
//! to [`MAX_ERROR_BODY`] bytes) into memory.

use futures::{FutureExt, StreamExt};
use progenitor_client::ByteStream;
use reqwest::StatusCode;
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;

/// How much of an error body the client keeps (a proxy's HTML page can be large).
pub const MAX_ERROR_BODY: usize = 64 * 1024;
/// How much of an unexpected body an error message quotes.
const SNIPPET: usize = 512;

/// The error of every operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Lago (or a proxy in front of it) answered with an error status. Boxed, to keep
    /// `Result<T, Error>` small.
    Api(Box<ApiError>),
    /// The request could not be sent, or the response could not be received (connection refused
    /// or reset, timeout, TLS failure, a body cut short). Names the host and the attempts made,
    /// but not the URL, whose query may hold personal data such as user e-mails.
    Transport(TransportError),
    /// A successful response whose body does not match the spec.
    Decode {
        /// The response status.
        status: StatusCode,
        /// What did not match, with its position in the body.
        message: String,
        /// The start of the body, lossily decoded as UTF-8.
        body_snippet: String,
    },
    /// The request was refused before it was sent: a missing required parameter, a value that
    /// cannot be converted, or a path id that would leave its path segment (`..`, empty).
    InvalidRequest(String),
}

/// A request that could not be carried out over the network, after the client's retries.
#[derive(Debug)]
pub struct TransportError {
    /// What went wrong (without the URL).
    pub source: reqwest::Error,
    /// The host (and port) the request went to, when known.
    pub host: Option<String>,
    /// How many attempts were made (0 when unknown, for a client built without this crate's
    /// hooks).
    pub attempts: u32,
}

impl TransportError {
    /// A transport error with no context yet.
    pub fn new(source: reqwest::Error) -> Self {
        Self {
            source: source.without_url(),
            host: None,
            attempts: 0,
        }
    }
}

impl TransportError {
    /// Whether the response arrived but its body did not arrive whole: shorter than its
    /// `Content-Length`, a chunked body cut before its last chunk, or a connection reset
    /// mid-body (a proxy or load balancer closing early). The server was reached.
    pub fn body_cut_short(&self) -> bool {
        crate::retry::is_cut_body(&self.source)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.body_cut_short()) {
            (Some(host), true) => write!(f, "the response body from {host} was cut short")?,
            (None, true) => f.write_str("a response body was cut short")?,
            (Some(host), false) => write!(f, "could not reach {host}")?,
            (None, false) => f.write_str("transport error")?,
        }
        match self.attempts {
            0 => {}
            1 => f.write_str(" (1 attempt)")?,
            n => write!(f, " (after {n} attempts)")?,
        }
        write!(f, ": {}", self.source)?;
        let mut cause = std::error::Error::source(&self.source);
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

/// An error status, with what Lago said about it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Lago's `error` field (`"Not Found"`), when the body is Lago's JSON.
    pub error: Option<String>,
    /// Lago's `code` (`"activity_log_not_found"`, `"feature_unavailable"`, `"validation_errors"`).
    pub code: Option<String>,
    /// Lago's `error_details` (for 422: field name → list of error codes).
    pub details: Option<Map<String, Value>>,
    /// The body (lossily UTF-8, at most [`MAX_ERROR_BODY`] bytes) when it is not Lago's JSON
    /// error, for example a proxy's HTML page.
    pub raw_body: Option<String>,
    /// How long the server asked to wait (`Retry-After`, or `X-RateLimit-Reset` on a 429).
    pub retry_after: Option<Duration>,
    /// What to check, when the client can tell: where a refused API key came from, that audit
    /// logs need Lago premium, which base URL an unknown route was sent to.
    pub hint: Option<String>,
}

impl ApiError {
    /// Builds an error from a status, the response headers and the (possibly truncated) body.
    pub fn from_parts(
        status: StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Self {
        let retry_after = crate::retry::server_wait_hint(status, headers);
        let parsed = serde_json::from_slice::<Value>(body).ok();
        match parsed {
            Some(Value::Object(map)) if map.contains_key("error") || map.contains_key("code") => {
                let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
                ApiError {
                    status,
                    error: text("error"),
                    code: text("code"),
                    details: map.get("error_details").and_then(Value::as_object).cloned(),
                    raw_body: None,
                    retry_after,
                    hint: None,
                }
            }
            _ => ApiError {
                status,
                error: None,
                code: None,
                details: None,
                raw_body: (!body.is_empty()).then(|| String::from_utf8_lossy(body).into_owned()),
                retry_after,
                hint: None,
            },
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lago answered {}", self.status)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(details) = &self.details {
            if !details.is_empty() {
                write!(f, ": {}", Value::Object(details.clone()))?;
            }
        }
        if let Some(raw) = &self.raw_body {
            write!(f, ": non-JSON body: {}", snippet(raw.as_bytes()))?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl Error {
    /// The HTTP status, when there was a response.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api(e) => Some(e.status),
            Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.source.status(),
            Error::InvalidRequest(_) => None,
        }
    }

    /// Lago's error code, when the body had one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api(e) => e.code.as_deref(),
            _ => None,
        }
    }

    /// What to check or do about this error, when the client can tell: where a refused key came
    /// from and which Lago refused it, that audit logs need Lago premium, which base URL an
    /// unknown route was sent to, that a 5xx or a cut body is worth trying later. An API error's
    /// [`ApiError::hint`] when it has one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api(e) => e
                .hint
                .clone()
                .or_else(|| status_hint(e.status, e.code.as_deref()).map(str::to_owned)),
            Error::Transport(t) if t.body_cut_short() => Some(
                "a proxy or load balancer between here and Lago closes responses early; try \
                 again later"
                    .to_owned(),
            ),
            Error::Transport(_) => Some("check the network and the base URL".to_owned()),
            Error::Decode { .. } => {
                Some("is the base URL Lago's API? If it is, report the body".to_owned())
            }
            Error::InvalidRequest(_) => None,
        }
    }

    /// The API error, if this is one.
    pub fn as_api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (transport failures other than TLS and
    /// certificate ones, 408, 429, 500, 502, 503, 504). The client has already retried these per its [`RetryPolicy`](crate::RetryPolicy).
    pub fn is_retryable(&self) -> bool {
        match self {
            // A refused certificate or TLS handshake fails the same way again.
            Error::Transport(t) => crate::retry::is_transient(&t.source),
            Error::Api(e) => crate::retry::RetryPolicy::retries_status(e.status),
            Error::Decode { .. } | Error::InvalidRequest(_) => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Api(e) => e.fmt(f),
            Error::Transport(e) => e.fmt(f),
            Error::Decode {
                status,
                message,
                body_snippet,
            } => write!(
                f,
                "the {status} response does not match the spec: {message}; body starts: {body_snippet}"
            ),
            Error::InvalidRequest(m) => write!(f, "invalid request: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport(e) => Some(&e.source),
            _ => None,
        }
    }
}

fn snippet(body: &[u8]) -> String {
    let cut = &body[..body.len().min(SNIPPET)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if body.len() > SNIPPET {
        s.push('…');
    }
    s
}

/// Drains a body the transport hook already buffered. `None` if it was not buffered (the stream
/// would have to wait), which only happens for a client built without this crate's hooks.
fn drain_buffered(mut stream: ByteStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match stream.next().now_or_never()? {
            Some(Ok(chunk)) => out.extend_from_slice(&chunk),
            Some(Err(_)) | None => return Some(out),
        }
    }
}

/// The marker of the response hook's content-type refusal, carried through progenitor's
/// `Error::Custom(String)` (its only channel for hook errors) and turned back into [`Error::Decode`].
const WRONG_CONTENT_TYPE: &str = "lago-audit-client/wrong-content-type:";

pub(crate) fn wrong_content_type(status: StatusCode, content_type: &str) -> String {
    format!("{WRONG_CONTENT_TYPE}{} {content_type}", status.as_u16())
}

fn parse_wrong_content_type(message: &str) -> Option<Error> {
    let rest = message.strip_prefix(WRONG_CONTENT_TYPE)?;
    let (status, content_type) = rest.split_once(' ')?;
    Some(Error::Decode {
        status: StatusCode::from_bytes(status.as_bytes()).ok()?,
        message: format!("the body is {content_type:?}, not JSON"),
        body_snippet: String::new(),
    })
}

impl From<progenitor_client::Error<ByteStream>> for Error {
    fn from(e: progenitor_client::Error<ByteStream>) -> Self {
        use progenitor_client::Error as P;
        match e {
            P::Custom(m) => parse_wrong_content_type(&m).unwrap_or(Error::InvalidRequest(m)),
            P::InvalidRequest(m) => Error::InvalidRequest(m),
            P::CommunicationError(e) | P::ResponseBodyError(e) | P::InvalidUpgrade(e) => {
                Error::Transport(TransportError::new(e))
            }
            P::ErrorResponse(rv) => {
                let status = rv.status();
                let headers = rv.headers().clone();
                let body = drain_buffered(rv.into_inner()).unwrap_or_default();
                Error::Api(Box::new(ApiError::from_parts(status, &headers, &body)))
            }
            P::UnexpectedResponse(response) => {
                let status = response.status();
                let headers = response.headers().clone();
                let body = match response.bytes().now_or_never() {
                    Some(Ok(b)) => b.to_vec(),
                    _ => Vec::new(),
                };
                if status.is_success() {
                    Error::Decode {
                        status,
                        message: "a success status the spec does not document".into(),
                        body_snippet: snippet(&body),
                    }
                } else {
                    Error::Api(Box::new(ApiError::from_parts(status, &headers, &body)))
                }
            }
            // progenitor decodes only the documented success response, and every operation
            // documents exactly one, 200 (the code generator refuses a spec where that is not so).
            P::InvalidResponsePayload(body, e) => Error::Decode {
                status: StatusCode::OK,
                message: e.to_string(),
                body_snippet: snippet(&body),
            },
        }
    }
}

tokio::task_local! {
    /// The attempts and faults of the call being sent, across the transport's retries and the
    /// re-sends of a body that decoded short.
    static CALL: Call;
}

#[derive(Default)]
pub(crate) struct Call {
    attempts: std::cell::Cell<u32>,
    faults: std::cell::Cell<u32>,
}

/// Counts one attempt of the request being sent (called by the transport hook).
pub(crate) fn note_attempt() {
    let _ = CALL.try_with(|c| c.attempts.set(c.attempts.get() + 1));
}

/// The faults (retried failures other than 429s) of the call being sent so far.
pub(crate) fn call_faults() -> u32 {
    CALL.try_with(|c| c.faults.get()).unwrap_or(0)
}

/// Records the faults of the call being sent.
pub(crate) fn set_call_faults(faults: u32) {
    let _ = CALL.try_with(|c| c.faults.set(faults));
}

/// Whether a decode error means the body ended early or is not JSON at all: a body cut short
/// in a way the transport could not see (a proxy that closed a well-framed response early),
/// worth sending again. A complete JSON value that does not fit the spec is not.
fn cut_short(e: &progenitor_client::Error<ByteStream>) -> bool {
    use serde_json::error::Category;
    matches!(e, progenitor_client::Error::InvalidResponsePayload(_, e)
        if matches!(e.classify(), Category::Eof | Category::Syntax))
}

/// Runs a generated `send` and turns its error into [`Error`], with what the client knows that
/// the error does not: the host and the number of attempts of a transport failure, and a hint
/// for the errors people most often meet (a refused key, a missing premium licence, a wrong base
/// URL). A 200 whose body decodes short (cut, or not JSON) is sent again within the client's
/// retry budget, which it shares with the transport's retries of the same call: the body is
/// decoded once, by the generated code, with no separate completeness check. Called by every
/// operation's `send()`; not meant to be called directly.
#[doc(hidden)]
pub async fn attempted<B, T, F>(
    client: &crate::Client,
    request: B,
    send: impl Fn(B) -> F,
) -> Result<T, Error>
where
    B: Clone,
    F: std::future::Future<Output = Result<T, progenitor_client::Error<ByteStream>>>,
{
    let policy = &client.inner.retry;
    let deadline = client
        .inner
        .max_elapsed
        .map(|d| std::time::Instant::now() + d);
    let (result, attempts) = CALL
        .scope(Call::default(), async {
            let result = loop {
                let result = send(request.clone()).await;
                let faults = call_faults();
                match result {
                    Err(e)
                        if cut_short(&e)
                            && faults < policy.max_retries
                            && deadline.is_none_or(|d| {
                                std::time::Instant::now() + policy.backoff(faults) <= d
                            }) =>
                    {
                        set_call_faults(faults + 1);
                        let wait = policy.backoff(faults);
                        tracing::info!(
                            reason = "body decoded short",
                            wait_ms = wait.as_millis() as u64,
                            "retrying"
                        );
                        crate::progress::count(crate::progress::ExportProgress::add_retry);
                        tokio::time::sleep(wait).await;
                    }
                    other => break other,
                }
            };
            (result, CALL.with(|c| c.attempts.get()))
        })
        .await;
    result.map_err(|e| {
        let mut error = Error::from(e);
        add_context(&mut error, client, attempts);
        error
    })
}

fn add_context(error: &mut Error, client: &crate::Client, attempts: u32) {
    use progenitor_client::ClientInfo;
    let base = client.baseurl();
    let inner = client.inner();
    match error {
        Error::Transport(t) => {
            t.attempts = attempts;
            t.host = url::Url::parse(base)
                .ok()
                .as_ref()
                .and_then(crate::config::host_of);
        }
        Error::Api(api) => {
            api.hint = match (api.status.as_u16(), api.code.as_deref()) {
                (401, _) => Some(format!(
                    "the API key {} was refused: check that it is a current key (Lago: \
                     Developers > API keys) of the organisation served at {base}",
                    inner.key_source
                )),
                (403, Some(code))
                    if code == "feature_unavailable"
                        || code.starts_with("read_action_not_allowed") =>
                {
                    status_hint(api.status, api.code.as_deref()).map(str::to_owned)
                }
                (404, Some("resource_not_found")) | (404, None) => {
                    Some(format!("no such route at {base}: is the base URL right?"))
                }
                _ => None,
            };
        }
        Error::Decode { .. } | Error::InvalidRequest(_) => {}
    }
}

/// What to check about an error status, when the status and code alone say it.
fn status_hint(status: StatusCode, code: Option<&str>) -> Option<&'static str> {
    Some(match (status.as_u16(), code.unwrap_or("")) {
        (403, "feature_unavailable") => {
            "audit logs need Lago premium (security logs also the security_logs add-on)"
        }
        (403, code) if code.starts_with("read_action_not_allowed") => {
            "the API key's permissions do not allow reading these logs"
        }
        (403, _) => {
            "audit logs need Lago premium (security logs also the security_logs add-on), and a \
             key allowed to read them"
        }
        (429, _) => "another program may share the organisation's rate limit; try again later",
        (500..=599, _) => "Lago or a proxy in front of it is failing; try again later",
        _ => return None,
    })
}

/// The message of a parameter value that cannot be converted: the parameter, the value as given,
/// and why. Called by the generated builders; not meant to be called directly.
#[doc(hidden)]
pub fn invalid_value(parameter: &str, given: &str, reason: &dyn fmt::Display) -> String {
    let reason = reason.to_string();
    if reason.contains(given) {
        format!("`{parameter}`: {reason}")
    } else {
        format!("`{parameter}` = {given}: {reason}")
    }
}

impl From<crate::config::ConfigError> for Error {
    fn from(e: crate::config::ConfigError) -> Self {
        Error::InvalidRequest(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    #[test]
    fn lago_json_errors_keep_their_code_and_details() {
        let body = br#"{"status":422,"error":"Unprocessable Entity","code":"validation_errors","error_details":{"to_date":["invalid_date"]}}"#;
        let e = ApiError::from_parts(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), body);
        assert_eq!(e.code.as_deref(), Some("validation_errors"));
        assert_eq!(e.details.as_ref().unwrap()["to_date"][0], "invalid_date");
        assert!(e.raw_body.is_none());
        assert!(e.to_string().contains("422") && e.to_string().contains("invalid_date"));
    }

    #[test]
    fn html_errors_keep_their_status_and_body() {
        let e = ApiError::from_parts(
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
        assert_eq!(e.raw_body.as_deref(), Some("<html>bad gateway</html>"));
        assert!(Error::Api(Box::new(e)).is_retryable());
    }

    #[test]
    fn content_type_refusals_come_back_as_decode_errors() {
        let m = wrong_content_type(StatusCode::OK, "text/html");
        match Error::from(progenitor_client::Error::<ByteStream>::Custom(m)) {
            Error::Decode {
                status, message, ..
            } => {
                assert_eq!(status, StatusCode::OK);
                assert!(message.contains("text/html"));
            }
            other => panic!("{other:?}"),
        }
        let other = Error::from(progenitor_client::Error::<ByteStream>::Custom("x".into()));
        assert!(matches!(other, Error::InvalidRequest(m) if m == "x"));
    }

    #[test]
    fn bad_values_name_the_parameter_the_value_and_the_reason() {
        let reason = "2025-13-01".parse::<crate::DateFilter>().unwrap_err();
        let m = invalid_value("from_date", "\"2025-13-01\"", &reason);
        assert!(
            m.starts_with("`from_date`: \"2025-13-01\" is neither"),
            "{m}"
        );
        assert!(m.contains("YYYY-MM-DD"), "{m}");
        assert!(!m.contains("::"), "no type paths: {m}");
        let m = invalid_value("page", "300000000000", &"out of range");
        assert_eq!(m, "`page` = 300000000000: out of range");
    }

    #[test]
    fn snippets_are_bounded() {
        let s = snippet(&vec![b'x'; 10_000]);
        assert!(s.chars().count() <= SNIPPET + 1);
    }
}
