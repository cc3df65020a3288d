#![no_main]
//! `backup.info` parsing never panics, and every problem names a line that exists.

use cnpg_ops::catalog::backup_info::BackupInfo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = BackupInfo::parse(data) {
        let lines = data.split(|&b| b == b'\n').count();
        for issue in &info.issues {
            assert!(issue.line >= 1 && issue.line <= lines);
        }
        let _ = info.consistency_problems("20260101T000000");
    }
});
