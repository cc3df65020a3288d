#![no_main]
//! WAL segments: reading never panics, whatever the bytes; what is read is
//! in WAL order and inside the segment. A segment's tail is also carried into
//! the same bytes read as the next segment, through both ways of joining it.

use cnpg_ops::catalog::wal::Lsn;
use cnpg_ops::catalog::walread::{join_tail, read_segment, read_segment_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Start where the first page says it is, so mutations keep a readable
    // header often enough to reach the records.
    let start = data
        .get(8..16)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    if let Ok(r) = read_segment(data, Lsn(start)) {
        assert!(r.end_lsn >= r.start);
        for w in r.xacts.windows(2) {
            assert!(w[0].lsn < w[1].lsn);
        }
        for x in &r.xacts {
            assert!(x.lsn >= r.start && x.end_lsn <= r.end_lsn);
        }
        if let Some(tail) = &r.tail {
            let _ = tail.may_matter();
            if let Ok(next) = read_segment_after(data, Lsn(start), Some(tail)) {
                let _ = join_tail(tail, &next);
            }
        }
    }
});
