//! Groups 1–4: the cloud half — GKE Workload Identity bindings, the backup
//! service account's roles, bucket lifecycle against retention, and
//! double-nested destination paths.
//!
//! The Terraform half is read from two YAML files per env (paths in
//! `.cnpg-ops.toml`):
//!
//! ```yaml
//! # service_accounts: one entry per Google service account of the env's project
//! service_accounts:
//!   - name: cnpg-backup                  # account id, without @project…
//!     roles: [roles/storage.objectAdmin, roles/storage.legacyBucketReader]
//!     workload_identity_bindings: [foo-prod/foo-pg]   # <namespace>/<KSA>
//! # buckets:
//! buckets:
//!   - name: acme-prod-pg-backups
//!     lifecycle_rules:
//!       - action: Delete
//!         age_days: 45
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::Duration;
use serde_json::Value;

use super::{Context, Fix, FixEdit, LintFinding, Rule, at, in_file, rule};
use crate::catalog::findings::Severity::{Error, Warning};
use crate::catalog::retention::Policy;
use crate::gitops::config::Env;
use crate::gitops::discover::Database;
use crate::gitops::docs::{self, BarmanObjectStore, Cluster, ObjectStore, ScheduledBackup};
use crate::gitops::repo::Doc;
use crate::gitops::webhook::backup_interval;
use crate::yaml::{Step, steps};

/// The rules of this module.
pub const RULES: &[Rule] = &[
    rule(
        "gke-wi-annotation-missing",
        1,
        Error,
        "A Cluster's object store uses googleCredentials.gkeEnvironment but spec.serviceAccountTemplate has no iam.gke.io/gcp-service-account annotation.",
    ),
    rule(
        "gke-wi-binding-missing",
        1,
        Error,
        "The Google service account a Cluster is annotated with has no `<namespace>/<cluster>` in its workload_identity_bindings.",
    ),
    rule(
        "gke-wi-service-account-unknown",
        1,
        Error,
        "A Cluster's iam.gke.io/gcp-service-account names an account that is not in the env's service-accounts YAML.",
    ),
    rule(
        "gke-wi-project-mismatch",
        1,
        Warning,
        "A Cluster's Google service account is in another project than the env's gcp_project.",
    ),
    rule(
        "gke-wi-binding-unused",
        1,
        Warning,
        "A workload identity binding of a backup account names no Cluster of the env (such as a standalone ServiceAccount the pods never run as).",
    ),
    rule(
        "gcs-bucket-get-missing",
        2,
        Error,
        "The backup service account has roles/storage.objectAdmin but no role with storage.buckets.get, which barman-cloud calls.",
    ),
    rule(
        "gcs-lifecycle-shorter-than-retention",
        3,
        Error,
        "A bucket lifecycle Delete rule is not longer than a database's retention window plus its backup interval.",
    ),
    rule(
        "gcs-lifecycle-without-retention",
        3,
        Warning,
        "A database without a retention policy archives to a bucket with a lifecycle Delete rule.",
    ),
    rule(
        "destination-path-double-nested",
        4,
        Error,
        "A destinationPath ends in the cluster name or the server name, which barman appends again.",
    ),
];

/// The annotation that maps a Kubernetes service account to a Google one.
const WI_ANNOTATION: &str = "iam.gke.io/gcp-service-account";
/// Roles that let barman-cloud write and read objects.
const OBJECT_ROLES: [&str; 2] = ["roles/storage.objectAdmin", "roles/storage.objectUser"];
/// Predefined roles that carry `storage.buckets.get`.
const BUCKET_GET_ROLES: [&str; 8] = [
    "roles/storage.legacyBucketReader",
    "roles/storage.legacyBucketWriter",
    "roles/storage.legacyBucketOwner",
    "roles/storage.admin",
    "roles/storage.bucketViewer",
    "roles/owner",
    "roles/editor",
    "roles/viewer",
];
const DAY: i64 = 86_400;

/// Runs this module's rules.
pub fn check(ctx: &Context<'_>, out: &mut Vec<LintFinding>) {
    let envs = envs(ctx);
    let sa_files = service_account_files(ctx, &envs);
    let mut backup_accounts: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    for env in &envs {
        if let Some(f) = sa_files.iter().find(|f| f.has_env(&env.name)) {
            backup_accounts.insert((f.file.clone(), env.backup_service_account.clone()));
        }
    }
    let catalogs: BTreeSet<(String, String)> = ctx
        .discovery
        .databases
        .iter()
        .filter_map(|db| db.catalog.as_ref())
        .map(|c| (trim_path(&c.destination_path), c.server_name.clone()))
        .collect();
    let buckets = buckets(ctx, &envs);
    let needs: Vec<Option<Need>> = ctx
        .discovery
        .databases
        .iter()
        .map(|db| Need::of(ctx, db))
        .collect();
    for (db, need) in ctx.discovery.databases.iter().zip(&needs) {
        let Some(cluster_doc) = ctx.cluster_doc(db) else {
            continue;
        };
        let Ok(cluster) = docs::from_value::<Cluster>(&cluster_doc.value) else {
            continue;
        };
        let stores: Vec<(&Doc, ObjectStore)> = ctx
            .doc_in(db, "barmancloud.cnpg.io", "ObjectStore")
            .into_iter()
            .filter_map(|d| docs::from_value(&d.value).ok().map(|s| (d, s)))
            .collect();
        let unit = DbUnit {
            db,
            env: ctx.repo.env(&db.env),
            doc: cluster_doc,
            cluster: &cluster,
            stores: &stores,
        };
        if let Some(used) = workload_identity(&unit, &sa_files, out) {
            backup_accounts.insert(used);
        }
        double_nesting(&unit, &catalogs, out);
        if let Some(need) = need {
            lifecycle(&unit, need, &needs, &buckets, out);
        }
    }
    for f in &sa_files {
        bindings_unused(ctx, f, &backup_accounts, out);
        bucket_get(f, &backup_accounts, out);
    }
}

/// One database with what its rules look at.
struct DbUnit<'a, 'c> {
    db: &'a Database,
    env: Env,
    doc: &'a Doc,
    cluster: &'c Cluster,
    stores: &'c [(&'a Doc, ObjectStore)],
}

impl<'a> DbUnit<'a, '_> {
    fn store(&self, name: Option<&String>) -> Option<&(&'a Doc, ObjectStore)> {
        let name = name?;
        self.stores.iter().find(|(_, s)| &s.metadata.name == name)
    }

    /// `<namespace>/<cluster>`: the Kubernetes service account CNPG runs
    /// every instance as.
    fn ksa(&self) -> String {
        format!("{}/{}", self.db.namespace, self.db.cluster)
    }
}

// ---------------------------------------------------------------------------
// Terraform YAML
// ---------------------------------------------------------------------------

/// One Google service account in a service-accounts YAML.
struct Account<'a> {
    doc: &'a Doc,
    /// Path of the entry (`service_accounts[0]`).
    path: String,
    name: String,
    /// Each role with its line.
    roles: Vec<(String, usize)>,
    /// Each binding with its line.
    bindings: Vec<(String, usize)>,
}

/// A service-accounts YAML and the envs that use it.
struct SaFile<'a> {
    file: PathBuf,
    envs: Vec<Env>,
    accounts: Vec<Account<'a>>,
}

impl SaFile<'_> {
    fn has_env(&self, env: &str) -> bool {
        self.envs.iter().any(|e| e.name == env)
    }

    fn project(&self) -> Option<&str> {
        self.envs.iter().find_map(|e| e.gcp_project.as_deref())
    }

    fn account(&self, name: &str) -> Option<&Account<'_>> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

/// Every env the repository mentions, with its settings.
fn envs(ctx: &Context<'_>) -> Vec<Env> {
    let names: BTreeSet<&str> = ctx
        .repo
        .config
        .env
        .keys()
        .map(String::as_str)
        .chain(ctx.discovery.databases.iter().map(|d| d.env.as_str()))
        .collect();
    names.into_iter().map(|n| ctx.repo.env(n)).collect()
}

/// Whether a file is in the repository and parsed.
fn readable(ctx: &Context<'_>, file: &Path) -> bool {
    ctx.repo.files.iter().any(|f| f == file) && !ctx.repo.bad_files.iter().any(|b| b.file == file)
}

/// The strings of a YAML list at `path` in `doc`, each with its line.
fn strings_at(doc: &Doc, value: Option<&Value>, path: &str) -> Vec<(String, usize)> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.as_str()
                        .map(|s| (s.trim().to_owned(), doc.line(&format!("{path}[{i}]"))))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The service-accounts files of every env, each read once.
fn service_account_files<'a>(ctx: &Context<'a>, envs: &[Env]) -> Vec<SaFile<'a>> {
    let mut out: Vec<SaFile<'a>> = Vec::new();
    for env in envs {
        let file = PathBuf::from(&env.service_accounts);
        if let Some(f) = out.iter_mut().find(|f| f.file == file) {
            f.envs.push(env.clone());
            continue;
        }
        if !readable(ctx, &file) {
            continue;
        }
        let mut accounts = Vec::new();
        for doc in ctx.repo.docs.iter().filter(|d| d.file == file) {
            let Some(list) = doc.value.get("service_accounts").and_then(Value::as_array) else {
                continue;
            };
            for (i, entry) in list.iter().enumerate() {
                let Some(name) = entry.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let path = format!("service_accounts[{i}]");
                accounts.push(Account {
                    doc,
                    name: name.trim().to_owned(),
                    roles: strings_at(doc, entry.get("roles"), &format!("{path}.roles")),
                    bindings: strings_at(
                        doc,
                        entry.get("workload_identity_bindings"),
                        &format!("{path}.workload_identity_bindings"),
                    ),
                    path,
                });
            }
        }
        out.push(SaFile {
            file,
            envs: vec![env.clone()],
            accounts,
        });
    }
    out
}

/// A lifecycle rule that deletes live objects.
struct DeleteRule {
    age_days: i64,
    /// Path of `age_days`.
    path: String,
    /// `matches_prefix`, when the rule is limited to some prefixes.
    prefixes: Vec<String>,
}

/// One bucket with its Delete rules.
struct Bucket<'a> {
    doc: &'a Doc,
    name: String,
    rules: Vec<DeleteRule>,
}

/// Every bucket of every env's buckets YAML.
fn buckets<'a>(ctx: &Context<'a>, envs: &[Env]) -> Vec<Bucket<'a>> {
    let files: BTreeSet<PathBuf> = envs.iter().map(|e| PathBuf::from(&e.buckets)).collect();
    let mut out = Vec::new();
    for file in files.into_iter().filter(|f| readable(ctx, f)) {
        for doc in ctx.repo.docs.iter().filter(|d| d.file == file) {
            let Some(list) = doc.value.get("buckets").and_then(Value::as_array) else {
                continue;
            };
            for (i, b) in list.iter().enumerate() {
                let Some(name) = b.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let rules = b
                    .get("lifecycle_rules")
                    .and_then(Value::as_array)
                    .map(|rules| {
                        rules
                            .iter()
                            .enumerate()
                            .filter_map(|(j, r)| {
                                delete_rule(r, &format!("buckets[{i}].lifecycle_rules[{j}]"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Bucket {
                    doc,
                    name: name.trim().to_owned(),
                    rules,
                });
            }
        }
    }
    out
}

/// A lifecycle rule, when it deletes live objects after an age.
fn delete_rule(r: &Value, path: &str) -> Option<DeleteRule> {
    let action = r.get("action").and_then(Value::as_str)?;
    if !action.trim().eq_ignore_ascii_case("delete") {
        return None;
    }
    // Rules limited to noncurrent versions never touch the live catalog.
    if r.get("with_state")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("archived"))
    {
        return None;
    }
    let age = r.get("age_days")?;
    let age_days = age
        .as_i64()
        .or_else(|| age.as_str().and_then(|s| s.trim().parse().ok()))?;
    let prefixes = match r.get("matches_prefix") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    Some(DeleteRule {
        age_days,
        path: format!("{path}.age_days"),
        prefixes,
    })
}

// ---------------------------------------------------------------------------
// Group 1: GKE Workload Identity
// ---------------------------------------------------------------------------

/// The annotation's value and line.
fn wi_annotation(doc: &Doc) -> Option<(String, usize)> {
    let node = doc.node.at(&[
        Step::key("spec"),
        Step::key("serviceAccountTemplate"),
        Step::key("metadata"),
        Step::key("annotations"),
        Step::key(WI_ANNOTATION),
    ])?;
    let s = node.as_str()?.trim();
    (!s.is_empty()).then(|| (s.to_owned(), node.line))
}

/// `account@project.iam.gserviceaccount.com` as (account, project).
fn parse_email(s: &str) -> Option<(&str, &str)> {
    let (account, domain) = s.split_once('@')?;
    let project = domain.strip_suffix(".iam.gserviceaccount.com")?;
    (!account.is_empty() && !project.is_empty()).then_some((account, project))
}

/// A binding as `namespace/name`, also from the
/// `[serviceAccount:]PROJECT.svc.id.goog[namespace/name]` member form.
fn binding_key(s: &str) -> &str {
    let s = s.trim();
    match (s.find('['), s.strip_suffix(']')) {
        (Some(open), Some(body)) => &body[open + 1..],
        _ => s,
    }
}

/// Whether a store authenticates with Workload Identity.
fn uses_gke(store: &BarmanObjectStore) -> bool {
    store
        .google_credentials
        .as_ref()
        .and_then(|g| g.gke_environment)
        == Some(true)
}

/// Where the Cluster's stores (its own, and those it recovers or replicates
/// from) say `gkeEnvironment: true`.
fn gke_uses(u: &DbUnit<'_, '_>) -> Vec<String> {
    let mut out = Vec::new();
    let store_path = "spec.configuration.googleCredentials.gkeEnvironment";
    if u.cluster.inline_store().is_some_and(uses_gke) {
        let path = "spec.backup.barmanObjectStore.googleCredentials.gkeEnvironment";
        out.push(loc(u.doc, path));
    }
    if let Some((d, _)) = u
        .cluster
        .barman_plugin()
        .and_then(|p| u.store(p.parameters.get("barmanObjectName")))
        .filter(|(_, s)| uses_gke(&s.spec.configuration))
    {
        out.push(loc(d, store_path));
    }
    let sources: Vec<&str> = [
        u.cluster.recovery().and_then(|r| r.source.as_deref()),
        u.doc
            .value
            .pointer("/spec/replica/source")
            .and_then(Value::as_str),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (i, e) in u.cluster.spec.external_clusters.iter().enumerate() {
        if !sources.contains(&e.name.as_str()) {
            continue;
        }
        if e.barman_object_store.as_ref().is_some_and(uses_gke) {
            let path = format!(
                "spec.externalClusters[{i}].barmanObjectStore.googleCredentials.gkeEnvironment"
            );
            out.push(loc(u.doc, &path));
        }
        if let Some((d, _)) = e
            .plugin
            .as_ref()
            .filter(|p| p.name == docs::BARMAN_PLUGIN)
            .and_then(|p| u.store(p.parameters.get("barmanObjectName")))
            .filter(|(_, s)| uses_gke(&s.spec.configuration))
        {
            out.push(loc(d, store_path));
        }
    }
    out.dedup();
    out
}

/// `file:line` of a path in a document.
fn loc(doc: &Doc, path: &str) -> String {
    format!("{}:{}", doc.file.display(), doc.line(path))
}

/// The service-accounts file that holds the accounts of `project`, as seen
/// from `env`.
fn file_for_project<'f, 'a>(
    files: &'f [SaFile<'a>],
    env: &Env,
    project: &str,
) -> Option<&'f SaFile<'a>> {
    match env.gcp_project.as_deref() {
        None => files.iter().find(|f| f.has_env(&env.name)),
        Some(p) if p == project => files.iter().find(|f| f.has_env(&env.name)),
        Some(_) => files.iter().find(|f| f.project() == Some(project)),
    }
}

/// Group 1 for one database. Returns the service-accounts file and account
/// its annotation resolves to (to treat that account as a backup account).
fn workload_identity(
    u: &DbUnit<'_, '_>,
    files: &[SaFile<'_>],
    out: &mut Vec<LintFinding>,
) -> Option<(PathBuf, String)> {
    let ksa = u.ksa();
    let annotation = wi_annotation(u.doc);
    let Some((email, line)) = annotation else {
        let uses = gke_uses(u);
        if !uses.is_empty() {
            let wanted = u.env.backup_service_account_email().unwrap_or_else(|| {
                format!(
                    "{}@<project>.iam.gserviceaccount.com",
                    u.env.backup_service_account
                )
            });
            let bind = match files.iter().find(|f| f.has_env(&u.env.name)) {
                Some(f) => format!(", and bind `{ksa}` to that account in {}", f.file.display()),
                None => String::new(),
            };
            out.push(at(
                "gke-wi-annotation-missing",
                u.doc,
                "spec.serviceAccountTemplate.metadata.annotations",
                format!(
                    "Cluster {ksa} authenticates to the bucket with `gkeEnvironment: true` ({}) but \
                     spec.serviceAccountTemplate has no `{WI_ANNOTATION}` annotation: its pods' \
                     Kubernetes service account `{}` is mapped to no Google service account, so \
                     barman-cloud gets no credentials for the bucket and archiving fails",
                    uses.join(", "),
                    u.db.cluster
                ),
                &format!(
                    "add `{WI_ANNOTATION}: {wanted}` under spec.serviceAccountTemplate.metadata.annotations{bind}"
                ),
            ));
        }
        return None;
    };
    let (account, project) = parse_email(&email)?;
    if let Some(env_project) = u.env.gcp_project.as_deref().filter(|p| *p != project) {
        let own = format!("{account}@{env_project}.iam.gserviceaccount.com");
        out.push(in_file(
            "gke-wi-project-mismatch",
            u.doc.file.clone(),
            line,
            format!(
                "Cluster {ksa} acts as `{email}`, an account of project `{project}`, but env `{}` \
                 is project `{env_project}` (gcp_project): the binding must then name the \
                 cluster's workload pool, `serviceAccount:{env_project}.svc.id.goog[{ksa}]`, not \
                 one in `{project}`",
                u.env.name
            ),
            &format!(
                "use `{WI_ANNOTATION}: {own}`; if the other project's account is deliberate, grant \
                 roles/iam.workloadIdentityUser on it to `serviceAccount:{env_project}.svc.id.goog[{ksa}]`"
            ),
        ));
    }
    let file = file_for_project(files, &u.env, project)?;
    let found = (file.file.clone(), account.to_owned());
    let Some(entry) = file.account(account) else {
        let known: Vec<&str> = file.accounts.iter().map(|a| a.name.as_str()).collect();
        out.push(in_file(
            "gke-wi-service-account-unknown",
            u.doc.file.clone(),
            line,
            format!(
                "Cluster {ksa} acts as `{email}`, but {} declares no service account `{account}` \
                 (it has: {}): nothing grants the pods access to the bucket",
                file.file.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ),
            &format!(
                "add `- name: {account}` with its storage roles and `workload_identity_bindings: [{ksa}]` \
                 to {}, or name one of its accounts in the annotation",
                file.file.display()
            ),
        ));
        return Some(found);
    };
    // Across projects the binding names another workload pool, which the
    // `<namespace>/<name>` form cannot say; the project warning covers it.
    let cross_project = !file.has_env(&u.env.name);
    if !cross_project && !entry.bindings.iter().any(|(b, _)| binding_key(b) == ksa) {
        let has: Vec<&str> = entry.bindings.iter().map(|(b, _)| b.as_str()).collect();
        out.push(
            at(
                "gke-wi-binding-missing",
                entry.doc,
                &format!("{}.workload_identity_bindings", entry.path),
                format!(
                    "Cluster {ksa} ({}:{line}) acts as `{email}`, but `{account}`'s \
                 workload_identity_bindings {} lack `{ksa}`: CloudNativePG runs every instance \
                 as the Kubernetes service account named after the Cluster, so that is the only \
                 binding that lets its pods act as the account",
                    u.doc.file.display(),
                    if has.is_empty() {
                        "(none)".to_owned()
                    } else {
                        format!("({})", has.join(", "))
                    }
                ),
                &format!("add `- {ksa}` under workload_identity_bindings of `{account}`"),
            )
            .with_fix(Fix::new(
                entry.doc,
                format!("bind {ksa} to {account}"),
                vec![FixEdit::Append(
                    steps(&format!("{}.workload_identity_bindings", entry.path)),
                    Value::String(ksa.clone()),
                )],
            )),
        );
    }
    Some(found)
}

/// Bindings of backup accounts that no Cluster of the file's envs runs as.
fn bindings_unused(
    ctx: &Context<'_>,
    f: &SaFile<'_>,
    backup_accounts: &BTreeSet<(PathBuf, String)>,
    out: &mut Vec<LintFinding>,
) {
    let dbs: Vec<&Database> = ctx
        .discovery
        .databases
        .iter()
        .filter(|d| f.has_env(&d.env))
        .collect();
    let env_names: Vec<&str> = f.envs.iter().map(|e| e.name.as_str()).collect();
    for a in &f.accounts {
        if !backup_accounts.contains(&(f.file.clone(), a.name.clone())) {
            continue;
        }
        for (b, line) in &a.bindings {
            let key = binding_key(b);
            if dbs
                .iter()
                .any(|d| format!("{}/{}", d.namespace, d.cluster) == key)
            {
                continue;
            }
            let (ns, name) = key.split_once('/').unwrap_or(("", key));
            let in_ns: Vec<String> = dbs
                .iter()
                .filter(|d| d.namespace == ns)
                .map(|d| format!("{}/{}", d.namespace, d.cluster))
                .collect();
            let decoy = service_account_doc(ctx, ns, name);
            let why = match &decoy {
                Some(at) => format!(
                    "`{key}` is the ServiceAccount declared at {at}, which CloudNativePG never \
                     runs instances as: each instance runs as the service account named after \
                     its Cluster"
                ),
                None => format!(
                    "no Cluster of env {} is `{key}` (CloudNativePG runs each instance as the \
                     service account named after its Cluster)",
                    env_names.join(", ")
                ),
            };
            let hint = if in_ns.is_empty() {
                format!(
                    "remove `- {b}`, or bind `<namespace>/<cluster>` of the Cluster that should act as `{}`",
                    a.name
                )
            } else {
                format!("replace `- {b}` with `- {}`", in_ns.join("` and `- "))
            };
            out.push(in_file(
                "gke-wi-binding-unused",
                f.file.clone(),
                *line,
                format!(
                    "workload identity binding `{b}` of `{}` matches no Cluster: {why}",
                    a.name
                ),
                &hint,
            ));
        }
    }
}

/// `file:line` of a ServiceAccount `ns/name` declared in the repository.
fn service_account_doc(ctx: &Context<'_>, ns: &str, name: &str) -> Option<String> {
    ctx.repo
        .docs
        .iter()
        .filter(|d| d.kind() == "ServiceAccount" && d.api_version() == "v1" && d.name() == name)
        .find(|d| {
            let declared = d
                .value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            let folder_ns = ctx
                .discovery
                .databases
                .iter()
                .find(|db| d.file.starts_with(&db.folder))
                .map(|db| db.namespace.as_str());
            folder_ns.or(declared) == Some(ns)
        })
        .map(|d| loc(d, "metadata.name"))
}

// ---------------------------------------------------------------------------
// Group 2: storage.buckets.get
// ---------------------------------------------------------------------------

fn bucket_get(
    f: &SaFile<'_>,
    backup_accounts: &BTreeSet<(PathBuf, String)>,
    out: &mut Vec<LintFinding>,
) {
    for a in &f.accounts {
        if !backup_accounts.contains(&(f.file.clone(), a.name.clone())) {
            continue;
        }
        let Some((role, line)) = a
            .roles
            .iter()
            .find(|(r, _)| OBJECT_ROLES.contains(&r.as_str()))
        else {
            continue;
        };
        // A custom role may carry anything.
        let custom = a
            .roles
            .iter()
            .any(|(r, _)| r.starts_with("projects/") || r.starts_with("organizations/"));
        if custom
            || a.roles
                .iter()
                .any(|(r, _)| BUCKET_GET_ROLES.contains(&r.as_str()))
        {
            continue;
        }
        out.push(in_file(
            "gcs-bucket-get-missing",
            f.file.clone(),
            *line,
            format!(
                "backup service account `{}` has `{role}` but no role with storage.buckets.get \
                 (roles/storage.objectAdmin and roles/storage.objectUser do not carry it): \
                 barman-cloud's checks call buckets.get and fail with 403, so archiving and \
                 backups fail",
                a.name
            ),
            &format!(
                "add `- roles/storage.legacyBucketReader` under roles of `{}`",
                a.name
            ),
        ));
    }
}

// ---------------------------------------------------------------------------
// Group 3: lifecycle against retention
// ---------------------------------------------------------------------------

/// The longest gap between base backups, or one day (and a note) when no
/// ScheduledBackup says.
fn interval(ctx: &Context<'_>, db: &Database) -> (Duration, Option<&'static str>) {
    let shortest = ctx
        .doc_in(db, "postgresql.cnpg.io", "ScheduledBackup")
        .into_iter()
        .filter_map(|d| docs::from_value::<ScheduledBackup>(&d.value).ok())
        .filter(|s| s.spec.cluster.name == db.cluster && s.spec.suspend != Some(true))
        .filter(|s| s.spec.method.as_deref() != Some("volumeSnapshot"))
        .filter_map(|s| backup_interval(&s.spec.schedule))
        .min();
    match shortest {
        Some(d) => (d, None),
        None => (
            Duration::days(1),
            Some(
                " (assumed: no active ScheduledBackup with a readable schedule takes base backups to the bucket)",
            ),
        ),
    }
}

/// `30d`, `36h`, `90min`, `45s`.
fn human(d: Duration) -> String {
    let s = d.num_seconds();
    if s % DAY == 0 {
        format!("{}d", s / DAY)
    } else if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}min", s / 60)
    } else {
        format!("{s}s")
    }
}

/// `gs://BUCKET/PATH` as (bucket, path without slashes at the ends).
fn gcs_path(dest: &str) -> Option<(&str, &str)> {
    let rest = dest.trim().strip_prefix("gs://")?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket, path.trim_matches('/')))
}

/// Whether a rule limited to `prefixes` reaches objects under `key_prefix`.
fn reaches(rule: &DeleteRule, key_prefix: &str) -> bool {
    rule.prefixes.is_empty()
        || rule
            .prefixes
            .iter()
            .any(|p| key_prefix.starts_with(p.as_str()) || p.starts_with(key_prefix))
}

/// The minimum safe age of a Delete rule for a database, when it can be told.
fn minimum(retention: &str, interval: Duration) -> Option<(Duration, String)> {
    match Policy::from_str(retention).ok()? {
        p @ Policy::RecoveryWindow { .. } => {
            let window = p.window()?;
            Some((
                window + interval,
                format!("a recovery window of {retention}"),
            ))
        }
        Policy::Redundancy(n) => Some((
            interval * i32::try_from(n).ok()?,
            format!("{n} base backups (REDUNDANCY {n})"),
        )),
    }
}

/// What a database's catalog asks of its bucket's lifecycle rules.
struct Need {
    bucket: String,
    /// `PATH/SERVER/`: the objects of the catalog.
    key_prefix: String,
    /// Base backup interval.
    every: Duration,
    /// Set when the interval is assumed.
    note: &'static str,
    /// The age the oldest object still needed can reach, and what keeps it.
    needed: Option<(Duration, String)>,
}

impl Need {
    fn of(ctx: &Context<'_>, db: &Database) -> Option<Need> {
        let catalog = db.catalog.as_ref()?;
        let (bucket, path) = gcs_path(&catalog.destination_path)?;
        let key_prefix = if path.is_empty() {
            format!("{}/", catalog.server_name)
        } else {
            format!("{path}/{}/", catalog.server_name)
        };
        let (every, assumed) = interval(ctx, db);
        Some(Need {
            bucket: bucket.to_owned(),
            key_prefix,
            every,
            note: assumed.unwrap_or(""),
            needed: db
                .retention_policy
                .as_deref()
                .and_then(|r| minimum(r, every)),
        })
    }

    /// The smallest whole number of days strictly longer than what is needed.
    fn safe_days(&self) -> Option<i64> {
        self.needed
            .as_ref()
            .map(|(d, _)| d.num_seconds().div_euclid(DAY) + 1)
    }
}

fn lifecycle(
    u: &DbUnit<'_, '_>,
    need: &Need,
    all: &[Option<Need>],
    buckets: &[Bucket<'_>],
    out: &mut Vec<LintFinding>,
) {
    let db = u.db;
    let Some(catalog) = &db.catalog else {
        return;
    };
    let (bucket, every, note) = (need.bucket.as_str(), need.every, need.note);
    let path = catalog.destination_path.trim().trim_end_matches('/');
    let who = format!("database {}/{} (Cluster {})", db.env, db.svc, u.ksa());
    for b in buckets.iter().filter(|b| b.name == bucket) {
        for r in b.rules.iter().filter(|r| reaches(r, &need.key_prefix)) {
            let rule_at = loc(b.doc, &r.path);
            let Some(retention) = &db.retention_policy else {
                // Where retentionPolicy belongs: the ObjectStore in the plugin
                // model, spec.backup in-tree.
                let home = u
                    .store(catalog.object_store.as_ref())
                    .map_or((u.doc, "spec.backup.retentionPolicy"), |(d, _)| {
                        (*d, "spec.retentionPolicy")
                    });
                let fits = (r.age_days * DAY - every.num_seconds() - 1).div_euclid(DAY);
                let hint = if fits >= 1 {
                    format!(
                        "add `retentionPolicy: \"{fits}d\"` (retention plus the backup interval of {} must stay under the rule's {} days)",
                        human(every),
                        r.age_days
                    )
                } else {
                    format!(
                        "add a retentionPolicy and raise age_days of the rule at {rule_at} above it plus {}",
                        human(every)
                    )
                };
                out.push(at(
                    "gcs-lifecycle-without-retention",
                    home.0,
                    home.1,
                    format!(
                        "{who} archives to {path}, whose lifecycle rule ({rule_at}) \
                         deletes objects after {} days, but sets no retentionPolicy: barman never \
                         expires backups, so the bucket deletes base backups and WAL by age \
                         behind the catalog's back and the recovery window is whatever the rule \
                         leaves",
                        r.age_days
                    ),
                    &hint,
                ));
                continue;
            };
            let Some((needed, kept)) = &need.needed else {
                continue;
            };
            if r.age_days * DAY > needed.num_seconds() {
                continue;
            }
            let safe = need.safe_days().unwrap_or_default();
            // The age that suits every catalog this rule reaches.
            let all_safe = all
                .iter()
                .flatten()
                .filter(|n| n.bucket == bucket && reaches(r, &n.key_prefix))
                .filter_map(Need::safe_days)
                .max()
                .unwrap_or(safe);
            let every_db = if all_safe > safe {
                format!(
                    "; another catalog in this bucket needs more: `age_days: {all_safe}` suits them all"
                )
            } else {
                String::new()
            };
            out.push(at(
                "gcs-lifecycle-shorter-than-retention",
                b.doc,
                &r.path,
                format!(
                    "bucket `{bucket}` deletes objects after {} days (age_days: {}), but {who} \
                     keeps {kept} and takes a base backup every {}{note}: the oldest base backup \
                     it still needs can be {} old, so the rule deletes it and its WAL while \
                     barman counts on them; the minimum safe age is {safe} days",
                    r.age_days,
                    r.age_days,
                    human(every),
                    human(*needed)
                ),
                &format!(
                    "set `age_days: {safe}` or more (retention {retention} + interval {} < age), \
                     or shorten the retentionPolicy{every_db}",
                    human(every)
                ),
            ));
        }
    }
}

// ---------------------------------------------------------------------------
// Group 4: double nesting
// ---------------------------------------------------------------------------

/// The last folder of a destinationPath, below the bucket or container.
fn last_segment(dest: &str) -> Option<&str> {
    let (scheme, rest) = dest.trim().split_once("://")?;
    let mut segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    // The bucket (or host) is not a folder; Azure adds the container, an
    // emulator's path-style URL the account and the container.
    let skip = match scheme {
        "https" | "http" => {
            if segments
                .first()
                .is_some_and(|h| h.contains(".blob.core.windows.net"))
            {
                2
            } else {
                3
            }
        }
        _ => 1,
    };
    if segments.len() <= skip {
        return None;
    }
    segments.pop()
}

fn trim_path(p: &str) -> String {
    p.trim().trim_end_matches('/').to_owned()
}

/// One stanza to check.
struct Stanza<'a> {
    doc: &'a Doc,
    path: String,
    what: String,
    dest: String,
    server: String,
    /// Names the folder may not be called (the server name, and for the
    /// Cluster's own archive the Cluster's name).
    names: Vec<String>,
    reads: bool,
}

fn double_nesting(
    u: &DbUnit<'_, '_>,
    catalogs: &BTreeSet<(String, String)>,
    out: &mut Vec<LintFinding>,
) {
    let name = &u.db.cluster;
    let mut stanzas = Vec::new();
    if let Some(s) = u.cluster.inline_store() {
        let server = s.server_name.clone().unwrap_or_else(|| name.clone());
        stanzas.push(Stanza {
            doc: u.doc,
            path: "spec.backup.barmanObjectStore.destinationPath".into(),
            what: format!("Cluster {}'s spec.backup.barmanObjectStore", u.ksa()),
            dest: s.destination_path.clone(),
            names: vec![server.clone(), name.clone()],
            server,
            reads: false,
        });
    }
    if let Some(p) = u.cluster.barman_plugin()
        && let Some((d, s)) = u.store(p.parameters.get("barmanObjectName"))
    {
        let server = p
            .parameters
            .get("serverName")
            .cloned()
            .unwrap_or_else(|| name.clone());
        stanzas.push(Stanza {
            doc: d,
            path: "spec.configuration.destinationPath".into(),
            what: format!(
                "ObjectStore {} (the archive of Cluster {})",
                s.metadata.name,
                u.ksa()
            ),
            dest: s.spec.configuration.destination_path.clone(),
            names: vec![server.clone(), name.clone()],
            server,
            reads: false,
        });
    }
    for (i, e) in u.cluster.spec.external_clusters.iter().enumerate() {
        if let Some(s) = &e.barman_object_store {
            // In-tree, the server name defaults to the externalCluster's name.
            let server = s.server_name.clone().unwrap_or_else(|| e.name.clone());
            stanzas.push(Stanza {
                doc: u.doc,
                path: format!("spec.externalClusters[{i}].barmanObjectStore.destinationPath"),
                what: format!("externalClusters entry `{}` of Cluster {}", e.name, u.ksa()),
                dest: s.destination_path.clone(),
                names: vec![server.clone()],
                server,
                reads: true,
            });
        }
        let plugin = e.plugin.as_ref().filter(|p| p.name == docs::BARMAN_PLUGIN);
        if let Some(p) = plugin
            && let Some((d, s)) = u.store(p.parameters.get("barmanObjectName"))
        {
            // The plugin defaults to the recovering Cluster's own name.
            let server = p
                .parameters
                .get("serverName")
                .cloned()
                .unwrap_or_else(|| name.clone());
            stanzas.push(Stanza {
                doc: d,
                path: "spec.configuration.destinationPath".into(),
                what: format!(
                    "ObjectStore {} (read by externalClusters entry `{}` of Cluster {})",
                    s.metadata.name,
                    e.name,
                    u.ksa()
                ),
                dest: s.spec.configuration.destination_path.clone(),
                names: vec![server.clone()],
                server,
                reads: true,
            });
        }
    }
    for s in stanzas {
        let Some(last) = last_segment(&s.dest) else {
            continue;
        };
        let Some(clash) = s.names.iter().find(|n| n.as_str() == last) else {
            continue;
        };
        // Reading a catalog that a database of this repository writes there:
        // that database's own finding is the one to fix.
        if s.reads && catalogs.contains(&(trim_path(&s.dest), s.server.clone())) {
            continue;
        }
        let dest = trim_path(&s.dest);
        let parent = dest
            .strip_suffix(last)
            .unwrap_or(&dest)
            .trim_end_matches('/');
        let role = if *clash == s.server {
            "the server name"
        } else {
            "the Cluster's name"
        };
        let (effect, fix) = if s.reads {
            (
                format!("recovery reads the catalog at {dest}/{}/", s.server),
                "if the source archives under that path, the fix belongs to the source; otherwise",
            )
        } else {
            (
                format!("the catalog lands in {dest}/{}/", s.server),
                "for a new catalog",
            )
        };
        out.push(at(
            "destination-path-double-nested",
            s.doc,
            &s.path,
            format!(
                "{}: destinationPath `{}` ends in `{last}`, {role}; barman appends the server \
                 name `{}` itself, so {effect}",
                s.what, s.dest, s.server
            ),
            &format!(
                "{fix} write `destinationPath: {parent}/` (barman adds `{}/`); an existing catalog \
                 stays where it was written, so move it deliberately and update every \
                 externalClusters entry that reads it",
                s.server
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_bindings_parse() {
        assert_eq!(
            parse_email("cnpg-backup@acme-prod.iam.gserviceaccount.com"),
            Some(("cnpg-backup", "acme-prod"))
        );
        assert_eq!(
            parse_email("123-compute@developer.gserviceaccount.com"),
            None
        );
        assert_eq!(binding_key(" foo/foo-pg "), "foo/foo-pg");
        assert_eq!(
            binding_key("serviceAccount:acme.svc.id.goog[foo/foo-pg]"),
            "foo/foo-pg"
        );
    }

    #[test]
    fn last_segments_skip_the_bucket() {
        assert_eq!(last_segment("gs://b/foo-pg/"), Some("foo-pg"));
        assert_eq!(last_segment("gs://foo-pg"), None);
        assert_eq!(last_segment("gs://foo-pg/"), None);
        assert_eq!(last_segment("s3://b/x/y"), Some("y"));
        assert_eq!(
            last_segment("https://acct.blob.core.windows.net/c/foo-pg"),
            Some("foo-pg")
        );
        assert_eq!(last_segment("https://acct.blob.core.windows.net/c"), None);
        assert_eq!(last_segment("http://127.0.0.1:10000/acct/c"), None);
        assert_eq!(last_segment("http://127.0.0.1:10000/acct/c/p"), Some("p"));
    }

    #[test]
    fn minimum_ages() {
        let day = Duration::days(1);
        assert_eq!(minimum("30d", day).unwrap().0, Duration::days(31));
        assert_eq!(minimum("4w", day).unwrap().0, Duration::days(29));
        assert_eq!(minimum("1m", day).unwrap().0, Duration::days(32));
        assert_eq!(
            minimum("REDUNDANCY 3", Duration::days(7)).unwrap().0,
            Duration::days(21)
        );
        assert!(minimum("nonsense", day).is_none());
        assert_eq!(human(Duration::hours(36)), "36h");
        assert_eq!(human(Duration::days(15)), "15d");
    }
}
