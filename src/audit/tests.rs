//! Audit checks on synthetic catalogs built in memory.

use std::path::PathBuf;

use serde_json::Value;

use super::{AuditFinding, DatabaseMetrics, RunInfo, Thresholds, audit_catalog, prometheus};
use crate::catalog::findings::Severity;
use crate::catalog::tests::{Synth, at};
use crate::gitops::discover::{BackupModel, Database, Schedule};

pub(crate) fn db(retention: Option<&str>, schedule: Option<&str>) -> Database {
    Database {
        env: "prod".into(),
        svc: "orders".into(),
        folder: PathBuf::from("prod/orders"),
        cluster: "orders-pg".into(),
        namespace: "orders".into(),
        cluster_file: "prod/orders/cluster.yaml:1".into(),
        instances: Some(2),
        image: None,
        backup_model: BackupModel::Plugin,
        catalog: None,
        retention_policy: retention.map(str::to_owned),
        schedules: schedule
            .map(|s| Schedule {
                name: "daily".into(),
                schedule: s.into(),
                method: "plugin".into(),
            })
            .into_iter()
            .collect(),
        bootstrap: vec![],
        other_clusters: vec![],
        recovery: None,
        flux_kustomizations: vec![],
    }
}

/// Every 30 minutes (robfig cron with seconds).
const HALF_HOURLY: &str = "0 */30 * * * *";

/// WAL 1..=9 (uploaded at minutes 10..=90), backups ending at minutes 25 and 55.
fn healthy() -> Synth {
    let mut s = Synth::new();
    s.wal(1, 1, 9)
        .done("20260301T000020", 2, 25)
        .done("20260301T000050", 5, 55);
    s
}

fn ids(f: &[AuditFinding]) -> Vec<&'static str> {
    f.iter().map(|f| f.id).collect()
}

fn find<'a>(f: &'a [AuditFinding], id: &str) -> Option<&'a AuditFinding> {
    f.iter().find(|f| f.id == id)
}

#[test]
fn a_healthy_catalog_audits_clean() {
    let c = healthy().analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn stalled_archiving_is_an_error_with_the_newest_segment() {
    let c = healthy().analyse_at(90 + 61);
    let f = audit_catalog(&db(None, Some("0 0 * * * *")), &c, &Thresholds::default());
    let s = find(&f, "wal-archiving-stalled").expect("stalled");
    assert_eq!(s.severity, Severity::Error);
    assert_eq!(s.evidence["newest_segment"], "000000010000000000000009");
    assert_eq!(s.evidence["uploaded_at"], "2026-03-01T01:30:00Z");
    assert_eq!(s.evidence["age_seconds"], 61 * 60);
    assert_eq!(
        (s.env.as_deref(), s.svc.as_deref()),
        (Some("prod"), Some("orders"))
    );
}

#[test]
fn an_empty_archive_is_stalled_too() {
    let mut s = Synth::new();
    s.done("20260301T000020", 2, 25);
    let c = s.analyse_at(30);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(ids(&f).contains(&"wal-archiving-stalled"), "{f:#?}");
}

#[test]
fn overdue_backup_fires_and_fresh_one_does_not() {
    // Newest backup ended at 55; at 95 it is 40 min old, below 45 (30 min × 1.5).
    let c = healthy().analyse_at(95);
    let quiet = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(!ids(&quiet).contains(&"backup-overdue"));
    // With more WAL, at 110 it is 55 min old.
    let mut s = healthy();
    s.wal(1, 10, 11);
    let c = s.analyse_at(110);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    let o = find(&f, "backup-overdue").expect("overdue");
    assert_eq!(o.severity, Severity::Error);
    assert_eq!(o.subject, "20260301T000050");
    assert_eq!(o.evidence["age_seconds"], 55 * 60);
    assert_eq!(o.evidence["limit_seconds"], 45 * 60);
}

#[test]
fn no_done_backup_is_an_error_and_no_schedule_a_warning() {
    let mut s = Synth::new();
    s.wal(1, 1, 9);
    let c = s.analyse_at(95);
    let f = audit_catalog(&db(None, None), &c, &Thresholds::default());
    assert_eq!(
        find(&f, "backup-none-done").unwrap().severity,
        Severity::Error
    );
    assert_eq!(
        find(&f, "backup-no-schedule").unwrap().severity,
        Severity::Warning
    );
    let c = healthy().analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(!ids(&f).contains(&"backup-none-done"));
    assert!(!ids(&f).contains(&"backup-no-schedule"));
}

#[test]
fn gaps_inside_the_window_are_errors_and_older_ones_info() {
    // Gap at segment 7, after both backups: inside.
    let mut s = healthy();
    s.remove_wal(1, 7);
    let c = s.analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    let g = find(&f, "wal-gap-in-window").expect("gap in window");
    assert_eq!(g.severity, Severity::Error);
    assert_eq!(g.evidence["first_missing"], "000000010000000000000007");
    assert!(!ids(&f).contains(&"wal-gap-before-window"));

    // Gap at segment 3, before the backup at 55 which anchors a 1-day window
    // seen a day later (more WAL keeps archiving fresh).
    let mut s = healthy();
    s.remove_wal(1, 3)
        .wal(1, 10, 150)
        .done("20260301T002400", 144, 1445);
    let c = s.analyse_at(1505);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    let g = find(&f, "wal-gap-before-window").expect("gap before window");
    assert_eq!(g.severity, Severity::Info);
    assert_eq!(g.evidence["anchor_backup"], "20260301T000050");
    assert!(!ids(&f).contains(&"wal-gap-in-window"), "{f:#?}");
}

#[test]
fn unusable_backups_map_the_catalog_findings() {
    let mut s = healthy();
    s.backup("20260301T000060", "FAILED", 1, 6, 6, 65, true);
    s.backup("20260301T000070", "DONE", 1, 7, 7, 75, false);
    // A crashed backup: data but no backup.info.
    s.input
        .listing
        .add("base/20260301T000080/data.tar.gz", 100, at(80));
    let c = s.analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    let unusable: Vec<(&str, &Value)> = f
        .iter()
        .filter(|f| f.id == "backup-unusable")
        .map(|f| (f.subject.as_str(), &f.evidence["catalog_finding"]))
        .collect();
    assert!(
        unusable
            .iter()
            .any(|(s, id)| s.contains("20260301T000060") && *id == "backup-failed"),
        "{unusable:?}"
    );
    assert!(
        unusable
            .iter()
            .any(|(s, id)| s.contains("20260301T000070") && *id == "backup-data-missing"),
        "{unusable:?}"
    );
    assert!(
        unusable
            .iter()
            .any(|(s, id)| s.contains("20260301T000080") && *id == "backup-missing-info"),
        "{unusable:?}"
    );
    let c = healthy().analyse_at(95);
    let quiet = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(!ids(&quiet).contains(&"backup-unusable"));
}

#[test]
#[allow(clippy::many_single_char_names)]
fn retention_not_enforced_and_window_not_covered() {
    // FRP at minute 25. A 1-day window seen at minute 1440 + 106 with a
    // 30-minute interval: the window starts at 106, more than an hour after 25.
    let mut s = healthy();
    s.wal(1, 10, 150).done("20260301T002400", 144, 1445);
    let c = s.analyse_at(1440 + 86 + 20);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    let r = find(&f, "retention-not-enforced").expect("not enforced");
    assert_eq!(r.severity, Severity::Warning);
    assert_eq!(
        r.evidence["first_recoverable_point"],
        "2026-03-01T00:25:00Z"
    );
    assert_eq!(r.evidence["window_start"], "2026-03-01T01:46:00Z");
    // Seen at 1440 + 60, the window starts at 60: within two intervals of 25.
    let c = s.analyse_at(1500);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    assert!(!ids(&f).contains(&"retention-not-enforced"), "{f:#?}");
    assert!(!ids(&f).contains(&"retention-window-not-covered"), "{f:#?}");

    // A young catalog: FRP 25 is newer than now − 1 day.
    let c = healthy().analyse_at(95);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    let w = find(&f, "retention-window-not-covered").expect("not covered");
    assert_eq!(w.severity, Severity::Info, "a young catalog is not a loss");
    assert!(!ids(&f).contains(&"retention-not-enforced"));

    // An old backup that cannot serve (its data is gone) and only young
    // usable ones: something was lost, the window is not covered.
    let mut s = Synth::new();
    s.wal(1, 1, 9)
        .backup("20260228T000000", "DONE", 1, 1, 1, -1400, false)
        .done("20260301T000050", 5, 55);
    let c = s.analyse_at(95);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    let w = find(&f, "retention-window-not-covered").expect("not covered");
    assert_eq!(w.severity, Severity::Warning, "{f:#?}");
    assert!(ids(&f).contains(&"backup-unusable"));
}

#[test]
fn several_system_ids_map_the_catalog_finding() {
    let mut s = healthy();
    s.with_systemid("42")
        .backup("20260301T000070", "DONE", 1, 7, 7, 75, true);
    let c = s.analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(ids(&f).contains(&"systemid-multiple"), "{f:#?}");
    let c = healthy().analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(!ids(&f).contains(&"systemid-multiple"));
}

#[test]
fn timelines_without_history_map_the_catalog_finding() {
    let mut s = healthy();
    s.wal(2, 9, 9);
    let c = s.analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    let t = find(&f, "timeline-unexpected").expect("timeline");
    assert_eq!(t.evidence["catalog_finding"], "history-missing");
    let c = healthy().analyse_at(95);
    let f = audit_catalog(&db(None, Some(HALF_HOURLY)), &c, &Thresholds::default());
    assert!(!ids(&f).contains(&"timeline-unexpected"));
}

/// Splits `name{labels} value` into its parts.
fn sample(line: &str) -> (String, Vec<(String, String)>, String) {
    let (head, value) = line.rsplit_once(' ').unwrap();
    let Some((name, rest)) = head.split_once('{') else {
        return (head.to_owned(), Vec::new(), value.to_owned());
    };
    let body = rest.strip_suffix('}').unwrap();
    let mut labels = Vec::new();
    let mut chars = body.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(chars.next(), Some('"'));
        let mut v = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next().unwrap() {
                    'n' => v.push('\n'),
                    other => v.push(other),
                },
                '"' => break,
                c => v.push(c),
            }
        }
        labels.push((key, v));
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    (name.to_owned(), labels, value.to_owned())
}

#[test]
fn prometheus_output_reads_back() {
    let mut s = healthy();
    s.remove_wal(1, 7);
    let c = s.analyse_at(95);
    let mut d = db(None, Some(HALF_HOURLY));
    d.namespace = "ns \"a\"\\b".into();
    let findings = audit_catalog(&d, &c, &Thresholds::default());
    let mut m = DatabaseMetrics::from(&d, &c);
    m.lifecycle_checked = true;
    let metrics = vec![m];
    let run = RunInfo {
        finished_at: at(95),
        duration_seconds: 1.5,
    };
    let text = prometheus(&findings, &metrics, run);
    assert_eq!(text, prometheus(&findings, &metrics, run));

    let mut seen = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(rest.ends_with(" gauge"), "{line}");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (name, labels, value) = sample(line);
        if name.starts_with("cnpg_ops_audit_last_run")
            || name.starts_with("cnpg_ops_audit_duration")
        {
            assert!(labels.is_empty(), "{line}");
            seen.push((name, None, value));
            continue;
        }
        let keys: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&keys[..4], ["env", "svc", "namespace", "cluster"], "{line}");
        assert_eq!(labels[2].1, "ns \"a\"\\b");
        assert_eq!(labels[3].1, "orders-pg");
        let label = labels.get(4).map(|(_, v)| v.clone());
        seen.push((name, label, value));
    }
    let get = |n: &str, l: Option<&str>| {
        seen.iter()
            .find(|(name, label, _)| name == n && label.as_deref() == l)
            .map_or_else(|| panic!("{n} missing in\n{text}"), |(_, _, v)| v.clone())
    };
    assert_eq!(
        get("cnpg_ops_first_recoverable_timestamp_seconds", None),
        at(25).timestamp().to_string()
    );
    assert_eq!(get("cnpg_ops_newest_wal_age_seconds", None), "300");
    assert_eq!(get("cnpg_ops_newest_backup_age_seconds", None), "2400");
    assert_eq!(get("cnpg_ops_wal_gaps", None), "1");
    assert_eq!(get("cnpg_ops_audit_catalog_readable", None), "1");
    assert_eq!(get("cnpg_ops_lifecycle_violations", None), "0");
    assert_eq!(
        get("cnpg_ops_audit_last_run_timestamp_seconds", None),
        at(95).timestamp().to_string()
    );
    assert_eq!(get("cnpg_ops_audit_duration_seconds", None), "1.500");
    assert_eq!(get("cnpg_ops_audit_findings", Some("error")), "1");
    assert_eq!(get("cnpg_ops_audit_findings", Some("warning")), "0");
    assert_eq!(get("cnpg_ops_audit_findings", Some("info")), "0");
    for name in [
        "cnpg_ops_first_recoverable_timestamp_seconds",
        "cnpg_ops_newest_wal_age_seconds",
        "cnpg_ops_newest_backup_age_seconds",
        "cnpg_ops_wal_gaps",
        "cnpg_ops_audit_findings",
        "cnpg_ops_audit_location_findings",
        "cnpg_ops_lifecycle_violations",
        "cnpg_ops_audit_catalog_readable",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        assert!(text.contains(&format!("# TYPE {name} gauge")), "{name}");
    }
}

#[test]
fn an_anchor_aged_by_missed_backups_is_not_unenforced_retention() {
    // One backup, long before the window: retention keeps it as the anchor.
    let mut s = Synth::new();
    s.wal(1, 1, 9).done("20260301T000020", 2, 25);
    let c = s.analyse_at(1440 + 200);
    let f = audit_catalog(
        &db(Some("1d"), Some(HALF_HOURLY)),
        &c,
        &Thresholds::default(),
    );
    assert!(!ids(&f).contains(&"retention-not-enforced"), "{f:#?}");
    // Nor without a schedule.
    let f = audit_catalog(&db(Some("1d"), None), &c, &Thresholds::default());
    assert!(!ids(&f).contains(&"retention-not-enforced"), "{f:#?}");
}
