//! `cnpg-ops audit` end to end on the bundled real catalog (a file:// mirror
//! of a barman-cloud capture) and the GKE fixture repository: the report in
//! text, JSON and Prometheus form, exit codes, and databases whose catalogs
//! cannot be read.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::repo::FixtureRepo;

const NOW: &str = "2026-11-24T16:50:00Z";

struct Setup {
    repo: FixtureRepo,
    catalog: tempfile::TempDir,
}

/// The GKE fixture; prod/foo archives to the bundled catalog, prod/bar to a
/// server folder that was never written beside it, dev/foo to a folder that
/// does not exist.
fn setup() -> Setup {
    let (repo, catalog) = support::repo::gke_on_bundled_catalog();
    let dest = format!("file://{}/cluster", catalog.path().display());
    repo.replace(
        "fluxcd/databases/prod/bar/database.yaml",
        "destinationPath: gs://acme-prod-pg-backups/bar",
        &format!("destinationPath: {dest}"),
    );
    repo.replace(
        "fluxcd/databases/dev/foo/object-store.yaml",
        "destinationPath: gs://acme-dev-pg-backups/foo",
        &format!(
            "destinationPath: file://{}/no-such-folder",
            catalog.path().display()
        ),
    );
    Setup { repo, catalog }
}

/// `audit` without the live state (the fixture's envs name kube contexts).
fn audit(s: &Setup, args: &[&str]) -> Output {
    let mut all = vec!["--no-live"];
    all.extend_from_slice(args);
    audit_with(s, None, &all)
}

fn audit_with(s: &Setup, kubeconfig: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"));
    cmd.arg("audit")
        .arg("--repo")
        .arg(s.repo.root())
        .args(["--now", NOW])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("KUBERNETES_SERVICE_HOST");
    match kubeconfig {
        Some(k) => cmd.env("KUBECONFIG", k),
        None => cmd.env("KUBECONFIG", s.catalog.path().join("no-kubeconfig")),
    };
    cmd.output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn documented() -> Vec<&'static str> {
    cnpg_ops::audit::all_checks()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn ids_of<'a>(report: &'a Value, env: &str, svc: &str) -> Vec<&'a str> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["env"] == env && f["svc"] == svc)
        .map(|f| f["id"].as_str().unwrap())
        .collect()
}

#[test]
fn the_real_catalog_is_judged_and_the_unreadable_ones_do_not_stop_the_audit() {
    let s = setup();
    let out = audit(&s, &["-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = json(&out);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["now"], NOW);
    let svcs: Vec<String> = r["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["env"].as_str().unwrap(),
                d["svc"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(svcs, ["dev/foo", "prod/bar", "prod/foo"]);

    // The captured catalog: a WAL segment was deleted after the last backup,
    // one backup FAILED after pg_backup_stop.
    let foo = ids_of(&r, "prod", "foo");
    assert!(foo.contains(&"wal-gap-in-window"), "{foo:?}");
    assert!(foo.contains(&"backup-unusable"), "{foo:?}");
    let gap = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "wal-gap-in-window")
        .unwrap();
    assert_eq!(gap["severity"], "error");
    assert!(gap["evidence"]["first_missing"].is_string());
    assert!(gap["hint"].as_str().unwrap().contains("base backup"));
    let m = &r["databases"][2]["metrics"];
    assert_eq!(m["catalog_readable"], true);
    assert_eq!(m["wal_gaps"], 1);
    assert!(m["first_recoverable"].is_string());

    // prod/bar names a server folder nobody wrote; dev/foo a folder that is not there.
    assert_eq!(ids_of(&r, "prod", "bar"), ["catalog-missing"]);
    let dev = ids_of(&r, "dev", "foo");
    assert_eq!(dev, ["catalog-unreadable"], "{r:#}");
    assert_eq!(r["databases"][0]["metrics"]["catalog_readable"], false);

    // Worst first, counted, every id documented; a local mirror has no bucket configuration.
    let sev: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    let rank = |s: &str| ["error", "warning", "info"].iter().position(|x| *x == s);
    assert!(sev.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{sev:?}");
    assert_eq!(
        r["summary"]["errors"].as_u64().unwrap() as usize,
        sev.iter().filter(|s| **s == "error").count()
    );
    let known = documented();
    for f in r["findings"].as_array().unwrap() {
        assert!(known.contains(&f["id"].as_str().unwrap()), "{f}");
    }
    assert_eq!(r["buckets"], serde_json::json!([]));
}

#[test]
fn prometheus_on_stdout_and_in_a_textfile() {
    let s = setup();
    let out = audit(&s, &["--env", "prod", "--svc", "foo", "--prometheus"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let labels = "env=\"prod\",svc=\"foo\",namespace=\"foo-prod\",cluster=\"foo-pg\"";
    let sample = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name}{{{labels}}} ")))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(sample("cnpg_ops_wal_gaps"), "1");
    assert_eq!(sample("cnpg_ops_audit_catalog_readable"), "1");
    // A local mirror has no lifecycle rules to read: no series rather than a reassuring 0.
    assert!(!text.contains("cnpg_ops_lifecycle_violations{"), "{text}");

    // The first recoverable point agrees with `catalog show`.
    let show = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["catalog", "show", "-o", "json", "--now", NOW])
        .arg(format!("file://{}/cluster", s.catalog.path().display()))
        .output()
        .unwrap();
    let show = json(&show);
    let frp: chrono::DateTime<chrono::Utc> = show["first_recoverable_point"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        sample("cnpg_ops_first_recoverable_timestamp_seconds"),
        frp.timestamp().to_string()
    );

    // The textfile is written whole, next to nothing else.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cnpg_ops.prom");
    let out = audit(
        &s,
        &[
            "--env",
            "prod",
            "--svc",
            "foo",
            "--textfile",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.contains("# TYPE cnpg_ops_wal_gaps gauge"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // The report still goes to stdout.
    assert!(String::from_utf8_lossy(&out.stdout).contains("DATABASE"));
}

#[test]
fn text_report() {
    let s = setup();
    let out = audit(&s, &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("DATABASE"), "{text}");
    assert!(text.contains("prod/foo"));
    assert!(text.contains("unreadable"), "{text}");
    assert!(text.contains("wal-gap-in-window"));
    assert!(text.contains("hint:"));
    assert!(
        text.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("3 database(s) audited in"),
        "{text}"
    );
}

#[test]
fn bad_input_exits_2_before_any_work() {
    let s = setup();
    let out = audit(&s, &["--svc", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no database to audit"), "{err}");
    assert!(err.contains("prod/foo"), "{err}");

    let out = audit(&s, &["--wal-max-age", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--wal-max-age"));

    let out = audit(&s, &["--backup-grace", "0.5"]);
    assert_eq!(out.status.code(), Some(2));

    let out = audit(&s, &["--textfile", "/no/such/folder/cnpg.prom"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/folder"), "{err}");
}

#[test]
fn the_wal_age_threshold() {
    let s = setup();
    // Only the WAL age: the newest segment of the capture is minutes old at NOW.
    let out = audit(
        &s,
        &[
            "--env",
            "prod",
            "--svc",
            "foo",
            "-o",
            "json",
            "--wal-max-age",
            "1s",
        ],
    );
    let r = json(&out);
    assert!(ids_of(&r, "prod", "foo").contains(&"wal-archiving-stalled"));
    let out = audit(
        &s,
        &[
            "--env",
            "prod",
            "--svc",
            "foo",
            "-o",
            "json",
            "--wal-max-age",
            "1d",
        ],
    );
    let r = json(&out);
    assert!(!ids_of(&r, "prod", "foo").contains(&"wal-archiving-stalled"));
}

// ---------------------------------------------------------------- live state

const CONTEXT: &str = "gke_acme-prod_europe-west1_main";

fn cluster(conditions: &[(&str, &str, &str, &str)], phase: &str) -> Value {
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(t, st, reason, message)| {
            serde_json::json!({"type": t, "status": st, "reason": reason, "message": message,
                               "lastTransitionTime": "2026-11-24T16:00:00Z"})
        })
        .collect();
    serde_json::json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": {"name": "foo-pg", "namespace": "foo-prod"},
        "spec": {"instances": 2, "storage": {"size": "10Gi"}},
        "status": {"phase": phase, "conditions": conditions}
    })
}

fn object_store(first: &str) -> Value {
    serde_json::json!({
        "apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
        "metadata": {"name": "foo-store", "namespace": "foo-prod"},
        "spec": {"configuration": {"destinationPath": "gs://acme-prod-pg-backups/foo"}},
        "status": {"serverRecoveryWindow": {"pg-main": {"firstRecoverabilityPoint": first}}}
    })
}

const OK: &[(&str, &str, &str, &str)] = &[
    (
        "ContinuousArchiving",
        "True",
        "ContinuousArchivingSuccess",
        "Continuous archiving is working",
    ),
    (
        "LastBackupSucceeded",
        "True",
        "LastBackupSucceeded",
        "Backup was successful",
    ),
];

fn live_ids(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["svc"] == "foo" && f["env"] == "prod")
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .filter(|id| id.starts_with("live-"))
        .collect()
}

/// The catalog's first recoverable point, as the audit reports it.
fn first_recoverable(s: &Setup) -> String {
    let r = json(&audit(s, &["--env", "prod", "--svc", "foo", "-o", "json"]));
    r["databases"][0]["metrics"]["first_recoverable"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_healthy_cluster_that_agrees_with_the_bucket() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    kube.add(cluster(OK, "Cluster in healthy state"));
    kube.add(object_store(&first_recoverable(&s)));
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), CONTEXT);
    let out = audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    );
    let r = json(&out);
    assert!(live_ids(&r).is_empty(), "{r:#}");
    let live = &r["databases"][0]["live"];
    assert_eq!(live["context"], CONTEXT);
    assert_eq!(live["cluster"]["phase"], "Cluster in healthy state");
    assert_eq!(live["object_store_found"], true);
    assert_eq!(
        kube.requests(),
        [
            "GET /apis/postgresql.cnpg.io/v1/namespaces/foo-prod/clusters/foo-pg",
            "GET /apis/barmancloud.cnpg.io/v1/namespaces/foo-prod/objectstores/foo-store"
        ]
    );
}

#[test]
fn failing_archiving_a_failed_backup_and_a_window_the_bucket_cannot_serve() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    kube.add(cluster(
        &[
            (
                "ContinuousArchiving",
                "False",
                "ContinuousArchivingFailing",
                "unexpected failure invoking barman-cloud-wal-archive: exit status 4",
            ),
            (
                "LastBackupSucceeded",
                "False",
                "LastBackupFailed",
                "403 Forbidden",
            ),
        ],
        "Cluster in healthy state",
    ));
    // The operator still counts a backup the bucket no longer has.
    kube.add(object_store("2026-11-01T00:00:00Z"));
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), CONTEXT);
    let out = audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let r = json(&out);
    assert_eq!(
        live_ids(&r),
        [
            "live-archiving-failing",
            "live-backup-failed",
            "live-recovery-window-differs"
        ]
    );
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "live-archiving-failing")
        .unwrap();
    assert!(f["message"].as_str().unwrap().contains("exit status 4"));
    assert_eq!(f["location"], format!("{CONTEXT}: foo-prod/foo-pg"));
}

#[test]
fn an_object_store_that_cannot_be_read_does_not_hide_the_cluster() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    kube.add(cluster(
        &[(
            "ContinuousArchiving",
            "False",
            "ContinuousArchivingFailing",
            "exit status 1",
        )],
        "Cluster in healthy state",
    ));
    kube.deny("/objectstores/");
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), CONTEXT);
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-archiving-failing", "live-unreachable"]);
    assert!(
        r["databases"][0]["live"]["object_store_error"]
            .as_str()
            .unwrap()
            .contains("forbidden")
    );
}

#[test]
fn a_missing_cluster_and_a_missing_object_store() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), CONTEXT);
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-cluster-missing"]);
    kube.add(cluster(OK, "Cluster in healthy state"));
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-object-store-missing"]);
}

#[test]
fn an_api_that_cannot_be_read_is_said_and_the_catalog_is_still_judged() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    kube.fail_with(Some(403));
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), CONTEXT);
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-unreachable"]);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "live-unreachable")
        .unwrap();
    assert!(f["message"].as_str().unwrap().contains("forbidden"), "{f}");
    assert!(f["hint"].as_str().unwrap().contains("rbac"), "{f}");
    assert!(ids_of(&r, "prod", "foo").contains(&"wal-gap-in-window"));

    // A context the kubeconfig does not have, and no kubeconfig at all.
    let other = kube.kubeconfig(dir.path(), "some-other-context");
    let r = json(&audit_with(
        &s,
        Some(&other),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "live-unreachable")
        .unwrap();
    assert!(f["message"].as_str().unwrap().contains(CONTEXT), "{f}");
    assert!(
        f["hint"].as_str().unwrap().contains("some-other-context"),
        "{f}"
    );
    let r = json(&audit_with(
        &s,
        None,
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-unreachable"]);

    // Nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace(&kube.url, &url),
    )
    .unwrap();
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json"],
    ));
    assert_eq!(live_ids(&r), ["live-unreachable"]);
}

#[test]
fn no_live_reads_nothing_and_context_overrides_the_env() {
    let s = setup();
    let kube = support::fake_kube::FakeKube::start();
    kube.add(cluster(OK, "Cluster in healthy state"));
    let dir = tempfile::tempdir().unwrap();
    let config = kube.kubeconfig(dir.path(), "elsewhere");
    let r = json(&audit_with(
        &s,
        Some(&config),
        &["--env", "prod", "--svc", "foo", "-o", "json", "--no-live"],
    ));
    assert!(kube.requests().is_empty());
    assert!(r["databases"][0]["live"].is_null());
    let r = json(&audit_with(
        &s,
        Some(&config),
        &[
            "--env",
            "prod",
            "--svc",
            "foo",
            "-o",
            "json",
            "--context",
            "elsewhere",
        ],
    ));
    assert_eq!(r["databases"][0]["live"]["context"], "elsewhere");
    assert_eq!(kube.requests().len(), 2);
}

// ---------------------------------------------------------------- GCS bucket configuration

/// A GCS JSON API that holds no objects and answers the bucket resource with
/// `bucket` (or `status` when not 200).
fn fake_gcs(status: u16, bucket: Value) -> support::fake_http::FakeHttp {
    support::fake_http::FakeHttp::start(move |method, target| {
        let path = target.split('?').next().unwrap_or("");
        match (method, path) {
            ("GET", "/storage/v1/b/acme-prod-pg-backups") if status == 200 => {
                assert!(target.contains("fields=lifecycle"), "{target}");
                (200, bucket.clone())
            }
            ("GET", "/storage/v1/b/acme-prod-pg-backups") => (
                status,
                serde_json::json!({"error": {"code": status, "message": "caller does not have storage.buckets.get access"}}),
            ),
            ("GET", "/storage/v1/b/acme-prod-pg-backups/o") => {
                (200, serde_json::json!({"kind": "storage#objects"}))
            }
            _ => (
                404,
                serde_json::json!({"error": {"code": 404, "message": "no"}}),
            ),
        }
    })
}

fn audit_gcs(url: &str) -> Value {
    let repo = FixtureRepo::copy("gke");
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "audit",
            "--no-live",
            "--env",
            "prod",
            "--svc",
            "foo",
            "-o",
            "json",
            "--now",
            NOW,
        ])
        .arg("--repo")
        .arg(repo.root())
        .env("STORAGE_EMULATOR_HOST", url)
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("GOOGLE_SERVICE_ACCOUNT")
        .env_remove("GOOGLE_SERVICE_ACCOUNT_KEY")
        .output()
        .unwrap();
    json(&out)
}

#[test]
fn gcs_lifecycle_versioning_and_retention_lock_through_the_json_api() {
    let gcs = fake_gcs(
        200,
        serde_json::json!({
            "kind": "storage#bucket", "name": "acme-prod-pg-backups",
            "versioning": {"enabled": true},
            "retentionPolicy": {"retentionPeriod": "5184000", "isLocked": false},
            "lifecycle": {"rule": [
                {"action": {"type": "Delete"}, "condition": {"age": 7, "matchesPrefix": ["foo/"]}},
                {"action": {"type": "Delete"}, "condition": {"age": 1, "matchesPrefix": ["bar/"]}},
                {"action": {"type": "SetStorageClass", "storageClass": "COLDLINE"}, "condition": {"age": 2}}
            ]}
        }),
    );
    let r = audit_gcs(&gcs.url);
    let ids: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"catalog-missing"), "{ids:?}");
    assert!(ids.contains(&"lifecycle-deletes-anchor"), "{ids:?}");
    assert!(ids.contains(&"bucket-lock-blocks-retention"), "{ids:?}");
    assert!(ids.contains(&"bucket-versioning-unbounded"), "{ids:?}");
    // The rule on bar/ does not reach foo's catalog; COLDLINE reads without a restore.
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("lifecycle-")).count(),
        1,
        "{ids:?}"
    );
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "lifecycle-deletes-anchor")
        .unwrap();
    assert_eq!(f["evidence"]["rule"], "rule 1");
    assert_eq!(f["evidence"]["after_days"], 7);
    assert_eq!(r["buckets"][0]["provider"], "gs");
    assert_eq!(r["buckets"][0]["rules"].as_array().unwrap().len(), 3);
}

#[test]
fn a_gcs_bucket_the_credentials_cannot_describe() {
    let gcs = fake_gcs(403, Value::Null);
    let r = audit_gcs(&gcs.url);
    let f = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "bucket-config-unreadable")
        .unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["evidence"]["kind"], "denied");
    assert!(f["hint"].as_str().unwrap().contains("storage.buckets.get"));
    assert_eq!(f["scope"], "bucket");
}
