#!/usr/bin/env bash
# Integration tests against real services. CI runs this after `cargo build`:
#
#   integration/run.sh
#
# 1. setup.sh up       installs what is missing (PostgreSQL 15, the barman-cloud venv, the
#                      S3 server) and starts the S3 server on 127.0.0.1 in a fresh WORKDIR
# 2. make_catalog.py   builds a real barman-cloud catalog with real PostgreSQL instances
#                      and records its facts in WORKDIR/facts.json
# 3. test_verdicts.py  runs `cnpg-ops catalog check/show` and proves every verdict with a
#                      real restore; prints `integration: N passed, M failed`
#
# Exit status: 0 when every check passed, 1 otherwise. Everything that was started is
# stopped on exit (also on Ctrl-C). WORKDIR is removed after a green run and kept after a
# red one, for its logs (WORKDIR/pg/logs, WORKDIR/restores/logs, WORKDIR/results.json).
#
# Variables:
#   CNPG_OPS_BIN          the binary under test (default: target/debug/cnpg-ops in the repo)
#   S3_SERVER             garage (default) or moto
#   CNPG_OPS_CACHE        cache for the venv and the Garage binary (default ~/.cache/cnpg-ops)
#   INTEGRATION_WORKDIR   use this directory instead of a new one under /tmp
#   INTEGRATION_KEEP=1    keep WORKDIR even after a green run
#   INTEGRATION_JOBS      restores run in parallel (default 2)
#   INTEGRATION_FIXTURE_OUT=DIR  also copy the catalog into DIR (capture_fixture.py)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
export CNPG_OPS_BIN="${CNPG_OPS_BIN:-$REPO/target/debug/cnpg-ops}"
case "$CNPG_OPS_BIN" in /*) ;; *) CNPG_OPS_BIN="$REPO/$CNPG_OPS_BIN" ;; esac
CACHE="${CNPG_OPS_CACHE:-$HOME/.cache/cnpg-ops}"
WORKDIR="${INTEGRATION_WORKDIR:-$(mktemp -d /tmp/cnpg-ops-integration.XXXXXX)}"
export INTEGRATION_STARTED="$(date +%s)"
status=1

cleanup() {
  "$HERE/setup.sh" stop "$WORKDIR" || true
  if [ "$status" = 0 ] && [ "${INTEGRATION_KEEP:-0}" != 1 ] && [ -z "${INTEGRATION_WORKDIR:-}" ]; then
    rm -rf "$WORKDIR"
  else
    echo "integration: work directory kept: $WORKDIR" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_failed() {
  echo "integration: $1 failed; see the messages above" >&2
  echo "integration: 0 passed, 1 failed"
  exit 1
}

echo "integration: work directory $WORKDIR, binary $CNPG_OPS_BIN, S3 server ${S3_SERVER:-garage}"
"$HERE/setup.sh" up "$WORKDIR" || setup_failed "setup"
PY="$CACHE/venv/bin/python"
"$PY" "$HERE/make_catalog.py" --workdir "$WORKDIR" || setup_failed "building the catalog"
if [ -n "${INTEGRATION_FIXTURE_OUT:-}" ]; then
  "$PY" "$HERE/capture_fixture.py" --workdir "$WORKDIR" --force "$INTEGRATION_FIXTURE_OUT" ||
    setup_failed "capturing the fixture"
fi
"$PY" "$HERE/test_verdicts.py" --workdir "$WORKDIR"
status=$?
exit "$status"
