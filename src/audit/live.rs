//! The live state of a database, as the Kubernetes API reports it, judged
//! and compared with what the bucket shows. Free of IO: the command reads
//! the Cluster and ObjectStore status through `k8s`.

use chrono::{Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{AuditFinding, Scope, Thresholds, newest_wal, time};
use crate::catalog::analysis::Catalog;
use crate::catalog::findings::Severity;
use crate::gitops::discover::Database;
use crate::k8s::{ClusterStatus, RecoveryWindow};

/// The ids this module emits.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "live-unreachable",
        "the Kubernetes API of the env could not be read (unreachable, forbidden, no such context)",
    ),
    (
        "live-cluster-missing",
        "the manifests name a Cluster the API does not have",
    ),
    (
        "live-not-healthy",
        "the Cluster's phase is not `Cluster in healthy state`",
    ),
    (
        "live-archiving-failing",
        "the Cluster's ContinuousArchiving condition is False",
    ),
    (
        "live-archiving-unreported",
        "the Cluster has backups configured but no ContinuousArchiving condition",
    ),
    (
        "live-archiving-contradicts-bucket",
        "ContinuousArchiving is True but the bucket's newest WAL is older than the threshold",
    ),
    (
        "live-backup-failed",
        "the Cluster's LastBackupSucceeded condition says the last backup failed",
    ),
    (
        "live-object-store-missing",
        "the ObjectStore the Cluster's plugin names is not in the API",
    ),
    (
        "live-recovery-window-differs",
        "the recovery window the operator reports starts earlier than what the bucket can restore",
    ),
];

/// The healthy phase text.
pub const HEALTHY: &str = "Cluster in healthy state";

/// What the API said about one database.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LiveState {
    /// The kubeconfig context read.
    pub context: String,
    /// The Cluster's status; `None` when the API has no such Cluster.
    pub cluster: Option<ClusterStatus>,
    /// Plugin model: whether the ObjectStore exists (`None` for the in-tree model).
    pub object_store_found: Option<bool>,
    /// The window the ObjectStore reports for the server.
    pub object_store_window: Option<RecoveryWindow>,
    /// Why the ObjectStore could not be read, when it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store_error: Option<String>,
}

/// Judges the live state of `db` against its catalog (when it could be read).
#[must_use]
pub fn judge(
    db: &Database,
    live: &LiveState,
    catalog: Option<&Catalog>,
    thresholds: &Thresholds,
) -> Vec<AuditFinding> {
    let mut out = Vec::new();
    let mut push = |id: &'static str, severity, message: String, evidence: Value, hint: &str| {
        out.push(AuditFinding {
            id,
            severity,
            scope: Scope::Database,
            env: Some(db.env.clone()),
            svc: Some(db.svc.clone()),
            location: Some(format!("{}: {}/{}", live.context, db.namespace, db.cluster)),
            subject: db.cluster.clone(),
            message,
            evidence,
            hint: Some(hint.to_owned()),
        });
    };
    let Some(status) = &live.cluster else {
        push(
            "live-cluster-missing",
            Severity::Warning,
            format!(
                "context `{}` has no Cluster {}/{} although {} declares it",
                live.context, db.namespace, db.cluster, db.cluster_file
            ),
            json!({"context": live.context, "namespace": db.namespace, "cluster": db.cluster}),
            "check the env's Flux Kustomization (suspended, failing, or not yet reconciled) and the kube_context of the env",
        );
        return out;
    };
    let phase = status.phase.clone().unwrap_or_default();
    if phase != HEALTHY {
        push(
            "live-not-healthy",
            Severity::Warning,
            format!(
                "Cluster {}/{} is in phase `{}`{}",
                db.namespace,
                db.cluster,
                if phase.is_empty() { "(none)" } else { &phase },
                status
                    .phase_reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            json!({"phase": status.phase, "phase_reason": status.phase_reason}),
            "kubectl cnpg status shows what the operator waits for",
        );
    }

    let newest = catalog.and_then(newest_wal);
    let now = catalog.map_or_else(Utc::now, |c| c.now);
    match status.condition("ContinuousArchiving") {
        Some(c) if c.status == "False" => push(
            "live-archiving-failing",
            Severity::Error,
            format!(
                "Cluster {}/{} reports WAL archiving failing: {}",
                db.namespace,
                db.cluster,
                c.message.as_deref().unwrap_or("(no message)")
            ),
            json!({"reason": c.reason, "message": c.message,
                   "since": c.last_transition_time.map(time)}),
            "the chain to check: identity binding → bucket permissions → the archiver's error in the instance logs; WAL piles up on the PVC meanwhile",
        ),
        Some(c) if c.status == "True" => {
            if let Some((segment, at)) = &newest
                && now - *at > thresholds.wal_max_age
            {
                push(
                    "live-archiving-contradicts-bucket",
                    Severity::Error,
                    format!(
                        "Cluster {}/{} reports WAL archiving working, but the newest WAL in the bucket ({segment}) was uploaded {}s ago",
                        db.namespace,
                        db.cluster,
                        (now - *at).num_seconds()
                    ),
                    json!({"condition": c.reason, "since": c.last_transition_time.map(time),
                           "newest_segment": segment, "uploaded_at": time(*at)}),
                    "the Cluster archives somewhere else than the manifests say (destinationPath, serverName, endpoint), or it is idle and archive_timeout is off",
                );
            }
        }
        None if db.catalog.is_some() => push(
            "live-archiving-unreported",
            Severity::Warning,
            format!(
                "Cluster {}/{} has backups configured but no ContinuousArchiving condition: archive_command has never run",
                db.namespace, db.cluster
            ),
            json!({"conditions": status.conditions.iter().map(|c| c.kind.clone()).collect::<Vec<_>>()}),
            "check the plugin is installed and isWALArchiver is set on the Cluster's plugin entry",
        ),
        // Unknown, or no backups configured.
        Some(_) | None => {}
    }
    if let Some(c) = status.condition("LastBackupSucceeded")
        && c.status == "False"
        && c.reason.as_deref() != Some("BackupStarted")
    {
        push(
            "live-backup-failed",
            Severity::Error,
            format!(
                "the last backup of Cluster {}/{} failed: {}",
                db.namespace,
                db.cluster,
                c.message.as_deref().unwrap_or("(no message)")
            ),
            json!({"reason": c.reason, "message": c.message,
                   "since": c.last_transition_time.map(time)}),
            "kubectl get backups -n NAMESPACE shows the error; check the identity binding and bucket permissions",
        );
    }

    if let Some(e) = &live.object_store_error {
        push(
            "live-unreachable",
            Severity::Warning,
            format!("cannot compare the ObjectStore's recovery window: {e}"),
            json!({"context": live.context, "error": e}),
            "grant get on objectstores.barmancloud.cnpg.io (deploy/rbac.yaml)",
        );
    }
    // What the operator says a restore reaches against what the bucket holds.
    let reported = match live.object_store_found {
        Some(false) => {
            push(
                "live-object-store-missing",
                Severity::Warning,
                format!(
                    "context `{}` has no ObjectStore {}/{} although the Cluster's plugin names it",
                    live.context,
                    db.namespace,
                    db.catalog
                        .as_ref()
                        .and_then(|c| c.object_store.clone())
                        .unwrap_or_default()
                ),
                json!({"namespace": db.namespace,
                       "object_store": db.catalog.as_ref().and_then(|c| c.object_store.clone())}),
                "without it the plugin can neither archive nor back up: check the Flux Kustomization",
            );
            None
        }
        Some(true) => live
            .object_store_window
            .as_ref()
            .and_then(|w| w.first_recoverability_point),
        None => status.first_recoverability_point,
    };
    if let (Some(reported), Some((actual, backup))) =
        (reported, catalog.and_then(Catalog::first_recoverable_point))
        && actual - reported > Duration::minutes(1)
    {
        push(
            "live-recovery-window-differs",
            Severity::Warning,
            format!(
                "the operator reports restores from {}, but the bucket can only restore from {} (backup {backup})",
                time(reported),
                time(actual)
            ),
            json!({"reported": time(reported), "bucket": time(actual), "backup": backup}),
            "the backups the operator counts are gone from the bucket (a lifecycle rule, a manual delete) or it reads another catalog",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::db;
    use crate::catalog::tests::{Synth, at};
    use crate::k8s::Condition;

    fn cond(kind: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            kind: kind.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(at(10)),
        }
    }

    fn healthy_status() -> ClusterStatus {
        ClusterStatus {
            phase: Some(HEALTHY.into()),
            conditions: vec![
                cond(
                    "ContinuousArchiving",
                    "True",
                    "ContinuousArchivingSuccess",
                    "",
                ),
                cond("LastBackupSucceeded", "True", "LastBackupSucceeded", ""),
            ],
            ..ClusterStatus::default()
        }
    }

    fn catalog() -> Catalog {
        let mut s = Synth::new();
        s.wal(1, 1, 9).done("20260301T000020", 2, 25);
        s.analyse_at(95)
    }

    fn ids(f: &[AuditFinding]) -> Vec<&str> {
        f.iter().map(|f| f.id).collect()
    }

    fn live(status: Option<ClusterStatus>) -> LiveState {
        LiveState {
            context: "k3s-prod".into(),
            cluster: status,
            object_store_found: None,
            object_store_window: None,
            object_store_error: None,
        }
    }

    #[test]
    fn a_healthy_cluster_that_agrees_with_the_bucket_is_quiet() {
        let c = catalog();
        let f = judge(
            &db(None, None),
            &live(Some(healthy_status())),
            Some(&c),
            &Thresholds::default(),
        );
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn failing_archiving_failed_backup_and_phase() {
        let mut s = healthy_status();
        s.phase = Some("Setting up primary".into());
        s.conditions = vec![
            cond(
                "ContinuousArchiving",
                "False",
                "ContinuousArchivingFailing",
                "exit status 1: AccessDenied",
            ),
            cond("LastBackupSucceeded", "False", "LastBackupFailed", "403"),
        ];
        let f = judge(
            &db(None, None),
            &live(Some(s)),
            Some(&catalog()),
            &Thresholds::default(),
        );
        assert_eq!(
            ids(&f),
            [
                "live-not-healthy",
                "live-archiving-failing",
                "live-backup-failed"
            ]
        );
        assert!(f[1].message.contains("AccessDenied"));
        assert_eq!(f[1].severity, Severity::Error);
    }

    #[test]
    fn a_running_backup_is_not_a_failed_one() {
        let mut s = healthy_status();
        s.conditions[1] = cond("LastBackupSucceeded", "False", "BackupStarted", "");
        let f = judge(
            &db(None, None),
            &live(Some(s)),
            Some(&catalog()),
            &Thresholds::default(),
        );
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn archiving_said_to_work_while_the_bucket_is_stale() {
        let mut s = Synth::new();
        s.wal(1, 1, 9).done("20260301T000020", 2, 25);
        let c = s.analyse_at(500);
        let f = judge(
            &db(None, None),
            &live(Some(healthy_status())),
            Some(&c),
            &Thresholds::default(),
        );
        assert_eq!(ids(&f), ["live-archiving-contradicts-bucket"]);
    }

    #[test]
    fn missing_cluster_object_store_and_condition() {
        let f = judge(
            &db(None, None),
            &live(None),
            Some(&catalog()),
            &Thresholds::default(),
        );
        assert_eq!(ids(&f), ["live-cluster-missing"]);

        let mut d = db(None, None);
        d.catalog = Some(crate::gitops::discover::CatalogLocation {
            destination_path: "s3://b/pg".into(),
            server_name: "orders-pg".into(),
            server_name_explicit: false,
            endpoint_url: None,
            credentials: crate::gitops::discover::Credentials::Unknown,
            object_store: Some("orders-store".into()),
        });
        let mut s = healthy_status();
        s.conditions.clear();
        let mut l = live(Some(s));
        l.object_store_found = Some(false);
        let f = judge(&d, &l, Some(&catalog()), &Thresholds::default());
        assert_eq!(
            ids(&f),
            ["live-archiving-unreported", "live-object-store-missing"]
        );
        assert!(f[1].message.contains("orders-store"));
    }

    #[test]
    fn a_reported_window_older_than_the_bucket_can_restore() {
        let c = catalog();
        let (frp, _) = c.first_recoverable_point().unwrap();
        let mut l = live(Some(healthy_status()));
        l.object_store_found = Some(true);
        l.object_store_window = Some(RecoveryWindow {
            first_recoverability_point: Some(frp - Duration::days(3)),
            ..RecoveryWindow::default()
        });
        let f = judge(&db(None, None), &l, Some(&c), &Thresholds::default());
        assert_eq!(ids(&f), ["live-recovery-window-differs"]);
        l.object_store_window = Some(RecoveryWindow {
            first_recoverability_point: Some(frp),
            ..RecoveryWindow::default()
        });
        assert!(judge(&db(None, None), &l, Some(&c), &Thresholds::default()).is_empty());
    }
}
