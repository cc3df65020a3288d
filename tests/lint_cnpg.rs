//! The CloudNativePG lint rules (`src/lint/cnpg.rs`): each fires on a mutated
//! copy of the GKE fixture, at the right file and line, and not on the
//! fixture as it is.

mod support;

use std::path::Path;

use support::repo::FixtureRepo;

use cnpg_ops::catalog::findings::Severity;
use cnpg_ops::lint::{LintFinding, cnpg};

const PROD_FOO: &str = "fluxcd/databases/prod/foo/database.yaml";
const PROD_FOO_SCHEDULE: &str = "fluxcd/databases/prod/foo/scheduled-backup.yaml";
const PROD_FOO_STORE: &str = "fluxcd/databases/prod/foo/object-store.yaml";
const PROD_FOO_VECTOR: &str = "fluxcd/databases/prod/foo/database-vector.yaml";
const PROD_BAR: &str = "fluxcd/databases/prod/bar/database.yaml";
const PROD_BAR_SCHEDULE: &str = "fluxcd/databases/prod/bar/scheduled-backup.yaml";
const DEV_FOO: &str = "fluxcd/databases/dev/foo/database.yaml";

/// The 1-based line of the first line of `file` containing `needle`.
fn line(repo: &FixtureRepo, file: &str, needle: &str) -> usize {
    repo.read(file)
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no line with {needle:?}"))
        + 1
}

/// The one finding of `rule`, checked for severity, file and line.
fn one(
    repo: &FixtureRepo,
    rule: &str,
    severity: Severity,
    file: &str,
    needle: &str,
) -> LintFinding {
    let found = repo.lint_rule(rule);
    assert_eq!(found.len(), 1, "{rule}: {found:#?}");
    let f = found.into_iter().next().unwrap();
    assert_eq!(f.severity, severity, "{f:#?}");
    assert_eq!(f.file, Path::new(file), "{f:#?}");
    assert_eq!(f.line, line(repo, file, needle), "{f:#?}");
    assert!(!f.hint.is_empty());
    f
}

fn assert_words(text: &str, words: &[&str]) {
    for w in words {
        assert!(text.contains(w), "{w:?} not in {text:?}");
    }
}

fn none(repo: &FixtureRepo, rule: &str) {
    let found = repo.lint_rule(rule);
    assert!(found.is_empty(), "{rule}: {found:#?}");
}

/// No webhook finding in `file` whose message contains `text`.
fn no_webhook_about(repo: &FixtureRepo, file: &str, text: &str) {
    let dup: Vec<_> = repo
        .lint()
        .into_iter()
        .filter(|f| f.rule.starts_with("webhook-"))
        .filter(|f| f.file == Path::new(file) && f.message.contains(text))
        .collect();
    assert!(dup.is_empty(), "reported twice: {dup:#?}");
}

#[test]
fn the_clean_fixture_fires_only_the_expected_deprecation() {
    let repo = FixtureRepo::copy("gke");
    let ids: Vec<&str> = cnpg::RULES.iter().map(|r| r.id).collect();
    let mine: Vec<LintFinding> = repo
        .lint()
        .into_iter()
        .filter(|f| ids.contains(&f.rule))
        .collect();
    assert!(
        mine.iter().all(|f| f.severity != Severity::Error),
        "{mine:#?}"
    );
    // prod/bar uses in-tree barman-cloud on purpose; no operator install is in
    // the fixture, so a current operator is assumed and said so.
    assert_eq!(mine.len(), 1, "{mine:#?}");
    let f = one(
        &repo,
        "barman-in-tree-deprecated",
        Severity::Warning,
        PROD_BAR,
        "barmanObjectStore:",
    );
    assert_words(
        &f.message,
        &["bar-pg", "1.26", "1.31", "current operator", "assumed"],
    );
    assert_words(&f.hint, &["ObjectStore", "barman-cloud.cloudnative-pg.io"]);
}

// ---------------------------------------------------------------------------
// Group 0

#[test]
fn crd_schema_errors() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, "instances: 3", "instances: three");
    let f = one(&repo, "crd-schema", Severity::Error, PROD_FOO, "instances:");
    assert_words(&f.message, &["spec.instances", "integer"]);
    assert_words(&f.hint, &["kubectl explain cluster.spec.instances"]);
}

#[test]
fn crd_unknown_fields() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, "  walStorage:", "  walStorgae:");
    let f = one(
        &repo,
        "crd-unknown-field",
        Severity::Warning,
        PROD_FOO,
        "walStorgae:",
    );
    assert_words(&f.message, &["spec.walStorgae", "Cluster"]);
    none(&repo, "crd-schema");
}

#[test]
fn sops_metadata_is_not_a_field() {
    let repo = FixtureRepo::copy("gke");
    let secret = repo.read("fluxcd/databases/prod/foo/secrets.enc.yaml");
    let sops = &secret[secret.find("sops:").unwrap()..];
    let store = repo.read(PROD_FOO_STORE);
    repo.write(PROD_FOO_STORE, &format!("{store}{sops}"));
    none(&repo, "crd-unknown-field");
    none(&repo, "crd-schema");
}

#[test]
fn plain_yaml_is_not_validated() {
    // The Terraform inputs in the fixture have no apiVersion or kind.
    let repo = FixtureRepo::copy("gke");
    let found = repo.lint_rule("crd-schema");
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn webhook_rejections() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "      source: prod\n",
        "      source: prod\n      recoveryTarget:\n        targetTime: \"2026-05-01T10:00:00Z\"\n        targetLSN: 0/5000060\n",
    );
    let f = one(
        &repo,
        "webhook-rejects",
        Severity::Error,
        DEV_FOO,
        "recoveryTarget:",
    );
    assert_words(
        &f.message,
        &[
            "recoveryTarget",
            "Recovery target options are mutually exclusive",
        ],
    );
}

#[test]
fn webhook_warnings() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO_SCHEDULE, "\"0 0 2 * * *\"", "\"@daily\"");
    let f = one(
        &repo,
        "webhook-warns",
        Severity::Warning,
        PROD_FOO_SCHEDULE,
        "schedule:",
    );
    assert_words(&f.message, &["spec.schedule", "six arguments"]);
    none(&repo, "schedule-five-fields");
}

// ---------------------------------------------------------------------------
// Group 5

const INLINE: &str = "  backup:\n    barmanObjectStore:\n      destinationPath: gs://acme-prod-pg-backups/foo\n      googleCredentials:\n        gkeEnvironment: true\n  bootstrap:\n";

#[test]
fn inline_and_plugin_together() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, "  bootstrap:\n", INLINE);
    let f = one(
        &repo,
        "backup-inline-and-plugin",
        Severity::Error,
        PROD_FOO,
        "barmanObjectStore:",
    );
    assert_words(
        &f.message,
        &[
            "foo-pg (foo-prod)",
            "barmanObjectStore",
            "plugin",
            "rejects",
        ],
    );
    assert_words(
        &f.hint,
        &["ObjectStore", "remove spec.backup.barmanObjectStore"],
    );
    // The webhook's own message for it is not repeated.
    no_webhook_about(&repo, PROD_FOO, "Cannot enable a WAL archiver plugin");
}

#[test]
fn object_store_missing() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO,
        "barmanObjectName: foo-store",
        "barmanObjectName: foo-stor",
    );
    let f = one(
        &repo,
        "object-store-missing",
        Severity::Error,
        PROD_FOO,
        "barmanObjectName:",
    );
    assert_words(&f.message, &["foo-stor`", "foo-prod", "spec.plugins[0]"]);
    assert_words(&f.hint, &["ObjectStore `foo-stor`", "foo-prod"]);
    // Discovery's own problem is left to this rule.
    none(&repo, "database-unreadable");
}

#[test]
fn object_store_missing_for_a_recovery_source() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "barmanObjectName: foo-store-prod",
        "barmanObjectName: foo-store-prd",
    );
    let f = one(
        &repo,
        "object-store-missing",
        Severity::Error,
        DEV_FOO,
        "barmanObjectName: foo-store-prd",
    );
    assert_words(&f.message, &["spec.externalClusters[0].plugin", "foo-dev"]);
}

#[test]
fn object_store_without_a_name() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO,
        "        barmanObjectName: foo-store\n",
        "        serverName: foo-pg\n",
    );
    let f = one(
        &repo,
        "object-store-missing",
        Severity::Error,
        PROD_FOO,
        "      parameters:",
    );
    assert_words(&f.message, &["without a barmanObjectName"]);
}

#[test]
fn object_store_found_anywhere_in_the_namespace_but_not_across_namespaces() {
    let repo = FixtureRepo::copy("gke");
    let store = repo.read(PROD_FOO_STORE);
    repo.remove(PROD_FOO_STORE)
        .replace(
            "fluxcd/databases/prod/foo/kustomization.yaml",
            "  - object-store.yaml\n",
            "",
        )
        .write("fluxcd/stores/foo-store.yaml", &store);
    none(&repo, "object-store-missing");

    repo.write(
        "fluxcd/stores/foo-store.yaml",
        &store.replace("namespace: foo-prod", "namespace: foo-staging"),
    );
    let f = one(
        &repo,
        "object-store-missing",
        Severity::Error,
        PROD_FOO,
        "barmanObjectName:",
    );
    assert_words(&f.message, &["foo-staging", "fluxcd/stores/foo-store.yaml"]);
}

const HELM_RELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: cloudnative-pg
  namespace: cnpg-system
spec:
  interval: 1h
  chart:
    spec:
      chart: cloudnative-pg
      version: CHART
      sourceRef:
        kind: HelmRepository
        name: cnpg
";

#[test]
fn in_tree_barman_against_the_operator_version() {
    let repo = FixtureRepo::copy("gke");
    let operator = "fluxcd/infrastructure/operators/cnpg.yaml";
    // 1.25 does not deprecate it yet.
    repo.write(operator, &HELM_RELEASE.replace("CHART", "0.23.2"));
    none(&repo, "barman-in-tree-deprecated");

    repo.write(operator, &HELM_RELEASE.replace("CHART", "0.26.1"));
    let f = one(
        &repo,
        "barman-in-tree-deprecated",
        Severity::Warning,
        PROD_BAR,
        "barmanObjectStore:",
    );
    assert_words(
        &f.message,
        &["1.27", "chart cloudnative-pg 0.26.1", operator, "1.31"],
    );

    repo.write(
        operator,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cnpg\nspec:\n  template:\n    spec:\n      containers:\n        - name: manager\n          image: ghcr.io/cloudnative-pg/cloudnative-pg:1.31.0\n",
    );
    none(&repo, "barman-in-tree-deprecated");
    let f = one(
        &repo,
        "barman-in-tree-removed",
        Severity::Error,
        PROD_BAR,
        "barmanObjectStore:",
    );
    assert_words(&f.message, &["removed", "1.31", "cloudnative-pg:1.31.0"]);
    // The webhook's deprecation warning is never repeated.
    no_webhook_about(&repo, PROD_BAR, "deprecated");
}

#[test]
fn the_operator_of_the_cluster_s_env_is_the_one_that_counts() {
    let repo = FixtureRepo::copy("gke");
    let manifest = |v: &str| {
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - https://github.com/cloudnative-pg/cloudnative-pg/releases/download/v{v}/cnpg-{v}.yaml\n"
        )
    };
    repo.write(
        "fluxcd/infrastructure/operators/dev/kustomization.yaml",
        &manifest("1.28.1"),
    )
    .write(
        "fluxcd/infrastructure/operators/prod/kustomization.yaml",
        &manifest("1.25.1"),
    );
    // prod/bar runs on prod's 1.25 operator: not deprecated there yet.
    none(&repo, "barman-in-tree-deprecated");

    repo.write(
        "fluxcd/infrastructure/operators/prod/kustomization.yaml",
        &manifest("1.28.1"),
    )
    .write(
        "fluxcd/infrastructure/operators/dev/kustomization.yaml",
        &manifest("1.25.1"),
    );
    let f = one(
        &repo,
        "barman-in-tree-deprecated",
        Severity::Warning,
        PROD_BAR,
        "barmanObjectStore:",
    );
    assert_words(
        &f.message,
        &[
            "1.28",
            "cnpg-1.28.1.yaml",
            "operators/prod/kustomization.yaml:4",
        ],
    );
}

// ---------------------------------------------------------------------------
// Group 6

#[test]
fn several_bootstrap_methods() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "  bootstrap:\n",
        "  bootstrap:\n    initdb:\n      database: foo\n      owner: foo\n",
    );
    let f = one(
        &repo,
        "bootstrap-several-methods",
        Severity::Error,
        DEV_FOO,
        "bootstrap:",
    );
    assert_words(&f.message, &["initdb and recovery", "foo-pg (foo-dev)"]);
    no_webhook_about(&repo, DEV_FOO, "Only one bootstrap method");
}

#[test]
fn recovery_source_missing() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(DEV_FOO, "      source: prod", "      source: production");
    let f = one(
        &repo,
        "recovery-source-missing",
        Severity::Error,
        DEV_FOO,
        "source: production",
    );
    assert_words(&f.message, &["`production`", "found: prod"]);
    assert_words(&f.hint, &["externalClusters entry named `production`"]);
    no_webhook_about(&repo, DEV_FOO, "External cluster");
}

const PROD_FOO_RECOVERY: &str = "  bootstrap:
    recovery:
      source: origin
      database: foo
      owner: foo
  externalClusters:
    - name: origin
      plugin:
        name: barman-cloud.cloudnative-pg.io
        parameters:
          barmanObjectName: foo-store
          serverName: foo-pg
";

const PROD_FOO_INITDB: &str = "  bootstrap:
    initdb:
      database: foo
      owner: foo
      secret:
        name: foo-app
";

#[test]
fn recovery_written_into_a_cluster_created_with_initdb() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    repo.replace(PROD_FOO, PROD_FOO_INITDB, PROD_FOO_RECOVERY)
        .commit("Restore foo-pg from its archive");
    let f = one(
        &repo,
        "bootstrap-edited-after-create",
        Severity::Error,
        PROD_FOO,
        "recovery:",
    );
    assert_words(
        &f.message,
        &[
            "foo-pg (foo-prod)",
            "first committed with initdb",
            "does nothing",
        ],
    );
    assert_words(&f.hint, &["re-clone", "delete", "serverName"]);
}

#[test]
fn an_uncommitted_edit_counts_too() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    repo.replace(PROD_FOO, PROD_FOO_INITDB, PROD_FOO_RECOVERY);
    one(
        &repo,
        "bootstrap-edited-after-create",
        Severity::Error,
        PROD_FOO,
        "recovery:",
    );
}

#[test]
fn a_re_clone_with_a_new_server_name_or_a_cluster_born_recovering_is_fine() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    // dev/foo was a recovery from its first commit.
    none(&repo, "bootstrap-edited-after-create");
    // Recreated with a new write serverName, as the hint says.
    repo.replace(PROD_FOO, PROD_FOO_INITDB, PROD_FOO_RECOVERY)
        .replace(
            PROD_FOO,
            "        barmanObjectName: foo-store\n  bootstrap:",
            "        barmanObjectName: foo-store\n        serverName: foo-pg-g2\n  bootstrap:",
        )
        .commit("Re-clone foo-pg");
    none(&repo, "bootstrap-edited-after-create");
}

#[test]
fn without_git_history_nothing_is_said() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, PROD_FOO_INITDB, PROD_FOO_RECOVERY);
    none(&repo, "bootstrap-edited-after-create");
}

// ---------------------------------------------------------------------------
// Group 7

#[test]
fn five_field_schedules() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO_SCHEDULE, "\"0 0 2 * * *\"", "\"0 2 * * *\"");
    let f = one(
        &repo,
        "schedule-five-fields",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "schedule:",
    );
    assert_words(
        &f.message,
        &[
            "\"0 2 * * *\"",
            "5 fields",
            "seconds",
            "minute 2",
            "every 1h",
        ],
    );
    assert_words(&f.hint, &["\"0 0 2 * * *\""]);
    no_webhook_about(&repo, PROD_FOO_SCHEDULE, "arguments");
}

#[test]
fn five_field_schedules_that_do_not_parse_either() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO_SCHEDULE, "\"0 0 2 * * *\"", "\"30 2 * * MON-FRI\"");
    let f = one(
        &repo,
        "schedule-five-fields",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "schedule:",
    );
    assert_words(&f.message, &["does not parse"]);
    assert_words(&f.hint, &["\"0 30 2 * * MON-FRI\""]);
    none(&repo, "webhook-rejects");
}

#[test]
fn default_method_on_a_plugin_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO_SCHEDULE,
        "  method: plugin\n  pluginConfiguration:\n    name: barman-cloud.cloudnative-pg.io\n",
        "",
    );
    let f = one(
        &repo,
        "backup-method-mismatch",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "spec:",
    );
    assert_words(
        &f.message,
        &["foo-pg-nightly", "barmanObjectStore", "plugin", "fails"],
    );
    assert_words(
        &f.hint,
        &["method: plugin", "barman-cloud.cloudnative-pg.io"],
    );
}

#[test]
fn plugin_method_without_the_barman_plugin_configuration() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO_SCHEDULE,
        "  pluginConfiguration:\n    name: barman-cloud.cloudnative-pg.io\n",
        "",
    );
    let f = one(
        &repo,
        "backup-method-mismatch",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "method: plugin",
    );
    assert_words(&f.message, &["no pluginConfiguration.name"]);
    no_webhook_about(&repo, PROD_FOO_SCHEDULE, "cannot be empty");
}

#[test]
fn plugin_method_on_an_inline_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_BAR_SCHEDULE,
        "  method: barmanObjectStore\n",
        "  method: plugin\n  pluginConfiguration:\n    name: barman-cloud.cloudnative-pg.io\n",
    );
    let f = one(
        &repo,
        "backup-method-mismatch",
        Severity::Error,
        PROD_BAR_SCHEDULE,
        "method: plugin",
    );
    assert_words(&f.message, &["bar-pg (bar-prod)", "in-tree"]);
}

#[test]
fn scheduled_backup_of_an_unknown_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO_SCHEDULE,
        "    name: foo-pg\n",
        "    name: foo-postgres\n",
    );
    let f = one(
        &repo,
        "backup-cluster-missing",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "name: foo-postgres",
    );
    assert_words(&f.message, &["`foo-postgres`", "foo-prod"]);
    none(&repo, "backup-method-mismatch");
}

#[test]
fn a_cluster_of_that_name_in_another_namespace_does_not_count() {
    let repo = FixtureRepo::copy("gke");
    // bar-pg exists, but in bar-prod.
    repo.replace(
        PROD_FOO_SCHEDULE,
        "    name: foo-pg\n",
        "    name: bar-pg\n",
    );
    let f = one(
        &repo,
        "backup-cluster-missing",
        Severity::Error,
        PROD_FOO_SCHEDULE,
        "name: bar-pg",
    );
    assert_words(
        &f.message,
        &["Clusters there: foo-pg", "exists in bar-prod"],
    );
}

// ---------------------------------------------------------------------------
// Group 10

#[test]
fn vector_created_in_the_postgres_database_only() {
    let repo = FixtureRepo::copy("gke");
    repo.remove(PROD_FOO_VECTOR)
        .replace(
            "fluxcd/databases/prod/foo/kustomization.yaml",
            "  - database-vector.yaml\n",
            "",
        )
        .replace(
            PROD_FOO,
            "      owner: foo\n",
            "      owner: foo\n      postInitSQL:\n        - CREATE EXTENSION IF NOT EXISTS vector;\n",
        );
    let f = one(
        &repo,
        "pgvector-not-in-app-database",
        Severity::Error,
        PROD_FOO,
        "CREATE EXTENSION",
    );
    assert_words(
        &f.message,
        &["postInitSQL[0]", "`postgres` database", "`foo`"],
    );
    assert_words(&f.hint, &["postInitApplicationSQL", "Database CR"]);

    // Installed in the application database as well: fine.
    repo.replace(
        PROD_FOO,
        "      postInitSQL:\n",
        "      postInitApplicationSQL:\n        - CREATE EXTENSION vector;\n      postInitSQL:\n",
    );
    none(&repo, "pgvector-not-in-app-database");
}

#[test]
fn vector_in_postgres_with_a_database_cr_for_the_app_database_is_fine() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO,
        "      owner: foo\n",
        "      owner: foo\n      postInitSQL:\n        - CREATE EXTENSION vector;\n",
    );
    none(&repo, "pgvector-not-in-app-database");
}

#[test]
fn vector_in_template1_reaches_the_app_database() {
    // CNPG creates the application database from template1 after
    // postInitTemplateSQL ran.
    let repo = FixtureRepo::copy("gke");
    repo.remove(PROD_FOO_VECTOR).replace(
        PROD_FOO,
        "      owner: foo\n",
        "      owner: foo\n      postInitSQL:\n        - CREATE EXTENSION vector;\n      postInitTemplateSQL:\n        - CREATE EXTENSION vector;\n",
    );
    none(&repo, "pgvector-not-in-app-database");
}

#[test]
fn vector_on_a_minimal_image() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, "17.6-standard-bookworm", "17.6-minimal-bookworm");
    let f = one(
        &repo,
        "pgvector-minimal-image",
        Severity::Error,
        PROD_FOO,
        "imageName:",
    );
    assert_words(
        &f.message,
        &["minimal", "Database foo-vector", PROD_FOO_VECTOR],
    );
    assert_words(
        &f.hint,
        &["ghcr.io/cloudnative-pg/postgresql:17.6-standard-bookworm"],
    );

    // Without vector, a minimal image is fine.
    repo.remove(PROD_FOO_VECTOR);
    none(&repo, "pgvector-minimal-image");
}

#[test]
fn database_reclaim_policy_must_be_retain() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO_VECTOR,
        "databaseReclaimPolicy: retain",
        "databaseReclaimPolicy: delete",
    );
    let f = one(
        &repo,
        "database-reclaim-policy-not-retain",
        Severity::Warning,
        PROD_FOO_VECTOR,
        "databaseReclaimPolicy:",
    );
    assert_words(&f.message, &["foo-vector", "delete", "drops", "prune"]);
    assert_words(&f.hint, &["databaseReclaimPolicy: retain"]);

    repo.replace(PROD_FOO_VECTOR, "  databaseReclaimPolicy: delete\n", "");
    let f = one(
        &repo,
        "database-reclaim-policy-not-retain",
        Severity::Warning,
        PROD_FOO_VECTOR,
        "spec:",
    );
    assert_words(
        &f.message,
        &["does not write databaseReclaimPolicy", "`foo`"],
    );
}

// ---------------------------------------------------------------------------
// Group 11

const SKIP: &str =
    "  namespace: foo-prod\n  annotations:\n    cnpg.io/skipEmptyWalArchiveCheck: enabled\n";

#[test]
fn skip_empty_wal_check_outside_a_recovery() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO, "  namespace: foo-prod\n", SKIP);
    let f = one(
        &repo,
        "skip-empty-wal-check-without-recovery",
        Severity::Warning,
        PROD_FOO,
        "cnpg.io/skipEmptyWalArchiveCheck",
    );
    assert_words(
        &f.message,
        &["foo-pg (foo-prod)", "initdb", "two histories"],
    );
    assert_words(&f.hint, &["remove the annotation", "serverName"]);
}

#[test]
fn skip_empty_wal_check_on_a_recovery_or_disabled_is_left_alone() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "  namespace: foo-dev\n",
        "  namespace: foo-dev\n  annotations:\n    cnpg.io/skipEmptyWalArchiveCheck: enabled\n",
    )
    .replace(
        PROD_FOO,
        "  namespace: foo-prod\n",
        &SKIP.replace("enabled", "disabled"),
    );
    none(&repo, "skip-empty-wal-check-without-recovery");
}
