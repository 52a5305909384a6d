#!/usr/bin/env bash
# The whole test suite: unit tests, the SDK's standard target tests, and end-to-end
# tests that drive the real CLI against moto's server and kinesalite on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ ! -d tests/node/node_modules ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "test: installing kinesalite (npm ci in tests/node)" >&2
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "test: npm not found; it is needed for the kinesalite tests" >&2
    exit 1
  fi
fi
exec .venv/bin/python -m pytest "$@"
