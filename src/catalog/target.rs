//! Target resolution: given a time, an LSN or `latest` (and a timeline), pick
//! the anchor backup the way CloudNativePG does, but never a FAILED or
//! unusable one, then require every WAL segment from the anchor's start to
//! the target on the timelines PostgreSQL will read them from.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::analysis::{Backup, Catalog, fmt_time, ts};
use super::history::Lineage;
use super::time::format_utc;
use super::wal::{Lsn, SegmentId};
use super::walindex::{Walk, WalkEnd};

/// What to recover to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The end of the archive on the target timeline.
    Latest,
    /// The first commit after this instant.
    Time(DateTime<Utc>),
    /// This WAL position.
    Lsn(Lsn),
    /// The end of this transaction (`recovery_target_xid`): only the WAL can place it.
    Xid(u32),
    /// The first restore point of this name (`recovery_target_name`): only the WAL can place it.
    Name(String),
}

impl Target {
    /// Reads `xid:N` and `name:NAME`; `None` for any other text.
    ///
    /// # Errors
    /// A transaction id that is not a normal 32-bit xid, or a restore point
    /// name CloudNativePG's webhook refuses (64 bytes or more, control characters).
    pub fn parse_wal_placed(s: &str) -> Option<Result<Target, String>> {
        if let Some(x) = s.strip_prefix("xid:") {
            return Some(match x.trim().parse::<u32>() {
                Ok(n) if n >= 3 => Ok(Target::Xid(n)),
                Ok(n) => Err(format!(
                    "xid:{n} is not a normal transaction id (those start at 3)"
                )),
                Err(_) => Err(format!(
                    "`{x}` is not a transaction id; expected a decimal number such as xid:7421"
                )),
            });
        }
        let name = s.strip_prefix("name:")?;
        Some(if name.is_empty() {
            Err("name: needs the restore point's name, such as name:before-migration".to_owned())
        } else if name.len() >= 64 {
            Err(format!(
                "restore point name `{name}` is {} bytes; PostgreSQL keeps at most 63",
                name.len()
            ))
        } else if name.chars().any(char::is_control) {
            Err("a restore point name cannot hold control characters".to_owned())
        } else {
            Ok(Target::Name(name.to_owned()))
        })
    }

    /// `time`, `lsn`, `xid`, `name` or `latest`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Latest => "latest",
            Target::Time(_) => "time",
            Target::Lsn(_) => "lsn",
            Target::Xid(_) => "xid",
            Target::Name(_) => "name",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Latest => f.write_str("latest"),
            Target::Time(t) => f.write_str(&format_utc(*t)),
            Target::Lsn(l) => write!(f, "{l}"),
            Target::Xid(x) => write!(f, "xid:{x}"),
            Target::Name(n) => write!(f, "name:{n}"),
        }
    }
}

/// `recovery_target_timeline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimelineChoice {
    /// PostgreSQL's default: the newest timeline reachable through history files.
    #[default]
    Latest,
    /// An explicit timeline.
    Id(u32),
}

impl fmt::Display for TimelineChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineChoice::Latest => f.write_str("latest"),
            TimelineChoice::Id(t) => write!(f, "{t}"),
        }
    }
}

/// A suggested target that is recoverable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suggestion {
    /// Value for `--to`.
    pub target: String,
    /// Timeline to use with it.
    pub timeline: u32,
    /// Why this one.
    pub description: String,
}

/// The verdict for one target.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Whether PostgreSQL can reach the target.
    pub recoverable: bool,
    /// The target as resolved (an instant with its offset, an LSN, or `latest`).
    pub target: String,
    /// `time`, `lsn` or `latest`.
    pub target_kind: &'static str,
    /// The timeline requested (`latest` or a number).
    pub timeline_requested: String,
    /// The timeline the restore ends on.
    pub timeline: Option<u32>,
    /// The anchor backup.
    pub backup_id: Option<String>,
    /// End time of the anchor backup.
    pub backup_end_time: Option<DateTime<Utc>>,
    /// The backup CloudNativePG picks when `backupID` is not set (it ignores status).
    pub cnpg_default_backup_id: Option<String>,
    /// Whether the manifest must pin `backupID` to get the anchor above.
    pub requires_backup_id: bool,
    /// First segment replay reads.
    pub wal_from: Option<String>,
    /// Last segment replay needs (for a time target: the first one uploaded after it).
    pub wal_to: Option<String>,
    /// Needed segments that are missing.
    pub missing_wal: Vec<String>,
    /// Where recovery would stop early (the first missing segment), when it would.
    pub stops_at: Option<String>,
    /// Whether the verdict is exact (LSN and latest) or approximated from upload times (time).
    pub exact: bool,
    /// Why the target is not recoverable, or caveats when it is.
    pub reasons: Vec<String>,
    /// Recoverable targets close to the requested one.
    pub nearest: Vec<Suggestion>,
    /// What the archived WAL itself showed, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal: Option<super::exact::WalEvidence>,
}

struct Attempt {
    ok: bool,
    /// The verdict rests on something not seen (upload times, an unread next segment).
    approximate: bool,
    timeline: Option<u32>,
    wal_from: Option<String>,
    wal_to: Option<String>,
    missing: Vec<String>,
    stops_at: Option<String>,
    reasons: Vec<String>,
    notes: Vec<String>,
}

impl Attempt {
    fn fail(reason: String) -> Attempt {
        Attempt {
            ok: false,
            approximate: false,
            timeline: None,
            wal_from: None,
            wal_to: None,
            missing: Vec::new(),
            stops_at: None,
            reasons: vec![reason],
            notes: Vec::new(),
        }
    }
}

fn unix(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Catalog {
    /// Candidates in CNPG's order for `target`: newest first. With `cnpg_tli_filter`, a numeric
    /// timeline keeps only backups taken on it, as CloudNativePG's selection does; a pinned
    /// `backupID` is not filtered that way.
    pub(crate) fn candidates<'a>(
        &'a self,
        target: &Target,
        tl: TimelineChoice,
        cnpg_tli_filter: bool,
    ) -> impl Iterator<Item = &'a Backup> + use<'a> {
        let target = target.clone();
        self.backups.iter().rev().filter(move |b| {
            let tli_ok = match tl {
                TimelineChoice::Id(t) if cnpg_tli_filter => b.timeline == Some(t),
                _ => true,
            };
            let target_ok = match &target {
                // CloudNativePG cannot choose for xid and name: the backup must be pinned.
                Target::Latest | Target::Xid(_) | Target::Name(_) => true,
                Target::Lsn(l) => b.end_lsn.is_some_and(|e| e < *l),
                Target::Time(t) => b.end_time.is_some_and(|e| e <= *t),
            };
            tli_ok && target_ok
        })
    }

    /// Decides whether `target` is recoverable.
    #[must_use]
    pub fn check(&self, target: &Target, tl: TimelineChoice) -> CheckReport {
        let cnpg_default = self
            .candidates(target, tl, true)
            .find(|b| b.cnpg_done())
            .map(|b| b.id.clone());
        let mut report = CheckReport {
            recoverable: false,
            target: target.to_string(),
            target_kind: target.kind(),
            timeline_requested: tl.to_string(),
            timeline: None,
            backup_id: None,
            backup_end_time: None,
            cnpg_default_backup_id: cnpg_default.clone(),
            requires_backup_id: false,
            wal_from: None,
            wal_to: None,
            missing_wal: Vec::new(),
            stops_at: None,
            exact: !matches!(target, Target::Time(_) | Target::Xid(_) | Target::Name(_)),
            reasons: Vec::new(),
            nearest: Vec::new(),
            wal: None,
        };
        if matches!(target, Target::Xid(_) | Target::Name(_)) {
            report.cnpg_default_backup_id = None;
            report.reasons.push(format!(
                "a {} target can only be placed by reading the WAL, which was not read",
                if matches!(target, Target::Xid(_)) {
                    "transaction"
                } else {
                    "restore point"
                }
            ));
            return report;
        }
        // Explicit timeline must exist and have a known history.
        if let TimelineChoice::Id(t) = tl
            && self.lineage(t).is_none()
        {
            let why = match self.timelines.iter().find(|x| x.timeline == t) {
                None => format!("timeline {t} does not appear in this catalog"),
                Some(x) if x.history == "unreadable" => {
                    format!("the history file of timeline {t} could not be read")
                }
                Some(_) => {
                    format!("timeline {t} has no history file, so PostgreSQL cannot follow it")
                }
            };
            report.reasons.push(why);
            report.nearest = self.suggest(target, tl);
            return report;
        }

        // Backups whose backup.info could not be read (or lacks an end) are never guessed at; say so.
        let unread: Vec<String> = self
            .backups
            .iter()
            .filter(|b| {
                b.status == "UNREADABLE_INFO"
                    || (b.info.is_some() && b.end_time.is_none() && b.status != "FAILED")
            })
            .map(|b| {
                format!(
                    "backup {} was not considered: {}",
                    b.id,
                    b.unusable_reasons.join("; ")
                )
            })
            .collect();
        let mut skipped: Vec<String> = Vec::new();
        let mut first_failure: Option<Attempt> = None;
        let mut any_candidate = false;
        for b in self.candidates(target, tl, false) {
            if !b.cnpg_done() && b.status != "DONE" {
                continue;
            }
            any_candidate = true;
            if !b.usable {
                // Only backups newer than the first one tried explain the choice.
                if first_failure.is_some() {
                    continue;
                }
                skipped.push(format!(
                    "backup {} is not usable: {}",
                    b.id,
                    b.unusable_reasons.join("; ")
                ));
                continue;
            }
            let attempt = self.attempt(b, target, tl);
            if attempt.ok {
                report.recoverable = true;
                report.backup_id = Some(b.id.clone());
                report.backup_end_time = b.end_time;
                report.requires_backup_id = cnpg_default.as_deref() != Some(b.id.as_str());
                report.timeline = attempt.timeline;
                report.wal_from = attempt.wal_from;
                report.wal_to = attempt.wal_to;
                report.exact = report.exact && !attempt.approximate;
                report.reasons = attempt.notes;
                if report.requires_backup_id {
                    let why = match (cnpg_default.as_deref().and_then(|d| self.backup(d)), tl) {
                        (Some(d), _) if !d.usable => format!(
                            "its default choice {} is unusable ({})",
                            d.id,
                            d.unusable_reasons.join("; ")
                        ),
                        (Some(d), _) => {
                            format!("its default choice {} does not reach the target", d.id)
                        }
                        (None, TimelineChoice::Id(t)) => format!(
                            "with targetTLI {t} it only considers backups taken on timeline {t}, and there is none"
                        ),
                        (None, TimelineChoice::Latest) => "it selects no backup".to_owned(),
                    };
                    report.reasons.push(format!(
                        "CloudNativePG would not pick {} by itself: {why}; pin recoveryTarget.backupID: {}",
                        b.id, b.id
                    ));
                }
                for s in skipped.iter().rev().take(3).rev() {
                    report.reasons.push(format!("skipped: {s}"));
                }
                report.reasons.extend(unread);
                return report;
            }
            if first_failure.is_none() {
                first_failure = Some(attempt);
            }
        }

        // Not recoverable: explain.
        if let Some(f) = first_failure {
            report.timeline = f.timeline;
            report.wal_from = f.wal_from;
            report.wal_to = f.wal_to;
            report.missing_wal = f.missing;
            report.stops_at = f.stops_at;
            report.reasons.extend(f.reasons);
            // The anchor CNPG would use is reported even when the WAL does not carry it to the target.
            report.backup_id.clone_from(&cnpg_default);
            report.backup_end_time = cnpg_default
                .as_deref()
                .and_then(|d| self.backup(d))
                .and_then(|b| b.end_time);
        }
        report.reasons.extend(skipped);
        report.reasons.extend(unread);
        if !any_candidate {
            report.reasons.push(self.no_backup_reason(target, tl));
        }
        report.nearest = self.suggest(target, tl);
        report
    }

    fn no_backup_reason(&self, target: &Target, tl: TimelineChoice) -> String {
        let restrict = match tl {
            TimelineChoice::Latest => String::new(),
            TimelineChoice::Id(t) => format!(" on timeline {t}"),
        };
        let first = self
            .backups
            .iter()
            .filter(|b| b.is_done() && b.end_time.is_some())
            .min_by_key(|b| b.end_time);
        match (target, first) {
            (_, None) | (Target::Latest | Target::Xid(_) | Target::Name(_), Some(_)) => {
                format!("no DONE backup{restrict} in the catalog")
            }
            (Target::Time(t), Some(f)) => format!(
                "no backup{restrict} ended at or before {}: the oldest DONE backup, {}, ended at {}",
                format_utc(*t),
                f.id,
                fmt_time(f.end_time)
            ),
            (Target::Lsn(l), Some(f)) => format!(
                "no backup{restrict} ended before {l}: the oldest DONE backup, {}, ended at {}",
                f.id,
                f.end_lsn.map_or_else(|| "-".to_owned(), |e| e.to_string())
            ),
        }
    }

    /// The lineage a restore from `b` follows for the requested timeline.
    pub(crate) fn lineage_for(&self, b: &Backup, tl: TimelineChoice) -> Result<Lineage, String> {
        let btli = b.timeline.unwrap_or(1);
        let target_tli = match tl {
            TimelineChoice::Id(t) => t,
            TimelineChoice::Latest => self.latest_from(btli),
        };
        match self.lineage(target_tli) {
            Some(l) => Ok(l.clone()),
            None => Err(match self.histories.get(&target_tli) {
                Some(Err(e)) => {
                    format!("{target_tli:08X}.history could not be read: {}", e.message)
                }
                _ => format!("timeline {target_tli} has no readable history file"),
            }),
        }
    }

    fn attempt(&self, b: &Backup, target: &Target, tl: TimelineChoice) -> Attempt {
        let size = self.segment_size;
        let lineage = match self.lineage_for(b, tl) {
            Ok(l) => l,
            Err(e) => return Attempt::fail(e),
        };
        let target_tli = lineage.target();
        if let Err(e) = Self::backup_on_lineage(b, &lineage) {
            let mut a = Attempt::fail(e);
            a.timeline = Some(target_tli);
            if tl == TimelineChoice::Latest {
                a.reasons.push(format!(
                    "recovery_target_timeline `latest` resolves to {target_tli}; PostgreSQL refuses to start (\"requested timeline {target_tli} is not a child of this server's history\")"
                ));
            }
            return a;
        }
        let (Some(begin), Some(end)) = (b.begin_lsn, b.end_lsn) else {
            return Attempt::fail(format!("backup {} has no begin/end position", b.id));
        };
        let start = size.segno(begin);
        let mut a = Attempt {
            ok: false,
            approximate: false,
            timeline: Some(target_tli),
            wal_from: Some(size.name(lineage.tli_for_segno(size, start), start)),
            wal_to: None,
            missing: Vec::new(),
            stops_at: None,
            reasons: Vec::new(),
            notes: Vec::new(),
        };
        let stop = match target {
            Target::Lsn(l) => Some(size.segno(*l)),
            _ => None,
        };
        let walk = self.wal.walk(&lineage, start, stop);
        let end_seg = size.segno(end);
        // The backup's own WAL first.
        if walk.last.is_none_or(|l| l.segno < end_seg) {
            self.fill_missing(&mut a, &lineage, &walk);
            a.reasons.insert(
                0,
                format!(
                    "the WAL of backup {} itself is incomplete: a restore cannot reach consistency",
                    b.id
                ),
            );
            return a;
        }
        match target {
            Target::Xid(_) | Target::Name(_) => {}
            &Target::Lsn(l) => {
                let s = size.segno(l);
                a.wal_to = self
                    .wal
                    .walk_end_name(&walk)
                    .filter(|_| walk.partial_tail)
                    .or_else(|| Some(size.name(lineage.tli_for_segno(size, s), s)));
                let partial_end = walk
                    .partial_tail
                    .then(|| self.child_switchpoint(target_tli))
                    .flatten();
                if walk.end == WalkEnd::Complete && partial_end.is_some_and(|end| l >= end) {
                    a.reasons.push(format!(
                        "{l} is past the end of timeline {target_tli}: its last segment survives only as a .partial file, which holds WAL up to the fork at {}",
                        partial_end.unwrap_or_default()
                    ));
                } else if walk.end == WalkEnd::Complete {
                    a.ok = true;
                    let next = SegmentId {
                        tli: lineage.tli_for_segno(size, s + 1),
                        segno: s + 1,
                    };
                    if self.lineage_head(&lineage).is_some_and(|h| h.segno == s) {
                        a.approximate = true;
                        a.notes.push(format!(
                            "{l} lies in the newest archived segment; recovery fails if no record at or after it was archived"
                        ));
                    } else if !walk.partial_tail && !self.wal.has(next) {
                        a.approximate = true;
                        a.notes.push(format!(
                            "{} is not archived: if the record at {l} continues into it, recovery cannot reach the target",
                            self.wal.name(next)
                        ));
                    }
                } else {
                    self.fill_missing(&mut a, &lineage, &walk);
                    let past_head = matches!(walk.end, WalkEnd::Missing { later: None, .. });
                    if past_head {
                        a.reasons.insert(
                            0,
                            format!(
                                "{l} is past the end of the archived WAL on timeline {target_tli}"
                            ),
                        );
                    }
                }
            }
            Target::Latest => match walk.end {
                WalkEnd::Head | WalkEnd::Complete => {
                    a.ok = true;
                    if let (Some(last), Some(name)) = (walk.last, self.wal.walk_end_name(&walk)) {
                        a.wal_to = Some(name.clone());
                        a.notes.push(format!(
                            "recovery replays to the end of {name} (archived {}) on timeline {target_tli}",
                            fmt_time(self.wal.last_modified(last).and_then(ts))
                        ));
                    }
                }
                WalkEnd::Missing { .. } => {
                    self.fill_missing(&mut a, &lineage, &walk);
                    if let WalkEnd::Missing { missing, later } = walk.end {
                        if let Some(note) = self.transient_gap_note(&lineage, missing) {
                            a.reasons.push(note);
                        }
                        let lost = self.lost_after(&lineage, missing, later);
                        a.reasons.insert(
                            0,
                            format!(
                                "recovery to latest would stop early, at the missing segment {} (LSN {}), and promote: {lost}",
                                self.wal.name(missing),
                                size.start_lsn(missing.segno)
                            ),
                        );
                    }
                }
            },
            &Target::Time(t) => {
                if let Some(seg) = self
                    .wal
                    .first_uploaded_after(&lineage, start, &walk, unix(t))
                {
                    a.ok = true;
                    a.notes.push(format!(
                        "approximate: {seg} was uploaded after the target, so the first commit after it should lie in {seg} or earlier (upload times bound commit times); read the WAL for an exact answer"
                    ));
                    if let WalkEnd::Missing { missing, .. } = walk.end
                        && self.wal.walk_end_name(&walk).as_deref() == Some(seg.as_str())
                    {
                        a.notes.push(format!(
                            "{seg} is the last segment before the gap at {}: if it holds no commit after the target, recovery stops at the gap",
                            self.wal.name(missing)
                        ));
                    }
                    a.wal_to = Some(seg);
                } else {
                    let last_id = walk.last.unwrap_or(SegmentId {
                        tli: target_tli,
                        segno: start,
                    });
                    let last_time = self.wal.last_modified(last_id).and_then(ts);
                    match walk.end {
                        WalkEnd::Missing { missing, later } => {
                            self.fill_missing(&mut a, &lineage, &walk);
                            a.reasons.insert(
                                0,
                                format!(
                                    "segment {} is missing: recovery stops at {} before reaching the target (the WAL before it was archived by {}){}",
                                    self.wal.name(missing),
                                    size.start_lsn(missing.segno),
                                    fmt_time(last_time),
                                    later.map_or_else(String::new, |l| format!("; archiving resumes at {}", self.wal.name(l)))
                                ),
                            );
                        }
                        WalkEnd::Head | WalkEnd::Complete => {
                            let name = self
                                .wal
                                .walk_end_name(&walk)
                                .unwrap_or_else(|| self.wal.name(last_id));
                            a.reasons.insert(
                                0,
                                format!(
                                    "the target is past the last archived WAL: the newest segment on timeline {target_tli}, {name}, was uploaded at {}; PostgreSQL fails with \"recovery ended before configured recovery target was reached\"",
                                    fmt_time(last_time)
                                ),
                            );
                            a.wal_to = Some(name);
                        }
                    }
                }
            }
        }
        self.note_unfollowed_timelines(&mut a, target_tli, tl, target);
        a
    }

    fn fill_missing(&self, a: &mut Attempt, lineage: &Lineage, walk: &Walk) {
        if let WalkEnd::Missing { missing, later } = walk.end {
            a.stops_at = Some(self.wal.name(missing));
            let last = later.map_or(missing.segno, |l| {
                l.segno.saturating_sub(1).max(missing.segno)
            });
            let count = last - missing.segno + 1;
            for s in missing.segno..=last.min(missing.segno + 19) {
                a.missing.push(
                    self.wal
                        .size
                        .name(lineage.tli_for_segno(self.segment_size, s), s),
                );
            }
            if count > 20 {
                a.reasons.push(format!(
                    "{count} segments missing in a row; the first 20 are listed"
                ));
            }
            if later.is_none() && !a.missing.is_empty() {
                // Missing at the head: nothing after it was archived.
                a.missing.truncate(1);
            }
        }
    }

    /// Where the first child of timeline `tli` forked from it.
    pub(crate) fn child_switchpoint(&self, tli: u32) -> Option<Lsn> {
        self.timelines
            .iter()
            .find(|t| t.timeline == tli)
            .and_then(|t| t.children.iter().map(|c| c.1).min())
    }

    /// The newest archived segment on the lineage.
    fn lineage_head(&self, lineage: &Lineage) -> Option<SegmentId> {
        lineage.spans.iter().rev().find_map(|s| {
            let tl = self.wal.timeline(s.tli)?;
            let max = s.end.map_or(u64::MAX, |e| self.segment_size.segno(e));
            tl.range(self.segment_size.segno(s.begin), max)
                .last()
                .map(|e| SegmentId {
                    tli: s.tli,
                    segno: e.segno,
                })
        })
    }

    fn lost_after(
        &self,
        lineage: &Lineage,
        missing: SegmentId,
        later: Option<SegmentId>,
    ) -> String {
        let head = self.lineage_head(lineage);
        match (later, head) {
            (Some(l), Some(h)) => {
                let newest = self.wal.last_modified(h).and_then(ts);
                format!(
                    "the WAL archived after the gap ({} to {}, up to {}) would be silently skipped",
                    self.wal.name(l),
                    self.wal.name(h),
                    fmt_time(newest)
                )
            }
            _ => format!("nothing was archived after {}", self.wal.name(missing)),
        }
    }

    /// A gap among the newest few segments, archived minutes ago, may close by itself:
    /// with `wal.maxParallel` above 1 later segments can land before earlier ones.
    fn transient_gap_note(&self, lineage: &Lineage, missing: SegmentId) -> Option<String> {
        let head = self.lineage_head(lineage)?;
        let newest = self.wal.last_modified(head).and_then(ts)?;
        let recent = self.now - newest < chrono::Duration::minutes(10);
        (recent && head.tli == missing.tli && head.segno.saturating_sub(missing.segno) < 16).then(|| {
            format!(
                "the gap is among the newest segments, archived {} ago: with wal.maxParallel above 1 it can be transient; check again in a few minutes",
                super::analysis::human_duration(self.now - newest)
            )
        })
    }

    /// Timelines above the one `latest` reaches are cut off by a missing history file.
    /// For `latest` that loses their data silently; for a time or LSN target it means the
    /// target is judged on an older branch.
    fn note_unfollowed_timelines(
        &self,
        a: &mut Attempt,
        target_tli: u32,
        tl: TimelineChoice,
        target: &Target,
    ) {
        if tl != TimelineChoice::Latest {
            return;
        }
        let Some(n) = self
            .timelines
            .iter()
            .map(|t| t.timeline)
            .filter(|&t| t > target_tli)
            .max()
        else {
            return;
        };
        let link = (target_tli + 1..=n)
            .find(|&k| !self.history_present(k))
            .unwrap_or(n);
        let why = if link == n {
            format!("timeline {n} exists but its history file {n:08X}.history is missing")
        } else {
            format!("timeline {n} exists but {link:08X}.history, a link in its history, is missing")
        };
        if *target == Target::Latest {
            a.ok = false;
            a.reasons.insert(
                0,
                format!(
                    "{why}: `latest` stops at the end of timeline {target_tli} and the newer timeline's data would be silently lost; pass --timeline {target_tli} to accept that"
                ),
            );
        } else if a.ok {
            a.approximate = true;
            a.notes.push(format!(
                "{why}: `latest` cannot reach it, so the target is judged on timeline {target_tli}; if it lies after timeline {n} forked, the restore follows the older branch"
            ));
        }
    }

    /// Recoverable targets near `target`.
    pub(crate) fn suggest(&self, target: &Target, tl: TimelineChoice) -> Vec<Suggestion> {
        let mut out = Vec::new();
        let relevant: Vec<_> = self
            .windows
            .iter()
            .filter(|tw| match tl {
                TimelineChoice::Id(t) => tw.timeline == t,
                TimelineChoice::Latest => {
                    Some(tw.timeline) == self.newest_timeline()
                        || tw.timeline == self.windows.last().map_or(0, |w| w.timeline)
                }
            })
            .collect();
        for tw in relevant {
            let windows = &tw.windows;
            let t = match target {
                Target::Time(t) => Some(*t),
                _ => None,
            };
            // Latest point at or before the target, and earliest after it.
            let before = windows
                .iter()
                .rfind(|w| t.is_none_or(|t| w.start_time <= t));
            let after = windows.iter().find(|w| t.is_some_and(|t| w.start_time > t));
            if let Some(w) = before {
                let size = self.segment_size;
                let last = size.segno(w.end_lsn).saturating_sub(1);
                let lsn = Lsn(size.start_lsn(last).0.max(w.start_lsn.0 + 1));
                let edge = match w.end_reason {
                    super::analysis::WindowEnd::Gap => "before the gap",
                    super::analysis::WindowEnd::Head => "in the archive",
                };
                out.push(Suggestion {
                    target: lsn.to_string(),
                    timeline: tw.timeline,
                    description: format!(
                        "exact: a position inside {}, the last segment of unbroken WAL after backup {} ({edge})",
                        w.end_segment,
                        w.backups.last().map_or("?", String::as_str)
                    ),
                });
                if let Some(end) = w.end_time {
                    out.push(Suggestion {
                        target: format_utc(end - chrono::Duration::seconds(1)),
                        timeline: tw.timeline,
                        description: format!(
                            "approximate: {} was uploaded at {}; a time shortly before that is reachable if a commit follows it in the WAL up to that segment",
                            w.end_segment,
                            format_utc(end)
                        ),
                    });
                }
            }
            if let Some(w) = after {
                out.push(Suggestion {
                    target: format_utc(w.start_time),
                    timeline: tw.timeline,
                    description: format!(
                        "earliest reachable after the target: the end of backup {}",
                        w.backups[0]
                    ),
                });
            }
            if before.is_none()
                && after.is_none()
                && let Some(w) = windows.first()
            {
                out.push(Suggestion {
                    target: format_utc(w.start_time),
                    timeline: tw.timeline,
                    description: format!(
                        "first recoverable point: the end of backup {}",
                        w.backups[0]
                    ),
                });
            }
        }
        out
    }
}
