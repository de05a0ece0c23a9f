//! `--metrics ADDR`: Prometheus metrics of an export or a shipper on `http://ADDR/metrics`, and
//! `/healthz` for a supervisor.
//!
//! Nothing is counted twice: every value is read at scrape time from the counters the export
//! and the sink already keep ([`ExportProgress`], [`SinkProgress`]) and from the shipper's
//! outage state, so a scrape takes no lock the export holds across an await and answers at once,
//! outage or not. Names follow Prometheus' naming guide: a `lago_audit_` prefix, base units
//! (seconds, bytes), `_total` on counters, and the kind of log as the label `kind`
//! (`activity_logs`, `api_logs`, `security_logs`), so the three shippers of one trail add up.
//!
//! | metric | type | from |
//! |---|---|---|
//! | `lago_audit_records_read_total` | counter | records the export passed on, each once |
//! | `lago_audit_duplicates_dropped_total` | counter | second copies of stored logs dropped |
//! | `lago_audit_lago_requests_total` | counter | HTTP requests to Lago, retries included |
//! | `lago_audit_lago_retries_total` | counter | requests to Lago that were retries |
//! | `lago_audit_lago_rate_limit_waits_total` | counter | waits for the rate limit or a 429 |
//! | `lago_audit_records_stored_total` | counter | records in objects stored (`-o URL`) |
//! | `lago_audit_store_objects_total{outcome}` | counter | objects `written`, or `found` in place with the same content |
//! | `lago_audit_store_written_bytes_total` | counter | compressed bytes uploaded |
//! | `lago_audit_store_chain_records_total` | counter | checkpoint chain records written |
//! | `lago_audit_store_retries_total` | counter | uploads retried after a store error |
//! | `lago_audit_store_requests_total{operation,outcome}` | counter | requests to the store (`put`, `get`, `head`, `list`, `delete`, `copy`), retries included, by outcome: `ok`, `not_found`, `refused` (a create-only write or a stale version refused: the store keeping its promise), `error` |
//! | `lago_audit_deliveries_total` | counter | deliveries that moved the stored position on |
//! | `lago_audit_records_held` | gauge | records in memory, awaiting confirmation or in the open object |
//! | `lago_audit_position_timestamp_seconds` | gauge | every record logged before it is stored |
//! | `lago_audit_position_lag_seconds` | gauge | how far the position is behind now |
//! | `lago_audit_last_delivery_timestamp_seconds` | gauge | when the last delivery succeeded |
//! | `lago_audit_outage_in_progress` | gauge | 1 while Lago or the store fails, else 0 |
//! | `lago_audit_outage_start_timestamp_seconds` | gauge | when the current outage began (only during one) |
//! | `lago_audit_archive_head_info{digest}` | gauge | 1, labelled with the SHA-256 of the newest digest (for `verify --expect-head`) |
//! | `lago_audit_build_info{version}` | gauge | 1 |
//!
//! The store's metrics, the position and the last delivery are there with `-o URL` only; the
//! position and the last delivery once known. `/healthz` answers 200 `ok`, or 503 once an
//! outage has lasted `--unhealthy-after` (10 minutes by default).

use crate::error::{CliError, Exit};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use clap::Args;
use lago_audit_client::ExportProgress;
use lago_audit_sink::SinkProgress;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The flags of `export` and `tail` that serve metrics.
#[derive(Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on http://ADDR/metrics and a health check on /healthz
    /// (e.g. 127.0.0.1:9464; port 0 takes a free one, said on stderr).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// With --metrics: /healthz answers 503 once an outage has lasted this long.
    #[arg(long, value_name = "DURATION", value_parser = crate::parse::parse_duration,
          default_value = "10m", requires = "metrics")]
    pub unhealthy_after: Duration,
}

/// Since when an outage has lasted, if one is in progress (the shipper's state).
pub type OutageSince = Box<dyn Fn() -> Option<Instant> + Send + Sync>;

/// What the metrics are read from.
pub struct Watched {
    kind: &'static str,
    export: ExportProgress,
    store: Option<SinkProgress>,
    outage: Option<OutageSince>,
}

impl Watched {
    /// The counters of an export of `kind` (`activity_logs`, …).
    pub fn new(kind: &'static str, export: &ExportProgress) -> Self {
        Watched {
            kind,
            export: export.clone(),
            store: None,
            outage: None,
        }
    }

    /// The counters of an export of `K`.
    pub fn of<K: crate::kinds::LogKind>(export: &ExportProgress) -> Self {
        Self::new(
            <K::Record as lago_audit_sink::SinkRecord>::KIND.dir(),
            export,
        )
    }

    /// And those of the sink it writes into.
    pub fn store(mut self, store: &SinkProgress) -> Self {
        self.store = Some(store.clone());
        self
    }

    /// And the outage state of a shipper.
    pub fn outage(mut self, since: impl Fn() -> Option<Instant> + Send + Sync + 'static) -> Self {
        self.outage = Some(Box::new(since));
        self
    }

    fn outage_since(&self) -> Option<Instant> {
        self.outage.as_ref().and_then(|f| f())
    }
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("kind", &self.kind)
            .field("store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch of a wall-clock time.
fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The wall-clock time of a monotonic instant in the past.
fn wall_clock(at: Instant) -> SystemTime {
    SystemTime::now()
        .checked_sub(at.elapsed())
        .unwrap_or(UNIX_EPOCH)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: V,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Watched {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let x = &self.export;
        counter(
            &mut e,
            "records_read",
            "Records the export read from Lago and passed on, each once.",
            x.records(),
        )?;
        counter(
            &mut e,
            "duplicates_dropped",
            "Second copies of logs Lago stored twice, dropped.",
            x.duplicates(),
        )?;
        counter(
            &mut e,
            "lago_requests",
            "HTTP requests sent to Lago, retries included.",
            x.requests(),
        )?;
        counter(
            &mut e,
            "lago_retries",
            "Requests to Lago that were retries (after a fault or a 429).",
            x.retries(),
        )?;
        counter(
            &mut e,
            "lago_rate_limit_waits",
            "Times a request to Lago waited for the rate limit or after a 429.",
            x.rate_limit_waits(),
        )?;
        if let Some(s) = &self.store {
            counter(
                &mut e,
                "records_stored",
                "Records in the objects stored by this process.",
                s.records(),
            )?;
            {
                let mut objects = e.encode_descriptor(
                    "store_objects",
                    "Objects stored: written, or found in place with the same content.",
                    None,
                    MetricType::Counter,
                )?;
                for (outcome, n) in [("written", s.objects()), ("found", s.objects_found())] {
                    let labels = [("outcome", outcome)];
                    ConstCounter::new(n).encode(objects.encode_family(&labels)?)?;
                }
            }
            counter(
                &mut e,
                "store_written_bytes",
                "Compressed bytes uploaded to the store.",
                s.bytes(),
            )?;
            counter(
                &mut e,
                "store_chain_records",
                "Records of the archive's checkpoint chain written.",
                s.checkpoints(),
            )?;
            counter(
                &mut e,
                "store_retries",
                "Uploads to the store retried after an error.",
                s.put_retries(),
            )?;
            {
                let mut requests = e.encode_descriptor(
                    "store_requests",
                    "Requests to the store, retries included, by operation and outcome (refused: \
                     a create-only write or a stale version refused, as promised).",
                    None,
                    MetricType::Counter,
                )?;
                for (operation, outcome, n) in s.store_requests() {
                    let labels = [("operation", operation), ("outcome", outcome)];
                    ConstCounter::new(n).encode(requests.encode_family(&labels)?)?;
                }
            }
            counter(
                &mut e,
                "deliveries",
                "Deliveries that moved the stored position on (an object, or a quiet span).",
                s.deliveries(),
            )?;
            gauge(
                &mut e,
                "records_held",
                "Records in memory, awaiting confirmation or in the open object.",
                s.held(),
            )?;
            if let Some(p) = s.position() {
                let at = p.timestamp() as f64;
                gauge(
                    &mut e,
                    "position_timestamp_seconds",
                    "Every record logged before this time is stored.",
                    at,
                )?;
                gauge(
                    &mut e,
                    "position_lag_seconds",
                    "How far the stored position is behind now.",
                    (unix_seconds(SystemTime::now()) - at).max(0.0),
                )?;
            }
            if let Some(digest) = s.head_digest() {
                // The newest digest's SHA-256, for operators to record elsewhere and pin with
                // `verify --expect-head` (a rollback that drops digests is caught).
                let info = Info::new([("digest", digest)]);
                info.encode(e.encode_descriptor(
                    "archive_head",
                    "The SHA-256 of the archive's newest digest (pin it with verify --expect-head).",
                    None,
                    info.metric_type(),
                )?)?;
            }
            if let Some(t) = s.last_delivery() {
                gauge(
                    &mut e,
                    "last_delivery_timestamp_seconds",
                    "When the last delivery into the store succeeded.",
                    t.timestamp_millis() as f64 / 1000.0,
                )?;
            }
        }
        let outage = self.outage_since();
        gauge(
            &mut e,
            "outage_in_progress",
            "1 while Lago or the store keeps failing (the shipper waits it out), else 0.",
            u64::from(outage.is_some()),
        )?;
        if let Some(since) = outage {
            gauge(
                &mut e,
                "outage_start_timestamp_seconds",
                "When the outage in progress began.",
                unix_seconds(wall_clock(since)),
            )?;
        }
        let info = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        info.encode(e.encode_descriptor(
            "build",
            "The lago-audit version serving these metrics.",
            None,
            info.metric_type(),
        )?)?;
        Ok(())
    }
}

struct Served {
    registry: Registry,
    watched: Arc<Watched>,
    unhealthy_after: Duration,
}

async fn metrics(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let mut text = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut text, &s.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "the metrics could not be encoded\n".to_owned(),
        ),
    }
}

async fn healthz(State(s): State<Arc<Served>>) -> impl IntoResponse {
    let plain = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    match s.watched.outage_since() {
        Some(since) if since.elapsed() >= s.unhealthy_after => (
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            format!(
                "outage for {:.0} s (unhealthy after {})\n",
                since.elapsed().as_secs_f64(),
                crate::parse::seconds(s.unhealthy_after)
            ),
        ),
        Some(since) => (
            StatusCode::OK,
            plain,
            format!("ok (outage for {:.0} s)\n", since.elapsed().as_secs_f64()),
        ),
        None => (StatusCode::OK, plain, "ok\n".to_owned()),
    }
}

/// The metrics server, on a task of its own; it stops when this is dropped.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts serving `watched` when `--metrics` asks for it; `None` when it does not. The address
/// is bound before this returns, so a port in use is an error at once.
pub async fn serve(
    args: &MetricsArgs,
    watched: Watched,
    quiet: bool,
) -> Result<Option<Server>, CliError> {
    let Some(addr) = args.metrics else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        CliError::new(Exit::Failure, format!("--metrics {addr}: {e}"))
            .hint("choose another address, or port 0 for a free one")
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let watched = Arc::new(watched);
    let mut registry = Registry::with_prefix_and_labels(
        "lago_audit",
        [("kind".into(), watched.kind.into())].into_iter(),
    );
    registry.register_collector(Box::new(watched.clone()));
    let served = Arc::new(Served {
        registry,
        watched,
        unhealthy_after: args.unhealthy_after,
    });
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(healthz))
        .with_state(served);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            crate::note(&format!("--metrics: the server stopped: {e}"));
        }
    });
    if !quiet {
        crate::note(&format!(
            "metrics on http://{bound}/metrics, health on http://{bound}/healthz"
        ));
    }
    Ok(Some(Server { task }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(watched: Watched) -> String {
        let mut registry = Registry::with_prefix_and_labels(
            "lago_audit",
            [("kind".into(), "activity_logs".into())].into_iter(),
        );
        registry.register_collector(Box::new(watched));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        text
    }

    /// The samples, without the HELP and TYPE lines.
    fn series(text: &str) -> impl Iterator<Item = &str> {
        text.lines().filter(|l| !l.starts_with('#'))
    }

    #[test]
    fn names_units_and_labels_follow_the_naming_guide() {
        let text = scrape(
            Watched::new("activity_logs", &ExportProgress::default())
                .store(&SinkProgress::default())
                .outage(|| Some(Instant::now())),
        );
        for line in series(&text) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(name.starts_with("lago_audit_"), "{line}");
            assert!(line.contains("kind=\"activity_logs\""), "{line}");
        }
        for l in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let (name, ty) = l["# TYPE ".len()..].split_once(' ').unwrap();
            assert_eq!(name.ends_with("_total"), ty == "counter", "{l}");
        }
        assert!(
            text.contains(
                "lago_audit_store_objects_total{kind=\"activity_logs\",outcome=\"found\"} 0"
            ),
            "{text}"
        );
        assert!(
            text.contains("lago_audit_outage_in_progress{kind=\"activity_logs\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("lago_audit_outage_start_timestamp_seconds{"),
            "{text}"
        );
        assert!(
            text.contains("lago_audit_build_info{kind=\"activity_logs\",version=\""),
            "{text}"
        );
        // No position before the first checkpoint: no series, rather than a false 0.
        assert!(!series(&text).any(|l| l.contains("position")), "{text}");
    }

    #[test]
    fn an_export_without_a_store_has_no_store_metrics() {
        let text = scrape(Watched::new("api_logs", &ExportProgress::default()));
        assert!(text.contains("lago_audit_records_read_total"), "{text}");
        assert!(
            !series(&text).any(|l| l.contains("store") || l.contains("position")),
            "{text}"
        );
        assert!(
            text.contains("lago_audit_outage_in_progress{kind=\"activity_logs\"} 0"),
            "{text}"
        );
    }
}
