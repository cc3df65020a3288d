//! Scenario tests of the analysis on synthetic catalogs built in memory.

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::analysis::{AnalysisOptions, Catalog};
use super::backup_info::BackupInfo;
use super::history::History;
use super::listing::{CatalogInput, ReadFailure};
use super::retention::{Policy, simulate};
use super::target::{Target, TimelineChoice};
use super::wal::{Lsn, SegmentSize};

pub(crate) const MB16: u64 = 16 << 20;

pub(crate) fn at(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap() + Duration::minutes(minute)
}

/// Builds catalogs: segment `s` is uploaded at minute `s * 10`. Shared with
/// the audit's tests.
pub(crate) struct Synth {
    pub(crate) input: CatalogInput,
    pub(crate) size: SegmentSize,
    systemid: &'static str,
}

impl Synth {
    pub(crate) fn new() -> Synth {
        Synth {
            input: CatalogInput {
                server: "pg".into(),
                ..CatalogInput::default()
            },
            size: SegmentSize::default(),
            systemid: "7000000000000000001",
        }
    }

    /// The system identifier of the backups added from now on.
    pub(crate) fn with_systemid(&mut self, id: &'static str) -> &mut Self {
        self.systemid = id;
        self
    }

    /// A DONE backup with data on timeline 1, inside segment `begin`.
    pub(crate) fn done(&mut self, id: &str, begin: u64, end_min: i64) -> &mut Self {
        self.backup(id, "DONE", 1, begin, begin, end_min, true)
    }

    /// The analysis as seen at minute `now_min`.
    pub(crate) fn analyse_at(&self, now_min: i64) -> Catalog {
        Catalog::analyse(&self.input, AnalysisOptions::at(at(now_min)))
    }

    pub(crate) fn obj(&mut self, key: &str, size: u64, lm: DateTime<Utc>) -> &mut Self {
        self.input.listing.add(key, size, lm);
        self
    }

    /// Segments `from..=to` of `tli`, uploaded at minute `segno * 10`.
    pub(crate) fn wal(&mut self, tli: u32, from: u64, to: u64) -> &mut Self {
        for s in from..=to {
            let name = self.size.name(tli, s);
            let key = format!("wals/{}/{name}.gz", &name[..16]);
            self.obj(&key, 1000, at(i64::try_from(s).unwrap() * 10));
        }
        self
    }

    pub(crate) fn partial(&mut self, tli: u32, segno: u64) -> &mut Self {
        let name = self.size.name(tli, segno);
        let key = format!("wals/{}/{name}.partial", &name[..16]);
        self.obj(&key, MB16, at(i64::try_from(segno).unwrap() * 10 + 1))
    }

    pub(crate) fn history(&mut self, tli: u32, text: &str) -> &mut Self {
        let key = format!("wals/{tli:08X}.history");
        self.obj(&key, text.len() as u64, at(0));
        self.input
            .histories
            .insert(tli, Ok(History::parse(tli, text.as_bytes()).unwrap()));
        self
    }

    /// A backup on `tli` starting in segment `begin` and ending in `end`, ending at `end_min`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backup(
        &mut self,
        id: &str,
        status: &str,
        tli: u32,
        begin: u64,
        end: u64,
        end_min: i64,
        data: bool,
    ) -> &mut Self {
        let b = self.size.start_lsn(begin).0 + 0x28;
        let e = self.size.start_lsn(end).0 + 0x100;
        let fmt_t = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string();
        let text = format!(
            "backup_label='START WAL LOCATION: {bl} (file {bw})\\nCHECKPOINT LOCATION: {bl}\\nLABEL: Barman backup cloud {id}\\n'\n\
             begin_offset=40\nbegin_time={bt}\nbegin_wal={bw}\nbegin_xlog={bl}\nend_offset=256\nend_time={et}\nend_wal={ew}\nend_xlog={el}\n\
             status={status}\ntimeline={tli}\nsystemid={sid}\nversion=160004\nxlog_segment_size={MB16}\nerror={err}\n",
            sid = self.systemid,
            bl = Lsn(b),
            el = Lsn(e),
            bw = self.size.name(tli, begin),
            ew = self.size.name(tli, end),
            bt = fmt_t(at(end_min - 2)),
            et = fmt_t(at(end_min)),
            err = if status == "FAILED" {
                "failure uploading data (boom)"
            } else {
                "None"
            },
        );
        self.obj(
            &format!("base/{id}/backup.info"),
            text.len() as u64,
            at(end_min),
        );
        if data {
            self.obj(&format!("base/{id}/data.tar.gz"), 5000, at(end_min));
        }
        self.input.backup_infos.insert(
            id.to_owned(),
            Ok(BackupInfo::parse(text.as_bytes()).unwrap()),
        );
        self
    }

    pub(crate) fn remove_wal(&mut self, tli: u32, segno: u64) -> &mut Self {
        let name = self.size.name(tli, segno);
        self.input
            .listing
            .wal
            .retain(|o| o.name.raw.to_string() != name);
        self
    }

    pub(crate) fn analyse(&self) -> Catalog {
        Catalog::analyse(&self.input, AnalysisOptions::at(at(100_000)))
    }
}

/// B1 ends at minute 25 (in segment 2), B2 at 55 (segment 5); WAL 1..=9 on timeline 1.
fn simple() -> Synth {
    let mut s = Synth::new();
    s.wal(1, 1, 9)
        .backup("20260301T000020", "DONE", 1, 2, 2, 25, true)
        .backup("20260301T000050", "DONE", 1, 5, 5, 55, true);
    s
}

#[test]
fn time_target_after_a_backup_is_recoverable() {
    let c = simple().analyse();
    let r = c.check(&Target::Time(at(31)), TimelineChoice::Latest);
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(r.backup_id.as_deref(), Some("20260301T000020"));
    assert_eq!(r.timeline, Some(1));
    assert_eq!(r.wal_from.as_deref(), Some("000000010000000000000002"));
    // The first segment uploaded after minute 31 is segment 4 (minute 40).
    assert_eq!(r.wal_to.as_deref(), Some("000000010000000000000004"));
    assert!(!r.exact);
    assert!(!r.requires_backup_id);
    let r = c.check(&Target::Time(at(60)), TimelineChoice::Latest);
    assert_eq!(r.backup_id.as_deref(), Some("20260301T000050"));
}

#[test]
fn target_before_the_first_backup_end_is_not() {
    let c = simple().analyse();
    let r = c.check(&Target::Time(at(24)), TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(
        r.reasons
            .iter()
            .any(|x| x.contains("no backup ended at or before")),
        "{:?}",
        r.reasons
    );
    assert_eq!(r.nearest[0].target, "2026-03-01T00:25:00+00:00");
    // Exactly the end time is recoverable, as CloudNativePG selects with end <= target.
    assert!(
        c.check(&Target::Time(at(25)), TimelineChoice::Latest)
            .recoverable
    );
}

#[test]
fn target_past_the_archive_head_is_not() {
    let c = simple().analyse();
    // Segment 9 was uploaded at minute 90: nothing archived after minute 95.
    let r = c.check(&Target::Time(at(95)), TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(
        r.reasons[0].contains("past the last archived WAL"),
        "{:?}",
        r.reasons
    );
    assert!(
        c.check(&Target::Time(at(89)), TimelineChoice::Latest)
            .recoverable
    );
}

#[test]
fn latest_is_recoverable_to_the_head() {
    let c = simple().analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(r.backup_id.as_deref(), Some("20260301T000050"));
    assert_eq!(r.wal_to.as_deref(), Some("000000010000000000000009"));
    assert!(r.exact);
}

#[test]
fn a_gap_stops_time_targets_after_it_and_latest() {
    let mut s = simple();
    s.remove_wal(1, 7);
    let c = s.analyse();
    assert!(
        c.check(&Target::Time(at(59)), TimelineChoice::Latest)
            .recoverable
    );
    // Commits after minute 61 live in segment 7 or later: behind the gap.
    let r = c.check(&Target::Time(at(61)), TimelineChoice::Latest);
    assert!(!r.recoverable, "{r:#?}");
    assert_eq!(r.missing_wal, vec!["000000010000000000000007"]);
    assert_eq!(r.stops_at.as_deref(), Some("000000010000000000000007"));
    assert!(
        r.reasons[0].contains("segment 000000010000000000000007 is missing"),
        "{:?}",
        r.reasons
    );
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(r.reasons[0].contains("would stop early"), "{:?}", r.reasons);
    assert!(
        r.reasons[0].contains("000000010000000000000008 to 000000010000000000000009"),
        "{:?}",
        r.reasons
    );
    assert_eq!(c.gaps.len(), 1);
    assert!(c.gaps[0].breaks_recovery);
    // Long ago: not called transient.
    assert!(
        !r.reasons.iter().any(|x| x.contains("transient")),
        "{:?}",
        r.reasons
    );
    // Minutes after the newest upload, a gap two segments from the head may still fill.
    let recent = Catalog::analyse(&s.input, AnalysisOptions::at(at(93)));
    let r = recent.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(
        r.reasons.iter().any(|x| x.contains("can be transient")),
        "{:?}",
        r.reasons
    );
    // Suggestions: the last reachable point before the gap.
    assert!(
        r.nearest
            .iter()
            .any(|n| n.description.contains("000000010000000000000006")),
        "{:?}",
        r.nearest
    );
    // The exact suggestion is itself recoverable.
    let exact = r
        .nearest
        .iter()
        .find(|n| n.description.starts_with("exact"))
        .expect("an exact suggestion");
    let lsn: Lsn = exact.target.parse().unwrap();
    assert!(
        c.check(&Target::Lsn(lsn), TimelineChoice::Id(exact.timeline))
            .recoverable,
        "{exact:?}"
    );
}

#[test]
fn failed_backups_are_never_anchors() {
    let mut s = simple();
    s.backup("20260301T000070", "FAILED", 1, 7, 7, 75, true);
    let c = s.analyse();
    let r = c.check(&Target::Time(at(80)), TimelineChoice::Latest);
    assert!(r.recoverable);
    assert_eq!(r.backup_id.as_deref(), Some("20260301T000050"));
    assert_eq!(r.cnpg_default_backup_id.as_deref(), Some("20260301T000070"));
    assert!(r.requires_backup_id);
    assert!(
        r.reasons
            .iter()
            .any(|x| x.contains("pin recoveryTarget.backupID: 20260301T000050")),
        "{:?}",
        r.reasons
    );
    assert!(c.findings.iter().any(|f| f.id == "backup-failed"));
    // CloudNativePG's FRP counts it too, but the oldest is still the first.
    assert_eq!(c.cnpg_first_recoverability_point(), Some(at(25)));
}

#[test]
fn done_backup_without_data_or_wal_is_unusable() {
    let mut s = Synth::new();
    s.wal(1, 1, 9)
        .remove_wal(1, 3)
        .backup("20260301T000020", "DONE", 1, 2, 3, 35, true)
        .backup("20260301T000050", "DONE", 1, 5, 5, 55, false);
    let c = s.analyse();
    let b1 = c.backup("20260301T000020").unwrap();
    assert!(!b1.usable && !b1.own_wal_present);
    assert_eq!(b1.own_wal_missing, vec!["000000010000000000000003"]);
    let b2 = c.backup("20260301T000050").unwrap();
    assert!(!b2.usable && !b2.data_present);
    let ids: Vec<&str> = c.findings.iter().map(|f| f.id).collect();
    assert!(
        ids.contains(&"backup-wal-missing")
            && ids.contains(&"backup-data-missing")
            && ids.contains(&"no-usable-backup"),
        "{ids:?}"
    );
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(c.windows.is_empty());
}

/// Timeline 2 forks from 1 inside segment 5, which timeline 1 keeps only as 5.partial;
/// backup B1 on timeline 1 ends at minute 25.
fn clean_failover() -> Synth {
    let mut s = Synth::new();
    s.wal(1, 1, 4)
        .partial(1, 5)
        .history(2, "1\t0/5000100\tno recovery target specified\n")
        .wal(2, 5, 9)
        .backup("20260301T000020", "DONE", 1, 2, 2, 25, true);
    s
}

/// [`clean_failover`] where the old primary also archived 1/6 after the fork.
fn failover() -> Synth {
    let mut s = clean_failover();
    s.wal(1, 6, 6);
    s
}

#[test]
fn latest_follows_the_history_across_a_failover() {
    let c = failover().analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(r.timeline, Some(2));
    assert_eq!(r.wal_to.as_deref(), Some("000000020000000000000009"));
    let r = c.check(&Target::Time(at(72)), TimelineChoice::Latest);
    assert!(r.recoverable);
    assert_eq!(r.wal_to.as_deref(), Some("000000020000000000000008"));
    // Timeline 1 alone ends with the off-history segment 6.
    let r = c.check(&Target::Time(at(65)), TimelineChoice::Id(1));
    assert!(!r.recoverable, "{r:#?}");
    assert!(c.findings.iter().any(|f| f.id == "timeline-off-history"));
    let t2 = c.windows.iter().find(|w| w.timeline == 2).unwrap();
    assert_eq!(t2.windows[0].end_segment, "000000020000000000000009");
    assert_eq!(t2.lineage, "1 (until 0/5000100) → 2");
}

#[test]
fn the_new_timelines_first_segment_is_required() {
    let mut s = failover();
    s.remove_wal(2, 5);
    let c = s.analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert_eq!(r.stops_at.as_deref(), Some("000000020000000000000005"));
}

#[test]
fn a_timeline_without_history_makes_latest_unsafe() {
    let mut s = failover();
    s.wal(3, 10, 11);
    let c = s.analyse();
    assert!(c.findings.iter().any(|f| f.id == "history-missing"));
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(
        r.reasons[0].contains("00000003.history is missing"),
        "{:?}",
        r.reasons
    );
    let r = c.check(&Target::Latest, TimelineChoice::Id(2));
    assert!(r.recoverable, "{r:#?}");
    // CloudNativePG selects only timeline-2 backups for targetTLI 2: the anchor must be pinned.
    assert!(r.requires_backup_id);
    assert_eq!(r.cnpg_default_backup_id, None);
}

#[test]
fn backup_on_a_branch_that_latest_does_not_descend_from() {
    // Timeline 3 forks from 1 before timeline 2's backup: latest from a timeline-2 backup is 3.
    let mut s = failover();
    s.backup("20260301T000070", "DONE", 2, 7, 7, 75, true)
        .history(3, "1\t0/3000000\tpitr\n")
        .wal(3, 3, 12);
    let c = s.analyse();
    let r = c.check(&Target::Time(at(110)), TimelineChoice::Latest);
    // Newest candidate (timeline 2) cannot be used with latest=3; the timeline-1 backup can, as 1 is in 3's history.
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(r.backup_id.as_deref(), Some("20260301T000020"));
    assert_eq!(r.timeline, Some(3));
}

#[test]
fn lsn_targets_are_exact() {
    let c = simple().analyse();
    let l = Lsn(SegmentSize::default().start_lsn(6).0 + 5);
    let r = c.check(&Target::Lsn(l), TimelineChoice::Latest);
    assert!(r.recoverable && r.exact);
    assert_eq!(r.wal_to.as_deref(), Some("000000010000000000000006"));
    let far = Lsn(SegmentSize::default().start_lsn(20).0);
    let r = c.check(&Target::Lsn(far), TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(r.reasons[0].contains("past the end"), "{:?}", r.reasons);
}

#[test]
fn unreadable_history_is_never_guessed() {
    let mut s = failover();
    s.input.histories.insert(
        2,
        Err(ReadFailure {
            key: "wals/00000002.history".into(),
            message: "access denied (403)".into(),
        }),
    );
    let c = s.analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable);
    assert!(
        r.reasons.iter().any(|x| x.contains("could not be read")),
        "{:?}",
        r.reasons
    );
}

#[test]
fn multiple_system_ids_and_crashed_backups() {
    let mut s = simple();
    s.obj("base/20260301T000090/data.tar.gz", 100, at(90));
    let text = "status=DONE\nsystemid=42\n";
    s.obj("base/20260301T000099/backup.info", 20, at(99));
    s.input.backup_infos.insert(
        "20260301T000099".into(),
        Ok(BackupInfo::parse(text.as_bytes()).unwrap()),
    );
    let c = s.analyse();
    let ids: Vec<&str> = c.findings.iter().map(|f| f.id).collect();
    assert!(ids.contains(&"systemid-multiple"), "{ids:?}");
    assert!(ids.contains(&"backup-missing-info"), "{ids:?}");
    assert_eq!(c.backup("20260301T000090").unwrap().status, "MISSING_INFO");
    assert!(!c.backup("20260301T000099").unwrap().usable);
}

#[test]
fn retention_window_keeps_the_anchor_and_drops_older_wal() {
    // Backups end at minutes 25, 55 and 85; a window starting at minute 60 keeps 55 as the anchor.
    let mut s = simple();
    s.backup("20260301T000080", "DONE", 1, 8, 8, 85, true);
    let c = s.analyse();
    let now = at(60) + Duration::days(1);
    let r = simulate(
        &s.input,
        &c,
        Policy::RecoveryWindow { n: 1, unit: 'd' },
        now,
        0,
    );
    let verdicts: Vec<(&str, &str)> = r
        .backups
        .iter()
        .map(|b| (b.id.as_str(), b.retention.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("20260301T000080", "VALID"),
            ("20260301T000050", "VALID"),
            ("20260301T000020", "OBSOLETE")
        ]
    );
    assert!(r.backups[1].anchor);
    assert_eq!(r.deleted_backups, vec!["20260301T000020"]);
    // WAL before the next backup's begin_wal (segment 5) goes: segments 1..=4.
    assert_eq!(r.deleted_wal.len(), 1);
    assert_eq!(r.deleted_wal[0].objects, 4);
    assert_eq!(r.deleted_wal[0].last, "000000010000000000000004.gz");
    assert_eq!(r.first_recoverable_point_before, Some(at(25)));
    assert_eq!(r.first_recoverable_point_after, Some(at(55)));
}

#[test]
fn retention_never_deletes_failed_and_respects_keep() {
    let mut s = simple();
    s.backup("20260301T000010", "FAILED", 1, 1, 1, 12, true);
    s.input
        .keeps
        .insert("20260301T000020".into(), Ok("standalone\n".into()));
    s.obj("base/20260301T000020/annotations/keep", 11, at(30));
    s.backup("20260301T000080", "DONE", 1, 8, 8, 85, true);
    let c = s.analyse();
    let r = simulate(&s.input, &c, Policy::Redundancy(1), at(200), 0);
    let verdicts: Vec<(&str, &str)> = r
        .backups
        .iter()
        .map(|b| (b.id.as_str(), b.retention.as_str()))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            ("20260301T000080", "VALID"),
            ("20260301T000050", "OBSOLETE"),
            ("20260301T000020", "KEEP:STANDALONE"),
            ("20260301T000010", "-")
        ]
    );
    // Deleting 050: the previous backup is keep:standalone, so WAL goes but its own range is protected;
    // timeline 1 is protected by the remaining backups... on the same timeline as `until`, so not.
    assert_eq!(r.deleted_backups, vec!["20260301T000050"]);
    let deleted: u64 = r.deleted_wal.iter().map(|d| d.objects).sum();
    // Segments 1, 3..=7 go (below 8, except the standalone backup's own segment 2).
    assert_eq!(deleted, 6, "{:?}", r.deleted_wal);
}

#[test]
fn unreadable_backup_info_blocks_retention() {
    let mut s = simple();
    s.obj("base/20260301T000099/backup.info", 20, at(99));
    s.input.backup_infos.insert(
        "20260301T000099".into(),
        Err(ReadFailure {
            key: "base/20260301T000099/backup.info".into(),
            message: "access denied (403)".into(),
        }),
    );
    let c = s.analyse();
    assert!(c.findings.iter().any(|f| f.id == "backup-info-unreadable"));
    let r = simulate(&s.input, &c, Policy::Redundancy(1), at(200), 0);
    assert!(!r.runs);
    assert!(r.deleted_backups.is_empty());
}

#[test]
fn wal_index_handles_other_segment_sizes() {
    // 1 GiB segments: four per log; the names wrap after ...03.
    let mut s = Synth::new();
    s.size = SegmentSize::new(1 << 30).unwrap();
    s.wal(1, 2, 9);
    let text = format!("status=DONE\nxlog_segment_size={}\n", 1u64 << 30);
    s.obj("base/x/backup.info", 10, at(0));
    s.input
        .backup_infos
        .insert("x".into(), Ok(BackupInfo::parse(text.as_bytes()).unwrap()));
    let c = s.analyse();
    assert_eq!(c.segment_size.bytes(), 1 << 30);
    assert!(c.gaps.is_empty(), "{:?}", c.gaps);
    assert_eq!(
        c.timelines[0].last_segment.as_deref(),
        Some("000000010000000200000001")
    );
}

#[test]
fn the_old_timelines_partial_ends_a_restore_on_that_timeline() {
    // Timeline 1's last segment survives only as 5.partial (2 forked inside it); with no
    // off-history segment, a restore pinned to timeline 1 replays the partial at the end.
    let c = clean_failover().analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Id(1));
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(
        r.wal_to.as_deref(),
        Some("000000010000000000000005.partial")
    );
    // The partial was uploaded at minute 51: a time just before it is reachable on timeline 1.
    let r = c.check(&Target::Time(at(50)), TimelineChoice::Id(1));
    assert!(r.recoverable, "{r:#?}");
    assert_eq!(
        r.wal_to.as_deref(),
        Some("000000010000000000000005.partial")
    );
    let lsn = Lsn(SegmentSize::default().start_lsn(5).0 + 0x80);
    assert!(
        c.check(&Target::Lsn(lsn), TimelineChoice::Id(1))
            .recoverable
    );
    let w1 = c.windows.iter().find(|w| w.timeline == 1).unwrap();
    assert_eq!(
        w1.windows[0].end_segment,
        "000000010000000000000005.partial"
    );
    assert_eq!(w1.windows[0].end_lsn, Lsn(0x500_0100));
    // On timeline 2 the partial is never used: its own segment 5 is.
    assert_eq!(
        c.check(&Target::Latest, TimelineChoice::Latest)
            .wal_to
            .as_deref(),
        Some("000000020000000000000009")
    );
}

#[test]
fn regression_latest_cannot_reach_a_timeline_behind_a_missing_history_link() {
    // 00000003.history names 2, whose own history file is missing: latest from timeline 1
    // stops at 1, and timeline 3's WAL would be silently skipped.
    let mut s = Synth::new();
    s.wal(1, 1, 4)
        .partial(1, 5)
        .history(3, "1\t0/5000100\tx\n2\t0/5000200\tx\n")
        .wal(3, 5, 19)
        .backup("20260301T000020", "DONE", 1, 2, 2, 25, true);
    let c = s.analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable, "{r:#?}");
    assert!(
        r.reasons[0].contains("00000002.history, a link in its history, is missing"),
        "{:?}",
        r.reasons
    );
    assert!(
        c.findings
            .iter()
            .any(|f| f.id == "history-missing" && f.subject == "timeline 2"),
        "{:?}",
        c.findings
    );
    // A time target is judged on the reachable branch, with the caveat and not called exact.
    let r = c.check(&Target::Time(at(35)), TimelineChoice::Latest);
    assert!(
        r.reasons.iter().any(|x| x.contains("judged on timeline 1")),
        "{r:#?}"
    );
    // Pinning timeline 3 follows its history through the missing link.
    assert!(c.check(&Target::Latest, TimelineChoice::Id(3)).recoverable);
}

#[test]
fn regression_lsn_past_the_fork_inside_a_partial_is_not_recoverable() {
    let c = clean_failover().analyse();
    let before = c.check(&Target::Lsn(Lsn(0x500_0080)), TimelineChoice::Id(1));
    assert!(before.recoverable, "{before:#?}");
    assert_eq!(
        before.wal_to.as_deref(),
        Some("000000010000000000000005.partial")
    );
    let after = c.check(&Target::Lsn(Lsn(0x580_0000)), TimelineChoice::Id(1));
    assert!(!after.recoverable, "{after:#?}");
    assert!(
        after.reasons[0].contains("holds WAL up to the fork at 0/5000100"),
        "{:?}",
        after.reasons
    );
}

#[test]
fn regression_a_truncated_segment_counts_as_missing() {
    let mut s = simple();
    s.remove_wal(1, 7);
    s.obj("wals/0000000100000000/000000010000000000000007", 0, at(70));
    let c = s.analyse();
    let r = c.check(&Target::Latest, TimelineChoice::Latest);
    assert!(!r.recoverable, "{r:#?}");
    assert_eq!(r.stops_at.as_deref(), Some("000000010000000000000007"));
    assert!(
        c.findings
            .iter()
            .any(|f| f.id == "wal-size" && f.severity == super::findings::Severity::Error)
    );
}

#[test]
fn regression_a_backup_on_a_timeline_without_history_is_restorable_on_it() {
    // PostgreSQL reads a missing history file of the target timeline as "no parents".
    let mut s = Synth::new();
    s.wal(2, 1, 9)
        .backup("20260301T000020", "DONE", 2, 2, 2, 25, true);
    let c = s.analyse();
    assert!(c.check(&Target::Latest, TimelineChoice::Latest).recoverable);
    assert!(c.check(&Target::Latest, TimelineChoice::Id(2)).recoverable);
    assert!(
        c.check(&Target::Time(at(50)), TimelineChoice::Latest)
            .recoverable
    );
    assert!(c.findings.iter().any(|f| f.id == "history-missing"));
}

#[test]
fn regression_lsn_target_with_the_next_segment_missing_is_not_exact() {
    let mut s = simple();
    s.remove_wal(1, 7);
    let c = s.analyse();
    let r = c.check(
        &Target::Lsn(Lsn(SegmentSize::default().start_lsn(6).0 + 0x10)),
        TimelineChoice::Latest,
    );
    assert!(r.recoverable);
    assert!(!r.exact, "{r:#?}");
    assert!(
        r.reasons
            .iter()
            .any(|x| x.contains("000000010000000000000007 is not archived")),
        "{:?}",
        r.reasons
    );
}
