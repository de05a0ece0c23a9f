#!/usr/bin/env bash
# Checks a release archive as a user receives it: verifies its checksum file, unpacks it into a
# temporary directory, checks its contents, and runs the binary: `--version` (crate version, Lago
# spec) and `--demo activity-logs export` (records, exit 0).
#
#   scripts/check-archive.sh DIR/lago-audit-<version>-<target>.tar.gz   # or .zip; DIR/<archive>.sha256 beside it
set -euo pipefail
archive=${1:?usage: $0 ARCHIVE}
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "$(dirname "$archive")" && pwd)
file=$(basename "$archive")
fail() { echo "check-archive: $*" >&2; exit 1; }

(cd "$dir" && if command -v sha256sum >/dev/null 2>&1; then sha256sum -c "$file.sha256"
  else shasum -a 256 -c "$file.sha256"; fi) || fail "the checksum of $file does not match"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
case "$file" in
  *.zip) name=${file%.zip}
    if command -v unzip >/dev/null 2>&1; then (cd "$tmp" && unzip -q "$dir/$file")
    else 7z x -bso0 -o"$tmp" "$dir/$file"; fi ;;
  *.tar.gz) name=${file%.tar.gz}; tar -xzf "$dir/$file" -C "$tmp" ;;
  *) fail "not an archive: $file" ;;
esac
unpacked="$tmp/$name"
bin="$unpacked/lago-audit"
[ -f "$bin.exe" ] && bin="$bin.exe"
for f in "$(basename "$bin")" README.md LICENSE-MIT LICENSE-APACHE completions/lago-audit.bash \
  completions/_lago-audit completions/lago-audit.fish completions/_lago-audit.ps1 man/lago-audit.1 \
  man/lago-audit-activity-logs-export.1; do
  [ -s "$unpacked/$f" ] || fail "$name lacks $f"
done
case "$file" in
  *.zip) ;;
  *) [ -s "$unpacked/systemd/lago-audit-tail@.service" ] || fail "$name lacks systemd/lago-audit-tail@.service" ;;
esac

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -1)
spec=$(sed -n '/^info:/,/^[a-z]/s/^  version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' \
  "${LAGO_AUDIT_OPENAPI_SPEC:-$root/openapi/lago-audit-logs.yaml}" | head -1)
out=$("$bin" --version)
echo "$out"
grep -qx "lago-audit $version" <<<"$out" || fail "--version does not say $version"
grep -qx "Lago OpenAPI spec $spec" <<<"$out" || fail "--version does not name the spec ($spec)"

"$bin" --demo --demo-records 500 -q activity-logs export -o "$tmp/export.ndjson" \
  || fail "the demo export failed"
records=$(wc -l <"$tmp/export.ndjson" | tr -d ' ')
[ "$records" -eq 500 ] || fail "the demo export wrote $records records, not 500"
head -c1 "$tmp/export.ndjson" | grep -q '{' || fail "the demo export is not NDJSON"
echo "check-archive: $file: checksum, contents, --version and a $records-record demo export are right"
