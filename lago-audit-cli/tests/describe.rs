//! `--version`, `completions` and `man` as a user runs them.

mod common;

use common::lago_audit;
use predicates::prelude::*;
use predicates::str::contains;

/// `info.version` of the spec the client was built from (the build's `LAGO_AUDIT_OPENAPI_SPEC`
/// if the tests run with it, else the workspace's).
fn spec_version() -> String {
    let path = std::env::var("LAGO_AUDIT_OPENAPI_SPEC").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../openapi/lago-audit-logs.yaml"
        )
        .into()
    });
    let text = std::fs::read_to_string(&path).expect("the spec");
    let info = &text[text.find("\ninfo:").expect("an info object")..];
    let line = info
        .lines()
        .find(|l| l.starts_with("  version:"))
        .expect("info.version");
    line["  version:".len()..]
        .trim()
        .trim_matches(['"', '\''])
        .to_owned()
}

#[test]
fn version_names_the_crate_the_spec_and_the_commit() {
    let out = lago_audit().arg("--version").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(concat!("lago-audit ", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(
        lines.next(),
        Some(&*format!("Lago OpenAPI spec {}", spec_version()))
    );
    // Built from this repository's git checkout (CI and developers): the commit follows.
    let in_git = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(head) = in_git {
        let commit = lines.next().expect("a commit line");
        assert!(commit.starts_with("commit "), "{commit}");
        // The build script reruns when HEAD moves, so they agree (unless HEAD moved mid-test).
        assert_eq!(commit, format!("commit {head}"));
    }
    // -V stays one line.
    lago_audit()
        .arg("-V")
        .assert()
        .success()
        .stdout(format!("lago-audit {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn completions_and_man_print_to_stdout() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        lago_audit()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(contains("activity-logs").and(contains("export")));
    }
    lago_audit()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(contains("possible values"));
    lago_audit()
        .arg("man")
        .assert()
        .success()
        .stdout(contains(".TH lago-audit 1").and(contains("Exit codes")));
    let dir = tempfile::tempdir().unwrap();
    lago_audit()
        .args(["man", "--dir"])
        .arg(dir.path())
        .assert()
        .success()
        .stdout("");
    let page = std::fs::read_to_string(dir.path().join("lago-audit-security-logs-tail.1")).unwrap();
    assert!(page.contains("settle"), "{page}");
}
