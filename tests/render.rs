//! Recovery manifests rendered into the fixture repositories, validated
//! against the CRD schemas and the webhook rules, delivered as git commits,
//! and linted afterwards.

mod support;

use chrono::DateTime;
use serde_json::Value;
use support::repo::{FixtureRepo, assert_valid, git};

use cnpg_ops::gitops::changes::{self, Mode, WriteOptions};
use cnpg_ops::gitops::git::Git;
use cnpg_ops::gitops::plan::{self, RecoveryRequest};
use cnpg_ops::gitops::render::Target;
use cnpg_ops::yaml;

fn request(src: (&str, &str), dst: (&str, &str), target: Target) -> RecoveryRequest {
    RecoveryRequest {
        source_env: src.0.into(),
        source_svc: src.1.into(),
        dest_env: dst.0.into(),
        dest_svc: dst.1.into(),
        dest_cluster: None,
        target,
        backup_id: None,
        timeline: None,
        label: "20260501t1000".into(),
    }
}

fn write(repo: &FixtureRepo, req: &RecoveryRequest, branch: &str) -> changes::Outcome {
    let git = Git::discover(repo.root()).unwrap();
    let opts = WriteOptions {
        mode: Mode::Write,
        push: false,
        branch: branch.into(),
        base: None,
    };
    changes::apply(&git, &opts, |root| plan::recovery(root, req)).unwrap()
}

fn show(repo: &FixtureRepo, branch: &str, path: &str) -> String {
    git(repo.root(), &["show", &format!("{branch}:{path}")])
}

#[test]
fn pitr_beside_a_plugin_cluster_on_gke() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    let t = DateTime::parse_from_rfc3339("2026-05-01T10:00:00+02:00").unwrap();
    let req = request(("prod", "foo"), ("prod", "foo"), Target::Time(t));
    let out = write(&repo, &req, "pitr/foo");
    let commit = out.commit.as_ref().unwrap();
    assert_eq!(commit.branch, "pitr/foo");
    let files: Vec<String> = out
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "fluxcd/databases/prod/foo/foo-pg-pitr-20260501t1000.yaml",
            "fluxcd/databases/prod/foo/kustomization.yaml",
            "terraform/gcp/prod/service-accounts/service-accounts.yaml",
        ]
    );
    let cluster = show(
        &repo,
        "pitr/foo",
        "fluxcd/databases/prod/foo/foo-pg-pitr-20260501t1000.yaml",
    );
    insta::assert_snapshot!("pitr_plugin_gke_cluster", cluster);
    assert_valid("pitr cluster", &cluster);
    // The edits keep every comment and only add lines.
    let k = show(
        &repo,
        "pitr/foo",
        "fluxcd/databases/prod/foo/kustomization.yaml",
    );
    assert_eq!(
        k,
        repo.read("fluxcd/databases/prod/foo/kustomization.yaml")
            + "  - foo-pg-pitr-20260501t1000.yaml\n"
    );
    let sa = show(
        &repo,
        "pitr/foo",
        "terraform/gcp/prod/service-accounts/service-accounts.yaml",
    );
    assert_eq!(
        sa,
        repo.read("terraform/gcp/prod/service-accounts/service-accounts.yaml")
            .replace(
                "      - bar-prod/bar-pg\n",
                "      - bar-prod/bar-pg\n      - foo-prod/foo-pg-pitr-20260501t1000\n"
            )
    );
    // The user's checkout is untouched; the branch lints clean.
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
    git(repo.root(), &["switch", "-q", "pitr/foo"]);
    let errors: Vec<_> = repo
        .lint()
        .into_iter()
        .filter(|f| f.severity == cnpg_ops::catalog::findings::Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let message = git(repo.root(), &["log", "-1", "--format=%B", "pitr/foo"]);
    assert!(message.starts_with("prod/foo: restore foo-pg to 2026-05-01 10:00:00.000000+02:00 as foo-pg-pitr-20260501t1000\n"), "{message}");
}

#[test]
fn pitr_beside_an_inline_cluster_at_an_lsn() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    let mut req = request(
        ("prod", "bar"),
        ("prod", "bar"),
        Target::Lsn("0/5000060".into()),
    );
    req.dest_cluster = Some("bar-pg-restore".into());
    let git = Git::discover(repo.root()).unwrap();
    let out = changes::apply(
        &git,
        &WriteOptions {
            mode: Mode::DryRun,
            push: false,
            branch: String::new(),
            base: None,
        },
        |root| plan::recovery(root, &req),
    )
    .unwrap();
    assert!(out.differs && out.commit.is_none());
    assert!(
        out.diff
            .contains("+++ b/fluxcd/databases/prod/bar/bar-pg-restore.yaml"),
        "{}",
        out.diff
    );
    assert_eq!(git_status(&repo), "", "dry-run wrote nothing");
    let rendered = plan::recovery(repo.root(), &req).unwrap();
    let cluster = rendered
        .changes
        .iter()
        .find(|c| c.path.ends_with("bar-pg-restore.yaml"))
        .and_then(|c| c.after.clone())
        .unwrap();
    insta::assert_snapshot!("pitr_inline_gke_cluster", cluster);
    assert_valid("inline pitr", &cluster);
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    // The source folder is named explicitly; the new cluster writes elsewhere.
    assert_eq!(
        v["spec"]["externalClusters"][0]["barmanObjectStore"]["serverName"],
        "bar-pg"
    );
    assert_eq!(
        v["spec"]["backup"]["barmanObjectStore"]["serverName"],
        "bar-pg-restore"
    );
    assert_eq!(
        v["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["targetLSN"],
        "0/5000060"
    );
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["database"], "bar");
}

fn git_status(repo: &FixtureRepo) -> String {
    git(repo.root(), &["status", "--porcelain"])
}

#[test]
fn clone_into_an_existing_database_bumps_the_write_generation_and_keeps_comments() {
    let repo = FixtureRepo::copy("gke");
    repo.git_init();
    let out = write(
        &repo,
        &request(("prod", "foo"), ("dev", "foo"), Target::Latest),
        "clone/foo",
    );
    let files: Vec<String> = out
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    // dev already reads prod's bucket through foo-store-prod, and prod's
    // bucket already lists dev's account: only the Cluster changes.
    assert_eq!(files, ["fluxcd/databases/dev/foo/database.yaml"]);
    let after = show(&repo, "clone/foo", "fluxcd/databases/dev/foo/database.yaml");
    insta::assert_snapshot!("clone_plugin_gke_database", after);
    assert!(after.contains("        # every clone generation writes to its own folder\n        serverName: foo-pg-g3\n"), "{after}");
    assert_valid("clone", &after);
    let v = &yaml::parse_values(&after).unwrap()[0];
    assert_eq!(
        v["spec"]["externalClusters"][0]["plugin"]["parameters"]["serverName"],
        "foo-pg"
    );
    assert_eq!(
        v["spec"]["externalClusters"][0]["plugin"]["parameters"]["barmanObjectName"],
        "foo-store-prod"
    );
    assert!(
        v["spec"]["bootstrap"]["recovery"]
            .get("recoveryTarget")
            .is_none()
    );
}

#[test]
fn clone_adds_the_reader_store_and_the_cross_env_read_when_missing() {
    let repo = FixtureRepo::copy("gke");
    // Start from a dev database that has never read prod.
    let store = repo.read("fluxcd/databases/dev/foo/object-store.yaml");
    let own = store.split("\n---\n").next().unwrap().to_owned() + "\n";
    repo.write("fluxcd/databases/dev/foo/object-store.yaml", &own);
    repo.replace(
        "terraform/gcp/prod/gcs/buckets.yaml",
        "    # Members with object read on this bucket (clones in other envs).\n    readers:\n      - serviceAccount:cnpg-backup@acme-dev.iam.gserviceaccount.com\n",
        "",
    );
    repo.git_init();
    let out = write(
        &repo,
        &request(("prod", "foo"), ("dev", "foo"), Target::Latest),
        "clone/foo",
    );
    let files: Vec<String> = out
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "fluxcd/databases/dev/foo/database.yaml",
            "fluxcd/databases/dev/foo/object-store.yaml",
            "terraform/gcp/prod/gcs/buckets.yaml",
        ]
    );
    let stores = show(
        &repo,
        "clone/foo",
        "fluxcd/databases/dev/foo/object-store.yaml",
    );
    assert!(stores.starts_with(&own), "{stores}");
    assert_valid("stores", &stores);
    let added = &yaml::parse_values(&stores).unwrap()[1];
    assert_eq!(added["metadata"]["name"], "foo-store-prod");
    assert_eq!(
        added["spec"]["configuration"]["destinationPath"],
        "gs://acme-prod-pg-backups/foo"
    );
    assert!(added["spec"]["configuration"].get("serverName").is_none());
    let buckets = show(&repo, "clone/foo", "terraform/gcp/prod/gcs/buckets.yaml");
    let b = &yaml::parse_values(&buckets).unwrap()[0];
    assert_eq!(
        b["buckets"][0]["readers"],
        Value::from(vec![
            "serviceAccount:cnpg-backup@acme-dev.iam.gserviceaccount.com"
        ])
    );
}

#[test]
fn a_target_the_operator_cannot_choose_a_backup_for_is_refused_without_backup_id() {
    let repo = FixtureRepo::copy("gke");
    let err = plan::recovery(
        repo.root(),
        &request(
            ("prod", "foo"),
            ("prod", "foo"),
            Target::Name("before-migration".into()),
        ),
    )
    .unwrap_err();
    assert!(err.to_string().contains("backupID"), "{err}");
    let mut req = request(
        ("prod", "foo"),
        ("prod", "foo"),
        Target::Name("before-migration".into()),
    );
    req.backup_id = Some("20260501T020000".into());
    let set = plan::recovery(repo.root(), &req).unwrap();
    let cluster = set.changes[0].after.clone().unwrap();
    assert_valid("named", &cluster);
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    assert_eq!(
        v["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["backupID"],
        "20260501T020000"
    );
    assert_eq!(
        v["spec"]["bootstrap"]["recovery"]["recoveryTarget"]["targetName"],
        "before-migration"
    );
}

#[test]
fn unknown_databases_are_named_with_the_known_ones() {
    let repo = FixtureRepo::copy("gke");
    let err = plan::recovery(
        repo.root(),
        &request(("prod", "nope"), ("prod", "nope"), Target::Latest),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no database `nope` in env `prod` (known: dev/foo, prod/bar, prod/foo)"
    );
}

#[test]
fn selfhosted_s3_pitr_keeps_endpoint_ca_and_secrets() {
    let repo = FixtureRepo::copy("selfhosted");
    let req = request(("prod", "legacy"), ("prod", "legacy"), Target::Latest);
    let set = plan::recovery(repo.root(), &req).unwrap();
    let files: Vec<String> = set
        .changes
        .iter()
        .map(|c| c.path.display().to_string())
        .collect();
    // No Workload Identity: no terraform edit.
    assert_eq!(
        files,
        [
            "clusters/prod/databases/legacy/legacy-pitr-20260501t1000.yaml",
            "clusters/prod/databases/legacy/kustomization.yaml"
        ]
    );
    let cluster = set.changes[0].after.clone().unwrap();
    insta::assert_snapshot!("pitr_inline_s3_cluster", cluster);
    assert_valid("s3 pitr", &cluster);
    let v = &yaml::parse_values(&cluster).unwrap()[0];
    let ext = &v["spec"]["externalClusters"][0]["barmanObjectStore"];
    assert_eq!(ext["endpointURL"], "https://minio.prod.lan:9000");
    assert_eq!(ext["s3Credentials"]["accessKeyId"]["name"], "legacy-s3");
    assert_eq!(ext["serverName"], "legacy");
    assert!(
        v["spec"]["bootstrap"]["recovery"]
            .get("recoveryTarget")
            .is_none()
    );
}

#[test]
fn selfhosted_s3_clone_reads_prod_with_its_own_secret_names() {
    let repo = FixtureRepo::copy("selfhosted");
    repo.git_init();
    let out = write(
        &repo,
        &request(("prod", "shop"), ("dev", "shop"), Target::Latest),
        "clone/shop",
    );
    let files: Vec<String> = out
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "clusters/dev/databases/shop/database.yaml",
            "clusters/dev/databases/shop/object-store.yaml",
        ]
    );
    let stores = show(
        &repo,
        "clone/shop",
        "clusters/dev/databases/shop/object-store.yaml",
    );
    insta::assert_snapshot!("clone_s3_object_stores", stores);
    assert_valid("stores", &stores);
    let reader = &yaml::parse_values(&stores).unwrap()[1];
    assert_eq!(reader["metadata"]["name"], "shop-store-prod");
    assert_eq!(
        reader["spec"]["configuration"]["s3Credentials"]["accessKeyId"]["name"],
        "shop-s3-prod"
    );
    assert_eq!(
        reader["spec"]["configuration"]["endpointCA"]["name"],
        "minio-ca-prod"
    );
    let db = show(
        &repo,
        "clone/shop",
        "clusters/dev/databases/shop/database.yaml",
    );
    assert_valid("db", &db);
    let v = &yaml::parse_values(&db).unwrap()[0];
    assert_eq!(
        v["spec"]["plugins"][0]["parameters"]["serverName"],
        "shop-g2"
    );
    assert_eq!(
        v["spec"]["externalClusters"][0]["plugin"]["parameters"]["serverName"],
        "shop"
    );
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["source"], "prod");
    let message = git(repo.root(), &["log", "-1", "--format=%B", "clone/shop"]);
    assert!(
        message.contains("create in namespace shop the Secret(s) shop-s3-prod, minio-ca-prod"),
        "{message}"
    );
}

#[test]
fn regression_a_store_with_the_same_path_on_another_endpoint_is_not_the_source() {
    let repo = FixtureRepo::copy("selfhosted");
    for env in ["prod", "dev"] {
        repo.replace(
            &format!("clusters/{env}/databases/shop/object-store.yaml"),
            &format!("destinationPath: s3://pg-backups-{env}/"),
            "destinationPath: s3://pg-backups/",
        );
    }
    let set = plan::recovery(
        repo.root(),
        &request(("prod", "shop"), ("dev", "shop"), Target::Latest),
    )
    .unwrap();
    let db = set
        .changes
        .iter()
        .find(|c| c.path.ends_with("database.yaml"))
        .unwrap();
    let v = &yaml::parse_values(db.after.as_deref().unwrap()).unwrap()[0];
    assert_eq!(
        v["spec"]["externalClusters"][0]["plugin"]["parameters"]["barmanObjectName"],
        "shop-store-prod"
    );
    let stores = set
        .changes
        .iter()
        .find(|c| c.path.ends_with("object-store.yaml"))
        .unwrap();
    let reader = &yaml::parse_values(stores.after.as_deref().unwrap()).unwrap()[1];
    assert_eq!(
        reader["spec"]["configuration"]["endpointURL"],
        "https://minio.prod.lan:9000"
    );
}

#[test]
fn regression_a_clone_keeps_the_source_database_names_and_needs_secrets_in_another_namespace() {
    let repo = FixtureRepo::copy("selfhosted");
    let set = plan::recovery(
        repo.root(),
        &request(("prod", "legacy"), ("prod", "shop"), Target::Latest),
    )
    .unwrap();
    let db = set
        .changes
        .iter()
        .find(|c| c.path.ends_with("shop/database.yaml"))
        .unwrap();
    let v = &yaml::parse_values(db.after.as_deref().unwrap()).unwrap()[0];
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["database"], "legacy");
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["owner"], "legacy");
    let ext = &v["spec"]["externalClusters"][0]["barmanObjectStore"];
    assert_eq!(
        ext["s3Credentials"]["accessKeyId"]["name"],
        "legacy-s3-prod"
    );
    assert!(
        set.body
            .contains("create in namespace shop the Secret(s) legacy-s3-prod"),
        "{}",
        set.body
    );
}

#[test]
fn regression_a_reclone_keeps_comments_and_other_external_clusters() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/dev/foo/database.yaml",
        "  bootstrap:\n    recovery:\n      source: prod\n",
        "  bootstrap: # cloned from prod by cnpg-ops\n    recovery:\n      # prod's catalog, through the read-only store\n      source: prod\n",
    );
    repo.replace(
        "fluxcd/databases/dev/foo/database.yaml",
        "  externalClusters:\n",
        "  externalClusters: # read-only sources\n    - name: reporting\n      connectionParameters:\n        host: reporting-rw\n        dbname: app\n",
    );
    let set = plan::recovery(
        repo.root(),
        &request(("prod", "foo"), ("dev", "foo"), Target::Latest),
    )
    .unwrap();
    let after = set.changes[0].after.clone().unwrap();
    for kept in [
        "  bootstrap: # cloned from prod by cnpg-ops\n",
        "      # prod's catalog, through the read-only store\n      source: prod\n",
        "  externalClusters: # read-only sources\n",
        "    - name: reporting\n",
    ] {
        assert!(after.contains(kept), "lost {kept:?}:\n{after}");
    }
    assert_valid("reclone", &after);
}
