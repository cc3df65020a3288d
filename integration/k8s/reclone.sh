#!/usr/bin/env bash
# Runs the reclone runbook against the cluster up.sh made (run backup.sh first, so the
# prod catalog holds a backup):
#   1. `cnpg-ops clone prod dev --svc shop --to latest --push` commits the dev clone on a
#      branch; the script merges it into main and applies clusters/dev/databases/shop with
#      kubectl, waits until the clone is healthy and archiving, and backs it up once
#   2. installs Flux (`flux install`), an in-cluster git server that serves the bare origin
#      over HTTP from the node mount, a GitRepository flux-system following main, and the
#      clone's Kustomization db-shop from clusters/dev/flux/databases.yaml
#   3. `cnpg-ops reclone dev --svc shop --yes --push`: the run must stop before resuming
#      Flux (the recovery manifest is not on main yet); the script merges the branch and
#      runs the same command again, which resumes Flux and waits for the new Cluster
#   4. checks the new Cluster: a new object, healthy, ContinuousArchiving True, writing
#      under the next serverName generation, and the Kustomization no longer suspended
# Needs the flux CLI for steps 2-4 (without it the script stops after step 1 and says so).
# Variables: see lib.sh (K8S, CLUSTER_NAME, WORK_DIR, CNPG_OPS, WAIT_SECS).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kubectl git
[[ -x "$CNPG_OPS" ]] || die "cnpg-ops binary $CNPG_OPS not found: cargo build --release, or set CNPG_OPS"
load_state
export_s3_env

DEV_NS="shop-dev" # .cnpg-ops.toml sets no namespace: the default {svc}-{env}
DEV_FOLDER="clusters/dev/databases/shop"
CLONE_BRANCH="e2e/clone-dev-shop"
RECLONE_BRANCH="e2e/reclone-dev-shop"

cnpg_ops() { (cd "$REPO_DIR" && "$CNPG_OPS" "$@"); }

dev_server_name() {
  kctl -n "$DEV_NS" get cluster shop -o jsonpath='{.spec.plugins[0].parameters.serverName}'
}

# The clone's Cluster has no backup until its ScheduledBackup fires; cnpg-ops's
# wait-healthy step wants LastBackupSucceeded True. Take one when the Cluster with UID
# other than $1 is healthy and archiving and has none yet (runs in the background).
first_backup_when_ready() {
  local old_uid="$1" deadline=$((SECONDS + WAIT_SECS * 3)) uid
  while ((SECONDS < deadline)); do
    uid="$(kctl -n "$DEV_NS" get cluster shop -o jsonpath='{.metadata.uid}' 2>/dev/null || true)"
    if [[ -n "$uid" && "$uid" != "$old_uid" ]] && cluster_healthy_archiving "$DEV_NS" shop; then
      sleep 60
      if [[ -z "$(cluster_condition "$DEV_NS" shop LastBackupSucceeded)" ]]; then
        log "the new clone has no backup yet: taking one"
        cnpg_ops backup --env dev --svc shop --restart >/dev/null 2>&1 ||
          log "cnpg-ops backup --env dev --svc shop failed (the reclone wait will say what is missing)"
      fi
      return 0
    fi
    sleep 5
  done
}

kctl -n shop get backup -o jsonpath='{.items[*].status.phase}' | grep -qw completed ||
  die "no completed Backup of prod/shop: run backup.sh first"

# --- 1. the clone -------------------------------------------------------------
if kctl get ns "$DEV_NS" >/dev/null 2>&1; then
  log "namespace $DEV_NS exists: the clone was made by an earlier run, skipping the clone"
else
  log "running cnpg-ops clone prod dev --svc shop --to latest --push"
  rc=0
  cnpg_ops clone prod dev --svc shop --to latest --push --branch "$CLONE_BRANCH" || rc=$?
  ((rc == 0)) || die "cnpg-ops clone exited $rc: the clone was not committed"
  merge_branch "$CLONE_BRANCH"
  [[ -f "$REPO_DIR/$DEV_FOLDER/database.yaml" ]] || die "$DEV_FOLDER/database.yaml is not on main after the merge"
  grep -q "namespace: $DEV_NS" "$REPO_DIR/$DEV_FOLDER/kustomization.yaml" ||
    die "$DEV_FOLDER/kustomization.yaml does not use namespace $DEV_NS"
  log "applying $DEV_FOLDER with kubectl"
  retry "applying $DEV_FOLDER" "$WAIT_SECS" kctl apply -k "$REPO_DIR/$DEV_FOLDER"
fi
wait_cluster "$DEV_NS" shop "$((WAIT_SECS * 2))"
if [[ "$(cluster_condition "$DEV_NS" shop LastBackupSucceeded)" != "True" ]]; then
  log "backing the clone up once (cnpg-ops backup --env dev --svc shop --wait)"
  rc=0
  cnpg_ops backup --env dev --svc shop --wait --timeout 20m || rc=$?
  ((rc == 0)) || die "cnpg-ops backup of dev/shop exited $rc: the clone has no completed backup"
fi

# --- 2. Flux ------------------------------------------------------------------
if ! command -v flux >/dev/null 2>&1; then
  die "the flux CLI is not installed: the reclone part needs Flux in the cluster (README.md, 'Without the flux CLI')"
fi
log "installing Flux"
flux --context "$CONTEXT" install --components=source-controller,kustomize-controller >/dev/null ||
  die "flux install failed"
kctl -n flux-system rollout status deploy/source-controller deploy/kustomize-controller \
  --timeout="${WAIT_SECS}s" || die "the Flux controllers did not become available"

log "starting the in-cluster git server (smart HTTP, read-only) on the bare origin"
kctl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: git-server
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: git-http
  namespace: git-server
spec:
  replicas: 1
  selector:
    matchLabels: {app: git-http}
  template:
    metadata:
      labels: {app: git-http}
    spec:
      containers:
        - name: git-http
          image: $GIT_SERVER_IMAGE
          command: ["/bin/sh", "-c"]
          args:
            - |
              set -e
              apk add --no-cache git git-daemon >/dev/null
              git config --system safe.directory '*'
              mkdir -p /srv/cgi-bin
              printf '#!/bin/sh\nexport GIT_PROJECT_ROOT=/git GIT_HTTP_EXPORT_ALL=1\nexec git http-backend\n' >/srv/cgi-bin/git
              chmod 755 /srv/cgi-bin/git
              cd /srv
              exec python3 -m http.server --cgi 8080
          ports:
            - containerPort: 8080
          readinessProbe:
            tcpSocket: {port: 8080}
          volumeMounts:
            - {name: git, mountPath: /git, readOnly: true}
      volumes:
        - name: git
          hostPath: {path: $NODE_GIT_DIR, type: Directory}
---
apiVersion: v1
kind: Service
metadata:
  name: git-http
  namespace: git-server
spec:
  selector: {app: git-http}
  ports:
    - {port: 8080, targetPort: 8080}
YAML
kctl -n git-server rollout status deploy/git-http --timeout="${WAIT_SECS}s" ||
  die "the git server did not become ready"

kctl apply -f - >/dev/null <<YAML
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 30s
  url: http://git-http.git-server.svc.cluster.local:8080/cgi-bin/git/origin.git
  ref:
    branch: main
YAML
kctl -n flux-system wait gitrepository/flux-system --for=condition=Ready --timeout="${WAIT_SECS}s" ||
  die "Flux could not fetch main from the in-cluster git server (kubectl -n flux-system describe gitrepository flux-system)"

FLUX_FILE="$REPO_DIR/clusters/dev/flux/databases.yaml"
[[ -f "$FLUX_FILE" ]] || die "the clone wrote no Flux Kustomization file clusters/dev/flux/databases.yaml"
retry "applying clusters/dev/flux/databases.yaml" "$WAIT_SECS" kctl apply -f "$FLUX_FILE"
# Nothing here applies an operators Kustomization or holds a SOPS key: drop both references
# from the live object (the repository keeps them).
kctl -n flux-system patch kustomization db-shop --type=merge \
  -p '{"spec":{"dependsOn":null,"decryption":null}}' >/dev/null ||
  die "could not patch Kustomization flux-system/db-shop"
kctl -n flux-system wait kustomization/db-shop --for=condition=Ready --timeout="${WAIT_SECS}s" ||
  die "Kustomization flux-system/db-shop did not become Ready (kubectl -n flux-system describe kustomization db-shop)"

# --- 3. reclone ---------------------------------------------------------------
old_server="$(dev_server_name)"
old_uid="$(kctl -n "$DEV_NS" get cluster shop -o jsonpath='{.metadata.uid}')"
[[ -n "$old_server" ]] || die "Cluster $DEV_NS/shop names no serverName in spec.plugins[0]"
if [[ "$old_server" =~ ^(.*)-g([0-9]+)$ ]]; then
  want_server="${BASH_REMATCH[1]}-g$((BASH_REMATCH[2] + 1))"
else
  want_server="$old_server-g2"
fi
log "clone writes under serverName $old_server; the reclone must write under $want_server"

reclone=(reclone dev --svc shop --yes --push --branch "$RECLONE_BRANCH")
log "running cnpg-ops ${reclone[*]} (expected to stop before resuming Flux)"
out="$WORK_DIR/reclone-1.log"
rc=0
cnpg_ops "${reclone[@]}" 2>&1 | tee "$out" || rc=$? # pipefail: cnpg-ops's status
if ((rc == 0)); then
  die "the first reclone run exited 0: it should have stopped before resuming Flux, the recovery manifest not being on main"
fi
grep -q "SUSPENDED" "$out" ||
  die "the first reclone run exited $rc without stopping at the resume step (see $out)"
[[ "$(kctl -n flux-system get kustomization db-shop -o jsonpath='{.spec.suspend}')" == "true" ]] ||
  die "Kustomization flux-system/db-shop is not suspended after the first run stopped"
if [[ "$(kctl -n "$DEV_NS" get cluster shop -o jsonpath='{.metadata.uid}' 2>/dev/null || true)" == "$old_uid" ]]; then
  die "the old Cluster $DEV_NS/shop still exists after the first run"
fi

merge_branch "$RECLONE_BRANCH"
first_backup_when_ready "$old_uid" &
helper=$!
log "running cnpg-ops ${reclone[*]} again (resumes Flux, waits for the new Cluster)"
rc=0
cnpg_ops "${reclone[@]}" || rc=$?
kill "$helper" 2>/dev/null || true
wait "$helper" 2>/dev/null || true
((rc == 0)) || die "the second reclone run exited $rc: the new Cluster did not come up healthy"

# --- 4. checks ----------------------------------------------------------------
new_uid="$(kctl -n "$DEV_NS" get cluster shop -o jsonpath='{.metadata.uid}')"
[[ -n "$new_uid" && "$new_uid" != "$old_uid" ]] || die "Cluster $DEV_NS/shop was not recreated (same UID $old_uid)"
cluster_healthy_archiving "$DEV_NS" shop || die "the new Cluster $DEV_NS/shop is not healthy with ContinuousArchiving True"
new_server="$(dev_server_name)"
[[ "$new_server" == "$want_server" ]] ||
  die "the new Cluster writes under serverName '$new_server', expected the next generation '$want_server'"
[[ "$(kctl -n flux-system get kustomization db-shop -o jsonpath='{.spec.suspend}')" != "true" ]] ||
  die "Kustomization flux-system/db-shop is still suspended"
log "ok: Cluster $DEV_NS/shop recreated from the prod catalog, healthy, archiving under $new_server; Flux resumed"
