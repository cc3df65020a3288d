//! `cnpg-ops pitr` end to end on the bundled real catalog (a file:// mirror
//! of a barman-cloud capture) and a git repository built from the GKE
//! fixture: proofs, refusals, dry runs, resumption, JSON Lines events.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::events::{events, finished};
use support::repo::{FixtureRepo, git};

use cnpg_ops::gitops::{schema, webhook};
use cnpg_ops::yaml;

const NOW: &str = "2026-11-24T16:50:00Z";

struct Setup {
    repo: FixtureRepo,
    _catalog: tempfile::TempDir,
    state: tempfile::TempDir,
}

/// The GKE fixture with prod/foo archiving to the bundled real catalog.
fn setup() -> Setup {
    let (repo, catalog) = support::repo::gke_on_bundled_catalog();
    // The captured catalog was written by PostgreSQL 15.
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "postgresql:17.6-standard-bookworm",
        "postgresql:15.14-standard-bookworm",
    );
    repo.git_init();
    Setup {
        repo,
        _catalog: catalog,
        state: tempfile::tempdir().unwrap(),
    }
}

fn cnpg_ops(s: &Setup, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("CNPG_OPS_STATE_DIR", s.state.path())
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap()
}

fn pitr(s: &Setup, extra: &[&str]) -> Output {
    let mut args = vec!["pitr", "--env", "prod", "--svc", "foo", "--now", NOW];
    args.extend_from_slice(extra);
    cnpg_ops(s, s.repo.root(), &args)
}

fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with(".git") {
                    stack.push(p);
                }
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_recoverable_target_is_committed_with_the_backup_and_target_proved() {
    let s = setup();
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("backup 20261124T164658 then WAL 000000010000000000000004"),
        "{text}"
    );
    let branch = "cnpg-ops/pitr-prod-foo-20261124t164705";
    assert!(
        text.contains(&format!("git push -u origin {branch}")),
        "{text}"
    );
    let file = "fluxcd/databases/prod/foo/foo-pg-pitr-20261124t164705.yaml";
    let cluster = git(s.repo.root(), &["show", &format!("{branch}:{file}")]);
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    assert!(schema::validate(v).unwrap().is_empty());
    assert!(
        webhook::validate(v)
            .iter()
            .all(|x| x.severity != webhook::Severity::Error)
    );
    let rec = &v["spec"]["bootstrap"]["recovery"];
    assert_eq!(
        rec["recoveryTarget"]["targetTime"],
        "2026-11-24 16:47:05.000000+00:00"
    );
    // CloudNativePG's own choice (newest ended before the target) is the
    // proved anchor here, so backupID is not pinned.
    assert!(rec["recoveryTarget"].get("backupID").is_none());
    assert_eq!(
        v["spec"]["externalClusters"][0]["plugin"]["parameters"]["serverName"],
        "pg-main"
    );
    assert_eq!(
        v["spec"]["plugins"][0]["parameters"]["serverName"],
        "foo-pg-pitr-20261124t164705"
    );
    assert_eq!(
        git(s.repo.root(), &["status", "--porcelain"]),
        "",
        "the checkout is untouched"
    );
}

#[test]
fn a_backup_cloudnative_pg_would_choose_wrongly_is_pinned() {
    let s = setup();
    // The FAILED backup 20261124T164706 ended at 16:47:08; CloudNativePG
    // ignores status and would take it for a target after that.
    let out = pitr(&s, &["--to", "2026-11-24T16:47:12Z", "--timeline", "1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = git(
        s.repo.root(),
        &[
            "show",
            "cnpg-ops/pitr-prod-foo-20261124t164712:fluxcd/databases/prod/foo/foo-pg-pitr-20261124t164712.yaml",
        ],
    );
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    let t = &v["spec"]["bootstrap"]["recovery"]["recoveryTarget"];
    assert_eq!(t["backupID"], "20261124T164658");
    assert_eq!(t["targetTLI"], "1");
}

#[test]
fn a_target_behind_a_gap_writes_nothing_and_offers_the_nearest() {
    let s = setup();
    let before = snapshot(s.repo.root());
    let out = pitr(&s, &["--to", "2026-11-24T16:47:29Z"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("segment 00000002000000000000000D is missing"),
        "{err}"
    );
    assert!(
        err.contains("nearest recoverable targets: --to 0/C000000 --timeline 2"),
        "{err}"
    );
    assert_eq!(snapshot(s.repo.root()), before);
    assert_eq!(git(s.repo.root(), &["branch", "--list"]).lines().count(), 1);
}

#[test]
fn a_dry_run_changes_nothing_and_shows_the_diff() {
    let s = setup();
    let before = snapshot(s.repo.root());
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z", "--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+++ b/fluxcd/databases/prod/foo/foo-pg-pitr-20261124t164705.yaml"),
        "{text}"
    );
    assert!(
        text.contains("+      - foo-prod/foo-pg-pitr-20261124t164705"),
        "{text}"
    );
    assert_eq!(snapshot(s.repo.root()), before, "byte-identical");
    assert_eq!(git(s.repo.root(), &["branch", "--list"]).lines().count(), 1);
    assert_eq!(
        std::fs::read_dir(s.state.path()).unwrap().count(),
        0,
        "no journal"
    );
}

#[test]
fn bad_input_is_named_and_writes_nothing() {
    let s = setup();
    let before = snapshot(s.repo.root());
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &[
            "pitr",
            "--env",
            "prod",
            "--svc",
            "nope",
            "--to",
            "2026-11-24T16:47:05Z",
            "--now",
            NOW,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database `nope` in env `prod`"));
    let out = pitr(&s, &["--to", "2027-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in the future"));
    let out = pitr(&s, &["--to", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    // A catalog that cannot be read.
    s.repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "serverName: pg-main",
        "serverName: pg-gone",
    );
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("pg-gone"));
    s.repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "serverName: pg-gone",
        "serverName: pg-main",
    );
    assert_eq!(snapshot(s.repo.root()), before);
}

#[test]
fn env_and_svc_come_from_the_working_directory_and_events_stream_as_json_lines() {
    let s = setup();
    let dir = s.repo.path("fluxcd/databases/prod/foo");
    let out = cnpg_ops(
        &s,
        &dir,
        &[
            "pitr",
            "--to",
            "2026-11-24T16:47:05Z",
            "--now",
            NOW,
            "-o",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert_eq!(ev[0]["event"], "run_started");
    let done: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "step_finished")
        .map(|e| e["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        done,
        [
            "locate",
            "read-catalog",
            "prove-target",
            "check-write-prefix",
            "write-manifests",
            "next-steps"
        ]
    );
    let prove = finished(&ev, "prove-target");
    assert_eq!(prove["facts"]["backup_id"], "20261124T164658");
    assert!(prove["duration_ms"].is_u64());
    let last = ev.last().unwrap();
    assert_eq!(
        (last["event"].as_str(), last["status"].as_str()),
        (Some("summary"), Some("succeeded"))
    );
}

#[test]
fn an_interrupted_run_resumes_without_committing_twice() {
    let s = setup();
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z"]);
    assert_eq!(out.status.code(), Some(0));
    // Make the journal look like the run stopped right after the commit.
    let journal = std::fs::read_dir(s.state.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    j["completed"] = Value::Bool(false);
    j["steps"]
        .as_array_mut()
        .unwrap()
        .retain(|st| st["id"] != "next-steps");
    std::fs::write(&journal, serde_json::to_string(&j).unwrap()).unwrap();
    let commits = git(s.repo.root(), &["rev-list", "--all", "--count"]);

    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert_eq!(ev[0]["resumed_from"], "write-manifests");
    assert!(
        ev.iter()
            .any(|e| e["event"] == "step_skipped" && e["step"] == "write-manifests")
    );
    assert_eq!(
        git(s.repo.root(), &["rev-list", "--all", "--count"]),
        commits,
        "no second commit"
    );
    let next = finished(&ev, "next-steps");
    assert_eq!(
        next["summary"],
        "branch cnpg-ops/pitr-prod-foo-20261124t164705"
    );
}

#[test]
fn playbooks_are_listed_and_shown() {
    let s = setup();
    let out = cnpg_ops(&s, s.repo.root(), &["playbook", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["backup", "pitr", "clone", "reclone", "audit"] {
        assert!(text.contains(name), "{text}");
    }
    let out = cnpg_ops(&s, s.repo.root(), &["playbook", "show", "reclone"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("destructive"), "{text}");
    assert!(text.contains("by hand: kubectl delete cluster"), "{text}");
    let out = cnpg_ops(&s, s.repo.root(), &["playbook", "show", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Adds a `staging` env archiving next to the captured catalog.
fn with_staging(s: &Setup, archive: &Path) {
    // A file:// "bucket" is a folder that must exist, like a real bucket.
    std::fs::create_dir_all(archive.join("foo")).unwrap();
    let config = s.repo.read(".cnpg-ops.toml")
        + &format!(
            "\n[env.staging]\ngcp_project = \"acme-staging\"\nbackup_destination = \"file://{}/{{svc}}\"\n",
            archive.display()
        );
    s.repo.write(".cnpg-ops.toml", &config);
    s.repo.commit("staging env");
}

#[test]
fn a_clone_into_a_new_env_is_committed_and_lints_clean() {
    let s = setup();
    let archive = tempfile::tempdir().unwrap();
    with_staging(&s, archive.path());
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &[
            "clone",
            "prod",
            "staging",
            "--svc",
            "foo",
            "--to",
            "0/C000000",
            "--timeline",
            "2",
            "--now",
            NOW,
            "-o",
            "json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let prove = finished(&ev, "prove-target");
    assert_eq!(prove["facts"]["backup_id"], "20261124T164719");
    let write = finished(&ev, "write-manifests");
    let branch = write["facts"]["branch"].as_str().unwrap().to_owned();
    let cluster = git(
        s.repo.root(),
        &[
            "show",
            &format!("{branch}:fluxcd/databases/staging/foo/database.yaml"),
        ],
    );
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    assert!(schema::validate(v).unwrap().is_empty());
    let rec = &v["spec"]["bootstrap"]["recovery"];
    assert_eq!(rec["recoveryTarget"]["targetLSN"], "0/C000000");
    assert_eq!(rec["recoveryTarget"]["targetTLI"], "2");
    let source = rec["source"].as_str().unwrap();
    let ext = v["spec"]["externalClusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == source)
        .unwrap();
    assert_eq!(ext["plugin"]["parameters"]["serverName"], "pg-main");
    git(s.repo.root(), &["switch", "-q", &branch]);
    let errors: Vec<_> = s
        .repo
        .lint()
        .into_iter()
        .filter(|f| f.severity == cnpg_ops::catalog::findings::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn an_existing_destination_is_a_reclone_and_nothing_is_written() {
    let s = setup();
    let before = snapshot(s.repo.root());
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &["clone", "prod", "dev", "--svc", "foo", "--now", NOW],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dev/foo exists") && err.contains("playbook show reclone"),
        "{err}"
    );
    assert_eq!(snapshot(s.repo.root()), before);
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &["clone", "prod", "nowhere", "--svc", "foo", "--now", NOW],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("env `nowhere` is not in the repository")
    );
}

#[test]
fn fallback_initdb_says_so_and_bootstraps_empty() {
    let s = setup();
    let archive = tempfile::tempdir().unwrap();
    with_staging(&s, archive.path());
    s.repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "serverName: pg-main",
        "serverName: pg-gone",
    );
    s.repo.commit("break the source");
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &["clone", "prod", "staging", "--svc", "foo", "--now", NOW],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "without the flag an unreadable catalog stops the clone"
    );
    let out = cnpg_ops(
        &s,
        s.repo.root(),
        &[
            "clone",
            "prod",
            "staging",
            "--svc",
            "foo",
            "--now",
            NOW,
            "--fallback-initdb",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("will start EMPTY with initdb"));
    let branch = "cnpg-ops/clone-prod-staging-foo";
    let cluster = git(
        s.repo.root(),
        &[
            "show",
            &format!("{branch}:fluxcd/databases/staging/foo/database.yaml"),
        ],
    );
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    assert_eq!(v["spec"]["bootstrap"]["initdb"]["database"], "foo");
    assert!(v["spec"]["bootstrap"].get("recovery").is_none());
    assert!(schema::validate(v).unwrap().is_empty());
    let message = git(s.repo.root(), &["log", "-1", "--format=%B", branch]);
    assert!(message.contains("starts EMPTY"), "{message}");
}

/// The documented event shapes (docs/json.md), rejecting unknown fields.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
#[allow(dead_code)]
enum EventDoc {
    RunStarted {
        playbook: String,
        run: String,
        dry_run: bool,
        resumed_from: Option<String>,
        at: String,
    },
    StepStarted {
        step: String,
        title: String,
        destructive: bool,
        at: String,
    },
    StepPlanned {
        step: String,
        summary: String,
        details: Vec<String>,
    },
    StepFinished {
        step: String,
        duration_ms: u64,
        summary: String,
        details: Vec<String>,
        facts: serde_json::Map<String, Value>,
    },
    StepSkipped {
        step: String,
        reason: String,
    },
    StepFailed {
        step: String,
        duration_ms: u64,
        error: String,
        hint: Option<String>,
    },
    Summary {
        playbook: String,
        status: String,
        duration_ms: u64,
        steps: Vec<(String, String)>,
    },
}

#[test]
fn every_event_matches_the_documented_schema() {
    let s = setup();
    for args in [
        vec!["--to", "2026-11-24T16:47:05Z", "--dry-run", "-o", "json"],
        vec!["--to", "2026-11-24T16:47:29Z", "-o", "json"],
        vec!["--to", "2026-11-24T16:47:05Z", "-o", "json"],
    ] {
        let out = pitr(&s, &args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.is_empty());
        for line in text.lines() {
            let parsed: Result<EventDoc, _> = serde_json::from_str(line);
            assert!(parsed.is_ok(), "{line}: {parsed:?}");
        }
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["event"], "summary", "{args:?}");
    }
}

#[test]
fn regression_an_approximate_time_just_before_a_gap_is_not_committed() {
    // 00000002000000000000000C was uploaded at 16:47:26.510 and 0D is
    // missing: a time just before that upload is reachable only if a commit
    // follows it inside 0C, which upload times cannot show (a real restore of
    // such a target ended "before configured recovery target was reached").
    let s = setup();
    let before = snapshot(s.repo.root());
    let out = pitr(&s, &["--to", "2026-11-24T16:47:25.510Z", "--timeline", "2"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot be proved") && err.contains("00000002000000000000000C"),
        "{err}"
    );
    assert!(err.contains("--to 0/C000000 --timeline 2"), "{err}");
    assert_eq!(snapshot(s.repo.root()), before);
}

#[test]
fn regression_the_commit_is_refused_when_the_base_names_another_catalog_than_the_one_proved() {
    let s = setup();
    // Working tree: the proved catalog. Committed base: another server folder.
    let db = "fluxcd/databases/prod/foo/database.yaml";
    s.repo
        .replace(db, "serverName: pg-main", "serverName: pg-old");
    s.repo.commit("point at the old folder");
    s.repo
        .replace(db, "serverName: pg-old", "serverName: pg-main");
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another source catalog") && err.contains("pg-old"),
        "{err}"
    );
    assert_eq!(
        git(s.repo.root(), &["branch", "--list"]).lines().count(),
        1,
        "no branch"
    );
}

#[test]
fn regression_restore_names_are_checked() {
    let s = setup();
    for (into, why) in [
        ("foo-pg", "already exists"),
        ("Foo_PG", "not a valid Cluster name"),
    ] {
        let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z", "--into", into]);
        assert_eq!(out.status.code(), Some(2), "{into}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{into}");
    }
}

#[test]
fn regression_latest_always_pins_the_proved_backup() {
    let s = setup();
    let out = pitr(&s, &["--to", "latest", "--timeline", "1", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let prove = finished(&ev, "prove-target");
    let write = finished(&ev, "write-manifests");
    let branch = write["facts"]["branch"].as_str().unwrap();
    let file = write["facts"]["files"][0].as_str().unwrap();
    let cluster = git(s.repo.root(), &["show", &format!("{branch}:{file}")]);
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    assert_eq!(
        v["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["backupID"],
        prove["facts"]["backup_id"]
    );
}

#[test]
fn regression_a_resumed_run_redoes_a_commit_whose_branch_is_gone() {
    let s = setup();
    assert_eq!(
        pitr(&s, &["--to", "2026-11-24T16:47:05Z"]).status.code(),
        Some(0)
    );
    let journal = std::fs::read_dir(s.state.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    j["completed"] = Value::Bool(false);
    std::fs::write(&journal, serde_json::to_string(&j).unwrap()).unwrap();
    git(
        s.repo.root(),
        &["branch", "-D", "cnpg-ops/pitr-prod-foo-20261124t164705"],
    );
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    assert!(
        ev.iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == "write-manifests")
    );
    git(
        s.repo.root(),
        &[
            "rev-parse",
            "--verify",
            "cnpg-ops/pitr-prod-foo-20261124t164705",
        ],
    );
}

#[test]
fn regression_a_backup_of_another_major_than_the_image_is_refused() {
    let s = setup();
    s.repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "postgresql:15.14-standard-bookworm",
        "postgresql:17.6-standard-bookworm",
    );
    s.repo.commit("upgrade to 17");
    let out = pitr(&s, &["--to", "2026-11-24T16:47:05Z"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("taken by PostgreSQL 15") && err.contains("PostgreSQL 17"),
        "{err}"
    );
}
