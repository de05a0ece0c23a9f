//! The transport: the hooks the generated client calls around every request (a path check
//! before sending, a content-type check on success) and the retry loop they run, which waits for
//! the rate limiter, applies the [`RetryPolicy`](crate::RetryPolicy) and reads bodies into
//! memory. Requests of an export are counted in its [`progress`](crate::progress) counters.
//!
//! The transport also emits `tracing` data: a `lago.request` span per attempt (operation, page,
//! per_page, from_date, to_date, attempt, status, wait_ms) and events for retries and
//! rate-limit waits. Filter values, the URL, the API key and bodies are never recorded.

use crate::config::Inner;
use crate::error::MAX_ERROR_BODY;
use crate::generated::OPERATION_PATHS;
use crate::progress::{count, ExportProgress};
use crate::retry::is_transient;
use crate::Client;
use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};
use std::cell::RefCell;
use std::time::{Duration, Instant};
use tracing::Instrument;

impl ClientHooks<Inner> for Client {
    /// Refuses a request whose path does not have the shape of its operation's path template:
    /// a path id such as `..`, `.` or an empty string would otherwise reach another endpoint
    /// (URL normalisation removes dot segments; `/` itself is percent-encoded by the generated
    /// code).
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        check_path(
            &self.inner().base_path,
            request.url().path(),
            info.operation_id,
        )
        .map_err(Error::InvalidRequest)
    }

    /// Refuses a successful response that says it is not JSON (an HTML page served with 200 by a
    /// captive portal or a misrouted proxy), before its body is decoded. A response without a
    /// content type is decoded as JSON.
    async fn post<E>(
        &self,
        result: &reqwest::Result<reqwest::Response>,
        _info: &OperationInfo,
    ) -> Result<(), Error<E>> {
        let Ok(response) = result else { return Ok(()) };
        if !response.status().is_success() {
            return Ok(());
        }
        let Some(content_type) = response.headers().get(reqwest::header::CONTENT_TYPE) else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(content_type.as_bytes());
        if is_json(&text) {
            Ok(())
        } else {
            Err(Error::Custom(crate::error::wrong_content_type(
                response.status(),
                &text,
            )))
        }
    }

    /// Sends the request and reads its body, retrying per the client's
    /// [`RetryPolicy`](crate::RetryPolicy) (see the [`retry`](crate::retry) module), after
    /// waiting for the client's [rate limiter](crate::ratelimit).
    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        if let Some(response) = capture_instead_of_sending(&request) {
            return Ok(response);
        }
        send_with_retries(self, request, info).await
    }
}

/// `application/json`, `application/<x>+json`, with or without parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

tokio::task_local! {
    /// Set while [`capture_query`] runs a request's `send()`: the transport records the query
    /// string here instead of sending anything.
    static CAPTURE: RefCell<Option<String>>;
}

/// Runs `send` (a generated request's `send()`) without sending anything, and returns the query
/// string it would have sent. Used to learn the filters of a request builder, whose fields are
/// private to the generated code.
pub(crate) async fn capture_query<F: std::future::Future>(send: F) -> Option<String> {
    CAPTURE
        .scope(RefCell::new(None), async {
            let _ = send.await;
            CAPTURE.with(|c| c.borrow_mut().take())
        })
        .await
}

fn capture_instead_of_sending(request: &reqwest::Request) -> Option<reqwest::Response> {
    CAPTURE
        .try_with(|c| {
            *c.borrow_mut() = Some(request.url().query().unwrap_or("").to_owned());
        })
        .ok()?;
    let response = http::Response::builder()
        .status(http::StatusCode::NO_CONTENT)
        .body(bytes::Bytes::new())
        .expect("a constant response");
    Some(reqwest::Response::from(response))
}

/// The paging and window parameters of a request, the only query values that are logged.
#[derive(Default)]
struct Window {
    page: Option<String>,
    per_page: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
}

impl Window {
    fn of(url: &reqwest::Url) -> Self {
        let mut w = Window::default();
        for (k, v) in url.query_pairs() {
            let slot = match k.as_ref() {
                "page" => &mut w.page,
                "per_page" => &mut w.per_page,
                "from_date" => &mut w.from_date,
                "to_date" => &mut w.to_date,
                _ => continue,
            };
            *slot = Some(v.into_owned());
        }
        w
    }
}

/// What the transport does with one attempt's outcome.
enum Next {
    Return(reqwest::Result<reqwest::Response>),
    Retry {
        wait: Duration,
        reason: &'static str,
        throttled: bool,
        last: reqwest::Result<reqwest::Response>,
    },
}

/// Sends a request, retrying per the client's [`RetryPolicy`](crate::RetryPolicy):
///
/// - every attempt first waits for the client's rate limiter;
/// - a failed connect (not a TLS failure), a timeout, a retryable status, or a body that fails
///   to arrive whole (shorter than its `Content-Length`, a chunked body cut before its last
///   chunk, a reset mid-body) is retried up to `max_retries` times with jittered backoff (or
///   the server's `Retry-After`); a well-framed 200 whose JSON ends early is sent again by
///   [`attempted`](crate::error::attempted) within the same budget;
/// - a 429 is waited out (the server's hint plus jitter) without using that budget, at most
///   [`RetryPolicy::max_rate_limited`](crate::RetryPolicy::max_rate_limited) times (0 in
///   [`RetryPolicy::none`](crate::RetryPolicy::none)), each wait bounded by
///   [`RetryPolicy::max_wait`](crate::RetryPolicy::max_wait);
/// - no wait starts that would end after the client's `max_elapsed`: the last outcome is
///   returned instead.
///
/// An error response's body is kept (at most [`MAX_ERROR_BODY`] bytes), so the error conversion
/// can report it without another `await`. A success body is decoded once, by the generated code.
async fn send_with_retries(
    client: &Client,
    request: reqwest::Request,
    info: &OperationInfo,
) -> reqwest::Result<reqwest::Response> {
    let inner = client.inner();
    let policy = &inner.retry;
    let deadline = inner.max_elapsed.map(|d| Instant::now() + d);
    let window = Window::of(request.url());
    let mut attempt = 0u32;
    let (mut faults, mut throttled) = (crate::error::call_faults(), 0u32);
    let result = loop {
        // A GET has no body, so it can always be cloned; if it cannot, it is sent once.
        let Some(copy) = request.try_clone() else {
            crate::error::note_attempt();
            break client.client().execute(request).await;
        };
        attempt += 1;
        let span = tracing::debug_span!(
            "lago.request",
            operation = info.operation_id,
            page = window.page.as_deref(),
            per_page = window.per_page.as_deref(),
            from_date = window.from_date.as_deref(),
            to_date = window.to_date.as_deref(),
            attempt,
            status = tracing::field::Empty,
            wait_ms = tracing::field::Empty,
        );
        let next = attempt_once(client, copy, policy, faults, throttled)
            .instrument(span.clone())
            .await;
        match next {
            Next::Return(result) => break result,
            Next::Retry {
                wait,
                reason,
                throttled: is_429,
                last,
            } => {
                if deadline.is_some_and(|d| Instant::now() + wait > d) {
                    tracing::warn!(parent: &span, reason, "no retry: the call's max_elapsed would pass");
                    break last;
                }
                drop(last);
                span.record("wait_ms", wait.as_millis() as u64);
                if is_429 {
                    throttled += 1;
                    count(ExportProgress::add_rate_limit_wait);
                } else {
                    faults += 1;
                }
                count(ExportProgress::add_retry);
                tracing::info!(parent: &span, reason, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
    };
    crate::error::set_call_faults(faults);
    result
}

async fn attempt_once(
    client: &Client,
    request: reqwest::Request,
    policy: &crate::RetryPolicy,
    faults: u32,
    throttled: u32,
) -> Next {
    let span = tracing::Span::current();
    if let Some(limiter) = &client.inner().rate_limiter {
        let waited = limiter.acquire().await;
        if !waited.is_zero() {
            count(ExportProgress::add_rate_limit_wait);
            tracing::debug!(wait_ms = waited.as_millis() as u64, "rate limiter wait");
        }
    }
    count(ExportProgress::add_request);
    crate::error::note_attempt();
    let can_retry = faults < policy.max_retries;
    let response = match client.client().execute(request).await {
        Ok(response) => response,
        Err(e) if can_retry && is_transient(&e) => {
            return Next::Retry {
                wait: policy.backoff(faults),
                reason: "transport",
                throttled: false,
                last: Err(e),
            }
        }
        Err(e) => return Next::Return(Err(e)),
    };
    let status = response.status();
    span.record("status", status.as_u16());
    if let Some(limiter) = &client.inner().rate_limiter {
        limiter.observe(response.headers());
    }
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS && throttled < policy.max_rate_limited {
        if let Some(wait) = policy.rate_limited_wait(throttled, response.headers()) {
            return Next::Retry {
                wait,
                reason: "rate limited (429)",
                throttled: true,
                last: buffer_body(response).await,
            };
        }
    }
    if status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        if let Some(wait) = policy.delay_after_response(faults, status, response.headers()) {
            return Next::Retry {
                wait,
                reason: "retryable status",
                throttled: false,
                last: buffer_body(response).await,
            };
        }
    }
    // Reading the body here means a body that fails to arrive whole (shorter than its
    // Content-Length, a chunked body without its last chunk, a reset mid-body) is retried like a
    // failed connect, instead of surfacing later from the generated code.
    let body = match read_body(response).await {
        Err(e) if can_retry => {
            return Next::Retry {
                wait: policy.backoff(faults),
                reason: "body cut short",
                throttled: false,
                last: Err(e),
            }
        }
        Err(e) => return Next::Return(Err(e)),
        Ok(body) => body,
    };
    Next::Return(Ok(body.rebuild()))
}

/// A response read into memory.
struct Buffered {
    status: reqwest::StatusCode,
    version: http::Version,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
}

impl Buffered {
    /// Rebuilds a response around the bytes.
    fn rebuild(self) -> reqwest::Response {
        let mut rebuilt = http::Response::builder()
            .status(self.status)
            .version(self.version);
        if let Some(h) = rebuilt.headers_mut() {
            *h = self.headers;
        }
        let rebuilt = rebuilt
            .body(self.body)
            .expect("status and headers come from a valid response");
        reqwest::Response::from(rebuilt)
    }
}

/// Reads the whole body (an error body up to [`MAX_ERROR_BODY`] bytes). The generated code reads
/// the whole body anyway, so this adds no peak memory.
async fn read_body(mut response: reqwest::Response) -> reqwest::Result<Buffered> {
    let status = response.status();
    let version = response.version();
    let headers = response.headers().clone();
    let body: bytes::Bytes = if status.is_success() {
        response.bytes().await?
    } else {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = MAX_ERROR_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
        body.into()
    };
    Ok(Buffered {
        status,
        version,
        headers,
        body,
    })
}

async fn buffer_body(response: reqwest::Response) -> reqwest::Result<reqwest::Response> {
    read_body(response).await.map(Buffered::rebuild)
}

/// Checks `path` (the request's URL path) against the template of `operation_id`.
pub(crate) fn check_path(base_path: &str, path: &str, operation_id: &str) -> Result<(), String> {
    let Some((_, template)) = OPERATION_PATHS.iter().find(|(id, _)| *id == operation_id) else {
        return Err(format!("unknown operation {operation_id}"));
    };
    let rest = path.strip_prefix(base_path).ok_or_else(|| {
        format!("{operation_id}: the request path left the base path {base_path:?}")
    })?;
    let got: Vec<&str> = rest.split('/').skip(1).collect();
    let want: Vec<&str> = template.split('/').skip(1).collect();
    let same_shape = got.len() == want.len()
        && got.iter().zip(&want).all(|(g, w)| {
            if w.starts_with('{') {
                !g.is_empty()
            } else {
                g == w
            }
        });
    if same_shape {
        Ok(())
    } else {
        Err(format!(
            "{operation_id}: a path parameter would change the request path (expected {template}); \
             ids cannot be empty, `.` or `..`"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_keep_their_template_shape() {
        assert!(check_path("/api/v1", "/api/v1/activity_logs", "find_all_activity_logs").is_ok());
        assert!(check_path("/api/v1", "/api/v1/activity_logs/abc", "find_activity_log").is_ok());
        assert!(check_path(
            "/api/v1",
            "/api/v1/activity_logs/..%2Fcustomers",
            "find_activity_log"
        )
        .is_ok());
        // `..` was normalised away by the URL parser: the request would list, not get.
        assert!(check_path("/api/v1", "/api/v1/", "find_activity_log").is_err());
        assert!(check_path("/api/v1", "/api/v1/activity_logs/", "find_activity_log").is_err());
        assert!(check_path("/api/v1", "/api/v1/api_logs/x", "find_activity_log").is_err());
        assert!(check_path("/api/v1", "/other", "find_activity_log").is_err());
        assert!(check_path("", "/activity_logs/x", "find_activity_log").is_ok());
    }

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("Application/JSON"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/html"));
        assert!(!is_json("text/plain; charset=utf-8"));
    }

    #[test]
    fn every_generated_operation_has_a_template() {
        for (id, template) in OPERATION_PATHS {
            assert!(template.starts_with('/'), "{id}");
        }
        assert_eq!(OPERATION_PATHS.len(), 6);
    }
}
