# shellcheck shell=bash disable=SC2034 # variables used by the scripts that source this file
# Shared helpers for the integration/k8s scripts. Sourced, never run.
#
# Variables (all optional; the defaults make the scripts work together):
#   K8S            kind (default) or k3d: which tool runs the local cluster
#   CLUSTER_NAME   cluster name (default cnpg-ops-e2e)
#   WORK_DIR       temporary files: the GitOps repository, its bare origin, state
#                  (default ${TMPDIR:-/tmp}/cnpg-ops-e2e)
#   CNPG_OPS       the cnpg-ops binary (default: cnpg-ops on PATH, else target/release
#                  or target/debug of this checkout)
#   WAIT_SECS      default timeout of a wait, in seconds (default 600)
#   Versions: CNPG_VERSION, CERT_MANAGER_VERSION, BARMAN_PLUGIN_VERSION, MINIO_IMAGE,
#   MC_IMAGE, GIT_SERVER_IMAGE (see README.md for the pinned values).

K8S="${K8S:-kind}"
CLUSTER_NAME="${CLUSTER_NAME:-cnpg-ops-e2e}"
WORK_DIR="${WORK_DIR:-${TMPDIR:-/tmp}/cnpg-ops-e2e}"
WAIT_SECS="${WAIT_SECS:-600}"

CNPG_VERSION="${CNPG_VERSION:-1.27.1}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.18.2}"
BARMAN_PLUGIN_VERSION="${BARMAN_PLUGIN_VERSION:-v0.6.0}"
MINIO_IMAGE="${MINIO_IMAGE:-quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z}"
MC_IMAGE="${MC_IMAGE:-quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z}"
GIT_SERVER_IMAGE="${GIT_SERVER_IMAGE:-python:3.12-alpine}"

CNPG_MANIFEST="https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-${CNPG_VERSION%.*}/releases/cnpg-${CNPG_VERSION}.yaml"
CERT_MANAGER_MANIFEST="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
BARMAN_PLUGIN_MANIFEST="https://github.com/cloudnative-pg/plugin-barman-cloud/releases/download/${BARMAN_PLUGIN_VERSION}/manifest.yaml"

# Local-only MinIO credentials: the store lives and dies with the cluster.
MINIO_USER="cnpg-ops-e2e"
MINIO_PASSWORD="cnpg-ops-e2e-secret"
MINIO_BUCKET="backups"
MINIO_NODE_PORT=30900

# Where the node sees the bare origin (kind extraMounts / k3d --volume).
NODE_GIT_DIR="/cnpg-ops-e2e-git"

REPO_DIR="$WORK_DIR/repo"
ORIGIN_DIR="$WORK_DIR/git/origin.git"
STATE_FILE="$WORK_DIR/state.env"

case "$K8S" in
  kind) CONTEXT="kind-$CLUSTER_NAME"; STORAGE_CLASS="standard"; NODE_CONTAINER="$CLUSTER_NAME-control-plane" ;;
  k3d) CONTEXT="k3d-$CLUSTER_NAME"; STORAGE_CLASS="local-path"; NODE_CONTAINER="k3d-$CLUSTER_NAME-server-0" ;;
  *) echo "K8S must be kind or k3d, not '$K8S'" >&2; exit 2 ;;
esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECKOUT="$(cd "$HERE/../.." && pwd)"

if [[ -z "${CNPG_OPS:-}" ]]; then
  if command -v cnpg-ops >/dev/null 2>&1; then
    CNPG_OPS="$(command -v cnpg-ops)"
  elif [[ -x "$CHECKOUT/target/release/cnpg-ops" ]]; then
    CNPG_OPS="$CHECKOUT/target/release/cnpg-ops"
  else
    CNPG_OPS="$CHECKOUT/target/debug/cnpg-ops"
  fi
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[%s] FAILED: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

need() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed (see integration/k8s/README.md, Prerequisites)"
  done
}

# kubectl against the e2e cluster only, whatever the current context is.
kctl() { kubectl --context "$CONTEXT" "$@"; }

# wait_for DESCRIPTION TIMEOUT_SECS COMMAND...
# Runs COMMAND every 5 s until it succeeds; dies naming DESCRIPTION after TIMEOUT_SECS.
wait_for() {
  local what="$1" timeout="$2"
  shift 2
  local deadline=$((SECONDS + timeout))
  log "waiting (up to ${timeout}s) for $what"
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "$what did not happen within ${timeout}s"
    fi
    sleep 5
  done
  log "ok: $what"
}

# retry DESCRIPTION TIMEOUT_SECS COMMAND... : like wait_for, but shows COMMAND's output
# on the last failure (for applies that race a webhook coming up).
retry() {
  local what="$1" timeout="$2"
  shift 2
  local deadline=$((SECONDS + timeout)) out
  until out="$("$@" 2>&1)"; do
    if ((SECONDS >= deadline)); then
      printf '%s\n' "$out" >&2
      die "$what did not succeed within ${timeout}s"
    fi
    sleep 5
  done
}

# Jsonpath of a Cluster's condition status, e.g. cluster_condition shop shop ContinuousArchiving
cluster_condition() {
  kctl get cluster "$2" -n "$1" \
    -o jsonpath="{.status.conditions[?(@.type==\"$3\")].status}" 2>/dev/null
}

# True when Cluster NAME in NAMESPACE is healthy and archives WAL.
cluster_healthy_archiving() {
  local phase
  phase="$(kctl get cluster "$2" -n "$1" -o jsonpath='{.status.phase}' 2>/dev/null)"
  [[ "$phase" == "Cluster in healthy state" ]] &&
    [[ "$(cluster_condition "$1" "$2" ContinuousArchiving)" == "True" ]]
}

# wait_cluster NAMESPACE NAME TIMEOUT_SECS
wait_cluster() {
  wait_for "Cluster $1/$2 to be healthy with ContinuousArchiving True" "$3" \
    cluster_healthy_archiving "$1" "$2"
}

# Loads what up.sh recorded (the MinIO endpoint); dies when up.sh has not run.
load_state() {
  [[ -f "$STATE_FILE" ]] || die "$STATE_FILE is missing: run up.sh first"
  # shellcheck source=/dev/null
  . "$STATE_FILE"
  [[ -n "${S3_ENDPOINT:-}" ]] || die "$STATE_FILE names no S3_ENDPOINT: run up.sh again"
  kctl get ns >/dev/null 2>&1 || die "context $CONTEXT does not answer: is the cluster up (up.sh)?"
}

# Credentials for cnpg-ops's reads of the bucket (the catalog confirmation, the clone's
# proof, the empty-prefix check). The endpoint is the same one the manifests name.
export_s3_env() {
  export AWS_ACCESS_KEY_ID="$MINIO_USER"
  export AWS_SECRET_ACCESS_KEY="$MINIO_PASSWORD"
  export AWS_REGION="us-east-1"
  export AWS_ENDPOINT_URL="$S3_ENDPOINT"
  export CNPG_OPS_REPO="$REPO_DIR"
}

# git in the working clone of the GitOps repository, with a fixed identity.
rgit() {
  git -C "$REPO_DIR" -c user.name="cnpg-ops e2e" -c user.email="e2e@cnpg-ops.invalid" "$@"
}

# merge_branch BRANCH: merges origin/BRANCH into main and pushes main, as a reviewer
# merging the pull request would.
merge_branch() {
  local branch="$1"
  rgit fetch -q origin || die "git fetch from $ORIGIN_DIR failed"
  rgit rev-parse -q --verify "refs/remotes/origin/$branch" >/dev/null ||
    die "branch $branch is not on origin: cnpg-ops did not push it"
  rgit checkout -q main
  rgit merge -q --ff-only origin/main
  rgit merge -q --no-edit "origin/$branch" || die "merging $branch into main failed"
  rgit push -q origin main || die "pushing main to $ORIGIN_DIR failed"
  log "merged $branch into main and pushed"
}
