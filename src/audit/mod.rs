//! Catalog audits, free of IO: what an analysed catalog says about a
//! database's backups, judged against its manifests (schedule, retention),
//! and the Prometheus text those findings and metrics become.
//!
//! Owns: the audit checks on one catalog and the metrics exposition. Does
//! not own: listing buckets (`store`), analysis (`catalog`), reading the
//! repository (`gitops`), printing (`output`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::catalog::analysis::{Backup, Catalog};
use crate::catalog::findings::Severity;
use crate::catalog::retention::Policy;
use crate::gitops::discover::Database;
use crate::gitops::webhook::backup_interval;

pub mod bucket;
pub mod live;
pub mod prefixes;

#[cfg(test)]
pub(crate) mod tests;

/// Limits the checks judge against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// The newest archived WAL may be at most this old.
    pub wal_max_age: Duration,
    /// The newest DONE backup may be at most the backup interval × this old.
    pub backup_grace: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            wal_max_age: Duration::hours(1),
            backup_grace: 1.5,
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One database (env and svc are set).
    Database,
    /// A destination path shared by databases (location is set).
    Destination,
    /// A bucket (location is set).
    Bucket,
}

/// One audit finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditFinding {
    /// Stable identifier (see [`all_checks`]).
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What it is about.
    pub scope: Scope,
    /// Env of the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Service of the database.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svc: Option<String>,
    /// The catalog, destination or bucket URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// What it is about: a backup id, a segment, a timeline, the server.
    pub subject: String,
    /// What was found.
    pub message: String,
    /// The facts behind it.
    pub evidence: Value,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The ids [`audit_catalog`] emits, with a one-line meaning.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "wal-archiving-stalled",
        "the newest archived WAL is older than the threshold, or there is none",
    ),
    (
        "backup-overdue",
        "the newest DONE backup is older than the schedule interval × grace",
    ),
    ("backup-none-done", "no DONE backup in the catalog"),
    ("backup-no-schedule", "no ScheduledBackup for the database"),
    (
        "wal-gap-in-window",
        "a WAL gap after the oldest backup the retention window needs",
    ),
    (
        "wal-gap-before-window",
        "a WAL gap older than what the retention window needs",
    ),
    (
        "backup-unusable",
        "a backup that cannot serve a restore (failed, crashed, missing data or WAL)",
    ),
    (
        "retention-not-enforced",
        "the first recoverable point is older than the window plus two intervals",
    ),
    (
        "retention-window-not-covered",
        "the first recoverable point is newer than the window promised by retention",
    ),
    (
        "systemid-multiple",
        "several system identifiers under one server name",
    ),
    (
        "timeline-unexpected",
        "timelines the history files do not explain",
    ),
];

/// Catalog findings that mean a backup cannot serve a restore.
const UNUSABLE: &[&str] = &[
    "backup-failed",
    "backup-info-unreadable",
    "backup-missing-info",
    "backup-data-missing",
    "backup-wal-missing",
    "backup-status",
];

/// Catalog findings about timelines the history does not explain.
const TIMELINE: &[&str] = &[
    "timeline-off-history",
    "history-missing",
    "history-inconsistent",
];

/// A time in findings and evidence: RFC 3339, seconds, UTC.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The shortest interval among the database's ScheduledBackups.
pub(crate) fn interval(db: &Database) -> Option<Duration> {
    db.schedules
        .iter()
        .filter_map(|s| backup_interval(&s.schedule))
        .min()
}

/// The retention window, when the policy is a recovery window.
pub(crate) fn window(db: &Database) -> Option<Duration> {
    db.retention_policy
        .as_deref()
        .and_then(|p| p.parse::<Policy>().ok())
        .and_then(Policy::window)
}

/// Duration × factor, in whole seconds.
fn scaled(d: Duration, factor: f64) -> Duration {
    #[allow(clippy::cast_precision_loss)]
    let secs = d.num_seconds() as f64 * factor;
    Duration::seconds(secs.round() as i64)
}

/// The newest archived segment over all timelines, and when it was uploaded.
pub(crate) fn newest_wal(catalog: &Catalog) -> Option<(String, DateTime<Utc>)> {
    catalog
        .timelines
        .iter()
        .filter_map(|t| Some((t.last_segment.clone()?, t.last_archived_at?)))
        .max_by_key(|(_, at)| *at)
}

/// The newest DONE backup with an end time.
fn newest_done(catalog: &Catalog) -> Option<&Backup> {
    catalog
        .backups
        .iter()
        .filter(|b| b.is_done() && b.end_time.is_some())
        .max_by_key(|b| b.end_time)
}

/// The oldest backup a restore inside the window needs: the newest usable
/// backup that ended before the window starts, else the oldest usable one.
pub(crate) fn anchor(catalog: &Catalog, window: Option<Duration>) -> Option<&Backup> {
    let usable = || {
        catalog
            .backups
            .iter()
            .filter(|b| b.usable && b.end_time.is_some() && b.begin_wal.is_some())
    };
    window
        .and_then(|w| {
            let start = catalog.now - w;
            usable()
                .filter(|b| b.end_time.is_some_and(|t| t <= start))
                .max_by_key(|b| b.end_time)
        })
        .or_else(|| usable().min_by_key(|b| b.end_time))
}

/// Segment position regardless of timeline (log and segment hex).
fn position(segment: &str) -> &str {
    segment.get(8..).unwrap_or(segment)
}

struct Out<'a> {
    db: &'a Database,
    location: Option<String>,
    findings: Vec<AuditFinding>,
}

impl Out<'_> {
    fn push(
        &mut self,
        id: &'static str,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
        evidence: Value,
        hint: Option<&str>,
    ) {
        self.findings.push(AuditFinding {
            id,
            severity,
            scope: Scope::Database,
            env: Some(self.db.env.clone()),
            svc: Some(self.db.svc.clone()),
            location: self.location.clone(),
            subject: subject.into(),
            message: message.into(),
            evidence,
            hint: hint.map(str::to_owned),
        });
    }
}

/// Audits one database's analysed catalog.
#[must_use]
pub fn audit_catalog(
    db: &Database,
    catalog: &Catalog,
    thresholds: &Thresholds,
) -> Vec<AuditFinding> {
    let mut out = Out {
        db,
        location: db.catalog.as_ref().map(|c| {
            format!(
                "{}/{}",
                c.destination_path.trim_end_matches('/'),
                c.server_name
            )
        }),
        findings: Vec::new(),
    };
    let now = catalog.now;
    let interval = interval(db);
    let window = window(db);

    // Archiving stalled.
    match newest_wal(catalog) {
        Some((segment, at)) if now - at > thresholds.wal_max_age => out.push(
            "wal-archiving-stalled",
            Severity::Error,
            segment.clone(),
            format!(
                "the newest archived WAL {segment} was uploaded {}s ago, more than {}s",
                (now - at).num_seconds(),
                thresholds.wal_max_age.num_seconds()
            ),
            json!({"newest_segment": segment, "uploaded_at": time(at), "now": time(now),
                   "age_seconds": (now - at).num_seconds(),
                   "threshold_seconds": thresholds.wal_max_age.num_seconds()}),
            Some("check the Cluster's ContinuousArchiving condition and the archiver's logs"),
        ),
        Some(_) => {}
        None => out.push(
            "wal-archiving-stalled",
            Severity::Error,
            catalog.server.clone(),
            "no archived WAL in the catalog",
            json!({"newest_segment": null, "now": time(now)}),
            Some("check the Cluster's ContinuousArchiving condition and the catalog location"),
        ),
    }

    // Newest DONE backup against the schedule.
    match (newest_done(catalog), interval) {
        (None, _) => out.push(
            "backup-none-done",
            Severity::Error,
            catalog.server.clone(),
            "no DONE backup in the catalog",
            json!({"backups": catalog.backups.len()}),
            Some("take a backup now and check the ScheduledBackup"),
        ),
        (Some(b), Some(iv)) => {
            let end = b.end_time.unwrap_or(now);
            let limit = scaled(iv, thresholds.backup_grace);
            if now - end > limit {
                out.push(
                    "backup-overdue",
                    Severity::Error,
                    b.id.clone(),
                    format!(
                        "the newest DONE backup {} ended {}s ago, more than {}s (interval × {})",
                        b.id,
                        (now - end).num_seconds(),
                        limit.num_seconds(),
                        thresholds.backup_grace
                    ),
                    json!({"backup": b.id, "end_time": time(end), "now": time(now),
                           "age_seconds": (now - end).num_seconds(),
                           "interval_seconds": iv.num_seconds(),
                           "limit_seconds": limit.num_seconds()}),
                    Some("check the ScheduledBackup and the Backup resources' status"),
                );
            }
        }
        (Some(_), None) => {}
    }
    if interval.is_none() {
        out.push(
            "backup-no-schedule",
            Severity::Warning,
            db.cluster.clone(),
            "no ScheduledBackup with a readable schedule; backup age is not judged",
            json!({"schedules": db.schedules.iter().map(|s| s.schedule.clone()).collect::<Vec<_>>()}),
            Some("add a ScheduledBackup for the Cluster"),
        );
    }

    // Gaps against the oldest backup the window needs.
    let anchor = anchor(catalog, window);
    for g in &catalog.gaps {
        let inside = anchor.is_none_or(|a| {
            a.begin_wal
                .as_deref()
                .is_none_or(|bw| position(&g.last_missing) >= position(bw))
        });
        let evidence = json!({"timeline": g.timeline, "first_missing": g.first_missing,
            "last_missing": g.last_missing, "missing_count": g.missing_count,
            "after": g.after, "before": g.before,
            "anchor_backup": anchor.map(|a| a.id.clone())});
        let subject = format!("{}..{}", g.first_missing, g.last_missing);
        if inside {
            out.push(
                "wal-gap-in-window",
                Severity::Error,
                subject,
                format!(
                    "{} segment(s) missing on timeline {} after the oldest backup the retention window needs; a restore inside the window crosses them",
                    g.missing_count, g.timeline
                ),
                evidence,
                Some("take a new base backup now; restores before it cannot cross the gap"),
            );
        } else {
            out.push(
                "wal-gap-before-window",
                Severity::Info,
                subject,
                format!(
                    "{} segment(s) missing on timeline {}, older than what the retention window needs",
                    g.missing_count, g.timeline
                ),
                evidence,
                None,
            );
        }
    }

    // Mapped catalog findings.
    for f in &catalog.findings {
        let id = if UNUSABLE.contains(&f.id) {
            "backup-unusable"
        } else if f.id == "systemid-multiple" {
            "systemid-multiple"
        } else if TIMELINE.contains(&f.id) {
            "timeline-unexpected"
        } else {
            continue;
        };
        out.push(
            id,
            f.severity,
            f.subject.clone(),
            f.message.clone(),
            json!({"catalog_finding": f.id}),
            f.hint.as_deref(),
        );
    }

    // First recoverable point against the window.
    if let (Some(w), Some((frp, backup))) = (window, catalog.first_recoverable_point()) {
        let start = now - w;
        // Retention keeps the newest backup that ended before the window (the
        // anchor, however old missed backups made it) and deletes the older
        // ones at its next run; give it two intervals (an hour without a schedule).
        let slack = interval.map_or(Duration::hours(1), |iv| iv * 2);
        let anchor_id = anchor.map(|a| a.id.clone());
        let evidence = json!({"first_recoverable_point": time(frp), "window_start": time(start),
            "backup": backup, "anchor_backup": anchor_id, "window_seconds": w.num_seconds()});
        if frp < start - slack && anchor_id.as_deref() != Some(backup.as_str()) {
            out.push(
                "retention-not-enforced",
                Severity::Warning,
                backup.clone(),
                format!(
                    "backup {backup} and its first recoverable point {} are older than what the window keeps (it starts {}, anchored by {}): retention has not deleted them",
                    time(frp),
                    time(start),
                    anchor_id.as_deref().unwrap_or("no backup")
                ),
                evidence,
                Some("check that retention runs (the ObjectStore's retentionPolicy and the sidecar's logs)"),
            );
        } else if frp > start {
            // A catalog whose oldest backup is younger than the window has not
            // had the time to cover it; one that is older lost something.
            let young = catalog
                .backups
                .iter()
                .filter_map(|b| b.begin_time)
                .min()
                .is_none_or(|oldest| oldest > start);
            out.push(
                "retention-window-not-covered",
                if young { Severity::Info } else { Severity::Warning },
                backup,
                format!(
                    "the first recoverable point {} is newer than the window start {}: the window promised by retention is not covered",
                    time(frp),
                    time(start)
                ),
                evidence,
                Some("expected for a young cluster; otherwise look for deleted backups or WAL"),
            );
        }
    }
    out.findings
}

/// The per-database numbers the Prometheus output exposes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DatabaseMetrics {
    /// Env.
    pub env: String,
    /// Service.
    pub svc: String,
    /// Namespace.
    pub namespace: String,
    /// Cluster name.
    pub cluster: String,
    /// Whether the catalog could be read and analysed.
    pub catalog_readable: bool,
    /// The strict first recoverable point.
    pub first_recoverable: Option<DateTime<Utc>>,
    /// Age of the newest archived WAL, in seconds.
    pub newest_wal_age_seconds: Option<i64>,
    /// Age of the newest DONE backup, in seconds.
    pub newest_backup_age_seconds: Option<i64>,
    /// Number of WAL gaps.
    pub wal_gaps: Option<usize>,
    /// Whether the bucket's lifecycle rules were read for this catalog.
    pub lifecycle_checked: bool,
}

impl DatabaseMetrics {
    /// The metrics of one database's analysed catalog.
    #[must_use]
    pub fn from(db: &Database, catalog: &Catalog) -> DatabaseMetrics {
        let now = catalog.now;
        DatabaseMetrics {
            catalog_readable: true,
            first_recoverable: catalog.first_recoverable_point().map(|(t, _)| t),
            newest_wal_age_seconds: newest_wal(catalog).map(|(_, at)| (now - at).num_seconds()),
            newest_backup_age_seconds: newest_done(catalog)
                .and_then(|b| b.end_time)
                .map(|t| (now - t).num_seconds()),
            wal_gaps: Some(catalog.gaps.len()),
            ..DatabaseMetrics::unread(db)
        }
    }

    /// A database whose catalog could not be read.
    #[must_use]
    pub fn unread(db: &Database) -> DatabaseMetrics {
        DatabaseMetrics {
            env: db.env.clone(),
            svc: db.svc.clone(),
            namespace: db.namespace.clone(),
            cluster: db.cluster.clone(),
            catalog_readable: false,
            first_recoverable: None,
            newest_wal_age_seconds: None,
            newest_backup_age_seconds: None,
            wal_gaps: None,
            lifecycle_checked: false,
        }
    }

    /// A database folder that does not read as one: only its env and svc are known.
    #[must_use]
    pub fn unknown(env: &str, svc: &str) -> DatabaseMetrics {
        DatabaseMetrics {
            env: env.to_owned(),
            svc: svc.to_owned(),
            namespace: String::new(),
            cluster: String::new(),
            catalog_readable: false,
            first_recoverable: None,
            newest_wal_age_seconds: None,
            newest_backup_age_seconds: None,
            wal_gaps: None,
            lifecycle_checked: false,
        }
    }

    fn labels(&self) -> String {
        format!(
            "env=\"{}\",svc=\"{}\",namespace=\"{}\",cluster=\"{}\"",
            escape(&self.env),
            escape(&self.svc),
            escape(&self.namespace),
            escape(&self.cluster)
        )
    }
}

/// When the audit ran, for the freshness metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunInfo {
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
}

/// Escapes a label value for the text exposition format.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('"', "\\\"")
}

const SEVERITIES: [(Severity, &str); 3] = [
    (Severity::Error, "error"),
    (Severity::Warning, "warning"),
    (Severity::Info, "info"),
];

/// The database-scoped findings about `m`'s database.
fn of_db<'a>(
    findings: &'a [AuditFinding],
    m: &'a DatabaseMetrics,
) -> impl Iterator<Item = &'a AuditFinding> + 'a {
    findings.iter().filter(move |f| {
        f.scope == Scope::Database
            && f.env.as_deref() == Some(m.env.as_str())
            && f.svc.as_deref() == Some(m.svc.as_str())
    })
}

/// Whether a finding says a lifecycle rule removes what a restore needs.
fn is_lifecycle_violation(f: &AuditFinding) -> bool {
    f.id.starts_with("lifecycle-") && f.severity == Severity::Error
}

/// The findings and metrics in the Prometheus text exposition format,
/// ordered by metric, then env and svc. Every metric is a gauge.
#[must_use]
pub fn prometheus(findings: &[AuditFinding], metrics: &[DatabaseMetrics], run: RunInfo) -> String {
    let mut dbs: Vec<&DatabaseMetrics> = metrics.iter().collect();
    dbs.sort_by(|a, b| (&a.env, &a.svc, &a.cluster).cmp(&(&b.env, &b.svc, &b.cluster)));
    let mut s = String::new();
    let gauge = |s: &mut String, name: &str, help: &str, values: &[(String, String)]| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} gauge");
        for (l, v) in values {
            if l.is_empty() {
                let _ = writeln!(s, "{name} {v}");
            } else {
                let _ = writeln!(s, "{name}{{{l}}} {v}");
            }
        }
    };
    let per_db = |f: &dyn Fn(&DatabaseMetrics) -> Option<String>| -> Vec<(String, String)> {
        dbs.iter()
            .filter_map(|m| Some((m.labels(), f(m)?)))
            .collect()
    };
    gauge(
        &mut s,
        "cnpg_ops_audit_catalog_readable",
        "1 when the database's catalog was read and analysed, 0 when it could not be.",
        &per_db(&|m| Some(u8::from(m.catalog_readable).to_string())),
    );
    gauge(
        &mut s,
        "cnpg_ops_first_recoverable_timestamp_seconds",
        "Unix time of the earliest point a restore from the catalog can reach.",
        &per_db(&|m| m.first_recoverable.map(|t| t.timestamp().to_string())),
    );
    gauge(
        &mut s,
        "cnpg_ops_newest_wal_age_seconds",
        "Seconds since the newest archived WAL segment was uploaded.",
        &per_db(&|m| m.newest_wal_age_seconds.map(|v| v.to_string())),
    );
    gauge(
        &mut s,
        "cnpg_ops_newest_backup_age_seconds",
        "Seconds since the newest DONE base backup ended.",
        &per_db(&|m| m.newest_backup_age_seconds.map(|v| v.to_string())),
    );
    gauge(
        &mut s,
        "cnpg_ops_wal_gaps",
        "Number of gaps in the archived WAL.",
        &per_db(&|m| m.wal_gaps.map(|g| g.to_string())),
    );
    gauge(
        &mut s,
        "cnpg_ops_lifecycle_violations",
        "Bucket lifecycle rules that delete or archive objects the retention window still needs (absent when the rules could not be read).",
        &per_db(&|m| {
            m.lifecycle_checked.then(|| {
                of_db(findings, m)
                    .filter(|f| is_lifecycle_violation(f))
                    .count()
                    .to_string()
            })
        }),
    );
    let mut by_severity = Vec::new();
    for m in &dbs {
        for (sev, name) in SEVERITIES {
            let n = of_db(findings, m).filter(|f| f.severity == sev).count();
            by_severity.push((format!("{},severity=\"{name}\"", m.labels()), n.to_string()));
        }
    }
    gauge(
        &mut s,
        "cnpg_ops_audit_findings",
        "Audit findings about one database, by severity.",
        &by_severity,
    );
    // Findings about a bucket or a shared destination path, by location.
    let mut shared: BTreeMap<(Scope, String), [usize; 3]> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.scope != Scope::Database) {
        let slot = SEVERITIES
            .iter()
            .position(|(s, _)| *s == f.severity)
            .unwrap_or(2);
        shared
            .entry((f.scope, f.location.clone().unwrap_or_default()))
            .or_insert([0; 3])[slot] += 1;
    }
    let mut values = Vec::new();
    for ((scope, location), counts) in &shared {
        let scope = match scope {
            Scope::Bucket => "bucket",
            Scope::Destination => "destination",
            Scope::Database => "database",
        };
        for (i, (_, name)) in SEVERITIES.iter().enumerate() {
            values.push((
                format!(
                    "scope=\"{scope}\",location=\"{}\",severity=\"{name}\"",
                    escape(location)
                ),
                counts[i].to_string(),
            ));
        }
    }
    gauge(
        &mut s,
        "cnpg_ops_audit_location_findings",
        "Audit findings about a bucket or a destination path shared by databases, by severity.",
        &values,
    );
    gauge(
        &mut s,
        "cnpg_ops_audit_last_run_timestamp_seconds",
        "Unix time the audit finished.",
        &[(String::new(), run.finished_at.timestamp().to_string())],
    );
    gauge(
        &mut s,
        "cnpg_ops_audit_duration_seconds",
        "How long the audit took.",
        &[(String::new(), format!("{:.3}", run.duration_seconds))],
    );
    s
}

/// Every finding id the audit emits, with its meaning.
#[must_use]
pub fn all_checks() -> Vec<(&'static str, &'static str)> {
    CHECKS
        .iter()
        .chain(bucket::CHECKS)
        .chain(prefixes::CHECKS)
        .chain(live::CHECKS)
        .chain(RUN_CHECKS)
        .copied()
        .collect()
}

/// Ids the command emits when a database cannot be audited.
pub const RUN_CHECKS: &[(&str, &str)] = &[
    (
        "catalog-unreadable",
        "the catalog could not be listed or read (denied, unreachable, no such bucket)",
    ),
    (
        "catalog-missing",
        "no catalog at the server folder the manifests name",
    ),
    (
        "catalog-not-configured",
        "the Cluster has no backup configuration",
    ),
    (
        "database-unreadable",
        "a database folder whose manifests cannot be read",
    ),
];
