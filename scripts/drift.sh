#!/usr/bin/env bash
# Lago's spec drift, as one pull request: scripts/drift.sh [--dry-run] NEW.yaml
#
# Runs the update report from our spec (openapi/lago-audit-logs.yaml) to NEW.yaml, Lago's latest
# openapi.yaml, and decides:
#
#   - report exit 0 (nothing users of the client would feel, every overlay action applies):
#     nothing to do;
#   - otherwise: one pull request from the branch `lago-spec-drift`, opened or updated, whose body
#     is the report and whose labels say what it needs: `lago-spec` always, `lago-spec: breaking`
#     for breaking changes, `lago-spec: overlay` when an overlay action is obsolete or broken.
#
# The branch records which revision of Lago's spec the report is about, in
# openapi/lago-upstream.txt (URL, commit, SHA-256), not the spec itself: Lago's openapi.yaml is
# AGPL-3.0 and never committed here. Adopt it by hand after reading the report (openapi/README.md).
# Once that record is merged, the same revision asks for nothing more.
#
# --dry-run writes the pull request body and labels to $DRIFT_OUT (default target/drift) and
# prints what it would do, touching neither git nor GitHub; .ci/run runs it on a synthetic spec.
# Without --dry-run it needs git push rights and `gh` with GH_TOKEN (the workflow's token), and
# reads LAGO_SPEC_URL and LAGO_COMMIT (where NEW.yaml came from) for the record.
#
# Exit status: 0 done (including nothing to do), 1 the report could not be made or GitHub refused.
set -uo pipefail
cd "$(dirname "$0")/.."
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=1
  shift
fi
new=${1:?usage: scripts/drift.sh [--dry-run] NEW.yaml}
out=${DRIFT_OUT:-target/drift}
branch=${DRIFT_BRANCH:-lago-spec-drift}
base=${DRIFT_BASE:-main}
url=${LAGO_SPEC_URL:-$new}
commit=${LAGO_COMMIT:-unknown}
mkdir -p "$out"
export CARGO_TERM_COLOR=never

cargo build -q --locked -p lago-audit-codegen || { echo "drift: lago-audit-codegen does not build"; exit 1; }
bin=${CARGO_TARGET_DIR:-target}/debug/lago-audit-codegen
"$bin" diff openapi/lago-audit-logs.yaml "$new" >"$out/report.txt" 2>&1
code=$?
case $code in
  0) echo "drift: no difference users would feel and every overlay action applies: nothing to do"
     exit 0 ;;
  2) verdict="non-breaking changes" ;;
  3) verdict="breaking changes" ;;
  4) verdict="the overlay needs work" ;;
  *) echo "drift: the update report failed:"; cat "$out/report.txt"; exit 1 ;;
esac

sha=$(sha256sum "$new" | cut -d' ' -f1)
# A revision reviewed already (its drift pull request merged) asks for nothing new.
if grep -qxF "sha256: $sha" openapi/lago-upstream.txt 2>/dev/null; then
  echo "drift: this revision of Lago's spec was reviewed already (openapi/lago-upstream.txt): nothing to do"
  exit 0
fi

# Values Lago added to the enums the client keeps open: nothing breaks, but the hand-written code
# (the open enum, the CLI's parser and help, the OCSF/ECS mappings) does not know them yet.
open_values=$(grep -c '^  \[non-breaking\] .*: enum value ".*" added (open enum ' "$out/report.txt" || true)

labels=("lago-spec")
grep -q '^== 1\. .*: [0-9]* ([1-9][0-9]* breaking)$' "$out/report.txt" && labels+=("lago-spec: breaking")
[ "$code" = 4 ] && labels+=("lago-spec: overlay")
printf '%s\n' "${labels[@]}" >"$out/labels.txt"

{
  echo "Lago's published spec differs from ours: **$verdict** (update report exit $code)."
  echo
  echo "- Lago's spec: $url (commit \`$commit\`, SHA-256 \`$sha\`)"
  echo "- Labels: ${labels[*]}"
  if [ "$open_values" -gt 0 ]; then
    echo "- Hand-written code: $open_values entries of part 1 add a value to an open enum; part 1 says"
    echo "  where the code names the values (the type, the CLI's parser and help, the OCSF/ECS mappings)."
  fi
  echo "- To adopt it: read the report, fix the overlay where part 2 says so, copy the spec over"
  echo "  \`openapi/lago-audit-logs.yaml\` locally and run \`scripts/drop-in.sh\` (see openapi/README.md)."
  echo "  This branch records the revision only: Lago's spec is AGPL-3.0 and is not committed here."
  echo
  echo '```text'
  # GitHub refuses bodies over 65536 characters: keep parts 1 and 2 whole, cut the code diff.
  limit=60000
  if [ "$(wc -c <"$out/report.txt")" -gt "$limit" ]; then
    head -c "$limit" "$out/report.txt"
    echo
    echo "… (cut: the whole report is in the workflow run's artifact)"
  else
    cat "$out/report.txt"
  fi
  echo '```'
} >"$out/pr-body.md"

if [ "$dry_run" = 1 ]; then
  echo "drift: would open or update the pull request from $branch into $base ($verdict)"
  echo "drift: labels: ${labels[*]}"
  echo "drift: body written to $out/pr-body.md ($(wc -c <"$out/pr-body.md") bytes)"
  exit 0
fi

set -e
printf 'url: %s\ncommit: %s\nsha256: %s\nverdict: %s\n' "$url" "$commit" "$sha" "$verdict" \
  >openapi/lago-upstream.txt
git config user.name "github-actions[bot]"
git config user.email "41898282+github-actions[bot]@users.noreply.github.com"
git checkout -B "$branch"
git add openapi/lago-upstream.txt
git commit -m "Lago's spec drifted: $verdict (getlago/lago-openapi $commit)" >/dev/null
git push --force origin "$branch"
for l in "lago-spec" "lago-spec: breaking" "lago-spec: overlay"; do
  gh label create "$l" --color d93f0b --description "Lago's spec drift" --force >/dev/null || true
done
title="Lago's spec drifted: $verdict"
number=$(gh pr list --head "$branch" --base "$base" --state open --json number --jq '.[0].number // empty')
if [ -n "$number" ]; then
  stale=()
  for l in "lago-spec: breaking" "lago-spec: overlay"; do
    grep -qxF "$l" "$out/labels.txt" || stale+=(--remove-label "$l")
  done
  add=()
  for l in "${labels[@]}"; do add+=(--add-label "$l"); done
  gh pr edit "$number" --title "$title" --body-file "$out/pr-body.md" "${add[@]}" "${stale[@]}"
  echo "drift: updated pull request #$number"
else
  add=()
  for l in "${labels[@]}"; do add+=(--label "$l"); done
  gh pr create --head "$branch" --base "$base" --title "$title" --body-file "$out/pr-body.md" "${add[@]}"
fi
