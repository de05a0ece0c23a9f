#!/usr/bin/env bash
# The release workflow's build, for the host only, then the check a user's download would pass:
# builds target/release-dry-run/lago-audit-<version>-<host>.tar.gz and its .sha256
# (scripts/release-archive.sh), then unpacks, verifies and runs it (scripts/check-archive.sh).
# .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
archive=$(bash scripts/release-archive.sh --out target/release-dry-run | tail -1)
ls -l "$archive" "$archive.sha256"
bash scripts/check-archive.sh "$archive"
