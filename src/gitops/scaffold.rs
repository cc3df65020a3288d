//! A new database folder in another env, cloned from an existing database:
//! the prod → dev clone when the dev folder does not exist yet.
//!
//! The source folder's documents are copied with every name swapped (the
//! source env's and service's `-`-separated tokens become the destination's)
//! and the destination env's rules from `.cnpg-ops.toml` applied (namespace,
//! archive, instances, storage class, memory, retention). The Cluster is a
//! recovery Cluster (`render::recovery_cluster`): it reads the source catalog
//! read-only, with the source `serverName` written explicitly, and archives
//! into the destination env's own store under a fresh `serverName`
//! generation (`<cluster>-g2`), so the empty-archive check passes and the
//! source's archive is never written.
//!
//! What is not copied: the SOPS-encrypted Secrets (they are encrypted for the
//! source env). The change set's body lists every Secret the new folder needs
//! and the `sops` command that creates the encrypted file; `kustomization.yaml`
//! already lists that file, so Flux applies nothing of the folder until it
//! is committed.
//!
//! Around the folder: the env's Flux Kustomization for it, and on GKE the
//! Workload Identity binding of the new Cluster and object read on the
//! source bucket for the destination env's backup account.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::changes::ChangeSet;
use super::config::{self, Env, IdentityKind};
use super::discover::{self, BackupModel, CatalogLocation, Credentials, Database, Discovery};
use super::docs::{self, BarmanObjectStore, Cluster, ObjectStore};
use super::edits;
use super::git::slash_path;
use super::plan::{self, Files, PlanError, RecoveryRequest};
use super::render::{self, Archive, RecoverySpec, Source};
use super::repo::{Doc, Repo};
use crate::catalog::retention::Policy;
use crate::lint::platform::{parse_pg_size, parse_quantity};
use crate::yaml;

/// kustomization.yaml keys left out of a clone (listed to do by hand).
const NOT_COPIED: &[&str] = &[
    "secretGenerator",
    "configMapGenerator",
    "generators",
    "transformers",
    "patches",
    "patchesStrategicMerge",
    "patchesJson6902",
    "replacements",
    "labels",
    "commonLabels",
    "commonAnnotations",
];

/// File of the new folder's encrypted Secrets (created by hand with sops).
pub const SECRETS_FILE: &str = "secrets.enc.yaml";
/// File of the new folder's ObjectStores (plugin model).
pub const STORE_FILE: &str = "object-store.yaml";
/// File of the new folder's Namespace.
pub const NAMESPACE_FILE: &str = "namespace.yaml";
/// File of the new folder's kustomize configuration.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

const GCP_SA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
const MIB: f64 = 1024.0 * 1024.0;
const DEFAULT_ENCRYPTED_REGEX: &str = "^(data|stringData)$";

/// Plans a new database folder for `req.dest_env`/`req.dest_svc`, cloned
/// from `req.source_env`/`req.source_svc` up to `req.target`, reading the
/// repository at `root`. `req.dest_cluster` names the new Cluster (default:
/// the source Cluster's name with the names swapped); `req.label` is not
/// used.
///
/// Refuses when the destination folder exists (re-pointing an existing
/// database is `plan::recovery`), when the namespace or the catalog the new
/// Cluster would use is already taken, and when the destination env's archive
/// cannot be worked out (`backup_destination`).
pub fn new_database(root: &Path, req: &RecoveryRequest) -> Result<ChangeSet, PlanError> {
    let repo = Repo::load(root)?;
    let found = discover::discover(&repo);
    let src = plan::find(&found, &req.source_env, &req.source_svc)?;
    let (src_file, _, src_cluster) = plan::cluster_of(&repo, src)?;
    let src_catalog = plan::catalog_of(src)?.clone();
    if src.backup_model == BackupModel::Both {
        return Err(PlanError::Source {
            env: src.env.clone(),
            svc: src.svc.clone(),
            problem:
                "both inline and plugin backups are configured; fix that first (cnpg-ops lint)"
                    .into(),
        });
    }
    let env = repo.env(&req.dest_env);
    let folder = env.database_folder(&req.dest_svc);
    refuse_existing(
        &repo,
        &found,
        &req.dest_env,
        &req.dest_svc,
        &folder,
        "to clone into it, re-point that database at the source (a clone into an existing \
         database)",
    )?;
    let names = Names {
        src_env: src.env.clone(),
        dst_env: req.dest_env.clone(),
        src_svc: src.svc.clone(),
        dst_svc: req.dest_svc.clone(),
    };
    let cluster = req
        .dest_cluster
        .clone()
        .unwrap_or_else(|| names.swap(&src.cluster));
    let namespace = namespace(&env, &names, src, &found, req)?;
    let (destination, sibling) = destination(&env, &found, req, &src_catalog)?;
    let endpoint = env
        .endpoint_url
        .clone()
        .or_else(|| sibling.and_then(|s| s.catalog.as_ref()?.endpoint_url.clone()))
        .or_else(|| src_catalog.endpoint_url.clone());
    let endpoint_from_source = env.endpoint_url.is_none()
        && sibling.is_none()
        && src.env != req.dest_env
        && endpoint.is_some();
    let server = render::next_server_name(&cluster, None);
    refuse_taken_catalog(&found, &req.dest_env, &req.dest_svc, &destination, &server)?;

    let mut c = Scaffold {
        repo: &repo,
        found: &found,
        req,
        src,
        src_file,
        src_cluster,
        src_catalog,
        env,
        names,
        folder,
        cluster,
        namespace,
        destination,
        endpoint_from_source,
        endpoint,
        server,
        retention: None,
        store_names: None,
        secrets: Vec::new(),
        done: Vec::new(),
        todo: Vec::new(),
        settings: Vec::new(),
    };
    let mut files = Files {
        repo: &repo,
        changes: Vec::new(),
    };
    c.plan(&mut files)?;
    Ok(ChangeSet {
        changes: files.changes,
        subject: c.subject(),
        body: c.body(),
    })
}

/// Swaps the source env's and service's names for the destination's, as
/// whole `-`-separated tokens.
pub(super) struct Names {
    pub(super) src_env: String,
    pub(super) dst_env: String,
    pub(super) src_svc: String,
    pub(super) dst_svc: String,
}

impl Names {
    pub(super) fn swap(&self, name: &str) -> String {
        let n = swap_token(name, &self.src_env, &self.dst_env);
        swap_token(&n, &self.src_svc, &self.dst_svc)
    }
}

/// `s` with every occurrence of `from` that is a whole run of `-`-separated
/// tokens replaced by `to`.
pub(super) fn swap_token(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() || from == to {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let end = i + from.len();
        let starts = i == 0 || bytes[i - 1] == b'-';
        if starts && s[i..].starts_with(from) && (end == s.len() || bytes[end] == b'-') {
            out.push_str(to);
            i = end;
        } else {
            let ch = s[i..].chars().next().unwrap_or_default();
            out.push(ch);
            i += ch.len_utf8().max(1);
        }
    }
    out
}

pub(super) fn has_token(s: &str, token: &str) -> bool {
    !token.is_empty() && format!("-{s}-").contains(&format!("-{token}-"))
}

fn dest_problem(req: &RecoveryRequest, problem: String) -> PlanError {
    problem_of(&req.dest_env, &req.dest_svc, problem)
}

/// A problem with the database `svc` of `env`.
pub(super) fn problem_of(env: &str, svc: &str, problem: String) -> PlanError {
    PlanError::Source {
        env: env.to_owned(),
        svc: svc.to_owned(),
        problem,
    }
}

/// Refuses a new database where `folder` (of `env`/`svc`) already holds one,
/// or anything.
/// `instead` says what to do about an existing database (it ends the message).
pub(super) fn refuse_existing(
    repo: &Repo,
    found: &Discovery,
    env: &str,
    svc: &str,
    folder: &Path,
    instead: &str,
) -> Result<(), PlanError> {
    let shown = slash_path(folder);
    if let Some(d) = found.find(env, svc) {
        return Err(problem_of(
            env,
            svc,
            format!(
                "{shown} already exists (Cluster {}/{}): a new database is only created where \
                 there is none; {instead}",
                d.namespace, d.cluster
            ),
        ));
    }
    let occupied =
        repo.files.iter().any(|f| f.starts_with(folder)) || repo.root.join(folder).exists();
    if occupied {
        return Err(problem_of(
            env,
            svc,
            format!(
                "{shown} already exists but holds no readable database: a new database is only \
                 created where there is none; move the folder away or fix it (cnpg-ops lint)"
            ),
        ));
    }
    Ok(())
}

/// The namespace of the new database: the env's `namespace` template, else
/// the source's with the names swapped when it holds the source env's name,
/// else `{svc}-{env}`. It must be new in the env.
fn namespace(
    env: &Env,
    names: &Names,
    src: &Database,
    found: &Discovery,
    req: &RecoveryRequest,
) -> Result<String, PlanError> {
    let ns = match &env.namespace {
        Some(t) => t.replace("{svc}", &req.dest_svc),
        None if has_token(&src.namespace, &src.env) => names.swap(&src.namespace),
        None => format!("{}-{}", req.dest_svc, req.dest_env),
    };
    if !config::is_dns_label(&ns) {
        return Err(dest_problem(
            req,
            format!(
                "the namespace would be `{ns}`, which is not a valid namespace name\nhint: set \
                 `namespace` under [env.{}] in {} (e.g. namespace = \"{{svc}}-{}\")",
                req.dest_env,
                config::FILE_NAME,
                req.dest_env
            ),
        ));
    }
    if let Some(other) = found
        .databases
        .iter()
        .find(|d| d.env == req.dest_env && d.namespace == ns)
    {
        return Err(dest_problem(
            req,
            format!(
                "the namespace would be `{ns}`, which {}/{} already uses: two Flux Kustomizations \
                 would own it, and pruning one deletes the other's database\nhint: set \
                 `namespace` under [env.{}] in {} (e.g. namespace = \"{{svc}}-{}\")",
                other.env,
                other.svc,
                req.dest_env,
                config::FILE_NAME,
                req.dest_env
            ),
        ));
    }
    Ok(ns)
}

fn scheme(dest: &str) -> &str {
    dest.split_once("://").map_or("", |(s, _)| s)
}

/// Where the new database archives, and the database of the env it was
/// inferred from (None: from the env's `backup_destination`).
fn destination<'f>(
    env: &Env,
    found: &'f Discovery,
    req: &RecoveryRequest,
    src_catalog: &CatalogLocation,
) -> Result<(String, Option<&'f Database>), PlanError> {
    let src_scheme = scheme(&src_catalog.destination_path);
    let (dest, sibling) = if let Some(t) = &env.backup_destination {
        (t.replace("{svc}", &req.dest_svc), None)
    } else {
        let mut siblings: Vec<&Database> = found
            .databases
            .iter()
            .filter(|d| d.env == req.dest_env && d.catalog.is_some())
            .collect();
        siblings.sort_by_key(|d| {
            d.catalog
                .as_ref()
                .is_none_or(|c| scheme(&c.destination_path) != src_scheme)
        });
        let Some(s) = siblings.first().copied() else {
            return Err(dest_problem(
                req,
                format!(
                    "no archive for the new database: env `{env}` has no `backup_destination` \
                     and no other database to take the bucket from\nhint: set \
                     `backup_destination` under [env.{env}] in {file}, e.g. \
                     backup_destination = \"{src_scheme}://<{env} bucket>/{{svc}}\"",
                    env = req.dest_env,
                    file = config::FILE_NAME,
                ),
            ));
        };
        let from = s
            .catalog
            .as_ref()
            .map_or("", |c| c.destination_path.as_str());
        (infer_destination(from, &s.svc, &req.dest_svc), Some(s))
    };
    if scheme(&dest) != src_scheme {
        return Err(dest_problem(
            req,
            format!(
                "the new database would archive to {dest}, another kind of store than the \
                 source's {}: its store settings and credentials are copied from the source's\n\
                 hint: set `backup_destination` under [env.{}] in {} to a {src_scheme}:// URL",
                src_catalog.destination_path,
                req.dest_env,
                config::FILE_NAME
            ),
        ));
    }
    Ok((dest, sibling))
}

/// A sibling's destinationPath turned into the new database's: its own
/// service folder swapped for `svc`, the bucket root when it archives at the
/// root, else `<bucket>/<svc>`.
pub(super) fn infer_destination(from: &str, from_svc: &str, svc: &str) -> String {
    let Some((scheme, rest)) = from.split_once("://") else {
        return from.to_owned();
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // Azure names the account host and the container before any folder.
    let root = if matches!(scheme, "https" | "http") {
        2
    } else {
        1
    };
    if segments.len() <= root {
        return from.to_owned();
    }
    let mut out: Vec<&str> = segments.clone();
    if segments.last() == Some(&from_svc) {
        out.pop();
    } else {
        out.truncate(root);
    }
    out.push(svc);
    format!("{scheme}://{}", out.join("/"))
}

/// Refuses a new database of `env`/`svc` archiving into
/// `destination`/`server` when another database uses that catalog.
pub(super) fn refuse_taken_catalog(
    found: &Discovery,
    env: &str,
    svc: &str,
    destination: &str,
    server: &str,
) -> Result<(), PlanError> {
    let trim = |s: &str| s.trim_end_matches('/').to_owned();
    for d in &found.databases {
        let own = d.catalog.iter();
        let read = d.recovery.iter().filter_map(|r| r.catalog.as_ref());
        for c in own.chain(read) {
            if trim(&c.destination_path) == trim(destination) && c.server_name == server {
                return Err(problem_of(
                    env,
                    svc,
                    format!(
                        "the new database would archive into {}/{server}, which {}/{} already \
                         uses: the empty-archive check would fail, and skipping it would mix two \
                         histories\nhint: name the new Cluster differently, or set \
                         `backup_destination` under [env.{}] in {}",
                        trim(destination),
                        d.env,
                        d.svc,
                        env,
                        config::FILE_NAME
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A Secret the new folder needs.
#[derive(Debug, Clone)]
pub(super) struct NeededSecret {
    pub(super) name: String,
    pub(super) kind: Option<String>,
    /// Keys, each with the value to fill in.
    pub(super) keys: Vec<(String, String)>,
    pub(super) why: String,
}

struct Scaffold<'a> {
    repo: &'a Repo,
    found: &'a Discovery,
    req: &'a RecoveryRequest,
    src: &'a Database,
    src_file: PathBuf,
    src_cluster: Cluster,
    src_catalog: CatalogLocation,
    /// The destination env.
    env: Env,
    names: Names,
    folder: PathBuf,
    cluster: String,
    namespace: String,
    destination: String,
    endpoint: Option<String>,
    /// The write endpoint is the source's, for want of another.
    endpoint_from_source: bool,
    server: String,
    /// Retention of the new archive.
    retention: Option<String>,
    /// ObjectStores of the plugin model: (write, read).
    store_names: Option<(String, String)>,
    secrets: Vec<NeededSecret>,
    /// What the change does around the folder (for the body).
    done: Vec<String>,
    /// What is left to do by hand.
    todo: Vec<String>,
    /// The env rules applied (for the body).
    settings: Vec<String>,
}

/// How the new Cluster reads the source and archives, and the ObjectStores
/// (write, read) of the plugin model.
type Stores = (Source, Archive, Option<(Value, Value)>);

/// The files of the new folder, in dependency order.
#[derive(Default)]
struct Folder {
    files: Vec<(String, Vec<Value>)>,
    /// References kept as written (remote bases, paths outside the folder).
    kept: Vec<String>,
}

impl Folder {
    fn push(&mut self, file: &str, doc: Value) {
        match self.files.iter_mut().find(|(f, _)| f == file) {
            Some((_, docs)) => docs.push(doc),
            None => self.files.push((file.to_owned(), vec![doc])),
        }
    }
}

impl Scaffold<'_> {
    fn plan(&mut self, files: &mut Files<'_>) -> Result<(), PlanError> {
        let mut folder = Folder::default();
        folder.push(NAMESPACE_FILE, self.namespace_doc());
        let (source, archive, stores) = self.stores()?;
        if let (true, Some(e)) = (self.endpoint_from_source, &self.endpoint) {
            self.todo.push(format!(
                "the new archive's endpoint is the source's, {e}: set `endpoint_url` under \
                 [env.{}] in {} if {} has a store of its own",
                self.req.dest_env,
                config::FILE_NAME,
                self.req.dest_env
            ));
        }
        if let Some((write, read)) = stores {
            folder.push(STORE_FILE, write);
            folder.push(STORE_FILE, read);
        }
        let rendered = self.cluster_doc(source, archive)?;
        self.cluster_secrets(&rendered);
        folder.push(discover::MAIN_FILE, rendered);
        self.copy_other_documents(&mut folder);
        self.source_secrets();

        for (file, docs) in &folder.files {
            files.set(&self.folder.join(file), yaml::emit::to_stream(docs))?;
        }
        let kustomization = self.kustomization(&folder);
        let dropped: Vec<&str> = self.src_kustomization().map_or_else(Vec::new, |d| {
            NOT_COPIED
                .iter()
                .copied()
                .filter(|k| d.value.get(*k).is_some())
                .collect()
        });
        if !dropped.is_empty() {
            self.todo.push(format!(
                "the source kustomization.yaml has {} — not copied (they can carry the source env's secrets or undo this env's settings); add what the clone needs by hand",
                dropped.join(", ")
            ));
        }
        files.set(
            &self.folder.join(KUSTOMIZATION_FILE),
            yaml::emit::to_string(&kustomization),
        )?;
        self.flux(files)?;
        self.identity(files)?;
        Ok(())
    }

    fn src_docs(&self) -> impl Iterator<Item = &Doc> + '_ {
        self.repo
            .docs_in(&self.src.folder)
            .filter(|d| d.file.parent() == Some(self.src.folder.as_path()))
    }

    fn namespace_doc(&self) -> Value {
        let like = self
            .src_docs()
            .find(|d| d.kind() == "Namespace" && d.api_version() == "v1");
        namespace_doc(like, &self.namespace, None)
    }

    /// The source as the new Cluster reads it, where it archives, and the
    /// ObjectStores (write, read) of the plugin model.
    fn stores(&mut self) -> Result<Stores, PlanError> {
        let src = self.src;
        let retention = self
            .env
            .retention
            .clone()
            .or_else(|| src.retention_policy.clone());
        self.retention.clone_from(&retention);
        match (&self.env.retention, &src.retention_policy) {
            (Some(r), Some(s)) if r != s => self
                .settings
                .push(format!("retention {r} ({}: {s})", src.env)),
            (Some(r), None) => self.settings.push(format!("retention {r}")),
            _ => {}
        }
        let (config, store) = if src.backup_model == BackupModel::Plugin {
            let store = self.source_store()?;
            (store.spec.configuration.clone(), Some(store))
        } else {
            let inline =
                self.src_cluster
                    .inline_store()
                    .cloned()
                    .ok_or_else(|| PlanError::Source {
                        env: src.env.clone(),
                        svc: src.svc.clone(),
                        problem: "its Cluster has no spec.backup.barmanObjectStore".into(),
                    })?;
            (inline, None)
        };
        let mut write = config.clone();
        write.server_name = None;
        write.destination_path.clone_from(&self.destination);
        write.endpoint_url.clone_from(&self.endpoint);
        let (read, _) = render::with_foreign_secrets(&config, &src.env);
        let own = format!("{}'s own archive {}", self.req.dest_env, self.destination);
        self.store_secrets(&write, &own);
        let foreign = format!(
            "read-only access to {}'s archive {}",
            src.env, self.src_catalog.destination_path
        );
        self.store_secrets(&read, &foreign);
        let source_server = self.src_catalog.server_name.clone();
        let Some(store) = store else {
            return Ok((
                Source::Inline {
                    store: Box::new(read),
                    server_name: source_server,
                },
                Archive::Inline {
                    store: Box::new(write),
                    retention_policy: retention,
                    server_name: self.server.clone(),
                },
                None,
            ));
        };
        let write_name = self.names.swap(&store.metadata.name);
        let mut read_name = format!("{}-{}", store.metadata.name, src.env);
        if read_name == write_name {
            read_name.push_str("-source");
        }
        let mut write_doc = render::object_store(
            &write_name,
            &self.namespace,
            &write,
            &self.destination,
            retention.as_deref(),
        );
        // Sidecar settings and the like stay as the source has them.
        if let Some(spec) = write_doc.get_mut("spec").and_then(Value::as_object_mut) {
            for (k, v) in &store.spec.rest {
                spec.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        self.store_names = Some((write_name.clone(), read_name.clone()));
        let read_doc = render::object_store(
            &read_name,
            &self.namespace,
            &read,
            &self.src_catalog.destination_path,
            None,
        );
        Ok((
            Source::Plugin {
                object_store: read_name,
                server_name: source_server,
            },
            Archive::Plugin {
                object_store: write_name,
                server_name: self.server.clone(),
            },
            Some((write_doc, read_doc)),
        ))
    }

    /// The source's ObjectStore: in its folder, else anywhere in its
    /// namespace (as discovery finds it).
    fn source_store(&self) -> Result<ObjectStore, PlanError> {
        let src = self.src;
        let name = self.src_catalog.object_store.as_deref();
        plan::typed::<ObjectStore>(
            self.repo,
            &src.folder,
            "barmancloud.cnpg.io",
            "ObjectStore",
            name,
        )
        .map(|(_, _, s)| s)
        .or_else(|| {
            self.repo
                .docs_of("barmancloud.cnpg.io", "ObjectStore")
                .filter(|d| Some(d.name()) == name)
                .filter(|d| {
                    d.value
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        == Some(src.namespace.as_str())
                })
                .find_map(|d| docs::from_value(&d.value).ok())
        })
        .ok_or_else(|| PlanError::Source {
            env: src.env.clone(),
            svc: src.svc.clone(),
            problem: "its ObjectStore does not read".into(),
        })
    }

    fn cluster_doc(&mut self, source: Source, archive: Archive) -> Result<Value, PlanError> {
        let mut template = self.src_cluster.clone();
        let src_instances = template.spec.instances;
        let instances = self.env.new_instances(src_instances);
        if instances != src_instances
            && let Some(n) = instances
        {
            self.settings.push(format!(
                "{n} instance{} ({}: {})",
                if n == 1 { "" } else { "s" },
                self.src.env,
                src_instances.unwrap_or(1)
            ));
        }
        if let Some(sc) = self.env.storage_class.clone()
            && set_storage_class(&mut template, &sc)
        {
            self.settings.push(format!("storage class {sc}"));
        }
        if let Some(limit) = self.env.memory_limit.clone() {
            let note = set_memory_limit(&mut template, &limit).ok_or_else(|| {
                dest_problem(
                    self.req,
                    format!(
                        "memory_limit = {limit:?} of env `{}` is not a Kubernetes quantity",
                        self.req.dest_env
                    ),
                )
            })?;
            self.settings.push(note);
        }
        remove_gcp_service_account(&mut template);
        // A source that is itself a restore names its own origin; the new
        // Cluster reads the source, not that.
        if let Some(origin) = self.src_cluster.recovery().and_then(|r| r.source.clone()) {
            template.spec.external_clusters.retain(|e| e.name != origin);
        }
        let gsa = self.gcp_service_account()?;
        let source_name = if self.src.env == self.req.dest_env {
            format!("{}-origin", self.src.cluster)
        } else {
            self.src.env.clone()
        };
        let rendered = render::recovery_cluster(&RecoverySpec {
            template,
            name: self.cluster.clone(),
            namespace: self.namespace.clone(),
            source_name,
            source,
            target: self.req.target.clone(),
            backup_id: self.req.backup_id.clone(),
            timeline: self.req.timeline.clone(),
            archive: Some(archive),
            gcp_service_account: gsa,
            instances,
            app: None,
        })?;
        Ok(rendered.cluster)
    }

    /// The Google service account the new pods act as: the destination env's
    /// backup account when the env uses Workload Identity.
    fn gcp_service_account(&self) -> Result<Option<String>, PlanError> {
        if self.env.identity != IdentityKind::GkeWorkloadIdentity {
            return Ok(None);
        }
        let email = self.env.backup_service_account_email();
        let uses_gke = matches!(
            self.src_catalog.credentials,
            Credentials::GkeWorkloadIdentity
        );
        if email.is_none() && uses_gke {
            return Err(dest_problem(
                self.req,
                format!(
                    "env `{env}` uses GKE Workload Identity but has no `gcp_project`, so the new \
                     Cluster's Google service account is unknown\nhint: set `gcp_project` under \
                     [env.{env}] in {}",
                    config::FILE_NAME,
                    env = self.req.dest_env
                ),
            ));
        }
        Ok(email)
    }

    /// Documents of the source folder's other files, names swapped:
    /// ScheduledBackups, Database CRs, Poolers and the like. Never Secrets,
    /// other Clusters (restores beside the original), Backups or
    /// ObjectStores (rendered).
    fn copy_other_documents(&mut self, folder: &mut Folder) {
        let src_folder = self.src.folder.clone();
        let listed = self.src_resources();
        for r in listed {
            let rel = r.trim_start_matches("./");
            if is_encrypted(rel) {
                continue;
            }
            if rel.starts_with("../") || rel.contains("://") {
                folder.kept.push(r.clone());
                self.todo.push(format!(
                    "{}'s kustomization.yaml lists {r}, kept as written: check that it suits {}",
                    slash_path(&src_folder),
                    self.req.dest_env
                ));
                continue;
            }
            let file = src_folder.join(rel);
            if !self.repo.files.contains(&file) {
                self.todo.push(format!(
                    "{} is not a file of the source folder and was not copied",
                    slash_path(&file)
                ));
                continue;
            }
            let target = if file == self.src_file {
                discover::MAIN_FILE.to_owned()
            } else {
                rel.to_owned()
            };
            let docs: Vec<Value> = self
                .repo
                .docs
                .iter()
                .filter(|d| d.file == file)
                .filter(|d| copied(d))
                .map(|d| self.swapped(&d.value))
                .collect();
            for d in docs {
                folder.push(&target, d);
            }
        }
    }

    /// The source kustomization's resources, else every YAML file of the
    /// folder.
    fn src_resources(&self) -> Vec<String> {
        if let Some(k) = self.src_kustomization() {
            return ["resources", "bases"]
                .iter()
                .filter_map(|key| k.value.get(*key).and_then(Value::as_array))
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
        }
        self.repo
            .files
            .iter()
            .filter(|f| f.parent() == Some(self.src.folder.as_path()))
            .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    }

    fn src_kustomization(&self) -> Option<&Doc> {
        self.src_docs().find(|d| {
            d.file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| {
                    matches!(
                        n,
                        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
                    )
                })
        })
    }

    fn swapped(&self, v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(Value::String(n)) = m.get_mut("name") {
                *n = self.names.swap(n);
            }
            if m.contains_key("namespace") {
                m.insert("namespace".into(), Value::String(self.namespace.clone()));
            }
        }
        if let Some(Value::String(c)) = v.pointer_mut("/spec/cluster/name")
            && *c == self.src.cluster
        {
            c.clone_from(&self.cluster);
        }
        v
    }

    fn kustomization(&self, folder: &Folder) -> Value {
        let mut resources: Vec<Value> = Vec::new();
        for (file, _) in &folder.files {
            resources.push(Value::String(file.clone()));
            if file == NAMESPACE_FILE && !self.secrets.is_empty() {
                resources.push(Value::String(SECRETS_FILE.to_owned()));
            }
        }
        resources.extend(folder.kept.iter().cloned().map(Value::String));
        let mut v = self.src_kustomization().map_or_else(
            || json!({"apiVersion": docs::KUSTOMIZE_API, "kind": "Kustomization"}),
            |d| d.value.clone(),
        );
        if let Some(m) = v.as_object_mut() {
            m.remove("bases");
            // Generators can carry the source env's secrets and patches undo
            // the env's rules: neither is copied.
            for key in NOT_COPIED {
                m.remove(*key);
            }
            m.insert("namespace".into(), Value::String(self.namespace.clone()));
            m.insert("resources".into(), Value::Array(resources));
        }
        v
    }

    /// The env's Flux Kustomization for the new folder, modelled on the one
    /// that applies the source folder.
    fn flux(&mut self, files: &mut Files<'_>) -> Result<(), PlanError> {
        let done = flux_kustomization(
            &FluxFor {
                env: &self.env,
                svc: &self.req.dest_svc,
                folder: &self.folder,
                namespace: &self.namespace,
                names: &self.names,
                model: Some((&self.src.folder, &self.src.namespace)),
                decrypt: !self.secrets.is_empty(),
            },
            files,
        )?;
        self.done.push(done);
        Ok(())
    }

    /// Workload Identity binding of the new Cluster, object read on the
    /// source bucket for the destination env's backup account (GKE).
    fn identity(&mut self, files: &mut Files<'_>) -> Result<(), PlanError> {
        let Some(email) = self.gcp_service_account()? else {
            return Ok(());
        };
        own_identity(
            files,
            &OwnArchive {
                env: &self.env,
                namespace: &self.namespace,
                cluster: &self.cluster,
                email: &email,
                destination: &self.destination,
                retention: self.retention.as_deref(),
                archiver: "the clone",
            },
            &mut self.done,
            &mut self.todo,
        )?;
        if !matches!(
            self.src_catalog.credentials,
            Credentials::GkeWorkloadIdentity
        ) {
            return Ok(());
        }
        let Some(bucket) = gs_bucket(&self.src_catalog.destination_path) else {
            return Ok(());
        };
        let src_account = self
            .src_cluster
            .spec
            .rest
            .get("serviceAccountTemplate")
            .and_then(|t| t.pointer("/metadata/annotations/iam.gke.io~1gcp-service-account"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| self.repo.env(&self.src.env).backup_service_account_email());
        if src_account.as_deref() == Some(email.as_str()) {
            return Ok(());
        }
        let buckets = PathBuf::from(self.repo.env(&self.src.env).buckets);
        let reader = format!("serviceAccount:{email}");
        if files.current(&buckets)?.is_some() {
            let changed =
                files.edit(&buckets, |t| edits::grant_bucket_reader(t, bucket, &reader))?;
            self.done.push(format!(
                "object read on {bucket} for {reader} ({}{})",
                slash_path(&buckets),
                if changed { "" } else { ", already granted" }
            ));
        } else {
            self.todo.push(format!(
                "{} does not exist: grant {reader} object read on {bucket} wherever the source \
                 env's Terraform declares it",
                slash_path(&buckets)
            ));
        }
        Ok(())
    }

    /// The Secrets a store configuration references.
    fn store_secrets(&mut self, store: &BarmanObjectStore, why: &str) {
        for (name, key) in secret_refs(store) {
            need(
                &mut self.secrets,
                &name,
                &[(&key, &format!("<{key}>"))],
                None,
                why,
            );
            // The source's own Secret of that name says its type and keys.
            let original = name
                .strip_suffix(&format!("-{}", self.src.env))
                .unwrap_or(&name)
                .to_owned();
            self.like_source(&name, &original);
        }
    }

    /// Adds the type and keys of the source folder's encrypted Secret
    /// `original` to the needed Secret `name`.
    fn like_source(&mut self, name: &str, original: &str) {
        let Some((kind, keys)) = self.source_secret(original) else {
            return;
        };
        if let Some(s) = self.secrets.iter_mut().find(|s| s.name == name) {
            if s.kind.is_none() {
                s.kind = kind;
            }
            for k in keys {
                if !s.keys.iter().any(|(have, _)| *have == k) {
                    let value = format!("<{k}>");
                    s.keys.push((k, value));
                }
            }
        }
    }

    fn encrypted_secrets(&self) -> Vec<&Doc> {
        self.src_docs()
            .filter(|d| d.kind() == "Secret" && d.api_version() == "v1")
            .filter(|d| d.file.to_str().is_some_and(is_encrypted))
            .collect()
    }

    /// The type and keys of the source folder's encrypted Secret `name`.
    fn source_secret(&self, name: &str) -> Option<(Option<String>, Vec<String>)> {
        let d = self
            .encrypted_secrets()
            .into_iter()
            .find(|d| d.name() == name)?;
        let kind = d
            .value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let keys = ["stringData", "data"]
            .iter()
            .filter_map(|k| d.value.get(*k).and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        Some((kind, keys))
    }

    /// The Secrets the rendered Cluster names: the application owner's, the
    /// superuser's, managed roles' passwords.
    fn cluster_secrets(&mut self, cluster: &Value) {
        let spec = &cluster["spec"];
        let (database, owner) = render::app_names(&self.src_cluster);
        let owner = owner.or(database).unwrap_or_else(|| "app".to_owned());
        let mut named: Vec<(String, String, String)> = Vec::new();
        if let Some(n) = spec
            .pointer("/bootstrap/recovery/secret/name")
            .and_then(Value::as_str)
        {
            named.push((
                n.to_owned(),
                owner.clone(),
                format!(
                    "password of the application owner {owner}; CloudNativePG sets it once the \
                     clone is promoted"
                ),
            ));
        }
        named.extend(role_secrets(spec));
        for (name, user, why) in named {
            need(
                &mut self.secrets,
                &name,
                &[("username", &user), ("password", "<password>")],
                Some("kubernetes.io/basic-auth"),
                &why,
            );
            self.like_source(&name, &name);
        }
    }

    /// Every Secret of the source folder's encrypted files not listed yet.
    fn source_secrets(&mut self) {
        let file = self
            .encrypted_secrets()
            .first()
            .map(|d| slash_path(&d.file))
            .unwrap_or_default();
        let names: Vec<String> = self
            .encrypted_secrets()
            .iter()
            .map(|d| d.name().to_owned())
            .collect();
        for name in names {
            if self.secrets.iter().any(|s| s.name == name) {
                continue;
            }
            let why = format!("as in {file}");
            need(&mut self.secrets, &name, &[], None, &why);
            self.like_source(&name, &name);
        }
    }

    fn subject(&self) -> String {
        format!(
            "{}/{}: new database cloned from {}/{} at {}",
            self.req.dest_env,
            self.req.dest_svc,
            self.src.env,
            self.src.svc,
            plan::target_words(self.req)
        )
    }

    fn body(&self) -> String {
        let src = self.src;
        let mut b = String::new();
        let (read_through, write_through) = match &self.store_names {
            Some((write, read)) => (
                format!("through the read-only ObjectStore {read}"),
                format!("ObjectStore {write}"),
            ),
            None => (
                "through its externalClusters entry".to_owned(),
                "spec.backup.barmanObjectStore".to_owned(),
            ),
        };
        let _ = writeln!(
            b,
            "Creates {folder}: Cluster {ns}/{cluster}, restored from {env}/{svc}'s catalog \
             {dest}/{server} ({read_through}, serverName written explicitly) up to {target}.",
            folder = slash_path(&self.folder),
            ns = self.namespace,
            cluster = self.cluster,
            env = src.env,
            svc = src.svc,
            dest = self.src_catalog.destination_path.trim_end_matches('/'),
            server = self.src_catalog.server_name,
            target = plan::target_words(self.req),
        );
        let _ = writeln!(
            b,
            "It archives to its own catalog {}/{} ({write_through}) under a fresh serverName \
             generation, so the empty-archive check passes and {}'s archive is only ever read.",
            self.destination.trim_end_matches('/'),
            self.server,
            src.env
        );
        if !self.settings.is_empty() {
            let _ = writeln!(
                b,
                "\nSettings of env {}: {}.",
                self.req.dest_env,
                self.settings.join("; ")
            );
        }
        if !self.done.is_empty() {
            b.push_str("\nAlso:\n");
            for d in &self.done {
                let _ = writeln!(b, "  - {d}");
            }
        }
        b.push('\n');
        b.push_str(&self.secrets_note());
        if !self.todo.is_empty() {
            b.push_str("\nStill to do by hand:\n");
            for t in &self.todo {
                let _ = writeln!(b, "  - {t}");
            }
        }
        b.trim_end().to_owned()
    }

    fn secrets_note(&self) -> String {
        let mut b = String::new();
        let not_copied = if self.encrypted_secrets().is_empty() {
            String::new()
        } else {
            format!(
                " ({}/{}'s encrypted Secrets are encrypted for {} and are not copied)",
                self.src.env, self.src.svc, self.src.env
            )
        };
        if self.secrets.is_empty() {
            let _ = writeln!(b, "No Secrets to create{not_copied}.");
            return b;
        }
        let _ = writeln!(
            b,
            "Secrets to create in namespace {} before this is merged{not_copied}; \
             kustomization.yaml lists {SECRETS_FILE}, so Flux applies nothing of the folder \
             until it exists:",
            self.namespace
        );
        let file = SecretsFile {
            repo: self.repo,
            found: self.found,
            env: &self.req.dest_env,
            namespace: &self.namespace,
            path: SecretsFile::path_in(&self.folder),
            secrets: &self.secrets,
        };
        b.push_str(&file.howto());
        b
    }
}

/// A new database folder that a Flux Kustomization of its env is to apply.
pub(super) struct FluxFor<'a> {
    pub(super) env: &'a Env,
    pub(super) svc: &'a str,
    pub(super) folder: &'a Path,
    pub(super) namespace: &'a str,
    pub(super) names: &'a Names,
    /// The folder and namespace of the database it is modelled on.
    pub(super) model: Option<(&'a Path, &'a str)>,
    /// Whether the folder holds SOPS-encrypted files.
    pub(super) decrypt: bool,
}

/// Adds the env's Flux Kustomization for a new folder, modelled on the one
/// that applies the model's folder (else the common layout); returns what
/// it did, for the change's body.
pub(super) fn flux_kustomization(
    f: &FluxFor<'_>,
    files: &mut Files<'_>,
) -> Result<String, PlanError> {
    let repo = files.repo;
    let file = PathBuf::from(&f.env.flux_kustomizations);
    let name = f.env.flux_name(f.svc);
    let path = format!("./{}", slash_path(f.folder));
    let ops = f.env.operators_kustomization.clone();
    if let Some(taken) = repo
        .docs_of("kustomize.toolkit.fluxcd.io", "Kustomization")
        .find(|d| {
            // The same name in the same file, or in another env's file
            // that the same Kubernetes cluster applies (same context).
            let same_cluster = repo.config.env.keys().any(|e| {
                let other = repo.env(e);
                f.env.same_cluster(&other) && d.file == Path::new(&other.flux_kustomizations)
            });
            d.name() == name && (d.file == file || same_cluster)
        })
    {
        return Err(problem_of(
            &f.env.name,
            f.svc,
            format!(
                "{} already has a Flux Kustomization {name} (line {}), applying {}",
                slash_path(&file),
                taken.line("metadata.name"),
                taken
                    .value
                    .pointer("/spec/path")
                    .and_then(Value::as_str)
                    .unwrap_or("the source root")
            ),
        ));
    }
    let model = repo
        .docs_of("kustomize.toolkit.fluxcd.io", "Kustomization")
        .find(|d| {
            d.value
                .pointer("/spec/path")
                .and_then(Value::as_str)
                .map(discover::flux_path)
                == f.model.map(|(folder, _)| folder.to_owned())
        });
    let mut v = model.map_or_else(
        || {
            json!({
                "apiVersion": docs::FLUX_API,
                "kind": "Kustomization",
                "metadata": {"name": name, "namespace": "flux-system"},
                "spec": {
                    "interval": "10m",
                    "path": path,
                    "prune": true,
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                }
            })
        },
        |d| d.value.clone(),
    );
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("name".into(), Value::String(name.clone()));
        for key in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            m.remove(key);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    let src_ns = f.model.map(|(_, ns)| ns);
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("path".into(), Value::String(path));
        // The model's other dependencies stay (the barman plugin, say).
        let mut deps: Vec<Value> = spec
            .get("dependsOn")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !deps.iter().any(|d| d["name"] == ops.as_str()) {
            deps.insert(0, json!({"name": ops}));
        }
        spec.insert("dependsOn".into(), Value::Array(deps));
        spec.remove("suspend");
        if spec.contains_key("targetNamespace") {
            spec.insert(
                "targetNamespace".into(),
                Value::String(f.namespace.to_owned()),
            );
        }
        if let Some(Value::Array(checks)) = spec.get_mut("healthChecks") {
            for c in checks.iter_mut().filter_map(Value::as_object_mut) {
                if let Some(Value::String(n)) = c.get_mut("name") {
                    *n = f.names.swap(n);
                }
                if c.get("namespace").and_then(Value::as_str) == src_ns && src_ns.is_some() {
                    c.insert("namespace".into(), Value::String(f.namespace.to_owned()));
                }
            }
        }
        if f.decrypt && !spec.contains_key("decryption") {
            spec.insert(
                "decryption".into(),
                json!({"provider": "sops", "secretRef": {"name": "sops-age"}}),
            );
        }
    }
    let created = files.current(&file)?.is_none();
    files.edit(&file, |t| edits::add_document(Some(t), &v))?;
    Ok(format!(
        "Flux Kustomization {name} (depends on {ops}) {} {}, modelled on {}",
        if created {
            "in the new file"
        } else {
            "added to"
        },
        slash_path(&file),
        model.map_or_else(
            || "the common layout".to_owned(),
            |d| format!("{} in {}", d.name(), slash_path(&d.file))
        )
    ))
}

/// A Delete rule of bucket `entry` (from the buckets YAML `file`) that
/// removes backups `retention` still needs (a backup a day assumed), as a
/// thing to do by hand in env `env`.
pub(super) fn lifecycle_problem(
    bucket: &str,
    entry: &Value,
    file: &Path,
    retention: Option<&str>,
    env: &str,
) -> Option<String> {
    let retention = retention?;
    let window = retention.parse::<Policy>().ok().and_then(Policy::window)?;
    let needed = window.num_days() + 1;
    shortest_delete_days(entry)
        .filter(|a| *a <= needed)
        .map(|age| {
            format!(
                "bucket {bucket} deletes objects after {age} days ({}), not longer than the \
             retention {retention} plus a day between backups: lower `retention` under \
             [env.{env}] in {} or lengthen the rule",
                slash_path(file),
                config::FILE_NAME
            )
        })
}

/// The Namespace `namespace`, modelled on `like` (its labels and
/// annotations kept): the `kubernetes.io/metadata.name` label follows the
/// name, and with `names` the other labels have their names swapped too.
pub(super) fn namespace_doc(like: Option<&Doc>, namespace: &str, names: Option<&Names>) -> Value {
    let mut v = like.map_or_else(
        || json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {}}),
        |d| d.value.clone(),
    );
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("name".into(), Value::String(namespace.to_owned()));
        m.remove("namespace");
        if let Some(Value::Object(labels)) = m.get_mut("labels") {
            for (k, l) in labels.iter_mut() {
                let Value::String(s) = l else { continue };
                if k == "kubernetes.io/metadata.name" {
                    namespace.clone_into(s);
                } else if let Some(n) = names {
                    *s = n.swap(s);
                }
            }
        }
    }
    v
}

/// The shortest Delete rule of a bucket entry of the buckets YAML, in days.
pub(super) fn shortest_delete_days(entry: &Value) -> Option<i64> {
    entry["lifecycle_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["action"] == "Delete")
        .filter_map(|r| r["age_days"].as_i64())
        .min()
}

/// The GCS bucket of `destination` and its entry in the env's buckets YAML
/// (as the plan has it so far); None for another store or an undeclared
/// bucket.
pub(super) fn bucket_entry(
    files: &Files<'_>,
    env: &Env,
    destination: &str,
) -> Result<Option<(String, Value)>, PlanError> {
    let Some(bucket) = gs_bucket(destination) else {
        return Ok(None);
    };
    Ok(files
        .current(Path::new(&env.buckets))?
        .and_then(|t| yaml::parse_values(&t).ok())
        .and_then(|docs| {
            docs.iter()
                .filter_map(|d| d["buckets"].as_array())
                .flatten()
                .find(|b| b["name"] == bucket)
                .cloned()
        })
        .map(|e| (bucket.to_owned(), e)))
}

/// A new Cluster that archives into its env's own store.
pub(super) struct OwnArchive<'a> {
    pub(super) env: &'a Env,
    pub(super) namespace: &'a str,
    pub(super) cluster: &'a str,
    /// The Google service account the pods act as.
    pub(super) email: &'a str,
    pub(super) destination: &'a str,
    pub(super) retention: Option<&'a str>,
    /// Who archives, for messages ("the clone").
    pub(super) archiver: &'a str,
}

/// The Workload Identity binding `<namespace>/<cluster>` of the env's backup
/// account, and the destination bucket checked against the retention: what
/// was done goes to `done`, what is left by hand to `todo`.
pub(super) fn own_identity(
    files: &mut Files<'_>,
    a: &OwnArchive<'_>,
    done: &mut Vec<String>,
    todo: &mut Vec<String>,
) -> Result<(), PlanError> {
    let member = edits::binding(a.namespace, a.cluster);
    let sa = PathBuf::from(&a.env.service_accounts);
    let account = a.env.backup_service_account.clone();
    if files.current(&sa)?.is_some() {
        files.edit(&sa, |t| edits::bind_workload_identity(t, &account, &member))?;
        done.push(format!(
            "Workload Identity: {member} may act as {account} ({})",
            slash_path(&sa)
        ));
    } else {
        todo.push(format!(
            "{} does not exist: add `{member}` to the workload_identity_bindings of {} \
             wherever the env's Terraform declares it",
            slash_path(&sa),
            a.email
        ));
    }
    let Some(bucket) = gs_bucket(a.destination) else {
        return Ok(());
    };
    let own = PathBuf::from(&a.env.buckets);
    match bucket_entry(files, a.env, a.destination)? {
        None => todo.push(format!(
            "bucket {bucket} is not declared in {}: create it (with a lifecycle longer than the \
             retention) before {} archives",
            slash_path(&own),
            a.archiver
        )),
        Some((_, entry)) => {
            todo.extend(lifecycle_problem(
                bucket,
                &entry,
                &own,
                a.retention,
                &a.env.name,
            ));
        }
    }
    Ok(())
}

/// The Secrets file of a new database folder: the Secrets it needs, in the
/// env's namespace, encrypted for the env's keys.
pub(super) struct SecretsFile<'a> {
    pub(super) repo: &'a Repo,
    pub(super) found: &'a Discovery,
    pub(super) env: &'a str,
    pub(super) namespace: &'a str,
    /// Its path from the repository root, slash-separated.
    pub(super) path: String,
    pub(super) secrets: &'a [NeededSecret],
}

impl SecretsFile<'_> {
    /// [`SECRETS_FILE`] in `folder`.
    pub(super) fn path_in(folder: &Path) -> String {
        slash_path(&folder.join(SECRETS_FILE))
    }

    /// The Secrets as plain YAML, placeholders for the values.
    fn plain(&self) -> String {
        let docs: Vec<Value> = self
            .secrets
            .iter()
            .map(|s| secret_doc(self.namespace, s))
            .collect();
        yaml::emit::to_stream(&docs)
    }

    /// The needed Secrets, one line each, then the `sops` command that
    /// creates the file without a plaintext copy on disk.
    pub(super) fn howto(&self) -> String {
        let mut b = secret_lines(self.secrets);
        let SopsKeys {
            shown: flags,
            whence,
            ..
        } = sops_keys(self.repo, self.found, self.env);
        let path = &self.path;
        let _ = writeln!(
            b,
            "\nCreate {path} encrypted, without a plaintext copy on disk (fill in the values \
                 first; {whence}):\n"
        );
        let _ = writeln!(
            b,
            "  sops --encrypt --filename-override {q}{flags} /dev/stdin > {q} <<'EOF'",
            q = shell_quote(path)
        );
        for line in self.plain().lines() {
            let _ = writeln!(b, "  {line}");
        }
        b.push_str("  EOF\n");
        b
    }

    /// The Secrets encrypted by `program` (sops), placeholders for the values;
    /// sops runs at the repository root so .sops.yaml applies. `Ok(None)` when
    /// the env's keys are unknown.
    pub(super) fn encrypt(&self, program: &Path) -> Result<Option<String>, String> {
        let Some(args) = sops_keys(self.repo, self.found, self.env).args else {
            return Ok(None);
        };
        let plain = self.plain();
        let mut child = std::process::Command::new(program)
            .current_dir(&self.repo.root)
            .args(["--encrypt", "--filename-override", &self.path])
            .args(&args)
            .args([
                "--input-type",
                "yaml",
                "--output-type",
                "yaml",
                "/dev/stdin",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write as _;
            stdin
                .write_all(plain.as_bytes())
                .map_err(|e| format!("cannot feed {}: {e}", program.display()))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("{} did not finish: {e}", program.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} --encrypt failed ({}): {}",
                program.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text =
            String::from_utf8(out.stdout).map_err(|e| format!("sops wrote non-UTF-8: {e}"))?;
        let encrypted = yaml::parse_values(&text)
            .ok()
            .is_some_and(|d| !d.is_empty() && d.iter().all(|v| v.get("sops").is_some()));
        if !encrypted {
            return Err(format!(
                "{} --encrypt wrote something without sops metadata; nothing was written",
                program.display()
            ));
        }
        Ok(Some(text))
    }
}

/// Adds `keys` (name, placeholder value) to the needed Secret `name`, made
/// with `why` on first use; its type is the first one given. An empty name
/// is no Secret.
pub(super) fn need(
    secrets: &mut Vec<NeededSecret>,
    name: &str,
    keys: &[(&str, &str)],
    kind: Option<&str>,
    why: &str,
) {
    if name.is_empty() {
        return;
    }
    let i = if let Some(i) = secrets.iter().position(|s| s.name == name) {
        i
    } else {
        secrets.push(NeededSecret {
            name: name.to_owned(),
            kind: None,
            keys: Vec::new(),
            why: why.to_owned(),
        });
        secrets.len() - 1
    };
    let s = &mut secrets[i];
    if s.kind.is_none() {
        s.kind = kind.map(str::to_owned);
    }
    for (k, v) in keys {
        if !k.is_empty() && !s.keys.iter().any(|(have, _)| have == k) {
            s.keys.push(((*k).to_owned(), (*v).to_owned()));
        }
    }
}

/// The password Secrets a Cluster spec names besides the application
/// owner's: the superuser's and the managed roles', each as (Secret, user,
/// why).
pub(super) fn role_secrets(spec: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let Some(n) = spec
        .pointer("/superuserSecret/name")
        .and_then(Value::as_str)
    {
        out.push((
            n.to_owned(),
            "postgres".to_owned(),
            "password of the postgres superuser".to_owned(),
        ));
    }
    for role in spec
        .pointer("/managed/roles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(n), Some(r)) = (
            role.pointer("/passwordSecret/name").and_then(Value::as_str),
            role.get("name").and_then(Value::as_str),
        ) {
            out.push((n.to_owned(), r.to_owned(), format!("password of role {r}")));
        }
    }
    out
}

/// The needed Secrets, one line each: name, type, keys, why.
pub(super) fn secret_lines(secrets: &[NeededSecret]) -> String {
    let mut b = String::new();
    for s in secrets {
        let keys: Vec<&str> = s.keys.iter().map(|(k, _)| k.as_str()).collect();
        let _ = writeln!(
            b,
            "  - {} ({}{}): {}",
            s.name,
            s.kind.as_deref().unwrap_or("Opaque"),
            if keys.is_empty() {
                String::new()
            } else {
                format!("; {}", keys.join(", "))
            },
            s.why
        );
    }
    b
}

/// The Secret `s` as a document to encrypt, placeholders for values.
fn secret_doc(namespace: &str, s: &NeededSecret) -> Value {
    let mut v = Map::new();
    v.insert("apiVersion".into(), json!("v1"));
    v.insert("kind".into(), json!("Secret"));
    v.insert(
        "metadata".into(),
        json!({"name": s.name, "namespace": namespace}),
    );
    if let Some(k) = &s.kind {
        v.insert("type".into(), Value::String(k.clone()));
    }
    let data: Map<String, Value> = s
        .keys
        .iter()
        .map(|(k, val)| (k.clone(), Value::String(val.clone())))
        .collect();
    v.insert("stringData".into(), Value::Object(data));
    Value::Object(v)
}

/// The sops flags that pick the destination env's keys, and where they
/// come from.
/// The sops flags that pick an env's keys.
pub(super) struct SopsKeys {
    /// As arguments (None: the keys are not known).
    pub(super) args: Option<Vec<String>>,
    /// As shell words, each after a space.
    pub(super) shown: String,
    /// Where they come from.
    pub(super) whence: String,
}

fn sops_keys(repo: &Repo, found: &Discovery, env: &str) -> SopsKeys {
    if repo.root.join(".sops.yaml").is_file() {
        return SopsKeys {
            args: Some(Vec::new()),
            shown: String::new(),
            whence: "the creation rule of .sops.yaml that matches the path picks the keys"
                .to_owned(),
        };
    }
    let folders: Vec<&PathBuf> = found
        .databases
        .iter()
        .filter(|d| d.env == env)
        .map(|d| &d.folder)
        .collect();
    let mut keys: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut regex: Option<String> = None;
    let mut from: Option<String> = None;
    for d in &repo.docs {
        let in_env = folders.iter().any(|f| d.file.starts_with(f));
        if !in_env || !d.file.to_str().is_some_and(is_encrypted) {
            continue;
        }
        let Some(sops) = d.value.get("sops") else {
            continue;
        };
        for (flag, list, field) in [
            ("--age", "age", "recipient"),
            ("--pgp", "pgp", "fp"),
            ("--gcp-kms", "gcp_kms", "resource_id"),
            ("--kms", "kms", "arn"),
        ] {
            for k in sops
                .get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get(field).and_then(Value::as_str))
            {
                let have = keys.entry(flag).or_default();
                if !have.iter().any(|h| h == k) {
                    have.push(k.to_owned());
                }
            }
        }
        if regex.is_none() {
            regex = sops
                .get("encrypted_regex")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        from.get_or_insert_with(|| slash_path(&d.file));
    }
    let regex = regex.unwrap_or_else(|| DEFAULT_ENCRYPTED_REGEX.to_owned());
    let regex_flag = format!(" --encrypted-regex {}", shell_quote(&regex));
    match from {
        Some(file) if !keys.is_empty() => {
            let mut flags = String::new();
            let mut args = Vec::new();
            for (flag, list) in &keys {
                let _ = write!(flags, " {flag} {}", shell_quote(&list.join(",")));
                args.push((*flag).to_owned());
                args.push(list.join(","));
            }
            args.push("--encrypted-regex".to_owned());
            args.push(regex);
            SopsKeys {
                args: Some(args),
                shown: flags + &regex_flag,
                whence: format!("the keys are those of {file}, like every encrypted file of {env}"),
            }
        }
        _ => SopsKeys {
            args: None,
            shown: format!(" --age <age public key of {env}'s sops-age Secret>{regex_flag}"),
            whence: format!("no encrypted file of {env} says its keys and there is no .sops.yaml"),
        },
    }
}

/// Whether a document of the source folder is copied as it is (names
/// swapped): not Secrets, Namespaces, Clusters (the source is rendered,
/// others are restores beside it), Backups, ObjectStores (rendered) or the
/// kustomization.
fn copied(d: &Doc) -> bool {
    let kind = d.kind();
    let skipped = kind.ends_with("Secret")
        || (kind == "Namespace" && d.api_version() == "v1")
        || d.is("postgresql.cnpg.io", "Cluster")
        || d.is("postgresql.cnpg.io", "Backup")
        || d.is("barmancloud.cnpg.io", "ObjectStore")
        || d.is("kustomize.config.k8s.io", "Kustomization");
    !skipped
}

pub(super) fn is_encrypted(file: &str) -> bool {
    file.ends_with(".enc.yaml") || file.ends_with(".enc.yml")
}

/// The bucket of a `gs://` destinationPath.
pub(super) fn gs_bucket(dest: &str) -> Option<&str> {
    dest.strip_prefix("gs://")?
        .split('/')
        .next()
        .filter(|b| !b.is_empty())
}

/// `s` as one shell word.
pub(super) fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,:@=+".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Every `(Secret, key)` a store configuration references.
pub(super) fn secret_refs(store: &BarmanObjectStore) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |v: Option<&Value>| {
        if let Some(o) = v.and_then(Value::as_object)
            && let Some(n) = o.get("name").and_then(Value::as_str)
        {
            let key = o.get("key").and_then(Value::as_str).unwrap_or_default();
            out.push((n.to_owned(), key.to_owned()));
        }
    };
    let v = docs::to_value(store);
    for p in [
        "/s3Credentials/accessKeyId",
        "/s3Credentials/secretAccessKey",
        "/s3Credentials/region",
        "/s3Credentials/sessionToken",
        "/googleCredentials/applicationCredentials",
        "/endpointCA",
    ] {
        add(v.pointer(p));
    }
    if let Some(a) = v.get("azureCredentials").and_then(Value::as_object) {
        for x in a.values() {
            add(Some(x));
        }
    }
    out
}

/// Sets the StorageClass of every volume the Cluster declares; false when it
/// declares none.
pub(super) fn set_storage_class(c: &mut Cluster, class: &str) -> bool {
    let mut set = false;
    let mut apply = |vol: &mut Value| {
        let Some(v) = vol.as_object_mut() else {
            return;
        };
        if let Some(Value::Object(t)) = v.get_mut("pvcTemplate") {
            t.insert("storageClassName".into(), Value::String(class.to_owned()));
        } else {
            v.insert("storageClass".into(), Value::String(class.to_owned()));
        }
        set = true;
    };
    for key in ["storage", "walStorage"] {
        if let Some(vol) = c.spec.rest.get_mut(key) {
            apply(vol);
        }
    }
    if let Some(Value::Array(spaces)) = c.spec.rest.get_mut("tablespaces") {
        for s in spaces {
            if let Some(vol) = s.get_mut("storage") {
                apply(vol);
            }
        }
    }
    set
}

/// Sets the memory limit (and a request above it, or equal to the old limit)
/// and lowers shared_buffers to at most 25% of it. Returns what changed, or
/// None when `limit` is not a quantity.
pub(super) fn set_memory_limit(c: &mut Cluster, limit: &str) -> Option<String> {
    let bytes = parse_quantity(limit).filter(|b| *b >= 1.0)?;
    let resources = object_at(&mut c.spec.rest, "resources");
    let old_limit = resources
        .get("limits")
        .and_then(|l| l.get("memory"))
        .and_then(value_text);
    let request = resources
        .get("requests")
        .and_then(|r| r.get("memory"))
        .and_then(value_text);
    object_at(resources, "limits").insert("memory".into(), Value::String(limit.to_owned()));
    if let Some(r) = request {
        let above = parse_quantity(&r).is_some_and(|rb| rb > bytes);
        if above || Some(&r) == old_limit.as_ref() {
            object_at(resources, "requests")
                .insert("memory".into(), Value::String(limit.to_owned()));
        }
    }
    let mut note = format!(
        "memory limit {limit}{}",
        old_limit.map_or_else(String::new, |o| format!(" (was {o})"))
    );
    let params = c
        .spec
        .rest
        .get("postgresql")
        .and_then(|p| p.get("parameters"));
    let current = params
        .and_then(|p| p.get("shared_buffers"))
        .and_then(value_text)
        .unwrap_or_else(|| "128MB".to_owned());
    let cap = bytes / 4.0;
    if parse_pg_size(&current, 8192.0).is_some_and(|sb| sb > cap) {
        let mib = (cap / MIB).floor().max(1.0);
        let lowered = if mib % 1024.0 == 0.0 {
            format!("{}GB", mib / 1024.0)
        } else {
            format!("{mib}MB")
        };
        let pg = object_at(&mut c.spec.rest, "postgresql");
        object_at(pg, "parameters").insert("shared_buffers".into(), Value::String(lowered.clone()));
        let _ = write!(note, ", shared_buffers {current} → {lowered}");
    }
    Some(note)
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The object at `key`, created (or replacing a non-object) when needed.
fn object_at<'m>(m: &'m mut Map<String, Value>, key: &str) -> &'m mut Map<String, Value> {
    if !m.get(key).is_some_and(Value::is_object) {
        m.insert(key.to_owned(), Value::Object(Map::new()));
    }
    match m.get_mut(key) {
        Some(Value::Object(o)) => o,
        _ => unreachable!("{key} was just made an object"),
    }
}

/// Drops the source env's Google service account from the template.
fn remove_gcp_service_account(c: &mut Cluster) {
    let Some(Value::Object(t)) = c.spec.rest.get_mut("serviceAccountTemplate") else {
        return;
    };
    if let Some(Value::Object(meta)) = t.get_mut("metadata") {
        if let Some(Value::Object(a)) = meta.get_mut("annotations") {
            a.remove(GCP_SA_ANNOTATION);
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
        if meta.is_empty() {
            t.remove("metadata");
        }
    }
    if t.is_empty() {
        c.spec.rest.remove("serviceAccountTemplate");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_swapped_whole() {
        assert_eq!(swap_token("foo-prod", "prod", "dev"), "foo-dev");
        assert_eq!(swap_token("prod-foo-prod", "prod", "dev"), "dev-foo-dev");
        assert_eq!(swap_token("production", "prod", "dev"), "production");
        assert_eq!(swap_token("foo-pg", "foo", "order-api"), "order-api-pg");
        assert_eq!(swap_token("order-api-pg", "order-api", "bar"), "bar-pg");
        assert_eq!(swap_token("xorder-api", "order-api", "bar"), "xorder-api");
        assert!(has_token("foo-prod", "prod"));
        assert!(!has_token("shop", "prod"));
    }

    #[test]
    fn destinations_follow_the_sibling() {
        assert_eq!(
            infer_destination("gs://acme-dev-pg-backups/foo", "foo", "bar"),
            "gs://acme-dev-pg-backups/bar"
        );
        assert_eq!(
            infer_destination("s3://pg-backups-dev/", "shop", "orders"),
            "s3://pg-backups-dev/"
        );
        assert_eq!(
            infer_destination("s3://b/pg/other", "shop", "orders"),
            "s3://b/orders"
        );
        assert_eq!(
            infer_destination(
                "https://acme.blob.core.windows.net/pg/shop",
                "shop",
                "orders"
            ),
            "https://acme.blob.core.windows.net/pg/orders"
        );
    }

    #[test]
    fn memory_limit_caps_shared_buffers() {
        let mut c: Cluster = docs::from_value(&json!({
            "apiVersion": docs::CNPG_API, "kind": "Cluster", "metadata": {"name": "x"},
            "spec": {"resources": {"requests": {"memory": "4Gi", "cpu": "1"}, "limits": {"memory": "4Gi"}},
                     "postgresql": {"parameters": {"shared_buffers": "1GB"}}}
        }))
        .unwrap();
        let note = set_memory_limit(&mut c, "1Gi").unwrap();
        assert_eq!(
            note,
            "memory limit 1Gi (was 4Gi), shared_buffers 1GB → 256MB"
        );
        let v = docs::to_value(&c);
        assert_eq!(v["spec"]["resources"]["requests"]["memory"], "1Gi");
        assert_eq!(v["spec"]["resources"]["requests"]["cpu"], "1");
        assert_eq!(
            v["spec"]["postgresql"]["parameters"]["shared_buffers"],
            "256MB"
        );
        let mut big = c.clone();
        set_memory_limit(&mut big, "16Gi").unwrap();
        let v = docs::to_value(&big);
        assert_eq!(
            v["spec"]["postgresql"]["parameters"]["shared_buffers"],
            "256MB"
        );
        assert_eq!(v["spec"]["resources"]["requests"]["memory"], "16Gi");
        let mut small: Cluster = docs::from_value(&json!({
            "apiVersion": docs::CNPG_API, "kind": "Cluster", "metadata": {"name": "x"}, "spec": {}
        }))
        .unwrap();
        assert_eq!(
            set_memory_limit(&mut small, "256Mi").unwrap(),
            "memory limit 256Mi, shared_buffers 128MB → 64MB"
        );
        let mut eight = small.clone();
        set_memory_limit(&mut eight, "8Gi").unwrap();
        assert_eq!(
            docs::to_value(&eight)["spec"]["postgresql"]["parameters"]["shared_buffers"],
            "64MB"
        );
        let mut huge: Cluster = docs::from_value(&json!({
            "apiVersion": docs::CNPG_API, "kind": "Cluster", "metadata": {"name": "x"},
            "spec": {"postgresql": {"parameters": {"shared_buffers": "8GB"}}}
        }))
        .unwrap();
        set_memory_limit(&mut huge, "8Gi").unwrap();
        assert_eq!(
            docs::to_value(&huge)["spec"]["postgresql"]["parameters"]["shared_buffers"],
            "2GB"
        );
        assert!(set_memory_limit(&mut huge, "lots").is_none());
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("a/b.enc.yaml"), "a/b.enc.yaml");
        assert_eq!(shell_quote("^(data|stringData)$"), "'^(data|stringData)$'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
