//! A small fault proxy in front of an object store, on loopback: some uploads are answered
//! 503 SlowDown without reaching the store, some connections are cut mid-upload (not applied),
//! some uploads are applied by the store but their answer is lost (the retry meets its own
//! object), some are slowed.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, Method, StatusCode};
use axum::response::Response;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shares (0..=1) of uploads (PUT requests) each fault hits.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreFaults {
    pub slow_down: f64,
    pub reset: f64,
    pub lost_answer: f64,
    pub slow: f64,
    /// Drop `If-None-Match` and `If-Match` from uploads: a store that ignores preconditions.
    pub strip_preconditions: bool,
    /// Answer this status to an upload over an existing object, as write-once storage does
    /// (Azure immutability policies: 409; GCS retention locks: 403).
    pub immutable: Option<u16>,
    /// Answer every request 403 `ExpiredToken`, as S3 does once an STS session has expired.
    pub expired: bool,
    /// Expire (as `expired`) at the upload of this data object (1 for the first `.ndjson.gz`):
    /// after the chain record that commits it, before it is stored.
    pub expire_at_object: Option<u64>,
}

impl StoreFaults {
    pub fn hostile() -> Self {
        Self {
            slow_down: 0.08,
            reset: 0.06,
            lost_answer: 0.08,
            slow: 0.1,
            ..Self::default()
        }
    }
}

#[derive(Debug, Default)]
pub struct ProxyCounts {
    pub requests: AtomicU64,
    pub slow_downs: AtomicU64,
    pub resets: AtomicU64,
    pub lost_answers: AtomicU64,
    pub slowed: AtomicU64,
    pub immutable_refusals: AtomicU64,
    pub expired_refusals: AtomicU64,
    pub object_puts: AtomicU64,
}

struct Shared {
    upstream: String,
    faults: Mutex<StoreFaults>,
    rng: Mutex<fastrand::Rng>,
    http: reqwest::Client,
    counts: ProxyCounts,
    written: Mutex<std::collections::HashSet<String>>,
}

pub struct FaultProxy {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: StoreFaults, seed: u64) -> Self {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            faults: Mutex::new(faults),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            counts: ProxyCounts::default(),
            written: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    pub fn set_faults(&self, faults: StoreFaults) {
        *self.shared.faults.lock().unwrap() = faults;
    }

    pub fn counts(&self) -> &ProxyCounts {
        &self.shared.counts
    }

    pub fn summary(&self) -> String {
        let c = &self.shared.counts;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} requests: {} 503 SlowDown, {} cut mid-upload, {} applied with the answer lost, {} slowed",
            g(&c.requests),
            g(&c.slow_downs),
            g(&c.resets),
            g(&c.lost_answers),
            g(&c.slowed)
        )
    }
}

enum Fault {
    None,
    SlowDown,
    Reset,
    LostAnswer,
    Slow,
}

/// Ends the connection without an answer: the task serving it unwinds (without the panic hook,
/// so nothing is printed) and hyper drops the socket.
fn cut_connection() -> ! {
    std::panic::resume_unwind(Box::new("fault proxy: connection cut"))
}

async fn handle(State(s): State<Arc<Shared>>, request: Request) -> Response {
    bump(&s.counts.requests);
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => cut_connection(),
    };
    if parts.method == Method::PUT && parts.uri.path().ends_with(".ndjson.gz") {
        let n = s.counts.object_puts.fetch_add(1, Ordering::Relaxed) + 1;
        let mut faults = s.faults.lock().unwrap();
        if faults.expire_at_object.is_some_and(|k| n >= k) {
            faults.expired = true;
        }
    }
    if s.faults.lock().unwrap().expired {
        bump(&s.counts.expired_refusals);
        return s3_error(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "The provided token has expired.",
        );
    }
    let fault = if parts.method == Method::PUT {
        let f = *s.faults.lock().unwrap();
        let r = s.rng.lock().unwrap().f64();
        if r < f.slow_down {
            Fault::SlowDown
        } else if r < f.slow_down + f.reset {
            Fault::Reset
        } else if r < f.slow_down + f.reset + f.lost_answer {
            Fault::LostAnswer
        } else if r < f.slow_down + f.reset + f.lost_answer + f.slow {
            Fault::Slow
        } else {
            Fault::None
        }
    } else {
        Fault::None
    };
    match fault {
        Fault::SlowDown => {
            bump(&s.counts.slow_downs);
            return s3_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate.",
            );
        }
        Fault::Reset => {
            bump(&s.counts.resets);
            cut_connection();
        }
        Fault::Slow => {
            bump(&s.counts.slowed);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Fault::None | Fault::LostAnswer => {}
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let faults = *s.faults.lock().unwrap();
    let key = path.split('?').next().unwrap_or_default().to_owned();
    if let (Some(status), true) = (faults.immutable, parts.method == Method::PUT) {
        // Objects stored through this proxy (the store's own listing would need its auth).
        if s.written.lock().unwrap().contains(&key) {
            bump(&s.counts.immutable_refusals);
            return Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .body(Body::from(
                    "the object is immutable under a retention policy",
                ))
                .unwrap();
        }
    }
    let mut upstream = s
        .http
        .request(parts.method.clone(), format!("{}{path}", s.upstream));
    for (name, value) in &parts.headers {
        let hop = matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        );
        let stripped = faults.strip_preconditions
            && parts.method == Method::PUT
            && matches!(name.as_str(), "if-none-match" | "if-match");
        if !hop && !stripped {
            upstream = upstream.header(name, value);
        }
    }
    let answer = match upstream.body(body).send().await {
        Ok(a) => a,
        Err(_) => cut_connection(),
    };
    if matches!(fault, Fault::LostAnswer) && answer.status().is_success() {
        bump(&s.counts.lost_answers);
        cut_connection();
    }
    let status = answer.status();
    if parts.method == Method::PUT && status.is_success() {
        s.written.lock().unwrap().insert(key);
    }
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::builder().status(status);
    for (name, value) in &headers {
        // Content-Length stays: a HEAD answer's size is in it.
        if !matches!(name.as_str(), "connection" | "transfer-encoding") {
            response = response.header(HeaderName::from_bytes(name.as_ref()).unwrap(), value);
        }
    }
    response.body(Body::from(bytes)).unwrap()
}

/// An error answer in S3's XML.
fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(Body::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
             <Message>{message}</Message></Error>"
        )))
        .unwrap()
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
