//! Exact verdicts from real WAL: a file:// catalog holds the segments
//! PostgreSQL wrote for tests/fixtures/wal (commits, an abort, a restore
//! point, two-phase ends, a commit across the segment boundary) and one
//! backup whose end lies before the first commit. `catalog check` must place
//! every target where the database's own records say.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration as StdDuration, SystemTime};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use cnpg_ops::catalog::time::format_utc;
use cnpg_ops::catalog::wal::Lsn;
use cnpg_ops::catalog::walread::{SegmentRecords, read_segment};
use support::wal::{gunzip, start_of};

const BACKUP: &str = "20260101T000000";

struct Fixture {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
    facts: Value,
    segments: Vec<(String, SegmentRecords)>,
}

fn set_mtime(p: &Path, t: DateTime<Utc>) {
    let st = SystemTime::UNIX_EPOCH
        + StdDuration::from_micros(u64::try_from(t.timestamp_micros()).unwrap());
    std::fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(st)
        .unwrap();
}

fn wal_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("pg/srv/wals/0000000100000000")
        .join(format!("{name}.gz"))
}

/// The catalog: the fixture's segments, uploaded a second after their last
/// commit, and a backup that ends just before the first commit.
fn fixture() -> Fixture {
    let src = support::wal::dir();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("facts.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            n.strip_suffix(".gz").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut segments = Vec::new();
    for n in &names {
        let bytes = gunzip(&src.join(format!("{n}.gz")));
        segments.push((n.clone(), read_segment(&bytes, start_of(n)).unwrap()));
    }
    let first = segments[0].1.xacts[0].clone();
    let begin = start_of(&names[0]).0 + 0x28;
    let end = first.lsn;
    let end_time = first.time - Duration::seconds(1);
    let base = dir.path().join(format!("pg/srv/base/{BACKUP}"));
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(base.join("data.tar"), b"not read").unwrap();
    let pg = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string();
    std::fs::write(
        base.join("backup.info"),
        format!(
            "backup_name=backup-{BACKUP}\nbegin_offset=40\nbegin_time={}\nbegin_wal={}\nbegin_xlog={}\n\
             compression=None\nend_time={}\nend_wal={}\nend_xlog={}\nerror=None\nstatus=DONE\n\
             systemid={}\ntimeline=1\nversion={}\nxlog_segment_size=16777216\n",
            pg(end_time - Duration::seconds(1)),
            names[0],
            Lsn(begin),
            pg(end_time),
            names[0],
            Lsn(end.0),
            facts["system_identifier"].as_str().unwrap(),
            facts["pg_version_num"],
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("pg/srv/wals/0000000100000000")).unwrap();
    for (n, r) in &segments {
        let to = wal_path(dir.path(), n);
        std::fs::copy(src.join(format!("{n}.gz")), &to).unwrap();
        let newest = r.xacts.iter().map(|x| x.time).max().unwrap_or(end_time);
        set_mtime(&to, newest + Duration::seconds(1));
    }
    Fixture {
        dir,
        cache: tempfile::tempdir().unwrap(),
        facts,
        segments,
    }
}

impl Fixture {
    fn check(&self, to: &str, extra: &[&str]) -> (i32, Value) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
            .args(["catalog", "check"])
            .arg(format!("file://{}/pg", self.dir.path().display()))
            .args(["--to", to, "-o", "json", "--now", "2030-01-01T00:00:00Z"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env("CNPG_OPS_CACHE_DIR", self.cache.path())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap(), v)
    }

    /// The last transaction end in the archive, as PostgreSQL wrote it.
    fn last_commit(&self) -> (u32, DateTime<Utc>) {
        let c = self.facts["commits"].as_array().unwrap().last().unwrap();
        (
            c["xid"].as_u64().unwrap() as u32,
            c["time"].as_str().unwrap().parse().unwrap(),
        )
    }

    fn commit(&self, i: usize) -> (u32, DateTime<Utc>) {
        let c = &self.facts["commits"][i];
        (
            c["xid"].as_u64().unwrap() as u32,
            c["time"].as_str().unwrap().parse().unwrap(),
        )
    }
}

fn reasons(v: &Value) -> String {
    v["reasons"].to_string()
}

#[test]
fn one_microsecond_either_side_of_the_last_commit() {
    let f = fixture();
    let (xid, at) = f.last_commit();
    // Just before it: recovery stops before that commit, so the target is reached.
    let before = format_utc(at - Duration::microseconds(1));
    let (code, v) = f.check(&before, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["recoverable"], true);
    assert_eq!(v["exact"], true, "{v}");
    assert_eq!(v["backup_id"], BACKUP);
    assert_eq!(v["wal"]["stop"]["xid"], xid, "{v}");
    assert_eq!(v["wal"]["stop"]["kind"], "commit");
    assert!(
        reasons(&v).contains("recovery stops just before transaction"),
        "{v}"
    );
    // Just after it: no transaction ends later, PostgreSQL fails.
    let after = format_utc(at + Duration::microseconds(1));
    let (code, v) = f.check(&after, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["recoverable"], false);
    assert_eq!(v["exact"], true, "{v}");
    assert!(
        reasons(&v).contains("recovery ended before configured recovery target was reached"),
        "{v}"
    );
    assert_eq!(v["wal"]["last_transaction"]["xid"], xid);
    let latest: DateTime<Utc> = v["wal"]["latest_time_target"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(latest, at - Duration::microseconds(1));
    assert!(
        v["nearest"][0]["description"]
            .as_str()
            .unwrap()
            .starts_with("exact time"),
        "{v}"
    );
    // Exactly at it: inclusive targets stop only at a later time, so not reached either.
    let (code, _) = f.check(&format_utc(at), &[]);
    assert_eq!(code, 1);
}

#[test]
fn upload_times_alone_say_otherwise() {
    let f = fixture();
    let (_, at) = f.last_commit();
    // The newest segment was uploaded a second after the last commit: from
    // upload times alone, a target between the two looks reachable.
    let between = format_utc(at + Duration::milliseconds(500));
    let (code, v) = f.check(&between, &["--no-wal"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["exact"], false);
    assert!(v.get("wal").is_none());
    let (code, v) = f.check(&between, &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["exact"], true);
}

#[test]
fn a_commit_across_the_segment_boundary_stops_recovery() {
    let f = fixture();
    let s = &f.facts["straddling_commit"];
    let at: DateTime<Utc> = s["time"].as_str().unwrap().parse().unwrap();
    let (code, v) = f.check(&format_utc(at - Duration::microseconds(1)), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["wal"]["stop"]["xid"], s["xid"], "{v}");
    let want: Lsn = s["lsn"].as_str().unwrap().parse().unwrap();
    let got: Lsn = v["wal"]["stop"]["lsn"].as_str().unwrap().parse().unwrap();
    assert_eq!(got, want);
    // Replay must read the segment where the record ends.
    assert_eq!(v["wal_to"], f.segments[1].0.as_str(), "{v}");
}

#[test]
fn transactions_are_placed_by_xid() {
    let f = fixture();
    let (xid, at) = f.commit(2);
    let (code, v) = f.check(&format!("xid:{xid}"), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["target_kind"], "xid");
    assert_eq!(v["exact"], true);
    assert_eq!(v["backup_id"], BACKUP);
    assert_eq!(v["requires_backup_id"], true, "{v}");
    assert_eq!(v["wal"]["stop"]["xid"], xid);
    let time: DateTime<Utc> = v["wal"]["stop"]["time"].as_str().unwrap().parse().unwrap();
    assert_eq!(time, at);
    assert!(
        reasons(&v).contains("recovery stops just after transaction"),
        "{v}"
    );
    // The rolled-back one is placed too, and said to restore nothing of its own.
    let aborted = f.segments[0]
        .1
        .xacts
        .iter()
        .find(|x| !x.committed && !x.prepared)
        .unwrap()
        .xid;
    let (code, v) = f.check(&format!("xid:{aborted}"), &[]);
    assert_eq!(code, 0, "{v}");
    assert!(reasons(&v).contains("rolled back"), "{v}");
    // A prepared transaction, by its own xid.
    let prepared = f.facts["prepared"]["committed_xid"].as_u64().unwrap();
    let (code, v) = f.check(&format!("xid:{prepared}"), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["wal"]["stop"]["kind"], "commit-prepared");
    // One that never ended in this archive: younger than every transaction that
    // ends in the newest segment, so most likely never ended; not a proof.
    let (code, v) = f.check(&format!("xid:{}", f.last_commit().0 + 1000), &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["exact"], false);
    assert!(reasons(&v).contains("most likely never ended"), "{v}");
    // Without the WAL, an xid cannot be placed.
    let (code, v) = f.check(&format!("xid:{xid}"), &["--no-wal"]);
    assert_eq!(code, 1);
    assert!(
        reasons(&v).contains("only be placed by reading the WAL"),
        "{v}"
    );
}

#[test]
fn restore_points_are_found_by_name() {
    let f = fixture();
    let name = f.facts["restore_point"]["name"].as_str().unwrap();
    let (code, v) = f.check(&format!("name:{name}"), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["target_kind"], "name");
    assert_eq!(v["wal"]["stop"]["name"], name);
    assert_eq!(v["wal"]["stop"]["kind"], "restore-point");
    let returned: Lsn = f.facts["restore_point"]["lsn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let at: Lsn = v["wal"]["stop"]["lsn"].as_str().unwrap().parse().unwrap();
    assert!(at < returned);
    let (code, v) = f.check("name:no-such-point", &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["exact"], true);
    assert!(
        reasons(&v).contains("no restore point named `no-such-point`"),
        "{v}"
    );
    // Bad names and xids are refused before anything is read.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["catalog", "check", "file:///nonexistent", "--to", "xid:abc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a transaction id"));
}

#[test]
fn latest_names_the_last_transaction_and_lsns_past_the_end_are_refused() {
    let f = fixture();
    let (xid, _) = f.last_commit();
    let (code, v) = f.check("latest", &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["wal"]["last_transaction"]["xid"], xid, "{v}");
    // Past the last record of the newest segment (its switch): nothing to stop after.
    let last = &f.segments.last().unwrap().1;
    let past = Lsn(last.last_record_lsn.unwrap().0 + 8);
    let (code, v) = f.check(&past.to_string(), &[]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["exact"], true);
    assert!(reasons(&v).contains("no record starts at or after"), "{v}");
    // At the last record: reached.
    let at = last.last_record_lsn.unwrap();
    let (code, v) = f.check(&at.to_string(), &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["exact"], true);
}

#[test]
fn summaries_are_cached_and_unreadable_segments_fall_back_labelled() {
    let f = fixture();
    let (_, at) = f.last_commit();
    let target = format_utc(at - Duration::microseconds(1));
    let (code, _) = f.check(&target, &[]);
    assert_eq!(code, 0);
    let cached: Vec<_> = walkdir(f.cache.path());
    assert!(!cached.is_empty(), "nothing cached");
    // Same name, size and upload time, other bytes: the cache answers.
    let newest = &f.segments.last().unwrap().0;
    let p = wal_path(f.dir.path(), newest);
    let meta = std::fs::metadata(&p).unwrap();
    std::fs::write(&p, vec![0u8; meta.len() as usize]).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(meta.modified().unwrap())
        .unwrap();
    let (code, v) = f.check(&target, &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["exact"], true);
    // Without the cache the garbage is read: the verdict is the catalog's, said to be.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["catalog", "check"])
        .arg(format!("file://{}/pg", f.dir.path().display()))
        .args([
            "--to",
            &target,
            "-o",
            "json",
            "--now",
            "2030-01-01T00:00:00Z",
        ])
        .env("CNPG_OPS_CACHE_DIR", "")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["exact"], false, "{v}");
    assert!(reasons(&v).contains("approximate:"), "{v}");
    assert!(
        v["wal"]["unreadable"][0]["segment"]
            .as_str()
            .unwrap()
            .starts_with(&newest[..24]),
        "{v}"
    );
    // An empty object (a byte range cannot be served from it) is read as empty, and the
    // error is about its contents, never the store's access.
    std::fs::write(&p, b"").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["catalog", "check"])
        .arg(format!("file://{}/pg", f.dir.path().display()))
        .args(["--to", &target, "-o", "json"])
        .args(["--now", "2030-01-01T00:00:00Z"])
        .env("CNPG_OPS_CACHE_DIR", "")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = v["wal"]["unreadable"][0]["error"].as_str().unwrap();
    assert!(error.contains("not valid gzip data"), "{v}");
    assert_eq!(v["exact"], false, "{v}");
}

fn walkdir(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap().path();
        if e.is_dir() {
            out.extend(walkdir(&e));
        } else {
            out.push(e);
        }
    }
    out
}

/// `pitr` to a transaction and to a restore point: the committed Cluster
/// carries targetXID / targetName with the proved backup pinned, as the
/// webhook requires.
#[test]
fn pitr_to_a_transaction_and_a_restore_point_pins_the_backup() {
    let f = fixture();
    let repo = support::repo::FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "destinationPath: gs://acme-prod-pg-backups/foo",
        &format!("destinationPath: file://{}/pg", f.dir.path().display()),
    );
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "        barmanObjectName: foo-store\n",
        "        barmanObjectName: foo-store\n        serverName: srv\n",
    );
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "postgresql:17.6-standard-bookworm",
        "postgresql:15.14-standard-bookworm",
    );
    repo.git_init();
    let state = tempfile::tempdir().unwrap();
    let pitr = |to: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
            .current_dir(repo.root())
            .args(["pitr", "--env", "prod", "--svc", "foo", "--to", to])
            .args(["--now", "2030-01-01T00:00:00Z"])
            .env("NO_COLOR", "1")
            .env("CNPG_OPS_STATE_DIR", state.path())
            .env("CNPG_OPS_CACHE_DIR", f.cache.path())
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap()
    };
    let (xid, _) = f.commit(1);
    let out = pitr(&format!("xid:{xid}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let branch = format!("cnpg-ops/pitr-prod-foo-xid-{xid}");
    let file = format!("fluxcd/databases/prod/foo/foo-pg-pitr-xid-{xid}.yaml");
    let cluster = support::repo::git(repo.root(), &["show", &format!("{branch}:{file}")]);
    let v = &cnpg_ops::yaml::parse_values(&cluster).unwrap()[0];
    assert!(cnpg_ops::gitops::schema::validate(v).unwrap().is_empty());
    let errors: Vec<_> = cnpg_ops::gitops::webhook::validate(v)
        .into_iter()
        .filter(|x| x.severity == cnpg_ops::gitops::webhook::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let t = &v["spec"]["bootstrap"]["recovery"]["recoveryTarget"];
    assert_eq!(t["targetXID"], xid.to_string());
    assert_eq!(t["backupID"], BACKUP);

    let name = f.facts["restore_point"]["name"].as_str().unwrap();
    let out = pitr(&format!("name:{name}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cluster = support::repo::git(
        repo.root(),
        &[
            "show",
            "cnpg-ops/pitr-prod-foo-rp-before-four:fluxcd/databases/prod/foo/foo-pg-pitr-rp-before-four.yaml",
        ],
    );
    let v = &cnpg_ops::yaml::parse_values(&cluster).unwrap()[0];
    let t = &v["spec"]["bootstrap"]["recovery"]["recoveryTarget"];
    assert_eq!(t["targetName"], name);
    assert_eq!(t["backupID"], BACKUP);

    // A transaction that never ended here: refused, nothing committed.
    let out = pitr("xid:4000");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("transaction 4000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
