//! `cnpg-ops lint` and `cnpg-ops ls` as a user runs them: exit codes, text
//! and the documented JSON (docs/json.md), checked with structs that reject
//! unknown fields.

mod support;

use std::process::{Command, Output};

use serde::Deserialize;
use support::repo::FixtureRepo;

fn cnpg_ops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LintDoc {
    schema_version: u32,
    repo: String,
    findings: Vec<FindingDoc>,
    summary: SummaryDoc,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct FindingDoc {
    rule: String,
    severity: String,
    file: String,
    line: usize,
    message: String,
    hint: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SummaryDoc {
    errors: usize,
    warnings: usize,
    infos: usize,
    files: usize,
    databases: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RulesDoc {
    schema_version: u32,
    rules: Vec<RuleDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RuleDoc {
    id: String,
    group: u8,
    severity: String,
    meaning: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct LsDoc {
    schema_version: u32,
    repo: String,
    databases: Vec<DatabaseDoc>,
    problems: Vec<ProblemDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct DatabaseDoc {
    env: String,
    svc: String,
    folder: String,
    cluster: String,
    namespace: String,
    cluster_file: String,
    instances: Option<u32>,
    image: Option<String>,
    backup_model: String,
    catalog: Option<CatalogDoc>,
    retention_policy: Option<String>,
    schedules: Vec<ScheduleDoc>,
    bootstrap: Vec<String>,
    other_clusters: Vec<String>,
    recovery: Option<RecoveryDoc>,
    flux_kustomizations: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CatalogDoc {
    destination_path: String,
    server_name: String,
    server_name_explicit: bool,
    endpoint_url: Option<String>,
    credentials: CredentialsDoc,
    object_store: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CredentialsDoc {
    kind: String,
    secret: Option<String>,
    access_key_id_key: Option<String>,
    secret_access_key: Option<KeyRefDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct KeyRefDoc {
    name: String,
    key: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ScheduleDoc {
    name: String,
    schedule: String,
    method: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RecoveryDoc {
    source: String,
    catalog: Option<CatalogDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ProblemDoc {
    code: String,
    env: String,
    svc: String,
    at: String,
    message: String,
}

#[test]
fn clean_fixtures_lint_without_errors() {
    for name in ["gke", "selfhosted"] {
        let repo = FixtureRepo::copy(name);
        let out = cnpg_ops(&["lint", repo.root().to_str().unwrap()]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}: {text}");
        assert!(text.contains("0 errors"), "{name}: {text}");
    }
}

#[test]
fn an_error_exits_1_with_file_line_and_hint_and_json_matches_the_docs() {
    let repo = FixtureRepo::copy("gke");
    repo.write("fluxcd/databases/prod/foo/broken.yaml", "a: [1, 2\n");
    let root = repo.root().to_str().unwrap();
    let out = cnpg_ops(&["lint", root]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fluxcd/databases/prod/foo/broken.yaml:"),
        "{text}"
    );
    assert!(text.contains("error [yaml-syntax]"), "{text}");
    assert!(text.contains("  hint: "), "{text}");

    let out = cnpg_ops(&["lint", root, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let doc: LintDoc = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc.schema_version, 1);
    assert!(doc.summary.errors >= 1 && doc.summary.databases == 3);
    assert!(
        doc.findings
            .iter()
            .any(|f| f.rule == "yaml-syntax" && f.file.ends_with("broken.yaml"))
    );

    // A folder limits the findings; the repository is still read whole.
    let out = cnpg_ops(&[
        "lint",
        repo.path("terraform").to_str().unwrap(),
        "-o",
        "json",
    ]);
    let doc: LintDoc = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc.findings
            .iter()
            .all(|f| f.file.starts_with("terraform/")),
        "{doc:?}"
    );
}

#[test]
fn rules_are_listed_and_ls_json_matches_the_docs() {
    let out = cnpg_ops(&["lint", "--list-rules", "-o", "json"]);
    assert!(out.status.success());
    let doc: RulesDoc = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc.rules.iter().any(|r| r.id == "yaml-syntax"));
    for name in ["gke", "selfhosted"] {
        let repo = FixtureRepo::copy(name);
        let out = cnpg_ops(&["ls", "--repo", repo.root().to_str().unwrap(), "-o", "json"]);
        assert!(out.status.success());
        let doc: LsDoc = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc.databases.len(), 3, "{name}");
    }
}

#[test]
fn a_missing_repository_is_a_usage_error() {
    let out = cnpg_ops(&["lint", "/nonexistent/repo"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/repo"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".cnpg-ops.toml"),
        "[defaults]\nidentiti = 1\n",
    )
    .unwrap();
    let out = cnpg_ops(&["ls", "--repo", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("identiti") && err.contains("docs/repo-layout.md"),
        "{err}"
    );
}

#[test]
fn a_malformed_retention_is_reported_once_by_the_specific_rule() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "retentionPolicy: 14d",
        "retentionPolicy: 14days",
    );
    let at_line: Vec<_> = repo
        .lint()
        .into_iter()
        .filter(|f| f.file.ends_with("prod/foo/object-store.yaml") && f.line == 9)
        .map(|f| f.rule)
        .collect();
    assert_eq!(at_line, ["retention-policy-malformed"]);
}
