//! Findings: what the analysis noticed, each with a stable id, a severity,
//! the object it is about, and a hint that says what to do.

use std::fmt;

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Likely to bite later.
    Warning,
    /// Breaks a restore or hides data.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier, e.g. `wal-gap`.
    pub id: &'static str,
    /// Severity.
    pub severity: Severity,
    /// What it is about: a backup id, a segment, a key, a timeline.
    pub subject: String,
    /// What was found.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    /// A finding without a hint.
    #[must_use]
    pub fn new(
        id: &'static str,
        severity: Severity,
        subject: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            id,
            severity,
            subject: subject.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Finding {
        self.hint = Some(hint.into());
        self
    }
}

/// The ids this crate emits, with a one-line meaning; documented in the README.
pub const CATALOG: &[(&str, &str)] = &[
    (
        "backup-info-unreadable",
        "a backup.info exists but could not be read; the backup is ignored",
    ),
    ("backup-info-field", "a backup.info line could not be read"),
    (
        "backup-info-newer-fields",
        "backup.info has fields this reader (and older barman) does not know",
    ),
    (
        "backup-inconsistent",
        "backup.info fields contradict each other",
    ),
    (
        "backup-missing-info",
        "a base backup directory without backup.info: in progress or crashed",
    ),
    ("backup-failed", "a FAILED backup; never used as an anchor"),
    (
        "backup-status",
        "a backup with a status other than DONE or FAILED",
    ),
    (
        "backup-data-missing",
        "a DONE backup whose data tars are missing",
    ),
    (
        "backup-wal-missing",
        "a DONE backup whose own WAL (begin_wal to end_wal) is incomplete",
    ),
    (
        "backup-incremental",
        "a backup that depends on a parent backup",
    ),
    (
        "backup-id-order",
        "backup id order disagrees with end_time order",
    ),
    (
        "backup-naive-time",
        "backup times without an offset, read as UTC",
    ),
    (
        "backup-keep-unknown",
        "a keep annotation with an unexpected body",
    ),
    (
        "segment-size",
        "the WAL segment size is unknown or inconsistent",
    ),
    (
        "wal-gap",
        "segments missing between archived segments of a timeline",
    ),
    (
        "wal-invalid-name",
        "WAL names impossible for the segment size",
    ),
    (
        "wal-misplaced",
        "WAL files in a hash directory barman does not look in",
    ),
    (
        "wal-duplicate",
        "a segment archived twice with different compressions",
    ),
    (
        "wal-size",
        "an uncompressed segment whose size is not the segment size",
    ),
    (
        "history-missing",
        "a timeline has WAL or backups but no history file",
    ),
    ("history-unreadable", "a history file could not be read"),
    (
        "history-inconsistent",
        "a history file does not extend its parent's",
    ),
    (
        "timeline-off-history",
        "segments written on a timeline after a child forked from it",
    ),
    (
        "systemid-multiple",
        "several system identifiers under one server name",
    ),
    (
        "path-double-nested",
        "the server folder is nested inside itself",
    ),
    (
        "path-includes-server",
        "the destination path already ends with the server folder",
    ),
    (
        "path-sibling-servers",
        "several server folders under one destination path",
    ),
    ("object-unknown", "objects that belong to no known kind"),
    (
        "catalog-empty",
        "no backups and no WAL under the server folder",
    ),
    ("no-usable-backup", "no backup can anchor a restore"),
];
