#!/usr/bin/env bash
# The whole test suite: unit tests, the SDK's standard target tests, and end-to-end
# tests that drive the real CLI against moto's server and kinesalite on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh dev
if [ ! -d tests/node/node_modules ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "test: installing kinesalite (npm ci in tests/node)" >&2
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "test: npm not found; it is needed for the kinesalite tests" >&2
    exit 1
  fi
fi
# PostgreSQL for tests/meltano/test_postgres.py (the test starts its own server in a scratch
# folder; it needs the binaries only). Debian's package puts initdb/pg_ctl/postgres in
# /usr/lib/postgresql/<version>/bin. Installed only when missing and only when we can (root or
# passwordless sudo); otherwise that test fails saying what to install.
have_postgres() {
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && return 0
  for bindir in /usr/lib/postgresql/*/bin; do
    [ -x "$bindir/initdb" ] && [ -x "$bindir/pg_ctl" ] && [ -x "$bindir/postgres" ] && return 0
  done
  return 1
}
if ! have_postgres || ! command -v psql >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; }; then
    echo "test: installing PostgreSQL (apt-get install -y postgresql)" >&2
    # Keep the package's own cluster from being started: a policy-rc.d that says no, only
    # for the install and only if the machine has none.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy"
    fi
    status=0
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || status=$?
    [ -n "$policy" ] && $sudo rm -f "$policy"
    if [ "$status" != 0 ]; then
      echo "test: apt-get install postgresql failed (exit $status); the PostgreSQL test will fail" >&2
    fi
  else
    echo "test: PostgreSQL is not installed and cannot be installed here (needs apt-get and root or sudo):" \
      "install it (Debian/Ubuntu: apt-get install -y postgresql), or tests/meltano/test_postgres.py fails" >&2
  fi
fi
# Two workers (pytest-xdist) by default: most end-to-end tests wait on a subprocess, so one
# process left a CPU idle half the time (1,090 tests: 712 s on one worker, 454 s on two, here).
# TEST_WORKERS=0 runs in this process (for a debugger); -n or -p no:xdist on the command line wins.
workers=(-n "${TEST_WORKERS:-2}" --dist loadfile)  # a module's tests on one worker: module fixtures built once
for arg in "$@"; do
  case "$arg" in -n | -n* | --numprocesses* | no:xdist) workers=() ;; esac
done
[ "${TEST_WORKERS:-2}" = 0 ] && workers=()
exec .venv/bin/python -m pytest "${workers[@]}" "$@"
