#!/usr/bin/env bash
# Creates .venv and installs the project into it; fast when already done.
#   bash scripts/bootstrap.sh          the package and what the demos run (the [local] extra: moto)
#   bash scripts/bootstrap.sh dev      that and the test and CI tools (the [dev] extra)
# The demos ask for the first and the tests for the second, so a first demo on a fresh machine
# does not wait for pytest, hypothesis, mypy, ruff and the SDK's test extras.
# Needs only python3 (3.10+) and pip; npm is used by the test suite for kinesalite.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
want="${1:-local}"
case "$want" in local | dev) ;; *) echo "bootstrap: unknown set '$want' (local or dev)" >&2; exit 2 ;; esac
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
sha=$(sha1sum pyproject.toml | cut -c1-12)
# dev includes everything local has.
if [ -f ".venv/.installed-dev-$sha" ] || { [ "$want" = local ] && [ -f ".venv/.installed-local-$sha" ]; }; then
  exit 0
fi
echo "bootstrap: installing target-kinesis[$want] into .venv" >&2
log=$(mktemp)
if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip &&
       .venv/bin/python -m pip install --disable-pip-version-check -e ".[$want]"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "bootstrap: pip install failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
rm -f .venv/.installed-*
touch ".venv/.installed-$want-$sha"
