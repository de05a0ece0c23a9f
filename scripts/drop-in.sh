#!/usr/bin/env bash
# Proves that a Lago spec drops in: ./scripts/drop-in.sh PATH/TO/lago/openapi.yaml
#
#   1. build  - the client is generated from it with our overlay (or the build fails with one
#               message naming the upstream change and the overlay actions that rely on it);
#   2. test   - the conformance and schema tests run against a client built from it, including
#               the check that it generates the same client API as openapi/ (doc comments and
#               info.version aside) and that every correction shows in the generated types;
#   3. report - the update report from openapi/ to it: changes users would feel, obsolete
#               corrections, and a unified diff of the generated code.
#
# Exit status 0 only if all three pass and the report finds no breaking change and no overlay
# action to fix (diff exits 0 or 2; see `cargo run -p lago-audit-codegen -- --help`). When the
# build fails, the report still runs (it says which overlay actions broke and where their targets
# went). Uses the workspace's target directory (the client is rebuilt from the given spec, and
# again from openapi/ by the next ordinary build).
set -uo pipefail
cd "$(dirname "$0")/.."
spec=${1:?usage: scripts/drop-in.sh PATH/TO/openapi.yaml}
spec=$(realpath "$spec")
export CARGO_TERM_COLOR=never
summary=()

echo "=== 1. build: generate the client from $spec"
if cargo run -q --locked -p lago-audit-codegen -- generate "$spec" >/dev/null; then
  summary+=("build: ok")
else
  echo "=== 3. report: openapi/lago-audit-logs.yaml -> $spec"
  cargo run -q --locked -p lago-audit-codegen -- diff openapi/lago-audit-logs.yaml "$spec"
  echo "drop-in summary: build FAILED (see the one error above and the report); tests skipped"
  exit 1
fi

echo "=== 2. test: conformance and schema tests against a client built from it"
log=$(mktemp)
if LAGO_AUDIT_OPENAPI_SPEC="$spec" cargo test --locked -p lago-audit-client-tests \
    --test conformance --test schemas >"$log" 2>&1; then
  tests_ok=1
  summary+=("tests: ok ($(grep -c '^test .* ok$' "$log") passed)")
else
  tests_ok=0
  summary+=("tests: FAILED")
fi
grep -E "^test |^test result|panicked|^error|stale overlay action" "$log"
[ "$tests_ok" = 1 ] || tail -60 "$log"
rm -f "$log"

echo "=== 3. report: openapi/lago-audit-logs.yaml -> $spec"
cargo run -q --locked -p lago-audit-codegen -- diff openapi/lago-audit-logs.yaml "$spec"
report=$?
case $report in
  0) summary+=("report: no change") ;;
  2) summary+=("report: non-breaking changes only") ;;
  3) summary+=("report: BREAKING changes") ;;
  4) summary+=("report: the OVERLAY NEEDS WORK (obsolete or broken actions)") ;;
  *) summary+=("report: FAILED") ;;
esac

echo "drop-in summary: ${summary[*]}"
[ "$tests_ok" = 1 ] && { [ "$report" = 0 ] || [ "$report" = 2 ]; }
