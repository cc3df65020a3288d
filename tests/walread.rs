//! The WAL reader on real segments written by PostgreSQL
//! (tests/fixtures/wal, made by its make.sh): what it finds is what the
//! database recorded.

mod support;

use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use cnpg_ops::catalog::wal::Lsn;
use cnpg_ops::catalog::walread::{
    SegmentEnd, SegmentRecords, WalError, read_segment, read_segment_after,
};
use support::wal::{gunzip, start_of};

fn fixture() -> (Value, Vec<(String, Vec<u8>)>) {
    let dir = support::wal::dir();
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    names.sort();
    let segments = names
        .iter()
        .map(|p| {
            (
                p.file_stem().unwrap().to_string_lossy().into_owned(),
                gunzip(p),
            )
        })
        .collect();
    (facts, segments)
}

/// Both segments, the second read with the first one's tail.
fn read_both() -> (Value, SegmentRecords, SegmentRecords) {
    let (facts, segments) = fixture();
    assert_eq!(segments.len(), 2, "make.sh writes two segments");
    let first = read_segment(&segments[0].1, start_of(&segments[0].0)).unwrap();
    let second = read_segment_after(
        &segments[1].1,
        start_of(&segments[1].0),
        first.tail.as_ref(),
    )
    .unwrap();
    (facts, first, second)
}

fn xid_of(v: &Value) -> u32 {
    u32::try_from(v.as_u64().unwrap()).unwrap()
}

#[test]
fn commits_aborts_and_the_restore_point_are_what_postgres_recorded() {
    let (facts, first, second) = read_both();
    assert_eq!(
        first.pg_major,
        facts["pg_version_num"].as_u64().unwrap() as u32 / 10000
    );
    assert_eq!(
        first.system_id.to_string(),
        facts["system_identifier"].as_str().unwrap()
    );
    assert_eq!(first.timeline, 1);
    assert_eq!(second.end, SegmentEnd::Switch);
    let xacts: Vec<_> = first.xacts.iter().chain(&second.xacts).collect();
    // Every commit the table holds, with the time PostgreSQL recorded for it.
    for c in facts["commits"].as_array().unwrap() {
        let xid = xid_of(&c["xid"]);
        let want: DateTime<Utc> = c["time"].as_str().unwrap().parse().unwrap();
        let found = xacts
            .iter()
            .find(|x| x.xid == xid)
            .unwrap_or_else(|| panic!("commit of xid {xid} not found in {xacts:?}"));
        assert!(found.committed);
        assert_eq!(found.time, want, "xid {xid}");
        assert!(found.end_lsn > found.lsn);
    }
    // The rolled-back insert is an abort between the third and fourth commits.
    let aborts: Vec<_> = xacts
        .iter()
        .filter(|x| !x.committed && !x.prepared)
        .collect();
    assert_eq!(aborts.len(), 1, "{xacts:?}");
    // The restore point, by name, at the LSN pg_create_restore_point returned
    // (it returns the record's end).
    let rp = &first.restore_points[0];
    assert_eq!(rp.name, facts["restore_point"]["name"].as_str().unwrap());
    let returned: Lsn = facts["restore_point"]["lsn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rp.lsn < returned, "{rp:?} vs {returned}");
    // Commits come in WAL order.
    assert!(xacts.windows(2).all(|w| w[0].lsn < w[1].lsn));
}

#[test]
fn two_phase_ends_carry_the_prepared_transaction() {
    let (facts, first, second) = read_both();
    let xacts: Vec<_> = first.xacts.iter().chain(&second.xacts).collect();
    let committed = xid_of(&facts["prepared"]["committed_xid"]);
    let rolled_back = xid_of(&facts["prepared"]["rolled_back_xid"]);
    let c = xacts.iter().find(|x| x.xid == committed).unwrap();
    assert!(c.prepared && c.committed, "{c:?}");
    let a = xacts.iter().find(|x| x.xid == rolled_back).unwrap();
    assert!(a.prepared && !a.committed, "{a:?}");
}

#[test]
fn a_commit_across_the_segment_boundary_is_read_with_the_previous_tail() {
    let (facts, first, second) = read_both();
    let want = &facts["straddling_commit"];
    let xid = xid_of(&want["xid"]);
    let lsn: Lsn = want["lsn"].as_str().unwrap().parse().unwrap();
    // The first segment ends inside the record and keeps its beginning.
    assert_eq!(first.end, SegmentEnd::ContinuesInNext);
    let tail = first.tail.as_ref().unwrap();
    assert_eq!(tail.lsn, lsn);
    assert!(!tail.bytes.is_empty());
    assert!(first.xacts.iter().all(|x| x.xid != xid));
    // Read alone, the second segment skips the continuation.
    let (_, segments) = fixture();
    let alone = read_segment(&segments[1].1, start_of(&segments[1].0)).unwrap();
    assert!(alone.continued_bytes > 0 && !alone.continued_read);
    assert!(alone.xacts.iter().all(|x| x.xid != xid));
    // Read after the first one, the commit is there, with its time.
    assert!(second.continued_read);
    let c = second.xacts.iter().find(|x| x.xid == xid).unwrap();
    assert_eq!(c.lsn, lsn);
    assert!(c.end_lsn > start_of(&segments[1].0));
    let time: DateTime<Utc> = want["time"].as_str().unwrap().parse().unwrap();
    assert_eq!(c.time, time);
    // A tail that does not belong is not taken for the continuation.
    let mut wrong = tail.clone();
    wrong.bytes[5] ^= 0xFF;
    let r = read_segment_after(&segments[1].1, start_of(&segments[1].0), Some(&wrong)).unwrap();
    assert!(!r.continued_read);
    assert!(r.xacts.iter().all(|x| x.xid != xid));
    // The tail survives the cache's JSON.
    let json = serde_json::to_string(&first).unwrap();
    let back: SegmentRecords = serde_json::from_str(&json).unwrap();
    assert_eq!(back, first);
}

#[test]
fn damage_is_where_the_valid_wal_ends() {
    let (_, segments) = fixture();
    let (name, bytes) = &segments[0];
    let whole = read_segment(bytes, start_of(name)).unwrap();
    // Flip a byte inside the record of the last commit: it and what follows go.
    let last = whole.xacts.last().unwrap().lsn;
    let offset = (last.0 - start_of(name).0) as usize + 30;
    let mut broken = bytes.clone();
    broken[offset] ^= 0xFF;
    let r = read_segment(&broken, start_of(name)).unwrap();
    assert_eq!(r.end, SegmentEnd::Invalid);
    assert_eq!(r.xacts.len(), whole.xacts.len() - 1);
    assert!(r.end_lsn <= last);
    // Truncated in the middle: the records before the cut are read.
    let r = read_segment(&bytes[..offset / 8192 * 8192], start_of(name)).unwrap();
    assert!(r.records < whole.records);
    assert_eq!(r.end, SegmentEnd::Invalid);
    // Another segment's start: refused by name.
    let err = read_segment(bytes, Lsn(start_of(name).0 + 16 * 1024 * 1024)).unwrap_err();
    assert!(matches!(err, WalError::PageAddress { .. }), "{err}");
}

/// A file:// catalog holding the fixture's segments.
fn catalog_with_segment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wals = dir.path().join("pg/srv/wals/0000000100000000");
    std::fs::create_dir_all(&wals).unwrap();
    std::fs::create_dir_all(dir.path().join("pg/srv/base")).unwrap();
    for name in ["000000010000000000000002.gz", "000000010000000000000003.gz"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/wal")
            .join(name);
        std::fs::copy(src, wals.join(name)).unwrap();
    }
    dir
}

fn catalog_wal(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["catalog", "wal"])
        .arg(format!("file://{}/pg", dir.display()))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn catalog_wal_prints_a_segments_records() {
    let (facts, _) = fixture();
    let dir = catalog_with_segment();
    let mut commits: Vec<Value> = Vec::new();
    for (segment, end) in [
        ("000000010000000000000002", "continues-in-next"),
        ("000000010000000000000003", "switch"),
    ] {
        let out = catalog_wal(dir.path(), &["--segment", segment, "-o", "json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["server"], "srv");
        assert_eq!(r["records"]["end"], end);
        if segment.ends_with('2') {
            assert_eq!(r["records"]["restore_points"][0]["name"], "before-four");
        }
        commits.extend(
            r["records"]["xacts"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| x["committed"] == true)
                .cloned(),
        );
    }
    for c in facts["commits"].as_array().unwrap() {
        assert!(commits.iter().any(|x| x["xid"] == c["xid"]), "{c}");
    }

    let out = catalog_wal(dir.path(), &["--segment", "000000010000000000000002"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PostgreSQL 15"), "{text}");
    assert!(text.contains("before-four"), "{text}");
    let out = catalog_wal(dir.path(), &["--segment", "000000010000000000000003"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ends with a WAL switch"), "{text}");
}

#[test]
fn catalog_wal_missing_and_malformed_segments() {
    let dir = catalog_with_segment();
    let out = catalog_wal(dir.path(), &["--segment", "000000010000000000000009"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no archived file for segment"));
    let out = catalog_wal(dir.path(), &["--segment", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    // A segment that is not WAL at all.
    let bad = dir
        .path()
        .join("pg/srv/wals/0000000100000000/000000010000000000000005");
    std::fs::write(&bad, vec![7u8; 8192]).unwrap();
    let out = catalog_wal(dir.path(), &["--segment", "000000010000000000000005"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("page magic"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
