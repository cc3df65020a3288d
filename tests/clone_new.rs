//! A clone into an env where the database does not exist yet: the new
//! folder rendered from the source's, validated against the CRD schemas and
//! the webhook rules, delivered as a git commit and linted afterwards.

mod support;

use serde_json::Value;
use support::repo::{FixtureRepo, assert_valid, git};

use cnpg_ops::catalog::findings::Severity;
use cnpg_ops::gitops::changes::{self, Mode, Outcome, WriteOptions};
use cnpg_ops::gitops::git::Git;
use cnpg_ops::gitops::plan::RecoveryRequest;
use cnpg_ops::gitops::render::Target;
use cnpg_ops::gitops::scaffold;
use cnpg_ops::yaml;

const GKE_STAGING: &str = r#"
[env.staging]
kube_context = "gke_acme-staging_europe-west1_main"
gcp_project = "acme-staging"
backup_destination = "gs://acme-staging-pg-backups/{svc}"
storage_class = "standard-rwo"
memory_limit = "1Gi"
retention = "7d"
"#;

const STAGING_ACCOUNTS: &str =
    "# Google service accounts of acme-staging, read by terraform with yamldecode().
service_accounts:
  - name: cnpg-backup
    display_name: CloudNativePG backups
    roles:
      - roles/storage.objectAdmin
      - roles/storage.legacyBucketReader # storage.buckets.get for barman-cloud
    # Kubernetes service accounts (namespace/name) that may act as this account.
    workload_identity_bindings:
      - reporting-staging/reporting-pg # the reporting database, managed elsewhere
";

const STAGING_BUCKETS: &str = "buckets:
  - name: acme-staging-pg-backups
    location: EU
    # Longer than the staging retention (7d) plus the backup interval (1d).
    lifecycle_rules:
      - action: Delete
        age_days: 30
";

/// The gke fixture with a `staging` env that has its Terraform but no
/// database yet.
fn gke_with_staging(config: &str) -> FixtureRepo {
    let repo = FixtureRepo::copy("gke");
    let toml = repo.read(".cnpg-ops.toml") + config;
    repo.write(".cnpg-ops.toml", &toml);
    repo.write(
        "terraform/gcp/staging/service-accounts/service-accounts.yaml",
        STAGING_ACCOUNTS,
    );
    repo.write("terraform/gcp/staging/gcs/buckets.yaml", STAGING_BUCKETS);
    repo
}

fn request(src: (&str, &str), dst: (&str, &str)) -> RecoveryRequest {
    RecoveryRequest {
        source_env: src.0.into(),
        source_svc: src.1.into(),
        dest_env: dst.0.into(),
        dest_svc: dst.1.into(),
        dest_cluster: None,
        target: Target::Latest,
        backup_id: None,
        timeline: None,
        label: "20260501t1000".into(),
    }
}

/// Commits the plan on `branch` in write mode, checks that every file it
/// touched validates, switches to the branch and checks it lints without
/// an error.
fn deliver(repo: &FixtureRepo, req: &RecoveryRequest, branch: &str) -> Outcome {
    repo.git_init();
    let repo_git = Git::discover(repo.root()).unwrap();
    let opts = WriteOptions {
        mode: Mode::Write,
        push: false,
        branch: branch.into(),
        base: None,
    };
    let out = changes::apply(&repo_git, &opts, |root| scaffold::new_database(root, req)).unwrap();
    assert!(out.commit.is_some());
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
    for f in &out.files {
        let path = f.path.display().to_string();
        assert_valid(&path, &show(repo, branch, &path));
    }
    git(repo.root(), &["switch", "-q", branch]);
    let errors: Vec<_> = repo
        .lint()
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    out
}

fn paths(out: &Outcome) -> Vec<String> {
    out.files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect()
}

fn show(repo: &FixtureRepo, branch: &str, path: &str) -> String {
    git(repo.root(), &["show", &format!("{branch}:{path}")])
}

fn message(repo: &FixtureRepo, branch: &str) -> String {
    git(repo.root(), &["log", "-1", "--format=%B", branch])
}

fn first(text: &str) -> Value {
    yaml::parse_values(text).unwrap().remove(0)
}

#[test]
fn gke_inline_database_into_a_new_env() {
    let repo = gke_with_staging(GKE_STAGING);
    let prod_buckets = repo.read("terraform/gcp/prod/gcs/buckets.yaml");
    let out = deliver(
        &repo,
        &request(("prod", "bar"), ("staging", "bar")),
        "clone/bar",
    );
    assert_eq!(
        paths(&out),
        [
            "fluxcd/clusters/staging/databases.yaml",
            "fluxcd/databases/staging/bar/database.yaml",
            "fluxcd/databases/staging/bar/kustomization.yaml",
            "fluxcd/databases/staging/bar/namespace.yaml",
            "fluxcd/databases/staging/bar/scheduled-backup.yaml",
            "terraform/gcp/prod/gcs/buckets.yaml",
            "terraform/gcp/staging/service-accounts/service-accounts.yaml",
        ]
    );
    let db = show(
        &repo,
        "clone/bar",
        "fluxcd/databases/staging/bar/database.yaml",
    );
    insta::assert_snapshot!("clone_new_inline_gke_database", db);
    let v = first(&db);
    assert_eq!(v["metadata"]["namespace"], "bar-staging");
    assert_eq!(v["spec"]["instances"], 1);
    assert_eq!(v["spec"]["storage"]["storageClass"], "standard-rwo");
    assert_eq!(v["spec"]["resources"]["limits"]["memory"], "1Gi");
    // 256MB is already 25% of 1Gi.
    assert_eq!(
        v["spec"]["postgresql"]["parameters"]["shared_buffers"],
        "256MB"
    );
    let ext = &v["spec"]["externalClusters"][0];
    assert_eq!(ext["name"], "prod");
    assert_eq!(
        ext["barmanObjectStore"]["destinationPath"],
        "gs://acme-prod-pg-backups/bar"
    );
    assert_eq!(ext["barmanObjectStore"]["serverName"], "bar-pg");
    let own = &v["spec"]["backup"];
    assert_eq!(
        own["barmanObjectStore"]["destinationPath"],
        "gs://acme-staging-pg-backups/bar"
    );
    assert_eq!(own["barmanObjectStore"]["serverName"], "bar-pg-g2");
    assert_eq!(own["retentionPolicy"], "7d");
    assert_eq!(
        v["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "cnpg-backup@acme-staging.iam.gserviceaccount.com"
    );
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["database"], "bar");
    assert!(v["spec"].get("plugins").is_none());

    let k = first(&show(
        &repo,
        "clone/bar",
        "fluxcd/databases/staging/bar/kustomization.yaml",
    ));
    assert_eq!(k["namespace"], "bar-staging");
    // bar-app is in prod's encrypted file, so the folder needs one too.
    assert_eq!(
        k["resources"],
        serde_json::json!([
            "namespace.yaml",
            "secrets.enc.yaml",
            "database.yaml",
            "scheduled-backup.yaml"
        ])
    );
    let sb = first(&show(
        &repo,
        "clone/bar",
        "fluxcd/databases/staging/bar/scheduled-backup.yaml",
    ));
    assert_eq!(sb["metadata"]["namespace"], "bar-staging");
    assert_eq!(sb["spec"]["cluster"]["name"], "bar-pg");
    assert_eq!(sb["spec"]["method"], "barmanObjectStore");

    let flux = first(&show(
        &repo,
        "clone/bar",
        "fluxcd/clusters/staging/databases.yaml",
    ));
    assert_eq!(flux["metadata"]["name"], "databases-bar");
    assert_eq!(flux["spec"]["path"], "./fluxcd/databases/staging/bar");
    assert_eq!(
        flux["spec"]["dependsOn"],
        serde_json::json!([{"name": "database-operators"}])
    );
    assert_eq!(flux["spec"]["decryption"]["provider"], "sops");
    assert_eq!(flux["spec"]["interval"], "10m");

    // Terraform edits only add lines; every comment stays.
    assert_eq!(
        show(
            &repo,
            "clone/bar",
            "terraform/gcp/staging/service-accounts/service-accounts.yaml"
        ),
        STAGING_ACCOUNTS.to_owned() + "      - bar-staging/bar-pg\n"
    );
    assert_eq!(
        show(&repo, "clone/bar", "terraform/gcp/prod/gcs/buckets.yaml"),
        prod_buckets + "      - serviceAccount:cnpg-backup@acme-staging.iam.gserviceaccount.com\n"
    );

    let m = message(&repo, "clone/bar");
    assert!(
        m.starts_with("staging/bar: new database cloned from prod/bar at the end of the archive\n"),
        "{m}"
    );
    for said in [
        "gs://acme-prod-pg-backups/bar/bar-pg",
        "gs://acme-staging-pg-backups/bar/bar-pg-g2",
        "1 instance (prod: 2)",
        "retention 7d (prod: 30d)",
        "  - bar-app (kubernetes.io/basic-auth; username, password): as in \
         fluxcd/databases/prod/bar/secrets.enc.yaml",
        "  sops --encrypt --filename-override fluxcd/databases/staging/bar/secrets.enc.yaml \
         --age <age public key of staging's sops-age Secret> --encrypted-regex \
         '^(data|stringData)$' /dev/stdin > fluxcd/databases/staging/bar/secrets.enc.yaml <<'EOF'\n",
        "    name: bar-app\n    namespace: bar-staging\n",
    ] {
        assert!(m.contains(said), "missing {said:?} in\n{m}");
    }
}

#[test]
fn gke_plugin_database_into_a_new_env() {
    let repo = gke_with_staging(GKE_STAGING);
    let out = deliver(
        &repo,
        &request(("prod", "foo"), ("staging", "foo")),
        "clone/foo",
    );
    assert_eq!(
        paths(&out),
        [
            "fluxcd/clusters/staging/databases.yaml",
            "fluxcd/databases/staging/foo/database-vector.yaml",
            "fluxcd/databases/staging/foo/database.yaml",
            "fluxcd/databases/staging/foo/kustomization.yaml",
            "fluxcd/databases/staging/foo/namespace.yaml",
            "fluxcd/databases/staging/foo/object-store.yaml",
            "fluxcd/databases/staging/foo/scheduled-backup.yaml",
            "terraform/gcp/prod/gcs/buckets.yaml",
            "terraform/gcp/staging/service-accounts/service-accounts.yaml",
        ]
    );
    let db = show(
        &repo,
        "clone/foo",
        "fluxcd/databases/staging/foo/database.yaml",
    );
    insta::assert_snapshot!("clone_new_plugin_gke_database", db);
    let v = first(&db);
    assert_eq!(v["metadata"]["namespace"], "foo-staging");
    assert_eq!(v["spec"]["instances"], 1);
    assert_eq!(v["spec"]["storage"]["storageClass"], "standard-rwo");
    assert_eq!(v["spec"]["walStorage"]["storageClass"], "standard-rwo");
    assert_eq!(v["spec"]["resources"]["limits"]["memory"], "1Gi");
    assert_eq!(v["spec"]["resources"]["requests"]["memory"], "1Gi");
    assert_eq!(
        v["spec"]["postgresql"]["parameters"]["shared_buffers"],
        "256MB"
    );
    let read = &v["spec"]["externalClusters"][0]["plugin"]["parameters"];
    assert_eq!(read["barmanObjectName"], "foo-store-prod");
    assert_eq!(read["serverName"], "foo-pg");
    let write = &v["spec"]["plugins"][0]["parameters"];
    assert_eq!(write["barmanObjectName"], "foo-store");
    assert_eq!(write["serverName"], "foo-pg-g2");
    assert_eq!(
        v["spec"]["bootstrap"]["recovery"]["secret"]["name"],
        "foo-app"
    );

    let stores = show(
        &repo,
        "clone/foo",
        "fluxcd/databases/staging/foo/object-store.yaml",
    );
    insta::assert_snapshot!("clone_new_plugin_gke_object_stores", stores);
    let stores = yaml::parse_values(&stores).unwrap();
    assert_eq!(stores[0]["metadata"]["name"], "foo-store");
    assert_eq!(stores[0]["spec"]["retentionPolicy"], "7d");
    assert_eq!(
        stores[0]["spec"]["configuration"]["destinationPath"],
        "gs://acme-staging-pg-backups/foo"
    );
    assert_eq!(stores[1]["metadata"]["name"], "foo-store-prod");
    assert!(stores[1]["spec"].get("retentionPolicy").is_none());
    assert_eq!(
        stores[1]["spec"]["configuration"]["destinationPath"],
        "gs://acme-prod-pg-backups/foo"
    );

    let vector = first(&show(
        &repo,
        "clone/foo",
        "fluxcd/databases/staging/foo/database-vector.yaml",
    ));
    assert_eq!(vector["metadata"]["namespace"], "foo-staging");
    assert_eq!(vector["spec"]["cluster"]["name"], "foo-pg");
    let k = first(&show(
        &repo,
        "clone/foo",
        "fluxcd/databases/staging/foo/kustomization.yaml",
    ));
    assert_eq!(
        k["resources"],
        serde_json::json!([
            "namespace.yaml",
            "secrets.enc.yaml",
            "object-store.yaml",
            "database.yaml",
            "database-vector.yaml",
            "scheduled-backup.yaml"
        ])
    );
    let m = message(&repo, "clone/foo");
    for said in [
        "through the read-only ObjectStore foo-store-prod",
        "memory limit 1Gi (was 4Gi), shared_buffers 1GB → 256MB",
        "storage class standard-rwo",
        "  - foo-app (kubernetes.io/basic-auth; username, password): password of the \
         application owner foo",
        "    username: foo\n    password: <password>\n",
    ] {
        assert!(m.contains(said), "missing {said:?} in\n{m}");
    }
}

#[test]
fn selfhosted_s3_database_into_a_new_env_renames_the_foreign_secrets() {
    let repo = FixtureRepo::copy("selfhosted");
    let toml = repo.read(".cnpg-ops.toml")
        + "\n[env.staging]\nkube_context = \"k3s-staging\"\n\
           endpoint_url = \"https://minio.staging.lan:9000\"\n\
           backup_destination = \"s3://pg-backups-staging/\"\n";
    repo.write(".cnpg-ops.toml", &toml);
    let out = deliver(
        &repo,
        &request(("prod", "shop"), ("staging", "shop")),
        "clone/shop",
    );
    // S3 keys: nothing in Terraform.
    assert_eq!(
        paths(&out),
        [
            "clusters/staging/databases/shop/database.yaml",
            "clusters/staging/databases/shop/kustomization.yaml",
            "clusters/staging/databases/shop/namespace.yaml",
            "clusters/staging/databases/shop/object-store.yaml",
            "clusters/staging/databases/shop/scheduled-backup.yaml",
            "clusters/staging/flux/databases.yaml",
        ]
    );
    let db = show(
        &repo,
        "clone/shop",
        "clusters/staging/databases/shop/database.yaml",
    );
    insta::assert_snapshot!("clone_new_plugin_s3_database", db);
    let v = first(&db);
    // "shop" holds no env name: {svc}-{env}.
    assert_eq!(v["metadata"]["namespace"], "shop-staging");
    assert_eq!(v["spec"]["instances"], 1);
    // No staging rule for these: the source's.
    assert_eq!(v["spec"]["storage"]["storageClass"], "local-path");
    assert_eq!(v["spec"]["resources"]["limits"]["memory"], "2Gi");
    assert!(v["spec"].get("serviceAccountTemplate").is_none());
    assert_eq!(
        v["spec"]["plugins"][0]["parameters"]["serverName"],
        "shop-g2"
    );

    let stores = show(
        &repo,
        "clone/shop",
        "clusters/staging/databases/shop/object-store.yaml",
    );
    insta::assert_snapshot!("clone_new_plugin_s3_object_stores", stores);
    let stores = yaml::parse_values(&stores).unwrap();
    let own = &stores[0]["spec"];
    assert_eq!(own["retentionPolicy"], "30d");
    assert_eq!(
        own["configuration"]["destinationPath"],
        "s3://pg-backups-staging/"
    );
    assert_eq!(
        own["configuration"]["endpointURL"],
        "https://minio.staging.lan:9000"
    );
    assert_eq!(
        own["configuration"]["s3Credentials"]["accessKeyId"]["name"],
        "shop-s3"
    );
    let read = &stores[1];
    assert_eq!(read["metadata"]["name"], "shop-store-prod");
    let c = &read["spec"]["configuration"];
    assert_eq!(c["endpointURL"], "https://minio.prod.lan:9000");
    assert_eq!(c["s3Credentials"]["accessKeyId"]["name"], "shop-s3-prod");
    assert_eq!(
        c["s3Credentials"]["secretAccessKey"]["name"],
        "shop-s3-prod"
    );
    assert_eq!(c["endpointCA"]["name"], "minio-ca-prod");

    let flux = first(&show(
        &repo,
        "clone/shop",
        "clusters/staging/flux/databases.yaml",
    ));
    assert_eq!(flux["metadata"]["name"], "db-shop");
    assert_eq!(flux["spec"]["interval"], "5m");
    assert_eq!(
        flux["spec"]["dependsOn"],
        serde_json::json!([{"name": "cnpg-operator"}])
    );

    let m = message(&repo, "clone/shop");
    for said in [
        "Secrets to create in namespace shop-staging",
        "  - shop-s3 (Opaque; ACCESS_KEY_ID, ACCESS_SECRET_KEY): staging's own archive \
         s3://pg-backups-staging/\n",
        "  - minio-ca (Opaque; ca.crt): staging's own archive",
        "  - shop-s3-prod (Opaque; ACCESS_KEY_ID, ACCESS_SECRET_KEY): read-only access to \
         prod's archive s3://pg-backups-prod/\n",
        "  - minio-ca-prod (Opaque; ca.crt): read-only access",
        "    name: shop-s3-prod\n    namespace: shop-staging\n",
    ] {
        assert!(m.contains(said), "missing {said:?} in\n{m}");
    }
}

#[test]
fn the_archive_is_inferred_from_a_database_of_the_env_and_sops_keys_from_its_secrets() {
    let repo = FixtureRepo::copy("gke");
    let dev_flux = repo.read("fluxcd/clusters/dev/databases.yaml");
    // bar keeps 30 days; dev's bucket deletes after 30.
    let set =
        scaffold::new_database(repo.root(), &request(("prod", "bar"), ("dev", "bar"))).unwrap();
    assert!(
        set.body.contains(
            "  - bucket acme-dev-pg-backups deletes objects after 30 days \
             (terraform/gcp/dev/gcs/buckets.yaml), not longer than the retention 30d plus a day \
             between backups: lower `retention` under [env.dev] in .cnpg-ops.toml"
        ),
        "{}",
        set.body
    );
    repo.replace(
        ".cnpg-ops.toml",
        "[env.dev]\n",
        "[env.dev]\nretention = \"14d\"\n",
    );
    let out = deliver(
        &repo,
        &request(("prod", "bar"), ("dev", "bar")),
        "clone/bar",
    );
    assert!(
        paths(&out).contains(&"fluxcd/clusters/dev/databases.yaml".to_owned()),
        "{:?}",
        paths(&out)
    );
    let v = first(&show(
        &repo,
        "clone/bar",
        "fluxcd/databases/dev/bar/database.yaml",
    ));
    assert_eq!(v["metadata"]["namespace"], "bar-dev");
    // dev/foo archives to gs://acme-dev-pg-backups/foo.
    assert_eq!(
        v["spec"]["backup"]["barmanObjectStore"]["destinationPath"],
        "gs://acme-dev-pg-backups/bar"
    );
    assert_eq!(v["spec"]["backup"]["retentionPolicy"], "14d");
    let flux = show(&repo, "clone/bar", "fluxcd/clusters/dev/databases.yaml");
    assert!(flux.starts_with(&format!("{dev_flux}---\n")), "{flux}");
    let m = message(&repo, "clone/bar");
    assert!(
        m.contains(
            "--age age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq \
             --encrypted-regex '^(data|stringData)$' /dev/stdin"
        ),
        "{m}"
    );
    assert!(
        m.contains("the keys are those of fluxcd/databases/dev/foo/secrets.enc.yaml"),
        "{m}"
    );
}

#[test]
fn a_clone_of_a_clone_reads_its_source_only() {
    let repo = gke_with_staging(GKE_STAGING);
    let set =
        scaffold::new_database(repo.root(), &request(("dev", "foo"), ("staging", "foo"))).unwrap();
    let db = set
        .changes
        .iter()
        .find(|c| c.path.ends_with("staging/foo/database.yaml"))
        .and_then(|c| c.after.clone())
        .unwrap();
    assert_valid("clone of a clone", &db);
    let v = first(&db);
    // dev/foo restored from prod; staging/foo reads dev's own archive.
    let ext = v["spec"]["externalClusters"].as_array().unwrap();
    assert_eq!(ext.len(), 1, "{ext:?}");
    assert_eq!(ext[0]["name"], "dev");
    assert_eq!(
        ext[0]["plugin"]["parameters"]["barmanObjectName"],
        "foo-store-dev"
    );
    assert_eq!(ext[0]["plugin"]["parameters"]["serverName"], "foo-pg-g2");
    assert_eq!(v["spec"]["bootstrap"]["recovery"]["source"], "dev");
    assert_eq!(
        v["spec"]["plugins"][0]["parameters"]["serverName"],
        "foo-pg-g2"
    );
    assert_eq!(
        v["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "cnpg-backup@acme-staging.iam.gserviceaccount.com"
    );
}

#[test]
fn an_existing_destination_folder_is_refused() {
    let repo = gke_with_staging(GKE_STAGING);
    let err = scaffold::new_database(repo.root(), &request(("prod", "foo"), ("dev", "foo")))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(
            "dev/foo: fluxcd/databases/dev/foo already exists (Cluster foo-dev/foo-pg)"
        ),
        "{err}"
    );
    // A folder that holds something else is not overwritten either.
    repo.write("fluxcd/databases/staging/foo/README.md", "reserved\n");
    let err = scaffold::new_database(repo.root(), &request(("prod", "foo"), ("staging", "foo")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fluxcd/databases/staging/foo already exists but holds no readable database"),
        "{err}"
    );
}

#[test]
fn a_new_env_without_backup_destination_names_the_key() {
    let repo = gke_with_staging("\n[env.staging]\ngcp_project = \"acme-staging\"\n");
    let err = scaffold::new_database(repo.root(), &request(("prod", "foo"), ("staging", "foo")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("env `staging` has no `backup_destination`")
            && err.contains(
                "set `backup_destination` under [env.staging] in .cnpg-ops.toml, e.g. \
                 backup_destination = \"gs://<staging bucket>/{svc}\""
            ),
        "{err}"
    );
}

#[test]
fn a_namespace_in_use_is_refused() {
    let repo = gke_with_staging(
        "\n[env.staging]\ngcp_project = \"acme-staging\"\n\
         backup_destination = \"gs://acme-staging-pg-backups/{svc}\"\n",
    );
    repo.write(
        ".cnpg-ops.toml",
        &repo
            .read(".cnpg-ops.toml")
            .replace("[env.dev]\n", "[env.dev]\nnamespace = \"foo-dev\"\n"),
    );
    let err = scaffold::new_database(repo.root(), &request(("prod", "bar"), ("dev", "bar")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the namespace would be `foo-dev`, which dev/foo already uses"),
        "{err}"
    );
}

#[test]
fn regression_a_flux_name_taken_on_the_same_kubernetes_cluster_is_refused() {
    let repo = FixtureRepo::copy("gke");
    let config = repo.read(".cnpg-ops.toml")
        + "\n[env.staging]\ngcp_project = \"acme-prod\"\nkube_context = \"gke_acme-prod_europe-west1_main\"\nflux_kustomizations = \"fluxcd/clusters/prod/databases-staging.yaml\"\nbackup_destination = \"gs://acme-prod-pg-backups/staging-{svc}\"\n";
    repo.write(".cnpg-ops.toml", &config);
    let req = cnpg_ops::gitops::plan::RecoveryRequest {
        source_env: "prod".into(),
        source_svc: "foo".into(),
        dest_env: "staging".into(),
        dest_svc: "foo".into(),
        dest_cluster: None,
        target: cnpg_ops::gitops::render::Target::Latest,
        backup_id: None,
        timeline: None,
        label: "x".into(),
    };
    let err = cnpg_ops::gitops::scaffold::new_database(repo.root(), &req)
        .unwrap_err()
        .to_string();
    assert!(err.contains("databases-foo"), "{err}");
}
