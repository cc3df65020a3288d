//! The binary against a real barman-cloud catalog captured from the integration harness
//! (`tests/fixtures/pg-main`): timeline 1 with backups B1, B2 and a FAILED F3 (it failed
//! after `pg_backup_stop`, so it has an end time), a failover to timeline 2, backup B4 on
//! timeline 2, and segment 00000002000000000000000D deleted. The real restores behind
//! these verdicts run in `integration/`.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    dest: String,
    facts: Value,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-main")
}

fn fixture_with(skip: &dyn Fn(&str) -> bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    support::fixture::materialize(&fixture_dir(), dir.path(), skip).unwrap();
    let manifest = support::fixture::manifest(&fixture_dir()).unwrap();
    assert_eq!(
        (manifest.dest.as_str(), manifest.server_name.as_str()),
        ("s3://cnpg-backups/cluster", "pg-main")
    );
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("facts.json")).unwrap())
            .unwrap();
    let dest = format!("file://{}/cluster", dir.path().display());
    Fixture {
        _dir: dir,
        dest,
        facts,
    }
}

fn fixture() -> Fixture {
    fixture_with(&|_| false)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const NOW: &str = "2026-11-24T16:50:00Z";

fn check(f: &Fixture, to: &str) -> Run {
    run(&[
        "catalog", "check", &f.dest, "--to", to, "--now", NOW, "-o", "json",
    ])
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn backup<'a>(f: &'a Fixture, label: &str) -> &'a Value {
    f.facts["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["label"] == label)
        .unwrap()
}

fn group<'a>(f: &'a Fixture, label: &str) -> &'a Value {
    f.facts["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["label"] == label)
        .unwrap()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[test]
fn show_reports_backups_timelines_gap_and_windows() {
    let f = fixture();
    let r = run(&["catalog", "show", &f.dest, "--now", NOW, "-o", "json"]);
    // The gap breaks recovery: an error-level finding, exit 1.
    assert_eq!(r.code, 1, "{}", r.stderr);
    let j = r.json();
    let backups: Vec<(String, String)> = j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = f.facts["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap().to_owned(),
                b["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(backups, expected);
    for (b, fb) in j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .zip(f.facts["backups"].as_array().unwrap())
    {
        assert_eq!(b["begin_wal"], fb["begin_wal"]);
        assert_eq!(b["end_wal"], fb["end_wal"]);
        assert_eq!(b["timeline"], fb["timeline"]);
        assert_eq!(time(&b["end_time"]), time(&fb["end_time"]));
    }
    assert_eq!(j["gaps"].as_array().unwrap().len(), 1);
    assert_eq!(
        j["gaps"][0]["first_missing"],
        f.facts["deleted_segment"]["name"]
    );
    let tl2 = j["recovery_window"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["timeline"] == 2)
        .unwrap();
    assert_eq!(tl2["windows"][0]["end_reason"], "gap");
    assert_eq!(
        tl2["windows"][0]["missing_segment"],
        f.facts["deleted_segment"]["name"]
    );
    assert_eq!(
        time(&j["first_recoverable_point"]),
        time(&backup(&f, "B1")["end_time"])
    );
    let timelines: Vec<i64> = j["timelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["timeline"].as_i64().unwrap())
        .collect();
    assert_eq!(timelines, vec![1, 2]);
    assert_eq!(j["timelines"][1]["parent"], 1);
    assert_eq!(
        j["timelines"][1]["switchpoint"],
        f.facts["timeline_switch"]["switchpoint"]
    );
}

#[test]
fn each_side_of_the_first_backup_end() {
    let f = fixture();
    let end = time(&backup(&f, "B1")["end_time"]);
    let r = check(&f, &iso(end - Duration::microseconds(1)));
    assert_eq!(r.code, 1, "{}", r.stdout);
    let j = r.json();
    assert_eq!(j["recoverable"], false);
    assert_eq!(j["backup_id"], Value::Null);
    let r = check(&f, &iso(end));
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.json()["backup_id"], backup(&f, "B1")["id"]);
}

#[test]
fn failed_backup_is_skipped_for_the_older_done_one() {
    let f = fixture();
    let t = time(&group(&f, "after_f3")["first_commit"]) - Duration::milliseconds(10);
    let j = check(&f, &iso(t)).json();
    assert_eq!(j["recoverable"], true);
    assert_eq!(j["backup_id"], backup(&f, "B2")["id"]);
    assert_eq!(j["cnpg_default_backup_id"], backup(&f, "F3")["id"]);
    assert_eq!(j["requires_backup_id"], true);
}

#[test]
fn timeline_two_before_and_after_the_gap() {
    let f = fixture();
    let before = time(&group(&f, "before_gap")["last_commit"]) + Duration::milliseconds(5);
    let j = check(&f, &iso(before)).json();
    assert_eq!(j["recoverable"], true, "{j:#}");
    assert_eq!(j["timeline"], 2);
    assert_eq!(j["backup_id"], backup(&f, "B4")["id"]);
    let after = time(&group(&f, "after_gap")["last_commit"]);
    let r = check(&f, &iso(after));
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["recoverable"], false);
    assert_eq!(
        j["missing_wal"],
        serde_json::json!([f.facts["deleted_segment"]["name"]])
    );
    assert!(!j["nearest"].as_array().unwrap().is_empty());
}

#[test]
fn latest_is_refused_because_of_the_gap() {
    let f = fixture();
    let r = check(&f, "latest");
    assert_eq!(r.code, 1);
    let j = r.json();
    assert_eq!(j["stops_at"], f.facts["deleted_segment"]["name"]);
    assert!(
        j["reasons"][0].as_str().unwrap().contains("stop early"),
        "{j:#}"
    );
    // Without the gap, latest reaches the head on timeline 2.
    let deleted = f.facts["deleted_segment"]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(f);
    let f = fixture_with(&|k| {
        k.contains("0000000200000000000000") && k > deleted.as_str() && k.contains("/wals/")
    });
    let j = check(&f, "latest").json();
    assert_eq!(j["recoverable"], true, "{j:#}");
}

#[test]
fn target_past_the_archive_head() {
    // Cut the archive at the gap: the WAL ends with segment C on timeline 2.
    let f = fixture_with(&|k| k.ends_with("00000002000000000000000E.snappy"));
    let t = time(&group(&f, "head")["last_commit"]) + Duration::seconds(30);
    let j = check(&f, &iso(t)).json();
    assert_eq!(j["recoverable"], false);
    assert!(
        j["reasons"][0]
            .as_str()
            .unwrap()
            .contains("past the last archived WAL"),
        "{j:#}"
    );
}

#[test]
fn times_without_offset_use_tz_and_say_so() {
    let f = fixture();
    let end = time(&backup(&f, "B2")["end_time"]) + Duration::seconds(1);
    let local = (end + Duration::hours(2))
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    let r = run(&[
        "catalog", "check", &f.dest, "--to", &local, "--tz", "+02:00", "--now", NOW,
    ]);
    assert!(r.stderr.contains("has no offset"), "{}", r.stderr);
    let j = run(&[
        "catalog", "check", &f.dest, "--to", &local, "--tz", "+02:00", "--now", NOW, "-o", "json",
    ])
    .json();
    assert_eq!(time(&j["target"]), end);
}

#[test]
fn bad_input_and_missing_catalogs() {
    let f = fixture();
    let r = run(&["catalog", "check", &f.dest, "--to", "yesterday"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("`yesterday` is not a time"),
        "{}",
        r.stderr
    );
    let r = run(&["catalog", "show", &f.dest, "--server-name", "pg-mian"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("server folders found: pg-main"),
        "{}",
        r.stderr
    );
    let r = run(&["catalog", "show", &format!("{}/pg-main", f.dest)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is a server folder itself"),
        "{}",
        r.stderr
    );
    let r = run(&["catalog", "show", "file:///nonexistent/cnpg-ops-test"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = run(&["catalog", "retention", &f.dest, "--policy", "7x"]);
    assert_eq!(r.code, 2);
    let r = run(&["catalog", "show", "bucket/path"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("is not a destination path"),
        "{}",
        r.stderr
    );
}

#[test]
fn double_nested_catalog_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("nested");
    support::fixture::materialize(&fixture_dir(), &nested, &|_| false).unwrap();
    std::fs::create_dir_all(dir.path().join("prod/pg-main")).unwrap();
    std::fs::rename(
        nested.join("cluster/pg-main"),
        dir.path().join("prod/pg-main/pg-main"),
    )
    .unwrap();
    let r = run(&[
        "catalog",
        "show",
        &format!("file://{}/prod", dir.path().display()),
        "--server-name",
        "pg-main",
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("double-nested"), "{}", r.stderr);
}

#[test]
fn retention_preview() {
    let f = fixture();
    // Seven days after the last backup with a 1d window: B4 is the anchor, B1 and B2 go.
    let r = run(&[
        "catalog",
        "retention",
        &f.dest,
        "--policy",
        "1d",
        "--now",
        "2026-12-01T00:00:00Z",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    let ids = |k: &str| {
        j[k].as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids("deleted_backups"),
        vec![
            backup(&f, "B1")["id"].as_str().unwrap(),
            backup(&f, "B2")["id"].as_str().unwrap()
        ]
    );
    let verdicts: Vec<&str> = j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["retention"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, vec!["VALID", "-", "OBSOLETE", "OBSOLETE"]);
    // barman's WAL clean-up: deleting B1 removes timeline-1 WAL before B2's begin_wal; deleting
    // B2 (next DONE backup: B4 on timeline 2) removes timeline-2 WAL before B4's begin_wal, while
    // the FAILED F3, still in the catalog on timeline 1, protects what is left of timeline 1.
    let wal: Vec<(String, i64, String, i64)> = j["deleted_wal"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["with_backup"].as_str().unwrap().to_owned(),
                w["timeline"].as_i64().unwrap(),
                w["last"].as_str().unwrap().to_owned(),
                w["objects"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        wal,
        vec![
            (
                backup(&f, "B1")["id"].as_str().unwrap().to_owned(),
                1,
                "000000010000000000000003.bz2".to_owned(),
                4
            ),
            (
                backup(&f, "B2")["id"].as_str().unwrap().to_owned(),
                2,
                "00000002000000000000000A.lz4".to_owned(),
                1
            ),
        ]
    );
    // CloudNativePG would then report the FAILED backup's end as its first recoverability point.
    assert_eq!(
        time(&j["cnpg_first_recoverability_point_after"]),
        time(&backup(&f, "F3")["end_time"])
    );
    assert_eq!(
        time(&j["first_recoverable_point_after"]),
        time(&backup(&f, "B4")["end_time"])
    );
}

/// The documented schema of `catalog check -o json` (docs/json.md), rejecting unknown fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CheckDoc {
    schema_version: u32,
    destination: String,
    server: String,
    recoverable: bool,
    target: String,
    target_kind: String,
    timeline_requested: String,
    timeline: Option<u32>,
    backup_id: Option<String>,
    backup_end_time: Option<String>,
    cnpg_default_backup_id: Option<String>,
    requires_backup_id: bool,
    wal_from: Option<String>,
    wal_to: Option<String>,
    missing_wal: Vec<String>,
    stops_at: Option<String>,
    exact: bool,
    reasons: Vec<String>,
    nearest: Vec<SuggestionDoc>,
    wal: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SuggestionDoc {
    target: String,
    timeline: u32,
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ShowDoc {
    schema_version: u32,
    destination: String,
    server: String,
    wal_segment_size: u64,
    objects: u64,
    backups: Vec<Value>,
    timelines: Vec<Value>,
    gaps: Vec<Value>,
    recovery_window: Vec<Value>,
    first_recoverable_point: Option<String>,
    first_recoverable_backup: Option<String>,
    cnpg_first_recoverability_point: Option<String>,
    last_successful_backup: Option<String>,
    findings: Vec<Value>,
}

#[test]
fn json_output_matches_the_documented_schema() {
    let f = fixture();
    for to in ["latest", "2026-11-24T16:16:50Z", "0/3000028"] {
        let r = check(&f, to);
        let _: CheckDoc =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{to}: {e}\n{}", r.stdout));
    }
    let r = run(&["catalog", "show", &f.dest, "-o", "json"]);
    let _: ShowDoc = serde_json::from_str(&r.stdout).unwrap();
}

#[test]
fn bad_backup_info_files_are_named_and_the_rest_is_judged() {
    let f = fixture();
    let root = f.dest.strip_prefix("file://").unwrap().to_owned() + "/pg-main/base";
    let id = |label: &str| backup(&f, label)["id"].as_str().unwrap().to_owned();
    // B2: a huge object named backup.info is never read whole.
    let big = std::fs::File::create(format!("{root}/{}/backup.info", id("B2"))).unwrap();
    big.set_len(64 << 20).unwrap();
    // B1: cut in the middle of end_time; B4: not UTF-8.
    let b1 = format!("{root}/{}/backup.info", id("B1"));
    let text = std::fs::read_to_string(&b1).unwrap();
    std::fs::write(&b1, &text[..text.find("end_time=").unwrap() + 14]).unwrap();
    let b4 = format!("{root}/{}/backup.info", id("B4"));
    let mut bytes = std::fs::read(&b4).unwrap();
    bytes.splice(5..5, [0xff, 0xfe]);
    std::fs::write(&b4, bytes).unwrap();

    let j = run(&["catalog", "show", &f.dest, "--now", NOW, "-o", "json"]).json();
    let findings = j["findings"].as_array().unwrap();
    let about = |fid: &str, key: &str| {
        findings
            .iter()
            .find(|x| x["id"] == fid && x["subject"].as_str().unwrap().contains(key))
            .cloned()
    };
    let big = about("backup-info-unreadable", &id("B2")).expect("huge backup.info reported");
    assert!(
        big["message"]
            .as_str()
            .unwrap()
            .contains("over the 1048576-byte limit"),
        "{big}"
    );
    let utf = about("backup-info-unreadable", &id("B4")).expect("non-UTF-8 backup.info reported");
    assert!(
        utf["message"]
            .as_str()
            .unwrap()
            .contains("line 1: not valid UTF-8"),
        "{utf}"
    );
    let cut = about("backup-info-field", &id("B1")).expect("truncated field reported");
    assert!(
        cut["message"].as_str().unwrap().starts_with("line "),
        "{cut}"
    );
    let statuses: Vec<&str> = j["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert!(statuses.contains(&"UNREADABLE_INFO"), "{statuses:?}");
    // Nothing usable remains on timeline 1 but nothing is guessed either: a target after F3 is
    // not recoverable, and the reasons name the unusable backups.
    let t = time(&group(&f, "after_f3")["last_commit"]);
    let j = check(&f, &iso(t)).json();
    assert_eq!(j["recoverable"], false, "{j:#}");
    let reasons = j["reasons"].to_string();
    assert!(
        reasons.contains(&format!("backup {} was not considered", id("B2"))),
        "{reasons}"
    );
    assert!(
        reasons.contains(&format!("backup {} was not considered", id("B1"))),
        "{reasons}"
    );
}

#[test]
fn help_documents_the_exit_codes_and_plain_urls() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for line in [
        "0  success",
        "1  findings",
        "2  usage or bad input",
        "3  object store unreachable or access denied",
    ] {
        assert!(r.stdout.contains(line), "{line}\n{}", r.stdout);
    }
    let r = run(&["catalog", "check", "--help"]);
    assert!(
        r.stdout.contains("The destinationPath: s3://BUCKET/PATH"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains('`'),
        "help text shows markdown backticks:\n{}",
        r.stdout
    );
    // Usage errors exit 2.
    assert_eq!(run(&["catalog", "check"]).code, 2);
}
