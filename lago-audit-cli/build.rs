//! Records the commit the binary is built from, for `lago-audit --version`, as
//! `LAGO_AUDIT_COMMIT` (empty when unknown).
//!
//! A packaged crate (crates.io, `cargo install`, an unpacked `.crate`) carries the commit it was
//! packaged from in `.cargo_vcs_info.json`, so no git is needed there; that file is read first,
//! because an unpacked package may sit inside some other git work tree. Otherwise `git` is asked,
//! and a build without either says nothing about a commit.

use std::path::Path;
use std::process::Command;

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    let vcs_info = dir.join(".cargo_vcs_info.json");
    println!("cargo:rerun-if-changed=build.rs");
    let commit = if vcs_info.is_file() {
        println!("cargo:rerun-if-changed=.cargo_vcs_info.json");
        from_vcs_info(&std::fs::read_to_string(&vcs_info).unwrap_or_default())
    } else {
        from_git(dir)
    };
    println!(
        "cargo:rustc-env=LAGO_AUDIT_COMMIT={}",
        commit.unwrap_or_default()
    );
}

/// `{"git": {"sha1": "…", "dirty": true}, …}`, read without a JSON parser (one less build
/// dependency).
fn from_vcs_info(text: &str) -> Option<String> {
    let after = &text[text.find("\"sha1\"")? + 6..];
    let start = after.find('"')? + 1;
    let sha = &after[start..];
    let sha = &sha[..sha.find('"')?];
    if sha.len() < 12 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    Some(format!(
        "{}{}",
        &sha[..12],
        if dirty { "-dirty" } else { "" }
    ))
}

/// `git rev-parse` in the manifest's directory; reruns when HEAD or the branch it names moves.
fn from_git(dir: &Path) -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .output()
            .ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let sha = git(&["rev-parse", "--short=12", "HEAD"])?;
    // Rebuild when a commit is made or checked out (only for files that exist: a missing one
    // would make cargo rerun this script on every build).
    let git_dir = git(&["rev-parse", "--absolute-git-dir"]);
    let common_dir = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"]);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let mut watched = Vec::new();
    if let Some(g) = &git_dir {
        watched.push(Path::new(g).join("HEAD"));
        // The reflog grows on every commit and checkout, even when the branch's ref is packed.
        watched.push(Path::new(g).join("logs").join("HEAD"));
    }
    if let Some(c) = common_dir.as_ref().or(git_dir.as_ref()) {
        watched.push(Path::new(c).join("packed-refs"));
        if let Some(b) = &branch {
            watched.push(Path::new(c).join(b));
        }
    }
    for path in watched.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    Some(sha)
}
