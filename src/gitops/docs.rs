//! Typed CNPG, barman-cloud plugin and Flux documents.
//!
//! Each type keeps the fields cnpg-ops reads or writes and carries everything
//! else in a `rest` map, so a document read from the repository and written
//! back loses nothing. Field names follow the CRDs (camelCase); anything the
//! API server may omit is optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The barman-cloud plugin's name in `spec.plugins` and `externalClusters`.
pub const BARMAN_PLUGIN: &str = "barman-cloud.cloudnative-pg.io";
/// API version of the CNPG kinds.
pub const CNPG_API: &str = "postgresql.cnpg.io/v1";
/// API version of the plugin's ObjectStore.
pub const OBJECT_STORE_API: &str = "barmancloud.cnpg.io/v1";
/// API version of Flux Kustomizations.
pub const FLUX_API: &str = "kustomize.toolkit.fluxcd.io/v1";
/// API version of kustomize's own `kustomization.yaml`.
pub const KUSTOMIZE_API: &str = "kustomize.config.k8s.io/v1beta1";

/// Object metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (kustomize may set it instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Everything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

macro_rules! document {
    ($(#[$doc:meta])* $name:ident, $spec:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            /// apiVersion.
            pub api_version: String,
            /// kind.
            pub kind: String,
            /// metadata.
            #[serde(default)]
            pub metadata: Meta,
            /// spec.
            #[serde(default)]
            pub spec: $spec,
            /// status and anything else.
            #[serde(flatten)]
            pub rest: Map<String, Value>,
        }
    };
}

document!(
    /// `Cluster` (postgresql.cnpg.io/v1).
    Cluster,
    ClusterSpec
);
document!(
    /// `ObjectStore` (barmancloud.cnpg.io/v1).
    ObjectStore,
    ObjectStoreSpec
);
document!(
    /// `Backup` (postgresql.cnpg.io/v1).
    Backup,
    BackupSpec
);
document!(
    /// `ScheduledBackup` (postgresql.cnpg.io/v1).
    ScheduledBackup,
    ScheduledBackupSpec
);
document!(
    /// `Database` (postgresql.cnpg.io/v1).
    Database,
    DatabaseSpec
);
document!(
    /// Flux `Kustomization` (kustomize.toolkit.fluxcd.io/v1).
    FluxKustomization,
    FluxKustomizationSpec
);

/// `Cluster.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// Number of instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// PostgreSQL image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_name: Option<String>,
    /// How the first instance is created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<Bootstrap>,
    /// In-tree backup configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupConfiguration>,
    /// CNPG-I plugins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<Plugin>,
    /// Sources for recovery and replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_clusters: Vec<ExternalCluster>,
    /// Everything else (storage, resources, postgresql, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `spec.bootstrap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    /// initdb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initdb: Option<Value>,
    /// recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// pg_basebackup.
    #[serde(
        default,
        rename = "pg_basebackup",
        skip_serializing_if = "Option::is_none"
    )]
    pub pg_basebackup: Option<Value>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Bootstrap {
    /// The methods set, in a fixed order.
    #[must_use]
    pub fn methods(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.initdb.is_some() {
            out.push("initdb");
        }
        if self.recovery.is_some() {
            out.push("recovery");
        }
        if self.pg_basebackup.is_some() {
            out.push("pg_basebackup");
        }
        out
    }
}

/// `spec.bootstrap.recovery`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// externalClusters entry to recover from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_target: Option<RecoveryTarget>,
    /// App database name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// App database owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Anything else (backup, volumeSnapshots, secret).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `recoveryTarget`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryTarget {
    /// Pinned base backup.
    #[serde(default, rename = "backupID", skip_serializing_if = "Option::is_none")]
    pub backup_id: Option<String>,
    /// Time target, always with an explicit offset when we write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_time: Option<String>,
    /// LSN target.
    #[serde(default, rename = "targetLSN", skip_serializing_if = "Option::is_none")]
    pub target_lsn: Option<String>,
    /// Transaction id target.
    #[serde(default, rename = "targetXID", skip_serializing_if = "Option::is_none")]
    pub target_xid: Option<String>,
    /// Restore point target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Stop at consistency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_immediate: Option<bool>,
    /// Timeline.
    #[serde(default, rename = "targetTLI", skip_serializing_if = "Option::is_none")]
    pub target_tli: Option<String>,
    /// Stop just before the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusive: Option<bool>,
}

/// `spec.backup`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupConfiguration {
    /// In-tree object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barman_object_store: Option<BarmanObjectStore>,
    /// Retention (`30d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    /// Anything else (target, volumeSnapshot).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `BarmanObjectStoreConfiguration`, shared by the in-tree stanza,
/// `externalClusters[].barmanObjectStore` and `ObjectStore.spec.configuration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BarmanObjectStore {
    /// Parent prefix; barman appends the server name.
    #[serde(default)]
    pub destination_path: String,
    /// Server folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// S3-compatible endpoint.
    #[serde(
        default,
        rename = "endpointURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub endpoint_url: Option<String>,
    /// S3 credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_credentials: Option<S3Credentials>,
    /// Google credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_credentials: Option<GoogleCredentials>,
    /// Azure credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_credentials: Option<Map<String, Value>>,
    /// Anything else (wal, data, endpointCA, tags).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A `SecretKeySelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKey {
    /// Secret name.
    pub name: String,
    /// Key in the Secret.
    pub key: String,
}

/// `s3Credentials`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// Access key id.
    #[serde(
        default,
        rename = "accessKeyId",
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id: Option<SecretKey>,
    /// Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretKey>,
    /// Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<SecretKey>,
    /// Use the pod's IAM role.
    #[serde(
        default,
        rename = "inheritFromIAMRole",
        skip_serializing_if = "Option::is_none"
    )]
    pub inherit_from_iam_role: Option<bool>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `googleCredentials`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleCredentials {
    /// Workload Identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gke_environment: Option<bool>,
    /// JSON key in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credentials: Option<SecretKey>,
}

/// A `spec.plugins[]` entry, also the shape of `externalClusters[].plugin`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugin {
    /// Plugin name.
    pub name: String,
    /// Enabled (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Whether this plugin archives WAL.
    #[serde(
        default,
        rename = "isWALArchiver",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_wal_archiver: Option<bool>,
    /// Parameters (`barmanObjectName`, `serverName`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

impl Plugin {
    /// Whether this is the barman-cloud plugin, enabled.
    #[must_use]
    pub fn is_barman(&self) -> bool {
        self.name == BARMAN_PLUGIN && self.enabled != Some(false)
    }
}

/// `spec.externalClusters[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalCluster {
    /// Name (what `recovery.source` refers to).
    pub name: String,
    /// In-tree object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barman_object_store: Option<BarmanObjectStore>,
    /// Plugin form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Plugin>,
    /// Streaming connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_parameters: Option<BTreeMap<String, String>>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `ObjectStore.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    /// Where and how.
    #[serde(default)]
    pub configuration: BarmanObjectStore,
    /// Retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A `{name: …}` reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRef {
    /// The name.
    #[serde(default)]
    pub name: String,
}

/// `Backup.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// The Cluster.
    #[serde(default)]
    pub cluster: NameRef,
    /// barmanObjectStore (the CRD default), volumeSnapshot or plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Plugin to use with `method: plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_configuration: Option<Plugin>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `ScheduledBackup.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledBackupSpec {
    /// robfig/cron schedule, seconds first.
    #[serde(default)]
    pub schedule: String,
    /// The Cluster.
    #[serde(default)]
    pub cluster: NameRef,
    /// Backup method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Plugin to use with `method: plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_configuration: Option<Plugin>,
    /// Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `Database.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// The Cluster.
    #[serde(default)]
    pub cluster: NameRef,
    /// Database name in PostgreSQL.
    #[serde(default)]
    pub name: String,
    /// Owner.
    #[serde(default)]
    pub owner: String,
    /// present / absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensure: Option<String>,
    /// retain / delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_reclaim_policy: Option<String>,
    /// Extensions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `Database.spec.extensions[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extension {
    /// Extension name.
    pub name: String,
    /// present / absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensure: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Flux `Kustomization.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxKustomizationSpec {
    /// Folder in the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<NameRef>,
    /// SOPS decryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Map<String, Value>>,
    /// Suspended (should stay absent in git).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Anything else (interval, prune, sourceRef, …).
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// kustomize's `kustomization.yaml` (kustomize.config.k8s.io/v1beta1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeConfig {
    /// Namespace forced on every resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Files and folders included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Anything else.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl Cluster {
    /// The enabled barman-cloud plugin entry, if any.
    #[must_use]
    pub fn barman_plugin(&self) -> Option<&Plugin> {
        self.spec.plugins.iter().find(|p| p.is_barman())
    }

    /// The in-tree object store, if configured.
    #[must_use]
    pub fn inline_store(&self) -> Option<&BarmanObjectStore> {
        self.spec.backup.as_ref()?.barman_object_store.as_ref()
    }

    /// The recovery stanza, if bootstrapping from a backup.
    #[must_use]
    pub fn recovery(&self) -> Option<&Recovery> {
        self.spec.bootstrap.as_ref()?.recovery.as_ref()
    }

    /// An annotation's value.
    #[must_use]
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata.annotations.get(key).map(String::as_str)
    }
}

/// Reads a typed document from JSON.
pub fn from_value<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| e.to_string())
}

/// Writes a typed document as JSON, the way it is emitted as YAML.
#[must_use]
pub fn to_value<T: Serialize>(doc: &T) -> Value {
    serde_json::to_value(doc).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_pass_through_unchanged() {
        let v = json!({
            "apiVersion": CNPG_API, "kind": "Cluster",
            "metadata": {"name": "foo-pg", "namespace": "foo", "uid": "abc"},
            "spec": {
                "instances": 3,
                "storage": {"size": "10Gi"},
                "plugins": [{"name": BARMAN_PLUGIN, "isWALArchiver": true,
                             "parameters": {"barmanObjectName": "store"}}],
                "bootstrap": {"recovery": {"source": "origin",
                    "recoveryTarget": {"targetTime": "2026-05-01 10:00:00+00", "backupID": "20260501T020000"}}},
                "externalClusters": [{"name": "origin", "plugin": {"name": BARMAN_PLUGIN,
                    "parameters": {"barmanObjectName": "store", "serverName": "foo-pg"}}, "sslKey": {"name": "k", "key": "tls.key"}}],
                "backup": {"barmanObjectStore": {"destinationPath": "s3://b/p", "endpointURL": "https://minio",
                    "s3Credentials": {"accessKeyId": {"name": "s", "key": "ID"}, "secretAccessKey": {"name": "s", "key": "KEY"}},
                    "wal": {"compression": "zstd"}}, "retentionPolicy": "7d", "target": "primary"}
            },
            "status": {"phase": "Cluster in healthy state"}
        });
        let c: Cluster = from_value(&v).unwrap();
        assert_eq!(
            c.barman_plugin().unwrap().parameters["barmanObjectName"],
            "store"
        );
        assert_eq!(
            c.inline_store().unwrap().endpoint_url.as_deref(),
            Some("https://minio")
        );
        let t = c.recovery().unwrap().recovery_target.as_ref().unwrap();
        assert_eq!(t.backup_id.as_deref(), Some("20260501T020000"));
        assert_eq!(to_value(&c), v);
    }

    #[test]
    fn bootstrap_methods_are_counted() {
        let b: Bootstrap = from_value(&json!({"initdb": {}, "recovery": {"source": "x"}})).unwrap();
        assert_eq!(b.methods(), vec!["initdb", "recovery"]);
    }
}
