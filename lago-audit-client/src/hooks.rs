//! The hooks the generated client calls around every request: a path check before sending, a
//! transport that retries and reads bodies into memory, and a content-type check on success.

use crate::config::Inner;
use crate::error::MAX_ERROR_BODY;
use crate::generated::OPERATION_PATHS;
use crate::Client;
use progenitor_client::{ClientHooks, ClientInfo, Error, OperationInfo};

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
    /// [`RetryPolicy`](crate::RetryPolicy) after a failed connect, a timeout, a connection cut
    /// mid-body or a retryable status. An error response's body is kept (at most
    /// [`MAX_ERROR_BODY`] bytes), so the error conversion can report it without another `await`.
    async fn exec(
        &self,
        request: reqwest::Request,
        _info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let policy = &self.inner().retry;
        let mut retry = 0u32;
        let mut request = Some(request);
        loop {
            // A GET has no body, so it can always be cloned; if it cannot, it is sent once.
            let copy = request.as_ref().and_then(reqwest::Request::try_clone);
            let attempt = match copy {
                Some(copy) if retry < policy.max_retries => copy,
                _ => request
                    .take()
                    .expect("the request is kept until the last attempt"),
            };
            let last = request.is_none();
            crate::error::note_attempt();
            let response = match self.client().execute(attempt).await {
                Ok(response) => response,
                Err(e) if !last && is_transient(&e) => {
                    tokio::time::sleep(policy.backoff(retry)).await;
                    retry += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let wait = policy.delay_after_response(retry, response.status(), response.headers());
            if let (Some(wait), false) = (wait, last) {
                drop(response);
                tokio::time::sleep(wait).await;
                retry += 1;
                continue;
            }
            // Reading the body here means a connection cut mid-body is retried like a failed
            // connect, instead of surfacing later from the generated code.
            match buffer_body(response).await {
                Err(e) if !last && is_transient(&e) => {
                    tokio::time::sleep(policy.backoff(retry)).await;
                    retry += 1;
                }
                result => return result,
            }
        }
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

fn is_transient(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

/// Reads the whole body (an error body up to [`MAX_ERROR_BODY`] bytes) and rebuilds the response
/// around the bytes. The generated code reads the whole body anyway, so this adds no peak memory.
async fn buffer_body(mut response: reqwest::Response) -> reqwest::Result<reqwest::Response> {
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
    let mut rebuilt = http::Response::builder().status(status).version(version);
    if let Some(h) = rebuilt.headers_mut() {
        *h = headers;
    }
    let rebuilt = rebuilt
        .body(body)
        .expect("status and headers come from a valid response");
    Ok(reqwest::Response::from(rebuilt))
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
