#![no_main]
//! History files: parsing never panics; an accepted file gives a lineage whose spans are ordered.

use cnpg_ops::catalog::history::History;
use cnpg_ops::catalog::wal::SegmentSize;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tli = u32::from(data.first().copied().unwrap_or(2)).max(2);
    if let Ok(h) = History::parse(tli, data) {
        let l = h.lineage();
        assert_eq!(l.target(), tli);
        for w in l.spans.windows(2) {
            assert!(w[0].tli < w[1].tli);
            assert!(w[0].begin <= w[1].begin);
        }
        let size = SegmentSize::default();
        let plan = l.segment_plan(size, 0, 1 << 20);
        for w in plan.windows(2) {
            assert_eq!(w[0].2 + 1, w[1].1);
        }
    }
});
