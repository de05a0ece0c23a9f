#!/usr/bin/env bash
# Builds and runs a consumer crate outside the workspace against the *packaged* crates (what
# `cargo publish` would upload), so a file missing from the package, a path the build script
# bakes in, or a dependency only the workspace provides fails here.
#
#   scripts/consumer-check.sh            # packages first (cargo package, no verification)
#
# The consumer lives in a temporary directory and shares the workspace's target directory, so the
# registry dependencies already built there are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
cargo package --locked --no-verify -p lago-audit-codegen -p lago-audit-client >/dev/null 2>&1 \
  || cargo package --locked --no-verify -p lago-audit-codegen -p lago-audit-client
version=$(cargo pkgid -p lago-audit-client | sed 's/.*[#@]//')
pkg="$root/target/package"
for crate in lago-audit-codegen lago-audit-client; do
  rm -rf "$pkg/$crate-$version"
  tar -xzf "$pkg/$crate-$version.crate" -C "$pkg"
done
# The packaged client must carry its spec and overlay as plain files.
for f in openapi/lago-audit-logs.yaml openapi/lago-audit-logs.overlay.yaml; do
  test -f "$pkg/lago-audit-client-$version/$f" && ! test -L "$pkg/lago-audit-client-$version/$f" \
    || { echo "consumer-check: the package lacks $f"; exit 1; }
done

app=$(mktemp -d)
trap 'rm -rf "$app"' EXIT
mkdir -p "$app/src"
cat > "$app/Cargo.toml" <<TOML
[package]
name = "lago-audit-consumer"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
lago-audit-client = "=$version"
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

# Not on crates.io yet: use the packaged files, exactly as they would be uploaded.
[patch.crates-io]
lago-audit-client = { path = "$pkg/lago-audit-client-$version" }
lago-audit-codegen = { path = "$pkg/lago-audit-codegen-$version" }

[workspace]
TOML
cat > "$app/src/main.rs" <<'RS'
//! A consumer of the packaged client: builds a client and makes one call to a closed port.
use lago_audit_client::{ClientBuilder, DateFilter, RetryPolicy};

#[tokio::main]
async fn main() {
    let client = ClientBuilder::new("consumer-key")
        .base_url("http://127.0.0.1:9")
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("a client");
    let day: DateFilter = "2025-01-01".parse().expect("a date");
    let result = client
        .find_all_activity_logs()
        .from_date(day)
        .per_page(1)
        .send()
        .await;
    assert!(result.is_err(), "nothing listens on port 9");
    println!("consumer-check: the packaged client builds and runs ({} operations)", lago_audit_client::OPERATION_PATHS.len());
}
RS
cp Cargo.lock "$app/Cargo.lock"
CARGO_TARGET_DIR="$root/target" cargo run --quiet --manifest-path "$app/Cargo.toml"
