//! `lago-audit keygen` and `lago-audit verify`, as the README shows them on the demo: export with
//! a key, verify, flip a byte, verify again.

mod common;

use std::io::{Read, Write};
use std::process::Command;

fn lago_audit() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("lago-audit"));
    cmd.env_remove("LAGO_API_KEY")
        .env_remove("LAGO_API_URL")
        .env_remove("LAGO_REGION")
        .env_remove("LAGO_AUDIT_SIGNING_KEY");
    cmd
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_archive_signed_on_the_demo_verifies_until_a_byte_changes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("archive-key.pem");
    let archive = dir.path().join("archive");
    let url = format!("file://{}", archive.display());

    let (code, out, err) = run(lago_audit().arg("keygen").arg(&key));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("fingerprint "), "{out}");
    let public = dir.path().join("archive-key.pem.pub");
    assert!(std::fs::read_to_string(&public)
        .unwrap()
        .contains("BEGIN PUBLIC KEY"));
    // Never over an existing key.
    let (code, _, _) = run(lago_audit().arg("keygen").arg(&key));
    assert_eq!(code, Some(1));

    let (code, _, err) = run(lago_audit()
        .args([
            "--demo",
            "--demo-records",
            "3000",
            "activity-logs",
            "export",
            "-o",
            &url,
        ])
        .arg("--signing-key")
        .arg(&key));
    assert_eq!(code, Some(0), "{err}");

    let verify = || {
        let mut cmd = lago_audit();
        cmd.args(["verify", &url, "--require-signature", "--public-key"])
            .arg(&public);
        cmd
    };
    let (code, out, err) = run(&mut verify());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("digests valid") && out.contains("signed, newest digest"),
        "{out}"
    );

    // Another key is not the one that signed it.
    let other = dir.path().join("other.pem");
    run(lago_audit().arg("keygen").arg(&other));
    let (code, out, _) = run(lago_audit()
        .args(["verify", &url, "--public-key"])
        .arg(&other));
    assert_eq!(code, Some(14), "{out}");
    assert!(out.contains("digest-signature"), "{out}");

    // One byte of one object's records changed (recompressed, so the gzip stays whole).
    let day = std::fs::read_dir(archive.join("activity_logs"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("dt="))
        .unwrap()
        .path();
    let object = std::fs::read_dir(&day)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&object).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let at = raw.iter().position(|b| *b == b'"').unwrap() + 1;
    raw[at] ^= 0x01;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(&object, gz.finish().unwrap()).unwrap();

    let (code, out, err) = run(&mut verify());
    assert_eq!(code, Some(14), "{out}{err}");
    let name = object.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        out.lines()
            .any(|l| l.starts_with("object-hash:") && l.contains(&name)),
        "{out}"
    );
    let (code, out, _) = run(verify().arg("--json"));
    assert_eq!(code, Some(14));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["kinds"][0]["problems"][0]["code"], "object-hash");
}

/// The README's Security Lake command on the demo: Parquet under Security Lake's partitions for
/// every class of the kind, the chain beside them in `{kind}/_lago-audit/`, and `verify` checks
/// those objects too. Without `--format ocsf`, or without the partitions' flags, a usage error
/// before anything is written.
#[cfg(feature = "security-lake")]
#[test]
fn a_security_lake_export_of_the_demo_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("lake");
    let url = format!("file://{}", archive.display());
    let lake = [
        "--layout",
        "security-lake",
        "--lake-source",
        "lago",
        "--lake-region",
        "eu-west-1",
        "--lake-account-id",
        "123456789012",
    ];
    let export = |format: &str, flags: &[&str]| {
        run(lago_audit()
            .args([
                "--demo",
                "--demo-records",
                "2000",
                "security-logs",
                "export",
            ])
            .args(["--format", format, "-o", &url])
            .args(flags))
    };
    let (code, _, err) = export("ndjson", &lake);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--format ocsf"), "{err}");
    let (code, _, err) = export("ocsf", &lake[..6]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--lake-account-id"), "{err}");
    assert!(
        !archive.exists(),
        "nothing written before the flags are right"
    );

    let (code, _, err) = export("ocsf", &lake);
    assert_eq!(code, Some(0), "{err}");
    let ext = archive.join("ext");
    let mut sources: Vec<String> = std::fs::read_dir(&ext)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    sources.sort();
    assert_eq!(
        sources,
        [
            "lago-security-3001",
            "lago-security-3002",
            "lago-security-3004",
            "lago-security-3005"
        ]
    );
    let partition = ext.join("lago-security-3004/region=eu-west-1/accountId=123456789012");
    let day = std::fs::read_dir(&partition)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(day.file_name().to_str().unwrap().starts_with("eventDay=20"));

    let (code, out, err) = run(lago_audit().args(["verify", &url]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("objects valid"), "{out}");
    // A second run writes nothing again.
    let (code, _, err) = export("ocsf", &lake);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(lago_audit().args(["verify", &url]));
    assert_eq!(code, Some(0), "{out}{err}");
    // Against Lago, the Parquet objects' event ids are every record Lago returns.
    let (code, out, err) = run(lago_audit()
        .args(["--demo", "--demo-records", "2000"])
        .args(["verify", &url, "--against-lago"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("against Lago") && l.contains("0 late")),
        "{out}"
    );
}

/// The object files of an archive's activity logs, oldest first.
fn object_files(archive: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(archive.join("activity_logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("dt="))
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[test]
fn against_lago_on_the_demo_names_a_record_removed_from_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let url = format!("file://{}", archive.display());
    let demo = ["--demo", "--demo-records", "3000"];
    let (code, _, err) = run(lago_audit()
        .args(demo)
        .args(["activity-logs", "export", "-o", &url]));
    assert_eq!(code, Some(0), "{err}");
    let against = || {
        let mut cmd = lago_audit();
        cmd.args(demo).args(["verify", &url, "--against-lago"]);
        cmd
    };
    let (code, out, err) = run(&mut against());
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.contains("against Lago") && l.contains("0 late")),
        "{out}"
    );

    // One record taken out of an object (recompressed, the chain left alone).
    let object = object_files(&archive).remove(0);
    let mut raw = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&object).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let end = raw.iter().position(|b| *b == b'\n').unwrap() + 1;
    let line: serde_json::Value = serde_json::from_slice(&raw[..end]).unwrap();
    let id = line["activity_id"].as_str().unwrap().to_owned();
    raw.drain(..end);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    std::fs::write(&object, gz.finish().unwrap()).unwrap();

    let (code, out, err) = run(&mut against());
    assert_eq!(code, Some(14), "{out}{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("lago-removed:") && l.contains(&id)),
        "{out}"
    );
    let (code, out, _) = run(against().args(["--format", "json"]));
    assert_eq!(code, Some(14));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        doc["kinds"][0]["against_lago"]["late"],
        serde_json::json!([])
    );
}

#[test]
fn against_lago_refuses_an_archive_written_with_filters() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("archive").display());
    let demo = ["--demo", "--demo-records", "2000"];
    let (code, _, err) = run(lago_audit().args(demo).args([
        "activity-logs",
        "export",
        "--activity-type",
        "invoice.created",
        "-o",
        &url,
    ]));
    assert_eq!(code, Some(0), "{err}");
    // Compared with the whole trail, every record the filter left out would look missing.
    let (code, out, err) = run(lago_audit()
        .args(demo)
        .args(["verify", &url, "--against-lago"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("query with filters"), "{err}");
}

/// An archive left for longer than Lago keeps records (30 days for activity logs): the next run
/// says so, records the span as a declared gap (reason `retention`), still stores what Lago
/// has of it, and the archive verifies with the gap listed.
#[test]
fn an_archive_left_past_lagos_retention_declares_the_span_as_a_gap() {
    use lago_audit_fake::FakeLago;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("archive").display());
    let now = chrono::Utc::now();
    let old = now - chrono::Duration::days(40);
    let then = common::Fake::start(
        FakeLago::builder()
            .seed(5)
            .records_per_kind(1_000, 0, 0)
            .now(old)
            .retention_days(100, 100, 100),
    );
    let to = (old + chrono::Duration::seconds(1)).to_rfc3339();
    then.cmd()
        .args(["activity-logs", "export", "--to", &to, "-o", &url])
        .assert()
        .success();
    drop(then);

    let today = common::Fake::start(
        FakeLago::builder()
            .seed(6)
            .records_per_kind(1_000, 0, 0)
            .now(now - chrono::Duration::minutes(5)),
    );
    let out = today
        .cmd()
        .args(["activity-logs", "export", "-o", &url])
        .assert()
        .success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("older than Lago keeps"), "{err}");

    let (code, out, err) = run(lago_audit().args(["verify", &url, "--json"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let gaps = doc["kinds"][0]["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["reason"], "retention");
    // The gap runs from where the archive stopped to where Lago's retention began.
    let from: chrono::DateTime<chrono::Utc> = gaps[0]["from"].as_str().unwrap().parse().unwrap();
    assert!((from - old).num_seconds().abs() <= 2, "{from} vs {old}");
    assert!(doc["kinds"][0]["records"].as_u64().unwrap() > 1_000);
}
