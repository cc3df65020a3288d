#![no_main]
//! The Python literal reader never panics or recurses without bound.

use cnpg_ops::catalog::pyliteral;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = pyliteral::parse(text).map(|v| v.to_json());
    }
});
