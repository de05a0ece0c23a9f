#!/usr/bin/env bash
# Builds the release archive of `lago-audit` for one target, and its SHA-256 checksum:
#
#   scripts/release-archive.sh [--target TRIPLE] [--out DIR]     # default: the host, target/dist
#
# DIR/lago-audit-<version>-<target>.tar.gz (.zip for Windows) holds one folder of the same name
# with the binary, completions/ (bash, zsh, fish, PowerShell, elvish), man/ (lago-audit.1 and a
# page per subcommand), systemd/lago-audit-tail@.service (the shipper's unit; not for Windows),
# README.md and the licences; DIR/<archive>.sha256 is its checksum line
# (`sha256sum -c` format). The last line printed is the archive's path. The names are the ones
# lago-audit-cli's [package.metadata.binstall] expects. .github/workflows/release.yml runs this per
# target; scripts/release-dry-run.sh runs it for the host and checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# Symbols are not needed in a release binary (a fifth of its size: 8.2 MB instead of 10.6 MB on
# x86_64 Linux, BENCHMARKS.md section 5). The consumer check's
# `cargo install` sets the same, so the two share one build of the dependencies.
export CARGO_PROFILE_RELEASE_STRIP=symbols

target="" out="target/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: $0 [--target TRIPLE] [--out DIR]" >&2; exit 2 ;;
  esac
done
host=$(rustc -vV | sed -n 's/^host: //p')
target=${target:-$host}
version=$(cargo pkgid -p lago-audit-cli | sed 's/.*[#@]//')
exe=""
case "$target" in *windows*) exe=".exe" ;; esac

# The host's build goes to target/release (shared with `cargo build --release`); others to
# target/<triple>/release.
if [ "$target" = "$host" ]; then
  cargo build --release --locked -p lago-audit-cli >&2
  bin="target/release/lago-audit$exe"
else
  # RELEASE_CARGO=cross builds in cross's container (the release workflow's aarch64 Linux).
  "${RELEASE_CARGO:-cargo}" build --release --locked -p lago-audit-cli --target "$target" >&2
  bin="target/$target/release/lago-audit$exe"
fi

# Completions and man pages come from the binary itself; a binary for another architecture that
# cannot run here (no emulation) leaves that to a host build of the same sources.
gen="$bin"
if ! "$gen" --version >/dev/null 2>&1; then
  cargo build --release --locked -p lago-audit-cli >&2
  gen="target/release/lago-audit"
fi

name="lago-audit-$version-$target"
mkdir -p "$out"
stage="$out/$name"
rm -rf "$stage"
mkdir -p "$stage/completions" "$stage/man"
cp "$bin" "$stage/"
cp lago-audit-cli/README.md "$stage/README.md"
cp -L LICENSE-MIT LICENSE-APACHE "$stage/"
"$gen" completions bash >"$stage/completions/lago-audit.bash"
"$gen" completions zsh >"$stage/completions/_lago-audit"
"$gen" completions fish >"$stage/completions/lago-audit.fish"
"$gen" completions powershell >"$stage/completions/_lago-audit.ps1"
"$gen" completions elvish >"$stage/completions/lago-audit.elv"
"$gen" man --dir "$stage/man"
# The shipper's systemd unit, as the README's "Running the shipper as a service" installs it.
case "$target" in
  *windows*) ;;
  *) mkdir -p "$stage/systemd" && cp lago-audit-cli/systemd/lago-audit-tail@.service "$stage/systemd/" ;;
esac

cd "$out"
case "$target" in
  *windows*)
    archive="$name.zip"
    rm -f "$archive"
    if command -v 7z >/dev/null 2>&1; then 7z a -tzip -bso0 "$archive" "$name" >&2
    else zip -qr "$archive" "$name"; fi
    ;;
  *)
    archive="$name.tar.gz"
    tar -czf "$archive" "$name"
    ;;
esac
rm -rf "$name"
if command -v sha256sum >/dev/null 2>&1; then sha256sum "$archive" >"$archive.sha256"
else shasum -a 256 "$archive" >"$archive.sha256"; fi
echo "$out/$archive"
