//! Fixture catalogs captured from real barman-cloud runs (`integration/capture_fixture.py`):
//! `manifest.json` lists every object with its size and upload time; `objects/` holds the
//! bodies of the small ones (backup.info, history and backup history files). This module
//! lays such a capture out as a local mirror of the bucket, with sparse files for the
//! bodies that were not kept and each file's modification time set to the object's
//! upload time, so that `file://` reads see what the bucket showed.

use std::fs::{self, File, FileTimes};
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// The capture's manifest.
#[derive(Debug, Deserialize)]
pub struct Manifest {
    /// The destinationPath the capture was taken from.
    pub dest: String,
    /// Server folder.
    pub server_name: String,
    /// Objects.
    pub objects: Vec<Entry>,
}

/// One object.
#[derive(Debug, Deserialize)]
pub struct Entry {
    /// Full key in the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, RFC 3339.
    pub last_modified: String,
    /// Path of the kept body, relative to the capture.
    pub content: Option<String>,
}

fn parse_time(s: &str) -> io::Result<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{s}: {e}")))?;
    let micros = u64::try_from(t.timestamp_micros())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "time before 1970"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_micros(micros))
}

/// Reads the manifest of the capture in `dir`.
pub fn manifest(dir: &Path) -> io::Result<Manifest> {
    let text = fs::read_to_string(dir.join("manifest.json"))?;
    serde_json::from_str(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Lays the capture in `dir` out under `out`, keyed like the bucket. `skip` drops keys
/// (to simulate deletions). Returns the manifest.
pub fn materialize(dir: &Path, out: &Path, skip: &dyn Fn(&str) -> bool) -> io::Result<Manifest> {
    let m = manifest(dir)?;
    for e in &m.objects {
        if skip(&e.key) {
            continue;
        }
        let path = out.join(&e.key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        match &e.content {
            Some(rel) => {
                fs::copy(dir.join(rel), &path)?;
            }
            None => File::create(&path)?.set_len(e.size)?,
        }
        let at = parse_time(&e.last_modified)?;
        File::options()
            .write(true)
            .open(&path)?
            .set_times(FileTimes::new().set_modified(at).set_accessed(at))?;
    }
    Ok(m)
}
