//! `export` (exactly once, resumable after a kill at any point) and `tail` against the fake.

mod common;

use common::{from_csv, from_ndjson, Fake};
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_client::{Export, ExportEvent, ExportOptions};
use lago_audit_fake::data::{Kind, Slot};
use lago_audit_fake::{FakeLago, DEFAULT_NOW};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"));
    cmd.env_remove("LAGO_API_KEY")
        .env_remove("LAGO_API_URL")
        .env_remove("LAGO_REGION");
    cmd
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// A small deterministic random source (xorshift), seeded per run and printed on failure.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A record as canonical JSON text (object keys sorted), to compare records whole: API logs can
/// share a `request_id` (a caller's reused X-Request-Id), so no field identifies them alone.
fn canonical<T: serde::Serialize>(r: &T) -> String {
    serde_json::to_value(r).unwrap().to_string()
}

/// The records of the finished file, as canonical JSON, sorted.
fn records_in(path: &Path, kind: Kind, csv: bool) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut all: Vec<String> = match (kind, csv) {
        (Kind::Activity, false) => from_ndjson::<ActivityLogObject>(&text)
            .iter()
            .map(canonical)
            .collect(),
        (Kind::Activity, true) => from_csv::<ActivityLogObject>(&text)
            .iter()
            .map(canonical)
            .collect(),
        (Kind::Api, false) => from_ndjson::<ApiLogObject>(&text)
            .iter()
            .map(canonical)
            .collect(),
        (Kind::Api, true) => from_csv::<ApiLogObject>(&text)
            .iter()
            .map(canonical)
            .collect(),
        (Kind::Security, _) => unreachable!(),
    };
    all.sort();
    all
}

/// The fake's ground truth for the window, as canonical JSON, sorted.
fn ground_truth(fake: &FakeLago, kind: Kind) -> Vec<String> {
    let to = DEFAULT_NOW.parse().unwrap();
    let mut all: Vec<String> = fake
        .ground_truth(kind, None, Some(to))
        .iter()
        .map(|id| {
            let json = fake.record_json(kind, id).unwrap();
            match kind {
                Kind::Activity => {
                    canonical(&serde_json::from_value::<ActivityLogObject>(json).unwrap())
                }
                _ => canonical(&serde_json::from_value::<ApiLogObject>(json).unwrap()),
            }
        })
        .collect();
    all.sort();
    all
}

/// Exports `records` base records into a file, killing the process at random points (SIGKILL,
/// and now and then Ctrl-C) and resuming, until an attempt finishes; then compares the file with
/// the fake's ground truth: every record once.
/// With `always_resume`, every run passes `--resume`, as a script that loops until the export
/// succeeds does (`until lago-audit … -o F --resume; do sleep 5; done`); a last run on the
/// finished file must then say it is complete and exit 0.
fn killed_and_resumed(kind: Kind, records: u64, format: &str, seed: u64, always_resume: bool) {
    let fake = Fake::start(
        FakeLago::builder()
            .seed(seed)
            .records(records)
            .shuffle_ties(true)
            .insert_per_request(2)
            .error_rate(0.02)
            .truncate_rate(0.01)
            .reset_rate(0.01)
            .chunked_cut_rate(0.01)
            .duplicate_rate(0.01)
            .count_skew(3),
    );
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join(format!("trail.{format}"));
    let checkpoint = dir.path().join(format!("trail.{format}.checkpoint.json"));
    let sub = match kind {
        Kind::Activity => "activity-logs",
        _ => "api-logs",
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    // An attempt that reached no new checkpoint gets twice the time next (a loaded machine).
    let (mut patience, mut last_saved) = (1u64, String::new());
    let (mut kills, mut interrupts) = (0, 0);
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no attempt finished"
        );
        let resume = always_resume || checkpoint.exists();
        let mut cmd = bin();
        cmd.args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ])
        // The window ends at the fake's newest base record: inserts come after it.
        .args([
            sub,
            "export",
            "--to",
            DEFAULT_NOW,
            "--max-per-page",
            "150",
            "--rate-limit",
            "40",
        ])
        .args(["-f", format, "-o"])
        .arg(&dest)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        if resume {
            cmd.arg("--resume");
        }
        let mut child = cmd.spawn().unwrap();
        let wait = Duration::from_millis((100 + rng.below(900)) * patience);
        let t = Instant::now();
        while t.elapsed() < wait {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if child.try_wait().unwrap().is_none() {
            if rng.below(4) == 0 {
                signal(&child, "INT");
                interrupts += 1;
            } else {
                signal(&child, "KILL");
                kills += 1;
            }
        }
        let out = child.wait_with_output().unwrap();
        let saved = std::fs::read_to_string(&checkpoint).unwrap_or_default();
        patience = if saved == last_saved {
            (patience * 2).min(16)
        } else {
            1
        };
        last_saved = saved;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!stderr.contains("panicked"), "{stderr}");
        match out.status.code() {
            Some(0) => break,
            // Ctrl-C: the checkpoint is saved and the message says how to continue.
            Some(130) => assert!(stderr.contains("--resume"), "{stderr}"),
            None => {} // SIGKILL
            other => panic!("exit {other:?}: {stderr}"),
        }
    }
    assert!(kills + interrupts > 0, "the export was never interrupted");
    // The checkpoint stays as the receipt of the finished file (what lets --resume call it done).
    let receipt: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&checkpoint).unwrap()).unwrap();
    assert_eq!(
        receipt["finished"], true,
        "the checkpoint becomes a receipt"
    );
    assert_eq!(
        receipt["bytes"].as_u64(),
        Some(std::fs::metadata(&dest).unwrap().len())
    );
    let got = records_in(&dest, kind, format == "csv");
    let want = ground_truth(&fake.fake, kind);
    assert_eq!(want.len() as u64, records);
    let distinct: HashSet<&String> = got.iter().collect();
    eprintln!(
        "{sub} {format}: {kills} kills, {interrupts} interrupts, {} records, {} distinct, {:?}",
        got.len(),
        distinct.len(),
        fake.fake.counts()
    );
    assert_eq!(distinct.len(), got.len(), "a record was written twice");
    assert_eq!(got.len(), want.len(), "records lost or added");
    assert!(got == want, "the file differs from the fake's ground truth");
    if always_resume {
        let before = std::fs::read(&dest).unwrap();
        let out = bin()
            .args([
                "--api-url",
                &fake.fake.base_url(),
                "--api-key",
                fake.fake.api_key(),
            ])
            .args([sub, "export", "--to", DEFAULT_NOW, "-f", format, "-o"])
            .arg(&dest)
            .arg("--resume")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "--resume on a finished file: {stderr}"
        );
        assert!(stderr.contains("complete"), "{stderr}");
        assert_eq!(
            std::fs::read(&dest).unwrap(),
            before,
            "a finished file is left as is"
        );
    }
}

#[test]
fn export_resumes_after_kills_with_every_activity_log_once_when_always_passed_resume() {
    killed_and_resumed(Kind::Activity, 12_000, "ndjson", 11, true);
}

#[test]
fn export_resumes_after_kills_with_every_api_log_once_in_csv() {
    killed_and_resumed(Kind::Api, 9_000, "csv", 12, false);
}

#[test]
fn export_writes_what_the_library_exports() {
    let fake = Fake::start(FakeLago::builder().seed(8).records(2_500));
    let client = fake.client();
    let want: Vec<SecurityLogObject> = fake
        .runtime
        .block_on(async {
            use futures::TryStreamExt;
            client
                .find_all_security_logs()
                .to_date(DEFAULT_NOW)
                .export(ExportOptions::default())
                .try_collect::<Vec<_>>()
                .await
        })
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            ExportEvent::Record(r) => Some(r),
            ExportEvent::Checkpoint(_) => None,
        })
        .collect();
    assert_eq!(want.len(), 625);
    let out = bin()
        .args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ])
        .args(["security-logs", "export", "--to", DEFAULT_NOW, "-f", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = from_csv::<SecurityLogObject>(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(got, want);
    // Without --to, security logs (which Lago only lists with a to_date) export up to now.
    let out = bin()
        .args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ])
        .args(["security-logs", "export", "-f", "ndjson"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        from_ndjson::<SecurityLogObject>(&String::from_utf8(out.stdout).unwrap()),
        want
    );
}

#[test]
fn a_resume_refuses_other_filters_or_formats() {
    let fake = Fake::start(FakeLago::builder().seed(9).records(3_000));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.ndjson");
    let base = || {
        let mut c = bin();
        c.args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ]);
        c
    };
    // An interrupted export, as a kill leaves it.
    let mut child = base()
        .args([
            "activity-logs",
            "export",
            "--rate-limit",
            "2",
            "--max-per-page",
            "10",
            "-o",
        ])
        .arg(&dest)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let checkpoint = dir.path().join("x.ndjson.checkpoint.json");
    let t = Instant::now();
    while !checkpoint.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(&child, "KILL");
    let _ = child.wait();
    let run = |args: &[&str]| {
        let out = base().args(args).arg("-o").arg(&dest).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&[
        "activity-logs",
        "export",
        "--activity-type",
        "plan.created",
        "--resume",
    ]);
    assert_eq!(code, Some(12), "{err}");
    assert!(err.contains("filters differ"), "{err}");
    let (code, err) = run(&["activity-logs", "export", "--resume", "-f", "csv"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(err.contains("--format csv"), "{err}");
    let (code, err) = run(&["api-logs", "export", "--resume"]);
    assert_eq!(code, Some(12), "{err}");
    let (code, err) = run(&["activity-logs", "export"]);
    assert_eq!(code, Some(12), "{err}");
    assert!(
        err.contains("--resume") && err.contains("--restart"),
        "{err}"
    );
    // The same command with --resume finishes it.
    let (code, err) = run(&["activity-logs", "export", "--resume", "--rate-limit", "0"]);
    assert_eq!(code, Some(0), "{err}");
    let got = from_ndjson::<ActivityLogObject>(&std::fs::read_to_string(&dest).unwrap());
    assert_eq!(got.len(), 3_000);
}

#[test]
fn tail_prints_each_new_record_once_as_it_arrives() {
    // Every list request inserts one whole second of new records (3), stamped from now on (the
    // base data ends a second ago), as records that arrive while the tail runs.
    let now = chrono::Utc::now().timestamp() - 1;
    let fake = Fake::start(
        FakeLago::builder()
            .seed(10)
            .records(300)
            .insert_per_request(3)
            .now(chrono::DateTime::from_timestamp(now, 0).unwrap()),
    );
    let first_insert = fake.fake.generator().logged_at(Slot::Inserted(0));
    let mut child = bin()
        .args([
            "--api-url",
            &fake.fake.base_url(),
            "--api-key",
            fake.fake.api_key(),
        ])
        .args([
            "activity-logs",
            "tail",
            "--poll-interval",
            "100ms",
            "--settle",
            "0s",
            "-f",
            "ndjson",
        ])
        .args(["--from", &first_insert.to_rfc3339()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Lines arrive while the process runs: each one is flushed as it is printed.
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    while lines.len() < 12 {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).unwrap() > 0, "tail ended early");
        lines.push(line);
    }
    signal(&child, "INT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    lines.extend(rest.lines().map(|l| format!("{l}\n")));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends a tail normally");

    let got = from_ndjson::<ActivityLogObject>(&lines.concat());
    let ids: Vec<String> = got.iter().map(|r| r.activity_id.to_string()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a record was printed twice");
    // Exactly the first n inserted records: none of the base data, no gap.
    let want: HashSet<String> = (0..ids.len() as u64)
        .map(|k| {
            fake.fake
                .generator()
                .id(Kind::Activity, Slot::Inserted(k))
                .to_string()
        })
        .collect();
    assert_eq!(unique, want.iter().collect::<HashSet<_>>());
    assert!(fake.fake.counts().inserted >= ids.len() as u64);
}

#[test]
fn tail_follows_api_and_security_logs_in_the_demo() {
    // The demo adds one second of records per poll while tailing; read a few of each kind.
    for kind in ["api-logs", "security-logs"] {
        let mut child = bin()
            .args([
                "--demo",
                "-q",
                kind,
                "tail",
                "--poll-interval",
                "200ms",
                "-f",
                "ndjson",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut lines = String::new();
        for _ in 0..4 {
            assert!(
                reader.read_line(&mut lines).unwrap() > 0,
                "{kind}: tail ended early"
            );
        }
        signal(&child, "INT");
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{kind}");
        match kind {
            "api-logs" => assert_eq!(from_ndjson::<ApiLogObject>(&lines).len(), 4),
            _ => assert_eq!(from_ndjson::<SecurityLogObject>(&lines).len(), 4),
        }
    }
}

/// The keys of an NDJSON export of `sub` on stdout: ids, or for API logs the whole record.
fn demo_export_keys(sub: &str, faults: bool) -> Vec<String> {
    let mut cmd = bin();
    cmd.args(["--demo", "--demo-records", "6000", "-q"]);
    if faults {
        cmd.arg("--demo-faults");
    }
    let out = cmd.args([sub, "export", "-f", "ndjson"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{sub}, faults {faults}: {stderr}");
    let text = String::from_utf8(out.stdout).unwrap();
    match sub {
        "activity-logs" => from_ndjson::<ActivityLogObject>(&text)
            .iter()
            .map(|r| r.activity_id.to_string())
            .collect(),
        "api-logs" => from_ndjson::<ApiLogObject>(&text)
            .iter()
            .map(canonical)
            .collect(),
        _ => from_ndjson::<SecurityLogObject>(&text)
            .iter()
            .map(|r| r.log_id.to_string())
            .collect(),
    }
}

/// The demo with every fault (cut bodies, 5xx, 429s, stored duplicates, a count that disagrees,
/// records landing inside the window while the export starts) exports every record the clean
/// demo does, once each; what it adds are only the records inserted while it ran.
#[test]
fn demo_export_with_faults_holds_every_record_of_the_clean_one() {
    for sub in ["activity-logs", "api-logs", "security-logs"] {
        let clean = demo_export_keys(sub, false);
        let faulty = demo_export_keys(sub, true);
        let mut seen = HashSet::new();
        let repeated: Vec<&String> = faulty.iter().filter(|k| !seen.insert(*k)).collect();
        assert!(
            repeated.is_empty(),
            "{sub}: {} written twice",
            repeated.len()
        );
        let lost = clean.iter().filter(|k| !seen.contains(k)).count();
        assert_eq!(
            lost,
            0,
            "{sub}: {lost} of {} lost under faults",
            clean.len()
        );
        assert!(faulty.len() > clean.len(), "{sub}: records were inserted");
    }
}
