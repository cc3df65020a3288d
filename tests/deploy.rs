//! The Kubernetes deployment of the scheduled audit (`deploy/`): every manifest
//! parses with the project's YAML reader, every core object survives a round
//! trip through its typed `k8s-openapi` struct (a misspelled or misplaced field
//! is dropped and shows up as a difference), the alerts only use metrics the
//! audit exposes, and the image builds what the CronJob runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use cnpg_ops::audit::{AuditFinding, DatabaseMetrics, RunInfo, Scope};
use cnpg_ops::catalog::findings::Severity;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Files in `deploy/` that are not Kubernetes objects for kustomize.
const NOT_RESOURCES: &[&str] = &["kustomization.yaml", "alerts.yaml"];

/// The metrics' user: the Dockerfile's USER and the pod's runAsUser.
const UID: i64 = 65532;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn read(name: &str) -> String {
    let path = deploy().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON.
fn documents(name: &str) -> Vec<Value> {
    cnpg_ops::yaml::parse_values(&read(name)).unwrap_or_else(|e| panic!("deploy/{name}: {e}"))
}

/// The YAML files of `deploy/`, sorted.
fn yaml_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            Path::new(n)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
        })
        .collect();
    names.sort();
    names
}

/// Every document of every Kubernetes manifest, with its file name.
fn objects() -> Vec<(String, Value)> {
    yaml_files()
        .into_iter()
        .filter(|n| !NOT_RESOURCES.contains(&n.as_str()))
        .flat_map(|n| documents(&n).into_iter().map(move |d| (n.clone(), d)))
        .collect()
}

/// The one object of this kind, typed.
fn only<T: DeserializeOwned>(kind: &str) -> T {
    let found: Vec<Value> = objects()
        .into_iter()
        .filter(|(_, d)| d["kind"] == kind)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(found.len(), 1, "expected exactly one {kind} in deploy/");
    serde_json::from_value(found[0].clone()).unwrap()
}

/// Where two JSON values differ, as `path: left != right` lines.
fn differences(left: &Value, right: &Value, path: &str, out: &mut Vec<String>) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for k in keys {
                let here = format!("{path}.{k}");
                match (l.get(k), r.get(k)) {
                    (Some(a), Some(b)) => differences(a, b, &here, out),
                    (Some(a), None) => out.push(format!("{here}: {a} is lost")),
                    (None, Some(b)) => out.push(format!("{here}: {b} is added")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (a, b)) in l.iter().zip(r).enumerate() {
                differences(a, b, &format!("{path}[{i}]"), out);
            }
        }
        _ if left != right => out.push(format!("{path}: {left} != {right}")),
        _ => {}
    }
}

/// Deserializes into the typed struct and back; anything the struct does not
/// know (a typo, a field at the wrong level) is dropped and reported.
fn round_trip<T: DeserializeOwned + Serialize>(file: &str, doc: &Value) {
    let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| {
        panic!(
            "deploy/{file}: {} {}: {e}",
            doc["kind"], doc["metadata"]["name"]
        )
    });
    let back = serde_json::to_value(&typed).unwrap();
    let mut diff = Vec::new();
    differences(doc, &back, "", &mut diff);
    assert!(
        diff.is_empty(),
        "deploy/{file}: {} {} does not survive a round trip through its schema:\n{}",
        doc["kind"],
        doc["metadata"]["name"],
        diff.join("\n")
    );
}

#[test]
fn every_core_object_round_trips_through_its_typed_schema() {
    let mut kinds = BTreeSet::new();
    for (file, doc) in objects() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        match kind.as_str() {
            "CronJob" => round_trip::<CronJob>(&file, &doc),
            "ServiceAccount" => round_trip::<ServiceAccount>(&file, &doc),
            "ClusterRole" => round_trip::<ClusterRole>(&file, &doc),
            "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&file, &doc),
            "ConfigMap" => round_trip::<ConfigMap>(&file, &doc),
            // Not in k8s-openapi; checked against alerts.yaml below.
            "PrometheusRule" => assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1"),
            other => panic!("deploy/{file}: unexpected kind {other:?}"),
        }
        kinds.insert(kind);
    }
    let expected: BTreeSet<String> = [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CronJob",
        "PrometheusRule",
        "ServiceAccount",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds, expected);
}

#[test]
fn no_resource_hard_codes_a_namespace() {
    for (file, doc) in objects() {
        assert!(
            doc["metadata"].get("namespace").is_none(),
            "deploy/{file}: {} {} sets metadata.namespace; kustomization.yaml sets it",
            doc["kind"],
            doc["metadata"]["name"]
        );
        assert!(
            doc["metadata"]["name"].is_string(),
            "deploy/{file}: a document without metadata.name"
        );
    }
    let binding: ClusterRoleBinding = only("ClusterRoleBinding");
    for s in binding.subjects.unwrap_or_default() {
        assert!(
            s.namespace.is_none(),
            "the ClusterRoleBinding's subject {} names a namespace; kustomize fills it in",
            s.name
        );
    }
    let kustomization = &documents("kustomization.yaml")[0];
    assert!(
        kustomization["namespace"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "kustomization.yaml sets no namespace"
    );
}

#[test]
fn kustomization_lists_exactly_the_manifests() {
    let k = &documents("kustomization.yaml")[0];
    assert_eq!(k["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k["kind"], "Kustomization");
    let listed: Vec<String> = k["resources"]
        .as_array()
        .expect("kustomization.yaml has resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len(), "a resource listed twice");
    let present: BTreeSet<String> = yaml_files()
        .into_iter()
        .filter(|n| !NOT_RESOURCES.contains(&n.as_str()))
        .collect();
    assert_eq!(
        unique, present,
        "kustomization.yaml resources vs deploy/*.yaml"
    );

    // The image the kustomization rewrites is the one the CronJob names.
    let names: BTreeSet<&str> = k["images"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["name"].as_str())
        .collect();
    let cron: CronJob = only("CronJob");
    let pod = pod_spec(&cron);
    for c in containers(&pod) {
        let image = c.image.as_deref().unwrap_or_default();
        assert!(
            names.contains(image),
            "container {} uses image {image:?}, which kustomization.yaml's images do not set",
            c.name
        );
    }
}

fn pod_spec(cron: &CronJob) -> PodSpec {
    cron.spec
        .job_template
        .spec
        .as_ref()
        .and_then(|j| j.template.spec.clone())
        .expect("the CronJob has a pod template")
}

fn containers(pod: &PodSpec) -> Vec<&Container> {
    pod.init_containers
        .iter()
        .flatten()
        .chain(&pod.containers)
        .collect()
}

fn script(c: &Container) -> String {
    c.command
        .iter()
        .flatten()
        .chain(c.args.iter().flatten())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn cronjob_schedules_the_audit_safely() {
    let cron: CronJob = only("CronJob");
    let spec = &cron.spec;
    assert!(!spec.schedule.is_empty());
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    assert!(spec.starting_deadline_seconds.is_some_and(|s| s > 0));
    assert!(spec.successful_jobs_history_limit.is_some());
    assert!(spec.failed_jobs_history_limit.is_some());
    let job = spec.job_template.spec.as_ref().unwrap();
    let deadline = job.active_deadline_seconds.expect("activeDeadlineSeconds");
    assert!(
        deadline > 0 && deadline < 30 * 60,
        "a run must end before the next one is due"
    );
    assert!(job.backoff_limit.is_some(), "backoffLimit");

    let pod = pod_spec(&cron);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let sa: ServiceAccount = only("ServiceAccount");
    assert_eq!(pod.service_account_name, sa.metadata.name);

    // The main container runs the audit on the clone; the init container clones.
    assert_eq!(pod.containers.len(), 1, "one container, no sidecar");
    let audit = &pod.containers[0];
    let run = script(audit);
    assert!(
        run.contains("cnpg-ops audit"),
        "the container does not run the audit: {run}"
    );
    assert!(run.contains("--repo /work/repo"), "{run}");
    assert!(
        run.contains("exit \"$rc\""),
        "the Job's result must be the audit's exit code"
    );
    let init = pod.init_containers.as_deref().unwrap_or_default();
    assert_eq!(init.len(), 1);
    let clone = script(&init[0]);
    assert!(
        clone.contains("git clone") && clone.contains("--depth 1"),
        "{clone}"
    );
    assert!(clone.contains("/work/repo"), "{clone}");

    // The podFailurePolicy's exit codes are about the audit container.
    if let Some(policy) = &job.pod_failure_policy {
        for rule in &policy.rules {
            if let Some(codes) = &rule.on_exit_codes {
                assert_eq!(codes.container_name.as_deref(), Some(audit.name.as_str()));
            }
        }
    }

    // Volumes: every mount has a volume, the credentials are optional.
    let volumes: BTreeMap<&str, _> = pod
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v))
        .collect();
    for c in containers(&pod) {
        for m in c.volume_mounts.iter().flatten() {
            assert!(
                volumes.contains_key(m.name.as_str()),
                "{}: mount of unknown volume {}",
                c.name,
                m.name
            );
        }
    }
    for v in volumes.values() {
        if let Some(secret) = &v.secret {
            assert_eq!(
                secret.optional,
                Some(true),
                "the Secret {} must be optional",
                v.name
            );
        }
    }

    // The settings come from the ConfigMap in deploy/.
    let cm: ConfigMap = only("ConfigMap");
    let data = cm.data.clone().unwrap_or_default();
    assert!(data.contains_key("FLUX_REPO_URL") && data.contains_key("FLUX_REPO_BRANCH"));
    for c in containers(&pod) {
        let refs: Vec<&str> = c
            .env_from
            .iter()
            .flatten()
            .filter_map(|e| e.config_map_ref.as_ref())
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(refs, [cm.metadata.name.as_deref().unwrap()], "{}", c.name);
    }
}

#[test]
fn cronjob_is_hardened() {
    let cron: CronJob = only("CronJob");
    let pod = pod_spec(&cron);
    let pod_sc = pod.security_context.clone().unwrap_or_default();
    assert_eq!(pod_sc.run_as_non_root, Some(true));
    assert_eq!(pod_sc.run_as_user, Some(UID));
    assert_eq!(
        pod_sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("RuntimeDefault")
    );
    assert_ne!(pod.host_network, Some(true));
    assert_ne!(pod.host_pid, Some(true));
    for c in containers(&pod) {
        let sc = c
            .security_context
            .clone()
            .unwrap_or_else(|| panic!("{} has no securityContext", c.name));
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
        assert_ne!(sc.privileged, Some(true), "{}", c.name);
        assert_ne!(sc.run_as_non_root, Some(false), "{}", c.name);
        assert_ne!(sc.run_as_user, Some(0), "{}", c.name);
        let caps = sc.capabilities.unwrap_or_default();
        assert_eq!(
            caps.drop.as_deref(),
            Some(&["ALL".to_owned()][..]),
            "{}",
            c.name
        );
        assert!(caps.add.is_none_or(|a| a.is_empty()), "{}", c.name);
        let resources = c
            .resources
            .clone()
            .unwrap_or_else(|| panic!("{} has no resources", c.name));
        let limits = resources.limits.unwrap_or_default();
        assert_eq!(
            limits.get("memory").map(|q| q.0.as_str()),
            Some("256Mi"),
            "{}",
            c.name
        );
        let requests = resources.requests.unwrap_or_default();
        assert!(
            requests.contains_key("memory") && requests.contains_key("cpu"),
            "{}",
            c.name
        );
    }
}

#[test]
fn cronjob_scripts_are_valid_shell() {
    let cron: CronJob = only("CronJob");
    let pod = pod_spec(&cron);
    for c in containers(&pod) {
        let command = c.command.clone().unwrap_or_default();
        assert_eq!(command, ["/bin/sh", "-c"], "{}", c.name);
        let args = c.args.clone().unwrap_or_default();
        assert_eq!(args.len(), 1, "{}: one script", c.name);
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &args[0]])
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}: {}",
            c.name,
            String::from_utf8_lossy(&out.stderr)
        );
        // Kubernetes expands $(NAME) for variables it knows and `$$` to `$`:
        // the scripts must not depend on either.
        assert!(!args[0].contains("$$"), "{}", c.name);
        for var in c.env.iter().flatten() {
            assert!(!args[0].contains(&format!("$({})", var.name)), "{}", c.name);
        }
    }
}

#[test]
fn rbac_is_read_only_and_keeps_out_of_secrets() {
    let role: ClusterRole = only("ClusterRole");
    let mut granted = BTreeSet::new();
    for rule in role.rules.as_deref().unwrap_or_default() {
        for verb in &rule.verbs {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str()),
                "verb {verb} is not read-only"
            );
        }
        assert!(
            rule.non_resource_urls.is_none() && rule.resource_names.is_none(),
            "{rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                assert!(resource != "*" && group != "*", "wildcard in {rule:?}");
                assert!(
                    resource != "secrets" && !resource.contains('/'),
                    "{resource} must not be granted"
                );
                granted.insert(format!("{resource}.{group}"));
            }
        }
    }
    let expected: BTreeSet<String> = [
        "backups.postgresql.cnpg.io",
        "clusters.postgresql.cnpg.io",
        "objectstores.barmancloud.cnpg.io",
        "scheduledbackups.postgresql.cnpg.io",
    ]
    .map(String::from)
    .into();
    assert_eq!(granted, expected);
    assert!(role.aggregation_rule.is_none());

    let binding: ClusterRoleBinding = only("ClusterRoleBinding");
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let sa: ServiceAccount = only("ServiceAccount");
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), sa.metadata.name.as_ref());
}

#[test]
fn service_account_carries_the_workload_identity() {
    let sa: ServiceAccount = only("ServiceAccount");
    let annotations = sa.metadata.annotations.unwrap_or_default();
    let gsa = annotations
        .get("iam.gke.io/gcp-service-account")
        .expect("the GKE Workload Identity annotation");
    assert!(gsa.ends_with(".iam.gserviceaccount.com"), "{gsa}");
    assert!(
        read("serviceaccount.yaml").contains("# eks.amazonaws.com/role-arn:"),
        "the EKS IRSA annotation, commented"
    );
}

/// A real exposition: one database with every value and one bucket finding,
/// so every metric has a sample with its labels.
fn exposition() -> String {
    let metrics = DatabaseMetrics {
        env: "prod".into(),
        svc: "orders".into(),
        namespace: "orders-prod".into(),
        cluster: "orders-pg".into(),
        catalog_readable: true,
        first_recoverable: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
        newest_wal_age_seconds: Some(60),
        newest_backup_age_seconds: Some(3600),
        wal_gaps: Some(0),
        lifecycle_checked: true,
    };
    let finding = AuditFinding {
        id: "lifecycle-expires-needed",
        severity: Severity::Error,
        scope: Scope::Bucket,
        env: None,
        svc: None,
        location: Some("s3://backups".into()),
        subject: "bucket".into(),
        message: "message".into(),
        evidence: json!({}),
        hint: None,
    };
    cnpg_ops::audit::prometheus(
        &[finding],
        &[metrics],
        RunInfo {
            finished_at: Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap(),
            duration_seconds: 1.5,
        },
    )
}

/// Metric name to the label names its samples carry.
fn exposed_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let text = exposition();
    let mut metrics: BTreeMap<String, BTreeSet<String>> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let name = l.split_whitespace().next().unwrap().to_owned();
            (name, BTreeSet::new())
        })
        .collect();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let labels = metrics
            .get_mut(name)
            .unwrap_or_else(|| panic!("sample of undeclared metric: {line}"));
        if let Some((_, rest)) = line.split_once('{') {
            labels.extend(label.captures_iter(rest).map(|c| c[1].to_owned()));
        }
    }
    assert!(!metrics.is_empty(), "no # TYPE lines in:\n{text}");
    metrics
}

fn rules(groups: &Value) -> Vec<&Value> {
    groups
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .collect()
}

fn alert_groups() -> Value {
    let docs = documents("alerts.yaml");
    assert_eq!(docs.len(), 1);
    docs[0]["groups"].clone()
}

#[test]
fn alerts_use_only_exposed_metrics_and_labels() {
    let exposed = exposed_metrics();
    let metric = regex::Regex::new(r"\bcnpg_ops_[a-z0-9_]+").unwrap();
    let label_ref = regex::Regex::new(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)").unwrap();
    let groups = alert_groups();
    let rules = rules(&groups);
    assert!(!rules.is_empty());
    for rule in rules {
        let name = rule["alert"].as_str().expect("alert name");
        let expr = rule["expr"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: expr"));
        let used: BTreeSet<&str> = metric.find_iter(expr).map(|m| m.as_str()).collect();
        assert!(!used.is_empty(), "{name}: uses no cnpg_ops metric: {expr}");
        // Labels an annotation may name: those of the metrics used, plus the
        // ones the scrape adds.
        let mut labels: BTreeSet<String> = ["job", "instance"].map(String::from).into();
        for m in &used {
            let Some(l) = exposed.get(*m) else {
                panic!("{name}: {m} is not in the exposition of `cnpg-ops audit`");
            };
            labels.extend(l.iter().cloned());
        }
        let annotations = rule["annotations"].as_object().unwrap();
        for text in annotations.values().filter_map(Value::as_str) {
            for c in label_ref.captures_iter(text) {
                assert!(
                    labels.contains(&c[1]),
                    "{name}: an annotation names label {}, which {used:?} do not carry",
                    &c[1]
                );
            }
        }
    }
}

#[test]
fn alerts_never_select_by_namespace() {
    let namespace = regex::Regex::new(r"namespace\s*(=~|!~|!=|=)").unwrap();
    let groups = alert_groups();
    for rule in rules(&groups) {
        let expr = rule["expr"].as_str().unwrap();
        assert!(
            !namespace.is_match(expr),
            "{}: matches on namespace: {expr}",
            rule["alert"]
        );
    }
}

#[test]
fn every_alert_has_for_severity_and_annotations() {
    let duration = regex::Regex::new(r"^([0-9]+(ms|s|m|h|d|w|y))+$").unwrap();
    let groups = alert_groups();
    let mut names = BTreeSet::new();
    for group in groups.as_array().unwrap() {
        assert!(group["name"].is_string(), "a group without a name");
    }
    for rule in rules(&groups) {
        let name = rule["alert"].as_str().expect("every rule is an alert");
        assert!(names.insert(name.to_owned()), "{name} defined twice");
        let r#for = rule["for"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: for"));
        assert!(duration.is_match(r#for), "{name}: for: {for}");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        for key in ["summary", "description"] {
            assert!(
                rule["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.trim().is_empty()),
                "{name}: annotations.{key}"
            );
        }
    }
    for wanted in [
        "CnpgOpsAuditErrors",
        "CnpgOpsWalArchivingStalled",
        "CnpgOpsBackupTooOld",
        "CnpgOpsWalGaps",
        "CnpgOpsLifecycleViolation",
        "CnpgOpsCatalogUnreadable",
        "CnpgOpsAuditNotRunning",
    ] {
        assert!(names.contains(wanted), "missing alert {wanted}");
    }
    // A dead audit alerts both when its metrics go stale and when they vanish.
    let not_running = rules(&groups)
        .into_iter()
        .find(|r| r["alert"] == "CnpgOpsAuditNotRunning")
        .unwrap();
    let expr = not_running["expr"].as_str().unwrap();
    assert!(
        expr.contains("time()") && expr.contains("absent("),
        "{expr}"
    );
}

#[test]
fn prometheusrule_holds_the_same_rules_as_alerts_yaml() {
    let docs = documents("prometheusrule.yaml");
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(docs[0]["kind"], "PrometheusRule");
    let mut diff = Vec::new();
    differences(
        &alert_groups(),
        &docs[0]["spec"]["groups"],
        "groups",
        &mut diff,
    );
    assert!(
        diff.is_empty(),
        "prometheusrule.yaml's spec.groups differ from alerts.yaml's groups:\n{}",
        diff.join("\n")
    );
}

/// `major.minor` as a comparable pair.
fn version(v: &str) -> (u32, u32) {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap_or(0))
}

#[test]
fn dockerfile_builds_the_cli_and_runs_it_as_non_root() {
    let text = read("Dockerfile");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let froms: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FROM "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );

    // The toolchain is at least the crate's rust-version.
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let msrv = manifest["package"]["rust-version"].as_str().unwrap();
    let tag = froms[0]
        .strip_prefix("rust:")
        .unwrap_or_else(|| panic!("the build stage is not a rust image: {}", froms[0]));
    let image_version = tag.split('-').next().unwrap();
    assert!(
        version(image_version) >= version(msrv),
        "rust:{image_version} is older than rust-version {msrv}"
    );
    assert!(froms[1].starts_with("debian:"), "{}", froms[1]);
    assert!(text.contains("cargo build --release --locked --bin cnpg-ops"));
    for package in ["ca-certificates", "git", "curl"] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains("apt-get install") && l.contains(package)),
            "the runtime image lacks {package}"
        );
    }

    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    let uid = user.split(':').next().unwrap().trim();
    assert_eq!(
        uid.parse::<i64>().ok(),
        Some(UID),
        "USER {user}: numeric, non-root"
    );
    let entrypoint = lines
        .iter()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("an ENTRYPOINT");
    assert!(entrypoint.contains("cnpg-ops"), "ENTRYPOINT {entrypoint}");

    // Everything the build reads is in the build context and copied.
    let ignore = read("Dockerfile.dockerignore");
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src"].map(String::from).into();
    let include = regex::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for c in include.captures_iter(&source) {
                    let target = path.parent().unwrap().join(&c[1]);
                    let target = target.canonicalize().unwrap_or(target);
                    if let Ok(rel) = target.strip_prefix(root().canonicalize().unwrap()) {
                        let top = rel.components().next().unwrap();
                        needed.insert(top.as_os_str().to_string_lossy().into_owned());
                    }
                }
            }
        }
    }
    for item in &needed {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("COPY ") && l.split_whitespace().any(|w| w == item)),
            "deploy/Dockerfile does not COPY {item}"
        );
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{item}")),
            "deploy/Dockerfile.dockerignore leaves {item} out of the build context"
        );
    }
}
