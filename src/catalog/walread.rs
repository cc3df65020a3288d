//! Reads the records of one WAL segment, far enough to know what a restore
//! can reach: commits and aborts with their times and xids, restore points
//! with their names, end-of-recovery records, and where the segment's valid
//! WAL ends. PostgreSQL 13 to 17; other page versions are refused by name.
//!
//! The layout (page headers, `XLogRecord`, block references, the data
//! headers, the xact and xlog main data) follows PostgreSQL's
//! `access/xlog_internal.h` and `access/xlogrecord.h`. Every record's CRC-32C
//! is checked: a record that does not check is where the valid WAL ends.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::wal::Lsn;

/// Why a segment cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalError {
    /// Shorter than one page header.
    #[error("{0} bytes is too short for a WAL segment")]
    TooShort(usize),
    /// A page magic of a PostgreSQL version this reader does not know.
    #[error("page magic {0:#06X} is not a WAL format of PostgreSQL 13 to 17")]
    UnsupportedVersion(u16),
    /// The first page has no long header.
    #[error("the first page has no long header: not the start of a segment")]
    NoLongHeader,
    /// A page header that does not belong to this segment.
    #[error("page {page} says it is at {found}, expected {expected}")]
    PageAddress {
        /// Page number in the segment.
        page: usize,
        /// What the header says.
        found: Lsn,
        /// Where it should be.
        expected: Lsn,
    },
    /// Segment or page size out of range.
    #[error("{0}")]
    Sizes(String),
}

/// A transaction's end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XactEnd {
    /// Where the record starts.
    pub lsn: Lsn,
    /// Where it ends (what `recovery_target_lsn` must pass to include it).
    pub end_lsn: Lsn,
    /// The transaction: the record's own xid, or for COMMIT/ROLLBACK PREPARED the
    /// prepared transaction's (what `recovery_target_xid` is compared with).
    pub xid: u32,
    /// The commit or abort time PostgreSQL recorded.
    pub time: DateTime<Utc>,
    /// Committed (else aborted).
    pub committed: bool,
    /// A two-phase COMMIT/ROLLBACK PREPARED.
    pub prepared: bool,
}

/// A named restore point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePoint {
    /// Where the record starts.
    pub lsn: Lsn,
    /// Its name.
    pub name: String,
    /// When it was created.
    pub time: DateTime<Utc>,
}

/// Where the valid WAL of a segment ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentEnd {
    /// An `XLOG_SWITCH` record: the rest of the segment is unused.
    Switch,
    /// The last record continues in the next segment.
    ContinuesInNext,
    /// Zeros or a record that does not check (the end of written WAL, or damage).
    Invalid,
}

/// What one segment holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecords {
    /// PostgreSQL major version of the page format.
    pub pg_major: u32,
    /// System identifier from the long page header.
    pub system_id: u64,
    /// Timeline of the first page.
    pub timeline: u32,
    /// Start of the segment.
    pub start: Lsn,
    /// Records read whole.
    pub records: usize,
    /// Commits and aborts, in WAL order.
    pub xacts: Vec<XactEnd>,
    /// Restore points, in WAL order.
    pub restore_points: Vec<RestorePoint>,
    /// End-of-recovery records (a promotion): the new and the previous timeline.
    pub end_of_recovery: Vec<(Lsn, u32, u32)>,
    /// Where the last record read whole starts.
    pub last_record_lsn: Option<Lsn>,
    /// The end of the last record read whole.
    pub end_lsn: Lsn,
    /// How the segment ends.
    pub end: SegmentEnd,
    /// Bytes at the start that continue a record from the previous segment.
    pub continued_bytes: u32,
    /// Whether the record those bytes finish was read, with the previous segment's tail.
    #[serde(default)]
    pub continued_read: bool,
    /// The record that goes on in the next segment, when it does.
    pub tail: Option<Tail>,
    /// The bytes that finish the previous segment's last record (up to
    /// [`TAIL_KEEP`]), for [`join_tail`].
    #[serde(default, with = "hex_bytes")]
    pub head: Vec<u8>,
    /// Where those bytes end.
    #[serde(default)]
    pub head_end: Option<Lsn>,
}

impl SegmentRecords {
    /// Nothing read yet, from `start` on.
    fn empty(pg_major: u32, system_id: u64, timeline: u32, start: Lsn) -> SegmentRecords {
        SegmentRecords {
            pg_major,
            system_id,
            timeline,
            start,
            records: 0,
            xacts: Vec::new(),
            restore_points: Vec::new(),
            end_of_recovery: Vec::new(),
            last_record_lsn: None,
            end_lsn: start,
            end: SegmentEnd::Invalid,
            continued_bytes: 0,
            continued_read: false,
            tail: None,
            head: Vec::new(),
            head_end: None,
        }
    }
}

impl Tail {
    /// Whether the record can be one this reader extracts (a transaction's
    /// end or a restore point): its resource manager is in the header.
    #[must_use]
    pub fn may_matter(&self) -> bool {
        self.bytes
            .get(17)
            .is_some_and(|&rm| rm == RM_XACT_ID || rm == RM_XLOG_ID)
    }
}

/// The record `tail` began, finished by the first bytes of `next` (the
/// segment after it): what it holds, as a segment of one record. `None`
/// when they do not make one whole, checked record.
#[must_use]
pub fn join_tail(tail: &Tail, next: &SegmentRecords) -> Option<SegmentRecords> {
    if tail.bytes.is_empty()
        || next.head.len() != next.continued_bytes as usize
        || tail.bytes.len() + next.head.len() != tail.total as usize
    {
        return None;
    }
    let mut rec = tail.bytes.clone();
    rec.extend_from_slice(&next.head);
    if !crc_ok(&rec) {
        return None;
    }
    let mut out = SegmentRecords::empty(next.pg_major, next.system_id, next.timeline, tail.lsn);
    decode(&mut out, &rec, tail.lsn, next.head_end?, next.pg_major);
    Some(out)
}

/// The first part of a record that continues in the next segment: what
/// [`read_segment_after`] needs to read it whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// Where the record starts.
    pub lsn: Lsn,
    /// Its whole length.
    pub total: u32,
    /// The bytes in this segment, page headers taken out; empty when the
    /// record is too long to keep ([`TAIL_KEEP`]): such a record is never a
    /// commit, an abort or a restore point.
    #[serde(with = "hex_bytes")]
    pub bytes: Vec<u8>,
}

/// Records longer than this are not carried into the next segment. Commit and
/// abort records are a few dozen bytes, unless they list thousands of
/// subtransactions, dropped relations or invalidations.
pub const TAIL_KEEP: usize = 64 * 1024;

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        use std::fmt::Write;
        let mut out = String::with_capacity(b.len() * 2);
        for x in b {
            let _ = write!(out, "{x:02x}");
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16)
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
const XLP_LONG_HEADER: u16 = 0x0002;
const SHORT_HEADER: usize = 24;
const LONG_HEADER: usize = 40;
const RECORD_HEADER: usize = 24;

const RM_XLOG_ID: u8 = 0;
const RM_XACT_ID: u8 = 1;
const XLOG_SWITCH: u8 = 0x40;
const XLOG_RESTORE_POINT: u8 = 0x70;
const XLOG_END_OF_RECOVERY: u8 = 0x90;
const XLOG_XACT_OPMASK: u8 = 0x70;
const XLOG_XACT_COMMIT: u8 = 0x00;
const XLOG_XACT_ABORT: u8 = 0x20;
const XLOG_XACT_COMMIT_PREPARED: u8 = 0x30;
const XLOG_XACT_ABORT_PREPARED: u8 = 0x40;

const BKPBLOCK_HAS_IMAGE: u8 = 0x10;
const BKPBLOCK_SAME_REL: u8 = 0x80;
const XLR_MAX_BLOCK_ID: u8 = 32;
const XLR_BLOCK_ID_DATA_SHORT: u8 = 255;
const XLR_BLOCK_ID_DATA_LONG: u8 = 254;
const XLR_BLOCK_ID_ORIGIN: u8 = 253;
const XLR_BLOCK_ID_TOPLEVEL_XID: u8 = 252;

/// The PostgreSQL major version of a page magic.
#[must_use]
pub fn major_of_magic(magic: u16) -> Option<u32> {
    match magic {
        0xD106 => Some(13),
        0xD10D => Some(14),
        0xD110 => Some(15),
        0xD113 => Some(16),
        0xD116 => Some(17),
        _ => None,
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// PostgreSQL's `TimestampTz`: microseconds since 2000-01-01 00:00 UTC.
fn pg_time(micros: i64) -> Option<DateTime<Utc>> {
    const EPOCH_2000: i64 = 946_684_800;
    let secs = micros.div_euclid(1_000_000) + EPOCH_2000;
    let nanos = u32::try_from(micros.rem_euclid(1_000_000) * 1000).ok()?;
    Utc.timestamp_opt(secs, nanos).single()
}

/// CRC-32C (Castagnoli), as PostgreSQL computes `xl_crc`.
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    const fn table() -> [u32; 256] {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    }
    const TABLE: [u32; 256] = table();
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

/// The segment with its page headers taken out, and where each page's
/// payload starts in it and in LSN space.
struct Payload {
    bytes: Vec<u8>,
    /// Per page: (payload offset, LSN of the first payload byte).
    pages: Vec<(usize, u64)>,
}

impl Payload {
    fn lsn(&self, offset: usize) -> Lsn {
        let i = self.pages.partition_point(|(o, _)| *o <= offset) - 1;
        let (o, l) = self.pages[i];
        Lsn(l + (offset - o) as u64)
    }
}

/// Reads `segment` (its bytes, decompressed), which starts at `start`. A
/// record that began in the previous segment is skipped: see
/// [`read_segment_after`].
pub fn read_segment(segment: &[u8], start: Lsn) -> Result<SegmentRecords, WalError> {
    read_segment_after(segment, start, None)
}

/// Reads `segment` like [`read_segment`]; with the previous segment's
/// [`Tail`], the record that continues into this segment is read whole too.
pub fn read_segment_after(
    segment: &[u8],
    start: Lsn,
    previous: Option<&Tail>,
) -> Result<SegmentRecords, WalError> {
    if segment.len() < LONG_HEADER {
        return Err(WalError::TooShort(segment.len()));
    }
    let magic = u16_at(segment, 0).unwrap_or(0);
    let pg_major = major_of_magic(magic).ok_or(WalError::UnsupportedVersion(magic))?;
    let info = u16_at(segment, 2).unwrap_or(0);
    if info & XLP_LONG_HEADER == 0 {
        return Err(WalError::NoLongHeader);
    }
    let timeline = u32_at(segment, 4).unwrap_or(0);
    let continued_bytes = if info & XLP_FIRST_IS_CONTRECORD != 0 {
        u32_at(segment, 16).unwrap_or(0)
    } else {
        0
    };
    let system_id = u64_at(segment, 24).unwrap_or(0);
    let seg_size = u32_at(segment, 32).unwrap_or(0) as usize;
    let page_size = u32_at(segment, 36).unwrap_or(0) as usize;
    if !(page_size.is_power_of_two() && (1024..=65_536).contains(&page_size)) {
        return Err(WalError::Sizes(format!(
            "page size {page_size} is not a WAL block size"
        )));
    }
    if !(seg_size.is_power_of_two() && seg_size >= page_size) {
        return Err(WalError::Sizes(format!(
            "segment size {seg_size} is not a WAL segment size"
        )));
    }
    // A segment may be shorter than its size when it was cut off: read what is there.
    let len = segment.len().min(seg_size) / page_size * page_size;
    let mut payload = Payload {
        bytes: Vec::with_capacity(len),
        pages: Vec::with_capacity(len / page_size),
    };
    // The whole segment must fit below the end of the LSN space.
    if start.0.checked_add(seg_size as u64).is_none() {
        return Err(WalError::Sizes(format!(
            "a {seg_size}-byte segment cannot start at {start}"
        )));
    }
    for (i, page) in segment[..len].chunks_exact(page_size).enumerate() {
        let page_lsn = start.0 + (i * page_size) as u64;
        let info = u16_at(page, 2).unwrap_or(0);
        let header = if info & XLP_LONG_HEADER != 0 {
            LONG_HEADER
        } else {
            SHORT_HEADER
        };
        let addr = u64_at(page, 8).unwrap_or(0);
        let page_magic = u16_at(page, 0).unwrap_or(0);
        if page_magic != magic || addr != page_lsn {
            if i == 0 {
                return Err(WalError::PageAddress {
                    page: i,
                    found: Lsn(addr),
                    expected: Lsn(page_lsn),
                });
            }
            // An unused (zero) or recycled page: the written WAL ended before it.
            break;
        }
        payload
            .pages
            .push((payload.bytes.len(), page_lsn + header as u64));
        payload.bytes.extend_from_slice(&page[header..]);
    }
    let whole = payload.pages.len() * page_size == seg_size;
    let mut out = SegmentRecords::empty(pg_major, system_id, timeline, start);
    out.continued_bytes = continued_bytes;
    let b = &payload.bytes;
    // The record the previous segment began, finished by this one's first bytes.
    let cont = continued_bytes as usize;
    if cont > 0 && cont <= b.len() {
        out.head_end = Some(Lsn(payload.lsn(cont - 1).0 + 1));
        if cont <= TAIL_KEEP {
            out.head = b[..cont].to_vec();
        }
    }
    if let Some(prev) = previous
        && cont > 0
        && !prev.bytes.is_empty()
        && prev.bytes.len() + cont == prev.total as usize
        && cont <= b.len()
    {
        let mut rec = prev.bytes.clone();
        rec.extend_from_slice(&b[..cont]);
        if crc_ok(&rec) {
            let end = payload.lsn(cont - 1).0 + 1;
            out.continued_read = true;
            if decode(&mut out, &rec, prev.lsn, Lsn(end), pg_major) {
                return Ok(out);
            }
        }
    }
    // The first record starts after what continues from the previous segment.
    let mut at = align8(cont);
    loop {
        if at + 4 > b.len() {
            if whole {
                out.end = SegmentEnd::ContinuesInNext;
            }
            break;
        }
        let tot_len = u32_at(b, at).unwrap_or(0) as usize;
        if tot_len < RECORD_HEADER {
            break;
        }
        if at + tot_len > b.len() {
            // Past the last valid page: the record goes on in the next
            // segment only when every page of this one was read.
            if whole {
                out.end = SegmentEnd::ContinuesInNext;
                out.tail = Some(Tail {
                    lsn: payload.lsn(at),
                    total: u32::try_from(tot_len).unwrap_or(u32::MAX),
                    bytes: if tot_len <= TAIL_KEEP {
                        b[at..].to_vec()
                    } else {
                        Vec::new()
                    },
                });
            }
            break;
        }
        let rec = &b[at..at + tot_len];
        if !crc_ok(rec) {
            break;
        }
        let lsn = payload.lsn(at);
        let end = payload.lsn(at + tot_len - 1).0 + 1;
        if decode(&mut out, rec, lsn, Lsn(end), pg_major) {
            break;
        }
        at = align8(at + tot_len);
    }
    Ok(out)
}

/// Whether a whole record's CRC-32C checks: the data first, then the header
/// up to the CRC field.
fn crc_ok(rec: &[u8]) -> bool {
    let crc = crc32c_update(!0, &rec[RECORD_HEADER..]);
    let crc = !crc32c_update(crc, &rec[..20]);
    crc == u32_at(rec, 20).unwrap_or(0)
}

/// Takes one whole, checked record into `out`; true when it ends the segment
/// (a switch).
fn decode(out: &mut SegmentRecords, rec: &[u8], lsn: Lsn, end: Lsn, pg_major: u32) -> bool {
    out.records += 1;
    out.last_record_lsn = Some(lsn);
    out.end_lsn = end;
    let rmid = rec[17];
    let info = rec[16];
    let xid = u32_at(rec, 4).unwrap_or(0);
    let main = main_data(rec, pg_major);
    match (rmid, info & 0xF0) {
        (RM_XLOG_ID, XLOG_SWITCH) => {
            out.end = SegmentEnd::Switch;
            return true;
        }
        (RM_XLOG_ID, XLOG_RESTORE_POINT) => {
            if let Some(m) = main
                && let Some(time) = i64_at(m, 0).and_then(pg_time)
            {
                let name = m.get(8..).unwrap_or_default();
                let name = name.split(|c| *c == 0).next().unwrap_or_default();
                out.restore_points.push(RestorePoint {
                    lsn,
                    name: String::from_utf8_lossy(name).into_owned(),
                    time,
                });
            }
        }
        (RM_XLOG_ID, XLOG_END_OF_RECOVERY) => {
            if let Some(m) = main {
                out.end_of_recovery.push((
                    lsn,
                    u32_at(m, 8).unwrap_or(0),
                    u32_at(m, 12).unwrap_or(0),
                ));
            }
        }
        (RM_XACT_ID, _) => {
            let op = info & XLOG_XACT_OPMASK;
            let kind = match op {
                XLOG_XACT_COMMIT => Some((true, false)),
                XLOG_XACT_ABORT => Some((false, false)),
                XLOG_XACT_COMMIT_PREPARED => Some((true, true)),
                XLOG_XACT_ABORT_PREPARED => Some((false, true)),
                _ => None,
            };
            if let (Some((committed, prepared)), Some(m)) = (kind, main)
                && let Some(time) = i64_at(m, 0).and_then(pg_time)
            {
                let xid = if prepared {
                    twophase_xid(m, info, committed, pg_major).unwrap_or(0)
                } else {
                    xid
                };
                out.xacts.push(XactEnd {
                    lsn,
                    end_lsn: end,
                    xid,
                    time,
                    committed,
                    prepared,
                });
            }
        }
        _ => {}
    }
    false
}

const XLOG_XACT_HAS_INFO: u8 = 0x80;
const XINFO_HAS_DBINFO: u32 = 1;
const XINFO_HAS_SUBXACTS: u32 = 1 << 1;
const XINFO_HAS_RELFILES: u32 = 1 << 2;
const XINFO_HAS_INVALS: u32 = 1 << 3;
const XINFO_HAS_TWOPHASE: u32 = 1 << 4;
const XINFO_HAS_DROPPED_STATS: u32 = 1 << 8;

/// The prepared transaction's xid in a COMMIT/ROLLBACK PREPARED record: after
/// the time, the optional parts in the order `ParseCommitRecord` and
/// `ParseAbortRecord` read them (an abort has no invalidations; dropped
/// statistics exist from PostgreSQL 15).
fn twophase_xid(m: &[u8], info: u8, commit: bool, pg_major: u32) -> Option<u32> {
    if info & XLOG_XACT_HAS_INFO == 0 {
        return None;
    }
    let xinfo = u32_at(m, 8)?;
    let mut at = 12usize;
    let counted = |at: &mut usize, item: usize| -> Option<()> {
        let n = u32_at(m, *at)? as usize;
        *at = at.checked_add(4)?.checked_add(n.checked_mul(item)?)?;
        Some(())
    };
    if xinfo & XINFO_HAS_DBINFO != 0 {
        at += 8;
    }
    if xinfo & XINFO_HAS_SUBXACTS != 0 {
        counted(&mut at, 4)?;
    }
    if xinfo & XINFO_HAS_RELFILES != 0 {
        counted(&mut at, 12)?;
    }
    if pg_major >= 15 && xinfo & XINFO_HAS_DROPPED_STATS != 0 {
        counted(&mut at, 12)?;
    }
    if commit && xinfo & XINFO_HAS_INVALS != 0 {
        counted(&mut at, 16)?;
    }
    if xinfo & XINFO_HAS_TWOPHASE == 0 {
        return None;
    }
    u32_at(m, at)
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The main data of a record: walk the block and data headers to learn its
/// length; it is the record's last bytes.
fn main_data(rec: &[u8], pg_major: u32) -> Option<&[u8]> {
    let mut at = RECORD_HEADER;
    let mut main_len = 0usize;
    while at < rec.len() {
        let id = rec[at];
        at += 1;
        match id {
            XLR_BLOCK_ID_DATA_SHORT => {
                main_len = usize::from(*rec.get(at)?);
                break;
            }
            XLR_BLOCK_ID_DATA_LONG => {
                main_len = u32_at(rec, at)? as usize;
                break;
            }
            XLR_BLOCK_ID_ORIGIN => at += 2,
            XLR_BLOCK_ID_TOPLEVEL_XID => at += 4,
            id if id <= XLR_MAX_BLOCK_ID => {
                let fork_flags = *rec.get(at)?;
                at += 3; // fork_flags, data_length
                if fork_flags & BKPBLOCK_HAS_IMAGE != 0 {
                    let bimg_info = *rec.get(at + 4)?;
                    at += 5;
                    // A hole and compression: a 2-byte hole length follows.
                    // PostgreSQL 15 moved the flags: 0x02 meant "compressed"
                    // before, 0x04/0x08/0x10 (pglz, lz4, zstd) since.
                    let has_hole = bimg_info & 0x01 != 0;
                    let compressed = if pg_major >= 15 {
                        bimg_info & 0x1C != 0
                    } else {
                        bimg_info & 0x02 != 0
                    };
                    if has_hole && compressed {
                        at += 2;
                    }
                }
                if fork_flags & BKPBLOCK_SAME_REL == 0 {
                    at += 12;
                }
                at += 4; // block number
            }
            _ => return None,
        }
    }
    rec.len().checked_sub(main_len).map(|from| &rec[from..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_value() {
        // The standard check value of CRC-32C.
        assert_eq!(!crc32c_update(!0, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn times_are_microseconds_since_2000() {
        assert_eq!(
            pg_time(0).unwrap().to_rfc3339(),
            "2000-01-01T00:00:00+00:00"
        );
        assert_eq!(
            pg_time(1_500_000).unwrap().to_rfc3339(),
            "2000-01-01T00:00:01.500+00:00"
        );
    }

    #[test]
    fn unknown_versions_and_short_input_are_refused() {
        assert_eq!(read_segment(&[0; 10], Lsn(0)), Err(WalError::TooShort(10)));
        let mut page = vec![0u8; 8192];
        page[0..2].copy_from_slice(&0xD101u16.to_le_bytes());
        assert_eq!(
            read_segment(&page, Lsn(0)),
            Err(WalError::UnsupportedVersion(0xD101))
        );
        assert_eq!(major_of_magic(0xD116), Some(17));
    }

    #[test]
    fn a_start_at_the_end_of_the_lsn_space_is_refused() {
        // A long header (PostgreSQL 15) claiming 16 MiB segments, started where
        // the segment cannot fit: found by fuzzing.
        let mut page = vec![0u8; 8192];
        page[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        page[2..4].copy_from_slice(&2u16.to_le_bytes());
        page[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
        page[36..40].copy_from_slice(&8192u32.to_le_bytes());
        let err = read_segment(&page, Lsn(u64::MAX - 10)).unwrap_err();
        assert!(matches!(err, WalError::Sizes(_)), "{err}");
    }
}
