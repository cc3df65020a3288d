#!/usr/bin/env bash
# Creates the local Kubernetes cluster the cnpg-ops runbook scripts run against:
#   1. a kind (or K8S=k3d) cluster named $CLUSTER_NAME, with $WORK_DIR/git mounted on the node
#   2. cert-manager, the CloudNativePG operator and the barman-cloud plugin
#   3. MinIO in namespace minio, exposed on NodePort $MINIO_NODE_PORT, with a bucket
#      "backups" created by a Job
#   4. a GitOps repository in $WORK_DIR/repo (a copy of tests/fixtures/repos/selfhosted)
#      with a bare origin in $WORK_DIR/git/origin.git, its prod/shop database pointed at
#      MinIO and a .cnpg-ops.toml naming this cluster's context
#   5. the prod/shop database applied with kubectl (no Flux here), and a wait until the
#      Cluster is healthy with ContinuousArchiving True
# Variables: see lib.sh (K8S, CLUSTER_NAME, WORK_DIR, CNPG_OPS, WAIT_SECS, versions).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need docker kubectl git curl "$K8S"

# --- 1. cluster ---------------------------------------------------------------
mkdir -p "$WORK_DIR/git"
if [[ "$K8S" == kind ]]; then
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "kind cluster $CLUSTER_NAME exists: reusing it"
  else
    log "creating kind cluster $CLUSTER_NAME"
    cat >"$WORK_DIR/kind.yaml" <<KIND
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraMounts:
      - hostPath: $WORK_DIR/git
        containerPath: $NODE_GIT_DIR
KIND
    kind create cluster --name "$CLUSTER_NAME" --config "$WORK_DIR/kind.yaml" \
      ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 5m ||
      die "kind did not create cluster $CLUSTER_NAME"
  fi
else
  if k3d cluster list "$CLUSTER_NAME" >/dev/null 2>&1; then
    log "k3d cluster $CLUSTER_NAME exists: reusing it"
  else
    log "creating k3d cluster $CLUSTER_NAME"
    k3d cluster create "$CLUSTER_NAME" --servers 1 --agents 0 \
      --volume "$WORK_DIR/git:$NODE_GIT_DIR@server:0" --wait --timeout 5m ||
      die "k3d did not create cluster $CLUSTER_NAME"
  fi
fi
wait_for "the node of $CONTEXT to be Ready" "$WAIT_SECS" \
  kctl wait node --all --for=condition=Ready --timeout=10s

# The MinIO endpoint must be the same URL inside the pods and on this machine: cnpg-ops
# reads the bucket through the endpointURL the manifests name (it takes precedence over
# AWS_ENDPOINT_URL), so the manifests name the node's address and MinIO's NodePort.
NODE_IP="$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "$NODE_CONTAINER" | awk '{print $1}')"
[[ -n "$NODE_IP" ]] || die "could not read the IP address of container $NODE_CONTAINER"
S3_ENDPOINT="http://$NODE_IP:$MINIO_NODE_PORT"

# --- 2. operators -------------------------------------------------------------
log "installing cert-manager $CERT_MANAGER_VERSION"
kctl apply -f "$CERT_MANAGER_MANIFEST" >/dev/null || die "applying $CERT_MANAGER_MANIFEST failed"
kctl -n cert-manager rollout status deploy/cert-manager deploy/cert-manager-webhook \
  deploy/cert-manager-cainjector --timeout="${WAIT_SECS}s" || die "cert-manager did not become available"

log "installing CloudNativePG $CNPG_VERSION"
kctl apply --server-side -f "$CNPG_MANIFEST" >/dev/null || die "applying $CNPG_MANIFEST failed"
kctl -n cnpg-system rollout status deploy/cnpg-controller-manager --timeout="${WAIT_SECS}s" ||
  die "the CloudNativePG operator did not become available"

log "installing the barman-cloud plugin $BARMAN_PLUGIN_VERSION"
# Its certificates come from cert-manager, whose webhook may still be starting.
retry "applying the barman-cloud plugin manifest" "$WAIT_SECS" \
  kctl apply -f "$BARMAN_PLUGIN_MANIFEST"
kctl -n cnpg-system rollout status deploy/barman-cloud --timeout="${WAIT_SECS}s" ||
  die "the barman-cloud plugin did not become available"

# --- 3. MinIO -----------------------------------------------------------------
log "installing MinIO ($MINIO_IMAGE)"
kctl apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: minio
---
apiVersion: v1
kind: Secret
metadata:
  name: minio-root
  namespace: minio
stringData:
  MINIO_ROOT_USER: $MINIO_USER
  MINIO_ROOT_PASSWORD: $MINIO_PASSWORD
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: minio
  namespace: minio
spec:
  replicas: 1
  selector:
    matchLabels: {app: minio}
  template:
    metadata:
      labels: {app: minio}
    spec:
      containers:
        - name: minio
          image: $MINIO_IMAGE
          args: ["server", "/data"]
          envFrom:
            - secretRef: {name: minio-root}
          ports:
            - containerPort: 9000
          readinessProbe:
            httpGet: {path: /minio/health/ready, port: 9000}
          volumeMounts:
            - {name: data, mountPath: /data}
      volumes:
        - name: data
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: minio
  namespace: minio
spec:
  type: NodePort
  selector: {app: minio}
  ports:
    - {name: s3, port: 9000, targetPort: 9000, nodePort: $MINIO_NODE_PORT}
YAML
kctl -n minio rollout status deploy/minio --timeout="${WAIT_SECS}s" || die "MinIO did not become ready"

kctl -n minio delete job make-bucket --ignore-not-found >/dev/null
kctl apply -f - >/dev/null <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: make-bucket
  namespace: minio
spec:
  backoffLimit: 6
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: mc
          image: $MC_IMAGE
          envFrom:
            - secretRef: {name: minio-root}
          command: ["/bin/sh", "-c"]
          args:
            - mc alias set local http://minio.minio.svc:9000 "\$MINIO_ROOT_USER" "\$MINIO_ROOT_PASSWORD" &&
              mc mb --ignore-existing local/$MINIO_BUCKET
YAML
kctl -n minio wait job/make-bucket --for=condition=Complete --timeout="${WAIT_SECS}s" ||
  die "the Job did not create bucket $MINIO_BUCKET in MinIO"
# The bucket must answer from this machine too (cnpg-ops reads it from here).
wait_for "MinIO to answer at $S3_ENDPOINT from this machine" 120 \
  curl -fsS "$S3_ENDPOINT/minio/health/ready"

# --- 4. the GitOps repository -------------------------------------------------
log "writing the GitOps repository in $REPO_DIR (origin $ORIGIN_DIR)"
rm -rf "$REPO_DIR" "$ORIGIN_DIR"
mkdir -p "$REPO_DIR"
cp -R "$CHECKOUT/tests/fixtures/repos/selfhosted/." "$REPO_DIR/"
# dev/shop is what `cnpg-ops clone` creates in reclone.sh, Flux Kustomization included.
rm -rf "$REPO_DIR/clusters/dev/databases/shop" "$REPO_DIR/clusters/dev/flux/databases.yaml"

cat >"$REPO_DIR/.cnpg-ops.toml" <<TOML
# Local $K8S cluster $CLUSTER_NAME with MinIO at $S3_ENDPOINT (written by integration/k8s/up.sh).
[defaults]
databases = "clusters/{env}/databases/{svc}"
flux_kustomizations = "clusters/{env}/flux/databases.yaml"
flux_kustomization_name = "db-{svc}"
operators_kustomization = "cnpg-operator"
identity = "s3-secret"
cni = "vanilla"

[env.prod]
kube_context = "$CONTEXT"
endpoint_url = "$S3_ENDPOINT"
production = true

[env.dev]
kube_context = "$CONTEXT"
endpoint_url = "$S3_ENDPOINT"
backup_destination = "s3://$MINIO_BUCKET/dev/{svc}"
instances = 1
storage_class = "$STORAGE_CLASS"
memory_limit = "1Gi"
TOML

SHOP="$REPO_DIR/clusters/prod/databases/shop"
# Plain Secret instead of the SOPS file: nothing decrypts here.
cat >"$SHOP/secrets.enc.yaml" <<YAML
# MinIO access key for shop (prod), local e2e cluster only.
apiVersion: v1
kind: Secret
metadata:
  name: shop-s3
  namespace: shop
stringData:
  ACCESS_KEY_ID: $MINIO_USER
  ACCESS_SECRET_KEY: $MINIO_PASSWORD
YAML
cat >"$SHOP/object-store.yaml" <<YAML
apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata:
  name: shop-store
  namespace: shop
spec:
  retentionPolicy: 30d
  configuration:
    destinationPath: s3://$MINIO_BUCKET/prod/
    endpointURL: $S3_ENDPOINT
    s3Credentials:
      accessKeyId:
        name: shop-s3
        key: ACCESS_KEY_ID
      secretAccessKey:
        name: shop-s3
        key: ACCESS_SECRET_KEY
    wal:
      compression: gzip
      maxParallel: 8
    data:
      compression: gzip
YAML
sed -i.bak "s/storageClass: local-path/storageClass: $STORAGE_CLASS/" "$SHOP/database.yaml"
rm -f "$SHOP/database.yaml.bak"
grep -q "storageClass: $STORAGE_CLASS" "$SHOP/database.yaml" ||
  die "could not set storageClass $STORAGE_CLASS in $SHOP/database.yaml"

git init -q --bare -b main "$ORIGIN_DIR"
git -C "$REPO_DIR" init -q -b main
rgit remote add origin "$ORIGIN_DIR"
rgit add -A
rgit commit -q -m "selfhosted layout on the local $K8S cluster"
rgit push -q -u origin main
# The in-cluster git server (reclone.sh) reads the bare repository through the mount.
git -C "$ORIGIN_DIR" config http.receivepack false
chmod -R a+rX "$WORK_DIR/git"

cat >"$STATE_FILE" <<STATE
S3_ENDPOINT=$S3_ENDPOINT
STATE

# --- 5. the prod database -----------------------------------------------------
log "applying clusters/prod/databases/shop with kubectl"
retry "applying clusters/prod/databases/shop" "$WAIT_SECS" \
  kctl apply -k "$SHOP"
wait_cluster shop shop "$((WAIT_SECS * 2))"

log "ready: context $CONTEXT, repository $REPO_DIR, MinIO $S3_ENDPOINT"
log "next: ./backup.sh, then ./reclone.sh; ./down.sh removes everything"
