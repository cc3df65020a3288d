//! The platform around a database: groups 8, 9, 12 and 13 — Flux
//! ownership and SOPS, sizing and images, NetworkPolicies, monitoring.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::{Context, LintFinding, Rule, at, rule};
use crate::catalog::findings::Severity::{Error, Info, Warning};
use crate::gitops::config::Cni;
use crate::gitops::discover::{BackupModel, CatalogLocation, Database, flux_path};
use crate::gitops::docs::{self, Cluster};
use crate::gitops::netpol::{Allows, Need, OPERATOR_NAMESPACE, policy_kind};
use crate::gitops::repo::{Doc, Repo};

/// The rules of this module.
pub const RULES: &[Rule] = &[
    // 8. Flux ownership and SOPS.
    rule(
        "flux-shared-ownership",
        8,
        Error,
        "A database folder is applied by two Flux Kustomizations, or by a shared one (a Flux \
         Kustomization whose path is an ancestor, or a kustomization.yaml outside the folder that \
         lists it): a prune by one deletes what the other applies.",
    ),
    rule(
        "flux-missing-operators-dependency",
        8,
        Warning,
        "A database's Flux Kustomization does not depend on the operators Kustomization: on a \
         fresh cluster the Cluster CRD may not exist yet.",
    ),
    rule(
        "flux-missing-sops-decryption",
        8,
        Error,
        "A Flux Kustomization applies a folder with *.enc.yaml files but has no \
         `decryption.provider: sops`: Flux applies the encrypted text.",
    ),
    rule(
        "flux-database-not-applied",
        8,
        Warning,
        "No Flux Kustomization applies a database folder.",
    ),
    rule(
        "plaintext-secret",
        8,
        Error,
        "A Secret with data or stringData and no SOPS metadata is committed: the value stays in \
         git history for good.",
    ),
    // 9. Sizing and images.
    rule(
        "wal-volume-below-max-wal-size",
        9,
        Error,
        "The volume that holds pg_wal is smaller than max_wal_size.",
    ),
    rule(
        "wal-volume-below-twice-max-wal-size",
        9,
        Warning,
        "The volume that holds pg_wal is smaller than 2 × max_wal_size.",
    ),
    rule(
        "resize-in-use-volumes-disabled",
        9,
        Warning,
        "`storage.resizeInUseVolumes: false` (or walStorage's): growing the size does not grow \
         the PVCs.",
    ),
    rule(
        "shared-buffers-above-memory-limit",
        9,
        Error,
        "shared_buffers is at or above the container's memory limit.",
    ),
    rule(
        "postgres-memory-above-limit",
        9,
        Warning,
        "shared_buffers + max_connections × work_mem is well above the container's memory limit.",
    ),
    rule(
        "memory-limit-missing",
        9,
        Info,
        "A Cluster has no memory limit.",
    ),
    rule(
        "image-name-missing",
        9,
        Warning,
        "A Cluster has no imageName (nor imageCatalogRef): the image changes with operator \
         upgrades.",
    ),
    rule(
        "image-unpinned",
        9,
        Error,
        "imageName has no tag or `:latest`.",
    ),
    rule(
        "image-major-only",
        9,
        Warning,
        "imageName is tagged with a major version only (`:17`, `:17-standard-bookworm`).",
    ),
    rule(
        "single-instance-in-production",
        9,
        Warning,
        "A Cluster in a production env runs one instance.",
    ),
    rule(
        "retention-policy-missing",
        9,
        Warning,
        "A database with backups has no retentionPolicy (in the Cluster for in-tree backups, in \
         the ObjectStore for the plugin).",
    ),
    rule(
        "retention-policy-malformed",
        9,
        Error,
        "A retentionPolicy does not match ^[1-9][0-9]*[dwm]$.",
    ),
    // 12. NetworkPolicies.
    rule(
        "network-policy-missing-allow",
        12,
        Error,
        "A database namespace under default deny lacks an allow CloudNativePG needs (DNS, object \
         store, same-namespace 5432/8000, operator, application, metrics, API server on Cilium).",
    ),
    rule(
        "cilium-policy-without-cilium",
        12,
        Error,
        "A CiliumNetworkPolicy in an env whose CNI is not Cilium: nothing enforces it.",
    ),
    rule(
        "network-policy-without-enforcement",
        12,
        Warning,
        "A NetworkPolicy in an env whose CNI enforces no policy.",
    ),
    // 13. Monitoring.
    rule(
        "no-wal-archiving-alert",
        13,
        Warning,
        "Databases exist but no PrometheusRule alerts on WAL archiving.",
    ),
    rule(
        "alert-hardcoded-namespace",
        13,
        Warning,
        "A CloudNativePG alert selects a hard-coded namespace: new databases are not covered.",
    ),
    rule(
        "pod-monitor-without-prometheus-operator",
        13,
        Warning,
        "`enablePodMonitor: true` but the repository installs no Prometheus Operator: the \
         PodMonitor CRD is missing and the Cluster reconcile fails.",
    ),
];

/// Runs this module's rules.
pub fn check(ctx: &Context<'_>, out: &mut Vec<LintFinding>) {
    let model = Model::new(ctx);
    flux_ownership(ctx, &model, out);
    plaintext_secrets(ctx, out);
    for db in &ctx.discovery.databases {
        if let Some(doc) = main_cluster(ctx, db) {
            sizing(db, doc, out);
            images(ctx, db, doc, out);
            retention(ctx, db, doc, out);
        }
    }
    network_policies(ctx, &model, out);
    monitoring(ctx, out);
}

// ---------------------------------------------------------------------------
// The repository's Flux and kustomize layout.

const FLUX_GROUP: &str = "kustomize.toolkit.fluxcd.io";

/// A Flux Kustomization and the folder it applies.
struct FluxK<'a> {
    doc: &'a Doc,
    name: &'a str,
    path: PathBuf,
    /// Whether it may apply a database folder other than its own path: its
    /// path is written out and not the root, and it reads the same source as
    /// the databases' own Kustomizations (a Kustomization without a path, or
    /// of another source, reads another tree).
    indirect: bool,
}

impl<'a> FluxK<'a> {
    /// The names in `spec.dependsOn`.
    fn depends_on(&self) -> Vec<&'a str> {
        self.doc
            .value
            .pointer("/spec/dependsOn")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|d| str_at(d, "/name")).collect())
            .unwrap_or_default()
    }
}

/// What is applied from where.
struct Model<'a> {
    flux: Vec<FluxK<'a>>,
    /// kustomize's kustomization.yaml by folder.
    kustomize: BTreeMap<PathBuf, &'a Doc>,
}

impl<'a> Model<'a> {
    fn new(ctx: &Context<'a>) -> Self {
        let source = |doc: &'a Doc| {
            (
                str_at(&doc.value, "/spec/sourceRef/kind").unwrap_or(""),
                str_at(&doc.value, "/spec/sourceRef/name").unwrap_or(""),
            )
        };
        let mut flux: Vec<FluxK<'a>> = ctx
            .repo
            .docs_of(FLUX_GROUP, "Kustomization")
            .map(|doc| FluxK {
                doc,
                name: doc.name(),
                path: flux_path(str_at(&doc.value, "/spec/path").unwrap_or("")),
                indirect: false,
            })
            .collect();
        let folders: BTreeSet<&Path> = ctx
            .discovery
            .databases
            .iter()
            .map(|d| d.folder.as_path())
            .collect();
        let home: BTreeSet<(&str, &str)> = flux
            .iter()
            .filter(|k| folders.contains(k.path.as_path()))
            .map(|k| source(k.doc))
            .collect();
        for k in &mut flux {
            k.indirect = !k.path.as_os_str().is_empty()
                && (home.is_empty() || home.contains(&source(k.doc)));
        }
        let mut kustomize = BTreeMap::new();
        for doc in &ctx.repo.docs {
            let named = doc
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == "kustomization.yaml" || n == "kustomization.yml");
            if named && !doc.api_version().starts_with(FLUX_GROUP) {
                kustomize.entry(parent(&doc.file)).or_insert(doc);
            }
        }
        Model { flux, kustomize }
    }

    /// Whether building `dir` (a Flux path, or a folder a kustomization
    /// lists) applies `folder`.
    fn reaches(&self, dir: &Path, folder: &Path, depth: usize) -> bool {
        if dir == folder {
            return true;
        }
        if depth > 16 {
            return false;
        }
        if let Some(doc) = self.kustomize.get(dir) {
            return resources(doc).iter().any(|(_, _, r)| {
                join_rel(dir, r).is_some_and(|t| {
                    t == folder
                        || (self.kustomize.contains_key(&t) && self.reaches(&t, folder, depth + 1))
                })
            });
        }
        // A Flux path without a kustomization.yaml: Flux generates one with
        // every manifest below, taking a folder that has its own
        // kustomization.yaml as a whole (its listing then decides).
        if depth == 0 && folder.starts_with(dir) {
            let mut between: Vec<&Path> = folder
                .ancestors()
                .skip(1)
                .take_while(|a| *a != dir)
                .collect();
            between.reverse();
            if let Some(first) = between.iter().find(|a| self.kustomize.contains_key(**a)) {
                return self.reaches(first, folder, depth + 1);
            }
            return true;
        }
        false
    }

    /// The namespace a kustomization.yaml in `dir` forces.
    fn kustomize_namespace(&self, dir: &Path) -> Option<&'a str> {
        self.kustomize
            .get(dir)
            .and_then(|d| str_at(&d.value, "/namespace"))
    }

    /// The namespace a document lands in.
    fn namespace_of(&self, doc: &'a Doc) -> Option<String> {
        self.kustomize_namespace(&parent(&doc.file))
            .or_else(|| str_at(&doc.value, "/metadata/namespace"))
            .map(str::to_owned)
    }
}

/// `(index, key, entry)` of a kustomization's `resources` and `bases`.
fn resources(doc: &Doc) -> Vec<(usize, &'static str, &str)> {
    let mut out = Vec::new();
    for key in ["resources", "bases"] {
        if let Some(items) = doc.value.get(key).and_then(Value::as_array) {
            for (i, v) in items.iter().enumerate() {
                if let Some(s) = v.as_str() {
                    out.push((i, key, s));
                }
            }
        }
    }
    out
}

/// `dir/rel` without `.` and `..`; None for remote resources or paths that
/// leave the repository.
fn join_rel(dir: &Path, rel: &str) -> Option<PathBuf> {
    if rel.contains("://") || rel.starts_with("git@") || rel.starts_with("github.com/") {
        return None;
    }
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(out)
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn str_at<'v>(v: &'v Value, pointer: &str) -> Option<&'v str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// A scalar as text (strings and numbers).
fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn display(p: &Path) -> String {
    if p.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        p.display().to_string()
    }
}

/// The database's own Cluster document.
fn main_cluster<'a>(ctx: &Context<'a>, db: &Database) -> Option<&'a Doc> {
    ctx.cluster_doc(db)
}

// ---------------------------------------------------------------------------
// 8. Flux ownership and SOPS.

fn flux_ownership(ctx: &Context<'_>, m: &Model<'_>, out: &mut Vec<LintFinding>) {
    let dbs = &ctx.discovery.databases;
    // Flux Kustomization index -> databases it applies through an ancestor path.
    let mut shared: BTreeMap<usize, Vec<&Database>> = BTreeMap::new();
    // Flux Kustomization index -> databases it applies in any way.
    let mut applying: BTreeMap<usize, Vec<&Database>> = BTreeMap::new();
    let mut direct_owner: BTreeMap<PathBuf, Vec<&str>> = BTreeMap::new();
    for db in dbs {
        let direct: Vec<usize> = (0..m.flux.len())
            .filter(|&i| m.flux[i].path == db.folder)
            .collect();
        direct_owner.insert(
            db.folder.clone(),
            direct.iter().map(|&i| m.flux[i].name).collect(),
        );
        let mut indirect = 0;
        for (i, k) in m.flux.iter().enumerate() {
            if k.indirect && k.path != db.folder && m.reaches(&k.path, &db.folder, 0) {
                indirect += 1;
                if db.folder.starts_with(&k.path) {
                    shared.entry(i).or_default().push(db);
                }
                applying.entry(i).or_default().push(db);
            }
        }
        for &i in &direct {
            applying.entry(i).or_default().push(db);
        }
        if direct.len() > 1 {
            let owners: Vec<String> = direct
                .iter()
                .map(|&i| {
                    let d = m.flux[i].doc;
                    format!(
                        "{} ({}:{})",
                        m.flux[i].name,
                        d.file.display(),
                        d.line("spec.path")
                    )
                })
                .collect();
            for &i in &direct {
                out.push(at(
                    "flux-shared-ownership",
                    m.flux[i].doc,
                    "spec.path",
                    format!(
                        "{} is applied by {} Flux Kustomizations: {}; a prune by one deletes \
                         what the other applies",
                        display(&db.folder),
                        direct.len(),
                        owners.join(", ")
                    ),
                    &format!(
                        "keep one Flux Kustomization per database folder ({} in {}) and delete \
                         the others",
                        ctx.repo.env(&db.env).flux_name(&db.svc),
                        ctx.repo.env(&db.env).flux_kustomizations
                    ),
                ));
            }
        }
        if direct.len() + indirect == 0
            && let Some(doc) = main_cluster(ctx, db)
        {
            let env = ctx.repo.env(&db.env);
            out.push(at(
                "flux-database-not-applied",
                doc,
                "",
                format!(
                    "no Flux Kustomization applies {}: found none with path ./{}, expected \
                         one ({})",
                    display(&db.folder),
                    display(&db.folder),
                    env.flux_name(&db.svc)
                ),
                &format!(
                    "add to {}: a Kustomization (apiVersion: {}) named {} with spec: \
                         {{interval: 10m, path: ./{}, prune: true, sourceRef: {{kind: \
                         GitRepository, name: flux-system}}, dependsOn: [{{name: {}}}], \
                         decryption: {{provider: sops, secretRef: {{name: sops-age}}}}}}",
                    env.flux_kustomizations,
                    docs::FLUX_API,
                    env.flux_name(&db.svc),
                    display(&db.folder),
                    env.operators_kustomization
                ),
            ));
        }
    }

    for (&i, covered) in &shared {
        let k = &m.flux[i];
        let folders: Vec<String> = covered.iter().map(|d| display(&d.folder)).collect();
        let others: Vec<&str> = covered
            .iter()
            .flat_map(|d| direct_owner.get(&d.folder).into_iter().flatten().copied())
            .collect();
        let why = if others.is_empty() {
            "one Kustomization shared by databases: suspending or pruning it for one database \
             touches every other"
                .to_owned()
        } else {
            format!(
                "{} also applied by {}: a prune by one deletes what the other applies",
                if covered.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
                others.join(", ")
            )
        };
        out.push(at(
            "flux-shared-ownership",
            k.doc,
            "spec.path",
            format!(
                "Flux Kustomization {} (path ./{}) covers the database folder{} {}: {why}",
                k.name,
                display(&k.path),
                if covered.len() == 1 { "" } else { "s" },
                folders.join(", ")
            ),
            "point spec.path at a folder that holds no database folder (or give it a \
             kustomization.yaml that does not list them); each database folder is applied by its \
             own Flux Kustomization",
        ));
    }

    for (dir, doc) in &m.kustomize {
        for (i, key, r) in resources(doc) {
            let Some(target) = join_rel(dir, r) else {
                continue;
            };
            let Some(db) = dbs.iter().find(|d| d.folder == target) else {
                continue;
            };
            if *dir == db.folder {
                continue;
            }
            let owners = direct_owner.get(&db.folder).cloned().unwrap_or_default();
            out.push(at(
                "flux-shared-ownership",
                doc,
                &format!("{key}[{i}]"),
                format!(
                    "{} lists the database folder {} in {key}: whatever applies {} also applies \
                     the database{}",
                    doc.file.display(),
                    display(&db.folder),
                    display(dir),
                    if owners.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", next to {}; a prune by one deletes what the other applies",
                            owners.join(", ")
                        )
                    }
                ),
                &format!(
                    "remove `{r}` from {key}: the database folder is applied by its own Flux \
                     Kustomization ({})",
                    ctx.repo.env(&db.env).flux_name(&db.svc)
                ),
            ));
        }
    }

    // dependsOn and decryption, once per Flux Kustomization that applies a database.
    let envs: Vec<Option<String>> = m.flux.iter().map(|k| env_of(ctx, k.doc, None)).collect();
    for (&i, covered) in &applying {
        let k = &m.flux[i];
        let env = ctx.repo.env(&covered[0].env);
        let ops = env.operators_kustomization.as_str();
        if k.name != ops && !depends_on(m, &envs, i, ops) {
            let own = k.depends_on();
            let found = if own.is_empty() {
                "no dependsOn".to_owned()
            } else {
                format!("dependsOn {}", own.join(", "))
            };
            out.push(at(
                "flux-missing-operators-dependency",
                k.doc,
                "spec.dependsOn",
                format!(
                    "Flux Kustomization {} applies {} but does not depend on {ops}: found \
                     {found}, expected {ops}; on a fresh cluster the Cluster CRD may not exist yet",
                    k.name,
                    display(&covered[0].folder)
                ),
                &format!(
                    "add `dependsOn: [{{name: {ops}}}]` to its spec (or set \
                     operators_kustomization in .cnpg-ops.toml if the operators Kustomization has \
                     another name)"
                ),
            ));
        }
        let encrypted: Vec<&PathBuf> = ctx
            .repo
            .files
            .iter()
            .filter(|f| covered.iter().any(|d| f.starts_with(&d.folder)))
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".enc.yaml") || n.ends_with(".enc.yml"))
            })
            .collect();
        let provider = str_at(&k.doc.value, "/spec/decryption/provider");
        if let (Some(first), false) = (encrypted.first(), provider == Some("sops")) {
            out.push(at(
                "flux-missing-sops-decryption",
                k.doc,
                "spec.decryption.provider",
                format!(
                    "Flux Kustomization {} applies {} but has {}, expected `decryption.provider: \
                     sops`: Flux applies the encrypted text",
                    k.name,
                    first.display(),
                    provider.map_or_else(
                        || "no decryption".to_owned(),
                        |p| format!("decryption.provider {p}")
                    )
                ),
                "add `decryption: {provider: sops, secretRef: {name: sops-age}}` to its spec \
                 (secretRef names the Secret in flux-system that holds the age or GPG key)",
            ));
        }
    }
}

/// Whether Flux Kustomization `i` depends on `target`, directly or through
/// others (looked up in its own env first: envs reuse names).
fn depends_on(m: &Model<'_>, envs: &[Option<String>], i: usize, target: &str) -> bool {
    let mut seen = BTreeSet::from([i]);
    let mut todo = vec![i];
    while let Some(n) = todo.pop() {
        for d in m.flux[n].depends_on() {
            if d == target {
                return true;
            }
            let named: Vec<usize> = (0..m.flux.len()).filter(|&j| m.flux[j].name == d).collect();
            let same_env: Vec<usize> = named
                .iter()
                .copied()
                .filter(|&j| envs[j] == envs[n])
                .collect();
            let next = if same_env.is_empty() { named } else { same_env };
            for j in next {
                if seen.insert(j) {
                    todo.push(j);
                }
            }
        }
    }
    false
}

fn plaintext_secrets(ctx: &Context<'_>, out: &mut Vec<LintFinding>) {
    for doc in &ctx.repo.docs {
        if doc.kind() != "Secret" || doc.api_version() != "v1" || doc.value.get("sops").is_some() {
            continue;
        }
        let Some(key) = ["stringData", "data"].into_iter().find(|k| {
            doc.value
                .get(*k)
                .and_then(Value::as_object)
                .is_some_and(|m| !m.is_empty())
        }) else {
            continue;
        };
        let keys: Vec<&str> = doc.value[key]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        out.push(at(
            "plaintext-secret",
            doc,
            key,
            format!(
                "Secret {} holds {key} ({}) in plain text: found no sops metadata, expected a \
                 SOPS-encrypted file",
                doc.name(),
                keys.join(", ")
            ),
            "rotate the credential (the value stays in git history for good), then encrypt the \
             file with `sops --encrypt --in-place` (named *.enc.yaml, applied by a Flux \
             Kustomization with `decryption.provider: sops`)",
        ));
    }
}

// ---------------------------------------------------------------------------
// 9. Sizing and images.

const KI: f64 = 1024.0;
const MI: f64 = KI * 1024.0;
const GI: f64 = MI * 1024.0;
const TI: f64 = GI * 1024.0;

/// How far above the memory limit shared_buffers + max_connections ×
/// work_mem may go before it is called "well above" (the estimate assumes
/// every connection uses work_mem at once).
const MEMORY_SLACK: f64 = 1.25;

/// A Kubernetes quantity in bytes (`10Gi`, `500M`, `1e9`, `1073741824`).
#[must_use]
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "Ki" => KI,
        "Mi" => MI,
        "Gi" => GI,
        "Ti" => TI,
        "Pi" => TI * KI,
        "Ei" => TI * MI,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "m" => 1e-3,
        other => {
            let e: i32 = other.strip_prefix(['e', 'E'])?.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(n * mult)
}

/// A PostgreSQL memory setting in bytes: `4GB`, `256MB`, `64kB`, `1TB`,
/// `1024B`, or a plain number in the parameter's unit (`unit` bytes).
#[must_use]
pub fn parse_pg_size(s: &str, unit: f64) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix.trim() {
        "" => unit,
        "B" => 1.0,
        "kB" => KI,
        "MB" => MI,
        "GB" => GI,
        "TB" => TI,
        _ => return None,
    };
    Some(n * mult)
}

/// Bytes as the smallest whole `Gi` (or `Mi` below 1Gi) that holds them.
fn ceil_quantity(bytes: f64) -> String {
    if bytes >= GI {
        format!("{}Gi", (bytes / GI).ceil())
    } else {
        format!("{}Mi", (bytes / MI).ceil())
    }
}

/// Bytes in a readable binary unit.
fn human(bytes: f64) -> String {
    let (v, u) = if bytes >= GI {
        (bytes / GI, "GiB")
    } else if bytes >= MI {
        (bytes / MI, "MiB")
    } else {
        (bytes / KI, "KiB")
    };
    let r = (v * 10.0).round() / 10.0;
    format!("{r} {u}")
}

/// A PostgreSQL parameter: its text and bytes, or the default.
struct PgSize {
    text: String,
    bytes: f64,
    default: bool,
}

fn pg_param(spec: &Value, name: &str, unit: f64, default: &str) -> Option<PgSize> {
    match text_at(spec, &format!("/postgresql/parameters/{name}")) {
        Some(text) => parse_pg_size(&text, unit).map(|bytes| PgSize {
            text,
            bytes,
            default: false,
        }),
        None => parse_pg_size(default, unit).map(|bytes| PgSize {
            text: default.to_owned(),
            bytes,
            default: true,
        }),
    }
}

impl PgSize {
    fn shown(&self, name: &str) -> String {
        if self.default {
            format!("{name} {} (the PostgreSQL default)", self.text)
        } else {
            format!("{name} {}", self.text)
        }
    }
}

fn sizing(db: &Database, doc: &Doc, out: &mut Vec<LintFinding>) {
    let Some(spec) = doc.value.get("spec") else {
        return;
    };
    let name = &db.cluster;

    // WAL volume.
    let volume = if let Some(s) = text_at(spec, "/walStorage/size") {
        Some(("spec.walStorage.size", "walStorage.size", s))
    } else if let Some(s) = text_at(spec, "/storage/size") {
        Some(("spec.storage.size", "storage.size", s))
    } else {
        text_at(spec, "/storage/pvcTemplate/resources/requests/storage").map(|s| {
            (
                "spec.storage.pvcTemplate.resources.requests.storage",
                "storage.pvcTemplate storage request",
                s,
            )
        })
    };
    if let (Some((path, label, size)), Some(wal)) =
        (volume, pg_param(spec, "max_wal_size", MI, "1GB"))
        && let Some(bytes) = parse_quantity(&size)
    {
        let (id, bound, factor) = if bytes < wal.bytes {
            ("wal-volume-below-max-wal-size", "max_wal_size", 1.0)
        } else if bytes < 2.0 * wal.bytes {
            (
                "wal-volume-below-twice-max-wal-size",
                "2 × max_wal_size",
                2.0,
            )
        } else {
            ("", "", 0.0)
        };
        if !id.is_empty() {
            let needed = ceil_quantity(2.0 * wal.bytes);
            out.push(at(
                id,
                doc,
                path,
                format!(
                    "Cluster {name}: the volume that holds pg_wal ({label} {size}, {}) is \
                         smaller than {bound} ({}, {}): found {size}, expected at least {}",
                    human(bytes),
                    wal.shown("max_wal_size"),
                    human(factor * wal.bytes),
                    needed
                ),
                &format!(
                    "{}: WAL grows past max_wal_size while archiving lags or a replica falls \
                         behind, and a full pg_wal volume stops PostgreSQL",
                    if path == "spec.walStorage.size" {
                        format!("set walStorage.size to at least {needed} (or lower max_wal_size)")
                    } else {
                        format!(
                            "give WAL its own volume with walStorage.size of at least \
                                 {needed}, or grow {label} well past it (the data shares it), \
                                 or lower max_wal_size"
                        )
                    }
                ),
            ));
        }
    }

    for volume in ["storage", "walStorage"] {
        if spec.pointer(&format!("/{volume}/resizeInUseVolumes")) == Some(&Value::Bool(false)) {
            out.push(at(
                "resize-in-use-volumes-disabled",
                doc,
                &format!("spec.{volume}.resizeInUseVolumes"),
                format!(
                    "Cluster {name}: found {volume}.resizeInUseVolumes: false, expected true (the \
                     default): raising {volume}.size later does not grow the PVCs"
                ),
                &format!(
                    "remove `resizeInUseVolumes: false` from {volume} (the StorageClass needs \
                     allowVolumeExpansion: true), so a full volume can be grown in place"
                ),
            ));
        }
    }

    // Memory.
    let Some(limit_text) = text_at(spec, "/resources/limits/memory") else {
        out.push(at(
            "memory-limit-missing",
            doc,
            "spec.resources.limits",
            format!(
                "Cluster {name} has no resources.limits.memory: PostgreSQL's memory is bounded \
                 only by the node"
            ),
            "set resources.requests.memory and resources.limits.memory (equal values give the \
             Guaranteed QoS class), sized for shared_buffers + max_connections × work_mem",
        ));
        return;
    };
    let Some(limit) = parse_quantity(&limit_text) else {
        return;
    };
    let Some(sb) = pg_param(spec, "shared_buffers", 8.0 * KI, "128MB") else {
        return;
    };
    if sb.bytes >= limit {
        out.push(at(
            "shared-buffers-above-memory-limit",
            doc,
            "spec.postgresql.parameters.shared_buffers",
            format!(
                "Cluster {name}: {} ({}) is not below the memory limit {limit_text} ({}): \
                 PostgreSQL is OOM-killed as soon as the buffers fill",
                sb.shown("shared_buffers"),
                human(sb.bytes),
                human(limit)
            ),
            &format!(
                "lower shared_buffers to about 25% of the limit ({}) or raise \
                 resources.limits.memory",
                ceil_quantity(limit / 4.0)
                    .replace("Gi", "GB")
                    .replace("Mi", "MB")
            ),
        ));
        return;
    }
    let Some(wm) = pg_param(spec, "work_mem", KI, "4MB") else {
        return;
    };
    let conns = text_at(spec, "/postgresql/parameters/max_connections");
    let Some(max_conn) = conns.as_deref().unwrap_or("100").trim().parse::<f64>().ok() else {
        return;
    };
    let estimate = sb.bytes + max_conn * wm.bytes;
    if estimate > limit * MEMORY_SLACK {
        out.push(at(
            "postgres-memory-above-limit",
            doc,
            "spec.resources.limits.memory",
            format!(
                "Cluster {name}: shared_buffers + max_connections × work_mem = {} + {} × {} = {}, \
                 well above the memory limit {limit_text} ({})",
                sb.text,
                conns.unwrap_or_else(|| "100 (default)".to_owned()),
                wm.text,
                human(estimate),
                human(limit)
            ),
            &format!(
                "raise resources.limits.memory to at least {}, or lower work_mem or \
                 max_connections (put a pooler in front for many clients)",
                ceil_quantity(estimate)
            ),
        ));
    }
}

static MAJOR_ONLY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+(-.*)?$").expect("valid regex"));
static RETENTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[1-9][0-9]*[dwm]$").expect("valid regex"));

/// The tag of an image reference, or None; `Err(())` for a digest.
fn image_tag(image: &str) -> Result<Option<&str>, ()> {
    if image.contains('@') {
        return Err(());
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    Ok(last.rsplit_once(':').map(|(_, t)| t))
}

fn images(ctx: &Context<'_>, db: &Database, doc: &Doc, out: &mut Vec<LintFinding>) {
    let name = &db.cluster;
    let spec = doc.value.get("spec");
    let image = spec
        .and_then(|s| s.get("imageName"))
        .and_then(Value::as_str);
    match image {
        None if spec.and_then(|s| s.get("imageCatalogRef")).is_none() => out.push(at(
            "image-name-missing",
            doc,
            "spec.imageName",
            format!(
                "Cluster {name} has no imageName: the operator's default image applies, so an \
                 operator upgrade changes PostgreSQL (a rolling restart, maybe a new minor)"
            ),
            "set imageName to a pinned image such as \
             ghcr.io/cloudnative-pg/postgresql:17.6-standard-bookworm (or a digest)",
        )),
        None => {}
        Some(image) => match image_tag(image) {
            Ok(tag) if tag.is_none_or(|t| t == "latest") => out.push(at(
                "image-unpinned",
                doc,
                "spec.imageName",
                format!(
                    "Cluster {name}: imageName {image} is not pinned: found {}, expected a \
                     major.minor tag or a digest",
                    tag.map_or("no tag".to_owned(), |t| format!(":{t}"))
                ),
                "pin the image: a major.minor tag (postgresql:17.6-standard-bookworm) or a \
                 digest (@sha256:…); a floating tag can change the major version under the data",
            )),
            Ok(Some(tag)) if MAJOR_ONLY.is_match(tag) => out.push(at(
                "image-major-only",
                doc,
                "spec.imageName",
                format!(
                    "Cluster {name}: imageName {image} has a major-only tag: found :{tag}, \
                     expected a minor version (:{}.N…)",
                    tag.split('-').next().unwrap_or(tag)
                ),
                "pin the minor version (postgresql:17.6-standard-bookworm) or a digest: the \
                 major-only tag moves with every minor release, and each move restarts the \
                 instances when the pod is recreated",
            )),
            Ok(_) | Err(()) => {}
        },
    }

    if ctx.repo.env(&db.env).production && db.instances.unwrap_or(1) <= 1 {
        out.push(at(
            "single-instance-in-production",
            doc,
            "spec.instances",
            format!(
                "Cluster {name} in production env {} runs {} instance: found {}, expected at \
                 least 2",
                db.env,
                db.instances.unwrap_or(1),
                db.instances
                    .map_or_else(|| "no instances (default 1)".to_owned(), |n| n.to_string())
            ),
            "set `instances: 3` (or at least 2): with one instance a node drain or failure is an \
             outage, and there is no replica to fail over to",
        ));
    }
}

fn retention(ctx: &Context<'_>, db: &Database, doc: &Doc, out: &mut Vec<LintFinding>) {
    let inline = matches!(db.backup_model, BackupModel::Inline | BackupModel::Both);
    let plugin = matches!(db.backup_model, BackupModel::Plugin | BackupModel::Both);
    let mut places: Vec<(&Doc, &str, String)> = Vec::new();
    if inline {
        places.push((doc, "spec.backup", format!("Cluster {}", db.cluster)));
    }
    if plugin {
        let store_name = docs::from_value::<Cluster>(&doc.value).ok().and_then(|c| {
            c.barman_plugin()
                .and_then(|p| p.parameters.get("barmanObjectName").cloned())
        });
        // As discovery finds it: the folder's own, else one declared in the
        // Cluster's namespace elsewhere.
        if let Some(store) = store_name.and_then(|n| {
            ctx.doc_in(db, "barmancloud.cnpg.io", "ObjectStore")
                .into_iter()
                .find(|d| d.name() == n)
                .or_else(|| {
                    ctx.repo
                        .docs_of("barmancloud.cnpg.io", "ObjectStore")
                        .find(|d| {
                            d.name() == n
                                && str_at(&d.value, "/metadata/namespace")
                                    == Some(db.namespace.as_str())
                        })
                })
        }) {
            places.push((store, "spec", format!("ObjectStore {}", store.name())));
        }
    }
    for (d, base, what) in places {
        let path = format!("{base}.retentionPolicy");
        let pointer = format!("/{}", path.replace('.', "/"));
        match d.value.pointer(&pointer) {
            None | Some(Value::Null) => out.push(at(
                "retention-policy-missing",
                d,
                &path,
                format!(
                    "{what} (the backups of {}) has no retentionPolicy: found none, expected \
                     e.g. 30d",
                    db.cluster
                ),
                &format!(
                    "add `retentionPolicy: 30d` under {base}: without it barman-cloud keeps every \
                     backup forever (or a bucket lifecycle rule deletes them without regard for \
                     the WAL they need)"
                ),
            )),
            Some(v) => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                if !v.is_string() || !RETENTION.is_match(&text) {
                    out.push(at(
                        "retention-policy-malformed",
                        d,
                        &path,
                        format!(
                            "{what}: retentionPolicy {text:?} is malformed: found {text:?}, \
                             expected ^[1-9][0-9]*[dwm]$"
                        ),
                        "write a number of days, weeks or months: `30d`, `4w`, `3m` (the API \
                         server rejects anything else)",
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 12. NetworkPolicies.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Ingress,
    Egress,
}

impl Dir {
    fn key(self) -> &'static str {
        match self {
            Dir::Ingress => "ingress",
            Dir::Egress => "egress",
        }
    }
    fn title(self) -> &'static str {
        match self {
            Dir::Ingress => "Ingress",
            Dir::Egress => "Egress",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Tcp,
    Udp,
    Any,
    Other,
}

#[derive(Debug, Clone)]
struct PortRange {
    from: u32,
    to: u32,
    proto: Proto,
}

#[derive(Debug, Clone)]
enum Peer {
    /// Anything.
    Any,
    /// Pods in these namespaces (None: any namespace).
    Pods {
        namespaces: Option<Vec<String>>,
        /// Selected by CloudNativePG labels only (the instances themselves).
        cnpg_only: bool,
    },
    Cidr(String),
    Entity(String),
    /// Outside the cluster by name (toFQDNs, toGroups).
    External,
    Other,
}

#[derive(Debug, Clone)]
struct Allow {
    dir: Dir,
    peers: Vec<Peer>,
    /// None: every port.
    ports: Option<Vec<PortRange>>,
}

/// One policy (or one `specs[]` entry of a Cilium policy).
struct Policy<'a> {
    doc: &'a Doc,
    /// The env whose cluster it is applied to (None: unknown, any).
    env: Option<String>,
    cilium: bool,
    /// Namespaces it applies in (None: every namespace).
    namespaces: Option<Vec<String>>,
    /// Pod labels it selects (empty: every pod).
    labels: BTreeMap<String, String>,
    selects_all: bool,
    /// Directions denied by default, with the path to point at.
    deny: Vec<(Dir, String)>,
    allows: Vec<Allow>,
}

impl Policy<'_> {
    fn applies(&self, env: &str, ns: &str, clusters: &[&str]) -> bool {
        self.env.as_deref().is_none_or(|e| e == env)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|v| v.iter().any(|n| n == ns))
            && self
                .labels
                .iter()
                .all(|(k, v)| selects_instances(k, v, clusters))
    }
}

/// Whether a `key: value` pod selector matches the instances of one of `clusters`.
fn selects_instances(key: &str, value: &str, clusters: &[&str]) -> bool {
    match key {
        "cnpg.io/cluster" | "app.kubernetes.io/instance" => clusters.contains(&value),
        "cnpg.io/podRole" => value == "instance",
        "app.kubernetes.io/name" => value == "postgresql",
        "app.kubernetes.io/managed-by" => value == "cloudnative-pg",
        "app.kubernetes.io/component" => value == "database",
        "cnpg.io/instanceRole" | "role" | "cnpg.io/instanceName" => true,
        _ => false,
    }
}

/// Strips Cilium's label source prefix.
fn label_key(k: &str) -> &str {
    k.strip_prefix("k8s:")
        .or_else(|| k.strip_prefix("any:"))
        .unwrap_or(k)
}

fn is_namespace_key(k: &str) -> bool {
    let k = label_key(k);
    k == "io.kubernetes.pod.namespace"
        || k == "kubernetes.io/metadata.name"
        || k.ends_with("namespace.labels.kubernetes.io/metadata.name")
}

/// matchLabels as strings.
fn match_labels(selector: Option<&Value>) -> BTreeMap<String, String> {
    selector
        .and_then(|s| s.get("matchLabels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn has_expressions(selector: Option<&Value>) -> bool {
    selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

/// Namespace names a selector names by `In` expressions on a namespace key.
fn expression_namespaces(selector: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for e in selector
        .and_then(|s| s.get("matchExpressions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_at(e, "/key").unwrap_or("");
        if is_namespace_key(key) && str_at(e, "/operator") == Some("In") {
            out.extend(
                e.get("values")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
    }
    out
}

fn cnpg_only(labels: &BTreeMap<String, String>) -> bool {
    !labels.is_empty() && labels.keys().all(|k| label_key(k).starts_with("cnpg.io/"))
}

/// Reads the repository's policies.
struct Policies<'a> {
    m: &'a Model<'a>,
    /// Namespace name -> its labels (from Namespace documents).
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl<'a> Policies<'a> {
    /// The namespaces a Kubernetes namespaceSelector picks (None: unknown or any).
    fn namespaces_of(&self, selector: Option<&Value>) -> Option<Vec<String>> {
        let labels = match_labels(selector);
        let mut named: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() == "kubernetes.io/metadata.name" || k.as_str() == "name")
            .map(|(_, v)| v.clone())
            .collect();
        named.extend(expression_namespaces(selector));
        if !named.is_empty() {
            return Some(named);
        }
        if labels.is_empty() {
            return None;
        }
        let by_labels: Vec<String> = self
            .namespace_labels
            .iter()
            .filter(|(_, have)| labels.iter().all(|(k, v)| have.get(k) == Some(v)))
            .map(|(n, _)| n.clone())
            .collect();
        (!by_labels.is_empty()).then_some(by_labels)
    }

    fn read(&self, doc: &'a Doc) -> Vec<Policy<'a>> {
        let ns = self.m.namespace_of(doc);
        if doc.is("networking.k8s.io", "NetworkPolicy") {
            return ns
                .map(|ns| vec![self.kubernetes(doc, &ns)])
                .unwrap_or_default();
        }
        let clusterwide = doc.is("cilium.io", "CiliumClusterwideNetworkPolicy");
        if !clusterwide && !doc.is("cilium.io", "CiliumNetworkPolicy") {
            return Vec::new();
        }
        if !clusterwide && ns.is_none() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if let Some(spec) = doc.value.get("spec") {
            out.extend(Self::cilium(doc, spec, "spec", ns.as_deref(), clusterwide));
        }
        for (i, spec) in doc
            .value
            .get("specs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            out.extend(Self::cilium(
                doc,
                spec,
                &format!("specs[{i}]"),
                ns.as_deref(),
                clusterwide,
            ));
        }
        out
    }

    fn kubernetes(&self, doc: &'a Doc, ns: &str) -> Policy<'a> {
        let spec = doc.value.get("spec").unwrap_or(&Value::Null);
        let selector = spec.get("podSelector");
        let labels = match_labels(selector);
        let selects_all = labels.is_empty() && !has_expressions(selector);
        // Without policyTypes: Ingress, and Egress when egress rules are given.
        let types: Vec<String> = spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .map_or_else(
                || {
                    let mut t = vec!["Ingress".to_owned()];
                    if spec.get("egress").is_some() {
                        t.push("Egress".to_owned());
                    }
                    t
                },
                |t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                },
            );
        let mut deny = Vec::new();
        let mut allows = Vec::new();
        for dir in [Dir::Ingress, Dir::Egress] {
            if !types.iter().any(|t| t == dir.title()) {
                continue;
            }
            let rules: &[Value] = spec
                .get(dir.key())
                .and_then(Value::as_array)
                .map_or(&[], Vec::as_slice);
            if rules.is_empty() {
                deny.push((dir, "spec.policyTypes".to_owned()));
            }
            for r in rules {
                allows.push(self.kubernetes_rule(r, dir, ns));
            }
        }
        Policy {
            doc,
            env: None,
            cilium: false,
            namespaces: Some(vec![ns.to_owned()]),
            labels,
            selects_all,
            deny,
            allows,
        }
    }

    fn kubernetes_rule(&self, rule: &Value, dir: Dir, ns: &str) -> Allow {
        let key = if dir == Dir::Ingress { "from" } else { "to" };
        let peers: Vec<Peer> = match rule.get(key).and_then(Value::as_array) {
            Some(p) if !p.is_empty() => p
                .iter()
                .map(|p| {
                    if let Some(cidr) = str_at(p, "/ipBlock/cidr") {
                        return Peer::Cidr(cidr.to_owned());
                    }
                    let pods = match_labels(p.get("podSelector"));
                    let only = cnpg_only(&pods);
                    match p.get("namespaceSelector") {
                        Some(sel) => Peer::Pods {
                            namespaces: self.namespaces_of(Some(sel)),
                            cnpg_only: only,
                        },
                        None => Peer::Pods {
                            namespaces: Some(vec![ns.to_owned()]),
                            cnpg_only: only,
                        },
                    }
                })
                .collect(),
            _ => vec![Peer::Any],
        };
        let ports = match rule.get("ports").and_then(Value::as_array) {
            Some(p) if !p.is_empty() => Some(
                p.iter()
                    .filter_map(|p| {
                        let proto = match str_at(p, "/protocol").unwrap_or("TCP") {
                            "TCP" => Proto::Tcp,
                            "UDP" => Proto::Udp,
                            _ => Proto::Other,
                        };
                        port_range(p.get("port"), p.get("endPort"), proto)
                    })
                    .collect(),
            ),
            _ => None,
        };
        Allow { dir, peers, ports }
    }

    fn cilium(
        doc: &'a Doc,
        spec: &Value,
        base: &str,
        ns: Option<&str>,
        clusterwide: bool,
    ) -> Option<Policy<'a>> {
        if spec.get("nodeSelector").is_some() {
            return None;
        }
        let selector = spec.get("endpointSelector");
        let mut labels = match_labels(selector);
        let mut namespaces = if clusterwide {
            None
        } else {
            ns.map(|n| vec![n.to_owned()])
        };
        if clusterwide {
            let named: Vec<String> = labels
                .iter()
                .filter(|(k, _)| is_namespace_key(k))
                .map(|(_, v)| v.clone())
                .chain(expression_namespaces(selector))
                .collect();
            if !named.is_empty() {
                namespaces = Some(named);
            }
        }
        labels.retain(|k, _| !is_namespace_key(k));
        let labels: BTreeMap<String, String> = labels
            .into_iter()
            .map(|(k, v)| (label_key(&k).to_owned(), v))
            .collect();
        let selects_all = labels.is_empty()
            && !selector
                .and_then(|s| s.get("matchExpressions"))
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|e| !is_namespace_key(str_at(e, "/key").unwrap_or("")))
                });
        let mut deny = Vec::new();
        let mut allows = Vec::new();
        for dir in [Dir::Ingress, Dir::Egress] {
            let Some(rules) = spec.get(dir.key()).and_then(Value::as_array) else {
                continue;
            };
            let read: Vec<Allow> = rules
                .iter()
                .filter_map(|r| r.as_object())
                .filter_map(|r| cilium_rule(r, dir, ns, clusterwide))
                .collect();
            if read.is_empty() {
                deny.push((dir, format!("{base}.{}", dir.key())));
            }
            allows.extend(read);
        }
        Some(Policy {
            doc,
            env: None,
            cilium: true,
            namespaces,
            labels,
            selects_all,
            deny,
            allows,
        })
    }
}

/// One Cilium rule; None for an empty rule (`{}`), which allows nothing.
fn cilium_rule(
    rule: &Map<String, Value>,
    dir: Dir,
    ns: Option<&str>,
    clusterwide: bool,
) -> Option<Allow> {
    let pre = if dir == Dir::Ingress { "from" } else { "to" };
    let list = |k: &str| -> Vec<&Value> {
        rule.get(&format!("{pre}{k}"))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let mut peers = Vec::new();
    for sel in list("Endpoints") {
        let labels = match_labels(Some(sel));
        let mut named: Vec<String> = labels
            .iter()
            .filter(|(k, _)| is_namespace_key(k))
            .map(|(_, v)| v.clone())
            .collect();
        named.extend(expression_namespaces(Some(sel)));
        let namespaces = if !named.is_empty() {
            Some(named)
        } else if clusterwide {
            None
        } else {
            ns.map(|n| vec![n.to_owned()])
        };
        let rest: BTreeMap<String, String> = labels
            .into_iter()
            .filter(|(k, _)| !is_namespace_key(k))
            .collect();
        peers.push(Peer::Pods {
            namespaces,
            cnpg_only: cnpg_only(&rest),
        });
    }
    for e in list("Entities") {
        match e.as_str() {
            Some("all") => peers.push(Peer::Any),
            Some(e) => peers.push(Peer::Entity(e.to_owned())),
            None => {}
        }
    }
    for c in list("CIDR") {
        if let Some(c) = c.as_str() {
            peers.push(Peer::Cidr(c.to_owned()));
        }
    }
    for c in list("CIDRSet") {
        if let Some(c) = str_at(c, "/cidr") {
            peers.push(Peer::Cidr(c.to_owned()));
        }
    }
    if !list("FQDNs").is_empty() || !list("Groups").is_empty() {
        peers.push(Peer::External);
    }
    for s in list("Services") {
        if str_at(s, "/k8sService/serviceName") == Some("kube-dns") {
            peers.push(Peer::Pods {
                namespaces: Some(vec!["kube-system".to_owned()]),
                cnpg_only: false,
            });
        } else {
            peers.push(Peer::Other);
        }
    }
    if !list("Nodes").is_empty() {
        peers.push(Peer::Other);
    }
    let to_ports = rule.get("toPorts").and_then(Value::as_array);
    if peers.is_empty() {
        to_ports?;
        // Ports only: every peer on those ports.
        peers.push(Peer::Any);
    }
    let mut ports: Option<Vec<PortRange>> = None;
    if let Some(tp) = to_ports.filter(|t| !t.is_empty()) {
        let mut all = false;
        let mut list = Vec::new();
        for entry in tp {
            match entry.get("ports").and_then(Value::as_array) {
                Some(ps) if !ps.is_empty() => {
                    for p in ps {
                        let proto = match str_at(p, "/protocol").unwrap_or("ANY") {
                            "TCP" => Proto::Tcp,
                            "UDP" => Proto::Udp,
                            "ANY" => Proto::Any,
                            _ => Proto::Other,
                        };
                        if let Some(r) = port_range(p.get("port"), p.get("endPort"), proto) {
                            list.push(r);
                        }
                    }
                }
                _ => all = true,
            }
        }
        if !all {
            ports = Some(list);
        }
    }
    Some(Allow { dir, peers, ports })
}

/// A port entry; a named port is resolved to CloudNativePG's (and CoreDNS's) numbers.
fn port_range(port: Option<&Value>, end: Option<&Value>, proto: Proto) -> Option<PortRange> {
    let from = match port {
        None | Some(Value::Null) => {
            return Some(PortRange {
                from: 0,
                to: u32::from(u16::MAX),
                proto,
            });
        }
        Some(Value::Number(n)) => u32::try_from(n.as_u64()?).ok()?,
        Some(Value::String(s)) => match s.as_str() {
            "postgresql" => 5432,
            "metrics" => 9187,
            "status" => 8000,
            "dns" | "dns-tcp" => 53,
            other => other.parse().ok()?,
        },
        _ => return None,
    };
    if from == 0 {
        return Some(PortRange {
            from: 0,
            to: u32::from(u16::MAX),
            proto,
        });
    }
    let to = end
        .and_then(Value::as_u64)
        .and_then(|e| u32::try_from(e).ok())
        .unwrap_or(from);
    Some(PortRange { from, to, proto })
}

fn port_ok(ports: Option<&Vec<PortRange>>, port: u32, proto: Proto) -> bool {
    ports.is_none_or(|v| {
        v.iter()
            .any(|p| p.from <= port && port <= p.to && (p.proto == Proto::Any || p.proto == proto))
    })
}

/// Whether `outer` (a CIDR) contains all of `inner`.
fn cidr_covers(outer: &str, inner: &str) -> bool {
    fn parse(c: &str) -> Option<(IpAddr, u32)> {
        let (a, p) = c.split_once('/').unwrap_or((c, ""));
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.trim().parse().ok()?
        };
        (prefix <= max).then_some((addr, prefix))
    }
    let (Some((o, op)), Some((i, ip))) = (parse(outer), parse(inner)) else {
        return false;
    };
    if op > ip {
        return false;
    }
    match (o, i) {
        (IpAddr::V4(o), IpAddr::V4(i)) => {
            let mask = if op == 0 { 0 } else { u32::MAX << (32 - op) };
            u32::from(o) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(o), IpAddr::V6(i)) => {
            let mask = if op == 0 { 0 } else { u128::MAX << (128 - op) };
            u128::from(o) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// How the lint reads an allow CloudNativePG needs.
impl Need {
    fn dir(self) -> Dir {
        if self.is_egress() {
            Dir::Egress
        } else {
            Dir::Ingress
        }
    }

    /// Ports that must each be allowed (ApiServer: any one of them).
    fn ports(self) -> Vec<(u32, Proto)> {
        match self {
            Need::Dns => vec![(53, Proto::Udp)],
            Need::ObjectStore { port, .. } => vec![(port, Proto::Tcp)],
            Need::SameNamespaceEgress | Need::SameNamespaceIngress => {
                vec![(5432, Proto::Tcp), (8000, Proto::Tcp)]
            }
            Need::ApiServer => vec![(443, Proto::Tcp), (6443, Proto::Tcp)],
            Need::Operator => vec![(8000, Proto::Tcp)],
            Need::Application => vec![(5432, Proto::Tcp)],
            Need::Metrics => vec![(9187, Proto::Tcp)],
        }
    }

    fn describe(self, ns: &str) -> String {
        match self {
            Need::Dns => "DNS: egress to kube-dns on port 53 (UDP and TCP)".to_owned(),
            Need::ObjectStore { port, .. } => format!(
                "object store: egress on port {port} to the backup endpoint (barman-cloud \
                 archives WAL and takes base backups)"
            ),
            Need::SameNamespaceEgress => format!(
                "same-namespace egress: instances in {ns} reach each other on 5432 (replication) \
                 and 8000 (instance manager)"
            ),
            Need::ApiServer => "API server: egress to the Kubernetes API (the instance manager \
                                talks to it; Cilium needs toEntities kube-apiserver or the \
                                service CIDR)"
                .to_owned(),
            Need::Operator => format!(
                "operator: ingress from {OPERATOR_NAMESPACE} to port 8000 (the instance manager's \
                 status endpoint)"
            ),
            Need::SameNamespaceIngress => format!(
                "same-namespace ingress: instances in {ns} accept each other on 5432 \
                 (replication) and 8000 (instance manager)"
            ),
            Need::Application => "application: ingress to port 5432 from the clients' \
                                  namespace"
                .to_owned(),
            Need::Metrics => "metrics: ingress to port 9187 from Prometheus".to_owned(),
        }
    }

    fn peer_ok(self, peer: &Peer, ns: &str, service_cidr: Option<&str>) -> bool {
        let in_ns = |target: &str| match peer {
            Peer::Any => true,
            Peer::Pods { namespaces, .. } => namespaces
                .as_ref()
                .is_none_or(|v| v.iter().any(|n| n == target)),
            Peer::Entity(e) => e == "cluster",
            _ => false,
        };
        match self {
            Need::Dns => {
                in_ns("kube-system")
                    || matches!(peer, Peer::Cidr(_) | Peer::Other)
                    || matches!(peer, Peer::Entity(e) if e == "host")
            }
            Need::ObjectStore { in_cluster, .. } => match peer {
                Peer::Any | Peer::External | Peer::Other => true,
                // The service CIDR holds no store outside the cluster.
                Peer::Cidr(c) => in_cluster || service_cidr.is_none_or(|s| !cidr_covers(s, c)),
                Peer::Entity(e) => e == "world" || (in_cluster && e == "cluster"),
                Peer::Pods { .. } => in_cluster,
            },
            Need::SameNamespaceEgress | Need::SameNamespaceIngress => in_ns(ns),
            Need::ApiServer => match peer {
                Peer::Any => true,
                Peer::Entity(e) => e == "kube-apiserver" || e == "cluster",
                Peer::Cidr(c) => service_cidr.is_none_or(|s| cidr_covers(c, s)),
                _ => false,
            },
            Need::Operator => in_ns(OPERATOR_NAMESPACE),
            Need::Application => match peer {
                Peer::Pods {
                    namespaces: Some(v),
                    cnpg_only: true,
                } => !v.iter().all(|n| n == ns),
                Peer::Entity(e) => e != "kube-apiserver" && e != "health",
                _ => true,
            },
            Need::Metrics => true,
        }
    }

    /// A policy that adds the allow: the rule `new` renders, as a flow-style snippet.
    fn snippet(self, ns: &str, cilium: bool, service_cidr: Option<&str>) -> String {
        let allows = Allows {
            instances: serde_json::json!({"cnpg.io/podRole": "instance"}),
            service_cidr,
            app_namespace: Some("<app namespace>"),
        };
        let spec = crate::yaml::emit::flow(&allows.spec_for(self, cilium));
        let (api, kind) = policy_kind(cilium);
        let note = match self {
            Need::ObjectStore {
                in_cluster: false, ..
            } if !cilium => " (narrow it with an ipBlock if the endpoint's addresses are known)",
            _ => "",
        };
        format!("add a {kind} ({api}) to {ns} with spec: {spec}{note}")
    }
}

/// The object store port a catalog is reached on, and whether it is in the cluster.
fn store_port(c: &CatalogLocation) -> (u32, bool) {
    endpoint_port(c.endpoint_url.as_deref(), &c.destination_path)
}

/// The port an object store is reached on (from its endpoint URL, else its
/// destination path), and whether it is a service inside the cluster.
#[must_use]
pub fn endpoint_port(endpoint_url: Option<&str>, destination_path: &str) -> (u32, bool) {
    let url = endpoint_url.or_else(|| {
        let d = destination_path;
        (d.starts_with("https://") || d.starts_with("http://")).then_some(d)
    });
    let Some(url) = url else {
        return (443, false);
    };
    let (default, rest) = if let Some(r) = url.strip_prefix("https://") {
        (443, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (80, r)
    } else {
        (443, url)
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
            (h, p.parse().unwrap_or(default))
        }
        _ => (authority, default),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let labels: Vec<&str> = host.split('.').collect();
    let in_cluster =
        labels.len() == 1 || labels.contains(&"svc") || labels.ends_with(&["cluster", "local"]);
    (port, in_cluster)
}

/// The CNI an env sets explicitly (None when nothing says).
fn explicit_cni(ctx: &Context<'_>, env: Option<&str>) -> Option<Cni> {
    env.and_then(|e| ctx.repo.config.env.get(e).and_then(|s| s.cni))
        .or(ctx.repo.config.defaults.cni)
}

/// The env a document belongs to: its database folder's, its namespace's
/// database's, or an env name among its path's folders.
fn env_of(ctx: &Context<'_>, doc: &Doc, ns: Option<&str>) -> Option<String> {
    let dbs = &ctx.discovery.databases;
    if let Some(db) = dbs.iter().find(|d| doc.file.starts_with(&d.folder)) {
        return Some(db.env.clone());
    }
    if let Some(db) = ns.and_then(|ns| dbs.iter().find(|d| d.namespace == ns)) {
        return Some(db.env.clone());
    }
    let known: BTreeSet<&str> = ctx
        .repo
        .config
        .env
        .keys()
        .map(String::as_str)
        .chain(dbs.iter().map(|d| d.env.as_str()))
        .collect();
    doc.file
        .components()
        .filter_map(|c| c.as_os_str().to_str())
        .find(|c| known.contains(c))
        .map(str::to_owned)
}

fn network_policies(ctx: &Context<'_>, m: &Model<'_>, out: &mut Vec<LintFinding>) {
    let namespace_labels = ctx
        .repo
        .docs
        .iter()
        .filter(|d| d.kind() == "Namespace" && d.api_version() == "v1")
        .map(|d| {
            let labels = d
                .value
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            (d.name().to_owned(), labels)
        })
        .collect();
    let reader = Policies {
        m,
        namespace_labels,
    };
    let mut policies = Vec::new();
    for doc in &ctx.repo.docs {
        let kubernetes = doc.is("networking.k8s.io", "NetworkPolicy");
        let cilium = doc.is("cilium.io", "CiliumNetworkPolicy")
            || doc.is("cilium.io", "CiliumClusterwideNetworkPolicy");
        if !kubernetes && !cilium {
            continue;
        }
        let ns = m.namespace_of(doc);
        let env = env_of(ctx, doc, ns.as_deref());
        let env_name = env.as_deref().unwrap_or("(defaults)");
        match (explicit_cni(ctx, env.as_deref()), cilium) {
            (Some(cni @ (Cni::Vanilla | Cni::None)), true) => out.push(at(
                "cilium-policy-without-cilium",
                doc,
                "kind",
                format!(
                    "{} {} in env {env_name}, whose CNI is {}: found a Cilium policy, expected \
                     cni = \"cilium\"; nothing enforces it",
                    doc.kind(),
                    doc.name(),
                    if cni == Cni::Vanilla {
                        "vanilla"
                    } else {
                        "none"
                    }
                ),
                &format!(
                    "translate it to a networking.k8s.io/v1 NetworkPolicy, or, if env \
                     {env_name} runs Cilium, set cni = \"cilium\" for it in .cnpg-ops.toml"
                ),
            )),
            (Some(Cni::None), false) => out.push(at(
                "network-policy-without-enforcement",
                doc,
                "kind",
                format!(
                    "NetworkPolicy {} in env {env_name}, whose CNI is none: found a policy, \
                     expected a CNI that enforces it",
                    doc.name()
                ),
                &format!(
                    "run a CNI that enforces NetworkPolicy and set cni (\"vanilla\" or \
                     \"cilium\") for env {env_name} in .cnpg-ops.toml, or drop the policy: as \
                     it stands it protects nothing"
                ),
            )),
            _ => {}
        }
        policies.extend(reader.read(doc).into_iter().map(|p| Policy {
            env: env.clone(),
            ..p
        }));
    }
    if policies.is_empty() {
        return;
    }

    let mut by_ns: BTreeMap<(&str, &str), Vec<&Database>> = BTreeMap::new();
    for db in &ctx.discovery.databases {
        by_ns
            .entry((db.env.as_str(), db.namespace.as_str()))
            .or_default()
            .push(db);
    }
    for ((env_name, ns), dbs) in by_ns {
        let clusters: Vec<&str> = dbs.iter().map(|d| d.cluster.as_str()).collect();
        let applicable: Vec<&Policy<'_>> = policies
            .iter()
            .filter(|p| p.applies(env_name, ns, &clusters))
            .collect();
        let env = ctx.repo.env(env_name);
        let cilium = env.cni == Cni::Cilium;
        let service_cidr = env.service_cidr.as_deref();
        let allows: Vec<&Allow> = applicable.iter().flat_map(|p| &p.allows).collect();
        let mut stores: BTreeSet<(u32, bool)> = BTreeSet::new();
        for db in &dbs {
            let recovery = db.recovery.as_ref().and_then(|r| r.catalog.as_ref());
            for c in db.catalog.iter().chain(recovery) {
                stores.insert(store_port(c));
            }
        }
        let mut needs = vec![Need::Dns];
        needs.extend(
            stores
                .iter()
                .map(|&(port, in_cluster)| Need::ObjectStore { port, in_cluster }),
        );
        needs.push(Need::SameNamespaceEgress);
        if cilium {
            needs.push(Need::ApiServer);
        }
        needs.extend([
            Need::SameNamespaceIngress,
            Need::Operator,
            Need::Application,
            Need::Metrics,
        ]);
        for dir in [Dir::Ingress, Dir::Egress] {
            let Some((deny, path)) = applicable.iter().filter(|p| p.selects_all).find_map(|p| {
                p.deny
                    .iter()
                    .find(|(d, _)| *d == dir)
                    .map(|(_, path)| (p, path))
            }) else {
                continue;
            };
            for &need in needs.iter().filter(|n| n.dir() == dir) {
                let ok_port = |port: u32, proto: Proto| {
                    allows.iter().any(|a| {
                        a.dir == dir
                            && port_ok(a.ports.as_ref(), port, proto)
                            && a.peers.iter().any(|p| need.peer_ok(p, ns, service_cidr))
                    })
                };
                let ports = need.ports();
                let missing: Vec<String> = if need == Need::ApiServer {
                    if ports.iter().any(|&(p, pr)| ok_port(p, pr)) {
                        Vec::new()
                    } else {
                        vec!["443/6443".to_owned()]
                    }
                } else {
                    ports
                        .iter()
                        .filter(|&&(p, pr)| !ok_port(p, pr))
                        .map(|&(p, pr)| {
                            format!("{p}/{}", if pr == Proto::Udp { "UDP" } else { "TCP" })
                        })
                        .collect()
                };
                if missing.is_empty() {
                    continue;
                }
                out.push(at(
                    "network-policy-missing-allow",
                    deny.doc,
                    path,
                    format!(
                        "namespace {ns} is under default-deny {} ({} {}) but nothing allows {}: \
                         found no allow for {}, expected one",
                        dir.key(),
                        deny.doc.kind(),
                        deny.doc.name(),
                        need.describe(ns),
                        missing.join(", ")
                    ),
                    // The deny policy's kind; the API server through Cilium's entity.
                    &need.snippet(
                        ns,
                        deny.cilium || (cilium && need == Need::ApiServer),
                        service_cidr,
                    ),
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 13. Monitoring.

static ARCHIVING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"cnpg_pg_stat_archiver_|cnpg_collector_pg_wal_archive_status").expect("valid regex")
});
static NAMESPACE_MATCHER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[^A-Za-z0-9_])namespace\s*(=~|=)\s*(?:"([^"]*)"|'([^']*)'|`([^`]*)`)"#)
        .expect("valid regex")
});

/// Rule documents: PrometheusRule (and VictoriaMetrics' VMRule, same shape).
fn rule_docs<'a>(ctx: &Context<'a>) -> Vec<&'a Doc> {
    ctx.repo
        .docs
        .iter()
        .filter(|d| {
            d.is("monitoring.coreos.com", "PrometheusRule")
                || d.is("operator.victoriametrics.com", "VMRule")
        })
        .collect()
}

/// `(path, expr, is_alert)` of every rule in a rule document.
fn expressions(doc: &Doc) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let groups = doc.value.pointer("/spec/groups").and_then(Value::as_array);
    for (g, group) in groups.into_iter().flatten().enumerate() {
        let rules = group.get("rules").and_then(Value::as_array);
        for (r, rule) in rules.into_iter().flatten().enumerate() {
            if let Some(expr) = text_at(rule, "/expr") {
                out.push((
                    format!("spec.groups[{g}].rules[{r}].expr"),
                    expr,
                    rule.get("alert").is_some(),
                ));
            }
        }
    }
    out
}

/// Whether the repository installs the Prometheus Operator (or its CRDs).
#[must_use]
pub fn has_prometheus_operator(repo: &Repo) -> bool {
    repo.docs.iter().any(|d| {
        if d.api_version().starts_with("monitoring.coreos.com/") {
            return true;
        }
        let kinds = [
            "HelmRelease",
            "HelmChart",
            "HelmRepository",
            "OCIRepository",
            "GitRepository",
            "Kustomization",
            "CustomResourceDefinition",
        ];
        if !kinds.contains(&d.kind()) {
            return false;
        }
        let text = d.value.to_string();
        text.contains("kube-prometheus-stack")
            || text.contains("prometheus-operator")
            || (d.kind() == "CustomResourceDefinition"
                && str_at(&d.value, "/spec/group") == Some("monitoring.coreos.com"))
    })
}

fn monitoring(ctx: &Context<'_>, out: &mut Vec<LintFinding>) {
    let dbs = &ctx.discovery.databases;
    let rules = rule_docs(ctx);
    let archiving = rules
        .iter()
        .any(|d| expressions(d).iter().any(|(_, e, _)| ARCHIVING.is_match(e)));
    if !dbs.is_empty() && !archiving {
        let names: Vec<String> = dbs.iter().map(|d| format!("{}/{}", d.env, d.svc)).collect();
        let message = format!(
            "{} database{} ({}) but no PrometheusRule alerts on WAL archiving: found no rule \
             reading cnpg_pg_stat_archiver_* or cnpg_collector_pg_wal_archive_status",
            dbs.len(),
            if dbs.len() == 1 { "" } else { "s" },
            names.join(", ")
        );
        let hint = "add a PrometheusRule (monitoring.coreos.com/v1) with an alert such as \
                    `expr: cnpg_pg_stat_archiver_last_failed_time - \
                    cnpg_pg_stat_archiver_last_archived_time > 1` (for: 5m) and one on \
                    cnpg_collector_pg_wal_archive_status{value=\"ready\"}: failing archiving \
                    silently breaks point-in-time recovery and fills pg_wal";
        if let Some(first) = rules.first() {
            out.push(at(
                "no-wal-archiving-alert",
                first,
                "spec.groups",
                message,
                hint,
            ));
        } else if let Some(doc) = dbs.first().and_then(|d| main_cluster(ctx, d)) {
            out.push(at(
                "no-wal-archiving-alert",
                doc,
                "spec.monitoring",
                message,
                hint,
            ));
        }
    }

    for doc in &rules {
        for (path, expr, alert) in expressions(doc) {
            if !alert || !(expr.contains("cnpg_") || expr.contains("barman_cloud_")) {
                continue;
            }
            let Some(c) = NAMESPACE_MATCHER.captures_iter(&expr).find(|c| {
                let v = c
                    .get(2)
                    .or_else(|| c.get(3))
                    .or_else(|| c.get(4))
                    .map_or("", |m| m.as_str());
                !matches!(v, "" | ".*" | ".+")
            }) else {
                continue;
            };
            let matcher = c[0].trim_start_matches(|ch: char| ch != 'n').to_owned();
            out.push(at(
                "alert-hardcoded-namespace",
                doc,
                &path,
                format!(
                    "alert in {} selects a hard-coded namespace: found `{matcher}`, expected a \
                     selection by labels",
                    doc.name()
                ),
                "drop the namespace matcher (aggregate `by (namespace, cluster)` instead) or \
                 select by a label every database carries, so alerts cover databases added later",
            ));
        }
    }

    if !dbs.is_empty() && !has_prometheus_operator(ctx.repo) {
        for db in dbs {
            let Some(doc) = main_cluster(ctx, db) else {
                continue;
            };
            if doc.value.pointer("/spec/monitoring/enablePodMonitor") == Some(&Value::Bool(true)) {
                out.push(at(
                    "pod-monitor-without-prometheus-operator",
                    doc,
                    "spec.monitoring.enablePodMonitor",
                    format!(
                        "Cluster {} sets enablePodMonitor: true but the repository installs no \
                         Prometheus Operator: found no monitoring.coreos.com resource or \
                         kube-prometheus-stack / prometheus-operator release; the PodMonitor CRD \
                         is missing and the Cluster reconcile fails",
                        db.cluster
                    ),
                    "install the Prometheus Operator (for example a kube-prometheus-stack \
                     HelmRelease) before the databases, or remove enablePodMonitor and scrape \
                     port 9187 another way",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_quantities() {
        assert_eq!(parse_quantity("10Gi"), Some(10.0 * GI));
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * MI));
        assert_eq!(parse_quantity("1.5Gi"), Some(1.5 * GI));
        assert_eq!(parse_quantity("2k"), Some(2000.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(parse_quantity("1073741824"), Some(GI));
        assert_eq!(parse_quantity("1E"), Some(1e18));
        assert_eq!(parse_quantity("10GB"), None);
        assert_eq!(parse_quantity(""), None);
    }

    #[test]
    fn postgres_sizes() {
        assert_eq!(parse_pg_size("4GB", MI), Some(4.0 * GI));
        assert_eq!(parse_pg_size("2048", MI), Some(2.0 * GI));
        assert_eq!(parse_pg_size("16384", 8.0 * KI), Some(128.0 * MI));
        assert_eq!(parse_pg_size("64kB", KI), Some(64.0 * KI));
        assert_eq!(parse_pg_size("1TB", MI), Some(TI));
        assert_eq!(parse_pg_size("100 MB", MI), Some(100.0 * MI));
        assert_eq!(parse_pg_size("1024B", KI), Some(KI));
        assert_eq!(parse_pg_size("4gb", MI), None);
        assert_eq!(parse_pg_size("4Gi", MI), None);
    }

    #[test]
    fn image_tags() {
        assert_eq!(
            image_tag("ghcr.io/cloudnative-pg/postgresql:17.6"),
            Ok(Some("17.6"))
        );
        assert_eq!(image_tag("registry:5000/postgresql"), Ok(None));
        assert_eq!(image_tag("registry:5000/pg:17"), Ok(Some("17")));
        assert_eq!(image_tag("pg@sha256:abc"), Err(()));
        assert!(MAJOR_ONLY.is_match("17"));
        assert!(MAJOR_ONLY.is_match("17-bookworm"));
        assert!(MAJOR_ONLY.is_match("17-standard-bookworm"));
        assert!(!MAJOR_ONLY.is_match("17.6-standard-bookworm"));
        assert!(!MAJOR_ONLY.is_match("17.6"));
    }

    #[test]
    fn cidrs() {
        assert!(cidr_covers("10.96.0.0/12", "10.96.0.0/12"));
        assert!(cidr_covers("10.0.0.0/8", "10.96.0.0/12"));
        assert!(!cidr_covers("10.96.0.1/32", "10.96.0.0/12"));
        assert!(cidr_covers("0.0.0.0/0", "10.96.0.0/12"));
        assert!(!cidr_covers("192.168.0.0/16", "10.96.0.0/12"));
        assert!(cidr_covers("fd00::/8", "fd00:10::/108"));
    }

    #[test]
    fn store_ports() {
        let c = |dest: &str, ep: Option<&str>| CatalogLocation {
            destination_path: dest.into(),
            server_name: "x".into(),
            server_name_explicit: false,
            endpoint_url: ep.map(str::to_owned),
            credentials: crate::gitops::discover::Credentials::Unknown,
            object_store: None,
        };
        assert_eq!(store_port(&c("gs://b/p", None)), (443, false));
        assert_eq!(
            store_port(&c("s3://b/p", Some("http://minio.minio.svc:9000"))),
            (9000, true)
        );
        assert_eq!(
            store_port(&c("s3://b/p", Some("https://s3.example.com"))),
            (443, false)
        );
        assert_eq!(store_port(&c("s3://b/p", Some("http://minio"))), (80, true));
    }

    #[test]
    fn namespace_matchers() {
        let hit = |e: &str| NAMESPACE_MATCHER.is_match(e);
        assert!(hit(r#"cnpg_up{namespace="foo-prod"}"#));
        assert!(hit(r#"cnpg_up{job="x", namespace=~"foo-.*"}"#));
        assert!(!hit(r#"cnpg_up{exported_namespace="foo"}"#));
        assert!(!hit(r#"cnpg_up{namespace!="foo"}"#));
        assert!(!hit("sum by (namespace) (cnpg_up)"));
    }

    #[test]
    fn flux_generation_reaches_subfolders() {
        let m = Model {
            flux: Vec::new(),
            kustomize: BTreeMap::new(),
        };
        assert!(m.reaches(Path::new(""), Path::new("a/b"), 0));
        assert!(m.reaches(Path::new("a"), Path::new("a/b"), 0));
        assert!(!m.reaches(Path::new("a/c"), Path::new("a/b"), 0));
        assert_eq!(
            join_rel(Path::new("a/b"), "../c/"),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(join_rel(Path::new("a"), "../../c"), None);
    }
}
