//! `cnpg-ops new`: a new database folder rendered from the repository's
//! conventions, delivered as a commit, every document valid against the CRD
//! schemas and the webhook rules, and the repository linting exactly as
//! clean afterwards as before (clean from scratch on an empty repository).
//!
//! Goldens: GKE + GCS (Workload Identity, pgvector), self-hosted + S3 with
//! vanilla NetworkPolicies and with CiliumNetworkPolicies.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;
use support::repo::{FixtureRepo, assert_valid, git};

use cnpg_ops::gitops::changes::{self, Mode, Outcome, WriteOptions};
use cnpg_ops::gitops::config::Cni;
use cnpg_ops::gitops::git::Git;
use cnpg_ops::gitops::provision::{self, NewRequest};
use cnpg_ops::yaml;

fn request(env: &str, svc: &str) -> NewRequest {
    NewRequest {
        env: env.into(),
        svc: svc.into(),
        from: None,
        vector: false,
        cni: None,
        app_namespace: None,
        sops: None,
    }
}

/// Lint findings as (rule, file), to compare before and after.
fn findings(repo: &FixtureRepo) -> BTreeSet<(String, String)> {
    repo.lint()
        .into_iter()
        .map(|f| (f.rule.to_owned(), f.file.display().to_string()))
        .collect()
}

/// Delivers the plan on `branch`, checks every touched file validates and
/// that the lint findings on the branch are those before the change.
/// Returns the outcome and the golden text: the commit message, then every
/// touched file as committed.
fn deliver(repo: &FixtureRepo, req: &NewRequest, branch: &str) -> (Outcome, String) {
    if !repo.path(".git").exists() {
        repo.git_init();
    }
    let before = findings(repo);
    let g = Git::discover(repo.root()).unwrap();
    let opts = WriteOptions {
        mode: Mode::Write,
        push: false,
        branch: branch.into(),
        base: None,
    };
    let out = changes::apply(&g, &opts, |root| provision::new_database(root, req)).unwrap();
    assert!(out.commit.is_some());
    assert_eq!(git(repo.root(), &["status", "--porcelain"]), "");
    let mut golden = git(repo.root(), &["log", "-1", "--format=%B", branch]);
    for f in &out.files {
        let path = f.path.display().to_string();
        let text = git(repo.root(), &["show", &format!("{branch}:{path}")]);
        assert_valid(&path, &text);
        let _ = write!(golden, "\n=== {path}\n{text}");
    }
    git(repo.root(), &["switch", "-q", branch]);
    let after = findings(repo);
    let new: Vec<_> = after.difference(&before).collect();
    assert!(
        new.is_empty(),
        "the new database adds lint findings: {new:#?}"
    );
    (out, golden)
}

fn doc(repo: &FixtureRepo, path: &str, kind: &str) -> Value {
    yaml::parse_values(&repo.read(path))
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {path}"))
}

/// A fixture copy that lints with no finding at all: its one database still
/// on deprecated in-tree archiving (gke: prod/bar, selfhosted: prod/legacy)
/// taken out with its Flux Kustomization and identity binding.
fn clean_fixture(name: &str) -> FixtureRepo {
    let repo = FixtureRepo::copy(name);
    let (folder, flux, kustomization) = match name {
        "gke" => (
            "fluxcd/databases/prod/bar",
            "fluxcd/clusters/prod/databases.yaml",
            "databases-bar",
        ),
        _ => (
            "clusters/prod/databases/legacy",
            "clusters/prod/flux/databases.yaml",
            "db-legacy",
        ),
    };
    std::fs::remove_dir_all(repo.path(folder)).unwrap();
    let kept: Vec<String> = repo
        .read(flux)
        .split("\n---\n")
        .filter(|d| !d.contains(&format!("name: {kustomization}\n")))
        .map(str::to_owned)
        .collect();
    repo.write(flux, &(kept.join("\n---\n").trim_end().to_owned() + "\n"));
    if name == "gke" {
        repo.replace(
            "terraform/gcp/prod/service-accounts/service-accounts.yaml",
            "      - bar-prod/bar-pg\n",
            "",
        );
    }
    let findings = repo.lint();
    assert!(findings.is_empty(), "{name} is not clean: {findings:#?}");
    repo
}

#[test]
fn gke_gcs_with_pgvector() {
    let repo = clean_fixture("gke");
    let mut req = request("dev", "orders");
    req.vector = true;
    let (out, golden) = deliver(&repo, &req, "new/orders");
    insta::assert_snapshot!("new_gke_gcs_vector", golden);
    let all = repo.lint();
    assert!(all.is_empty(), "{all:#?}");
    let paths: Vec<String> = out
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "fluxcd/clusters/dev/databases.yaml",
            "fluxcd/databases/dev/orders/database-vector.yaml",
            "fluxcd/databases/dev/orders/database.yaml",
            "fluxcd/databases/dev/orders/kustomization.yaml",
            "fluxcd/databases/dev/orders/namespace.yaml",
            "fluxcd/databases/dev/orders/object-store.yaml",
            "fluxcd/databases/dev/orders/scheduled-backup.yaml",
            "terraform/gcp/dev/service-accounts/service-accounts.yaml",
        ]
    );
    let c = doc(
        &repo,
        "fluxcd/databases/dev/orders/database.yaml",
        "Cluster",
    );
    let spec = &c["spec"];
    assert_eq!(spec["bootstrap"]["initdb"]["dataChecksums"], true);
    assert_eq!(
        spec["bootstrap"]["initdb"]["postInitApplicationSQL"][0],
        "CREATE EXTENSION IF NOT EXISTS vector"
    );
    assert_eq!(spec["storage"]["resizeInUseVolumes"], true);
    assert_eq!(spec["walStorage"]["resizeInUseVolumes"], true);
    assert_eq!(
        spec["plugins"][0]["parameters"]["barmanObjectName"],
        "orders-store"
    );
    assert!(spec["plugins"][0]["parameters"].get("serverName").is_none());
    assert_eq!(
        spec["serviceAccountTemplate"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"],
        "cnpg-backup@acme-dev.iam.gserviceaccount.com"
    );
    let store = doc(
        &repo,
        "fluxcd/databases/dev/orders/object-store.yaml",
        "ObjectStore",
    );
    assert_eq!(
        store["spec"]["configuration"]["destinationPath"],
        "gs://acme-dev-pg-backups/orders"
    );
    let sb = doc(
        &repo,
        "fluxcd/databases/dev/orders/scheduled-backup.yaml",
        "ScheduledBackup",
    );
    assert_eq!(
        sb["spec"]["schedule"].as_str().unwrap().split(' ').count(),
        6
    );
    assert_eq!(sb["spec"]["method"], "plugin");
    assert_eq!(sb["spec"]["immediate"], true);
    // The Workload Identity binding names <namespace>/<cluster>.
    assert!(
        repo.read("terraform/gcp/dev/service-accounts/service-accounts.yaml")
            .contains("- orders-dev/orders-pg")
    );
}

#[test]
fn selfhosted_s3_vanilla_policies() {
    let repo = clean_fixture("selfhosted");
    let mut req = request("dev", "orders");
    req.cni = Some(Cni::Vanilla);
    req.app_namespace = Some("orders-app".into());
    let (_, golden) = deliver(&repo, &req, "new/orders");
    insta::assert_snapshot!("new_selfhosted_s3_vanilla", golden);
    let all = repo.lint();
    assert!(all.is_empty(), "{all:#?}");
    let k = doc(
        &repo,
        "clusters/dev/databases/orders/kustomization.yaml",
        "Kustomization",
    );
    assert_eq!(
        k["resources"],
        serde_json::json!([
            "namespace.yaml",
            "secrets.enc.yaml",
            "network-policies.yaml",
            "object-store.yaml",
            "database.yaml",
            "scheduled-backup.yaml"
        ])
    );
    let m = git(repo.root(), &["log", "-1", "--format=%B"]);
    assert!(
        m.contains(
            "sops --encrypt --filename-override clusters/dev/databases/orders/secrets.enc.yaml"
        ),
        "{m}"
    );
    assert!(
        m.contains("orders-s3 (Opaque; ACCESS_KEY_ID, ACCESS_SECRET_KEY)"),
        "{m}"
    );
}

#[test]
fn selfhosted_s3_cilium_policies() {
    let repo = clean_fixture("selfhosted");
    repo.replace(
        ".cnpg-ops.toml",
        "cni = \"vanilla\"",
        "cni = \"cilium\"\nservice_cidr = \"10.43.0.0/16\"",
    );
    let mut req = request("dev", "orders");
    req.cni = Some(Cni::Cilium);
    let (_, golden) = deliver(&repo, &req, "new/orders");
    insta::assert_snapshot!("new_selfhosted_s3_cilium", golden);
    let all = repo.lint();
    assert!(all.is_empty(), "{all:#?}");
    let text = repo.read("clusters/dev/databases/orders/network-policies.yaml");
    assert!(
        text.contains("kube-apiserver") && text.contains("10.43.0.0/16"),
        "{text}"
    );
}

#[test]
fn cni_contradicting_the_config_is_refused() {
    let repo = FixtureRepo::copy("selfhosted");
    let mut req = request("dev", "orders");
    req.cni = Some(Cni::Cilium);
    let e = provision::new_database(repo.root(), &req)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--cni cilium contradicts cni = \"vanilla\""),
        "{e}"
    );
}

#[test]
fn an_empty_repository_gets_a_database_that_lints_clean() {
    let repo = FixtureRepo::copy("gke");
    for f in [
        "fluxcd/databases/dev/foo",
        "fluxcd/databases/prod/foo",
        "fluxcd/databases/prod/bar",
    ] {
        std::fs::remove_dir_all(repo.path(f)).unwrap();
    }
    repo.remove("fluxcd/clusters/dev/databases.yaml");
    repo.remove("fluxcd/clusters/prod/databases.yaml");
    for (env, bound) in [
        ("prod", "      - foo-prod/foo-pg\n      - bar-prod/bar-pg\n"),
        ("dev", "      - foo-dev/foo-pg\n"),
    ] {
        let file = format!("terraform/gcp/{env}/service-accounts/service-accounts.yaml");
        repo.replace(&file, bound, "");
        repo.replace(
            &file,
            "    workload_identity_bindings:\n",
            "    workload_identity_bindings: []\n",
        );
    }
    repo.write(
        ".cnpg-ops.toml",
        &(repo.read(".cnpg-ops.toml")
            + "backup_destination = \"gs://acme-dev-pg-backups/{svc}\"\n"),
    );
    let mut req = request("dev", "search");
    req.vector = true;
    req.cni = Some(Cni::Cilium);
    req.app_namespace = Some("search-app".into());
    deliver(&repo, &req, "new/search");
    let all = repo.lint();
    assert!(all.is_empty(), "{all:#?}");
    let c = doc(
        &repo,
        "fluxcd/databases/dev/search/database.yaml",
        "Cluster",
    );
    assert_eq!(c["metadata"]["name"], "search-pg");
    assert_eq!(c["spec"]["imageName"], provision::DEFAULT_IMAGE);
}

#[test]
fn from_copies_a_database_with_every_name_swapped() {
    let repo = FixtureRepo::copy("gke");
    let mut req = request("prod", "payments");
    req.from = Some("foo".into());
    let (out, _) = deliver(&repo, &req, "new/payments");
    assert!(
        out.files
            .iter()
            .any(|f| f.path.ends_with("database-vector.yaml"))
    );
    let c = doc(
        &repo,
        "fluxcd/databases/prod/payments/database.yaml",
        "Cluster",
    );
    assert_eq!(c["metadata"]["name"], "payments-pg");
    assert_eq!(c["metadata"]["namespace"], "payments-prod");
    // Sizing is the source's.
    assert_eq!(c["spec"]["instances"], 3);
    assert_eq!(c["spec"]["resources"]["limits"]["memory"], "4Gi");
    assert_eq!(c["spec"]["bootstrap"]["initdb"]["database"], "payments");
    assert_eq!(
        c["spec"]["bootstrap"]["initdb"]["secret"]["name"],
        "payments-app"
    );
    let v = doc(
        &repo,
        "fluxcd/databases/prod/payments/database-vector.yaml",
        "Database",
    );
    assert_eq!(v["metadata"]["name"], "payments-vector");
    assert_eq!(v["spec"]["cluster"]["name"], "payments-pg");
    assert_eq!(v["spec"]["name"], "payments");
    let text = std::fs::read_dir(repo.path("fluxcd/databases/prod/payments"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(!text.contains("foo"), "a name was not swapped:\n{text}");
    let m = git(repo.root(), &["log", "-1", "--format=%B"]);
    assert!(
        m.contains("payments-app (kubernetes.io/basic-auth; username, password)"),
        "{m}"
    );
}

#[test]
fn taken_folders_namespaces_and_bad_names_are_refused() {
    let repo = FixtureRepo::copy("gke");
    let e = provision::new_database(repo.root(), &request("prod", "foo"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already exists"), "{e}");
    assert!(e.contains("cnpg-ops verify") && !e.contains("clone"), "{e}");
    let e = provision::new_database(repo.root(), &request("prod", "Foo_1"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a valid service name"), "{e}");
    repo.write(
        ".cnpg-ops.toml",
        &(repo.read(".cnpg-ops.toml") + "namespace = \"foo-dev\"\n"),
    );
    let e = provision::new_database(repo.root(), &request("dev", "other"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("foo-dev"), "{e}");
    let e = provision::new_database(repo.root(), &{
        let mut r = request("prod", "other");
        r.from = Some("nope".into());
        r
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn from_with_a_dashed_service_names_the_database_as_initdb_does() {
    let repo = FixtureRepo::copy("gke");
    // An import reads from externalClusters, which a new database has none of.
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "      secret:\n        name: foo-app\n",
        "      secret:\n        name: foo-app\n      import:\n        type: microservice\n        \
         databases: [foo]\n        source:\n          externalCluster: legacy\n",
    );
    let mut req = request("prod", "pay-ments");
    req.from = Some("foo".into());
    deliver(&repo, &req, "new/pay-ments");
    let c = doc(
        &repo,
        "fluxcd/databases/prod/pay-ments/database.yaml",
        "Cluster",
    );
    let initdb = &c["spec"]["bootstrap"]["initdb"];
    assert_eq!(initdb["database"], "pay_ments");
    assert_eq!(initdb["owner"], "pay_ments");
    assert!(initdb.get("import").is_none(), "{initdb}");
    let v = doc(
        &repo,
        "fluxcd/databases/prod/pay-ments/database-vector.yaml",
        "Database",
    );
    assert_eq!(v["spec"]["name"], "pay_ments");
    assert_eq!(v["spec"]["owner"], "pay_ments");
    let m = git(repo.root(), &["log", "-1", "--format=%B"]);
    assert!(m.contains("initdb.import of the model left out"), "{m}");
}

#[test]
fn from_a_database_with_policies_renders_them_once() {
    let repo = FixtureRepo::copy("selfhosted");
    repo.replace(
        ".cnpg-ops.toml",
        "cni = \"vanilla\"",
        "cni = \"cilium\"\nservice_cidr = \"10.43.0.0/16\"",
    );
    let mut first = request("dev", "orders");
    first.cni = Some(Cni::Cilium);
    deliver(&repo, &first, "new/orders");
    git(repo.root(), &["switch", "-q", "main"]);
    git(repo.root(), &["merge", "-q", "--ff-only", "new/orders"]);
    let mut second = request("dev", "billing");
    second.from = Some("orders".into());
    second.cni = Some(Cni::Cilium);
    deliver(&repo, &second, "new/billing");
    let names: Vec<String> =
        yaml::parse_values(&repo.read("clusters/dev/databases/billing/network-policies.yaml"))
            .unwrap()
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(names, ["default-deny", "billing-egress", "billing-ingress"]);
    // Without --cni the copy keeps the model's policies, names swapped.
    git(repo.root(), &["switch", "-q", "main"]);
    let mut third = request("dev", "search");
    third.from = Some("orders".into());
    let plan = provision::new_database(repo.root(), &third).unwrap();
    let policies = plan
        .changes
        .iter()
        .find(|c| c.path.ends_with("network-policies.yaml"))
        .and_then(|c| c.after.clone())
        .unwrap();
    assert!(policies.contains("name: search-egress"), "{policies}");
    assert!(policies.contains("cnpg.io/cluster: search"), "{policies}");
    assert!(!policies.contains("orders"), "{policies}");
}

#[test]
fn an_unknown_env_is_refused() {
    let repo = FixtureRepo::copy("gke");
    let e = provision::new_database(repo.root(), &request("prdo", "orders"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("env `prdo`") && e.contains("dev, prod"), "{e}");
}

#[test]
fn lint_findings_the_new_folder_brings_are_in_the_commit_message() {
    let repo = FixtureRepo::copy("gke");
    // The env asks for more retention than the bucket keeps objects.
    repo.write(
        ".cnpg-ops.toml",
        &(repo.read(".cnpg-ops.toml") + "retention = \"45d\"\n"),
    );
    let plan = provision::new_database(repo.root(), &request("dev", "orders")).unwrap();
    assert!(
        plan.body.contains("Lint findings this change brings")
            && plan.body.contains("[gcs-lifecycle-shorter-than-retention]"),
        "{}",
        plan.body
    );
    // And the same advice as a thing to do by hand.
    assert!(
        plan.body.contains("deletes objects after 30 days"),
        "{}",
        plan.body
    );
}

#[test]
fn a_catalog_another_database_uses_is_refused() {
    let repo = FixtureRepo::copy("gke");
    repo.write(
        ".cnpg-ops.toml",
        &(repo.read(".cnpg-ops.toml")
            + "\n[env.staging]\ngcp_project = \"acme-staging\"\n\
               backup_destination = \"gs://acme-prod-pg-backups/foo\"\n"),
    );
    let e = provision::new_database(repo.root(), &request("staging", "foo"))
        .unwrap_err()
        .to_string();
    // dev/foo restores from that catalog, prod/foo writes it.
    assert!(
        e.contains(
            "would archive into gs://acme-prod-pg-backups/foo/foo-pg, which dev/foo already uses"
        ),
        "{e}"
    );
}

/// A stand-in for sops: records its arguments and input, and writes each
/// document with its values replaced and sops metadata added, the shape
/// `sops --encrypt` gives.
const SOPS_STUB: &str = r#"#!/bin/sh
printf '%s\n' "$@" > "$STUB_DIR/args"
cat > "$STUB_DIR/input"
awk '
  /^---$/ { print "sops:\n  age:\n    - recipient: age1stub\n  version: 3.9.1"; print; next }
  /^  [A-Za-z_.]+: </ { sub(/: <.*/, ": ENC[AES256_GCM,data:c3R1Yg==,iv:AA==,tag:BB==,type:str]") }
  { print }
  END { print "sops:\n  age:\n    - recipient: age1stub\n  version: 3.9.1" }
' "$STUB_DIR/input"
"#;

#[test]
fn with_sops_the_folder_gets_encrypted_placeholders() {
    use std::os::unix::fs::PermissionsExt as _;
    let repo = FixtureRepo::copy("selfhosted");
    repo.git_init();
    let stub = tempfile::tempdir().unwrap();
    let sops = stub.path().join("sops");
    std::fs::write(&sops, SOPS_STUB).unwrap();
    std::fs::set_permissions(&sops, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cnpg-ops"))
        .args([
            "new",
            "--env",
            "dev",
            "--svc",
            "orders",
            "--branch",
            "new/orders",
        ])
        .arg("--repo")
        .arg(repo.root())
        .env("CNPG_OPS_SOPS", &sops)
        .env("STUB_DIR", stub.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = "clusters/dev/databases/orders/secrets.enc.yaml";
    let args = std::fs::read_to_string(stub.path().join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "--encrypt",
            "--filename-override",
            path,
            "--age",
            "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq",
            "--encrypted-regex",
            "^(data|stringData)$",
            "--input-type",
            "yaml",
            "--output-type",
            "yaml",
            "/dev/stdin",
        ]
    );
    let input = std::fs::read_to_string(stub.path().join("input")).unwrap();
    assert!(input.contains("ACCESS_KEY_ID: <ACCESS_KEY_ID>"), "{input}");
    git(repo.root(), &["switch", "-q", "new/orders"]);
    let written = repo.read(path);
    assert!(
        written.contains("ENC[AES256_GCM") && !written.contains('<'),
        "{written}"
    );
    assert!(stdout.contains(&format!("sops edit {path}")), "{stdout}");
    // Encrypted: the folder lints clean, no plaintext-secret.
    let findings = repo.lint();
    assert!(
        findings
            .iter()
            .all(|f| !f.file.starts_with("clusters/dev/databases/orders")),
        "{findings:#?}"
    );
}

#[test]
fn in_tree_archiving_is_kept_only_where_the_operator_does_not_deprecate_it() {
    // The operator installed here is 1.25: in-tree barman-cloud is not
    // deprecated yet, and the env's model archives in-tree.
    let repo = FixtureRepo::copy("selfhosted");
    repo.write(
        "infrastructure/cnpg/release.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cnpg\n  \
         namespace: cnpg-system\nspec:\n  chart:\n    spec:\n      chart: cloudnative-pg\n      \
         version: 0.23.2\n",
    );
    let mut req = request("prod", "archive");
    req.from = Some("legacy".into());
    deliver(&repo, &req, "new/archive");
    let c = doc(
        &repo,
        "clusters/prod/databases/archive/database.yaml",
        "Cluster",
    );
    let store = &c["spec"]["backup"]["barmanObjectStore"];
    assert_eq!(store["destinationPath"], "s3://pg-backups-prod/");
    assert!(store.get("serverName").is_none(), "{store}");
    assert_eq!(store["s3Credentials"]["accessKeyId"]["name"], "archive-s3");
    assert_eq!(c["spec"]["backup"]["retentionPolicy"], "14d");
    assert!(c["spec"].get("plugins").is_none());
    assert!(
        !repo
            .path("clusters/prod/databases/archive/object-store.yaml")
            .exists()
    );
    let sb = doc(
        &repo,
        "clusters/prod/databases/archive/scheduled-backup.yaml",
        "ScheduledBackup",
    );
    assert_eq!(sb["spec"]["method"], "barmanObjectStore");

    // On a current operator the same model gives the plugin, said so.
    let repo = FixtureRepo::copy("selfhosted");
    let plan = provision::new_database(repo.root(), &req).unwrap();
    assert!(plan.body.contains("archives in-tree"), "{}", plan.body);
    assert!(
        plan.changes
            .iter()
            .any(|c| c.path.ends_with("object-store.yaml")),
        "{:?}",
        plan.changes.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
}
