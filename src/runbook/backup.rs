//! The actions of `cnpg-ops backup`: a Backup object with the method the
//! live Cluster uses, a wait for the operator's verdict, and the proof in
//! the catalog that the backup is DONE with its WAL.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::engine::{Facts, Runbook, StepError, StepOutcome, StepPlan};
use super::playbook::Step;
use crate::catalog::time::Zone;
use crate::cli::{CatalogArgs, OutputFormat};
use crate::commands::catalog::load;
use crate::exit::STORE;
use crate::gitops::discover::{self, BackupModel, Database};
use crate::gitops::docs::BARMAN_PLUGIN;
use crate::gitops::repo::Repo;
use crate::k8s::{BACKUP, CLUSTER, Kube, KubeError};
use crate::output::Printer;

/// Settings of a run, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// Repository root.
    pub root: PathBuf,
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// Kubeconfig context (default: the env's kube_context, else the current one).
    pub context: Option<String>,
    /// Wait for the Backup and confirm it in the catalog.
    pub wait: bool,
    /// How often to look at the Backup and the catalog.
    pub poll: Duration,
    /// How long to look for the backup in the catalog once the operator
    /// says it completed.
    pub confirm_timeout: Duration,
    /// S3 endpoint override.
    pub endpoint_url: Option<String>,
    /// Parallel requests to the store.
    pub concurrency: u16,
    /// Zone for messages.
    pub zone: Zone,
}

/// The Backup method of a live Cluster: `plugin` with the barman-cloud
/// plugin as WAL archiver, `barmanObjectStore` with the in-tree stanza.
#[must_use]
pub fn live_method(cluster: &Value) -> Option<&'static str> {
    let plugin = cluster
        .pointer("/spec/plugins")
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.get("name").and_then(Value::as_str) == Some(BARMAN_PLUGIN)
                    && p.get("enabled").and_then(Value::as_bool) != Some(false)
            })
        });
    let inline = cluster.pointer("/spec/backup/barmanObjectStore").is_some();
    match (plugin, inline) {
        (true, _) => Some("plugin"),
        (false, true) => Some("barmanObjectStore"),
        (false, false) => None,
    }
}

/// The Backup object for `cluster` in `namespace`.
#[must_use]
pub fn backup_object(name: &str, namespace: &str, cluster: &str, method: &str) -> Value {
    let mut spec = json!({"cluster": {"name": cluster}, "method": method});
    if method == "plugin" {
        spec["pluginConfiguration"] = json!({"name": BARMAN_PLUGIN});
    }
    json!({
        "apiVersion": BACKUP.api_version(),
        "kind": BACKUP.kind,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "cnpg-ops", "cnpg.io/cluster": cluster},
        },
        "spec": spec,
    })
}

/// The run's state, filled step by step.
pub struct BackupRun<'p> {
    s: BackupSettings,
    printer: &'p Printer,
    db: Option<Database>,
    kube: Option<Kube>,
    method: Option<&'static str>,
    backup: Option<String>,
    status: Option<Value>,
}

const ACTIONS: &[&str] = &[
    "locate-database",
    "create-backup",
    "wait-backup",
    "confirm-backup-in-catalog",
];

fn facts(v: Value) -> Facts {
    match v {
        Value::Object(m) => m,
        _ => Facts::new(),
    }
}

impl From<KubeError> for StepError {
    fn from(e: KubeError) -> Self {
        StepError {
            code: STORE,
            message: e.message,
            hint: Some(e.hint),
        }
    }
}

impl<'p> BackupRun<'p> {
    /// A run with nothing done yet.
    #[must_use]
    pub fn new(s: BackupSettings, printer: &'p Printer) -> Self {
        BackupRun {
            s,
            printer,
            db: None,
            kube: None,
            method: None,
            backup: None,
            status: None,
        }
    }

    fn db(&self) -> Result<&Database, StepError> {
        self.db
            .as_ref()
            .ok_or_else(|| StepError::usage("the database was not located", None))
    }

    async fn kube(&mut self) -> Result<Kube, StepError> {
        if let Some(k) = &self.kube {
            return Ok(k.clone());
        }
        let k = super::live::connect(&self.s.root, &self.s.env, self.s.context.as_deref()).await?;
        self.kube = Some(k.clone());
        Ok(k)
    }

    async fn locate(&mut self) -> Result<StepOutcome, StepError> {
        let repo = Repo::load(&self.s.root).map_err(|e| StepError::usage(e.to_string(), None))?;
        let found = discover::discover(&repo);
        let db = found
            .find(&self.s.env, &self.s.svc)
            .cloned()
            .ok_or_else(|| {
                StepError::usage(
                    format!(
                        "no database {}/{} in {}",
                        self.s.env,
                        self.s.svc,
                        repo.root.display()
                    ),
                    Some("cnpg-ops ls lists them".to_owned()),
                )
            })?;
        let kube = self.kube().await?;
        let live = kube
            .get(CLUSTER, &db.namespace, &db.cluster)
            .await?
            .ok_or_else(|| {
                StepError::finding(
                    format!(
                        "context `{}` has no Cluster {}/{}",
                        kube.context, db.namespace, db.cluster
                    ),
                    Some("check the env's Flux Kustomization and the context".to_owned()),
                )
            })?;
        let method = live_method(&live).ok_or_else(|| {
            StepError::finding(
                format!(
                    "Cluster {}/{} has neither the barman-cloud plugin nor barmanObjectStore configured: there is nowhere to back up to",
                    db.namespace, db.cluster
                ),
                Some("configure backups first (cnpg-ops lint shows what is missing)".to_owned()),
            )
        })?;
        let declared = match db.backup_model {
            BackupModel::Plugin | BackupModel::Both => Some("plugin"),
            BackupModel::Inline => Some("barmanObjectStore"),
            BackupModel::None => None,
        };
        if declared.is_some_and(|d| d != method) {
            self.printer.warn(&format!(
                "the repository declares method {} but the live Cluster uses {method}: backing up with {method}; Flux has not applied the repository yet?",
                declared.unwrap_or("none")
            ));
        }
        let summary = format!(
            "Cluster {}/{} in context `{}`, method {method}",
            db.namespace, db.cluster, kube.context
        );
        let f = facts(
            json!({"env": db.env, "svc": db.svc, "namespace": db.namespace,
            "cluster": db.cluster, "context": kube.context, "method": method}),
        );
        self.method = Some(method);
        self.db = Some(db);
        Ok(StepOutcome {
            summary,
            details: Vec::new(),
            facts: f,
        })
    }

    async fn create(&mut self) -> Result<StepOutcome, StepError> {
        let db = self.db()?.clone();
        let method = self
            .method
            .ok_or_else(|| StepError::usage("no method", None))?;
        let kube = self.kube().await?;
        let name = create_backup(&kube, &db.namespace, &db.cluster, method).await?;
        self.backup = Some(name.clone());
        Ok(StepOutcome {
            summary: format!("Backup {}/{name} created (method {method})", db.namespace),
            details: Vec::new(),
            facts: facts(json!({"backup": name, "namespace": db.namespace})),
        })
    }

    async fn wait(&mut self) -> Result<StepOutcome, StepError> {
        let db = self.db()?.clone();
        let name = self
            .backup
            .clone()
            .ok_or_else(|| StepError::usage("no Backup was created", None))?;
        if !self.s.wait {
            return Ok(StepOutcome {
                summary: format!(
                    "not waited (--wait waits); follow it with: kubectl -n {} get backup {name} -w",
                    db.namespace
                ),
                details: Vec::new(),
                facts: Facts::new(),
            });
        }
        let kube = self.kube().await?;
        let status = wait_for_backup(
            &kube,
            &db.namespace,
            &db.cluster,
            &name,
            self.s.poll,
            self.printer,
        )
        .await?;
        let id = status.get("backupId").and_then(Value::as_str).unwrap_or("");
        let summary = format!(
            "Backup {name} completed: backup id {id}, WAL {} to {}",
            status
                .get("beginWal")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            status.get("endWal").and_then(Value::as_str).unwrap_or("?")
        );
        let f = facts(json!({"backup_id": id,
            "begin_wal": status.get("beginWal"), "end_wal": status.get("endWal")}));
        self.status = Some(status);
        Ok(StepOutcome {
            summary,
            details: Vec::new(),
            facts: f,
        })
    }
}

/// Creates a Backup of `cluster` with `method`; returns its name.
pub async fn create_backup(
    kube: &Kube,
    namespace: &str,
    cluster: &str,
    method: &str,
) -> Result<String, StepError> {
    let stamp = format!("{cluster}-{}", Utc::now().format("%Y%m%d%H%M%S"));
    // Two backups in the same second: the second gets a suffix.
    let mut n = 0;
    loop {
        let name = if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        match kube
            .create(BACKUP, &backup_object(&name, namespace, cluster, method))
            .await
        {
            Ok(_) => return Ok(name),
            Err(e) if e.message.contains("already exists") && n < 4 => n += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Follows Backup `name` until the operator says completed (its status) or
/// failed (a finding with the error and what to check).
pub async fn wait_for_backup(
    kube: &Kube,
    namespace: &str,
    cluster: &str,
    name: &str,
    poll: Duration,
    printer: &Printer,
) -> Result<Value, StepError> {
    let mut last_phase = String::new();
    loop {
        let backup = kube.get(BACKUP, namespace, name).await?.ok_or_else(|| {
            StepError::finding(
                format!("Backup {namespace}/{name} disappeared while waiting for it"),
                None,
            )
        })?;
        let status = backup.get("status").cloned().unwrap_or(Value::Null);
        let phase = status
            .get("phase")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if phase != last_phase && !phase.is_empty() {
            printer.info(&format!("Backup {name}: {phase}"));
            last_phase.clone_from(&phase);
        }
        match phase.as_str() {
            "completed" => return Ok(status),
            // The operator gives up on a backup whose WAL cannot be archived.
            "failed" | "walArchivingFailing" => {
                let error = status
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("(the operator gave no error)");
                return Err(StepError::finding(
                    format!("Backup {namespace}/{name} failed: {error}"),
                    Some(failure_hint(kube, namespace, cluster).await),
                ));
            }
            _ => tokio::time::sleep(poll).await,
        }
    }
}

/// What to check after a failed backup, with the Cluster's own archiving
/// condition when it says something.
async fn failure_hint(kube: &Kube, namespace: &str, cluster: &str) -> String {
    let mut hint = String::from(
        "check, in order: the identity binding (Workload Identity / IRSA / the credentials Secret), the bucket permissions for the pods, then the Cluster's ContinuousArchiving condition",
    );
    if let Ok(Some(c)) = kube.get(CLUSTER, namespace, cluster).await
        && let Some(cond) = c
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|x| x.get("type").and_then(Value::as_str) == Some("ContinuousArchiving"))
            })
    {
        let status = cond.get("status").and_then(Value::as_str).unwrap_or("?");
        let message = cond.get("message").and_then(Value::as_str).unwrap_or("");
        let _ = write!(hint, "; ContinuousArchiving is {status} now");
        if !message.is_empty() {
            let _ = write!(hint, ": {message}");
        }
    }
    hint
}

/// Whether the environment names S3 credentials of its own.
fn local_s3_credentials() -> bool {
    [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

impl BackupRun<'_> {
    /// With no S3 credentials here, the keys of the Secret the manifest names,
    /// read from the cluster and held in memory only.
    async fn secret_keys(
        &mut self,
        db: &Database,
        credentials: &crate::gitops::discover::Credentials,
    ) -> Option<crate::store::S3Keys> {
        if local_s3_credentials() {
            return None;
        }
        let kube = self.kube().await.ok()?;
        match kube.s3_keys(&db.namespace, credentials).await {
            Ok(Some(keys)) => {
                self.printer.info(&format!(
                    "reading the catalog with the keys of Secret {} (held in memory only)",
                    keys.from
                ));
                Some(keys)
            }
            Ok(None) => None,
            Err(e) => {
                self.printer.warn(&format!(
                    "no S3 credentials here, and the Secret the manifest names cannot be read: {}",
                    e.message
                ));
                None
            }
        }
    }

    async fn confirm(&mut self) -> Result<StepOutcome, StepError> {
        if !self.s.wait {
            return Ok(StepOutcome {
                summary: "not checked (--wait waits and checks the catalog)".to_owned(),
                details: Vec::new(),
                facts: Facts::new(),
            });
        }
        let db = self.db()?.clone();
        let id = self
            .status
            .as_ref()
            .and_then(|s| s.get("backupId"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| StepError::finding("the completed Backup names no backupId", None))?;
        let c = db.catalog.clone().ok_or_else(|| {
            StepError::usage(
                format!("the manifests of {}/{} name no catalog", db.env, db.svc),
                None,
            )
        })?;
        let repo = Repo::load(&self.s.root).map_err(|e| StepError::usage(e.to_string(), None))?;
        let args = CatalogArgs {
            dest: c.destination_path.clone(),
            server_name: Some(c.server_name.clone()),
            endpoint_url: c
                .endpoint_url
                .clone()
                .or_else(|| repo.env(&db.env).endpoint_url.clone())
                .or_else(|| self.s.endpoint_url.clone()),
            cloud_provider: None,
            wal_segment_size: None,
            concurrency: self.s.concurrency,
            list_strategy: "auto".to_owned(),
            now: None,
            no_wal: true,
            wal_scan_limit: 64,
            s3_keys: self.secret_keys(&db, &c.credentials).await,
        };
        let quiet = Printer::new(OutputFormat::Json, crate::cli::ColorChoice::Never, 0);
        // The WAL at the end of the backup is archived shortly after it: look again
        // until it is there, for a while.
        let deadline = std::time::Instant::now() + self.s.confirm_timeout;
        loop {
            let loaded = load(&args, self.s.zone, &quiet)
                .await
                .map_err(StepError::from)?;
            let found = loaded.catalog.backups.iter().find(|b| b.id == id);
            match found {
                Some(b) if b.usable => {
                    return Ok(StepOutcome {
                        summary: format!(
                            "{} holds backup {id}: DONE, data and WAL {} to {} present",
                            loaded.display,
                            b.begin_wal.as_deref().unwrap_or("?"),
                            b.end_wal.as_deref().unwrap_or("?")
                        ),
                        details: Vec::new(),
                        facts: facts(json!({"catalog": loaded.display, "backup_id": id})),
                    });
                }
                Some(b) if !b.is_done() && b.status != "STARTED" => {
                    return Err(StepError::finding(
                        format!(
                            "the catalog {} holds backup {id} as {}: {}",
                            loaded.display,
                            b.status,
                            b.unusable_reasons.join("; ")
                        ),
                        Some("the operator said completed; compare the Backup's status with the sidecar's logs".to_owned()),
                    ));
                }
                found => {
                    if std::time::Instant::now() >= deadline {
                        let state = found.map_or_else(
                            || "is not there".to_owned(),
                            |b| format!("is {} but {}", b.status, b.unusable_reasons.join("; ")),
                        );
                        return Err(StepError::finding(
                            format!(
                                "the operator says backup {id} completed, but in {} it {state}",
                                loaded.display
                            ),
                            Some("the Cluster may archive to another destinationPath or serverName than the manifests say; compare `kubectl get backup -o yaml` with `cnpg-ops ls`".to_owned()),
                        ));
                    }
                    self.printer.info(&format!(
                        "backup {id} is not yet DONE with its WAL in {}; looking again",
                        loaded.display
                    ));
                    tokio::time::sleep(self.s.poll).await;
                }
            }
        }
    }
}

impl Runbook for BackupRun<'_> {
    fn actions(&self) -> &'static [&'static str] {
        ACTIONS
    }

    fn plan(&mut self, step: &Step) -> Result<StepPlan, StepError> {
        let summary = match step.action.as_str() {
            "create-backup" => match (&self.db, self.method) {
                (Some(db), Some(m)) => format!(
                    "create a Backup of {}/{} with method {m}",
                    db.namespace, db.cluster
                ),
                _ => "create a Backup".to_owned(),
            },
            _ => step.title.clone(),
        };
        Ok(StepPlan {
            summary,
            details: Vec::new(),
            refusal: None,
        })
    }

    async fn apply(&mut self, step: &Step, _plan: &StepPlan) -> Result<StepOutcome, StepError> {
        match step.action.as_str() {
            "locate-database" => self.locate().await,
            "create-backup" => self.create().await,
            "wait-backup" => self.wait().await,
            "confirm-backup-in-catalog" => self.confirm().await,
            other => Err(StepError::usage(format!("unknown action {other}"), None)),
        }
    }

    fn resume(&mut self, step: &Step, done: &Facts) -> Result<bool, StepError> {
        // A Backup created by an interrupted run is waited for, not made again.
        if step.action == "create-backup"
            && let Some(name) = done.get("backup").and_then(Value::as_str)
        {
            self.backup = Some(name.to_owned());
            return Ok(true);
        }
        Ok(true)
    }
}

/// The kube module's errors are store-like: exit 3.
impl From<KubeError> for crate::exit::Failure {
    fn from(e: KubeError) -> Self {
        crate::exit::Failure {
            code: STORE,
            message: e.message,
            hint: Some(e.hint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::schema;

    #[test]
    fn the_method_follows_the_live_cluster() {
        let plugin = json!({"spec": {"plugins": [{"name": BARMAN_PLUGIN, "isWALArchiver": true}]}});
        assert_eq!(live_method(&plugin), Some("plugin"));
        let disabled = json!({"spec": {"plugins": [{"name": BARMAN_PLUGIN, "enabled": false}],
                              "backup": {"barmanObjectStore": {"destinationPath": "s3://b"}}}});
        assert_eq!(live_method(&disabled), Some("barmanObjectStore"));
        assert_eq!(live_method(&json!({"spec": {}})), None);
    }

    #[test]
    fn backups_validate_against_the_crd() {
        for method in ["plugin", "barmanObjectStore"] {
            let b = backup_object("pg-20261124120000", "db", "pg", method);
            let errors = schema::validate(&b).unwrap();
            assert!(errors.is_empty(), "{method}: {errors:?}");
            let rules = crate::gitops::webhook::validate(&b);
            assert!(rules.is_empty(), "{method}: {rules:?}");
        }
        let b = backup_object("x", "db", "pg", "plugin");
        assert_eq!(b["spec"]["pluginConfiguration"]["name"], BARMAN_PLUGIN);
        assert!(
            backup_object("x", "db", "pg", "barmanObjectStore")["spec"]
                .get("pluginConfiguration")
                .is_none()
        );
    }
}
