//! The actions of the runbooks that end in a recovery manifest: `pitr`
//! (a restored Cluster beside the original) and `clone` (a database in
//! another env bootstrapped from the source catalog).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::engine::{Facts, Runbook, StepError, StepOutcome, StepPlan};
use super::live::{self, FluxRef};
use super::playbook::Step;
use crate::catalog::target::{CheckReport, Target as CatalogTarget, TimelineChoice};
use crate::catalog::time::{Zone, format_utc};
use crate::cli::{CatalogArgs, OutputFormat};
use crate::commands::catalog::{Loaded, load};
use crate::exit::{Failure, STORE};
use crate::gitops::changes::{self, ChangeSet, Mode, WriteOptions};
use crate::gitops::discover::{self, Database, Discovery};
use crate::gitops::git::Git;
use crate::gitops::plan::{self, RecoveryRequest};
use crate::gitops::render::Target as RenderTarget;
use crate::gitops::repo::Repo;
use crate::k8s::{CLUSTER, Kube};
use crate::output::Printer;
use crate::store::{Location, Store, StoreOptions};

/// Which runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A restored Cluster beside the original.
    Pitr,
    /// A clone in another env.
    Clone,
    /// An existing clone deleted and recreated from the source catalog.
    Reclone,
}

/// How a runbook that acts on the live cluster reaches it.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Kubeconfig context (default: the destination env's kube_context).
    pub context: Option<String>,
    /// How often to look.
    pub poll: std::time::Duration,
    /// Do not back up the destination before deleting it.
    pub skip_backup: bool,
}

/// Settings of a run, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    /// pitr or clone.
    pub kind: Kind,
    /// Repository root.
    pub root: PathBuf,
    /// The request (envs, services, target for the manifest).
    pub request: RecoveryRequest,
    /// The target for the catalog check.
    pub target: CatalogTarget,
    /// The timeline for the catalog check.
    pub timeline: TimelineChoice,
    /// The target as the user wrote it and as resolved, for messages.
    pub target_words: String,
    /// Zone for messages.
    pub zone: Zone,
    /// Delivery.
    pub write: WriteOptions,
    /// S3 endpoint override.
    pub endpoint_url: Option<String>,
    /// Parallel requests.
    pub concurrency: u16,
    /// "Now" override.
    pub now: Option<String>,
    /// Clone with initdb when the source catalog is unreadable.
    pub fallback_initdb: bool,
    /// The live cluster (reclone).
    pub live: Option<LiveSettings>,
}

/// The run's state, filled step by step.
pub struct RecoveryRun<'p> {
    s: Settings,
    printer: &'p Printer,
    source: Option<Database>,
    loaded: Option<Loaded>,
    /// The verdict for the target, with the WAL read where it needs it.
    exact: Option<CheckReport>,
    report: Option<CheckReport>,
    changes: Option<ChangeSet>,
    catalog_unreadable: Option<String>,
    /// The archive folder proved empty: destination, server, endpoint.
    write_checked: Option<(String, String, Option<String>)>,
    facts: Facts,
    /// The database a reclone recreates.
    dest: Option<Database>,
    kube: Option<Kube>,
    /// The Flux Kustomizations this run suspended (not those it found suspended).
    suspended: Vec<FluxRef>,
    /// The destination Cluster was deleted (this run or an earlier one).
    deleted: bool,
    /// The recovery manifest was written (this run or an earlier one).
    written: bool,
}

const ACTIONS: &[&str] = &[
    "locate-database",
    "check-destination",
    "read-catalog",
    "prove-target",
    "check-write-prefix",
    "write-manifests",
    "print-next-steps",
    "create-backup",
    "suspend-kustomization",
    "delete-cluster",
    "resume-kustomization",
    "wait-cluster-healthy",
];

impl<'p> RecoveryRun<'p> {
    /// A run with nothing done yet.
    #[must_use]
    pub fn new(s: Settings, printer: &'p Printer) -> Self {
        RecoveryRun {
            s,
            printer,
            source: None,
            loaded: None,
            exact: None,
            report: None,
            changes: None,
            catalog_unreadable: None,
            write_checked: None,
            facts: Facts::new(),
            dest: None,
            kube: None,
            suspended: Vec::new(),
            deleted: false,
            written: false,
        }
    }

    fn discovery(&self) -> Result<(Repo, Discovery), StepError> {
        let repo = Repo::load(&self.s.root).map_err(|e| StepError::usage(e.to_string(), None))?;
        let found = discover::discover(&repo);
        Ok((repo, found))
    }

    fn source(&self) -> Result<&Database, StepError> {
        self.source
            .as_ref()
            .ok_or_else(|| StepError::usage("the database was not located", None))
    }

    /// The change set, computed against the working tree.
    fn plan_changes(&self) -> Result<ChangeSet, StepError> {
        let req = self.request_with_backup();
        let result = plan_for(self.s.kind, &self.s.root, &req);
        let set = result.map_err(|e| StepError::usage(e.to_string(), None))?;
        match &self.catalog_unreadable {
            Some(why) => initdb_instead(set, why),
            None => Ok(set),
        }
    }

    /// The request, with the backup the catalog proved pinned when the
    /// operator would choose another one, and the proved timeline.
    fn request_with_backup(&self) -> RecoveryRequest {
        let mut req = self.s.request.clone();
        if let Some(r) = &self.report {
            // For latest, a backup taken after the proof (while the change is
            // in review) would become the operator's choice: always pin.
            if r.requires_backup_id || r.target_kind == "latest" {
                req.backup_id.clone_from(&r.backup_id);
            }
        }
        if self.catalog_unreadable.is_some() {
            req.target = RenderTarget::Latest;
        }
        req
    }
}

fn facts(v: Value) -> Facts {
    match v {
        Value::Object(m) => m,
        _ => Facts::new(),
    }
}

impl Runbook for RecoveryRun<'_> {
    fn actions(&self) -> &'static [&'static str] {
        ACTIONS
    }

    fn plan(&mut self, step: &Step) -> Result<StepPlan, StepError> {
        match step.action.as_str() {
            "prove-target" => {
                if let Some(why) = &self.catalog_unreadable {
                    return Ok(StepPlan {
                        summary: format!("skipped: the source catalog could not be read ({why})"),
                        ..StepPlan::default()
                    });
                }
                let loaded = self
                    .loaded
                    .as_ref()
                    .ok_or_else(|| StepError::usage("the catalog was not read", None))?;
                if let CatalogTarget::Time(t) = self.s.target
                    && t > loaded.now
                {
                    return Err(StepError::usage(
                        format!(
                            "the target {} is in the future (now is {})",
                            format_utc(t),
                            format_utc(loaded.now)
                        ),
                        Some("pass a past time, an LSN, or latest".to_owned()),
                    ));
                }
                let report = self
                    .exact
                    .clone()
                    .unwrap_or_else(|| loaded.catalog.check(&self.s.target, self.s.timeline));
                let refusal = if report.recoverable {
                    unproven_edge(&report, loaded).or_else(|| {
                        self.source
                            .as_ref()
                            .and_then(|d| major_mismatch(&report, loaded, d.image.as_deref()))
                    })
                } else {
                    Some(not_recoverable(&report, &loaded.display))
                };
                let summary = if report.recoverable {
                    format!(
                        "backup {} then WAL {} … {} on timeline {}{}",
                        report.backup_id.as_deref().unwrap_or("?"),
                        report.wal_from.as_deref().unwrap_or("?"),
                        report.wal_to.as_deref().unwrap_or("?"),
                        report
                            .timeline
                            .map_or_else(|| "?".to_owned(), |t| t.to_string()),
                        if report.exact {
                            ""
                        } else {
                            " (time verdict from upload times)"
                        }
                    )
                } else {
                    "not recoverable".to_owned()
                };
                self.report = Some(report);
                Ok(StepPlan {
                    summary,
                    details: Vec::new(),
                    refusal,
                })
            }
            "write-manifests" => {
                let set = match &self.changes {
                    Some(c) => c.clone(),
                    None => self.plan_changes()?,
                };
                let files: Vec<String> = set
                    .changes
                    .iter()
                    .filter(|c| c.differs())
                    .map(|c| c.path.display().to_string())
                    .collect();
                let summary = format!(
                    "commit {} file(s) on branch {}: {}",
                    files.len(),
                    self.s.write.branch,
                    set.subject
                );
                let details = vec![set.unified_diff()];
                self.changes = Some(set);
                Ok(StepPlan {
                    summary,
                    details,
                    refusal: None,
                })
            }
            "delete-cluster" => {
                let dest = self
                    .dest
                    .as_ref()
                    .ok_or_else(|| StepError::usage("the destination was not located", None))?;
                // Nothing is deleted on a guess: the source must be proven and the
                // new archive folder empty first.
                let proven = self.report.as_ref().is_some_and(|r| r.recoverable);
                let refusal = if !proven {
                    Some(StepError::finding(
                        format!(
                            "refusing to delete Cluster {}/{}: the target is not proven recoverable in the source catalog",
                            dest.namespace, dest.cluster
                        ),
                        None,
                    ))
                } else if self.write_checked.is_none() {
                    Some(StepError::finding(
                        format!(
                            "refusing to delete Cluster {}/{}: the new archive folder was not checked empty",
                            dest.namespace, dest.cluster
                        ),
                        None,
                    ))
                } else {
                    None
                };
                Ok(StepPlan {
                    summary: format!(
                        "delete Cluster {}/{} and wait until its pods and PVCs are gone (its data goes with them)",
                        dest.namespace, dest.cluster
                    ),
                    details: Vec::new(),
                    refusal,
                })
            }
            _ => Ok(StepPlan {
                summary: step.title.clone(),
                ..StepPlan::default()
            }),
        }
    }

    async fn apply(&mut self, step: &Step, plan: &StepPlan) -> Result<StepOutcome, StepError> {
        self.apply_action(step, plan).await
    }

    fn preload(&mut self, step: &Step, facts: &Facts) {
        match step.action.as_str() {
            "suspend-kustomization" => self.suspended = flux_refs(facts.get("suspended")),
            "write-manifests" => {
                for (k, v) in facts {
                    self.facts.insert(k.clone(), v.clone());
                }
                self.written = true;
            }
            "delete-cluster" => self.deleted = true,
            _ => {}
        }
    }

    /// Whatever failed after Flux was suspended: say so, and how to resume.
    fn on_failure(&self, _step: &Step, mut e: StepError) -> StepError {
        if self.suspended.is_empty() || e.hint.as_deref().is_some_and(|h| h.contains("SUSPENDED")) {
            return e;
        }
        let names: Vec<String> = self.suspended.iter().map(live::resume_command).collect();
        let note = format!(
            "Flux is SUSPENDED for this database; run the same command again to resume the runbook where it stopped{}, or resume Flux by hand: {}",
            if self.deleted && !self.written {
                " (resuming Flux by hand now recreates the OLD Cluster: the new manifest is not committed)"
            } else if self.deleted {
                " (resume Flux by hand only once the commit is merged, or it recreates the OLD Cluster)"
            } else {
                ""
            },
            names.join("; ")
        );
        e.hint = Some(match e.hint {
            Some(h) => format!("{h}\n{note}"),
            None => note,
        });
        e
    }

    fn resume(&mut self, step: &Step, done: &Facts) -> Result<bool, StepError> {
        Ok(self.resume_step(step, done))
    }
}

impl RecoveryRun<'_> {
    async fn apply_action(
        &mut self,
        step: &Step,
        plan: &StepPlan,
    ) -> Result<StepOutcome, StepError> {
        match step.action.as_str() {
            "locate-database" => self.locate(),
            "check-destination" => self.check_destination(),
            "read-catalog" => self.read_catalog().await,
            "prove-target" => {
                let Some(r) = &self.report else {
                    return Ok(StepOutcome {
                        summary: plan.summary.clone(),
                        ..StepOutcome::default()
                    });
                };
                Ok(StepOutcome {
                    summary: plan.summary.clone(),
                    details: r.reasons.iter().map(|x| format!("  note: {x}")).collect(),
                    facts: facts(json!({
                        "recoverable": r.recoverable,
                        "target": r.target,
                        "backup_id": r.backup_id,
                        "requires_backup_id": r.requires_backup_id,
                        "timeline": r.timeline,
                        "wal_from": r.wal_from,
                        "wal_to": r.wal_to,
                        "exact": r.exact,
                    })),
                })
            }
            "check-write-prefix" => self.check_write_prefix().await,
            "write-manifests" => self.write_manifests(),
            "print-next-steps" => Ok(self.next_steps()),
            "create-backup" => self.backup_destination().await,
            "suspend-kustomization" => self.suspend_flux().await,
            "delete-cluster" => self.delete_destination().await,
            "resume-kustomization" => self.resume_flux().await,
            "wait-cluster-healthy" => self.wait_destination().await,
            other => Err(StepError::usage(format!("unknown action {other}"), None)),
        }
    }

    fn resume_step(&mut self, step: &Step, done: &Facts) -> bool {
        if step.action == "suspend-kustomization" {
            self.suspended = flux_refs(done.get("suspended"));
            return true;
        }
        if step.action != "write-manifests" {
            return true;
        }
        // The commit must still be there, on its branch.
        let branch = done.get("branch").and_then(Value::as_str);
        let commit = done.get("commit").and_then(Value::as_str);
        let still = match (branch, commit, Git::discover(&self.s.root)) {
            (Some(b), Some(c), Ok(git)) => {
                git.resolve_commit(b).ok().flatten().as_deref() == Some(c)
            }
            _ => false,
        };
        if still {
            for (k, v) in done {
                self.facts.insert(k.clone(), v.clone());
            }
        }
        still
    }
}

/// A time verdict rests on upload times: the target is reachable only if a
/// commit follows it in the WAL that exists. When the segment that should
/// hold that commit is the last one before a gap or the newest archived one,
/// nothing the catalog shows proves the commit is there; PostgreSQL would
/// then end with "recovery ended before configured recovery target was
/// reached". Such a target is not committed: an exact LSN is offered instead.
fn unproven_edge(r: &CheckReport, loaded: &Loaded) -> Option<StepError> {
    if r.exact || r.target_kind != "time" {
        return None;
    }
    let cat = &loaded.catalog;
    let last = r
        .wal_to
        .as_deref()
        .and_then(crate::catalog::wal::RawSegmentName::parse)
        .and_then(|n| n.resolve(cat.segment_size))?;
    let next = crate::catalog::wal::SegmentId {
        tli: last.tli,
        segno: last.segno + 1,
    };
    if cat.wal.has(next) {
        return None;
    }
    let head = cat
        .wal
        .timeline(last.tli)
        .and_then(|t| t.segments.last().map(|e| e.segno));
    // The start of that segment is reached whatever it holds.
    let lsn = cat.segment_size.start_lsn(last.segno);
    Some(StepError::finding(
        format!(
            "{} cannot be proved from {}: the commit that ends recovery would have to lie in {}, the last segment before {}, and only the WAL itself can show one there; without it PostgreSQL stops with \"recovery ended before configured recovery target was reached\"",
            r.target,
            loaded.display,
            r.wal_to.as_deref().unwrap_or("?"),
            if head == Some(last.segno) {
                "the end of the archive"
            } else {
                "a gap"
            }
        ),
        Some(format!(
            "an exact target that is proved: --to {lsn} --timeline {}; or an earlier time, or wait until the next segment is archived",
            last.tli
        )),
    ))
}

/// The restored Cluster runs the source's image; a physical backup only
/// starts on the PostgreSQL major that took it (a restore to before an
/// in-place major upgrade needs the old major).
fn major_mismatch(r: &CheckReport, loaded: &Loaded, image: Option<&str>) -> Option<StepError> {
    let backup = loaded.catalog.backup(r.backup_id.as_deref()?)?;
    let backup_major = backup.pg_version? / 10_000;
    let tag = image?.rsplit_once(':')?.1;
    let image_major: u32 = tag.split(['.', '-']).next()?.parse().ok()?;
    (image_major != backup_major).then(|| {
        StepError::finding(
            format!(
                "backup {} was taken by PostgreSQL {backup_major}, but the Cluster's image {} is PostgreSQL {image_major}: a physical restore only starts on the major that took it",
                backup.id,
                image.unwrap_or_default()
            ),
            Some(format!(
                "pick a target after the upgrade; a restore to before it needs a Cluster with a PostgreSQL {backup_major} image, which this command does not pick for you"
            )),
        )
    })
}

fn not_recoverable(r: &CheckReport, display: &str) -> StepError {
    let mut message = format!("{} is not recoverable from {display}", r.target);
    for reason in &r.reasons {
        message.push_str("\n  - ");
        message.push_str(reason);
    }
    if let Some(m) = r.missing_wal.first() {
        let _ = write!(message, "\n  first missing segment: {m}");
    }
    let hint = if r.nearest.is_empty() {
        None
    } else {
        Some(format!(
            "nearest recoverable targets: {}",
            r.nearest
                .iter()
                .map(|n| format!(
                    "--to {} --timeline {} ({})",
                    n.target, n.timeline, n.description
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    };
    StepError::finding(message, hint)
}

impl RecoveryRun<'_> {
    fn locate(&mut self) -> Result<StepOutcome, StepError> {
        let (repo, found) = self.discovery()?;
        let (env, svc) = (&self.s.request.source_env, &self.s.request.source_svc);
        let db = found.find(env, svc).cloned().ok_or_else(|| {
            let known: Vec<String> = found
                .databases
                .iter()
                .map(|d| format!("{}/{}", d.env, d.svc))
                .collect();
            StepError::usage(
                format!(
                    "no database `{svc}` in env `{env}` in {}",
                    self.s.root.display()
                ),
                Some(if known.is_empty() {
                    "no database folders were found; check `databases` in .cnpg-ops.toml".into()
                } else {
                    format!("known: {}", known.join(", "))
                }),
            )
        })?;
        let Some(c) = db.catalog.clone() else {
            return Err(StepError::usage(
                format!(
                    "{env}/{svc}: Cluster {} configures no backups (neither spec.backup.barmanObjectStore nor the barman-cloud plugin with an ObjectStore)",
                    db.cluster
                ),
                Some("run cnpg-ops lint for the details".into()),
            ));
        };
        if self.s.kind == Kind::Clone {
            let dest = &self.s.request.dest_env;
            let known = found.databases.iter().any(|d| &d.env == dest)
                || repo.config.env.contains_key(dest);
            if !known {
                let envs: std::collections::BTreeSet<&str> =
                    found.databases.iter().map(|d| d.env.as_str()).collect();
                return Err(StepError::usage(
                    format!("env `{dest}` is not in the repository"),
                    Some(format!(
                        "known envs: {}; a new env needs an [env.{dest}] section in .cnpg-ops.toml",
                        envs.into_iter().collect::<Vec<_>>().join(", ")
                    )),
                ));
            }
        }
        if self.s.kind == Kind::Reclone {
            let (de, ds) = (&self.s.request.dest_env, &self.s.request.dest_svc);
            let dest = found.find(de, ds).cloned().ok_or_else(|| {
                StepError::usage(
                    format!("no database `{ds}` in env `{de}`: there is nothing to re-clone"),
                    Some(format!(
                        "create it with: cnpg-ops clone {env} {de} --svc {ds}"
                    )),
                )
            })?;
            self.dest = Some(dest);
        }
        let out = StepOutcome {
            summary: format!(
                "{}/{}: Cluster {}/{} archives to {}/{} ({})",
                db.env,
                db.svc,
                db.namespace,
                db.cluster,
                c.destination_path.trim_end_matches('/'),
                c.server_name,
                c.credentials.label()
            ),
            details: Vec::new(),
            facts: facts(json!({
                "env": db.env, "svc": db.svc, "cluster": db.cluster, "namespace": db.namespace,
                "destination_path": c.destination_path, "server_name": c.server_name,
                "endpoint_url": c.endpoint_url, "folder": db.folder,
            })),
        };
        self.source = Some(db);
        Ok(out)
    }

    fn check_destination(&mut self) -> Result<StepOutcome, StepError> {
        let (repo, found) = self.discovery()?;
        let (env, svc) = (&self.s.request.dest_env, &self.s.request.dest_svc);
        let folder = repo.env(env).database_folder(svc);
        if let Some(d) = found.find(env, svc) {
            let how = match &d.recovery {
                Some(r) => format!(
                    "already bootstraps by recovery from {}",
                    r.catalog.as_ref().map_or_else(
                        || r.source.clone(),
                        |c| format!(
                            "{}/{}",
                            c.destination_path.trim_end_matches('/'),
                            c.server_name
                        )
                    )
                ),
                None => format!("was created with {}", d.bootstrap.join("+")),
            };
            return Err(StepError::finding(
                format!(
                    "{env}/{svc} exists: Cluster {}/{} {how}. bootstrap is read only when a Cluster is created, so refreshing it is a re-clone (delete + recreate), not an edit",
                    d.namespace, d.cluster
                ),
                Some(format!(
                    "delete and recreate {env}/{svc} from the source catalog with a new write serverName generation, to {} (the reclone runbook: cnpg-ops playbook show reclone)",
                    self.s.target_words
                )),
            ));
        }
        if repo.root.join(&folder).exists() {
            return Err(StepError::usage(
                format!("{} exists but holds no readable database", folder.display()),
                Some("run cnpg-ops lint on it".into()),
            ));
        }
        Ok(StepOutcome {
            summary: format!(
                "{} does not exist yet: it will be created",
                folder.display()
            ),
            details: Vec::new(),
            facts: facts(json!({"folder": folder, "exists": false})),
        })
    }

    fn catalog_args(&self, dest: &str, server: &str, endpoint: Option<String>) -> CatalogArgs {
        CatalogArgs {
            dest: dest.to_owned(),
            server_name: Some(server.to_owned()),
            endpoint_url: endpoint.or_else(|| self.s.endpoint_url.clone()),
            cloud_provider: None,
            wal_segment_size: None,
            concurrency: self.s.concurrency,
            list_strategy: "auto".to_owned(),
            now: self.s.now.clone(),
            no_wal: false,
            wal_scan_limit: 64,
            s3_keys: None,
        }
    }

    async fn read_catalog(&mut self) -> Result<StepOutcome, StepError> {
        let db = self.source()?.clone();
        let c = db
            .catalog
            .clone()
            .ok_or_else(|| StepError::usage("no catalog", None))?;
        // Only the settings are needed here, not the whole repository again.
        let config = crate::gitops::config::Config::load(&self.s.root)
            .map_err(|e| StepError::usage(e.to_string(), None))?;
        let endpoint = c
            .endpoint_url
            .clone()
            .or_else(|| config.env(&db.env).endpoint_url);
        let args = self.catalog_args(&c.destination_path, &c.server_name, endpoint);
        // Progress of the listing shows only in text mode; events carry the result.
        let quiet = Printer::new(OutputFormat::Json, crate::cli::ColorChoice::Never, 0);
        let printer = if self.printer.format == OutputFormat::Text {
            self.printer
        } else {
            &quiet
        };
        match load(&args, self.s.zone, printer).await {
            Ok(loaded) => {
                let cat = &loaded.catalog;
                let summary = format!(
                    "{}: {} backup(s), {} timeline(s), {} gap(s), {} objects",
                    loaded.display,
                    cat.backups.len(),
                    cat.timelines.len(),
                    cat.gaps.len(),
                    loaded.input.listing.len()
                );
                let f = facts(json!({
                    "catalog": loaded.display,
                    "backups": cat.backups.len(),
                    "gaps": cat.gaps.len(),
                    "objects": loaded.input.listing.len(),
                }));
                // The verdict, read from the WAL where the target needs it.
                let (exact, _) = crate::store::walfetch::WalSource::new(
                    &loaded.store,
                    &loaded.catalog.server,
                    &loaded.catalog,
                )
                .check(
                    &self.s.target,
                    self.s.timeline,
                    &crate::catalog::exact::ExactOptions::default(),
                )
                .await;
                self.exact = Some(exact);
                self.loaded = Some(loaded);
                Ok(StepOutcome {
                    summary,
                    details: Vec::new(),
                    facts: f,
                })
            }
            Err(e) if self.s.fallback_initdb && self.s.kind == Kind::Clone => {
                self.printer.warn(&format!(
                    "the source catalog cannot be read ({}); --fallback-initdb: the clone will start EMPTY with initdb, holding none of the source's data",
                    e.message
                ));
                self.catalog_unreadable = Some(e.message.clone());
                Ok(StepOutcome {
                    summary: format!("UNREADABLE, falling back to initdb: {}", e.message),
                    details: Vec::new(),
                    facts: facts(json!({"catalog_unreadable": e.message})),
                })
            }
            Err(e) => Err(StepError::from(e)),
        }
    }

    /// The folder the restored or cloned Cluster will archive into must be
    /// empty, or its first archive attempt stops on "Expected empty archive".
    async fn check_write_prefix(&mut self) -> Result<StepOutcome, StepError> {
        if self.s.kind == Kind::Reclone && self.written {
            // Checked before the commit; the recreated clone may archive there by now.
            return Ok(StepOutcome {
                summary: "checked empty before the manifest was committed (an earlier run); not checked again".to_owned(),
                ..StepOutcome::default()
            });
        }
        let set = self.plan_changes()?;
        let (dest, server, endpoint) = write_location(
            &self.s.root,
            &set,
            &self.s.request,
            self.s.kind == Kind::Pitr,
        )?;
        self.changes = Some(set);
        self.write_checked = Some((dest.clone(), server.clone(), endpoint.clone()));
        let location =
            Location::parse(&dest, None).map_err(|e| StepError::usage(e.to_string(), None))?;
        let options = StoreOptions {
            endpoint_url: endpoint.or_else(|| self.s.endpoint_url.clone()),
            concurrency: usize::from(self.s.concurrency),
            ..StoreOptions::default()
        };
        let store =
            Store::open(location, options).map_err(|e| StepError::from(Failure::from(e)))?;
        let prefix = store.location.server_prefix(&server);
        let found = store.folders(&prefix).await.map_err(|e| {
            let f = Failure::from(e);
            StepError {
                code: STORE,
                message: format!(
                    "cannot prove that {}/{server}/ is empty: {}",
                    dest.trim_end_matches('/'),
                    f.message
                ),
                hint: f.hint,
            }
        })?;
        if !found.is_empty() {
            return Err(StepError::finding(
                format!(
                    "{}/{server}/ already holds {}: the new Cluster would stop on \"Expected empty archive\"",
                    dest.trim_end_matches('/'),
                    found.into_iter().collect::<Vec<_>>().join(", ")
                ),
                Some(match self.s.kind {
                    Kind::Pitr => "pick another name with --into, or delete that folder if it is an abandoned attempt".into(),
                    Kind::Clone | Kind::Reclone => "set backup_destination for the env in .cnpg-ops.toml to an empty prefix, or delete that folder if it is an abandoned attempt".into(),
                }),
            ));
        }
        Ok(StepOutcome {
            summary: format!("{}/{server}/ is empty", dest.trim_end_matches('/')),
            details: Vec::new(),
            facts: facts(json!({"write_destination": dest, "write_server_name": server})),
        })
    }

    fn write_manifests(&mut self) -> Result<StepOutcome, StepError> {
        let git =
            Git::discover(&self.s.root).map_err(|e| StepError::usage(e.message(), e.hint()))?;
        let top = git
            .root()
            .canonicalize()
            .unwrap_or_else(|_| git.root().to_owned());
        let here = self
            .s
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.s.root.clone());
        let rel = here
            .strip_prefix(&top)
            .map(Path::to_owned)
            .unwrap_or_default();
        let req = self.request_with_backup();
        let kind = self.s.kind;
        let unreadable = self.catalog_unreadable.clone();
        let proved_source = self.source.as_ref().and_then(|d| d.catalog.clone());
        let checked = self.write_checked.clone();
        let outcome = changes::apply(&git, &self.s.write, |r: &Path| {
            let root = r.join(&rel);
            // The commit is made from the base branch: it must name the very
            // catalog that was proved and the archive folder checked empty.
            let base = Repo::load(&root).map_err(|e| e.to_string())?;
            let found = discover::discover(&base);
            let at_base = found
                .find(&req.source_env, &req.source_svc)
                .and_then(|d| d.catalog.clone());
            let same = |a: &discover::CatalogLocation, b: &discover::CatalogLocation| {
                a.destination_path == b.destination_path
                    && a.server_name == b.server_name
                    && a.endpoint_url == b.endpoint_url
            };
            if let (Some(p), Some(b)) = (&proved_source, &at_base) {
                if !same(p, b) {
                    return Err(format!(
                        "the base branch names another source catalog ({}/{}) than the one proved from your working tree ({}/{}); commit or push your change, or update your checkout, then run again",
                        b.destination_path.trim_end_matches('/'),
                        b.server_name,
                        p.destination_path.trim_end_matches('/'),
                        p.server_name
                    ));
                }
            } else if proved_source.is_some() != at_base.is_some() {
                return Err("the base branch does not hold the database as your working tree does; commit or push your change, then run again".to_owned());
            }
            let set = plan_for(kind, &root, &req).map_err(|e| e.to_string())?;
            if let Some(c) = &checked {
                let w =
                    write_location(&root, &set, &req, kind == Kind::Pitr).map_err(|e| e.message)?;
                if &w != c {
                    return Err(format!(
                        "at the base branch the new Cluster would archive to {}/{}, not to {}/{} which was checked empty; commit or push your change, then run again",
                        w.0.trim_end_matches('/'),
                        w.1,
                        c.0.trim_end_matches('/'),
                        c.1
                    ));
                }
            }
            let mut set = match &unreadable {
                Some(why) => initdb_instead(set, why).map_err(|e| e.message)?,
                None => set,
            };
            for c in &mut set.changes {
                c.path = rel.join(&c.path);
            }
            Ok::<_, String>(set)
        });
        // A failed push leaves the commit on its branch: the step is done,
        // and the push is left to the person (the next steps say how).
        let outcome = match outcome {
            Ok(o) => o,
            Err(changes::ApplyError::Git(crate::gitops::git::GitError::PushFailed {
                branch,
                ..
            })) => {
                let commit = git
                    .resolve_commit(&branch)
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                self.printer.warn(&format!(
                    "committed on branch {branch}, but the push failed; push it yourself: git push -u origin {branch}"
                ));
                let f = facts(
                    json!({"branch": branch, "commit": commit, "pushed": false, "push_failed": true}),
                );
                for (k, v) in &f {
                    self.facts.insert(k.clone(), v.clone());
                }
                return Ok(StepOutcome {
                    summary: format!("committed on branch {branch}; the push failed"),
                    details: Vec::new(),
                    facts: f,
                });
            }
            Err(e) => return Err(StepError::usage(e.message(), e.hint())),
        };
        let summary = match (&outcome.commit, outcome.mode) {
            (Some(c), _) => format!(
                "committed {} on branch {} ({} file(s)){}",
                &c.commit[..12.min(c.commit.len())],
                c.branch,
                outcome.files.len(),
                if c.pushed { ", pushed" } else { "" }
            ),
            (None, Mode::Check) if outcome.differs => {
                return Err(StepError::finding(
                    format!(
                        "the repository differs from what would be written: {}",
                        outcome.summary()
                    ),
                    None,
                ));
            }
            _ => outcome.summary(),
        };
        self.written = true;
        let f = facts(json!({
            "branch": outcome.commit.as_ref().map(|c| c.branch.clone()),
            "commit": outcome.commit.as_ref().map(|c| c.commit.clone()),
            "pushed": outcome.commit.as_ref().is_some_and(|c| c.pushed),
            "files": outcome.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "subject": outcome.subject,
        }));
        for (k, v) in &f {
            self.facts.insert(k.clone(), v.clone());
        }
        Ok(StepOutcome {
            summary,
            details: Vec::new(),
            facts: f,
        })
    }

    fn live(&self) -> Result<&LiveSettings, StepError> {
        self.s
            .live
            .as_ref()
            .ok_or_else(|| StepError::usage("this runbook does not reach a cluster", None))
    }

    fn dest(&self) -> Result<Database, StepError> {
        self.dest
            .clone()
            .ok_or_else(|| StepError::usage("the destination was not located", None))
    }

    async fn kube(&mut self) -> Result<Kube, StepError> {
        if let Some(k) = &self.kube {
            return Ok(k.clone());
        }
        let k = live::connect(
            &self.s.root,
            &self.s.request.dest_env,
            self.live()?.context.as_deref(),
        )
        .await?;
        self.kube = Some(k.clone());
        Ok(k)
    }

    /// The Flux Kustomizations that apply the destination's folder, with the
    /// namespace their manifests give (flux-system by default).
    fn dest_flux(&self) -> Result<Vec<FluxRef>, StepError> {
        let dest = self.dest()?;
        let repo = Repo::load(&self.s.root).map_err(|e| StepError::usage(e.to_string(), None))?;
        Ok(dest
            .flux_kustomizations
            .iter()
            .map(|name| {
                let namespace = repo
                    .docs_of("kustomize.toolkit.fluxcd.io", "Kustomization")
                    .find(|d| d.name() == name)
                    .and_then(|d| {
                        d.value
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .unwrap_or_else(|| "flux-system".to_owned());
                FluxRef {
                    namespace,
                    name: name.clone(),
                }
            })
            .collect())
    }

    async fn backup_destination(&mut self) -> Result<StepOutcome, StepError> {
        let dest = self.dest()?;
        let (skip, poll) = {
            let l = self.live()?;
            (l.skip_backup, l.poll)
        };
        if skip {
            return Ok(StepOutcome {
                summary: format!(
                    "skipped (--skip-backup): Cluster {}/{} is deleted without a last backup",
                    dest.namespace, dest.cluster
                ),
                ..StepOutcome::default()
            });
        }
        let kube = self.kube().await?;
        let Some(live_cluster) = kube.get(CLUSTER, &dest.namespace, &dest.cluster).await? else {
            return Ok(StepOutcome {
                summary: format!(
                    "Cluster {}/{} is not in the cluster (deleted by an earlier attempt?): nothing to back up",
                    dest.namespace, dest.cluster
                ),
                ..StepOutcome::default()
            });
        };
        let method = super::backup::live_method(&live_cluster).ok_or_else(|| {
            StepError::finding(
                format!(
                    "Cluster {}/{} has no backups configured, so it cannot be backed up before it is deleted",
                    dest.namespace, dest.cluster
                ),
                Some("pass --skip-backup to delete it without a last backup".to_owned()),
            )
        })?;
        let name =
            super::backup::create_backup(&kube, &dest.namespace, &dest.cluster, method).await?;
        let status = super::backup::wait_for_backup(
            &kube,
            &dest.namespace,
            &dest.cluster,
            &name,
            poll,
            self.printer,
        )
        .await
        .map_err(|mut e| {
            e.hint = Some(format!(
                "{}; or pass --skip-backup to re-clone without a last backup",
                e.hint.unwrap_or_default()
            ));
            e
        })?;
        let id = status
            .get("backupId")
            .and_then(Value::as_str)
            .unwrap_or("?");
        Ok(StepOutcome {
            summary: format!(
                "Backup {}/{name} completed (backup id {id})",
                dest.namespace
            ),
            details: Vec::new(),
            facts: facts(json!({"backup": name, "backup_id": id})),
        })
    }

    async fn suspend_flux(&mut self) -> Result<StepOutcome, StepError> {
        let refs = self.dest_flux()?;
        if refs.is_empty() {
            let dest = self.dest()?;
            self.printer.warn(&format!(
                "no Flux Kustomization applies {}: nothing will recreate the Cluster until the change is applied by hand",
                dest.folder.display()
            ));
            return Ok(StepOutcome {
                summary: "no Flux Kustomization applies the folder: nothing to suspend".to_owned(),
                ..StepOutcome::default()
            });
        }
        let kube = self.kube().await?;
        let dest = self.dest()?;
        let purpose = format!("{}/{}", dest.namespace, dest.cluster);
        let mut already = Vec::new();
        for k in &refs {
            if live::suspend(&kube, k, &purpose).await? {
                already.push(k.to_string());
            } else {
                self.suspended.push(k.clone());
            }
        }
        let names: Vec<String> = refs.iter().map(ToString::to_string).collect();
        Ok(StepOutcome {
            summary: format!(
                "suspended {}{}",
                names.join(", "),
                if already.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} already suspended: left so at the end)",
                        already.join(", ")
                    )
                }
            ),
            details: Vec::new(),
            facts: facts(json!({
                "suspended": self.suspended.iter().map(|k| json!({"namespace": k.namespace, "name": k.name})).collect::<Vec<_>>(),
                "already_suspended": already,
            })),
        })
    }

    async fn delete_destination(&mut self) -> Result<StepOutcome, StepError> {
        let dest = self.dest()?;
        let poll = self.live()?.poll;
        let kube = self.kube().await?;
        // Whatever applies the Cluster must be suspended now, or it recreates
        // the old one: the Kustomization Flux labelled it with, and the ones
        // this run suspended (someone may have resumed them since).
        let live_cluster = kube.get(CLUSTER, &dest.namespace, &dest.cluster).await?;
        let mut owners: Vec<FluxRef> = self.suspended.clone();
        if let Some(owner) = live_cluster.as_ref().and_then(live::flux_owner)
            && !owners.contains(&owner)
        {
            owners.push(owner);
        }
        for k in &owners {
            if !live::is_suspended(&kube, k).await? {
                return Err(StepError::finding(
                    format!(
                        "refusing to delete Cluster {}/{}: Flux Kustomization {k}, which applies it, is not suspended and would recreate the old Cluster",
                        dest.namespace, dest.cluster
                    ),
                    Some(format!(
                        "run the same command again to suspend it, or: flux suspend kustomization {} -n {}",
                        k.name, k.namespace
                    )),
                ));
            }
            if !self.suspended.contains(k) {
                self.printer.warn(&format!(
                    "Flux Kustomization {k} applies this Cluster and was suspended by someone else; it stays suspended at the end"
                ));
            }
        }
        let existed =
            live::delete_cluster(&kube, &dest.namespace, &dest.cluster, poll, self.printer).await?;
        self.deleted = true;
        Ok(StepOutcome {
            summary: if existed {
                format!(
                    "deleted Cluster {}/{}; its pods and PVCs are gone",
                    dest.namespace, dest.cluster
                )
            } else {
                format!(
                    "Cluster {}/{} was already gone, with its pods and PVCs",
                    dest.namespace, dest.cluster
                )
            },
            details: Vec::new(),
            facts: facts(json!({"deleted": existed})),
        })
    }

    /// Flux applies what its source holds: resuming before the new manifest
    /// is there would recreate the old Cluster. The committed files must be on
    /// the base branch (merged, squashed or rebased), and every source Flux
    /// reads them from must serve a revision that holds them.
    async fn resume_flux(&mut self) -> Result<StepOutcome, StepError> {
        let still_suspended = |msg: String, hint: String| StepError::finding(msg, Some(hint));
        let manual: Vec<String> = self.suspended.iter().map(live::resume_command).collect();
        let by_hand = if manual.is_empty() {
            String::new()
        } else {
            format!(
                " (by hand, once it holds the commit: {})",
                manual.join("; ")
            )
        };
        let Some(commit) = self
            .facts
            .get("commit")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return Err(still_suspended(
                "no recovery manifest was committed by this run, so nothing proves Flux would apply one".to_owned(),
                format!("Flux stays SUSPENDED{by_hand}; check the clone's manifests, then run again with --restart"),
            ));
        };
        let branch = self
            .facts
            .get("branch")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let files: Vec<String> = self
            .facts
            .get("files")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let git_err = |e: crate::gitops::git::GitError| StepError {
            code: STORE,
            message: e.message(),
            hint: e.hint(),
        };
        let git = Git::discover(&self.s.root).map_err(git_err)?;
        let base = git
            .base_ref(self.s.write.base.as_deref())
            .map_err(git_err)?;
        let remote_branch = base.name.strip_prefix("origin/").map(str::to_owned);
        if let Some(b) = &remote_branch {
            git.fetch("origin", b).map_err(git_err)?;
        }
        let rev = base.name.clone();
        if git.same_content(&commit, &rev, &files).map_err(git_err)? != Some(true) {
            return Err(still_suspended(
                format!(
                    "the recovery manifest (commit {} on branch {branch}) is not on {rev} yet, which Flux follows: resuming now would recreate the old Cluster",
                    &commit[..12.min(commit.len())]
                ),
                format!(
                    "merge {branch} into {rev}, then run the same command again: the runbook resumes here. Flux stays SUSPENDED until then{by_hand}"
                ),
            ));
        }
        // The source-controller must have fetched it too.
        let kube = self.kube().await?;
        let poll = self.live()?.poll;
        for k in &self.suspended {
            let source = live::git_source(&kube, k).await?;
            live::request_source(&kube, &source).await?;
            loop {
                let served = live::source_revision(&kube, &source).await?;
                let holds = match &served {
                    Some(sha) => {
                        let same = git.same_content(sha, &commit, &files).map_err(git_err)?;
                        if same.is_none()
                            && let Some(b) = &remote_branch
                        {
                            // A revision not fetched here yet.
                            git.fetch("origin", b).map_err(git_err)?;
                        }
                        same == Some(true)
                    }
                    None => false,
                };
                if holds {
                    break;
                }
                self.printer.info(&format!(
                    "waiting for GitRepository {source} to serve the commit (it serves {})",
                    served.as_deref().unwrap_or("nothing yet")
                ));
                tokio::time::sleep(poll).await;
            }
        }
        let mut resumed = Vec::new();
        for k in self.suspended.clone() {
            live::resume(&kube, &k).await?;
            resumed.push(k.to_string());
        }
        self.suspended.clear();
        Ok(StepOutcome {
            summary: if resumed.is_empty() {
                "nothing this run suspended is left to resume".to_owned()
            } else {
                format!("resumed {} and requested a reconcile", resumed.join(", "))
            },
            details: Vec::new(),
            facts: facts(json!({"resumed": resumed})),
        })
    }

    async fn wait_destination(&mut self) -> Result<StepOutcome, StepError> {
        let dest = self.dest()?;
        let poll = self.live()?.poll;
        let kube = self.kube().await?;
        let h =
            live::wait_healthy(&kube, &dest.namespace, &dest.cluster, poll, self.printer).await?;
        Ok(StepOutcome {
            summary: format!("Cluster {}/{}: {}", dest.namespace, dest.cluster, h.line()),
            ..StepOutcome::default()
        })
    }

    fn next_steps(&self) -> StepOutcome {
        let committed = self.facts.get("branch").and_then(Value::as_str);
        let branch = committed.unwrap_or(self.s.write.branch.as_str());
        let pushed = self
            .facts
            .get("pushed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let req = &self.s.request;
        let mut lines = Vec::new();
        if committed.is_none() && self.facts.contains_key("subject") {
            lines
                .push("1. Nothing to commit: the repository already holds this change.".to_owned());
        } else if committed.is_none() {
            lines.push(format!("1. Nothing was committed (dry run); without --dry-run the change goes on branch {branch}."));
        } else if pushed {
            lines.push(format!("1. Open a pull request from {branch}."));
        } else {
            lines.push(format!(
                "1. Push and open a pull request: git push -u origin {branch}"
            ));
        }
        let (what, ns) = match self.s.kind {
            Kind::Pitr => (
                req.dest_cluster.clone().unwrap_or_else(|| {
                    format!(
                        "{}-pitr-{}",
                        self.source.as_ref().map_or("", |d| d.cluster.as_str()),
                        req.label
                    )
                }),
                self.source
                    .as_ref()
                    .map_or_else(String::new, |d| d.namespace.clone()),
            ),
            Kind::Clone | Kind::Reclone => (
                self.source
                    .as_ref()
                    .map_or_else(String::new, |d| d.cluster.clone()),
                format!("the {} namespace", req.dest_env),
            ),
        };
        let backup = self
            .report
            .as_ref()
            .and_then(|r| r.backup_id.clone())
            .unwrap_or_else(|| "the newest backup".into());
        lines.push(format!(
            "2. After the merge Flux applies the folder; CloudNativePG creates Cluster {what} in {ns}, restores backup {backup} and replays WAL up to {}.",
            self.s.target_words
        ));
        if self.catalog_unreadable.is_some() {
            lines.push(
                "   The clone starts EMPTY (initdb): the source catalog could not be read.".into(),
            );
        }
        let ns_flag = match self.s.kind {
            Kind::Pitr => ns.clone(),
            Kind::Clone | Kind::Reclone => "<namespace>".to_owned(),
        };
        lines.push(format!(
            "3. Verify: kubectl cnpg status {what} -n {ns_flag} shows \"Cluster in healthy state\" and ContinuousArchiving True; the {what}-1-full-recovery job's log ends with the recovery target reached."
        ));
        StepOutcome {
            summary: format!("branch {branch}"),
            details: lines.into_iter().map(|l| format!("  {l}")).collect(),
            facts: Facts::new(),
        }
    }
}

/// The change set of a runbook: a restore beside the original, a clone into
/// a new folder, a re-clone (or an in-place restore) of an existing Cluster.
fn plan_for(kind: Kind, root: &Path, req: &RecoveryRequest) -> Result<ChangeSet, plan::PlanError> {
    let in_place = req.source_env == req.dest_env && req.source_svc == req.dest_svc;
    match kind {
        Kind::Reclone if in_place => plan::recovery_in_place(root, req),
        Kind::Pitr | Kind::Reclone => plan::recovery(root, req),
        Kind::Clone => clone_plan(root, req),
    }
}

/// The change set of a clone into a new folder.
fn clone_plan(root: &Path, req: &RecoveryRequest) -> Result<ChangeSet, plan::PlanError> {
    crate::gitops::scaffold::new_database(root, req)
}

/// `--fallback-initdb`: the clone's Cluster bootstraps empty with initdb
/// (same application database and owner) instead of recovering from the
/// unreadable source catalog; the read-only source entry goes away.
fn initdb_instead(mut set: ChangeSet, why: &str) -> Result<ChangeSet, StepError> {
    use crate::yaml::{Step as Key, edit::Editor};
    let mut changed = false;
    for c in &mut set.changes {
        let Some(text) = c.after.clone() else {
            continue;
        };
        let Ok(docs) = crate::yaml::parse_values(&text) else {
            continue;
        };
        for (i, d) in docs.iter().enumerate() {
            let recovery = &d["spec"]["bootstrap"]["recovery"];
            if d["kind"] != "Cluster" || !recovery.is_object() {
                continue;
            }
            let mut initdb = serde_json::Map::new();
            for k in ["database", "owner", "secret"] {
                if let Some(v) = recovery.get(k) {
                    initdb.insert(k.to_owned(), v.clone());
                }
            }
            let source = recovery["source"].as_str().unwrap_or_default().to_owned();
            let mut e = Editor::new(c.after.clone().unwrap_or_default());
            let err = |x: crate::yaml::edit::EditError| StepError::usage(x.to_string(), None);
            e.set(
                i,
                &[Key::key("spec"), Key::key("bootstrap")],
                &json!({"initdb": initdb}),
            )
            .map_err(err)?;
            let others: Vec<Value> = d["spec"]["externalClusters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["name"] != source.as_str())
                .cloned()
                .collect();
            if others.is_empty() {
                e.remove(i, &[Key::key("spec"), Key::key("externalClusters")])
                    .map_err(err)?;
            } else {
                e.set(
                    i,
                    &[Key::key("spec"), Key::key("externalClusters")],
                    &Value::Array(others),
                )
                .map_err(err)?;
            }
            c.after = Some(e.finish());
            changed = true;
        }
    }
    if !changed {
        return Err(StepError::usage(
            "no recovery Cluster to turn into initdb",
            None,
        ));
    }
    set.subject = format!("{} (EMPTY: initdb, source catalog unreadable)", set.subject);
    set.body = format!(
        "The source catalog could not be read ({why}), so this clone starts EMPTY with\n\
         initdb (--fallback-initdb). It holds none of the source's data.\n\n{}",
        set.body
    );
    Ok(set)
}

/// Where the new Cluster in `set` archives: read from the rendered files,
/// with the repository's other files around them.
fn write_location(
    root: &Path,
    set: &ChangeSet,
    req: &RecoveryRequest,
    beside: bool,
) -> Result<(String, String, Option<String>), StepError> {
    let repo = Repo::load(root).map_err(|e| StepError::usage(e.to_string(), None))?;
    let mut files: Vec<(String, String)> = Vec::new();
    for rel in &repo.files {
        let changed = set.changes.iter().find(|c| c.path == *rel);
        let text = match changed {
            Some(c) => c.after.clone().unwrap_or_default(),
            None => repo.read(rel).unwrap_or_default(),
        };
        files.push((rel.display().to_string(), text));
    }
    for c in &set.changes {
        if !repo.files.contains(&c.path) {
            files.push((
                c.path.display().to_string(),
                c.after.clone().unwrap_or_default(),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let virtual_repo = Repo::from_files(root, repo.config.clone(), &refs);
    let found = discover::discover(&virtual_repo);
    let db = found
        .find(&req.dest_env, &req.dest_svc)
        .ok_or_else(|| StepError::usage("the rendered database cannot be read back", None))?;
    // Beside the original, the restored Cluster is one of the folder's others.
    let cluster = match &req.dest_cluster {
        Some(n) if n != &db.cluster => Some(n.clone()),
        _ if beside => Some(format!("{}-pitr-{}", db.cluster, req.label)),
        _ => None,
    };
    let c = db
        .catalog
        .as_ref()
        .ok_or_else(|| StepError::usage("the rendered database archives nowhere", None))?;
    Ok(match cluster {
        // A restore beside the original writes to the same store under its own name.
        Some(name) => (c.destination_path.clone(), name, c.endpoint_url.clone()),
        None => (
            c.destination_path.clone(),
            c.server_name.clone(),
            c.endpoint_url.clone(),
        ),
    })
}

/// Builds the request and target for `pitr`.
pub fn target_for(
    to: &str,
    zone: Zone,
) -> Result<(CatalogTarget, RenderTarget, String, String), Failure> {
    use crate::catalog::time::parse_target;
    if to.eq_ignore_ascii_case("latest") {
        return Ok((
            CatalogTarget::Latest,
            RenderTarget::Latest,
            "latest".into(),
            "latest".into(),
        ));
    }
    if let Some(t) = CatalogTarget::parse_wal_placed(to) {
        let t = t.map_err(|e| Failure::usage(format!("--to: {e}"), None))?;
        return Ok(match &t {
            CatalogTarget::Xid(x) => (
                t.clone(),
                RenderTarget::Xid(x.to_string()),
                format!("transaction {x}"),
                format!("xid-{x}"),
            ),
            CatalogTarget::Name(n) => {
                // A label for the Cluster name: lowercase letters, digits and '-'.
                let mut label: String = n
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '-'
                        }
                    })
                    .collect();
                label.truncate(20);
                let label = label.trim_matches('-').to_owned();
                (
                    t.clone(),
                    RenderTarget::Name(n.clone()),
                    format!("restore point {n}"),
                    if label.is_empty() {
                        "name".to_owned()
                    } else {
                        format!("rp-{label}")
                    },
                )
            }
            _ => unreachable!("parse_wal_placed returns xid and name targets only"),
        });
    }
    if to.contains('/') && !to.contains('-') {
        let lsn: crate::catalog::wal::Lsn = to
            .parse()
            .map_err(|e| Failure::usage(format!("--to: {e}"), None))?;
        let label = format!("lsn-{}", lsn.to_string().replace('/', "-").to_lowercase());
        return Ok((
            CatalogTarget::Lsn(lsn),
            RenderTarget::Lsn(lsn.to_string()),
            lsn.to_string(),
            label,
        ));
    }
    let resolved = parse_target(to, zone).map_err(|e| {
        Failure::usage(
            format!("--to: {e}"),
            Some("examples: 2024-05-01T10:00:00Z, '2024-05-01 10:00' (read in --tz), 0/3000028, latest".into()),
        )
    })?;
    let utc = resolved.utc();
    let fixed = resolved.at;
    let label = utc.format("%Y%m%dt%H%M%S").to_string();
    Ok((
        CatalogTarget::Time(utc),
        RenderTarget::Time(fixed),
        crate::gitops::render::target_time(&fixed),
        label,
    ))
}

/// The Flux Kustomizations a journal recorded.
fn flux_refs(v: Option<&Value>) -> Vec<FluxRef> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|k| {
                    Some(FluxRef {
                        namespace: k.get("namespace")?.as_str()?.to_owned(),
                        name: k.get("name")?.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}
