//! A change to the GitOps repository, shown as a diff or delivered as a commit.
//!
//! A command describes its change as a *plan*: a function from a directory
//! (the root to read the repository's files from) to a [`ChangeSet`]. [`apply`]
//! runs the plan against the working tree to preview or check it, or, to
//! write it, runs it again inside a temporary `git worktree` checked out at
//! the base ref and commits the result on a new branch there. The user's
//! checkout, its branch and any unrelated uncommitted work are never touched.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use similar::TextDiff;

use crate::gitops::git::{BaseRef, Git, GitError, slash_path, with_hint};

/// The remote that `push` delivers to.
pub const REMOTE: &str = "origin";

/// Lines of context around each change in a diff.
const CONTEXT: usize = 3;

/// One file's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// Path relative to the repository's top level.
    pub path: PathBuf,
    /// The content before, `None` when the file does not exist.
    pub before: Option<String>,
    /// The content after, `None` to delete the file.
    pub after: Option<String>,
}

/// What happens to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// The file is created.
    Create,
    /// The file's content changes.
    Modify,
    /// The file is deleted.
    Delete,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Create => "create",
            ChangeKind::Modify => "modify",
            ChangeKind::Delete => "delete",
        })
    }
}

impl FileChange {
    /// Whether this changes anything (`before` differs from `after`).
    #[must_use]
    pub fn differs(&self) -> bool {
        self.before != self.after
    }

    /// What happens to the file, or `None` when nothing does.
    #[must_use]
    pub fn kind(&self) -> Option<ChangeKind> {
        match (&self.before, &self.after) {
            _ if !self.differs() => None,
            (None, Some(_)) => Some(ChangeKind::Create),
            (Some(_), None) => Some(ChangeKind::Delete),
            _ => Some(ChangeKind::Modify),
        }
    }

    /// The content as it will be written: `after`, except that a new file
    /// that does not end with a newline gets one.
    #[must_use]
    pub fn written(&self) -> Option<Cow<'_, str>> {
        let after = self.after.as_deref()?;
        if self.before.is_none() && !after.is_empty() && !after.ends_with('\n') {
            Some(Cow::Owned(format!("{after}\n")))
        } else {
            Some(Cow::Borrowed(after))
        }
    }

    /// This file's part of a unified diff (empty when nothing changes).
    #[must_use]
    pub fn unified_diff(&self) -> String {
        if !self.differs() {
            return String::new();
        }
        let path = slash_path(&self.path);
        let old_name = match self.before {
            Some(_) => format!("a/{path}"),
            None => "/dev/null".to_owned(),
        };
        let written = self.written();
        let new_name = match written {
            Some(_) => format!("b/{path}"),
            None => "/dev/null".to_owned(),
        };
        let old = self.before.as_deref().unwrap_or("");
        let new = written.as_deref().unwrap_or("");
        let diff = TextDiff::from_lines(old, new);
        let hunks = diff.unified_diff().context_radius(CONTEXT).to_string();
        format!("--- {old_name}\n+++ {new_name}\n{hunks}")
    }
}

/// A set of file changes and the commit message that delivers them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// The changes.
    pub changes: Vec<FileChange>,
    /// The commit's subject line.
    pub subject: String,
    /// The commit message's body (may be empty).
    pub body: String,
}

impl ChangeSet {
    /// Whether nothing changes: no change has `before` different from `after`.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.changes.iter().any(FileChange::differs)
    }

    /// The changes that change something, ordered by path as git orders them.
    fn effective(&self) -> Vec<&FileChange> {
        let mut v: Vec<&FileChange> = self.changes.iter().filter(|c| c.differs()).collect();
        v.sort_by_cached_key(|c| slash_path(&c.path));
        v
    }

    /// A git-style unified diff of every change (`--- a/path` / `+++ b/path`,
    /// `/dev/null` for creates and deletes, three lines of context), files in
    /// path order. Empty when nothing changes.
    #[must_use]
    pub fn unified_diff(&self) -> String {
        self.effective()
            .into_iter()
            .map(FileChange::unified_diff)
            .collect()
    }

    /// The files that change, in path order.
    #[must_use]
    pub fn files(&self) -> Vec<ChangedFile> {
        self.effective()
            .into_iter()
            .filter_map(|c| {
                Some(ChangedFile {
                    path: c.path.clone(),
                    kind: c.kind()?,
                })
            })
            .collect()
    }

    /// The paths of the files that change, in path order.
    #[must_use]
    pub fn touched_paths(&self) -> Vec<PathBuf> {
        self.effective()
            .into_iter()
            .map(|c| c.path.clone())
            .collect()
    }
}

/// What [`apply`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Commit the change on a new branch.
    Write,
    /// Say whether the working tree differs from what the plan wants.
    Check,
    /// Show the diff and change nothing.
    DryRun,
}

/// How to deliver a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Write, check or dry-run.
    pub mode: Mode,
    /// Push the new branch to [`REMOTE`] (write mode only).
    pub push: bool,
    /// The branch to create (write mode only); it must not exist yet.
    pub branch: String,
    /// The ref to start from; by default [`Git::base_ref`] decides.
    pub base: Option<String>,
}

/// A file in an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedFile {
    /// Path relative to the repository's top level.
    pub path: PathBuf,
    /// What happens to it.
    pub kind: ChangeKind,
}

/// The commit a write made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    /// The new branch.
    pub branch: String,
    /// Where the branch starts (the new commit's parent).
    pub base: BaseRef,
    /// The new commit's full id.
    pub commit: String,
    /// Whether the branch was pushed.
    pub pushed: bool,
    /// The remote it was pushed to, when it was.
    pub remote: Option<String>,
}

/// What [`apply`] did or would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The mode it ran in.
    pub mode: Mode,
    /// Whether the plan changes anything (for `check`: the caller exits 1).
    pub differs: bool,
    /// The files that change.
    pub files: Vec<ChangedFile>,
    /// The unified diff (empty when nothing changes).
    pub diff: String,
    /// The commit subject.
    pub subject: String,
    /// The commit made, in write mode when there was something to change.
    pub commit: Option<Committed>,
}

impl Outcome {
    fn of(mode: Mode, set: &ChangeSet) -> Outcome {
        Outcome {
            mode,
            differs: !set.is_empty(),
            files: set.files(),
            diff: set.unified_diff(),
            subject: set.subject.clone(),
            commit: None,
        }
    }

    /// One line for people: what changed or would change.
    #[must_use]
    pub fn summary(&self) -> String {
        if !self.differs {
            return match self.mode {
                Mode::Check => "up to date: nothing to change".to_owned(),
                Mode::Write | Mode::DryRun => "nothing to change".to_owned(),
            };
        }
        let n = self.files.len();
        let files = if n == 1 {
            "1 file".to_owned()
        } else {
            format!("{n} files")
        };
        match (&self.mode, &self.commit) {
            (Mode::Write, Some(c)) => {
                let short = c.commit.get(..12).unwrap_or(&c.commit);
                let mut s = format!(
                    "committed {short} on new branch {} off {}: {files} changed",
                    c.branch, c.base
                );
                if let Some(remote) = &c.remote {
                    s.push_str("; pushed to ");
                    s.push_str(remote);
                }
                s
            }
            (Mode::Check, _) => format!("out of date: {files} would change"),
            _ => format!("would change {files}"),
        }
    }
}

/// Why a change could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub enum ApplyError<E: fmt::Display> {
    /// The plan failed.
    Plan(E),
    /// git failed.
    Git(#[from] GitError),
    /// A plan named a path that is not a plain relative path inside the repository.
    BadPath {
        /// The path as named.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A plan named a file twice.
    DuplicatePath {
        /// The path.
        path: PathBuf,
    },
    /// Files the change touches have uncommitted changes.
    Dirty {
        /// The files, relative to the top level.
        paths: Vec<PathBuf>,
    },
    /// The branch to create exists already.
    BranchExists {
        /// The branch.
        branch: String,
    },
    /// The plan has no commit subject.
    EmptySubject,
    /// The plan's `before` does not match the file it read.
    StalePlan {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl<E: fmt::Display> ApplyError<E> {
    /// What went wrong, without the hint.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            ApplyError::Plan(e) => e.to_string(),
            ApplyError::Git(e) => e.message(),
            ApplyError::BadPath { path, reason } => {
                format!("refusing to change {}: {reason}", path.display())
            }
            ApplyError::DuplicatePath { path } => {
                format!("the change names {} twice", path.display())
            }
            ApplyError::Dirty { paths } => {
                let list: Vec<String> = paths.iter().map(|p| slash_path(p)).collect();
                format!(
                    "refusing to write: these files have uncommitted changes: {}",
                    list.join(", ")
                )
            }
            ApplyError::BranchExists { branch } => {
                format!("refusing to write: the branch {branch} already exists")
            }
            ApplyError::EmptySubject => "the change has no commit subject".to_owned(),
            ApplyError::StalePlan { path } => format!(
                "{} changed while the change was being prepared (its content is not what the plan read)",
                path.display()
            ),
            ApplyError::Io { path, source } => format!("{}: {source}", path.display()),
        }
    }

    /// What to do about it, when there is something useful to say.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        match self {
            ApplyError::Git(e) => e.hint(),
            ApplyError::Dirty { .. } => Some(
                "commit or stash them first (`git stash push -- FILE`), so the change is computed from committed content"
                    .to_owned(),
            ),
            ApplyError::BranchExists { branch } => Some(format!(
                "pass another --branch, or delete it with `git branch -D {branch}`"
            )),
            ApplyError::StalePlan { .. } => Some("run the command again".to_owned()),
            _ => None,
        }
    }

    fn render(&self) -> String {
        with_hint(self.message(), self.hint())
    }
}

/// Checks that every path is a plain relative path inside the repository
/// (no `..`, `.`, root or prefix, nothing inside `.git`) and named once.
fn validate<E: fmt::Display>(set: &ChangeSet) -> Result<(), ApplyError<E>> {
    let mut seen: Vec<&Path> = Vec::new();
    for change in &set.changes {
        let path = &change.path;
        let bad = |reason| ApplyError::BadPath {
            path: path.clone(),
            reason,
        };
        if path.as_os_str().is_empty() {
            return Err(bad("the path is empty"));
        }
        for component in path.components() {
            match component {
                Component::Normal(name) => {
                    if name.eq_ignore_ascii_case(".git") {
                        return Err(bad("it is inside a .git directory"));
                    }
                }
                Component::ParentDir => {
                    return Err(bad("the path leaves the repository (..)"));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(bad(
                        "the path is absolute; it must be relative to the repository root",
                    ));
                }
                Component::CurDir => {
                    return Err(bad(
                        "the path must be relative to the repository root, without ./",
                    ));
                }
            }
        }
        if seen.contains(&path.as_path()) {
            return Err(ApplyError::DuplicatePath { path: path.clone() });
        }
        seen.push(path);
    }
    Ok(())
}

/// Runs `plan` and delivers its change as `opts` says.
///
/// - [`Mode::DryRun`] and [`Mode::Check`]: the plan reads the working tree;
///   nothing is changed. The outcome carries the diff and whether anything differs.
/// - [`Mode::Write`]: the plan first reads the working tree, to learn which
///   files it touches; uncommitted changes to any of them, or an existing
///   branch of that name, refuse the write. Then a temporary worktree is
///   checked out at the base ref (see [`Git::base_ref`]), the plan runs again
///   there, its files are written and committed on the new branch, and the
///   worktree is removed. When the plan changes nothing at the base, no branch
///   is made. On any failure the worktree and the new branch are removed,
///   except when only the push failed: then the branch and its commit stay,
///   and the error says how to push them.
pub fn apply<E, F>(git: &Git, opts: &WriteOptions, plan: F) -> Result<Outcome, ApplyError<E>>
where
    E: fmt::Display,
    F: Fn(&Path) -> Result<ChangeSet, E>,
{
    let here = plan(git.root()).map_err(ApplyError::Plan)?;
    validate(&here)?;
    match opts.mode {
        Mode::DryRun | Mode::Check => Ok(Outcome::of(opts.mode, &here)),
        Mode::Write => write(git, opts, &here, &plan),
    }
}

fn write<E, F>(
    git: &Git,
    opts: &WriteOptions,
    here: &ChangeSet,
    plan: &F,
) -> Result<Outcome, ApplyError<E>>
where
    E: fmt::Display,
    F: Fn(&Path) -> Result<ChangeSet, E>,
{
    let branch = opts.branch.as_str();
    git.check_branch_name(branch)?;
    let touched = here.touched_paths();
    let dirty = git.dirty_paths(&touched)?;
    if !dirty.is_empty() {
        return Err(ApplyError::Dirty { paths: dirty });
    }
    if git.branch_exists(branch)? {
        return Err(ApplyError::BranchExists {
            branch: branch.to_owned(),
        });
    }
    if opts.push && !git.has_remote(REMOTE)? {
        return Err(GitError::NoRemote {
            remote: REMOTE.to_owned(),
        }
        .into());
    }
    git.check_identity()?;
    let base = git.base_ref(opts.base.as_deref())?;

    let mut worktree = Worktree::add(git, &base.commit)?;
    let there = plan(&worktree.path).map_err(ApplyError::Plan)?;
    validate(&there)?;
    let mut outcome = Outcome::of(Mode::Write, &there);
    if there.is_empty() {
        return Ok(outcome);
    }
    // The base may touch files the working tree did not: those must be clean too.
    let extra: Vec<PathBuf> = there
        .touched_paths()
        .into_iter()
        .filter(|p| !touched.contains(p))
        .collect();
    let dirty = git.dirty_paths(&extra)?;
    if !dirty.is_empty() {
        return Err(ApplyError::Dirty { paths: dirty });
    }
    if there.subject.trim().is_empty() {
        return Err(ApplyError::EmptySubject);
    }

    for change in there.effective() {
        write_file(&worktree.path, change)?;
    }
    let wt = Git::at_top_level(&worktree.path);
    wt.run(["checkout", "--quiet", "--no-track", "-b", branch])?;
    worktree.branch = Some(branch.to_owned());

    let mut add: Vec<String> = ["--literal-pathspecs", "add", "--all", "--"]
        .map(str::to_owned)
        .to_vec();
    add.extend(there.touched_paths().iter().map(|p| slash_path(p)));
    wt.run(&add)?;
    if wt.test(["diff", "--cached", "--quiet"])? {
        // Nothing staged after all (for example, a clean/smudge filter made the
        // new content identical): no commit and no branch.
        outcome.differs = false;
        outcome.files.clear();
        outcome.diff.clear();
        return Ok(outcome);
    }
    let mut commit = vec![
        "commit".to_owned(),
        "--quiet".to_owned(),
        "-m".to_owned(),
        there.subject.clone(),
    ];
    if !there.body.trim().is_empty() {
        commit.push("-m".to_owned());
        commit.push(there.body.clone());
    }
    wt.run(&commit)?;
    let sha = wt.run(["rev-parse", "HEAD"])?;
    // From here on the branch is finished work: keep it.
    worktree.branch = None;
    drop(worktree);

    let pushed = if opts.push {
        git.push(REMOTE, branch)?;
        true
    } else {
        false
    };
    outcome.commit = Some(Committed {
        branch: branch.to_owned(),
        base,
        commit: sha,
        pushed,
        remote: pushed.then(|| REMOTE.to_owned()),
    });
    Ok(outcome)
}

/// Writes one change under `root`, after checking that the file still holds
/// what the plan read and that no symbolic link leads out of the tree.
fn write_file<E: fmt::Display>(root: &Path, change: &FileChange) -> Result<(), ApplyError<E>> {
    let full = root.join(&change.path);
    let io_err = |source| ApplyError::Io {
        path: change.path.clone(),
        source,
    };
    let bad = |reason| ApplyError::BadPath {
        path: change.path.clone(),
        reason,
    };
    let mut prefix = root.to_path_buf();
    for component in change.path.components() {
        prefix.push(component);
        match std::fs::symlink_metadata(&prefix) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(bad("it is, or goes through, a symbolic link"));
            }
            Ok(meta) if meta.is_dir() && prefix == full => {
                return Err(bad("it is a directory"));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_err(e)),
        }
    }
    let current = match std::fs::read(&full) {
        Ok(bytes) => Some(String::from_utf8(bytes).map_err(|_| {
            ApplyError::Git(GitError::NotUtf8 {
                what: slash_path(&change.path),
            })
        })?),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(e)),
    };
    if current != change.before {
        return Err(ApplyError::StalePlan {
            path: change.path.clone(),
        });
    }
    match change.written() {
        Some(content) => {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent).map_err(io_err)?;
            }
            std::fs::write(&full, content.as_bytes()).map_err(io_err)
        }
        None => std::fs::remove_file(&full).map_err(io_err),
    }
}

/// A temporary linked worktree, removed on drop together with the branch it
/// made, unless that branch is released by setting `branch` to `None`.
struct Worktree<'a> {
    git: &'a Git,
    path: PathBuf,
    branch: Option<String>,
}

impl<'a> Worktree<'a> {
    fn add(git: &'a Git, commit: &str) -> Result<Worktree<'a>, GitError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("cnpg-ops-worktree-{}-{nanos}", std::process::id()));
        git.run([
            OsStr::new("worktree"),
            OsStr::new("add"),
            OsStr::new("--quiet"),
            OsStr::new("--detach"),
            path.as_os_str(),
            OsStr::new(commit),
        ])?;
        Ok(Worktree {
            git,
            path,
            branch: None,
        })
    }
}

impl Drop for Worktree<'_> {
    fn drop(&mut self) {
        let removed = self.git.run([
            OsStr::new("worktree"),
            OsStr::new("remove"),
            OsStr::new("--force"),
            self.path.as_os_str(),
        ]);
        if removed.is_err() {
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = self.git.run(["worktree", "prune"]);
        }
        if let Some(branch) = self.branch.take() {
            let _ = self.git.run(["branch", "--quiet", "-D", "--", &branch]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, before: Option<&str>, after: Option<&str>) -> FileChange {
        FileChange {
            path: PathBuf::from(path),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    fn set(changes: Vec<FileChange>) -> ChangeSet {
        ChangeSet {
            changes,
            subject: "s".to_owned(),
            body: String::new(),
        }
    }

    #[test]
    fn modify_has_three_lines_of_context() {
        let before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let after = "1\n2\n3\n4\n5\nsix\n7\n8\n9\n10\n";
        let diff = set(vec![change("db/cluster.yaml", Some(before), Some(after))]).unified_diff();
        assert_eq!(
            diff,
            "--- a/db/cluster.yaml\n+++ b/db/cluster.yaml\n@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+six\n 7\n 8\n 9\n"
        );
    }

    #[test]
    fn create_and_delete_use_dev_null() {
        let diff = set(vec![
            change("new.yaml", None, Some("a: 1\nb: 2")),
            change("old.yaml", Some("x: 1\n"), None),
        ])
        .unified_diff();
        assert_eq!(
            diff,
            "--- /dev/null\n+++ b/new.yaml\n@@ -0,0 +1,2 @@\n+a: 1\n+b: 2\n\
             --- a/old.yaml\n+++ /dev/null\n@@ -1 +0,0 @@\n-x: 1\n"
        );
    }

    #[test]
    fn files_are_in_path_order_and_unchanged_files_are_left_out() {
        let s = set(vec![
            change("b.yaml", Some("1\n"), Some("2\n")),
            change("a/z.yaml", Some("same\n"), Some("same\n")),
            change("a-b.yaml", None, Some("n\n")),
            change("a/b.yaml", Some("1\n"), Some("2\n")),
        ]);
        let diff = s.unified_diff();
        let headers: Vec<&str> = diff.lines().filter(|l| l.starts_with("+++")).collect();
        assert_eq!(
            headers,
            ["+++ b/a-b.yaml", "+++ b/a/b.yaml", "+++ b/b.yaml"]
        );
        assert_eq!(diff, s.unified_diff(), "deterministic");
        let kinds: Vec<ChangeKind> = s.files().iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::Create, ChangeKind::Modify, ChangeKind::Modify]
        );
    }

    #[test]
    fn empty_when_nothing_differs() {
        let s = set(vec![
            change("a.yaml", Some("x\n"), Some("x\n")),
            change("gone.yaml", None, None),
        ]);
        assert!(s.is_empty());
        assert_eq!(s.unified_diff(), "");
        assert!(ChangeSet::default().is_empty());
        assert!(!set(vec![change("a.yaml", Some("x"), Some("x\n"))]).is_empty());
    }

    #[test]
    fn missing_final_newline_is_marked_for_existing_files() {
        let diff = set(vec![change("a.yaml", Some("x\n"), Some("y"))]).unified_diff();
        assert_eq!(
            diff,
            "--- a/a.yaml\n+++ b/a.yaml\n@@ -1 +1 @@\n-x\n+y\n\\ No newline at end of file\n"
        );
    }

    #[test]
    fn paths_must_stay_inside_the_repository() {
        for bad in [
            "../x.yaml",
            "a/../../x.yaml",
            "/etc/passwd",
            "./a.yaml",
            ".git/config",
            "sub/.GIT/hooks/pre-commit",
            "",
        ] {
            let s = set(vec![change(bad, None, Some("x\n"))]);
            assert!(
                matches!(validate::<String>(&s), Err(ApplyError::BadPath { .. })),
                "{bad}"
            );
        }
        let s = set(vec![change("a/b.yaml", None, Some("x\n"))]);
        assert!(validate::<String>(&s).is_ok());
        let twice = set(vec![
            change("a.yaml", None, Some("x\n")),
            change("a.yaml", None, Some("y\n")),
        ]);
        assert!(matches!(
            validate::<String>(&twice),
            Err(ApplyError::DuplicatePath { .. })
        ));
    }

    #[test]
    fn outcome_serializes() {
        let o = Outcome::of(
            Mode::DryRun,
            &set(vec![change("a.yaml", None, Some("x\n"))]),
        );
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["mode"], "dry-run");
        assert_eq!(v["files"][0]["path"], "a.yaml");
        assert_eq!(v["files"][0]["kind"], "create");
        assert_eq!(o.summary(), "would change 1 file");
    }
}
