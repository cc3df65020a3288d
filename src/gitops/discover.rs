//! Finds every database in the repository and works out exactly what the
//! catalog engine needs to read its backups: the object store prefix, the
//! server folder (with CloudNativePG's defaults), the credentials kind.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::docs::{
    self, BarmanObjectStore, Cluster, FluxKustomization, KustomizeConfig, ObjectStore,
    ScheduledBackup,
};
use super::repo::{Doc, Repo};

/// How a Cluster archives WAL and takes base backups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackupModel {
    /// `spec.backup.barmanObjectStore` (deprecated in CNPG 1.26).
    Inline,
    /// The barman-cloud plugin with an `ObjectStore`.
    Plugin,
    /// Both configured (a mistake the webhook rejects when both archive).
    Both,
    /// No backups configured.
    None,
}

/// A key in a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyRef {
    /// The Secret.
    pub name: String,
    /// The key in it.
    pub key: String,
}

/// How the pods authenticate to the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Credentials {
    /// GKE Workload Identity (`googleCredentials.gkeEnvironment: true`).
    GkeWorkloadIdentity,
    /// A Google JSON key in a Secret.
    GoogleKey {
        /// The Secret.
        secret: String,
    },
    /// S3 access keys in a Secret.
    S3Secret {
        /// The Secret.
        secret: String,
        /// The key of the access key id in it.
        access_key_id_key: String,
        /// Where the secret access key is.
        secret_access_key: Option<KeyRef>,
    },
    /// The pod's IAM role.
    S3IamRole,
    /// Azure credentials.
    Azure,
    /// No credentials block, or more than one.
    Unknown,
}

impl Credentials {
    fn of(store: &BarmanObjectStore) -> Self {
        let blocks = usize::from(store.s3_credentials.is_some())
            + usize::from(store.google_credentials.is_some())
            + usize::from(store.azure_credentials.is_some());
        if blocks != 1 {
            return Credentials::Unknown;
        }
        if let Some(g) = &store.google_credentials {
            return match (&g.application_credentials, g.gke_environment) {
                (Some(k), _) => Credentials::GoogleKey {
                    secret: k.name.clone(),
                },
                (None, _) => Credentials::GkeWorkloadIdentity,
            };
        }
        if let Some(s) = &store.s3_credentials {
            if s.inherit_from_iam_role == Some(true) {
                return Credentials::S3IamRole;
            }
            return match &s.access_key_id {
                Some(k) => Credentials::S3Secret {
                    secret: k.name.clone(),
                    access_key_id_key: k.key.clone(),
                    secret_access_key: s.secret_access_key.as_ref().map(|k| KeyRef {
                        name: k.name.clone(),
                        key: k.key.clone(),
                    }),
                },
                None => Credentials::Unknown,
            };
        }
        Credentials::Azure
    }

    /// Short label for tables.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Credentials::GkeWorkloadIdentity => "gke-workload-identity".into(),
            Credentials::GoogleKey { secret } => format!("google-key:{secret}"),
            Credentials::S3Secret { secret, .. } => format!("s3-secret:{secret}"),
            Credentials::S3IamRole => "s3-iam-role".into(),
            Credentials::Azure => "azure".into(),
            Credentials::Unknown => "unknown".into(),
        }
    }
}

/// Where a catalog lives, as the catalog engine reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogLocation {
    /// `destinationPath` (the parent prefix).
    pub destination_path: String,
    /// The server folder under it.
    pub server_name: String,
    /// Whether `server_name` was written explicitly or is CNPG's default.
    pub server_name_explicit: bool,
    /// S3 endpoint, when not the provider's default.
    pub endpoint_url: Option<String>,
    /// Credentials.
    pub credentials: Credentials,
    /// ObjectStore that holds it (plugin model).
    pub object_store: Option<String>,
}

impl CatalogLocation {
    /// Through the plugin: the ObjectStore's prefix and the plugin's
    /// `serverName` parameter, which defaults to `cluster` — the Cluster that
    /// carries the plugin entry (for a recovery source too: the *recovering*
    /// Cluster's name).
    fn plugin(p: &docs::Plugin, store: &ObjectStore, cluster: &str) -> Self {
        let explicit = p.parameters.get("serverName").filter(|s| !s.is_empty());
        CatalogLocation {
            destination_path: store.spec.configuration.destination_path.clone(),
            server_name: explicit.cloned().unwrap_or_else(|| cluster.to_owned()),
            server_name_explicit: explicit.is_some(),
            endpoint_url: store.spec.configuration.endpoint_url.clone(),
            credentials: Credentials::of(&store.spec.configuration),
            object_store: Some(store.metadata.name.clone()),
        }
    }

    /// In-tree: the stanza's own `serverName`, defaulting to `default`.
    fn inline(store: &BarmanObjectStore, default: &str) -> Self {
        CatalogLocation {
            destination_path: store.destination_path.clone(),
            server_name: store
                .server_name
                .clone()
                .unwrap_or_else(|| default.to_owned()),
            server_name_explicit: store.server_name.is_some(),
            endpoint_url: store.endpoint_url.clone(),
            credentials: Credentials::of(store),
            object_store: None,
        }
    }
}

/// The recovery bootstrap of a Cluster, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecoverySource {
    /// `recovery.source`.
    pub source: String,
    /// The source catalog, when the externalCluster names one.
    pub catalog: Option<CatalogLocation>,
}

/// One database folder and what its manifests say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Database {
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// Folder, relative to the repository root.
    pub folder: PathBuf,
    /// Cluster name.
    pub cluster: String,
    /// Effective namespace (kustomization `namespace`, else the Cluster's).
    pub namespace: String,
    /// File and line of the Cluster.
    pub cluster_file: String,
    /// Instances.
    pub instances: Option<u32>,
    /// Image.
    pub image: Option<String>,
    /// Backup model.
    pub backup_model: BackupModel,
    /// Where this Cluster writes WAL and backups.
    pub catalog: Option<CatalogLocation>,
    /// Retention policy (`30d`), from the Cluster or its ObjectStore.
    pub retention_policy: Option<String>,
    /// ScheduledBackup schedules and methods.
    pub schedules: Vec<Schedule>,
    /// Bootstrap method(s).
    pub bootstrap: Vec<&'static str>,
    /// Other Clusters in the folder (restores beside the original).
    pub other_clusters: Vec<String>,
    /// Where a recovery bootstrap reads from.
    pub recovery: Option<RecoverySource>,
    /// The Flux Kustomization(s) that apply this folder.
    pub flux_kustomizations: Vec<String>,
}

/// A ScheduledBackup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// Name.
    pub name: String,
    /// robfig/cron schedule.
    pub schedule: String,
    /// Method (CRD default barmanObjectStore).
    pub method: String,
}

/// A folder that looks like a database but cannot be read as one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind of problem: `no-cluster`, `several-clusters`,
    /// `unreadable-cluster`, `missing-object-store`.
    pub code: &'static str,
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// `file:line` or folder.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

/// Every database found, and the folders that could not be read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Discovery {
    /// Databases, sorted by env and service.
    pub databases: Vec<Database>,
    /// Problems.
    pub problems: Vec<Problem>,
}

impl Discovery {
    /// The database `svc` in `env`.
    #[must_use]
    pub fn find(&self, env: &str, svc: &str) -> Option<&Database> {
        self.databases.iter().find(|d| d.env == env && d.svc == svc)
    }
}

/// The file that holds a database's own Cluster when a folder holds several.
pub const MAIN_FILE: &str = "database.yaml";

/// Normalises a Flux `spec.path` for comparison with a folder.
#[must_use]
pub fn flux_path(path: &str) -> PathBuf {
    path.trim_start_matches("./").trim_matches('/').into()
}

/// Finds every database in `repo`.
#[must_use]
pub fn discover(repo: &Repo) -> Discovery {
    let mut out = Discovery::default();
    let flux: Vec<(&Doc, FluxKustomization)> = repo
        .docs_of("kustomize.toolkit.fluxcd.io", "Kustomization")
        .filter_map(|d| docs::from_value(&d.value).ok().map(|k| (d, k)))
        .collect();
    for (env, svc, folder) in repo.database_folders() {
        let problem = |code: &'static str, at: String, message: String| Problem {
            code,
            env: env.clone(),
            svc: svc.clone(),
            at,
            message,
        };
        let in_folder: Vec<&Doc> = repo.docs_in(&folder).collect();
        let clusters: Vec<&&Doc> = in_folder
            .iter()
            .filter(|d| d.is("postgresql.cnpg.io", "Cluster"))
            .collect();
        // Restored clusters beside the original live in their own files; when
        // a folder holds several, the database is the one in database.yaml.
        let in_main: Vec<&&Doc> = clusters
            .iter()
            .copied()
            .filter(|d| d.file.file_name().is_some_and(|f| f == MAIN_FILE))
            .collect();
        let cluster_doc = match (clusters.as_slice(), in_main.as_slice()) {
            ([one], _) | (_, [one]) => *one,
            ([], _) => {
                out.problems.push(problem(
                    "no-cluster",
                    folder.display().to_string(),
                    "no CloudNativePG Cluster in this folder".into(),
                ));
                continue;
            }
            (many, _) => {
                let names: Vec<&str> = many.iter().map(|d| d.name()).collect();
                out.problems.push(problem(
                    "several-clusters",
                    folder.display().to_string(),
                    format!(
                        "{} Clusters in one folder ({}) and none alone in {MAIN_FILE}; expected one",
                        many.len(),
                        names.join(", ")
                    ),
                ));
                continue;
            }
        };
        let cluster: Cluster = match docs::from_value(&cluster_doc.value) {
            Ok(c) => c,
            Err(e) => {
                out.problems.push(problem(
                    "unreadable-cluster",
                    cluster_doc.at(""),
                    format!("Cluster does not read: {e}"),
                ));
                continue;
            }
        };
        let kustomize: Option<KustomizeConfig> = in_folder
            .iter()
            .find(|d| d.is("kustomize.config.k8s.io", "Kustomization"))
            .and_then(|d| docs::from_value(&d.value).ok());
        let namespace = kustomize
            .as_ref()
            .and_then(|k| k.namespace.clone())
            .or_else(|| cluster.metadata.namespace.clone())
            .unwrap_or_else(|| "default".into());
        // ObjectStores are looked up in the Cluster's namespace: the folder's
        // own first, then any other file that declares one in that namespace.
        let mut stores: Vec<ObjectStore> = in_folder
            .iter()
            .filter(|d| d.is("barmancloud.cnpg.io", "ObjectStore"))
            .filter_map(|d| docs::from_value(&d.value).ok())
            .collect();
        stores.extend(
            repo.docs_of("barmancloud.cnpg.io", "ObjectStore")
                .filter(|d| !d.file.starts_with(&folder))
                .filter(|d| {
                    d.value
                        .pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str)
                        == Some(namespace.as_str())
                })
                .filter_map(|d| docs::from_value::<ObjectStore>(&d.value).ok()),
        );
        let store_named = |name: &str| stores.iter().find(|s| s.metadata.name == name);

        let plugin = cluster.barman_plugin();
        let inline = cluster.inline_store();
        let backup_model = match (inline.is_some(), plugin.is_some()) {
            (true, true) => BackupModel::Both,
            (true, false) => BackupModel::Inline,
            (false, true) => BackupModel::Plugin,
            (false, false) => BackupModel::None,
        };
        let name = cluster.metadata.name.clone();
        let (catalog, retention_policy) = match (plugin, inline) {
            (Some(p), _) => {
                let store_name = p.parameters.get("barmanObjectName").cloned();
                let store = store_name.as_deref().and_then(store_named);
                if store.is_none() {
                    out.problems.push(problem(
                        "missing-object-store",
                        cluster_doc.at("spec.plugins"),
                        match &store_name {
                            Some(s) => format!(
                                "the plugin names ObjectStore `{s}`, which is not in {}",
                                folder.display()
                            ),
                            None => {
                                "the barman-cloud plugin entry has no barmanObjectName parameter"
                                    .into()
                            }
                        },
                    ));
                }
                let location = store.map(|s| CatalogLocation::plugin(p, s, &name));
                (
                    location,
                    store.and_then(|s| s.spec.retention_policy.clone()),
                )
            }
            (None, Some(store)) => (
                Some(CatalogLocation::inline(store, &name)),
                cluster
                    .spec
                    .backup
                    .as_ref()
                    .and_then(|b| b.retention_policy.clone()),
            ),
            (None, None) => (None, None),
        };
        let recovery = cluster
            .recovery()
            .and_then(|r| r.source.clone())
            .map(|source| {
                let ext = cluster
                    .spec
                    .external_clusters
                    .iter()
                    .find(|e| e.name == source);
                let catalog = ext.and_then(|e| {
                    if let Some(p) = e.plugin.as_ref().filter(|p| p.name == docs::BARMAN_PLUGIN) {
                        let store = p
                            .parameters
                            .get("barmanObjectName")
                            .and_then(|n| store_named(n))?;
                        // The plugin defaults to the recovering Cluster's own name.
                        Some(CatalogLocation::plugin(p, store, &name))
                    } else {
                        // In-tree: defaults to the externalCluster's name.
                        e.barman_object_store
                            .as_ref()
                            .map(|s| CatalogLocation::inline(s, &e.name))
                    }
                });
                RecoverySource { source, catalog }
            });
        let schedules = in_folder
            .iter()
            .filter(|d| d.is("postgresql.cnpg.io", "ScheduledBackup"))
            .filter_map(|d| docs::from_value::<ScheduledBackup>(&d.value).ok())
            .filter(|s| s.spec.cluster.name == name)
            .map(|s| Schedule {
                name: s.metadata.name,
                schedule: s.spec.schedule,
                method: s.spec.method.unwrap_or_else(|| "barmanObjectStore".into()),
            })
            .collect();
        let flux_kustomizations = flux
            .iter()
            .filter(|(_, k)| k.spec.path.as_deref().map(flux_path) == Some(folder.clone()))
            .map(|(_, k)| k.metadata.name.clone())
            .collect();
        out.databases.push(Database {
            env: env.clone(),
            svc: svc.clone(),
            folder: folder.clone(),
            cluster: name,
            namespace,
            cluster_file: cluster_doc.at(""),
            instances: cluster.spec.instances,
            image: cluster.spec.image_name.clone(),
            backup_model,
            catalog,
            retention_policy,
            schedules,
            bootstrap: cluster
                .spec
                .bootstrap
                .as_ref()
                .map(docs::Bootstrap::methods)
                .unwrap_or_default(),
            other_clusters: clusters
                .iter()
                .filter(|d| d.name() != cluster_doc.name())
                .map(|d| d.name().to_owned())
                .collect(),
            recovery,
            flux_kustomizations,
        });
    }
    out
}

/// A catalog some Cluster in the repository writes or reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogRef {
    /// Where.
    pub location: CatalogLocation,
    /// `writes` (the Cluster archives there) or `reads` (an externalCluster).
    pub role: &'static str,
    /// `file:line` of the Cluster.
    pub by: String,
}

/// The catalogs the repository's Clusters name, and the Clusters that could
/// not be read (their catalogs are unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogRefs {
    /// Every catalog written or read.
    pub refs: Vec<CatalogRef>,
    /// `file:line` of Cluster documents that do not read as a Cluster.
    pub unread: Vec<String>,
}

/// Every catalog any Cluster in the repository writes or reads, whether or
/// not its folder reads as a database: restores beside the original,
/// replicas and clones all own their server folders.
#[must_use]
pub fn catalog_references(repo: &Repo) -> CatalogRefs {
    let stores: Vec<(&Doc, ObjectStore)> = repo
        .docs_of("barmancloud.cnpg.io", "ObjectStore")
        .filter_map(|d| docs::from_value(&d.value).ok().map(|s| (d, s)))
        .collect();
    let mut out = Vec::new();
    let mut unread = Vec::new();
    for doc in repo.docs_of("postgresql.cnpg.io", "Cluster") {
        let Ok(cluster) = docs::from_value::<Cluster>(&doc.value) else {
            unread.push(doc.at(""));
            continue;
        };
        let dir = doc.file.parent().map(Path::to_owned).unwrap_or_default();
        let namespace = repo
            .docs_in(&dir)
            .find(|d| d.is("kustomize.config.k8s.io", "Kustomization"))
            .and_then(|d| d.value.pointer("/namespace").and_then(|v| v.as_str()))
            .map(str::to_owned)
            .or_else(|| cluster.metadata.namespace.clone());
        // The ObjectStore of that name: in the same folder, else in the
        // Cluster's namespace, else anywhere.
        let store_named = |name: &str| {
            let named = || stores.iter().filter(|(_, s)| s.metadata.name == name);
            named()
                .find(|(d, _)| d.file.parent() == Some(dir.as_path()))
                .or_else(|| {
                    named().find(|(d, _)| {
                        namespace.is_some()
                            && d.value
                                .pointer("/metadata/namespace")
                                .and_then(|v| v.as_str())
                                == namespace.as_deref()
                    })
                })
                .or_else(|| named().next())
                .map(|(_, s)| s)
        };
        let name = cluster.metadata.name.clone();
        let by = doc.at("");
        let mut push = |location: Option<CatalogLocation>, role| {
            if let Some(location) = location {
                out.push(CatalogRef {
                    location,
                    role,
                    by: by.clone(),
                });
            }
        };
        if let Some(p) = cluster.barman_plugin() {
            let store = p
                .parameters
                .get("barmanObjectName")
                .and_then(|n| store_named(n));
            push(
                store.map(|s| CatalogLocation::plugin(p, s, &name)),
                "writes",
            );
        }
        if let Some(s) = cluster.inline_store() {
            push(Some(CatalogLocation::inline(s, &name)), "writes");
        }
        for e in &cluster.spec.external_clusters {
            let location =
                if let Some(p) = e.plugin.as_ref().filter(|p| p.name == docs::BARMAN_PLUGIN) {
                    p.parameters
                        .get("barmanObjectName")
                        .and_then(|n| store_named(n))
                        .map(|s| CatalogLocation::plugin(p, s, &name))
                } else {
                    e.barman_object_store
                        .as_ref()
                        .map(|s| CatalogLocation::inline(s, &e.name))
                };
            push(location, "reads");
        }
    }
    CatalogRefs { refs: out, unread }
}
