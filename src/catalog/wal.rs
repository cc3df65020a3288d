//! WAL positions, segment sizes and segment names, held as numbers.
//!
//! A segment is identified by its timeline and its segment number (`segno`);
//! the 24-character file name is only a rendering that depends on the
//! segment size. Everything here is pure arithmetic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Default `wal_segment_size` (16 MiB), assumed by barman when a catalog says nothing.
pub const DEFAULT_SEGMENT_SIZE: u64 = 16 * 1024 * 1024;

/// A PostgreSQL write-ahead-log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

/// Why a text could not be read as an LSN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not an LSN; expected two hexadecimal halves such as `0/3000028` or `16/B374D848`"
)]
pub struct LsnParseError {
    /// The rejected text.
    pub text: String,
}

impl FromStr for Lsn {
    type Err = LsnParseError;

    /// Parses `%X/%X`, the zero-padded `%X/%08X` form, and lowercase hex.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || LsnParseError { text: s.to_owned() };
        let (hi, lo) = s.trim().split_once('/').ok_or_else(err)?;
        let half = |h: &str| {
            if h.is_empty() || h.len() > 8 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err());
            }
            u32::from_str_radix(h, 16).map_err(|_| err())
        };
        Ok(Lsn((u64::from(half(hi)?) << 32) | u64::from(half(lo)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Serialize for Lsn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Lsn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A validated WAL segment size: a power of two from 1 MiB to 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentSize(u64);

/// Why a number is not a valid segment size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} bytes is not a WAL segment size; expected a power of two from 1 MiB (1048576) to 1 GiB (1073741824)"
)]
pub struct SegmentSizeError(pub u64);

impl SegmentSize {
    /// The smallest size PostgreSQL accepts (1 MiB).
    pub const MIN: u64 = 1 << 20;
    /// The largest size PostgreSQL accepts (1 GiB).
    pub const MAX: u64 = 1 << 30;

    /// Validates `bytes`.
    pub fn new(bytes: u64) -> Result<Self, SegmentSizeError> {
        if bytes.is_power_of_two() && (Self::MIN..=Self::MAX).contains(&bytes) {
            Ok(SegmentSize(bytes))
        } else {
            Err(SegmentSizeError(bytes))
        }
    }

    /// Size in bytes.
    #[must_use]
    pub fn bytes(self) -> u64 {
        self.0
    }

    /// Number of segments in one "log" (the high 32 bits of an LSN): 256 for 16 MiB.
    #[must_use]
    pub fn segments_per_log(self) -> u64 {
        0x1_0000_0000 / self.0
    }

    /// Segment number holding `lsn`.
    #[must_use]
    pub fn segno(self, lsn: Lsn) -> u64 {
        lsn.0 / self.0
    }

    /// Offset of `lsn` inside its segment.
    #[must_use]
    pub fn offset(self, lsn: Lsn) -> u64 {
        lsn.0 & (self.0 - 1)
    }

    /// First LSN of segment `segno`.
    #[must_use]
    pub fn start_lsn(self, segno: u64) -> Lsn {
        Lsn(segno.saturating_mul(self.0))
    }

    /// LSN one past the last byte of segment `segno`.
    #[must_use]
    pub fn end_lsn(self, segno: u64) -> Lsn {
        Lsn(segno.saturating_add(1).saturating_mul(self.0))
    }

    /// Segment number of the `(log, seg)` pair of a file name, when `seg` fits this size.
    #[must_use]
    pub fn segno_of(self, log: u32, seg: u32) -> Option<u64> {
        let per_log = self.segments_per_log();
        (u64::from(seg) < per_log).then(|| u64::from(log) * per_log + u64::from(seg))
    }

    /// The `(log, seg)` pair of a segment number.
    #[must_use]
    pub fn log_seg(self, segno: u64) -> (u32, u32) {
        let per_log = self.segments_per_log();
        // segno < 2^64 / 2^20, so segno / per_log < 2^32 and segno % per_log < 2^12.
        #[allow(clippy::cast_possible_truncation)]
        ((segno / per_log) as u32, (segno % per_log) as u32)
    }

    /// The 24-character file name of segment `segno` on timeline `tli`.
    #[must_use]
    pub fn name(self, tli: u32, segno: u64) -> String {
        let (log, seg) = self.log_seg(segno);
        format!("{tli:08X}{log:08X}{seg:08X}")
    }
}

impl Default for SegmentSize {
    fn default() -> Self {
        SegmentSize(DEFAULT_SEGMENT_SIZE)
    }
}

impl fmt::Display for SegmentSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 1 << 30 {
            write!(f, "{} GiB", self.0 >> 30)
        } else {
            write!(f, "{} MiB", self.0 >> 20)
        }
    }
}

/// A WAL segment: timeline and segment number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId {
    /// Timeline.
    pub tli: u32,
    /// Segment number (LSN / segment size).
    pub segno: u64,
}

/// The three hexadecimal fields of a 24-character segment name, before the
/// segment size gives them a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RawSegmentName {
    /// Timeline.
    pub tli: u32,
    /// High 32 bits of the LSN.
    pub log: u32,
    /// Segment inside the log.
    pub seg: u32,
}

impl RawSegmentName {
    /// Parses exactly 24 hexadecimal characters (either case, as barman accepts).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        if b.len() != 24 || !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let field = |r: std::ops::Range<usize>| u32::from_str_radix(&name[r], 16).ok();
        Some(RawSegmentName {
            tli: field(0..8)?,
            log: field(8..16)?,
            seg: field(16..24)?,
        })
    }

    /// The segment this name denotes under `size`, or `None` when `seg` is out of range for it.
    #[must_use]
    pub fn resolve(self, size: SegmentSize) -> Option<SegmentId> {
        size.segno_of(self.log, self.seg).map(|segno| SegmentId {
            tli: self.tli,
            segno,
        })
    }

    /// The "hash directory" barman files the segment under: timeline and log, 16 characters.
    #[must_use]
    pub fn hash_dir(self) -> String {
        format!("{:08X}{:08X}", self.tli, self.log)
    }
}

impl Serialize for RawSegmentName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl fmt::Display for RawSegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}{:08X}{:08X}", self.tli, self.log, self.seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_parses_both_forms_and_prints_canonically() {
        assert_eq!("0/3000028".parse::<Lsn>().unwrap(), Lsn(0x300_0028));
        assert_eq!("0/03000028".parse::<Lsn>().unwrap(), Lsn(0x300_0028));
        assert_eq!("3/a2000028".parse::<Lsn>().unwrap(), Lsn(0x3_A200_0028));
        assert_eq!(Lsn(0x3_A200_0028).to_string(), "3/A2000028");
        assert_eq!(Lsn(0).to_string(), "0/0");
        for bad in ["", "0", "/1", "1/", "g/1", "1/123456789", "1/2/3", "-1/0"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad}");
        }
    }

    #[test]
    fn segment_sizes_are_validated() {
        for ok in [1 << 20, 1 << 24, 1 << 30] {
            assert!(SegmentSize::new(ok).is_ok());
        }
        for bad in [0, 1 << 19, (1 << 24) + 1, 1 << 31, 3 << 20] {
            assert!(SegmentSize::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reference_example_arithmetic() {
        // 3/A2000028 with 16 MiB segments lies in 0000000200000003000000A2 at offset 40.
        let size = SegmentSize::default();
        let lsn: Lsn = "3/A2000028".parse().unwrap();
        let segno = size.segno(lsn);
        assert_eq!(size.name(2, segno), "0000000200000003000000A2");
        assert_eq!(size.offset(lsn), 40);
        assert_eq!(size.offset("3/A4001F10".parse().unwrap()), 7952);
        let raw = RawSegmentName::parse("0000000200000003000000A2").unwrap();
        assert_eq!(raw.resolve(size), Some(SegmentId { tli: 2, segno }));
        assert_eq!(raw.hash_dir(), "0000000200000003");
    }

    #[test]
    fn segments_per_log_for_every_size() {
        let per = |b| SegmentSize::new(b).unwrap().segments_per_log();
        assert_eq!(per(1 << 20), 4096);
        assert_eq!(per(1 << 24), 256);
        assert_eq!(per(1 << 26), 64);
        assert_eq!(per(1 << 30), 4);
    }

    #[test]
    fn out_of_range_seg_is_rejected_for_large_segments() {
        // With 1 GiB segments only 00..03 are valid in the last field.
        let size = SegmentSize::new(1 << 30).unwrap();
        let raw = RawSegmentName::parse("000000010000000000000004").unwrap();
        assert_eq!(raw.resolve(size), None);
        assert!(RawSegmentName::parse("00000001000000000000000G").is_none());
        assert!(RawSegmentName::parse("00000001000000000000000").is_none());
    }
}
