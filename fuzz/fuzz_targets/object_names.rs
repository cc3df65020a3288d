#![no_main]
//! Object keys: classification never panics and a parsed WAL name prints back to itself
//! (modulo hex case).

use cnpg_ops::catalog::names::{CatalogKey, WalFileName, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(key) = std::str::from_utf8(data) else { return };
    if let CatalogKey::Wal { name, .. } = classify(key) {
        let base = key.rsplit('/').next().unwrap_or(key);
        assert!(name.to_string().eq_ignore_ascii_case(base));
    }
    if let Some(n) = WalFileName::parse(key) {
        assert_eq!(WalFileName::parse(&n.to_string()), Some(n));
    }
});
