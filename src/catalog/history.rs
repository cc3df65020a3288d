//! Timeline history files (`0000000N.history`) and the lineage they describe:
//! which timeline owns which range of WAL for a restore that ends on timeline N.

use std::fmt;

use serde::Serialize;

use super::wal::{Lsn, SegmentSize};

/// Largest history file read; each line is one timeline switch.
pub const MAX_HISTORY_BYTES: u64 = 1 << 20;

/// One line: timeline `parent_tli` ended at `switchpoint`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    /// The timeline that ended.
    pub parent_tli: u32,
    /// Where it ended and its child began.
    pub switchpoint: Lsn,
    /// Free text such as `no recovery target specified`.
    pub reason: String,
}

/// A parsed history file of timeline `tli`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct History {
    /// The timeline the file opens.
    pub tli: u32,
    /// Its ancestry, oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// Why a history file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// Not UTF-8.
    #[error("not valid UTF-8")]
    NotUtf8,
    /// A line PostgreSQL would reject.
    #[error("line {line}: {message}")]
    Line {
        /// 1-based line.
        line: usize,
        /// What was wrong.
        message: String,
    },
    /// The file has no switch line (PostgreSQL never writes one without).
    #[error("the file names no parent timeline")]
    Empty,
}

impl History {
    /// Parses the file of timeline `tli`, with PostgreSQL's rules: blank and `#` lines are
    /// skipped, parent timelines increase and stay below `tli`, switchpoints do not go back.
    pub fn parse(tli: u32, bytes: &[u8]) -> Result<History, HistoryError> {
        let text = std::str::from_utf8(bytes).map_err(|_| HistoryError::NotUtf8)?;
        let mut entries: Vec<HistoryEntry> = Vec::new();
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let err = |message: String| HistoryError::Line { line, message };
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let mut fields = t.splitn(2, |c: char| c.is_whitespace());
            let parent_text = fields.next().unwrap_or_default();
            let parent: u32 = parent_text.parse().map_err(|_| {
                err(format!(
                    "`{}` is not a numeric timeline id",
                    parent_text.escape_default()
                ))
            })?;
            let rest = fields.next().unwrap_or_default().trim_start();
            let mut rest_fields = rest.splitn(2, |c: char| c.is_whitespace());
            let lsn_text = rest_fields.next().unwrap_or_default();
            let switchpoint: Lsn = lsn_text.parse().map_err(|_| {
                err(format!(
                    "expected a switchpoint LSN after timeline {parent}, found `{}`",
                    lsn_text.escape_default()
                ))
            })?;
            let reason = rest_fields.next().unwrap_or_default().trim().to_owned();
            if let Some(prev) = entries.last() {
                if parent <= prev.parent_tli {
                    return Err(err(format!(
                        "timeline {parent} follows timeline {}; ids must increase",
                        prev.parent_tli
                    )));
                }
                if switchpoint < prev.switchpoint {
                    return Err(err(format!(
                        "switchpoint {switchpoint} is before the previous one, {}",
                        prev.switchpoint
                    )));
                }
            }
            if parent >= tli {
                return Err(err(format!(
                    "parent timeline {parent} is not below the file's timeline {tli}"
                )));
            }
            entries.push(HistoryEntry {
                parent_tli: parent,
                switchpoint,
                reason,
            });
        }
        if entries.is_empty() {
            return Err(HistoryError::Empty);
        }
        Ok(History { tli, entries })
    }

    /// The lineage a restore ending on this timeline follows.
    #[must_use]
    pub fn lineage(&self) -> Lineage {
        let mut spans = Vec::with_capacity(self.entries.len() + 1);
        let mut begin = Lsn(0);
        for e in &self.entries {
            spans.push(Span {
                tli: e.parent_tli,
                begin,
                end: Some(e.switchpoint),
            });
            begin = e.switchpoint;
        }
        spans.push(Span {
            tli: self.tli,
            begin,
            end: None,
        });
        Lineage { spans }
    }
}

/// A stretch of WAL owned by one timeline within a lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// Timeline.
    pub tli: u32,
    /// First position.
    pub begin: Lsn,
    /// Switchpoint where its child takes over; `None` for the last timeline.
    pub end: Option<Lsn>,
}

/// The timelines a restore replays, oldest first; the last one is the target timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// Spans, oldest first.
    pub spans: Vec<Span>,
}

impl Lineage {
    /// The lineage of timeline 1, which has no history file.
    #[must_use]
    pub fn root() -> Lineage {
        Lineage {
            spans: vec![Span {
                tli: 1,
                begin: Lsn(0),
                end: None,
            }],
        }
    }

    /// A lineage for a timeline whose history is unknown: the timeline alone.
    #[must_use]
    pub fn alone(tli: u32) -> Lineage {
        Lineage {
            spans: vec![Span {
                tli,
                begin: Lsn(0),
                end: None,
            }],
        }
    }

    /// The target timeline.
    #[must_use]
    pub fn target(&self) -> u32 {
        self.spans.last().map_or(1, |s| s.tli)
    }

    /// The span of `tli`, if it is part of this lineage.
    #[must_use]
    pub fn span(&self, tli: u32) -> Option<&Span> {
        self.spans.iter().find(|s| s.tli == tli)
    }

    /// The timeline owning position `lsn`.
    #[must_use]
    pub fn tli_at(&self, lsn: Lsn) -> u32 {
        self.spans
            .iter()
            .find(|s| lsn >= s.begin && s.end.is_none_or(|e| lsn < e))
            .map_or_else(|| self.target(), |s| s.tli)
    }

    /// The timeline whose file PostgreSQL reads for segment `segno`: the newest timeline
    /// that has begun by that segment (a switch segment is read from the child).
    #[must_use]
    pub fn tli_for_segno(&self, size: SegmentSize, segno: u64) -> u32 {
        self.spans
            .iter()
            .rev()
            .find(|s| segno >= size.segno(s.begin))
            .map_or(1, |s| s.tli)
    }

    /// The segment ranges (inclusive) each timeline supplies between `from` and `to`.
    #[must_use]
    pub fn segment_plan(&self, size: SegmentSize, from: u64, to: u64) -> Vec<(u32, u64, u64)> {
        let mut plan: Vec<(u32, u64, u64)> = Vec::new();
        if from > to {
            return plan;
        }
        // Boundaries where the file timeline changes.
        let mut seg = from;
        while seg <= to {
            let tli = self.tli_for_segno(size, seg);
            // Next boundary: the start segment of the next span whose start is > seg.
            let next_start = self
                .spans
                .iter()
                .map(|s| size.segno(s.begin))
                .filter(|&b| b > seg)
                .min();
            let end = next_start.map_or(to, |n| to.min(n - 1));
            match plan.last_mut() {
                Some(last) if last.0 == tli && last.2 + 1 == seg => last.2 = end,
                _ => plan.push((tli, seg, end)),
            }
            if end == u64::MAX {
                break;
            }
            seg = end + 1;
        }
        plan
    }
}

impl fmt::Display for Lineage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.spans.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            write!(f, "{}", s.tli)?;
            if let Some(end) = s.end {
                write!(f, " (until {end})")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example() {
        let text = "1\t0/5A0000A0\tno recovery target specified\n\n2\t3/98000120\tno recovery target specified\n";
        let h = History::parse(3, text.as_bytes()).unwrap();
        assert_eq!(h.entries.len(), 2);
        assert_eq!(h.entries[1].switchpoint, Lsn(0x3_9800_0120));
        let l = h.lineage();
        assert_eq!(l.target(), 3);
        assert_eq!(l.tli_at(Lsn(0x5A00_009F)), 1);
        assert_eq!(l.tli_at(Lsn(0x5A00_00A0)), 2);
        assert_eq!(l.tli_at(Lsn(0x4_0000_0000)), 3);
        let size = SegmentSize::default();
        // Segment 0x5A holds the switch from 1 to 2: it is read from timeline 2.
        assert_eq!(l.tli_for_segno(size, 0x59), 1);
        assert_eq!(l.tli_for_segno(size, 0x5A), 2);
        assert_eq!(l.tli_for_segno(size, 0x397), 2);
        assert_eq!(l.tli_for_segno(size, 0x398), 3);
        assert_eq!(
            l.segment_plan(size, 0x50, 0x3A0),
            vec![(1, 0x50, 0x59), (2, 0x5A, 0x397), (3, 0x398, 0x3A0)]
        );
        assert_eq!(l.segment_plan(size, 0x60, 0x61), vec![(2, 0x60, 0x61)]);
    }

    #[test]
    fn comments_and_lenient_whitespace() {
        let text = "# comment\n  1 0/3000000 reason with\ttabs\n";
        let h = History::parse(2, text.as_bytes()).unwrap();
        assert_eq!(h.entries[0].reason, "reason with\ttabs");
    }

    #[test]
    fn bad_files_name_the_line() {
        assert_eq!(History::parse(2, b"").unwrap_err(), HistoryError::Empty);
        let e = History::parse(2, b"x\t0/1\tr\n").unwrap_err();
        assert!(matches!(e, HistoryError::Line { line: 1, .. }), "{e}");
        let e = History::parse(3, b"1\t0/5\tr\n1\t0/6\tr\n").unwrap_err();
        assert!(matches!(e, HistoryError::Line { line: 2, .. }), "{e}");
        let e = History::parse(3, b"1\t0/5\tr\n2\t0/4\tr\n").unwrap_err();
        assert!(e.to_string().contains("before"), "{e}");
        let e = History::parse(2, b"2\t0/5\tr\n").unwrap_err();
        assert!(e.to_string().contains("not below"), "{e}");
        let e = History::parse(2, b"1\tnope\tr\n").unwrap_err();
        assert!(e.to_string().contains("switchpoint"), "{e}");
        assert_eq!(
            History::parse(2, b"\xff").unwrap_err(),
            HistoryError::NotUtf8
        );
    }
}
