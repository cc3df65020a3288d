#!/usr/bin/env bash
# Deletes the local cluster made by up.sh and the temporary files in $WORK_DIR (the
# GitOps repository, its bare origin, the state file). Safe to run twice.
# Variables: see lib.sh (K8S, CLUSTER_NAME, WORK_DIR).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if command -v "$K8S" >/dev/null 2>&1; then
  log "deleting $K8S cluster $CLUSTER_NAME"
  if [[ "$K8S" == kind ]]; then
    kind delete cluster --name "$CLUSTER_NAME" || die "kind did not delete cluster $CLUSTER_NAME"
  else
    k3d cluster delete "$CLUSTER_NAME" || die "k3d did not delete cluster $CLUSTER_NAME"
  fi
else
  log "$K8S is not installed: no cluster to delete"
fi
if [[ -d "$WORK_DIR" ]]; then
  log "removing $WORK_DIR"
  rm -rf "$WORK_DIR" || die "could not remove $WORK_DIR"
fi
log "done"
