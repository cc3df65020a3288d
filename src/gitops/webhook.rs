//! The CloudNativePG admission rules that the CRD schemas do not carry.
//!
//! Every function here is pure: it takes one Kubernetes object, already parsed
//! into a `serde_json::Value`, and returns what the CNPG validating webhook
//! (operator v1.30.0, barman-cloud v0.5.1) would say about it: errors that make
//! the API server reject the object, and admission warnings. Messages are the
//! webhook's own wording wherever upstream has one.
//!
//! Fidelity notes:
//!
//! - A field counts as set when its key is present with a non-null value, the
//!   way Go decodes it into a pointer or a map (`initdb: {}` is set,
//!   `targetImmediate: false` is set).
//! - Defaults the API server applies before the webhook runs are applied
//!   here too (`Backup.spec.method` defaults to `barmanObjectStore`,
//!   `plugins[].enabled` to true).
//! - Paths are the upstream paths, except where upstream reports a path that
//!   does not exist in the document (the credential checks report
//!   `awsCredentials` and `spec.backupConfiguration.googleCredentials`, the
//!   volume snapshot checks `recovery.storage` and `recovery.dataSource`):
//!   there the real path of the offending field is used.
//! - A few rules go beyond admission because the configuration fails later
//!   anyway; each function's documentation names them. They are reported as
//!   errors (the configuration does not work) or warnings (it works, but not
//!   as written).
//!
//! [`parse_cron`] is a port of `cron.Parse` from robfig/cron v1.2.0, the
//! parser the webhook and the ScheduledBackup controller use, so the lint and
//! the audit can compute when backups actually run.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use serde::Serialize;
use serde_json::Value;

/// How the API server treats a [`Violation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The object is rejected (or, for the rules documented as going beyond
    /// admission, the configuration fails when the operator uses it).
    Error,
    /// The object is admitted with an admission warning (or, for the rules
    /// documented as going beyond admission, it works but not as written).
    Warning,
}

/// One finding about a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON path of the offending field, e.g. `spec.externalClusters[0].name`.
    pub path: String,
    /// Rejection or warning.
    pub severity: Severity,
    /// The webhook's own wording where upstream has one.
    pub message: String,
}

impl Violation {
    fn error(path: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            severity: Severity::Error,
            message: message.into(),
        }
    }

    fn warning(path: impl Into<String>, message: impl Into<String>) -> Violation {
        Violation {
            path: path.into(),
            severity: Severity::Warning,
            message: message.into(),
        }
    }
}

/// API group and version of the CNPG kinds.
const CNPG_API_VERSION: &str = "postgresql.cnpg.io/v1";
/// API group and version of the Barman Cloud plugin's `ObjectStore`.
const BARMAN_CLOUD_API_VERSION: &str = "barmancloud.cnpg.io/v1";

/// Validates one object, dispatching on `apiVersion` and `kind`: `Cluster`,
/// `Backup`, `ScheduledBackup` and `Database` of `postgresql.cnpg.io/v1`, and
/// `ObjectStore` of `barmancloud.cnpg.io/v1`. Anything else has no rules here
/// and yields nothing.
#[must_use]
pub fn validate(doc: &Value) -> Vec<Violation> {
    let api_version = str_at(doc, "apiVersion");
    let kind = str_at(doc, "kind");
    match (api_version, kind) {
        (CNPG_API_VERSION, "Cluster") => validate_cluster(doc),
        (CNPG_API_VERSION, "Backup") => validate_backup(doc),
        (CNPG_API_VERSION, "ScheduledBackup") => validate_scheduled_backup(doc),
        (CNPG_API_VERSION, "Database") => validate_database(doc),
        (BARMAN_CLOUD_API_VERSION, "ObjectStore") => validate_object_store(doc),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// JSON access

/// The value under `key` when it is present and not null.
fn field<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

/// The string under `key`, or "" when it is absent or not a string.
fn str_at<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Whether `key` holds the boolean `true`.
fn is_true(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool) == Some(true)
}

/// The array under `key`, or an empty slice.
fn array_at<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

// ---------------------------------------------------------------------------
// Cluster

const RECOVERY: &str = "spec.bootstrap.recovery";
const RECOVERY_TARGET: &str = "spec.bootstrap.recovery.recoveryTarget";
const MISSING_CREDENTIALS: &str = "missing credentials. \
     One and only one of azureCredentials, s3Credentials and googleCredentials are required";
const TOO_MANY_CREDENTIALS: &str = "too many credentials. \
     One and only one of azureCredentials, s3Credentials and googleCredentials are required";
const UNSAFE_PATH_COMPONENT: &str = "cannot contain a path separator or a '..' component";

/// Validates a `Cluster`: the bootstrap method, the recovery source and
/// target, `pg_basebackup.source`, `externalClusters`, the in-tree
/// `spec.backup.barmanObjectStore` credentials and the WAL archiver plugins;
/// warns about the deprecated in-tree Barman Cloud support and a
/// `retentionPolicy` without `barmanObjectStore`.
///
/// Beyond admission: the credentials of every `externalClusters[].barmanObjectStore`
/// (the webhook checks only `spec.backup`'s; the operator fails on them when
/// it restores), a `targetTime` the webhook's parser accepts by normalising
/// out-of-range fields while PostgreSQL refuses it (warning), and a recovery
/// with both `backup` and `source` (documented as exclusive, admitted; warning).
#[must_use]
pub fn validate_cluster(doc: &Value) -> Vec<Violation> {
    let Some(spec) = field(doc, "spec") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let bootstrap = field(spec, "bootstrap");
    let recovery = bootstrap.and_then(|b| field(b, "recovery"));
    let external = array_at(spec, "externalClusters");

    if let Some(bootstrap) = bootstrap {
        let methods = ["initdb", "recovery", "pg_basebackup"]
            .iter()
            .filter(|m| field(bootstrap, m).is_some())
            .count();
        if methods > 1 {
            out.push(Violation::error(
                "spec.bootstrap",
                "Only one bootstrap method can be specified at a time",
            ));
        }
    }

    if let Some(recovery) = recovery
        && let Some(target) = field(recovery, "recoveryTarget")
    {
        out.extend(recovery_target_rules(
            target,
            field(recovery, "volumeSnapshots").is_some(),
        ));
    }

    if let Some(basebackup) = bootstrap.and_then(|b| field(b, "pg_basebackup")) {
        let source = str_at(basebackup, "source");
        if find_external_cluster(external, source).is_none() {
            out.push(Violation::error(
                "spec.bootstrap.pg_basebackup.source",
                format!("External cluster {source} not found"),
            ));
        }
    }

    if let Some(recovery) = recovery {
        out.extend(recovery_source_rules(recovery, external));
        out.extend(recovery_volume_snapshot_rules(recovery, spec));
    }

    out.extend(external_cluster_rules(external));

    if let Some(store) = field(spec, "backup").and_then(|b| field(b, "barmanObjectStore")) {
        out.extend(validate_barman_object_store(
            store,
            "spec.backup.barmanObjectStore",
        ));
    }

    out.extend(plugin_rules(spec));

    for (index, cluster) in external.iter().enumerate() {
        if let Some(store) = field(cluster, "barmanObjectStore") {
            out.extend(validate_barman_object_store(
                store,
                &format!("spec.externalClusters[{index}].barmanObjectStore"),
            ));
        }
    }

    if let Some(recovery) = recovery
        && field(recovery, "backup").is_some()
        && !str_at(recovery, "source").is_empty()
    {
        out.push(Violation::warning(
            format!("{RECOVERY}.backup"),
            "backup and source are mutually exclusive: the webhook admits both, and the \
                 operator then restores through the plugin when source names a plugin external \
                 cluster, from the Backup object otherwise",
        ));
    }

    out.extend(in_tree_barman_warning(spec, external));

    if let Some(backup) = field(spec, "backup")
        && !str_at(backup, "retentionPolicy").is_empty()
        && field(backup, "barmanObjectStore").is_none()
    {
        out.push(Violation::warning(
                "spec.backup.retentionPolicy",
                "Retention policies specified in .spec.backup.retentionPolicy are only used by the \
                 in-tree barman-cloud support, which is not being used in this cluster. \
                 Please use a backup plugin and migrate this configuration to the plugin configuration",
            ));
    }

    out
}

/// The first `externalClusters` entry called `name`, as the operator looks it up.
fn find_external_cluster<'a>(external: &'a [Value], name: &str) -> Option<&'a Value> {
    external.iter().find(|c| str_at(c, "name") == name)
}

/// `recovery.source` must name an external cluster that can be recovered from.
fn recovery_source_rules(recovery: &Value, external: &[Value]) -> Vec<Violation> {
    let source = str_at(recovery, "source");
    if source.is_empty() {
        return Vec::new();
    }
    let path = format!("{RECOVERY}.source");
    let mut out = Vec::new();
    let found = find_external_cluster(external, source);
    if found.is_none() {
        out.push(Violation::error(
            &path,
            format!("External cluster {source} not found"),
        ));
    }
    // Upstream looks the entry up as a zero value when it is missing, so a
    // missing entry also gets this second error.
    let usable = found.is_some_and(|c| {
        ["connectionParameters", "barmanObjectStore", "plugin"]
            .iter()
            .any(|k| field(c, k).is_some())
    });
    if !usable {
        out.push(Violation::error(
            &path,
            format!(
                "External cluster {source} cannot be used for recovery: \
                 missing connection parameters, Barman, or CNPG-i configuration"
            ),
        ));
    }
    out
}

/// `recovery.volumeSnapshots` excludes `backup` and `recoveryTarget.backupID`
/// and takes only VolumeSnapshots and PVCs.
fn recovery_volume_snapshot_rules(recovery: &Value, spec: &Value) -> Vec<Violation> {
    let Some(snapshots) = field(recovery, "volumeSnapshots") else {
        return Vec::new();
    };
    if field(recovery, "backup").is_some() {
        return vec![Violation::error(
            format!("{RECOVERY}.backup"),
            "Recovery from dataSource is not compatible with other types of recovery",
        )];
    }
    let backup_id = field(recovery, "recoveryTarget").map_or("", |t| str_at(t, "backupID"));
    if !backup_id.is_empty() {
        return vec![Violation::error(
            format!("{RECOVERY_TARGET}.backupID"),
            "Cannot specify a backupID when recovering using a DataSource",
        )];
    }
    let mut out = Vec::new();
    let base = format!("{RECOVERY}.volumeSnapshots");
    if let Some(storage) = field(snapshots, "storage") {
        out.extend(snapshot_source_rule(storage, &format!("{base}.storage")));
    }
    if let Some(wal) = field(snapshots, "walStorage") {
        let path = format!("{base}.walStorage");
        if field(spec, "walStorage").is_none() {
            out.push(Violation::error(
                &path,
                "A WAL storage configuration is required when recovering using a DataSource for WALs",
            ));
        }
        out.extend(snapshot_source_rule(wal, &path));
    }
    out
}

/// A volume snapshot source is a `VolumeSnapshot` or a `PersistentVolumeClaim`.
fn snapshot_source_rule(reference: &Value, path: &str) -> Option<Violation> {
    let group = str_at(reference, "apiGroup");
    let kind = str_at(reference, "kind");
    let supported = (group == "snapshot.storage.k8s.io" && kind == "VolumeSnapshot")
        || (group.is_empty() && kind == "PersistentVolumeClaim");
    (!supported).then(|| {
        Violation::error(
            path,
            "Only VolumeSnapshots and PersistentVolumeClaims are supported",
        )
    })
}

/// The `recoveryTarget` rules of the webhook.
fn recovery_target_rules(target: &Value, from_snapshots: bool) -> Vec<Violation> {
    let mut out = Vec::new();
    let time = str_at(target, "targetTime");
    let lsn = str_at(target, "targetLSN");
    let xid = str_at(target, "targetXID");
    let name = str_at(target, "targetName");
    let immediate = field(target, "targetImmediate").is_some();

    let targets = [
        !time.is_empty(),
        !lsn.is_empty(),
        !xid.is_empty(),
        !name.is_empty(),
        immediate,
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if targets > 1 {
        out.push(Violation::error(
            RECOVERY_TARGET,
            "Recovery target options are mutually exclusive",
        ));
    }

    if !time.is_empty() {
        match parse_target_time(time) {
            TargetTime::Invalid => {
                out.push(Violation::error(
                    RECOVERY_TARGET,
                    "The format of TargetTime is invalid",
                ));
            }
            TargetTime::Postgres(fields) if !fields.in_postgres_range() => {
                out.push(Violation::warning(
                    format!("{RECOVERY_TARGET}.targetTime"),
                    format!(
                        "the webhook accepts {time:?} by normalising out-of-range fields, but \
                         the operator passes it to PostgreSQL unchanged and recovery fails \
                         with \"date/time field value out of range\""
                    ),
                ));
            }
            TargetTime::Postgres(_) | TargetTime::Rfc3339 => {}
        }
    }

    if !lsn.is_empty() && !is_valid_lsn(lsn) {
        out.push(Violation::error(RECOVERY_TARGET, "Invalid TargetLSN"));
    }

    // strconv.ParseUint(xid, 10, 32): digits only (no sign), within 32 bits.
    let xid_valid = xid.bytes().all(|b| b.is_ascii_digit()) && xid.parse::<u32>().is_ok();
    if !xid.is_empty() && !xid_valid {
        out.push(Violation::error(
            format!("{RECOVERY_TARGET}.targetXID"),
            "recovery target xid must be a non-negative 32-bit integer",
        ));
    }

    if name.len() >= 64 {
        out.push(Violation::error(
            format!("{RECOVERY_TARGET}.targetName"),
            "recovery target name must be shorter than 64 bytes",
        ));
    }
    if name.chars().any(|c| c < '\u{20}' || c == '\u{7f}') {
        out.push(Violation::error(
            format!("{RECOVERY_TARGET}.targetName"),
            "recovery target name must not contain ASCII control characters",
        ));
    }

    let label_based = !name.is_empty() || !xid.is_empty() || immediate;
    if label_based && !from_snapshots && str_at(target, "backupID").is_empty() {
        out.push(Violation::error(RECOVERY_TARGET, "BackupID is missing"));
    }

    let tli = str_at(target, "targetTLI");
    if !matches!(tli, "" | "latest") && !go_atoi(tli.as_bytes()).is_ok_and(|n| n >= 1) {
        out.push(Violation::error(
            format!("{RECOVERY_TARGET}.targetTLI"),
            "recovery target timeline can be set to 'latest' or a positive integer",
        ));
    }

    out
}

/// An LSN as the webhook parses it: two hexadecimal numbers separated by `/`,
/// each fitting in 64 bits (their combination may overflow, unchecked).
fn is_valid_lsn(lsn: &str) -> bool {
    let mut parts = lsn.split('/');
    let (Some(high), Some(low), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    [high, low].iter().all(|p| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_hexdigit())
            && u64::from_str_radix(p, 16).is_ok()
    })
}

/// Each external cluster needs a way to reach it and a name usable as a file
/// name; names are unique.
fn external_cluster_rules(external: &[Value]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for (index, cluster) in external.iter().enumerate() {
        let path = format!("spec.externalClusters[{index}]");
        let name = str_at(cluster, "name");
        if !names.contains(&name) {
            names.push(name);
        }
        if ["connectionParameters", "barmanObjectStore", "plugin"]
            .iter()
            .all(|k| field(cluster, k).is_none())
        {
            out.push(Violation::error(
                &path,
                "one of connectionParameters, plugin and barmanObjectStore is required",
            ));
        }
        if is_unsafe_path_component(name) {
            out.push(Violation::error(
                format!("{path}.name"),
                UNSAFE_PATH_COMPONENT,
            ));
        }
        for selector in ["sslCert", "sslKey", "sslRootCert"] {
            let Some(reference) = field(cluster, selector) else {
                continue;
            };
            for key in ["name", "key"] {
                if is_unsafe_path_component(str_at(reference, key)) {
                    out.push(Violation::error(
                        format!("{path}.{selector}.{key}"),
                        UNSAFE_PATH_COMPONENT,
                    ));
                }
            }
        }
    }
    if names.len() != external.len() {
        out.push(Violation::error(
            "spec.externalClusters",
            "the list of external clusters contains duplicate values",
        ));
    }
    out
}

/// A value that would escape the directory it is joined into.
fn is_unsafe_path_component(value: &str) -> bool {
    value == "." || value == ".." || value.contains(['/', '\\'])
}

/// At most one enabled WAL archiver plugin, and none next to the in-tree
/// `barmanObjectStore`.
fn plugin_rules(spec: &Value) -> Vec<Violation> {
    let archivers = array_at(spec, "plugins")
        .iter()
        .filter(|p| p.get("enabled").and_then(Value::as_bool) != Some(false))
        .filter(|p| is_true(p, "isWALArchiver"))
        .count();
    let in_tree = field(spec, "backup")
        .and_then(|b| field(b, "barmanObjectStore"))
        .is_some();
    let mut out = Vec::new();
    if in_tree && archivers > 0 {
        out.push(Violation::error(
            "spec.plugins",
            "Cannot enable a WAL archiver plugin when barmanObjectStore is configured",
        ));
    }
    if archivers > 1 {
        out.push(Violation::error(
            "spec.plugins",
            "Cannot enable more than one WAL archiver plugin",
        ));
    }
    out
}

/// The deprecation warning for in-tree Barman Cloud, listing every use the way
/// upstream renders the paths (`spec.externalClusters.0.barmanObjectStore`).
fn in_tree_barman_warning(spec: &Value, external: &[Value]) -> Option<Violation> {
    let mut paths = Vec::new();
    let mut rendered = Vec::new();
    if field(spec, "backup")
        .and_then(|b| field(b, "barmanObjectStore"))
        .is_some()
    {
        paths.push("spec.backup.barmanObjectStore".to_owned());
        rendered.push("spec.backup.barmanObjectStore".to_owned());
    }
    for (index, cluster) in external.iter().enumerate() {
        if field(cluster, "barmanObjectStore").is_some() {
            paths.push(format!("spec.externalClusters[{index}].barmanObjectStore"));
            rendered.push(format!("spec.externalClusters.{index}.barmanObjectStore"));
        }
    }
    let first = paths.into_iter().next()?;
    Some(Violation::warning(
        first,
        format!(
            "Native support for Barman Cloud backups and recovery is deprecated and will be \
             completely removed in CloudNativePG 1.31.0. Found usage in: {}. \
             Please migrate existing clusters to the new Barman Cloud Plugin to ensure a smooth transition.",
            rendered.join(", ")
        ),
    ))
}

// ---------------------------------------------------------------------------
// Barman object store credentials

/// The credential rules of barman-cloud's `ValidateBackupConfiguration` for one
/// `BarmanObjectStoreConfiguration` at `path` (`spec.backup.barmanObjectStore`,
/// `spec.externalClusters[N].barmanObjectStore`, an ObjectStore's
/// `spec.configuration`): exactly one of `s3Credentials`, `googleCredentials`,
/// `azureCredentials`, each complete.
///
/// Faithful to upstream, which assigns instead of appending: when several
/// credential blocks are present, only the last one checked (Azure, then S3,
/// then Google) has its own errors reported, next to "too many credentials".
#[must_use]
pub fn validate_barman_object_store(store: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut count = 0;
    if let Some(azure) = field(store, "azureCredentials") {
        count += 1;
        out = azure_rules(azure, &format!("{path}.azureCredentials"));
    }
    if let Some(s3) = field(store, "s3Credentials") {
        count += 1;
        out = s3_rules(s3, &format!("{path}.s3Credentials"));
    }
    if let Some(google) = field(store, "googleCredentials") {
        count += 1;
        out = google_rules(google, &format!("{path}.googleCredentials"));
    }
    if count == 0 {
        out.push(Violation::error(path, MISSING_CREDENTIALS));
    }
    if count > 1 {
        out.push(Violation::error(path, TOO_MANY_CREDENTIALS));
    }
    out
}

fn s3_rules(s3: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut methods = 0;
    if is_true(s3, "inheritFromIAMRole") {
        methods += 1;
    }
    let key_id = field(s3, "accessKeyId").is_some();
    let secret = field(s3, "secretAccessKey").is_some();
    if key_id || secret {
        methods += 1;
        if !(key_id && secret) {
            out.push(Violation::error(
                path,
                "when using AWS credentials both accessKeyId and secretAccessKey must be provided",
            ));
        }
    }
    if methods == 0 {
        out.push(Violation::error(
            path,
            "at least one AWS authentication method should be supplied",
        ));
    }
    if methods > 1 {
        out.push(Violation::error(
            path,
            "only one AWS authentication method should be supplied",
        ));
    }
    out
}

fn google_rules(google: &Value, path: &str) -> Vec<Violation> {
    let gke = is_true(google, "gkeEnvironment");
    let secret = field(google, "applicationCredentials").is_some();
    match (gke, secret) {
        (false, false) => vec![Violation::error(
            path,
            "if gkeEnvironment is false, secret with credentials must be provided",
        )],
        (true, true) => vec![Violation::error(
            path,
            "if gkeEnvironment is true, secret with credentials must not be provided",
        )],
        _ => Vec::new(),
    }
}

fn azure_rules(azure: &Value, path: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let connection_string = field(azure, "connectionString").is_some();
    let account = field(azure, "storageAccount").is_some();
    let key = field(azure, "storageKey").is_some();
    let sas = field(azure, "storageSasToken").is_some();
    let methods = [
        is_true(azure, "inheritFromAzureAD"),
        is_true(azure, "useDefaultAzureCredentials"),
        key,
        sas,
    ]
    .iter()
    .filter(|m| **m)
    .count();
    if methods != 1 && !connection_string {
        out.push(Violation::error(
            path,
            "when connection string is not specified, one and only one of storage key, \
             storage SAS token, Azure AD authentication, or default Azure credentials is required",
        ));
    }
    if (methods != 0 || account) && connection_string {
        out.push(Violation::error(
            path,
            "when connection string is specified, the other parameters must be empty",
        ));
    }
    if (key || sas) && !account {
        out.push(Violation::error(
            path,
            "storage account must be specified when using storage key or SAS token",
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// Backup, ScheduledBackup, Database, ObjectStore

const PLUGIN_CONFIGURATION_EMPTY: &str = "cannot be empty when the backup method is plugin";

/// The backup method after the CRD default (`barmanObjectStore`).
fn backup_method(spec: &Value) -> &str {
    match str_at(spec, "method") {
        "" => "barmanObjectStore",
        method => method,
    }
}

/// Whether `pluginConfiguration` is missing or has no name.
fn plugin_configuration_empty(spec: &Value) -> bool {
    field(spec, "pluginConfiguration").is_none_or(|c| str_at(c, "name").is_empty())
}

/// Validates a `Backup`: `pluginConfiguration` with `method: plugin`;
/// `online`/`onlineConfiguration` refused with `method: barmanObjectStore`
/// (the default); the `cnpg.io/volumeSnapshotDeadline` annotation an integer.
///
/// Faithful to upstream: `online` with `method: plugin` is admitted (and
/// ignored by the operator), although the message speaks of volumeSnapshot.
#[must_use]
pub fn validate_backup(doc: &Value) -> Vec<Violation> {
    let Some(spec) = field(doc, "spec") else {
        return Vec::new();
    };
    let mut out = online_rules(
        spec,
        "Online parameter can be specified only if the backup method is volumeSnapshot",
        "OnlineConfiguration parameter can be specified only if the backup method is volumeSnapshot",
    );
    if backup_method(spec) == "plugin" && plugin_configuration_empty(spec) {
        out.push(Violation::error(
            "spec.pluginConfiguration",
            PLUGIN_CONFIGURATION_EMPTY,
        ));
    }
    let deadline = field(doc, "metadata")
        .and_then(|m| field(m, "annotations"))
        .map_or("", |a| str_at(a, "cnpg.io/volumeSnapshotDeadline"));
    if !deadline.is_empty() && go_atoi(deadline.as_bytes()).is_err() {
        out.push(Violation::error(
            "metadata.annotations.cnpg.io/volumeSnapshotDeadline",
            "must be an integer",
        ));
    }
    out
}

fn online_rules(spec: &Value, online: &str, online_configuration: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    if backup_method(spec) == "barmanObjectStore" {
        if field(spec, "online").is_some() {
            out.push(Violation::error("spec.online", online));
        }
        if field(spec, "onlineConfiguration").is_some() {
            out.push(Violation::error(
                "spec.onlineConfiguration",
                online_configuration,
            ));
        }
    }
    out
}

/// Validates a `ScheduledBackup`: the schedule must parse as robfig/cron
/// v1.2.0 `cron.Parse` does (error with the parser's message), and a schedule
/// that parses but does not have exactly six whitespace-separated fields gets
/// the webhook's warning — descriptors such as `@daily` included, as upstream
/// counts fields without looking at them. `online`/`onlineConfiguration` are
/// refused with `method: barmanObjectStore` (the default).
///
/// Beyond admission: `pluginConfiguration` with `method: plugin`. The
/// ScheduledBackup webhook does not check it, but every Backup the schedule
/// creates is then refused by the Backup webhook with this message.
#[must_use]
pub fn validate_scheduled_backup(doc: &Value) -> Vec<Violation> {
    let Some(spec) = field(doc, "spec") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let schedule = str_at(spec, "schedule");
    match parse_cron(schedule) {
        Err(message) => out.push(Violation::error("spec.schedule", message)),
        Ok(parsed) if parsed.field_count() != 6 => out.push(Violation::warning(
            "spec.schedule",
            "Schedule parameter may not have the right number of arguments \
             (usually six arguments are needed)",
        )),
        Ok(_) => {}
    }
    out.extend(online_rules(
        spec,
        "Online parameter can be specified only if the method is volumeSnapshot",
        "OnlineConfiguration parameter can be specified only if the method is volumeSnapshot",
    ));
    if backup_method(spec) == "plugin" && plugin_configuration_empty(spec) {
        out.push(Violation::error(
            "spec.pluginConfiguration",
            PLUGIN_CONFIGURATION_EMPTY,
        ));
    }
    out
}

/// Validates a `Database`: `spec.name` may not be `postgres`, `template0` or
/// `template1` (CEL rules of the CRD, reported with their messages).
#[must_use]
pub fn validate_database(doc: &Value) -> Vec<Violation> {
    let name = field(doc, "spec").map_or("", |s| str_at(s, "name"));
    match name {
        "postgres" | "template0" | "template1" => vec![Violation::error(
            "spec.name",
            format!("the name {name} is reserved"),
        )],
        _ => Vec::new(),
    }
}

/// Validates a Barman Cloud plugin `ObjectStore`: `spec.configuration.serverName`
/// is refused (a CEL rule of the CRD, with its message).
///
/// Beyond admission: the plugin has no webhook, so the credential rules of
/// [`validate_barman_object_store`] are not enforced when the object is
/// created; they are reported here because the sidecar fails at run time on a
/// configuration without credentials, or does not use the one written.
#[must_use]
pub fn validate_object_store(doc: &Value) -> Vec<Violation> {
    let Some(configuration) = field(doc, "spec").and_then(|s| field(s, "configuration")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if field(configuration, "serverName").is_some() {
        out.push(Violation::error(
            "spec.configuration.serverName",
            "use the 'serverName' plugin parameter in the Cluster resource",
        ));
    }
    out.extend(validate_barman_object_store(
        configuration,
        "spec.configuration",
    ));
    out
}

// ---------------------------------------------------------------------------
// Go number parsing

/// Why a Go `strconv` integer parse failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumError {
    Syntax,
    Range,
}

/// `strconv.Atoi` on a 64-bit platform: an optional sign and at least one
/// decimal digit, fitting in an `i64`.
fn go_atoi(s: &[u8]) -> Result<i64, NumError> {
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(NumError::Syntax);
    }
    let mut n: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(NumError::Syntax);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(NumError::Range)?;
    }
    if negative {
        0i64.checked_sub_unsigned(n).ok_or(NumError::Range)
    } else {
        i64::try_from(n).map_err(|_| NumError::Range)
    }
}

/// The `strconv.Atoi` error text for `s`.
fn go_atoi_error(s: &str, error: NumError) -> String {
    let reason = match error {
        NumError::Syntax => "invalid syntax",
        NumError::Range => "value out of range",
    };
    format!("strconv.Atoi: parsing {}: {reason}", go_quote(s))
}

/// `strconv.Quote`, close enough for error messages: printable characters as
/// they are, the usual escapes, `\xNN` for other ASCII and `\u`/`\U` beyond.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() || c.is_whitespace() && c != ' ' => {
                if u32::from(c) < 0x1_0000 {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                } else {
                    let _ = write!(out, "\\U{:08x}", u32::from(c));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// targetTime

/// The calendar fields of a `targetTime`, as written (before any
/// normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetTimeFields {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

impl TargetTimeFields {
    /// Whether PostgreSQL's timestamp input takes these fields as they are.
    fn in_postgres_range(&self) -> bool {
        let days = u32::try_from(self.month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .and_then(|m| i32::try_from(self.year).ok().map(|y| days_in_month(y, m)));
        let Some(days) = days else {
            return false;
        };
        let midnight_24 = self.hour == 24 && self.minute == 0 && self.second == 0;
        (1..=i64::from(days)).contains(&self.day)
            && ((0..=23).contains(&self.hour) || midnight_24)
            && (0..=59).contains(&self.minute)
            && (0..=60).contains(&self.second)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    match (
        NaiveDate::from_ymd_opt(year, month, 1),
        NaiveDate::from_ymd_opt(next_year, next_month, 1),
    ) {
        (Some(first), Some(next)) => u32::try_from((next - first).num_days()).unwrap_or(31),
        _ => 31,
    }
}

/// How `ParseTargetTime` read a `targetTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetTime {
    /// PostgreSQL timestamp syntax, which the operator hands to PostgreSQL
    /// unchanged; the fields as written.
    Postgres(TargetTimeFields),
    /// One of the RFC 3339 forms, checked field by field by Go.
    Rfc3339,
    /// None of the accepted formats.
    Invalid,
}

/// `ParseTargetTime` of cloudnative-pg/machinery: PostgreSQL timestamp syntax
/// as lib/pq parses it, then RFC 3339 with exactly six fraction digits, RFC
/// 3339, and RFC 3339 without a zone, as Go's `time.Parse` reads them.
fn parse_target_time(value: &str) -> TargetTime {
    if let Some(fields) = parse_pq_timestamp(value) {
        TargetTime::Postgres(fields)
    } else if go_parse_time(value, GoFraction::ExactlySix, true)
        || go_parse_time(value, GoFraction::Optional, true)
        || go_parse_time(value, GoFraction::Optional, false)
    {
        TargetTime::Rfc3339
    } else {
        TargetTime::Invalid
    }
}

/// lib/pq v1.12.3 `ParseTimestamp`, accept/reject only: fixed positions after
/// the first `-`, each number read with `strconv.Atoi` (so a sign is taken),
/// optional fraction, offset `±HH[:MM[:SS]]` or `Z`, optional ` BC`.
fn parse_pq_timestamp(value: &str) -> Option<TargetTimeFields> {
    let b = value.as_bytes();
    let len = b.len();
    let atoi = |begin: usize, end: usize| -> Option<i64> {
        if begin > end || end > len {
            return None;
        }
        go_atoi(&b[begin..end]).ok()
    };
    let expect = |c: u8, pos: usize| -> Option<()> { (pos < len && b[pos] == c).then_some(()) };

    let month_sep = b.iter().position(|&c| c == b'-')?;
    let year = atoi(0, month_sep)?;
    let day_sep = month_sep + 3;
    let month = atoi(month_sep + 1, day_sep)?;
    expect(b'-', day_sep)?;
    let time_sep = day_sep + 3;
    let day = atoi(day_sep + 1, time_sep)?;

    let bc = value.ends_with(" BC");
    let min_len = month_sep + 6 + if bc { 3 } else { 0 };
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if len > min_len {
        expect(b' ', time_sep)?;
        let minute_sep = time_sep + 3;
        expect(b':', minute_sep)?;
        hour = atoi(time_sep + 1, minute_sep)?;
        let sec_sep = minute_sep + 3;
        expect(b':', sec_sep)?;
        minute = atoi(minute_sep + 1, sec_sep)?;
        second = atoi(sec_sep + 1, sec_sep + 3)?;
    }

    let mut rest = month_sep + 15;
    if rest < len && b[rest] == b'.' {
        let start = rest + 1;
        let width = b[start..]
            .iter()
            .position(|c| b"-+Z ".contains(c))
            .unwrap_or(len - start);
        atoi(start, start + width)?;
        rest += width + 1;
    }
    if rest < len && (b[rest] == b'-' || b[rest] == b'+') {
        atoi(rest + 1, rest + 3)?;
        rest += 3;
        for _ in 0..2 {
            if rest < len && b[rest] == b':' {
                atoi(rest + 1, rest + 3)?;
                rest += 3;
            }
        }
    } else if rest < len && b[rest] == b'Z' {
        rest += 1;
    }
    if bc {
        rest += 3;
    }
    if rest < len {
        return None;
    }
    Some(TargetTimeFields {
        year: if bc { 1 - year } else { year },
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// How a Go layout handles fractional seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoFraction {
    /// `.000000`: a `.` or `,` and exactly six characters read as a number.
    ExactlySix,
    /// No fraction in the layout: Go still takes `.` or `,` and digits after
    /// the seconds.
    Optional,
}

/// Go's `time.Parse` with the layouts `2006-01-02T15:04:05[.000000][Z07:00]`,
/// accept/reject only. Go reads the hour with one or two digits, checks every
/// range and the day of the month.
fn go_parse_time(value: &str, fraction: GoFraction, zone: bool) -> bool {
    fn num(v: &[u8], fixed: bool) -> Option<(u32, &[u8])> {
        let first = *v.first().filter(|c| c.is_ascii_digit())?;
        match v.get(1) {
            Some(second) if second.is_ascii_digit() => Some((
                u32::from(first - b'0') * 10 + u32::from(second - b'0'),
                &v[2..],
            )),
            _ if fixed => None,
            _ => Some((u32::from(first - b'0'), &v[1..])),
        }
    }
    fn literal(v: &[u8], c: u8) -> Option<&[u8]> {
        v.split_first()
            .filter(|(first, _)| **first == c)
            .map(|(_, rest)| rest)
    }
    fn parse(v: &[u8], fraction: GoFraction, zone: bool) -> Option<()> {
        if v.len() < 4 || !v[..4].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let year = v[..4]
            .iter()
            .fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
        let v = literal(&v[4..], b'-')?;
        let (month, v) = num(v, true)?;
        if !(1..=12).contains(&month) {
            return None;
        }
        let v = literal(v, b'-')?;
        let (day, v) = num(v, true)?;
        let v = literal(v, b'T')?;
        let (hour, v) = num(v, false)?;
        let v = literal(v, b':')?;
        let (minute, v) = num(v, true)?;
        let v = literal(v, b':')?;
        let (second, mut v) = num(v, true)?;
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        match fraction {
            GoFraction::ExactlySix => {
                if v.len() < 7 || !matches!(v[0], b'.' | b',') {
                    return None;
                }
                // Go reads the six characters with its own atoi: a sign is
                // taken, and only a negative value is refused.
                let (negative, digits) = match &v[1..7] {
                    [b'-', rest @ ..] => (true, rest),
                    [b'+', rest @ ..] => (false, rest),
                    all => (false, all),
                };
                if !digits.iter().all(u8::is_ascii_digit)
                    || negative && digits.iter().any(|d| *d != b'0')
                {
                    return None;
                }
                v = &v[7..];
            }
            GoFraction::Optional => {
                if v.len() >= 2 && matches!(v[0], b'.' | b',') && v[1].is_ascii_digit() {
                    let digits = v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                    v = &v[1 + digits..];
                }
            }
        }
        if zone {
            if let Some(rest) = literal(v, b'Z') {
                v = rest;
            } else {
                if v.len() < 6 || v[3] != b':' || !matches!(v[0], b'+' | b'-') {
                    return None;
                }
                let (hours, _) = num(&v[1..3], true)?;
                let (minutes, _) = num(&v[4..6], true)?;
                if hours > 24 || minutes > 60 {
                    return None;
                }
                v = &v[6..];
            }
        }
        if !v.is_empty() || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        Some(())
    }
    parse(value.as_bytes(), fraction, zone).is_some()
}

// ---------------------------------------------------------------------------
// Cron schedules (robfig/cron v1.2.0)

/// A schedule parsed the way `cron.Parse` of robfig/cron v1.2.0 parses it: six
/// fields `second minute hour day-of-month month day-of-week` with the last
/// optional, or a descriptor (`@daily`, `@every 1h30m`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    field_count: usize,
    descriptor: bool,
    kind: CronKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CronKind {
    /// Bit sets per field; bit 63 marks a `*` or `?`.
    Spec {
        second: u64,
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every`: a constant delay in whole seconds, at least one.
    Every { seconds: i64 },
}

impl CronSchedule {
    /// The number of whitespace-separated fields in the schedule as written
    /// (1 for `@daily`, 2 for `@every 1h`, 5 for a classic crontab line). The
    /// webhook warns whenever this is not 6.
    #[must_use]
    pub fn field_count(&self) -> usize {
        self.field_count
    }

    /// Whether the schedule is a descriptor (`@daily`, `@every 1h`, ...).
    #[must_use]
    pub fn is_descriptor(&self) -> bool {
        self.descriptor
    }

    /// The first run strictly after `after`, computed in UTC (the time zone of
    /// the operator's container), or `None` when the schedule does not fire
    /// within five years, as upstream.
    #[must_use]
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.naive_utc().with_nanosecond(0)?;
        match self.kind {
            CronKind::Every { seconds } => start
                .checked_add_signed(Duration::seconds(seconds))
                .map(|t| Utc.from_utc_datetime(&t)),
            CronKind::Spec { .. } => self.next_spec(start).map(|t| Utc.from_utc_datetime(&t)),
        }
    }

    /// `SpecSchedule.Next`: walk month, day, hour, minute, second forward until
    /// every field matches, restarting from the month when one wraps.
    fn next_spec(&self, start: NaiveDateTime) -> Option<NaiveDateTime> {
        let CronKind::Spec {
            second,
            minute,
            hour,
            dom,
            month,
            dow,
        } = self.kind
        else {
            return None;
        };
        let has = |bits: u64, n: u32| bits & (1u64 << n) != 0;
        let day_matches = |t: &NaiveDateTime| {
            let by_date = has(dom, t.day());
            let by_weekday = has(dow, t.weekday().num_days_from_sunday());
            if dom & STAR_BIT != 0 || dow & STAR_BIT != 0 {
                by_date && by_weekday
            } else {
                by_date || by_weekday
            }
        };
        let mut t = start.checked_add_signed(Duration::seconds(1))?;
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !has(month, t.month()) {
                if !added {
                    added = true;
                    t = t.date().with_day(1)?.and_hms_opt(0, 0, 0)?;
                }
                t = add_one_month(t)?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !day_matches(&t) {
                if !added {
                    added = true;
                    t = t.date().and_hms_opt(0, 0, 0)?;
                }
                t = t.checked_add_signed(Duration::days(1))?;
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(hour, t.hour()) {
                if !added {
                    added = true;
                    t = t.date().and_hms_opt(t.hour(), 0, 0)?;
                }
                t = t.checked_add_signed(Duration::hours(1))?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(minute, t.minute()) {
                if !added {
                    added = true;
                    t = t.with_second(0)?;
                }
                t = t.checked_add_signed(Duration::minutes(1))?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            while !has(second, t.second()) {
                added = true;
                t = t.checked_add_signed(Duration::seconds(1))?;
                if t.second() == 0 {
                    continue 'wrap;
                }
            }
            return Some(t);
        }
    }
}

/// Go's `AddDate(0, 1, 0)`: the same day one month later, overflowing into the
/// month after when that month is shorter.
fn add_one_month(t: NaiveDateTime) -> Option<NaiveDateTime> {
    let (year, month) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let date = first.checked_add_signed(Duration::days(i64::from(t.day()) - 1))?;
    Some(date.and_time(t.time()))
}

/// Set in a field's bits when the field was written `*` or `?`.
const STAR_BIT: u64 = 1 << 63;

/// Bounds and names of one cron field.
struct CronBounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const SECONDS: CronBounds = CronBounds {
    min: 0,
    max: 59,
    names: &[],
};
const MINUTES: CronBounds = CronBounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: CronBounds = CronBounds {
    min: 0,
    max: 23,
    names: &[],
};
const DAYS_OF_MONTH: CronBounds = CronBounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: CronBounds = CronBounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DAYS_OF_WEEK: CronBounds = CronBounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Parses `schedule` as robfig/cron v1.2.0 `cron.Parse` does; the error is the
/// parser's own message, which the webhook returns.
///
/// Fields: seconds first, day-of-week optional (5 or 6 fields; a classic
/// 5-field crontab line is therefore read shifted by one, `0 2 * * *` being
/// "second 0 of minute 2 of every hour"). Each field is a comma list of `*`,
/// `?`, `N`, `N-M`, optionally `/step` (`N/step` meaning `N-max/step`); months
/// and days of the week also take `jan`–`dec` and `sun`–`sat` in any case.
/// Descriptors: `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`,
/// `@midnight`, `@hourly`, `@every <Go duration>` (rounded down to whole
/// seconds, at least one second).
pub fn parse_cron(schedule: &str) -> Result<CronSchedule, String> {
    if schedule.is_empty() {
        return Err("Empty spec string".to_owned());
    }
    let field_count = schedule.split_whitespace().count();
    if schedule.starts_with('@') {
        return parse_descriptor(schedule).map(|kind| CronSchedule {
            field_count,
            descriptor: true,
            kind,
        });
    }
    if !(5..=6).contains(&field_count) {
        return Err(format!(
            "Expected 5 to 6 fields, found {field_count}: {schedule}"
        ));
    }
    let mut fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() == 5 {
        fields.push("*");
    }
    let kind = CronKind::Spec {
        second: cron_field(fields[0], &SECONDS)?,
        minute: cron_field(fields[1], &MINUTES)?,
        hour: cron_field(fields[2], &HOURS)?,
        dom: cron_field(fields[3], &DAYS_OF_MONTH)?,
        month: cron_field(fields[4], &MONTHS)?,
        dow: cron_field(fields[5], &DAYS_OF_WEEK)?,
    };
    Ok(CronSchedule {
        field_count,
        descriptor: false,
        kind,
    })
}

/// One field: a comma-separated list of ranges (empty items are skipped, so
/// `,` alone selects nothing and the schedule never fires).
fn cron_field(field: &str, bounds: &CronBounds) -> Result<u64, String> {
    field
        .split(',')
        .filter(|item| !item.is_empty())
        .try_fold(0, |bits, item| Ok(bits | cron_range(item, bounds)?))
}

/// `number | number "-" number [ "/" number ]`, or `*`/`?` (whatever follows a
/// `-` after them is ignored, as upstream).
fn cron_range(expr: &str, bounds: &CronBounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end, extra) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (bounds.min, bounds.max, STAR_BIT)
    } else {
        let start = cron_int_or_name(low_and_high[0], bounds)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => cron_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("Too many hyphens: {expr}")),
        };
        (start, end, 0)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if single {
                end = bounds.max;
            }
            step
        }
        _ => return Err(format!("Too many slashes: {expr}")),
    };
    if start < bounds.min {
        return Err(format!(
            "Beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "End of range ({end}) above maximum ({}): {expr}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "Beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("Step of range should be a positive number: {expr}"));
    }
    let mut bits = 0;
    let mut i = start;
    while i <= end {
        bits |= 1u64 << i;
        i = i.saturating_add(step);
    }
    Ok(bits | extra)
}

fn cron_int_or_name(expr: &str, bounds: &CronBounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    match bounds.names.iter().find(|(name, _)| *name == lower) {
        Some((_, value)) => Ok(*value),
        None => cron_int(expr),
    }
}

fn cron_int(expr: &str) -> Result<u64, String> {
    let n = go_atoi(expr.as_bytes()).map_err(|error| {
        format!(
            "Failed to parse int from {expr}: {}",
            go_atoi_error(expr, error)
        )
    })?;
    u64::try_from(n).map_err(|_| format!("Negative number ({n}) not allowed: {expr}"))
}

fn parse_descriptor(descriptor: &str) -> Result<CronKind, String> {
    const ALL_DOM: u64 = 0xFFFF_FFFE | STAR_BIT;
    const ALL_MONTHS: u64 = 0x1FFE | STAR_BIT;
    const ALL_DOW: u64 = 0x7F | STAR_BIT;
    const ALL_HOURS: u64 = 0xFF_FFFF | STAR_BIT;
    let at = |hour: u64, dom: u64, month: u64, dow: u64| CronKind::Spec {
        second: 1,
        minute: 1,
        hour,
        dom,
        month,
        dow,
    };
    match descriptor {
        "@yearly" | "@annually" => return Ok(at(1, 1 << 1, 1 << 1, ALL_DOW)),
        "@monthly" => return Ok(at(1, 1 << 1, ALL_MONTHS, ALL_DOW)),
        "@weekly" => return Ok(at(1, ALL_DOM, ALL_MONTHS, 1)),
        "@daily" | "@midnight" => return Ok(at(1, ALL_DOM, ALL_MONTHS, ALL_DOW)),
        "@hourly" => return Ok(at(ALL_HOURS, ALL_DOM, ALL_MONTHS, ALL_DOW)),
        _ => {}
    }
    if let Some(duration) = descriptor.strip_prefix("@every ") {
        let nanos = go_parse_duration(duration)
            .map_err(|e| format!("Failed to parse duration {descriptor}: {e}"))?;
        let seconds = (nanos / 1_000_000_000).max(1);
        return Ok(CronKind::Every { seconds });
    }
    Err(format!("Unrecognized descriptor: {descriptor}"))
}

/// Go's `time.ParseDuration`, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`
/// with units ns, us, µs, μs, ms, s, m, h; the errors are Go's.
#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // Go computes fractions in float64
fn go_parse_duration(orig: &str) -> Result<i64, String> {
    const LIMIT: u64 = 1 << 63;
    let invalid = || format!("time: invalid duration {}", go_time_quote(orig));
    let mut s = orig.as_bytes();
    let mut negative = false;
    if let Some((&sign @ (b'-' | b'+'), rest)) = s.split_first() {
        negative = sign == b'-';
        s = rest;
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut whole: u64 = 0;
        for &c in &s[..digits] {
            if whole > LIMIT / 10 {
                return Err(invalid());
            }
            whole = whole * 10 + u64::from(c - b'0');
            if whole > LIMIT {
                return Err(invalid());
            }
        }
        let pre = digits > 0;
        s = &s[digits..];
        // Fraction.
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &c in &s[..digits] {
                if overflow {
                    continue;
                }
                if fraction > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let next = fraction * 10 + u64::from(c - b'0');
                if next > LIMIT {
                    overflow = true;
                    continue;
                }
                fraction = next;
                scale *= 10.0;
            }
            post = digits > 0;
            s = &s[digits..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // Unit.
        let unit_len = s
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                go_time_quote(orig)
            ));
        }
        let unit_text = String::from_utf8_lossy(&s[..unit_len]);
        s = &s[unit_len..];
        let unit: u64 = match unit_text.as_ref() {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_time_quote(&unit_text),
                    go_time_quote(orig)
                ));
            }
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        whole *= unit;
        if fraction > 0 {
            whole += (fraction as f64 * (unit as f64 / scale)) as u64;
            if whole > LIMIT {
                return Err(invalid());
            }
        }
        total += whole;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        return Ok(0i64.checked_sub_unsigned(total).unwrap_or(i64::MIN));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The `quote` of Go's time package: `"` and `\` escaped, bytes of
/// non-ASCII or control characters as `\xNN`.
fn go_time_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out.push('"');
    out
}

/// The longest gap between consecutive runs of `schedule`, or `None` when it
/// does not parse or never fires.
///
/// The runs considered start at a fixed instant (Monday 2026-01-05 00:00 UTC)
/// and cover two weeks, plus the first run after them; a schedule that fires
/// fewer than twice in those two weeks (monthly, yearly) is followed for 366
/// days instead. `@every` schedules are their delay.
#[must_use]
pub fn backup_interval(schedule: &str) -> Option<Duration> {
    let parsed = parse_cron(schedule).ok()?;
    if let CronKind::Every { seconds } = parsed.kind {
        return Some(Duration::seconds(seconds));
    }
    let start = Utc.with_ymd_and_hms(2026, 1, 5, 0, 0, 0).single()?;
    let (gap, runs) = longest_gap(&parsed, start, start + Duration::days(14))?;
    if runs >= 2 {
        return Some(gap);
    }
    longest_gap(&parsed, start, start + Duration::days(366)).map(|(gap, _)| gap)
}

/// The longest gap between the runs from `start` up to the first run after
/// `end` (at least one gap), and how many runs fell before `end`.
fn longest_gap(
    schedule: &CronSchedule,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<(Duration, usize)> {
    let mut previous = schedule.next_after(start)?;
    let mut longest = Duration::zero();
    let mut within = 0;
    loop {
        if previous <= end {
            within += 1;
        }
        let next = schedule.next_after(previous)?;
        longest = longest.max(next - previous);
        if next > end {
            return Some((longest, within));
        }
        previous = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(spec: &Value) -> Value {
        json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "pg"},
            "spec": spec,
        })
    }

    /// A recovery through the plugin from an archive: no violation at all.
    fn plugin_recovery(recovery: &Value) -> Value {
        cluster(&json!({
            "instances": 1,
            "bootstrap": {"recovery": recovery},
            "externalClusters": [{
                "name": "origin",
                "plugin": {
                    "name": "barman-cloud.cloudnative-pg.io",
                    "parameters": {"barmanObjectName": "store", "serverName": "pg"},
                },
            }],
        }))
    }

    fn target(target: &Value) -> Value {
        plugin_recovery(&json!({"source": "origin", "recoveryTarget": target}))
    }

    fn at(doc: &Value, path: &str) -> Vec<Violation> {
        validate(doc)
            .into_iter()
            .filter(|v| v.path == path)
            .collect()
    }

    #[track_caller]
    fn assert_only(doc: &Value, path: &str, severity: Severity, message: &str) {
        let all = validate(doc);
        assert_eq!(
            all,
            vec![Violation {
                path: path.to_owned(),
                severity,
                message: message.to_owned(),
            }],
            "{doc:#}"
        );
    }

    #[track_caller]
    fn assert_clean(doc: &Value) {
        assert_eq!(validate(doc), Vec::new(), "{doc:#}");
    }

    fn s3_secret() -> Value {
        json!({
            "accessKeyId": {"name": "aws", "key": "ID"},
            "secretAccessKey": {"name": "aws", "key": "SECRET"},
        })
    }

    /// An ObjectStore whose `spec.configuration` is `configuration`.
    fn object_store(configuration: &Value) -> Value {
        json!({
            "apiVersion": "barmancloud.cnpg.io/v1",
            "kind": "ObjectStore",
            "metadata": {"name": "store"},
            "spec": {"configuration": configuration},
        })
    }

    fn store_with(credentials: &Value) -> Value {
        let mut configuration = json!({"destinationPath": "s3://bucket/path"});
        for (key, value) in credentials.as_object().unwrap() {
            configuration[key] = value.clone();
        }
        object_store(&configuration)
    }

    // --- dispatch -----------------------------------------------------------

    #[test]
    fn unknown_kinds_and_versions_have_no_rules() {
        let reserved =
            json!({"spec": {"name": "postgres", "owner": "app", "cluster": {"name": "pg"}}});
        let mut doc = reserved.clone();
        doc["apiVersion"] = json!("postgresql.cnpg.io/v1");
        doc["kind"] = json!("Database");
        assert_eq!(validate(&doc).len(), 1);
        doc["apiVersion"] = json!("postgresql.cnpg.io/v2");
        assert!(validate(&doc).is_empty());
        doc["apiVersion"] = json!("v1");
        doc["kind"] = json!("ConfigMap");
        assert!(validate(&doc).is_empty());
        assert!(validate(&json!("not an object")).is_empty());
    }

    #[test]
    fn violations_serialize_with_lowercase_severity() {
        let v = Violation::warning("spec.schedule", "m");
        assert_eq!(
            serde_json::to_value(&v).unwrap(),
            json!({"path": "spec.schedule", "severity": "warning", "message": "m"})
        );
    }

    // --- bootstrap ----------------------------------------------------------

    #[test]
    fn one_bootstrap_method_at_a_time() {
        assert_clean(&cluster(
            &json!({"bootstrap": {"initdb": {"database": "app"}}}),
        ));
        assert_clean(&cluster(
            &json!({"bootstrap": {"initdb": {}, "recovery": null}}),
        ));
        assert_only(
            &cluster(
                &json!({"bootstrap": {"initdb": {}, "pg_basebackup": {"source": "a"}},
                "externalClusters": [{"name": "a", "connectionParameters": {"host": "a"}}]}),
            ),
            "spec.bootstrap",
            Severity::Error,
            "Only one bootstrap method can be specified at a time",
        );
    }

    #[test]
    fn recovery_source_must_exist_and_be_usable() {
        assert_clean(&plugin_recovery(&json!({"source": "origin"})));
        // Missing: upstream reports the missing entry twice over.
        let doc = plugin_recovery(&json!({"source": "elsewhere"}));
        assert_eq!(
            at(&doc, "spec.bootstrap.recovery.source"),
            vec![
                Violation::error(
                    "spec.bootstrap.recovery.source",
                    "External cluster elsewhere not found"
                ),
                Violation::error(
                    "spec.bootstrap.recovery.source",
                    "External cluster elsewhere cannot be used for recovery: missing connection \
                     parameters, Barman, or CNPG-i configuration"
                ),
            ]
        );
        // Present but with nothing to recover from.
        let doc = cluster(&json!({
            "bootstrap": {"recovery": {"source": "origin"}},
            "externalClusters": [{"name": "origin", "password": {"name": "s", "key": "k"}}],
        }));
        assert_eq!(
            validate(&doc),
            vec![
                Violation::error(
                    "spec.bootstrap.recovery.source",
                    "External cluster origin cannot be used for recovery: missing connection \
                     parameters, Barman, or CNPG-i configuration"
                ),
                Violation::error(
                    "spec.externalClusters[0]",
                    "one of connectionParameters, plugin and barmanObjectStore is required"
                ),
            ]
        );
    }

    #[test]
    fn recovery_backup_and_source_together_is_a_warning() {
        assert_clean(&plugin_recovery(&json!({"backup": {"name": "b1"}})));
        assert_only(
            &plugin_recovery(&json!({"backup": {"name": "b1"}, "source": "origin"})),
            "spec.bootstrap.recovery.backup",
            Severity::Warning,
            "backup and source are mutually exclusive: the webhook admits both, and the operator \
             then restores through the plugin when source names a plugin external cluster, from \
             the Backup object otherwise",
        );
    }

    fn snapshots() -> Value {
        json!({"storage": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"}})
    }

    #[test]
    fn volume_snapshots_exclude_backup_and_backup_id() {
        assert_clean(&plugin_recovery(
            &json!({"volumeSnapshots": snapshots(), "source": "origin",
            "recoveryTarget": {"targetName": "before-upgrade"}}),
        ));
        assert_only(
            &plugin_recovery(&json!({"volumeSnapshots": snapshots(), "backup": {"name": "b1"}})),
            "spec.bootstrap.recovery.backup",
            Severity::Error,
            "Recovery from dataSource is not compatible with other types of recovery",
        );
        assert_only(
            &plugin_recovery(&json!({"volumeSnapshots": snapshots(), "source": "origin",
                "recoveryTarget": {"backupID": "20260101T000000"}})),
            "spec.bootstrap.recovery.recoveryTarget.backupID",
            Severity::Error,
            "Cannot specify a backupID when recovering using a DataSource",
        );
    }

    #[test]
    fn volume_snapshot_sources_are_snapshots_or_pvcs() {
        let pvc = json!({"storage": {"kind": "PersistentVolumeClaim", "name": "data"}});
        assert_clean(&plugin_recovery(&json!({"volumeSnapshots": pvc})));
        let wrong = json!({"storage": {"apiGroup": "apps", "kind": "Deployment", "name": "x"}});
        assert_only(
            &plugin_recovery(&json!({"volumeSnapshots": wrong})),
            "spec.bootstrap.recovery.volumeSnapshots.storage",
            Severity::Error,
            "Only VolumeSnapshots and PersistentVolumeClaims are supported",
        );
        let mut with_wal = snapshots();
        with_wal["walStorage"] =
            json!({"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "wal"});
        assert_only(
            &plugin_recovery(&json!({"volumeSnapshots": with_wal})),
            "spec.bootstrap.recovery.volumeSnapshots.walStorage",
            Severity::Error,
            "A WAL storage configuration is required when recovering using a DataSource for WALs",
        );
        let mut doc = plugin_recovery(&json!({"volumeSnapshots": with_wal}));
        doc["spec"]["walStorage"] = json!({"size": "1Gi"});
        assert_clean(&doc);
    }

    // --- recoveryTarget -----------------------------------------------------

    const TARGET: &str = "spec.bootstrap.recovery.recoveryTarget";

    #[test]
    fn recovery_targets_are_mutually_exclusive() {
        assert_clean(&target(
            &json!({"targetTime": "2026-05-01 12:30:00+00", "targetTLI": "2",
            "exclusive": true, "backupID": "20260501T020000"}),
        ));
        assert_only(
            &target(&json!({"targetTime": "2026-05-01T12:30:00Z", "targetLSN": "0/3000000"})),
            TARGET,
            Severity::Error,
            "Recovery target options are mutually exclusive",
        );
        // A present targetImmediate counts even when false, and then needs a backupID.
        let doc = target(&json!({"targetTime": "2026-05-01T12:30:00Z", "targetImmediate": false}));
        assert_eq!(
            validate(&doc),
            vec![
                Violation::error(TARGET, "Recovery target options are mutually exclusive"),
                Violation::error(TARGET, "BackupID is missing"),
            ]
        );
    }

    #[test]
    fn label_based_targets_need_a_backup_id() {
        for t in [
            json!({"targetName": "before-upgrade"}),
            json!({"targetXID": "1234"}),
            json!({"targetImmediate": true}),
        ] {
            assert_only(&target(&t), TARGET, Severity::Error, "BackupID is missing");
            let mut with_id = t.clone();
            with_id["backupID"] = json!("20260501T020000");
            assert_clean(&target(&with_id));
            assert_clean(&plugin_recovery(
                &json!({"volumeSnapshots": snapshots(), "recoveryTarget": t}),
            ));
        }
        assert_clean(&target(&json!({"targetLSN": "0/3000000"})));
    }

    #[test]
    fn target_time_formats() {
        for ok in [
            "2026-05-01 12:30:00",
            "2026-05-01 12:30:00.000000+02",
            "2026-05-01 12:30:00.123456+02:00",
            "2026-05-01 12:30:00.5-05:30:15",
            "2026-05-01 12:30:00Z",
            "2026-05-01",
            "2026-05-01 12:30:00 BC",
            "2026-05-01T12:30:00.000000Z",
            "2026-05-01T12:30:00,123456+02:00",
            "2026-05-01T12:30:00Z",
            "2026-05-01T12:30:00+02:00",
            "2026-05-01T12:30:00.5Z",
            "2026-05-01T12:30:00.123456789-07:00",
            "2026-05-01T2:30:00Z",
            "2026-05-01T12:30:00",
            "2026-05-01T12:30:00.25",
            "2024-02-29T00:00:00Z",
        ] {
            assert_clean(&target(&json!({"targetTime": ok})));
        }
        for bad in [
            "yesterday",
            "2026-05-01 12:30",
            "2026-05-01T12:30",
            "2026-05-01 12:30:00 +02",
            "2026-05-01T12:30:00+0200",
            "2026-05-01T12:30:00z",
            "2026-05-01T24:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-05-01T12:30:00Z trailing",
            "1714566600",
        ] {
            assert_only(
                &target(&json!({"targetTime": bad})),
                TARGET,
                Severity::Error,
                "The format of TargetTime is invalid",
            );
        }
    }

    #[test]
    fn postgres_syntax_with_out_of_range_fields_is_admitted_with_a_warning() {
        let doc = target(&json!({"targetTime": "2026-02-30 10:00:00+00"}));
        let found = validate(&doc);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            "spec.bootstrap.recovery.recoveryTarget.targetTime"
        );
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(
            found[0]
                .message
                .contains("date/time field value out of range")
        );
        assert_eq!(
            validate(&target(&json!({"targetTime": "2026-05-01 25:00:00"}))).len(),
            1
        );
        assert_clean(&target(&json!({"targetTime": "2026-05-01 24:00:00"})));
    }

    #[test]
    fn target_lsn_format() {
        for ok in [
            "0/3000000",
            "16/B374D848",
            "ffffffff/ffffffff",
            "00000000000000001/0",
        ] {
            assert_clean(&target(&json!({"targetLSN": ok})));
        }
        for bad in [
            "3000000",
            "0/",
            "/1",
            "0/1/2",
            "0x0/1",
            "+0/1",
            "0/G",
            "1_0/0",
            "10000000000000000/0",
        ] {
            assert_only(
                &target(&json!({"targetLSN": bad})),
                TARGET,
                Severity::Error,
                "Invalid TargetLSN",
            );
        }
    }

    #[test]
    fn target_xid_is_a_32_bit_unsigned_integer() {
        for ok in ["0", "4294967295", "00012"] {
            assert_clean(&target(&json!({"targetXID": ok, "backupID": "b"})));
        }
        for bad in ["4294967296", "-1", "+5", "12a", " 1"] {
            assert_only(
                &target(&json!({"targetXID": bad, "backupID": "b"})),
                "spec.bootstrap.recovery.recoveryTarget.targetXID",
                Severity::Error,
                "recovery target xid must be a non-negative 32-bit integer",
            );
        }
    }

    #[test]
    fn target_name_length_and_characters() {
        let path = "spec.bootstrap.recovery.recoveryTarget.targetName";
        assert_clean(&target(
            &json!({"targetName": "a".repeat(63), "backupID": "b"}),
        ));
        assert_only(
            &target(&json!({"targetName": "a".repeat(64), "backupID": "b"})),
            path,
            Severity::Error,
            "recovery target name must be shorter than 64 bytes",
        );
        // 32 two-byte characters: 64 bytes.
        assert_eq!(
            at(
                &target(&json!({"targetName": "é".repeat(32), "backupID": "b"})),
                path
            )
            .len(),
            1
        );
        assert_only(
            &target(&json!({"targetName": "before\nupgrade", "backupID": "b"})),
            path,
            Severity::Error,
            "recovery target name must not contain ASCII control characters",
        );
        assert_only(
            &target(&json!({"targetName": "del\u{7f}", "backupID": "b"})),
            path,
            Severity::Error,
            "recovery target name must not contain ASCII control characters",
        );
    }

    #[test]
    fn target_timeline() {
        for ok in ["", "latest", "1", "12", "+3", "007"] {
            assert_clean(&target(&json!({"targetTLI": ok})));
        }
        for bad in ["0", "-1", "current", "1.5", "99999999999999999999"] {
            assert_only(
                &target(&json!({"targetTLI": bad})),
                "spec.bootstrap.recovery.recoveryTarget.targetTLI",
                Severity::Error,
                "recovery target timeline can be set to 'latest' or a positive integer",
            );
        }
    }

    // --- pg_basebackup and externalClusters ---------------------------------

    #[test]
    fn pg_basebackup_source_must_exist() {
        let spec = |source: &str| {
            cluster(&json!({
                "bootstrap": {"pg_basebackup": {"source": source}},
                "externalClusters": [{"name": "prod", "connectionParameters": {"host": "prod-rw"}}],
            }))
        };
        assert_clean(&spec("prod"));
        assert_only(
            &spec("staging"),
            "spec.bootstrap.pg_basebackup.source",
            Severity::Error,
            "External cluster staging not found",
        );
    }

    #[test]
    fn external_cluster_names_are_unique_and_safe() {
        let entry = |name: &str| json!({"name": name, "connectionParameters": {"host": "h"}});
        assert_clean(&cluster(
            &json!({"externalClusters": [entry("a"), entry("a..b")]}),
        ));
        assert_only(
            &cluster(&json!({"externalClusters": [entry("a"), entry("b"), entry("a")]})),
            "spec.externalClusters",
            Severity::Error,
            "the list of external clusters contains duplicate values",
        );
        for bad in ["a/b", "..", ".", "a\\b"] {
            assert_only(
                &cluster(&json!({"externalClusters": [entry("ok"), entry(bad)]})),
                "spec.externalClusters[1].name",
                Severity::Error,
                "cannot contain a path separator or a '..' component",
            );
        }
        let mut with_cert = entry("a");
        with_cert["sslKey"] = json!({"name": "../etc", "key": "tls.key"});
        assert_only(
            &cluster(&json!({"externalClusters": [with_cert]})),
            "spec.externalClusters[0].sslKey.name",
            Severity::Error,
            "cannot contain a path separator or a '..' component",
        );
    }

    #[test]
    fn external_clusters_need_a_way_in() {
        assert_only(
            &cluster(&json!({"externalClusters": [{"name": "a", "connectionParameters": null}]})),
            "spec.externalClusters[0]",
            Severity::Error,
            "one of connectionParameters, plugin and barmanObjectStore is required",
        );
    }

    // --- barmanObjectStore credentials --------------------------------------

    fn in_tree(credentials: &Value) -> Value {
        let mut store = json!({"destinationPath": "s3://bucket/path"});
        for (key, value) in credentials.as_object().unwrap() {
            store[key] = value.clone();
        }
        cluster(&json!({"backup": {"barmanObjectStore": store}}))
    }

    /// The errors of a document, warnings left out.
    fn errors(doc: &Value) -> Vec<Violation> {
        validate(doc)
            .into_iter()
            .filter(|v| v.severity == Severity::Error)
            .collect()
    }

    const STORE: &str = "spec.backup.barmanObjectStore";

    #[test]
    fn exactly_one_credential_kind() {
        assert!(errors(&in_tree(&json!({"s3Credentials": s3_secret()}))).is_empty());
        assert_eq!(
            errors(&in_tree(&json!({}))),
            vec![Violation::error(STORE, MISSING_CREDENTIALS)]
        );
        assert_eq!(
            MISSING_CREDENTIALS,
            "missing credentials. One and only one of azureCredentials, s3Credentials and \
             googleCredentials are required"
        );
        // Upstream keeps only the errors of the last block checked (Google).
        assert_eq!(
            errors(&in_tree(
                &json!({"s3Credentials": {}, "googleCredentials": {"gkeEnvironment": true}})
            )),
            vec![Violation::error(STORE, TOO_MANY_CREDENTIALS)]
        );
        assert_eq!(
            errors(&in_tree(
                &json!({"azureCredentials": {}, "s3Credentials": {"inheritFromIAMRole": true}})
            )),
            vec![Violation::error(STORE, TOO_MANY_CREDENTIALS)]
        );
    }

    #[test]
    fn s3_credentials() {
        let path = "spec.backup.barmanObjectStore.s3Credentials";
        assert!(
            errors(&in_tree(
                &json!({"s3Credentials": {"inheritFromIAMRole": true}})
            ))
            .is_empty()
        );
        assert_eq!(
            errors(&in_tree(
                &json!({"s3Credentials": {"accessKeyId": {"name": "a", "key": "b"}}})
            )),
            vec![Violation::error(
                path,
                "when using AWS credentials both accessKeyId and secretAccessKey must be provided"
            )]
        );
        assert_eq!(
            errors(&in_tree(
                &json!({"s3Credentials": {"region": {"name": "a", "key": "r"}}})
            )),
            vec![Violation::error(
                path,
                "at least one AWS authentication method should be supplied"
            )]
        );
        let mut both = s3_secret();
        both["inheritFromIAMRole"] = json!(true);
        assert_eq!(
            errors(&in_tree(&json!({"s3Credentials": both}))),
            vec![Violation::error(
                path,
                "only one AWS authentication method should be supplied"
            )]
        );
    }

    #[test]
    fn google_credentials() {
        let path = "spec.backup.barmanObjectStore.googleCredentials";
        let secret = json!({"name": "gcs", "key": "key.json"});
        assert!(
            errors(&in_tree(
                &json!({"googleCredentials": {"gkeEnvironment": true}})
            ))
            .is_empty()
        );
        assert!(
            errors(&in_tree(
                &json!({"googleCredentials": {"applicationCredentials": secret}})
            ))
            .is_empty()
        );
        assert_eq!(
            errors(&in_tree(
                &json!({"googleCredentials": {"gkeEnvironment": false}})
            )),
            vec![Violation::error(
                path,
                "if gkeEnvironment is false, secret with credentials must be provided"
            )]
        );
        assert_eq!(
            errors(&in_tree(
                &json!({"googleCredentials": {"gkeEnvironment": true, "applicationCredentials": secret}})
            )),
            vec![Violation::error(
                path,
                "if gkeEnvironment is true, secret with credentials must not be provided"
            )]
        );
    }

    #[test]
    fn azure_credentials() {
        let path = "spec.backup.barmanObjectStore.azureCredentials";
        let s = |key: &str| json!({"name": "azure", "key": key});
        let not_one = "when connection string is not specified, one and only one of storage key, \
                       storage SAS token, Azure AD authentication, or default Azure credentials is required";
        let exclusive = "when connection string is specified, the other parameters must be empty";
        let account = "storage account must be specified when using storage key or SAS token";
        for ok in [
            json!({"connectionString": s("cs")}),
            json!({"storageAccount": s("a"), "storageKey": s("k")}),
            json!({"storageAccount": s("a"), "storageSasToken": s("t")}),
            json!({"inheritFromAzureAD": true}),
            json!({"useDefaultAzureCredentials": true}),
        ] {
            assert!(
                errors(&in_tree(&json!({"azureCredentials": ok}))).is_empty(),
                "{ok}"
            );
        }
        let cases = [
            (json!({}), vec![not_one]),
            (
                json!({"storageAccount": s("a"), "storageKey": s("k"), "storageSasToken": s("t")}),
                vec![not_one],
            ),
            (
                json!({"connectionString": s("cs"), "storageAccount": s("a")}),
                vec![exclusive],
            ),
            (
                json!({"connectionString": s("cs"), "inheritFromAzureAD": true}),
                vec![exclusive],
            ),
            (json!({"storageKey": s("k")}), vec![account]),
        ];
        for (credentials, messages) in cases {
            let expected: Vec<Violation> = messages
                .iter()
                .map(|m| Violation::error(path, *m))
                .collect();
            assert_eq!(
                errors(&in_tree(&json!({"azureCredentials": credentials}))),
                expected
            );
        }
    }

    #[test]
    fn external_cluster_object_stores_are_checked_too() {
        let doc = cluster(&json!({
            "bootstrap": {"recovery": {"source": "origin"}},
            "externalClusters": [{"name": "origin", "barmanObjectStore": {
                "destinationPath": "s3://bucket/path", "s3Credentials": {"inheritFromIAMRole": true}}}],
        }));
        assert!(errors(&doc).is_empty());
        let doc = cluster(&json!({
            "bootstrap": {"recovery": {"source": "origin"}},
            "externalClusters": [{"name": "origin", "barmanObjectStore": {"destinationPath": "s3://bucket/path"}}],
        }));
        assert_eq!(
            errors(&doc),
            vec![Violation::error(
                "spec.externalClusters[0].barmanObjectStore",
                MISSING_CREDENTIALS
            )]
        );
    }

    // --- plugins ------------------------------------------------------------

    fn archiver(name: &str) -> Value {
        json!({"name": name, "isWALArchiver": true, "parameters": {"barmanObjectName": "store"}})
    }

    #[test]
    fn one_wal_archiver_plugin() {
        let mut disabled = archiver("other");
        disabled["enabled"] = json!(false);
        assert_clean(&cluster(
            &json!({"plugins": [archiver("barman-cloud.cloudnative-pg.io"), disabled,
            {"name": "metrics"}]}),
        ));
        assert_only(
            &cluster(&json!({"plugins": [archiver("a"), archiver("b")]})),
            "spec.plugins",
            Severity::Error,
            "Cannot enable more than one WAL archiver plugin",
        );
    }

    #[test]
    fn no_wal_archiver_plugin_next_to_in_tree_barman() {
        let mut doc = in_tree(&json!({"s3Credentials": s3_secret()}));
        assert!(errors(&doc).is_empty());
        doc["spec"]["plugins"] = json!([archiver("barman-cloud.cloudnative-pg.io")]);
        assert_eq!(
            errors(&doc),
            vec![Violation::error(
                "spec.plugins",
                "Cannot enable a WAL archiver plugin when barmanObjectStore is configured"
            )]
        );
    }

    // --- warnings -----------------------------------------------------------

    #[test]
    fn in_tree_barman_is_deprecated_and_every_use_is_listed() {
        let store =
            json!({"destinationPath": "s3://b/p", "s3Credentials": {"inheritFromIAMRole": true}});
        let doc = cluster(&json!({
            "backup": {"barmanObjectStore": store},
            "externalClusters": [
                {"name": "a", "connectionParameters": {"host": "a"}},
                {"name": "b", "barmanObjectStore": store},
            ],
        }));
        assert_only(
            &doc,
            "spec.backup.barmanObjectStore",
            Severity::Warning,
            "Native support for Barman Cloud backups and recovery is deprecated and will be \
             completely removed in CloudNativePG 1.31.0. Found usage in: \
             spec.backup.barmanObjectStore, spec.externalClusters.1.barmanObjectStore. \
             Please migrate existing clusters to the new Barman Cloud Plugin to ensure a smooth \
             transition.",
        );
        let only_external =
            cluster(&json!({"externalClusters": [{"name": "b", "barmanObjectStore": store}]}));
        assert_eq!(
            at(&only_external, "spec.externalClusters[0].barmanObjectStore")[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn retention_policy_without_in_tree_barman() {
        let store =
            json!({"destinationPath": "s3://b/p", "s3Credentials": {"inheritFromIAMRole": true}});
        let with_store =
            cluster(&json!({"backup": {"retentionPolicy": "30d", "barmanObjectStore": store}}));
        assert!(at(&with_store, "spec.backup.retentionPolicy").is_empty());
        assert_only(
            &cluster(&json!({"backup": {"retentionPolicy": "30d"}})),
            "spec.backup.retentionPolicy",
            Severity::Warning,
            "Retention policies specified in .spec.backup.retentionPolicy are only used by the \
             in-tree barman-cloud support, which is not being used in this cluster. Please use a \
             backup plugin and migrate this configuration to the plugin configuration",
        );
    }

    // --- Backup -------------------------------------------------------------

    fn backup(spec: &Value) -> Value {
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
            "metadata": {"name": "b"}, "spec": spec})
    }

    #[test]
    fn plugin_backups_need_a_plugin_configuration() {
        assert_clean(&backup(
            &json!({"cluster": {"name": "pg"}, "method": "plugin",
            "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}),
        ));
        for spec in [
            json!({"cluster": {"name": "pg"}, "method": "plugin"}),
            json!({"cluster": {"name": "pg"}, "method": "plugin", "pluginConfiguration": {"name": ""}}),
        ] {
            assert_only(
                &backup(&spec),
                "spec.pluginConfiguration",
                Severity::Error,
                "cannot be empty when the backup method is plugin",
            );
        }
    }

    #[test]
    fn online_only_outside_barman_object_store() {
        assert_clean(&backup(
            &json!({"cluster": {"name": "pg"}, "method": "volumeSnapshot",
            "online": false, "onlineConfiguration": {"immediateCheckpoint": true}}),
        ));
        // Upstream admits it with the plugin method, despite the message.
        assert_clean(&backup(
            &json!({"cluster": {"name": "pg"}, "method": "plugin", "online": true,
            "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}),
        ));
        // The method defaults to barmanObjectStore.
        assert_eq!(
            validate(&backup(&json!({"cluster": {"name": "pg"}, "online": true,
                "onlineConfiguration": {"waitForArchive": true}}))),
            vec![
                Violation::error(
                    "spec.online",
                    "Online parameter can be specified only if the backup method is volumeSnapshot"
                ),
                Violation::error(
                    "spec.onlineConfiguration",
                    "OnlineConfiguration parameter can be specified only if the backup method is volumeSnapshot"
                ),
            ]
        );
    }

    #[test]
    fn snapshot_deadline_annotation_is_an_integer() {
        let mut doc = backup(&json!({"cluster": {"name": "pg"}, "method": "volumeSnapshot"}));
        doc["metadata"]["annotations"] = json!({"cnpg.io/volumeSnapshotDeadline": "10"});
        assert_clean(&doc);
        doc["metadata"]["annotations"] = json!({"cnpg.io/volumeSnapshotDeadline": "10m"});
        assert_only(
            &doc,
            "metadata.annotations.cnpg.io/volumeSnapshotDeadline",
            Severity::Error,
            "must be an integer",
        );
    }

    // --- ScheduledBackup ----------------------------------------------------

    fn scheduled(schedule: &str) -> Value {
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
            "metadata": {"name": "nightly"},
            "spec": {"schedule": schedule, "cluster": {"name": "pg"}, "method": "plugin",
                "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}})
    }

    const FIELD_COUNT_WARNING: &str = "Schedule parameter may not have the right number of arguments (usually six arguments are needed)";

    #[test]
    fn schedules_must_parse() {
        assert_clean(&scheduled("0 0 2 * * *"));
        assert_only(
            &scheduled("0 0 25 * * *"),
            "spec.schedule",
            Severity::Error,
            "End of range (25) above maximum (23): 25",
        );
        assert_only(
            &scheduled("0 2 * *"),
            "spec.schedule",
            Severity::Error,
            "Expected 5 to 6 fields, found 4: 0 2 * *",
        );
    }

    #[test]
    fn schedules_without_six_fields_get_a_warning() {
        for schedule in ["0 2 * * *", "@daily", "@every 1h30m"] {
            assert_only(
                &scheduled(schedule),
                "spec.schedule",
                Severity::Warning,
                FIELD_COUNT_WARNING,
            );
        }
    }

    #[test]
    fn scheduled_plugin_backups_need_a_plugin_configuration() {
        let mut doc = scheduled("0 0 2 * * *");
        doc["spec"]["pluginConfiguration"] = Value::Null;
        assert_only(
            &doc,
            "spec.pluginConfiguration",
            Severity::Error,
            "cannot be empty when the backup method is plugin",
        );
        doc["spec"]["method"] = json!("volumeSnapshot");
        doc["spec"]["online"] = json!(true);
        assert_clean(&doc);
        doc["spec"]["method"] = Value::Null;
        assert_only(
            &doc,
            "spec.online",
            Severity::Error,
            "Online parameter can be specified only if the method is volumeSnapshot",
        );
    }

    // --- Database and ObjectStore -------------------------------------------

    #[test]
    fn reserved_database_names() {
        let db = |name: &str| {
            json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Database",
                "spec": {"name": name, "owner": "app", "cluster": {"name": "pg"}}})
        };
        assert_clean(&db("app"));
        assert_clean(&db("template2"));
        for name in ["postgres", "template0", "template1"] {
            assert_only(
                &db(name),
                "spec.name",
                Severity::Error,
                &format!("the name {name} is reserved"),
            );
        }
    }

    #[test]
    fn object_store_server_name_is_forbidden() {
        assert_clean(&store_with(&json!({"s3Credentials": s3_secret()})));
        let mut doc = store_with(&json!({"s3Credentials": s3_secret()}));
        doc["spec"]["configuration"]["serverName"] = json!("pg");
        assert_only(
            &doc,
            "spec.configuration.serverName",
            Severity::Error,
            "use the 'serverName' plugin parameter in the Cluster resource",
        );
    }

    #[test]
    fn object_store_credentials() {
        assert_clean(&store_with(
            &json!({"googleCredentials": {"gkeEnvironment": true}}),
        ));
        assert_only(
            &store_with(&json!({})),
            "spec.configuration",
            Severity::Error,
            MISSING_CREDENTIALS,
        );
        assert_only(
            &store_with(&json!({"s3Credentials": {"secretAccessKey": {"name": "a", "key": "b"}}})),
            "spec.configuration.s3Credentials",
            Severity::Error,
            "when using AWS credentials both accessKeyId and secretAccessKey must be provided",
        );
    }

    // --- cron ---------------------------------------------------------------

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).single().unwrap()
    }

    /// The next `n` runs after `from`.
    fn runs(schedule: &str, from: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let parsed = parse_cron(schedule).unwrap();
        let mut out = Vec::new();
        let mut t = from;
        for _ in 0..n {
            t = parsed.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn six_fields_start_with_seconds() {
        let parsed = parse_cron("0 0 2 * * *").unwrap();
        assert_eq!(parsed.field_count(), 6);
        assert!(!parsed.is_descriptor());
        assert_eq!(
            runs("0 0 2 * * *", utc(2026, 5, 1, 12, 0, 0), 2),
            vec![utc(2026, 5, 2, 2, 0, 0), utc(2026, 5, 3, 2, 0, 0)]
        );
        // A run is strictly after the instant given.
        assert_eq!(
            parsed.next_after(utc(2026, 5, 2, 2, 0, 0)),
            Some(utc(2026, 5, 3, 2, 0, 0))
        );
        assert_eq!(backup_interval("0 0 2 * * *"), Some(Duration::days(1)));
    }

    #[test]
    fn five_fields_are_read_shifted_by_one() {
        // Meant as 02:00 every night; read as second 0 of minute 2 of every hour.
        let parsed = parse_cron("0 2 * * *").unwrap();
        assert_eq!(parsed.field_count(), 5);
        assert_eq!(
            runs("0 2 * * *", utc(2026, 5, 1, 12, 0, 0), 3),
            vec![
                utc(2026, 5, 1, 12, 2, 0),
                utc(2026, 5, 1, 13, 2, 0),
                utc(2026, 5, 1, 14, 2, 0)
            ]
        );
        assert_eq!(backup_interval("0 2 * * *"), Some(Duration::hours(1)));
    }

    #[test]
    fn descriptors() {
        let from = utc(2026, 5, 1, 12, 34, 56);
        assert_eq!(runs("@daily", from, 1), vec![utc(2026, 5, 2, 0, 0, 0)]);
        assert_eq!(runs("@midnight", from, 1), vec![utc(2026, 5, 2, 0, 0, 0)]);
        assert_eq!(runs("@hourly", from, 1), vec![utc(2026, 5, 1, 13, 0, 0)]);
        // 2026-05-03 is a Sunday.
        assert_eq!(runs("@weekly", from, 1), vec![utc(2026, 5, 3, 0, 0, 0)]);
        assert_eq!(
            runs("@monthly", from, 2),
            vec![utc(2026, 6, 1, 0, 0, 0), utc(2026, 7, 1, 0, 0, 0)]
        );
        assert_eq!(runs("@yearly", from, 1), vec![utc(2027, 1, 1, 0, 0, 0)]);
        assert_eq!(runs("@annually", from, 1), vec![utc(2027, 1, 1, 0, 0, 0)]);
        assert_eq!(parse_cron("@daily").unwrap().field_count(), 1);
        assert!(parse_cron("@daily").unwrap().is_descriptor());
        assert_eq!(backup_interval("@daily"), Some(Duration::days(1)));
        assert_eq!(backup_interval("@weekly"), Some(Duration::days(7)));
        assert_eq!(backup_interval("@monthly"), Some(Duration::days(31)));
        assert_eq!(backup_interval("@yearly"), Some(Duration::days(365)));
    }

    #[test]
    fn every_is_a_constant_delay_in_whole_seconds() {
        let parsed = parse_cron("@every 1h30m").unwrap();
        assert_eq!(parsed.field_count(), 2);
        let from = utc(2026, 5, 1, 12, 0, 0) + Duration::milliseconds(250);
        assert_eq!(parsed.next_after(from), Some(utc(2026, 5, 1, 13, 30, 0)));
        assert_eq!(backup_interval("@every 1h30m"), Some(Duration::minutes(90)));
        assert_eq!(backup_interval("@every 1.5h"), Some(Duration::minutes(90)));
        assert_eq!(backup_interval("@every 2500ms"), Some(Duration::seconds(2)));
        assert_eq!(backup_interval("@every 10us"), Some(Duration::seconds(1)));
        assert_eq!(backup_interval("@every -1h"), Some(Duration::seconds(1)));
        assert_eq!(backup_interval("@every 0"), Some(Duration::seconds(1)));
    }

    #[test]
    fn ranges_steps_lists_and_names() {
        let from = utc(2026, 5, 1, 0, 0, 0); // a Friday
        assert_eq!(
            runs("0 */20 9-10 * * *", from, 4),
            vec![
                utc(2026, 5, 1, 9, 0, 0),
                utc(2026, 5, 1, 9, 20, 0),
                utc(2026, 5, 1, 9, 40, 0),
                utc(2026, 5, 1, 10, 0, 0)
            ]
        );
        assert_eq!(
            runs("0 0 3 * * MON-FRI", from, 3),
            vec![
                utc(2026, 5, 1, 3, 0, 0),
                utc(2026, 5, 4, 3, 0, 0),
                utc(2026, 5, 5, 3, 0, 0)
            ]
        );
        assert_eq!(
            runs("30 15 6 1,15 jan,Jul ?", from, 3),
            vec![
                utc(2026, 7, 1, 6, 15, 30),
                utc(2026, 7, 15, 6, 15, 30),
                utc(2027, 1, 1, 6, 15, 30)
            ]
        );
        // N/step runs from N to the maximum.
        assert_eq!(
            runs("0 0 20/2 * * *", from, 3),
            vec![
                utc(2026, 5, 1, 20, 0, 0),
                utc(2026, 5, 1, 22, 0, 0),
                utc(2026, 5, 2, 20, 0, 0)
            ]
        );
        // Without a star, day of month OR day of week: the 13th, and Fridays.
        assert_eq!(
            runs("0 0 0 13 * FRI", from, 3),
            vec![
                utc(2026, 5, 8, 0, 0, 0),
                utc(2026, 5, 13, 0, 0, 0),
                utc(2026, 5, 15, 0, 0, 0)
            ]
        );
        // With a star in day of week, AND: the 13th only.
        assert_eq!(
            runs("0 0 0 13 * *", from, 1),
            vec![utc(2026, 5, 13, 0, 0, 0)]
        );
        // Whatever follows "*-" is ignored, as upstream.
        assert_eq!(
            runs("0 0 *-3 * * *", from, 2),
            vec![utc(2026, 5, 1, 1, 0, 0), utc(2026, 5, 1, 2, 0, 0)]
        );
        assert_eq!(backup_interval("0 0 3 * * 1-5"), Some(Duration::days(3)));
        assert_eq!(backup_interval("0 0 0 1,15 * *"), Some(Duration::days(17)));
        assert_eq!(
            backup_interval("0 30 1,13 * * *"),
            Some(Duration::hours(12))
        );
    }

    #[test]
    fn schedules_that_never_fire() {
        let parsed = parse_cron("0 0 0 30 2 *").unwrap();
        assert_eq!(parsed.next_after(utc(2026, 1, 1, 0, 0, 0)), None);
        assert_eq!(backup_interval("0 0 0 30 2 *"), None);
        // An empty list selects nothing.
        assert_eq!(
            parse_cron("0 0 , * * *")
                .unwrap()
                .next_after(utc(2026, 1, 1, 0, 0, 0)),
            None
        );
        // February 29th comes back within the five years upstream searches.
        assert_eq!(
            runs("0 0 0 29 2 *", utc(2026, 1, 1, 0, 0, 0), 1),
            vec![utc(2028, 2, 29, 0, 0, 0)]
        );
        assert_eq!(
            backup_interval("0 0 0 29 2 *"),
            Some(utc(2032, 2, 29, 0, 0, 0) - utc(2028, 2, 29, 0, 0, 0))
        );
        assert_eq!(backup_interval("not a schedule"), None);
    }

    #[test]
    fn rejected_schedules_carry_the_parser_message() {
        let cases = [
            ("", "Empty spec string"),
            ("   ", "Expected 5 to 6 fields, found 0:    "),
            ("* * * *", "Expected 5 to 6 fields, found 4: * * * *"),
            (
                "0 0 2 * * * *",
                "Expected 5 to 6 fields, found 7: 0 0 2 * * * *",
            ),
            (" @daily", "Expected 5 to 6 fields, found 1:  @daily"),
            ("@fortnightly", "Unrecognized descriptor: @fortnightly"),
            ("@daily ", "Unrecognized descriptor: @daily "),
            ("@every", "Unrecognized descriptor: @every"),
            (
                "@every 1d",
                "Failed to parse duration @every 1d: time: unknown unit \"d\" in duration \"1d\"",
            ),
            (
                "@every 90",
                "Failed to parse duration @every 90: time: missing unit in duration \"90\"",
            ),
            (
                "@every ",
                "Failed to parse duration @every : time: invalid duration \"\"",
            ),
            (
                "@every h",
                "Failed to parse duration @every h: time: invalid duration \"h\"",
            ),
            ("60 * * * * *", "End of range (60) above maximum (59): 60"),
            ("0 0 0 0 * *", "Beginning of range (0) below minimum (1): 0"),
            ("0 0 0 * 13 *", "End of range (13) above maximum (12): 13"),
            ("0 0 0 * * 7", "End of range (7) above maximum (6): 7"),
            (
                "0 0 5-2 * * *",
                "Beginning of range (5) beyond end of range (2): 5-2",
            ),
            ("0 0 1-2-3 * * *", "Too many hyphens: 1-2-3"),
            ("0 0 */2/3 * * *", "Too many slashes: */2/3"),
            (
                "0 0 */0 * * *",
                "Step of range should be a positive number: */0",
            ),
            ("0 0 */-1 * * *", "Negative number (-1) not allowed: -1"),
            (
                "0 0 x * * *",
                "Failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "0 0 -1 * * *",
                "Failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax",
            ),
            (
                "0 0 99999999999999999999 * * *",
                "Failed to parse int from 99999999999999999999: strconv.Atoi: parsing \
                 \"99999999999999999999\": value out of range",
            ),
            (
                "0 0 0 * JANUARY *",
                "Failed to parse int from JANUARY: strconv.Atoi: parsing \"JANUARY\": invalid syntax",
            ),
            (
                "0 0 MON * * *",
                "Failed to parse int from MON: strconv.Atoi: parsing \"MON\": invalid syntax",
            ),
        ];
        for (schedule, message) in cases {
            assert_eq!(
                parse_cron(schedule),
                Err(message.to_owned()),
                "{schedule:?}"
            );
        }
    }

    #[test]
    fn go_durations() {
        let h = 3_600_000_000_000_i64;
        assert_eq!(go_parse_duration("1h30m"), Ok(h * 3 / 2));
        assert_eq!(go_parse_duration("+1.5h"), Ok(h * 3 / 2));
        assert_eq!(go_parse_duration(".5s"), Ok(500_000_000));
        assert_eq!(go_parse_duration("1µs"), Ok(1_000));
        assert_eq!(go_parse_duration("1\u{3bc}s"), Ok(1_000));
        assert_eq!(go_parse_duration("-2m"), Ok(-120_000_000_000));
        assert_eq!(go_parse_duration("2562047h47m16.854775807s"), Ok(i64::MAX));
        assert!(go_parse_duration("2562048h").is_err());
        assert_eq!(
            go_parse_duration("1h 30m"),
            Err("time: unknown unit \"h \" in duration \"1h 30m\"".to_owned())
        );
        assert_eq!(
            go_parse_duration("1é"),
            Err("time: unknown unit \"\\xc3\\xa9\" in duration \"1\\xc3\\xa9\"".to_owned())
        );
        assert_eq!(
            go_parse_duration("."),
            Err("time: invalid duration \".\"".to_owned())
        );
    }

    #[test]
    fn go_atoi_matches_strconv() {
        assert_eq!(go_atoi(b"+5"), Ok(5));
        assert_eq!(go_atoi(b"-0"), Ok(0));
        assert_eq!(go_atoi(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(go_atoi(b"-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(go_atoi(b"9223372036854775808"), Err(NumError::Range));
        assert_eq!(go_atoi(b"1_000"), Err(NumError::Syntax));
        assert_eq!(go_atoi(b"+"), Err(NumError::Syntax));
        assert_eq!(go_atoi(b""), Err(NumError::Syntax));
    }
}
