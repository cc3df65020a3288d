//! `cnpg-ops lint --fix`: mechanical fixes delivered through the three write
//! modes against a real git repository.

mod support;

use std::process::{Command, Output};

use support::repo::{FixtureRepo, git};

fn cnpg_ops(repo: &FixtureRepo, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .arg("lint")
        .arg(repo.root())
        .args(args)
        .env("NO_COLOR", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .unwrap()
}

/// The gke fixture with three fixable findings committed.
fn broken() -> FixtureRepo {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    repo.replace(
        "fluxcd/databases/prod/foo/scheduled-backup.yaml",
        "\"0 0 2 * * *\"",
        "\"0 2 * * *\"",
    );
    repo.replace(
        "terraform/gcp/prod/service-accounts/service-accounts.yaml",
        "      - bar-prod/bar-pg\n",
        "",
    );
    repo.replace(
        "fluxcd/databases/dev/foo/scheduled-backup.yaml",
        "  method: plugin\n  pluginConfiguration:\n    name: barman-cloud.cloudnative-pg.io\n",
        "",
    );
    repo.commit("break three things");
    repo
}

#[test]
fn dry_run_shows_the_diff_and_changes_nothing() {
    let repo = broken();
    let head = git(repo.root(), &["rev-parse", "HEAD"]);
    let out = cnpg_ops(&repo, &["--fix", "--mode", "dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-  schedule: \"0 2 * * *\"\n+  schedule: \"0 0 2 * * *\""),
        "{text}"
    );
    assert!(text.contains("+      - bar-prod/bar-pg"), "{text}");
    assert!(text.contains("+  method: plugin"), "{text}");
    assert!(text.contains("would change 3 files"), "{text}");
    assert_eq!(git(repo.root(), &["rev-parse", "HEAD"]), head);
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
    assert_eq!(git(repo.root(), &["branch", "--list"]).lines().count(), 1);
}

#[test]
fn check_exits_1_until_the_fixes_are_in() {
    let repo = broken();
    assert_eq!(
        cnpg_ops(&repo, &["--fix", "--mode", "check"]).status.code(),
        Some(1)
    );
    let clean = FixtureRepo::copy("gke");
    clean.git_init();
    let out = cnpg_ops(&clean, &["--fix", "--mode", "check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn write_commits_on_a_branch_that_lints_clean_and_keeps_comments() {
    let repo = broken();
    let out = cnpg_ops(&repo, &["--fix", "--branch", "fix/lint", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["commit"]["branch"], "fix/lint");
    assert_eq!(v["details"].as_array().unwrap().len(), 3);
    assert!(
        v["details"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.get("skipped").is_none())
    );
    // The checkout stays where it was.
    assert_eq!(
        git(repo.root(), &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "main"
    );
    let sa = git(
        repo.root(),
        &[
            "show",
            "fix/lint:terraform/gcp/prod/service-accounts/service-accounts.yaml",
        ],
    );
    assert!(sa.contains(
        "# CloudNativePG runs each instance as a service account named after its Cluster.\n"
    ));
    assert!(
        sa.ends_with("      - foo-prod/foo-pg\n      - bar-prod/bar-pg\n"),
        "{sa}"
    );
    let sb = git(
        repo.root(),
        &[
            "show",
            "fix/lint:fluxcd/databases/prod/foo/scheduled-backup.yaml",
        ],
    );
    assert!(
        sb.contains("  # seconds first: 02:00 every night\n  schedule: \"0 0 2 * * *\"\n"),
        "{sb}"
    );
    git(repo.root(), &["switch", "-q", "fix/lint"]);
    for rule in [
        "schedule-five-fields",
        "gke-wi-binding-missing",
        "backup-method-mismatch",
    ] {
        assert!(repo.lint_rule(rule).is_empty(), "{rule} still fires");
    }
    let message = git(repo.root(), &["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with("Fix 3 lint findings found by cnpg-ops lint\n"),
        "{message}"
    );
}

#[test]
fn delivery_flags_need_fix_and_push_needs_write() {
    let repo = broken();
    let out = cnpg_ops(&repo, &["--mode", "dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --fix"));
    let out = cnpg_ops(&repo, &["--fix", "--mode", "check", "--push"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--push only applies to --mode write"));
}

#[test]
fn a_dirty_file_refuses_the_write() {
    let repo = broken();
    let path = "fluxcd/databases/prod/foo/scheduled-backup.yaml";
    repo.write(path, &(repo.read(path) + "# local edit\n"));
    let out = cnpg_ops(&repo, &["--fix"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path), "{err}");
    assert_eq!(
        git(repo.root(), &["branch", "--list"]).lines().count(),
        1,
        "no branch made"
    );
}

#[test]
fn regression_fixes_apply_when_the_flux_repo_is_a_folder_of_the_git_repo() {
    let mono = tempfile::tempdir().unwrap();
    let inner = FixtureRepo::copy("gke");
    let infra = mono.path().join("infra");
    support::repo::copy_dir(inner.root(), &infra);
    git(mono.path(), &["init", "-q", "-b", "main"]);
    let sb = infra.join("fluxcd/databases/prod/foo/scheduled-backup.yaml");
    std::fs::write(
        &sb,
        std::fs::read_to_string(&sb)
            .unwrap()
            .replace("\"0 0 2 * * *\"", "\"0 2 * * *\""),
    )
    .unwrap();
    let sa = infra.join("terraform/gcp/prod/service-accounts/service-accounts.yaml");
    std::fs::write(
        &sa,
        std::fs::read_to_string(&sa)
            .unwrap()
            .replace("      - bar-prod/bar-pg\n", ""),
    )
    .unwrap();
    git(mono.path(), &["add", "-A"]);
    git(mono.path(), &["commit", "-q", "-m", "mono"]);
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "lint",
            infra.to_str().unwrap(),
            "--fix",
            "--mode",
            "dry-run",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+++ b/infra/terraform/gcp/prod/service-accounts/service-accounts.yaml"),
        "{text}"
    );
    assert!(
        text.contains("+++ b/infra/fluxcd/databases/prod/foo/scheduled-backup.yaml"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "lint",
            infra.join("fluxcd/databases/prod").to_str().unwrap(),
            "--fix",
            "--mode",
            "check",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn regression_a_backup_object_is_not_fixed_in_place() {
    let repo = FixtureRepo::copy("gke");
    repo.write(
        "fluxcd/databases/prod/foo/backup.yaml",
        "apiVersion: postgresql.cnpg.io/v1\nkind: Backup\nmetadata:\n  name: foo-manual\n  namespace: foo-prod\nspec:\n  cluster:\n    name: foo-pg\n",
    );
    let findings = repo.lint_rule("backup-method-mismatch");
    assert_eq!(findings.len(), 1);
    assert!(findings[0].fix.is_none(), "a Backup's spec is immutable");
}
