//! CloudNativePG manifests: CRD schema and webhook rules, groups 5–7, 10
//! and 11 — backup model, bootstrap, ScheduledBackup, pgvector and the
//! empty-archive check.
//!
//! Group 0 runs every document of a kind the vendored CRDs cover through
//! [`schema::validate`] and [`webhook::validate`]; a webhook message that a
//! more specific rule below already reports for the same document is left
//! out, so one mistake gives one finding.
//!
//! Namespaces are resolved the way kustomize applies them: the `namespace` of
//! the nearest `kustomization.yaml` in the document's folder or above, else
//! the document's own `metadata.namespace`. A document whose namespace cannot
//! be told matches any namespace (no finding rather than a wrong one).

use std::cmp::Reverse;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use super::{Context, Fix, FixEdit, LintFinding, Rule, at, in_file, rule};
use crate::catalog::findings::Severity::{Error, Warning};
use crate::gitops::docs::{self, BARMAN_PLUGIN, Cluster, Plugin};
use crate::gitops::repo::{Doc, Repo};
use crate::gitops::{schema, webhook};
use crate::yaml::{self, Node, Step, steps};

/// The rules of this module.
pub const RULES: &[Rule] = &[
    rule(
        "crd-schema",
        0,
        Error,
        "A CNPG, barman-cloud ObjectStore or Flux Kustomization document breaks its CRD schema.",
    ),
    rule(
        "crd-unknown-field",
        0,
        Warning,
        "A field the CRD schema does not know (a typo, or a field of another version).",
    ),
    rule(
        "webhook-rejects",
        0,
        Error,
        "The CloudNativePG admission webhook would reject the document.",
    ),
    rule(
        "webhook-warns",
        0,
        Warning,
        "The CloudNativePG admission webhook would admit the document with a warning.",
    ),
    rule(
        "backup-inline-and-plugin",
        5,
        Error,
        "A Cluster configures both the in-tree spec.backup.barmanObjectStore and the barman-cloud plugin.",
    ),
    rule(
        "object-store-missing",
        5,
        Error,
        "A barman-cloud plugin entry names an ObjectStore that is not in the Cluster's namespace (or names none).",
    ),
    rule(
        "barman-in-tree-deprecated",
        5,
        Warning,
        "In-tree barmanObjectStore on an operator that deprecates it (1.26 and later; removal planned for 1.31).",
    ),
    rule(
        "barman-in-tree-removed",
        5,
        Error,
        "In-tree barmanObjectStore on an operator (1.31 or later) that no longer supports it.",
    ),
    rule(
        "bootstrap-several-methods",
        6,
        Error,
        "spec.bootstrap sets more than one of initdb, recovery and pg_basebackup.",
    ),
    rule(
        "recovery-source-missing",
        6,
        Error,
        "bootstrap.recovery.source names no entry of spec.externalClusters.",
    ),
    rule(
        "bootstrap-edited-after-create",
        6,
        Error,
        "A recovery bootstrap written into a Cluster that git shows was created with another method: bootstrap is create-time only.",
    ),
    rule(
        "schedule-five-fields",
        7,
        Error,
        "A ScheduledBackup schedule has 5 fields; CNPG reads 6, seconds first, so it runs at the wrong times.",
    ),
    rule(
        "backup-method-mismatch",
        7,
        Error,
        "A (Scheduled)Backup method does not match its Cluster's backup model (the CRD default is barmanObjectStore).",
    ),
    rule(
        "backup-cluster-missing",
        7,
        Error,
        "A ScheduledBackup or Backup names no Cluster in its namespace.",
    ),
    rule(
        "pgvector-not-in-app-database",
        10,
        Error,
        "CREATE EXTENSION vector in postInitSQL (the postgres database) with nothing installing it in the application database.",
    ),
    rule(
        "pgvector-minimal-image",
        10,
        Error,
        "pgvector used on a -minimal- CNPG image, which does not ship it (the -standard- images do).",
    ),
    rule(
        "database-reclaim-policy-not-retain",
        10,
        Warning,
        "A Database CR without an explicit databaseReclaimPolicy: retain (delete drops the database when Flux prunes the CR).",
    ),
    rule(
        "skip-empty-wal-check-without-recovery",
        11,
        Warning,
        "cnpg.io/skipEmptyWalArchiveCheck: enabled on a Cluster that does not bootstrap from a recovery.",
    ),
];

/// The CNPG API group.
const CNPG: &str = "postgresql.cnpg.io";
/// The operator version assumed when the repository does not say.
const CURRENT_OPERATOR: (u32, u32) = (1, 30);
/// The first operator version that deprecates in-tree barman-cloud.
const DEPRECATED_IN: (u32, u32) = (1, 26);
/// The version that removes it (as announced by 1.30.0).
const REMOVED_IN: (u32, u32) = (1, 31);
/// The annotation that disables the empty-archive check.
const SKIP_EMPTY_WAL_CHECK: &str = "cnpg.io/skipEmptyWalArchiveCheck";

/// Webhook messages that a rule of this module reports more precisely, keyed
/// by document; see [`covered_by`].
type Covered = HashSet<(PathBuf, usize, &'static str)>;

/// Runs this module's rules.
pub fn check(ctx: &Context<'_>, out: &mut Vec<LintFinding>) {
    let idx = Index::new(ctx);
    let mut covered = Covered::new();
    for c in &idx.clusters {
        backup_model(&idx, c, out, &mut covered);
        bootstrap(c, out, &mut covered);
        bootstrap_history(ctx, c, out);
        pgvector(&idx, c, out);
        empty_wal_check(c, out);
    }
    for doc in &ctx.repo.docs {
        let scheduled = doc.is(CNPG, "ScheduledBackup");
        if scheduled || doc.is(CNPG, "Backup") {
            backups(&idx, doc, scheduled, out, &mut covered);
        }
        if doc.is(CNPG, "Database") {
            reclaim_policy(doc, out);
        }
    }
    for doc in &ctx.repo.docs {
        schema_and_webhook(doc, &covered, out);
    }
}

// ---------------------------------------------------------------------------
// What the rules look things up in

/// A Cluster document, typed, with its effective namespace.
struct ClusterDoc<'a> {
    doc: &'a Doc,
    cluster: Cluster,
    namespace: Option<String>,
    /// The env of the database folder it sits in, if any.
    env: Option<String>,
}

impl ClusterDoc<'_> {
    fn name(&self) -> &str {
        &self.cluster.metadata.name
    }

    /// `name (namespace)` for messages.
    fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} ({ns})", self.name()),
            None => self.name().to_owned(),
        }
    }
}

/// Where the operator's version was read.
struct Operator {
    version: (u32, u32),
    file: PathBuf,
    line: usize,
    how: String,
}

/// The repository, indexed for the rules.
struct Index<'a> {
    repo: &'a Repo,
    clusters: Vec<ClusterDoc<'a>>,
    /// `(name, namespace, doc)` of every ObjectStore.
    stores: Vec<(String, Option<String>, &'a Doc)>,
    /// Every Database CR, typed, with its namespace.
    databases: Vec<(&'a Doc, docs::Database, Option<String>)>,
    operators: Vec<Operator>,
}

impl<'a> Index<'a> {
    fn new(ctx: &Context<'a>) -> Self {
        let repo = ctx.repo;
        let clusters = repo
            .docs_of(CNPG, "Cluster")
            .filter_map(|doc| {
                let cluster: Cluster = docs::from_value(&doc.value).ok()?;
                let env = ctx
                    .discovery
                    .databases
                    .iter()
                    .find(|d| doc.file.starts_with(&d.folder))
                    .map(|d| d.env.clone());
                Some(ClusterDoc {
                    doc,
                    cluster,
                    namespace: namespace_of(repo, doc),
                    env,
                })
            })
            .collect();
        let stores = repo
            .docs_of("barmancloud.cnpg.io", "ObjectStore")
            .map(|d| (d.name().to_owned(), namespace_of(repo, d), d))
            .collect();
        let databases = repo
            .docs_of(CNPG, "Database")
            .filter_map(|d| {
                let db = docs::from_value(&d.value).ok()?;
                Some((d, db, namespace_of(repo, d)))
            })
            .collect();
        Index {
            repo,
            clusters,
            stores,
            databases,
            operators: operators(repo),
        }
    }

    /// The Clusters called `name` in `namespace`.
    fn clusters_named(&self, name: &str, namespace: Option<&str>) -> Vec<&ClusterDoc<'a>> {
        self.clusters
            .iter()
            .filter(|c| c.name() == name && same_namespace(c.namespace.as_deref(), namespace))
            .collect()
    }

    /// The Database CRs of a Cluster that are not `ensure: absent`.
    fn databases_of(&self, c: &ClusterDoc<'_>) -> Vec<&(&'a Doc, docs::Database, Option<String>)> {
        self.databases
            .iter()
            .filter(|(_, db, ns)| {
                db.spec.cluster.name == c.name()
                    && same_namespace(ns.as_deref(), c.namespace.as_deref())
                    && db.spec.ensure.as_deref() != Some("absent")
            })
            .collect()
    }
}

/// `file:line` of a path in a document, for messages.
fn location(doc: &Doc, path: &str) -> String {
    format!("{}:{}", doc.file.display(), doc.line(path))
}

/// Whether two namespaces can be the same (an unknown one matches any).
fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The namespace a document is applied in: the `namespace` of the nearest
/// `kustomization.yaml` at or above its folder, else its own.
fn namespace_of(repo: &Repo, doc: &Doc) -> Option<String> {
    let mut dir = doc.file.parent();
    while let Some(d) = dir {
        let forced = repo
            .docs
            .iter()
            .filter(|k| k.is("kustomize.config.k8s.io", "Kustomization"))
            .filter(|k| k.file.parent() == Some(d))
            .find_map(|k| k.value.get("namespace").and_then(Value::as_str));
        if let Some(ns) = forced {
            return Some(ns.to_owned());
        }
        dir = d.parent();
    }
    doc.value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

// ---------------------------------------------------------------------------
// Group 0: CRD schema and webhook

/// Which rule of this module reports a webhook violation more precisely, if
/// any; the violation is then skipped for documents where that rule fired.
fn covered_by(v: &webhook::Violation) -> Option<&'static str> {
    let m = v.message.as_str();
    if m == "Only one bootstrap method can be specified at a time" {
        Some("bootstrap-count")
    } else if v.path == "spec.bootstrap.recovery.source" && m.starts_with("External cluster ") {
        Some("recovery-source")
    } else if m.starts_with("Cannot enable a WAL archiver plugin when barmanObjectStore") {
        Some("inline-and-plugin")
    } else if m.starts_with("Native support for Barman Cloud") {
        // Always: group 5 judges the deprecation against the operator version.
        Some("in-tree")
    } else if v.path == "spec.schedule" {
        Some("schedule")
    } else if v.path == "spec.pluginConfiguration" {
        Some("plugin-configuration")
    } else {
        None
    }
}

fn schema_and_webhook(doc: &Doc, covered: &Covered, out: &mut Vec<LintFinding>) {
    // Plain YAML (Terraform inputs, Helm values) is not a Kubernetes object.
    if doc.kind().is_empty() || doc.api_version().is_empty() {
        return;
    }
    let mut value = doc.value.clone();
    // SOPS metadata is stripped by Flux before applying.
    let sops = value
        .as_object_mut()
        .and_then(|m| m.remove("sops"))
        .is_some();
    let Ok(errors) = schema::validate(&value) else {
        return;
    };
    let kind = doc.kind().to_ascii_lowercase();
    for e in &errors {
        let steps = path_steps(&e.path);
        if sops && is_encrypted(&value, &steps) {
            continue;
        }
        let line = line_at(&doc.node, &steps);
        let explain = format!("kubectl explain {kind}.{}", explain_path(&e.path));
        if e.message == "unknown field" {
            out.push(in_file(
                "crd-unknown-field",
                doc.file.clone(),
                line,
                format!(
                    "{}: field not in the {} CRD schema ({})",
                    e.path,
                    doc.kind(),
                    doc.api_version()
                ),
                &format!(
                    "fix the spelling or the indentation, or remove it; see `{explain}` \
                     (the API server drops or refuses unknown fields)"
                ),
            ));
        } else {
            out.push(in_file(
                "crd-schema",
                doc.file.clone(),
                line,
                format!("{}: {}", display_path(&e.path), e.message),
                &format!("the API server refuses this document; fix the value (see `{explain}`)"),
            ));
        }
    }
    for v in webhook::validate(&value) {
        if errors
            .iter()
            .any(|e| e.path == v.path && e.message == v.message)
        {
            continue;
        }
        if let Some(tag) = covered_by(&v)
            && (tag == "in-tree" || covered.contains(&(doc.file.clone(), doc.index, tag)))
        {
            continue;
        }
        let steps = path_steps(&v.path);
        let line = line_at(&doc.node, &steps);
        let (rule, hint) = match v.severity {
            webhook::Severity::Error => (
                "webhook-rejects",
                "the CloudNativePG webhook refuses this document when Flux applies it \
                 (and the Kustomization stops reconciling); fix it before merging",
            ),
            webhook::Severity::Warning => (
                "webhook-warns",
                "the document is admitted, but not as written: follow the warning",
            ),
        };
        out.push(in_file(
            rule,
            doc.file.clone(),
            line,
            format!("{}: {}", display_path(&v.path), v.message),
            hint,
        ));
    }
}

/// A path for messages (`(document)` for the document itself).
fn display_path(path: &str) -> &str {
    if path.is_empty() { "(document)" } else { path }
}

/// `spec.plugins[0].name` → `spec.plugins.name` for `kubectl explain`.
fn explain_path(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Parses a schema or webhook path into steps: `a.b[0].c`, `x[key]` for a
/// map key, and (webhook style) `metadata.annotations.cnpg.io/x` where the
/// rest after `annotations` or `labels` is one key.
fn path_steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut chars = path.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '.' => {
                if !key.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut key)));
                }
                let meta_map = matches!(
                    out.as_slice(),
                    [Step::Key(m), Step::Key(a)] if m == "metadata" && (a == "annotations" || a == "labels")
                );
                if meta_map {
                    out.push(Step::Key(path[i + 1..].to_owned()));
                    return out;
                }
            }
            '[' => {
                if !key.is_empty() {
                    out.push(Step::Key(std::mem::take(&mut key)));
                }
                let body: String = chars
                    .by_ref()
                    .map(|(_, c)| c)
                    .take_while(|&c| c != ']')
                    .collect();
                match body.parse() {
                    Ok(n) => out.push(Step::Index(n)),
                    Err(_) => out.push(Step::Key(body)),
                }
            }
            _ => key.push(c),
        }
    }
    if !key.is_empty() {
        out.push(Step::Key(key));
    }
    out
}

/// The line of the deepest node of `steps` that exists (a key's own line for
/// a mapping entry).
fn line_at(node: &Node, steps: &[Step]) -> usize {
    node.line_at(steps)
}

/// Whether the value at `steps` is (inside) a SOPS-encrypted string.
fn is_encrypted(value: &Value, steps: &[Step]) -> bool {
    let mut v = value;
    for step in steps {
        if v.as_str().is_some_and(|s| s.starts_with("ENC[")) {
            return true;
        }
        let next = match step {
            Step::Key(k) => v.get(k.as_str()),
            Step::Index(i) => v.get(*i),
            Step::Where(..) => None,
        };
        match next {
            Some(n) => v = n,
            None => return false,
        }
    }
    v.as_str().is_some_and(|s| s.starts_with("ENC["))
}

// ---------------------------------------------------------------------------
// Group 5: backup model

fn backup_model(
    idx: &Index<'_>,
    c: &ClusterDoc<'_>,
    out: &mut Vec<LintFinding>,
    covered: &mut Covered,
) {
    let doc = c.doc;
    let cluster = &c.cluster;
    let plugin_index = cluster.spec.plugins.iter().position(Plugin::is_barman);
    let inline = cluster.inline_store().is_some();

    if let (Some(i), true) = (plugin_index, inline) {
        let archiver = cluster.spec.plugins[i].is_wal_archiver == Some(true);
        covered.insert((doc.file.clone(), doc.index, "inline-and-plugin"));
        out.push(at(
            "backup-inline-and-plugin",
            doc,
            "spec.backup.barmanObjectStore",
            format!(
                "Cluster {} configures both the in-tree spec.backup.barmanObjectStore and the \
                 barman-cloud plugin (spec.plugins[{i}]){}",
                c.label(),
                if archiver {
                    ": the webhook rejects a WAL archiver plugin next to barmanObjectStore"
                } else {
                    ": two backup paths, and ScheduledBackups can only use one"
                }
            ),
            "keep the plugin: move the stanza into an ObjectStore's spec.configuration \
             (retentionPolicy onto the ObjectStore, serverName into the plugin's parameters) \
             and remove spec.backup.barmanObjectStore and spec.backup.retentionPolicy",
        ));
    }

    object_stores(idx, c, out);
    in_tree(idx, c, out);
}

/// Every barman-cloud plugin reference of a Cluster names an ObjectStore in
/// its namespace.
fn object_stores(idx: &Index<'_>, c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>) {
    let mut refs: Vec<(String, &Plugin)> = Vec::new();
    for (i, p) in c.cluster.spec.plugins.iter().enumerate() {
        if p.is_barman() {
            refs.push((format!("spec.plugins[{i}]"), p));
        }
    }
    for (i, e) in c.cluster.spec.external_clusters.iter().enumerate() {
        if let Some(p) = e.plugin.as_ref().filter(|p| p.is_barman()) {
            refs.push((format!("spec.externalClusters[{i}].plugin"), p));
        }
    }
    let ns = c.namespace.as_deref();
    for (path, p) in refs {
        let Some(name) = p.parameters.get("barmanObjectName") else {
            out.push(at(
                "object-store-missing",
                c.doc,
                &format!("{path}.parameters"),
                format!(
                    "{path} of Cluster {} uses the barman-cloud plugin without a \
                     barmanObjectName parameter, so it has no object store to use",
                    c.label()
                ),
                "add parameters.barmanObjectName naming an ObjectStore (barmancloud.cnpg.io/v1) \
                 in the Cluster's namespace",
            ));
            continue;
        };
        let found = idx
            .stores
            .iter()
            .any(|(n, sns, _)| n == name && same_namespace(sns.as_deref(), ns));
        if found {
            continue;
        }
        let elsewhere: Vec<String> = idx
            .stores
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, sns, d)| {
                format!(
                    "{} ({})",
                    sns.as_deref().unwrap_or("no namespace"),
                    location(d, "metadata.name")
                )
            })
            .collect();
        let mut message = format!(
            "{path} of Cluster {} names ObjectStore `{name}`, which is not in namespace {} \
             anywhere in the repository",
            c.label(),
            ns.unwrap_or("(unknown)")
        );
        if !elsewhere.is_empty() {
            let _ = write!(
                message,
                "; there is one in namespace {}, but the plugin does not look across namespaces",
                elsewhere.join(", ")
            );
        }
        out.push(at(
            "object-store-missing",
            c.doc,
            &format!("{path}.parameters.barmanObjectName"),
            message,
            &format!(
                "add an ObjectStore `{name}` (barmancloud.cnpg.io/v1) in namespace {} next to \
                 the Cluster, or correct barmanObjectName",
                ns.unwrap_or("of the Cluster")
            ),
        ));
    }
}

/// In-tree barman-cloud against the operator version.
fn in_tree(idx: &Index<'_>, c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>) {
    let mut paths = Vec::new();
    if c.cluster.inline_store().is_some() {
        paths.push("spec.backup.barmanObjectStore".to_owned());
    }
    for (i, e) in c.cluster.spec.external_clusters.iter().enumerate() {
        if e.barman_object_store.is_some() {
            paths.push(format!("spec.externalClusters[{i}].barmanObjectStore"));
        }
    }
    let Some(first) = paths.first() else {
        return;
    };
    let operator = operator_for(&idx.operators, &c.doc.file, c.env.as_deref());
    let (version, source) = match operator {
        Some(o) => (
            o.version,
            format!(
                "the operator here is {}.{} ({}, {}:{})",
                o.version.0,
                o.version.1,
                o.how,
                o.file.display(),
                o.line
            ),
        ),
        None => (
            CURRENT_OPERATOR,
            format!(
                "no CloudNativePG operator install (HelmRelease, OCIRepository, image tag or \
                 release manifest) found in the repository, so a current operator ({}.{}) \
                 is assumed",
                CURRENT_OPERATOR.0, CURRENT_OPERATOR.1
            ),
        ),
    };
    let hint = "move to the barman-cloud plugin: put the stanza in an ObjectStore's \
                spec.configuration (serverName becomes the plugin's serverName parameter, \
                retentionPolicy moves to the ObjectStore), replace it with a spec.plugins entry \
                {name: barman-cloud.cloudnative-pg.io, isWALArchiver: true, parameters: \
                {barmanObjectName: …}} and set method: plugin on the ScheduledBackups";
    if version >= REMOVED_IN {
        out.push(at(
            "barman-in-tree-removed",
            c.doc,
            first,
            format!(
                "Cluster {} uses in-tree barman-cloud ({}), which CloudNativePG {}.{} removed; {source}",
                c.label(),
                paths.join(", "),
                REMOVED_IN.0,
                REMOVED_IN.1
            ),
            hint,
        ));
    } else if version >= DEPRECATED_IN {
        out.push(at(
            "barman-in-tree-deprecated",
            c.doc,
            first,
            format!(
                "Cluster {} uses in-tree barman-cloud ({}), deprecated since CloudNativePG {}.{} \
                 with removal planned for {}.{}; {source}",
                c.label(),
                paths.join(", "),
                DEPRECATED_IN.0,
                DEPRECATED_IN.1,
                REMOVED_IN.0,
                REMOVED_IN.1
            ),
            hint,
        ));
    }
}

/// Whether the operator that runs a Cluster declared in `file` of `env`
/// still supports in-tree barman-cloud without deprecation (before 1.26).
#[must_use]
pub fn in_tree_supported(repo: &Repo, file: &Path, env: Option<&str>) -> bool {
    let ops = operators(repo);
    operator_for(&ops, file, env).map_or(CURRENT_OPERATOR, |o| o.version) < DEPRECATED_IN
}

/// Every place the repository says which operator version runs.
fn operators(repo: &Repo) -> Vec<Operator> {
    static IMAGE: OnceLock<Regex> = OnceLock::new();
    static MANIFEST: OnceLock<Regex> = OnceLock::new();
    let image = IMAGE.get_or_init(|| {
        Regex::new(r"cloudnative-pg/cloudnative-pg:v?(\d+)\.(\d+)").expect("valid regex")
    });
    let manifest = MANIFEST
        .get_or_init(|| Regex::new(r"\bcnpg-(\d+)\.(\d+)\.\d+\.yaml").expect("valid regex"));
    let mut out = Vec::new();
    let mut push = |doc: &Doc, steps: &[Step], version: (u32, u32), how: String| {
        out.push(Operator {
            version,
            file: doc.file.clone(),
            line: line_at(&doc.node, steps),
            how,
        });
    };
    for doc in &repo.docs {
        let pointer_text = |p: &str| doc.value.pointer(p).and_then(scalar_text);
        if doc.is("helm.toolkit.fluxcd.io", "HelmRelease")
            && pointer_text("/spec/chart/spec/chart").as_deref() == Some("cloudnative-pg")
        {
            if let Some(v) = pointer_text("/spec/values/image/tag").and_then(|t| major_minor(&t)) {
                push(
                    doc,
                    &path_steps("spec.values.image.tag"),
                    v,
                    "HelmRelease image tag".into(),
                );
            } else if let Some(chart) = pointer_text("/spec/chart/spec/version")
                && let Some(v) = chart_operator(&chart)
            {
                push(
                    doc,
                    &path_steps("spec.chart.spec.version"),
                    v,
                    format!("HelmRelease chart cloudnative-pg {chart}"),
                );
            }
        }
        if doc.is("source.toolkit.fluxcd.io", "OCIRepository")
            && pointer_text("/spec/url").is_some_and(|u| u.ends_with("/charts/cloudnative-pg"))
        {
            let tag = pointer_text("/spec/ref/tag")
                .map(|t| ("spec.ref.tag", t))
                .or_else(|| pointer_text("/spec/ref/semver").map(|t| ("spec.ref.semver", t)));
            if let Some((path, chart)) = tag
                && let Some(v) = chart_operator(&chart)
            {
                push(
                    doc,
                    &path_steps(path),
                    v,
                    format!("OCIRepository chart cloudnative-pg {chart}"),
                );
            }
        }
        let mut strings = Vec::new();
        collect_strings(&doc.value, &mut Vec::new(), &mut strings);
        for (steps, s) in strings {
            if let Some(c) = image.captures(s) {
                if let (Ok(a), Ok(b)) = (c[1].parse(), c[2].parse()) {
                    push(doc, &steps, (a, b), format!("image {s}"));
                }
            } else if let Some(c) = manifest.captures(s)
                && let (Ok(a), Ok(b)) = (c[1].parse(), c[2].parse())
            {
                push(doc, &steps, (a, b), format!("release manifest {s}"));
            }
        }
    }
    out
}

/// A string or a number as text (a tag such as `1.27` may read as a number).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Every string in a JSON tree, with its path.
fn collect_strings<'v>(v: &'v Value, path: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, &'v str)>) {
    match v {
        Value::String(s) => out.push((path.clone(), s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Step::Index(i));
                collect_strings(item, path, out);
                path.pop();
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                path.push(Step::Key(k.clone()));
                collect_strings(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The first `major.minor` in a version string (`v1.27.0`, `~0.26`, `0.26.x`).
fn major_minor(s: &str) -> Option<(u32, u32)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"(\d+)\.(\d+)").expect("valid regex"));
    let c = re.captures(s)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

/// The operator minor version a cloudnative-pg chart version ships: 0.22 →
/// 1.24, …, 0.24 and 0.25 → 1.26, 0.26 → 1.27, …, 0.29 → 1.30 (appVersion in
/// the charts repository).
fn chart_operator(chart: &str) -> Option<(u32, u32)> {
    let (major, minor) = major_minor(chart)?;
    if major != 0 {
        return None;
    }
    Some(match minor {
        ..=24 => (1, minor + 2),
        25 => (1, 26),
        _ => (1, minor + 1),
    })
}

/// The operator install that applies to a Cluster: one in a folder named
/// after the Cluster's env first, then the one sharing the longest folder
/// prefix, then the oldest.
fn operator_for<'o>(ops: &'o [Operator], file: &Path, env: Option<&str>) -> Option<&'o Operator> {
    ops.iter().max_by_key(|o| {
        let env_match = env.is_some_and(|e| o.file.components().any(|c| c.as_os_str() == e));
        let common = o
            .file
            .components()
            .zip(file.components())
            .take_while(|(a, b)| a == b)
            .count();
        (env_match, common, Reverse(o.version))
    })
}

// ---------------------------------------------------------------------------
// Group 6: bootstrap

fn bootstrap(c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>, covered: &mut Covered) {
    let doc = c.doc;
    let Some(b) = &c.cluster.spec.bootstrap else {
        return;
    };
    let methods = b.methods();
    if methods.len() > 1 {
        covered.insert((doc.file.clone(), doc.index, "bootstrap-count"));
        out.push(at(
            "bootstrap-several-methods",
            doc,
            "spec.bootstrap",
            format!(
                "spec.bootstrap of Cluster {} sets {}; CloudNativePG takes exactly one \
                 (the webhook rejects: Only one bootstrap method can be specified at a time)",
                c.label(),
                methods.join(" and ")
            ),
            "keep one method: recovery to restore from a backup, pg_basebackup to clone a \
             running server, initdb for a new empty database",
        ));
    }
    if let Some(source) = c.cluster.recovery().and_then(|r| r.source.as_deref()) {
        let names: Vec<&str> = c
            .cluster
            .spec
            .external_clusters
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        if !names.contains(&source) {
            covered.insert((doc.file.clone(), doc.index, "recovery-source"));
            out.push(at(
                "recovery-source-missing",
                doc,
                "spec.bootstrap.recovery.source",
                format!(
                    "bootstrap.recovery.source `{source}` of Cluster {} names no entry of \
                     spec.externalClusters (found: {})",
                    c.label(),
                    if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
                &format!(
                    "add an externalClusters entry named `{source}` (plugin: \
                     barman-cloud.cloudnative-pg.io with the source's barmanObjectName and \
                     serverName), or correct the source"
                ),
            ));
        }
    }
}

/// Where a Cluster version writes its archive: the store and the server name.
fn write_target(v: &Value, name: &str) -> (String, String) {
    let plugins = v
        .pointer("/spec/plugins")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let plugin = plugins.iter().find(|p| {
        p.get("name").and_then(Value::as_str) == Some(BARMAN_PLUGIN)
            && p.get("enabled").and_then(Value::as_bool) != Some(false)
    });
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if let Some(p) = plugin {
        let store = text(p.pointer("/parameters/barmanObjectName")).unwrap_or_default();
        let server = text(p.pointer("/parameters/serverName")).unwrap_or_else(|| name.to_owned());
        return (format!("store:{store}"), server);
    }
    if let Some(s) = v.pointer("/spec/backup/barmanObjectStore") {
        let path = text(s.get("destinationPath")).unwrap_or_default();
        let server = text(s.get("serverName")).unwrap_or_else(|| name.to_owned());
        return (format!("path:{path}"), server);
    }
    (String::new(), name.to_owned())
}

/// The bootstrap method of a Cluster version (`initdb` when none is written:
/// the defaulting webhook fills it in).
fn first_method(v: &Value) -> &'static str {
    let b = v.pointer("/spec/bootstrap");
    let has = |k: &str| b.and_then(|b| b.get(k)).is_some_and(|v| !v.is_null());
    if has("recovery") {
        "recovery"
    } else if has("pg_basebackup") {
        "pg_basebackup"
    } else {
        "initdb"
    }
}

/// A recovery bootstrap written into a Cluster that git history shows was
/// created with initdb (or pg_basebackup). A re-clone that gave the Cluster a
/// new write target (ObjectStore, destinationPath or serverName) is taken as
/// the recreation it needs.
fn bootstrap_history(ctx: &Context<'_>, c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>) {
    let (Some(git), Some(_)) = (ctx.git, c.cluster.recovery()) else {
        return;
    };
    let abs = ctx.repo.root.join(&c.doc.file);
    let top = git.root();
    let rel = abs.strip_prefix(top).map(Path::to_path_buf).or_else(|_| {
        let top = top.canonicalize().unwrap_or_else(|_| top.to_path_buf());
        abs.strip_prefix(&top).map(Path::to_path_buf)
    });
    let Ok(rel) = rel else {
        return;
    };
    let Ok(history) = git.file_history(&rel) else {
        return;
    };
    let namespace = c.cluster.metadata.namespace.as_deref();
    let first = history.iter().find_map(|(commit, text)| {
        yaml::parse_values(text).ok()?.into_iter().find_map(|v| {
            let is_it = v.get("kind").and_then(Value::as_str) == Some("Cluster")
                && v.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|a| a.starts_with("postgresql.cnpg.io/"))
                && v.pointer("/metadata/name").and_then(Value::as_str) == Some(c.name())
                && v.pointer("/metadata/namespace").and_then(Value::as_str) == namespace;
            is_it.then(|| (commit.clone(), v))
        })
    });
    let Some((commit, first)) = first else {
        return;
    };
    let method = first_method(&first);
    if method == "recovery" {
        return;
    }
    if write_target(&first, c.name()) != write_target(&c.doc.value, c.name()) {
        return;
    }
    let short = commit.get(..12).unwrap_or(&commit);
    out.push(at(
        "bootstrap-edited-after-create",
        c.doc,
        "spec.bootstrap.recovery",
        format!(
            "Cluster {} now bootstraps from recovery, but git shows it was first committed \
             with {method} (commit {short}): bootstrap is read only when the Cluster is \
             created, so this edit does nothing to the running cluster",
            c.label()
        ),
        "recreate through a re-clone: suspend the Flux Kustomization, delete the Cluster, and \
         recreate it with the recovery bootstrap and a new write serverName \
         (spec.plugins[].parameters.serverName) so it archives into an empty folder",
    ));
}

// ---------------------------------------------------------------------------
// Group 7: ScheduledBackup and Backup

fn backups(
    idx: &Index<'_>,
    doc: &Doc,
    scheduled: bool,
    out: &mut Vec<LintFinding>,
    covered: &mut Covered,
) {
    let spec = doc.value.get("spec").unwrap_or(&Value::Null);
    let text = |k: &str| spec.get(k).and_then(Value::as_str);
    let kind = doc.kind();
    let label = format!("{kind} {}", doc.name());

    if scheduled && let Some(schedule) = text("schedule") {
        five_fields(doc, &label, schedule, out, covered);
    }

    let namespace = namespace_of(idx.repo, doc);
    let cluster_name = spec
        .pointer("/cluster/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let found = idx.clusters_named(cluster_name, namespace.as_deref());
    let Some(c) = found.first() else {
        // An unnamed cluster is a schema error (required field).
        if !cluster_name.is_empty() {
            let ns = namespace.as_deref();
            let here: Vec<&str> = idx
                .clusters
                .iter()
                .filter(|c| same_namespace(c.namespace.as_deref(), ns))
                .map(ClusterDoc::name)
                .collect();
            let mut message = format!(
                "{label} names Cluster `{cluster_name}`, which is not in namespace {} anywhere \
                 in the repository (Clusters there: {})",
                ns.unwrap_or("(unknown)"),
                if here.is_empty() {
                    "none".to_owned()
                } else {
                    here.join(", ")
                }
            );
            let elsewhere: Vec<&str> = idx
                .clusters
                .iter()
                .filter(|c| c.name() == cluster_name)
                .filter_map(|c| c.namespace.as_deref())
                .collect();
            if !elsewhere.is_empty() {
                let _ = write!(
                    message,
                    "; `{cluster_name}` exists in {}, but a backup only reaches its own namespace",
                    elsewhere.join(", ")
                );
            }
            out.push(at(
                "backup-cluster-missing",
                doc,
                "spec.cluster.name",
                message,
                "name the Cluster this backs up (spec.cluster.name, same namespace), or remove \
                 the object; it creates only failing backups",
            ));
        }
        return;
    };

    let method = text("method").unwrap_or("barmanObjectStore");
    let method_shown = if text("method").is_some() {
        format!("method {method}")
    } else {
        "no method (the CRD default is barmanObjectStore)".to_owned()
    };
    let configured = spec
        .pointer("/pluginConfiguration/name")
        .and_then(Value::as_str);
    let cluster_plugins: Vec<&str> = c
        .cluster
        .spec
        .plugins
        .iter()
        .filter(|p| p.enabled != Some(false))
        .map(|p| p.name.as_str())
        .collect();
    let other_plugin =
        configured.is_some_and(|n| n != BARMAN_PLUGIN && cluster_plugins.contains(&n));
    let plugin = c.cluster.barman_plugin().is_some();
    let inline = c.cluster.inline_store().is_some();
    let plugin_hint = "set `method: plugin` and `pluginConfiguration: {name: \
                       barman-cloud.cloudnative-pg.io}`";
    let problem = match (plugin, inline) {
        _ if method == "volumeSnapshot" || other_plugin => None,
        (true, false) if method != "plugin" => Some((
            format!(
                "{label} has {method_shown}, but Cluster {} backs up through the barman-cloud \
                 plugin: every backup it creates fails",
                c.label()
            ),
            plugin_hint.to_owned(),
        )),
        (true, false) if configured != Some(BARMAN_PLUGIN) => Some((
            format!(
                "{label} has method plugin with {}; Cluster {} backs up through \
                 barman-cloud.cloudnative-pg.io",
                configured.map_or("no pluginConfiguration.name".to_owned(), |n| {
                    format!("pluginConfiguration.name `{n}`")
                }),
                c.label()
            ),
            plugin_hint.to_owned(),
        )),
        (false, true) if method == "plugin" => Some((
            format!(
                "{label} has method plugin, but Cluster {} uses the in-tree \
                 spec.backup.barmanObjectStore: no plugin takes the backups",
                c.label()
            ),
            "remove `method: plugin` and pluginConfiguration (the default method \
             barmanObjectStore uses the in-tree configuration), or move the Cluster to the \
             barman-cloud plugin first"
                .to_owned(),
        )),
        (false, false) if method == "plugin" || method == "barmanObjectStore" => Some((
            format!(
                "{label} has {method_shown}, but Cluster {} configures no backups (neither \
                 spec.backup.barmanObjectStore nor the barman-cloud plugin)",
                c.label()
            ),
            "configure the barman-cloud plugin on the Cluster (spec.plugins with an \
             ObjectStore) and set `method: plugin` here, or remove this object"
                .to_owned(),
        )),
        _ => None,
    };
    if let Some((message, hint)) = problem {
        covered.insert((doc.file.clone(), doc.index, "plugin-configuration"));
        let finding = at("backup-method-mismatch", doc, "spec.method", message, &hint);
        // Mechanical only for a plugin Cluster (the method and plugin to name
        // are known) and only on a ScheduledBackup: a Backup's spec is
        // immutable, so the fix there is a new Backup, not an edit.
        let finding = if plugin && !inline && !other_plugin && doc.kind() == "ScheduledBackup" {
            finding.with_fix(Fix::new(
                doc,
                "method: plugin with the barman-cloud plugin",
                vec![
                    FixEdit::Set(steps("spec.method"), Value::String("plugin".into())),
                    FixEdit::Set(
                        steps("spec.pluginConfiguration.name"),
                        Value::String(BARMAN_PLUGIN.into()),
                    ),
                ],
            ))
        } else {
            finding
        };
        out.push(finding);
    }
}

/// A classic 5-field crontab line in a ScheduledBackup.
fn five_fields(
    doc: &Doc,
    label: &str,
    schedule: &str,
    out: &mut Vec<LintFinding>,
    covered: &mut Covered,
) {
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 || fields[0].starts_with('@') {
        return;
    }
    let fixed = format!("0 {}", fields.join(" "));
    let read = match webhook::parse_cron(schedule) {
        Ok(_) => {
            let names = ["second", "minute", "hour", "day-of-month", "month"];
            let parts: Vec<String> = names
                .iter()
                .zip(&fields)
                .map(|(n, f)| format!("{n} {f}"))
                .collect();
            let every = webhook::backup_interval(schedule)
                .map(|d| format!(": a backup every {}", human_duration(d.num_seconds())))
                .unwrap_or_default();
            format!("so it is read as {}{every}", parts.join(", "))
        }
        Err(e) => format!("and read that way it does not parse: {e}"),
    };
    covered.insert((doc.file.clone(), doc.index, "schedule"));
    out.push(
        at(
            "schedule-five-fields",
            doc,
            "spec.schedule",
            format!(
                "{label} schedule \"{schedule}\" has 5 fields; CloudNativePG reads 6, seconds \
             first, {read}"
            ),
            &format!("write the 6-field form: schedule: \"{fixed}\""),
        )
        .with_fix(Fix::new(
            doc,
            format!("schedule \"{fixed}\""),
            vec![FixEdit::Set(
                steps("spec.schedule"),
                Value::String(fixed.clone()),
            )],
        )),
    );
}

/// `3600` → `1h`, `5400` → `90m`.
fn human_duration(seconds: i64) -> String {
    if seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else if seconds % 3600 == 0 {
        format!("{}h", seconds / 3600)
    } else if seconds % 60 == 0 {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}

// ---------------------------------------------------------------------------
// Group 10: pgvector and Database CRs

/// SQL a Cluster runs at initdb, per database.
#[derive(Default)]
struct InitSql {
    /// `(path, statement)` whose text is known.
    known: Vec<(String, String)>,
    /// Some SQL comes from a ConfigMap or Secret not readable here.
    unknown: bool,
}

/// The SQL of `initdb.<key>` and `initdb.<key>Refs`.
fn init_sql(idx: &Index<'_>, c: &ClusterDoc<'_>, initdb: &Value, key: &str) -> InitSql {
    let mut sql = InitSql::default();
    let base = format!("spec.bootstrap.initdb.{key}");
    if let Some(items) = initdb.get(key).and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            if let Some(s) = item.as_str() {
                sql.known.push((format!("{base}[{i}]"), s.to_owned()));
            }
        }
    }
    let refs_key = format!("{key}Refs");
    let Some(refs) = initdb.get(&refs_key) else {
        return sql;
    };
    for (kind, list, field) in [
        ("ConfigMap", "configMapRefs", "data"),
        ("Secret", "secretRefs", "stringData"),
    ] {
        let items = refs.get(list).and_then(Value::as_array);
        for (i, r) in items.into_iter().flatten().enumerate() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or("");
            let key = r.get("key").and_then(Value::as_str).unwrap_or("");
            let text = idx
                .repo
                .docs
                .iter()
                .filter(|d| d.kind() == kind && d.api_version() == "v1" && d.name() == name)
                .filter(|d| {
                    same_namespace(namespace_of(idx.repo, d).as_deref(), c.namespace.as_deref())
                })
                .find_map(|d| d.value.get(field)?.get(key)?.as_str())
                .filter(|t| !t.starts_with("ENC["));
            match text {
                Some(t) => sql.known.push((
                    format!("spec.bootstrap.initdb.{refs_key}.{list}[{i}]"),
                    t.to_owned(),
                )),
                None => sql.unknown = true,
            }
        }
    }
    sql
}

/// Whether SQL creates the `vector` extension.
///
/// # Panics
///
/// Never: the pattern is a constant that compiles.
#[must_use]
pub fn creates_vector(sql: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?i)\bcreate\s+extension\s+(?:if\s+not\s+exists\s+)?(?:"vector"|vector\b)"#)
            .expect("valid regex")
    })
    .is_match(sql)
}

/// Whether a Database CR has `vector` present (`ensure` absent means present).
fn lists_vector(db: &docs::Database) -> bool {
    db.spec
        .extensions
        .iter()
        .any(|e| e.name == "vector" && e.ensure.as_deref() != Some("absent"))
}

fn pgvector(idx: &Index<'_>, c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>) {
    let initdb = c
        .cluster
        .spec
        .bootstrap
        .as_ref()
        .and_then(|b| b.initdb.as_ref());
    let empty = Value::Null;
    let initdb_value = initdb.unwrap_or(&empty);
    let app = initdb_value
        .get("database")
        .and_then(Value::as_str)
        .unwrap_or("app");
    let postgres = init_sql(idx, c, initdb_value, "postInitSQL");
    let template = init_sql(idx, c, initdb_value, "postInitTemplateSQL");
    let application = init_sql(idx, c, initdb_value, "postInitApplicationSQL");
    let databases = idx.databases_of(c);

    let vector_in = |s: &InitSql| {
        s.known
            .iter()
            .find(|(_, t)| creates_vector(t))
            .map(|(p, _)| p.clone())
    };
    // The application database is created from template1 after
    // postInitTemplateSQL ran, so the template installs it there too.
    let app_cr = databases
        .iter()
        .find(|(_, db, _)| db.spec.name == app && lists_vector(db));
    let installed = vector_in(&application).is_some()
        || vector_in(&template).is_some()
        || app_cr.is_some()
        || application.unknown
        || template.unknown;

    if initdb.is_some() && !installed {
        for (path, sql) in postgres.known.iter().filter(|(_, t)| creates_vector(t)) {
            let first_line = sql
                .lines()
                .find(|l| creates_vector(l))
                .unwrap_or(sql)
                .trim();
            out.push(at(
                "pgvector-not-in-app-database",
                c.doc,
                path,
                format!(
                    "`{first_line}` in {path} of Cluster {} runs in the `postgres` database, \
                     not in the application database `{app}`, and nothing installs vector \
                     there (no postInitApplicationSQL, no Database CR for `{app}` with the \
                     extension)",
                    c.label()
                ),
                &format!(
                    "move the statement to bootstrap.initdb.postInitApplicationSQL, or add a \
                     Database CR (cluster {}, name {app}, databaseReclaimPolicy: retain) with \
                     extensions: [{{name: vector}}]; on an existing Cluster only the Database CR \
                     takes effect",
                    c.name()
                ),
            ));
        }
    }

    // Any use at all, for the image check.
    let used = [&postgres, &template, &application]
        .into_iter()
        .find_map(vector_in)
        .map(|p| format!("{p} of {}", c.doc.file.display()))
        .or_else(|| {
            databases
                .iter()
                .find(|(_, db, _)| lists_vector(db))
                .map(|(d, _, _)| {
                    format!(
                        "Database {} at {}",
                        d.name(),
                        location(d, "spec.extensions")
                    )
                })
        });
    let Some(used) = used else {
        return;
    };
    let Some(image) = c.cluster.spec.image_name.as_deref() else {
        return;
    };
    let name_end = image.rfind('/').map_or(0, |i| i + 1);
    let Some(colon) = image[name_end..].find(':').map(|i| name_end + i) else {
        return;
    };
    let tag = image[colon + 1..].split('@').next().unwrap_or("");
    if !tag.contains("-minimal-") {
        return;
    }
    let standard = format!(
        "{}:{}",
        &image[..colon],
        tag.replacen("-minimal-", "-standard-", 1)
    );
    out.push(at(
        "pgvector-minimal-image",
        c.doc,
        "spec.imageName",
        format!(
            "Cluster {} runs the minimal image {image}, which does not ship pgvector, but \
             vector is used ({used})",
            c.label()
        ),
        &format!("use the standard image of the same version: imageName: {standard}"),
    ));
}

fn reclaim_policy(doc: &Doc, out: &mut Vec<LintFinding>) {
    let spec = doc.value.get("spec");
    let policy = spec
        .and_then(|s| s.get("databaseReclaimPolicy"))
        .and_then(Value::as_str);
    let database = spec
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let message = match policy {
        Some("retain") => return,
        Some("delete") => format!(
            "Database {} has databaseReclaimPolicy: delete: deleting the CR drops database \
             `{database}` with its data, and a Flux prune deletes it as soon as the file \
             leaves git or its Kustomization goes",
            doc.name()
        ),
        Some(other) => format!(
            "Database {} has databaseReclaimPolicy `{other}`; only retain keeps database \
             `{database}` when the CR is deleted (as a Flux prune does)",
            doc.name()
        ),
        None => format!(
            "Database {} does not write databaseReclaimPolicy; write retain explicitly so \
             database `{database}` survives the CR being deleted (as a Flux prune does), \
             whatever the default or a copied manifest says",
            doc.name()
        ),
    };
    out.push(at(
        "database-reclaim-policy-not-retain",
        doc,
        "spec.databaseReclaimPolicy",
        message,
        "set `databaseReclaimPolicy: retain` in spec",
    ));
}

// ---------------------------------------------------------------------------
// Group 11: the empty-archive check

fn empty_wal_check(c: &ClusterDoc<'_>, out: &mut Vec<LintFinding>) {
    if c.cluster.annotation(SKIP_EMPTY_WAL_CHECK) != Some("enabled")
        || c.cluster.recovery().is_some()
    {
        return;
    }
    let method = c
        .cluster
        .spec
        .bootstrap
        .as_ref()
        .map(docs::Bootstrap::methods)
        .and_then(|m| m.first().copied())
        .unwrap_or("initdb");
    let steps = [
        Step::key("metadata"),
        Step::key("annotations"),
        Step::key(SKIP_EMPTY_WAL_CHECK),
    ];
    out.push(in_file(
        "skip-empty-wal-check-without-recovery",
        c.doc.file.clone(),
        line_at(&c.doc.node, &steps),
        format!(
            "{SKIP_EMPTY_WAL_CHECK}: enabled on Cluster {}, which bootstraps with {method}, \
             not from a recovery: the check only matters when a restore starts archiving, and \
             skipping it lets two histories mix in one server folder",
            c.label()
        ),
        "remove the annotation; when re-cloning, give the new Cluster its own write serverName \
         instead of skipping the check",
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_steps() {
        assert_eq!(
            path_steps("spec.externalClusters[0].plugin.name"),
            [
                Step::key("spec"),
                Step::key("externalClusters"),
                Step::Index(0),
                Step::key("plugin"),
                Step::key("name"),
            ]
        );
        assert_eq!(
            path_steps("metadata.annotations.cnpg.io/volumeSnapshotDeadline"),
            [
                Step::key("metadata"),
                Step::key("annotations"),
                Step::key("cnpg.io/volumeSnapshotDeadline"),
            ]
        );
        assert_eq!(
            path_steps("metadata.labels[app.kubernetes.io/name]"),
            [
                Step::key("metadata"),
                Step::key("labels"),
                Step::key("app.kubernetes.io/name"),
            ]
        );
        assert!(path_steps("").is_empty());
        assert_eq!(explain_path("spec.plugins[0].name"), "spec.plugins.name");
    }

    #[test]
    fn chart_versions_map_to_operator_versions() {
        assert_eq!(chart_operator("0.23.2"), Some((1, 25)));
        assert_eq!(chart_operator("0.24.0"), Some((1, 26)));
        assert_eq!(chart_operator("0.25.0"), Some((1, 26)));
        assert_eq!(chart_operator("0.26.1"), Some((1, 27)));
        assert_eq!(chart_operator("0.29.x"), Some((1, 30)));
        assert_eq!(chart_operator(">=0.27.0"), Some((1, 28)));
        assert_eq!(chart_operator("1.0.0"), None);
    }

    #[test]
    fn create_extension_vector_is_recognised() {
        assert!(creates_vector("CREATE EXTENSION vector;"));
        assert!(creates_vector("create extension if not exists \"vector\""));
        assert!(creates_vector("CREATE EXTENSION IF NOT EXISTS vector"));
        assert!(!creates_vector("CREATE EXTENSION vectorscale;"));
        assert!(!creates_vector("CREATE EXTENSION pg_trgm;"));
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(human_duration(3600), "1h");
        assert_eq!(human_duration(86_400), "1d");
        assert_eq!(human_duration(5400), "90m");
        assert_eq!(human_duration(61), "61s");
    }

    #[test]
    fn every_rule_is_in_this_table() {
        for r in RULES {
            assert!(
                r.group == 0 || [5, 6, 7, 10, 11].contains(&r.group),
                "{}",
                r.id
            );
        }
    }
}
