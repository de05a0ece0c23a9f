//! A local, stateful fake of Lago's audit-log API, for tests and demos that need no Lago account.
//!
//! It serves `/api/v1/activity_logs`, `/api/v1/api_logs` and `/api/v1/security_logs` (list and
//! get by id) on a loopback address, with the semantics of Lago's real server: bearer auth, the
//! premium gate, every filter, `page`/`per_page` with Lago's `meta`, newest first with ties in
//! `logged_at`, and the response shapes the server really sends. Data is generated lazily from a
//! seed, so a million records cost no memory. Faults (latency, rate limits, 429 bursts, 5xx,
//! connection resets, truncated bodies, inserts while a client pages, reordered ties) are off by
//! default and counted when on. For exactly-once tests it also knows its ground truth
//! ([`FakeLago::ground_truth`]), adds late-arriving records ([`FakeLago::insert`]), lays records
//! out along any timeline ([`FakeLagoBuilder::groups`]: huge tie groups, gaps), and, like Lago,
//! has API logs that share a caller's reused request id.
//!
//! ```no_run
//! # async fn run() {
//! use lago_audit_fake::FakeLago;
//! use std::time::Duration;
//!
//! let fake = FakeLago::builder()
//!     .seed(7)
//!     .records(5_000)
//!     .latency(Duration::from_millis(5))
//!     .error_rate(0.1)
//!     .start()
//!     .await
//!     .expect("bind a loopback port");
//! println!("{} (key {})", fake.base_url(), fake.api_key());
//! assert_eq!(fake.counts().requests, 0);
//! # }
//! ```

#![warn(missing_docs)]

pub mod capture;
pub mod check;
pub mod data;
mod query;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use data::{Generator, Kind, Slot, Timeline, TIE_GROUP};
use query::{ListQuery, QueryError};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The API key the fake accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "fake-lago-api-key";
/// The `logged_at` of the newest generated record unless told otherwise.
pub const DEFAULT_NOW: &str = "2025-04-01T12:00:00Z";

/// Faults to inject. All off by default.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added to every response.
    pub latency: Duration,
    /// Requests allowed per one-second window; over it, 429. `X-RateLimit-*` headers go on
    /// every response while this is set.
    pub rate_limit: Option<u32>,
    /// Share (0..=1) of authorised requests answered with 500, 502 (an HTML page) or 503.
    pub error_rate: f64,
    /// Share of successful responses cut halfway through a body that declares its whole
    /// `Content-Length` (the connection is reset: a proxy or load balancer cutting it).
    pub reset_rate: f64,
    /// Share of successful responses sent chunked and cut halfway, before the last chunk.
    pub chunked_cut_rate: f64,
    /// Share of successful responses whose JSON body is cut short (a complete HTTP message).
    pub truncate_rate: f64,
    /// Records inserted before each list request: at the front (newest), shifting page
    /// boundaries, or among existing records when [`inserts_behind`](Self::inserts_behind) is set.
    pub insert_per_request: u64,
    /// A server clock this far behind the client's: inserted records are logged from `now`
    /// minus this on, so they land inside the window a client is reading (whole seconds).
    pub inserts_behind: Duration,
    /// Return records that share a `logged_at` second in a different order on each query.
    pub shuffle_ties: bool,
    /// Share (0..=1) of records stored twice (Kafka delivers at least once, and Lago's tables
    /// are read without `FINAL`): a list shows both rows, with the same id and content.
    pub duplicate_rate: f64,
    /// `meta.total_count` is off by up to this many records either way (Lago counts in a query
    /// of its own, so count and rows disagree when a record lands between the two).
    pub count_skew: u64,
    /// Serves at most this many records a page whatever `per_page` asks (0: no cap), as a
    /// server or proxy with a maximum would (Lago has none, fact 9); pages and `meta` follow
    /// the capped size.
    pub per_page_cap: u64,
}

/// What the fake did, for tests to assert on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every request received.
    pub requests: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Injected 500/502/503 answers.
    pub server_errors: u64,
    /// Connections cut mid-body under a declared `Content-Length`.
    pub resets: u64,
    /// Chunked bodies cut before their last chunk.
    pub chunked_cuts: u64,
    /// Bodies cut short.
    pub truncations: u64,
    /// Records inserted while serving.
    pub inserted: u64,
    /// List queries whose ties were reordered.
    pub shuffled_queries: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    unauthorized: AtomicU64,
    rate_limited: AtomicU64,
    server_errors: AtomicU64,
    resets: AtomicU64,
    chunked_cuts: AtomicU64,
    truncations: AtomicU64,
    inserted: AtomicU64,
    shuffled_queries: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Configures and starts a [`FakeLago`].
#[derive(Clone, Debug)]
pub struct FakeLagoBuilder {
    seed: u64,
    records: [u64; 3],
    api_key: String,
    premium: bool,
    security_logs_addon: bool,
    now: DateTime<Utc>,
    retention_days: [i64; 3],
    port: u16,
    faults: Faults,
    timeline: Timeline,
    rate_limit_window: Duration,
    throttle_rate: f64,
    millis: bool,
}

impl Default for FakeLagoBuilder {
    fn default() -> Self {
        Self {
            seed: 1,
            records: [3_000, 2_000, 500],
            api_key: DEFAULT_API_KEY.to_owned(),
            premium: true,
            security_logs_addon: true,
            now: DEFAULT_NOW.parse().expect("a valid constant"),
            retention_days: [30, 30, 90],
            port: 0,
            faults: Faults::default(),
            timeline: Timeline::Uniform,
            rate_limit_window: Duration::from_secs(1),
            throttle_rate: 0.0,
            millis: false,
        }
    }
}

impl FakeLagoBuilder {
    /// The seed of the generated data (same seed, same records).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Sets the number of activity logs to `n`, API logs to `n`, security logs to `n / 4`.
    pub fn records(mut self, n: u64) -> Self {
        self.records = [n, n, n / 4];
        self
    }
    /// Sets the number of records of each kind: activity, API, security logs.
    pub fn records_per_kind(mut self, activity: u64, api: u64, security: u64) -> Self {
        self.records = [activity, api, security];
        self
    }
    /// The API key to accept.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }
    /// Whether the organisation has the premium licence (else every call is 403
    /// `feature_unavailable`).
    pub fn premium(mut self, on: bool) -> Self {
        self.premium = on;
        self
    }
    /// Whether the organisation has the security-logs add-on (else 403 `forbidden` there).
    pub fn security_logs_addon(mut self, on: bool) -> Self {
        self.security_logs_addon = on;
        self
    }
    /// The `logged_at` of the newest generated record, and the reference for retention windows.
    pub fn now(mut self, now: DateTime<Utc>) -> Self {
        self.now = now;
        self
    }
    /// The retention windows in days (activity, API, security logs; Lago: 30, 30, 90). Lists leave
    /// older records out; lookups by id still find them.
    pub fn retention_days(mut self, activity: i64, api: i64, security: i64) -> Self {
        self.retention_days = [activity, api, security];
        self
    }
    /// The port to listen on (0, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// All faults at once.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
    /// Adds latency to every response.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.faults.latency = latency;
        self
    }
    /// Allows `per_second` requests per one-second window, then answers 429.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.faults.rate_limit = Some(per_second);
        self
    }
    /// Answers this share of requests with 500, 502 or 503.
    pub fn error_rate(mut self, share: f64) -> Self {
        self.faults.error_rate = share;
        self
    }
    /// Cuts the connection mid-body on this share of successful responses.
    pub fn reset_rate(mut self, share: f64) -> Self {
        self.faults.reset_rate = share;
        self
    }
    /// Cuts the JSON short on this share of successful responses.
    pub fn truncate_rate(mut self, share: f64) -> Self {
        self.faults.truncate_rate = share;
        self
    }
    /// Inserts this many new records before each list request.
    pub fn insert_per_request(mut self, n: u64) -> Self {
        self.faults.insert_per_request = n;
        self
    }
    /// Reorders records with equal `logged_at` on each query.
    pub fn shuffle_ties(mut self, on: bool) -> Self {
        self.faults.shuffle_ties = on;
        self
    }
    /// The length of the rate limit's window (default 1 s, as Lago). A shorter window lets tests
    /// run into the limit without waiting seconds; `X-RateLimit-Reset` then has a fraction.
    pub fn rate_limit_window(mut self, window: Duration) -> Self {
        self.rate_limit_window = window.max(Duration::from_millis(1));
        self
    }
    /// Starts a burst of 429 answers (this request and the next 3, `X-RateLimit-Reset: 0`) on
    /// this share of requests, whatever the rate.
    pub fn throttle_rate(mut self, share: f64) -> Self {
        self.throttle_rate = share;
        self
    }
    /// Lays the base records out along `groups`: `(seconds before now, count)` pairs, newest
    /// first, offsets strictly increasing. Every kind gets this many records.
    pub fn groups(mut self, groups: Vec<(i64, u64)>) -> Self {
        let total: u64 = groups.iter().map(|(_, n)| n).sum();
        self.records = [total, total, total];
        self.timeline = Timeline::Groups(groups);
        self
    }

    /// A bursty timeline of `n` records of each kind (see [`data::bursty_groups`]): quiet
    /// hours, then billing runs of thousands of records within minutes.
    pub fn bursty(self, n: u64) -> Self {
        let seed = self.seed;
        self.groups(data::bursty_groups(seed, n))
    }

    /// `n` records of each kind laid out in `shape` (see [`data::Shape`]), from this builder's
    /// seed: call it after [`seed`](Self::seed).
    pub fn shape(mut self, shape: data::Shape, n: u64) -> Self {
        match shape.timeline(self.seed, n) {
            Timeline::Groups(groups) => self.groups(groups),
            Timeline::Uniform => {
                self.records = [n, n, n];
                self.timeline = Timeline::Uniform;
                self
            }
        }
    }

    /// Gives timestamps milliseconds (Lago's column is `DateTime64(3)`): records of one second
    /// spread over it.
    pub fn millis(mut self, on: bool) -> Self {
        self.millis = on;
        self
    }

    /// A server clock `behind` the client's: inserted records land among existing ones.
    pub fn inserts_behind(mut self, behind: Duration) -> Self {
        self.faults.inserts_behind = behind;
        self
    }

    /// A chunked body cut before its last chunk, on this share of successful responses.
    pub fn chunked_cut_rate(mut self, share: f64) -> Self {
        self.faults.chunked_cut_rate = share;
        self
    }

    /// Stores this share of records twice.
    pub fn duplicate_rate(mut self, share: f64) -> Self {
        self.faults.duplicate_rate = share;
        self
    }

    /// Reports `total_count` off by up to `skew` records either way.
    pub fn count_skew(mut self, skew: u64) -> Self {
        self.faults.count_skew = skew;
        self
    }

    /// Serves at most `cap` records a page, whatever `per_page` asks (see
    /// [`Faults::per_page_cap`]).
    pub fn per_page_cap(mut self, cap: u64) -> Self {
        self.faults.per_page_cap = cap;
        self
    }

    /// Binds `127.0.0.1:<port>` and serves in the background until the [`FakeLago`] is dropped.
    pub async fn start(self) -> std::io::Result<FakeLago> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Shared {
            generator: Generator::with_timeline(self.seed, self.now, self.timeline.clone())
                .with_millis(self.millis)
                .with_inserts_behind(
                    i64::try_from(self.faults.inserts_behind.as_secs()).unwrap_or(i64::MAX / 4),
                ),
            config: self.clone(),
            counters: Counters::default(),
            inserted: [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)],
            rng: Mutex::new(data::mix(self.seed ^ 0xFA17)),
            window: Mutex::new((Instant::now(), 0)),
            extras: Mutex::new(Vec::new()),
            burst_left: AtomicU32::new(0),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        Ok(FakeLago {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

struct Shared {
    generator: Generator,
    config: FakeLagoBuilder,
    counters: Counters,
    inserted: [AtomicU64; 3],
    rng: Mutex<u64>,
    window: Mutex<(Instant, u32)>,
    extras: Mutex<Vec<Extra>>,
    burst_left: AtomicU32,
}

/// A record added with [`FakeLago::insert`].
#[derive(Clone, Copy, Debug)]
struct Extra {
    kind: Kind,
    slot: Slot,
    logged_at: DateTime<Utc>,
    visible_at: Instant,
}

/// The records a list query covers before non-date filters: index ranges of auto-inserted and
/// base records, and the visible extra records, newest first.
struct Ranges {
    auto: std::ops::Range<u64>,
    base: std::ops::Range<u64>,
    extras: Vec<Extra>,
}

/// The first index in `[lo, hi)` where `pred` holds (`pred` is false, then true), else `hi`.
fn first(mut lo: u64, mut hi: u64, pred: impl Fn(u64) -> bool) -> u64 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

impl Shared {
    /// How many base records of a kind exist.
    fn base_len(&self, k: usize) -> u64 {
        let n = self.config.records[k];
        self.generator.timeline_len().map_or(n, |t| n.min(t))
    }

    /// What a list query over `[from, to]` covers, with `inserted` auto-inserted records.
    fn ranges(
        &self,
        kind: Kind,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        inserted: u64,
    ) -> Ranges {
        let k = kind_index(kind);
        let g = &self.generator;
        // Records older than the retention window are not listed (they can still be fetched by id).
        let cutoff = g.now() - chrono::Duration::days(self.config.retention_days[k].max(0));
        let from = from.map_or(cutoff, |f| f.max(cutoff));
        let at = |slot| g.logged_at(slot);
        let n = self.base_len(k);
        let base_start = to.map_or(0, |to| first(0, n, |i| at(Slot::Base(i)) <= to));
        let base_end = first(base_start, n, |i| at(Slot::Base(i)) < from);
        let auto_start = first(0, inserted, |j| at(Slot::Inserted(j)) >= from);
        let auto_end = to.map_or(inserted, |to| {
            first(auto_start, inserted, |j| at(Slot::Inserted(j)) > to)
        });
        let now = Instant::now();
        let mut extras: Vec<Extra> = self
            .extras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| {
                e.kind == kind
                    && e.visible_at <= now
                    && e.logged_at >= from
                    && to.is_none_or(|to| e.logged_at <= to)
            })
            .copied()
            .collect();
        extras.sort_by_key(|e| std::cmp::Reverse(e.logged_at));
        Ranges {
            auto: auto_start..auto_end.max(auto_start),
            base: base_start..base_end.max(base_start),
            extras,
        }
    }

    /// The slots of `r` newest first, one second at a time (each second's records rotated by
    /// `nonce` when ties are shuffled), until `visit` returns false.
    fn walk(&self, r: &Ranges, nonce: Option<u64>, mut visit: impl FnMut(Slot) -> bool) {
        let g = &self.generator;
        let (mut auto, mut base, mut extra) = (r.auto.end, r.base.start, 0usize);
        let mut group = Vec::new();
        loop {
            let heads = [
                (auto > r.auto.start).then(|| g.logged_at(Slot::Inserted(auto - 1))),
                (base < r.base.end).then(|| g.logged_at(Slot::Base(base))),
                r.extras.get(extra).map(|e| e.logged_at),
            ];
            let Some(t) = heads.iter().flatten().max().copied() else {
                return;
            };
            group.clear();
            while auto > r.auto.start && g.logged_at(Slot::Inserted(auto - 1)) == t {
                group.push(Slot::Inserted(auto - 1));
                auto -= 1;
            }
            while base < r.base.end && g.logged_at(Slot::Base(base)) == t {
                group.push(Slot::Base(base));
                base += 1;
            }
            while extra < r.extras.len() && r.extras[extra].logged_at == t {
                group.push(r.extras[extra].slot);
                extra += 1;
            }
            if let Some(nonce) = nonce {
                let len = group.len();
                group.rotate_left((data::mix(nonce ^ t.timestamp() as u64) % len as u64) as usize);
            }
            for slot in &group {
                if !visit(*slot) {
                    return;
                }
            }
        }
    }

    /// A uniform draw in [0, 1) from the fault RNG (seeded, so a run is repeatable).
    fn draw(&self) -> f64 {
        let mut s = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *s = data::mix(*s);
        (*s >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A running fake Lago. Stops when dropped (or on [`FakeLago::shutdown`]).
pub struct FakeLago {
    addr: SocketAddr,
    state: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for FakeLago {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeLago")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeLago {
    /// A builder with the defaults: seed 1, 3,000 activity / 2,000 API / 500 security logs,
    /// key [`DEFAULT_API_KEY`], premium on, no faults.
    pub fn builder() -> FakeLagoBuilder {
        FakeLagoBuilder::default()
    }

    /// The base URL, `http://127.0.0.1:<port>/api/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api/v1", self.addr)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The accepted API key.
    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    /// The data generator, to compute what the fake holds.
    pub fn generator(&self) -> &Generator {
        &self.state.generator
    }

    /// What happened so far.
    pub fn counts(&self) -> Counts {
        let c = &self.state.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            requests: get(&c.requests),
            unauthorized: get(&c.unauthorized),
            rate_limited: get(&c.rate_limited),
            server_errors: get(&c.server_errors),
            resets: get(&c.resets),
            chunked_cuts: get(&c.chunked_cuts),
            truncations: get(&c.truncations),
            inserted: get(&c.inserted),
            shuffled_queries: get(&c.shuffled_queries),
        }
    }

    /// Adds one record of `kind` logged at `at` (to the millisecond), which lists and lookups only
    /// show once `visible_after` has passed: a late arrival, as when Lago's log queue lags.
    /// Returns the record's id (for API logs, the fake's internal id; see
    /// [`record_json`](Self::record_json)).
    pub fn insert(&self, kind: Kind, at: DateTime<Utc>, visible_after: Duration) -> uuid::Uuid {
        let at = DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at);
        let slot = self.state.generator.add_extra(at);
        self.state
            .extras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Extra {
                kind,
                slot,
                logged_at: at,
                visible_at: Instant::now() + visible_after,
            });
        self.state.generator.id(kind, slot)
    }

    /// The ground truth: the ids of every record a list query of `kind` over `[from, to]` (both
    /// inclusive) would cover now, with no other filter, whatever the page size: base records,
    /// records inserted so far, visible extra records, inside the retention window. Ids are the
    /// fake's own (for API logs, not the `request_id`, which several records may share).
    pub fn ground_truth(
        &self,
        kind: Kind,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Vec<uuid::Uuid> {
        let inserted = self.state.inserted[kind_index(kind)].load(Ordering::Relaxed);
        let ranges = self.state.ranges(kind, from, to, inserted);
        let mut ids = Vec::new();
        self.state.walk(&ranges, None, |slot| {
            ids.push(self.state.generator.id(kind, slot));
            true
        });
        ids
    }

    /// The record with this fake id (from [`ground_truth`](Self::ground_truth) or
    /// [`insert`](Self::insert)) as the server sends it in a list.
    pub fn record_json(&self, kind: Kind, id: &uuid::Uuid) -> Option<Value> {
        let g = &self.state.generator;
        let slot = g.slot_of(kind, &id.to_string())?;
        Some(match kind {
            Kind::Activity => g.activity_log(slot).to_json(),
            Kind::Api => g.api_log(slot).to_json(),
            Kind::Security => g.security_log(slot).to_json(),
        })
    }

    /// Stops serving and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeLago {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn kind_index(kind: Kind) -> usize {
    match kind {
        Kind::Activity => 0,
        Kind::Api => 1,
        Kind::Security => 2,
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

fn error(status: StatusCode, code: Option<&str>) -> Response {
    let mut body =
        json!({"status": status.as_u16(), "error": status.canonical_reason().unwrap_or("Error")});
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    json_response(status, &body)
}

async fn handle(
    State(state): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    bump(&state.counters.requests);
    let faults = &state.config.faults;
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let window = state.config.rate_limit_window;
    let limit = faults.rate_limit.map(|limit| {
        let mut w = state.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.0.elapsed() >= window {
            *w = (Instant::now(), 0);
        }
        w.1 += 1;
        (limit, w.1, window.saturating_sub(w.0.elapsed()))
    });
    if state.config.throttle_rate > 0.0 {
        let burst = state
            .burst_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if burst || state.draw() < state.config.throttle_rate {
            if !burst {
                state.burst_left.store(3, Ordering::Relaxed);
            }
            bump(&state.counters.rate_limited);
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, None);
            let h = r.headers_mut();
            h.insert("x-ratelimit-limit", 50.into());
            h.insert("x-ratelimit-remaining", 0.into());
            h.insert("x-ratelimit-reset", 0.into());
            return r;
        }
    }
    let mut response = respond(&state, &method, &uri, &headers, limit).await;
    if let Some((limit, used, reset)) = limit {
        let h = response.headers_mut();
        h.insert("x-ratelimit-limit", limit.into());
        h.insert("x-ratelimit-remaining", limit.saturating_sub(used).into());
        // Lago sends whole seconds; a window shorter than a second needs a fraction.
        let reset = if window.subsec_nanos() == 0 {
            HeaderValue::from(reset.as_secs() + u64::from(reset.subsec_nanos() > 0))
        } else {
            HeaderValue::from_str(&format!("{:.3}", reset.as_secs_f64()))
                .unwrap_or(HeaderValue::from_static("1"))
        };
        h.insert("x-ratelimit-reset", reset);
    }
    response
}

async fn respond(
    state: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    limit: Option<(u32, u32, Duration)>,
) -> Response {
    let c = &state.counters;
    if let Some((limit, used, _)) = limit {
        if used > limit {
            bump(&c.rate_limited);
            return error(StatusCode::TOO_MANY_REQUESTS, None);
        }
    }
    let expected = format!("Bearer {}", state.config.api_key);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        bump(&c.unauthorized);
        return error(StatusCode::UNAUTHORIZED, None);
    }
    let faults = &state.config.faults;
    if faults.error_rate > 0.0 && state.draw() < faults.error_rate {
        bump(&c.server_errors);
        return match (state.draw() * 3.0) as u32 {
            0 => error(StatusCode::INTERNAL_SERVER_ERROR, None),
            1 => {
                let mut r = Response::new(Body::from(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                ));
                *r.status_mut() = StatusCode::BAD_GATEWAY;
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("text/html"));
                r
            }
            _ => {
                let mut r = error(StatusCode::SERVICE_UNAVAILABLE, None);
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_static("0"));
                r
            }
        };
    }

    let Some(rest) = uri.path().strip_prefix("/api/v1/") else {
        return error(StatusCode::NOT_FOUND, Some("resource_not_found"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let (kind, id) = match segments.as_slice() {
        ["activity_logs"] => (Kind::Activity, None),
        ["api_logs"] => (Kind::Api, None),
        ["security_logs"] => (Kind::Security, None),
        ["activity_logs", id] if !id.is_empty() => (Kind::Activity, Some(*id)),
        ["api_logs", id] if !id.is_empty() => (Kind::Api, Some(*id)),
        ["security_logs", id] if !id.is_empty() => (Kind::Security, Some(*id)),
        _ => return error(StatusCode::NOT_FOUND, Some("resource_not_found")),
    };
    if method != Method::GET {
        return error(StatusCode::NOT_FOUND, Some("resource_not_found"));
    }
    if !state.config.premium {
        return error(StatusCode::FORBIDDEN, Some("feature_unavailable"));
    }
    if kind == Kind::Security && !state.config.security_logs_addon {
        return error(StatusCode::FORBIDDEN, Some("forbidden"));
    }
    let body = match id {
        Some(id) => match show(state, kind, id) {
            Some(v) => v.to_string().into_bytes(),
            None => {
                let code = match kind {
                    Kind::Activity => "activity_log_not_found",
                    Kind::Api => "api_log_not_found",
                    Kind::Security => "security_log_not_found",
                };
                return error(StatusCode::NOT_FOUND, Some(code));
            }
        },
        None => match list(state, kind, uri.query().unwrap_or("")) {
            Ok(v) => v,
            Err(QueryError { field, code }) => {
                return json_response(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                            "error_details": {field: [code]}}),
                )
            }
        },
    };
    body_with_faults(state, body)
}

fn body_with_faults(state: &Shared, body: Vec<u8>) -> Response {
    let faults = &state.config.faults;
    let half = body.len() / 2;
    let mut response = if faults.reset_rate > 0.0 && state.draw() < faults.reset_rate {
        bump(&state.counters.resets);
        let full = body.len();
        let first = bytes::Bytes::from(body[..half].to_vec());
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
            Ok(first),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected reset",
            )),
        ];
        let mut r = Response::new(Body::from_stream(futures::stream::iter(chunks)));
        r.headers_mut().insert("content-length", full.into());
        r
    } else if faults.chunked_cut_rate > 0.0 && state.draw() < faults.chunked_cut_rate {
        // No length: hyper sends it chunked, and the error ends it before the last chunk.
        bump(&state.counters.chunked_cuts);
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
            Ok(bytes::Bytes::from(body[..half].to_vec())),
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "injected cut",
            )),
        ];
        Response::new(Body::from_stream(futures::stream::iter(chunks)))
    } else if faults.truncate_rate > 0.0 && state.draw() < faults.truncate_rate {
        bump(&state.counters.truncations);
        Response::new(Body::from(body[..half].to_vec()))
    } else {
        Response::new(Body::from(body))
    };
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

fn show(state: &Shared, kind: Kind, id: &str) -> Option<Value> {
    let g = &state.generator;
    let k = kind_index(kind);
    let inserted = state.inserted[k].load(Ordering::Relaxed);
    // Only API logs carry a caller's own `req-…` request id.
    let uuid_text = match kind {
        Kind::Api => id.strip_prefix("req-").unwrap_or(id),
        _ => id,
    };
    let slot = g.slot_of(kind, uuid_text)?;
    let exists = match slot {
        Slot::Base(i) => i < state.base_len(k),
        Slot::Inserted(j) => j < inserted,
        Slot::Extra(_) => state
            .extras
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|e| e.slot == slot && e.kind == kind && e.visible_at <= Instant::now()),
    };
    if !exists {
        return None;
    }
    Some(match kind {
        Kind::Activity => json!({"activity_log": g.activity_log(slot).to_json()}),
        Kind::Api => {
            let log = g.api_log(slot);
            if log.request_id != id {
                return None;
            }
            json!({"api_log": log.to_json()})
        }
        Kind::Security => json!({"security_log": g.security_log(slot).to_json()}),
    })
}

/// Maps a position in one tie group `[start, end)` to a record index, rotating the group by
/// `nonce` when ties are shuffled.
fn shuffled(index: u64, start: u64, end: u64, nonce: Option<u64>) -> u64 {
    match nonce {
        Some(nonce) if end > start + 1 => {
            let len = end - start;
            start + (index - start + data::mix(nonce ^ start) % len) % len
        }
        _ => index,
    }
}

fn list(state: &Shared, kind: Kind, raw_query: &str) -> Result<Vec<u8>, QueryError> {
    let q = ListQuery::parse(kind, raw_query)?;
    let k = kind_index(kind);
    let g = &state.generator;
    let faults = &state.config.faults;
    let inserted = if faults.insert_per_request > 0 {
        state
            .counters
            .inserted
            .fetch_add(faults.insert_per_request, Ordering::Relaxed);
        state.inserted[k].fetch_add(faults.insert_per_request, Ordering::Relaxed)
            + faults.insert_per_request
    } else {
        state.inserted[k].load(Ordering::Relaxed)
    };
    let nonce = faults.shuffle_ties.then(|| {
        bump(&state.counters.shuffled_queries);
        data::mix(state.draw().to_bits())
    });
    let ranges = state.ranges(kind, q.from(), q.to(), inserted);
    let per_page = match faults.per_page_cap {
        0 => q.per_page,
        cap => q.per_page.min(cap),
    };
    let first = (q.page - 1).saturating_mul(per_page);
    // The page is written straight into the response body, one record at a time.
    let mut out = Vec::with_capacity(64 + 700 * per_page.min(1000) as usize);
    out.extend_from_slice(format!("{{\"{}\":[", list_key(kind)).as_bytes());
    let emit = |slot: Slot, out: Option<&mut Vec<u8>>| -> bool {
        fn put(out: Option<&mut Vec<u8>>, record: &impl serde::Serialize) {
            if let Some(out) = out {
                if out.last() != Some(&b'[') {
                    out.push(b',');
                }
                serde_json::to_writer(out, record).expect("records serialise");
            }
        }
        match kind {
            Kind::Activity => {
                let f = g.activity_log(slot);
                let hit = q.matches_activity(&f);
                if hit {
                    put(out, &f);
                }
                hit
            }
            Kind::Api => {
                let f = g.api_log(slot);
                let hit = q.matches_api(&f);
                if hit {
                    put(out, &f);
                }
                hit
            }
            Kind::Security => {
                let f = g.security_log(slot);
                let hit = q.matches_security(&f);
                if hit {
                    put(out, &f);
                }
                hit
            }
        }
    };
    // A record stored twice: decided per record, so every query sees the same two rows.
    let stored_twice = |slot: Slot| {
        faults.duplicate_rate > 0.0
            // The id's first eight bytes are random (its last ones encode the slot).
            && ((((g.id(kind, slot).as_u128() >> 64) as u64) >> 11) as f64 / ((1u64 << 53) as f64))
                < faults.duplicate_rate
    };
    let arithmetic = !q.has_record_filters()
        && ranges.extras.is_empty()
        && faults.duplicate_rate <= 0.0
        && !g.inserts_interleave();
    // With milliseconds, records of one second are not ties: nothing to reorder among them.
    let tie_nonce = nonce.filter(|_| !g.has_millis());
    let total_count = if arithmetic {
        // Positions are arithmetic: newest inserts first, then base records.
        let autos = ranges.auto.end - ranges.auto.start;
        let total = autos + (ranges.base.end - ranges.base.start);
        let end = first.saturating_add(per_page).min(total);
        for p in first.min(end)..end {
            let slot = if p < autos {
                let j = ranges.auto.end - 1 - p;
                let start = (j / TIE_GROUP * TIE_GROUP).max(ranges.auto.start);
                let stop = (j / TIE_GROUP * TIE_GROUP + TIE_GROUP).min(ranges.auto.end);
                Slot::Inserted(shuffled(j, start, stop, tie_nonce))
            } else {
                let i = ranges.base.start + (p - autos);
                let (start, stop) = g.tie_group(i);
                let (start, stop) = (start.max(ranges.base.start), stop.min(ranges.base.end));
                Slot::Base(shuffled(i, start, stop, tie_nonce))
            };
            emit(slot, Some(&mut out));
        }
        total
    } else {
        let mut count = 0u64;
        let mut written = 0u64;
        state.walk(&ranges, nonce, |slot| {
            for _ in 0..1 + u8::from(stored_twice(slot)) {
                let in_page = count >= first && written < per_page;
                if !emit(slot, in_page.then_some(&mut out)) {
                    break;
                }
                count += 1;
                written += u64::from(in_page);
            }
            true
        });
        count
    };
    // Lago counts in a query of its own: the count can miss or include rows the page does not.
    let total_count = if faults.count_skew > 0 {
        let skew = faults.count_skew as f64 + 0.999;
        let delta = ((state.draw() * 2.0 - 1.0) * skew).trunc() as i64;
        total_count.saturating_add_signed(delta)
    } else {
        total_count
    };
    let meta = if total_count == 0 {
        json!({"current_page": 0, "next_page": null, "prev_page": null, "total_pages": 0, "total_count": 0})
    } else {
        let total_pages = total_count.div_ceil(per_page);
        json!({
            "current_page": q.page,
            "next_page": (q.page < total_pages).then_some(q.page + 1),
            "prev_page": (q.page > 1).then_some(q.page - 1),
            "total_pages": total_pages,
            "total_count": total_count,
        })
    };
    out.extend_from_slice(b"],\"meta\":");
    serde_json::to_writer(&mut out, &meta).expect("meta serialises");
    out.push(b'}');
    Ok(out)
}

fn list_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Activity => "activity_logs",
        Kind::Api => "api_logs",
        Kind::Security => "security_logs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffled_positions_stay_a_permutation_within_tie_groups() {
        for nonce in [1u64, 2, 99] {
            let mut seen: Vec<u64> = (10..17).map(|i| shuffled(i, 10, 17, Some(nonce))).collect();
            seen.sort_unstable();
            assert_eq!(seen, (10..17).collect::<Vec<_>>());
        }
        assert_eq!(shuffled(12, 10, 17, None), 12);
        assert_eq!(shuffled(5, 5, 6, Some(3)), 5);
        assert_eq!(first(0, 100, |i| i >= 37), 37);
        assert_eq!(first(0, 100, |_| false), 100);
        assert_eq!(first(5, 5, |_| true), 5);
    }
}
