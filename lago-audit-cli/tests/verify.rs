//! `lago-audit keygen` and `lago-audit verify`, as the README shows them on the demo: export with
//! a key, verify, flip a byte, verify again.

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
}
