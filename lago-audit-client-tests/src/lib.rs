//! Spec-conformance support: progenitor's typed httpmock helpers, fixtures built from the spec's
//! own examples, and small helpers shared by the tests in `tests/`.
//!
//! Run everything with `cargo test -p lago-audit-client-tests`.

#![warn(missing_docs)]

pub mod fixtures;

/// progenitor's typed httpmock helpers (`MockServerExt`), generated at build time.
#[allow(missing_docs, unused_imports, clippy::all, clippy::pedantic)]
pub mod mocks {
    include!(concat!(env!("OUT_DIR"), "/lago_audit_mocks.rs"));
}

use lago_audit_client::{Client, ClientBuilder, RetryPolicy};

/// The API key the tests send. Long and distinctive, so a leak into any text is easy to find.
pub const TEST_KEY: &str = "lago_test_key_0123456789abcdef_SHOULD_NEVER_BE_PRINTED";

/// A client for a local mock server, with retries off (tests that want them turn them on).
pub fn client_for(base_url: &str) -> Client {
    ClientBuilder::new(TEST_KEY)
        .base_url(base_url)
        .retry_policy(RetryPolicy::none())
        // One request per case: the client-side rate limiter would only slow the suite down.
        .rate_limit(0)
        .build()
        .expect("a loopback URL is a valid base URL")
}

/// This package's `openapi/` folder (a link to the workspace's), where the build script finds the
/// spec and overlay unless `LAGO_AUDIT_OPENAPI_SPEC` / `LAGO_AUDIT_OPENAPI_OVERLAY` say otherwise.
pub fn spec_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi")
}

/// The spec and overlay files the build used (the environment's, else [`spec_dir`]'s).
pub fn spec_paths() -> (std::path::PathBuf, std::path::PathBuf) {
    lago_audit_codegen::resolve_paths(&spec_dir())
}

/// The spec as the tests see it: the audit-log part, overlay applied, still OpenAPI 3.1.
pub fn spec() -> serde_json::Value {
    let (spec, overlay) = spec_paths();
    let loaded = lago_audit_codegen::load(&spec, &overlay).unwrap_or_else(|e| panic!("{e}"));
    lago_audit_codegen::audit_document(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

/// Removes object entries whose value is null, recursively. The generated models skip `None`
/// optional fields when serialising, so `{"user_email": null}` and `{}` are the same record; this
/// is the one normalisation the round-trip tests apply.
pub fn without_nulls(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Reads a request's head (request line and headers, up to the blank line); `None` if the
/// connection ends or fails first.
async fn read_head(socket: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    Some(head)
}

/// A one-shot HTTP server on loopback that records the raw request head (request line and
/// headers, exactly as sent) and answers `status` with a JSON `body`. Returns the base URL and a
/// handle yielding the head.
pub async fn capture_one(status: u16, body: &str) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let body = body.to_owned();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        let head = read_head(&mut socket)
            .await
            .expect("a complete request head");
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.expect("answer");
        String::from_utf8_lossy(&head).into_owned()
    });
    (format!("http://{addr}"), handle)
}

/// An empty list page, for requests whose answer does not matter.
pub fn empty_page(key: &str) -> String {
    format!(
        r#"{{"{key}":[],"meta":{{"current_page":0,"next_page":null,"prev_page":null,"total_pages":0,"total_count":0}}}}"#
    )
}

/// One scripted answer: a status, extra header lines and a raw body; or a connection closed
/// before any answer.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Status, header lines (`name: value`), body bytes.
    Http(u16, Vec<String>, Vec<u8>),
    /// A JSON 200 that declares `Content-Length: declared` and sends only `body`, then closes
    /// (a proxy or load balancer cutting a body mid-stream).
    CutUnderLength {
        /// The length the head declares.
        declared: usize,
        /// The bytes actually sent.
        body: Vec<u8>,
    },
    /// A chunked JSON 200 that sends `body` as one chunk and closes before the last chunk.
    CutChunked(Vec<u8>),
    /// Close the connection without answering.
    Hangup,
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Answer::Http(
            status,
            vec!["content-type: application/json".into()],
            body.to_string().into_bytes(),
        )
    }
}

/// A loopback server that answers successive connections with `answers` in turn (the last one
/// repeats), one request per connection. Returns the base URL and a counter of requests seen.
pub async fn scripted(
    answers: Vec<Answer>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    scripted_with(std::sync::Arc::new(std::sync::Mutex::new(answers))).await
}

/// Like [`scripted`], reading the answers from `answers` at each connection, so a test can change
/// them between requests (and reuse one server and one client across many cases).
pub async fn scripted_with(
    answers: std::sync::Arc<std::sync::Mutex<Vec<Answer>>>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = {
                let list = answers.lock().unwrap_or_else(|p| p.into_inner());
                list.get(n.min(list.len().saturating_sub(1)))
                    .cloned()
                    .unwrap_or(Answer::Hangup)
            };
            tokio::spawn(async move {
                if read_head(&mut socket).await.is_none() {
                    return;
                }
                let json_head = |framing: String| {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n"
                    )
                    .into_bytes()
                };
                match &answer {
                    Answer::CutUnderLength { declared, body } => {
                        let mut bytes = json_head(format!("content-length: {declared}"));
                        bytes.extend_from_slice(body);
                        let _ = socket.write_all(&bytes).await;
                    }
                    Answer::CutChunked(body) => {
                        let mut bytes = json_head("transfer-encoding: chunked".into());
                        bytes.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                        bytes.extend_from_slice(body);
                        bytes.extend_from_slice(b"\r\n");
                        let _ = socket.write_all(&bytes).await;
                    }
                    Answer::Http(..) | Answer::Hangup => {}
                }
                if let Answer::Http(status, headers, body) = answer {
                    let mut out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for h in headers {
                        out.push_str(&h);
                        out.push_str("\r\n");
                    }
                    out.push_str("\r\n");
                    let mut bytes = out.into_bytes();
                    bytes.extend_from_slice(&body);
                    let _ = socket.write_all(&bytes).await;
                }
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}
