#!/usr/bin/env bash
# Builds and runs a consumer crate outside the workspace against the *packaged* crates (what
# `cargo publish` would upload), so a file missing from the package, a path the build script
# bakes in, or a dependency only the workspace provides fails here.
#
#   scripts/consumer-check.sh            # packages first (cargo package, no verification)
#
# Three checks: a consumer crate uses the client (a run) and the fake as a dev-dependency (a test);
# the packaged CLI installs with `cargo install --path <unpacked .crate>` and runs the demo export.
# The consumer lives in a temporary directory and shares the workspace's target directory, so the
# registry dependencies already built there are reused (the install shares scripts/release-archive.sh's
# release build).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never
crates=(lago-audit-codegen lago-audit-client lago-audit-fake lago-audit-sink lago-audit-cli)
package_args=(package --locked --no-verify)
for crate in "${crates[@]}"; do package_args+=(-p "$crate"); done
cargo "${package_args[@]}" >/dev/null 2>&1 || cargo "${package_args[@]}"
version=$(cargo pkgid -p lago-audit-client | sed 's/.*[#@]//')
pkg="$root/target/package"
for crate in "${crates[@]}"; do
  rm -rf "$pkg/$crate-$version"
  tar -xzf "$pkg/$crate-$version.crate" -C "$pkg"
done
# The packaged client must carry its spec and overlay as plain files.
for f in openapi/lago-audit-logs.yaml openapi/lago-audit-logs.overlay.yaml; do
  test -f "$pkg/lago-audit-client-$version/$f" && ! test -L "$pkg/lago-audit-client-$version/$f" \
    || { echo "consumer-check: the package lacks $f"; exit 1; }
done

app=$(mktemp -d)
cli=$(mktemp -d) # beside the consumer: inside it, cargo would take it for a workspace member
trap 'rm -rf "$app" "$cli"' EXIT
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

[dev-dependencies]
lago-audit-fake = "=$version"

# Not on crates.io yet: use the packaged files, exactly as they would be uploaded.
[patch.crates-io]
lago-audit-client = { path = "$pkg/lago-audit-client-$version" }
lago-audit-codegen = { path = "$pkg/lago-audit-codegen-$version" }
lago-audit-fake = { path = "$pkg/lago-audit-fake-$version" }

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
# The fake as a dev-dependency: the test its README shows.
mkdir -p "$app/tests"
sed -n '/^```rust$/,/^```$/p' "$pkg/lago-audit-fake-$version/README.md" | sed '1d;$d' >"$app/tests/fake.rs"
grep -q 'FakeLago::builder' "$app/tests/fake.rs" || { echo "consumer-check: no test in the fake's README"; exit 1; }
cp Cargo.lock "$app/Cargo.lock"
CARGO_TARGET_DIR="$root/target" cargo run --quiet --manifest-path "$app/Cargo.toml"
CARGO_TARGET_DIR="$root/target" cargo test --quiet --manifest-path "$app/Cargo.toml" --test fake
echo "consumer-check: the packaged fake serves a consumer's test"

# The CLI as `cargo install` builds it from its package (outside any workspace, with the Cargo.lock
# it ships), its lago-audit-* dependencies patched to their packages. Strip as
# scripts/release-archive.sh does, to share its release build.
cp -R "$pkg/lago-audit-cli-$version/." "$cli/"
patches=()
for crate in lago-audit-codegen lago-audit-client lago-audit-fake lago-audit-sink; do
  patches+=(--config "patch.crates-io.$crate.path=\"$pkg/$crate-$version\"")
done
CARGO_TARGET_DIR="$root/target" CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo install --quiet --locked --path "$cli" --root "$cli/install" "${patches[@]}"
"$cli/install/bin/lago-audit" --version
"$cli/install/bin/lago-audit" --demo --demo-records 300 activity-logs export >"$app/export.ndjson"
records=$(wc -l <"$app/export.ndjson")
[ "$records" -eq 300 ] || { echo "consumer-check: the installed CLI exported $records records, not 300"; exit 1; }
echo "consumer-check: the packaged CLI installs with cargo install and exports the demo's $records records"
