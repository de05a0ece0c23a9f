#!/usr/bin/env bash
# Runs the update report over Lago's spec history and prints a summary table (Markdown).
#
#   scripts/history.sh SOURCE [REV...]
#
# SOURCE is either a folder holding REV.yaml for each revision, or the git directory of
# getlago/lago-openapi (e.g. the one `git clone --bare` makes), from which each REV's
# openapi.yaml is read. REVs default to the 8 revisions of openapi.yaml that touched the audit
# logs, oldest first. For each consecutive pair, and from each revision to our spec
# (openapi/lago-audit-logs.yaml), it runs `lago-audit-codegen diff` and keeps the full report in
# $HISTORY_OUT (default: a temporary folder, printed at the end). It never stops on a failing
# pair: a report that cannot be made shows as "error" in the table, and the script exits 1 at the
# end if any did.
#
# Lago's spec is AGPL-3.0: the revisions and reports are written outside the repository.
set -uo pipefail
cd "$(dirname "$0")/.."
source=${1:?usage: scripts/history.sh FOLDER-OF-REV.yaml|LAGO-OPENAPI-GIT-DIR [REV...]}
shift
revs=("$@")
[ ${#revs[@]} -gt 0 ] || revs=(b90feca 8b48df4 eb129f0 54d6254 afbfe27 b45e5d6 7717931 120da12)
out=${HISTORY_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/lago-history.XXXXXX")}
mkdir -p "$out"
export CARGO_TERM_COLOR=never

specs=$out/specs
mkdir -p "$specs"
if git --git-dir="$source" rev-parse --git-dir >/dev/null 2>&1 && [ ! -f "$source/${revs[0]}.yaml" ]; then
  for r in "${revs[@]}"; do
    git --git-dir="$source" show "$r:openapi.yaml" >"$specs/$r.yaml" 2>/dev/null ||
      echo "history: cannot read $r:openapi.yaml from $source" >&2
  done
else
  for r in "${revs[@]}"; do
    cp "$source/$r.yaml" "$specs/$r.yaml" 2>/dev/null || echo "history: no $source/$r.yaml" >&2
  done
fi

cargo build -q --locked -p lago-audit-codegen >&2 || { echo "history: lago-audit-codegen does not build" >&2; exit 1; }
bin=${CARGO_TARGET_DIR:-target}/debug/lago-audit-codegen
overlay=openapi/lago-audit-logs.overlay.yaml
ours=openapi/lago-audit-logs.yaml
failed=0

row() { # row LABEL OLD NEW
  local label=$1 old=$2 new=$3 file code changes overlay_line client verdict
  file=$out/${label// → /-to-}.txt
  "$bin" diff "$old" "$new" --overlay "$overlay" >"$file" 2>&1
  code=$?
  if [ "$code" = 1 ]; then
    failed=1
    echo "| $label | 1 | error: $(head -1 "$file" | cut -c1-80) | | | |"
    return
  fi
  changes=$(sed -n 's/^== 1\. .*: \([0-9]* ([0-9]* breaking)\)$/\1/p' "$file")
  overlay_line=$(sed -n 's/^== 2\. .*: \([0-9]* broken, [0-9]* obsolete, [0-9]* apply\)$/\1/p' "$file")
  client=$(sed -n 's/^== 3\. Generated client\(.*\)$/\1/p' "$file")
  case $client in
    ": unchanged") client="unchanged" ;;
    *"unified diff"*) client="diff, $(grep -c '^[-+][^-+]' "$file") lines" ;;
    *"new spec plus the overlay does not build"*) client="NEW does not build" ;;
    *"old spec plus the overlay does not build"*) client="OLD does not build" ;;
  esac
  verdict=$(sed -n 's/^== Verdict: \(.*\) (exit [0-9]*)$/\1/p' "$file")
  echo "| $label | $code | $verdict | $changes | $overlay_line | $client |"
}

echo "| pair | exit | verdict | upstream changes (breaking) | overlay actions | generated client |"
echo "|---|---|---|---|---|---|"
prev=
for r in "${revs[@]}"; do
  [ -n "$prev" ] && row "$prev → $r" "$specs/$prev.yaml" "$specs/$r.yaml"
  prev=$r
done
for r in "${revs[@]}"; do
  row "$r → ours" "$specs/$r.yaml" "$ours"
done
echo
echo "history: full reports in $out" >&2
exit $failed
