//! The cloud lint rules (groups 1–4) on mutated copies of the GKE fixture.

mod support;

use std::path::Path;

use support::repo::FixtureRepo;

use cnpg_ops::catalog::findings::Severity;
use cnpg_ops::lint::{LintFinding, cloud};

const PROD_SA: &str = "terraform/gcp/prod/service-accounts/service-accounts.yaml";
const DEV_SA: &str = "terraform/gcp/dev/service-accounts/service-accounts.yaml";
const PROD_BUCKETS: &str = "terraform/gcp/prod/gcs/buckets.yaml";
const PROD_BAR: &str = "fluxcd/databases/prod/bar/database.yaml";
const PROD_BAR_SCHEDULE: &str = "fluxcd/databases/prod/bar/scheduled-backup.yaml";
const PROD_FOO: &str = "fluxcd/databases/prod/foo/database.yaml";
const PROD_FOO_STORE: &str = "fluxcd/databases/prod/foo/object-store.yaml";
const DEV_FOO: &str = "fluxcd/databases/dev/foo/database.yaml";
const DEV_FOO_STORE: &str = "fluxcd/databases/dev/foo/object-store.yaml";

const PROD_ANNOTATION: &str = "  serviceAccountTemplate:\n    metadata:\n      annotations:\n        \
     iam.gke.io/gcp-service-account: cnpg-backup@acme-prod.iam.gserviceaccount.com\n";

/// The only finding of `rule`, checked for severity, file and line.
fn one(repo: &FixtureRepo, rule: &str, severity: Severity, file: &str, line: usize) -> LintFinding {
    let found = repo.lint_rule(rule);
    assert_eq!(found.len(), 1, "{found:#?}");
    let f = found.into_iter().next().unwrap();
    assert_eq!(f.severity, severity, "{f:#?}");
    assert_eq!(
        (f.file.as_path(), f.line),
        (Path::new(file), line),
        "{f:#?}"
    );
    f
}

fn says(f: &LintFinding, words: &[&str]) {
    for w in words {
        assert!(
            f.message.contains(w) || f.hint.contains(w),
            "{w:?} not in {f:#?}"
        );
    }
}

#[test]
fn the_clean_fixture_fires_no_cloud_rule() {
    let repo = FixtureRepo::copy("gke");
    let ids: Vec<&str> = cloud::RULES.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 9);
    let found: Vec<LintFinding> = repo
        .lint()
        .into_iter()
        .filter(|f| ids.contains(&f.rule))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

// Group 1 -------------------------------------------------------------------

#[test]
fn workload_identity_without_the_annotation_inline() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_BAR, PROD_ANNOTATION, "");
    // No serviceAccountTemplate left: the finding points at `spec`.
    let f = one(
        &repo,
        "gke-wi-annotation-missing",
        Severity::Error,
        PROD_BAR,
        8,
    );
    says(
        &f,
        &[
            "bar-prod/bar-pg",
            "gkeEnvironment: true",
            // where the inline stanza says so
            "fluxcd/databases/prod/bar/database.yaml:27",
            "iam.gke.io/gcp-service-account: cnpg-backup@acme-prod.iam.gserviceaccount.com",
            PROD_SA,
        ],
    );
}

#[test]
fn workload_identity_without_the_annotation_plugin() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO,
        "        iam.gke.io/gcp-service-account: cnpg-backup@acme-prod.iam.gserviceaccount.com\n",
        "        team: orders\n",
    );
    // The annotations map stays: the finding points at it.
    let f = one(
        &repo,
        "gke-wi-annotation-missing",
        Severity::Error,
        PROD_FOO,
        28,
    );
    says(&f, &["foo-prod/foo-pg", &format!("{PROD_FOO_STORE}:13")]);
}

#[test]
fn workload_identity_through_the_recovery_source_only() {
    let repo = FixtureRepo::copy("gke");
    // dev's own archive moves to a key; the prod archive it recovers from
    // still uses Workload Identity.
    repo.replace(
        DEV_FOO_STORE,
        "    destinationPath: gs://acme-dev-pg-backups/foo\n    googleCredentials:\n      gkeEnvironment: true\n",
        "    destinationPath: gs://acme-dev-pg-backups/foo\n    googleCredentials:\n      applicationCredentials:\n        name: gcs-key\n        key: key.json\n",
    )
    .replace(
        DEV_FOO,
        "  serviceAccountTemplate:\n    metadata:\n      annotations:\n        \
         iam.gke.io/gcp-service-account: cnpg-backup@acme-dev.iam.gserviceaccount.com\n",
        "",
    );
    let f = one(
        &repo,
        "gke-wi-annotation-missing",
        Severity::Error,
        DEV_FOO,
        6,
    );
    says(
        &f,
        &[
            "foo-dev/foo-pg",
            // the prod archive's store, two lines further down now
            &format!("{DEV_FOO_STORE}:27"),
            "cnpg-backup@acme-dev.iam.gserviceaccount.com",
        ],
    );
    assert!(
        !f.message.contains(&format!("{DEV_FOO_STORE}:12")),
        "{f:#?}"
    );
}

#[test]
fn binding_of_the_cluster_missing() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_SA, "      - bar-prod/bar-pg\n", "");
    let f = one(
        &repo,
        "gke-wi-binding-missing",
        Severity::Error,
        PROD_SA,
        10,
    );
    says(
        &f,
        &[
            "bar-prod/bar-pg",
            "cnpg-backup@acme-prod.iam.gserviceaccount.com",
            "named after the Cluster",
            "(foo-prod/foo-pg)",
            "add `- bar-prod/bar-pg`",
            &format!("{PROD_BAR}:25"),
        ],
    );
    assert!(
        FixtureRepo::copy("gke")
            .lint_rule("gke-wi-binding-missing")
            .is_empty()
    );
}

#[test]
fn binding_in_the_member_form_counts() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_SA,
        "      - bar-prod/bar-pg\n",
        "      - serviceAccount:acme-prod.svc.id.goog[bar-prod/bar-pg]\n",
    );
    assert!(repo.lint_rule("gke-wi-binding-missing").is_empty());
    assert!(repo.lint_rule("gke-wi-binding-unused").is_empty());
}

#[test]
fn annotation_naming_an_account_not_in_the_file() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_BAR,
        "cnpg-backup@acme-prod.iam.gserviceaccount.com",
        "cnpg-backups@acme-prod.iam.gserviceaccount.com",
    );
    let f = one(
        &repo,
        "gke-wi-service-account-unknown",
        Severity::Error,
        PROD_BAR,
        25,
    );
    says(
        &f,
        &[
            "cnpg-backups@acme-prod.iam.gserviceaccount.com",
            PROD_SA,
            "(it has: cnpg-backup)",
            "`- name: cnpg-backups`",
            "workload_identity_bindings: [bar-prod/bar-pg]",
        ],
    );
    assert!(repo.lint_rule("gke-wi-binding-missing").is_empty());
}

#[test]
fn no_service_accounts_file_means_no_account_findings() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_BAR,
        "cnpg-backup@acme-prod.iam.gserviceaccount.com",
        "cnpg-backups@acme-prod.iam.gserviceaccount.com",
    )
    .remove(PROD_SA);
    for rule in [
        "gke-wi-service-account-unknown",
        "gke-wi-binding-missing",
        "gke-wi-binding-unused",
        "gcs-bucket-get-missing",
    ] {
        assert!(repo.lint_rule(rule).is_empty(), "{rule}");
    }
}

#[test]
fn annotation_in_another_project() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "cnpg-backup@acme-dev.iam.gserviceaccount.com",
        "cnpg-backup@acme-prod.iam.gserviceaccount.com",
    );
    let f = one(
        &repo,
        "gke-wi-project-mismatch",
        Severity::Warning,
        DEV_FOO,
        25,
    );
    says(
        &f,
        &[
            "foo-dev/foo-pg",
            "`acme-prod`",
            "env `dev` is project `acme-dev`",
            "cnpg-backup@acme-dev.iam.gserviceaccount.com",
            "serviceAccount:acme-dev.svc.id.goog[foo-dev/foo-pg]",
        ],
    );
    // The account exists in prod's file; the `<ns>/<name>` binding form
    // cannot name dev's pool, so no binding finding.
    assert!(repo.lint_rule("gke-wi-binding-missing").is_empty());
    assert!(repo.lint_rule("gke-wi-service-account-unknown").is_empty());
}

#[test]
fn binding_to_a_standalone_service_account_is_a_decoy() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_SA,
        "      - bar-prod/bar-pg\n",
        "      - bar-prod/bar-pg\n      - foo-prod/cnpg-backup-sa\n",
    )
    .write(
        "fluxcd/databases/prod/foo/service-account.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cnpg-backup-sa\n",
    );
    let f = one(
        &repo,
        "gke-wi-binding-unused",
        Severity::Warning,
        PROD_SA,
        13,
    );
    says(
        &f,
        &[
            "foo-prod/cnpg-backup-sa",
            "fluxcd/databases/prod/foo/service-account.yaml:4",
            "never",
            "named after",
            "replace `- foo-prod/cnpg-backup-sa` with `- foo-prod/foo-pg`",
        ],
    );
}

#[test]
fn binding_of_another_env_matches_no_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_SA,
        "      - foo-dev/foo-pg\n",
        "      - foo-dev/foo-pg\n      - foo-prod/foo-pg\n",
    );
    let f = one(&repo, "gke-wi-binding-unused", Severity::Warning, DEV_SA, 9);
    says(&f, &["foo-prod/foo-pg", "no Cluster of env dev", "remove"]);
}

// Group 2 -------------------------------------------------------------------

#[test]
fn object_admin_without_bucket_get() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_SA,
        "      - roles/storage.legacyBucketReader # storage.buckets.get for barman-cloud\n",
        "",
    );
    let f = one(&repo, "gcs-bucket-get-missing", Severity::Error, PROD_SA, 6);
    says(
        &f,
        &[
            "cnpg-backup",
            "roles/storage.objectAdmin",
            "storage.buckets.get",
            "add `- roles/storage.legacyBucketReader`",
        ],
    );
}

#[test]
fn object_user_does_not_carry_bucket_get() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_SA,
        "      - roles/storage.legacyBucketReader\n",
        "      - roles/storage.objectUser\n",
    );
    one(&repo, "gcs-bucket-get-missing", Severity::Error, DEV_SA, 5);
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_SA,
        "      - roles/storage.legacyBucketReader\n",
        "      - roles/storage.legacyBucketWriter\n",
    );
    assert!(repo.lint_rule("gcs-bucket-get-missing").is_empty());
}

// Group 3 -------------------------------------------------------------------

#[test]
fn lifecycle_not_longer_than_retention_plus_interval() {
    let repo = FixtureRepo::copy("gke");
    // bar keeps 30d and backs up daily: 31 days is not enough, 32 is.
    repo.replace(PROD_BUCKETS, "age_days: 45", "age_days: 31");
    let f = one(
        &repo,
        "gcs-lifecycle-shorter-than-retention",
        Severity::Error,
        PROD_BUCKETS,
        8,
    );
    says(
        &f,
        &[
            "acme-prod-pg-backups",
            "after 31 days",
            "prod/bar",
            "recovery window of 30d",
            "every 1d",
            "minimum safe age is 32 days",
            "age_days: 32",
        ],
    );
    assert!(!f.message.contains("assumed"), "{f:#?}");
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_BUCKETS, "age_days: 45", "age_days: 32");
    assert!(
        repo.lint_rule("gcs-lifecycle-shorter-than-retention")
            .is_empty()
    );
}

#[test]
fn lifecycle_counts_the_schedule_interval() {
    let repo = FixtureRepo::copy("gke");
    // Weekly backups: 30d + 7d needs more than 37 days.
    repo.replace(PROD_BAR_SCHEDULE, "\"0 30 1 * * *\"", "\"0 30 1 * * 0\"")
        .replace(PROD_BUCKETS, "age_days: 45", "age_days: 37");
    let f = one(
        &repo,
        "gcs-lifecycle-shorter-than-retention",
        Severity::Error,
        PROD_BUCKETS,
        8,
    );
    says(&f, &["every 7d", "37d old", "minimum safe age is 38 days"]);
}

#[test]
fn lifecycle_without_a_schedule_assumes_a_day() {
    let repo = FixtureRepo::copy("gke");
    repo.remove(PROD_BAR_SCHEDULE)
        .replace(PROD_BUCKETS, "age_days: 45", "age_days: 15");
    let found = repo.lint_rule("gcs-lifecycle-shorter-than-retention");
    let bar: Vec<&LintFinding> = found
        .iter()
        .filter(|f| f.message.contains("prod/bar"))
        .collect();
    assert_eq!(bar.len(), 1, "{found:#?}");
    says(bar[0], &["assumed", "minimum safe age is 32 days"]);
    // foo (14d + 1d) is caught too, with its own minimum, and the hint
    // names the age that suits bar as well.
    let foo: Vec<&LintFinding> = found
        .iter()
        .filter(|f| f.message.contains("prod/foo"))
        .collect();
    assert_eq!(foo.len(), 1, "{found:#?}");
    says(
        foo[0],
        &[
            "minimum safe age is 16 days",
            "`age_days: 32` suits them all",
        ],
    );
}

#[test]
fn lifecycle_on_a_database_without_retention() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(PROD_FOO_STORE, "  retentionPolicy: 14d\n", "");
    let f = one(
        &repo,
        "gcs-lifecycle-without-retention",
        Severity::Warning,
        PROD_FOO_STORE,
        8,
    );
    says(
        &f,
        &[
            "prod/foo",
            "gs://acme-prod-pg-backups/foo",
            &format!("{PROD_BUCKETS}:8"),
            "after 45 days",
            "no retentionPolicy",
            "retentionPolicy: \"43d\"",
        ],
    );
    assert!(
        repo.lint_rule("gcs-lifecycle-shorter-than-retention")
            .is_empty()
    );
}

// Group 4 -------------------------------------------------------------------

#[test]
fn destination_path_ending_in_the_server_name_plugin() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_FOO_STORE,
        "gs://acme-prod-pg-backups/foo\n",
        "gs://acme-prod-pg-backups/foo-pg\n",
    );
    let f = one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        PROD_FOO_STORE,
        11,
    );
    says(
        &f,
        &[
            "ObjectStore foo-store",
            "`foo-pg`",
            "gs://acme-prod-pg-backups/foo-pg/foo-pg/",
            "destinationPath: gs://acme-prod-pg-backups/",
        ],
    );
}

#[test]
fn destination_path_ending_in_the_cluster_name_inline() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        PROD_BAR,
        "gs://acme-prod-pg-backups/bar\n",
        "gs://acme-prod-pg-backups/bar-pg/\n",
    );
    let f = one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        PROD_BAR,
        29,
    );
    says(
        &f,
        &[
            "spec.backup.barmanObjectStore",
            "gs://acme-prod-pg-backups/bar-pg/bar-pg/",
        ],
    );
}

#[test]
fn destination_path_ending_in_the_cluster_name_with_another_server_name() {
    let repo = FixtureRepo::copy("gke");
    // dev writes under serverName foo-pg-g2; a path ending in the Cluster's
    // own name still nests it twice.
    repo.replace(
        DEV_FOO_STORE,
        "gs://acme-dev-pg-backups/foo\n",
        "gs://acme-dev-pg-backups/foo-pg\n",
    );
    let f = one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        DEV_FOO_STORE,
        10,
    );
    says(
        &f,
        &[
            "the Cluster's name",
            "gs://acme-dev-pg-backups/foo-pg/foo-pg-g2/",
        ],
    );
}

#[test]
fn destination_path_of_an_external_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO_STORE,
        "gs://acme-prod-pg-backups/foo\n",
        "gs://acme-prod-pg-backups/foo-pg\n",
    );
    let f = one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        DEV_FOO_STORE,
        23,
    );
    says(
        &f,
        &[
            "foo-store-prod",
            "externalClusters entry `prod`",
            "gs://acme-prod-pg-backups/foo-pg/foo-pg/",
        ],
    );
    // When the source really writes there, only the source is reported.
    repo.replace(
        PROD_FOO_STORE,
        "gs://acme-prod-pg-backups/foo\n",
        "gs://acme-prod-pg-backups/foo-pg\n",
    );
    one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        PROD_FOO_STORE,
        11,
    );
}

#[test]
fn destination_path_of_an_inline_external_cluster() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        DEV_FOO,
        "      plugin:\n        name: barman-cloud.cloudnative-pg.io\n        parameters:\n          barmanObjectName: foo-store-prod\n          serverName: foo-pg\n",
        "      barmanObjectStore:\n        destinationPath: gs://acme-prod-pg-backups/other/prod\n        googleCredentials:\n          gkeEnvironment: true\n",
    );
    // The in-tree serverName defaults to the entry's name, `prod`.
    let f = one(
        &repo,
        "destination-path-double-nested",
        Severity::Error,
        DEV_FOO,
        41,
    );
    says(
        &f,
        &["`prod`", "gs://acme-prod-pg-backups/other/prod/prod/"],
    );
}
