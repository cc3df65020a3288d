//! Fixture GitOps repositories: copy one into a temporary directory, change
//! it, and lint or discover it in process.

use std::path::{Path, PathBuf};
use std::process::Command;

use cnpg_ops::gitops::discover::{self, Discovery};
use cnpg_ops::gitops::git::Git;
use cnpg_ops::gitops::repo::Repo;
use cnpg_ops::gitops::{schema, webhook};
use cnpg_ops::lint::{self, Context, LintFinding};
use cnpg_ops::yaml;

/// A copy of `tests/fixtures/repos/<name>` in a temporary directory.
pub struct FixtureRepo {
    dir: tempfile::TempDir,
}

impl FixtureRepo {
    /// Copies the fixture `name` (`gke` or `selfhosted`).
    pub fn copy(name: &str) -> FixtureRepo {
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/repos")
            .join(name);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&src, dir.path());
        FixtureRepo { dir }
    }

    /// The root.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// A file's path.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A file's text.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Writes a file (creating folders).
    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    /// Replaces `from` by `to` in a file; panics when `from` is absent, so a
    /// test never passes on a fixture that changed under it.
    pub fn replace(&self, rel: &str, from: &str, to: &str) -> &Self {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1))
    }

    /// Deletes a file.
    pub fn remove(&self, rel: &str) -> &Self {
        std::fs::remove_file(self.path(rel)).unwrap();
        self
    }

    /// Makes the copy a git repository with one commit of everything.
    pub fn git_init(&self) -> &Self {
        git(self.root(), &["init", "-q", "-b", "main"]);
        self.commit("initial layout");
        self
    }

    /// Commits everything.
    pub fn commit(&self, message: &str) -> &Self {
        git(self.root(), &["add", "-A"]);
        git(self.root(), &["commit", "-q", "-m", message]);
        self
    }

    /// Reads the repository.
    pub fn load(&self) -> (Repo, Discovery) {
        let repo = Repo::load(self.root()).unwrap();
        let found = discover::discover(&repo);
        (repo, found)
    }

    /// Lints the repository in process.
    pub fn lint(&self) -> Vec<LintFinding> {
        let (repo, found) = self.load();
        let git = Git::discover(self.root()).ok();
        lint::run(&Context {
            repo: &repo,
            discovery: &found,
            git: git.as_ref(),
        })
    }

    /// The findings of one rule.
    pub fn lint_rule(&self, rule: &str) -> Vec<LintFinding> {
        self.lint().into_iter().filter(|f| f.rule == rule).collect()
    }
}

/// Runs git with a fixed identity; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies a folder tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), to).unwrap();
        }
    }
}

/// The GKE fixture with prod/foo archiving to the bundled real catalog
/// (tests/fixtures/pg-main, laid out as a file:// mirror in the returned
/// folder) under its server name `pg-main`.
pub fn gke_on_bundled_catalog() -> (FixtureRepo, tempfile::TempDir) {
    let catalog = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pg-main");
    super::fixture::materialize(&fixture, catalog.path(), &|_| false).unwrap();
    let repo = FixtureRepo::copy("gke");
    repo.replace(
        "fluxcd/databases/prod/foo/object-store.yaml",
        "destinationPath: gs://acme-prod-pg-backups/foo",
        &format!(
            "destinationPath: file://{}/cluster",
            catalog.path().display()
        ),
    );
    repo.replace(
        "fluxcd/databases/prod/foo/database.yaml",
        "        barmanObjectName: foo-store\n",
        "        barmanObjectName: foo-store\n        serverName: pg-main\n",
    );
    (repo, catalog)
}

/// Every Kubernetes document of `text` (the file `file`) validates against
/// its CRD schema, where one is vendored, and the webhook rejects none;
/// documents without an apiVersion (Terraform YAML) are not checked.
pub fn assert_valid(file: &str, text: &str) {
    for doc in yaml::parse_values(text).unwrap() {
        if doc.get("apiVersion").is_none() {
            continue;
        }
        if let Ok(errors) = schema::validate(&doc) {
            assert!(errors.is_empty(), "{file}: schema errors {errors:?}");
        }
        let rejected: Vec<_> = webhook::validate(&doc)
            .into_iter()
            .filter(|v| v.severity == webhook::Severity::Error)
            .collect();
        assert!(rejected.is_empty(), "{file}: webhook rejects {rejected:?}");
    }
}
