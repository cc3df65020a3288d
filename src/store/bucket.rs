//! Reading a bucket's configuration: S3 lifecycle, versioning and object
//! lock through `aws-sdk-s3`, GCS lifecycle, versioning and retention policy
//! through the JSON API. What cannot be read is recorded with the permission
//! that reads it, never dropped.

use std::time::Duration;

use aws_sdk_s3::config::Region;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types as s3;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{Location, Provider, Store};
use crate::audit::bucket::{
    Action, BucketConfig, LifecycleRule, Lock, Unreadable, s3_class_is_archive,
};

impl Store {
    /// The configuration of the bucket that holds this store's catalogs.
    /// `None` for a local mirror, which has none.
    pub async fn bucket_config(&self) -> Option<BucketConfig> {
        match self.location.provider {
            Provider::File => None,
            Provider::S3 => Some(
                read_s3(
                    &self.location.bucket,
                    self.options
                        .endpoint_url
                        .as_deref()
                        .or(self.location.endpoint.as_deref()),
                    self.options.timeout,
                )
                .await,
            ),
            Provider::Gcs => Some(match self.gcs_json() {
                Some(g) => match g.bucket_metadata().await {
                    Ok(v) => from_gcs(&self.location.bucket, &v),
                    Err(e) => BucketConfig {
                        provider: "gs".into(),
                        bucket: self.location.bucket.clone(),
                        unreadable: vec![gcs_unreadable(&e)],
                        ..BucketConfig::default()
                    },
                },
                None => BucketConfig {
                    provider: "gs".into(),
                    bucket: self.location.bucket.clone(),
                    ..BucketConfig::default()
                },
            }),
            Provider::Azure => Some(azure(&self.location)),
        }
    }
}

/// Azure keeps lifecycle management in the storage account's management
/// API, which the Blob endpoint and its credentials do not reach.
fn azure(location: &Location) -> BucketConfig {
    let account = location.account.clone().unwrap_or_else(|| "ACCOUNT".into());
    BucketConfig {
        provider: "azure".into(),
        bucket: location.bucket.clone(),
        unreadable: vec![Unreadable {
            part: "lifecycle".into(),
            kind: "unsupported".into(),
            detail: "Azure lifecycle management policies belong to the storage account's management API, not the Blob API".into(),
            needs: format!("az storage account management-policy show --account-name {account} --resource-group RG"),
        }],
        ..BucketConfig::default()
    }
}

fn gcs_unreadable(e: &object_store::Error) -> Unreadable {
    let (kind, detail) = super::error::classify(e);
    let denied = matches!(
        kind,
        super::AccessKind::AccessDenied | super::AccessKind::Unauthenticated
    );
    Unreadable {
        part: "bucket".into(),
        kind: if denied { "denied" } else { "error" }.into(),
        detail,
        needs: "storage.buckets.get (roles/storage.legacyBucketReader or a custom role)".into(),
    }
}

fn day(n: Option<i64>) -> Option<u32> {
    n.and_then(|d| u32::try_from(d).ok())
}

/// A GCS bucket resource (`lifecycle`, `versioning`, `retentionPolicy`).
#[must_use]
pub fn from_gcs(bucket: &str, v: &Value) -> BucketConfig {
    let mut cfg = BucketConfig {
        provider: "gs".into(),
        bucket: bucket.to_owned(),
        versioning: Some(
            if v.pointer("/versioning/enabled").and_then(Value::as_bool) == Some(true) {
                "enabled"
            } else {
                "disabled"
            }
            .into(),
        ),
        ..BucketConfig::default()
    };
    if let Some(p) = v.get("retentionPolicy") {
        cfg.lock = Some(Lock {
            kind: "gcs-retention-policy".into(),
            mode: None,
            seconds: p
                .get("retentionPeriod")
                .and_then(|s| s.as_str().and_then(|s| s.parse().ok()).or(s.as_i64())),
            locked: p.get("isLocked").and_then(Value::as_bool) == Some(true),
        });
    }
    let rules = v
        .pointer("/lifecycle/rule")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, r) in rules.iter().enumerate() {
        let c = r.get("condition").cloned().unwrap_or(Value::Null);
        let strings = |key: &str| -> Vec<String> {
            c.get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let date = |key: &str| {
            c.get(key)
                .and_then(Value::as_str)
                .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| DateTime::<Utc>::from_naive_utc_and_offset(d, Utc))
        };
        let noncurrent = c.get("isLive").and_then(Value::as_bool) == Some(false)
            || [
                "numNewerVersions",
                "daysSinceNoncurrentTime",
                "noncurrentTimeBefore",
            ]
            .iter()
            .any(|k| c.get(*k).is_some());
        let inert = ["daysSinceCustomTime", "customTimeBefore"]
            .iter()
            .find(|k| c.get(**k).is_some())
            .map(|k| format!("{k}: barman-cloud sets no custom time"));
        let classes = strings("matchesStorageClass");
        let action = r
            .pointer("/action/type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let age = day(c.get("age").and_then(Value::as_i64));
        let act = match (action, noncurrent) {
            (_, true) => Action::Noncurrent {
                what: format!("{} noncurrent versions", action.to_lowercase())
                    .replace("delete noncurrent", "expire noncurrent"),
                expires: action == "Delete",
            },
            ("Delete", false) => Action::Delete {
                days: age,
                date: None,
                created_before: date("createdBefore"),
            },
            ("SetStorageClass", false) => Action::Transition {
                days: age,
                date: None,
                created_before: date("createdBefore"),
                class: r
                    .pointer("/action/storageClass")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                // Every GCS class reads without a restore.
                archive: false,
            },
            ("AbortIncompleteMultipartUpload", false) => Action::AbortMultipart {
                days: age.unwrap_or(0),
            },
            (other, false) => Action::Noncurrent {
                what: format!("unknown action {other}"),
                expires: false,
            },
        };
        cfg.rules.push(LifecycleRule {
            id: format!("rule {}", i + 1),
            enabled: true,
            prefixes: strings("matchesPrefix"),
            suffixes: strings("matchesSuffix"),
            inert,
            partial_filter: (!classes.is_empty())
                .then(|| format!("storage classes {}", classes.join(", "))),
            actions: vec![act],
        });
    }
    cfg
}

/// One S3 lifecycle rule.
fn from_s3_rule(r: &s3::LifecycleRule) -> LifecycleRule {
    let f = r.filter();
    let and = f.and_then(s3::LifecycleRuleFilter::and);
    #[allow(deprecated)]
    let prefix = f
        .and_then(s3::LifecycleRuleFilter::prefix)
        .or_else(|| and.and_then(s3::LifecycleRuleAndOperator::prefix))
        .or_else(|| r.prefix())
        .unwrap_or("");
    let tagged = f.and_then(s3::LifecycleRuleFilter::tag).is_some()
        || and.is_some_and(|a| !a.tags().is_empty());
    let gt = f
        .and_then(s3::LifecycleRuleFilter::object_size_greater_than)
        .or_else(|| and.and_then(s3::LifecycleRuleAndOperator::object_size_greater_than));
    let lt = f
        .and_then(s3::LifecycleRuleFilter::object_size_less_than)
        .or_else(|| and.and_then(s3::LifecycleRuleAndOperator::object_size_less_than));
    let partial = match (gt, lt) {
        (None, None) => None,
        (g, l) => Some(
            [
                g.map(|g| format!("larger than {g} bytes")),
                l.map(|l| format!("smaller than {l} bytes")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and "),
        ),
    };
    let date = |d: Option<&aws_sdk_s3::primitives::DateTime>| {
        d.and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), 0))
    };
    let mut actions = Vec::new();
    if let Some(e) = r.expiration() {
        if e.days().is_some() || e.date().is_some() {
            actions.push(Action::Delete {
                days: day(e.days().map(i64::from)),
                date: date(e.date()),
                created_before: None,
            });
        }
        if e.expired_object_delete_marker() == Some(true) {
            actions.push(Action::Noncurrent {
                what: "remove expired delete markers".into(),
                expires: false,
            });
        }
    }
    for t in r.transitions() {
        let class = t
            .storage_class()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        actions.push(Action::Transition {
            days: day(t.days().map(i64::from)),
            date: date(t.date()),
            created_before: None,
            archive: s3_class_is_archive(&class),
            class,
        });
    }
    if let Some(n) = r.noncurrent_version_expiration() {
        actions.push(Action::Noncurrent {
            what: format!(
                "expire noncurrent versions after {} day(s)",
                n.noncurrent_days().unwrap_or(0)
            ),
            expires: true,
        });
    }
    if !r.noncurrent_version_transitions().is_empty() {
        actions.push(Action::Noncurrent {
            what: "transition noncurrent versions".into(),
            expires: false,
        });
    }
    if let Some(a) = r.abort_incomplete_multipart_upload() {
        actions.push(Action::AbortMultipart {
            days: day(a.days_after_initiation().map(i64::from)).unwrap_or(0),
        });
    }
    LifecycleRule {
        id: r.id().unwrap_or("(no id)").to_owned(),
        enabled: *r.status() == s3::ExpirationStatus::Enabled,
        prefixes: if prefix.is_empty() {
            Vec::new()
        } else {
            vec![prefix.to_owned()]
        },
        suffixes: Vec::new(),
        inert: tagged.then(|| "tag filter: barman-cloud tags nothing it writes by default".into()),
        partial_filter: partial,
        actions,
    }
}

/// How an S3 call failed, as a part that could not be read.
fn s3_unreadable<E, R>(part: &str, needs: &str, e: &SdkError<E, R>) -> Unreadable
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = e.code().unwrap_or_default();
    let message = e.message().unwrap_or_default();
    let detail = match e {
        SdkError::ServiceError(_) if !code.is_empty() => format!("{code}: {message}")
            .trim_end_matches(": ")
            .to_owned(),
        // A response that did not parse, a timeout, no connection: the chain of causes says why.
        other => chain(other),
    };
    let kind = match code {
        "AccessDenied" | "AllAccessDisabled" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
            "denied"
        }
        "NotImplemented" | "MethodNotAllowed" => "unsupported",
        _ => "error",
    };
    Unreadable {
        part: part.into(),
        kind: kind.into(),
        detail,
        needs: needs.into(),
    }
}

/// An error and its causes, each once, on one line of at most 400 characters.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let line = parts.join(": ");
    match line.char_indices().nth(400) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

/// The region a redirect names (`x-amz-bucket-region`).
fn redirect_region<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<String> {
    e.raw_response()?
        .headers()
        .get("x-amz-bucket-region")
        .map(str::to_owned)
}

async fn client(
    endpoint: Option<&str>,
    region: Option<String>,
    timeout: Duration,
) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build(),
    );
    if let Some(r) = region {
        loader = loader.region(Region::new(r));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        b = b.region(Region::new("us-east-1"));
    }
    if let Some(e) = endpoint {
        b = b.endpoint_url(e).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(b.build())
}

/// Lifecycle, versioning and object lock of an S3 bucket.
pub async fn read_s3(bucket: &str, endpoint: Option<&str>, timeout: Duration) -> BucketConfig {
    let mut cfg = BucketConfig {
        provider: "s3".into(),
        bucket: bucket.to_owned(),
        ..BucketConfig::default()
    };
    let mut c = client(endpoint, None, timeout).await;

    let mut lifecycle = c
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await;
    // A bucket in another region answers with a redirect that names its region.
    if let Err(e) = &lifecycle
        && endpoint.is_none()
        && let Some(region) = redirect_region(e)
    {
        c = client(endpoint, Some(region), timeout).await;
        lifecycle = c
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await;
    }
    match lifecycle {
        Ok(out) => cfg.rules = out.rules().iter().map(from_s3_rule).collect(),
        Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => {}
        // The store did not answer at all: the other calls would fail the same way.
        Err(e) if !matches!(e, SdkError::ServiceError(_)) => {
            cfg.unreadable.push(s3_unreadable(
                "bucket",
                "s3:GetLifecycleConfiguration, s3:GetBucketVersioning, s3:GetBucketObjectLockConfiguration",
                &e,
            ));
            return cfg;
        }
        Err(e) => cfg.unreadable.push(s3_unreadable(
            "lifecycle",
            "s3:GetLifecycleConfiguration",
            &e,
        )),
    }

    match c.get_bucket_versioning().bucket(bucket).send().await {
        Ok(out) => {
            cfg.versioning = Some(
                match out.status() {
                    Some(s3::BucketVersioningStatus::Enabled) => "enabled",
                    Some(s3::BucketVersioningStatus::Suspended) => "suspended",
                    _ => "disabled",
                }
                .into(),
            );
        }
        Err(e) => cfg
            .unreadable
            .push(s3_unreadable("versioning", "s3:GetBucketVersioning", &e)),
    }

    match c
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => {
            let lock = out.object_lock_configuration();
            let enabled = lock
                .and_then(s3::ObjectLockConfiguration::object_lock_enabled)
                .is_some_and(|e| *e == s3::ObjectLockEnabled::Enabled);
            if enabled {
                let retention = lock
                    .and_then(s3::ObjectLockConfiguration::rule)
                    .and_then(s3::ObjectLockRule::default_retention);
                cfg.lock = Some(Lock {
                    kind: "s3-object-lock".into(),
                    mode: retention
                        .and_then(s3::DefaultRetention::mode)
                        .map(|m| m.as_str().to_owned()),
                    seconds: retention.and_then(|r| {
                        r.days()
                            .map(|d| i64::from(d) * 86_400)
                            .or_else(|| r.years().map(|y| i64::from(y) * 365 * 86_400))
                    }),
                    locked: false,
                });
            }
        }
        Err(e) if e.code() == Some("ObjectLockConfigurationNotFoundError") => {}
        Err(e) => cfg.unreadable.push(s3_unreadable(
            "object-lock",
            "s3:GetBucketObjectLockConfiguration",
            &e,
        )),
    }
    cfg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn gcs_bucket_resource() {
        let v = json!({
            "versioning": {"enabled": true},
            "retentionPolicy": {"retentionPeriod": "864000", "isLocked": true},
            "lifecycle": {"rule": [
                {"action": {"type": "Delete"}, "condition": {"age": 14, "matchesPrefix": ["pg/"]}},
                {"action": {"type": "Delete"}, "condition": {"numNewerVersions": 2}},
                {"action": {"type": "SetStorageClass", "storageClass": "ARCHIVE"}, "condition": {"age": 3}},
                {"action": {"type": "Delete"}, "condition": {"daysSinceCustomTime": 1}},
                {"action": {"type": "Delete"}, "condition": {"createdBefore": "2026-01-02", "matchesSuffix": [".gz"]}}
            ]}
        });
        let c = from_gcs("b", &v);
        assert_eq!(c.versioning.as_deref(), Some("enabled"));
        let lock = c.lock.unwrap();
        assert_eq!((lock.seconds, lock.locked), (Some(864_000), true));
        assert_eq!(c.rules.len(), 5);
        assert_eq!(c.rules[0].prefixes, ["pg/"]);
        assert_eq!(
            c.rules[0].actions,
            [Action::Delete {
                days: Some(14),
                date: None,
                created_before: None
            }]
        );
        assert!(matches!(
            &c.rules[1].actions[0],
            Action::Noncurrent { expires: true, .. }
        ));
        assert!(matches!(
            &c.rules[2].actions[0],
            Action::Transition { archive: false, .. }
        ));
        assert!(c.rules[3].inert.is_some());
        assert_eq!(c.rules[4].suffixes, [".gz"]);
        assert!(matches!(
            &c.rules[4].actions[0],
            Action::Delete { created_before: Some(d), .. } if d.to_rfc3339() == "2026-01-02T00:00:00+00:00"
        ));
    }

    #[test]
    fn s3_rules() {
        let rule = s3::LifecycleRule::builder()
            .id("wal-expiry")
            .status(s3::ExpirationStatus::Enabled)
            .filter(
                s3::LifecycleRuleFilter::builder()
                    .and(
                        s3::LifecycleRuleAndOperator::builder()
                            .prefix("pg/orders/wals/")
                            .object_size_greater_than(1024)
                            .build(),
                    )
                    .build(),
            )
            .expiration(s3::LifecycleExpiration::builder().days(5).build())
            .transitions(
                s3::Transition::builder()
                    .days(2)
                    .storage_class(s3::TransitionStorageClass::Glacier)
                    .build(),
            )
            .build()
            .unwrap();
        let r = from_s3_rule(&rule);
        assert_eq!(r.id, "wal-expiry");
        assert!(r.enabled);
        assert_eq!(r.prefixes, ["pg/orders/wals/"]);
        assert_eq!(r.partial_filter.as_deref(), Some("larger than 1024 bytes"));
        assert_eq!(r.inert, None);
        assert_eq!(r.actions.len(), 2);
        assert!(
            matches!(&r.actions[1], Action::Transition { archive: true, class, .. } if class == "GLACIER")
        );

        let tagged = s3::LifecycleRule::builder()
            .status(s3::ExpirationStatus::Disabled)
            .filter(
                s3::LifecycleRuleFilter::builder()
                    .tag(s3::Tag::builder().key("k").value("v").build().unwrap())
                    .build(),
            )
            .build()
            .unwrap();
        let r = from_s3_rule(&tagged);
        assert!(!r.enabled);
        assert!(r.inert.is_some());
        assert!(r.prefixes.is_empty());
    }
}
