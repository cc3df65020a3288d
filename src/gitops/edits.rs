//! Edits to the hand-written files around a database: the kustomization's
//! resource list, the env's Flux Kustomizations, the Workload Identity
//! bindings and bucket readers in the Terraform YAML. Each keeps comments and
//! layout (see `yaml::edit`) and returns `None` when the file already says
//! what is asked.

use serde_json::{Value, json};

use crate::yaml::edit::{EditError, Editor};
use crate::yaml::{self, Step};

/// The Workload Identity member string both halves share: `<ns>/<ksa>`;
/// CloudNativePG runs a Cluster's pods as the service account named after it.
#[must_use]
pub fn binding(namespace: &str, cluster: &str) -> String {
    format!("{namespace}/{cluster}")
}

fn find_doc(text: &str, pred: impl Fn(&Value) -> bool) -> Result<Option<usize>, EditError> {
    let docs = yaml::parse(text)?;
    Ok(docs
        .iter()
        .enumerate()
        .find(|(_, d)| d.root.as_ref().is_some_and(|n| pred(&n.to_json())))
        .map(|(i, _)| i))
}

/// Appends `<ns>/<cluster>` to the `workload_identity_bindings` of service
/// account `account` in a service-accounts YAML.
pub fn bind_workload_identity(
    text: &str,
    account: &str,
    member: &str,
) -> Result<Option<String>, EditError> {
    let has_account = |v: &Value| {
        v.get("service_accounts")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s.get("name").and_then(Value::as_str) == Some(account))
            })
    };
    let Some(doc) = find_doc(text, has_account)? else {
        return Err(EditError::Path {
            path: format!("service_accounts[name={account}]"),
            problem: "does not exist".into(),
        });
    };
    let path = [
        Step::key("service_accounts"),
        Step::Where("name".into(), account.into()),
        Step::key("workload_identity_bindings"),
    ];
    let current = yaml::parse_values(text)?
        .into_iter()
        .nth(doc)
        .unwrap_or(Value::Null);
    let present = current["service_accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == account)
        .filter_map(|s| s["workload_identity_bindings"].as_array())
        .flatten()
        .any(|b| b == member);
    if present {
        return Ok(None);
    }
    let mut e = Editor::new(text);
    e.append(doc, &path, &json!(member))?;
    Ok(Some(e.finish()))
}

/// Appends `member` to the `readers` of `bucket` in a buckets YAML (the
/// cross-env read a clone needs).
pub fn grant_bucket_reader(
    text: &str,
    bucket: &str,
    member: &str,
) -> Result<Option<String>, EditError> {
    let values = yaml::parse_values(text)?;
    let Some((doc, v)) = values.iter().enumerate().find(|(_, v)| {
        v["buckets"]
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["name"] == bucket))
    }) else {
        return Err(EditError::Path {
            path: format!("buckets[name={bucket}]"),
            problem: "does not exist".into(),
        });
    };
    let present = v["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["name"] == bucket)
        .filter_map(|b| b["readers"].as_array())
        .flatten()
        .any(|r| r == member);
    if present {
        return Ok(None);
    }
    let mut e = Editor::new(text);
    e.append(
        doc,
        &[
            Step::key("buckets"),
            Step::Where("name".into(), bucket.into()),
            Step::key("readers"),
        ],
        &json!(member),
    )?;
    Ok(Some(e.finish()))
}

/// Adds files to a kustomization.yaml's `resources`, in the order given,
/// skipping those already listed.
pub fn add_resources(text: &str, files: &[&str]) -> Result<Option<String>, EditError> {
    let values = yaml::parse_values(text)?;
    let current: Vec<String> = values
        .first()
        .and_then(|v| v["resources"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut e = Editor::new(text);
    let mut changed = false;
    for f in files {
        if !current
            .iter()
            .any(|c| c == f || c.trim_start_matches("./") == *f)
        {
            e.append(0, &[Step::key("resources")], &json!(f))?;
            changed = true;
        }
    }
    Ok(changed.then(|| e.finish()))
}

/// Appends a document to a multi-document file (or starts the file), unless
/// a document of the same apiVersion, kind and name is already there.
pub fn add_document(text: Option<&str>, doc: &Value) -> Result<Option<String>, EditError> {
    let text = text.unwrap_or("");
    let same = |v: &Value| {
        v["kind"] == doc["kind"]
            && v["apiVersion"] == doc["apiVersion"]
            && v["metadata"]["name"] == doc["metadata"]["name"]
    };
    if yaml::parse_values(text)?.iter().any(same) {
        return Ok(None);
    }
    let mut e = Editor::new(text);
    e.push_document(doc)?;
    Ok(Some(e.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA: &str = "# prod accounts\nservice_accounts:\n  - name: cnpg-backup\n    roles:\n      - roles/storage.objectAdmin\n    # who may act as it\n    workload_identity_bindings:\n      - foo-prod/foo-pg # foo\n";

    #[test]
    fn binding_is_appended_once_with_comments_kept() {
        let out = bind_workload_identity(SA, "cnpg-backup", "foo-prod/foo-pitr")
            .unwrap()
            .unwrap();
        assert_eq!(out, format!("{SA}      - foo-prod/foo-pitr\n"));
        assert_eq!(
            bind_workload_identity(&out, "cnpg-backup", "foo-prod/foo-pitr").unwrap(),
            None
        );
        assert!(matches!(
            bind_workload_identity(SA, "nope", "a/b"),
            Err(EditError::Path { .. })
        ));
    }

    #[test]
    fn resources_and_documents() {
        let k = "kind: Kustomization\nresources:\n  - database.yaml # cluster\n";
        let out = add_resources(k, &["database.yaml", "pitr.yaml"])
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "kind: Kustomization\nresources:\n  - database.yaml # cluster\n  - pitr.yaml\n"
        );
        assert_eq!(add_resources(&out, &["pitr.yaml"]).unwrap(), None);
        let d = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}});
        let one = add_document(None, &d).unwrap().unwrap();
        assert_eq!(add_document(Some(&one), &d).unwrap(), None);
        let d2 = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "b"}});
        let two = add_document(Some(&one), &d2).unwrap().unwrap();
        assert_eq!(yaml::parse_values(&two).unwrap().len(), 2);
    }

    #[test]
    fn bucket_readers() {
        let b = "buckets:\n  - name: acme-prod\n    lifecycle_rules:\n      - action: Delete\n        age_days: 45\n";
        let out = grant_bucket_reader(b, "acme-prod", "serviceAccount:x@y")
            .unwrap()
            .unwrap();
        assert!(
            out.ends_with("    readers:\n      - \"serviceAccount:x@y\"\n")
                || out.ends_with("    readers:\n      - serviceAccount:x@y\n"),
            "{out}"
        );
        assert_eq!(
            grant_bucket_reader(&out, "acme-prod", "serviceAccount:x@y").unwrap(),
            None
        );
    }
}
