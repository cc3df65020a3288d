//! Lint rules of groups 8, 9, 12 and 13 (Flux ownership and SOPS, sizing and
//! images, NetworkPolicies, monitoring) on mutated copies of the GKE fixture.

mod support;

use std::path::Path;

use support::repo::FixtureRepo;

use cnpg_ops::catalog::findings::Severity;
use cnpg_ops::lint::{LintFinding, platform};

const PROD_FOO: &str = "fluxcd/databases/prod/foo/database.yaml";
const PROD_BAR: &str = "fluxcd/databases/prod/bar/database.yaml";
const DEV_FOO: &str = "fluxcd/databases/dev/foo/database.yaml";
const PROD_FLUX: &str = "fluxcd/clusters/prod/databases.yaml";
const DEV_FLUX: &str = "fluxcd/clusters/dev/databases.yaml";
const ALERTS: &str = "fluxcd/infrastructure/monitoring/cnpg-alerts.yaml";
const CONFIG: &str = ".cnpg-ops.toml";

fn gke() -> FixtureRepo {
    FixtureRepo::copy("gke")
}

fn append(repo: &FixtureRepo, rel: &str, text: &str) {
    let old = repo.read(rel);
    repo.write(rel, &format!("{old}{text}"));
}

/// The one finding of `rule`.
fn one(repo: &FixtureRepo, rule: &str) -> LintFinding {
    let found = repo.lint_rule(rule);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap()
}

fn none(repo: &FixtureRepo, rule: &str) {
    let found = repo.lint_rule(rule);
    assert!(found.is_empty(), "{found:#?}");
}

/// Checks a finding's rule, severity, place and message words.
fn assert_finding(
    f: &LintFinding,
    rule: &str,
    severity: Severity,
    file: &str,
    line: usize,
    words: &[&str],
) {
    assert_eq!(f.rule, rule, "{f:#?}");
    assert_eq!(f.severity, severity, "{f:#?}");
    assert_eq!(f.file, Path::new(file), "{f:#?}");
    assert_eq!(f.line, line, "{f:#?}");
    for w in words {
        assert!(f.message.contains(w), "{w:?} not in {:?}", f.message);
    }
    assert!(!f.hint.is_empty(), "{f:#?}");
}

#[test]
fn clean_fixture_gives_no_platform_finding() {
    let ids: Vec<&str> = platform::RULES.iter().map(|r| r.id).collect();
    let found: Vec<LintFinding> = gke()
        .lint()
        .into_iter()
        .filter(|f| ids.contains(&f.rule))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn clean_selfhosted_fixture_gives_no_platform_finding() {
    let ids: Vec<&str> = platform::RULES.iter().map(|r| r.id).collect();
    let found: Vec<LintFinding> = FixtureRepo::copy("selfhosted")
        .lint()
        .into_iter()
        .filter(|f| ids.contains(&f.rule))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_cluster_restored_beside_the_original_is_not_the_database() {
    let repo = gke();
    // Sorts before database.yaml; one instance on purpose.
    repo.write(
        "fluxcd/databases/prod/bar/bar-pg-pitr-1.yaml",
        "apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: bar-pg-pitr-1
  namespace: bar-prod
spec:
  instances: 1
  imageName: ghcr.io/cloudnative-pg/postgresql:16.10-standard-bookworm
  storage:
    size: 10Gi
  bootstrap:
    recovery:
      source: bar-pg-origin
",
    );
    none(&repo, "single-instance-in-production");
    none(&repo, "retention-policy-missing");
    repo.replace(PROD_BAR, "instances: 2", "instances: 1");
    let f = one(&repo, "single-instance-in-production");
    assert_finding(
        &f,
        "single-instance-in-production",
        Severity::Warning,
        PROD_BAR,
        9,
        &["bar-pg "],
    );
}

#[test]
fn rules_are_registered_in_groups_8_9_12_13() {
    for r in platform::RULES {
        assert!([8, 9, 12, 13].contains(&r.group), "{r:?}");
        assert!(cnpg_ops::lint::rules().any(|x| x.id == r.id));
    }
}

// ---------------------------------------------------------------------------
// 8. Flux ownership and SOPS.

#[test]
fn two_flux_kustomizations_for_one_folder() {
    let repo = gke();
    append(
        &repo,
        PROD_FLUX,
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
         name: databases-foo-copy\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: \
         ./fluxcd/databases/prod/foo\n  prune: true\n  sourceRef: {kind: GitRepository, name: \
         flux-system}\n  dependsOn: [{name: database-operators}]\n  decryption: {provider: sops}\n",
    );
    let found = repo.lint_rule("flux-shared-ownership");
    assert_eq!(found.len(), 2, "{found:#?}");
    let words = [
        "fluxcd/databases/prod/foo",
        "2 Flux Kustomizations",
        "databases-foo (",
        "databases-foo-copy",
        "prune",
    ];
    assert_finding(
        &found[0],
        "flux-shared-ownership",
        Severity::Error,
        PROD_FLUX,
        9,
        &words,
    );
    assert_finding(
        &found[1],
        "flux-shared-ownership",
        Severity::Error,
        PROD_FLUX,
        47,
        &words,
    );
}

const SHARED_FLUX: &str = "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: databases
  namespace: flux-system
spec:
  interval: 10m
  path: ./fluxcd/databases/prod
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
    - name: database-operators
  decryption:
    provider: sops
";

#[test]
fn a_flux_kustomization_on_an_ancestor_folder_is_shared() {
    let repo = gke();
    repo.write("fluxcd/clusters/prod/all-databases.yaml", SHARED_FLUX);
    let f = one(&repo, "flux-shared-ownership");
    assert_finding(
        &f,
        "flux-shared-ownership",
        Severity::Error,
        "fluxcd/clusters/prod/all-databases.yaml",
        8,
        &[
            "databases (path ./fluxcd/databases/prod)",
            "fluxcd/databases/prod/bar, fluxcd/databases/prod/foo",
            "databases-bar, databases-foo",
            "prune by one deletes",
        ],
    );
    // Its other settings are right: nothing else fires.
    none(&repo, "flux-missing-operators-dependency");
    none(&repo, "flux-missing-sops-decryption");
}

#[test]
fn a_kustomization_listing_a_database_folder_is_shared() {
    let repo = gke();
    repo.write("fluxcd/clusters/prod/all-databases.yaml", SHARED_FLUX);
    // With a kustomization.yaml, the ancestor applies only what it lists.
    repo.write(
        "fluxcd/databases/prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - \
         bar\n",
    );
    let found = repo.lint_rule("flux-shared-ownership");
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_finding(
        &found[0],
        "flux-shared-ownership",
        Severity::Error,
        "fluxcd/clusters/prod/all-databases.yaml",
        8,
        &[
            "the database folder fluxcd/databases/prod/bar:",
            "databases-bar",
        ],
    );
    assert!(!found[0].message.contains("prod/foo"), "{found:#?}");
    assert_finding(
        &found[1],
        "flux-shared-ownership",
        Severity::Error,
        "fluxcd/databases/prod/kustomization.yaml",
        4,
        &[
            "lists the database folder fluxcd/databases/prod/bar in resources",
            "next to databases-bar",
        ],
    );
    assert!(found[1].hint.contains("remove `bar`"), "{}", found[1].hint);
}

#[test]
fn a_kustomization_listing_alone_is_shared() {
    let repo = gke();
    repo.write(
        "fluxcd/apps/prod/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - \
         ../../databases/prod/foo/\n  - web.yaml\n",
    );
    let f = one(&repo, "flux-shared-ownership");
    assert_finding(
        &f,
        "flux-shared-ownership",
        Severity::Error,
        "fluxcd/apps/prod/kustomization.yaml",
        4,
        &["fluxcd/databases/prod/foo", "next to databases-foo"],
    );
}

#[test]
fn the_flux_system_kustomization_is_not_an_owner() {
    let repo = gke();
    repo.write(
        "fluxcd/clusters/prod/flux-system.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: \
         flux-system\n  namespace: flux-system\nspec:\n  interval: 10m\n  path: \
         ./fluxcd/clusters/prod\n  prune: true\n  sourceRef: {kind: GitRepository, name: \
         flux-system}\n",
    );
    none(&repo, "flux-shared-ownership");
    none(&repo, "flux-database-not-applied");
}

#[test]
fn kustomizations_of_another_tree_are_no_owners() {
    let repo = gke();
    // No path: the root of its source (here the operator's release
    // manifests); another source: another repository's tree.
    repo.write(
        "fluxcd/clusters/prod/other-sources.yaml",
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cnpg-release
  namespace: flux-system
spec:
  interval: 1h
  prune: true
  sourceRef:
    kind: OCIRepository
    name: cloudnative-pg
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: platform-apps
  namespace: flux-system
spec:
  interval: 1h
  path: ./fluxcd
  prune: true
  sourceRef:
    kind: GitRepository
    name: platform-apps
",
    );
    none(&repo, "flux-shared-ownership");
}

#[test]
fn a_database_kustomization_without_the_operators_dependency() {
    let repo = gke();
    repo.replace(
        DEV_FLUX,
        "    - name: database-operators",
        "    - name: cert-manager",
    );
    let f = one(&repo, "flux-missing-operators-dependency");
    assert_finding(
        &f,
        "flux-missing-operators-dependency",
        Severity::Warning,
        DEV_FLUX,
        13,
        &[
            "databases-foo",
            "fluxcd/databases/dev/foo",
            "found dependsOn cert-manager",
            "expected database-operators",
            "CRD",
        ],
    );
    assert!(f.hint.contains("dependsOn: [{name: database-operators}]"));

    // Through another Kustomization that depends on the operators: fine.
    append(
        &repo,
        DEV_FLUX,
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  \
         name: cert-manager\n  namespace: flux-system\nspec:\n  interval: 1h\n  path: \
         ./fluxcd/infrastructure/cert-manager\n  prune: true\n  sourceRef: {kind: GitRepository, \
         name: flux-system}\n  dependsOn: [{name: database-operators}]\n",
    );
    none(&repo, "flux-missing-operators-dependency");
}

#[test]
fn a_database_kustomization_without_depends_on() {
    let repo = gke();
    // The first occurrence is databases-foo's.
    repo.replace(
        PROD_FLUX,
        "  dependsOn:\n    - name: database-operators\n",
        "",
    );
    let f = one(&repo, "flux-missing-operators-dependency");
    assert_finding(
        &f,
        "flux-missing-operators-dependency",
        Severity::Warning,
        PROD_FLUX,
        7,
        &["databases-foo", "found no dependsOn"],
    );
}

#[test]
fn the_operators_kustomization_name_comes_from_the_config() {
    let repo = gke();
    repo.replace(
        CONFIG,
        "[defaults]\n",
        "[defaults]\noperators_kustomization = \"cnpg-operator\"\n",
    );
    let found = repo.lint_rule("flux-missing-operators-dependency");
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|f| f.message.contains("expected cnpg-operator"))
    );
}

#[test]
fn encrypted_files_without_sops_decryption() {
    let repo = gke();
    repo.replace(
        DEV_FLUX,
        "  decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n",
        "",
    );
    let f = one(&repo, "flux-missing-sops-decryption");
    assert_finding(
        &f,
        "flux-missing-sops-decryption",
        Severity::Error,
        DEV_FLUX,
        6,
        &[
            "databases-foo",
            "fluxcd/databases/dev/foo/secrets.enc.yaml",
            "no decryption",
            "expected `decryption.provider: sops`",
        ],
    );

    // No encrypted file in the folder: nothing to decrypt.
    repo.remove("fluxcd/databases/dev/foo/secrets.enc.yaml");
    repo.replace(
        "fluxcd/databases/dev/foo/kustomization.yaml",
        "  - secrets.enc.yaml\n",
        "",
    );
    none(&repo, "flux-missing-sops-decryption");
}

#[test]
fn a_database_folder_no_flux_kustomization_applies() {
    let repo = gke();
    let text = repo.read(PROD_FLUX);
    let first = text.split("\n---\n").next().unwrap();
    repo.write(PROD_FLUX, &format!("{first}\n"));
    let f = one(&repo, "flux-database-not-applied");
    assert_finding(
        &f,
        "flux-database-not-applied",
        Severity::Warning,
        PROD_BAR,
        3,
        &[
            "no Flux Kustomization applies fluxcd/databases/prod/bar",
            "databases-bar",
        ],
    );
    assert!(f.hint.contains("fluxcd/clusters/prod/databases.yaml"));
    assert!(f.hint.contains("path: ./fluxcd/databases/prod/bar"));

    // An ancestor Kustomization applies it (and is reported as shared).
    repo.write("fluxcd/clusters/prod/all-databases.yaml", SHARED_FLUX);
    none(&repo, "flux-database-not-applied");
}

#[test]
fn a_plaintext_secret() {
    let repo = gke();
    repo.write(
        "fluxcd/databases/prod/foo/app-secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: foo-app-plain\ntype: \
         Opaque\nstringData:\n  password: hunter2\n",
    );
    let f = one(&repo, "plaintext-secret");
    assert_finding(
        &f,
        "plaintext-secret",
        Severity::Error,
        "fluxcd/databases/prod/foo/app-secret.yaml",
        6,
        &["foo-app-plain", "stringData (password)", "no sops metadata"],
    );
    assert!(f.hint.contains("rotate"));
    assert!(f.hint.contains("history"));

    // An empty Secret holds nothing.
    repo.write(
        "fluxcd/databases/prod/foo/app-secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: foo-app-plain\ndata: {}\n",
    );
    none(&repo, "plaintext-secret");
}

#[test]
fn an_enc_yaml_file_without_sops_metadata_is_plaintext() {
    let repo = gke();
    let rel = "fluxcd/databases/prod/bar/secrets.enc.yaml";
    let text = repo.read(rel);
    let body = text.split("sops:\n").next().unwrap().to_owned();
    repo.write(rel, &body);
    let f = one(&repo, "plaintext-secret");
    assert_finding(
        &f,
        "plaintext-secret",
        Severity::Error,
        rel,
        7,
        &["bar-app", "stringData (username, password)"],
    );
}

// ---------------------------------------------------------------------------
// 9. Sizing and images.

#[test]
fn wal_volume_below_max_wal_size() {
    let repo = gke();
    repo.replace(PROD_FOO, "size: 20Gi", "size: 3Gi");
    let f = one(&repo, "wal-volume-below-max-wal-size");
    assert_finding(
        &f,
        "wal-volume-below-max-wal-size",
        Severity::Error,
        PROD_FOO,
        14,
        &[
            "foo-pg",
            "walStorage.size 3Gi",
            "max_wal_size 4GB",
            "found 3Gi",
            "expected at least 8Gi",
        ],
    );
    none(&repo, "wal-volume-below-twice-max-wal-size");
}

#[test]
fn wal_volume_below_twice_max_wal_size() {
    let repo = gke();
    repo.replace(PROD_FOO, "size: 20Gi", "size: 6Gi");
    let f = one(&repo, "wal-volume-below-twice-max-wal-size");
    assert_finding(
        &f,
        "wal-volume-below-twice-max-wal-size",
        Severity::Warning,
        PROD_FOO,
        14,
        &["2 × max_wal_size", "found 6Gi", "expected at least 8Gi"],
    );
    none(&repo, "wal-volume-below-max-wal-size");
}

#[test]
fn wal_on_the_data_volume_and_plain_megabytes() {
    let repo = gke();
    // A plain number is in MB: 8192 = 8GB; the data volume (10Gi) holds pg_wal.
    repo.replace(PROD_BAR, "max_wal_size: 1GB", "max_wal_size: \"8192\"");
    let f = one(&repo, "wal-volume-below-twice-max-wal-size");
    assert_finding(
        &f,
        "wal-volume-below-twice-max-wal-size",
        Severity::Warning,
        PROD_BAR,
        12,
        &[
            "storage.size 10Gi",
            "max_wal_size 8192",
            "expected at least 16Gi",
        ],
    );
    assert!(
        f.hint.contains("walStorage.size of at least 16Gi"),
        "{}",
        f.hint
    );
}

#[test]
fn wal_volume_against_the_default_max_wal_size() {
    let repo = gke();
    repo.replace(DEV_FOO, "      max_wal_size: 4GB\n", "");
    repo.replace(DEV_FOO, "size: 20Gi", "size: 1500Mi");
    let f = one(&repo, "wal-volume-below-twice-max-wal-size");
    assert_finding(
        &f,
        "wal-volume-below-twice-max-wal-size",
        Severity::Warning,
        DEV_FOO,
        12,
        &[
            "max_wal_size 1GB (the PostgreSQL default)",
            "expected at least 2Gi",
        ],
    );
}

#[test]
fn resize_in_use_volumes_disabled() {
    let repo = gke();
    repo.replace(
        PROD_FOO,
        "resizeInUseVolumes: true",
        "resizeInUseVolumes: false",
    );
    let f = one(&repo, "resize-in-use-volumes-disabled");
    assert_finding(
        &f,
        "resize-in-use-volumes-disabled",
        Severity::Warning,
        PROD_FOO,
        12,
        &[
            "foo-pg",
            "storage.resizeInUseVolumes: false",
            "expected true",
        ],
    );
}

#[test]
fn shared_buffers_at_the_memory_limit() {
    for value in ["1GB", "\"131072\""] {
        let repo = gke();
        repo.replace(
            PROD_BAR,
            "shared_buffers: 256MB",
            &format!("shared_buffers: {value}"),
        );
        let f = one(&repo, "shared-buffers-above-memory-limit");
        assert_finding(
            &f,
            "shared-buffers-above-memory-limit",
            Severity::Error,
            PROD_BAR,
            16,
            &["bar-pg", "shared_buffers", "1 GiB", "memory limit 1Gi"],
        );
        // The error stands alone: no second finding about the same memory.
        none(&repo, "postgres-memory-above-limit");
    }
}

#[test]
fn postgres_memory_well_above_the_limit() {
    let repo = gke();
    repo.replace(PROD_FOO, "work_mem: 16MB", "work_mem: 64MB");
    let f = one(&repo, "postgres-memory-above-limit");
    assert_finding(
        &f,
        "postgres-memory-above-limit",
        Severity::Warning,
        PROD_FOO,
        25,
        &[
            "foo-pg",
            "1GB + 100 (default) × 64MB",
            "7.3 GiB",
            "memory limit 4Gi",
        ],
    );
    assert!(f.hint.contains("at least 8Gi"), "{}", f.hint);

    // Above the limit, but not well above (4.1 GiB against 4 GiB).
    let repo = gke();
    repo.replace(PROD_FOO, "work_mem: 16MB", "work_mem: 32MB");
    none(&repo, "postgres-memory-above-limit");

    // max_connections counts.
    let repo = gke();
    repo.replace(
        PROD_FOO,
        "work_mem: 16MB\n",
        "work_mem: 16MB\n      max_connections: \"400\"\n",
    );
    let f = one(&repo, "postgres-memory-above-limit");
    assert!(f.message.contains("1GB + 400 × 16MB"), "{}", f.message);
}

#[test]
fn no_memory_limit() {
    let repo = gke();
    repo.replace(PROD_BAR, "    limits:\n      memory: 1Gi\n", "");
    let f = one(&repo, "memory-limit-missing");
    assert_finding(
        &f,
        "memory-limit-missing",
        Severity::Info,
        PROD_BAR,
        17,
        &["bar-pg", "no resources.limits.memory"],
    );
}

#[test]
fn image_name_missing() {
    let repo = gke();
    repo.replace(
        PROD_BAR,
        "  imageName: ghcr.io/cloudnative-pg/postgresql:16.10-standard-bookworm\n",
        "",
    );
    let f = one(&repo, "image-name-missing");
    assert_finding(
        &f,
        "image-name-missing",
        Severity::Warning,
        PROD_BAR,
        8,
        &["bar-pg", "no imageName", "operator upgrade"],
    );

    // An image catalog pins it instead.
    repo.replace(
        PROD_BAR,
        "  instances: 2\n",
        "  instances: 2\n  imageCatalogRef:\n    apiGroup: postgresql.cnpg.io\n    kind: \
         ClusterImageCatalog\n    name: postgresql\n    major: 16\n",
    );
    none(&repo, "image-name-missing");
}

#[test]
fn image_unpinned() {
    for image in [
        "ghcr.io/cloudnative-pg/postgresql:latest",
        "ghcr.io/cloudnative-pg/postgresql",
    ] {
        let repo = gke();
        repo.replace(
            PROD_BAR,
            "ghcr.io/cloudnative-pg/postgresql:16.10-standard-bookworm",
            image,
        );
        let f = one(&repo, "image-unpinned");
        assert_finding(
            &f,
            "image-unpinned",
            Severity::Error,
            PROD_BAR,
            10,
            &["bar-pg", image, "not pinned"],
        );
        none(&repo, "image-major-only");
    }
}

#[test]
fn image_major_only() {
    for tag in ["16", "16-bookworm", "16-standard-bookworm"] {
        let repo = gke();
        repo.replace(PROD_BAR, ":16.10-standard-bookworm", &format!(":{tag}"));
        let f = one(&repo, "image-major-only");
        assert_finding(
            &f,
            "image-major-only",
            Severity::Warning,
            PROD_BAR,
            10,
            &["bar-pg", &format!("found :{tag}"), "minor version"],
        );
    }
    // Digests and minor versions are pinned.
    for pinned in [
        ":16@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ":16.10",
        "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ] {
        let repo = gke();
        repo.replace(PROD_BAR, ":16.10-standard-bookworm", pinned);
        none(&repo, "image-major-only");
        none(&repo, "image-unpinned");
    }
}

#[test]
fn single_instance_in_production() {
    let repo = gke();
    repo.replace(PROD_BAR, "instances: 2", "instances: 1");
    let f = one(&repo, "single-instance-in-production");
    assert_finding(
        &f,
        "single-instance-in-production",
        Severity::Warning,
        PROD_BAR,
        9,
        &["bar-pg", "production env prod", "found 1"],
    );

    // Absent means 1.
    repo.replace(PROD_BAR, "  instances: 1\n", "");
    let f = one(&repo, "single-instance-in-production");
    assert_finding(
        &f,
        "single-instance-in-production",
        Severity::Warning,
        PROD_BAR,
        8,
        &["default 1"],
    );
}

#[test]
fn single_instance_follows_the_production_setting() {
    // dev/foo runs one instance; dev is not production in the fixture.
    let repo = gke();
    none(&repo, "single-instance-in-production");
    repo.replace(
        CONFIG,
        "gcp_project = \"acme-dev\"\n",
        "gcp_project = \"acme-dev\"\nproduction = true\n",
    );
    let f = one(&repo, "single-instance-in-production");
    assert_finding(
        &f,
        "single-instance-in-production",
        Severity::Warning,
        DEV_FOO,
        7,
        &["foo-pg", "production env dev"],
    );
}

#[test]
fn retention_policy_missing() {
    // Plugin model: in the ObjectStore.
    let repo = gke();
    let store = "fluxcd/databases/prod/foo/object-store.yaml";
    repo.replace(store, "  retentionPolicy: 14d\n", "");
    let f = one(&repo, "retention-policy-missing");
    assert_finding(
        &f,
        "retention-policy-missing",
        Severity::Warning,
        store,
        8,
        &["ObjectStore foo-store", "foo-pg", "no retentionPolicy"],
    );

    // In-tree: in the Cluster.
    let repo = gke();
    repo.replace(PROD_BAR, "    retentionPolicy: 30d\n", "");
    let f = one(&repo, "retention-policy-missing");
    assert_finding(
        &f,
        "retention-policy-missing",
        Severity::Warning,
        PROD_BAR,
        26,
        &["Cluster bar-pg", "no retentionPolicy"],
    );
}

#[test]
fn retention_policy_of_an_object_store_outside_the_folder() {
    let repo = gke();
    let store = "fluxcd/databases/prod/foo/object-store.yaml";
    let text = repo.read(store).replace("  retentionPolicy: 14d\n", "");
    repo.remove(store);
    repo.replace(
        "fluxcd/databases/prod/foo/kustomization.yaml",
        "  - object-store.yaml\n",
        "",
    );
    let shared = "fluxcd/infrastructure/backups/object-stores.yaml";
    repo.write(shared, &text);
    let f = one(&repo, "retention-policy-missing");
    assert_finding(
        &f,
        "retention-policy-missing",
        Severity::Warning,
        shared,
        8,
        &["ObjectStore foo-store", "foo-pg"],
    );
}

#[test]
fn retention_policy_malformed() {
    let store = "fluxcd/databases/prod/foo/object-store.yaml";
    for bad in ["14 days", "0d", "14D", "2y"] {
        let repo = gke();
        repo.replace(
            store,
            "retentionPolicy: 14d",
            &format!("retentionPolicy: {bad}"),
        );
        let f = one(&repo, "retention-policy-malformed");
        assert_finding(
            &f,
            "retention-policy-malformed",
            Severity::Error,
            store,
            9,
            &["ObjectStore foo-store", bad, "^[1-9][0-9]*[dwm]$"],
        );
    }
    // A number of days needs its unit.
    let repo = gke();
    repo.replace(PROD_BAR, "retentionPolicy: 30d", "retentionPolicy: \"30\"");
    let f = one(&repo, "retention-policy-malformed");
    assert_finding(
        &f,
        "retention-policy-malformed",
        Severity::Error,
        PROD_BAR,
        27,
        &["Cluster bar-pg"],
    );
}

// ---------------------------------------------------------------------------
// 12. NetworkPolicies.

const FOO_POLICIES: &str = "fluxcd/databases/prod/foo/network-policies.yaml";

const DENY_ALL: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
  policyTypes:
    - Ingress
    - Egress
";

fn np(name: &str, spec: &str) -> String {
    format!(
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: \
         {name}\nspec:\n{spec}"
    )
}

/// The allows CloudNativePG needs, in the order the tests add them, each with
/// the words of the finding it removes (the API server before the object
/// store: egress to anywhere on 443 reaches the API server too).
fn kubernetes_allows() -> Vec<(&'static str, String)> {
    let allows = [
        (
            "allows DNS:",
            "allow-dns",
            "  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}
          podSelector: {matchLabels: {k8s-app: kube-dns}}
      ports:
        - {port: 53, protocol: UDP}
        - {port: 53, protocol: TCP}
",
        ),
        (
            "allows API server:",
            "allow-api-server",
            "  podSelector: {}
  policyTypes: [Egress]
  egress:
    - to:
        - ipBlock: {cidr: 10.96.0.0/12}
      ports:
        - port: 443
",
        ),
        (
            "allows same-namespace egress:",
            "allow-replication-out",
            "  podSelector: {matchLabels: {cnpg.io/cluster: foo-pg}}
  policyTypes: [Egress]
  egress:
    - to:
        - podSelector: {matchLabels: {cnpg.io/cluster: foo-pg}}
      ports:
        - port: 5432
        - port: 8000
",
        ),
        (
            "allows object store:",
            "allow-object-store",
            "  podSelector: {matchLabels: {cnpg.io/podRole: instance}}
  policyTypes: [Egress]
  egress:
    - ports:
        - {port: 443, protocol: TCP}
",
        ),
        (
            "allows same-namespace ingress:",
            "allow-replication-in",
            "  podSelector: {matchLabels: {cnpg.io/cluster: foo-pg}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - podSelector: {matchLabels: {cnpg.io/cluster: foo-pg}}
      ports:
        - port: postgresql
        - port: 8000
",
        ),
        (
            "allows operator:",
            "allow-operator",
            "  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: cnpg-system}}
      ports:
        - port: 8000
",
        ),
        (
            "allows application:",
            "allow-app",
            "  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: orders}}
      ports:
        - port: 5432
",
        ),
        (
            "allows metrics:",
            "allow-metrics",
            "  podSelector: {}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}
      ports:
        - port: metrics
",
        ),
    ];
    allows
        .into_iter()
        .map(|(word, name, spec)| (word, np(name, spec)))
        .collect()
}

/// The missing-allow findings match `expected` (message words) one to one.
fn assert_missing(repo: &FixtureRepo, expected: &[&str]) -> Vec<LintFinding> {
    let found = repo.lint_rule("network-policy-missing-allow");
    let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(found.len(), expected.len(), "{messages:#?}");
    for word in expected {
        let n = found.iter().filter(|f| f.message.contains(word)).count();
        assert_eq!(n, 1, "{word:?} in {messages:#?}");
    }
    found
}

#[test]
fn kubernetes_default_deny_then_the_allows_one_by_one() {
    let repo = gke();
    repo.write(FOO_POLICIES, DENY_ALL);
    repo.replace(
        "fluxcd/databases/prod/foo/kustomization.yaml",
        "  - scheduled-backup.yaml\n",
        "  - scheduled-backup.yaml\n  - network-policies.yaml\n",
    );
    let allows = kubernetes_allows();
    let mut missing: Vec<&str> = allows.iter().map(|(w, _)| *w).collect();
    let found = assert_missing(&repo, &missing);
    for f in &found {
        assert_finding(
            f,
            "network-policy-missing-allow",
            Severity::Error,
            FOO_POLICIES,
            7,
            &["namespace foo-prod is under default-deny", "default-deny)"],
        );
        let kind = if f.message.contains("API server") {
            // On Cilium, through the kube-apiserver entity.
            "add a CiliumNetworkPolicy (cilium.io/v2) to foo-prod"
        } else {
            "add a NetworkPolicy (networking.k8s.io/v1) to foo-prod"
        };
        assert!(f.hint.contains(kind), "{}", f.hint);
    }
    let dns = found.iter().find(|f| f.message.contains("DNS")).unwrap();
    assert!(dns.message.contains("53/UDP"), "{}", dns.message);
    assert!(dns.message.contains("under default-deny egress"));
    assert!(dns.hint.contains("k8s-app: kube-dns"), "{}", dns.hint);
    let metrics = found
        .iter()
        .find(|f| f.message.contains("metrics"))
        .unwrap();
    assert!(metrics.message.contains("under default-deny ingress"));
    assert!(metrics.hint.contains("port: 9187"), "{}", metrics.hint);

    // DNS over TCP only is not enough: resolvers ask over UDP first.
    append(
        &repo,
        FOO_POLICIES,
        &np(
            "allow-dns-tcp",
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - ports:\n        - \
             {port: 53, protocol: TCP}\n",
        ),
    );
    assert_missing(&repo, &missing);

    for (word, policy) in &allows {
        append(&repo, FOO_POLICIES, policy);
        missing.retain(|w| w != word);
        assert_missing(&repo, &missing);
    }
    assert!(missing.is_empty());
    // The other databases' namespaces have no default deny.
    none(&repo, "network-policy-missing-allow");
}

#[test]
fn the_object_store_port_comes_from_the_endpoint() {
    let repo = gke();
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "    destinationPath: gs://acme-prod-pg-backups/foo\n",
        "    destinationPath: s3://pg-backups/foo\n    endpointURL: \
         http://minio.minio.svc:9000\n",
    );
    let mut text = DENY_ALL.replace("    - Ingress\n", "");
    for (_, policy) in kubernetes_allows() {
        text.push_str(&policy);
    }
    repo.write(FOO_POLICIES, &text);
    let f = one(&repo, "network-policy-missing-allow");
    assert_finding(
        &f,
        "network-policy-missing-allow",
        Severity::Error,
        FOO_POLICIES,
        7,
        &["allows object store:", "port 9000", "9000/TCP"],
    );
    // The store runs in the cluster: a namespace peer is fine.
    append(
        &repo,
        FOO_POLICIES,
        &np(
            "allow-minio",
            "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n    - to:\n        - \
             namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: minio}}\n      \
             ports:\n        - port: 9000\n",
        ),
    );
    none(&repo, "network-policy-missing-allow");
}

#[test]
fn an_ingress_only_default_deny_needs_only_ingress_allows() {
    let repo = gke();
    repo.write(FOO_POLICIES, &DENY_ALL.replace("    - Egress\n", ""));
    assert_missing(
        &repo,
        &[
            "allows same-namespace ingress:",
            "allows operator:",
            "allows application:",
            "allows metrics:",
        ],
    );
}

#[test]
fn the_instances_talking_to_each_other_are_not_the_application() {
    let repo = gke();
    let mut text = DENY_ALL.replace("    - Egress\n", "");
    // Everything but the application: the same-namespace rule selects the
    // instances only.
    for (word, policy) in kubernetes_allows() {
        if word != "allows application:" {
            text.push_str(&policy);
        }
    }
    repo.write(FOO_POLICIES, &text);
    assert_missing(&repo, &["allows application:"]);
}

#[test]
fn a_policy_for_other_pods_is_no_default_deny() {
    let repo = gke();
    repo.write(
        FOO_POLICIES,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: \
         web-only\nspec:\n  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress, \
         Egress]\n",
    );
    none(&repo, "network-policy-missing-allow");
}

#[test]
fn without_cilium_the_api_server_allow_is_not_required() {
    let repo = gke();
    repo.replace(CONFIG, "cni = \"cilium\"", "cni = \"vanilla\"");
    repo.write(FOO_POLICIES, DENY_ALL);
    let found = assert_missing(
        &repo,
        &[
            "allows DNS:",
            "allows object store:",
            "allows same-namespace egress:",
            "allows same-namespace ingress:",
            "allows operator:",
            "allows application:",
            "allows metrics:",
        ],
    );
    assert!(found.iter().all(|f| !f.message.contains("API server")));
}

const CILIUM_DENY: &str = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: default-deny
spec:
  endpointSelector: {}
  ingress:
    - {}
  egress:
    - {}
";

const CILIUM_ALLOWS: &str = "---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: cnpg
spec:
  endpointSelector:
    matchLabels:
      k8s:cnpg.io/cluster: foo-pg
  egress:
    - toEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: kube-system
            k8s:k8s-app: kube-dns
      toPorts:
        - ports:
            - {port: \"53\", protocol: ANY}
    - toFQDNs:
        - matchName: storage.googleapis.com
      toPorts:
        - ports:
            - {port: \"443\", protocol: TCP}
    - toEndpoints:
        - {}
      toPorts:
        - ports:
            - {port: \"5432\"}
            - {port: \"8000\"}
  ingress:
    - fromEndpoints:
        - matchLabels:
            cnpg.io/cluster: foo-pg
      toPorts:
        - ports:
            - {port: \"5432\", protocol: TCP}
            - {port: \"8000\", protocol: TCP}
    - fromEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: cnpg-system
      toPorts:
        - ports:
            - {port: \"8000\", protocol: TCP}
    - fromEndpoints:
        - matchLabels:
            k8s:io.kubernetes.pod.namespace: orders
      toPorts:
        - ports:
            - {port: \"5432\", protocol: TCP}
    - fromEntities:
        - cluster
      toPorts:
        - ports:
            - {port: \"9187\", protocol: TCP}
";

#[test]
fn cilium_default_deny_and_the_api_server() {
    let repo = gke();
    repo.write(FOO_POLICIES, CILIUM_DENY);
    let found = assert_missing(
        &repo,
        &[
            "allows DNS:",
            "allows object store:",
            "allows same-namespace egress:",
            "allows API server:",
            "allows same-namespace ingress:",
            "allows operator:",
            "allows application:",
            "allows metrics:",
        ],
    );
    for f in &found {
        let line = if f.message.contains("default-deny egress") {
            9
        } else {
            7
        };
        assert_finding(
            f,
            "network-policy-missing-allow",
            Severity::Error,
            FOO_POLICIES,
            line,
            &["CiliumNetworkPolicy default-deny"],
        );
        assert!(
            f.hint
                .contains("add a CiliumNetworkPolicy (cilium.io/v2) to foo-prod")
        );
    }
    let api = found
        .iter()
        .find(|f| f.message.contains("API server"))
        .unwrap();
    assert!(
        api.hint.contains("toEntities: [kube-apiserver]"),
        "{}",
        api.hint
    );
    assert!(api.hint.contains("10.96.0.0/12"), "{}", api.hint);

    // Every allow but the API server.
    append(&repo, FOO_POLICIES, CILIUM_ALLOWS);
    assert_missing(&repo, &["allows API server:"]);

    // A CIDR that does not cover the service CIDR does not count.
    let api_rule = |peer: &str| {
        format!(
            "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: \
             api\nspec:\n  endpointSelector: {{}}\n  egress:\n    - {peer}\n"
        )
    };
    let with_allows = repo.read(FOO_POLICIES);
    repo.write(
        FOO_POLICIES,
        &format!("{with_allows}{}", api_rule("toCIDR: [192.168.0.0/16]")),
    );
    assert_missing(&repo, &["allows API server:"]);
    for peer in ["toCIDR: [10.0.0.0/8]", "toEntities: [kube-apiserver]"] {
        repo.write(FOO_POLICIES, &format!("{with_allows}{}", api_rule(peer)));
        none(&repo, "network-policy-missing-allow");
    }
}

#[test]
fn a_clusterwide_cilium_default_deny_covers_every_database_namespace() {
    let repo = gke();
    let rel = "fluxcd/infrastructure/policies/default-deny.yaml";
    repo.write(
        rel,
        "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: \
         default-deny-egress\nspec:\n  endpointSelector: {}\n  egress:\n    - {}\n",
    );
    let found = repo.lint_rule("network-policy-missing-allow");
    // DNS, object store, same namespace, API server in each of three namespaces.
    assert_eq!(found.len(), 12, "{found:#?}");
    for ns in ["foo-dev", "bar-prod", "foo-prod"] {
        let n = found
            .iter()
            .filter(|f| f.message.contains(&format!("namespace {ns} ")))
            .count();
        assert_eq!(n, 4, "{ns}: {found:#?}");
    }
    assert!(
        found
            .iter()
            .all(|f| f.file == Path::new(rel) && f.line == 7)
    );
}

#[test]
fn a_cilium_policy_where_the_cni_is_not_cilium() {
    let repo = gke();
    repo.replace(CONFIG, "cni = \"cilium\"", "cni = \"vanilla\"");
    repo.write(FOO_POLICIES, CILIUM_DENY);
    let f = one(&repo, "cilium-policy-without-cilium");
    assert_finding(
        &f,
        "cilium-policy-without-cilium",
        Severity::Error,
        FOO_POLICIES,
        2,
        &[
            "CiliumNetworkPolicy default-deny",
            "env prod",
            "CNI is vanilla",
            "nothing enforces it",
        ],
    );
    none(&repo, "network-policy-without-enforcement");

    // The env's own setting wins over the defaults.
    repo.replace(CONFIG, "[env.prod]\n", "[env.prod]\ncni = \"cilium\"\n");
    none(&repo, "cilium-policy-without-cilium");
}

#[test]
fn a_network_policy_where_no_cni_enforces_it() {
    let repo = gke();
    repo.replace(CONFIG, "cni = \"cilium\"", "cni = \"none\"");
    repo.write(FOO_POLICIES, DENY_ALL);
    let f = one(&repo, "network-policy-without-enforcement");
    assert_finding(
        &f,
        "network-policy-without-enforcement",
        Severity::Warning,
        FOO_POLICIES,
        2,
        &["NetworkPolicy default-deny", "env prod", "CNI is none"],
    );

    // Cilium policies are errors there.
    repo.write(FOO_POLICIES, CILIUM_DENY);
    let f = one(&repo, "cilium-policy-without-cilium");
    assert!(f.message.contains("CNI is none"), "{}", f.message);
}

#[test]
fn an_unknown_cni_is_not_judged() {
    let repo = gke();
    repo.replace(CONFIG, "cni = \"cilium\"\n", "");
    repo.write(FOO_POLICIES, CILIUM_DENY);
    none(&repo, "cilium-policy-without-cilium");
    none(&repo, "network-policy-without-enforcement");
}

// ---------------------------------------------------------------------------
// 13. Monitoring.

#[test]
fn no_alert_on_wal_archiving() {
    let repo = gke();
    repo.replace(
        ALERTS,
        "cnpg_pg_stat_archiver_last_failed_time - cnpg_pg_stat_archiver_last_archived_time > 1",
        "cnpg_collector_up == 0",
    );
    repo.replace(
        ALERTS,
        "cnpg_pg_stat_archiver_seconds_since_last_archival > 900",
        "cnpg_collector_fencing_on > 0",
    );
    let f = one(&repo, "no-wal-archiving-alert");
    assert_finding(
        &f,
        "no-wal-archiving-alert",
        Severity::Warning,
        ALERTS,
        7,
        &[
            "3 databases (dev/foo, prod/bar, prod/foo)",
            "cnpg_pg_stat_archiver_*",
            "cnpg_collector_pg_wal_archive_status",
        ],
    );
    assert!(f.hint.contains("cnpg_pg_stat_archiver_last_failed_time"));

    // The ready-WAL count is an archiving alert too.
    repo.replace(
        ALERTS,
        "cnpg_collector_fencing_on > 0",
        "'cnpg_collector_pg_wal_archive_status{value=\"ready\"} > 10'",
    );
    none(&repo, "no-wal-archiving-alert");
}

#[test]
fn no_prometheus_rule_at_all() {
    let repo = gke();
    repo.remove(ALERTS);
    let f = one(&repo, "no-wal-archiving-alert");
    assert_finding(
        &f,
        "no-wal-archiving-alert",
        Severity::Warning,
        DEV_FOO,
        6,
        &["no PrometheusRule alerts on WAL archiving"],
    );
}

#[test]
fn an_alert_on_a_hard_coded_namespace() {
    for matcher in [
        "namespace=\"foo-prod\"",
        "namespace=~\"foo-.*\"",
        "namespace =~ \"foo-prod|bar-prod\"",
    ] {
        let repo = gke();
        repo.replace(
            ALERTS,
            "expr: cnpg_pg_stat_archiver_seconds_since_last_archival > 900",
            &format!(
                "expr: 'cnpg_pg_stat_archiver_seconds_since_last_archival{{{matcher}}} > 900'"
            ),
        );
        let f = one(&repo, "alert-hardcoded-namespace");
        assert_finding(
            &f,
            "alert-hardcoded-namespace",
            Severity::Warning,
            ALERTS,
            16,
            &["cnpg-archiving", matcher, "hard-coded namespace"],
        );
    }
    // Wildcards, exclusions and other metrics are fine.
    for expr in [
        "cnpg_pg_stat_archiver_seconds_since_last_archival{namespace=~\".*\"} > 900",
        "cnpg_pg_stat_archiver_seconds_since_last_archival{namespace!=\"foo-prod\"} > 900",
        "kube_pod_container_status_restarts_total{namespace=\"kube-system\"} > 5",
        "sum by (namespace) (cnpg_pg_stat_archiver_seconds_since_last_archival) > 900",
    ] {
        let repo = gke();
        repo.replace(
            ALERTS,
            "expr: cnpg_pg_stat_archiver_seconds_since_last_archival > 900",
            &format!("expr: '{expr}'"),
        );
        none(&repo, "alert-hardcoded-namespace");
    }
}

#[test]
fn a_pod_monitor_without_the_prometheus_operator() {
    let repo = gke();
    repo.remove(ALERTS);
    let f = one(&repo, "pod-monitor-without-prometheus-operator");
    assert_finding(
        &f,
        "pod-monitor-without-prometheus-operator",
        Severity::Warning,
        PROD_FOO,
        42,
        &["foo-pg", "enablePodMonitor: true", "PodMonitor CRD"],
    );

    // A kube-prometheus-stack release installs it.
    repo.write(
        "fluxcd/infrastructure/monitoring/kube-prometheus-stack.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: \
         monitoring\n  namespace: monitoring\nspec:\n  interval: 1h\n  chart:\n    spec:\n      \
         chart: kube-prometheus-stack\n      sourceRef: {kind: HelmRepository, name: \
         prometheus-community}\n",
    );
    none(&repo, "pod-monitor-without-prometheus-operator");
}

/// The policies a finding's hint describes ("add a KIND (API) to NS with spec: {…}"),
/// parsed back into a document.
fn policy_from_hint(f: &LintFinding, name: &str) -> String {
    let (_, rest) = f.hint.split_once("add a ").unwrap();
    let (kind, rest) = rest.split_once(" (").unwrap();
    let (api, rest) = rest.split_once(") to ").unwrap();
    let (_, spec) = rest.split_once(" with spec: ").unwrap();
    // A note may follow the spec in parentheses.
    let spec = spec.split(" (narrow").next().unwrap();
    let parsed = cnpg_ops::yaml::parse_values(spec)
        .unwrap_or_else(|e| panic!("the hint's spec does not parse: {e}\n{spec}"));
    assert_eq!(parsed.len(), 1, "{spec}");
    assert!(parsed[0].is_object(), "{spec}");
    format!("---\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\nspec: {spec}\n")
}

/// Whatever the deny and the CNI, the hints are policies that grant what is missing:
/// applied as they are, every missing-allow finding goes away.
#[test]
fn the_hints_applied_as_written_clear_every_missing_allow() {
    for (deny, vanilla) in [(DENY_ALL, false), (CILIUM_DENY, false), (DENY_ALL, true)] {
        let repo = gke();
        if vanilla {
            repo.replace(CONFIG, "cni = \"cilium\"", "cni = \"vanilla\"");
        }
        repo.write(FOO_POLICIES, deny);
        if deny == DENY_ALL {
            repo.replace(
                "fluxcd/databases/prod/foo/kustomization.yaml",
                "  - scheduled-backup.yaml\n",
                "  - scheduled-backup.yaml\n  - network-policies.yaml\n",
            );
        }
        let found = repo.lint_rule("network-policy-missing-allow");
        assert!(found.len() >= 7, "{found:#?}");
        for (i, f) in found.iter().enumerate() {
            append(
                &repo,
                FOO_POLICIES,
                &policy_from_hint(f, &format!("hint-{i}")),
            );
        }
        let left = repo.lint_rule("network-policy-missing-allow");
        assert!(
            left.is_empty(),
            "vanilla={vanilla}: {left:#?}\n{}",
            repo.read(FOO_POLICIES)
        );
        none(&repo, "cilium-policy-without-cilium");
    }
}
