//! `tail -o URL` as a shipper: it survives a 30-second outage of Lago and one of the store,
//! says so on stderr, stops on SIGTERM with its checkpoint saved, and the store then holds every
//! record up to that checkpoint exactly once.

mod common;

use common::Fake;
use lago_audit_fake::data::Kind;
use lago_audit_fake::FakeLago;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A TCP proxy in front of the fake that can be taken down: while down it listens on nothing
/// (connections are refused) and has cut every connection it carried.
struct Proxy {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            let mut listener = Some(listener);
            loop {
                if d.load(Ordering::SeqCst) {
                    listener = None;
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let l = listener.get_or_insert_with(|| loop {
                    if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
                        break l;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                });
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((inbound, _)) => {
                        inbound.set_nonblocking(false).unwrap();
                        let Ok(outbound) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        let mut kept = o.lock().unwrap();
                        kept.push(inbound.try_clone().unwrap());
                        kept.push(outbound.try_clone().unwrap());
                        pipe(inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
                        pipe(outbound, inbound);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Proxy { port, down, open }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for s in self.open.lock().unwrap().drain(..) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// The activity ids in every object under `dir`, and the stored position.
fn stored(dir: &Path) -> (Vec<String>, Option<chrono::DateTime<chrono::Utc>>) {
    let kind = dir.join("activity_logs");
    let mut ids = Vec::new();
    for day in std::fs::read_dir(&kind).into_iter().flatten().flatten() {
        if !day.file_name().to_string_lossy().starts_with("dt=") {
            continue;
        }
        for object in std::fs::read_dir(day.path()).unwrap().flatten() {
            let mut text = String::new();
            let file = std::fs::File::open(object.path()).unwrap();
            flate2::read::MultiGzDecoder::new(file)
                .read_to_string(&mut text)
                .unwrap();
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                ids.push(v["activity_id"].as_str().unwrap().to_owned());
            }
        }
    }
    // The position is the newest record's of the checkpoint chain.
    let newest = std::fs::read_dir(kind.join("_lago-audit/chain"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .max();
    let checkpoint = newest
        .and_then(|n| std::fs::read(kind.join("_lago-audit/chain").join(n)).ok())
        .and_then(|t| serde_json::from_slice::<serde_json::Value>(&t).ok());
    let position = checkpoint
        .and_then(|c| c["position"].as_str().map(str::to_owned))
        .and_then(|p| p.parse().ok());
    (ids, position)
}

fn wait_for(what: &str, log: &Path, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out waiting for {what}; stderr:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tail_to_a_store_survives_outages_of_lago_and_of_the_store() {
    let fake = Fake::start(FakeLago::builder().records(200));
    let now = chrono::Utc::now();
    let from = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap();
    // Lago logs a record every 200 ms, with the time it is logged at, outages or not.
    let logging = Arc::new(AtomicBool::new(true));
    std::thread::scope(|scope| {
        keep_logging(scope, &fake.fake, &logging, Duration::from_millis(200));
        // Stops the logging thread also when an assertion fails (the scope waits for it).
        let _stop = Stop(logging.clone());
        ship_through_outages(&fake, from);
    });
}

/// Lago logs an activity log every `every`, with the time it is logged at, until `on` is cleared
/// (whatever the shipper under test does).
fn keep_logging<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    lago: &'s FakeLago,
    on: &Arc<AtomicBool>,
    every: Duration,
) {
    let on = on.clone();
    scope.spawn(move || {
        while on.load(Ordering::SeqCst) {
            lago.insert(Kind::Activity, chrono::Utc::now(), Duration::ZERO);
            std::thread::sleep(every);
        }
    });
}

struct Stop(Arc<AtomicBool>);
impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
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

fn ship_through_outages(fake: &Fake, from: chrono::DateTime<chrono::Utc>) {
    let proxy = Proxy::start(fake.fake.addr());
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let away = root.path().join("archive.away");
    let stderr_path = root.path().join("stderr.txt");
    let mut child = Running(
        Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
            .env_remove("LAGO_API_KEY")
            .env_remove("LAGO_API_URL")
            .env_remove("LAGO_REGION")
            .args(["--api-url", &format!("http://127.0.0.1:{}", proxy.port)])
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
            .args(["--status-every", "5s", "-o"])
            .arg(format!("file://{}", dir.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap(),
    );
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let objects = || stored(&dir).0.len();

    wait_for(
        "the first objects",
        &stderr_path,
        Duration::from_secs(30),
        || objects() > 0,
    );

    // Lago goes away for 30 seconds.
    proxy.set_down(true);
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "still running: {}",
        stderr()
    );
    assert!(stderr().contains("outage:"), "{}", stderr());
    proxy.set_down(false);
    wait_for(
        "the end of Lago's outage",
        &stderr_path,
        Duration::from_secs(60),
        || stderr().contains("outage over"),
    );
    let before = objects();
    wait_for("new objects", &stderr_path, Duration::from_secs(30), || {
        objects() > before
    });

    // The store goes away for 30 seconds: its folder is a file.
    std::fs::rename(&dir, &away).unwrap();
    std::fs::write(&dir, "not a folder").unwrap();
    std::thread::sleep(Duration::from_secs(30));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "still running: {}",
        stderr()
    );
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&away, &dir).unwrap();
    wait_for(
        "the end of the store's outage",
        &stderr_path,
        Duration::from_secs(60),
        || stderr().matches("outage over").count() >= 2,
    );
    let before = objects();
    wait_for("new objects", &stderr_path, Duration::from_secs(30), || {
        objects() > before
    });

    // SIGTERM: the current object is finished, the checkpoint saved, exit 0.
    let ok = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = child.0.wait().unwrap();
    let text = stderr();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.matches("outage:").count() >= 2, "{text}");
    assert!(text.contains("status after"), "{text}");

    // Exactly once: every record before the checkpoint's position, none twice.
    let (ids, position) = stored(&dir);
    let position = position.expect("a checkpoint");
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no record twice");
    let want: HashSet<String> = fake
        .fake
        .ground_truth(
            Kind::Activity,
            Some(from),
            Some(position - chrono::Duration::milliseconds(1)),
        )
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let got: HashSet<String> = ids.into_iter().collect();
    assert_eq!(
        got, want,
        "the store holds exactly the records before {position}"
    );
}

/// `lago-audit activity-logs tail -o file://DIR` against `fake`, without `--from`, as a service
/// manager restarts it: the same arguments every time.
fn shipper(fake: &Fake, dir: &Path, stderr: &Path, extra: &[&str]) -> Running {
    Running(
        Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
            .env_remove("LAGO_API_KEY")
            .env_remove("LAGO_API_URL")
            .env_remove("LAGO_REGION")
            .args(["--api-url", &fake.fake.base_url()])
            .args(["--api-key", fake.fake.api_key()])
            .args([
                "activity-logs",
                "tail",
                "--settle",
                "1s",
                "--poll-interval",
                "1s",
            ])
            .args(["--batch-span", "2s", "--status-every", "0s"])
            .args(extra)
            .arg("-o")
            .arg(format!("file://{}", dir.display()))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn signal(child: &Running, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Stopped by SIGTERM, then down while Lago goes on logging, then restarted with the same
/// arguments (no `--from`), SIGKILLed, down again, restarted: the archive holds every record
/// from the first start to the final position, once. Before the checkpoint chain, a restart
/// started at "now" and lost the downtime.
#[test]
fn a_restarted_shipper_loses_nothing_of_its_downtime() {
    let fake = Fake::start(FakeLago::builder().records(50));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let log = root.path().join("stderr.txt");
    let logging = Arc::new(AtomicBool::new(true));
    std::thread::scope(|scope| {
        let _stop = Stop(logging.clone());
        let mut child = shipper(&fake, &dir, &log, &[]);
        wait_for(
            "the shipper to start",
            &log,
            Duration::from_secs(30),
            || std::fs::read_to_string(&log).is_ok_and(|t| t.contains("shipping")),
        );
        // Lago logs a record every 100 ms from now on, whatever the shipper does.
        let first = chrono::Utc::now();
        keep_logging(scope, &fake.fake, &logging, Duration::from_millis(100));
        for (i, stop) in ["-TERM", "-KILL", "-TERM"].into_iter().enumerate() {
            let before = stored(&dir).0.len();
            wait_for("new objects", &log, Duration::from_secs(30), || {
                stored(&dir).0.len() > before + 10
            });
            signal(&child, stop);
            let status = child.0.wait().unwrap();
            if stop == "-TERM" {
                assert_eq!(
                    status.code(),
                    Some(0),
                    "{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            if i < 2 {
                // Down for a while; Lago goes on logging.
                std::thread::sleep(Duration::from_secs(4));
                child = shipper(&fake, &dir, &log, &[]);
            }
        }
        logging.store(false, Ordering::SeqCst);
        let (ids, position) = stored(&dir);
        let position = position.expect("a position");
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no record twice");
        let want: HashSet<String> = fake
            .fake
            .ground_truth(
                Kind::Activity,
                Some(first),
                Some(position - chrono::Duration::milliseconds(1)),
            )
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        let got: HashSet<String> = ids.into_iter().collect();
        let missing = want.difference(&got).count();
        assert_eq!(missing, 0, "{missing} records of the downtime are missing");
        // Two downtimes of 4 s, a record every 100 ms: the test had something to lose.
        assert!(want.len() > 50, "only {} records", want.len());
    });
}

/// A store that takes the shipper's small checkpoint records but refuses its objects (a full
/// disk, a policy that denies uploads of data: here each day's folder is a file) while Lago
/// answers: `--max-outage 10s` ends the shipper, non-zero, within about 10 s plus a backoff step.
/// Before, every answer from Lago ended the "outage", and it ran forever.
#[test]
fn max_outage_ends_a_shipper_whose_store_refuses_its_objects() {
    let fake = Fake::start(FakeLago::builder().records(50));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let log = root.path().join("stderr.txt");
    let kind = dir.join("activity_logs");
    std::fs::create_dir_all(&kind).unwrap();
    let today = chrono::Utc::now().date_naive();
    for day in [today.pred_opt().unwrap(), today, today.succ_opt().unwrap()] {
        std::fs::write(kind.join(format!("dt={day}")), "not a folder").unwrap();
    }
    let logging = Arc::new(AtomicBool::new(true));
    std::thread::scope(|scope| {
        let _stop = Stop(logging.clone());
        keep_logging(scope, &fake.fake, &logging, Duration::from_millis(100));
        let started = Instant::now();
        let mut child = shipper(&fake, &dir, &log, &["--max-outage", "10s"]);
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "still running after 90 s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(status.code(), Some(13), "{text}");
        assert!(text.contains("--max-outage"), "{text}");
        assert!(!text.contains("outage over"), "{text}");
        eprintln!("ended after {:.0} s", started.elapsed().as_secs_f64());
    });
}

/// An `export` started beside a running shipper on the same prefix (a backfill next to `tail`,
/// with other batch limits) is refused before it writes anything; the shipper goes on, and the
/// archive holds every record once.
#[test]
fn an_export_beside_a_running_shipper_is_refused_before_it_writes() {
    let fake = Fake::start(FakeLago::builder().records(2_000));
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("archive");
    let log = root.path().join("stderr.txt");
    let logging = Arc::new(AtomicBool::new(true));
    std::thread::scope(|scope| {
        let _stop = Stop(logging.clone());
        keep_logging(scope, &fake.fake, &logging, Duration::from_millis(100));
        let first = chrono::Utc::now();
        let child = shipper(&fake, &dir, &log, &[]);
        wait_for("objects", &log, Duration::from_secs(30), || {
            stored(&dir).0.len() > 10
        });
        let before: HashSet<String> = stored(&dir).0.into_iter().collect();
        let out = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"))
            .env_remove("LAGO_API_KEY")
            .args(["--api-url", &fake.fake.base_url()])
            .args(["--api-key", fake.fake.api_key()])
            .args(["activity-logs", "export", "--batch-records", "70", "-o"])
            .arg(format!("file://{}", dir.display()))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(13), "{err}");
        assert!(err.contains("another exporter"), "{err}");
        // None of the history before the shipper's start was written by the refused export.
        let (ids, _) = stored(&dir);
        let history: HashSet<String> = fake
            .fake
            .ground_truth(
                Kind::Activity,
                None,
                Some(first - chrono::Duration::seconds(1)),
            )
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        assert!(
            ids.iter().all(|id| !history.contains(id)),
            "the export wrote records"
        );
        assert!(ids.len() >= before.len());
        signal(&child, "-TERM");
        let mut child = child;
        assert_eq!(child.0.wait().unwrap().code(), Some(0));
        let (ids, _) = stored(&dir);
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no record twice");
    });
}
