//! Property tests for the arithmetic the verdicts rest on.

use cnpg_ops::catalog::history::History;
use cnpg_ops::catalog::names::{Compression, WalFileName, WalKind};
use cnpg_ops::catalog::wal::{Lsn, RawSegmentName, SegmentSize};
use proptest::prelude::*;

fn sizes() -> impl Strategy<Value = SegmentSize> {
    (20u32..=30).prop_map(|shift| SegmentSize::new(1u64 << shift).unwrap())
}

proptest! {
    #[test]
    fn names_round_trip_for_every_size(size in sizes(), tli in 1u32..=u32::MAX, lsn in any::<u64>()) {
        let segno = size.segno(Lsn(lsn));
        let name = size.name(tli, segno);
        prop_assert_eq!(name.len(), 24);
        let raw = RawSegmentName::parse(&name).unwrap();
        let id = raw.resolve(size).unwrap();
        prop_assert_eq!((id.tli, id.segno), (tli, segno));
        prop_assert!(size.start_lsn(segno) <= Lsn(lsn));
        prop_assert!(Lsn(lsn).0 < size.end_lsn(segno).0 || segno == u64::MAX / size.bytes());
        prop_assert_eq!(size.start_lsn(segno).0 + size.offset(Lsn(lsn)), lsn);
    }

    #[test]
    fn next_segment_crosses_log_boundaries(size in sizes(), log in 0u32..u32::MAX) {
        // The last segment of a log is followed by segment 0 of the next log.
        let per = size.segments_per_log();
        let last = u64::from(log) * per + per - 1;
        let (l, s) = size.log_seg(last);
        prop_assert_eq!((l, u64::from(s)), (log, per - 1));
        let (l2, s2) = size.log_seg(last + 1);
        prop_assert_eq!((l2, s2), (log + 1, 0));
        // String order of names is numeric order on one timeline.
        prop_assert!(size.name(1, last) < size.name(1, last + 1));
    }

    #[test]
    fn seg_fields_beyond_the_log_are_rejected(size in sizes(), log in any::<u32>(), seg in any::<u32>()) {
        let raw = RawSegmentName { tli: 1, log, seg };
        prop_assert_eq!(raw.resolve(size).is_some(), u64::from(seg) < size.segments_per_log());
    }

    #[test]
    fn lsn_text_round_trips(lsn in any::<u64>()) {
        let text = Lsn(lsn).to_string();
        prop_assert_eq!(text.parse::<Lsn>().unwrap(), Lsn(lsn));
        let (hi, lo) = text.split_once('/').unwrap();
        let padded = format!("{hi}/{lo:0>8}");
        prop_assert_eq!(padded.parse::<Lsn>().unwrap(), Lsn(lsn));
    }

    #[test]
    fn wal_file_names_round_trip(tli in 1u32.., log in any::<u32>(), seg in 0u32..256, offset in any::<u32>(), kind in 0u8..3, c in 0usize..7) {
        let kind = match kind { 0 => WalKind::Segment, 1 => WalKind::Partial, _ => WalKind::BackupHistory { offset } };
        let n = WalFileName { raw: RawSegmentName { tli, log, seg }, kind, compression: Compression::ALL[c] };
        prop_assert_eq!(WalFileName::parse(&n.to_string()), Some(n));
    }

    #[test]
    fn segment_plans_cover_the_range_once(size in sizes(), sw1 in 1u64..1_000_000, d in 0u64..1_000_000, from in 0u64..3_000_000, len in 0u64..3_000_000) {
        // Timeline 3 with two switches; the plan partitions [from, to] into ascending, adjacent pieces
        // and every piece reads from the timeline the lineage owns at that segment.
        let sw2 = sw1 + d;
        let text = format!("1\t{}\tx\n2\t{}\tx\n", size.start_lsn(sw1), Lsn(size.start_lsn(sw2).0 + 1));
        let lineage = History::parse(3, text.as_bytes()).unwrap().lineage();
        let to = from + len;
        let plan = lineage.segment_plan(size, from, to);
        prop_assert_eq!(plan.first().map(|p| p.1), Some(from));
        prop_assert_eq!(plan.last().map(|p| p.2), Some(to));
        for w in plan.windows(2) {
            prop_assert_eq!(w[0].2 + 1, w[1].1);
            prop_assert!(w[0].0 < w[1].0);
        }
        for &(tli, a, b) in &plan {
            prop_assert_eq!(lineage.tli_for_segno(size, a), tli);
            prop_assert_eq!(lineage.tli_for_segno(size, b), tli);
        }
    }
}
