#!/usr/bin/env bash
# Runs `cnpg-ops verify --env prod --svc shop` against the cluster up.sh made: every check
# must pass (exit 0), the archive test must have run in the plugin's sidecar with the
# MinIO keys, and `--switch-wal` must report the LSN pg_switch_wal() returned. Then breaks
# the S3 key in the shop-s3 Secret and checks that verify exits 1 and names the identity or
# the bucket permissions as the likely cause; the Secret is put back afterwards.
# Variables: see lib.sh (K8S, CLUSTER_NAME, WORK_DIR, CNPG_OPS, WAIT_SECS).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need kubectl git python3
[[ -x "$CNPG_OPS" ]] || die "cnpg-ops binary $CNPG_OPS not found: cargo build --release, or set CNPG_OPS"
load_state
export_s3_env

out="$WORK_DIR/verify.json"
# status ID: the status of check ID in $out (or "missing").
status() {
  python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["verify"]
print(next((c["status"] for c in r["checks"] if c["id"] == sys.argv[2]), "missing"))' "$out" "$1"
}
# cause: the likely cause's link in $out (or "none").
cause() {
  python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))["verify"]["cause"]
print(c["link"] if c else "none")' "$out"
}
# failing: the ids of the failing checks in $out.
failing() {
  python3 -c 'import json, sys
print(" ".join(c["id"] for c in json.load(open(sys.argv[1]))["verify"]["checks"] if c["status"] == "fail"))' "$out"
}
log "running cnpg-ops verify --env prod --svc shop --switch-wal"
rc=0
(cd "$REPO_DIR" && "$CNPG_OPS" verify --env prod --svc shop --switch-wal -o json) >"$out" || rc=$?
((rc == 0)) || die "cnpg-ops verify exited $rc (expected 0); failing checks: $(failing)"
[[ "$(status archive-test)" == pass ]] || die "the archive test did not pass: $(cat "$out")"
[[ "$(status switch-wal)" == pass ]] || die "pg_switch_wal() did not pass: $(cat "$out")"
log "ok: every check passed"

saved="$(kctl -n shop get secret shop-s3 -o jsonpath='{.data.ACCESS_SECRET_KEY}')"
restore() {
  kctl -n shop patch secret shop-s3 --type merge -p "{\"data\":{\"ACCESS_SECRET_KEY\":\"$saved\"}}" >/dev/null
}
trap restore EXIT
log "breaking the S3 secret key in Secret shop/shop-s3"
kctl -n shop patch secret shop-s3 --type merge \
  -p "{\"data\":{\"ACCESS_SECRET_KEY\":\"$(printf 'wrong' | base64)\"}}" >/dev/null
rc=0
(cd "$REPO_DIR" && "$CNPG_OPS" verify --env prod --svc shop -o json) >"$out" || rc=$?
((rc == 1)) || die "cnpg-ops verify exited $rc with a wrong S3 key (expected 1)"
[[ "$(status archive-test)" == fail ]] || die "the archive test passed with a wrong S3 key: $(cat "$out")"
case "$(cause)" in
  identity | bucket-permissions) ;;
  *) die "the likely cause is $(cause), not the identity or the bucket permissions: $(cat "$out")" ;;
esac
log "ok: a wrong S3 key fails the archive test and is named as the cause"
