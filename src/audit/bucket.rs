//! Bucket configuration judged against the catalogs that live in the bucket:
//! lifecycle rules against the retention window and the backup interval,
//! versioning, object lock and retention locks. Free of IO: the store module
//! reads the configuration into [`BucketConfig`].
//!
//! The rule of the domain: a lifecycle rule that deletes (or moves to a class
//! that must be restored before a read) objects under a catalog must act
//! strictly later than the retention window plus the backup interval, or the
//! base backup that anchors the oldest point of the window, or the WAL after
//! it, goes before barman's own retention lets it go.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::{AuditFinding, Scope, time};
use crate::catalog::findings::Severity;

/// The bucket-level settings that decide whether catalog objects survive.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BucketConfig {
    /// `s3`, `gcs`, `azure`.
    pub provider: String,
    /// Bucket or container.
    pub bucket: String,
    /// The endpoint, when not the provider's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Lifecycle rules, as read (disabled ones included).
    pub rules: Vec<LifecycleRule>,
    /// Versioning: `enabled`, `suspended`, `disabled`; `None` when unknown.
    pub versioning: Option<String>,
    /// Object lock (S3) or retention policy (GCS), when configured.
    pub lock: Option<Lock>,
    /// Parts of the configuration that could not be read.
    pub unreadable: Vec<Unreadable>,
}

/// A lifecycle rule, reduced to what matters for catalog objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LifecycleRule {
    /// Rule id (S3) or position (GCS).
    pub id: String,
    /// Whether the rule is active.
    pub enabled: bool,
    /// Key prefixes the rule is limited to, any of them; empty: every key.
    pub prefixes: Vec<String>,
    /// Key suffixes the rule is limited to, any of them (GCS `matchesSuffix`).
    pub suffixes: Vec<String>,
    /// Why the rule never matches what barman-cloud writes: limited by object
    /// tags or a custom time, which barman-cloud does not set.
    pub inert: Option<String>,
    /// Limited by object size or storage class: may match only some objects.
    pub partial_filter: Option<String>,
    /// What the rule does.
    pub actions: Vec<Action>,
}

/// One action of a lifecycle rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Action {
    /// Deletes live objects (S3 `Expiration`, GCS `Delete` on live objects).
    Delete {
        /// After this many days from creation.
        days: Option<u32>,
        /// Every matching object on or after this date (S3 `Date`).
        date: Option<DateTime<Utc>>,
        /// Objects created before this date (GCS `createdBefore`).
        created_before: Option<DateTime<Utc>>,
    },
    /// Moves live objects to another storage class.
    Transition {
        /// After this many days from creation.
        days: Option<u32>,
        /// Every matching object on or after this date (S3 `Date`).
        date: Option<DateTime<Utc>>,
        /// Objects created before this date (GCS `createdBefore`).
        created_before: Option<DateTime<Utc>>,
        /// The class.
        class: String,
        /// Whether objects in that class must be restored before a read.
        archive: bool,
    },
    /// Acts on noncurrent versions or delete markers only.
    Noncurrent {
        /// What it does, as read.
        what: String,
        /// Whether it deletes noncurrent versions.
        expires: bool,
    },
    /// Aborts incomplete multipart uploads.
    AbortMultipart {
        /// After this many days.
        days: u32,
    },
}

/// A lock that keeps objects from being deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lock {
    /// `s3-object-lock` or `gcs-retention-policy`.
    pub kind: String,
    /// Retention mode (S3 GOVERNANCE or COMPLIANCE), when one is set.
    pub mode: Option<String>,
    /// Minimum age before an object can be deleted, in seconds.
    pub seconds: Option<i64>,
    /// GCS: whether the policy is locked for good.
    pub locked: bool,
}

/// A part of the bucket configuration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// `lifecycle`, `versioning`, `object-lock`, `bucket`.
    pub part: String,
    /// `denied`, `unsupported`, `error`.
    pub kind: String,
    /// What the provider said.
    pub detail: String,
    /// The permission or command that reads it.
    pub needs: String,
}

/// A catalog in the bucket and what it must keep.
#[derive(Debug, Clone)]
pub struct CatalogUse {
    /// Env of the database.
    pub env: String,
    /// Service of the database.
    pub svc: String,
    /// Key prefix of the server folder, ending in `/` (`prefix/server/`).
    pub prefix: String,
    /// Where it is, for messages (`s3://bucket/prefix/server`).
    pub display: String,
    /// The recovery window of the retention policy.
    pub window: Option<Duration>,
    /// The shortest ScheduledBackup interval.
    pub interval: Option<Duration>,
    /// The base backup the oldest point of the window needs, and when its
    /// first object was written.
    pub anchor: Option<(String, DateTime<Utc>)>,
}

/// The ids [`judge`] emits.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "lifecycle-deletes-anchor",
        "a lifecycle rule deletes base backups before retention lets them go",
    ),
    (
        "lifecycle-deletes-wal",
        "a lifecycle rule deletes WAL a restore inside the window needs",
    ),
    (
        "lifecycle-archives-needed",
        "a lifecycle rule moves needed objects to a class that must be restored before a read",
    ),
    (
        "lifecycle-without-window",
        "a lifecycle rule deletes catalog objects of a database whose retention is not a recovery window",
    ),
    (
        "bucket-lock-blocks-retention",
        "a retention lock keeps barman's retention from deleting what the window no longer needs",
    ),
    (
        "bucket-versioning-unbounded",
        "versioning keeps every deleted catalog object with no rule expiring noncurrent versions",
    ),
    (
        "bucket-config-unreadable",
        "the bucket configuration could not be read with the credentials at hand",
    ),
    (
        "bucket-config-unsupported",
        "the provider does not expose this configuration where cnpg-ops can read it",
    ),
];

/// Whether a rule limited to `rule_prefix` reaches keys under `prefix`.
fn overlaps(rule_prefix: &str, prefix: &str) -> bool {
    prefix.starts_with(rule_prefix) || rule_prefix.starts_with(prefix)
}

/// Which of the catalog's folders (`base/`, `wals/`) a rule reaches.
fn reaches(rule: &LifecycleRule, prefix: &str) -> Vec<&'static str> {
    ["base", "wals"]
        .into_iter()
        .filter(|part| {
            let folder = format!("{prefix}{part}/");
            rule.prefixes.is_empty() || rule.prefixes.iter().any(|p| overlaps(p, &folder))
        })
        .collect()
}

fn days(d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let s = d.num_seconds() as f64;
    s / 86_400.0
}

struct Needed {
    /// How old objects must be allowed to grow.
    age: Duration,
    /// Whether the interval was assumed.
    interval_assumed: bool,
}

fn needed(u: &CatalogUse) -> Option<Needed> {
    let window = u.window?;
    Some(Needed {
        age: window + u.interval.unwrap_or_else(|| Duration::days(1)),
        interval_assumed: u.interval.is_none(),
    })
}

/// Judges one bucket's configuration against the catalogs in it.
#[must_use]
pub fn judge(cfg: &BucketConfig, uses: &[CatalogUse], now: DateTime<Utc>) -> Vec<AuditFinding> {
    let mut out = Vec::new();
    let bucket_finding = |id: &'static str,
                          severity: Severity,
                          message: String,
                          evidence: Value,
                          hint: Option<String>| AuditFinding {
        id,
        severity,
        scope: Scope::Bucket,
        env: None,
        svc: None,
        location: Some(match &cfg.endpoint {
            Some(e) => format!("{}://{} at {e}", cfg.provider, cfg.bucket),
            None => format!("{}://{}", cfg.provider, cfg.bucket),
        }),
        subject: cfg.bucket.clone(),
        message,
        evidence,
        hint,
    };

    for u in &cfg.unreadable {
        let (id, severity) = if u.kind == "unsupported" {
            ("bucket-config-unsupported", Severity::Info)
        } else {
            ("bucket-config-unreadable", Severity::Warning)
        };
        out.push(bucket_finding(
            id,
            severity,
            format!(
                "cannot read the {} configuration of bucket {}: {}",
                u.part, cfg.bucket, u.detail
            ),
            json!({"part": u.part, "kind": u.kind, "detail": u.detail, "needs": u.needs}),
            Some(if u.kind == "unsupported" {
                format!(
                    "check it by hand: {}; the audit cannot say whether it deletes catalog objects",
                    u.needs
                )
            } else {
                format!(
                    "grant {} to the identity the audit runs as; until then lifecycle rules that delete backups go unseen",
                    u.needs
                )
            }),
        ));
    }

    for u in uses {
        let db_finding = |id: &'static str,
                          severity: Severity,
                          subject: String,
                          message: String,
                          evidence: Value,
                          hint: &str| AuditFinding {
            id,
            severity,
            scope: Scope::Database,
            env: Some(u.env.clone()),
            svc: Some(u.svc.clone()),
            location: Some(u.display.clone()),
            subject,
            message,
            evidence,
            hint: Some(hint.to_owned()),
        };
        let need = needed(u);
        for rule in cfg.rules.iter().filter(|r| r.enabled && r.inert.is_none()) {
            let parts = reaches(rule, &u.prefix);
            if parts.is_empty() {
                continue;
            }
            if !suffix_reaches_barman(&rule.suffixes) {
                continue;
            }
            for action in &rule.actions {
                let (acts_after, date, created_before, verb, archive_class) = match action {
                    Action::Delete {
                        days,
                        date,
                        created_before,
                    } => (*days, *date, *created_before, "deletes", None),
                    Action::Transition {
                        days,
                        date,
                        created_before,
                        class,
                        archive: true,
                    } => (
                        *days,
                        *date,
                        *created_before,
                        "archives",
                        Some(class.clone()),
                    ),
                    _ => continue,
                };
                let date = date.or(created_before);
                let mut ev = serde_json::Map::new();
                ev.insert("bucket".into(), json!(cfg.bucket));
                ev.insert("rule".into(), json!(rule.id));
                ev.insert("prefixes".into(), json!(rule.prefixes));
                ev.insert("reaches".into(), json!(parts));
                ev.insert("catalog".into(), json!(u.display));
                if let Some(d) = acts_after {
                    ev.insert("after_days".into(), json!(d));
                }
                if let Some(d) = date {
                    ev.insert("date".into(), json!(time(d)));
                }
                if !rule.suffixes.is_empty() {
                    ev.insert("suffixes".into(), json!(rule.suffixes));
                }
                if let Some(f) = &rule.partial_filter {
                    ev.insert("filter".into(), json!(f));
                }
                if let Some(c) = &archive_class {
                    ev.insert("storage_class".into(), json!(c));
                }
                if let Some((id, at)) = &u.anchor {
                    ev.insert("anchor_backup".into(), json!(id));
                    ev.insert(
                        "anchor_age_days".into(),
                        json!((days(now - *at) * 100.0).round() / 100.0),
                    );
                }
                let Some(need) = &need else {
                    if archive_class.is_none() {
                        out.push(db_finding(
                            "lifecycle-without-window",
                            Severity::Warning,
                            rule.id.clone(),
                            format!(
                                "lifecycle rule `{}` of bucket {} {verb} objects under {} behind barman's back, and the retention policy is not a recovery window to judge it against",
                                rule.id, cfg.bucket, u.display
                            ),
                            Value::Object(ev),
                            "let barman's retention (retentionPolicy: 30d) delete backups; a lifecycle rule can delete a backup's data while its backup.info still lists it, and CloudNativePG then picks a backup that cannot be restored",
                        ));
                    }
                    continue;
                };
                ev.insert("needed_days".into(), json!(days(need.age)));
                if need.interval_assumed {
                    ev.insert("interval_assumed".into(), json!("1d"));
                }
                // Whether the rule reaches objects the window still needs: every
                // condition it has must hold (GCS conditions are all required).
                let anchor_at = u.anchor.as_ref().map(|(_, at)| *at);
                let by_age = acts_after.is_none_or(|d| {
                    let d = Duration::days(i64::from(d));
                    // Too short for the window, or the anchor (older after missed
                    // backups) is already that old.
                    d <= need.age || anchor_at.is_some_and(|at| d <= now - at)
                });
                let by_created = created_before
                    .is_none_or(|cb| cb > now - need.age || anchor_at.is_some_and(|at| at < cb));
                // An S3 date: from that day on, every matching object goes.
                if !(by_age && by_created) {
                    continue;
                }
                let when = match (acts_after, date) {
                    (Some(d), _) => format!("after {d} day(s)"),
                    (None, Some(d)) if created_before.is_some() => {
                        format!("when created before {}", time(d))
                    }
                    (None, Some(d)) => format!("from {}", time(d)),
                    (None, None) => "at once".to_owned(),
                };
                let needs = format!(
                    "the window needs objects up to {:.1} days old (retention window plus backup interval{})",
                    days(need.age),
                    if need.interval_assumed {
                        ", taken as 1 day"
                    } else {
                        ""
                    }
                );
                let (id, what) = match (&archive_class, parts.contains(&"base")) {
                    (Some(c), _) => (
                        "lifecycle-archives-needed",
                        format!(
                            "moves {} to {c} {when}, and objects in {c} must be restored before barman-cloud-restore can read them",
                            parts.join("/ and ") + "/",
                        ),
                    ),
                    (None, true) => (
                        "lifecycle-deletes-anchor",
                        format!(
                            "deletes base backups {when}{}",
                            if parts.contains(&"wals") {
                                " and the WAL after them"
                            } else {
                                ""
                            }
                        ),
                    ),
                    (None, false) => ("lifecycle-deletes-wal", format!("deletes WAL {when}")),
                };
                let hint = match id {
                    "lifecycle-archives-needed" => {
                        "transition later than the window plus the interval, or to a class that reads without a restore (STANDARD_IA, GLACIER_IR)"
                    }
                    _ => {
                        "make the rule act strictly later than the retention window plus the backup interval, or limit it to other prefixes; barman's retention deletes what the window no longer needs"
                    }
                };
                out.push(db_finding(
                    id,
                    Severity::Error,
                    rule.id.clone(),
                    format!(
                        "lifecycle rule `{}` of bucket {} {what} under {}; {needs}",
                        rule.id, cfg.bucket, u.display
                    ),
                    Value::Object(ev),
                    hint,
                ));
            }
        }

        if let Some(lock) = &cfg.lock
            && let (Some(secs), Some(window)) = (lock.seconds, u.window)
            && lock.kind == "gcs-retention-policy"
            && Duration::seconds(secs) > window
        {
            out.push(db_finding(
                "bucket-lock-blocks-retention",
                Severity::Warning,
                cfg.bucket.clone(),
                format!(
                    "the retention policy of bucket {} keeps objects {:.1} days, longer than the {:.1}-day window of {}: barman's retention fails to delete backups the window no longer needs",
                    cfg.bucket,
                    days(Duration::seconds(secs)),
                    days(window),
                    u.display
                ),
                json!({"bucket": cfg.bucket, "lock_seconds": secs, "window_days": days(window), "locked": lock.locked}),
                "shorten the bucket's retention period below the window, or lengthen the window to match it",
            ));
        }
    }

    if cfg.versioning.as_deref() == Some("enabled") {
        // Catalogs no enabled rule expires the noncurrent versions of.
        let uncovered: Vec<&str> = uses
            .iter()
            .filter(|u| {
                !cfg.rules.iter().any(|r| {
                    r.enabled
                        && !reaches(r, &u.prefix).is_empty()
                        && r.actions
                            .iter()
                            .any(|a| matches!(a, Action::Noncurrent { expires: true, .. }))
                })
            })
            .map(|u| u.display.as_str())
            .collect();
        if !uncovered.is_empty() {
            out.push(bucket_finding(
                "bucket-versioning-unbounded",
                Severity::Info,
                format!(
                    "versioning is enabled on bucket {} and no rule expires noncurrent versions under {}: every backup and WAL segment barman's retention deletes is kept as a noncurrent version",
                    cfg.bucket,
                    uncovered.join(", ")
                ),
                json!({"bucket": cfg.bucket, "versioning": "enabled", "catalogs": uncovered}),
                Some("add a lifecycle rule that expires noncurrent versions after a few days".to_owned()),
            ));
        }
    }
    out
}

/// Whether a rule limited to key suffixes can match anything barman-cloud
/// writes (backup.info, data tars, WAL segments, partial, history and backup
/// history files, each with the compressions barman-cloud uses).
fn suffix_reaches_barman(suffixes: &[String]) -> bool {
    const NAMES: &[&str] = &[
        "backup.info",
        "data.tar",
        "16384.tar",
        "000000010000000000000001",
        "000000010000000000000001.partial",
        "00000002.history",
        "000000010000000000000001.00000028.backup",
    ];
    const COMPRESSIONS: &[&str] = &["", ".gz", ".bz2", ".xz", ".snappy", ".lz4", ".zst"];
    suffixes.is_empty()
        || suffixes.iter().any(|s| {
            NAMES.iter().any(|n| {
                COMPRESSIONS
                    .iter()
                    .any(|c| format!("{n}{c}").ends_with(s.as_str()))
            })
        })
}

/// Whether an S3 storage class must be restored before a GET.
#[must_use]
pub fn s3_class_is_archive(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-11-24T12:00:00Z".parse().unwrap()
    }

    fn use_(window_days: Option<i64>, interval_days: Option<i64>) -> CatalogUse {
        CatalogUse {
            env: "prod".into(),
            svc: "orders".into(),
            prefix: "pg/orders/".into(),
            display: "s3://b/pg/orders".into(),
            window: window_days.map(Duration::days),
            interval: interval_days.map(Duration::days),
            anchor: Some((
                "20261116T000000".into(),
                now() - Duration::days(7) - Duration::hours(12),
            )),
        }
    }

    fn expire(id: &str, prefix: &str, d: u32) -> LifecycleRule {
        LifecycleRule {
            id: id.into(),
            enabled: true,
            prefixes: if prefix.is_empty() {
                vec![]
            } else {
                vec![prefix.into()]
            },
            actions: vec![Action::Delete {
                days: Some(d),
                date: None,
                created_before: None,
            }],
            ..LifecycleRule::default()
        }
    }

    fn cfg(rules: Vec<LifecycleRule>) -> BucketConfig {
        BucketConfig {
            provider: "s3".into(),
            bucket: "b".into(),
            rules,
            versioning: Some("disabled".into()),
            ..BucketConfig::default()
        }
    }

    fn ids(f: &[AuditFinding]) -> Vec<&str> {
        f.iter().map(|f| f.id).collect()
    }

    #[test]
    fn expiry_at_the_window_plus_interval_is_too_early_and_one_day_later_is_fine() {
        // Window 7 days, daily backups: objects must live more than 8 days.
        let u = [use_(Some(7), Some(1))];
        let f = judge(&cfg(vec![expire("r", "", 8)]), &u, now());
        assert_eq!(ids(&f), ["lifecycle-deletes-anchor"]);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(f[0].evidence["after_days"], 8);
        assert_eq!(f[0].evidence["needed_days"], 8.0);
        assert_eq!(f[0].evidence["reaches"], json!(["base", "wals"]));
        assert_eq!(f[0].env.as_deref(), Some("prod"));
        assert!(judge(&cfg(vec![expire("r", "", 9)]), &u, now()).is_empty());
    }

    #[test]
    fn an_anchor_aged_by_missed_backups_is_judged_by_its_real_age() {
        // 9 days is enough for a 7-day window with daily backups, but three
        // missed nights made the anchor 10 days old: the rule deletes it now.
        let mut u = use_(Some(7), Some(1));
        u.anchor = Some(("20261114T000000".into(), now() - Duration::days(10)));
        let f = judge(&cfg(vec![expire("r", "", 9)]), &[u], now());
        assert_eq!(ids(&f), ["lifecycle-deletes-anchor"]);
        assert_eq!(f[0].evidence["anchor_age_days"], 10.0);
    }

    #[test]
    fn gcs_conditions_are_all_required_and_suffixes_must_reach_barman_objects() {
        let u = [use_(Some(7), Some(1))];
        let rule = |days, created_before, suffixes: &[&str]| LifecycleRule {
            id: "g".into(),
            enabled: true,
            suffixes: suffixes.iter().map(|s| (*s).to_owned()).collect(),
            actions: vec![Action::Delete {
                days,
                date: None,
                created_before,
            }],
            ..LifecycleRule::default()
        };
        let long_ago = Some(now() - Duration::days(100));
        // Age 1 day, but only for objects created 100 days ago: nothing needed.
        assert!(judge(&cfg(vec![rule(Some(1), long_ago, &[])]), &u, now()).is_empty());
        // No condition at all: every object, at once.
        let f = judge(&cfg(vec![rule(None, None, &[])]), &u, now());
        assert!(f[0].message.contains("at once"), "{}", f[0].message);
        // Suffixes barman-cloud never writes, and ones it does.
        assert!(
            judge(
                &cfg(vec![rule(Some(1), None, &[".csv", ".parquet"])]),
                &u,
                now()
            )
            .is_empty()
        );
        assert_eq!(
            ids(&judge(
                &cfg(vec![rule(Some(1), None, &[".zst"])]),
                &u,
                now()
            )),
            ["lifecycle-deletes-anchor"]
        );
    }

    #[test]
    fn an_s3_transition_date_moves_every_object_from_that_day() {
        let u = [use_(Some(7), Some(1))];
        let r = LifecycleRule {
            id: "t".into(),
            enabled: true,
            actions: vec![Action::Transition {
                days: None,
                date: Some(now() - Duration::days(365)),
                created_before: None,
                class: "DEEP_ARCHIVE".into(),
                archive: true,
            }],
            ..LifecycleRule::default()
        };
        assert_eq!(
            ids(&judge(&cfg(vec![r]), &u, now())),
            ["lifecycle-archives-needed"]
        );
    }

    #[test]
    fn a_rule_on_the_wal_folder_only_is_a_wal_finding() {
        let u = [use_(Some(7), Some(1))];
        let f = judge(&cfg(vec![expire("w", "pg/orders/wals/", 3)]), &u, now());
        assert_eq!(ids(&f), ["lifecycle-deletes-wal"]);
        assert_eq!(f[0].evidence["reaches"], json!(["wals"]));
    }

    #[test]
    fn rules_on_other_prefixes_tags_or_disabled_do_not_reach_the_catalog() {
        let u = [use_(Some(7), Some(1))];
        let mut tagged = expire("t", "", 1);
        tagged.inert = Some("tag filter".into());
        let mut off = expire("o", "", 1);
        off.enabled = false;
        let rules = vec![
            expire("x", "logs/", 1),
            expire("y", "pg/orders-old/", 1),
            tagged,
            off,
        ];
        assert!(judge(&cfg(rules), &u, now()).is_empty());
    }

    #[test]
    fn a_parent_prefix_reaches_the_catalog() {
        let u = [use_(Some(30), Some(1))];
        let f = judge(&cfg(vec![expire("p", "pg/", 14)]), &u, now());
        assert_eq!(ids(&f), ["lifecycle-deletes-anchor"]);
        assert!(f[0].message.contains("31.0 days"), "{}", f[0].message);
    }

    #[test]
    fn an_unknown_interval_is_taken_as_a_day_and_said() {
        let u = [use_(Some(7), None)];
        let f = judge(&cfg(vec![expire("r", "", 8)]), &u, now());
        assert_eq!(f[0].evidence["interval_assumed"], "1d");
        assert!(f[0].message.contains("taken as 1 day"));
    }

    #[test]
    fn without_a_window_any_deleting_rule_is_a_warning() {
        let u = [use_(None, Some(1))];
        let f = judge(&cfg(vec![expire("r", "", 365)]), &u, now());
        assert_eq!(ids(&f), ["lifecycle-without-window"]);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn transitions_to_archive_classes_only() {
        let u = [use_(Some(7), Some(1))];
        let t = |class: &str, archive| LifecycleRule {
            id: class.into(),
            enabled: true,
            actions: vec![Action::Transition {
                days: Some(3),
                date: None,
                created_before: None,
                class: class.into(),
                archive,
            }],
            ..LifecycleRule::default()
        };
        let f = judge(
            &cfg(vec![
                t("GLACIER", s3_class_is_archive("GLACIER")),
                t("STANDARD_IA", s3_class_is_archive("STANDARD_IA")),
            ]),
            &u,
            now(),
        );
        assert_eq!(ids(&f), ["lifecycle-archives-needed"]);
        assert_eq!(f[0].evidence["storage_class"], "GLACIER");
    }

    #[test]
    fn dates_s3_expires_everything_gcs_only_older_objects() {
        let u = [use_(Some(7), Some(1))];
        let dated =
            |date: Option<DateTime<Utc>>, created_before: Option<DateTime<Utc>>| LifecycleRule {
                id: "d".into(),
                enabled: true,
                actions: vec![Action::Delete {
                    days: None,
                    date,
                    created_before,
                }],
                ..LifecycleRule::default()
            };
        let far_future = now() + Duration::days(400);
        assert_eq!(
            ids(&judge(&cfg(vec![dated(Some(far_future), None)]), &u, now())),
            ["lifecycle-deletes-anchor"]
        );
        // Created before a date long past: nothing the window needs is that old.
        let long_ago = now() - Duration::days(100);
        assert!(judge(&cfg(vec![dated(None, Some(long_ago))]), &u, now()).is_empty());
        let recent = now() - Duration::days(2);
        assert_eq!(
            ids(&judge(&cfg(vec![dated(None, Some(recent))]), &u, now())),
            ["lifecycle-deletes-anchor"]
        );
    }

    #[test]
    fn unreadable_and_unsupported_parts_are_findings() {
        let mut c = cfg(vec![]);
        c.unreadable = vec![
            Unreadable {
                part: "lifecycle".into(),
                kind: "denied".into(),
                detail: "AccessDenied".into(),
                needs: "s3:GetLifecycleConfiguration".into(),
            },
            Unreadable {
                part: "object-lock".into(),
                kind: "unsupported".into(),
                detail: "NotImplemented".into(),
                needs: "aws s3api get-object-lock-configuration".into(),
            },
        ];
        let f = judge(&c, &[use_(Some(7), Some(1))], now());
        assert_eq!(
            ids(&f),
            ["bucket-config-unreadable", "bucket-config-unsupported"]
        );
        assert_eq!(f[0].scope, Scope::Bucket);
        assert!(
            f[0].hint
                .as_deref()
                .unwrap()
                .contains("s3:GetLifecycleConfiguration")
        );
    }

    #[test]
    fn versioning_without_noncurrent_expiry_and_gcs_lock_longer_than_the_window() {
        let mut c = cfg(vec![]);
        c.versioning = Some("enabled".into());
        c.lock = Some(Lock {
            kind: "gcs-retention-policy".into(),
            mode: None,
            seconds: Some(Duration::days(30).num_seconds()),
            locked: false,
        });
        let f = judge(&c, &[use_(Some(7), Some(1))], now());
        assert_eq!(
            ids(&f),
            [
                "bucket-lock-blocks-retention",
                "bucket-versioning-unbounded"
            ]
        );
        // Removing expired delete markers, or expiring noncurrent versions
        // elsewhere, keeps the catalog's versions all the same.
        c.lock = None;
        c.rules = vec![
            LifecycleRule {
                id: "markers".into(),
                enabled: true,
                actions: vec![Action::Noncurrent {
                    what: "remove expired delete markers".into(),
                    expires: false,
                }],
                ..LifecycleRule::default()
            },
            LifecycleRule {
                id: "elsewhere".into(),
                enabled: true,
                prefixes: vec!["logs/".into()],
                actions: vec![Action::Noncurrent {
                    what: "expire noncurrent after 3 days".into(),
                    expires: true,
                }],
                ..LifecycleRule::default()
            },
        ];
        assert_eq!(
            ids(&judge(&c, &[use_(Some(7), Some(1))], now())),
            ["bucket-versioning-unbounded"]
        );
        c.rules = vec![LifecycleRule {
            id: "nc".into(),
            enabled: true,
            actions: vec![Action::Noncurrent {
                what: "expire noncurrent after 3 days".into(),
                expires: true,
            }],
            ..LifecycleRule::default()
        }];
        c.lock = None;
        assert!(judge(&c, &[use_(Some(7), Some(1))], now()).is_empty());
    }
}
