#!/usr/bin/env bash
# Install and start the Google Cloud Storage and Azure Blob emulators for test_providers.py.
#
#   providers.sh install          gcp-storage-emulator (PyPI, pinned, in the venv of setup.sh)
#                                 and Azurite (npm, pinned, in $CNPG_OPS_CACHE/azurite);
#                                 idempotent, a fraction of a second when both are present
#   providers.sh start WORKDIR    start both on free 127.0.0.1 ports, data under
#                                 WORKDIR/providers, write WORKDIR/providers/env.sh
#   providers.sh up WORKDIR       install + start
#   providers.sh stop WORKDIR     stop both (by the pids in WORKDIR/providers/*.pid)
#
# Needs the venv that `setup.sh install` creates. Node.js and npm come from apt when missing.
# Azurite runs with --disableTelemetry: the test machine has no network and nothing may
# leave it.
set -euo pipefail

CACHE="${CNPG_OPS_CACHE:-$HOME/.cache/cnpg-ops}"
VENV="$CACHE/venv"
# 3.36 and later need Node.js >= 21; Debian 12 ships 18. 3.35.0 runs on both.
AZURITE_VERSION=3.35.0
AZURITE_DIR="$CACHE/azurite"
AZURITE_BIN="$AZURITE_DIR/node_modules/.bin/azurite-blob"
GCS_EMULATOR_REQUIREMENT='gcp-storage-emulator==2026.7.19'
GCS_EMULATOR_BIN="$VENV/bin/gcp-storage-emulator"

log() { printf 'providers: %s\n' "$*" >&2; }
die() { printf 'providers: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"


# --------------------------------------------------------------------------- install

azurite_installed_version() {
  local pkg="$AZURITE_DIR/node_modules/azurite/package.json"
  [ -f "$pkg" ] && [ -x "$AZURITE_BIN" ] || return 1
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg"
}

install_node() {
  command -v node >/dev/null && command -v npm >/dev/null && return
  log "installing Node.js and npm (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
}

install_azurite() {
  if [ "$(azurite_installed_version 2>/dev/null || true)" = "$AZURITE_VERSION" ]; then
    return
  fi
  install_node
  log "installing azurite@$AZURITE_VERSION into $AZURITE_DIR (npm)"
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --save-exact --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" >&2
  [ "$(azurite_installed_version)" = "$AZURITE_VERSION" ] ||
    die "azurite $AZURITE_VERSION is not in $AZURITE_DIR after npm install"
}

install_gcs_emulator() {
  [ -x "$VENV/bin/python" ] || die "no venv in $VENV: run integration/setup.sh install first"
  if [ -x "$GCS_EMULATOR_BIN" ] && "$VENV/bin/python" - "$GCS_EMULATOR_REQUIREMENT" <<'EOF'
import sys
from importlib import metadata
name, _, version = sys.argv[1].partition("==")
sys.exit(0 if metadata.version(name) == version else 1)
EOF
  then
    return
  fi
  log "installing $GCS_EMULATOR_REQUIREMENT into the venv"
  "$VENV/bin/pip" install -q "$GCS_EMULATOR_REQUIREMENT"
}

do_install() {
  install_gcs_emulator
  install_azurite
}

# ----------------------------------------------------------------------------- start

wait_port() {
  # wait until 127.0.0.1:$1 accepts connections, while pid $2 lives
  local port=$1 pid=$2 i
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || return 1
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.5).close()" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

do_start() {
  local workdir=$1 dir gcs_port az_port
  mkdir -p "$workdir"
  workdir="$(cd "$workdir" && pwd)"
  dir="$workdir/providers"
  do_stop "$workdir"
  rm -rf "$dir/azurite" "$dir/env.sh"
  mkdir -p "$dir/azurite"
  trap 'log "start failed; stopping what was started"; do_stop "$workdir"' ERR

  gcs_port="$(free_port)"
  # In memory: the data dies with the process, and nothing is written to the cache.
  "$GCS_EMULATOR_BIN" start --host 127.0.0.1 --port "$gcs_port" --in-memory \
    >"$dir/gcs-emulator.log" 2>&1 &
  echo $! >"$dir/gcs-emulator.pid"

  az_port="$(free_port)"
  "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$az_port" --location "$dir/azurite" \
    --skipApiVersionCheck --loose --disableTelemetry --silent >"$dir/azurite.log" 2>&1 &
  echo $! >"$dir/azurite.pid"

  wait_port "$gcs_port" "$(cat "$dir/gcs-emulator.pid")" ||
    die "gcp-storage-emulator did not come up, see $dir/gcs-emulator.log"
  wait_port "$az_port" "$(cat "$dir/azurite.pid")" || die "Azurite did not come up, see $dir/azurite.log"

  cat >"$dir/env.sh" <<EOF
# Written by integration/providers.sh: the emulators started for $workdir.
export GCS_EMULATOR_URL=http://127.0.0.1:$gcs_port
export AZURITE_BLOB_URL=http://127.0.0.1:$az_port
export AZURITE_ACCOUNT=devstoreaccount1
EOF
  trap - ERR
  log "gcp-storage-emulator on http://127.0.0.1:$gcs_port, Azurite blob on http://127.0.0.1:$az_port"
}

# ------------------------------------------------------------------------------ stop

do_stop() {
  local workdir=$1 pidfile pid
  for pidfile in "$workdir"/providers/*.pid; do
    stop_pidfile "$pidfile" "$(basename "$pidfile" .pid)"
  done
}

dispatch "$0" 15 "$@"
