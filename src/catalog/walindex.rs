//! The archived WAL of one server as sorted numbers per timeline, with the
//! queries the analysis needs: presence, contiguous runs, first gap, and a
//! walk along a timeline lineage. Contiguity of a range is decided by binary
//! search, so a run of a million segments costs microseconds.

use std::collections::BTreeMap;

use super::history::Lineage;
use super::listing::WalObject;
use super::names::{Compression, WalKind};
use super::wal::{SegmentId, SegmentSize};

/// One archived segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Segment number.
    pub segno: u64,
    /// Upload time, Unix milliseconds.
    pub last_modified: i64,
    /// Object size.
    pub size: u64,
    /// Compression.
    pub compression: Compression,
}

/// The WAL files of one timeline.
#[derive(Debug, Clone, Default)]
pub struct TimelineWal {
    /// Complete segments, sorted by segment number, unique.
    pub segments: Vec<SegmentEntry>,
    /// `.partial` files, sorted.
    pub partials: Vec<SegmentEntry>,
    /// Backup history files: segment number and start offset.
    pub backup_files: Vec<(u64, u32)>,
}

impl TimelineWal {
    fn position(&self, segno: u64) -> Result<usize, usize> {
        self.segments.binary_search_by_key(&segno, |e| e.segno)
    }

    /// Whether segment `segno` is archived.
    #[must_use]
    pub fn has(&self, segno: u64) -> bool {
        self.position(segno).is_ok()
    }

    /// The `.partial` file of segment `segno`.
    #[must_use]
    pub fn partial(&self, segno: u64) -> Option<&SegmentEntry> {
        self.partials
            .binary_search_by_key(&segno, |e| e.segno)
            .ok()
            .map(|i| &self.partials[i])
    }

    /// The entry of segment `segno`.
    #[must_use]
    pub fn get(&self, segno: u64) -> Option<&SegmentEntry> {
        self.position(segno).ok().map(|i| &self.segments[i])
    }

    /// The last segment of the unbroken run that starts at `from`, not past `to`;
    /// `None` when `from` itself is missing.
    #[must_use]
    pub fn run_end(&self, from: u64, to: u64) -> Option<u64> {
        let i = self.position(from).ok()?;
        let max_k = usize::try_from(to - from)
            .unwrap_or(usize::MAX)
            .min(self.segments.len() - 1 - i);
        // segments[i + k].segno == from + k holds for a prefix of k: segment numbers are
        // strictly increasing, so once one is skipped every later one is ahead.
        let (mut lo, mut hi) = (0usize, max_k);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.segments[i + mid].segno == from + mid as u64 {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Some(from + lo as u64)
    }

    /// The first archived segment after `segno`.
    #[must_use]
    pub fn next_after(&self, segno: u64) -> Option<u64> {
        let i = match self.position(segno) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        self.segments.get(i).map(|e| e.segno)
    }

    /// The newest archived segment.
    #[must_use]
    pub fn head(&self) -> Option<u64> {
        self.segments.last().map(|e| e.segno)
    }

    /// Entries with segment numbers in `from..=to`.
    #[must_use]
    pub fn range(&self, from: u64, to: u64) -> &[SegmentEntry] {
        let a = self.position(from).unwrap_or_else(|i| i);
        let b = match self.position(to) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        if a >= b { &[] } else { &self.segments[a..b] }
    }

    /// Maximal unbroken runs, as inclusive `(first, last)` pairs.
    #[must_use]
    pub fn runs(&self) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut i = 0;
        while i < self.segments.len() {
            let first = self.segments[i].segno;
            let last = self.run_end(first, u64::MAX).unwrap_or(first);
            runs.push((first, last));
            i += usize::try_from(last - first).unwrap_or(usize::MAX) + 1;
        }
        runs
    }
}

/// Where a walk along a lineage stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEnd {
    /// Every requested segment is archived.
    Complete,
    /// The walk had no stop and ran to the newest archived segment of the lineage.
    Head,
    /// `missing` is needed and absent; `later` is the next archived segment after it on the lineage.
    Missing {
        /// First absent segment.
        missing: SegmentId,
        /// The next archived one, if any.
        later: Option<SegmentId>,
    },
}

/// Result of [`WalIndex::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// The last segment of the unbroken stretch from the start; `None` when the first is missing.
    pub last: Option<SegmentId>,
    /// Why the walk ended.
    pub end: WalkEnd,
    /// `last` is a `.partial` file: the end of a timeline that a newer one replaced.
    /// barman-cloud-wal-restore hands it out when no complete segment of that name
    /// exists, so a restore that ends on that timeline replays it.
    pub partial_tail: bool,
}

impl Walk {
    fn new(last: Option<SegmentId>, end: WalkEnd) -> Walk {
        Walk {
            last,
            end,
            partial_tail: false,
        }
    }
}

/// All archived WAL of a server.
#[derive(Debug, Clone, Default)]
pub struct WalIndex {
    /// Segment size the names were read with.
    pub size: SegmentSize,
    /// Per timeline.
    pub timelines: BTreeMap<u32, TimelineWal>,
}

/// Objects that could not be placed into the index.
#[derive(Debug, Clone, Default)]
pub struct IndexRejects {
    /// Names whose segment field is out of range for the segment size.
    pub invalid_for_size: Vec<String>,
    /// Segments archived twice with different compressions (name, first compression, second).
    pub duplicates: Vec<(String, Compression, Compression)>,
    /// Files in the wrong hash directory (barman-cloud-wal-restore will not find them).
    pub misplaced: Vec<String>,
    /// Uncompressed segments whose size is not the segment size (left out: treated as missing).
    pub wrong_size: Vec<(String, u64)>,
}

impl WalIndex {
    /// Builds the index from listed WAL objects.
    #[must_use]
    pub fn build(objects: &[WalObject], size: SegmentSize) -> (WalIndex, IndexRejects) {
        let mut rejects = IndexRejects::default();
        let mut timelines: BTreeMap<u32, TimelineWal> = BTreeMap::new();
        for o in objects {
            let Some(id) = o.name.raw.resolve(size) else {
                rejects.invalid_for_size.push(o.name.to_string());
                continue;
            };
            if o.misplaced {
                // barman-cloud-wal-restore looks only in the hash directory the name implies.
                rejects.misplaced.push(o.name.to_string());
                continue;
            }
            let entry = SegmentEntry {
                segno: id.segno,
                last_modified: o.last_modified,
                size: o.size,
                compression: o.name.compression,
            };
            let tl = timelines.entry(id.tli).or_default();
            match o.name.kind {
                WalKind::Segment => {
                    // PostgreSQL refuses a segment of the wrong size ("has wrong size"):
                    // such an object is as good as missing.
                    if o.name.compression == Compression::None && o.size != size.bytes() {
                        rejects.wrong_size.push((o.name.to_string(), o.size));
                        continue;
                    }
                    tl.segments.push(entry);
                }
                WalKind::Partial => tl.partials.push(entry),
                WalKind::BackupHistory { offset } => tl.backup_files.push((id.segno, offset)),
            }
        }
        for (tli, tl) in &mut timelines {
            tl.segments
                .sort_unstable_by_key(|e| (e.segno, e.compression));
            let mut deduped: Vec<SegmentEntry> = Vec::with_capacity(tl.segments.len());
            for e in tl.segments.drain(..) {
                match deduped.last() {
                    // barman keys its WAL map by the name without suffix: one copy survives.
                    Some(prev) if prev.segno == e.segno => {
                        rejects.duplicates.push((
                            size.name(*tli, e.segno),
                            prev.compression,
                            e.compression,
                        ));
                    }
                    _ => deduped.push(e),
                }
            }
            tl.segments = deduped;
            tl.partials.sort_unstable_by_key(|e| e.segno);
            tl.backup_files.sort_unstable();
        }
        (WalIndex { size, timelines }, rejects)
    }

    /// The WAL of timeline `tli`.
    #[must_use]
    pub fn timeline(&self, tli: u32) -> Option<&TimelineWal> {
        self.timelines.get(&tli)
    }

    /// Whether segment `id` is archived.
    #[must_use]
    pub fn has(&self, id: SegmentId) -> bool {
        self.timeline(id.tli).is_some_and(|t| t.has(id.segno))
    }

    /// Upload time of segment `id`.
    #[must_use]
    pub fn last_modified(&self, id: SegmentId) -> Option<i64> {
        let tl = self.timeline(id.tli)?;
        tl.get(id.segno)
            .or_else(|| tl.partial(id.segno))
            .map(|e| e.last_modified)
    }

    /// The name of the last file of a walk, with `.partial` when it is one.
    #[must_use]
    pub fn walk_end_name(&self, walk: &Walk) -> Option<String> {
        walk.last.map(|l| {
            if walk.partial_tail {
                format!("{}.partial", self.name(l))
            } else {
                self.name(l)
            }
        })
    }

    /// The segment name of `id`.
    #[must_use]
    pub fn name(&self, id: SegmentId) -> String {
        self.size.name(id.tli, id.segno)
    }

    /// Walks the lineage from segment `start` up to `stop` (inclusive), or to the newest
    /// archived segment when `stop` is `None`, following the timeline PostgreSQL would read
    /// each segment from.
    #[must_use]
    pub fn walk(&self, lineage: &Lineage, start: u64, stop: Option<u64>) -> Walk {
        let plan = lineage.segment_plan(self.size, start, stop.unwrap_or(u64::MAX));
        let empty = TimelineWal::default();
        let mut last = None;
        for (idx, &(tli, from, to)) in plan.iter().enumerate() {
            let final_open = stop.is_none() && idx + 1 == plan.len();
            let run_end = self.timeline(tli).unwrap_or(&empty).run_end(from, to);
            let missing = match run_end {
                Some(end) if end == to => {
                    last = Some(SegmentId { tli, segno: end });
                    continue;
                }
                Some(end) => {
                    last = Some(SegmentId { tli, segno: end });
                    end + 1
                }
                None => from,
            };
            let later = self.first_present_from(&plan[idx..], missing);
            // The last file a restore ending on this timeline needs can be its `.partial`.
            let final_span = idx + 1 == plan.len();
            if final_span
                && later.is_none()
                && (stop.is_none() || stop == Some(missing))
                && self
                    .timeline(tli)
                    .and_then(|t| t.partial(missing))
                    .is_some()
            {
                let end = if stop.is_none() {
                    WalkEnd::Head
                } else {
                    WalkEnd::Complete
                };
                return Walk {
                    last: Some(SegmentId {
                        tli,
                        segno: missing,
                    }),
                    end,
                    partial_tail: true,
                };
            }
            if final_open && later.is_none() && last.is_some() {
                return Walk::new(last, WalkEnd::Head);
            }
            return Walk::new(
                last,
                WalkEnd::Missing {
                    missing: SegmentId {
                        tli,
                        segno: missing,
                    },
                    later,
                },
            );
        }
        Walk::new(last, WalkEnd::Complete)
    }

    /// The first archived segment at or after `segno` on the rest of a plan.
    fn first_present_from(&self, plan: &[(u32, u64, u64)], segno: u64) -> Option<SegmentId> {
        plan.iter()
            .filter(|&&(_, _, to)| to >= segno)
            .find_map(|&(tli, from, to)| {
                let tl = self.timeline(tli)?;
                tl.range(from.max(segno), to).first().map(|e| SegmentId {
                    tli,
                    segno: e.segno,
                })
            })
    }

    /// The first segment between `start` and `last` (inclusive) along the lineage whose
    /// upload time is later than `t` (Unix milliseconds).
    #[must_use]
    pub fn first_uploaded_after(
        &self,
        lineage: &Lineage,
        walk_start: u64,
        walk: &Walk,
        t: i64,
    ) -> Option<String> {
        let last = walk.last?;
        let full_to = if walk.partial_tail {
            last.segno.checked_sub(1)
        } else {
            Some(last.segno)
        };
        if let Some(full_to) = full_to.filter(|&f| f >= walk_start) {
            for (tli, from, to) in lineage.segment_plan(self.size, walk_start, full_to) {
                if let Some(tl) = self.timeline(tli)
                    && let Some(e) = tl.range(from, to).iter().find(|e| e.last_modified > t)
                {
                    return Some(self.name(SegmentId {
                        tli,
                        segno: e.segno,
                    }));
                }
            }
        }
        (walk.partial_tail && self.last_modified(last).is_some_and(|lm| lm > t))
            .then(|| format!("{}.partial", self.name(last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::history::History;
    use crate::catalog::names::WalFileName;

    fn obj(name: &str, lm: i64) -> WalObject {
        WalObject {
            name: WalFileName::parse(name).unwrap(),
            size: 16 << 20,
            last_modified: lm,
            misplaced: false,
        }
    }

    fn index(names: &[&str]) -> WalIndex {
        let objects: Vec<WalObject> = names
            .iter()
            .enumerate()
            .map(|(i, n)| obj(n, i64::try_from(i).unwrap()))
            .collect();
        WalIndex::build(&objects, SegmentSize::default()).0
    }

    #[test]
    fn run_end_and_runs() {
        let tl = TimelineWal {
            segments: [1u64, 2, 3, 5, 6, 9]
                .iter()
                .map(|&s| SegmentEntry {
                    segno: s,
                    last_modified: 0,
                    size: 0,
                    compression: Compression::None,
                })
                .collect(),
            ..TimelineWal::default()
        };
        assert_eq!(tl.run_end(1, u64::MAX), Some(3));
        assert_eq!(tl.run_end(1, 2), Some(2));
        assert_eq!(tl.run_end(5, 100), Some(6));
        assert_eq!(tl.run_end(9, 100), Some(9));
        assert_eq!(tl.run_end(4, 100), None);
        assert_eq!(tl.runs(), vec![(1, 3), (5, 6), (9, 9)]);
        assert_eq!(tl.next_after(3), Some(5));
        assert_eq!(tl.next_after(4), Some(5));
        assert_eq!(tl.range(2, 6).len(), 4);
    }

    #[test]
    fn walk_over_a_gap_and_to_the_head() {
        let idx = index(&[
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000004",
        ]);
        let l = Lineage::root();
        let w = idx.walk(&l, 1, None);
        assert_eq!(w.last, Some(SegmentId { tli: 1, segno: 2 }));
        assert_eq!(
            w.end,
            WalkEnd::Missing {
                missing: SegmentId { tli: 1, segno: 3 },
                later: Some(SegmentId { tli: 1, segno: 4 })
            }
        );
        assert_eq!(idx.walk(&l, 1, Some(2)).end, WalkEnd::Complete);
        assert_eq!(idx.walk(&l, 4, None).end, WalkEnd::Head);
        let w = idx.walk(&l, 4, Some(6));
        assert_eq!(
            w.end,
            WalkEnd::Missing {
                missing: SegmentId { tli: 1, segno: 5 },
                later: None
            }
        );
    }

    #[test]
    fn walk_crosses_a_timeline_switch() {
        // Timeline 2 forked inside segment 3: segments 1-2 come from timeline 1, 3 on from 2.
        let idx = index(&[
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000003.partial",
            "000000010000000000000004", // written by the old primary after the fork: off-history
            "000000020000000000000003",
            "000000020000000000000004",
        ]);
        let h = History::parse(2, b"1\t0/3000100\tno recovery target specified\n").unwrap();
        let w = idx.walk(&h.lineage(), 1, None);
        assert_eq!(w.end, WalkEnd::Head);
        assert_eq!(w.last, Some(SegmentId { tli: 2, segno: 4 }));
        // Without timeline 2's first segment the walk stops there, even though
        // timeline 1 has a segment 3 partial and an off-history segment 4.
        let idx = index(&[
            "000000010000000000000001",
            "000000010000000000000002",
            "000000010000000000000004",
            "000000020000000000000004",
        ]);
        let w = idx.walk(&h.lineage(), 1, None);
        assert_eq!(
            w.end,
            WalkEnd::Missing {
                missing: SegmentId { tli: 2, segno: 3 },
                later: Some(SegmentId { tli: 2, segno: 4 })
            }
        );
    }

    #[test]
    fn duplicates_and_wrong_sizes_are_reported() {
        let objects = vec![
            obj("000000010000000000000001", 0),
            obj("000000010000000000000001.gz", 0),
            WalObject {
                size: 5,
                ..obj("000000010000000000000002", 0)
            },
        ];
        let (idx, rejects) = WalIndex::build(&objects, SegmentSize::default());
        // The short uncompressed segment 2 counts as missing.
        assert_eq!(idx.timeline(1).unwrap().segments.len(), 1);
        assert!(!idx.has(SegmentId { tli: 1, segno: 2 }));
        assert_eq!(
            rejects.duplicates,
            vec![(
                "000000010000000000000001".to_owned(),
                Compression::None,
                Compression::Gzip
            )]
        );
        assert_eq!(
            rejects.wrong_size,
            vec![("000000010000000000000002".to_owned(), 5)]
        );
    }
}
