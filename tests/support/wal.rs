//! The real WAL of tests/fixtures/wal (written by its make.sh).

use std::io::Read;
use std::path::{Path, PathBuf};

use cnpg_ops::catalog::wal::Lsn;

/// The fixture folder: gzipped segments and facts.json.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wal")
}

/// A gzipped segment, decompressed.
pub fn gunzip(p: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// The LSN a 16 MiB segment's name starts at.
pub fn start_of(name: &str) -> Lsn {
    let log = u64::from_str_radix(&name[8..16], 16).unwrap();
    let seg = u64::from_str_radix(&name[16..24], 16).unwrap();
    Lsn((log << 32) + seg * 16 * 1024 * 1024)
}
