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
    let catalog = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-main");
    support::fixture::materialize(&fixture, catalog.path(), &|_| false).unwrap();
    let repo = FixtureRepo::copy("gke");
    let dest = format!("file://{}/cluster", catalog.path().display());
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "destinationPath: gs://acme-prod-pg-backups/foo",
        &format!("destinationPath: {dest}"),
    );
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "        barmanObjectName: foo-store\n",
        "        barmanObjectName: foo-store\n        serverName: pg-main\n",
    );
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

fn audit(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .arg("audit")
        .arg("--repo")
        .arg(s.repo.root())
        .args(["--now", NOW])
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
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
    assert_eq!(sample("cnpg_ops_lifecycle_violations"), "0");

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
