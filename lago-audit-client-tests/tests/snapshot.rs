//! The generated code, checked in, so a spec, overlay or generator change shows up in review as a
//! readable diff. Refresh after an intended change with:
//!
//! ```text
//! UPDATE_SNAPSHOTS=1 cargo test -p lago-audit-client-tests --test snapshot
//! ```

use lago_audit_client_tests::spec_dir;
use lago_audit_codegen::{build, report::unified_diff, Target};
use std::path::PathBuf;

fn check(target: Target<'_>, file: &str) {
    let generated = build(target, &spec_dir())
        .unwrap_or_else(|e| panic!("{e}"))
        .code;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(file);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored != generated {
        panic!(
            "{} is out of date. The change, as a unified diff (stored → generated):\n{}\n\
             Review it, then run: UPDATE_SNAPSHOTS=1 cargo test -p lago-audit-client-tests --test snapshot",
            path.display(),
            unified_diff(&stored, &generated, &format!("snapshots/{file}"), "generated")
        );
    }
}

#[test]
fn generated_client_matches_the_snapshot() {
    check(Target::Client, "client.rs");
}

#[test]
fn generated_mocks_match_the_snapshot() {
    check(Target::Httpmock("lago_audit_client"), "mocks.rs");
}
