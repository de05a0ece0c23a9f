//! `tail -o URL --metrics ADDR`: a Prometheus scrape of a running shipper shows its counters and
//! its position moving, the outage gauge rising while the store is down (and `/healthz` turning
//! unhealthy), and both coming back when the store does.

mod common;

use common::Fake;
use lago_audit_fake::data::Kind;
use lago_audit_fake::FakeLago;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One HTTP/1.1 GET: the status and the body. The read timeout only keeps a broken server from
/// hanging the test.
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_owned())
}

/// The scraped samples: series (name and labels) → value.
struct Scrape(Vec<(String, f64)>);

impl Scrape {
    fn of(addr: &str) -> Scrape {
        let (status, body) = get(addr, "/metrics");
        assert_eq!(status, 200, "{body}");
        Scrape(
            body.lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .map(|l| {
                    let (series, value) = l.rsplit_once(' ').unwrap();
                    (series.to_owned(), value.parse().unwrap())
                })
                .collect(),
        )
    }

    /// The value of the one series of `name` whose labels include `labels`.
    fn get(&self, name: &str, labels: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|(s, _)| {
                s.split_once('{')
                    .is_some_and(|(n, l)| n == name && l.contains(labels))
            })
            .map(|(_, v)| *v)
    }

    /// `lago_audit_store_requests_total` of one operation and outcome.
    fn requests(&self, operation: &str, outcome: &str) -> f64 {
        let (op, out) = (
            format!("operation=\"{operation}\""),
            format!("outcome=\"{outcome}\""),
        );
        self.0
            .iter()
            .find(|(s, _)| {
                s.split_once('{').is_some_and(|(n, l)| {
                    n == "lago_audit_store_requests_total" && l.contains(&op) && l.contains(&out)
                })
            })
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no store requests {operation} {outcome} in {:?}", self.0))
    }

    fn value(&self, name: &str) -> f64 {
        self.get(name, "kind=\"activity_logs\"")
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.0))
    }
}

fn wait_for(what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "never saw {what}; stderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The shipper's process, killed if the test ends before it does.
struct Running(std::process::Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Stop(Arc<AtomicBool>);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_scrape_of_a_running_shipper_shows_its_progress_and_its_outages() {
    let fake = Fake::start(FakeLago::builder().records(100));
    let now = chrono::Utc::now();
    let from = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap();
    // Lago logs a record every 200 ms.
    let logging = Arc::new(AtomicBool::new(true));
    std::thread::scope(|scope| {
        let (on, lago) = (logging.clone(), &fake.fake);
        scope.spawn(move || {
            while on.load(Ordering::SeqCst) {
                lago.insert(Kind::Activity, chrono::Utc::now(), Duration::ZERO);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let _stop = Stop(logging.clone());
        scrape_a_shipper(&fake, from);
    });
}

fn scrape_a_shipper(fake: &Fake, from: chrono::DateTime<chrono::Utc>) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let away = root.path().join("archive.away");
    let log = root.path().join("stderr.txt");
    // An archive with a digest already: its head is in the metrics from the start.
    // Up to `from` (its position the next whole second, which the tail's --from precedes).
    let before = from.to_rfc3339();
    let exported = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
        .args(["--api-url", &fake.fake.base_url()])
        .args(["--api-key", fake.fake.api_key()])
        .args([
            "activity-logs",
            "export",
            "--to",
            &before,
            "--settle",
            "0s",
            "-o",
        ])
        .arg(format!("file://{}", dir.display()))
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&exported.stderr).into_owned();
    assert!(exported.status.success(), "{summary}");
    let head = summary
        .split("newest digest ")
        .nth(1)
        .map(|rest| rest[..64].to_owned())
        .unwrap_or_else(|| panic!("no digest in {summary}"));
    let mut child = Running(
        Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
            .env_remove("LAGO_API_KEY")
            .env_remove("LAGO_API_URL")
            .env_remove("LAGO_REGION")
            .args(["--api-url", &fake.fake.base_url()])
            .args(["--api-key", fake.fake.api_key(), "--retries", "1"])
            .args(["activity-logs", "tail", "--from", &from.to_rfc3339()])
            .args([
                "--settle",
                "2s",
                "--poll-interval",
                "1s",
                "--batch-span",
                "2s",
            ])
            .args(["--status-every", "0", "--metrics", "127.0.0.1:0"])
            .args(["--unhealthy-after", "2s", "-o"])
            .arg(format!("file://{}", dir.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let stderr = || std::fs::read_to_string(&log).unwrap_or_default();

    // Port 0: the shipper says where it serves.
    let mut addr = String::new();
    wait_for("the metrics address", &log, || {
        let text = stderr();
        let Some(at) = text.find("metrics on http://") else {
            return false;
        };
        let rest = &text[at + "metrics on http://".len()..];
        addr = rest[..rest.find('/').unwrap()].to_owned();
        true
    });

    // Objects and a position, then more of both.
    wait_for("a first object", &log, || {
        let s = Scrape::of(&addr);
        s.value("lago_audit_records_stored_total") > 0.0
            && s.get("lago_audit_position_timestamp_seconds", "").is_some()
    });
    let first = Scrape::of(&addr);
    assert_eq!(
        first.get(
            "lago_audit_archive_head_info",
            &format!("digest=\"{head}\"")
        ),
        Some(1.0),
        "{:?}",
        first.0
    );
    assert_eq!(first.value("lago_audit_outage_in_progress"), 0.0);
    assert!(first
        .get("lago_audit_outage_start_timestamp_seconds", "")
        .is_none());
    assert!(first.value("lago_audit_lago_requests_total") > 0.0);
    assert!(first.value("lago_audit_store_chain_records_total") > 0.0);
    assert!(
        first
            .get("lago_audit_store_objects_total", "outcome=\"written\"")
            .unwrap()
            > 0.0
    );
    // Requests to the store by outcome: uploads taken, the store check's second create refused
    // (the store keeping its promise), reads of the chain.
    assert!(first.requests("put", "ok") > 0.0);
    assert!(first.requests("put", "refused") >= 1.0);
    assert!(first.requests("head", "ok") + first.requests("head", "not_found") > 0.0);
    let puts = first.requests("put", "ok");
    assert_eq!(get(&addr, "/healthz").0, 200);
    let later = |name: &str| {
        let (name, before) = (name.to_owned(), first.value(name));
        move |s: &Scrape| s.value(&name) > before
    };
    let (records, read, position, requests, deliveries) = (
        later("lago_audit_records_stored_total"),
        later("lago_audit_records_read_total"),
        later("lago_audit_position_timestamp_seconds"),
        later("lago_audit_lago_requests_total"),
        later("lago_audit_deliveries_total"),
    );
    wait_for("the counters and the position moving", &log, || {
        let s = Scrape::of(&addr);
        records(&s)
            && read(&s)
            && position(&s)
            && requests(&s)
            && deliveries(&s)
            && s.requests("put", "ok") > puts
    });
    let lag = Scrape::of(&addr).value("lago_audit_position_lag_seconds");
    assert!(lag >= 0.0, "{lag}");

    // The store goes away: its folder is a file. The outage gauge rises, /healthz turns 503
    // once the outage is older than --unhealthy-after, and every scrape is answered meanwhile.
    std::fs::rename(&dir, &away).unwrap();
    std::fs::write(&dir, "not a folder").unwrap();
    wait_for("the outage gauge", &log, || {
        let s = Scrape::of(&addr);
        s.value("lago_audit_outage_in_progress") == 1.0
    });
    let during = Scrape::of(&addr);
    // The store's side of the outage: its requests fail.
    let failed = |s: &Scrape| {
        ["put", "get", "head", "list"]
            .iter()
            .map(|op| s.requests(op, "error"))
            .sum::<f64>()
    };
    assert!(failed(&during) > failed(&first), "{:?}", during.0);
    let began = during.value("lago_audit_outage_start_timestamp_seconds");
    let wall = chrono::Utc::now().timestamp() as f64;
    assert!(
        began <= wall + 1.0 && began > wall - 600.0,
        "{began} vs {wall}"
    );
    wait_for("/healthz unhealthy", &log, || {
        get(&addr, "/healthz").0 == 503
    });
    let (_, why) = get(&addr, "/healthz");
    assert!(why.starts_with("outage for"), "{why}");
    assert!(child.0.try_wait().unwrap().is_none(), "{}", stderr());

    // The store comes back: the gauge falls, the shipper is healthy, and delivers again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&away, &dir).unwrap();
    let stored = during.value("lago_audit_records_stored_total");
    wait_for("the end of the outage", &log, || {
        let s = Scrape::of(&addr);
        s.value("lago_audit_outage_in_progress") == 0.0
            && s.get("lago_audit_outage_start_timestamp_seconds", "")
                .is_none()
            && s.value("lago_audit_records_stored_total") > stored
    });
    assert_eq!(get(&addr, "/healthz").0, 200);

    let ok = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr());
}
