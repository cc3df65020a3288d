//! `cnpg-ops backup` end to end: the real binary against the fake API
//! server (which plays the operator) and the bundled real catalog as a
//! file:// mirror, into which the "operator" writes the finished backup.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use support::events::{events, finished};
use support::fake_kube::{FakeKube, Options};
use support::repo::{FixtureRepo, copy_dir};

const CONTEXT: &str = "gke_acme-prod_europe-west1_main";
/// A DONE backup of the bundled catalog whose WAL is all there.
const DONOR: &str = "20261124T164719";

struct Setup {
    repo: FixtureRepo,
    catalog: tempfile::TempDir,
    state: tempfile::TempDir,
    kube: FakeKube,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

fn server_folder(catalog: &Path) -> PathBuf {
    catalog.join("cluster/pg-main")
}

/// The GKE fixture's prod/foo archiving to the bundled catalog; a fake API
/// server holding its live Cluster (plugin model).
fn setup() -> Setup {
    let (repo, catalog) = support::repo::gke_on_bundled_catalog();
    let kube = FakeKube::start_with(Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    });
    kube.add(live_cluster(true));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), CONTEXT);
    Setup {
        repo,
        catalog,
        state: tempfile::tempdir().unwrap(),
        kube,
        kubeconfig,
        _dir: dir,
    }
}

fn live_cluster(plugin: bool) -> Value {
    let mut spec = json!({"instances": 2, "storage": {"size": "10Gi"}});
    if plugin {
        spec["plugins"] = json!([{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
            "parameters": {"barmanObjectName": "foo-store", "serverName": "pg-main"}}]);
    } else {
        spec["backup"] = json!({"barmanObjectStore": {"destinationPath": "gs://acme-prod-pg-backups/foo",
            "googleCredentials": {"gkeEnvironment": true}}});
    }
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "foo-pg", "namespace": "foo-prod"},
        "spec": spec,
        "status": {"phase": "Cluster in healthy state", "conditions": [
            {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
             "lastTransitionTime": "2026-11-24T11:00:00Z"},
            {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": "2026-11-24T11:00:00Z"}
        ]}
    })
}

/// The "operator" uploads the backup: the donor backup's objects under the
/// new backup id.
fn write_backups_into_the_catalog(s: &Setup) {
    let base = server_folder(s.catalog.path()).join("base");
    s.kube.on_backup_completed(move |b| {
        let id = b["status"]["backupId"].as_str().unwrap();
        copy_dir(&base.join(DONOR), &base.join(id));
    });
}

fn backup(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["backup", "--env", "prod", "--svc", "foo", "--poll", "20ms"])
        .arg("--repo")
        .arg(s.repo.root())
        .args(args)
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("CNPG_OPS_STATE_DIR", s.state.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

fn posts(kube: &FakeKube) -> Vec<String> {
    kube.requests()
        .into_iter()
        .filter(|r| r.starts_with("POST ") && r.contains("/backups"))
        .collect()
}

#[test]
fn a_backup_with_the_live_method_waited_for_and_found_in_the_catalog() {
    let s = setup();
    write_backups_into_the_catalog(&s);
    let out = backup(&s, &["--wait", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let locate = finished(&ev, "locate");
    assert_eq!(locate["facts"]["method"], "plugin");
    assert_eq!(locate["facts"]["context"], CONTEXT);
    let name = finished(&ev, "create-backup")["facts"]["backup"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(name.starts_with("foo-pg-"), "{name}");
    let id = finished(&ev, "wait-backup")["facts"]["backup_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id, "20261124T120000");
    let confirm = finished(&ev, "confirm-in-catalog");
    assert_eq!(confirm["facts"]["backup_id"], id);
    assert!(confirm["summary"].as_str().unwrap().contains("DONE"));
    assert_eq!(ev.last().unwrap()["status"], "succeeded");

    // The Backup the fake validated and ran is the plugin kind.
    let stored = s
        .kube
        .get(&format!(
            "/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/backups/{name}"
        ))
        .unwrap();
    assert_eq!(stored["spec"]["method"], "plugin");
    assert_eq!(
        stored["spec"]["pluginConfiguration"]["name"],
        "barman-cloud.cloudnative-pg.io"
    );
    assert_eq!(stored["spec"]["cluster"]["name"], "foo-pg");
    assert_eq!(stored["status"]["phase"], "completed");
    assert_eq!(posts(&s.kube).len(), 1);
}

#[test]
fn the_inline_method_when_the_live_cluster_uses_barman_object_store() {
    let s = setup();
    s.kube
        .delete("/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg")
        .unwrap();
    assert!(s.kube.wait_until(Duration::from_secs(5), |k| {
        k.get("/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg")
            .is_none()
    }));
    s.kube.add(live_cluster(false));
    let out = backup(&s, &["-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert_eq!(
        finished(&ev, "locate")["facts"]["method"],
        "barmanObjectStore"
    );
    // The repository says plugin: said, and the live method wins.
    assert!(String::from_utf8_lossy(&out.stderr).contains("live Cluster uses barmanObjectStore"));
    // Without --wait: created, not waited for.
    assert!(
        finished(&ev, "wait-backup")["summary"]
            .as_str()
            .unwrap()
            .contains("not waited")
    );
}

#[test]
fn a_failed_backup_shows_the_operators_error_and_what_to_check() {
    let s = setup();
    s.kube.fail_next_backups(
        1,
        "can't upload backup: AccessDenied: storage.objects.create",
    );
    let out = backup(&s, &["--wait"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AccessDenied: storage.objects.create"),
        "{err}"
    );
    assert!(err.contains("identity binding"), "{err}");
    assert!(err.contains("ContinuousArchiving is True"), "{err}");
}

#[test]
fn completed_but_not_in_the_catalog_is_a_finding() {
    let s = setup();
    // No hook: the operator says completed, the bucket holds nothing new.
    let out = backup(&s, &["--wait", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("20261124T120000"), "{err}");
    assert!(err.contains("is not there"), "{err}");
}

#[test]
fn no_cluster_in_the_api_and_no_context() {
    let s = setup();
    s.kube
        .delete("/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg")
        .unwrap();
    assert!(s.kube.wait_until(Duration::from_secs(5), |k| {
        k.get("/apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg")
            .is_none()
    }));
    let out = backup(&s, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no Cluster foo-prod/foo-pg"));
    assert!(posts(&s.kube).is_empty());

    let out = backup(&s, &["--context", "elsewhere"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no context `elsewhere`"), "{err}");
    assert!(err.contains(CONTEXT), "{err}");
}

#[test]
fn an_interrupted_wait_resumes_without_a_second_backup() {
    let s = setup();
    write_backups_into_the_catalog(&s);
    // The API fails the first looks at the Backup: the run stops in the wait.
    s.kube.fail_requests("GET", "/backups/", 500, Some(1));
    let out = backup(&s, &["--wait", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "step_failed" && e["step"] == "wait-backup")
    );
    // Run again: the Backup made by the first run is waited for.
    let out = backup(&s, &["--wait", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == "create-backup")
    );
    assert_eq!(ev.last().unwrap()["status"], "succeeded");
    assert_eq!(posts(&s.kube).len(), 1);
}

#[test]
fn two_backups_in_the_same_second_get_distinct_names() {
    let s = setup();
    let first = backup(&s, &["-o", "json", "--restart"]);
    let second = backup(&s, &["-o", "json", "--restart"]);
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let name = |o: &Output| {
        finished(&events(o), "create-backup")["facts"]["backup"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_ne!(name(&first), name(&second));
    assert_eq!(
        posts(&s.kube).len(),
        2 + usize::from(name(&second).ends_with("-1"))
    );
}

/// With no S3 credentials here, the catalog is read with the keys of the
/// Secret the ObjectStore names, read from the cluster: the store sees that
/// key id; the secret never shows in the output.
#[test]
fn no_local_credentials_reads_the_catalog_with_the_manifests_secret() {
    use std::sync::{Arc, Mutex};
    use support::fake_http::{FakeHttp, Request, Response};

    const KEY_ID: &str = "AKIAFROMTHESECRET";
    const SECRET: &str = "wJalrXUtnFEMI-from-the-secret";
    let seen: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let s3 = FakeHttp::start_with(move |r: &Request| {
        log.lock()
            .unwrap()
            .push(r.header("authorization").unwrap_or("").to_owned());
        Response::Json(403, json!({"error": "AccessDenied"}))
    });

    let repo = FixtureRepo::copy("selfhosted");
    repo.replace(
        "clusters/prod/databases/shop/object-store.yaml",
        "endpointURL: https://minio.prod.lan:9000",
        &format!("endpointURL: {}", s3.url),
    );
    let kube = FakeKube::start_with(Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    });
    kube.add(json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {"instances": 2, "storage": {"size": "40Gi"},
                 "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                              "parameters": {"barmanObjectName": "shop-store", "serverName": "shop"}}]},
        "status": {"phase": "Cluster in healthy state"}
    }));
    // Encoded the way the API serves Secrets (base64), through the typed struct.
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("shop-s3".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        data: Some(
            [("ACCESS_KEY_ID", KEY_ID), ("ACCESS_SECRET_KEY", SECRET)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), k8s_openapi::ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    };
    let mut secret = serde_json::to_value(&secret).unwrap();
    secret["apiVersion"] = json!("v1");
    secret["kind"] = json!("Secret");
    kube.add(secret);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.kubeconfig(dir.path(), "k3s-prod");
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "backup", "--env", "prod", "--svc", "shop", "--poll", "20ms", "--wait",
        ])
        .args(["--timeout", "1s", "-v"])
        .arg("--repo")
        .arg(repo.root())
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", &kubeconfig)
        .env("CNPG_OPS_STATE_DIR", state.path())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    // The store refuses (it is a fake): the run fails in the catalog step.
    assert_ne!(out.status.code(), Some(0));
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|a| a.contains(&format!("Credential={KEY_ID}/"))),
        "{seen:?}"
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("Secret shop/shop-s3"), "{all}");
    assert!(!all.contains(SECRET), "the secret was printed: {all}");
}
