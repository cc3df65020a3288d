//! The analysis of one server's catalog: backups and whether each can anchor
//! a restore, timelines and their lineage, WAL runs and gaps, and the
//! recovery windows per timeline. Pure: it takes a [`CatalogInput`] and a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use super::backup_info::{BackupInfo, BackupStatus};
use super::findings::{Finding, Severity};
use super::history::{History, Lineage};
use super::listing::{BaseObject, CatalogInput, ReadFailure};
use super::names::{BaseFile, TarCompression};
use super::time::format_utc;
use super::wal::{Lsn, SegmentSize};
use super::walindex::{IndexRejects, WalIndex, WalkEnd};

/// Settings of an analysis.
#[derive(Debug, Clone, Copy)]
pub struct AnalysisOptions {
    /// "Now", for ages.
    pub now: DateTime<Utc>,
    /// Segment size to use instead of the one the backups declare.
    pub segment_size: Option<SegmentSize>,
    /// A base directory without `backup.info` younger than this is "in progress".
    pub in_progress_grace: Duration,
}

impl AnalysisOptions {
    /// Defaults at `now`.
    #[must_use]
    pub fn at(now: DateTime<Utc>) -> AnalysisOptions {
        AnalysisOptions {
            now,
            segment_size: None,
            in_progress_grace: Duration::hours(6),
        }
    }
}

/// Keep annotation of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// `full`: the backup and its whole PITR chain onward are kept.
    Full,
    /// `standalone`: the backup and its own WAL only.
    Standalone,
}

/// One base backup with what was found about it.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    /// Directory name under `base/`.
    pub id: String,
    /// `DONE`, `FAILED`, another barman status, `MISSING_INFO` (no backup.info:
    /// in progress or crashed) or `UNREADABLE_INFO`.
    pub status: String,
    /// `backup_name` (CNPG: `backup-YYYYMMDDhhmmss`).
    pub name: Option<String>,
    /// Timeline at the start.
    pub timeline: Option<u32>,
    /// Start time (PostgreSQL clock).
    pub begin_time: Option<DateTime<Utc>>,
    /// End time: the earliest point a restore from this backup can reach.
    pub end_time: Option<DateTime<Utc>>,
    /// First WAL segment needed.
    pub begin_wal: Option<String>,
    /// Segment holding the end position.
    pub end_wal: Option<String>,
    /// Start position.
    pub begin_lsn: Option<Lsn>,
    /// End position: consistency is reached here.
    pub end_lsn: Option<Lsn>,
    /// `systemid`.
    pub system_id: Option<String>,
    /// `version` (`server_version_num`).
    pub pg_version: Option<u32>,
    /// `BACKUP FROM` of the label.
    pub backup_from: Option<String>,
    /// `error` of a FAILED backup.
    pub error: Option<String>,
    /// Keep annotation.
    pub keep: Option<Keep>,
    /// Compression of the data tar, from its extension.
    pub compression: Option<TarCompression>,
    /// Sum of object sizes in the backup directory.
    pub size_bytes: u64,
    /// Every data tar (PGDATA and each listed tablespace) is present.
    pub data_present: bool,
    /// The backup's own WAL (`begin_wal` to `end_wal`) is archived.
    pub own_wal_present: bool,
    /// Segments of the own WAL that are missing.
    pub own_wal_missing: Vec<String>,
    /// Whether it can anchor a restore.
    pub usable: bool,
    /// Why not.
    pub unusable_reasons: Vec<String>,
    /// Newest upload time among its objects.
    #[serde(skip)]
    pub newest_object: Option<DateTime<Utc>>,
    /// The parsed file.
    #[serde(skip)]
    pub info: Option<BackupInfo>,
}

impl Backup {
    /// Whether CNPG's catalog treats it as done (begin and end time set; status ignored).
    #[must_use]
    pub fn cnpg_done(&self) -> bool {
        self.begin_time.is_some() && self.end_time.is_some() && self.info.is_some()
    }

    /// Whether `status` is DONE.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.status == "DONE"
    }

    /// CHECKPOINT LOCATION from the label, or the start position.
    #[must_use]
    pub fn checkpoint_lsn(&self) -> Option<Lsn> {
        self.info
            .as_ref()
            .and_then(|i| i.label.checkpoint_lsn)
            .or(self.begin_lsn)
    }
}

/// A stretch of missing segments on one timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// Timeline.
    pub timeline: u32,
    /// First missing segment.
    pub first_missing: String,
    /// Last missing segment.
    pub last_missing: String,
    /// How many segments are missing.
    pub missing_count: u64,
    /// The archived segment before the gap.
    pub after: String,
    /// The archived segment after the gap.
    pub before: String,
    /// Whether a usable backup's restore path needs these segments.
    pub breaks_recovery: bool,
}

/// An unbroken run of segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// First segment.
    pub first: String,
    /// Last segment.
    pub last: String,
    /// Number of segments.
    pub count: u64,
}

/// What is known about one timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Timeline id.
    pub timeline: u32,
    /// Parent timeline, from the history file.
    pub parent: Option<u32>,
    /// Where it forked from its parent.
    pub switchpoint: Option<Lsn>,
    /// `present`, `missing`, `unreadable` or `not_needed` (timeline 1).
    pub history: &'static str,
    /// Why the history file could not be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_error: Option<String>,
    /// Number of archived complete segments.
    pub segments: u64,
    /// Oldest archived segment.
    pub first_segment: Option<String>,
    /// Newest archived segment.
    pub last_segment: Option<String>,
    /// Upload time of the newest segment.
    pub last_archived_at: Option<DateTime<Utc>>,
    /// `.partial` files.
    pub partials: Vec<String>,
    /// Unbroken runs.
    pub runs: Vec<Run>,
    /// Backups taken on this timeline.
    pub backups: Vec<String>,
    /// Timelines that forked from this one, with their switchpoints.
    pub children: Vec<(u32, Lsn)>,
    /// Segments archived on this timeline after its first child forked (not on any newer history).
    pub off_history_segments: u64,
    /// The lineage a restore ending on this timeline follows.
    #[serde(skip)]
    pub lineage: Option<Lineage>,
}

/// Why a recovery window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowEnd {
    /// At the newest archived segment.
    Head,
    /// At a missing segment with more WAL after it.
    Gap,
}

/// A stretch that can be restored to, from a backup's end to the end of the unbroken WAL after it.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Backups that anchor the window (the oldest first).
    pub backups: Vec<String>,
    /// Earliest target: the anchor's end time (exact).
    pub start_time: DateTime<Utc>,
    /// Earliest target position.
    pub start_lsn: Lsn,
    /// Last archived segment of the unbroken stretch.
    pub end_segment: String,
    /// End of that segment.
    pub end_lsn: Lsn,
    /// Upload time of that segment: an upper bound of the last reachable commit time (approximate).
    pub end_time: Option<DateTime<Utc>>,
    /// Whether `end_time` is approximate (always, until the WAL itself is read).
    pub end_time_approximate: bool,
    /// Why the window ends.
    pub end_reason: WindowEnd,
    /// The missing segment that ends it, for a gap.
    pub missing_segment: Option<String>,
    /// The last transaction a restore to the end of the window replays, read from the WAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transaction: Option<super::exact::RecordRef>,
    /// The latest time target that is reached: 1 µs before `last_transaction` ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_time_target: Option<DateTime<Utc>>,
    /// Why the end could not be read from the WAL, when it was tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_unread: Option<String>,
}

/// The recovery windows of a restore ending on one timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineWindows {
    /// Target timeline.
    pub timeline: u32,
    /// Its lineage, e.g. `1 (until 0/5000100) → 2`.
    pub lineage: String,
    /// Windows, oldest first.
    pub windows: Vec<Window>,
}

/// An analysed catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Server name.
    pub server: String,
    /// Segment size used for WAL arithmetic.
    pub segment_size: SegmentSize,
    /// Where the segment size came from: `backup.info`, `option` or `default`.
    pub segment_size_source: &'static str,
    /// Backups, ordered by end time (those without one by id, first).
    pub backups: Vec<Backup>,
    /// Timelines, ascending.
    pub timelines: Vec<Timeline>,
    /// The WAL.
    pub wal: WalIndex,
    /// Gaps on every timeline.
    pub gaps: Vec<Gap>,
    /// Recovery windows per target timeline.
    pub windows: Vec<TimelineWindows>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// History files present (timeline → parsed or error).
    pub histories: BTreeMap<u32, Result<History, ReadFailure>>,
    /// "Now" of the analysis.
    pub now: DateTime<Utc>,
    /// Number of objects listed.
    pub objects: usize,
    /// Number of objects of unknown kind.
    pub unknown_objects: usize,
}

/// Converts upload times (Unix milliseconds) back to instants.
pub(crate) fn ts(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

/// How many missing names are listed before "and N more".
const LIST_LIMIT: usize = 20;

impl Catalog {
    /// Analyses a catalog.
    #[must_use]
    pub fn analyse(input: &CatalogInput, opts: AnalysisOptions) -> Catalog {
        let mut findings = Vec::new();
        let objects = input.listing.len();
        let (segment_size, segment_size_source) =
            choose_segment_size(input, opts.segment_size, &mut findings);
        let (wal, rejects) = WalIndex::build(&input.listing.wal, segment_size);
        report_rejects(&rejects, segment_size, &mut findings);

        for u in summarize_unknown(input) {
            findings.push(u);
        }

        let mut backups: Vec<Backup> = input
            .listing
            .base
            .iter()
            .map(|(id, files)| build_backup(id, files, input, opts, &mut findings))
            .collect();
        backups.sort_by(|a, b| a.end_time.cmp(&b.end_time).then_with(|| a.id.cmp(&b.id)));

        let mut cat = Catalog {
            server: input.server.clone(),
            segment_size,
            segment_size_source,
            backups,
            timelines: Vec::new(),
            wal,
            gaps: Vec::new(),
            windows: Vec::new(),
            findings,
            histories: input.histories.clone(),
            now: opts.now,
            objects,
            unknown_objects: input.listing.unknown.len(),
        };
        cat.build_timelines(input);
        cat.check_backup_wal();
        cat.check_system_ids();
        cat.check_id_order();
        cat.build_windows();
        cat.build_gaps();
        if cat.objects == 0 {
            cat.findings.push(
                Finding::new("catalog-empty", Severity::Warning, &cat.server, "no backups and no WAL under this server folder")
                    .hint("check the destination path and server name: barman-cloud writes <destinationPath>/<serverName>/base and /wals"),
            );
        } else if !cat.backups.iter().any(|b| b.usable) {
            cat.findings.push(
                Finding::new("no-usable-backup", Severity::Error, &cat.server, "no backup can anchor a restore: nothing in this catalog is recoverable")
                    .hint("take a new base backup (cnpg-ops backup, or a Backup resource) and check WAL archiving"),
            );
        }
        cat.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.id.cmp(b.id))
                .then_with(|| a.subject.cmp(&b.subject))
        });
        cat
    }

    /// The lineage of timeline `tli`, when its history is known.
    #[must_use]
    pub fn lineage(&self, tli: u32) -> Option<&Lineage> {
        self.timelines
            .iter()
            .find(|t| t.timeline == tli)
            .and_then(|t| t.lineage.as_ref())
    }

    /// The backup with id `id`.
    #[must_use]
    pub fn backup(&self, id: &str) -> Option<&Backup> {
        self.backups.iter().find(|b| b.id == id)
    }

    /// Whether the catalog holds a history file object for `tli` (readable or not).
    #[must_use]
    pub fn history_present(&self, tli: u32) -> bool {
        self.histories.contains_key(&tli)
    }

    /// CNPG's first recoverability point: end time of the oldest backup CNPG treats as done.
    #[must_use]
    pub fn cnpg_first_recoverability_point(&self) -> Option<DateTime<Utc>> {
        self.backups
            .iter()
            .filter(|b| b.cnpg_done())
            .filter_map(|b| b.end_time)
            .min()
    }

    /// The strict first recoverable point: the earliest window start on the newest timeline's lineage.
    #[must_use]
    pub fn first_recoverable_point(&self) -> Option<(DateTime<Utc>, String)> {
        self.windows
            .iter()
            .flat_map(|tw| tw.windows.iter())
            .min_by_key(|w| w.start_time)
            .map(|w| (w.start_time, w.backups[0].clone()))
    }

    /// The newest timeline that has WAL or a history file.
    #[must_use]
    pub fn newest_timeline(&self) -> Option<u32> {
        self.timelines.last().map(|t| t.timeline)
    }

    /// Highest timeline PostgreSQL's `latest` reaches from `tli`: it probes
    /// `tli+1`, `tli+2`, … and stops at the first history file that is absent.
    #[must_use]
    pub fn latest_from(&self, tli: u32) -> u32 {
        let mut t = tli;
        while self.history_present(t + 1) {
            t += 1;
        }
        t
    }

    fn build_timelines(&mut self, input: &CatalogInput) {
        let mut tlis: BTreeSet<u32> = self.wal.timelines.keys().copied().collect();
        tlis.extend(input.histories.keys());
        tlis.extend(input.listing.history.iter().map(|h| h.tli));
        tlis.extend(self.backups.iter().filter_map(|b| b.timeline));
        // Ancestors named in history files belong to the chain even without WAL of their own.
        tlis.extend(
            input
                .histories
                .values()
                .filter_map(|h| h.as_ref().ok())
                .flat_map(|h| h.entries.iter().map(|e| e.parent_tli)),
        );
        let newest = tlis.iter().max().copied().unwrap_or(1);
        let mut timelines = Vec::new();
        for &tli in &tlis {
            let (history, history_error, lineage, parent, switchpoint) = if tli == 1 {
                ("not_needed", None, Some(Lineage::root()), None, None)
            } else {
                match input.histories.get(&tli) {
                    Some(Ok(h)) => {
                        let last = h.entries.last();
                        (
                            "present",
                            None,
                            Some(h.lineage()),
                            last.map(|e| e.parent_tli),
                            last.map(|e| e.switchpoint),
                        )
                    }
                    Some(Err(e)) => ("unreadable", Some(e.message.clone()), None, None, None),
                    // PostgreSQL reads a missing history file as "no parents".
                    None => ("missing", None, Some(Lineage::alone(tli)), None, None),
                }
            };
            let tl = self.wal.timeline(tli);
            let size = self.segment_size;
            let runs = tl
                .map(super::walindex::TimelineWal::runs)
                .unwrap_or_default();
            timelines.push(Timeline {
                timeline: tli,
                parent,
                switchpoint,
                history,
                history_error,
                segments: tl.map_or(0, |t| t.segments.len() as u64),
                first_segment: tl
                    .and_then(|t| t.segments.first())
                    .map(|e| size.name(tli, e.segno)),
                last_segment: tl
                    .and_then(|t| t.segments.last())
                    .map(|e| size.name(tli, e.segno)),
                last_archived_at: tl
                    .and_then(|t| t.segments.iter().map(|e| e.last_modified).max())
                    .and_then(ts),
                partials: tl
                    .map(|t| {
                        t.partials
                            .iter()
                            .map(|e| format!("{}.partial", size.name(tli, e.segno)))
                            .collect()
                    })
                    .unwrap_or_default(),
                runs: runs
                    .iter()
                    .map(|&(a, b)| Run {
                        first: size.name(tli, a),
                        last: size.name(tli, b),
                        count: b - a + 1,
                    })
                    .collect(),
                backups: self
                    .backups
                    .iter()
                    .filter(|b| b.timeline == Some(tli))
                    .map(|b| b.id.clone())
                    .collect(),
                children: Vec::new(),
                off_history_segments: 0,
                lineage,
            });
        }
        // Children, off-history segments, consistency of history files, missing ones.
        for i in 0..timelines.len() {
            let tli = timelines[i].timeline;
            if let (Some(parent), Some(sp)) = (timelines[i].parent, timelines[i].switchpoint)
                && let Some(p) = timelines.iter_mut().find(|t| t.timeline == parent)
            {
                p.children.push((tli, sp));
            }
            match timelines[i].history {
                "missing"
                    if timelines[i].segments > 0
                        || !timelines[i].backups.is_empty()
                        || tli < newest =>
                {
                    self.findings.push(
                        Finding::new(
                            "history-missing",
                            Severity::Error,
                            format!("timeline {tli}"),
                            format!("timeline {tli} has WAL or backups but no {tli:08X}.history: PostgreSQL cannot follow it, and recovery to `latest` stops before it"),
                        )
                        .hint("the file is archived at promotion; restore it from the promoted server's pg_wal if it still exists"),
                    );
                }
                "unreadable" => self.findings.push(Finding::new(
                    "history-unreadable",
                    Severity::Error,
                    format!("wals/{tli:08X}.history"),
                    timelines[i].history_error.clone().unwrap_or_default(),
                )),
                _ => {}
            }
        }
        for t in &mut timelines {
            if let Some(&(_, sp)) = t.children.iter().min_by_key(|(_, sp)| *sp)
                && let Some(tl) = self.wal.timeline(t.timeline)
            {
                // The segment holding the switchpoint is read from the child; later ones are off-history.
                let first_off = self.segment_size.segno(sp) + 1;
                t.off_history_segments =
                    tl.segments.iter().filter(|e| e.segno >= first_off).count() as u64;
                if t.off_history_segments > 0 {
                    self.findings.push(Finding::new(
                        "timeline-off-history",
                        Severity::Info,
                        format!("timeline {}", t.timeline),
                        format!(
                            "{} segment(s) of timeline {} were archived after timeline {} forked at {sp}; they are reachable only with an explicit --timeline {}",
                            t.off_history_segments,
                            t.timeline,
                            t.children.iter().map(|c| c.0.to_string()).collect::<Vec<_>>().join("/"),
                            t.timeline
                        ),
                    ));
                }
            }
        }
        // A history file must extend its parent's.
        for (tli, h) in input
            .histories
            .iter()
            .filter_map(|(t, h)| h.as_ref().ok().map(|h| (*t, h)))
        {
            let parent = h.entries.last().map_or(1, |e| e.parent_tli);
            if let Some(Ok(ph)) = input.histories.get(&parent)
                && !h.entries.is_empty()
                && h.entries[..h.entries.len() - 1] != ph.entries[..]
            {
                self.findings.push(Finding::new(
                    "history-inconsistent",
                    Severity::Warning,
                    format!("wals/{tli:08X}.history"),
                    format!("the ancestry in {tli:08X}.history differs from {parent:08X}.history"),
                ));
            }
        }
        self.timelines = timelines;
    }

    fn check_backup_wal(&mut self) {
        let size = self.segment_size;
        let mut new_findings = Vec::new();
        for i in 0..self.backups.len() {
            let b = &self.backups[i];
            if !b.is_done() {
                continue;
            }
            let (Some(tli), Some(begin), Some(end)) = (b.timeline, b.begin_lsn, b.end_lsn) else {
                continue;
            };
            // A standby backup ends on min_recovery_end_timeline, which can be a child.
            let end_tli = b
                .info
                .as_ref()
                .and_then(|i| i.end_wal)
                .map_or(tli, |w| w.tli);
            let lineage = if end_tli == tli {
                Some(Lineage::alone(tli))
            } else {
                self.lineage(end_tli).cloned()
            };
            let Some(lineage) = lineage else {
                self.backups[i].unusable_reasons.push(format!(
                    "it ends on timeline {end_tli}, whose history file is missing"
                ));
                continue;
            };
            let (from, to) = (size.segno(begin), size.segno(end));
            let mut missing = Vec::new();
            let mut count = 0u64;
            for (t, a, z) in lineage.segment_plan(size, from, to) {
                let tl = self.wal.timeline(t);
                let mut s = a;
                while s <= z {
                    if let Some(e) = tl.and_then(|tl| tl.run_end(s, z)) {
                        s = e + 1;
                    } else {
                        let next = tl
                            .and_then(|tl| tl.next_after(s))
                            .filter(|n| *n <= z)
                            .unwrap_or(z + 1);
                        for m in s..next {
                            count += 1;
                            if missing.len() < LIST_LIMIT {
                                missing.push(size.name(t, m));
                            }
                        }
                        s = next;
                    }
                }
            }
            let b = &mut self.backups[i];
            b.own_wal_present = count == 0;
            if count > 0 {
                let recent = b
                    .end_time
                    .is_some_and(|e| self.now - e < Duration::minutes(10));
                let mut msg = format!(
                    "backup {} is DONE but {count} segment(s) of its own WAL are missing (first: {})",
                    b.id, missing[0]
                );
                if recent {
                    msg.push_str("; it ended less than 10 minutes ago, so the end segment may still be on its way (archive_timeout)");
                }
                b.unusable_reasons.push(format!(
                    "{count} segment(s) of its own WAL are missing, first {}",
                    missing[0]
                ));
                b.own_wal_missing = missing;
                new_findings.push(
                    Finding::new("backup-wal-missing", if recent { Severity::Warning } else { Severity::Error }, &b.id, msg)
                        .hint("a restore from this backup cannot reach consistency; check WAL archiving (ContinuousArchiving) and bucket lifecycle rules"),
                );
            }
            b.usable = b.unusable_reasons.is_empty();
        }
        self.findings.extend(new_findings);
    }

    fn check_system_ids(&mut self) {
        let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for b in &self.backups {
            if let Some(s) = &b.system_id {
                ids.entry(s).or_default().push(&b.id);
            }
        }
        if ids.len() > 1 {
            let detail: Vec<String> = ids
                .iter()
                .map(|(s, b)| format!("{s} ({})", b.join(", ")))
                .collect();
            self.findings.push(
                Finding::new(
                    "systemid-multiple",
                    Severity::Error,
                    &self.server,
                    format!("{} different PostgreSQL system identifiers write under this server name: {}", ids.len(), detail.join("; ")),
                )
                .hint("two clusters share one serverName and interleave their WAL; give each cluster (and each clone generation) its own serverName"),
            );
        }
    }

    fn check_id_order(&mut self) {
        let mut by_id: Vec<&Backup> = self
            .backups
            .iter()
            .filter(|b| b.end_time.is_some())
            .collect();
        by_id.sort_by(|a, b| a.id.cmp(&b.id));
        for w in by_id.windows(2) {
            if w[0].end_time > w[1].end_time {
                self.findings.push(
                    Finding::new(
                        "backup-id-order",
                        Severity::Warning,
                        format!("{}/{}", w[0].id, w[1].id),
                        format!("backup {} sorts before {} by id but ended later; barman orders retention by id", w[0].id, w[1].id),
                    )
                    .hint("check the clock and time zone of the process running barman-cloud-backup"),
                );
            }
        }
    }

    /// The restore path of backup `b` ending on `lineage`, if the backup belongs to it.
    pub(crate) fn backup_on_lineage(b: &Backup, lineage: &Lineage) -> Result<(), String> {
        let tli = b.timeline.unwrap_or(1);
        let Some(span) = lineage.span(tli) else {
            return Err(format!(
                "backup {} is on timeline {tli}, which is not in the history of timeline {} ({lineage})",
                b.id,
                lineage.target()
            ));
        };
        if let Some(fork) = span.end {
            if let Some(cp) = b.checkpoint_lsn()
                && cp >= fork
            {
                return Err(format!(
                    "backup {} starts at {cp} on timeline {tli}, after timeline {} forked at {fork}",
                    b.id,
                    lineage.target()
                ));
            }
            if let Some(end) = b.end_lsn
                && end > fork
            {
                return Err(format!(
                    "backup {} ends at {end} on timeline {tli}, after the fork at {fork}: it cannot become consistent on timeline {}",
                    b.id,
                    lineage.target()
                ));
            }
        }
        Ok(())
    }

    fn build_windows(&mut self) {
        let size = self.segment_size;
        let mut all = Vec::new();
        for t in &self.timelines {
            let Some(lineage) = &t.lineage else { continue };
            let mut windows: Vec<Window> = Vec::new();
            for b in self.backups.iter().filter(|b| b.usable) {
                if Self::backup_on_lineage(b, lineage).is_err() {
                    continue;
                }
                let (Some(begin), Some(end), Some(end_time)) = (b.begin_lsn, b.end_lsn, b.end_time)
                else {
                    continue;
                };
                let walk = self.wal.walk(lineage, size.segno(begin), None);
                let Some(last) = walk.last else { continue };
                if last.segno < size.segno(end) {
                    continue;
                }
                let (end_reason, missing_segment) = match walk.end {
                    WalkEnd::Missing { missing, .. } => {
                        (WindowEnd::Gap, Some(self.wal.name(missing)))
                    }
                    WalkEnd::Head | WalkEnd::Complete => (WindowEnd::Head, None),
                };
                let end_segment = self
                    .wal
                    .walk_end_name(&walk)
                    .unwrap_or_else(|| self.wal.name(last));
                if let Some(w) = windows.iter_mut().find(|w| w.end_segment == end_segment) {
                    w.backups.push(b.id.clone());
                    continue;
                }
                windows.push(Window {
                    backups: vec![b.id.clone()],
                    start_time: end_time,
                    start_lsn: end,
                    // A .partial holds WAL only up to the fork recorded by the child timeline.
                    end_lsn: if walk.partial_tail {
                        self.child_switchpoint(last.tli)
                            .unwrap_or_else(|| size.end_lsn(last.segno))
                    } else {
                        size.end_lsn(last.segno)
                    },
                    end_time: self.wal.last_modified(last).and_then(ts),
                    end_time_approximate: true,
                    end_segment,
                    end_reason,
                    missing_segment,
                    last_transaction: None,
                    latest_time_target: None,
                    end_unread: None,
                });
            }
            windows.sort_by_key(|w| w.start_time);
            if !windows.is_empty() {
                all.push(TimelineWindows {
                    timeline: t.timeline,
                    lineage: lineage.to_string(),
                    windows,
                });
            }
        }
        self.windows = all;
    }

    fn build_gaps(&mut self) {
        let size = self.segment_size;
        let mut gaps = Vec::new();
        for t in &self.timelines {
            let Some(tl) = self.wal.timeline(t.timeline) else {
                continue;
            };
            let runs = tl.runs();
            for w in runs.windows(2) {
                let (after, before) = (w[0].1, w[1].0);
                let (first, last) = (after + 1, before - 1);
                let breaks = self.gap_breaks_recovery(t.timeline, first);
                gaps.push(Gap {
                    timeline: t.timeline,
                    first_missing: size.name(t.timeline, first),
                    last_missing: size.name(t.timeline, last),
                    missing_count: last - first + 1,
                    after: size.name(t.timeline, after),
                    before: size.name(t.timeline, before),
                    breaks_recovery: breaks,
                });
            }
        }
        for g in &gaps {
            let f = if g.breaks_recovery {
                Finding::new(
                    "wal-gap",
                    Severity::Error,
                    &g.first_missing,
                    format!(
                        "{} segment(s) missing on timeline {} ({}..{}): a restore replaying them stops at the gap",
                        g.missing_count, g.timeline, g.first_missing, g.last_missing
                    ),
                )
                .hint("targets after the gap need a base backup taken after it; take one now if the gap is recent")
            } else {
                Finding::new(
                    "wal-gap",
                    Severity::Warning,
                    &g.first_missing,
                    format!(
                        "{} segment(s) missing on timeline {} ({}..{}), outside every usable backup's restore path",
                        g.missing_count, g.timeline, g.first_missing, g.last_missing
                    ),
                )
            };
            self.findings.push(f);
        }
        self.gaps = gaps;
    }

    /// Whether a missing segment lies on the restore path of some usable backup.
    fn gap_breaks_recovery(&self, tli: u32, segno: u64) -> bool {
        let size = self.segment_size;
        self.windows.iter().any(|tw| {
            let Some(lineage) = self.lineage(tw.timeline) else {
                return false;
            };
            lineage.tli_for_segno(size, segno) == tli
                && tw
                    .windows
                    .iter()
                    .any(|w| w.missing_segment.as_deref() == Some(size.name(tli, segno).as_str()))
        }) || self.backups.iter().any(|b| {
            b.usable
                && b.timeline == Some(tli)
                && b.begin_lsn.is_some_and(|l| size.segno(l) <= segno)
        })
    }
}

fn choose_segment_size(
    input: &CatalogInput,
    forced: Option<SegmentSize>,
    findings: &mut Vec<Finding>,
) -> (SegmentSize, &'static str) {
    let mut sizes: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (id, info) in &input.backup_infos {
        if let Ok(info) = info
            && let Some(s) = info.xlog_segment_size
        {
            sizes.entry(s).or_default().push(id);
        }
    }
    if sizes.len() > 1 {
        let detail: Vec<String> = sizes
            .iter()
            .map(|(s, ids)| format!("{s} bytes ({})", ids.join(", ")))
            .collect();
        findings.push(
            Finding::new(
                "segment-size",
                Severity::Error,
                &input.server,
                format!(
                    "backups declare different WAL segment sizes: {}",
                    detail.join("; ")
                ),
            )
            .hint("one server name must hold one cluster; pass --wal-segment-size to choose"),
        );
    }
    if let Some(f) = forced {
        return (f, "option");
    }
    // The size most backups declare.
    if let Some((&s, _)) = sizes.iter().max_by_key(|(_, ids)| ids.len())
        && let Ok(size) = SegmentSize::new(s)
    {
        return (size, "backup.info");
    }
    if !input.listing.wal.is_empty() {
        findings.push(
            Finding::new(
                "segment-size",
                Severity::Warning,
                &input.server,
                "no readable backup.info declares the WAL segment size; 16 MiB assumed",
            )
            .hint("pass --wal-segment-size if the cluster was initialised with another size"),
        );
    }
    (SegmentSize::default(), "default")
}

fn report_rejects(r: &IndexRejects, size: SegmentSize, findings: &mut Vec<Finding>) {
    let list = |v: &[String]| {
        let mut s = v.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if v.len() > 5 {
            let _ = write!(s, " and {} more", v.len() - 5);
        }
        s
    };
    if !r.invalid_for_size.is_empty() {
        findings.push(
            Finding::new(
                "wal-invalid-name",
                Severity::Error,
                &r.invalid_for_size[0],
                format!("{} WAL name(s) are impossible with {size} segments: {}", r.invalid_for_size.len(), list(&r.invalid_for_size)),
            )
            .hint("the segment size is wrong (pass --wal-segment-size) or these files belong to another cluster"),
        );
    }
    if !r.misplaced.is_empty() {
        findings.push(
            Finding::new(
                "wal-misplaced",
                Severity::Warning,
                &r.misplaced[0],
                format!("{} WAL file(s) sit in a hash directory other than the first 16 characters of their name; barman-cloud-wal-restore will not find them: {}", r.misplaced.len(), list(&r.misplaced)),
            ),
        );
    }
    for (name, a, b) in &r.duplicates {
        findings.push(Finding::new(
            "wal-duplicate",
            Severity::Warning,
            name,
            format!(
                "segment {name} is archived twice ({a} and {b}); barman keeps one of them at random"
            ),
        ));
    }
    if !r.wrong_size.is_empty() {
        let names: Vec<String> = r
            .wrong_size
            .iter()
            .map(|(n, s)| format!("{n} ({s} bytes)"))
            .collect();
        findings.push(
            Finding::new(
                "wal-size",
                Severity::Error,
                &r.wrong_size[0].0,
                format!(
                    "{} uncompressed segment(s) are not {size} long and count as missing: {}",
                    r.wrong_size.len(),
                    list(&names)
                ),
            )
            .hint("a truncated upload or a wrong segment size; PostgreSQL rejects a short segment"),
        );
    }
}

fn summarize_unknown(input: &CatalogInput) -> Vec<Finding> {
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for u in &input.listing.unknown {
        by_reason.entry(u.reason).or_default().push(&u.key);
    }
    by_reason
        .into_iter()
        .map(|(reason, keys)| {
            let mut sample: String = keys.iter().take(5).copied().collect::<Vec<_>>().join(", ");
            if keys.len() > 5 {
                let _ = write!(sample, " and {} more", keys.len() - 5);
            }
            Finding::new("object-unknown", Severity::Warning, keys[0], format!("{} object(s) of no known kind ({reason}): {sample}", keys.len()))
                .hint("barman ignores them; client-side encrypted (.enc/.gpg) or temporary files are never cleaned up by retention")
        })
        .collect()
}

fn build_backup(
    id: &str,
    files: &[BaseObject],
    input: &CatalogInput,
    opts: AnalysisOptions,
    findings: &mut Vec<Finding>,
) -> Backup {
    let newest_object = files.iter().map(|f| f.last_modified).max().and_then(ts);
    let size_bytes = files.iter().map(|f| f.size).sum();
    let has_info_object = files.iter().any(|f| f.file == BaseFile::BackupInfo);
    let mut b = Backup {
        id: id.to_owned(),
        status: String::new(),
        name: None,
        timeline: None,
        begin_time: None,
        end_time: None,
        begin_wal: None,
        end_wal: None,
        begin_lsn: None,
        end_lsn: None,
        system_id: None,
        pg_version: None,
        backup_from: None,
        error: None,
        keep: None,
        compression: files.iter().find_map(|f| match f.file {
            BaseFile::Tar {
                tablespace: None,
                part: 0,
                compression,
            } => Some(compression),
            _ => None,
        }),
        size_bytes,
        data_present: false,
        own_wal_present: false,
        own_wal_missing: Vec::new(),
        usable: false,
        unusable_reasons: Vec::new(),
        newest_object,
        info: None,
    };
    let unknown: Vec<&str> = files
        .iter()
        .filter(|f| f.file == BaseFile::Unknown)
        .map(|f| f.rel.as_str())
        .collect();
    if !unknown.is_empty() {
        findings.push(Finding::new(
            "object-unknown",
            Severity::Warning,
            format!("base/{id}/{}", unknown[0]),
            format!(
                "{} object(s) of no known kind in backup {id}: {}",
                unknown.len(),
                unknown
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    match input.keeps.get(id) {
        Some(Ok(body)) => match body.trim() {
            "full" => b.keep = Some(Keep::Full),
            "standalone" => b.keep = Some(Keep::Standalone),
            other => findings.push(Finding::new(
                "backup-keep-unknown",
                Severity::Warning,
                format!("base/{id}/annotations/keep"),
                format!(
                    "keep annotation body `{}` is neither `full` nor `standalone`",
                    other.escape_default()
                ),
            )),
        },
        Some(Err(e)) => findings.push(Finding::new(
            "backup-keep-unknown",
            Severity::Warning,
            &e.key,
            format!("keep annotation not readable: {}", e.message),
        )),
        None => {}
    }

    if !has_info_object {
        "MISSING_INFO".clone_into(&mut b.status);
        let age = newest_object.map(|t| opts.now - t);
        let in_progress = age.is_some_and(|a| a < opts.in_progress_grace);
        b.unusable_reasons
            .push("no backup.info: the backup is in progress or crashed".to_owned());
        let f = if in_progress {
            Finding::new(
                "backup-missing-info",
                Severity::Info,
                id,
                format!(
                    "backup {id} has no backup.info yet; its newest object is recent, so it is probably in progress"
                ),
            )
        } else {
            Finding::new(
                "backup-missing-info",
                Severity::Warning,
                id,
                format!(
                    "backup {id} has no backup.info and its newest object is {} old: a crashed backup that retention never removes ({} bytes)",
                    age.map_or_else(|| "of unknown age".to_owned(), human_duration),
                    size_bytes
                ),
            )
            .hint(format!("delete base/{id}/ once you are sure no backup is running; also abort stale multipart uploads with a bucket lifecycle rule"))
        };
        findings.push(f);
        return b;
    }
    let info = match input.backup_infos.get(id) {
        Some(Ok(info)) => info.clone(),
        Some(Err(e)) => {
            "UNREADABLE_INFO".clone_into(&mut b.status);
            b.unusable_reasons
                .push(format!("backup.info could not be read: {}", e.message));
            findings.push(
                Finding::new("backup-info-unreadable", Severity::Error, &e.key, format!("backup {id}: {}", e.message))
                    .hint("barman-cloud-backup-delete refuses to run while any backup.info is unreadable, so retention is blocked"),
            );
            return b;
        }
        None => {
            "UNREADABLE_INFO".clone_into(&mut b.status);
            b.unusable_reasons
                .push("backup.info was listed but not read".to_owned());
            return b;
        }
    };
    let status = info.status.clone();
    b.status = status
        .as_ref()
        .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned());
    b.name.clone_from(&info.backup_name);
    b.timeline = info.timeline;
    b.begin_time = info.begin_time;
    b.end_time = info.end_time;
    b.begin_wal = info.begin_wal.map(|w| w.to_string());
    b.end_wal = info.end_wal.map(|w| w.to_string());
    b.begin_lsn = info.begin_xlog;
    b.end_lsn = info.end_xlog;
    b.system_id.clone_from(&info.systemid);
    b.pg_version = info.version;
    b.backup_from.clone_from(&info.label.backup_from);
    b.error.clone_from(&info.error);

    let key = format!("base/{id}/backup.info");
    for issue in &info.issues {
        findings.push(Finding::new(
            "backup-info-field",
            Severity::Warning,
            &key,
            issue.to_string(),
        ));
    }
    if !info.unknown_fields.is_empty() {
        findings.push(
            Finding::new(
                "backup-info-newer-fields",
                Severity::Info,
                &key,
                format!("fields unknown to this reader: {}", info.unknown_fields.keys().cloned().collect::<Vec<_>>().join(", ")),
            )
            .hint("written by a newer barman; older barman-cloud tools refuse to read this catalog (\"Unsupported field\")"),
        );
    }
    if info.naive_times {
        findings.push(Finding::new(
            "backup-naive-time",
            Severity::Warning,
            &key,
            "begin_time/end_time carry no offset and were read as UTC",
        ));
    }
    for p in info.consistency_problems(id) {
        findings.push(Finding::new(
            "backup-inconsistent",
            Severity::Warning,
            &key,
            p,
        ));
    }
    if info.parent_backup_id.is_some() || info.label.incremental {
        b.unusable_reasons.push(
            "an incremental backup that needs its parent; barman-cloud cannot restore it alone"
                .to_owned(),
        );
        findings.push(Finding::new(
            "backup-incremental",
            Severity::Warning,
            id,
            format!(
                "backup {id} is a PostgreSQL 17 incremental backup (parent {})",
                info.parent_backup_id.as_deref().unwrap_or("unknown")
            ),
        ));
    }
    if info.snapshots_info.is_some() {
        b.unusable_reasons
            .push("a disk-snapshot backup: its data is not in the object store".to_owned());
    }

    // Data tars: PGDATA and every listed tablespace.
    let has_tar = |ts: Option<u32>| {
        files.iter().any(
            |f| matches!(f.file, BaseFile::Tar { tablespace, part: 0, .. } if tablespace == ts),
        )
    };
    let mut missing_tars = Vec::new();
    if info.snapshots_info.is_none() && !has_tar(None) {
        missing_tars.push("data.tar*".to_owned());
    }
    for t in &info.tablespaces {
        if !has_tar(Some(t.oid)) {
            missing_tars.push(format!("{}.tar* (tablespace {})", t.oid, t.name));
        }
    }
    b.data_present = missing_tars.is_empty();

    match status {
        Some(BackupStatus::Done) => {
            if !missing_tars.is_empty() {
                b.unusable_reasons
                    .push(format!("data missing: {}", missing_tars.join(", ")));
                findings.push(
                    Finding::new("backup-data-missing", Severity::Error, id, format!("backup {id} is DONE but {} missing", missing_tars.join(", ")))
                        .hint("a half-finished delete or a lifecycle rule removed the tars; barman-cloud-backup-delete -b this id, then take a new backup"),
                );
            }
            for (what, v) in [
                ("begin_time", info.begin_time.is_none()),
                ("end_time", info.end_time.is_none()),
                ("begin_xlog", info.begin_xlog.is_none()),
                ("end_xlog", info.end_xlog.is_none()),
                ("timeline", info.timeline.is_none()),
            ] {
                if v {
                    b.unusable_reasons
                        .push(format!("`{what}` is missing or unreadable"));
                }
            }
        }
        Some(BackupStatus::Failed) => {
            b.unusable_reasons.push(format!(
                "status FAILED ({})",
                info.error.as_deref().unwrap_or("no error recorded")
            ));
            let mut msg = format!(
                "backup {id} FAILED: {}",
                info.error.as_deref().unwrap_or("no error recorded")
            );
            if info.end_time.is_some() && info.begin_time.is_some() {
                msg.push_str("; it has an end time, so CloudNativePG counts it as done for its recovery window and backup selection");
            }
            findings.push(
                Finding::new("backup-failed", Severity::Warning, id, msg).hint(format!(
                    "retention never removes FAILED backups: barman-cloud-backup-delete -b {id}"
                )),
            );
        }
        Some(ref other) => {
            b.unusable_reasons.push(format!("status {other}"));
            findings.push(Finding::new(
                "backup-status",
                Severity::Warning,
                id,
                format!("backup {id} has status {other}; barman-cloud only writes DONE or FAILED"),
            ));
        }
        None => b.unusable_reasons.push("no status".to_owned()),
    }
    b.info = Some(info);
    b
}

/// Renders a duration as `3d 4h`, `5h 2m`, `42s`.
#[must_use]
pub fn human_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, mins) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {mins}m")
    } else if mins > 0 {
        format!("{mins}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

/// Formats an optional instant.
#[must_use]
pub fn fmt_time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), format_utc)
}
