//! Renders the recovery bootstrap: a new Cluster that restores from a source
//! catalog up to a proven target and archives its own WAL under a fresh
//! server folder, in the inline or the plugin form.
//!
//! Pure: documents in, documents out. The rules it keeps (see
//! shared knowledge in docs/repo-layout.md):
//! - the source `serverName` is always written, because the plugin form
//!   defaults it to the *new* cluster's name;
//! - the recovering cluster writes under a new `serverName` generation, so the
//!   empty-archive check never finds an earlier generation's WAL;
//! - a time target always carries an explicit offset, in the form both the
//!   CNPG webhook and PostgreSQL accept;
//! - `backupID` is written when the caller pins one, and required for the
//!   targets the operator cannot choose a backup for.

use chrono::{DateTime, FixedOffset, SecondsFormat};
use serde_json::{Map, Value, json};

use super::docs::{
    self, BARMAN_PLUGIN, BarmanObjectStore, Cluster, ExternalCluster, ObjectStore, Plugin,
    Recovery, RecoveryTarget,
};

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The end of the archive.
    Latest,
    /// A time (written with its offset).
    Time(DateTime<FixedOffset>),
    /// An LSN such as `0/3000028`.
    Lsn(String),
    /// A transaction id.
    Xid(String),
    /// A restore point.
    Name(String),
    /// The end of the base backup.
    Immediate,
}

/// The catalog to restore from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Inline form: `externalClusters[].barmanObjectStore`, the source's
    /// store configuration (credentials, endpoint) copied over.
    Inline {
        /// The store configuration (its `serverName` is replaced).
        store: Box<BarmanObjectStore>,
        /// The source's server folder.
        server_name: String,
    },
    /// Plugin form: an ObjectStore in the new cluster's namespace.
    Plugin {
        /// ObjectStore name.
        object_store: String,
        /// The source's server folder.
        server_name: String,
    },
}

impl Source {
    /// The source server folder.
    #[must_use]
    pub fn server_name(&self) -> &str {
        match self {
            Source::Inline { server_name, .. } | Source::Plugin { server_name, .. } => server_name,
        }
    }
}

/// Where the new cluster archives.
#[derive(Debug, Clone, PartialEq)]
pub enum Archive {
    /// Inline `spec.backup.barmanObjectStore`.
    Inline {
        /// Store configuration (its `serverName` is replaced).
        store: Box<BarmanObjectStore>,
        /// Retention (`14d`).
        retention_policy: Option<String>,
        /// The write server folder.
        server_name: String,
    },
    /// The barman-cloud plugin with an ObjectStore in the new namespace.
    Plugin {
        /// ObjectStore name.
        object_store: String,
        /// The write server folder.
        server_name: String,
    },
}

/// Everything a recovery Cluster is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverySpec {
    /// The Cluster to copy sizing, image, parameters and templates from
    /// (usually the source Cluster); its bootstrap, backup, plugins and
    /// externalClusters are replaced.
    pub template: Cluster,
    /// New cluster name.
    pub name: String,
    /// New cluster namespace.
    pub namespace: String,
    /// `externalClusters` entry name for the source.
    pub source_name: String,
    /// The source catalog.
    pub source: Source,
    /// Where to stop.
    pub target: Target,
    /// Pinned base backup.
    pub backup_id: Option<String>,
    /// `targetTLI` (`latest` or a number), when not PostgreSQL's default.
    pub timeline: Option<String>,
    /// Where the new cluster archives (None: no archiving).
    pub archive: Option<Archive>,
    /// Google service account the pods act as (GKE Workload Identity).
    pub gcp_service_account: Option<String>,
    /// Instances (None: keep the template's).
    pub instances: Option<u32>,
    /// The source's application database and owner, when the template is
    /// not the source Cluster (a clone into an existing database): the
    /// restored catalog holds the source's names, not the template's.
    pub app: Option<(Option<String>, Option<String>)>,
}

/// The rendered documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// The Cluster, as JSON in the order it is written.
    pub cluster: Value,
}

/// A recovery that cannot be rendered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The webhook requires backupID for this target.
    #[error(
        "a {0} target needs a pinned base backup (recoveryTarget.backupID): the operator cannot choose one for it\nhint: pass the backup id the catalog proves, e.g. from `cnpg-ops catalog show`"
    )]
    BackupIdRequired(&'static str),
    /// Reading from and writing to the same folder.
    #[error(
        "the new cluster would archive into the source's own folder `{0}`: the empty-archive check fails, and skipping it would corrupt the source's history\nhint: use a new serverName generation"
    )]
    WritesIntoSource(String),
    /// Bad name.
    #[error("`{0}` is not a valid externalClusters name (no `/` or `..`, not empty)")]
    BadSourceName(String),
}

/// The form CNPG and PostgreSQL both accept: `2026-05-01 10:00:00.000000+02:00`.
#[must_use]
pub fn target_time(t: &DateTime<FixedOffset>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Micros, false);
    s.replacen('T', " ", 1)
}

/// The next write `serverName` for `cluster`: `<cluster>-g2` after the
/// cluster's own name (generation 1), then `-g3`, and so on.
#[must_use]
pub fn next_server_name(cluster: &str, current: Option<&str>) -> String {
    let generation = current
        .and_then(|c| c.strip_prefix(cluster))
        .and_then(|rest| rest.strip_prefix("-g"))
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(1);
    format!("{cluster}-g{}", generation + 1)
}

/// Metadata keys that belong to a live object, never to a manifest.
const LIVE_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
];

/// Renders the recovery Cluster.
pub fn recovery_cluster(spec: &RecoverySpec) -> Result<Rendered, RenderError> {
    if spec.source_name.is_empty()
        || spec.source_name.contains('/')
        || spec.source_name.contains("..")
    {
        return Err(RenderError::BadSourceName(spec.source_name.clone()));
    }
    let needs_backup_id = match spec.target {
        Target::Xid(_) => Some("transaction id"),
        Target::Name(_) => Some("restore point"),
        Target::Immediate => Some("immediate"),
        _ => None,
    };
    if let (Some(kind), None) = (needs_backup_id, &spec.backup_id) {
        return Err(RenderError::BackupIdRequired(kind));
    }
    if let Some(archive) = &spec.archive {
        let same = match (archive, &spec.source) {
            (
                Archive::Plugin {
                    object_store: w,
                    server_name: ws,
                },
                Source::Plugin {
                    object_store: r,
                    server_name: rs,
                },
            ) => w == r && ws == rs,
            (
                Archive::Inline {
                    store: w,
                    server_name: ws,
                    ..
                },
                Source::Inline {
                    store: r,
                    server_name: rs,
                },
            ) => {
                w.destination_path.trim_end_matches('/') == r.destination_path.trim_end_matches('/')
                    && ws == rs
            }
            _ => false,
        };
        if same {
            return Err(RenderError::WritesIntoSource(
                spec.source.server_name().to_owned(),
            ));
        }
    }

    let mut c = spec.template.clone();
    docs::CNPG_API.clone_into(&mut c.api_version);
    "Cluster".clone_into(&mut c.kind);
    c.rest.remove("status");
    c.metadata.name.clone_from(&spec.name);
    c.metadata.namespace = Some(spec.namespace.clone());
    for key in LIVE_METADATA {
        c.metadata.rest.remove(*key);
    }
    c.metadata.annotations.retain(|k, _| {
        k != "kubectl.kubernetes.io/last-applied-configuration"
            && k != "cnpg.io/skipEmptyWalArchiveCheck"
    });
    if let Some(n) = spec.instances {
        c.spec.instances = Some(n);
    }

    // The application database keeps the source's names: the defaulting
    // webhook would otherwise add an empty `app` database after promotion.
    let old = c.spec.bootstrap.take().unwrap_or_default();
    let (mut database, mut owner, secret) = app_database(&old);
    if let Some((d, o)) = &spec.app {
        database.clone_from(d);
        owner.clone_from(o);
    }

    let mut target = RecoveryTarget {
        backup_id: spec.backup_id.clone(),
        target_tli: spec.timeline.clone(),
        ..RecoveryTarget::default()
    };
    match &spec.target {
        Target::Latest => {}
        Target::Time(t) => target.target_time = Some(target_time(t)),
        Target::Lsn(l) => target.target_lsn = Some(l.clone()),
        Target::Xid(x) => target.target_xid = Some(x.clone()),
        Target::Name(n) => target.target_name = Some(n.clone()),
        Target::Immediate => target.target_immediate = Some(true),
    }
    let has_target = target != RecoveryTarget::default();
    let mut recovery_rest = Map::new();
    if let Some(s) = secret {
        recovery_rest.insert("secret".into(), s);
    }
    c.spec.bootstrap = Some(docs::Bootstrap {
        recovery: Some(Recovery {
            source: Some(spec.source_name.clone()),
            recovery_target: has_target.then_some(target),
            database,
            owner,
            rest: recovery_rest,
        }),
        ..docs::Bootstrap::default()
    });

    let entry = match &spec.source {
        Source::Inline { store, server_name } => ExternalCluster {
            name: spec.source_name.clone(),
            barman_object_store: Some(read_store(store, server_name)),
            ..ExternalCluster::default()
        },
        Source::Plugin {
            object_store,
            server_name,
        } => ExternalCluster {
            name: spec.source_name.clone(),
            plugin: Some(Plugin {
                name: BARMAN_PLUGIN.to_owned(),
                parameters: [
                    ("barmanObjectName".to_owned(), object_store.clone()),
                    ("serverName".to_owned(), server_name.clone()),
                ]
                .into(),
                ..Plugin::default()
            }),
            ..ExternalCluster::default()
        },
    };
    // Other sources the template names (replicas, imports) stay; ours
    // replaces an entry of the same name or comes first.
    match c
        .spec
        .external_clusters
        .iter_mut()
        .find(|e| e.name == spec.source_name)
    {
        Some(existing) => *existing = entry,
        None => c.spec.external_clusters.insert(0, entry),
    }

    // Archiving: replace whatever the template had.
    c.spec.plugins.retain(|p| p.name != BARMAN_PLUGIN);
    if let Some(b) = &mut c.spec.backup {
        b.barman_object_store = None;
        b.retention_policy = None;
    }
    match &spec.archive {
        Some(Archive::Inline {
            store,
            retention_policy,
            server_name,
        }) => {
            let mut s = (**store).clone();
            s.server_name = Some(server_name.clone());
            let b = c.spec.backup.get_or_insert_with(Default::default);
            b.barman_object_store = Some(s);
            b.retention_policy.clone_from(retention_policy);
        }
        Some(Archive::Plugin {
            object_store,
            server_name,
        }) => c.spec.plugins.push(Plugin {
            name: BARMAN_PLUGIN.to_owned(),
            is_wal_archiver: Some(true),
            parameters: [
                ("barmanObjectName".to_owned(), object_store.clone()),
                ("serverName".to_owned(), server_name.clone()),
            ]
            .into(),
            ..Plugin::default()
        }),
        None => {}
    }
    if c.spec.backup.as_ref().is_some_and(|b| {
        b.barman_object_store.is_none() && b.retention_policy.is_none() && b.rest.is_empty()
    }) {
        c.spec.backup = None;
    }

    if let Some(gsa) = &spec.gcp_service_account {
        set_gcp_service_account(&mut c, gsa);
    }
    Ok(Rendered {
        cluster: order_cluster(docs::to_value(&c)),
    })
}

/// The source store as a read-only source: credentials and endpoint kept,
/// archive-only settings dropped, the server folder written explicitly.
fn read_store(store: &BarmanObjectStore, server_name: &str) -> BarmanObjectStore {
    let mut s = store.clone();
    s.server_name = Some(server_name.to_owned());
    s.rest.remove("data");
    s.rest.remove("tags");
    s.rest.remove("historyTags");
    if let Some(Value::Object(wal)) = s.rest.get_mut("wal") {
        // Restore reads whatever compression was written; keep the parallelism.
        wal.retain(|k, _| k == "maxParallel" || k == "restoreAdditionalCommandArgs");
        if wal.is_empty() {
            s.rest.remove("wal");
        }
    }
    s
}

/// The application database and owner a Cluster's catalog holds, from its
/// bootstrap (None: CNPG's default `app`).
#[must_use]
pub fn app_names(c: &Cluster) -> (Option<String>, Option<String>) {
    let (d, o, _) = app_database(&c.spec.bootstrap.clone().unwrap_or_default());
    (d, o)
}

fn app_database(b: &docs::Bootstrap) -> (Option<String>, Option<String>, Option<Value>) {
    if let Some(r) = &b.recovery {
        return (
            r.database.clone(),
            r.owner.clone(),
            r.rest.get("secret").cloned(),
        );
    }
    let pick = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if let Some(i) = &b.initdb {
        return (
            pick(i, "database"),
            pick(i, "owner"),
            i.get("secret").cloned(),
        );
    }
    if let Some(p) = &b.pg_basebackup {
        return (
            pick(p, "database"),
            pick(p, "owner"),
            p.get("secret").cloned(),
        );
    }
    (None, None, None)
}

fn set_gcp_service_account(c: &mut Cluster, gsa: &str) {
    let template = c
        .spec
        .rest
        .entry("serviceAccountTemplate")
        .or_insert_with(|| json!({}));
    if !template.is_object() {
        *template = json!({});
    }
    let meta = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})));
    if let Some(meta) = meta {
        if !meta.is_object() {
            *meta = json!({});
        }
        if let Some(m) = meta.as_object_mut() {
            let ann = m.entry("annotations").or_insert_with(|| json!({}));
            if !ann.is_object() {
                *ann = json!({});
            }
            if let Some(a) = ann.as_object_mut() {
                a.insert(
                    "iam.gke.io/gcp-service-account".into(),
                    Value::String(gsa.to_owned()),
                );
            }
        }
    }
}

/// Puts the top level and `spec` in the order people write them: identity,
/// sizing, then bootstrap, sources and archiving last.
fn order_cluster(v: Value) -> Value {
    let Value::Object(mut top) = v else { return v };
    let mut out = Map::new();
    for k in ["apiVersion", "kind", "metadata", "spec"] {
        if let Some(x) = top.shift_remove(k) {
            out.insert(k.to_owned(), x);
        }
    }
    out.extend(top);
    if let Some(Value::Object(spec)) = out.get_mut("spec") {
        let mut ordered = Map::new();
        let first = ["instances", "imageName"];
        let last = ["bootstrap", "externalClusters", "backup", "plugins"];
        for k in first {
            if let Some(x) = spec.shift_remove(k) {
                ordered.insert(k.to_owned(), x);
            }
        }
        let rest: Vec<(String, Value)> = spec
            .iter()
            .filter(|(k, _)| !last.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ordered.extend(rest);
        for k in last {
            if let Some(x) = spec.shift_remove(k) {
                ordered.insert(k.to_owned(), x);
            }
        }
        *spec = ordered;
    }
    Value::Object(out)
}

/// A store configuration for reading from another env: every Secret it
/// references is renamed `<name>-<suffix>` (the other env's keys are not the
/// reader's own). Returns the configuration and the Secret names it now needs.
#[must_use]
pub fn with_foreign_secrets(
    store: &BarmanObjectStore,
    suffix: &str,
) -> (BarmanObjectStore, Vec<String>) {
    let mut s = store.clone();
    let mut needed = Vec::new();
    let mut rename = |name: &mut String| {
        if !name.is_empty() && !name.ends_with(&format!("-{suffix}")) {
            *name = format!("{name}-{suffix}");
        }
        if !needed.contains(name) {
            needed.push(name.clone());
        }
    };
    if let Some(c) = &mut s.s3_credentials {
        for k in [
            &mut c.access_key_id,
            &mut c.secret_access_key,
            &mut c.region,
        ]
        .into_iter()
        .flatten()
        {
            rename(&mut k.name);
        }
        if let Some(Value::Object(t)) = c.rest.get_mut("sessionToken")
            && let Some(Value::String(n)) = t.get_mut("name")
        {
            rename(n);
        }
    }
    if let Some(k) = s
        .google_credentials
        .as_mut()
        .and_then(|g| g.application_credentials.as_mut())
    {
        rename(&mut k.name);
    }
    if let Some(a) = &mut s.azure_credentials {
        for v in a.values_mut() {
            if let Some(Value::String(n)) = v.as_object_mut().and_then(|o| o.get_mut("name")) {
                rename(n);
            }
        }
    }
    if let Some(Value::Object(ca)) = s.rest.get_mut("endpointCA")
        && let Some(Value::String(n)) = ca.get_mut("name")
    {
        rename(n);
    }
    (s, needed)
}

/// An ObjectStore for `destination_path`, copying credentials and settings
/// from `like` (a source store's configuration); `serverName` is never set
/// (the plugin forbids it there).
#[must_use]
pub fn object_store(
    name: &str,
    namespace: &str,
    like: &BarmanObjectStore,
    destination_path: &str,
    retention_policy: Option<&str>,
) -> Value {
    let mut configuration = like.clone();
    configuration.server_name = None;
    destination_path.clone_into(&mut configuration.destination_path);
    let store = ObjectStore {
        api_version: docs::OBJECT_STORE_API.to_owned(),
        kind: "ObjectStore".to_owned(),
        metadata: docs::Meta {
            name: name.to_owned(),
            namespace: Some(namespace.to_owned()),
            ..docs::Meta::default()
        },
        spec: docs::ObjectStoreSpec {
            configuration,
            retention_policy: retention_policy.map(str::to_owned),
            ..docs::ObjectStoreSpec::default()
        },
        rest: Map::new(),
    };
    docs::to_value(&store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_times_carry_their_offset_in_postgres_form() {
        let t = DateTime::parse_from_rfc3339("2026-05-01T10:00:00+02:00").unwrap();
        assert_eq!(target_time(&t), "2026-05-01 10:00:00.000000+02:00");
        let u = DateTime::parse_from_rfc3339("2026-05-01T08:00:00.123456Z").unwrap();
        assert_eq!(target_time(&u), "2026-05-01 08:00:00.123456+00:00");
    }

    fn template() -> Cluster {
        docs::from_value(&json!({
            "apiVersion": docs::CNPG_API, "kind": "Cluster",
            "metadata": {"name": "orders", "namespace": "orders", "uid": "x", "resourceVersion": "9",
                         "annotations": {"cnpg.io/skipEmptyWalArchiveCheck": "enabled", "team": "payments"}},
            "spec": {"instances": 3, "storage": {"size": "5Gi"},
                     "bootstrap": {"initdb": {"database": "orders", "owner": "orders"}}},
            "status": {"phase": "Cluster in healthy state"}
        }))
        .unwrap()
    }

    fn azure_store() -> BarmanObjectStore {
        docs::from_value(&json!({
            "destinationPath": "https://acme.blob.core.windows.net/pg/",
            "azureCredentials": {"storageAccount": {"name": "azure-creds", "key": "account"},
                                 "storageSasToken": {"name": "azure-creds", "key": "sas"}},
            "wal": {"compression": "snappy", "maxParallel": 4},
            "data": {"compression": "bzip2"}
        }))
        .unwrap()
    }

    #[test]
    fn azure_inline_recovery_validates_and_names_the_source_folder() {
        let spec = RecoverySpec {
            template: template(),
            name: "orders-restore".into(),
            namespace: "orders".into(),
            source_name: "orders-origin".into(),
            source: Source::Inline {
                store: Box::new(azure_store()),
                server_name: "orders".into(),
            },
            target: Target::Lsn("1/2A000028".into()),
            backup_id: Some("20260501T020000".into()),
            timeline: Some("2".into()),
            archive: Some(Archive::Inline {
                store: Box::new(azure_store()),
                retention_policy: Some("7d".into()),
                server_name: "orders-restore".into(),
            }),
            gcp_service_account: None,
            instances: None,
            app: None,
        };
        let v = recovery_cluster(&spec).unwrap().cluster;
        assert!(crate::gitops::schema::validate(&v).unwrap().is_empty());
        assert!(
            crate::gitops::webhook::validate(&v)
                .iter()
                .all(|x| x.severity != crate::gitops::webhook::Severity::Error)
        );
        let ext = &v["spec"]["externalClusters"][0]["barmanObjectStore"];
        assert_eq!(ext["serverName"], "orders");
        assert_eq!(ext["wal"], json!({"maxParallel": 4}));
        assert!(ext.get("data").is_none());
        assert_eq!(
            ext["azureCredentials"]["storageSasToken"]["name"],
            "azure-creds"
        );
        let t = &v["spec"]["bootstrap"]["recovery"]["recoveryTarget"];
        assert_eq!(
            t,
            &json!({"backupID": "20260501T020000", "targetLSN": "1/2A000028", "targetTLI": "2"})
        );
        assert_eq!(v["spec"]["bootstrap"]["recovery"]["database"], "orders");
        assert_eq!(
            v["spec"]["backup"]["barmanObjectStore"]["serverName"],
            "orders-restore"
        );
        assert_eq!(v["spec"]["instances"], 3);
        // Live metadata, status and the empty-archive escape hatch are dropped.
        assert_eq!(
            v["metadata"],
            json!({"name": "orders-restore", "namespace": "orders", "annotations": {"team": "payments"}})
        );
        assert!(v.get("status").is_none());
    }

    #[test]
    fn writing_into_the_source_folder_is_refused() {
        let spec = RecoverySpec {
            template: template(),
            name: "orders".into(),
            namespace: "orders".into(),
            source_name: "origin".into(),
            source: Source::Plugin {
                object_store: "s".into(),
                server_name: "orders".into(),
            },
            target: Target::Latest,
            backup_id: None,
            timeline: None,
            archive: Some(Archive::Plugin {
                object_store: "s".into(),
                server_name: "orders".into(),
            }),
            gcp_service_account: None,
            instances: None,
            app: None,
        };
        assert_eq!(
            recovery_cluster(&spec),
            Err(RenderError::WritesIntoSource("orders".into()))
        );
        let bad = RecoverySpec {
            source_name: "a/b".into(),
            ..spec
        };
        assert!(matches!(
            recovery_cluster(&bad),
            Err(RenderError::BadSourceName(_))
        ));
    }

    #[test]
    fn foreign_secrets_are_renamed() {
        let (s, needed) = with_foreign_secrets(&azure_store(), "prod");
        assert_eq!(needed, ["azure-creds-prod"]);
        assert_eq!(
            s.azure_credentials.unwrap()["storageAccount"]["name"],
            "azure-creds-prod"
        );
    }

    #[test]
    fn server_name_generations() {
        assert_eq!(next_server_name("foo-pg", None), "foo-pg-g2");
        assert_eq!(next_server_name("foo-pg", Some("foo-pg")), "foo-pg-g2");
        assert_eq!(next_server_name("foo-pg", Some("foo-pg-g2")), "foo-pg-g3");
        assert_eq!(next_server_name("foo-pg", Some("foo-pg-g10")), "foo-pg-g11");
        assert_eq!(next_server_name("foo-pg", Some("other")), "foo-pg-g2");
    }
}
