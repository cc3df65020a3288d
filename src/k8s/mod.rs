//! Access to the Kubernetes API: a client for a kubeconfig context (or the
//! in-cluster service account), and the read-only lookups the audit needs.
//!
//! Owns: connecting, timeouts, turning API answers into typed status or a
//! classified error. Does not own: what the status means (`audit::live`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

pub mod exec;

/// The context name that means "the service account this pod runs as".
pub const IN_CLUSTER: &str = "in-cluster";

/// The field manager of every server-side apply cnpg-ops makes.
pub const FIELD_MANAGER: &str = "cnpg-ops";

/// A kind the runbooks read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// API group (`""` for the core group).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
}

/// `postgresql.cnpg.io/v1` Cluster.
pub const CLUSTER: Kind = Kind {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "Cluster",
    plural: "clusters",
};
/// `postgresql.cnpg.io/v1` Backup.
pub const BACKUP: Kind = Kind {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "Backup",
    plural: "backups",
};
/// `barmancloud.cnpg.io/v1` ObjectStore.
pub const OBJECT_STORE: Kind = Kind {
    group: "barmancloud.cnpg.io",
    version: "v1",
    kind: "ObjectStore",
    plural: "objectstores",
};
/// `kustomize.toolkit.fluxcd.io/v1` Kustomization.
pub const KUSTOMIZATION: Kind = Kind {
    group: "kustomize.toolkit.fluxcd.io",
    version: "v1",
    kind: "Kustomization",
    plural: "kustomizations",
};
/// `source.toolkit.fluxcd.io/v1` GitRepository.
pub const GIT_REPOSITORY: Kind = Kind {
    group: "source.toolkit.fluxcd.io",
    version: "v1",
    kind: "GitRepository",
    plural: "gitrepositories",
};
/// `postgresql.cnpg.io/v1` ScheduledBackup.
pub const SCHEDULED_BACKUP: Kind = Kind {
    group: "postgresql.cnpg.io",
    version: "v1",
    kind: "ScheduledBackup",
    plural: "scheduledbackups",
};
/// Core v1 ServiceAccount.
pub const SERVICE_ACCOUNT: Kind = Kind {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
};
/// Core v1 Secret.
pub const SECRET: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
};
/// Core v1 Pod.
pub const POD: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
};
/// Core v1 PersistentVolumeClaim.
pub const PVC: Kind = Kind {
    group: "",
    version: "v1",
    kind: "PersistentVolumeClaim",
    plural: "persistentvolumeclaims",
};

impl Kind {
    /// `group/version`, or `version` for the core group.
    #[must_use]
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_owned(),
            version: self.version.to_owned(),
            api_version: self.api_version(),
            kind: self.kind.to_owned(),
            plural: self.plural.to_owned(),
        }
    }
}

/// A connected client and the context it came from, for messages.
#[derive(Clone)]
pub struct Kube {
    /// The client.
    pub client: kube::Client,
    /// The kubeconfig context (or `in-cluster`).
    pub context: String,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

fn to_value(o: DynamicObject) -> serde_json::Value {
    serde_json::to_value(o).unwrap_or_default()
}

impl Kube {
    /// Connects to `context` (see [`client`]).
    pub async fn connect(context: &str) -> Result<Kube, KubeError> {
        Ok(Kube {
            client: client(context).await?,
            context: context.to_owned(),
        })
    }

    fn api(&self, kind: Kind, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &kind.resource())
    }

    fn what(kind: Kind, namespace: &str, name: &str) -> String {
        format!("{} {namespace}/{name}", kind.kind)
    }

    /// The object, or `None` when there is none.
    pub async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<serde_json::Value>, KubeError> {
        self.api(kind, namespace)
            .get_opt(name)
            .await
            .map(|o| o.map(to_value))
            .map_err(|e| classify(&self.context, &Self::what(kind, namespace, name), &e))
    }

    /// The objects of `kind` in `namespace` with the labels `selector` (`k=v,k2=v2`).
    pub async fn list(
        &self,
        kind: Kind,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<serde_json::Value>, KubeError> {
        self.api(kind, namespace)
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items.into_iter().map(to_value).collect())
            .map_err(|e| {
                classify(
                    &self.context,
                    &format!("{} in {namespace} ({selector})", kind.plural),
                    &e,
                )
            })
    }

    /// Creates `object` (which names its own namespace and name).
    pub async fn create(
        &self,
        kind: Kind,
        object: &serde_json::Value,
    ) -> Result<serde_json::Value, KubeError> {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let obj: DynamicObject = serde_json::from_value(object.clone()).map_err(|e| KubeError {
            message: format!("{} is not an object: {e}", Self::what(kind, ns, name)),
            hint: String::new(),
        })?;
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.to_owned()),
            ..PostParams::default()
        };
        self.api(kind, ns)
            .create(&pp, &obj)
            .await
            .map(to_value)
            .map_err(|e| classify(&self.context, &Self::what(kind, ns, name), &e))
    }

    /// Server-side apply of `fields` (the fields cnpg-ops owns) to an object.
    pub async fn apply(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        fields: &serde_json::Value,
    ) -> Result<serde_json::Value, KubeError> {
        let mut body = fields.clone();
        body["apiVersion"] = serde_json::json!(kind.api_version());
        body["kind"] = serde_json::json!(kind.kind);
        body["metadata"]["name"] = serde_json::json!(name);
        body["metadata"]["namespace"] = serde_json::json!(namespace);
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        self.api(kind, namespace)
            .patch(name, &pp, &Patch::Apply(body))
            .await
            .map(to_value)
            .map_err(|e| classify(&self.context, &Self::what(kind, namespace, name), &e))
    }

    /// The value of `key` in Secret `namespace/name`, as text; `None` when the
    /// Secret or the key is not there. The value is the caller's to keep in
    /// memory only.
    pub async fn secret_value(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<Option<String>, KubeError> {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        let secret = api
            .get_opt(name)
            .await
            .map_err(|e| classify(&self.context, &format!("Secret {namespace}/{name}"), &e))?;
        Ok(secret.and_then(|s| s.data).and_then(|d| {
            d.get(key)
                .map(|v| String::from_utf8_lossy(&v.0).trim().to_owned())
        }))
    }

    /// The S3 keys a manifest's credentials name, read from their Secret.
    pub async fn s3_keys(
        &self,
        namespace: &str,
        credentials: &crate::gitops::discover::Credentials,
    ) -> Result<Option<crate::store::S3Keys>, KubeError> {
        let crate::gitops::discover::Credentials::S3Secret {
            secret,
            access_key_id_key,
            secret_access_key: Some(secret_ref),
        } = credentials
        else {
            return Ok(None);
        };
        let id = self
            .secret_value(namespace, secret, access_key_id_key)
            .await?;
        let key = self
            .secret_value(namespace, &secret_ref.name, &secret_ref.key)
            .await?;
        Ok(match (id, key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(crate::store::S3Keys {
                access_key_id,
                secret_access_key,
                from: format!("{namespace}/{secret}"),
            }),
            _ => None,
        })
    }

    /// Deletes an object; false when there was none.
    pub async fn delete(&self, kind: Kind, namespace: &str, name: &str) -> Result<bool, KubeError> {
        match self
            .api(kind, namespace)
            .delete(name, &DeleteParams::foreground())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(classify(
                &self.context,
                &Self::what(kind, namespace, name),
                &e,
            )),
        }
    }
}

/// Why the API could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct KubeError {
    /// What went wrong, naming the context.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// A `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Type (`ContinuousArchiving`).
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: Option<String>,
    /// What the operator said.
    #[serde(default)]
    pub message: Option<String>,
    /// When the status last flipped.
    #[serde(default)]
    pub last_transition_time: Option<DateTime<Utc>>,
}

/// The part of `Cluster.status` the audit reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// Phase text (`Cluster in healthy state`).
    #[serde(default)]
    pub phase: Option<String>,
    /// Why it is in that phase.
    #[serde(default)]
    pub phase_reason: Option<String>,
    /// Conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// In-tree backups only (deprecated, not updated for the plugin).
    #[serde(default)]
    pub first_recoverability_point: Option<DateTime<Utc>>,
    /// In-tree backups only.
    #[serde(default)]
    pub last_successful_backup: Option<DateTime<Utc>>,
}

impl ClusterStatus {
    /// The condition of `kind`, if reported.
    #[must_use]
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// One entry of `ObjectStore.status.serverRecoveryWindow`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryWindow {
    /// The first point the plugin says a restore reaches.
    #[serde(default)]
    pub first_recoverability_point: Option<DateTime<Utc>>,
    /// The last successful backup.
    #[serde(default)]
    pub last_successful_backup_time: Option<DateTime<Utc>>,
    /// The last failed backup.
    #[serde(default)]
    pub last_failed_backup_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectStoreStatus {
    #[serde(default)]
    server_recovery_window: BTreeMap<String, RecoveryWindow>,
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_owned(),
        version: "v1".to_owned(),
        api_version: format!("{group}/v1"),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

/// A client for `context` of the kubeconfig (`KUBECONFIG` or `~/.kube/config`),
/// or for the pod's service account when `context` is [`IN_CLUSTER`].
pub async fn client(context: &str) -> Result<kube::Client, KubeError> {
    let mut config = if context == IN_CLUSTER {
        kube::Config::incluster().map_err(|e| KubeError {
            message: format!("cannot use the in-cluster service account: {e}"),
            hint: "run inside a pod with a mounted service account token, or name a kubeconfig context".to_owned(),
        })?
    } else {
        let kubeconfig = Kubeconfig::read().map_err(|e| KubeError {
            message: format!("cannot read the kubeconfig for context `{context}`: {e}"),
            hint: "set KUBECONFIG, or kube_context for the env in .cnpg-ops.toml".to_owned(),
        })?;
        if !kubeconfig.contexts.iter().any(|c| c.name == context) {
            let known: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(KubeError {
                message: format!("the kubeconfig has no context `{context}`"),
                hint: format!("contexts: {}", known.join(", ")),
            });
        }
        kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &KubeConfigOptions {
                context: Some(context.to_owned()),
                ..KubeConfigOptions::default()
            },
        )
        .await
        .map_err(|e| KubeError {
            message: format!("kubeconfig context `{context}`: {e}"),
            hint: "check the context's cluster and user entries".to_owned(),
        })?
    };
    config.connect_timeout = Some(Duration::from_secs(10));
    config.read_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(config).map_err(|e| KubeError {
        message: format!("cannot build a client for context `{context}`: {e}"),
        hint: "check the context's cluster and user entries".to_owned(),
    })
}

fn classify(context: &str, what: &str, e: &kube::Error) -> KubeError {
    match e {
        kube::Error::Api(s) if s.code == 403 => KubeError {
            message: format!("context `{context}`: access to {what} is forbidden: {}", s.message),
            hint: "grant the verbs this needs on that resource: get/list to read (deploy/rbac.yaml has the audit's), create for Backups, patch for Flux Kustomizations, delete for Clusters".to_owned(),
        },
        kube::Error::Api(s) if s.code == 401 => KubeError {
            message: format!("context `{context}`: not authenticated: {}", s.message),
            hint: "refresh the credentials of the context".to_owned(),
        },
        other => {
            let mut message = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            KubeError {
                message: format!("context `{context}`: request about {what} failed: {message}"),
                hint: "check that the API server is reachable from here".to_owned(),
            }
        }
    }
}

/// The status of Cluster `name` in `namespace`; `None` when there is none.
pub async fn cluster_status(
    client: &kube::Client,
    context: &str,
    namespace: &str,
    name: &str,
) -> Result<Option<ClusterStatus>, KubeError> {
    let ar = resource("postgresql.cnpg.io", "Cluster", "clusters");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let what = format!("Cluster {namespace}/{name}");
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| classify(context, &what, &e))?;
    obj.map(|o| match o.data.get("status") {
        None | Some(serde_json::Value::Null) => Ok(ClusterStatus::default()),
        Some(s) => serde_json::from_value(s.clone()).map_err(|e| KubeError {
            message: format!("context `{context}`: the status of {what} does not read: {e}"),
            hint: "a CloudNativePG version this cnpg-ops does not know? Compare with `kubectl get cluster -o yaml`".to_owned(),
        }),
    })
    .transpose()
}

/// The recovery window ObjectStore `name` reports for `server`; the outer
/// `None` when there is no such ObjectStore.
pub async fn recovery_window(
    client: &kube::Client,
    context: &str,
    namespace: &str,
    name: &str,
    server: &str,
) -> Result<Option<Option<RecoveryWindow>>, KubeError> {
    let ar = resource("barmancloud.cnpg.io", "ObjectStore", "objectstores");
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &ar);
    let what = format!("ObjectStore {namespace}/{name}");
    let obj = api
        .get_opt(name)
        .await
        .map_err(|e| classify(context, &what, &e))?;
    obj.map(|o| match o.data.get("status") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(s) => serde_json::from_value::<ObjectStoreStatus>(s.clone())
            .map(|mut st| st.server_recovery_window.remove(server))
            .map_err(|e| KubeError {
                message: format!("context `{context}`: the status of {what} does not read: {e}"),
                hint: "a plugin version this cnpg-ops does not know? Compare with `kubectl get objectstore -o yaml`".to_owned(),
            }),
    })
    .transpose()
}
