//! What the runbooks do to a live cluster, each bounded by the caller's
//! timeout: suspend and resume a Flux Kustomization, delete a Cluster and
//! wait for its pods and volumes to go, wait for a Cluster to be healthy.
//! Every wait polls: a dropped watch cannot stall a run, and each look
//! reports progress.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};

use super::engine::StepError;
use crate::k8s::{CLUSTER, GIT_REPOSITORY, KUSTOMIZATION, Kube, POD, PVC};
use crate::output::Printer;

/// The healthy phase text.
pub const HEALTHY: &str = "Cluster in healthy state";

/// A Flux Kustomization, as the runbooks name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxRef {
    /// Namespace (usually flux-system).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for FluxRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Connects to the cluster of `env`: `context` when given, else the env's
/// `kube_context` in `.cnpg-ops.toml`.
pub async fn connect(
    root: &std::path::Path,
    env: &str,
    context: Option<&str>,
) -> Result<Kube, StepError> {
    let context = match context {
        Some(c) => c.to_owned(),
        None => kube_context(
            &crate::gitops::repo::Repo::load(root)
                .map_err(|e| StepError::usage(e.to_string(), None))?
                .env(env),
            None,
        )?,
    };
    Ok(Kube::connect(&context).await?)
}

/// The kubeconfig context of `env`: `context` when given, else its
/// `kube_context`.
pub fn kube_context(
    env: &crate::gitops::config::Env,
    context: Option<&str>,
) -> Result<String, StepError> {
    if let Some(c) = context {
        return Ok(c.to_owned());
    }
    env.kube_context.clone().ok_or_else(|| {
        StepError::usage(
            format!("no kube context for env {}", env.name),
            Some(format!(
                "pass --context, or set kube_context in [env.{}] of .cnpg-ops.toml",
                env.name
            )),
        )
    })
}

/// How to resume by hand, for messages that leave Flux suspended.
#[must_use]
pub fn resume_command(k: &FluxRef) -> String {
    format!("flux resume kustomization {} -n {}", k.name, k.namespace)
}

/// The annotation that marks a suspension this tool made, with the
/// database it was made for: a later run resumes what carries it.
pub const SUSPENDED_FOR: &str = "cnpg-ops/suspended-for";

/// The Flux Kustomization that applied a live object, from the labels Flux sets.
#[must_use]
pub fn flux_owner(object: &Value) -> Option<FluxRef> {
    let labels = object.pointer("/metadata/labels")?;
    Some(FluxRef {
        name: labels
            .get("kustomize.toolkit.fluxcd.io/name")?
            .as_str()?
            .to_owned(),
        namespace: labels
            .get("kustomize.toolkit.fluxcd.io/namespace")
            .and_then(Value::as_str)
            .unwrap_or("flux-system")
            .to_owned(),
    })
}

async fn kustomization(kube: &Kube, k: &FluxRef) -> Result<Value, StepError> {
    kube.get(KUSTOMIZATION, &k.namespace, &k.name)
        .await?
        .ok_or_else(|| {
            StepError::finding(
                format!("context `{}` has no Flux Kustomization {k}", kube.context),
                Some("check the Kustomization's name and namespace in the repository".to_owned()),
            )
        })
}

/// Whether `k` is suspended now.
pub async fn is_suspended(kube: &Kube, k: &FluxRef) -> Result<bool, StepError> {
    Ok(kustomization(kube, k)
        .await?
        .pointer("/spec/suspend")
        .and_then(Value::as_bool)
        == Some(true))
}

/// Suspends `k` for `purpose` (`namespace/cluster`); returns whether someone
/// else had already suspended it (then the run must not resume it). A
/// suspension this tool made for the same purpose counts as this run's.
pub async fn suspend(kube: &Kube, k: &FluxRef, purpose: &str) -> Result<bool, StepError> {
    let current = kustomization(kube, k).await?;
    let suspended = current.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true);
    let ours = current
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SUSPENDED_FOR))
        .and_then(Value::as_str)
        == Some(purpose);
    if suspended && !ours {
        return Ok(true);
    }
    kube.apply(
        KUSTOMIZATION,
        &k.namespace,
        &k.name,
        &json!({"metadata": {"annotations": {SUSPENDED_FOR: purpose}}, "spec": {"suspend": true}}),
    )
    .await?;
    Ok(false)
}

/// The GitRepository `k` applies from; refuses other source kinds, whose
/// revision this tool cannot compare with a commit.
pub async fn git_source(kube: &Kube, k: &FluxRef) -> Result<FluxRef, StepError> {
    let ks = kustomization(kube, k).await?;
    let source = ks
        .pointer("/spec/sourceRef")
        .cloned()
        .unwrap_or(Value::Null);
    let kind = source.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "GitRepository" {
        return Err(StepError::finding(
            format!(
                "Flux Kustomization {k} applies from a {kind}, not a GitRepository: cnpg-ops cannot tell whether it holds the new manifest"
            ),
            Some(format!(
                "check the source holds the commit, then resume by hand: {}",
                resume_command(k)
            )),
        ));
    }
    Ok(FluxRef {
        name: source
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        namespace: source
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or(&k.namespace)
            .to_owned(),
    })
}

/// Asks Flux to fetch `source` now; then reads the revision it serves, once.
pub async fn request_source(kube: &Kube, source: &FluxRef) -> Result<(), StepError> {
    let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    kube.apply(
        GIT_REPOSITORY,
        &source.namespace,
        &source.name,
        &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}}}),
    )
    .await?;
    Ok(())
}

/// The commit a GitRepository serves (`main@sha1:<sha>`, or the older `main/<sha>`).
pub async fn source_revision(kube: &Kube, source: &FluxRef) -> Result<Option<String>, StepError> {
    let repo = kube
        .get(GIT_REPOSITORY, &source.namespace, &source.name)
        .await?;
    Ok(repo
        .as_ref()
        .and_then(|r| r.pointer("/status/artifact/revision"))
        .and_then(Value::as_str)
        .and_then(revision_sha))
}

/// The commit id in a Flux revision string.
#[must_use]
pub fn revision_sha(revision: &str) -> Option<String> {
    let tail = revision
        .rsplit([':', '/'])
        .next()
        .filter(|t| t.len() >= 7 && t.chars().all(|c| c.is_ascii_hexdigit()))?;
    Some(tail.to_owned())
}

/// Resumes `k` (dropping this tool's mark) and asks Flux to reconcile now.
pub async fn resume(kube: &Kube, k: &FluxRef) -> Result<String, StepError> {
    let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    kube.apply(
        KUSTOMIZATION,
        &k.namespace,
        &k.name,
        &json!({
            "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": stamp}},
            "spec": {"suspend": false},
        }),
    )
    .await
    .map_err(|e| {
        let mut err = StepError::from(e);
        err.hint = Some(format!(
            "Flux Kustomization {k} is still SUSPENDED; resume it by hand: {}",
            resume_command(k)
        ));
        err
    })?;
    Ok(stamp)
}

/// Deletes Cluster `name` and waits, polling, until it, its pods and its
/// PVCs are gone. Returns whether there was a Cluster to delete.
pub async fn delete_cluster(
    kube: &Kube,
    namespace: &str,
    name: &str,
    poll: Duration,
    printer: &Printer,
) -> Result<bool, StepError> {
    let existed = kube.delete(CLUSTER, namespace, name).await?;
    let selector = format!("cnpg.io/cluster={name}");
    let mut last = (usize::MAX, usize::MAX, true);
    loop {
        let cluster = kube.get(CLUSTER, namespace, name).await?.is_some();
        let pods = kube.list(POD, namespace, &selector).await?.len();
        let pvcs = kube.list(PVC, namespace, &selector).await?.len();
        if !cluster && pods == 0 && pvcs == 0 {
            return Ok(existed);
        }
        if (pods, pvcs, cluster) != last {
            printer.info(&format!(
                "waiting for Cluster {namespace}/{name} to go: {}{pods} pod(s), {pvcs} PVC(s) left",
                if cluster { "the Cluster, " } else { "" }
            ));
            last = (pods, pvcs, cluster);
        }
        tokio::time::sleep(poll).await;
    }
}

/// What a live Cluster says about its health, for the wait and its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Phase text.
    pub phase: String,
    /// `ContinuousArchiving` status (`True`, `False`, or empty).
    pub archiving: String,
    /// The archiver's message when it fails.
    pub archiving_message: String,
    /// `LastBackupSucceeded` status.
    pub backup: String,
}

impl Health {
    /// Reads a Cluster object.
    #[must_use]
    pub fn of(cluster: &Value) -> Health {
        let cond = |t: &str, field: &str| {
            cluster
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some(t))
                })
                .and_then(|c| c.get(field))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        Health {
            phase: cluster
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            archiving: cond("ContinuousArchiving", "status"),
            archiving_message: cond("ContinuousArchiving", "message"),
            backup: cond("LastBackupSucceeded", "status"),
        }
    }

    /// Healthy, archiving, and its first backup done.
    #[must_use]
    pub fn ready(&self) -> bool {
        self.phase == HEALTHY && self.archiving == "True" && self.backup == "True"
    }

    /// One line for progress.
    #[must_use]
    pub fn line(&self) -> String {
        format!(
            "phase `{}`, ContinuousArchiving {}, LastBackupSucceeded {}",
            if self.phase.is_empty() {
                "(none)"
            } else {
                &self.phase
            },
            if self.archiving.is_empty() {
                "(not yet)"
            } else {
                &self.archiving
            },
            if self.backup.is_empty() {
                "(not yet)"
            } else {
                &self.backup
            }
        )
    }
}

/// Waits, polling, until Cluster `name` is healthy, archiving and has a
/// backup. A failing archiver does not end the wait (it may be a binding
/// that is still propagating) but is reported each time it changes.
pub async fn wait_healthy(
    kube: &Kube,
    namespace: &str,
    name: &str,
    poll: Duration,
    printer: &Printer,
) -> Result<Health, StepError> {
    let mut last: Option<Health> = None;
    loop {
        let health = kube
            .get(CLUSTER, namespace, name)
            .await?
            .map(|c| Health::of(&c));
        if let Some(h) = &health {
            if h.ready() {
                return Ok(h.clone());
            }
            if last.as_ref() != Some(h) {
                let mut line = format!("Cluster {namespace}/{name}: {}", h.line());
                if h.archiving == "False" && !h.archiving_message.is_empty() {
                    let _ = write!(line, " ({})", h.archiving_message);
                }
                printer.info(&line);
            }
            last = health;
        }
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_reads_the_conditions() {
        let c = json!({"status": {"phase": HEALTHY, "conditions": [
            {"type": "ContinuousArchiving", "status": "True"},
            {"type": "LastBackupSucceeded", "status": "False", "reason": "BackupStarted"}
        ]}});
        let h = Health::of(&c);
        assert!(!h.ready());
        assert!(h.line().contains("LastBackupSucceeded False"));
        let c = json!({"status": {"phase": HEALTHY, "conditions": [
            {"type": "ContinuousArchiving", "status": "True"},
            {"type": "LastBackupSucceeded", "status": "True"}
        ]}});
        assert!(Health::of(&c).ready());
        assert!(Health::of(&json!({})).line().contains("(none)"));
    }

    #[test]
    fn flux_revisions_and_owners() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            revision_sha(&format!("main@sha1:{sha}")).as_deref(),
            Some(sha)
        );
        assert_eq!(revision_sha(&format!("main/{sha}")).as_deref(), Some(sha));
        assert_eq!(revision_sha("main"), None);
        let c = json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": "apps",
                                               "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}}});
        assert_eq!(
            flux_owner(&c),
            Some(FluxRef {
                namespace: "flux-system".into(),
                name: "apps".into()
            })
        );
        assert_eq!(flux_owner(&json!({"metadata": {}})), None);
    }

    #[test]
    fn the_manual_resume_names_the_kustomization() {
        let k = FluxRef {
            namespace: "flux-system".into(),
            name: "db-shop".into(),
        };
        assert_eq!(
            resume_command(&k),
            "flux resume kustomization db-shop -n flux-system"
        );
    }
}
