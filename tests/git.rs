//! Delivering a change as a commit, against real repositories made with the
//! git command-line program in temporary directories.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cnpg_ops::gitops::changes::{
    ApplyError, ChangeKind, ChangeSet, FileChange, Mode, Outcome, WriteOptions, apply,
};
use cnpg_ops::gitops::git::{Git, GitError};

const CLUSTER: &str = "db/pg-main/cluster.yaml";

const CLUSTER_V1: &str = "\
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg-main
spec:
  instances: 1
  storage:
    size: 10Gi
";

/// Runs git in `dir` with a fixed identity; panics with git's stderr on failure.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_cmd(dir, args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

fn git_cmd(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-c")
        .arg("init.defaultBranch=main")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null());
    cmd
}

/// Repository-local settings, so that the commits the library makes (it
/// inherits this process's environment) do not depend on the machine.
fn configure(dir: &Path) {
    git(dir, &["config", "user.name", "Test User"]);
    git(dir, &["config", "user.email", "user@example.com"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
}

fn write(dir: &Path, path: &str, content: &str) {
    let full = dir.join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

fn commit_all(dir: &Path, message: &str) -> String {
    git(dir, &["add", "--all"]);
    git(dir, &["commit", "--quiet", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A repository on `main` with the cluster manifest committed.
fn repo(tmp: &tempfile::TempDir) -> PathBuf {
    let dir = tmp.path().join("flux");
    fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "--quiet"]);
    configure(&dir);
    write(&dir, CLUSTER, CLUSTER_V1);
    write(&dir, "README.md", "fleet\n");
    commit_all(&dir, "Add pg-main");
    dir
}

/// A bare `origin` for `dir`, with `main` pushed to it.
fn add_origin(tmp: &tempfile::TempDir, dir: &Path) -> PathBuf {
    let bare = tmp.path().join("origin.git");
    git(tmp.path(), &["init", "--quiet", "--bare", "origin.git"]);
    git(dir, &["remote", "add", "origin", bare.to_str().unwrap()]);
    git(dir, &["push", "--quiet", "-u", "origin", "main"]);
    bare
}

/// Everything a write must not touch in the user's checkout: every file
/// outside `.git`, byte for byte, the refs, HEAD, status and the worktrees.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    files: BTreeMap<PathBuf, Vec<u8>>,
    refs: String,
    head: String,
    symbolic_head: String,
    status: String,
    worktrees: String,
}

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let rel = path.strip_prefix(root).unwrap().to_owned();
                let target = fs::read_link(&path).unwrap();
                files.insert(rel, target.to_string_lossy().as_bytes().to_vec());
            } else if kind.is_dir() {
                walk(root, &path, files);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_owned();
                files.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    Snapshot {
        files,
        refs: git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"]),
        head: git(dir, &["rev-parse", "HEAD"]),
        symbolic_head: git(dir, &["symbolic-ref", "-q", "HEAD"]),
        status: git(dir, &["status", "--porcelain=v1", "--untracked-files=all"]),
        worktrees: git(dir, &["worktree", "list", "--porcelain"]),
    }
}

/// The plan the tests deliver: scale pg-main to three instances.
fn scale(root: &Path) -> Result<ChangeSet, String> {
    let before = fs::read_to_string(root.join(CLUSTER)).map_err(|e| format!("{CLUSTER}: {e}"))?;
    let after = before.replace("instances: 1", "instances: 3");
    Ok(ChangeSet {
        changes: vec![FileChange {
            path: PathBuf::from(CLUSTER),
            before: Some(before),
            after: Some(after),
        }],
        subject: "pg-main: scale to 3 instances".to_owned(),
        body: "Requested by the on-call runbook.".to_owned(),
    })
}

fn options(mode: Mode, branch: &str) -> WriteOptions {
    WriteOptions {
        mode,
        push: false,
        branch: branch.to_owned(),
        base: None,
    }
}

fn write_mode(branch: &str) -> WriteOptions {
    options(Mode::Write, branch)
}

fn discover(dir: &Path) -> Git {
    Git::discover(dir).unwrap()
}

fn committed(outcome: &Outcome) -> &cnpg_ops::gitops::changes::Committed {
    outcome.commit.as_ref().expect("a commit")
}

#[test]
fn dry_run_shows_the_diff_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    write(&dir, "notes.txt", "unrelated work\n");
    let before = snapshot(&dir);

    let outcome = apply(&discover(&dir), &options(Mode::DryRun, "unused"), scale).unwrap();

    assert_eq!(snapshot(&dir), before);
    assert!(outcome.differs);
    assert!(outcome.commit.is_none());
    assert_eq!(
        outcome.diff,
        "--- a/db/pg-main/cluster.yaml\n+++ b/db/pg-main/cluster.yaml\n\
         @@ -3,6 +3,6 @@\n metadata:\n   name: pg-main\n spec:\n-  instances: 1\n+  instances: 3\n   storage:\n     size: 10Gi\n"
    );
    // git itself accepts the diff as a patch of the working tree.
    let mut apply_check = git_cmd(&dir, &["apply", "--check", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    apply_check
        .stdin
        .take()
        .unwrap()
        .write_all(outcome.diff.as_bytes())
        .unwrap();
    assert!(apply_check.wait().unwrap().success());
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn check_reports_whether_anything_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let git_repo = discover(&dir);
    let before = snapshot(&dir);

    let differs = apply(&git_repo, &options(Mode::Check, "unused"), scale).unwrap();
    assert!(differs.differs);
    assert_eq!(differs.files.len(), 1);
    assert_eq!(differs.files[0].kind, ChangeKind::Modify);
    assert!(differs.diff.contains("+  instances: 3\n"));

    let same = apply(&git_repo, &options(Mode::Check, "unused"), |root: &Path| {
        let content = fs::read_to_string(root.join(CLUSTER)).ok();
        Ok::<_, String>(ChangeSet {
            changes: vec![FileChange {
                path: PathBuf::from(CLUSTER),
                before: content.clone(),
                after: content,
            }],
            subject: "nothing".to_owned(),
            body: String::new(),
        })
    })
    .unwrap();
    assert!(!same.differs);
    assert!(same.diff.is_empty());
    assert!(same.files.is_empty());
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn write_without_a_remote_branches_off_head_and_leaves_the_checkout_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let head = git(&dir, &["rev-parse", "HEAD"]);
    // Unrelated uncommitted work: an untracked file and an edit to another tracked file.
    write(&dir, "notes.txt", "unrelated work\n");
    write(&dir, "README.md", "fleet, edited\n");
    let before = snapshot(&dir);

    let outcome = apply(&discover(&dir), &write_mode("scale-pg-main"), scale).unwrap();

    let c = committed(&outcome);
    assert_eq!(c.branch, "scale-pg-main");
    assert_eq!(c.base.name, "HEAD");
    assert_eq!(c.base.commit, head);
    assert!(!c.pushed);
    assert_eq!(c.remote, None);
    assert_eq!(
        git(&dir, &["rev-parse", "refs/heads/scale-pg-main"]),
        c.commit
    );
    assert_eq!(git(&dir, &["rev-parse", &format!("{}^", c.commit)]), head);
    assert_eq!(
        git(
            &dir,
            &[
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                &c.commit
            ]
        ),
        CLUSTER
    );
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%B", &c.commit]),
        "pg-main: scale to 3 instances\n\nRequested by the on-call runbook."
    );
    let committed_content = git(&dir, &["show", &format!("{}:{CLUSTER}", c.commit)]);
    assert!(committed_content.contains("instances: 3"));
    assert_eq!(outcome.files.len(), 1);
    assert!(outcome.summary().starts_with("committed "));

    // The user's checkout: same branch, same HEAD, same files (the cluster
    // file still says 1 instance, the unrelated work is still there), and
    // the only new ref is the branch.
    let after = snapshot(&dir);
    assert_eq!(after.files, before.files);
    assert_eq!(after.head, before.head);
    assert_eq!(after.symbolic_head, "refs/heads/main");
    assert_eq!(after.status, before.status);
    assert_eq!(after.worktrees, before.worktrees);
    assert_eq!(
        after.refs,
        format!("{}\nrefs/heads/scale-pg-main {}", before.refs, c.commit)
    );
    // No tracking configuration for a branch that was not pushed.
    assert!(
        !git_cmd(&dir, &["config", "branch.scale-pg-main.remote"])
            .status()
            .unwrap()
            .success()
    );
}

/// `origin/main` is ahead of the local checkout: the change must be computed
/// from origin's content, and the commit's parent must be origin/main.
#[test]
fn write_branches_off_origin_main_and_plans_from_its_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let bare = add_origin(&tmp, &dir);
    let local_head = git(&dir, &["rev-parse", "HEAD"]);

    // Someone else changes the storage size upstream.
    let other = tmp.path().join("other");
    git(
        tmp.path(),
        &["clone", "--quiet", bare.to_str().unwrap(), "other"],
    );
    configure(&other);
    write(&other, CLUSTER, &CLUSTER_V1.replace("10Gi", "50Gi"));
    let upstream = commit_all(&other, "pg-main: 50Gi");
    git(&other, &["push", "--quiet", "origin", "main"]);
    git(&dir, &["fetch", "--quiet", "origin"]);
    assert_eq!(git(&dir, &["rev-parse", "origin/main"]), upstream);
    assert_eq!(git(&dir, &["rev-parse", "HEAD"]), local_head);

    let git_repo = discover(&dir);
    let default_base = git_repo.base_ref(None).unwrap();
    assert_eq!(default_base.name, "origin/main");
    assert_eq!(default_base.commit, upstream);

    let before = snapshot(&dir);
    let outcome = apply(&git_repo, &write_mode("scale"), scale).unwrap();
    let c = committed(&outcome);
    assert_eq!(c.base.name, "origin/main");
    assert_eq!(c.base.commit, upstream);
    assert_eq!(
        git(&dir, &["rev-parse", &format!("{}^", c.commit)]),
        upstream
    );
    let content = git_repo
        .show_file(&c.commit, Path::new(CLUSTER))
        .unwrap()
        .unwrap();
    assert_eq!(
        content,
        CLUSTER_V1
            .replace("10Gi", "50Gi")
            .replace("instances: 1", "instances: 3")
    );
    // The diff shows origin's content as context, not the stale working tree.
    assert!(
        outcome.diff.contains("     size: 50Gi\n"),
        "{}",
        outcome.diff
    );

    let after = snapshot(&dir);
    assert_eq!(after.files, before.files);
    assert_eq!(after.head, local_head);
    assert_eq!(after.symbolic_head, "refs/heads/main");
    // Not pushed: the remote has no such branch.
    assert_eq!(
        git(
            &bare,
            &["for-each-ref", "--format=%(refname)", "refs/heads"]
        ),
        "refs/heads/main"
    );
}

#[test]
fn base_ref_prefers_the_given_ref_then_origin_head() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let first = git(&dir, &["rev-parse", "HEAD"]);
    write(&dir, "README.md", "fleet v2\n");
    let second = commit_all(&dir, "README");
    let git_repo = discover(&dir);

    let head = git_repo.base_ref(None).unwrap();
    assert_eq!(
        (head.name.as_str(), head.commit.as_str()),
        ("HEAD", second.as_str())
    );
    let given = git_repo.base_ref(Some("HEAD~1")).unwrap();
    assert_eq!(
        (given.name.as_str(), given.commit.as_str()),
        ("HEAD~1", first.as_str())
    );
    let unknown = git_repo.base_ref(Some("origin/nope")).unwrap_err();
    assert!(matches!(unknown, GitError::UnknownRevision { .. }));
    assert!(unknown.to_string().contains("\nhint: "), "{unknown}");

    // A remote whose default branch is `trunk`: origin/HEAD decides.
    add_origin(&tmp, &dir);
    git(
        &dir,
        &[
            "push",
            "--quiet",
            "origin",
            &format!("{first}:refs/heads/trunk"),
        ],
    );
    git(&dir, &["fetch", "--quiet", "origin"]);
    git(
        &dir,
        &[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/remotes/origin/trunk",
        ],
    );
    let base = git_repo.base_ref(None).unwrap();
    assert_eq!(
        (base.name.as_str(), base.commit.as_str()),
        ("origin/trunk", first.as_str())
    );
}

#[test]
fn write_refuses_when_a_touched_file_has_uncommitted_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    write(&dir, CLUSTER, &CLUSTER_V1.replace("10Gi", "20Gi"));
    let before = snapshot(&dir);

    let err = apply(&discover(&dir), &write_mode("scale"), scale).unwrap_err();
    match &err {
        ApplyError::Dirty { paths } => assert_eq!(paths, &[PathBuf::from(CLUSTER)]),
        other => panic!("expected Dirty, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(CLUSTER), "{text}");
    assert!(text.contains("\nhint: "), "{text}");
    assert_eq!(snapshot(&dir), before);

    // Staged counts too.
    git(&dir, &["add", CLUSTER]);
    let before = snapshot(&dir);
    assert!(matches!(
        apply(&discover(&dir), &write_mode("scale"), scale),
        Err(ApplyError::Dirty { .. })
    ));
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn write_refuses_to_create_over_an_untracked_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    write(&dir, "db/pg-main/backup.yaml", "draft\n");
    let before = snapshot(&dir);
    let err = apply(&discover(&dir), &write_mode("backup"), |root: &Path| {
        let before = fs::read_to_string(root.join("db/pg-main/backup.yaml")).ok();
        Ok::<_, String>(ChangeSet {
            changes: vec![FileChange {
                path: PathBuf::from("db/pg-main/backup.yaml"),
                before,
                after: Some("kind: ScheduledBackup\n".to_owned()),
            }],
            subject: "Add a scheduled backup".to_owned(),
            body: String::new(),
        })
    })
    .unwrap_err();
    assert!(
        matches!(&err, ApplyError::Dirty { paths } if paths == &[PathBuf::from("db/pg-main/backup.yaml")]),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn write_refuses_an_existing_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    git(&dir, &["branch", "scale"]);
    let before = snapshot(&dir);

    let err = apply(&discover(&dir), &write_mode("scale"), scale).unwrap_err();
    assert!(matches!(&err, ApplyError::BranchExists { branch } if branch == "scale"));
    assert!(
        err.to_string().contains("hint: pass another --branch"),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn write_refuses_an_invalid_branch_name() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let before = snapshot(&dir);
    for name in ["bad..name", "-x", "has space", ""] {
        let err = apply(&discover(&dir), &write_mode(name), scale).unwrap_err();
        assert!(
            matches!(err, ApplyError::Git(GitError::InvalidBranchName { .. })),
            "{name}: {err}"
        );
    }
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn push_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let bare = add_origin(&tmp, &dir);
    let remote_heads = || {
        git(
            &bare,
            &[
                "for-each-ref",
                "--format=%(refname) %(objectname)",
                "refs/heads",
            ],
        )
    };
    let main = git(&dir, &["rev-parse", "main"]);

    let local = apply(&discover(&dir), &write_mode("local-only"), scale).unwrap();
    assert!(!committed(&local).pushed);
    assert_eq!(remote_heads(), format!("refs/heads/main {main}"));

    let mut opts = write_mode("pushed");
    opts.push = true;
    let pushed = apply(&discover(&dir), &opts, scale).unwrap();
    let c = committed(&pushed);
    assert!(c.pushed);
    assert_eq!(c.remote.as_deref(), Some("origin"));
    assert_eq!(
        remote_heads(),
        format!("refs/heads/main {main}\nrefs/heads/pushed {}", c.commit)
    );
    assert_eq!(git(&dir, &["config", "branch.pushed.remote"]), "origin");
    assert_eq!(
        git(&dir, &["config", "branch.pushed.merge"]),
        "refs/heads/pushed"
    );
    assert!(
        pushed.summary().ends_with("pushed to origin"),
        "{}",
        pushed.summary()
    );
    let json = serde_json::to_value(&pushed).unwrap();
    assert_eq!(json["commit"]["pushed"], true);
    assert_eq!(json["commit"]["base"]["name"], "origin/main");
}

#[test]
fn push_without_an_origin_is_refused_before_anything_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let before = snapshot(&dir);
    let mut opts = write_mode("scale");
    opts.push = true;
    let err = apply(&discover(&dir), &opts, scale).unwrap_err();
    assert!(
        matches!(err, ApplyError::Git(GitError::NoRemote { .. })),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn write_creates_and_deletes_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let git_repo = discover(&dir);
    let plan = |root: &Path| {
        Ok::<_, String>(ChangeSet {
            changes: vec![
                FileChange {
                    path: PathBuf::from(CLUSTER),
                    before: fs::read_to_string(root.join(CLUSTER)).ok(),
                    after: None,
                },
                FileChange {
                    path: PathBuf::from("db/pg-new/cluster.yaml"),
                    before: fs::read_to_string(root.join("db/pg-new/cluster.yaml")).ok(),
                    // No final newline: a new file gets one.
                    after: Some("kind: Cluster".to_owned()),
                },
            ],
            subject: "Replace pg-main with pg-new".to_owned(),
            body: String::new(),
        })
    };

    let preview = apply(&git_repo, &options(Mode::DryRun, "x"), plan).unwrap();
    assert!(
        preview
            .diff
            .contains("--- a/db/pg-main/cluster.yaml\n+++ /dev/null\n")
    );
    assert!(
        preview.diff.contains(
            "--- /dev/null\n+++ b/db/pg-new/cluster.yaml\n@@ -0,0 +1 @@\n+kind: Cluster\n"
        )
    );

    let outcome = apply(&git_repo, &write_mode("replace"), plan).unwrap();
    let c = committed(&outcome);
    assert_eq!(
        git_repo.show_file(&c.commit, Path::new(CLUSTER)).unwrap(),
        None
    );
    assert_eq!(
        git_repo
            .show_file("replace", Path::new("db/pg-new/cluster.yaml"))
            .unwrap()
            .as_deref(),
        Some("kind: Cluster\n")
    );
    let kinds: Vec<(String, ChangeKind)> = outcome
        .files
        .iter()
        .map(|f| (f.path.to_string_lossy().into_owned(), f.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("db/pg-main/cluster.yaml".to_owned(), ChangeKind::Delete),
            ("db/pg-new/cluster.yaml".to_owned(), ChangeKind::Create),
        ]
    );
    // Commit message without a body: just the subject.
    assert_eq!(
        git(&dir, &["log", "-1", "--format=%B", "replace"]),
        "Replace pg-main with pg-new"
    );
    // The working tree still has the old file.
    assert_eq!(fs::read_to_string(dir.join(CLUSTER)).unwrap(), CLUSTER_V1);
}

#[test]
fn paths_outside_the_repository_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let outside = tmp.path().join("evil.yaml");
    let before = snapshot(&dir);
    for path in [
        PathBuf::from("../evil.yaml"),
        PathBuf::from("db/../../evil.yaml"),
        outside.clone(),
        PathBuf::from(".git/hooks/pre-commit"),
    ] {
        for mode in [Mode::Write, Mode::DryRun] {
            let err = apply(&discover(&dir), &options(mode, "evil"), |_: &Path| {
                Ok::<_, String>(ChangeSet {
                    changes: vec![FileChange {
                        path: path.clone(),
                        before: None,
                        after: Some("x\n".to_owned()),
                    }],
                    subject: "evil".to_owned(),
                    body: String::new(),
                })
            })
            .unwrap_err();
            assert!(
                matches!(err, ApplyError::BadPath { .. }),
                "{}: {err}",
                path.display()
            );
        }
    }
    assert!(!outside.exists());
    assert_eq!(snapshot(&dir), before);
}

#[cfg(unix)]
#[test]
fn a_symbolic_link_out_of_the_repository_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dir.join("linked")).unwrap();
    commit_all(&dir, "A link");
    let before = snapshot(&dir);
    let err = apply(&discover(&dir), &write_mode("link"), |_: &Path| {
        Ok::<_, String>(ChangeSet {
            changes: vec![FileChange {
                path: PathBuf::from("linked/evil.yaml"),
                before: None,
                after: Some("x\n".to_owned()),
            }],
            subject: "through a link".to_owned(),
            body: String::new(),
        })
    })
    .unwrap_err();
    assert!(matches!(err, ApplyError::BadPath { .. }), "{err}");
    assert!(!elsewhere.join("evil.yaml").exists());
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_failing_plan_is_passed_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    fs::remove_file(dir.join(CLUSTER)).unwrap();
    let before = snapshot(&dir);
    let err = apply(&discover(&dir), &write_mode("scale"), scale).unwrap_err();
    assert!(
        matches!(&err, ApplyError::Plan(msg) if msg.starts_with(CLUSTER)),
        "{err}"
    );
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn an_empty_plan_creates_no_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let before = snapshot(&dir);
    let outcome = apply(&discover(&dir), &write_mode("noop"), |_: &Path| {
        Ok::<_, String>(ChangeSet {
            changes: vec![],
            subject: "nothing".to_owned(),
            body: String::new(),
        })
    })
    .unwrap();
    assert!(!outcome.differs);
    assert!(outcome.commit.is_none());
    assert_eq!(outcome.summary(), "nothing to change");
    assert_eq!(snapshot(&dir), before);
}

/// The working tree still says 1 instance but origin/main already says 3:
/// nothing to change at the base, so no branch.
#[test]
fn a_plan_that_is_empty_at_the_base_creates_no_branch() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let bare = add_origin(&tmp, &dir);
    let other = tmp.path().join("other");
    git(
        tmp.path(),
        &["clone", "--quiet", bare.to_str().unwrap(), "other"],
    );
    configure(&other);
    write(
        &other,
        CLUSTER,
        &CLUSTER_V1.replace("instances: 1", "instances: 3"),
    );
    commit_all(&other, "scale");
    git(&other, &["push", "--quiet", "origin", "main"]);
    git(&dir, &["fetch", "--quiet", "origin"]);

    let before = snapshot(&dir);
    let git_repo = discover(&dir);
    let check = apply(&git_repo, &options(Mode::Check, "scale"), scale).unwrap();
    assert!(check.differs, "the working tree is behind");
    let outcome = apply(&git_repo, &write_mode("scale"), scale).unwrap();
    assert!(!outcome.differs);
    assert!(outcome.commit.is_none());
    assert_eq!(snapshot(&dir), before);
}

#[cfg(unix)]
#[test]
fn a_failed_commit_removes_the_worktree_and_the_branch() {
    use std::os::unix::fs::PermissionsExt;

    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let hooks = tmp.path().join("hooks");
    fs::create_dir_all(&hooks).unwrap();
    let hook = hooks.join("pre-commit");
    fs::write(&hook, "#!/bin/sh\necho 'policy says no' >&2\nexit 1\n").unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    git(&dir, &["config", "core.hooksPath", hooks.to_str().unwrap()]);
    let before = snapshot(&dir);

    let err = apply(&discover(&dir), &write_mode("scale"), scale).unwrap_err();
    match &err {
        ApplyError::Git(GitError::Failed {
            command, stderr, ..
        }) => {
            assert!(command.contains("commit"), "{command}");
            assert!(stderr.contains("policy says no"), "{stderr}");
        }
        other => panic!("expected a failed commit, got {other}"),
    }
    assert_eq!(snapshot(&dir), before);
    assert!(!discover(&dir).branch_exists("scale").unwrap());
}

#[test]
fn file_history_follows_a_rename() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let git_repo = discover(&dir);
    let v1 = git(&dir, &["rev-parse", "HEAD"]);
    // An unrelated commit is not part of the history.
    write(&dir, "README.md", "fleet v2\n");
    commit_all(&dir, "README");
    let v2_content = CLUSTER_V1.replace("10Gi", "20Gi");
    write(&dir, CLUSTER, &v2_content);
    let v2 = commit_all(&dir, "20Gi");
    fs::create_dir_all(dir.join("db/main")).unwrap();
    git(&dir, &["mv", CLUSTER, "db/main/cluster.yaml"]);
    let v3 = commit_all(&dir, "move");
    let v4_content = v2_content.replace("instances: 1", "instances: 2");
    write(&dir, "db/main/cluster.yaml", &v4_content);
    let v4 = commit_all(&dir, "2 instances");

    let history = git_repo
        .file_history(Path::new("db/main/cluster.yaml"))
        .unwrap();
    assert_eq!(
        history,
        vec![
            (v1, CLUSTER_V1.to_owned()),
            (v2, v2_content.clone()),
            (v3, v2_content),
            (v4, v4_content),
        ]
    );
    assert!(
        git_repo
            .file_history(Path::new("db/none.yaml"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn discover_show_file_and_branches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);

    let from_sub = Git::discover(&dir.join("db/pg-main")).unwrap();
    assert_eq!(
        from_sub.root().canonicalize().unwrap(),
        dir.canonicalize().unwrap()
    );
    let from_file = Git::discover(&dir.join(CLUSTER)).unwrap();
    assert_eq!(from_file.root(), from_sub.root());

    let not_repo = tmp.path().join("plain");
    fs::create_dir_all(&not_repo).unwrap();
    let err = Git::discover(&not_repo).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("\nhint: run inside your Flux repository or pass --repo"),
        "{err}"
    );
    let err = Git::discover(&dir.join(".git")).unwrap_err();
    assert!(matches!(err, GitError::NoWorkTree { .. }), "{err}");

    let git_repo = from_sub;
    assert_eq!(git_repo.current_branch().unwrap().as_deref(), Some("main"));
    assert_eq!(
        git_repo
            .show_file("HEAD", Path::new(CLUSTER))
            .unwrap()
            .as_deref(),
        Some(CLUSTER_V1)
    );
    assert_eq!(
        git_repo.show_file("HEAD", Path::new("nope.yaml")).unwrap(),
        None
    );
    assert_eq!(git_repo.show_file("HEAD", Path::new("db")).unwrap(), None);
    assert!(matches!(
        git_repo.show_file("no-such-rev", Path::new(CLUSTER)),
        Err(GitError::UnknownRevision { .. })
    ));
    assert!(git_repo.branch_exists("main").unwrap());
    assert!(!git_repo.branch_exists("other").unwrap());

    let head = git_repo.head_commit().unwrap();
    git(&dir, &["checkout", "--quiet", "--detach"]);
    assert_eq!(git_repo.current_branch().unwrap(), None);
    assert_eq!(git_repo.head_commit().unwrap(), head);
}

#[test]
fn dirty_paths_reports_staged_unstaged_and_untracked_files_under_the_given_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = repo(&tmp);
    let git_repo = discover(&dir);
    assert!(git_repo.dirty_paths(&[]).unwrap().is_empty());
    assert!(
        git_repo
            .dirty_paths(&[PathBuf::from(CLUSTER)])
            .unwrap()
            .is_empty()
    );

    write(&dir, CLUSTER, "changed\n");
    write(&dir, "db/pg-main/new file [1].yaml", "new\n");
    write(&dir, "README.md", "staged\n");
    git(&dir, &["add", "README.md"]);
    write(&dir, "elsewhere.txt", "not asked about\n");

    let dirty = git_repo
        .dirty_paths(&[
            PathBuf::from("db/pg-main"),
            PathBuf::from("README.md"),
            PathBuf::from("db/pg-other/cluster.yaml"),
        ])
        .unwrap();
    assert_eq!(
        dirty,
        [
            PathBuf::from("README.md"),
            PathBuf::from(CLUSTER),
            PathBuf::from("db/pg-main/new file [1].yaml"),
        ]
    );
}
