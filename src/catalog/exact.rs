//! Exact verdicts from the archived WAL itself.
//!
//! The catalog alone places a time target only by upload times, and cannot
//! place a transaction or a restore point at all. This module decides which
//! segments a question needs, and turns what they hold into the verdict
//! PostgreSQL would reach. It does no IO: [`check`] answers either
//! [`Step::Need`] (read these segments, then ask again with them in
//! [`WalReads`]) or [`Step::Done`].
//!
//! PostgreSQL's rules, as `recoveryStopsBefore`/`recoveryStopsAfter` apply
//! them (inclusive targets, CloudNativePG's default):
//! - a time target stops *before* the first commit or abort whose time is
//!   later than the target; with none in the WAL a restore replays, recovery
//!   fails ("recovery ended before configured recovery target was reached");
//! - an xid target stops *after* that transaction's commit or abort record;
//! - a name target stops *after* the first restore point of that name;
//! - an LSN target stops *after* the first record that starts at or after it;
//! - a stop found before the backup is consistent is fatal ("requested
//!   recovery stop point is before consistent recovery point").
//!
//! Commit times come from the database's clock and upload times from the
//! store's; a segment uploaded well before the target is assumed to hold no
//! commit after it. The margin is [`ExactOptions::skew`], widened by any skew
//! the segments read show (a commit later than its segment's upload).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::analysis::{Backup, Catalog, Window};
use super::history::Lineage;
use super::target::{CheckReport, Suggestion, Target, TimelineChoice};
use super::time::format_utc;
use super::wal::{Lsn, SegmentId};
use super::walindex::WalkEnd;
use super::walread::{RestorePoint, SegmentEnd, SegmentRecords, XactEnd, join_tail};

/// Segments read so far, by segment. `Err` holds why one could not be read.
#[derive(Debug, Default, Clone)]
pub struct WalReads {
    segments: HashMap<SegmentId, Result<Arc<SegmentRecords>, String>>,
}

impl WalReads {
    /// Records what reading `id` gave.
    pub fn insert(&mut self, id: SegmentId, read: Result<Arc<SegmentRecords>, String>) {
        self.segments.insert(id, read);
    }

    /// What reading `id` gave, if it was read.
    #[must_use]
    pub fn get(&self, id: SegmentId) -> Option<&Result<Arc<SegmentRecords>, String>> {
        self.segments.get(&id)
    }

    /// How many segments were read (or tried).
    #[must_use]
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether nothing was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }
}

/// How far to read.
#[derive(Debug, Clone, Copy)]
pub struct ExactOptions {
    /// Most segments one search reads before it gives up and says so.
    pub scan_limit: usize,
    /// Segments asked for at once.
    pub batch: usize,
    /// How far the database's clock may run ahead of the store's.
    pub skew: Duration,
}

impl Default for ExactOptions {
    fn default() -> Self {
        ExactOptions {
            scan_limit: 64,
            batch: 4,
            skew: Duration::seconds(60),
        }
    }
}

/// The answer of [`check`] so far.
#[derive(Debug)]
pub enum Step {
    /// Read these segments (in this order), then ask again.
    Need(Vec<SegmentId>),
    /// The verdict.
    Done(Box<CheckReport>),
}

/// One record, as the WAL holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordRef {
    /// `commit`, `abort`, `commit-prepared`, `abort-prepared` or `restore-point`.
    pub kind: &'static str,
    /// Where it starts.
    pub lsn: Lsn,
    /// Where it ends (restore points: not recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_lsn: Option<Lsn>,
    /// The transaction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xid: Option<u32>,
    /// The restore point's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its time, as the database recorded it.
    pub time: DateTime<Utc>,
    /// The segment it starts in.
    pub segment: String,
}

impl RecordRef {
    fn xact(x: &XactEnd, segment: String) -> RecordRef {
        RecordRef {
            kind: match (x.committed, x.prepared) {
                (true, false) => "commit",
                (false, false) => "abort",
                (true, true) => "commit-prepared",
                (false, true) => "abort-prepared",
            },
            lsn: x.lsn,
            end_lsn: Some(x.end_lsn),
            xid: Some(x.xid),
            name: None,
            time: x.time,
            segment,
        }
    }

    fn restore_point(r: &RestorePoint, segment: String) -> RecordRef {
        RecordRef {
            kind: "restore-point",
            lsn: r.lsn,
            end_lsn: None,
            xid: None,
            name: Some(r.name.clone()),
            time: r.time,
            segment,
        }
    }

    /// `transaction 812 (commit at 2026-…, 0/3000110)`.
    #[must_use]
    pub fn describe(&self) -> String {
        match (&self.name, self.xid) {
            (Some(n), _) => format!(
                "restore point `{n}` (created {}, at {} in {})",
                format_utc(self.time),
                self.lsn,
                self.segment
            ),
            (None, Some(x)) => format!(
                "transaction {x} ({} at {}, record at {} in {})",
                self.kind,
                format_utc(self.time),
                self.lsn,
                self.segment
            ),
            (None, None) => format!("record at {}", self.lsn),
        }
    }
}

/// A segment that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadSegment {
    /// Its name.
    pub segment: String,
    /// Why.
    pub error: String,
}

/// What the WAL showed for a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WalEvidence {
    /// Segments whose records were read for this verdict.
    pub segments_read: usize,
    /// The record recovery stops at: before it for a time target, after it
    /// for an xid, name or LSN target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<RecordRef>,
    /// The last transaction to end in the WAL the restore replays (when read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_transaction: Option<RecordRef>,
    /// The latest time target that is reachable: just before `last_transaction`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_time_target: Option<DateTime<Utc>>,
    /// Segments that could not be read: the verdict fell back to the catalog's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<UnreadSegment>,
}

/// The WAL a restore from one backup replays: the segments from the backup's
/// start up to the end of the unbroken stretch after it.
#[derive(Debug, Clone)]
pub(crate) struct ReplayPath {
    lineage: Lineage,
    /// First segment.
    first: u64,
    /// Last segment of the unbroken stretch.
    last: u64,
    /// Where the backup is consistent.
    consistent: Lsn,
    /// Where the backup starts.
    begin: Lsn,
    /// The stretch ends at a missing segment (with more WAL after it, or none).
    missing: Option<SegmentId>,
    /// The stretch ends with a `.partial` file.
    partial_tail: bool,
}

impl ReplayPath {
    fn id(&self, cat: &Catalog, segno: u64) -> SegmentId {
        SegmentId {
            tli: self.lineage.tli_for_segno(cat.segment_size, segno),
            segno,
        }
    }

    fn tli(&self) -> u32 {
        self.lineage.target()
    }
}

impl Catalog {
    /// The WAL a restore from `b` replays towards the requested timeline.
    pub(crate) fn replay_path(&self, b: &Backup, tl: TimelineChoice) -> Option<ReplayPath> {
        let lineage = self.lineage_for(b, tl).ok()?;
        Self::backup_on_lineage(b, &lineage).ok()?;
        let (begin, consistent) = (b.begin_lsn?, b.end_lsn?);
        let first = self.segment_size.segno(begin);
        let walk = self.wal.walk(&lineage, first, None);
        let last = walk.last?.segno;
        if last < self.segment_size.segno(consistent) {
            return None;
        }
        let missing = match walk.end {
            WalkEnd::Missing { missing, .. } => Some(missing),
            _ => None,
        };
        Some(ReplayPath {
            lineage,
            first,
            last,
            consistent,
            begin,
            missing,
            partial_tail: walk.partial_tail,
        })
    }
}

/// A segment's records as a search sees them: with the record that starts
/// in it and finishes in the next one.
struct View {
    xacts: Vec<XactEnd>,
    restore_points: Vec<RestorePoint>,
    last_record_lsn: Option<Lsn>,
    end_lsn: Lsn,
    end: SegmentEnd,
}

enum Seen {
    Ready(View),
    Pending,
    Failed,
}

struct Ctx<'a> {
    cat: &'a Catalog,
    reads: &'a WalReads,
    o: &'a ExactOptions,
    need: Vec<SegmentId>,
    used: std::collections::HashSet<SegmentId>,
    unreadable: Vec<UnreadSegment>,
    /// The latest commit time in the segment where `last_xact` found the last transaction
    /// (commit times are not ordered by LSN to the microsecond).
    newest_time: Option<DateTime<Utc>>,
}

impl<'a> Ctx<'a> {
    fn new(cat: &'a Catalog, reads: &'a WalReads, o: &'a ExactOptions) -> Ctx<'a> {
        Ctx {
            cat,
            reads,
            o,
            need: Vec::new(),
            used: std::collections::HashSet::new(),
            unreadable: Vec::new(),
            newest_time: None,
        }
    }

    fn name(&self, id: SegmentId) -> String {
        self.cat.wal.name(id)
    }

    fn archived(&self, id: SegmentId) -> bool {
        self.cat.wal.has(id)
            || self
                .cat
                .wal
                .timeline(id.tli)
                .is_some_and(|t| t.partial(id.segno).is_some())
    }

    fn ask(&mut self, id: SegmentId) {
        if !self.need.contains(&id) {
            self.need.push(id);
        }
    }

    /// The records of `id`; `next` is the segment PostgreSQL reads after it.
    fn view(&mut self, id: SegmentId, next: SegmentId) -> Seen {
        let r = match self.reads.get(id) {
            None => {
                self.ask(id);
                return Seen::Pending;
            }
            Some(Err(e)) => {
                let e = e.clone();
                self.note_unreadable(id, e);
                return Seen::Failed;
            }
            Some(Ok(r)) => Arc::clone(r),
        };
        let mut v = View {
            xacts: r.xacts.clone(),
            restore_points: r.restore_points.clone(),
            last_record_lsn: r.last_record_lsn,
            end_lsn: r.end_lsn,
            end: r.end,
        };
        if let Some(tail) = r.tail.as_ref().filter(|t| t.may_matter())
            && self.archived(next)
        {
            match self.reads.get(next) {
                None => {
                    self.ask(next);
                    return Seen::Pending;
                }
                Some(Ok(n)) => {
                    if let Some(j) = join_tail(tail, n) {
                        v.xacts.extend(j.xacts);
                        v.restore_points.extend(j.restore_points);
                        v.last_record_lsn = j.last_record_lsn.or(v.last_record_lsn);
                        v.end_lsn = j.end_lsn.max(v.end_lsn);
                    } else if n.continued_bytes > 0 {
                        // The next segment finishes a record this reader could not keep
                        // whole (longer than it keeps): it may be a commit, so say so.
                        self.note_unreadable(
                            id,
                            format!(
                                "the {}-byte record at {} that continues into the next segment was not read whole",
                                tail.total, tail.lsn
                            ),
                        );
                        return Seen::Failed;
                    }
                }
                // The next one is unreadable: this one's records stand as read.
                Some(Err(_)) => {}
            }
        }
        self.used.insert(id);
        Seen::Ready(v)
    }

    /// Says once why segment `id` cannot be used.
    fn note_unreadable(&mut self, id: SegmentId, error: String) {
        let segment = self.name(id);
        if !self.unreadable.iter().any(|u| u.segment == segment) {
            self.unreadable.push(UnreadSegment { segment, error });
        }
    }

    fn evidence(&self) -> WalEvidence {
        WalEvidence {
            segments_read: self.used.len(),
            unreadable: self.unreadable.clone(),
            ..WalEvidence::default()
        }
    }

    /// Visits segments `segnos` of `path` in that order. Unread ones are asked for (one
    /// first, then a batch); `probe` sees each read segment once every segment before it
    /// was read, and ends the scan by returning a result.
    fn scan(
        &mut self,
        path: &ReplayPath,
        segnos: impl Iterator<Item = u64>,
        probe: &mut dyn FnMut(SegmentId, u64, &View) -> Option<Scan>,
    ) -> Scan {
        let (mut pending, mut ready) = (0usize, 0usize);
        for (n, segno) in segnos.enumerate() {
            if n >= self.o.scan_limit && pending == 0 {
                return Scan::Limit(segno);
            }
            let id = path.id(self.cat, segno);
            match self.view(id, path.id(self.cat, segno + 1)) {
                Seen::Pending => {
                    pending += 1;
                    if pending >= self.batch_after(ready) {
                        return Scan::Pending;
                    }
                }
                Seen::Failed if pending == 0 => return Scan::Failed(id),
                Seen::Failed => return Scan::Pending,
                Seen::Ready(_) if pending > 0 => {}
                Seen::Ready(v) => {
                    ready += 1;
                    if let Some(done) = probe(id, segno, &v) {
                        return done;
                    }
                }
            }
        }
        if pending > 0 {
            Scan::Pending
        } else {
            Scan::Exhausted
        }
    }

    /// The first transaction end with a time after `t`, at or after `from`
    /// (by LSN), scanning segments `start..=path.last`.
    fn first_after(&mut self, path: &ReplayPath, start: u64, t: DateTime<Utc>, from: Lsn) -> Scan {
        let cat = self.cat;
        self.scan(path, start..=path.last, &mut |id, segno, v| {
            if let Some(x) = v.xacts.iter().find(|x| x.time > t && x.lsn >= from) {
                return Some(Scan::Found(RecordRef::xact(x, cat.wal.name(id))));
            }
            // A complete segment whose valid WAL stops short: recovery ends there.
            let tail_partial = path.partial_tail && segno == path.last;
            (v.end == SegmentEnd::Invalid && !tail_partial).then_some(Scan::Broken(id, v.end_lsn))
        })
    }

    /// The last transaction end at or after `from` (by LSN), scanning back
    /// from `path.last` to segment `down_to`.
    fn last_xact(&mut self, path: &ReplayPath, down_to: u64, from: Lsn) -> Scan {
        let cat = self.cat;
        let mut newest = None;
        let found = self.scan(path, (down_to..=path.last).rev(), &mut |id, _, v| {
            let x = v.xacts.iter().rev().find(|x| x.lsn >= from)?;
            newest = v
                .xacts
                .iter()
                .filter(|x| x.lsn >= from)
                .map(|x| x.time)
                .max();
            Some(Scan::Found(RecordRef::xact(x, cat.wal.name(id))))
        });
        self.newest_time = newest;
        found
    }

    /// Segments asked for at once: one first (it usually answers), then a batch.
    fn batch_after(&self, ready: usize) -> usize {
        if ready == 0 { 1 } else { self.o.batch }
    }

    /// How far the database's clock ran ahead of the store's in the segments
    /// of `path` read so far.
    fn observed_skew(&self, path: &ReplayPath) -> Duration {
        // Only the segments read count: walk them, not the whole path.
        self.reads
            .segments
            .iter()
            .filter_map(|(id, r)| {
                let r = r.as_ref().ok()?;
                let on_path = (path.first..=path.last).contains(&id.segno)
                    && path.id(self.cat, id.segno) == *id;
                let up = DateTime::<Utc>::from_timestamp_millis(
                    self.cat.wal.last_modified(*id).filter(|_| on_path)?,
                )?;
                Some(r.xacts.iter().map(|x| x.time).max()? - up)
            })
            .fold(Duration::zero(), Duration::max)
    }
}

enum Scan {
    Found(RecordRef),
    /// The valid WAL ends inside this segment, at this position.
    Broken(SegmentId, Lsn),
    Exhausted,
    Pending,
    Failed(SegmentId),
    Limit(u64),
}

/// The exact verdict for `target`, or the segments it needs first.
#[must_use]
pub fn check(
    cat: &Catalog,
    target: &Target,
    tl: TimelineChoice,
    reads: &WalReads,
    o: &ExactOptions,
) -> Step {
    let mut ctx = Ctx::new(cat, reads, o);
    let report = match target {
        Target::Time(t) => time_target(&mut ctx, *t, tl),
        Target::Latest => latest_target(&mut ctx, tl),
        Target::Lsn(l) => lsn_target(&mut ctx, *l, tl, None),
        Target::Xid(x) => xid_target(&mut ctx, *x, tl, target),
        Target::Name(n) => name_target(&mut ctx, n, tl, target),
    };
    match report {
        Some(r) => Step::Done(Box::new(r)),
        None => Step::Need(ctx.need),
    }
}

/// The backup a time or latest verdict rests on: the anchor the catalog chose,
/// else the first usable candidate CloudNativePG's order gives.
fn anchor<'c>(
    cat: &'c Catalog,
    base: &CheckReport,
    target: &Target,
    tl: TimelineChoice,
) -> Option<&'c Backup> {
    if base.recoverable {
        return base.backup_id.as_deref().and_then(|id| cat.backup(id));
    }
    cat.candidates(target, tl, false)
        .find(|b| b.usable && (b.cnpg_done() || b.status == "DONE"))
}

fn fallback(mut base: CheckReport, ctx: &Ctx<'_>, why: &str) -> CheckReport {
    base.exact = false;
    base.reasons.push(format!(
        "approximate: {why}; the verdict above rests on the catalog alone"
    ));
    base.wal = Some(ctx.evidence());
    base
}

fn time_target(ctx: &mut Ctx<'_>, t: DateTime<Utc>, tl: TimelineChoice) -> Option<CheckReport> {
    let cat = ctx.cat;
    let target = Target::Time(t);
    let base = cat.check(&target, tl);
    let Some(b) = anchor(cat, &base, &target, tl) else {
        return Some(base);
    };
    let Some(path) = cat.replay_path(b, tl) else {
        return Some(base);
    };
    let size = cat.segment_size;
    let cons_seg = size.segno(path.consistent);
    let margin = ctx.o.skew + ctx.observed_skew(&path).max(Duration::zero());
    let edge = (t - margin).timestamp_millis();
    let start = (cons_seg..=path.last)
        .find(|&s| {
            cat.wal
                .last_modified(path.id(cat, s))
                .is_some_and(|lm| lm > edge)
        })
        .unwrap_or(path.last + 1);
    // A commit after the target before the backup is consistent: fatal.
    if start == cons_seg
        && let Some(Ok(r)) = ctx.reads.get(path.id(cat, cons_seg))
        && let Some(x) = r
            .xacts
            .iter()
            .find(|x| x.time > t && x.lsn >= path.begin && x.lsn < path.consistent)
    {
        let stop = RecordRef::xact(x, ctx.name(path.id(cat, cons_seg)));
        let mut r = base;
        r.recoverable = false;
        r.exact = true;
        r.reasons = vec![format!(
            "{} ends after the target but before backup {} is consistent at {}: PostgreSQL stops with \"requested recovery stop point is before consistent recovery point\"",
            stop.describe(),
            b.id,
            path.consistent
        )];
        let mut ev = ctx.evidence();
        ev.stop = Some(stop);
        r.wal = Some(ev);
        return Some(r);
    }
    let mut broken = None;
    let found = match ctx.first_after(&path, start, t, path.consistent) {
        Scan::Pending => return None,
        Scan::Broken(id, at) => {
            broken = Some((id, at));
            None
        }
        Scan::Failed(id) => {
            let why = format!("{} could not be read", ctx.name(id));
            return Some(fallback(base, ctx, &why));
        }
        Scan::Limit(segno) => {
            let why = format!(
                "no transaction ended after the target in the {} segments read from {} on",
                ctx.o.scan_limit,
                ctx.name(path.id(cat, start))
            );
            let _ = segno;
            return Some(fallback(base, ctx, &why));
        }
        Scan::Found(x) => Some(x),
        Scan::Exhausted => None,
    };
    if let Some(stop) = found {
        let mut r = base;
        if !r.recoverable {
            // Only clock skew makes the upload times say otherwise.
            recoverable_from(&mut r, cat, b, &path, &target, tl);
        }
        r.exact = true;
        r.reasons.retain(|x| {
            !x.starts_with("approximate:") && !x.contains("is the last segment before the gap")
        });
        r.wal_to = Some(record_end_segment(cat, &path, &stop));
        r.reasons.insert(
            0,
            format!(
                "recovery stops just before {}, the first transaction to end after the target",
                stop.describe()
            ),
        );
        let mut ev = ctx.evidence();
        ev.stop = Some(stop);
        r.wal = Some(ev);
        return Some(r);
    }
    // No transaction ends after the target: find the last one for the reasons.
    let scan = match broken {
        Some((id, _)) => ReplayPath {
            last: id.segno,
            partial_tail: false,
            ..path.clone()
        },
        None => path.clone(),
    };
    let last = match ctx.last_xact(&scan, path.first, path.consistent) {
        Scan::Pending => return None,
        Scan::Found(x) => Some(x),
        _ => None,
    };
    let mut r = base;
    r.recoverable = false;
    r.exact = true;
    r.requires_backup_id = false;
    let end_name = cat.wal.name(path.id(cat, path.last));
    let end_name = if path.partial_tail {
        format!("{end_name}.partial")
    } else {
        end_name
    };
    let end = match (broken, path.missing) {
        (Some((id, at)), _) => {
            r.stops_at = Some(ctx.name(id));
            format!(
                "the end of the valid WAL in {} at {at} (the record there does not check: the segment is damaged)",
                ctx.name(id)
            )
        }
        (None, Some(m)) => {
            r.stops_at = Some(ctx.name(m));
            if r.missing_wal.is_empty() {
                r.missing_wal = vec![ctx.name(m)];
            }
            format!("the missing segment {}", ctx.name(m))
        }
        (None, None) => format!("the end of the archive ({end_name})"),
    };
    let last_words = match &last {
        Some(x) => format!(
            "; the last one is {}: a target before {} is reachable",
            x.describe(),
            format_utc(x.time)
        ),
        None => String::new(),
    };
    r.reasons = vec![format!(
        "no transaction ends after {} in the WAL a restore from {} replays, up to {end}{last_words}; PostgreSQL fails with \"recovery ended before configured recovery target was reached\"",
        format_utc(t),
        b.id
    )];
    r.wal_to = Some(match broken {
        Some((id, _)) => ctx.name(id),
        None => end_name,
    });
    let mut ev = ctx.evidence();
    if let Some(x) = &last {
        let latest = ctx.newest_time.unwrap_or(x.time).max(x.time) - Duration::microseconds(1);
        ev.latest_time_target = Some(latest);
        let mut nearest = vec![Suggestion {
            target: format_utc(latest),
            timeline: path.tli(),
            description: format!(
                "exact time: the latest time a restore from {} reaches, 1 µs before {} ends",
                b.id,
                x.xid.map_or_else(
                    || "the last transaction".to_owned(),
                    |x| format!("transaction {x}")
                )
            ),
        }];
        nearest.extend(
            r.nearest
                .into_iter()
                .filter(|s| !s.description.starts_with("approximate")),
        );
        r.nearest = nearest;
    }
    ev.last_transaction = last;
    r.wal = Some(ev);
    Some(r)
}

/// The segment holding the end of `x`: the last one replay must read to see it whole.
fn record_end_segment(cat: &Catalog, path: &ReplayPath, x: &RecordRef) -> String {
    let last = x.end_lsn.map_or(x.lsn, |e| Lsn(e.0.saturating_sub(1)));
    cat.wal.name(path.id(cat, cat.segment_size.segno(last)))
}

/// Fills an unrecoverable report with the anchor `b` (used when the WAL shows
/// the catalog's approximate answer was wrong).
fn recoverable_from(
    r: &mut CheckReport,
    cat: &Catalog,
    b: &Backup,
    path: &ReplayPath,
    target: &Target,
    tl: TimelineChoice,
) {
    let cnpg_default = cat
        .candidates(target, tl, true)
        .find(|c| c.cnpg_done())
        .map(|c| c.id.clone());
    r.recoverable = true;
    r.backup_id = Some(b.id.clone());
    r.backup_end_time = b.end_time;
    r.requires_backup_id = cnpg_default.as_deref() != Some(b.id.as_str());
    r.timeline = Some(path.tli());
    r.wal_from = Some(cat.wal.name(path.id(cat, path.first)));
    r.missing_wal.clear();
    r.stops_at = None;
    r.reasons.clear();
    r.nearest.clear();
    if r.requires_backup_id {
        r.reasons.push(format!(
            "CloudNativePG would not pick {} by itself; pin recoveryTarget.backupID: {}",
            b.id, b.id
        ));
    }
}

fn latest_target(ctx: &mut Ctx<'_>, tl: TimelineChoice) -> Option<CheckReport> {
    let cat = ctx.cat;
    let base = cat.check(&Target::Latest, tl);
    let Some(b) = anchor(cat, &base, &Target::Latest, tl) else {
        return Some(base);
    };
    let Some(path) = cat.replay_path(b, tl) else {
        return Some(base);
    };
    let mut r = base;
    match ctx.last_xact(&path, path.first, path.consistent) {
        Scan::Pending => return None,
        Scan::Found(x) => {
            let mut ev = ctx.evidence();
            if r.recoverable {
                r.reasons.push(format!(
                    "the last transaction it replays is {}",
                    x.describe()
                ));
            } else {
                r.reasons.push(format!(
                    "the last transaction before it stops is {}",
                    x.describe()
                ));
            }
            ev.latest_time_target =
                Some(ctx.newest_time.unwrap_or(x.time).max(x.time) - Duration::microseconds(1));
            ev.last_transaction = Some(x);
            r.wal = Some(ev);
        }
        Scan::Failed(id) => {
            let why = format!("{} could not be read", ctx.name(id));
            r.reasons
                .push(format!("the last transaction is not known: {why}"));
            r.wal = Some(ctx.evidence());
        }
        Scan::Exhausted | Scan::Limit(_) | Scan::Broken(..) => {
            r.reasons.push(format!(
                "no transaction ends in the newest {} segments it replays",
                ctx.used.len()
            ));
            r.wal = Some(ctx.evidence());
        }
    }
    Some(r)
}

/// An LSN target; `located` is the record an xid or name target was found at.
fn lsn_target(
    ctx: &mut Ctx<'_>,
    l: Lsn,
    tl: TimelineChoice,
    located: Option<&RecordRef>,
) -> Option<CheckReport> {
    let cat = ctx.cat;
    let target = Target::Lsn(l);
    let mut r = cat.check(&target, tl);
    if r.exact && located.is_none() {
        return Some(r);
    }
    if !r.recoverable {
        if located.is_some() {
            r.wal = Some(ctx.evidence());
        }
        return Some(r);
    }
    let b = r.backup_id.as_deref().and_then(|id| cat.backup(id))?;
    let Some(path) = cat.replay_path(b, tl) else {
        return Some(r);
    };
    let segno = cat.segment_size.segno(l);
    let id = path.id(cat, segno);
    let next = path.id(cat, segno + 1);
    let v = match ctx.view(id, next) {
        Seen::Pending => return None,
        Seen::Failed => {
            let why = format!("{} could not be read", ctx.name(id));
            return Some(fallback(r, ctx, &why));
        }
        Seen::Ready(v) => v,
    };
    r.reasons.retain(|x| {
        !x.contains("recovery fails if no record") && !x.contains("is not archived: if the record")
    });
    r.exact = true;
    let mut ev = ctx.evidence();
    if v.last_record_lsn.is_some_and(|s| s >= l) || located.is_some() {
        if let Some(x) = located {
            ev.stop = Some(x.clone());
        }
    } else if matches!(v.end, SegmentEnd::Switch) && ctx.archived(next) {
        // The next record is the first one of the next segment.
    } else {
        r.recoverable = false;
        r.requires_backup_id = false;
        r.reasons = vec![format!(
            "the archived WAL on timeline {} ends at {} (the end of the last whole record in {}); no record starts at or after {l}, so PostgreSQL fails with \"recovery ended before configured recovery target was reached\"",
            path.tli(),
            v.end_lsn,
            ctx.name(id)
        )];
        r.nearest = cat.suggest(&target, tl);
    }
    r.wal = Some(ev);
    Some(r)
}

/// The segments archived on the lineage a search for `tl` follows, from the
/// oldest usable backup's start to the head: (lineage, first, last).
fn search_span(cat: &Catalog, tl: TimelineChoice) -> Option<(ReplayPath, u64)> {
    let usable: Vec<&Backup> = cat
        .backups
        .iter()
        .filter(|b| b.usable && b.begin_lsn.is_some())
        .collect();
    let newest = usable.iter().rev().find_map(|b| cat.replay_path(b, tl))?;
    let oldest = usable
        .iter()
        .filter(|b| Catalog::backup_on_lineage(b, &newest.lineage).is_ok())
        .filter_map(|b| b.begin_lsn)
        .min()?;
    let first = cat.segment_size.segno(oldest);
    // The head of the lineage, past any gap: a transaction may end there.
    let head = newest
        .lineage
        .spans
        .iter()
        .filter_map(|s| {
            let t = cat.wal.timeline(s.tli)?;
            let max = s.end.map_or(u64::MAX, |e| cat.segment_size.segno(e));
            t.range(cat.segment_size.segno(s.begin), max)
                .last()
                .map(|e| e.segno)
        })
        .max()?;
    Some((
        ReplayPath {
            first: first.min(head),
            last: head,
            ..newest
        },
        head,
    ))
}

fn xid_target(
    ctx: &mut Ctx<'_>,
    xid: u32,
    tl: TimelineChoice,
    target: &Target,
) -> Option<CheckReport> {
    let cat = ctx.cat;
    let mut base = cat.check(target, tl);
    let Some((span, _)) = search_span(cat, tl) else {
        base.reasons = vec!["no usable backup with archived WAL to search".to_owned()];
        return Some(base);
    };
    let found = match locate_xid(ctx, &span, xid) {
        Locate::Pending => return None,
        Locate::Found(x) => x,
        Locate::Failed(id) => {
            base.reasons = vec![format!(
                "transaction {xid} could not be placed: {} could not be read",
                ctx.name(id)
            )];
            base.wal = Some(ctx.evidence());
            return Some(base);
        }
        Locate::NotFound(why, exact) => {
            base.exact = exact;
            base.reasons = vec![format!("transaction {xid} {why}")];
            base.wal = Some(ctx.evidence());
            return Some(base);
        }
    };
    located(ctx, found, tl, target)
}

fn name_target(
    ctx: &mut Ctx<'_>,
    name: &str,
    tl: TimelineChoice,
    target: &Target,
) -> Option<CheckReport> {
    let cat = ctx.cat;
    let mut base = cat.check(target, tl);
    let Some((span, _)) = search_span(cat, tl) else {
        base.reasons = vec!["no usable backup with archived WAL to search".to_owned()];
        return Some(base);
    };
    // barman-cloud-backup creates `barman_<backup id>` just after the backup stops.
    let hint = name
        .strip_prefix("barman_")
        .and_then(|id| cat.backup(id))
        .and_then(|b| b.end_lsn)
        .map(|l| cat.segment_size.segno(l));
    let order: Vec<u64> = match hint {
        Some(s) => (s..=(s + 2).min(span.last)).collect(),
        None => (span.first..=span.last).rev().collect(),
    };
    // Only what is archived can be read; a gap is judged when the point is placed.
    let order: Vec<u64> = order
        .into_iter()
        .filter(|&s| ctx.archived(span.id(cat, s)))
        .collect();
    let found = match ctx.scan(&span, order.iter().copied(), &mut |id, _, v| {
        let rp = v.restore_points.iter().find(|r| r.name == name)?;
        Some(Scan::Found(RecordRef::restore_point(rp, cat.wal.name(id))))
    }) {
        Scan::Pending => return None,
        Scan::Failed(id) => {
            base.reasons = vec![format!(
                "restore point `{name}` could not be placed: {} could not be read",
                ctx.name(id)
            )];
            base.wal = Some(ctx.evidence());
            return Some(base);
        }
        Scan::Found(x) => Some(x),
        Scan::Exhausted | Scan::Limit(_) | Scan::Broken(..) => None,
    };
    let Some(found) = found else {
        let read = ctx.used.len();
        base.exact = hint.is_none() && read >= order.len();
        base.reasons = vec![if base.exact {
            format!(
                "no restore point named `{name}` in the archived WAL: PostgreSQL would replay to the end and fail with \"recovery ended before configured recovery target was reached\""
            )
        } else {
            format!(
                "no restore point named `{name}` in the {read} newest segments read (of {}); older WAL was not searched",
                order.len()
            )
        }];
        base.wal = Some(ctx.evidence());
        return Some(base);
    };
    // PostgreSQL stops at the first restore point of that name after the anchor's start:
    // read from there to the one found, and move to an earlier one while there is one.
    let mut found = found;
    let mut unproven = None;
    for _ in 0..4 {
        match earlier_restore_point(ctx, &found, name, tl) {
            Earlier::Pending => return None,
            Earlier::None => break,
            Earlier::Found(e) => found = e,
            Earlier::Unread(why) => {
                unproven = Some(why);
                break;
            }
        }
    }
    let mut r = located(ctx, found, tl, target)?;
    if let Some(why) = unproven {
        r.exact = false;
        r.reasons.push(format!(
            "approximate: {why}; an earlier restore point named `{name}` there would stop recovery first"
        ));
    }
    Some(r)
}

enum Earlier {
    Found(RecordRef),
    None,
    Pending,
    Unread(String),
}

/// A restore point named `name` between the start of the backup a restore to
/// `found` is anchored on and `found` itself.
fn earlier_restore_point(
    ctx: &mut Ctx<'_>,
    found: &RecordRef,
    name: &str,
    tl: TimelineChoice,
) -> Earlier {
    let cat = ctx.cat;
    let r = cat.check(&Target::Lsn(found.lsn), tl);
    let Some(b) = r.backup_id.as_deref().and_then(|id| cat.backup(id)) else {
        return Earlier::None;
    };
    let Some(path) = cat.replay_path(b, tl) else {
        return Earlier::None;
    };
    let to = cat.segment_size.segno(found.lsn);
    let segs: Vec<u64> = (path.first..=to)
        .filter(|&s| ctx.archived(path.id(cat, s)))
        .collect();
    if segs.len() > ctx.o.scan_limit {
        return Earlier::Unread(format!(
            "the {} segments from backup {}'s start to it were not read (over --wal-scan-limit)",
            segs.len(),
            b.id
        ));
    }
    let mut pending = false;
    for segno in segs {
        let id = path.id(cat, segno);
        match ctx.view(id, path.id(cat, segno + 1)) {
            Seen::Pending => pending = true,
            Seen::Failed => {
                return Earlier::Unread(format!("{} could not be read", ctx.name(id)));
            }
            Seen::Ready(_) if pending => {}
            Seen::Ready(v) => {
                if let Some(rp) = v
                    .restore_points
                    .iter()
                    .find(|p| p.name == name && p.lsn >= path.begin && p.lsn < found.lsn)
                {
                    return Earlier::Found(RecordRef::restore_point(rp, ctx.name(id)));
                }
            }
        }
    }
    if pending {
        Earlier::Pending
    } else {
        Earlier::None
    }
}

/// The verdict for a record an xid or name target was placed at: PostgreSQL
/// stops right after it, as it would for an LSN target at its start.
fn located(
    ctx: &mut Ctx<'_>,
    found: RecordRef,
    tl: TimelineChoice,
    target: &Target,
) -> Option<CheckReport> {
    let mut r = lsn_target(ctx, found.lsn, tl, Some(&found))?;
    r.target = target.to_string();
    r.target_kind = target.kind();
    // The webhook requires backupID for these targets.
    r.cnpg_default_backup_id = None;
    r.requires_backup_id = r.recoverable;
    r.reasons
        .retain(|x| !x.starts_with("CloudNativePG would not pick"));
    let rolled_back = found.name.is_none() && found.kind.starts_with("abort");
    let what = format!(
        "{} {}{}",
        if r.recoverable {
            "recovery stops just after"
        } else {
            "the target is"
        },
        found.describe(),
        if rolled_back {
            ": the transaction was rolled back, so none of its changes are restored"
        } else {
            ""
        }
    );
    r.reasons.insert(0, what);
    if r.recoverable {
        r.reasons.push(format!(
            "CloudNativePG requires recoveryTarget.backupID with {}: pin {}",
            if found.name.is_some() {
                "targetName"
            } else {
                "targetXID"
            },
            r.backup_id.as_deref().unwrap_or("?")
        ));
    } else if r.backup_id.is_none() {
        r.reasons.push(format!(
            "no usable backup is consistent before {}",
            found.lsn
        ));
    }
    if r.recoverable
        && let Some(b) = r.backup_id.as_deref().and_then(|id| ctx.cat.backup(id))
        && let Some(path) = ctx.cat.replay_path(b, tl)
    {
        r.wal_to = Some(record_end_segment(ctx.cat, &path, &found));
    }
    if let Some(ev) = r.wal.as_mut() {
        ev.stop = Some(found);
    }
    Some(r)
}

enum Locate {
    Found(RecordRef),
    Pending,
    Failed(SegmentId),
    /// Why, and whether that is certain.
    NotFound(String, bool),
}

/// Wrapping comparison of transaction ids, as PostgreSQL's `TransactionIdPrecedes`.
fn precedes(a: u32, b: u32) -> bool {
    a.wrapping_sub(b).cast_signed() < 0
}

/// Places transaction `xid`'s end. Transactions end roughly in the order
/// their ids were assigned, so a binary search over segments by the newest
/// xid that ends in each finds where it was assigned; its end lies at or
/// after that, within the scan limit.
fn locate_xid(ctx: &mut Ctx<'_>, span: &ReplayPath, xid: u32) -> Locate {
    let cat = ctx.cat;
    let present: Vec<u64> = (span.first..=span.last)
        .filter(|&s| ctx.archived(span.id(cat, s)))
        .collect();
    if present.is_empty() {
        return Locate::NotFound("cannot be searched: no WAL is archived".to_owned(), true);
    }
    // Binary search for the first segment (with transaction ends) whose newest xid is not before `xid`.
    let (mut lo, mut hi) = (0usize, present.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // The first segment at or after mid that has transaction ends.
        let mut probe = None;
        for (i, &segno) in present.iter().enumerate().skip(mid).take(ctx.o.scan_limit) {
            let id = span.id(cat, segno);
            match ctx.view(id, span.id(cat, segno + 1)) {
                Seen::Pending => return Locate::Pending,
                Seen::Failed => return Locate::Failed(id),
                Seen::Ready(v) => {
                    if let Some(x) = v.xacts.iter().find(|x| x.xid == xid) {
                        return Locate::Found(RecordRef::xact(x, ctx.name(id)));
                    }
                    if let Some(max) = v
                        .xacts
                        .iter()
                        .map(|x| x.xid)
                        .reduce(|a, b| if precedes(a, b) { b } else { a })
                    {
                        probe = Some((i, max));
                        break;
                    }
                }
            }
        }
        match probe {
            Some((i, max)) if precedes(max, xid) => lo = i + 1,
            _ => hi = mid,
        }
    }
    // Scan forward from there.
    let from = present.iter().copied().skip(lo.saturating_sub(1));
    match ctx.scan(span, from, &mut |id, _, v| {
        let x = v.xacts.iter().find(|x| x.xid == xid)?;
        Some(Scan::Found(RecordRef::xact(x, cat.wal.name(id))))
    }) {
        Scan::Pending => return Locate::Pending,
        Scan::Failed(id) => return Locate::Failed(id),
        Scan::Found(x) => return Locate::Found(x),
        Scan::Exhausted | Scan::Limit(_) | Scan::Broken(..) => {}
    }
    if lo >= present.len() {
        // Certain only when every archived segment was read: a long transaction can end
        // after younger ones.
        let all = ctx.used.len() >= present.len();
        return Locate::NotFound(
            if all {
                "does not end in the archived WAL; PostgreSQL would replay to the end and fail with \"recovery ended before configured recovery target was reached\"".to_owned()
            } else {
                format!(
                    "does not end in the {} segments read: the transactions that end there have older ids, so it most likely never ended in this archive (a transaction that ran for a long time could still end elsewhere)",
                    ctx.used.len()
                )
            },
            all,
        );
    }
    Locate::NotFound(
        format!(
            "was not found in the {} segments read where transactions of its age end; it may have ended later (a long transaction), or before the oldest backup",
            ctx.used.len()
        ),
        false,
    )
}

/// The exact end of a recovery window: the last transaction a restore to
/// the window's end replays. `None` while segments are needed (in `need`).
pub fn window_end(
    cat: &Catalog,
    timeline: u32,
    w: &Window,
    reads: &WalReads,
    o: &ExactOptions,
    need: &mut Vec<SegmentId>,
) -> Option<Result<Option<RecordRef>, String>> {
    let b = w.backups.last().and_then(|id| cat.backup(id))?;
    let path = cat.replay_path(b, TimelineChoice::Id(timeline))?;
    let mut ctx = Ctx::new(cat, reads, o);
    let end = super::wal::RawSegmentName::parse(w.end_segment.trim_end_matches(".partial"))
        .and_then(|n| n.resolve(cat.segment_size))?;
    let path = ReplayPath {
        last: end.segno.min(path.last).max(path.first),
        ..path
    };
    match ctx.last_xact(&path, path.first, path.consistent) {
        Scan::Pending => {
            need.extend(ctx.need);
            None
        }
        Scan::Found(x) => Some(Ok(Some(x))),
        Scan::Exhausted | Scan::Limit(_) | Scan::Broken(..) => Some(Ok(None)),
        Scan::Failed(id) => Some(Err(format!("{} could not be read", ctx.name(id)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::tests::{Synth, at};

    /// One commit per segment `s`, `offset` minutes after minute `10 * s`
    /// (when the segment was uploaded), with xid `100 + s`.
    fn records(cat: &Catalog, id: SegmentId, offset: i64) -> SegmentRecords {
        let start = cat.segment_size.start_lsn(id.segno);
        let minute = i64::try_from(id.segno).unwrap() * 10 + offset;
        SegmentRecords {
            pg_major: 16,
            system_id: 1,
            timeline: id.tli,
            start,
            records: 1,
            xacts: vec![XactEnd {
                lsn: Lsn(start.0 + 0x200),
                end_lsn: Lsn(start.0 + 0x230),
                xid: 100 + u32::try_from(id.segno).unwrap(),
                time: at(minute),
                committed: true,
                prepared: false,
            }],
            restore_points: Vec::new(),
            end_of_recovery: Vec::new(),
            last_record_lsn: Some(Lsn(start.0 + 0x240)),
            end_lsn: Lsn(start.0 + 0x258),
            end: SegmentEnd::Switch,
            continued_bytes: 0,
            continued_read: false,
            tail: None,
            head: Vec::new(),
            head_end: None,
        }
    }

    /// Answers every round with `read`; returns the verdict and the segments read.
    fn drive(
        cat: &Catalog,
        target: &Target,
        read: &dyn Fn(SegmentId) -> Result<SegmentRecords, String>,
    ) -> (CheckReport, Vec<u64>) {
        let mut reads = WalReads::default();
        let mut order = Vec::new();
        for _ in 0..100 {
            match check(
                cat,
                target,
                TimelineChoice::Latest,
                &reads,
                &ExactOptions::default(),
            ) {
                Step::Done(r) => return (*r, order),
                Step::Need(ids) => {
                    assert!(!ids.is_empty());
                    for id in ids {
                        assert!(reads.get(id).is_none(), "asked twice for {id:?}");
                        order.push(id.segno);
                        reads.insert(id, read(id).map(Arc::new));
                    }
                }
            }
        }
        panic!("no verdict after 100 rounds");
    }

    fn catalog(last: u64) -> Catalog {
        let mut s = Synth::new();
        s.wal(1, 1, last).done("20260301T000020", 2, 25);
        s.analyse()
    }

    #[test]
    fn a_time_target_reads_only_where_its_stop_can_be() {
        let cat = catalog(9);
        let (r, read) = drive(&cat, &Target::Time(at(42)), &|id| Ok(records(&cat, id, -5)));
        assert!(r.recoverable && r.exact, "{r:?}");
        assert_eq!(
            r.wal.as_ref().unwrap().stop.as_ref().unwrap().xid,
            Some(105)
        );
        // Segment 5 is the first uploaded after the target (minus the margin).
        assert_eq!(read, vec![5]);
    }

    #[test]
    fn a_database_clock_ahead_of_the_store_widens_the_search() {
        let cat = catalog(9);
        // Commits 3 minutes after their segment's upload: the database's clock runs ahead.
        let (r, read) = drive(&cat, &Target::Time(at(42)), &|id| Ok(records(&cat, id, 3)));
        assert!(r.recoverable && r.exact, "{r:?}");
        // Segment 4's commit (minute 43) is the first after the target, not segment 5's.
        assert_eq!(
            r.wal.as_ref().unwrap().stop.as_ref().unwrap().xid,
            Some(104)
        );
        assert!(read.contains(&4), "{read:?}");
    }

    #[test]
    fn past_the_last_commit_nothing_is_reached() {
        let cat = catalog(9);
        let (r, read) = drive(&cat, &Target::Time(at(95)), &|id| Ok(records(&cat, id, -5)));
        assert!(!r.recoverable && r.exact, "{r:?}");
        let w = r.wal.unwrap();
        assert_eq!(w.last_transaction.unwrap().xid, Some(109));
        assert_eq!(
            w.latest_time_target,
            Some(at(85) - Duration::microseconds(1))
        );
        assert_eq!(read, vec![9]);
    }

    #[test]
    fn an_unreadable_segment_leaves_the_catalog_verdict_labelled() {
        let cat = catalog(9);
        let (r, _) = drive(&cat, &Target::Time(at(42)), &|id| {
            if id.segno == 5 {
                Err("garbage".to_owned())
            } else {
                Ok(records(&cat, id, -5))
            }
        });
        assert!(!r.exact);
        assert!(
            r.reasons.iter().any(|x| x.starts_with("approximate:")),
            "{r:?}"
        );
        assert_eq!(r.wal.unwrap().unreadable[0].error, "garbage");
    }

    #[test]
    fn damaged_wal_in_the_middle_ends_recovery_there() {
        let cat = catalog(9);
        // Segment 6's valid WAL stops short of its end (a record that does not check).
        let read = |id: SegmentId| {
            let mut r = records(&cat, id, -5);
            if id.segno == 6 {
                r.end = SegmentEnd::Invalid;
            }
            Ok(r)
        };
        // The search starts in segment 6 (uploaded at minute 60), whose commit is at 55.
        let (r, _) = drive(&cat, &Target::Time(at(56)), &read);
        assert!(!r.recoverable && r.exact, "{r:?}");
        assert!(r.reasons[0].contains("does not check"), "{r:?}");
        assert_eq!(r.wal.unwrap().last_transaction.unwrap().xid, Some(106));
        // Before the damage, targets are reached as before.
        let (r, _) = drive(&cat, &Target::Time(at(42)), &read);
        assert!(r.recoverable, "{r:?}");
    }

    #[test]
    fn a_transaction_is_found_by_binary_search() {
        let cat = catalog(400);
        let (r, read) = drive(&cat, &Target::Xid(350), &|id| Ok(records(&cat, id, -5)));
        assert!(r.recoverable && r.exact, "{r:?}");
        assert!(r.requires_backup_id);
        assert_eq!(r.wal.unwrap().stop.unwrap().xid, Some(350));
        assert!(read.len() <= 12, "read {} segments: {read:?}", read.len());
        // An id no transaction of this archive reached: not found where it would end,
        // which is not a proof (a long transaction could end anywhere).
        let (r, read) = drive(&cat, &Target::Xid(9000), &|id| Ok(records(&cat, id, -5)));
        assert!(!r.recoverable && !r.exact, "{r:?}");
        assert!(r.reasons[0].contains("most likely never ended"), "{r:?}");
        assert!(read.len() <= 12);
    }
}
