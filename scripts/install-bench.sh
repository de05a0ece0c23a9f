#!/usr/bin/env bash
# Measures what `cargo install lago-audit-cli` costs a user, against a clap-only hello world built
# in the same run: cold build time (fresh target directories; the registry's downloads are cached
# and not counted), the number of crates compiled, and the size of the release binary.
#
#   scripts/install-bench.sh [WORK_DIR]      # default: a new directory under /tmp; BENCHMARKS.md §5
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=${1:-$(mktemp -d /tmp/lago-install-bench.XXXXXX)}
mkdir -p "$work"
export CARGO_TERM_COLOR=never

# The hello world: clap with derive, the CLI's clap features, nothing else.
hello="$work/hello"
mkdir -p "$hello/src"
cat >"$hello/Cargo.toml" <<'TOML'
[package]
name = "clap-hello"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
clap = { version = "4", features = ["derive"] }

[workspace]
TOML
cat >"$hello/src/main.rs" <<'RS'
use clap::Parser;
/// Says hello.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Whom to greet.
    #[arg(long, default_value = "world")]
    name: String,
}
fn main() {
    println!("hello, {}", Args::parse().name);
}
RS

measure() { # name, then cargo install's arguments
  local name=$1; shift
  rm -rf "$work/target-$name" "$work/root-$name"
  local start end
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$work/target-$name" cargo install --root "$work/root-$name" "$@" \
    >"$work/$name.log" 2>&1
  end=$(date +%s.%N)
  local seconds crates size
  seconds=$(echo "$end - $start" | bc)
  crates=$(grep -c '^ *Compiling ' "$work/$name.log")
  size=$(stat -c %s "$work/root-$name/bin/"*)
  printf '%s\t%.0f s\t%s crates\t%s bytes\n' "$name" "$seconds" "$crates" "$size" | tee -a "$work/results.tsv"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$work/results.tsv"
measure clap-hello --path "$hello"
measure lago-audit --locked --path "$root/lago-audit-cli"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$work/results.tsv"
