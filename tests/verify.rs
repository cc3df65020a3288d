//! `cnpg-ops verify` end to end: the real binary against the fake API server
//! (commands in the primary run through the real pods/exec websocket), the
//! GKE fixture's prod/foo archiving to the bundled real catalog. A healthy
//! database, then each failure along the chain identity → bucket
//! permissions → archiving → WAL on the PVC → CrashLoop, each named as the
//! likely cause with the later failures as its consequences.

mod support;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::fake_kube::{ExecCall, ExecReply, FakeKube, Options};
use support::repo::FixtureRepo;

const CONTEXT: &str = "gke_acme-prod_europe-west1_main";
const NS: &str = "foo-prod";
const GSA: &str = "cnpg-backup@acme-prod.iam.gserviceaccount.com";
/// Shortly after the bundled catalog's newest WAL was archived.
const NOW: &str = "2026-11-24T16:50:00Z";

/// How the primary answers the commands verify runs.
#[derive(Clone)]
struct Pod {
    archive: (i32, &'static str),
    ready: u64,
    wal_used_pct: u64,
    vector: &'static str,
}

impl Default for Pod {
    fn default() -> Pod {
        Pod {
            archive: (0, ""),
            ready: 1,
            wal_used_pct: 20,
            vector: "0.8.0",
        }
    }
}

struct Setup {
    repo: FixtureRepo,
    catalog: tempfile::TempDir,
    kube: FakeKube,
    kubeconfig: PathBuf,
    pod: Arc<Mutex<Pod>>,
    _dir: tempfile::TempDir,
}

fn reply(stdout: &str, stderr: &str, exit_code: i32) -> ExecReply {
    ExecReply {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        exit_code,
    }
}

fn answer(pod: &Pod, call: &ExecCall) -> ExecReply {
    let argv: Vec<&str> = call.command.iter().map(String::as_str).collect();
    // The plugin's sidecar image is distroless: python3, no shell.
    if call.container == "plugin-barman-cloud" && argv.first() == Some(&"sh") {
        return reply("", "exec: \"sh\": executable file not found in $PATH", 127);
    }
    let gib: u64 = 1 << 30;
    match argv.as_slice() {
        ["df", "-P", "-B1", mounts @ ..] => {
            let mut out = "Filesystem 1-blocks Used Available Capacity Mounted on\n".to_owned();
            for m in mounts {
                let size = 10 * gib;
                let used = size / 100 * pod.wal_used_pct;
                let _ = writeln!(out, "/dev/sdb {size} {used} {} 0% {m}", size - used);
            }
            reply(&out, "", 0)
        }
        ["sh", "-c", script, ..] if script.contains("archive_status") => {
            reply(&format!("{}\n", pod.ready), "", 0)
        }
        ["python3", "-c", _, "barman-cloud-wal-archive", "--test", ..] => {
            let input: Value = serde_json::from_slice(&call.stdin).unwrap();
            let env = &input["env"];
            if env["AWS_ACCESS_KEY_ID"] == "AKIASHOP"
                && env["AWS_SECRET_ACCESS_KEY"] == "shop-secret"
            {
                reply("", pod.archive.1, pod.archive.0)
            } else {
                reply(
                    "",
                    "An error occurred (InvalidAccessKeyId) when calling the HeadBucket operation",
                    1,
                )
            }
        }
        ["barman-cloud-wal-archive", "--test", ..] => {
            assert_eq!(call.container, "plugin-barman-cloud");
            reply("", pod.archive.1, pod.archive.0)
        }
        ["sh", "-c", script, "sh", owner, db] if script.contains("PGPASSWORD") => {
            assert_eq!(owner, db);
            if call.stdin == b"s3cret\n" {
                reply("1\n", "", 0)
            } else {
                reply("", "psql: error: password authentication failed", 2)
            }
        }
        ["sh", "-c", _, "sh", _, sql] if sql.contains("pg_extension") => {
            reply(&format!("{}\n", pod.vector), "", 0)
        }
        ["sh", "-c", _, "sh", _, sql] if sql.contains("pg_switch_wal") => {
            reply("0/5000078\n", "", 0)
        }
        other => reply("", &format!("unexpected command {other:?}"), 127),
    }
}

/// The operator reports archiving failing, as it does once
/// barman-cloud-wal-archive keeps failing.
fn fail_archiving(s: &Setup) {
    s.kube
        .merge(
            &format!("/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/foo-pg/status"),
            &json!({"status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "ClusterIsReady",
                 "message": "Cluster is Ready", "lastTransitionTime": "2026-11-24T11:00:00Z"},
                {"type": "ContinuousArchiving", "status": "False",
                 "reason": "ContinuousArchivingFailing",
                 "message": "unexpected failure invoking barman-cloud-wal-archive: exit status 1",
                 "lastTransitionTime": "2026-11-24T12:00:00Z"}]}}),
        )
        .unwrap();
}

fn setup() -> Setup {
    let (repo, catalog) = support::repo::gke_on_bundled_catalog();
    let kube = fake();
    kube.add(json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "foo-pg", "namespace": NS},
        "spec": {"instances": 2, "storage": {"size": "10Gi"}, "walStorage": {"size": "10Gi"},
            "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                "parameters": {"barmanObjectName": "foo-store", "serverName": "pg-main"}}]},
        "status": {"phase": "Cluster in healthy state", "conditions": [
            {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
             "lastTransitionTime": "2026-11-24T11:00:00Z"},
            {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": "2026-11-24T11:00:00Z"}]}
    }));
    kube.add(json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "foo-pg", "namespace": NS,
                     "annotations": {"iam.gke.io/gcp-service-account": GSA}}}));
    kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "foo-app", "namespace": NS}, "type": "kubernetes.io/basic-auth",
        "data": {"username": "Zm9v", "password": "czNjcmV0"}}));
    kube.add(
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
        "metadata": {"name": "foo-pg-nightly", "namespace": NS},
        "spec": {"schedule": "0 0 2 * * *", "cluster": {"name": "foo-pg"}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}}),
    );
    kube.add(
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
        "metadata": {"name": "foo-pg-nightly-20261124", "namespace": NS,
                     "creationTimestamp": "2026-11-24T02:00:00Z"},
        "spec": {"cluster": {"name": "foo-pg"}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}},
        "status": {"phase": "completed"}}),
    );
    started(repo, catalog, kube, CONTEXT, NS, 2)
}

/// A fake API server whose controllers tick every 10 ms.
fn fake() -> FakeKube {
    FakeKube::start_with(Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    })
}

/// The bundled real catalog as a file:// mirror.
fn bundled_catalog() -> tempfile::TempDir {
    let catalog = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-main");
    support::fixture::materialize(&fixture, catalog.path(), &|_| false).unwrap();
    catalog
}

/// The setup once `kube` holds the objects: the primary answers as [`Pod`]
/// says, the instance pods of `ns` are there, and a kubeconfig names the
/// server under `context`.
fn started(
    repo: FixtureRepo,
    catalog: tempfile::TempDir,
    kube: FakeKube,
    context: &str,
    ns: &str,
    pods: usize,
) -> Setup {
    let pod = Arc::new(Mutex::new(Pod::default()));
    let answers = pod.clone();
    kube.on_exec(move |call| answer(&answers.lock().unwrap(), call));
    assert!(kube.wait_until(Duration::from_secs(5), |k| {
        k.list(&format!("/api/v1/namespaces/{ns}/pods")).len() == pods
    }));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), context);
    Setup {
        repo,
        catalog,
        kube,
        kubeconfig,
        pod,
        _dir: dir,
    }
}

/// Runs verify; returns the exit code and the JSON report.
fn verify(s: &Setup, args: &[&str]) -> (i32, Value) {
    verify_svc(s, "foo", args)
}

/// Runs verify on prod/`svc`; returns the exit code and the JSON report.
fn verify_svc(s: &Setup, svc: &str, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "verify", "--env", "prod", "--svc", svc, "-o", "json", "--now", NOW,
        ])
        .args(["--wal-max-age", "2h"])
        .arg("--repo")
        .arg(s.repo.root())
        .args(args)
        .env("KUBECONFIG", &s.kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("AWS_ACCESS_KEY_ID")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v["verify"].clone())
}

fn status<'v>(report: &'v Value, id: &str) -> &'v str {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {report:#}"))["status"]
        .as_str()
        .unwrap()
}

fn failing(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_healthy_database_passes_every_live_check() {
    let s = setup();
    let (code, r) = verify(&s, &[]);
    for id in [
        "identity",
        "cluster-phase",
        "continuous-archiving",
        "instances",
        "volume-usage",
        "wal-backlog",
        "backups",
        "bucket-wal",
        "bucket-backup",
        "archive-test",
        "vector",
        "app-connect",
    ] {
        assert_eq!(status(&r, id), "pass", "{id}: {r:#}");
    }
    // The bundled catalog really has a gap in its WAL: the only failure.
    assert_eq!(failing(&r), ["bucket-gaps"], "{r:#}");
    assert_eq!(code, 1);
    // A hole in the past: reported with its fix, not blamed on today's chain.
    assert!(r["cause"].is_null(), "{r:#}");
    // Read-only: pg_switch_wal is not run without --switch-wal, and the
    // password went over stdin, never on a command line.
    let calls = s.kube.exec_calls();
    assert!(
        calls
            .iter()
            .all(|c| !c.command.join(" ").contains("pg_switch_wal"))
    );
    assert!(
        calls
            .iter()
            .all(|c| !c.command.join(" ").contains("s3cret"))
    );
    let archive = calls
        .iter()
        .find(|c| {
            c.command
                .first()
                .is_some_and(|a| a == "barman-cloud-wal-archive")
        })
        .unwrap();
    assert_eq!(
        archive.command[1..],
        [
            "--test",
            "--cloud-provider",
            "google-cloud-storage",
            &format!("file://{}/cluster", s.catalog.path().display()),
            "pg-main",
            "/var/lib/postgresql/data/pgdata/pg_wal/000000010000000000000001",
        ]
    );
    let (_, r) = verify(&s, &["--switch-wal"]);
    assert_eq!(status(&r, "switch-wal"), "pass");
    assert!(
        s.kube
            .exec_calls()
            .iter()
            .any(|c| c.command.join(" ").contains("pg_switch_wal"))
    );
}

#[test]
fn a_missing_identity_binding_is_the_cause_of_a_failing_archive() {
    let s = setup();
    s.repo.replace(
        "terraform/gcp/prod/service-accounts/service-accounts.yaml",
        "      - foo-prod/foo-pg\n",
        "",
    );
    s.pod.lock().unwrap().archive = (
        1,
        "google.auth.exceptions.DefaultCredentialsError: Could not automatically determine credentials",
    );
    fail_archiving(&s);
    let (code, r) = verify(&s, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "identity"), "fail");
    assert_eq!(r["cause"]["link"], "identity", "{r:#}");
    assert_eq!(r["cause"]["check"], "identity");
    let consequences: Vec<&str> = r["cause"]["consequences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(consequences.contains(&"archive-test"), "{r:#}");
    assert!(consequences.contains(&"continuous-archiving"), "{r:#}");
    assert!(
        r["cause"]["fix"]
            .as_str()
            .unwrap()
            .contains("- foo-prod/foo-pg"),
        "{r:#}"
    );

    // The text for people: one line per check, the cause and its fix last.
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["verify", "--env", "prod", "--svc", "foo", "--now", NOW])
        .arg("--repo")
        .arg(s.repo.root())
        .env("KUBECONFIG", &s.kubeconfig)
        .env("NO_COLOR", "1")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(
            "prod/foo (foo-prod/foo-pg in context `gke_acme-prod_europe-west1_main`)\n"
        ),
        "{text}"
    );
    assert!(text.contains("  FAIL identity "), "{text}");
    assert!(text.contains("  ok   cluster-phase "), "{text}");
    assert!(
        text.contains("likely cause: identity binding (shown by identity); it explains "),
        "{text}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_forbidden_bucket_is_named_after_a_good_identity() {
    let s = setup();
    s.pod.lock().unwrap().archive = (
        1,
        "403 POST https://storage.googleapis.com/: cnpg-backup@acme-prod.iam.gserviceaccount.com does not have storage.objects.create access",
    );
    let (_, r) = verify(&s, &[]);
    assert_eq!(status(&r, "identity"), "pass");
    assert_eq!(status(&r, "archive-test"), "fail");
    assert_eq!(r["cause"]["link"], "bucket-permissions", "{r:#}");
    assert!(
        r["cause"]["fix"]
            .as_str()
            .unwrap()
            .contains("roles/storage.objectAdmin")
    );
}

#[test]
fn wal_piling_up_and_a_crash_loop_follow_from_failing_archiving() {
    let s = setup();
    {
        let mut p = s.pod.lock().unwrap();
        p.ready = 412;
        p.wal_used_pct = 97;
    }
    fail_archiving(&s);
    s.kube
        .merge(
            &format!("/api/v1/namespaces/{NS}/pods/foo-pg-2/status"),
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "postgres", "restartCount": 7,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        )
        .unwrap();
    let (_, r) = verify(&s, &[]);
    assert_eq!(status(&r, "continuous-archiving"), "fail");
    assert_eq!(r["cause"]["check"], "continuous-archiving", "{r:#}");
    assert_eq!(status(&r, "wal-backlog"), "fail");
    assert_eq!(status(&r, "volume-usage"), "fail");
    assert_eq!(status(&r, "instances"), "fail");
    assert_eq!(r["cause"]["link"], "archive-failing", "{r:#}");
    let consequences = r["cause"]["consequences"].to_string();
    for c in ["wal-backlog", "volume-usage", "instances"] {
        assert!(consequences.contains(c), "{c}: {r:#}");
    }
}

#[test]
fn a_missing_vector_and_a_crash_loop_are_reported() {
    let s = setup();
    s.pod.lock().unwrap().vector = "";
    s.kube
        .merge(
            &format!("/api/v1/namespaces/{NS}/pods/foo-pg-2/status"),
            &json!({"status": {"containerStatuses": [{"name": "postgres", "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
        )
        .unwrap();
    let (_, r) = verify(&s, &[]);
    assert_eq!(status(&r, "vector"), "fail");
    assert_eq!(status(&r, "instances"), "fail");
}

#[test]
fn a_cluster_the_api_does_not_have_is_reported_with_no_exec() {
    let s = setup();
    s.kube
        .delete(&format!(
            "/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/foo-pg"
        ))
        .unwrap();
    assert!(s.kube.wait_until(Duration::from_secs(5), |k| {
        k.get(&format!(
            "/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/foo-pg"
        ))
        .is_none()
    }));
    let (code, r) = verify(&s, &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "cluster"), "fail");
}

/// The self-hosted fixture's prod/shop (plugin model, S3 keys in Secret
/// shop-s3) archiving to the bundled catalog.
fn setup_s3(access_key: &str) -> Setup {
    let catalog = bundled_catalog();
    let repo = FixtureRepo::copy("selfhosted");
    repo.replace(
        "clusters/prod/databases/shop/object-store.yaml",
        "destinationPath: s3://pg-backups-prod/",
        &format!(
            "destinationPath: file://{}/cluster",
            catalog.path().display()
        ),
    );
    repo.replace(
        "clusters/prod/databases/shop/database.yaml",
        "serverName: shop",
        "serverName: pg-main",
    );
    let kube = fake();
    kube.add(json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"instances": 1, "storage": {"size": "10Gi"},
            "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                "parameters": {"barmanObjectName": "shop-store", "serverName": "pg-main"}}]},
        "status": {"phase": "Cluster in healthy state", "conditions": [
            {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": "2026-11-24T11:00:00Z"}]}
    }));
    kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shop-s3", "namespace": "shop"},
        "stringData": {"ACCESS_KEY_ID": access_key, "ACCESS_SECRET_KEY": "shop-secret"}}));
    kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "minio-ca", "namespace": "shop"},
        "stringData": {"ca.crt": "-----BEGIN CERTIFICATE-----"}}));
    kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "shop-app", "namespace": "shop"}, "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "shop", "password": "s3cret"}}));
    kube.add(
        json!({"apiVersion": "postgresql.cnpg.io/v1", "kind": "ScheduledBackup",
        "metadata": {"name": "shop-daily", "namespace": "shop"},
        "spec": {"schedule": "0 15 3 * * *", "cluster": {"name": "shop"}, "method": "plugin",
                 "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}}),
    );
    started(repo, catalog, kube, "k3s-prod", "shop", 1)
}

#[test]
fn s3_keys_reach_the_archive_test_on_stdin_only() {
    let s = setup_s3("AKIASHOP");
    let (_, r) = verify_svc(&s, "shop", &[]);
    assert_eq!(status(&r, "identity"), "pass", "{r:#}");
    assert_eq!(status(&r, "archive-test"), "pass", "{r:#}");
    assert_eq!(status(&r, "app-connect"), "pass", "{r:#}");
    let calls = s.kube.exec_calls();
    let archive = calls
        .iter()
        .find(|c| c.command.iter().any(|a| a == "barman-cloud-wal-archive"))
        .unwrap();
    assert!(archive.command.iter().any(|a| a == "aws-s3"));
    assert_eq!(archive.command[0], "python3");
    // The endpoint's CA came with the keys (the store names Secret minio-ca).
    let input: Value = serde_json::from_slice(&archive.stdin).unwrap();
    assert_eq!(input["ca"], "-----BEGIN CERTIFICATE-----");
    assert!(
        calls
            .iter()
            .all(|c| !c.command.join(" ").contains("shop-secret")
                && !c.command.join(" ").contains("AKIASHOP")),
        "a key reached a command line"
    );
}

#[test]
fn an_s3_key_left_as_the_placeholder_is_the_cause() {
    let s = setup_s3("<ACCESS_KEY_ID>");
    let (code, r) = verify_svc(&s, "shop", &[]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "identity"), "fail");
    assert_eq!(status(&r, "archive-test"), "fail");
    assert_eq!(r["cause"]["link"], "identity", "{r:#}");
    assert!(
        r["cause"]["consequences"]
            .to_string()
            .contains("archive-test"),
        "{r:#}"
    );
}

#[test]
fn switch_wal_waits_for_a_sticky_condition_to_flip() {
    let s = setup();
    fail_archiving(&s);
    // Once a new segment archives, the operator sets the condition True.
    let kube = s.kube.clone();
    let answers = s.pod.clone();
    s.kube.on_exec(move |call| {
        if call.command.iter().any(|a| a.contains("pg_switch_wal")) {
            kube.merge(
                &format!("/apis/postgresql.cnpg.io/v1/namespaces/{NS}/clusters/foo-pg/status"),
                &json!({"status": {"conditions": [
                    {"type": "ContinuousArchiving", "status": "True",
                     "reason": "ContinuousArchivingSuccess",
                     "message": "Continuous archiving is working",
                     "lastTransitionTime": "2026-11-24T16:49:00Z"}]}}),
            )
            .unwrap();
        }
        answer(&answers.lock().unwrap(), call)
    });
    let (_, r) = verify(&s, &["--switch-wal", "--switch-wait", "10s"]);
    assert_eq!(status(&r, "switch-wal"), "pass", "{r:#}");
    assert_eq!(status(&r, "continuous-archiving"), "pass", "{r:#}");
    let ev = &r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "switch-wal")
        .unwrap()["evidence"];
    assert_eq!(ev["continuous_archiving_before"], "False");
    assert_eq!(ev["continuous_archiving_after"], "True");
    assert_eq!(ev["lsn"], "0/5000078");
}

#[test]
fn switch_wal_that_does_not_flip_the_condition_fails() {
    let s = setup();
    fail_archiving(&s);
    let (code, r) = verify(&s, &["--switch-wal", "--switch-wait", "1s"]);
    assert_eq!(code, 1);
    assert_eq!(status(&r, "switch-wal"), "fail", "{r:#}");
    assert_eq!(status(&r, "continuous-archiving"), "fail");
}

#[test]
fn in_tree_archiving_is_tested_in_the_postgres_container() {
    let catalog = bundled_catalog();
    let repo = FixtureRepo::copy("selfhosted");
    repo.replace(
        "clusters/prod/databases/legacy/database.yaml",
        "      destinationPath: s3://pg-backups-prod/\n      serverName: legacy",
        &format!(
            "      destinationPath: file://{}/cluster\n      serverName: pg-main",
            catalog.path().display()
        ),
    );
    let kube = fake();
    kube.add(json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "legacy", "namespace": "legacy"},
        "spec": {"instances": 1, "storage": {"size": "10Gi"},
            "backup": {"barmanObjectStore": {"destinationPath": "s3://pg-backups-prod/",
                "s3Credentials": {"accessKeyId": {"name": "legacy-s3", "key": "ACCESS_KEY_ID"},
                    "secretAccessKey": {"name": "legacy-s3", "key": "ACCESS_SECRET_KEY"}}}}},
        "status": {"phase": "Cluster in healthy state"}
    }));
    kube.add(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "legacy-s3", "namespace": "legacy"},
        "stringData": {"ACCESS_KEY_ID": "AKIASHOP", "ACCESS_SECRET_KEY": "shop-secret"}}));
    let s = started(repo, catalog, kube, "k3s-prod", "legacy", 1);
    let (_, r) = verify_svc(&s, "legacy", &[]);
    assert_eq!(status(&r, "archive-test"), "pass", "{r:#}");
    let archive = s
        .kube
        .exec_calls()
        .into_iter()
        .find(|c| c.command.iter().any(|a| a == "barman-cloud-wal-archive"))
        .unwrap();
    assert_eq!(archive.container, "postgres");
    // No ScheduledBackup: no base backups are taken, said as such.
    assert_eq!(status(&r, "backups"), "fail");
}
