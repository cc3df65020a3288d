//! Discovery of databases in the fixture repositories, and `cnpg-ops ls`.

mod support;

use support::repo::FixtureRepo;

use cnpg_ops::gitops::discover::{BackupModel, Credentials, KeyRef};

#[test]
fn gke_fixture_databases_and_their_catalogs() {
    let repo = FixtureRepo::copy("gke");
    let (_, found) = repo.load();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let keys: Vec<String> = found
        .databases
        .iter()
        .map(|d| format!("{}/{}", d.env, d.svc))
        .collect();
    assert_eq!(keys, ["dev/foo", "prod/bar", "prod/foo"]);

    let foo = found.find("prod", "foo").unwrap();
    assert_eq!(
        (foo.namespace.as_str(), foo.cluster.as_str()),
        ("foo-prod", "foo-pg")
    );
    assert_eq!(foo.backup_model, BackupModel::Plugin);
    let c = foo.catalog.as_ref().unwrap();
    assert_eq!(c.destination_path, "gs://acme-prod-pg-backups/foo");
    // No serverName parameter: the plugin writes under the Cluster's name.
    assert_eq!(
        (c.server_name.as_str(), c.server_name_explicit),
        ("foo-pg", false)
    );
    assert_eq!(c.credentials, Credentials::GkeWorkloadIdentity);
    assert_eq!(c.object_store.as_deref(), Some("foo-store"));
    assert_eq!(foo.retention_policy.as_deref(), Some("14d"));
    assert_eq!(foo.schedules[0].schedule, "0 0 2 * * *");
    assert_eq!(foo.flux_kustomizations, ["databases-foo"]);
    assert_eq!(foo.bootstrap, ["initdb"]);

    let bar = found.find("prod", "bar").unwrap();
    assert_eq!(bar.backup_model, BackupModel::Inline);
    assert_eq!(bar.retention_policy.as_deref(), Some("30d"));
    assert_eq!(bar.catalog.as_ref().unwrap().server_name, "bar-pg");
    assert_eq!(bar.schedules[0].method, "barmanObjectStore");

    let dev = found.find("dev", "foo").unwrap();
    let w = dev.catalog.as_ref().unwrap();
    assert_eq!(
        (w.server_name.as_str(), w.server_name_explicit),
        ("foo-pg-g2", true)
    );
    let r = dev.recovery.as_ref().unwrap();
    assert_eq!(r.source, "prod");
    let rc = r.catalog.as_ref().unwrap();
    assert_eq!(rc.destination_path, "gs://acme-prod-pg-backups/foo");
    assert_eq!(rc.server_name, "foo-pg");
}

#[test]
fn a_folder_without_a_cluster_is_reported_not_skipped() {
    let repo = FixtureRepo::copy("gke");
    repo.remove("fluxcd/databases/prod/bar/database.yaml");
    let (_, found) = repo.load();
    assert!(found.find("prod", "bar").is_none());
    assert_eq!(found.problems.len(), 1);
    assert!(
        found.problems[0]
            .message
            .contains("no CloudNativePG Cluster")
    );
}

#[test]
fn plugin_store_missing_is_a_problem_naming_the_store() {
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "barmanObjectName: foo-store",
        "barmanObjectName: fo-store",
    );
    let (_, found) = repo.load();
    assert!(
        found
            .problems
            .iter()
            .any(|p| p.message.contains("`fo-store`")),
        "{:?}",
        found.problems
    );
    assert!(found.find("prod", "foo").unwrap().catalog.is_none());
}

#[test]
fn selfhosted_fixture_follows_its_config_file() {
    let repo = FixtureRepo::copy("selfhosted");
    let (r, found) = repo.load();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert_eq!(r.env("prod").flux_name("shop"), "db-shop");
    let keys: Vec<String> = found
        .databases
        .iter()
        .map(|d| format!("{}/{}", d.env, d.svc))
        .collect();
    assert_eq!(keys, ["dev/shop", "prod/legacy", "prod/shop"]);
    let shop = found.find("prod", "shop").unwrap();
    let c = shop.catalog.as_ref().unwrap();
    assert_eq!(c.destination_path, "s3://pg-backups-prod/");
    assert_eq!(
        (c.server_name.as_str(), c.server_name_explicit),
        ("shop", true)
    );
    assert_eq!(
        c.endpoint_url.as_deref(),
        Some("https://minio.prod.lan:9000")
    );
    assert_eq!(
        c.credentials,
        Credentials::S3Secret {
            secret: "shop-s3".into(),
            access_key_id_key: "ACCESS_KEY_ID".into(),
            secret_access_key: Some(KeyRef {
                name: "shop-s3".into(),
                key: "ACCESS_SECRET_KEY".into()
            }),
        }
    );
    assert_eq!(shop.flux_kustomizations, ["db-shop"]);
    let legacy = found.find("prod", "legacy").unwrap();
    assert_eq!(legacy.backup_model, BackupModel::Inline);
    assert!(legacy.schedules.is_empty());
    assert_eq!(legacy.retention_policy.as_deref(), Some("14d"));
}

#[test]
fn ls_prints_the_table_and_json() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/repos/gke");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["ls", "--repo", root, "--color", "never"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ENV "), "{text}");
    assert!(text.contains("prod  foo  foo-prod/foo-pg    plugin   gs://acme-prod-pg-backups/foo/foo-pg (default name)"), "{text}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["ls", "--repo", root, "-o", "json", "--env", "dev"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["databases"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["databases"][0]["recovery"]["catalog"]["server_name"],
        "foo-pg"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args(["ls", "--repo", root, "--svc", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("no database matches --svc nope")
            && err.contains("known: dev/foo, prod/bar, prod/foo"),
        "{err}"
    );
}

#[test]
fn an_object_store_elsewhere_in_the_namespace_is_found() {
    let repo = FixtureRepo::copy("gke");
    let store = repo.read("fluxcd/databases/prod/foo/object-store.yaml");
    repo.remove("fluxcd/databases/prod/foo/object-store.yaml");
    repo.write("fluxcd/infrastructure/stores/foo-prod.yaml", &store);
    let (_, found) = repo.load();
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    let c = found.find("prod", "foo").unwrap().catalog.clone().unwrap();
    assert_eq!(c.object_store.as_deref(), Some("foo-store"));
}
