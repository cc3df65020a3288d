//! Retention simulation: what the next `barman-cloud-backup-delete
//! --retention-policy` run (which CloudNativePG runs after every backup, or
//! on the plugin's maintenance loop) would delete, and where the first
//! recoverable point moves. The rules follow barman's: backups ordered by
//! id, the newest DONE backup that ended before the window start is the
//! anchor and stays, FAILED backups are never obsolete, WAL goes only with
//! a deleted backup, history files never go.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::analysis::{AnalysisOptions, Catalog, Keep};
use super::listing::CatalogInput;
use super::names::{BaseFile, WalKind};
use super::time::format_utc;
use super::wal::RawSegmentName;

/// A retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS` (CNPG `7d`, `4w`, `1m`; a month is 31 days).
    RecoveryWindow {
        /// The number.
        n: u32,
        /// `d`, `w` or `m`.
        unit: char,
    },
    /// `REDUNDANCY n`.
    Redundancy(u32),
}

impl Policy {
    /// The window length of a recovery-window policy.
    #[must_use]
    pub fn window(self) -> Option<Duration> {
        match self {
            Policy::RecoveryWindow { n, unit } => {
                let days = i64::from(n)
                    * match unit {
                        'w' => 7,
                        'm' => 31,
                        _ => 1,
                    };
                Some(Duration::days(days))
            }
            Policy::Redundancy(_) => None,
        }
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let p = Policy::parse_any(s)?;
        if let Policy::RecoveryWindow { n, unit } = p {
            let per = match unit {
                'w' => 7,
                'm' => 31,
                _ => 1,
            };
            if u64::from(n) * per > 36_500 {
                return Err(format!(
                    "`{s}` is a window of more than 100 years; no catalog goes back that far"
                ));
            }
        }
        Ok(p)
    }
}

impl Policy {
    fn parse_any(s: &str) -> Result<Policy, String> {
        let err = || {
            format!(
                "`{s}` is not a retention policy; expected CloudNativePG's form (7d, 4w, 1m) or barman's (RECOVERY WINDOW OF 7 DAYS, REDUNDANCY 3)"
            )
        };
        let t = s.trim();
        // CNPG: ^[1-9][0-9]*[dwm]$
        if let Some(unit) = t.chars().last().filter(|c| matches!(c, 'd' | 'w' | 'm')) {
            let num = &t[..t.len() - 1];
            if !num.starts_with('0') && !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
                return num
                    .parse()
                    .map(|n| Policy::RecoveryWindow { n, unit })
                    .map_err(|_| err());
            }
        }
        let words: Vec<String> = t.split_whitespace().map(str::to_ascii_uppercase).collect();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["REDUNDANCY", n] => n
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .map(Policy::Redundancy)
                .ok_or_else(err),
            ["RECOVERY", "WINDOW", "OF", n, unit] => {
                let n: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(err)?;
                let unit = match unit.trim_end_matches('S') {
                    "DAY" => 'd',
                    "WEEK" => 'w',
                    "MONTH" => 'm',
                    _ => return Err(err()),
                };
                Ok(Policy::RecoveryWindow { n, unit })
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            Policy::RecoveryWindow { n, unit } => {
                let word = match unit {
                    'w' => "WEEKS",
                    'm' => "MONTHS",
                    _ => "DAYS",
                };
                write!(f, "RECOVERY WINDOW OF {n} {word}")
            }
        }
    }
}

/// What the policy says about one backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupVerdict {
    /// Backup id.
    pub id: String,
    /// Its status.
    pub status: String,
    /// End time.
    pub end_time: Option<DateTime<Utc>>,
    /// `VALID`, `OBSOLETE`, `OBSOLETE*` (kept for minimum redundancy), `KEEP:FULL`, `KEEP:STANDALONE` or `-` (not DONE).
    pub retention: String,
    /// Whether the run deletes it.
    pub deleted: bool,
    /// Whether it is the anchor of the window (the newest DONE backup ended before it).
    pub anchor: bool,
}

/// WAL deleted along with one backup.
#[derive(Debug, Clone, Serialize)]
pub struct WalDeletion {
    /// The backup whose deletion removes it.
    pub with_backup: String,
    /// Timeline.
    pub timeline: u32,
    /// First file removed.
    pub first: String,
    /// Last file removed.
    pub last: String,
    /// Objects removed (segments, partials, backup history files).
    pub objects: u64,
    /// Bytes removed.
    pub bytes: u64,
}

/// The outcome of a simulated retention run.
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    /// The policy in barman's words.
    pub policy: String,
    /// "Now" of the run.
    pub now: DateTime<Utc>,
    /// Start of the window (now − window) for a recovery-window policy.
    pub point_of_recoverability: Option<DateTime<Utc>>,
    /// `--minimum-redundancy` (CloudNativePG passes none: 0).
    pub minimum_redundancy: u32,
    /// Whether barman-cloud-backup-delete would run at all.
    pub runs: bool,
    /// Per backup, newest first (barman's order: by id).
    pub backups: Vec<BackupVerdict>,
    /// Backups deleted, oldest first.
    pub deleted_backups: Vec<String>,
    /// WAL deleted, per backup and timeline.
    pub deleted_wal: Vec<WalDeletion>,
    /// Objects deleted in total.
    pub deleted_objects: u64,
    /// Bytes deleted in total.
    pub deleted_bytes: u64,
    /// First recoverable point now (strict: backup usable and WAL unbroken).
    pub first_recoverable_point_before: Option<DateTime<Utc>>,
    /// First recoverable point after the run.
    pub first_recoverable_point_after: Option<DateTime<Utc>>,
    /// CloudNativePG's value (end of the oldest backup it treats as done) now.
    pub cnpg_first_recoverability_point_before: Option<DateTime<Utc>>,
    /// CloudNativePG's value after the run.
    pub cnpg_first_recoverability_point_after: Option<DateTime<Utc>>,
    /// Things to know.
    pub notes: Vec<String>,
}

/// A small code per WAL file kind, so a segment, its partial and a backup history file
/// with the same segment number stay distinct in the deletion set.
fn kind_code(kind: WalKind) -> u8 {
    match kind {
        WalKind::Segment => 0,
        WalKind::Partial => 1,
        WalKind::BackupHistory { .. } => 2,
    }
}

/// One backup as barman's retention sees it.
struct Entry<'a> {
    id: &'a str,
    status: &'a str,
    timeline: Option<u32>,
    begin_wal: Option<RawSegmentName>,
    end_wal: Option<RawSegmentName>,
    end_time: Option<DateTime<Utc>>,
    keep: Option<Keep>,
}

/// Simulates one retention run over `input` (analysed as `catalog`).
#[must_use]
#[allow(clippy::too_many_lines)]
pub fn simulate(
    input: &CatalogInput,
    catalog: &Catalog,
    policy: Policy,
    now: DateTime<Utc>,
    minimum_redundancy: u32,
) -> RetentionReport {
    let mut notes = Vec::new();
    // barman's catalog: every backup with a backup.info, ordered by id.
    let mut entries: Vec<Entry<'_>> = catalog
        .backups
        .iter()
        .filter(|b| b.status != "MISSING_INFO")
        .map(|b| {
            let info = b.info.as_ref();
            Entry {
                id: &b.id,
                status: &b.status,
                timeline: b.timeline,
                begin_wal: info.and_then(|i| i.begin_wal),
                end_wal: info.and_then(|i| i.end_wal),
                end_time: b.end_time,
                keep: b.keep.clone(),
            }
        })
        .collect();
    entries.sort_by(|a, b| b.id.cmp(a.id));
    let por = policy.window().map(|w| now - w);
    let unreadable: Vec<&str> = entries
        .iter()
        .filter(|e| e.status == "UNREADABLE_INFO")
        .map(|e| e.id)
        .collect();
    let runs = unreadable.is_empty();
    if !runs {
        notes.push(format!(
            "barman-cloud-backup-delete refuses to run while a backup.info is unreadable ({}): nothing is deleted and WAL keeps piling up",
            unreadable.join(", ")
        ));
    }

    let mut verdicts = Vec::new();
    let mut found = false;
    let mut valid = 0u32;
    for (i, e) in entries.iter().enumerate() {
        let keep_label = e.keep.as_ref().map(|k| match k {
            Keep::Full => "KEEP:FULL".to_owned(),
            Keep::Standalone => "KEEP:STANDALONE".to_owned(),
        });
        let mut anchor = false;
        let retention = if e.status == "DONE" {
            match policy {
                Policy::RecoveryWindow { .. } => {
                    if !found {
                        valid += 1;
                        if e.end_time.zip(por).is_some_and(|(t, p)| t < p) {
                            found = true;
                            anchor = true;
                        }
                        keep_label.unwrap_or_else(|| "VALID".to_owned())
                    } else if valid < minimum_redundancy {
                        valid += 1;
                        keep_label.unwrap_or_else(|| "OBSOLETE*".to_owned())
                    } else {
                        keep_label.unwrap_or_else(|| "OBSOLETE".to_owned())
                    }
                }
                Policy::Redundancy(n) => {
                    let done_before = entries[..i].iter().filter(|x| x.status == "DONE").count();
                    let limit = n.max(minimum_redundancy) as usize;
                    keep_label.unwrap_or_else(|| {
                        if done_before < limit {
                            "VALID".to_owned()
                        } else {
                            "OBSOLETE".to_owned()
                        }
                    })
                }
            }
        } else {
            "-".to_owned()
        };
        verdicts.push(BackupVerdict {
            id: e.id.to_owned(),
            status: e.status.to_owned(),
            end_time: e.end_time,
            deleted: runs && retention == "OBSOLETE",
            retention,
            anchor,
        });
    }
    if let (Some(p), false) = (por, found) {
        notes.push(format!(
            "no DONE backup ended before the window start {}: nothing is obsolete yet",
            format_utc(p)
        ));
    }

    // Deletions, oldest first, each with its WAL clean-up.
    let size = catalog.segment_size;
    let mut deleted_ids: BTreeSet<String> = BTreeSet::new();
    let mut deleted_wal_keys: BTreeSet<(u32, u64, u8)> = BTreeSet::new();
    let mut deletions = Vec::new();
    let mut order: Vec<&BackupVerdict> = verdicts.iter().filter(|v| v.deleted).collect();
    order.reverse();
    for v in &order {
        let d = v.id.as_str();
        let remaining: Vec<&Entry<'_>> = entries
            .iter()
            .filter(|e| !deleted_ids.contains(e.id))
            .collect();
        let pos = remaining.iter().position(|e| e.id == d).unwrap_or(0);
        let done_like = |e: &&&Entry<'_>| e.status == "DONE" || e.status == "WAITING_FOR_WALS";
        // Older backups come after `pos` in id-descending order.
        let mut protect: Vec<(RawSegmentName, RawSegmentName)> = Vec::new();
        let mut remove = true;
        for prev in remaining[pos + 1..].iter().filter(done_like) {
            if let Some(Keep::Standalone) = prev.keep {
                if let (Some(b), Some(e)) = (prev.begin_wal, prev.end_wal) {
                    protect.push((b, e));
                }
            } else {
                remove = false;
                break;
            }
        }
        deleted_ids.insert(d.to_owned());
        if !remove {
            notes.push(format!(
                "deleting {d} removes no WAL: an older backup is still kept"
            ));
            continue;
        }
        let until = remaining[..pos]
            .iter()
            .rev()
            .find(done_like)
            .copied()
            .unwrap_or(remaining[pos]);
        let Some(until_begin) = until.begin_wal else {
            continue;
        };
        let protected_tlis: BTreeSet<u32> = remaining
            .iter()
            .filter(|e| e.id != d)
            .filter_map(|e| e.timeline)
            .filter(|t| Some(*t) != until.timeline)
            .collect();
        let mut per_tli: std::collections::BTreeMap<u32, WalDeletion> =
            std::collections::BTreeMap::new();
        for o in &input.listing.wal {
            let raw = o.name.raw;
            if protected_tlis.contains(&raw.tli)
                || raw >= until_begin
                || protect.iter().any(|(b, e)| *b <= raw && raw <= *e)
            {
                continue;
            }
            let Some(id) = raw.resolve(size) else {
                continue;
            };
            if !deleted_wal_keys.insert((id.tli, id.segno, kind_code(o.name.kind))) {
                continue;
            }
            let w = per_tli.entry(raw.tli).or_insert_with(|| WalDeletion {
                with_backup: d.to_owned(),
                timeline: raw.tli,
                first: o.name.to_string(),
                last: o.name.to_string(),
                objects: 0,
                bytes: 0,
            });
            w.objects += 1;
            w.bytes += o.size;
            let name = o.name.to_string();
            if name < w.first {
                w.first.clone_from(&name);
            }
            if name > w.last {
                w.last = name;
            }
        }
        deletions.extend(per_tli.into_values());
    }

    // The catalog after the run.
    let mut pruned = input.clone();
    pruned.listing.wal.retain(|o| {
        o.name.raw.resolve(size).is_none_or(|id| {
            !deleted_wal_keys.contains(&(id.tli, id.segno, kind_code(o.name.kind)))
        })
    });
    for id in &deleted_ids {
        if let Some(files) = pruned.listing.base.get_mut(id) {
            files.retain(|f| !matches!(f.file, BaseFile::Tar { .. } | BaseFile::BackupInfo));
            if files.is_empty() {
                pruned.listing.base.remove(id);
            }
        }
        pruned.backup_infos.remove(id);
    }
    let mut opts = AnalysisOptions::at(now);
    opts.segment_size = Some(size);
    let after = Catalog::analyse(&pruned, opts);

    let (deleted_backup_objects, deleted_backup_bytes) = input
        .listing
        .base
        .iter()
        .filter(|(id, _)| deleted_ids.contains(*id))
        .flat_map(|(_, f)| f.iter())
        .filter(|f| matches!(f.file, BaseFile::Tar { .. } | BaseFile::BackupInfo))
        .fold((0u64, 0u64), |(n, bytes), f| (n + 1, bytes + f.size));

    let frp_after = after.first_recoverable_point().map(|f| f.0);
    if let (Some(p), Some(f)) = (por, frp_after)
        && f > p
    {
        notes.push(format!(
            "after the run the first recoverable point ({}) is later than the window start ({}): the window is not covered",
            format_utc(f),
            format_utc(p)
        ));
    }
    let mut ordered_deleted: Vec<String> = deleted_ids.into_iter().collect();
    ordered_deleted.sort();
    RetentionReport {
        policy: policy.to_string(),
        now,
        point_of_recoverability: por,
        minimum_redundancy,
        runs,
        backups: verdicts,
        deleted_backups: ordered_deleted,
        deleted_objects: deletions.iter().map(|d| d.objects).sum::<u64>() + deleted_backup_objects,
        deleted_bytes: deletions.iter().map(|d| d.bytes).sum::<u64>() + deleted_backup_bytes,
        deleted_wal: deletions,
        first_recoverable_point_before: catalog.first_recoverable_point().map(|f| f.0),
        first_recoverable_point_after: frp_after,
        cnpg_first_recoverability_point_before: catalog.cnpg_first_recoverability_point(),
        cnpg_first_recoverability_point_after: after.cnpg_first_recoverability_point(),
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_in_both_dialects() {
        assert_eq!(
            "7d".parse::<Policy>().unwrap(),
            Policy::RecoveryWindow { n: 7, unit: 'd' }
        );
        assert_eq!(
            "4w".parse::<Policy>().unwrap().window(),
            Some(Duration::days(28))
        );
        assert_eq!(
            "1m".parse::<Policy>().unwrap().window(),
            Some(Duration::days(31))
        );
        assert_eq!(
            "recovery window of 2 weeks".parse::<Policy>().unwrap(),
            Policy::RecoveryWindow { n: 2, unit: 'w' }
        );
        assert_eq!(
            "RECOVERY WINDOW OF 1 MONTH"
                .parse::<Policy>()
                .unwrap()
                .to_string(),
            "RECOVERY WINDOW OF 1 MONTHS"
        );
        assert_eq!(
            "REDUNDANCY 3".parse::<Policy>().unwrap(),
            Policy::Redundancy(3)
        );
        for bad in [
            "0d",
            "07d",
            "7h",
            "d",
            "REDUNDANCY 0",
            "RECOVERY WINDOW OF 7 YEARS",
            "",
            "7 d",
        ] {
            assert!(bad.parse::<Policy>().is_err(), "{bad}");
        }
    }
}
