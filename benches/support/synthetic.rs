//! Synthetic catalog contents shared by the criterion benches and
//! `examples/gen_catalog.rs`.

use cnpg_ops::catalog::wal::{Lsn, SegmentSize};

/// A real-looking `backup.info` of a DONE backup `id` (`YYYYMMDDTHHMMSS`) on
/// timeline `tli` that begins in segment `begin` and ends in segment `end`.
pub fn backup_info(id: &str, tli: u32, size: SegmentSize, begin: u64, end: u64) -> String {
    let (b, e) = (
        Lsn(size.start_lsn(begin).0 + 0x28),
        Lsn(size.start_lsn(end).0 + 0x100),
    );
    let stamp = format!(
        "{}-{}-{} {}:{}:{}+00:00",
        &id[0..4],
        &id[4..6],
        &id[6..8],
        &id[9..11],
        &id[11..13],
        &id[13..15]
    );
    format!(
        "backup_label='START WAL LOCATION: {b} (file {bw})\\nCHECKPOINT LOCATION: {b}\\nLABEL: Barman backup cloud {id}\\nSTART TIMELINE: {tli}\\n'\n\
         begin_offset=40\nbegin_time={stamp}\nbegin_wal={bw}\nbegin_xlog={b}\nend_offset=256\nend_time={stamp}\nend_wal={ew}\nend_xlog={e}\n\
         error=None\nserver_name=cloud\nstatus=DONE\nsystemid=7400000000000000001\ntimeline={tli}\nversion=160004\nxlog_segment_size={}\n",
        size.bytes(),
        bw = size.name(tli, begin),
        ew = size.name(tli, end),
    )
}
