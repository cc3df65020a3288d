#!/usr/bin/env bash
# Install and start the real services the integration tests need.
#
#   setup.sh install           install PostgreSQL 15, the barman-cloud venv and the S3
#                              server binary (idempotent; a few seconds when present)
#   setup.sh start WORKDIR     start the S3 server on 127.0.0.1, create the key and the
#                              bucket, write WORKDIR/env.sh (source it to talk to it)
#   setup.sh up WORKDIR        install + start
#   setup.sh stop WORKDIR      stop everything started under WORKDIR: the S3 server and
#                              every PostgreSQL whose data directory lies in WORKDIR
#
# Variables (all optional):
#   CNPG_OPS_CACHE   cache outside the checkout (default: $HOME/.cache/cnpg-ops):
#                    holds the venv, the Garage binary and its cargo target dir
#   S3_SERVER        garage (default) or moto
#   PG_USER          unprivileged system user that runs PostgreSQL (default: postgres)
#   PG_BINDIR        PostgreSQL 15 binaries (default: /usr/lib/postgresql/15/bin)
#
# Everything binds to 127.0.0.1 only. `start` stops what it started if it fails half-way,
# and run.sh calls `stop` from an EXIT trap, so nothing is left running.
set -euo pipefail

CACHE="${CNPG_OPS_CACHE:-$HOME/.cache/cnpg-ops}"
VENV="$CACHE/venv"
S3_SERVER="${S3_SERVER:-garage}"
PG_USER="${PG_USER:-postgres}"
PG_BINDIR="${PG_BINDIR:-/usr/lib/postgresql/15/bin}"

GARAGE_VERSION=2.5.0
GARAGE_BIN="$CACHE/garage-$GARAGE_VERSION/bin/garage"
MOTO_REQUIREMENT='moto[server]==5.2.5'
# Pinned Python packages of the venv: the barman-cloud tools CNPG images ship, and the
# GCS emulator. Checked by distribution name and version before anything is installed.
VENV_REQUIREMENTS=(
  'barman[cloud,azure,google,snappy,zstandard,lz4]==3.19.1'
  'gcp-storage-emulator==2026.7.19'
)
VENV_PINS=('barman==3.19.1' 'gcp-storage-emulator==2026.7.19' 'boto3' 'psycopg2' 'python-snappy' 'zstandard' 'lz4')

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

apt_updated=0
apt_install() {
  # apt-get update once per run, and only when something is missing.
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
  apt-get install -y -qq "$@" >/dev/null
}


# --------------------------------------------------------------------------- install

install_postgres() {
  if [ -x "$PG_BINDIR/postgres" ] && [ -x "$PG_BINDIR/pg_basebackup" ]; then
    return
  fi
  log "installing PostgreSQL (apt)"
  # Do not let the Debian package create and start its own 'main' cluster on port 5432:
  # the tests start their own instances on 127.0.0.1 and must leave nothing running.
  apt_install postgresql-common
  if [ -f /etc/postgresql-common/createcluster.conf ] &&
     ! grep -q '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf; then
    echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  fi
  apt_install postgresql
  [ -x "$PG_BINDIR/postgres" ] || die "PostgreSQL installed but $PG_BINDIR/postgres is missing (set PG_BINDIR)"
}

ensure_pg_user() {
  if ! id "$PG_USER" >/dev/null 2>&1; then
    log "creating system user $PG_USER"
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$PG_USER"
  fi
}

venv_is_complete() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "$@" <<'EOF'
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, _, version = pin.partition("==")
    try:
        found = metadata.version(name)
    except metadata.PackageNotFoundError:
        sys.exit(1)
    if version and found != version:
        sys.exit(1)
EOF
}

install_venv() {
  if venv_is_complete "${VENV_PINS[@]}"; then
    :
  else
    log "creating the Python venv in $VENV"
    local py="${CNPG_OPS_PYTHON:-python3}"
    command -v "$py" >/dev/null || apt_install python3
    py="$(command -v "${CNPG_OPS_PYTHON:-python3}")"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "$py is older than 3.9"
    # psycopg2 (a barman dependency) is built from source: it needs libpq headers and a C compiler.
    if [ ! -f /usr/include/postgresql/libpq-fe.h ] || ! command -v gcc >/dev/null; then
      apt_install libpq-dev gcc python3-dev
    fi
    if [ ! -x "$VENV/bin/python" ]; then
      mkdir -p "$CACHE"
      "$py" -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; "$py" -m venv "$VENV"; }
    fi
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q "${VENV_REQUIREMENTS[@]}"
    venv_is_complete "${VENV_PINS[@]}" || die "venv in $VENV is incomplete after pip install"
  fi
  # moto serves the S3 server by choice, and the audit suite's second store (versioning,
  # object lock and transitions, which Garage does not implement) in every run.
  if ! venv_is_complete 'moto==5.2.5'; then
    log "installing $MOTO_REQUIREMENT into the venv"
    "$VENV/bin/pip" install -q "$MOTO_REQUIREMENT"
  fi
}

# PostgreSQL runs as $PG_USER, and its archive_command/restore_command run the barman-cloud
# tools from the venv. When the cache sits under a private home directory (/root is 0700),
# grant that one user search (x) permission on the directories in the way, nothing more.
ensure_pg_user_reaches_venv() {
  local tool="$VENV/bin/barman-cloud-wal-archive"
  if runuser -u "$PG_USER" -- "$VENV/bin/python" -c 'import barman' 2>/dev/null &&
     runuser -u "$PG_USER" -- test -x "$tool"; then
    return
  fi
  command -v setfacl >/dev/null || apt_install acl
  local target d part
  for target in "$tool" "$(readlink -f "$VENV/bin/python")"; do
    # walk from / downwards so that only the directories that really block are changed
    d=""
    IFS=/ read -ra parts <<<"$(dirname "$target")"
    for part in "${parts[@]}"; do
      [ -n "$part" ] || continue
      d="$d/$part"
      if ! runuser -u "$PG_USER" -- test -x "$d"; then
        log "granting $PG_USER search permission on $d (setfacl u:$PG_USER:x)"
        setfacl -m "u:$PG_USER:x" "$d"
      fi
    done
  done
  runuser -u "$PG_USER" -- "$VENV/bin/python" -c 'import barman' ||
    die "$PG_USER cannot run the venv python in $VENV"
}

install_garage() {
  [ -x "$GARAGE_BIN" ] && return
  # Never start a second build while one is running (it takes ~15 min on 2 cores): wait.
  local waited=0
  while pgrep -f "cargo install garage" >/dev/null; do
    [ "$waited" = 0 ] && log "a Garage build is already running; waiting for it (up to 40 min)"
    sleep 10
    waited=$((waited + 10))
    [ "$waited" -ge 2400 ] && die "the running Garage build did not finish in 40 min"
  done
  [ -x "$GARAGE_BIN" ] && return
  command -v cargo >/dev/null || die "cargo is needed to build Garage $GARAGE_VERSION (or use S3_SERVER=moto)"
  log "building Garage $GARAGE_VERSION (about 15 min on 2 cores; cached in $CACHE)"
  mkdir -p "$CACHE"
  CARGO_TARGET_DIR="$CACHE/garage-target" cargo install "garage@$GARAGE_VERSION" --locked \
    --no-default-features --features lmdb,bundled-libs --root "$CACHE/garage-$GARAGE_VERSION" \
    >"$CACHE/garage-build.log" 2>&1 || die "Garage build failed, see $CACHE/garage-build.log"
}

do_install() {
  case "$S3_SERVER" in garage|moto) ;; *) die "S3_SERVER must be garage or moto, not '$S3_SERVER'";; esac
  install_postgres
  ensure_pg_user
  install_venv
  ensure_pg_user_reaches_venv
  if [ "$S3_SERVER" = garage ]; then install_garage; fi
}

# ----------------------------------------------------------------------------- start

wait_http() {
  # wait until something answers HTTP on 127.0.0.1:$1 (any status code)
  local port=$1 i
  for i in $(seq 1 100); do
    if python3 -c "import urllib.request,sys
try:
    urllib.request.urlopen('http://127.0.0.1:$port/', timeout=1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)" 2>/dev/null; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

start_garage() {
  local dir=$1 s3_port=$2 rpc_port
  rpc_port="$(free_port)"
  mkdir -p "$dir/meta" "$dir/data"
  cat >"$dir/garage.toml" <<EOF
# single-node Garage for the integration tests, loopback only
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c "import secrets; print(secrets.token_hex(32))")"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
EOF
  chmod 600 "$dir/garage.toml"
  local g=("$GARAGE_BIN" -c "$dir/garage.toml")
  RUST_LOG=warn "${g[@]}" server >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  local node_id="" i
  for i in $(seq 1 100); do
    node_id="$("${g[@]}" node id -q 2>/dev/null | cut -d@ -f1)" && [ -n "$node_id" ] && break
    sleep 0.2
  done
  [ -n "$node_id" ] || die "garage did not come up, see $dir/server.log"
  # `node id` reads the local key file; the RPC listener may come up a moment later.
  local rpc_ok=""
  for i in $(seq 1 150); do
    if "${g[@]}" status >/dev/null 2>&1; then rpc_ok=1; break; fi
    sleep 0.2
  done
  [ -n "$rpc_ok" ] || die "garage RPC not answering on 127.0.0.1:$rpc_port, see $dir/server.log"
  "${g[@]}" layout assign -z dc1 -c 1G "$node_id" >/dev/null
  "${g[@]}" layout apply --version 1 >/dev/null
  # Garage key ids are GK + 24 hex digits, secrets 64 hex digits.
  S3_KEY_ID="GK$(python3 -c "import secrets; print(secrets.token_hex(12))")"
  S3_SECRET="$(python3 -c "import secrets; print(secrets.token_hex(32))")"
  "${g[@]}" key import --yes -n integration "$S3_KEY_ID" "$S3_SECRET" >/dev/null
  "${g[@]}" bucket create "$S3_BUCKET" >/dev/null
  "${g[@]}" bucket allow --read --write --owner "$S3_BUCKET" --key "$S3_KEY_ID" >/dev/null
  # A bucket the key may not touch: the audit suite's denied store.
  "${g[@]}" bucket create "$S3_DENIED_BUCKET" >/dev/null
  S3_REGION=garage
  wait_http "$s3_port" || die "garage S3 API not answering on 127.0.0.1:$s3_port"
}

start_moto() {
  local dir=$1 s3_port=$2
  mkdir -p "$dir"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$dir/server.log" 2>&1 &
  echo $! >"$dir/server.pid"
  wait_http "$s3_port" || die "moto did not come up, see $dir/server.log"
  S3_KEY_ID=integration-key
  S3_SECRET=integration-secret
  S3_REGION=us-east-1
  AWS_ACCESS_KEY_ID=$S3_KEY_ID AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=$S3_REGION \
    "$VENV/bin/python" -c "import boto3,sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket=sys.argv[2])" \
    "http://127.0.0.1:$s3_port" "$S3_BUCKET"
}

do_start() {
  local workdir=$1
  mkdir -p "$workdir"
  workdir="$(cd "$workdir" && pwd)"
  # PostgreSQL runs as $PG_USER and must reach its data directories under WORKDIR.
  chmod 755 "$workdir"
  if [ -f "$workdir/s3/server.pid" ] && kill -0 "$(cat "$workdir/s3/server.pid")" 2>/dev/null; then
    log "an S3 server is already running for $workdir; reusing it"
    return
  fi
  # A fresh, empty object store for every start.
  rm -rf "$workdir/s3" "$workdir/env.sh"
  trap 'log "start failed; stopping what was started"; do_stop "$workdir"' ERR
  local s3_port
  s3_port="$(free_port)"
  S3_BUCKET="${S3_BUCKET:-cnpg-backups}"
  # Only Garage checks keys; moto lets every key in, so there is no denied bucket there.
  S3_DENIED_BUCKET=""
  if [ "$S3_SERVER" = garage ]; then S3_DENIED_BUCKET="$S3_BUCKET-denied"; fi
  case "$S3_SERVER" in
    garage) start_garage "$workdir/s3" "$s3_port" ;;
    moto) start_moto "$workdir/s3" "$s3_port" ;;
    *) die "S3_SERVER must be garage or moto, not '$S3_SERVER'" ;;
  esac
  cat >"$workdir/env.sh" <<EOF
# Written by integration/setup.sh: how to reach the services started for $workdir.
export S3_SERVER=$S3_SERVER
export S3_ENDPOINT_URL=http://127.0.0.1:$s3_port
export S3_BUCKET=$S3_BUCKET
export S3_DENIED_BUCKET=$S3_DENIED_BUCKET
export AWS_ACCESS_KEY_ID=$S3_KEY_ID
export AWS_SECRET_ACCESS_KEY=$S3_SECRET
export AWS_DEFAULT_REGION=$S3_REGION
export AWS_REGION=$S3_REGION
export AWS_ALLOW_HTTP=true
export AWS_EC2_METADATA_DISABLED=true
# boto3 >= 1.36 sends CRC checksums by default; S3-compatible servers need this off.
export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
export CNPG_OPS_VENV=$VENV
export PG_BINDIR=$PG_BINDIR
export PG_USER=$PG_USER
export INTEGRATION_WORKDIR=$workdir
EOF
  chmod 644 "$workdir/env.sh"
  trap - ERR
  log "$S3_SERVER S3 API on http://127.0.0.1:$s3_port, bucket $S3_BUCKET; env in $workdir/env.sh"
}

# ------------------------------------------------------------------------------ stop

do_stop() {
  local workdir=$1
  [ -d "$workdir" ] || return 0
  # PostgreSQL instances whose data directory is under WORKDIR (by their postmaster.pid).
  local pidfile datadir pid
  while IFS= read -r pidfile; do
    datadir="$(dirname "$pidfile")"
    pid="$(head -n1 "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      log "stopping PostgreSQL in $datadir (pid $pid)"
      runuser -u "$PG_USER" -- "$PG_BINDIR/pg_ctl" -D "$datadir" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
        kill -9 "$pid" 2>/dev/null || true
    fi
  done < <(find "$workdir" -name postmaster.pid -type f 2>/dev/null)
  # The S3 server (and the fault-injecting proxy of make_catalog.py, if it left a pid file).
  for pidfile in "$workdir"/s3/server.pid "$workdir"/*.pid; do
    stop_pidfile "$pidfile" "$pidfile"
  done
}

dispatch "$0" 20 "$@"
