#!/usr/bin/env bash
# Runs `cnpg-ops backup --env prod --svc shop --wait` against the cluster up.sh made and
# checks that it exits 0 and that a new Backup in namespace shop is `completed`.
# cnpg-ops reads the catalog from this machine (AWS_* set to the MinIO credentials, the
# endpoint the manifests name) to confirm the backup is DONE with its WAL.
# Variables: see lib.sh (K8S, CLUSTER_NAME, WORK_DIR, CNPG_OPS, WAIT_SECS);
# BACKUP_TIMEOUT is passed to --timeout (default 20m).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kubectl git
[[ -x "$CNPG_OPS" ]] || die "cnpg-ops binary $CNPG_OPS not found: cargo build --release, or set CNPG_OPS"
load_state
export_s3_env

before="$(kctl -n shop get backup -o name | wc -l)"
log "running cnpg-ops backup --env prod --svc shop --wait"
rc=0
(cd "$REPO_DIR" && "$CNPG_OPS" backup --env prod --svc shop --wait \
  --timeout "${BACKUP_TIMEOUT:-20m}") || rc=$?
((rc == 0)) || die "cnpg-ops backup exited $rc (expected 0): the backup was not taken, did not complete, or is not in the catalog"

after="$(kctl -n shop get backup -o name | wc -l)"
((after > before)) || die "no new Backup object in namespace shop (had $before, now $after)"
read -r name phase < <(kctl -n shop get backup --sort-by=.metadata.creationTimestamp \
  -o jsonpath='{.items[-1:].metadata.name} {.items[-1:].status.phase}{"\n"}')
[[ "$phase" == "completed" ]] || die "Backup shop/$name is '$phase', not completed"
method="$(kctl -n shop get backup "$name" -o jsonpath='{.spec.method}')"
[[ "$method" == "plugin" ]] || die "Backup shop/$name uses method '$method', expected plugin (the Cluster uses the barman-cloud plugin)"
log "ok: Backup shop/$name completed with method plugin, confirmed in the catalog by cnpg-ops"
