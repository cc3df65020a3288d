//! `cnpg-ops verify`: the checks a careful operator runs on a live database
//! after a deploy, or when "the app can't read data", judged from facts the
//! command gathered (the Kubernetes API, commands run in the primary, the
//! bucket). Free of IO.
//!
//! Each check passes or fails with its evidence. Failures are then placed on
//! the chain that explains most backup incidents, in order:
//!
//! identity binding → bucket permissions → archiving failing → WAL piling up
//! on the PVC → CrashLoop
//!
//! and the earliest failing link is named as the likely cause, with its fix;
//! the later failures are its consequences.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::k8s::exec::ExecOutput;

/// A link of the failure chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// The pods cannot prove who they are to the store.
    Identity,
    /// They can, but may not read or write the bucket (or it is not there).
    BucketPermissions,
    /// WAL archiving fails.
    ArchiveFailing,
    /// Unarchived WAL accumulates on the PVC.
    WalPilingUp,
    /// PostgreSQL cannot start (often: pg_wal full).
    CrashLoop,
}

impl Link {
    /// How the link reads in a sentence.
    #[must_use]
    pub fn words(self) -> &'static str {
        match self {
            Link::Identity => "identity binding",
            Link::BucketPermissions => "bucket permissions",
            Link::ArchiveFailing => "WAL archiving failing",
            Link::WalPilingUp => "WAL piling up on the PVC",
            Link::CrashLoop => "instances crash-looping",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// As it should be.
    Pass,
    /// Not as it should be.
    Fail,
    /// Worth a look, not a failure.
    Warn,
    /// Not run (said why).
    Skip,
}

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id.
    pub id: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found, one line.
    pub summary: String,
    /// The facts behind it.
    pub evidence: Value,
    /// The chain link a failure stands for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// How to fix a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The likely cause of the failures.
#[derive(Debug, Clone, Serialize)]
pub struct Cause {
    /// The earliest failing link.
    pub link: Link,
    /// The check that shows it.
    pub check: &'static str,
    /// The failing checks that follow from it.
    pub consequences: Vec<&'static str>,
    /// What to do.
    pub fix: String,
}

/// The whole verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `<env>/<svc>`.
    pub database: String,
    /// `<namespace>/<cluster>`.
    pub cluster: String,
    /// The kubeconfig context.
    pub context: String,
    /// Every check, in the order run.
    pub checks: Vec<Check>,
    /// The likely cause, when something failed.
    pub cause: Option<Cause>,
}

impl Report {
    /// Whether any check failed.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }
}

/// How the pods authenticate, as the repository and the API say.
#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// GKE Workload Identity.
    Gke {
        /// The Google service account the Cluster's manifest names.
        expected: Option<String>,
        /// The annotation on the Kubernetes ServiceAccount `<cluster>` (outer
        /// None: the ServiceAccount is not there).
        annotated: Option<Option<String>>,
        /// Whether the repository binds `<namespace>/<cluster>` to it (None:
        /// the bindings file is not in the repository).
        bound: Option<bool>,
        /// Where the bindings are declared.
        bindings_file: String,
    },
    /// S3 keys in a Secret.
    S3Secret {
        /// The Secret.
        secret: String,
        /// The keys it must hold.
        keys: Vec<String>,
        /// The keys it holds (None: no such Secret).
        present: Option<Vec<String>>,
        /// Keys whose value is still a `<placeholder>` as `cnpg-ops new`
        /// writes it.
        placeholders: Vec<String>,
    },
    /// Anything else (IAM role, Azure, a key file): not checked.
    Other(String),
}

/// What the bucket showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// `<destination>/<server>`.
    pub catalog: String,
    /// The newest archived segment and when it was uploaded.
    pub newest_wal: Option<(String, DateTime<Utc>)>,
    /// The newest DONE backup and when it ended.
    pub newest_backup: Option<(String, DateTime<Utc>)>,
    /// Gaps in the WAL: (first missing, last missing, breaks recovery).
    pub gaps: Vec<(String, String, bool)>,
}

/// The in-pod archive test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveTest {
    /// Not run, and why.
    NotRun(String),
    /// It could not be run (exec failed, a Secret is missing).
    Failed(String),
    /// It ran.
    Ran(ExecOutput),
}

/// Usage of one mounted volume (`df`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// Bytes used.
    pub used: u64,
    /// Bytes in all.
    pub size: u64,
}

/// Everything the checks judge.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// Namespace.
    pub namespace: String,
    /// Cluster name.
    pub cluster: String,
    /// Context.
    pub context: String,
    /// The time of the verification.
    pub now: DateTime<Utc>,
    /// The Cluster object (None: not in the API).
    pub cluster_obj: Option<Value>,
    /// Its instance pods.
    pub pods: Vec<Value>,
    /// Its PVCs.
    pub pvcs: Vec<Value>,
    /// Its Backups.
    pub backups: Vec<Value>,
    /// Its ScheduledBackups.
    pub scheduled: Vec<Value>,
    /// The identity half.
    pub identity: Identity,
    /// The bucket (Err: could not be read).
    pub bucket: Option<Result<Bucket, String>>,
    /// The primary's volumes (Err: df failed).
    pub disks: Option<Result<Vec<Disk>, String>>,
    /// Segments waiting in pg_wal/archive_status (`.ready`).
    pub ready_wal: Option<Result<u64, String>>,
    /// `barman-cloud-wal-archive --test`.
    pub archive_test: ArchiveTest,
    /// `pg_switch_wal()` (asked with --switch-wal).
    pub switch_wal: Option<Result<ExecOutput, String>>,
    /// ContinuousArchiving before the switch, and how long was waited for
    /// it to turn True (`cluster_obj` is the last read).
    pub switch_wait: Option<(Option<String>, Duration)>,
    /// Whether the repository declares pgvector for the database.
    pub vector_declared: bool,
    /// The `vector` extension query.
    pub vector: Option<Result<ExecOutput, String>>,
    /// The application database and owner.
    pub app: (String, String),
    /// `SELECT 1` as the application owner.
    pub app_select: Option<Result<ExecOutput, String>>,
    /// The newest WAL may be at most this old.
    pub wal_max_age: Duration,
}

/// `.ready` segments from which WAL counts as piling up.
pub const READY_PILING: u64 = 16;
/// Volume use (percent) that is a warning, and a failure.
pub const DISK_WARN: u64 = 80;
/// See [`DISK_WARN`].
pub const DISK_FAIL: u64 = 95;

/// The healthy phase.
const HEALTHY: &str = "Cluster in healthy state";

fn check(id: &'static str, status: Status, summary: String, evidence: Value) -> Check {
    Check {
        id,
        status,
        summary,
        evidence,
        link: None,
        fix: None,
    }
}

impl Check {
    fn failing(mut self, link: Link, fix: impl Into<String>) -> Check {
        self.link = Some(link);
        self.fix = Some(fix.into());
        self
    }
}

/// The condition `kind` of a Cluster object.
#[must_use]
pub fn condition<'v>(cluster: &'v Value, kind: &str) -> Option<&'v Value> {
    cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c["type"] == kind)
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// HTTP statuses as the cloud SDKs print them: `403 GET https://…`,
/// `(403)`, `status code: 403`, `HTTP 403`.
static HTTP_STATUS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)\b(40[134])\b (?:GET|POST|PUT|HEAD|DELETE|PATCH|Forbidden|Unauthorized|Not Found)|\((40[134])\)|status(?: code)?:? (40[134])\b|HTTP(?:/[0-9.]+)? (40[134])\b",
    )
    .expect("valid regex")
});

/// Credentials and access problems in barman-cloud's output.
fn classify_store_error(out: &str) -> Option<Link> {
    let o = out.to_ascii_lowercase();
    let identity = [
        "could not automatically determine credentials",
        "defaultcredentialserror",
        "nocredentialserror",
        "unable to locate credentials",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "unauthenticated",
        "gke_metadata_server",
        "failed to retrieve http://metadata",
        "workload identity",
        "authenticationfailed",
    ];
    if identity.iter().any(|p| o.contains(p)) {
        return Some(Link::Identity);
    }
    let status = HTTP_STATUS.captures(out).and_then(|c| {
        (1..=4)
            .find_map(|i| c.get(i))
            .map(|m| m.as_str().to_owned())
    });
    if status.as_deref() == Some("401") {
        return Some(Link::Identity);
    }
    let bucket = [
        "accessdenied",
        "access denied",
        "forbidden",
        "does not have storage.",
        "authorizationpermissionmismatch",
        "nosuchbucket",
        "bucket does not exist",
        "containernotfound",
    ];
    (status.is_some() || bucket.iter().any(|p| o.contains(p))).then_some(Link::BucketPermissions)
}

/// Judges the facts.
#[must_use]
pub fn judge(f: &Facts) -> Report {
    let mut checks = Vec::new();
    let what = format!("{}/{}", f.namespace, f.cluster);
    checks.push(identity(f));
    let Some(cluster) = &f.cluster_obj else {
        let mut missing = check(
            "cluster",
            Status::Fail,
            format!("context `{}` has no Cluster {what}", f.context),
            json!({"context": f.context}),
        );
        missing.fix = Some(format!(
            "check the env's Flux Kustomization (flux get kustomizations: suspended or \
             failing?) and that env {} points at the right cluster",
            f.env
        ));
        checks.push(missing);
        return finish(f, checks);
    };
    let phase = text(cluster, "/status/phase");
    let reason = text(cluster, "/status/phaseReason");
    checks.push(if phase == HEALTHY {
        check(
            "cluster-phase",
            Status::Pass,
            format!("Cluster {what}: {phase}"),
            json!({"phase": phase}),
        )
    } else {
        check(
            "cluster-phase",
            Status::Fail,
            format!(
                "Cluster {what} is in phase `{}`{}",
                if phase.is_empty() { "(none)" } else { &phase },
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(": {reason}")
                }
            ),
            json!({"phase": phase, "phaseReason": reason}),
        )
    });
    checks.push(archiving(f, cluster));
    checks.push(instances(f, cluster));
    checks.extend(volumes(f));
    checks.push(backups(f));
    checks.extend(bucket(f));
    checks.push(archive_test(f));
    if let Some(s) = &f.switch_wal {
        let now = condition(cluster, "ContinuousArchiving")
            .and_then(|c| c["status"].as_str())
            .map(str::to_owned);
        checks.push(match s {
            Ok(o) if o.exit_code == 0 => {
                let lsn = o.stdout.trim();
                let (before, waited) = f.switch_wait.clone().unwrap_or((now.clone(), Duration::zero()));
                let ev = json!({"lsn": lsn, "continuous_archiving_before": before,
                                "continuous_archiving_after": now,
                                "waited_seconds": waited.num_seconds()});
                match (before.as_deref(), now.as_deref()) {
                    (Some("True"), _) => check(
                        "switch-wal",
                        Status::Pass,
                        format!(
                            "pg_switch_wal() returned {lsn}; ContinuousArchiving was already True"
                        ),
                        ev,
                    ),
                    (_, Some("True")) => check(
                        "switch-wal",
                        Status::Pass,
                        format!(
                            "pg_switch_wal() returned {lsn}; ContinuousArchiving turned True within \
                             {}: archiving works again",
                            human_age(waited)
                        ),
                        ev,
                    ),
                    _ => check(
                        "switch-wal",
                        Status::Fail,
                        format!(
                            "pg_switch_wal() returned {lsn} but ContinuousArchiving is still {} \
                             after {}: the new segment did not archive either",
                            now.as_deref().unwrap_or("unreported"),
                            human_age(waited)
                        ),
                        ev,
                    )
                    .failing(Link::ArchiveFailing, fix_for(Link::ArchiveFailing, f)),
                }
            }
            Ok(o) => check(
                "switch-wal",
                Status::Fail,
                format!(
                    "pg_switch_wal() failed (exit {}): {}",
                    o.exit_code,
                    o.stderr.trim()
                ),
                json!({"exit_code": o.exit_code, "stderr": o.stderr}),
            ),
            Err(e) => check(
                "switch-wal",
                Status::Fail,
                format!("pg_switch_wal() could not run: {e}"),
                json!({"error": e}),
            ),
        });
    }
    if f.vector_declared {
        checks.push(vector(f));
    }
    checks.push(app_select(f));
    finish(f, checks)
}

fn identity(f: &Facts) -> Check {
    match &f.identity {
        Identity::Gke {
            expected,
            annotated,
            bound,
            bindings_file,
        } => {
            let member = format!("{}/{}", f.namespace, f.cluster);
            let ev = json!({"expected": expected, "annotated": annotated, "bound": bound,
                            "bindings_file": bindings_file});
            let Some(gsa) = expected else {
                return check(
                    "identity",
                    Status::Fail,
                    format!(
                        "Cluster {member} archives with GKE Workload Identity but its \
                         serviceAccountTemplate names no Google service account"
                    ),
                    ev,
                )
                .failing(
                    Link::Identity,
                    "add the iam.gke.io/gcp-service-account annotation to \
                     spec.serviceAccountTemplate (cnpg-ops lint: gke-wi-annotation-missing)",
                );
            };
            if *bound == Some(false) {
                return check(
                    "identity",
                    Status::Fail,
                    format!(
                        "{gsa} does not let {member} act as it (no binding in {bindings_file})"
                    ),
                    ev,
                )
                .failing(
                    Link::Identity,
                    format!(
                        "add `- {member}` to the workload_identity_bindings of {gsa} in \
                         {bindings_file} and apply the Terraform (cnpg-ops lint --fix does it)"
                    ),
                );
            }
            match annotated {
                None => check(
                    "identity",
                    Status::Fail,
                    format!("no ServiceAccount {member}: the operator has not created it"),
                    ev,
                )
                .failing(
                    Link::Identity,
                    "check the Cluster's events: kubectl describe cluster",
                ),
                Some(a) if a.as_deref() != Some(gsa.as_str()) => check(
                    "identity",
                    Status::Fail,
                    format!(
                        "ServiceAccount {member} is annotated {} but the Cluster names {gsa}",
                        a.as_deref().unwrap_or("with nothing")
                    ),
                    ev,
                )
                .failing(
                    Link::Identity,
                    "the operator copies serviceAccountTemplate onto the ServiceAccount: check \
                     that Flux applied the current manifest, then restart the instances",
                ),
                Some(_) if bound.is_none() => check(
                    "identity",
                    Status::Warn,
                    format!(
                        "ServiceAccount {member} is annotated {gsa}, but {bindings_file} is not in \
                         the repository to show the binding"
                    ),
                    ev,
                ),
                Some(_) => check(
                    "identity",
                    Status::Pass,
                    format!("{member} acts as {gsa} (ServiceAccount annotated, binding declared)"),
                    ev,
                ),
            }
        }
        Identity::S3Secret {
            secret,
            keys,
            present,
            placeholders,
        } => {
            let ev = json!({"secret": secret, "keys": keys, "present": present,
                            "placeholders": placeholders});
            if !placeholders.is_empty() {
                return check(
                    "identity",
                    Status::Fail,
                    format!(
                        "Secret {}/{secret} still holds placeholders for {}: the credentials \
                         were never filled in",
                        f.namespace,
                        placeholders.join(", ")
                    ),
                    ev,
                )
                .failing(
                    Link::Identity,
                    format!(
                        "put the real values in the folder's secrets.enc.yaml (sops edit it) \
                         and let Flux apply it; the pods read {} at start",
                        placeholders.join(", ")
                    ),
                );
            }
            match present {
                None => check(
                    "identity",
                    Status::Fail,
                    format!(
                        "Secret {}/{secret} with the store's keys is not there",
                        f.namespace
                    ),
                    ev,
                )
                .failing(
                    Link::Identity,
                    format!(
                        "create it: commit the folder's secrets.enc.yaml with {} (sops) and let \
                         Flux apply it",
                        keys.join(", ")
                    ),
                ),
                Some(have) => {
                    let missing: Vec<&String> = keys.iter().filter(|k| !have.contains(k)).collect();
                    if missing.is_empty() {
                        check(
                            "identity",
                            Status::Pass,
                            format!("Secret {}/{secret} holds {}", f.namespace, keys.join(", ")),
                            ev,
                        )
                    } else {
                        check(
                            "identity",
                            Status::Fail,
                            format!(
                                "Secret {}/{secret} lacks {}",
                                f.namespace,
                                missing
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            ev,
                        )
                        .failing(
                            Link::Identity,
                            "add the keys the store names (sops edit the file)",
                        )
                    }
                }
            }
        }
        Identity::Other(kind) => check(
            "identity",
            Status::Skip,
            format!("credentials `{kind}` are not checked here; the archive test exercises them"),
            json!({"credentials": kind}),
        ),
    }
}

fn archiving(f: &Facts, cluster: &Value) -> Check {
    match condition(cluster, "ContinuousArchiving") {
        Some(c) if c["status"] == "True" => check(
            "continuous-archiving",
            Status::Pass,
            "ContinuousArchiving is True".to_owned(),
            c.clone(),
        ),
        Some(c) => check(
            "continuous-archiving",
            Status::Fail,
            format!(
                "ContinuousArchiving is {}: {}",
                text(c, "/status"),
                text(c, "/message")
            ),
            c.clone(),
        )
        .failing(
            Link::ArchiveFailing,
            format!(
                "read why in the archiver's log (kubectl logs -n {} <primary> -c \
                 plugin-barman-cloud, or -c postgres in-tree); once fixed, run again with \
                 --switch-wal so the condition is re-evaluated",
                f.namespace
            ),
        ),
        None => check(
            "continuous-archiving",
            Status::Warn,
            "the Cluster reports no ContinuousArchiving condition yet".to_owned(),
            Value::Null,
        ),
    }
}

fn instances(f: &Facts, cluster: &Value) -> Check {
    let want = cluster["spec"]["instances"].as_u64().unwrap_or(1);
    let mut ready = 0;
    let mut looping = Vec::new();
    let mut rows = Vec::new();
    for p in &f.pods {
        let name = text(p, "/metadata/name");
        let is_ready = p
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
        let statuses = p
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let crash = statuses.iter().any(|s| {
            s.pointer("/state/waiting/reason").and_then(Value::as_str) == Some("CrashLoopBackOff")
        });
        let restarts: u64 = statuses
            .iter()
            .filter_map(|s| s["restartCount"].as_u64())
            .sum();
        if is_ready {
            ready += 1;
        }
        if crash {
            looping.push(name.clone());
        }
        rows.push(
            json!({"pod": name, "ready": is_ready, "crash_loop": crash, "restarts": restarts}),
        );
    }
    let ev = json!({"instances": want, "pods": rows});
    if !looping.is_empty() {
        return check(
            "instances",
            Status::Fail,
            format!(
                "{} in CrashLoopBackOff ({ready}/{want} ready)",
                looping.join(", ")
            ),
            ev,
        )
        .failing(
            Link::CrashLoop,
            format!(
                "read the last crash: kubectl logs -n {} {} -c postgres --previous; a full \
                 pg_wal (could not write to file … No space left on device) needs a bigger \
                 volume (raise storage/walStorage size; resizeInUseVolumes grows the PVC) and \
                 archiving fixed",
                f.namespace, looping[0]
            ),
        );
    }
    if ready < want {
        return check(
            "instances",
            Status::Fail,
            format!("{ready}/{want} instances ready"),
            ev,
        )
        .failing(
            Link::CrashLoop,
            format!(
                "kubectl describe pods -n {} -l cnpg.io/cluster={}",
                f.namespace, f.cluster
            ),
        );
    }
    check(
        "instances",
        Status::Pass,
        format!("{ready}/{want} instances ready"),
        ev,
    )
}

fn volumes(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let sizes: Vec<Value> = f
        .pvcs
        .iter()
        .map(|p| {
            json!({"pvc": text(p, "/metadata/name"),
                   "role": text(p, "/metadata/labels/cnpg.io~1pvcRole"),
                   "size": p.pointer("/status/capacity/storage")
                       .or_else(|| p.pointer("/spec/resources/requests/storage")).cloned()})
        })
        .collect();
    match &f.disks {
        None => out.push(check(
            "volume-usage",
            Status::Skip,
            "no instance to read volume usage from".to_owned(),
            json!({"pvcs": sizes}),
        )),
        Some(Err(e)) => out.push(check(
            "volume-usage",
            Status::Warn,
            format!("volume usage could not be read in the primary: {e}"),
            json!({"pvcs": sizes, "error": e}),
        )),
        Some(Ok(disks)) => {
            let worst = disks
                .iter()
                .map(|d| (d, d.used.saturating_mul(100) / d.size.max(1)))
                .max_by_key(|(_, pct)| *pct);
            let rows: Vec<Value> = disks
                .iter()
                .map(|d| json!({"mount": d.mount, "used": d.used, "size": d.size}))
                .collect();
            let ev = json!({"pvcs": sizes, "mounts": rows});
            let summary = disks
                .iter()
                .map(|d| {
                    format!(
                        "{} {}% of {}",
                        d.mount,
                        d.used.saturating_mul(100) / d.size.max(1),
                        human(d.size)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            out.push(match worst {
                Some((d, pct)) if pct >= DISK_FAIL => check(
                    "volume-usage",
                    Status::Fail,
                    format!("{} is {pct}% full ({summary})", d.mount),
                    ev,
                )
                .failing(
                    Link::WalPilingUp,
                    "raise the volume's size in the Cluster (resizeInUseVolumes grows the PVC in \
                     place) now, then fix what fills it",
                ),
                Some((d, pct)) if pct >= DISK_WARN => check(
                    "volume-usage",
                    Status::Warn,
                    format!("{} is {pct}% full ({summary})", d.mount),
                    ev,
                ),
                _ => check("volume-usage", Status::Pass, summary, ev),
            });
        }
    }
    match &f.ready_wal {
        None => {}
        Some(Err(e)) => out.push(check(
            "wal-backlog",
            Status::Warn,
            format!("pg_wal/archive_status could not be read: {e}"),
            json!({"error": e}),
        )),
        Some(Ok(n)) if *n >= READY_PILING => out.push(
            check(
                "wal-backlog",
                Status::Fail,
                format!("{n} WAL segments wait to be archived in pg_wal (.ready): WAL is piling up on the PVC"),
                json!({"ready": n}),
            )
            .failing(
                Link::WalPilingUp,
                "fix archiving first; if the WAL volume is close to full, raise its size so \
                 PostgreSQL does not stop",
            ),
        ),
        Some(Ok(n)) => out.push(check(
            "wal-backlog",
            Status::Pass,
            format!("{n} WAL segment{} waiting to be archived", if *n == 1 { "" } else { "s" }),
            json!({"ready": n}),
        )),
    }
    out
}

fn backups(f: &Facts) -> Check {
    let newest = f
        .backups
        .iter()
        .max_by_key(|b| text(b, "/metadata/creationTimestamp"));
    let schedules: Vec<Value> = f
        .scheduled
        .iter()
        .map(|s| {
            json!({"name": text(s, "/metadata/name"), "schedule": text(s, "/spec/schedule"),
                   "suspended": s["spec"]["suspend"] == true,
                   "lastScheduleTime": s.pointer("/status/lastScheduleTime")})
        })
        .collect();
    let ev = json!({"newest_backup": newest.map(|b| json!({
        "name": text(b, "/metadata/name"), "phase": text(b, "/status/phase"),
        "error": b.pointer("/status/error")})), "scheduled_backups": schedules});
    if f.scheduled.is_empty() {
        return check(
            "backups",
            Status::Fail,
            format!(
                "no ScheduledBackup for {}: no base backups are taken",
                f.cluster
            ),
            ev,
        )
        .failing(
            Link::ArchiveFailing,
            "add a ScheduledBackup (6-field schedule, the Cluster's method, immediate: true)",
        );
    }
    if f.scheduled.iter().all(|s| s["spec"]["suspend"] == true) {
        return check(
            "backups",
            Status::Warn,
            "every ScheduledBackup is suspended".to_owned(),
            ev,
        );
    }
    match newest {
        None => check(
            "backups",
            Status::Warn,
            "no Backup yet (immediate: true takes one as soon as the Cluster is ready)".to_owned(),
            ev,
        ),
        Some(b) => {
            let phase = text(b, "/status/phase");
            let name = text(b, "/metadata/name");
            match phase.as_str() {
                "completed" => check(
                    "backups",
                    Status::Pass,
                    format!("newest Backup {name} completed"),
                    ev,
                ),
                "failed" | "walArchivingFailing" => {
                    let err = text(b, "/status/error");
                    let link = classify_store_error(&err).unwrap_or(Link::ArchiveFailing);
                    check(
                        "backups",
                        Status::Fail,
                        format!("newest Backup {name} failed: {err}"),
                        ev,
                    )
                    .failing(link, fix_for(link, f))
                }
                other => check(
                    "backups",
                    Status::Warn,
                    format!(
                        "newest Backup {name} is {}",
                        if other.is_empty() { "pending" } else { other }
                    ),
                    ev,
                ),
            }
        }
    }
}

fn bucket(f: &Facts) -> Vec<Check> {
    let Some(b) = &f.bucket else {
        return vec![check(
            "bucket",
            Status::Skip,
            "the manifests name no catalog to read".to_owned(),
            Value::Null,
        )];
    };
    let b = match b {
        Ok(b) => b,
        Err(e) => {
            // cnpg-ops reads with its own credentials, not the pods': not a
            // failure of the database, but no evidence either.
            return vec![check(
                "bucket",
                Status::Warn,
                format!("the catalog could not be read from here: {e}"),
                json!({"error": e}),
            )];
        }
    };
    let mut out = Vec::new();
    let ev = json!({"catalog": b.catalog,
        "newest_wal": b.newest_wal.as_ref().map(|(n, t)| json!({"segment": n, "uploaded": t})),
        "newest_backup": b.newest_backup.as_ref().map(|(n, t)| json!({"id": n, "end": t}))});
    out.push(match &b.newest_wal {
        None => check(
            "bucket-wal",
            Status::Fail,
            format!("no WAL archived in {}", b.catalog),
            ev.clone(),
        )
        .failing(Link::ArchiveFailing, fix_for(Link::ArchiveFailing, f)),
        Some((seg, at)) => {
            let age = f.now - *at;
            if age > f.wal_max_age {
                check(
                    "bucket-wal",
                    Status::Fail,
                    format!(
                        "newest WAL {seg} was archived {} ago (more than {})",
                        human_age(age),
                        human_age(f.wal_max_age)
                    ),
                    ev.clone(),
                )
                .failing(Link::ArchiveFailing, fix_for(Link::ArchiveFailing, f))
            } else {
                check(
                    "bucket-wal",
                    Status::Pass,
                    format!("newest WAL {seg} archived {} ago", human_age(age)),
                    ev.clone(),
                )
            }
        }
    });
    out.push(match &b.newest_backup {
        None => check(
            "bucket-backup",
            Status::Fail,
            format!(
                "no completed base backup in {}: nothing to restore from",
                b.catalog
            ),
            ev.clone(),
        )
        .failing(
            Link::ArchiveFailing,
            "take one: cnpg-ops backup --env … --svc … --wait",
        ),
        Some((id, end)) => check(
            "bucket-backup",
            Status::Pass,
            format!(
                "newest base backup {id} ended {} ago",
                human_age(f.now - *end)
            ),
            ev.clone(),
        ),
    });
    let breaking: Vec<&(String, String, bool)> = b.gaps.iter().filter(|g| g.2).collect();
    out.push(if breaking.is_empty() {
        check(
            "bucket-gaps",
            Status::Pass,
            if b.gaps.is_empty() {
                "no gap in the WAL".to_owned()
            } else {
                format!("{} gap(s) in the WAL, none in the way of a restore", b.gaps.len())
            },
            json!({"gaps": b.gaps.len()}),
        )
    } else {
        {
            let (first, last, _) = breaking[0];
            let mut c = check(
                "bucket-gaps",
                Status::Fail,
                if first == last {
                    format!("WAL segment {first} is missing: restores across it stop there")
                } else {
                    format!("WAL missing from {first} to {last}: restores across it stop there")
                },
                json!({"gaps": b.gaps.iter().map(|g| json!({"first": g.0, "last": g.1, "breaks_recovery": g.2})).collect::<Vec<_>>()}),
            );
            // A hole in the past, not a link of today's chain.
            c.fix = Some(
                "take a new base backup now so a restore point after the gap exists \
                 (cnpg-ops backup)"
                    .to_owned(),
            );
            c
        }
    });
    out
}

fn archive_test(f: &Facts) -> Check {
    match &f.archive_test {
        ArchiveTest::NotRun(why) => check(
            "archive-test",
            Status::Skip,
            format!("barman-cloud-wal-archive --test not run: {why}"),
            Value::Null,
        ),
        ArchiveTest::Failed(e) => check(
            "archive-test",
            Status::Fail,
            format!("barman-cloud-wal-archive --test could not run: {e}"),
            json!({"error": e}),
        )
        .failing(
            Link::ArchiveFailing,
            "check that the barman-cloud tools are in the container (the plugin's sidecar, or \
             the postgres image in-tree) and that the Secrets the store names are there",
        ),
        ArchiveTest::Ran(o) if o.exit_code == 0 => check(
            "archive-test",
            Status::Pass,
            "barman-cloud-wal-archive --test reached the bucket from the primary (exit 0)"
                .to_owned(),
            json!({"exit_code": 0, "stdout": o.stdout, "stderr": o.stderr}),
        ),
        ArchiveTest::Ran(o) => {
            let link = classify_store_error(&format!("{}\n{}", o.stdout, o.stderr))
                .unwrap_or(Link::ArchiveFailing);
            let last = o
                .stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            check(
                "archive-test",
                Status::Fail,
                format!(
                    "barman-cloud-wal-archive --test failed in the primary (exit {}): {last}",
                    o.exit_code
                ),
                json!({"exit_code": o.exit_code, "stdout": o.stdout, "stderr": o.stderr}),
            )
            .failing(link, fix_for(link, f))
        }
    }
}

fn vector(f: &Facts) -> Check {
    match &f.vector {
        None => check(
            "vector",
            Status::Skip,
            "no instance to query".to_owned(),
            Value::Null,
        ),
        Some(Ok(o)) if o.exit_code == 0 && !o.stdout.trim().is_empty() => check(
            "vector",
            Status::Pass,
            format!("vector {} is installed in {}", o.stdout.trim(), f.app.0),
            json!({"version": o.stdout.trim()}),
        ),
        Some(Ok(o)) if o.exit_code == 0 => check(
            "vector",
            Status::Fail,
            format!(
                "the repository declares pgvector but {} has no vector extension",
                f.app.0
            ),
            json!({"stdout": o.stdout}),
        )
        .with_fix(format!(
            "CREATE EXTENSION vector must run in {} (not in postgres): a Database CR with \
             extensions [{{name: vector}}] or bootstrap.initdb.postInitApplicationSQL; check the \
             Database CR's status (kubectl get database -n {})",
            f.app.0, f.namespace
        )),
        Some(Ok(o)) => check(
            "vector",
            Status::Fail,
            format!(
                "the vector query failed (exit {}): {}",
                o.exit_code,
                o.stderr.trim()
            ),
            json!({"exit_code": o.exit_code, "stderr": o.stderr}),
        ),
        Some(Err(e)) => check(
            "vector",
            Status::Fail,
            format!("the vector query could not run: {e}"),
            json!({"error": e}),
        ),
    }
}

fn app_select(f: &Facts) -> Check {
    let (db, owner) = &f.app;
    match &f.app_select {
        None => check(
            "app-connect",
            Status::Skip,
            "no instance to connect through".to_owned(),
            Value::Null,
        ),
        Some(Ok(o)) if o.exit_code == 0 && o.stdout.trim() == "1" => check(
            "app-connect",
            Status::Pass,
            format!("SELECT 1 as {owner} in {db} returned 1"),
            json!({"database": db, "user": owner}),
        ),
        Some(Ok(o)) => check(
            "app-connect",
            Status::Fail,
            format!(
                "SELECT 1 as {owner} in {db} failed (exit {}): {}",
                o.exit_code,
                o.stderr.trim()
            ),
            json!({"database": db, "user": owner, "exit_code": o.exit_code, "stderr": o.stderr}),
        )
        .with_fix(format!(
            "the application's credentials are in Secret {}-app (or bootstrap.initdb.secret): \
             check the password there matches the role's, and pg_hba",
            f.cluster
        )),
        Some(Err(e)) => check(
            "app-connect",
            Status::Fail,
            format!("SELECT 1 as {owner} could not run: {e}"),
            json!({"error": e}),
        ),
    }
}

impl Check {
    fn with_fix(mut self, fix: String) -> Check {
        self.fix = Some(fix);
        self
    }
}

/// The fix of a link, for this database.
fn fix_for(link: Link, f: &Facts) -> String {
    match (link, &f.identity) {
        (
            Link::Identity,
            Identity::Gke {
                expected,
                bindings_file,
                ..
            },
        ) => format!(
            "let {}/{} act as {}: add it to workload_identity_bindings in {bindings_file} and \
             apply the Terraform",
            f.namespace,
            f.cluster,
            expected.as_deref().unwrap_or("the backup account")
        ),
        (Link::Identity, Identity::S3Secret { secret, .. }) => format!(
            "check the access key in Secret {}/{secret} (sops edit the folder's \
             secrets.enc.yaml)",
            f.namespace
        ),
        (Link::Identity, Identity::Other(_)) => {
            "check the credentials the store configuration names".to_owned()
        }
        (Link::BucketPermissions, Identity::Gke { expected, .. }) => format!(
            "grant {} roles/storage.objectAdmin and storage.buckets.get (e.g. \
             roles/storage.legacyBucketReader) on the bucket, and check that it exists",
            expected.as_deref().unwrap_or("the backup account")
        ),
        (Link::BucketPermissions, _) => "the key needs s3:PutObject, s3:GetObject and \
                                          s3:ListBucket on the bucket, and the bucket must exist \
                                          (check destinationPath)"
            .to_owned(),
        (Link::ArchiveFailing, _) => format!(
            "read the archiver's log (kubectl logs -n {} <primary> -c plugin-barman-cloud, or -c \
             postgres in-tree); once fixed, run cnpg-ops verify --switch-wal",
            f.namespace
        ),
        (Link::WalPilingUp, _) => "raise the WAL volume's size now, then fix archiving".to_owned(),
        (Link::CrashLoop, _) => "read the last crash (kubectl logs --previous)".to_owned(),
    }
}

/// Places the failures on the chain.
fn finish(f: &Facts, checks: Vec<Check>) -> Report {
    let failing: Vec<(&Check, Link)> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .filter_map(|c| c.link.map(|l| (c, l)))
        .collect();
    let cause = failing.iter().min_by_key(|(_, l)| *l).map(|(c, l)| Cause {
        link: *l,
        check: c.id,
        consequences: failing
            .iter()
            .filter(|(other, ol)| other.id != c.id && ol >= l)
            .map(|(other, _)| other.id)
            .collect(),
        fix: c.fix.clone().unwrap_or_else(|| fix_for(*l, f)),
    });
    Report {
        database: format!("{}/{}", f.env, f.svc),
        cluster: format!("{}/{}", f.namespace, f.cluster),
        context: f.context.clone(),
        checks,
        cause,
    }
}

fn human(bytes: u64) -> String {
    let gib = 1024.0 * 1024.0 * 1024.0;
    #[allow(clippy::cast_precision_loss)]
    let b = bytes as f64;
    if b >= gib {
        format!("{:.1} GiB", b / gib)
    } else {
        format!("{:.0} MiB", b / (1024.0 * 1024.0))
    }
}

fn human_age(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{}h", s / 86400, s % 86400 / 3600),
    }
}

/// Parses `df -P -B1` output into volumes.
#[must_use]
pub fn parse_df(out: &str) -> Vec<Disk> {
    out.lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 6 {
                return None;
            }
            let used: u64 = cols[2].parse().ok()?;
            let available: u64 = cols[3].parse().ok()?;
            // What postgres can write: the blocks reserved for root are not
            // its to use.
            Some(Disk {
                mount: cols[5].to_owned(),
                size: used + available,
                used,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_reads_as_volumes() {
        let out = "Filesystem     1-blocks       Used  Available Capacity Mounted on\n\
                   /dev/sdb     10475274240 1048576000 9426698240      11% /var/lib/postgresql/data\n\
                   /dev/sdc      4294967296 4080218931  214748365      96% /var/lib/postgresql/wal\n";
        assert_eq!(
            parse_df(out),
            [
                Disk {
                    mount: "/var/lib/postgresql/data".into(),
                    used: 1_048_576_000,
                    size: 10_475_274_240
                },
                Disk {
                    mount: "/var/lib/postgresql/wal".into(),
                    used: 4_080_218_931,
                    size: 4_294_967_296
                },
            ]
        );
        assert!(parse_df("df: /nope: No such file or directory\n").is_empty());
    }

    #[test]
    fn store_errors_name_their_link() {
        for (out, link) in [
            (
                "google.auth.exceptions.DefaultCredentialsError: Could not automatically determine credentials",
                Some(Link::Identity),
            ),
            (
                "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
                Some(Link::Identity),
            ),
            (
                "An error occurred (InvalidAccessKeyId) when calling the HeadBucket operation",
                Some(Link::Identity),
            ),
            (
                "403 GET https://storage.googleapis.com/storage/v1/b/acme: x does not have storage.buckets.get access",
                Some(Link::BucketPermissions),
            ),
            (
                "An error occurred (AccessDenied) when calling the PutObject operation",
                Some(Link::BucketPermissions),
            ),
            (
                "An error occurred (NoSuchBucket) when calling the HeadBucket operation",
                Some(Link::BucketPermissions),
            ),
            ("connection reset by peer", None),
            (
                "  File \"/usr/lib/python3/cloud.py\", line 403, in _check",
                None,
            ),
            (
                "PermissionError: [Errno 13] Permission denied: '/controller'",
                None,
            ),
            ("HTTP 403 from the endpoint", Some(Link::BucketPermissions)),
            (
                "401 GET https://storage.googleapis.com/b",
                Some(Link::Identity),
            ),
        ] {
            assert_eq!(classify_store_error(out), link, "{out}");
        }
    }

    #[test]
    fn the_earliest_link_is_the_cause() {
        let f = Facts {
            env: "prod".into(),
            svc: "foo".into(),
            namespace: "foo-prod".into(),
            cluster: "foo-pg".into(),
            context: "ctx".into(),
            now: Utc::now(),
            cluster_obj: None,
            pods: Vec::new(),
            pvcs: Vec::new(),
            backups: Vec::new(),
            scheduled: Vec::new(),
            identity: Identity::Other("s3-iam-role".into()),
            bucket: None,
            disks: None,
            ready_wal: None,
            archive_test: ArchiveTest::NotRun("no instance".into()),
            switch_wal: None,
            switch_wait: None,
            vector_declared: false,
            vector: None,
            app: ("foo".into(), "foo".into()),
            app_select: None,
            wal_max_age: Duration::hours(1),
        };
        let failing =
            |id, link| check(id, Status::Fail, String::new(), Value::Null).failing(link, "fix");
        let r = finish(
            &f,
            vec![
                failing("instances", Link::CrashLoop),
                failing("wal-backlog", Link::WalPilingUp),
                failing("archive-test", Link::BucketPermissions),
                check("identity", Status::Pass, String::new(), Value::Null),
            ],
        );
        let cause = r.cause.unwrap();
        assert_eq!(cause.link, Link::BucketPermissions);
        assert_eq!(cause.check, "archive-test");
        assert_eq!(cause.consequences, ["instances", "wal-backlog"]);
        // No Cluster at all: the one failure, and nothing run in a pod.
        let r = judge(&f);
        assert!(r.failed());
        assert_eq!(
            r.checks.iter().map(|c| c.id).collect::<Vec<_>>(),
            ["identity", "cluster"]
        );
    }

    #[test]
    fn ages_read_short() {
        assert_eq!(human_age(Duration::seconds(42)), "42s");
        assert_eq!(human_age(Duration::minutes(90)), "1h30m");
        assert_eq!(human_age(Duration::hours(50)), "2d2h");
    }
}
