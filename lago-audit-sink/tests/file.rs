//! Exactly-once delivery into a local directory (`file://`): determinism, kills at random
//! points, a killed child process, lost checkpoints, conflicts and a concurrent exporter.

mod common;

use common::*;
use lago_audit_client::types::{ActivityLogObject, ApiLogObject, SecurityLogObject};
use lago_audit_fake::FakeLago;
use lago_audit_sink::{BatchLimits, Destination, Format, Sink, SinkError, SinkOptions};
use object_store::{ObjectStoreExt, PutPayload};
use std::time::Duration;

fn dir_url(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

fn small() -> SinkOptions {
    SinkOptions::default().limits(BatchLimits::default().max_records(500).max_bytes(200_000))
}

/// Two runs on the same data, read with other page sizes and read-ahead (so other checkpoints)
/// and with ties in a new order on every query, write the same objects, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_records_give_the_same_objects() {
    let fake = FakeLago::builder()
        .seed(3)
        .records_per_kind(6_000, 0, 0)
        .shuffle_ties(true)
        .start()
        .await
        .unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (da, db) = (
        Destination::parse(&dir_url(a.path())).unwrap(),
        Destination::parse(&dir_url(b.path())).unwrap(),
    );
    run::<ActivityLogObject>(&fake, &da, small(), 1000)
        .await
        .unwrap();
    run::<ActivityLogObject>(&fake, &db, small(), 37)
        .await
        .unwrap();
    let (oa, ob) = (
        objects::<ActivityLogObject>(&da).await,
        objects::<ActivityLogObject>(&db).await,
    );
    assert!(oa.len() >= 12, "{} objects", oa.len());
    assert_eq!(oa.keys().collect::<Vec<_>>(), ob.keys().collect::<Vec<_>>());
    assert!(oa == ob, "same names, other bytes");
    for raw in oa.values() {
        assert!(raw.iter().filter(|b| **b == b'\n').count() <= 500);
    }
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&da).await,
        &truth::<ActivityLogObject>(&fake),
        "deterministic batches",
    );
    // A second run finds nothing new: no object, the checkpoint only.
    let again = run::<ActivityLogObject>(&fake, &da, small(), 1000)
        .await
        .unwrap();
    assert_eq!((again.objects, again.records), (0, 0));
}

/// Lago at its worst and the writer killed at random points, ten times, then run to the end:
/// every record exactly once, for each kind of log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_deliver_exactly_once_into_a_directory() {
    let fake = hostile(11)
        .records_per_kind(8_000, 4_000, 1_500)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    let k1 = run_with_kills::<ActivityLogObject>(&fake, &dest, small, 250, 10, 16, 1).await;
    let k2 = run_with_kills::<ApiLogObject>(&fake, &dest, small, 250, 10, 8, 2).await;
    let k3 = run_with_kills::<SecurityLogObject>(&fake, &dest, small, 100, 5, 8, 3).await;
    assert!(k1 + k2 + k3 >= 10, "only {} runs were killed", k1 + k2 + k3);
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        "activity logs",
    );
    assert_exactly_once(
        &stored_keys::<ApiLogObject>(&dest).await,
        &truth::<ApiLogObject>(&fake),
        "API logs",
    );
    assert_exactly_once(
        &stored_keys::<SecurityLogObject>(&dest).await,
        &truth::<SecurityLogObject>(&fake),
        "security logs",
    );
    assert!(fake.counts().server_errors > 0);
}

/// A run killed after writing objects but before saving any checkpoint (here: the checkpoint is
/// removed): the next run adopts the objects it finds and writes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_whose_checkpoint_was_lost_are_adopted() {
    let fake = FakeLago::builder()
        .seed(5)
        .records_per_kind(3_000, 0, 0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    // A first run stopped after part of the window: its objects stay, its checkpoint goes.
    let to = fake.generator().now() - chrono::Duration::seconds(400);
    let mut sink = Sink::<ActivityLogObject>::open(&dest, small())
        .await
        .unwrap();
    let client = client(&fake);
    let events = lago_audit_client::Export::export(
        client.find_all_activity_logs().to_date(to),
        lago_audit_client::ExportOptions::default(),
    );
    let first = sink.write(events).await.unwrap();
    assert!(first.objects > 1);
    std::fs::remove_dir_all(dir.path().join("activity_logs/_lago-audit")).unwrap();
    let second = run::<ActivityLogObject>(&fake, &dest, small(), 1000)
        .await
        .unwrap();
    assert!(second.objects > 0);
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        "after adoption",
    );
}

/// An object that straddles the checkpoint's position cannot come from this writer: it is an
/// error, and the object is left as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_across_the_checkpoint_is_refused_and_kept() {
    let fake = FakeLago::builder()
        .seed(6)
        .records_per_kind(1_000, 0, 0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    let done = run::<ActivityLogObject>(&fake, &dest, small(), 1000)
        .await
        .unwrap();
    let p = done.position.unwrap().timestamp();
    let name = lago_audit_sink::layout::object_name(p - 10, p + 10);
    let path = object_store::path::Path::from(format!("activity_logs/{name}"));
    let other = b"not ours".to_vec();
    dest.store()
        .put(&path, PutPayload::from(other.clone()))
        .await
        .unwrap();
    let err = Sink::<ActivityLogObject>::open(&dest, small())
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("overlaps"), "{err}");
    let kept = dest
        .store()
        .get(&path)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(kept.to_vec(), other, "an object was overwritten");
}

/// Two exporters on one prefix: one of them is refused with a clear message, and the prefix
/// still holds every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_exporter_is_refused() {
    let fake = FakeLago::builder()
        .seed(8)
        .records_per_kind(4_000, 0, 0)
        .latency(Duration::from_millis(3))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    let (a, b) = tokio::join!(
        run::<ActivityLogObject>(&fake, &dest, small(), 200),
        run::<ActivityLogObject>(&fake, &dest, small(), 200),
    );
    let refused: Vec<_> = [&a, &b]
        .into_iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert!(
        !refused.is_empty(),
        "both exporters ran to the end: {a:?} {b:?}"
    );
    for e in &refused {
        assert!(matches!(e, SinkError::Concurrent { .. }), "{e}");
        assert!(e.to_string().contains("another exporter"), "{e}");
    }
    // What was written is whole and not repeated; a last run completes it.
    run::<ActivityLogObject>(&fake, &dest, small(), 1000)
        .await
        .unwrap();
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        "after a concurrent exporter",
    );
}

/// A prefix keeps its format: opening it with another is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_keeps_its_format() {
    let fake = FakeLago::builder()
        .seed(9)
        .records_per_kind(300, 0, 0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    run::<ActivityLogObject>(&fake, &dest, small().format(Format::Ocsf), 1000)
        .await
        .unwrap();
    let err = Sink::<ActivityLogObject>::open(&dest, small().format(Format::Ecs))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`ocsf` format"), "{err}");
    assert!(dir
        .path()
        .join("activity_logs/_lago-audit/chain/00000000000000000001.json")
        .is_file());
}

/// The child half of the SIGKILL test: exports into the destination it is given, until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_child() {
    sigkill_child_main::<ActivityLogObject>(small()).await;
}

/// A child process exporting into a directory is SIGKILLed at random points, five times, and
/// run again each time; the last run completes. Every record is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_process_resumes_exactly_once() {
    let fake = hostile(21)
        .records_per_kind(6_000, 0, 0)
        .latency(Duration::from_millis(2))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = dir_url(dir.path());
    // The children block this thread while they run; the fake serves from the other worker.
    let killed = tokio::task::block_in_place(|| sigkill_runs(&fake, &url, &[], 5, 30, 4));
    assert!(killed >= 2, "only {killed} children were killed mid-way");
    let dest = Destination::parse(&url).unwrap();
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &truth::<ActivityLogObject>(&fake),
        &format!("{killed} SIGKILLs"),
    );
}

/// `follow` (what `tail` will use): records logged while it runs reach the directory once a
/// checkpoint passes their span, with nothing repeated, and the checkpoint keeps up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_delivers_new_records_within_the_span() {
    use lago_audit_client::{Export, ExportOptions};
    let fake = FakeLago::builder()
        .seed(71)
        .records_per_kind(500, 0, 0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::parse(&dir_url(dir.path())).unwrap();
    let options = SinkOptions::default()
        .limits(BatchLimits::default().max_span(Some(Duration::from_secs(2))))
        .checkpoint_every(Duration::from_millis(500));
    let mut sink = Sink::<ActivityLogObject>::open(&dest, options)
        .await
        .unwrap();
    let client = client(&fake);
    let follower = {
        let client = client.clone();
        tokio::spawn(async move {
            let events = client.find_all_activity_logs().follow(
                ExportOptions::default()
                    .settle(Duration::from_secs(1))
                    .poll_interval(Duration::from_millis(200)),
            );
            sink.write(events).await
        })
    };
    let mut inserted = Vec::new();
    for _ in 0..6 {
        let now = chrono::Utc::now();
        inserted.push(fake.insert(lago_audit_fake::data::Kind::Activity, now, Duration::ZERO));
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let want: Vec<String> = fake
        .ground_truth(lago_audit_fake::data::Kind::Activity, None, None)
        .iter()
        .map(|id| id.to_string())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = stored_keys::<ActivityLogObject>(&dest).await;
        if got.len() >= want.len() || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !follower.is_finished(),
        "follow ended: {:?}",
        follower.await
    );
    follower.abort();
    assert_eq!(want.len(), 506);
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&dest).await,
        &want,
        "follow",
    );
    let (head, _) = lago_audit_sink::chain::head(&dest, lago_audit_sink::LogKind::Activity)
        .await
        .unwrap()
        .unwrap();
    let position = head.position.unwrap();
    assert!(
        position > chrono::Utc::now() - chrono::Duration::seconds(10),
        "{head:?}"
    );
}

/// Writers with different batch limits, one after another and side by side, on one directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_writers_never_store_a_second_twice() {
    let dir = tempfile::tempdir().unwrap();
    overlapping_writers(&Destination::parse(&dir_url(dir.path())).unwrap(), 76).await;
}

/// Under `strace`: every object and chain record in a directory is synced before it is linked
/// into place, and its directory is synced after, before the writer goes on (so after a power
/// cut no record names an object that is not on disk, and no object is empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_is_synced_before_anything_that_depends_on_it() {
    let found = std::process::Command::new("strace").arg("-V").output();
    if found.is_err() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "strace is missing under CI=true: .ci/run installs it"
        );
        eprintln!("SKIPPED: strace is not installed");
        return;
    }
    let fake = FakeLago::builder()
        .seed(77)
        .records_per_kind(2_000, 0, 0)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("strace.txt");
    let archive = dir.path().join("archive");
    let strace: Vec<&std::ffi::OsStr> = [
        "strace",
        "-f",
        "-qq",
        "-e",
        "trace=fsync,fdatasync,link,linkat",
        "-o",
    ]
    .iter()
    .map(std::ffi::OsStr::new)
    .chain([trace.as_os_str()])
    .collect();
    let status = tokio::task::block_in_place(|| {
        child_command(&strace, &fake, &dir_url(&archive), &[])
            .status()
            .unwrap()
    });
    assert!(status.success());
    // Per thread, in order: the calls of interest.
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut by_thread: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for line in text.lines() {
        let Some((pid, call)) = line.split_once(' ') else {
            continue;
        };
        by_thread.entry(pid).or_default().push(call.trim_start());
    }
    let mut links = 0;
    for calls in by_thread.values() {
        for (i, call) in calls.iter().enumerate() {
            if !(call.starts_with("link") && call.ends_with("= 0") && call.contains(".tmp\"")) {
                continue;
            }
            links += 1;
            let before = i.checked_sub(1).map(|j| calls[j]);
            assert!(
                before.is_some_and(|c| c.starts_with("fsync") || c.starts_with("fdatasync")),
                "not synced before it was linked: {call} (before: {before:?})"
            );
            let after = calls.get(i + 1);
            assert!(
                after.is_some_and(|c| c.starts_with("fsync")),
                "its directory was not synced after: {call} (after: {after:?})"
            );
        }
    }
    // Objects and chain records alike (at least one of each).
    assert!(links >= 4, "only {links} durable creates traced:\n{text}");
    assert_exactly_once(
        &stored_keys::<ActivityLogObject>(&Destination::parse(&dir_url(&archive)).unwrap()).await,
        &truth::<ActivityLogObject>(&fake),
        "under strace",
    );
}

/// A writer suspended (SIGSTOP: a frozen VM, a stopped container, a debugger) for longer than
/// its lease is taken over by another, which completes the trail; when the first one wakes up it
/// is refused before it writes anything, and the archive holds every record once and verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_suspended_past_its_lease_is_taken_over_and_cannot_write_when_it_wakes() {
    let fake = FakeLago::builder()
        .seed(33)
        .records_per_kind(6_000, 0, 0)
        .latency(Duration::from_millis(4))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = dir_url(dir.path());
    let lease = Duration::from_secs(10); // the shortest a sink takes
    let mut child = child_command(
        &[],
        &fake,
        &url,
        &[("LAGO_SINK_CHILD_LEASE_MS", "10000".into())],
    )
    .spawn()
    .unwrap();
    let dest = Destination::parse(&url).unwrap();
    // Suspended once it has committed something and while it is still running.
    let stopped = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if !stored_keys::<ActivityLogObject>(&dest).await.is_empty() {
                break;
            }
        }
    })
    .await;
    assert!(stopped.is_ok(), "the child stored nothing");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the child ended before it was suspended"
    );
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    let stored_then = stored_keys::<ActivityLogObject>(&dest).await.len();
    // While the lease runs, its holder (alive, if stopped) keeps the prefix.
    let early = run::<ActivityLogObject>(&fake, &dest, small().lease(lease), 100).await;
    assert!(
        matches!(early, Err(SinkError::Concurrent { .. })),
        "{early:?}"
    );
    tokio::time::sleep(lease + Duration::from_millis(500)).await;
    run::<ActivityLogObject>(&fake, &dest, small().lease(lease), 100)
        .await
        .expect("the lease is over: taken over");
    signal("-CONT");
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert!(!status.success(), "the woken writer was not refused");
    assert!(stored_keys::<ActivityLogObject>(&dest).await.len() > stored_then);
    assert_whole(
        &dest,
        &fake,
        "a writer suspended past its lease, then woken",
    )
    .await;
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Mount(std::path::PathBuf);

impl Mount {
    /// A tmpfs of `size` (as `mount -o size=` takes it) at `at`, or `None` where this process
    /// may not mount (not root, or a sandbox without the capability).
    fn tmpfs(at: &std::path::Path, size: &str) -> Option<Mount> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(at.to_owned()))
    }

    fn resize(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {}", self.0.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// The disk fills up in the middle of a run (a small tmpfs): the run stops with the store's
/// error, nothing half-written is visible to readers, and once space is freed the next run
/// continues from where it stopped, every record once, and the archive verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_writer_and_the_run_after_space_is_freed_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Mount::tmpfs(dir.path(), "600k") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root, as .ci/run has)");
        return;
    };
    let fake = FakeLago::builder()
        .seed(88)
        .records_per_kind(12_000, 0, 0)
        .start()
        .await
        .unwrap();
    let url = dir_url(&dir.path().join("archive"));
    let dest = Destination::parse(&url).unwrap();
    let err = run::<ActivityLogObject>(&fake, &dest, small(), 500)
        .await
        .expect_err("the disk is full");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    let stored = stored_keys::<ActivityLogObject>(&dest).await;
    assert!(!stored.is_empty(), "the disk filled before any object");
    // Readers see whole objects only: staged files are hidden (`.name.tmp`) or gone.
    let partial = verified(&dest).await;
    assert!(
        partial
            .problems
            .iter()
            .all(|p| p.code == "object-missing" && p.detail.contains("newest record")),
        "{:?}",
        partial.problems
    );

    mount.resize("64m");
    run::<ActivityLogObject>(&fake, &dest, small(), 500)
        .await
        .expect("space was freed");
    assert_whole(&dest, &fake, "a disk that filled up, then had room again").await;
}
