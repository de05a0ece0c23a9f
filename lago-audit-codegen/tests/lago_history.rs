//! The update report on real pairs of Lago's published spec, with the verdicts pinned.
//!
//! Lago's spec is AGPL-3.0 and never part of this repository: these tests read its revisions from
//! the folder (holding `REV.yaml` per revision) or the git directory of `getlago/lago-openapi`
//! named by `LAGO_OPENAPI_HISTORY`, and are skipped with a message when it is not set, so CI
//! without a network still passes. `scripts/history.sh` runs the same reports over every pair.

use lago_audit_codegen::report::{self, Report, Verdict};
use lago_audit_codegen::status::Status;
use std::path::{Path, PathBuf};

const ENV: &str = "LAGO_OPENAPI_HISTORY";

/// The spec at `rev`, or `None` (with a message) when the history is not available.
fn revision(rev: &str) -> Option<PathBuf> {
    let Some(source) = std::env::var_os(ENV).map(PathBuf::from) else {
        // Straight to stderr (not captured by the test harness), so the skip always shows.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: set {ENV} to a folder of REV.yaml or to getlago/lago-openapi's git directory"
        );
        return None;
    };
    let file = source.join(format!("{rev}.yaml"));
    if file.is_file() {
        return Some(file);
    }
    let out = std::process::Command::new("git")
        .arg(format!("--git-dir={}", source.display()))
        .args(["show", &format!("{rev}:openapi.yaml")])
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "{ENV}={}: neither {rev}.yaml nor a git directory with {rev}",
        source.display()
    );
    let dir = std::env::temp_dir().join(format!("lago-history-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{rev}.yaml"));
    std::fs::write(&file, out.stdout).unwrap();
    Some(file)
}

fn run(old: &str, new: &str) -> Option<Report> {
    let (old, new) = (revision(old)?, revision(new)?);
    let overlay =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/lago-audit-logs.overlay.yaml");
    Some(report::report(&old, &new, &overlay).unwrap())
}

fn changes(r: &Report) -> Vec<String> {
    let mut c: Vec<String> = r.changes.iter().map(ToString::to_string).collect();
    c.sort();
    c
}

/// Lago renames `api_version[]` back to a scalar `api_version`: breaking for code that set it;
/// every correction still applies and the client diff shows it.
#[test]
fn lago_b45e5d6_to_7717931_api_version_becomes_a_scalar() {
    let Some(r) = run("b45e5d6", "7717931") else {
        return;
    };
    assert_eq!(
        changes(&r),
        vec![
            "[BREAKING] findAllApiLogs: parameter api_version[] removed",
            "[non-breaking] findAllApiLogs: optional parameter api_version (string) added",
        ],
        "{r}"
    );
    assert!(r.actions.iter().all(|a| a.status == Status::Applies), "{r}");
    assert!(matches!(r.client, report::ClientDiff::Diff(_)), "{r}");
    assert_eq!(r.verdict(), Verdict::Breaking);
}

/// Only other parts of Lago's API changed: nothing for users of the client.
#[test]
fn lago_7717931_to_120da12_changes_nothing_for_users() {
    let Some(r) = run("7717931", "120da12") else {
        return;
    };
    assert!(r.changes.is_empty(), "{r}");
    assert_eq!(r.verdict(), Verdict::NoChange, "{r}");
}

/// Activity objects become objects (four breaking type changes) while the filters of that time
/// still lack their brackets, so the overlay's `activity_sources[]` actions break and name the
/// target they should have; the actions on the API logs, not there yet, break too.
#[test]
fn lago_eb129f0_to_54d6254_objects_and_a_renamed_filter() {
    let Some(r) = run("eb129f0", "54d6254") else {
        return;
    };
    assert_eq!(
        changes(&r),
        vec![
            "[BREAKING] findActivityLog: response field activity_log.activity_object: type string(object) became object",
            "[BREAKING] findActivityLog: response field activity_log.activity_object_changes: type string(object) became object",
            "[BREAKING] findAllActivityLogs: response field activity_logs[].activity_object: type string(object) became object",
            "[BREAKING] findAllActivityLogs: response field activity_logs[].activity_object_changes: type string(object) became object",
        ],
        "{r}"
    );
    let a27 = &r.actions[27];
    assert_eq!(
        a27.status,
        Status::Broken {
            change: "the parameter activity_sources[] was renamed activity_sources upstream"
                .into(),
            new_target: Some(
                "$.paths['/activity_logs'].get.parameters[?@.name=='activity_sources'].schema.items"
                    .into()
            ),
        },
        "{r}"
    );
    assert!(
        matches!(&r.actions[40].status, Status::Broken { change, .. } if change.contains("GET /api_logs/{request_id} is gone")),
        "{r}"
    );
    assert_eq!(r.actions_with("broken").len(), 24, "{r}");
    assert!(
        matches!(r.client, report::ClientDiff::NewNotBuilt(_)),
        "{r}"
    );
    assert_eq!(r.verdict(), Verdict::OverlayNeedsWork);
}

/// Array filters gain their brackets: each is a removal plus an addition (open enums marked as
/// such), and the overlay, written for the bracketed names, applies in full to the new one.
#[test]
fn lago_afbfe27_to_b45e5d6_array_filters_gain_brackets() {
    let Some(r) = run("afbfe27", "b45e5d6") else {
        return;
    };
    let c = changes(&r);
    assert_eq!(c.len(), 16, "{r}");
    assert_eq!(
        c.iter().filter(|c| c.starts_with("[BREAKING]")).count(),
        8,
        "{r}"
    );
    assert!(c.contains(&"[non-breaking] findAllApiLogs: optional parameter http_methods[] (array<open enum>) added".to_owned()), "{r}");
    assert!(r.actions.iter().all(|a| a.status == Status::Applies), "{r}");
    assert!(
        matches!(r.client, report::ClientDiff::OldNotBuilt(_)),
        "{r}"
    );
    assert_eq!(r.verdict(), Verdict::Breaking);
}

/// Lago's head builds the same client as our spec: no change, every correction applies.
#[test]
fn lago_120da12_to_ours_no_change() {
    let Some(old) = revision("120da12") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi");
    let r = report::report(
        &old,
        &root.join("lago-audit-logs.yaml"),
        &root.join("lago-audit-logs.overlay.yaml"),
    )
    .unwrap();
    assert!(r.changes.is_empty(), "{r}");
    assert!(r.actions.iter().all(|a| a.status == Status::Applies), "{r}");
    assert_eq!(r.verdict(), Verdict::NoChange);
}
