//! `cnpg-ops reclone` end to end: the real binary, a git repository with an
//! origin, the bundled real catalog as the source, and the fake API server
//! playing CloudNativePG and Flux (Flux applies what origin's main holds).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use support::events::events;
use support::fake_kube::{FakeKube, Options};
use support::repo::{FixtureRepo, git};

const CONTEXT: &str = "gke_acme-dev_europe-west1_main";
const PROD_CONTEXT: &str = "gke_acme-prod_europe-west1_main";
const NOW: &str = "2026-11-24T16:50:00Z";
/// A target the bundled catalog proves (timeline 2, after the failover).
const TARGET: &str = "2026-11-24T16:47:05Z";
const CLUSTER_PATH: &str = "/apis/postgresql.cnpg.io/v1/namespaces/foo-dev/clusters/foo-pg";
const FLUX_PATH: &str =
    "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/databases-foo";
const SOURCE_PATH: &str =
    "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/flux-system";

struct Setup {
    repo: FixtureRepo,
    origin: PathBuf,
    state: tempfile::TempDir,
    kube: FakeKube,
    kubeconfig: PathBuf,
    _catalog: tempfile::TempDir,
    _dirs: tempfile::TempDir,
}

/// The GKE fixture: prod/foo archives to the bundled catalog, dev/foo is its
/// clone (generation g2) with an empty archive of its own; the repository is
/// pushed to a bare origin that Flux (the fake) follows.
fn setup() -> Setup {
    setup_for("dev")
}

/// As [`setup`], with the live Cluster and Flux of `env` (dev: the clone;
/// prod: the source itself, for an in-place restore).
fn setup_for(env: &'static str) -> Setup {
    let catalog = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-main");
    support::fixture::materialize(&fixture, catalog.path(), &|_| false).unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let dev_archive = dirs.path().join("dev-archive");
    std::fs::create_dir_all(&dev_archive).unwrap();
    let source = format!("file://{}/cluster", catalog.path().display());
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "destinationPath: gs://acme-prod-pg-backups/foo",
        &format!("destinationPath: {source}"),
    );
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "        barmanObjectName: foo-store\n",
        "        barmanObjectName: foo-store\n        serverName: pg-main\n",
    );
    for env in ["prod", "dev"] {
        repo.replace(
            &format!("fluxcd/databases/{env}/foo/database.yaml"),
            "postgresql:17.6-standard-bookworm",
            "postgresql:15.14-standard-bookworm",
        );
    }
    repo.replace(
        "fluxcd/databases/dev/foo/object-store.yaml",
        "destinationPath: gs://acme-dev-pg-backups/foo",
        &format!("destinationPath: file://{}", dev_archive.display()),
    );
    repo.replace(
        "fluxcd/databases/dev/foo/object-store.yaml",
        "destinationPath: gs://acme-prod-pg-backups/foo",
        &format!("destinationPath: {source}"),
    );
    repo.replace(
        "fluxcd/databases/dev/foo/database.yaml",
        "          barmanObjectName: foo-store-prod\n          serverName: foo-pg\n",
        "          barmanObjectName: foo-store-prod\n          serverName: pg-main\n",
    );
    repo.git_init();
    let origin = dirs.path().join("origin.git");
    git(
        dirs.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            origin.to_str().unwrap(),
        ],
    );
    git(
        repo.root(),
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    git(repo.root(), &["push", "-q", "origin", "main"]);

    let kube = FakeKube::start_with(Options {
        tick: Duration::from_millis(10),
        ..Options::default()
    });
    kube.add(live_cluster(env));
    // Flux applies dev/foo's Cluster as origin's main holds it; a new Cluster
    // gets its first backup, as its ScheduledBackup (immediate) would take.
    let origin_for_hook = origin.clone();
    kube.on_reconcile(move |k, _ks| {
        let Some(text) = show(
            &origin_for_hook,
            "main:fluxcd/databases/dev/foo/database.yaml",
        ) else {
            return;
        };
        let mut cluster = cnpg_ops::yaml::parse_values(&text)
            .unwrap()
            .into_iter()
            .find(|d| d["kind"] == "Cluster")
            .unwrap();
        cluster["metadata"]["namespace"] = json!(format!("foo-{env}"));
        let new = k.get(&cluster_path(env)).is_none();
        k.apply(cluster).unwrap();
        if new {
            k.apply(json!({
                "apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
                "metadata": {"name": "foo-pg-first", "namespace": format!("foo-{env}")},
                "spec": {"cluster": {"name": "foo-pg"}, "method": "plugin",
                         "pluginConfiguration": {"name": "barman-cloud.cloudnative-pg.io"}}
            }))
            .unwrap();
        }
    });
    let main = git(repo.root(), &["rev-parse", "main"]).trim().to_owned();
    kube.add(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system"},
        "spec": {"interval": "1m", "url": "ssh://git@example.invalid/fleet.git", "ref": {"branch": "main"}},
    }));
    serve_revision(&kube, &main);
    kube.add(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "databases-foo", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": format!("./fluxcd/databases/{env}/foo"), "prune": false,
                 "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}
    }));
    let context = if env == "dev" { CONTEXT } else { PROD_CONTEXT };
    let kubeconfig = kube.kubeconfig(dirs.path(), context);
    Setup {
        repo,
        origin,
        state: tempfile::tempdir().unwrap(),
        kube,
        kubeconfig,
        _catalog: catalog,
        _dirs: dirs,
    }
}

/// What Flux's source-controller serves: the artifact of `sha`.
fn serve_revision(kube: &FakeKube, sha: &str) {
    kube.merge(
        &format!("{SOURCE_PATH}/status"),
        &json!({"status": {"artifact": {"revision": format!("main@sha1:{sha}")}}}),
    )
    .unwrap();
}

fn show(git_dir: &Path, spec: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(git_dir)
        .args(["show", spec])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn cluster_path(env: &str) -> String {
    format!("/apis/postgresql.cnpg.io/v1/namespaces/foo-{env}/clusters/foo-pg")
}

/// foo in `env` as it runs: healthy, archiving (dev: the clone's generation
/// g2; prod: the bundled catalog's server).
fn live_cluster(env: &str) -> Value {
    let server = if env == "dev" { "foo-pg-g2" } else { "pg-main" };
    json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "foo-pg", "namespace": format!("foo-{env}"),
                     "labels": {"kustomize.toolkit.fluxcd.io/name": "databases-foo",
                                "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}},
        "spec": {"instances": 1, "storage": {"size": "50Gi"},
                 "plugins": [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": true,
                              "parameters": {"barmanObjectName": "foo-store", "serverName": server}}]},
        "status": {"phase": "Cluster in healthy state", "conditions": [
            {"type": "Ready", "status": "True", "reason": "ClusterIsReady", "message": "Cluster is Ready",
             "lastTransitionTime": "2026-11-24T11:00:00Z"},
            {"type": "ContinuousArchiving", "status": "True", "reason": "ContinuousArchivingSuccess",
             "message": "Continuous archiving is working", "lastTransitionTime": "2026-11-24T11:00:00Z"}
        ]}
    })
}

fn reclone(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "reclone", "dev", "--svc", "foo", "--poll", "20ms", "--now", NOW,
        ])
        .args(["--to", TARGET, "--yes", "--push", "-o", "json"])
        .args(args)
        .current_dir(s.repo.root())
        .env("NO_COLOR", "1")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("CNPG_OPS_STATE_DIR", s.state.path())
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

fn step_status(ev: &[Value]) -> Vec<(String, String)> {
    ev.last().unwrap()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn suspended(kube: &FakeKube) -> bool {
    kube.get(FLUX_PATH).unwrap()["spec"]["suspend"] == json!(true)
}

#[test]
fn a_reclone_waits_for_the_merge_then_recreates_the_clone() {
    let s = setup();
    // First run: everything up to the commit; Flux stays suspended until the
    // commit is on the branch it follows.
    let out = reclone(&s, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let ev = events(&out);
    let steps = step_status(&ev);
    let status_of = |id: &str| {
        steps
            .iter()
            .find(|(s, _)| s == id)
            .map(|(_, st)| st.clone())
    };
    assert_eq!(
        status_of("backup-destination").as_deref(),
        Some("finished"),
        "{steps:?}"
    );
    assert_eq!(status_of("delete-cluster").as_deref(), Some("finished"));
    assert_eq!(status_of("write-manifests").as_deref(), Some("finished"));
    assert_eq!(status_of("resume-flux").as_deref(), Some("failed"));
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("not on origin/main"),
        "{failed}"
    );
    assert!(
        failed["hint"].as_str().unwrap().contains("SUSPENDED"),
        "{failed}"
    );
    assert!(suspended(&s.kube));
    assert!(s.kube.get(CLUSTER_PATH).is_none(), "the clone was deleted");
    // A last backup of the clone was taken before.
    let backups = s
        .kube
        .list("/apis/postgresql.cnpg.io/v1/namespaces/foo-dev/backups/");
    assert!(
        backups.iter().any(|b| b["status"]["phase"] == "completed"),
        "{backups:?}"
    );

    // The change is reviewed and merged: origin's main moves to the commit.
    let write = ev
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "write-manifests")
        .unwrap();
    let commit = write["facts"]["commit"].as_str().unwrap();
    assert_eq!(write["facts"]["pushed"], true);
    git(&s.origin, &["update-ref", "refs/heads/main", commit]);

    // Second run: resumes; Flux's source still serves the old revision for a
    // moment, and Flux is resumed only once it serves the merge.
    let kube = s.kube.clone();
    let merged = commit.to_owned();
    let source_catches_up = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        serve_revision(&kube, &merged);
    });
    let out = reclone(&s, &[]);
    source_catches_up.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let ev = events(&out);
    let steps = step_status(&ev);
    for done in [
        "backup-destination",
        "suspend-flux",
        "delete-cluster",
        "write-manifests",
    ] {
        assert!(
            steps.iter().any(|(s, st)| s == done && st == "skipped"),
            "{done}: {steps:?}"
        );
    }
    assert!(!suspended(&s.kube));
    // Flux's source was asked to fetch, looked at until it served the merge,
    // and only then was the Kustomization resumed.
    let log = s.kube.requests();
    let asked = log
        .iter()
        .position(|r| r.starts_with("PATCH ") && r.contains("/gitrepositories/flux-system"))
        .expect("a reconcile request on the GitRepository");
    let looks = log
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/gitrepositories/flux-system"))
        .count();
    assert!(looks >= 2, "looked {looks} time(s): {log:?}");
    let resumed = log
        .iter()
        .rposition(|r| r.starts_with("PATCH ") && r.contains("/kustomizations/databases-foo"))
        .unwrap();
    assert!(resumed > asked, "{log:?}");
    let cluster = s.kube.get(CLUSTER_PATH).unwrap();
    assert_eq!(cluster["status"]["phase"], "Cluster in healthy state");
    assert_eq!(
        cluster["spec"]["plugins"][0]["parameters"]["serverName"],
        "foo-pg-g3"
    );
    assert!(
        cluster["spec"]["bootstrap"]["recovery"].is_object(),
        "{cluster:#}"
    );
}

#[test]
fn nothing_is_deleted_when_the_target_is_not_proven() {
    let s = setup();
    // latest is not recoverable in the bundled catalog (a segment is missing).
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "reclone", "dev", "--svc", "foo", "--poll", "20ms", "--now", NOW,
        ])
        .args(["--yes", "-o", "json"])
        .current_dir(s.repo.root())
        .env("KUBECONFIG", &s.kubeconfig)
        .env("CNPG_OPS_STATE_DIR", s.state.path())
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(s.kube.get(CLUSTER_PATH).is_some());
    assert!(!suspended(&s.kube));
    let writes: Vec<String> = s
        .kube
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn a_failed_last_backup_stops_before_anything_is_suspended() {
    let s = setup();
    s.kube.fail_next_backups(1, "can't upload: AccessDenied");
    let out = reclone(&s, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let ev = events(&out);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "backup-destination", "{err}");
    assert!(failed["hint"].as_str().unwrap().contains("--skip-backup"));
    assert!(!suspended(&s.kube));
    assert!(s.kube.get(CLUSTER_PATH).is_some());
}

#[test]
fn a_volume_that_never_goes_times_out_and_says_flux_is_suspended() {
    let s = setup();
    s.kube.pvc_never_goes("foo-dev", "foo-pg-1");
    let out = reclone(&s, &["--skip-backup", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "delete-cluster");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s")
    );
    let hint = failed["hint"].as_str().unwrap();
    assert!(hint.contains("Flux is SUSPENDED"), "{hint}");
    assert!(
        hint.contains("flux resume kustomization databases-foo -n flux-system"),
        "{hint}"
    );
    assert!(suspended(&s.kube));
}

#[test]
fn no_delete_while_flux_would_recreate_the_old_cluster() {
    let s = setup();
    let run = |yes: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"));
        cmd.args([
            "reclone", "dev", "--svc", "foo", "--poll", "20ms", "--now", NOW,
        ])
        .args(["--to", TARGET, "--skip-backup", "-o", "json"])
        .current_dir(s.repo.root())
        .env("KUBECONFIG", &s.kubeconfig)
        .env("CNPG_OPS_STATE_DIR", s.state.path())
        .env_remove("AWS_ENDPOINT_URL");
        if yes {
            cmd.arg("--yes");
        }
        cmd.output().unwrap()
    };
    // Without --yes and without a terminal, the run stops at the delete,
    // after the suspend: it says so.
    let out = run(false);
    assert_eq!(out.status.code(), Some(2));
    let ev = events(&out);
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "delete-cluster");
    assert!(
        failed["hint"]
            .as_str()
            .unwrap()
            .contains("Flux is SUSPENDED"),
        "{failed}"
    );
    assert!(suspended(&s.kube));

    // Someone resumes Flux by hand; the resumed run must not delete.
    s.kube
        .merge(FLUX_PATH, &json!({"spec": {"suspend": false}}))
        .unwrap();
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    let ev = events(&out);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == "suspend-flux")
    );
    let failed = ev.iter().find(|e| e["event"] == "step_failed").unwrap();
    assert_eq!(failed["step"], "delete-cluster");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("is not suspended"),
        "{failed}"
    );
    assert!(s.kube.get(CLUSTER_PATH).is_some());
}

#[test]
fn check_mode_is_refused() {
    let s = setup();
    let out = reclone(&s, &["--mode", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(s.kube.get(CLUSTER_PATH).is_some());
    assert!(!suspended(&s.kube));
}

#[test]
fn pitr_in_place_recreates_the_database_from_its_own_catalog() {
    let s = setup_for("prod");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
            .args(["pitr", "--in-place", "--env", "prod", "--svc", "foo"])
            .args([
                "--poll", "20ms", "--now", NOW, "--to", TARGET, "--yes", "--push", "-o", "json",
            ])
            .current_dir(s.repo.root())
            .env("KUBECONFIG", &s.kubeconfig)
            .env("CNPG_OPS_STATE_DIR", s.state.path())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert_eq!(ev[0]["playbook"], "pitr-in-place");
    let write = ev
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == "write-manifests")
        .unwrap_or_else(|| panic!("{ev:#?}"));
    let commit = write["facts"]["commit"].as_str().unwrap().to_owned();
    assert!(s.kube.get(&cluster_path("prod")).is_none());
    git(&s.origin, &["update-ref", "refs/heads/main", &commit]);
    serve_revision(&s.kube, &commit);
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = s.kube.get(&cluster_path("prod")).unwrap();
    assert_eq!(cluster["status"]["phase"], "Cluster in healthy state");
    let plugin = &cluster["spec"]["plugins"][0]["parameters"];
    assert_eq!(plugin["serverName"], "foo-pg-g2", "{cluster:#}");
    // It recovers from its own catalog, the one it wrote before.
    let source = cluster["spec"]["bootstrap"]["recovery"]["source"]
        .as_str()
        .unwrap();
    let ext = cluster["spec"]["externalClusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == source)
        .unwrap();
    assert_eq!(
        ext["plugin"]["parameters"]["serverName"], "pg-main",
        "{cluster:#}"
    );
}
