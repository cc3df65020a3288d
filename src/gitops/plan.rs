//! The file changes that deliver a recovery: a recovery Cluster beside the
//! original (point-in-time restore), or an existing database in another env
//! re-pointed at a source catalog (clone), with the kustomization entry, the
//! Workload Identity binding, the cross-env bucket read and a new write
//! `serverName` generation.
//!
//! A plan reads the repository at a root and returns a [`ChangeSet`]; it
//! writes nothing (see `changes::apply`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::changes::{ChangeSet, FileChange};
use super::config::IdentityKind;
use super::discover::{self, BackupModel, Database, Discovery};
use super::docs::{self, Cluster, ObjectStore};
use super::edits;
use super::render::{self, Archive, RecoverySpec, Source, Target};
use super::repo::{Repo, RepoError};
use crate::yaml::{self, Step, edit::EditError, edit::Editor};

/// What to restore, from where, into what.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoveryRequest {
    /// Env of the source database.
    pub source_env: String,
    /// Service of the source database.
    pub source_svc: String,
    /// Env of the destination; the same env and service means a new cluster
    /// beside the original.
    pub dest_env: String,
    /// Service of the destination.
    pub dest_svc: String,
    /// Name of the new cluster (beside the original only; default
    /// `<cluster>-pitr-<label>`).
    pub dest_cluster: Option<String>,
    /// Where recovery stops.
    pub target: Target,
    /// Pinned base backup.
    pub backup_id: Option<String>,
    /// `targetTLI`.
    pub timeline: Option<String>,
    /// Short label for names (e.g. `20260501t1000`).
    pub label: String,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The repository does not read.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// No such database.
    #[error("no database `{svc}` in env `{env}`{known}")]
    NoDatabase {
        /// Env.
        env: String,
        /// Service.
        svc: String,
        /// Known databases, for the message.
        known: String,
    },
    /// The source has no readable catalog in its manifests.
    #[error("{env}/{svc}: {problem}")]
    Source {
        /// Env.
        env: String,
        /// Service.
        svc: String,
        /// What is missing.
        problem: String,
    },
    /// Rendering refused.
    #[error(transparent)]
    Render(#[from] render::RenderError),
    /// An edit could not be made safely.
    #[error("{file}: {source}")]
    Edit {
        /// File.
        file: PathBuf,
        /// Why.
        source: EditError,
    },
    /// A file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// File.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The files a plan reads and changes: each read sees the plan's earlier
/// changes.
pub(crate) struct Files<'a> {
    pub(crate) repo: &'a Repo,
    pub(crate) changes: Vec<FileChange>,
}

impl Files<'_> {
    pub(crate) fn current(&self, rel: &Path) -> Result<Option<String>, PlanError> {
        if let Some(c) = self.changes.iter().find(|c| c.path == rel) {
            return Ok(c.after.clone());
        }
        match self.repo.read(rel) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PlanError::Read {
                file: rel.to_owned(),
                source,
            }),
        }
    }

    pub(crate) fn set(&mut self, rel: &Path, after: String) -> Result<(), PlanError> {
        if let Some(c) = self.changes.iter_mut().find(|c| c.path == rel) {
            c.after = Some(after);
            return Ok(());
        }
        let before = self.current(rel)?;
        self.changes.push(FileChange {
            path: rel.to_owned(),
            before,
            after: Some(after),
        });
        Ok(())
    }

    pub(crate) fn edit(
        &mut self,
        rel: &Path,
        f: impl FnOnce(&str) -> Result<Option<String>, EditError>,
    ) -> Result<bool, PlanError> {
        let text = self.current(rel)?.unwrap_or_default();
        match f(&text).map_err(|source| PlanError::Edit {
            file: rel.to_owned(),
            source,
        })? {
            Some(after) => {
                self.set(rel, after)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

pub(crate) fn find<'d>(
    found: &'d Discovery,
    env: &str,
    svc: &str,
) -> Result<&'d Database, PlanError> {
    found.find(env, svc).ok_or_else(|| PlanError::NoDatabase {
        env: env.to_owned(),
        svc: svc.to_owned(),
        known: if found.databases.is_empty() {
            String::new()
        } else {
            format!(
                " (known: {})",
                found
                    .databases
                    .iter()
                    .map(|d| format!("{}/{}", d.env, d.svc))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    })
}

pub(crate) fn typed<T: serde::de::DeserializeOwned>(
    repo: &Repo,
    folder: &Path,
    group: &str,
    kind: &str,
    name: Option<&str>,
) -> Option<(PathBuf, usize, T)> {
    repo.docs_in(folder)
        .filter(|d| d.is(group, kind))
        .filter(|d| name.is_none_or(|n| d.name() == n))
        .find_map(|d| {
            docs::from_value(&d.value)
                .ok()
                .map(|t| (d.file.clone(), d.index, t))
        })
}

/// The database's Cluster: file, document index and the typed document.
pub(crate) fn cluster_of(
    repo: &Repo,
    db: &Database,
) -> Result<(PathBuf, usize, Cluster), PlanError> {
    typed::<Cluster>(
        repo,
        &db.folder,
        "postgresql.cnpg.io",
        "Cluster",
        Some(&db.cluster),
    )
    .ok_or_else(|| PlanError::Source {
        env: db.env.clone(),
        svc: db.svc.clone(),
        problem: "its Cluster does not read".into(),
    })
}

/// The catalog the database archives to, or why there is none.
pub(crate) fn catalog_of(db: &Database) -> Result<&discover::CatalogLocation, PlanError> {
    db.catalog.as_ref().ok_or_else(|| PlanError::Source {
        env: db.env.clone(),
        svc: db.svc.clone(),
        problem: "the manifests configure no backups, so there is no catalog to restore from"
            .into(),
    })
}

/// Plans a recovery as `req` asks, reading the repository at `root`.
pub fn recovery(root: &Path, req: &RecoveryRequest) -> Result<ChangeSet, PlanError> {
    recovery_as(root, req, false)
}

/// Plans an in-place recovery: the database's own Cluster, recreated from
/// its own catalog with a new write generation (the source and the
/// destination of `req` are the same database).
pub fn recovery_in_place(root: &Path, req: &RecoveryRequest) -> Result<ChangeSet, PlanError> {
    recovery_as(root, req, true)
}

fn recovery_as(root: &Path, req: &RecoveryRequest, in_place: bool) -> Result<ChangeSet, PlanError> {
    let repo = Repo::load(root)?;
    let found = discover::discover(&repo);
    let src = find(&found, &req.source_env, &req.source_svc)?;
    let (_, _, src_cluster) = cluster_of(&repo, src)?;
    catalog_of(src)?;
    if src.backup_model == BackupModel::Both {
        return Err(PlanError::Source {
            env: src.env.clone(),
            svc: src.svc.clone(),
            problem:
                "both inline and plugin backups are configured; fix that first (cnpg-ops lint)"
                    .into(),
        });
    }
    let mut files = Files {
        repo: &repo,
        changes: Vec::new(),
    };
    let beside = !in_place && req.source_env == req.dest_env && req.source_svc == req.dest_svc;
    let (subject, body) = if beside {
        beside_original(&mut files, src, &src_cluster, req)?
    } else {
        let dst = find(&found, &req.dest_env, &req.dest_svc)?;
        into_existing(&mut files, src, &src_cluster, dst, req)?
    };
    Ok(ChangeSet {
        changes: files.changes,
        subject,
        body,
    })
}

pub(crate) fn target_words(req: &RecoveryRequest) -> String {
    match &req.target {
        Target::Latest => "the end of the archive".to_owned(),
        Target::Time(t) => render::target_time(t),
        Target::Lsn(l) => format!("LSN {l}"),
        Target::Xid(x) => format!("transaction {x}"),
        Target::Name(n) => format!("restore point {n}"),
        Target::Immediate => "the end of the base backup".to_owned(),
    }
}

/// The source as a cluster in the source's own namespace reads it.
fn source_for(src: &Database, src_cluster: &Cluster) -> Result<Source, PlanError> {
    let catalog = catalog_of(src)?;
    Ok(if src.backup_model == BackupModel::Plugin {
        Source::Plugin {
            object_store: catalog.object_store.clone().unwrap_or_default(),
            server_name: catalog.server_name.clone(),
        }
    } else {
        Source::Inline {
            store: Box::new(src_cluster.inline_store().cloned().unwrap_or_default()),
            server_name: catalog.server_name.clone(),
        }
    })
}

fn gcp_account(repo: &Repo, env: &str) -> Option<String> {
    let e = repo.env(env);
    (e.identity == IdentityKind::GkeWorkloadIdentity)
        .then(|| e.backup_service_account_email())
        .flatten()
}

/// A recovery Cluster beside the original, in the same folder and namespace.
fn beside_original(
    files: &mut Files<'_>,
    src: &Database,
    src_cluster: &Cluster,
    req: &RecoveryRequest,
) -> Result<(String, String), PlanError> {
    let repo = files.repo;
    let name = req
        .dest_cluster
        .clone()
        .unwrap_or_else(|| format!("{}-pitr-{}", src.cluster, req.label));
    let refuse = |problem: String| PlanError::Source {
        env: src.env.clone(),
        svc: src.svc.clone(),
        problem,
    };
    // A Cluster name is a DNS-1035 label of at most 50 characters (CNPG).
    let valid = !name.is_empty()
        && name.len() <= 50
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(refuse(format!(
            "`{name}` is not a valid Cluster name: lowercase letters, digits and '-', starting with a letter, at most 50 characters"
        )));
    }
    let taken = repo.docs_of("postgresql.cnpg.io", "Cluster").any(|d| {
        d.name() == name
            && (d.file.starts_with(&src.folder)
                || d.value
                    .pointer("/metadata/namespace")
                    .and_then(serde_json::Value::as_str)
                    == Some(src.namespace.as_str()))
    });
    if taken
        || repo
            .root
            .join(src.folder.join(format!("{name}.yaml")))
            .exists()
    {
        return Err(refuse(format!(
            "a Cluster or file named {name} already exists in {}: bootstrap is read only when a Cluster is created, so a restore needs a new name (pass --into NAME)",
            src.folder.display()
        )));
    }
    let catalog = catalog_of(src)?;
    let source = source_for(src, src_cluster)?;
    let archive = match &source {
        Source::Plugin { object_store, .. } => Archive::Plugin {
            object_store: object_store.clone(),
            server_name: name.clone(),
        },
        Source::Inline { store, .. } => Archive::Inline {
            store: store.clone(),
            retention_policy: src.retention_policy.clone(),
            server_name: name.clone(),
        },
    };
    let gsa = src_cluster
        .spec
        .rest
        .get("serviceAccountTemplate")
        .and_then(|t| t.pointer("/metadata/annotations/iam.gke.io~1gcp-service-account"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| gcp_account(repo, &src.env));
    let rendered = render::recovery_cluster(&RecoverySpec {
        template: src_cluster.clone(),
        name: name.clone(),
        namespace: src.namespace.clone(),
        source_name: format!("{}-origin", src.cluster),
        source,
        target: req.target.clone(),
        backup_id: req.backup_id.clone(),
        timeline: req.timeline.clone(),
        archive: Some(archive),
        gcp_service_account: if matches!(
            catalog.credentials,
            discover::Credentials::GkeWorkloadIdentity
        ) {
            gsa.clone()
        } else {
            None
        },
        instances: Some(1),
        app: None,
    })?;
    let file_name = format!("{name}.yaml");
    let rel = src.folder.join(&file_name);
    files.set(&rel, yaml::emit::to_string(&rendered.cluster))?;
    let kustomization = src.folder.join("kustomization.yaml");
    if files.current(&kustomization)?.is_some() {
        files.edit(&kustomization, |t| edits::add_resources(t, &[&file_name]))?;
    }
    bind_identity(files, &src.env, &src.namespace, &name, &catalog.credentials)?;
    let subject = format!(
        "{}/{}: restore {} to {} as {name}",
        src.env,
        src.svc,
        src.cluster,
        target_words(req)
    );
    let body = format!(
        "Adds the Cluster {name} beside {cluster} in {ns}. It bootstraps from the catalog\n\
         {dest}/{server} and stops at {target}.\n\
         It archives under its own server folder {name}, so the original's WAL is never\n\
         touched and the empty-archive check passes.",
        cluster = src.cluster,
        ns = src.namespace,
        dest = catalog.destination_path.trim_end_matches('/'),
        server = catalog.server_name,
        target = target_words(req),
    );
    Ok((subject, body))
}

fn bind_identity(
    files: &mut Files<'_>,
    env: &str,
    namespace: &str,
    cluster: &str,
    credentials: &discover::Credentials,
) -> Result<(), PlanError> {
    if !matches!(credentials, discover::Credentials::GkeWorkloadIdentity) {
        return Ok(());
    }
    let e = files.repo.env(env);
    let sa = PathBuf::from(&e.service_accounts);
    if files.current(&sa)?.is_some() {
        let member = edits::binding(namespace, cluster);
        files.edit(&sa, |t| {
            edits::bind_workload_identity(t, &e.backup_service_account, &member)
        })?;
    }
    Ok(())
}

/// Re-points an existing database in another env at the source catalog:
/// its Cluster gets the recovery bootstrap and a new write generation, its
/// folder a read-only ObjectStore for the source bucket (plugin model), the
/// source bucket a reader (GKE).
fn into_existing(
    files: &mut Files<'_>,
    src: &Database,
    src_cluster: &Cluster,
    dst: &Database,
    req: &RecoveryRequest,
) -> Result<(String, String), PlanError> {
    let repo = files.repo;
    let src_catalog = catalog_of(src)?;
    let (cluster_file, cluster_index, dst_cluster) = cluster_of(repo, dst)?;
    let mut secrets_needed: Vec<String> = Vec::new();
    // Reader store in the destination namespace (plugin model).
    let read_store_name = format!(
        "{}-{}",
        src_catalog
            .object_store
            .clone()
            .unwrap_or_else(|| src.cluster.clone()),
        src.env
    );
    let source = if src.backup_model == BackupModel::Plugin {
        let (_, _, src_store) = typed::<ObjectStore>(
            repo,
            &src.folder,
            "barmancloud.cnpg.io",
            "ObjectStore",
            src_catalog.object_store.as_deref(),
        )
        .ok_or_else(|| PlanError::Source {
            env: src.env.clone(),
            svc: src.svc.clone(),
            problem: "its ObjectStore does not read".into(),
        })?;
        // An ObjectStore already there reads the source only if it points at
        // the same place (prefix and endpoint); the destination's own write
        // store never serves as the source, even when the paths look alike.
        let dst_write = dst.catalog.as_ref().and_then(|c| c.object_store.clone());
        let same_place = |a: &docs::BarmanObjectStore, b: &docs::BarmanObjectStore| {
            a.destination_path.trim_end_matches('/') == b.destination_path.trim_end_matches('/')
                && a.endpoint_url == b.endpoint_url
        };
        let existing = repo
            .docs_in(&dst.folder)
            .filter(|d| d.is("barmancloud.cnpg.io", "ObjectStore"))
            .find_map(|d| {
                let s: ObjectStore = docs::from_value(&d.value).ok()?;
                (same_place(&s.spec.configuration, &src_store.spec.configuration)
                    && Some(&s.metadata.name) != dst_write.as_ref())
                .then_some(s.metadata.name)
            });
        let foreign = src.env != dst.env || src.namespace != dst.namespace;
        let taken = repo
            .docs_in(&dst.folder)
            .any(|d| d.is("barmancloud.cnpg.io", "ObjectStore") && d.name() == read_store_name);
        if existing.is_none() && taken {
            return Err(PlanError::Source {
                env: dst.env.clone(),
                svc: dst.svc.clone(),
                problem: format!(
                    "an ObjectStore named {read_store_name} already exists in {} and points \
                     somewhere else than {}'s catalog; rename it or point it at {}",
                    dst.folder.display(),
                    src.cluster,
                    src_store.spec.configuration.destination_path
                ),
            });
        }
        if existing.is_none() {
            let configuration = if foreign {
                let (c, needed) =
                    render::with_foreign_secrets(&src_store.spec.configuration, &src.env);
                secrets_needed.extend(needed);
                c
            } else {
                src_store.spec.configuration.clone()
            };
            let doc = render::object_store(
                &read_store_name,
                &dst.namespace,
                &configuration,
                &src_store.spec.configuration.destination_path,
                None,
            );
            let store_file = dst.folder.join("object-store.yaml");
            files.edit(&store_file, |t| edits::add_document(Some(t), &doc))?;
            let k = dst.folder.join("kustomization.yaml");
            if files.current(&k)?.is_some() {
                files.edit(&k, |t| edits::add_resources(t, &["object-store.yaml"]))?;
            }
        }
        Source::Plugin {
            object_store: existing.unwrap_or(read_store_name.clone()),
            server_name: src_catalog.server_name.clone(),
        }
    } else {
        let mut source = source_for(src, src_cluster)?;
        let foreign = src.env != dst.env || src.namespace != dst.namespace;
        if let (Source::Inline { store, .. }, true) = (&mut source, foreign) {
            let (c, needed) = render::with_foreign_secrets(store, &src.env);
            **store = c;
            secrets_needed.extend(needed);
        }
        source
    };
    retarget(
        files,
        src_cluster,
        &cluster_file,
        cluster_index,
        &dst_cluster,
        dst,
        src,
        &source,
        req,
    )?;
    // Cross-env read on the source bucket (GKE): the destination's account
    // becomes a reader.
    if let (discover::Credentials::GkeWorkloadIdentity, Some(member)) =
        (&src_catalog.credentials, gcp_account(repo, &dst.env))
        && let Some(bucket) = src_catalog
            .destination_path
            .strip_prefix("gs://")
            .and_then(|p| p.split('/').next())
    {
        let buckets = PathBuf::from(repo.env(&src.env).buckets);
        if files.current(&buckets)?.is_some() {
            let member = format!("serviceAccount:{member}");
            files.edit(&buckets, |t| edits::grant_bucket_reader(t, bucket, &member))?;
        }
    }
    if let Some(c) = &dst.catalog {
        bind_identity(
            files,
            &dst.env,
            &dst.namespace,
            &dst.cluster,
            &c.credentials,
        )?;
    }
    let subject = format!(
        "{}/{}: clone {}/{} at {}",
        dst.env,
        dst.svc,
        src.env,
        src.svc,
        target_words(req)
    );
    let body = format!(
        "Points {ns}/{name} at the catalog {dest}/{server}, stopping at {target}.\n\
         bootstrap is read only when a Cluster is created: the change takes effect when\n\
         {name} is deleted and recreated (cnpg-ops reclone). The clone archives under a new\n\
         server folder generation, so the previous generation's WAL never blocks it.{secrets}",
        secrets = if secrets_needed.is_empty() {
            String::new()
        } else {
            format!(
                "\n\nBefore it can read the source, create in namespace {} the Secret(s) {} with\n\
                 read-only credentials for {} (with sops, beside the other encrypted secrets).",
                dst.namespace,
                secrets_needed.join(", "),
                src_catalog.destination_path
            )
        },
        ns = dst.namespace,
        name = dst.cluster,
        dest = src_catalog.destination_path.trim_end_matches('/'),
        server = src_catalog.server_name,
        target = target_words(req),
    );
    Ok((subject, body))
}

/// Edits the destination Cluster in place: bootstrap, externalClusters and
/// the write serverName, keeping every other line and comment.
#[allow(clippy::too_many_arguments)]
fn retarget(
    files: &mut Files<'_>,
    src_cluster: &Cluster,
    cluster_file: &Path,
    index: usize,
    dst_cluster: &Cluster,
    dst: &Database,
    src: &Database,
    source: &Source,
    req: &RecoveryRequest,
) -> Result<(), PlanError> {
    let current_server = dst.catalog.as_ref().map(|c| c.server_name.clone());
    let next = render::next_server_name(&dst.cluster, current_server.as_deref());
    let archive = match (dst.backup_model, &dst.catalog) {
        (BackupModel::Plugin, Some(c)) => Some(Archive::Plugin {
            object_store: c.object_store.clone().unwrap_or_default(),
            server_name: next.clone(),
        }),
        (BackupModel::Inline, Some(_)) => dst_cluster.inline_store().map(|s| Archive::Inline {
            store: Box::new(s.clone()),
            retention_policy: dst.retention_policy.clone(),
            server_name: next.clone(),
        }),
        _ => None,
    };
    let rendered = render::recovery_cluster(&RecoverySpec {
        template: dst_cluster.clone(),
        name: dst.cluster.clone(),
        namespace: dst.namespace.clone(),
        source_name: src.env.clone(),
        source: source.clone(),
        target: req.target.clone(),
        backup_id: req.backup_id.clone(),
        timeline: req.timeline.clone(),
        archive,
        gcp_service_account: None,
        instances: None,
        app: Some(render::app_names(src_cluster)),
    })?;
    let spec = &rendered.cluster["spec"];
    let model = dst.backup_model;
    files.edit(cluster_file, |text| {
        let mut e = Editor::new(text);
        for key in ["bootstrap", "externalClusters"] {
            e.update(index, &[Step::key("spec"), Step::key(key)], &spec[key])?;
        }
        // Only the write folder changes; the rest of the archive stanza and
        // its comments stay as written.
        let server = Value::String(next.clone());
        match model {
            BackupModel::Plugin => e.set(
                index,
                &[
                    Step::key("spec"),
                    Step::key("plugins"),
                    Step::Where("name".into(), docs::BARMAN_PLUGIN.into()),
                    Step::key("parameters"),
                    Step::key("serverName"),
                ],
                &server,
            )?,
            BackupModel::Inline => e.set(
                index,
                &[
                    Step::key("spec"),
                    Step::key("backup"),
                    Step::key("barmanObjectStore"),
                    Step::key("serverName"),
                ],
                &server,
            )?,
            BackupModel::Both | BackupModel::None => {}
        }
        Ok((e.text() != text).then(|| e.finish()))
    })?;
    Ok(())
}
