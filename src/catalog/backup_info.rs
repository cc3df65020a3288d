//! `backup.info`: the metadata file barman-cloud uploads last into
//! `base/<backup_id>/`. Every field barman writes is read; Python-literal
//! fields are decoded; unknown fields are kept, not fatal; problems name the
//! line they were found on.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::pyliteral::{self, PyValue};
use super::time::parse_backup_time;
use super::wal::{Lsn, RawSegmentName, SegmentSize};

/// Largest `backup.info` read; real ones are a few KiB.
pub const MAX_BACKUP_INFO_BYTES: u64 = 1 << 20;

/// `status` of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum BackupStatus {
    /// `DONE`: usable.
    Done,
    /// `FAILED`: never usable, whatever its times say.
    Failed,
    /// `STARTED`
    Started,
    /// `WAITING_FOR_WALS`
    WaitingForWals,
    /// `SYNCING`
    Syncing,
    /// `EMPTY`
    Empty,
    /// Anything else, verbatim.
    Other(String),
}

impl BackupStatus {
    fn parse(s: &str) -> BackupStatus {
        match s {
            "DONE" => BackupStatus::Done,
            "FAILED" => BackupStatus::Failed,
            "STARTED" => BackupStatus::Started,
            "WAITING_FOR_WALS" => BackupStatus::WaitingForWals,
            "SYNCING" => BackupStatus::Syncing,
            "EMPTY" => BackupStatus::Empty,
            other => BackupStatus::Other(other.to_owned()),
        }
    }

    /// The text barman writes.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            BackupStatus::Done => "DONE",
            BackupStatus::Failed => "FAILED",
            BackupStatus::Started => "STARTED",
            BackupStatus::WaitingForWals => "WAITING_FOR_WALS",
            BackupStatus::Syncing => "SYNCING",
            BackupStatus::Empty => "EMPTY",
            BackupStatus::Other(s) => s,
        }
    }
}

impl From<BackupStatus> for String {
    fn from(s: BackupStatus) -> String {
        s.as_str().to_owned()
    }
}

impl fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tablespace listed in `tablespaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tablespace {
    /// Name.
    pub name: String,
    /// OID; its tar is `<oid>.tar*`.
    pub oid: u32,
    /// Location on the server.
    pub location: String,
}

/// A problem found while reading one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineIssue {
    /// 1-based line number.
    pub line: usize,
    /// Field name, when the line had one.
    pub field: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for LineIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: `{field}`: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

/// Why a `backup.info` could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupInfoError {
    /// Not UTF-8.
    #[error("line {line}: not valid UTF-8 (byte offset {offset})")]
    NotUtf8 {
        /// Line of the first bad byte.
        line: usize,
        /// Byte offset of the first bad byte.
        offset: usize,
    },
    /// Empty file.
    #[error("the file is empty")]
    Empty,
}

/// The fields of the `backup_label` text that matter for recovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabelFacts {
    /// `START WAL LOCATION`
    pub start_lsn: Option<Lsn>,
    /// `CHECKPOINT LOCATION`: where replay starts.
    pub checkpoint_lsn: Option<Lsn>,
    /// `BACKUP FROM` (`primary` or `standby`).
    pub backup_from: Option<String>,
    /// `LABEL`
    pub label: Option<String>,
    /// `START TIMELINE`
    pub start_timeline: Option<u32>,
    /// `INCREMENTAL FROM LSN` present (a PostgreSQL 17 incremental backup).
    pub incremental: bool,
}

impl LabelFacts {
    /// Reads the lines of a `backup_label`.
    #[must_use]
    pub fn parse(text: &str) -> LabelFacts {
        let mut f = LabelFacts::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            let lsn = || {
                value
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<Lsn>().ok())
            };
            match key.trim() {
                "START WAL LOCATION" => f.start_lsn = lsn(),
                "CHECKPOINT LOCATION" => f.checkpoint_lsn = lsn(),
                "BACKUP FROM" => f.backup_from = Some(value.to_owned()),
                "LABEL" => f.label = Some(value.to_owned()),
                "START TIMELINE" => f.start_timeline = value.parse().ok(),
                "INCREMENTAL FROM LSN" => f.incremental = true,
                _ => {}
            }
        }
        f
    }
}

/// A parsed `backup.info`. Fields are `None` when absent, `None` in the file, or malformed
/// (malformed ones are also listed in `issues`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[allow(missing_docs)]
pub struct BackupInfo {
    pub status: Option<BackupStatus>,
    pub backup_label: Option<String>,
    pub label: LabelFacts,
    pub backup_name: Option<String>,
    pub begin_offset: Option<u64>,
    pub begin_time: Option<DateTime<Utc>>,
    pub begin_wal: Option<RawSegmentName>,
    pub begin_xlog: Option<Lsn>,
    pub children_backup_ids: Vec<String>,
    pub cluster_size: Option<u64>,
    pub compression: Option<String>,
    pub config_file: Option<String>,
    #[serde(skip)]
    pub copy_stats: Option<PyValue>,
    pub data_checksums: Option<String>,
    pub deduplicated_size: Option<u64>,
    pub encryption: Option<String>,
    pub end_offset: Option<u64>,
    pub end_time: Option<DateTime<Utc>>,
    pub end_wal: Option<RawSegmentName>,
    pub end_xlog: Option<Lsn>,
    pub error: Option<String>,
    pub hba_file: Option<String>,
    pub ident_file: Option<String>,
    pub included_files: Vec<String>,
    pub mode: Option<String>,
    pub parent_backup_id: Option<String>,
    pub pgdata: Option<String>,
    pub server_name: Option<String>,
    pub size: Option<u64>,
    #[serde(skip)]
    pub snapshots_info: Option<PyValue>,
    pub summarize_wal: Option<String>,
    pub systemid: Option<String>,
    pub tablespaces: Vec<Tablespace>,
    pub timeline: Option<u32>,
    pub version: Option<u32>,
    pub xlog_segment_size: Option<u64>,
    /// Keys this reader does not know, verbatim.
    pub unknown_fields: BTreeMap<String, String>,
    /// Lines that could not be read.
    pub issues: Vec<LineIssue>,
    /// `begin_time`/`end_time` had no offset and were read as UTC.
    pub naive_times: bool,
}

fn line_of_offset(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset].split(|&b| b == b'\n').count()
}

impl BackupInfo {
    /// Parses the raw bytes of a `backup.info`.
    pub fn parse(bytes: &[u8]) -> Result<BackupInfo, BackupInfoError> {
        let text = std::str::from_utf8(bytes).map_err(|e| BackupInfoError::NotUtf8 {
            line: line_of_offset(bytes, e.valid_up_to()),
            offset: e.valid_up_to(),
        })?;
        if text.trim().is_empty() {
            return Err(BackupInfoError::Empty);
        }
        let mut info = BackupInfo::default();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (idx, raw_line) in text.lines().enumerate() {
            let line = idx + 1;
            let trimmed = raw_line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                info.issue(line, None, "expected `key=value`".to_owned());
                continue;
            };
            let key = key.trim();
            let value = value.trim();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                info.issue(
                    line,
                    None,
                    format!("`{}` is not a field name", key.escape_default()),
                );
                continue;
            }
            if let Some(first) = seen.insert(key.to_owned(), line) {
                info.issue(
                    line,
                    Some(key),
                    format!("repeats the field first set on line {first}; the last value wins"),
                );
            }
            info.set(line, key, value);
        }
        if let Some(label) = &info.backup_label {
            info.label = LabelFacts::parse(label);
        }
        Ok(info)
    }

    fn issue(&mut self, line: usize, field: Option<&str>, message: String) {
        self.issues.push(LineIssue {
            line,
            field: field.map(str::to_owned),
            message,
        });
    }

    #[allow(clippy::too_many_lines)]
    fn set(&mut self, line: usize, key: &str, value: &str) {
        let none = value == "None";
        macro_rules! field {
            ($target:expr, $parse:expr, $expected:literal) => {{
                if none {
                    $target = None;
                } else {
                    match $parse(value) {
                        Some(v) => $target = Some(v),
                        None => {
                            $target = None;
                            self.issue(
                                line,
                                Some(key),
                                format!(concat!("`{}` is not ", $expected), value.escape_default()),
                            );
                        }
                    }
                }
            }};
        }
        let text = |v: &str| Some(v.to_owned());
        let int = |v: &str| v.parse::<u64>().ok();
        let lsn = |v: &str| v.parse::<Lsn>().ok();
        let wal = |v: &str| RawSegmentName::parse(v).filter(|_| v.len() == 24);
        let mut time_naive = false;
        let mut time = |v: &str| {
            parse_backup_time(v).map(|(t, naive)| {
                time_naive |= naive;
                t
            })
        };
        match key {
            "status" => field!(
                self.status,
                |v: &str| Some(BackupStatus::parse(v)),
                "a status"
            ),
            "backup_name" => field!(self.backup_name, text, "text"),
            "begin_offset" => field!(self.begin_offset, int, "a byte offset"),
            "begin_time" => field!(
                self.begin_time,
                time,
                "a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM)"
            ),
            "begin_wal" => field!(self.begin_wal, wal, "a 24-character WAL segment name"),
            "begin_xlog" => field!(self.begin_xlog, lsn, "an LSN"),
            "end_offset" => field!(self.end_offset, int, "a byte offset"),
            "end_time" => field!(
                self.end_time,
                time,
                "a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff]+HH:MM)"
            ),
            "end_wal" => field!(self.end_wal, wal, "a 24-character WAL segment name"),
            "end_xlog" => field!(self.end_xlog, lsn, "an LSN"),
            "error" => field!(self.error, text, "text"),
            "timeline" => field!(
                self.timeline,
                |v: &str| v.parse::<u32>().ok().filter(|t| *t > 0),
                "a timeline number (decimal, 1 or more)"
            ),
            "version" => field!(
                self.version,
                |v: &str| v.parse::<u32>().ok(),
                "a server_version_num"
            ),
            "xlog_segment_size" => field!(
                self.xlog_segment_size,
                |v: &str| v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| SegmentSize::new(*s).is_ok()),
                "a WAL segment size (a power of two from 1 MiB to 1 GiB)"
            ),
            "systemid" => field!(
                self.systemid,
                |v: &str| v.bytes().all(|b| b.is_ascii_digit()).then(|| v.to_owned()),
                "a decimal system identifier"
            ),
            "cluster_size" => field!(self.cluster_size, int, "a size in bytes"),
            "deduplicated_size" => field!(self.deduplicated_size, int, "a size in bytes"),
            "size" => field!(self.size, int, "a size in bytes"),
            "compression" => field!(self.compression, text, "text"),
            "config_file" => field!(self.config_file, text, "a path"),
            "hba_file" => field!(self.hba_file, text, "a path"),
            "ident_file" => field!(self.ident_file, text, "a path"),
            "pgdata" => field!(self.pgdata, text, "a path"),
            "mode" => field!(self.mode, text, "text"),
            "parent_backup_id" => field!(self.parent_backup_id, text, "a backup id"),
            "server_name" => field!(self.server_name, text, "text"),
            "data_checksums" => field!(self.data_checksums, text, "on/off"),
            "summarize_wal" => field!(self.summarize_wal, text, "on/off"),
            "encryption" => field!(self.encryption, text, "text"),
            "children_backup_ids" => {
                self.children_backup_ids = if none {
                    Vec::new()
                } else {
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                };
            }
            "backup_label" => {
                if none {
                    self.backup_label = None;
                } else {
                    match pyliteral::parse(value) {
                        Ok(PyValue::Str(s)) => self.backup_label = Some(s),
                        Ok(_) => self.issue(
                            line,
                            Some(key),
                            "expected a quoted Python string".to_owned(),
                        ),
                        Err(e) => {
                            self.issue(
                                line,
                                Some(key),
                                format!("not a Python string literal: {e}"),
                            );
                        }
                    }
                }
            }
            "included_files" => match self.literal(line, key, value) {
                Some(PyValue::List(items)) => {
                    self.included_files = items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect();
                }
                Some(PyValue::None) | None => {}
                Some(_) => self.issue(line, Some(key), "expected a list of paths".to_owned()),
            },
            "tablespaces" => match self.literal(line, key, value) {
                Some(PyValue::List(items)) => {
                    for item in &items {
                        match item.as_seq() {
                            Some([name, oid, location, ..]) => match (
                                name.as_str(),
                                oid.as_int().and_then(|o| u32::try_from(o).ok()),
                                location.as_str(),
                            ) {
                                (Some(name), Some(oid), Some(location)) => {
                                    self.tablespaces.push(Tablespace {
                                        name: name.to_owned(),
                                        oid,
                                        location: location.to_owned(),
                                    });
                                }
                                _ => self.issue(
                                    line,
                                    Some(key),
                                    "a tablespace entry is not (name, oid, location)".to_owned(),
                                ),
                            },
                            _ => self.issue(
                                line,
                                Some(key),
                                "a tablespace entry is not (name, oid, location)".to_owned(),
                            ),
                        }
                    }
                }
                Some(PyValue::None) | None => {}
                Some(_) => self.issue(
                    line,
                    Some(key),
                    "expected a list of (name, oid, location)".to_owned(),
                ),
            },
            "copy_stats" => self.copy_stats = self.literal(line, key, value),
            "snapshots_info" => self.snapshots_info = self.literal(line, key, value),
            _ => {
                self.unknown_fields.insert(key.to_owned(), value.to_owned());
            }
        }
        self.naive_times |= time_naive;
    }

    fn literal(&mut self, line: usize, key: &str, value: &str) -> Option<PyValue> {
        match pyliteral::parse(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.issue(line, Some(key), format!("not a Python literal: {e}"));
                None
            }
        }
    }

    /// The segment size this backup declares, or the 16 MiB default.
    #[must_use]
    pub fn segment_size(&self) -> SegmentSize {
        self.xlog_segment_size
            .and_then(|s| SegmentSize::new(s).ok())
            .unwrap_or_default()
    }

    /// Cross-field checks: WAL names against LSNs, offsets, time order, label.
    #[must_use]
    pub fn consistency_problems(&self, backup_id: &str) -> Vec<String> {
        let size = self.segment_size();
        let mut out = Vec::new();
        let tli = self.timeline;
        for (what, xlog, wal, offset) in [
            ("begin", self.begin_xlog, self.begin_wal, self.begin_offset),
            ("end", self.end_xlog, self.end_wal, self.end_offset),
        ] {
            if let (Some(lsn), Some(wal)) = (xlog, wal) {
                let (log, seg) = size.log_seg(size.segno(lsn));
                if (wal.log, wal.seg) != (log, seg) {
                    out.push(format!(
                        "{what}_wal {wal} does not hold {what}_xlog {lsn} with {size} segments"
                    ));
                }
                if what == "begin" && tli.is_some_and(|t| t != wal.tli) {
                    out.push(format!(
                        "begin_wal {wal} is not on timeline {}",
                        tli.unwrap_or_default()
                    ));
                }
                if let Some(offset) = offset
                    && offset != size.offset(lsn)
                {
                    out.push(format!(
                        "{what}_offset {offset} is not the offset of {what}_xlog {lsn} ({})",
                        size.offset(lsn)
                    ));
                }
            }
        }
        if let (Some(b), Some(e)) = (self.begin_xlog, self.end_xlog)
            && e < b
        {
            out.push(format!("end_xlog {e} is before begin_xlog {b}"));
        }
        if let (Some(b), Some(e)) = (self.begin_time, self.end_time)
            && e < b
        {
            out.push(format!("end_time {e} is before begin_time {b}"));
        }
        if let (Some(start), Some(begin)) = (self.label.start_lsn, self.begin_xlog)
            && start != begin
        {
            out.push(format!(
                "backup_label START WAL LOCATION {start} differs from begin_xlog {begin}"
            ));
        }
        if let Some(label) = &self.label.label
            && !label.ends_with(backup_id)
        {
            out.push(format!(
                "backup_label LABEL `{label}` does not name this backup id"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composed example of the reference notes (PG 16, TLI 2, standby backup).
    pub(crate) const EXAMPLE: &str = r"backup_label='START WAL LOCATION: 3/A2000028 (file 0000000200000003000000A2)\nCHECKPOINT LOCATION: 3/A2000080\nBACKUP METHOD: streamed\nBACKUP FROM: standby\nSTART TIME: 2026-03-10 02:00:04 UTC\nLABEL: Barman backup cloud 20260310T020003\nSTART TIMELINE: 2\n'
backup_name=backup-20260310020000
begin_offset=40
begin_time=2026-03-10 02:00:04.118733+00:00
begin_wal=0000000200000003000000A2
begin_xlog=3/A2000028
children_backup_ids=None
cluster_size=5368709120
compression=None
config_file=/var/lib/postgresql/data/pgdata/postgresql.conf
copy_stats={'total_time': 587.43, 'number_of_workers': 2, 'analysis_time': 0, 'analysis_time_per_item': {'data': 0, '16390': 0}, 'copy_time_per_item': {'data': 571.2, '16390': 44.9}, 'serialized_copy_time_per_item': {'data': 803.7, '16390': 61.2}, 'copy_time': 575.8, 'serialized_copy_time': 864.9}
data_checksums=on
deduplicated_size=None
encryption=None
end_offset=7952
end_time=2026-03-10 02:09:51.402817+00:00
end_wal=0000000200000003000000A4
end_xlog=3/A4001F10
error=None
hba_file=/var/lib/postgresql/data/pgdata/pg_hba.conf
ident_file=/var/lib/postgresql/data/pgdata/pg_ident.conf
included_files=['/var/lib/postgresql/data/pgdata/custom.conf', '/var/lib/postgresql/data/pgdata/override.conf']
mode=None
parent_backup_id=None
pgdata=/var/lib/postgresql/data/pgdata
server_name=cloud
size=None
status=DONE
summarize_wal=None
systemid=7412659853710583825
tablespaces=[('analytics', 16390, '/var/lib/postgresql/tablespaces/analytics/data')]
timeline=2
version=160004
xlog_segment_size=16777216
";

    #[test]
    fn reads_every_field_of_the_reference_example() {
        let info = BackupInfo::parse(EXAMPLE.as_bytes()).unwrap();
        assert!(info.issues.is_empty(), "{:?}", info.issues);
        assert_eq!(info.status, Some(BackupStatus::Done));
        assert_eq!(info.timeline, Some(2));
        assert_eq!(info.begin_xlog, Some(Lsn(0x3_A200_0028)));
        assert_eq!(
            info.end_wal.unwrap().to_string(),
            "0000000200000003000000A4"
        );
        assert_eq!(info.label.checkpoint_lsn, Some(Lsn(0x3_A200_0080)));
        assert_eq!(info.label.backup_from.as_deref(), Some("standby"));
        assert_eq!(info.label.start_timeline, Some(2));
        assert_eq!(
            info.tablespaces,
            vec![Tablespace {
                name: "analytics".into(),
                oid: 16390,
                location: "/var/lib/postgresql/tablespaces/analytics/data".into()
            }]
        );
        assert_eq!(info.included_files.len(), 2);
        assert_eq!(info.systemid.as_deref(), Some("7412659853710583825"));
        assert_eq!(info.version, Some(160_004));
        assert_eq!(info.cluster_size, Some(5_368_709_120));
        assert!(info.copy_stats.is_some());
        assert!(info.unknown_fields.is_empty());
        assert!(!info.naive_times);
        assert!(
            info.consistency_problems("20260310T020003").is_empty(),
            "{:?}",
            info.consistency_problems("20260310T020003")
        );
        assert_eq!(info.consistency_problems("20260311T000000").len(), 1);
    }

    #[test]
    fn unknown_fields_are_kept_and_bad_lines_named() {
        let text = "status=DONE\nfuture_field=42\nbegin_xlog=zz/1\nno equals sign\ntimeline=0\n";
        let info = BackupInfo::parse(text.as_bytes()).unwrap();
        assert_eq!(
            info.unknown_fields.get("future_field").map(String::as_str),
            Some("42")
        );
        let lines: Vec<usize> = info.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert_eq!(info.issues[0].field.as_deref(), Some("begin_xlog"));
        assert!(info.begin_xlog.is_none());
    }

    #[test]
    fn failed_backup_with_error() {
        let text =
            "status=FAILED\nerror=failure uploading data (connection reset: a=b)\nend_time=None\n";
        let info = BackupInfo::parse(text.as_bytes()).unwrap();
        assert_eq!(info.status, Some(BackupStatus::Failed));
        assert_eq!(
            info.error.as_deref(),
            Some("failure uploading data (connection reset: a=b)")
        );
        assert!(info.end_time.is_none());
    }

    #[test]
    fn non_utf8_and_empty_are_errors() {
        let err = BackupInfo::parse(b"status=DONE\nbackup_label='\xff'\n").unwrap_err();
        assert_eq!(
            err,
            BackupInfoError::NotUtf8 {
                line: 2,
                offset: 26
            }
        );
        assert_eq!(
            BackupInfo::parse(b"\n  \n").unwrap_err(),
            BackupInfoError::Empty
        );
    }

    #[test]
    fn truncated_file_reads_what_is_there() {
        let cut = &EXAMPLE[..EXAMPLE.find("end_time").unwrap() + 12];
        let info = BackupInfo::parse(cut.as_bytes()).unwrap();
        assert!(info.status.is_none());
        assert!(info.end_time.is_none());
        assert_eq!(info.issues.len(), 1, "{:?}", info.issues);
    }

    #[test]
    fn naive_times_are_flagged() {
        let info = BackupInfo::parse(b"end_time=2026-03-10 02:09:51\n").unwrap();
        assert!(info.naive_times);
        assert!(info.end_time.is_some());
    }
}
