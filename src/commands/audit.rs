//! `cnpg-ops audit`: every database in the repository, its catalog read and
//! judged, the buckets' configuration judged against the catalogs in them,
//! the destination paths checked for orphan and nested folders.
//!
//! A database whose catalog cannot be read is a finding with the store's
//! error as evidence; the audit of the others goes on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, stream};
use serde::Serialize;
use serde_json::json;

use crate::audit::bucket::{self, BucketConfig, CatalogUse};
use crate::audit::live::{self, LiveState};
use crate::audit::prefixes::{self, DestinationView, normalise};
use crate::audit::{
    self, AuditFinding, DatabaseMetrics, RunInfo, Scope, Thresholds, audit_catalog,
};
use crate::catalog::analysis::{AnalysisOptions, Catalog};
use crate::catalog::findings::Severity;
use crate::cli::{AuditArgs, GlobalArgs, OutputFormat};
use crate::commands::ls::load_repo;
use crate::exit::{FINDINGS, Failure, OK};
use crate::gitops::discover::{self, Database};
use crate::k8s;
use crate::output::{Printer, text};
use crate::runbook::playbook::parse_duration;
use crate::store::{Location, Store, StoreOptions};

/// Version tag of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// One database's result.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseReport {
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// Namespace.
    pub namespace: String,
    /// Cluster.
    pub cluster: String,
    /// `destinationPath/serverName`, when backups are configured.
    pub catalog: Option<String>,
    /// The numbers.
    pub metrics: DatabaseMetrics,
    /// Objects listed.
    pub objects: Option<usize>,
    /// What the Kubernetes API reported, when a context was read.
    pub live: Option<LiveState>,
}

/// `audit -o json`.
#[derive(Debug, Serialize)]
pub struct AuditJson {
    /// Document version.
    pub schema_version: u32,
    /// Repository root.
    pub repo: std::path::PathBuf,
    /// What "now" was.
    pub now: DateTime<Utc>,
    /// How long the audit took, in seconds.
    pub duration_seconds: f64,
    /// Per database.
    pub databases: Vec<DatabaseReport>,
    /// Buckets whose configuration was read.
    pub buckets: Vec<BucketConfig>,
    /// Every finding, worst first.
    pub findings: Vec<AuditFinding>,
    /// Counts by severity.
    pub summary: Summary,
}

/// Counts by severity.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Error-level findings.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Notes.
    pub info: usize,
}

impl Summary {
    fn of(findings: &[AuditFinding]) -> Summary {
        let n = |s| findings.iter().filter(|f| f.severity == s).count();
        Summary {
            errors: n(Severity::Error),
            warnings: n(Severity::Warning),
            info: n(Severity::Info),
        }
    }
}

/// The steps of `playbooks/audit.toml`, in the order this command takes them.
const STEPS: [&str; 5] = [
    "locate-databases",
    "read-catalogs",
    "read-bucket-config",
    "read-live-status",
    "report-findings",
];

/// The title the audit playbook gives a step, for progress messages.
fn title(action: &str) -> String {
    crate::runbook::playbook::get("audit")
        .and_then(|b| b.steps.into_iter().find(|s| s.action == action))
        .map_or_else(|| action.to_owned(), |s| s.title)
}

/// A store, the databases that archive there, and the server folders it
/// lists (`None` when the destination could not be listed).
type Opened<'a> = (Store, Vec<&'a Target<'a>>, Option<Vec<String>>);

/// A bucket: provider, name, endpoint.
type BucketKey = (String, String, Option<String>);

/// A database with a catalog, and how to reach it.
struct Target<'a> {
    db: &'a Database,
    destination: String,
    server: String,
    endpoint: Option<String>,
}

/// What reading one database's catalog gave.
struct Read {
    catalog: Option<Catalog>,
    objects: Option<usize>,
    findings: Vec<AuditFinding>,
}

fn db_finding(
    db: &Database,
    id: &'static str,
    severity: Severity,
    location: Option<String>,
    message: String,
    evidence: serde_json::Value,
    hint: Option<String>,
) -> AuditFinding {
    AuditFinding {
        id,
        severity,
        scope: Scope::Database,
        env: Some(db.env.clone()),
        svc: Some(db.svc.clone()),
        location,
        subject: db.cluster.clone(),
        message,
        evidence,
        hint,
    }
}

/// The store of one destination path.
fn open(destination: &str, endpoint: Option<&String>, a: &AuditArgs) -> Result<Store, Failure> {
    let location =
        Location::parse(destination, None).map_err(|e| Failure::usage(e.to_string(), None))?;
    let options = StoreOptions {
        endpoint_url: endpoint.cloned(),
        concurrency: usize::from(a.concurrency),
        ..StoreOptions::default()
    };
    Store::open(location, options).map_err(Failure::from)
}

/// Lists and analyses one catalog.
async fn read_one(
    t: &Target<'_>,
    store: &Store,
    servers: Option<&[String]>,
    now: DateTime<Utc>,
    thresholds: &Thresholds,
) -> Read {
    let display = format!("{}/{}", normalise(&t.destination), t.server);
    let missing = |servers: &[String]| Read {
        catalog: None,
        objects: None,
        findings: vec![db_finding(
            t.db,
            "catalog-missing",
            Severity::Error,
            Some(display.clone()),
            format!("no catalog at {display}/: no base/ or wals/ folder there"),
            json!({"destination": normalise(&t.destination), "server": t.server,
                   "servers_found": servers}),
            Some(if servers.is_empty() {
                "nothing has been archived: check the Cluster's ContinuousArchiving condition, the identity binding and the destinationPath".to_owned()
            } else {
                format!(
                    "the folders found are {}; check serverName (CloudNativePG: the plugin's serverName parameter, else the cluster name)",
                    servers.join(", ")
                )
            }),
        )],
    };
    if let Some(servers) = servers
        && !servers.contains(&t.server)
    {
        return missing(servers);
    }
    match store.read_catalog(&t.server, &|_| {}).await {
        // The destination could not be listed, and nothing is under the server folder.
        Ok(input) if servers.is_none() && input.listing.is_empty() => missing(&[]),
        Ok(input) => {
            let catalog = Catalog::analyse(&input, AnalysisOptions::at(now));
            let findings = audit_catalog(t.db, &catalog, thresholds);
            Read {
                objects: Some(input.listing.len()),
                catalog: Some(catalog),
                findings,
            }
        }
        Err(e) => Read {
            catalog: None,
            objects: None,
            findings: vec![unreadable(t.db, &display, Failure::from(e))],
        },
    }
}

fn unreadable(db: &Database, display: &str, f: Failure) -> AuditFinding {
    db_finding(
        db,
        "catalog-unreadable",
        Severity::Error,
        Some(display.to_owned()),
        format!("cannot read the catalog at {display}: {}", f.message),
        json!({"catalog": display, "error": f.message, "exit_code": f.code}),
        f.hint.or_else(|| {
            Some(
                "check the credentials the audit runs with and the bucket's permissions".to_owned(),
            )
        }),
    )
}

/// The base backup the window's oldest point needs, and when its data was written.
fn anchor_of(db: &Database, c: &Catalog) -> Option<(String, DateTime<Utc>)> {
    audit::anchor(c, audit::window(db))
        .and_then(|b| Some((b.id.clone(), b.begin_time.or(b.end_time)?)))
}

/// Runs `audit`.
pub async fn run(a: &AuditArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let started = Instant::now();
    let zone = super::zone(g)?;
    let now = super::now(a.now.as_deref(), zone)?;
    let wal_max_age = parse_duration(&a.wal_max_age)
        .map_err(|e| Failure::usage(format!("--wal-max-age: {e}"), None))?;
    if !(a.backup_grace.is_finite() && a.backup_grace >= 1.0) {
        return Err(Failure::usage(
            format!(
                "--backup-grace {} is not a factor of at least 1",
                a.backup_grace
            ),
            None,
        ));
    }
    let thresholds = Thresholds {
        wal_max_age: Duration::from_std(wal_max_age).unwrap_or(Duration::hours(1)),
        backup_grace: a.backup_grace,
    };
    if let Some(path) = &a.textfile {
        check_textfile_dir(path)?;
    }

    let repo = load_repo(g)?;
    if let Some(c) = &a.context
        && a.env.is_none()
        && !a.no_live
    {
        p.warn(&format!(
            "--context {c} is read for every env's databases; add --env to compare only the env that cluster runs"
        ));
    }
    let found = discover::discover(&repo);
    let refs = discover::catalog_references(&repo);
    let keep = |env: &str, svc: &str| {
        a.env.as_deref().is_none_or(|e| e == env) && a.svc.as_deref().is_none_or(|s| s == svc)
    };
    let dbs: Vec<&Database> = found
        .databases
        .iter()
        .filter(|d| keep(&d.env, &d.svc))
        .collect();
    let problems: Vec<_> = found
        .problems
        .iter()
        .filter(|d| keep(&d.env, &d.svc))
        .collect();
    if dbs.is_empty() && problems.is_empty() {
        let known: Vec<String> = found
            .databases
            .iter()
            .map(|d| format!("{}/{}", d.env, d.svc))
            .collect();
        return Err(Failure::usage(
            format!("no database to audit in {}", repo.root.display()),
            Some(if known.is_empty() {
                "no database folders were found; check `databases` in .cnpg-ops.toml".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            }),
        ));
    }

    let mut findings: Vec<AuditFinding> = Vec::new();
    let mut reports: BTreeMap<(String, String), DatabaseReport> = BTreeMap::new();
    for pr in &problems {
        // Still a row in the metrics, so that the folder does not drop out of monitoring.
        reports.insert(
            (pr.env.clone(), pr.svc.clone()),
            DatabaseReport {
                env: pr.env.clone(),
                svc: pr.svc.clone(),
                namespace: String::new(),
                cluster: String::new(),
                catalog: None,
                metrics: DatabaseMetrics::unknown(&pr.env, &pr.svc),
                objects: None,
                live: None,
            },
        );
        findings.push(AuditFinding {
            id: "database-unreadable",
            severity: Severity::Warning,
            scope: Scope::Database,
            env: Some(pr.env.clone()),
            svc: Some(pr.svc.clone()),
            location: None,
            subject: pr.at.clone(),
            message: format!("{} ({})", pr.message, pr.at),
            evidence: json!({"problem": pr.code, "at": pr.at}),
            hint: Some("fix the manifests; until then this database is not audited".to_owned()),
        });
    }

    // Databases with a catalog, grouped by destination path and endpoint.
    let mut groups: BTreeMap<(String, Option<String>), Vec<Target>> = BTreeMap::new();
    for db in &dbs {
        let report = DatabaseReport {
            env: db.env.clone(),
            svc: db.svc.clone(),
            namespace: db.namespace.clone(),
            cluster: db.cluster.clone(),
            catalog: db
                .catalog
                .as_ref()
                .map(|c| format!("{}/{}", normalise(&c.destination_path), c.server_name)),
            metrics: DatabaseMetrics::unread(db),
            objects: None,
            live: None,
        };
        reports.insert((db.env.clone(), db.svc.clone()), report);
        let Some(c) = &db.catalog else {
            findings.push(db_finding(
                db,
                "catalog-not-configured",
                Severity::Warning,
                None,
                if db.backup_model == discover::BackupModel::None {
                    format!(
                        "Cluster {} has no backup configuration: nothing is archived and nothing can be restored",
                        db.cluster
                    )
                } else {
                    format!(
                        "the backup configuration of Cluster {} does not resolve to a catalog (the ObjectStore its plugin names is not in the repository): the audit cannot read its backups",
                        db.cluster
                    )
                },
                json!({"backup_model": db.backup_model, "cluster_file": db.cluster_file}),
                Some("configure the barman-cloud plugin with an ObjectStore (`cnpg-ops lint` names what is missing)".to_owned()),
            ));
            continue;
        };
        findings.extend(prefixes::nested_by_manifest(db));
        let endpoint = c
            .endpoint_url
            .clone()
            .or_else(|| repo.env(&db.env).endpoint_url.clone())
            .or_else(|| a.endpoint_url.clone());
        groups
            .entry((normalise(&c.destination_path), endpoint.clone()))
            .or_default()
            .push(Target {
                db,
                destination: c.destination_path.clone(),
                server: c.server_name.clone(),
                endpoint,
            });
    }

    let spinner = if p.format == OutputFormat::Text && !a.prometheus {
        p.spinner(&format!("{} ({} database(s))", title(STEPS[1]), dbs.len()))
    } else {
        None
    };

    // Open each destination and list its folders. A destination that cannot be
    // listed is said; its catalogs are still read one by one, since a
    // credential may read a server folder but not list its parent.
    let mut opened: Vec<Opened> = Vec::new();
    let layouts: Vec<_> = stream::iter(groups.iter())
        .map(|((dest, endpoint), targets)| async move {
            let store = match open(dest, endpoint.as_ref(), a) {
                Ok(s) => s,
                Err(f) => return (targets, Err(f)),
            };
            let layout = store.layout().await.map_err(Failure::from);
            (targets, Ok((store, layout)))
        })
        .buffer_unordered(usize::from(a.parallel))
        .collect()
        .await;
    for (targets, result) in layouts {
        let dest = normalise(&targets[0].destination);
        match result {
            Ok((store, Ok(layout))) => {
                let d = layout.discover(&dest);
                let view = DestinationView::new(&dest, d.servers.clone(), d.findings, &refs);
                findings.extend(prefixes::judge(&view));
                opened.push((store, targets.iter().collect(), Some(d.servers)));
            }
            Ok((store, Err(f))) => {
                findings.push(prefixes::unlisted(&dest, &f.message, f.hint.as_deref()));
                opened.push((store, targets.iter().collect(), None));
            }
            Err(f) => {
                for t in targets {
                    let display = format!("{}/{}", normalise(&t.destination), t.server);
                    findings.push(unreadable(t.db, &display, f.clone()));
                }
            }
        }
    }

    // Read every catalog.
    let jobs: Vec<(&Store, &Target, Option<&[String]>)> = opened
        .iter()
        .flat_map(|(s, ts, servers)| ts.iter().map(move |t| (s, *t, servers.as_deref())))
        .collect();
    let reads: Vec<(&Store, &Target, Read)> =
        stream::iter(jobs)
            .map(|(s, t, servers)| async move {
                (s, t, read_one(t, s, servers, now, &thresholds).await)
            })
            .buffer_unordered(usize::from(a.parallel))
            .collect()
            .await;
    if let Some(s) = &spinner {
        s.set_message(title(STEPS[2]));
    }

    // Catalog uses per bucket, for the configuration checks.
    let mut buckets: BTreeMap<BucketKey, (&Store, Vec<CatalogUse>)> = BTreeMap::new();
    let mut catalogs: BTreeMap<(String, String), Catalog> = BTreeMap::new();
    for (store, t, read) in reads {
        findings.extend(read.findings);
        let key = (t.db.env.clone(), t.db.svc.clone());
        if let (Some(c), Some(r)) = (&read.catalog, reports.get_mut(&key)) {
            r.metrics = DatabaseMetrics::from(t.db, c);
            r.objects = read.objects;
        }
        let loc = &store.location;
        let entry = buckets
            .entry((
                loc.provider.to_string(),
                loc.bucket.clone(),
                t.endpoint.clone(),
            ))
            .or_insert((store, Vec::new()));
        entry.1.push(CatalogUse {
            env: t.db.env.clone(),
            svc: t.db.svc.clone(),
            prefix: format!("{}/", loc.server_prefix(&t.server)),
            display: format!("{}/{}", normalise(&t.destination), t.server),
            window: audit::window(t.db),
            interval: audit::interval(t.db),
            anchor: read.catalog.as_ref().and_then(|c| anchor_of(t.db, c)),
        });
        if let Some(c) = read.catalog {
            catalogs.insert(key, c);
        }
    }
    let mut configs = Vec::new();
    if !a.skip_bucket_config {
        let read: Vec<_> = stream::iter(buckets.iter())
            .map(|((_, _, endpoint), (store, uses))| async move {
                (store.bucket_config().await, uses, endpoint)
            })
            .buffer_unordered(usize::from(a.parallel))
            .collect()
            .await;
        for (cfg, uses, endpoint) in read {
            if let Some(mut cfg) = cfg {
                cfg.endpoint.clone_from(endpoint);
                findings.extend(bucket::judge(&cfg, uses, now));
                let rules_read = !cfg
                    .unreadable
                    .iter()
                    .any(|u| u.part == "lifecycle" || u.part == "bucket");
                for u in uses.iter().filter(|_| rules_read) {
                    if let Some(r) = reports.get_mut(&(u.env.clone(), u.svc.clone())) {
                        r.metrics.lifecycle_checked = true;
                    }
                }
                configs.push(cfg);
            }
        }
        configs.sort_by(|x, y| (&x.provider, &x.bucket).cmp(&(&y.provider, &y.bucket)));
    }
    if !a.no_live {
        if let Some(s) = &spinner {
            s.set_message(title(STEPS[3]));
        }
        let (live_findings, states) = read_live(a, &repo, &dbs, &catalogs, &thresholds).await;
        findings.extend(live_findings);
        for (key, state) in states {
            if let Some(r) = reports.get_mut(&key) {
                r.live = Some(state);
            }
        }
    }
    if let Some(s) = &spinner {
        s.finish_and_clear();
    }

    findings.sort_by(|x, y| {
        (
            y.severity,
            x.scope,
            &x.env,
            &x.svc,
            &x.location,
            x.id,
            &x.subject,
        )
            .cmp(&(
                x.severity,
                y.scope,
                &y.env,
                &y.svc,
                &y.location,
                y.id,
                &y.subject,
            ))
    });
    // The same finding reached twice (a bucket shared by two endpoints' names, say).
    let mut seen = std::collections::HashSet::new();
    findings.retain(|f| seen.insert(serde_json::to_string(f).unwrap_or_default()));
    let duration = started.elapsed().as_secs_f64();
    let databases: Vec<DatabaseReport> = reports.into_values().collect();
    let metrics: Vec<DatabaseMetrics> = databases.iter().map(|d| d.metrics.clone()).collect();
    let run = RunInfo {
        finished_at: Utc::now().max(now),
        duration_seconds: duration,
    };
    let exposition = audit::prometheus(&findings, &metrics, run);
    if let Some(path) = &a.textfile {
        write_textfile(path, &exposition)?;
    }
    let summary = Summary::of(&findings);
    if a.prometheus {
        p.out(&exposition);
    } else if p.format == OutputFormat::Json {
        p.json(&AuditJson {
            schema_version: SCHEMA_VERSION,
            repo: repo.root.clone(),
            now,
            duration_seconds: duration,
            databases,
            buckets: configs,
            findings,
            summary,
        });
    } else {
        p.out(&text::audit(p, &databases, &findings, duration));
    }
    let fails = summary.errors > 0 || (a.deny_warnings && summary.warnings > 0);
    Ok(if fails { FINDINGS } else { OK })
}

/// The textfile collector reads `*.prom` files from one folder: refuse a
/// folder that does not exist before doing the work.
fn check_textfile_dir(path: &Path) -> Result<(), Failure> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        return Err(Failure::usage(
            format!(
                "--textfile {}: folder {} does not exist",
                path.display(),
                dir.display()
            ),
            Some("point it at node-exporter's --collector.textfile.directory".to_owned()),
        ));
    }
    Ok(())
}

/// Writes the exposition beside the target and renames it into place, so the
/// collector never reads half a file.
fn write_textfile(path: &Path, body: &str) -> Result<(), Failure> {
    let name = path.file_name().map_or_else(
        || "cnpg-ops.prom".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        Failure::usage(format!("--textfile {}: {e}", path.display()), None)
    };
    std::fs::write(&tmp, body).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Reads the Cluster (and plugin ObjectStore) of every database whose env
/// names a kube context, and judges it against the catalog.
async fn read_live(
    a: &AuditArgs,
    repo: &crate::gitops::repo::Repo,
    dbs: &[&Database],
    catalogs: &BTreeMap<(String, String), Catalog>,
    thresholds: &Thresholds,
) -> (Vec<AuditFinding>, Vec<((String, String), LiveState)>) {
    let mut by_context: BTreeMap<String, Vec<&Database>> = BTreeMap::new();
    for db in dbs {
        let context = a
            .context
            .clone()
            .or_else(|| repo.env(&db.env).kube_context.clone());
        if let Some(c) = context {
            by_context.entry(c).or_default().push(db);
        }
    }
    let mut findings = Vec::new();
    let mut states = Vec::new();
    for (context, dbs) in by_context {
        let unreachable = |db: &Database, e: &k8s::KubeError| {
            db_finding(
                db,
                "live-unreachable",
                Severity::Warning,
                Some(context.clone()),
                format!("cannot compare the live state: {}", e.message),
                json!({"context": context, "error": e.message}),
                Some(e.hint.clone()),
            )
        };
        let client = match k8s::client(&context).await {
            Ok(c) => c,
            Err(e) => {
                findings.extend(dbs.iter().map(|db| unreachable(db, &e)));
                continue;
            }
        };
        let results: Vec<(&Database, Result<LiveState, k8s::KubeError>)> = stream::iter(dbs)
            .map(|db| {
                let client = client.clone();
                let context = context.clone();
                async move {
                    let state = async {
                        let cluster =
                            k8s::cluster_status(&client, &context, &db.namespace, &db.cluster)
                                .await?;
                        let plugin = db.catalog.as_ref().and_then(|c| {
                            c.object_store.clone().map(|s| (s, c.server_name.clone()))
                        });
                        // The Cluster's status stands even when its ObjectStore
                        // cannot be read; that failure is reported on its own.
                        let (mut found, mut window, mut store_error) = (None, None, None);
                        if let Some((store, server)) = plugin.filter(|_| cluster.is_some()) {
                            match k8s::recovery_window(
                                &client,
                                &context,
                                &db.namespace,
                                &store,
                                &server,
                            )
                            .await
                            {
                                Ok(Some(w)) => (found, window) = (Some(true), w),
                                Ok(None) => found = Some(false),
                                Err(e) => store_error = Some(e.message),
                            }
                        }
                        Ok(LiveState {
                            context: context.clone(),
                            cluster,
                            object_store_found: found,
                            object_store_window: window,
                            object_store_error: store_error,
                        })
                    }
                    .await;
                    (db, state)
                }
            })
            .buffer_unordered(usize::from(a.parallel))
            .collect()
            .await;
        for (db, result) in results {
            match result {
                Ok(state) => {
                    let key = (db.env.clone(), db.svc.clone());
                    findings.extend(live::judge(db, &state, catalogs.get(&key), thresholds));
                    states.push((key, state));
                }
                Err(e) => findings.push(unreachable(db, &e)),
            }
        }
    }
    (findings, states)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_takes_the_steps_of_its_playbook() {
        let book = crate::runbook::playbook::get("audit").unwrap();
        let actions: Vec<&str> = book.steps.iter().map(|s| s.action.as_str()).collect();
        assert_eq!(actions, super::STEPS);
        assert!(book.steps.iter().all(|s| s.read_only && !s.destructive));
    }
}
