//! `cnpg-ops new`: a new, empty application database in an env, born with
//! working backups.
//!
//! The folder follows the repository's conventions: another database of the
//! env is the model (or the one `--from` names) for the names, the image,
//! the storage class, the store settings and credentials, the backup
//! schedule and the Flux Kustomization; `.cnpg-ops.toml` says the rest
//! (namespace, archive, instances, memory, retention, CNI). What it renders:
//!
//! - the Namespace;
//! - the Cluster: initdb with data checksums, a pinned image, requests and
//!   limits with shared_buffers at a quarter of the memory limit, data and
//!   WAL volumes that grow in place, the WAL volume four times
//!   `max_wal_size`, monitoring when the repository runs the Prometheus
//!   Operator, and archiving through the barman-cloud plugin (in-tree only
//!   where the env still uses it and its operator does not deprecate it);
//! - the ObjectStore (plugin model) with the retention;
//! - the ScheduledBackup: a 6-field schedule, the Cluster's method,
//!   `immediate: true`;
//! - with `--vector`, a Database CR that keeps `vector` present in the
//!   application database (reclaim policy `retain`) and the same statement in
//!   `postInitApplicationSQL`, so the extension is created by the superuser in
//!   the right database;
//! - where the namespace is under default deny, the NetworkPolicies
//!   CloudNativePG needs, as CiliumNetworkPolicies or plain NetworkPolicies;
//! - the kustomization, in dependency order, and the env's Flux Kustomization
//!   for the folder (`dependsOn` the operators, SOPS decryption);
//! - the identity half: on GKE the Workload Identity binding
//!   `<namespace>/<cluster>` of the env's backup account; with S3 keys, the
//!   Secret the store references, listed with the `sops` command that creates
//!   it encrypted.
//!
//! `--from SVC` copies that database's folder instead, every name swapped:
//! its Cluster spec (sizing, parameters, affinity…), its other documents
//! (Database CRs, Poolers, policies), with a fresh initdb bootstrap and a
//! catalog of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::changes::ChangeSet;
use super::config::{self, Cni, Env, IdentityKind};
use super::discover::{self, BackupModel, Database, Discovery};
use super::docs::{self, BARMAN_PLUGIN, BarmanObjectStore, Cluster, ObjectStore};
use super::git::slash_path;
use super::netpol::{Allows, MONITORING_NAMESPACE, Need, OPERATOR_NAMESPACE};
use super::plan::{self, Files, PlanError};
use super::repo::{Doc, Repo};
use super::scaffold::{
    self, FluxFor, KUSTOMIZATION_FILE, NAMESPACE_FILE, Names, NeededSecret, SECRETS_FILE,
    STORE_FILE, SecretsFile,
};
use crate::lint::cnpg::in_tree_supported;
use crate::lint::platform::{endpoint_port, has_prometheus_operator, parse_quantity};
use crate::yaml;

/// File of the ScheduledBackup.
pub const SCHEDULE_FILE: &str = "scheduled-backup.yaml";
/// File of the pgvector Database CR.
pub const VECTOR_FILE: &str = "database-vector.yaml";
/// File of the NetworkPolicies.
pub const POLICY_FILE: &str = "network-policies.yaml";

/// The image of a database with no model: pinned, and a `standard` image
/// (the `minimal` ones do not ship pgvector).
pub const DEFAULT_IMAGE: &str = "ghcr.io/cloudnative-pg/postgresql:17.6-standard-bookworm";
/// Nightly at 02:00, seconds first as CloudNativePG reads it.
pub const DEFAULT_SCHEDULE: &str = "0 0 2 * * *";
/// Retention of a database with no model and no `retention` setting.
pub const DEFAULT_RETENTION: &str = "30d";
const GCP_SA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
const VECTOR_SQL: &str = "CREATE EXTENSION IF NOT EXISTS vector";

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    /// The env.
    pub env: String,
    /// The service (the database folder's name).
    pub svc: String,
    /// Copy this database of the env, names swapped.
    pub from: Option<String>,
    /// Install pgvector in the application database.
    pub vector: bool,
    /// The CNI whose policy kind to render (default: the env's); `Some`
    /// also renders a default deny for the namespace.
    pub cni: Option<Cni>,
    /// Namespace of the application's pods (the 5432 allow); default: any.
    pub app_namespace: Option<String>,
    /// The sops program that encrypts placeholder Secrets into the folder
    /// (None: the commit message says how to create them instead).
    pub sops: Option<PathBuf>,
}

/// Plans the new database folder of `req`, reading the repository at `root`.
///
/// Refuses when the folder, the namespace, the Flux Kustomization name or
/// the catalog are taken, when `--from` names no database of the env, when
/// the archive cannot be worked out, and when `--cni` contradicts the env's
/// configured CNI.
pub fn new_database(root: &Path, req: &NewRequest) -> Result<ChangeSet, PlanError> {
    let repo = Repo::load(root)?;
    let found = discover::discover(&repo);
    let problem = |p: String| scaffold::problem_of(&req.env, &req.svc, p);
    if !config::is_dns_label(&req.svc) {
        return Err(problem(format!(
            "`{}` is not a valid service name: expected lower-case letters, digits and `-` \
             (it names the namespace, the Cluster and the folder)",
            req.svc
        )));
    }
    let known_env =
        repo.config.env.contains_key(&req.env) || found.databases.iter().any(|d| d.env == req.env);
    if !known_env {
        let mut envs: Vec<&str> = repo
            .config
            .env
            .keys()
            .map(String::as_str)
            .chain(found.databases.iter().map(|d| d.env.as_str()))
            .collect();
        envs.sort_unstable();
        envs.dedup();
        return Err(problem(format!(
            "env `{}` is neither in {} nor holds a database: expected one of {}",
            req.env,
            config::FILE_NAME,
            envs.join(", ")
        )));
    }
    let env = repo.env(&req.env);
    let folder = env.database_folder(&req.svc);
    scaffold::refuse_existing(
        &repo,
        &found,
        &req.env,
        &req.svc,
        &folder,
        "choose another --svc, or check the existing one with cnpg-ops verify",
    )?;
    let model = match &req.from {
        Some(from) => Some(plan::find(&found, &req.env, from)?),
        None => pick_model(&found, &req.env),
    };
    let names = Names {
        src_env: req.env.clone(),
        dst_env: req.env.clone(),
        src_svc: model.map_or_else(String::new, |m| m.svc.clone()),
        dst_svc: req.svc.clone(),
    };
    let renamed = |name: &str, default: String| {
        let n = names.swap(name);
        if n == name { default } else { n }
    };
    let cluster = model.map_or_else(
        || format!("{}-pg", req.svc),
        |m| renamed(&m.cluster, format!("{}-pg", req.svc)),
    );
    let namespace = match &env.namespace {
        Some(t) => t.replace("{svc}", &req.svc),
        None => model.map_or_else(
            || format!("{}-{}", req.svc, req.env),
            |m| renamed(&m.namespace, format!("{}-{}", req.svc, req.env)),
        ),
    };
    if !config::is_dns_label(&namespace) {
        return Err(problem(format!(
            "the namespace would be `{namespace}`, which is not a valid namespace name\nhint: \
             set `namespace` under [env.{}] in {}",
            req.env,
            config::FILE_NAME
        )));
    }
    // Envs applied to the same Kubernetes cluster share its namespaces.
    let same_cluster = |e: &str| env.same_cluster(&repo.env(e));
    if let Some(other) = found
        .databases
        .iter()
        .find(|d| same_cluster(&d.env) && d.namespace == namespace)
    {
        return Err(problem(format!(
            "the namespace would be `{namespace}`, which {}/{} already uses: two Flux \
             Kustomizations would own it, and pruning one deletes the other's database\nhint: \
             set `namespace` under [env.{}] in {} (e.g. namespace = \"{{svc}}-{}\")",
            other.env,
            other.svc,
            req.env,
            config::FILE_NAME,
            req.env
        )));
    }
    if let Some(d) = repo.docs.iter().find(|d| {
        d.kind() == "Namespace"
            && d.api_version() == "v1"
            && d.name() == namespace
            && repo
                .config
                .env
                .keys()
                .chain(found.databases.iter().map(|x| &x.env))
                .filter(|e| d.file.components().any(|c| c.as_os_str() == e.as_str()))
                .all(|e| same_cluster(e))
    }) {
        return Err(problem(format!(
            "the namespace would be `{namespace}`, which {} already declares: two owners of one \
             namespace, and pruning one deletes what the other applies\nhint: set `namespace` \
             under [env.{}] in {}",
            slash_path(&d.file),
            req.env,
            config::FILE_NAME
        )));
    }
    let cni = resolve_cni(&repo, &env, req)?;
    let mut n = New {
        repo: &repo,
        found: &found,
        req,
        model,
        env,
        names,
        folder,
        cluster,
        namespace,
        cni,
        done: Vec::new(),
        todo: Vec::new(),
        made: Vec::new(),
        secrets: Vec::new(),
        vector: req.vector,
        destination: None,
        encrypted: false,
        app: (String::new(), String::new()),
        swapped: std::collections::BTreeSet::new(),
    };
    let mut files = Files {
        repo: &repo,
        changes: Vec::new(),
    };
    n.plan(&mut files)?;
    let mut body = n.body();
    let introduced = lint_introduced(&repo, &found, &files.changes);
    if !introduced.is_empty() {
        body.push_str(
            "\n\nLint findings this change brings (cnpg-ops lint; fix them before merging):\n",
        );
        for f in &introduced {
            let _ = writeln!(
                body,
                "  - {}:{}: {} [{}] {}",
                slash_path(&f.file),
                f.line,
                f.severity,
                f.rule,
                f.message
            );
        }
    }
    Ok(ChangeSet {
        changes: files.changes,
        subject: n.subject(),
        body,
    })
}

/// The lint findings the repository has with `changes` written and did
/// not have before (the rendering is meant to bring none).
fn lint_introduced(
    repo: &Repo,
    found: &Discovery,
    changes: &[super::changes::FileChange],
) -> Vec<crate::lint::LintFinding> {
    let key = |f: &crate::lint::LintFinding| (f.rule, f.file.clone(), f.message.clone());
    let before: std::collections::BTreeSet<_> = crate::lint::run(&crate::lint::Context {
        repo,
        discovery: found,
        git: None,
    })
    .iter()
    .map(key)
    .collect();
    let written: Vec<(PathBuf, Option<String>)> = changes
        .iter()
        .map(|c| (c.path.clone(), c.after.clone()))
        .collect();
    let after = repo.with_changes(&written);
    let after_found = discover::discover(&after);
    crate::lint::run(&crate::lint::Context {
        repo: &after,
        discovery: &after_found,
        git: None,
    })
    .into_iter()
    .filter(|f| !before.contains(&key(f)))
    .collect()
}

/// The database of the env the new one follows: one with a catalog, the
/// plugin model first.
fn pick_model<'d>(found: &'d Discovery, env: &str) -> Option<&'d Database> {
    let mut in_env: Vec<&Database> = found.databases.iter().filter(|d| d.env == env).collect();
    in_env.sort_by_key(|d| {
        (
            d.catalog.is_none(),
            d.backup_model != BackupModel::Plugin,
            d.svc.clone(),
        )
    });
    in_env.first().copied()
}

/// The CNI to render policies for: `--cni`, which must agree with the env's
/// configured one, else the env's.
fn resolve_cni(repo: &Repo, env: &Env, req: &NewRequest) -> Result<Cni, PlanError> {
    let configured = repo
        .config
        .env
        .get(&req.env)
        .and_then(|s| s.cni)
        .or(repo.config.defaults.cni);
    match (req.cni, configured) {
        (Some(asked), Some(set)) if asked != set => Err(scaffold::problem_of(
            &req.env,
            &req.svc,
            format!(
                "--cni {} contradicts cni = \"{}\" for env {} in {}: policies of the wrong kind \
                 are not enforced\nhint: drop --cni, or correct cni in {}",
                cni_name(asked),
                cni_name(set),
                req.env,
                config::FILE_NAME,
                config::FILE_NAME
            ),
        )),
        (Some(asked), _) => Ok(asked),
        (None, _) => Ok(env.cni),
    }
}

fn cni_name(c: Cni) -> &'static str {
    match c {
        Cni::Cilium => "cilium",
        Cni::Vanilla => "vanilla",
        Cni::None => "none",
    }
}

struct New<'a> {
    repo: &'a Repo,
    found: &'a Discovery,
    req: &'a NewRequest,
    model: Option<&'a Database>,
    env: Env,
    names: Names,
    folder: PathBuf,
    cluster: String,
    namespace: String,
    cni: Cni,
    /// What the change does around the folder.
    done: Vec<String>,
    /// What is left to do by hand.
    todo: Vec<String>,
    /// What the folder holds, one line each, for the body.
    made: Vec<String>,
    secrets: Vec<NeededSecret>,
    vector: bool,
    /// Where the new database archives (worked out once).
    destination: Option<String>,
    /// The application database and its owner.
    app: (String, String),
    /// Whether secrets.enc.yaml was written, encrypted placeholders.
    encrypted: bool,
    /// Names the copy swapped: (old, new).
    swapped: std::collections::BTreeSet<(String, String)>,
}

/// The backup model of the new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Plugin,
    Inline,
}

impl New<'_> {
    fn problem(&self, p: String) -> PlanError {
        scaffold::problem_of(&self.req.env, &self.req.svc, p)
    }

    /// Swaps the model's names in a copied value (see [`Swap::apply`]).
    fn swap(&mut self, v: &mut Value) {
        let Some(m) = self.model else { return };
        let swap = Swap {
            names: &self.names,
            exact: [
                (m.cluster.as_str(), self.cluster.as_str()),
                (m.namespace.as_str(), self.namespace.as_str()),
            ],
        };
        swap.apply(v, &mut self.swapped);
    }

    fn plan(&mut self, files: &mut Files<'_>) -> Result<(), PlanError> {
        let model_cluster = match self.model {
            Some(m) => Some(plan::cluster_of(self.repo, m)?.2),
            None => None,
        };
        let model_docs: Vec<&Doc> = self.model.map_or_else(Vec::new, |m| {
            self.repo
                .docs_in(&m.folder)
                .filter(|d| d.file.parent() == Some(m.folder.as_path()))
                .collect()
        });
        if model_docs.iter().any(|d| declares_vector(d)) && self.req.from.is_some() {
            self.vector = true;
        }
        let backup = self.backup_model(model_cluster.as_ref());
        self.app = self.app_names(model_cluster.as_ref());
        let model_app = model_cluster
            .as_ref()
            .map_or((None, None), super::render::app_names);
        let (store_config, store_name) = self.store(model_cluster.as_ref(), backup)?;
        let retention = match self
            .env
            .retention
            .clone()
            .or_else(|| self.model.and_then(|m| m.retention_policy.clone()))
        {
            Some(r) => r,
            None => self.default_retention(files, &store_config.destination_path)?,
        };
        let mut folder: Vec<(String, Vec<Value>)> = Vec::new();
        let mut push = |file: &str, doc: Value| match folder.iter_mut().find(|(f, _)| f == file) {
            Some((_, docs)) => docs.push(doc),
            None => folder.push((file.to_owned(), vec![doc])),
        };
        push(NAMESPACE_FILE, self.namespace_doc(&model_docs));
        let policies = self.policies(&model_docs)?;
        let policies_rendered = !policies.is_empty();
        for p in policies {
            push(POLICY_FILE, p);
        }
        if backup == Model::Plugin {
            let store = json!({
                "apiVersion": docs::OBJECT_STORE_API,
                "kind": "ObjectStore",
                "metadata": {"name": store_name, "namespace": self.namespace},
                "spec": {
                    "retentionPolicy": retention,
                    "configuration": docs::to_value(&store_config),
                },
            });
            push(STORE_FILE, store);
        }
        let cluster = self.cluster_doc(
            model_cluster.as_ref(),
            backup,
            &store_config,
            &store_name,
            &retention,
        )?;
        push(discover::MAIN_FILE, cluster);
        let mut copied_schedule = false;
        let mut copied_vector = false;
        if self.req.from.is_some() {
            for d in &model_docs {
                let Some((file, doc)) = self.copy(d, backup, &model_app, policies_rendered) else {
                    continue;
                };
                copied_schedule |= d.is("postgresql.cnpg.io", "ScheduledBackup");
                copied_vector |= declares_vector(d);
                push(&file, doc);
            }
        }
        if self.vector && !copied_vector {
            if backup == Model::Inline {
                // Database CRs manage extensions from operator 1.26 on; an
                // operator that still runs in-tree archiving is older.
                self.made.push(
                    "pgvector through postInitApplicationSQL only: Database CRs manage \
                     extensions from CloudNativePG 1.26, older than the operator here"
                        .to_owned(),
                );
            } else {
                push(VECTOR_FILE, self.vector_doc());
            }
        }
        if !copied_schedule {
            let schedule = self.schedule_doc(&model_docs, backup);
            push(SCHEDULE_FILE, schedule);
        }
        self.store_secrets(&store_config, &model_docs);
        if let (false, Some(sops)) = (self.secrets.is_empty(), &self.req.sops) {
            match self.secrets_file().encrypt(sops) {
                Ok(Some(text)) => {
                    files.set(&self.folder.join(SECRETS_FILE), text)?;
                    self.encrypted = true;
                }
                Ok(None) => {}
                Err(e) => self.todo.push(format!(
                    "sops could not encrypt the placeholders ({e}): create {SECRETS_FILE} with \
                     the command below"
                )),
            }
        }

        let mut resources = Vec::new();
        for (file, docs) in &folder {
            files.set(&self.folder.join(file), yaml::emit::to_stream(docs))?;
            resources.push(Value::String(file.clone()));
            if file == NAMESPACE_FILE && !self.secrets.is_empty() {
                resources.push(Value::String(SECRETS_FILE.to_owned()));
            }
        }
        let kustomization = json!({
            "apiVersion": docs::KUSTOMIZE_API,
            "kind": "Kustomization",
            "namespace": self.namespace,
            "resources": resources,
        });
        files.set(
            &self.folder.join(KUSTOMIZATION_FILE),
            yaml::emit::to_string(&kustomization),
        )?;
        let done = scaffold::flux_kustomization(
            &FluxFor {
                env: &self.env,
                svc: &self.req.svc,
                folder: &self.folder,
                namespace: &self.namespace,
                names: &self.names,
                model: self
                    .model
                    .map(|m| (m.folder.as_path(), m.namespace.as_str())),
                decrypt: !self.secrets.is_empty(),
            },
            files,
        )?;
        self.done.push(done);
        self.identity(files, &store_config, &retention)?;
        Ok(())
    }

    /// Plugin unless the env's model archives in-tree and the operator
    /// still supports that without deprecation.
    fn backup_model(&mut self, model: Option<&Cluster>) -> Model {
        let Some(m) = self.model else {
            return Model::Plugin;
        };
        if m.backup_model != BackupModel::Inline || model.is_none() {
            return Model::Plugin;
        }
        let file = self.folder.join(discover::MAIN_FILE);
        if in_tree_supported(self.repo, &file, Some(&self.req.env)) {
            return Model::Inline;
        }
        self.made.push(format!(
            "{}/{} archives in-tree (spec.backup.barmanObjectStore), which the operator here \
             deprecates: the new database uses the barman-cloud plugin",
            m.env, m.svc
        ));
        Model::Plugin
    }

    /// The store configuration (credentials and settings from the model,
    /// else the env's identity) and the ObjectStore's name.
    fn store(
        &mut self,
        model: Option<&Cluster>,
        backup: Model,
    ) -> Result<(BarmanObjectStore, String), PlanError> {
        let model_store = self.model_store(model);
        let destination = self.destination()?;
        let mut v = match &model_store {
            Some((_, c)) => docs::to_value(c),
            None => self.default_store(),
        };
        if let Some(m) = v.as_object_mut() {
            m.remove("serverName");
            m.insert("destinationPath".into(), Value::String(destination.clone()));
            let endpoint = self.env.endpoint_url.clone().or_else(|| {
                m.get("endpointURL")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            if let Some(e) = endpoint {
                m.insert("endpointURL".into(), Value::String(e));
            }
            for key in ["s3Credentials", "googleCredentials", "azureCredentials"] {
                if let Some(c) = m.get_mut(key) {
                    self.swap_secret_names(c);
                }
            }
        }
        let scheme = destination.split_once("://").map_or("", |(s, _)| s);
        let kind = ["googleCredentials", "s3Credentials", "azureCredentials"]
            .into_iter()
            .find(|k| v.get(*k).is_some());
        let fits = match (scheme, kind) {
            ("gs", Some(k)) => k == "googleCredentials",
            ("s3", Some(k)) => k == "s3Credentials",
            ("https" | "http", Some(k)) => k == "azureCredentials" || k == "s3Credentials",
            _ => true,
        };
        if !fits {
            return Err(self.problem(format!(
                "the new database would archive to {destination} with {} copied from the \
                 model: another kind of store\nhint: set `backup_destination` under [env.{}] in \
                 {} to a store of the same kind",
                kind.unwrap_or("no credentials"),
                self.req.env,
                config::FILE_NAME
            )));
        }
        let config: BarmanObjectStore = docs::from_value(&v).map_err(|e| {
            self.problem(format!(
                "the store configuration taken from the model does not read: {e}"
            ))
        })?;
        let name = match (&model_store, backup) {
            (Some((Some(n), _)), _) => {
                let swapped = self.names.swap(n);
                if swapped == *n {
                    format!("{}-store", self.req.svc)
                } else {
                    swapped
                }
            }
            _ => format!("{}-store", self.req.svc),
        };
        scaffold::refuse_taken_catalog(
            self.found,
            &self.req.env,
            &self.req.svc,
            &destination,
            &self.cluster,
        )?;
        Ok((config, name))
    }

    /// The model's store: its ObjectStore's name (plugin) and configuration.
    fn model_store(&self, model: Option<&Cluster>) -> Option<(Option<String>, BarmanObjectStore)> {
        let m = self.model?;
        match m.backup_model {
            BackupModel::Plugin => {
                let name = m.catalog.as_ref()?.object_store.clone();
                let (_, _, store) = plan::typed::<ObjectStore>(
                    self.repo,
                    &m.folder,
                    "barmancloud.cnpg.io",
                    "ObjectStore",
                    name.as_deref(),
                )?;
                Some((name, store.spec.configuration))
            }
            BackupModel::Inline => Some((None, model?.inline_store()?.clone())),
            _ => None,
        }
    }

    /// A store configuration for the env's identity, with nothing to copy.
    fn default_store(&self) -> Value {
        let svc = &self.req.svc;
        let mut v = json!({"destinationPath": ""});
        match self.env.identity {
            IdentityKind::GkeWorkloadIdentity => {
                v["googleCredentials"] = json!({"gkeEnvironment": true});
            }
            IdentityKind::S3Secret => {
                let secret = format!("{svc}-s3");
                v["s3Credentials"] = json!({
                    "accessKeyId": {"name": secret, "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": secret, "key": "ACCESS_SECRET_KEY"},
                });
            }
            IdentityKind::Azure => {
                v["azureCredentials"] = json!({
                    "connectionString": {"name": format!("{svc}-azure"), "key": "AZURE_CONNECTION_STRING"},
                });
            }
        }
        v["wal"] = json!({"compression": "gzip", "maxParallel": 2});
        v["data"] = json!({"compression": "gzip"});
        v
    }

    /// Renames the Secrets a credentials block names after the new service.
    fn swap_secret_names(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(n)) = m.get_mut("name") {
                    *n = self.names.swap(n);
                }
                for x in m.values_mut() {
                    if x.is_object() {
                        self.swap_secret_names(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.swap_secret_names(x)),
            _ => {}
        }
    }

    /// Where the new database archives: the env's `backup_destination`, else
    /// the model's bucket with its service folder swapped. Never ending in the
    /// Cluster's name, which barman appends again.
    fn destination(&mut self) -> Result<String, PlanError> {
        if let Some(d) = &self.destination {
            return Ok(d.clone());
        }
        let dest = self.work_out_destination()?;
        self.destination = Some(dest.clone());
        Ok(dest)
    }

    fn work_out_destination(&mut self) -> Result<String, PlanError> {
        let dest = if let Some(t) = &self.env.backup_destination {
            t.replace("{svc}", &self.req.svc)
        } else {
            // The model's bucket first: its credentials are the ones copied.
            let sibling = self
                .model
                .into_iter()
                .chain(
                    self.found
                        .databases
                        .iter()
                        .filter(|d| d.env == self.req.env),
                )
                .find_map(|d| d.catalog.as_ref().map(|c| (d, c)));
            let Some((d, c)) = sibling else {
                return Err(self.problem(format!(
                    "no archive for the new database: env `{env}` has no `backup_destination` \
                     and no other database to take the bucket from\nhint: set \
                     `backup_destination` under [env.{env}] in {file}, e.g. \
                     backup_destination = \"s3://<{env} bucket>/{{svc}}\"",
                    env = self.req.env,
                    file = config::FILE_NAME,
                )));
            };
            scaffold::infer_destination(&c.destination_path, &d.svc, &self.req.svc)
        };
        let trimmed = dest.trim_end_matches('/');
        if let Some(parent) = trimmed
            .strip_suffix(&self.cluster)
            .and_then(|p| p.strip_suffix('/'))
            .filter(|p| p.contains("://") && !p.ends_with(":/"))
        {
            self.made.push(format!(
                "archive at {parent}/ rather than {trimmed}: barman appends the server name \
                 ({}) to destinationPath",
                self.cluster
            ));
            return Ok(format!("{parent}/"));
        }
        Ok(dest)
    }

    fn namespace_doc(&self, model_docs: &[&Doc]) -> Value {
        let like = model_docs
            .iter()
            .find(|d| d.kind() == "Namespace" && d.api_version() == "v1");
        scaffold::namespace_doc(like.copied(), &self.namespace, Some(&self.names))
    }

    /// The Cluster.
    fn cluster_doc(
        &mut self,
        model: Option<&Cluster>,
        backup: Model,
        store: &BarmanObjectStore,
        store_name: &str,
        retention: &str,
    ) -> Result<Value, PlanError> {
        let mut spec = match (model, &self.req.from) {
            (Some(m), Some(_)) => self.copied_spec(m)?,
            _ => self.fresh_spec(model)?,
        };
        let (db, owner) = self.app.clone();
        let mut initdb = model
            .filter(|_| self.req.from.is_some())
            .and_then(|m| m.spec.bootstrap.as_ref())
            .and_then(|b| b.initdb.clone())
            .unwrap_or_else(|| json!({}));
        if let Some(i) = initdb.as_object_mut() {
            // An import reads from externalClusters, which are not copied.
            if i.remove("import").is_some() {
                self.made.push(
                    "initdb.import of the model left out: the new database starts empty".to_owned(),
                );
            }
        }
        self.swap(&mut initdb);
        if let Some(i) = initdb.as_object_mut() {
            i.insert("database".into(), Value::String(db.clone()));
            i.insert("owner".into(), Value::String(owner.clone()));
            i.entry("dataChecksums").or_insert(Value::Bool(true));
            if let Some(name) = i
                .get("secret")
                .and_then(|s| s.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned)
            {
                self.need(
                    &name,
                    &[("username", owner.as_str()), ("password", "<password>")],
                    Some("kubernetes.io/basic-auth"),
                    &format!("password of the application owner {owner}"),
                );
            }
            if self.vector {
                let sql = i
                    .entry("postInitApplicationSQL")
                    .or_insert_with(|| json!([]));
                if let Some(list) = sql.as_array_mut()
                    && !list
                        .iter()
                        .any(|s| s.as_str().is_some_and(crate::lint::cnpg::creates_vector))
                {
                    list.push(Value::String(VECTOR_SQL.to_owned()));
                }
            }
        }
        spec.insert("bootstrap".into(), json!({"initdb": initdb}));
        match backup {
            Model::Plugin => {
                let mut parameters = Map::new();
                if let Some(p) = model.and_then(Cluster::barman_plugin) {
                    for (k, v) in &p.parameters {
                        parameters.insert(k.clone(), Value::String(self.names.swap(v)));
                    }
                }
                parameters.insert(
                    "barmanObjectName".into(),
                    Value::String(store_name.to_owned()),
                );
                // A new catalog: the server name is the Cluster's own.
                parameters.remove("serverName");
                spec.insert(
                    "plugins".into(),
                    json!([{"name": BARMAN_PLUGIN, "isWALArchiver": true, "parameters": parameters}]),
                );
            }
            Model::Inline => {
                spec.insert(
                    "backup".into(),
                    json!({
                        "retentionPolicy": retention,
                        "barmanObjectStore": docs::to_value(store),
                    }),
                );
            }
        }
        if let Some(email) = self.gcp_service_account(store)? {
            let t = spec
                .entry("serviceAccountTemplate")
                .or_insert_with(|| json!({}));
            t["metadata"]["annotations"][GCP_SA_ANNOTATION] = Value::String(email);
        }
        let mut out = Map::new();
        out.insert("apiVersion".into(), json!(docs::CNPG_API));
        out.insert("kind".into(), json!("Cluster"));
        out.insert(
            "metadata".into(),
            json!({"name": self.cluster, "namespace": self.namespace}),
        );
        out.insert("spec".into(), Value::Object(order_spec(spec)));
        Ok(Value::Object(out))
    }

    /// The application database (and owner): the model's with the names
    /// swapped when copying, else the service with `-` as `_`.
    fn app_names(&self, model: Option<&Cluster>) -> (String, String) {
        let own = self.req.svc.replace('-', "_");
        let Some((db, owner)) = model
            .filter(|_| self.req.from.is_some())
            .map(super::render::app_names)
        else {
            return (own.clone(), own);
        };
        let swap = |n: Option<String>| {
            n.map(|d| {
                let swapped = swap_underscored(&d, &self.names.src_svc, &self.req.svc);
                if swapped == d { own.clone() } else { swapped }
            })
        };
        let db = swap(db).unwrap_or_else(|| own.clone());
        let owner = swap(owner).unwrap_or_else(|| db.clone());
        (db, owner)
    }

    /// The model's spec, names swapped, without what is rendered anew.
    fn copied_spec(&mut self, m: &Cluster) -> Result<Map<String, Value>, PlanError> {
        let mut c = m.clone();
        if let Some(sc) = self.env.storage_class.clone()
            && scaffold::set_storage_class(&mut c, &sc)
        {
            self.made.push(format!("storage class {sc} (env setting)"));
        }
        if let Some(limit) = self.env.memory_limit.clone() {
            let note = scaffold::set_memory_limit(&mut c, &limit).ok_or_else(|| {
                self.problem(format!(
                    "memory_limit = {limit:?} is not a Kubernetes quantity"
                ))
            })?;
            self.made.push(format!("{note} (env setting)"));
        }
        let mut v = docs::to_value(&c);
        let spec = v
            .get_mut("spec")
            .and_then(Value::as_object_mut)
            .map(std::mem::take)
            .unwrap_or_default();
        let mut spec: Map<String, Value> = spec
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "bootstrap" | "externalClusters" | "backup" | "replica"
                )
            })
            .collect();
        if let Some(Value::Array(plugins)) = spec.get_mut("plugins") {
            plugins.retain(|p| p.get("name").and_then(Value::as_str) != Some(BARMAN_PLUGIN));
            if plugins.is_empty() {
                spec.remove("plugins");
            }
        }
        if let Some(Value::Object(t)) = spec.get_mut("serviceAccountTemplate")
            && let Some(Value::Object(meta)) = t.get_mut("metadata")
            && let Some(Value::Object(a)) = meta.get_mut("annotations")
        {
            a.remove(GCP_SA_ANNOTATION);
        }
        if let Some(n) = self.env.new_instances(m.spec.instances) {
            spec.insert("instances".into(), json!(n));
        }
        let mut spec = Value::Object(spec);
        self.swap(&mut spec);
        self.spec_secrets(&spec);
        Ok(match spec {
            Value::Object(s) => s,
            _ => Map::new(),
        })
    }

    /// The Secrets a copied spec names: the superuser's, managed roles'
    /// passwords, TLS certificates.
    fn spec_secrets(&mut self, spec: &Value) {
        for (name, user, why) in scaffold::role_secrets(spec) {
            self.need(
                &name,
                &[("username", &user), ("password", "<password>")],
                Some("kubernetes.io/basic-auth"),
                &why,
            );
        }
        for (key, what) in [
            ("serverTLSSecret", "the server certificate"),
            ("serverCASecret", "the server CA"),
            ("clientCASecret", "the client CA"),
            (
                "replicationTLSSecret",
                "the streaming_replica client certificate",
            ),
        ] {
            if let Some(n) = spec
                .pointer(&format!("/certificates/{key}"))
                .and_then(Value::as_str)
            {
                let n = n.to_owned();
                self.need(&n, &[], Some("kubernetes.io/tls"), what);
            }
        }
    }

    /// A spec from the env's conventions and sound defaults.
    fn fresh_spec(&mut self, model: Option<&Cluster>) -> Result<Map<String, Value>, PlanError> {
        let production = self.env.production;
        let instances = self.env.instances.unwrap_or(if production { 3 } else { 1 });
        let image = self.image(model);
        let limit = self
            .env
            .memory_limit
            .clone()
            .unwrap_or_else(|| if production { "4Gi" } else { "2Gi" }.to_owned());
        let bytes = parse_quantity(&limit).ok_or_else(|| {
            self.problem(format!(
                "memory_limit = {limit:?} is not a Kubernetes quantity"
            ))
        })?;
        let mib = (bytes / (1024.0 * 1024.0)).floor();
        let shared_buffers = format!("{}MB", (mib / 4.0).floor().max(16.0));
        let effective_cache = format!("{}MB", (mib * 3.0 / 4.0).floor().max(64.0));
        let storage_class = self.env.storage_class.clone().or_else(|| {
            model
                .and_then(|m| m.spec.rest.get("storage"))
                .and_then(|s| s.get("storageClass"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let volume = |size: &str| {
            let mut v = json!({"size": size, "resizeInUseVolumes": true});
            if let Some(sc) = &storage_class {
                v["storageClass"] = Value::String(sc.clone());
            }
            v
        };
        let mut spec = Map::new();
        spec.insert("instances".into(), json!(instances));
        spec.insert("imageName".into(), Value::String(image));
        spec.insert(
            "storage".into(),
            volume(if production { "50Gi" } else { "10Gi" }),
        );
        spec.insert("walStorage".into(), volume("4Gi"));
        self.made.push(format!(
            "{instances} instance{}, memory {limit} (shared_buffers {shared_buffers}), data {}, \
             WAL 4Gi (four times max_wal_size 1GB, so an archiving outage has room before \
             the volume fills)",
            if instances == 1 { "" } else { "s" },
            if production { "50Gi" } else { "10Gi" }
        ));
        spec.insert(
            "postgresql".into(),
            json!({"parameters": {
                "max_connections": "100",
                "shared_buffers": shared_buffers,
                "effective_cache_size": effective_cache,
                "work_mem": "4MB",
                "maintenance_work_mem": "64MB",
                "max_wal_size": "1GB",
            }}),
        );
        spec.insert(
            "resources".into(),
            json!({
                "requests": {"cpu": if production { "1" } else { "250m" }, "memory": limit},
                "limits": {"memory": limit},
            }),
        );
        if has_prometheus_operator(self.repo) {
            spec.insert("monitoring".into(), json!({"enablePodMonitor": true}));
        } else {
            self.made.push(
                "no PodMonitor: the repository installs no Prometheus Operator (set \
                 monitoring.enablePodMonitor once it does)"
                    .to_owned(),
            );
        }
        Ok(spec)
    }

    /// The model's image when it is pinned to a minor version, else the
    /// default; a `minimal` image becomes `standard` for pgvector.
    fn image(&mut self, model: Option<&Cluster>) -> String {
        let from_model = model
            .and_then(|m| m.spec.rest.get("imageName"))
            .and_then(Value::as_str)
            .filter(|i| {
                let (name, digest) = i.split_once('@').unwrap_or((i, ""));
                digest.starts_with("sha256:")
                    || name.rsplit_once(':').is_some_and(|(_, tag)| {
                        tag.split('-').next().is_some_and(|v| v.contains('.'))
                    })
            })
            .map(str::to_owned);
        let image = from_model.unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
        if self.vector && image.contains("-minimal-") {
            let standard = image.replace("-minimal-", "-standard-");
            self.made.push(format!(
                "image {standard} rather than {image}: the minimal images do not ship pgvector"
            ));
            return standard;
        }
        image
    }

    /// The Google service account the pods act as, on Workload Identity.
    fn gcp_service_account(&self, store: &BarmanObjectStore) -> Result<Option<String>, PlanError> {
        let gke = store
            .google_credentials
            .as_ref()
            .is_some_and(|g| g.application_credentials.is_none());
        if !gke {
            return Ok(None);
        }
        match self.env.backup_service_account_email() {
            Some(e) => Ok(Some(e)),
            None => Err(self.problem(format!(
                "the store uses GKE Workload Identity but env `{env}` has no `gcp_project`, so \
                 the Google service account is unknown\nhint: set `gcp_project` under \
                 [env.{env}] in {}",
                config::FILE_NAME,
                env = self.req.env
            ))),
        }
    }

    /// A document of the model's folder for the copy, and the file it goes
    /// to; None for what is rendered anew or never copied.
    fn copy(
        &mut self,
        d: &Doc,
        backup: Model,
        model_app: &(Option<String>, Option<String>),
        policies_rendered: bool,
    ) -> Option<(String, Value)> {
        let kind = d.kind();
        let skipped = kind.ends_with("Secret")
            || (kind == "Namespace" && d.api_version() == "v1")
            || d.is("postgresql.cnpg.io", "Cluster")
            || d.is("postgresql.cnpg.io", "Backup")
            || d.is("barmancloud.cnpg.io", "ObjectStore")
            || d.api_version().starts_with("kustomize.config.k8s.io/")
            // Rendered anew for --cni, under the same names.
            || (policies_rendered
                && (d.is("networking.k8s.io", "NetworkPolicy")
                    || d.is("cilium.io", "CiliumNetworkPolicy")));
        if skipped || self.model.is_none() {
            return None;
        }
        let file = d.file.file_name()?.to_string_lossy().into_owned();
        if scaffold::is_encrypted(&file) {
            return None;
        }
        let mut v = d.value.clone();
        self.swap(&mut v);
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
            && meta.contains_key("namespace")
        {
            meta.insert("namespace".into(), Value::String(self.namespace.clone()));
        }
        if d.is("postgresql.cnpg.io", "ScheduledBackup")
            && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
        {
            set_method(spec, backup);
            spec.insert("immediate".into(), Value::Bool(true));
        }
        if d.is("postgresql.cnpg.io", "Database")
            && let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut)
        {
            // The application database and owner by their new names, as
            // initdb creates them (`_`, not `-`).
            let (db, owner) = &self.app;
            let original = |key: &str| {
                d.value
                    .pointer(&format!("/spec/{key}"))
                    .and_then(Value::as_str)
            };
            if original("name").is_some() && original("name") == model_app.0.as_deref() {
                spec.insert("name".into(), Value::String(db.clone()));
            }
            if original("owner").is_some() && original("owner") == model_app.1.as_deref() {
                spec.insert("owner".into(), Value::String(owner.clone()));
            }
        }
        Some((file, v))
    }

    fn schedule_doc(&self, model_docs: &[&Doc], backup: Model) -> Value {
        let like = model_docs
            .iter()
            .find(|d| d.is("postgresql.cnpg.io", "ScheduledBackup"));
        let schedule = like
            .and_then(|d| d.value.pointer("/spec/schedule"))
            .and_then(Value::as_str)
            .filter(|s| s.split_whitespace().count() == 6)
            .unwrap_or(DEFAULT_SCHEDULE);
        // The model's name with its service swapped, unless that leaves it
        // unchanged (it would clash).
        let name = like
            .and_then(|d| {
                let n = self.names.swap(d.name());
                (n != d.name()).then_some(n)
            })
            .unwrap_or_else(|| format!("{}-nightly", self.cluster));
        let mut spec = Map::new();
        spec.insert("schedule".into(), json!(schedule));
        spec.insert("immediate".into(), json!(true));
        spec.insert("backupOwnerReference".into(), json!("self"));
        spec.insert("cluster".into(), json!({"name": self.cluster}));
        set_method(&mut spec, backup);
        json!({
            "apiVersion": docs::CNPG_API,
            "kind": "ScheduledBackup",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        })
    }

    fn vector_doc(&self) -> Value {
        let (db, owner) = &self.app;
        json!({
            "apiVersion": docs::CNPG_API,
            "kind": "Database",
            "metadata": {"name": format!("{}-vector", self.req.svc), "namespace": self.namespace},
            "spec": {
                "cluster": {"name": self.cluster},
                "name": db,
                "owner": owner,
                "databaseReclaimPolicy": "retain",
                "extensions": [{"name": "vector", "ensure": "present"}],
            },
        })
    }

    /// The NetworkPolicies of the namespace: when `--cni` asks for them, or
    /// when the model's namespace has policies of its own (the env's
    /// convention), or when a cluster-wide Cilium policy puts every
    /// namespace under default deny (then the allows only).
    fn policies(&mut self, model_docs: &[&Doc]) -> Result<Vec<Value>, PlanError> {
        let is_policy = |d: &Doc| {
            d.is("networking.k8s.io", "NetworkPolicy") || d.is("cilium.io", "CiliumNetworkPolicy")
        };
        let convention = model_docs.iter().any(|d| is_policy(d)) && self.req.from.is_none();
        let clusterwide = self
            .repo
            .docs
            .iter()
            .any(|d| d.is("cilium.io", "CiliumClusterwideNetworkPolicy"));
        let explicit = self.req.cni.is_some_and(|c| c != Cni::None);
        if !(explicit || convention || clusterwide) || self.req.from.is_some() && !explicit {
            return Ok(Vec::new());
        }
        if self.cni == Cni::None {
            if self.req.cni.is_none() {
                self.made.push(format!(
                    "no NetworkPolicies: env {}'s CNI enforces none (cni = \"none\")",
                    self.req.env
                ));
            }
            return Ok(Vec::new());
        }
        let own_deny = explicit || convention;
        let dest = self.destination()?;
        let endpoint = self.env.endpoint_url.clone().or_else(|| {
            self.model
                .and_then(|m| m.catalog.as_ref())
                .and_then(|c| c.endpoint_url.clone())
        });
        let (port, in_cluster) = endpoint_port(endpoint.as_deref(), &dest);
        let allows = Allows {
            instances: json!({"cnpg.io/cluster": self.cluster}),
            service_cidr: self.env.service_cidr.as_deref(),
            app_namespace: self.req.app_namespace.as_deref(),
        };
        let cilium = self.cni == Cni::Cilium;
        if cilium && self.env.service_cidr.is_none() {
            self.todo.push(format!(
                "the API server egress allows Cilium's kube-apiserver entity only: set \
                 service_cidr under [env.{}] in {} to allow the service CIDR as well",
                self.req.env,
                config::FILE_NAME
            ));
        }
        let docs = allows.policies(
            &self.namespace,
            &self.cluster,
            cilium,
            own_deny,
            &Need::all(port, in_cluster),
        );
        if self.req.app_namespace.is_none() {
            self.todo.push(format!(
                "{POLICY_FILE} lets pods of any namespace reach 5432: narrow it to the \
                 application's namespace (or run again with --app-namespace)"
            ));
        }
        self.made.push(format!(
            "{} {}: {}DNS, the object store on port {port}, the API server, replication and the \
             instance manager in the namespace, the operator from {OPERATOR_NAMESPACE}, clients \
             on 5432, metrics from {MONITORING_NAMESPACE}",
            docs.len(),
            if self.cni == Cni::Cilium {
                "CiliumNetworkPolicies"
            } else {
                "NetworkPolicies"
            },
            if own_deny { "default deny, then " } else { "" },
        ));
        Ok(docs)
    }

    /// Records the Secrets the store names, with the model's keys.
    fn secrets_file(&self) -> SecretsFile<'_> {
        SecretsFile {
            repo: self.repo,
            found: self.found,
            env: &self.req.env,
            namespace: &self.namespace,
            path: SecretsFile::path_in(&self.folder),
            secrets: &self.secrets,
        }
    }

    fn store_secrets(&mut self, store: &BarmanObjectStore, model_docs: &[&Doc]) {
        for (name, key) in scaffold::secret_refs(store) {
            let is_ca = store
                .rest
                .get("endpointCA")
                .and_then(|c| c.get("name"))
                .and_then(Value::as_str)
                == Some(name.as_str());
            let why = if is_ca {
                format!(
                    "CA of the endpoint of the archive {}",
                    store.destination_path
                )
            } else {
                format!("credentials of the archive {}", store.destination_path)
            };
            let placeholder = format!("<{key}>");
            self.need(&name, &[(&key, &placeholder)], None, &why);
            let original = model_docs.iter().find(|d| {
                d.kind() == "Secret"
                    && d.file.to_str().is_some_and(scaffold::is_encrypted)
                    && self.names.swap(d.name()) == name
            });
            if let Some(d) = original {
                let kind = d.value.get("type").and_then(Value::as_str);
                let keys: Vec<String> = ["stringData", "data"]
                    .iter()
                    .filter_map(|k| d.value.get(*k).and_then(Value::as_object))
                    .flat_map(|m| m.keys().cloned())
                    .collect();
                for k in keys {
                    let p = format!("<{k}>");
                    self.need(&name, &[(&k, &p)], kind, &why);
                }
            }
        }
    }

    fn need(&mut self, name: &str, keys: &[(&str, &str)], kind: Option<&str>, why: &str) {
        scaffold::need(&mut self.secrets, name, keys, kind, why);
    }

    /// [`DEFAULT_RETENTION`], shortened to fit under the bucket's shortest
    /// Delete rule with a day between backups to spare.
    fn default_retention(
        &mut self,
        files: &Files<'_>,
        destination: &str,
    ) -> Result<String, PlanError> {
        let default_days: i64 = DEFAULT_RETENTION
            .trim_end_matches('d')
            .parse()
            .unwrap_or(30);
        let shortest = scaffold::bucket_entry(files, &self.env, destination)?
            .and_then(|(b, e)| scaffold::shortest_delete_days(&e).map(|age| (b, age)));
        match shortest {
            Some((bucket, age)) if age - 2 < default_days && age > 2 => {
                let days = age - 2;
                self.made.push(format!(
                    "retention {days}d: bucket {bucket} deletes objects after {age} days, which \
                     must stay longer than the retention plus a day between backups"
                ));
                Ok(format!("{days}d"))
            }
            _ => Ok(DEFAULT_RETENTION.to_owned()),
        }
    }

    /// Workload Identity binding (GKE) and the bucket's lifecycle.
    fn identity(
        &mut self,
        files: &mut Files<'_>,
        store: &BarmanObjectStore,
        retention: &str,
    ) -> Result<(), PlanError> {
        let Some(email) = self.gcp_service_account(store)? else {
            return Ok(());
        };
        scaffold::own_identity(
            files,
            &scaffold::OwnArchive {
                env: &self.env,
                namespace: &self.namespace,
                cluster: &self.cluster,
                email: &email,
                destination: &store.destination_path,
                retention: Some(retention),
                archiver: "the database",
            },
            &mut self.done,
            &mut self.todo,
        )?;
        Ok(())
    }

    fn subject(&self) -> String {
        match &self.req.from {
            Some(from) => format!(
                "{}/{}: new database, copied from {}/{from}",
                self.req.env, self.req.svc, self.req.env
            ),
            None => format!("{}/{}: new database", self.req.env, self.req.svc),
        }
    }

    fn body(&self) -> String {
        let mut b = String::new();
        let _ = writeln!(
            b,
            "Creates {}: Cluster {}/{}, an empty database bootstrapped by initdb with data \
             checksums{}, archiving from its first WAL with a nightly ScheduledBackup that also \
             runs at once.",
            slash_path(&self.folder),
            self.namespace,
            self.cluster,
            if self.vector {
                ", pgvector in the application database"
            } else {
                ""
            }
        );
        match (self.model, &self.req.from) {
            (Some(m), Some(_)) => {
                let _ = writeln!(
                    b,
                    "Copied from {}/{} with its names swapped; its data is not copied.",
                    m.env, m.svc
                );
                if !self.swapped.is_empty() {
                    let pairs: Vec<String> = self
                        .swapped
                        .iter()
                        .map(|(from, to)| format!("{from} → {to}"))
                        .collect();
                    let _ = writeln!(b, "Renamed: {}.", pairs.join(", "));
                }
            }
            (Some(m), None) => {
                let _ = writeln!(
                    b,
                    "Follows {}/{} for the names, the store settings, the schedule and the \
                     image when it is pinned.",
                    m.env, m.svc
                );
            }
            _ => {}
        }
        if !self.made.is_empty() {
            b.push('\n');
            for m in &self.made {
                let _ = writeln!(b, "  - {m}");
            }
        }
        if !self.done.is_empty() {
            b.push_str("\nAlso:\n");
            for d in &self.done {
                let _ = writeln!(b, "  - {d}");
            }
        }
        b.push('\n');
        if self.secrets.is_empty() {
            b.push_str("No Secrets to create.\n");
        } else if self.encrypted {
            let path = SecretsFile::path_in(&self.folder);
            let _ = writeln!(
                b,
                "{path} holds these Secrets of namespace {}, encrypted for env {} with \
                 placeholder values (<...>); put the real values in before this is merged \
                 (cnpg-ops verify fails on a placeholder):",
                self.namespace, self.req.env
            );
            b.push_str(&scaffold::secret_lines(&self.secrets));
            let _ = writeln!(b, "\n  sops edit {}", scaffold::shell_quote(&path));
        } else {
            let _ = writeln!(
                b,
                "Secrets to create in namespace {} before this is merged; kustomization.yaml \
                 lists {SECRETS_FILE}, so Flux applies nothing of the folder until it exists:",
                self.namespace
            );
            b.push_str(&self.secrets_file().howto());
        }
        if !self.todo.is_empty() {
            b.push_str("\nStill to do by hand:\n");
            for t in &self.todo {
                let _ = writeln!(b, "  - {t}");
            }
        }
        let _ = write!(
            b,
            "\nOnce Flux has applied it: cnpg-ops verify --env {} --svc {}",
            self.req.env, self.req.svc
        );
        b
    }
}

/// Whether a document is a Database CR that installs pgvector.
fn declares_vector(d: &Doc) -> bool {
    if d.is("postgresql.cnpg.io", "Database") {
        return d
            .value
            .pointer("/spec/extensions")
            .and_then(Value::as_array)
            .is_some_and(|e| e.iter().any(|x| x["name"] == "vector"));
    }
    false
}

/// Sets a (Scheduled)Backup's method for the backup model.
fn set_method(spec: &mut Map<String, Value>, backup: Model) {
    match backup {
        Model::Plugin => {
            spec.insert("method".into(), json!("plugin"));
            spec.insert("pluginConfiguration".into(), json!({"name": BARMAN_PLUGIN}));
        }
        Model::Inline => {
            spec.insert("method".into(), json!("barmanObjectStore"));
            spec.remove("pluginConfiguration");
        }
    }
}

/// `s` with `from` swapped for `to` as a whole `_`- or `-`-separated token.
fn swap_underscored(s: &str, from: &str, to: &str) -> String {
    let dashed = |x: &str| x.replace('_', "-");
    scaffold::swap_token(&dashed(s), &dashed(from), &dashed(to)).replace('-', "_")
}

/// What a copy renames.
struct Swap<'a> {
    names: &'a Names,
    /// (model's, new) Cluster and namespace: equal strings anywhere are
    /// replaced.
    exact: [(&'a str, &'a str); 2],
}

impl Swap<'_> {
    /// Swaps the model's names in a copied document: the values of `name`
    /// and `namespace` keys (references to Secrets, ConfigMaps, the
    /// Cluster…) and of labels and annotations have the service's token
    /// swapped; any other string is replaced only when it is the model's
    /// Cluster or namespace name. Selectors, tolerations, SQL and
    /// parameters are otherwise left as they are. Returns what changed.
    fn apply(&self, v: &mut Value, changed: &mut std::collections::BTreeSet<(String, String)>) {
        self.walk(v, false, changed);
    }

    fn walk(
        &self,
        v: &mut Value,
        is_name: bool,
        changed: &mut std::collections::BTreeSet<(String, String)>,
    ) {
        match v {
            Value::String(s) => {
                let new = if let Some((_, to)) = self.exact.iter().find(|(from, _)| from == s) {
                    (*to).to_owned()
                } else if is_name {
                    self.names.swap(s)
                } else {
                    return;
                };
                if new != *s {
                    changed.insert((s.clone(), new.clone()));
                    *s = new;
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|x| self.walk(x, is_name, changed)),
            Value::Object(m) => {
                let labels = is_name;
                for (k, x) in m.iter_mut() {
                    if matches!(k.as_str(), "imageName" | "parameters" | "image") {
                        continue;
                    }
                    let name = labels
                        || matches!(k.as_str(), "name" | "namespace")
                        || (matches!(k.as_str(), "labels" | "annotations") && x.is_object());
                    self.walk(x, name, changed);
                }
            }
            _ => {}
        }
    }
}

/// The spec in the order people write it: sizing first, bootstrap and
/// archiving last.
fn order_spec(mut spec: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for k in ["instances", "imageName"] {
        if let Some(x) = spec.shift_remove(k) {
            out.insert(k.to_owned(), x);
        }
    }
    let last = ["bootstrap", "backup", "plugins"];
    let rest: Vec<String> = spec
        .keys()
        .filter(|k| !last.contains(&k.as_str()))
        .cloned()
        .collect();
    for k in rest {
        if let Some(x) = spec.shift_remove(&k) {
            out.insert(k, x);
        }
    }
    for k in last {
        if let Some(x) = spec.shift_remove(k) {
            out.insert(k.to_owned(), x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underscored_names_swap_whole_tokens() {
        assert_eq!(swap_underscored("foo_app", "foo", "orders"), "orders_app");
        assert_eq!(swap_underscored("food", "foo", "orders"), "food");
        assert_eq!(swap_underscored("foo", "foo", "my-svc"), "my_svc");
    }

    #[test]
    fn spec_keys_are_ordered() {
        let mut m = Map::new();
        for k in ["plugins", "bootstrap", "storage", "imageName", "instances"] {
            m.insert(k.into(), json!(1));
        }
        let keys: Vec<String> = order_spec(m).keys().cloned().collect();
        assert_eq!(
            keys,
            ["instances", "imageName", "storage", "bootstrap", "plugins"]
        );
    }
}
