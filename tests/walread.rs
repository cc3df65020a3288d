//! The WAL reader on real segments written by PostgreSQL
//! (tests/fixtures/wal, made by its make.sh): what it finds is what the
//! database recorded.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::Value;

use cnpg_ops::catalog::wal::Lsn;
use cnpg_ops::catalog::walread::{SegmentEnd, WalError, read_segment};

fn fixture() -> (Value, Vec<(String, Vec<u8>)>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal");
    let facts: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("facts.json")).unwrap()).unwrap();
    let mut segments = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz"))
        .collect();
    names.sort();
    for p in names {
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        segments.push((name, bytes));
    }
    (facts, segments)
}

/// The LSN a 16 MiB segment's name starts at.
fn start_of(name: &str) -> Lsn {
    let log = u64::from_str_radix(&name[8..16], 16).unwrap();
    let seg = u64::from_str_radix(&name[16..24], 16).unwrap();
    Lsn((log << 32) + seg * 16 * 1024 * 1024)
}

#[test]
fn commits_aborts_and_the_restore_point_are_what_postgres_recorded() {
    let (facts, segments) = fixture();
    let (name, bytes) = &segments[0];
    let r = read_segment(bytes, start_of(name)).unwrap();
    assert_eq!(
        r.pg_major,
        facts["pg_version_num"].as_u64().unwrap() as u32 / 10000
    );
    assert_eq!(
        r.system_id.to_string(),
        facts["system_identifier"].as_str().unwrap()
    );
    assert_eq!(r.timeline, 1);
    assert_eq!(r.end, SegmentEnd::Switch);
    // Every commit the table holds, with the time PostgreSQL recorded for it.
    for c in facts["commits"].as_array().unwrap() {
        let xid = c["xid"].as_u64().unwrap() as u32;
        let want: DateTime<Utc> = c["time"].as_str().unwrap().parse().unwrap();
        let found = r
            .xacts
            .iter()
            .find(|x| x.xid == xid)
            .unwrap_or_else(|| panic!("commit of xid {xid} not found in {:?}", r.xacts));
        assert!(found.committed);
        assert_eq!(found.time, want, "xid {xid}");
        assert!(found.end_lsn > found.lsn);
    }
    // The rolled-back insert is an abort between the third and fourth commits.
    let aborts: Vec<_> = r.xacts.iter().filter(|x| !x.committed).collect();
    assert_eq!(aborts.len(), 1, "{:?}", r.xacts);
    // The restore point, by name, at the LSN pg_create_restore_point returned
    // (it returns the record's end).
    let rp = &r.restore_points[0];
    assert_eq!(rp.name, facts["restore_point"]["name"].as_str().unwrap());
    let returned: Lsn = facts["restore_point"]["lsn"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rp.lsn < returned, "{rp:?} vs {returned}");
    // Commits come in WAL order.
    assert!(r.xacts.windows(2).all(|w| w[0].lsn < w[1].lsn));
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

/// A file:// catalog holding the fixture's segment.
fn catalog_with_segment() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wals = dir.path().join("pg/srv/wals/0000000100000000");
    std::fs::create_dir_all(&wals).unwrap();
    std::fs::create_dir_all(dir.path().join("pg/srv/base")).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wal/000000010000000000000002.gz");
    std::fs::copy(src, wals.join("000000010000000000000002.gz")).unwrap();
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
    let out = catalog_wal(
        dir.path(),
        &["--segment", "000000010000000000000002", "-o", "json"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["server"], "srv");
    assert_eq!(r["records"]["end"], "switch");
    let commits: Vec<&Value> = r["records"]["xacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["committed"] == true)
        .collect();
    for c in facts["commits"].as_array().unwrap() {
        assert!(commits.iter().any(|x| x["xid"] == c["xid"]), "{c}");
    }
    assert_eq!(r["records"]["restore_points"][0]["name"], "before-four");

    let out = catalog_wal(dir.path(), &["--segment", "000000010000000000000002"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PostgreSQL 15"), "{text}");
    assert!(text.contains("before-four"), "{text}");
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
