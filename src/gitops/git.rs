//! The user's git repository, driven through the `git` command-line program.
//!
//! Going through the CLI rather than a library means the user's own config,
//! credential helpers, SSH agent, hooks and commit signing all apply. Every
//! command runs with `-C <root>`; every command except `push` runs with
//! `GIT_TERMINAL_PROMPT=0` and no stdin, so nothing can stop to ask a question.
//! git's stderr is captured and carried in the error.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};

use serde::Serialize;

/// Variables that would point git at another repository or index than the one
/// `-C` names (they are set, for example, when running inside a git hook).
const REDIRECTING_ENV: [&str; 4] = ["GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX"];

/// A failure to run git or a refusal by git.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.render())]
pub enum GitError {
    /// The `git` program could not be started because it is not installed.
    NotInstalled {
        /// The error from starting the program.
        source: io::Error,
    },
    /// The `git` program could not be started for another reason.
    Spawn {
        /// The command line.
        command: String,
        /// The error from starting the program.
        source: io::Error,
    },
    /// The path is not inside a git repository.
    NotARepository {
        /// The path that was given.
        path: PathBuf,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// The path is inside a git directory or a bare repository, which has no working tree.
    NoWorkTree {
        /// The path that was given.
        path: PathBuf,
    },
    /// The repository has no commit yet.
    NoCommits {
        /// The repository's top level.
        root: PathBuf,
    },
    /// A revision does not name a commit.
    UnknownRevision {
        /// The revision as given.
        rev: String,
    },
    /// A remote is not configured.
    NoRemote {
        /// The remote's name.
        remote: String,
    },
    /// No author or committer identity is configured, so git cannot commit.
    NoIdentity {
        /// The missing setting (`user.email` or `user.name`), when one is plainly missing.
        missing: Option<&'static str>,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// A branch name git does not accept.
    InvalidBranchName {
        /// The name as given.
        name: String,
    },
    /// A file's content is not UTF-8.
    NotUtf8 {
        /// Where the content came from (`rev:path`).
        what: String,
    },
    /// `git push` failed.
    PushFailed {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
        /// The command line.
        command: String,
        /// How git exited.
        status: ExitStatus,
        /// git's stderr, trimmed.
        stderr: String,
    },
    /// Any other git command failed.
    Failed {
        /// The command line.
        command: String,
        /// How git exited.
        status: ExitStatus,
        /// git's stderr, trimmed.
        stderr: String,
    },
}

impl GitError {
    /// What went wrong, without the hint.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            GitError::NotInstalled { source } => {
                format!("cannot run git: it is not installed or not on PATH ({source})")
            }
            GitError::Spawn { command, source } => format!("cannot run `{command}`: {source}"),
            GitError::NotARepository { path, stderr } => {
                format!("not a git repository: {}{}", path.display(), detail(stderr))
            }
            GitError::NoWorkTree { path } => format!(
                "{} is inside a git directory or a bare repository, which has no working tree",
                path.display()
            ),
            GitError::NoCommits { root } => {
                format!("the repository {} has no commits yet", root.display())
            }
            GitError::UnknownRevision { rev } => format!("{rev} does not name a commit"),
            GitError::NoRemote { remote } => format!("no remote named {remote} is configured"),
            GitError::NoIdentity { missing, stderr } => match missing {
                Some(setting) => format!("no {setting} configured, so git cannot commit"),
                None => format!("git has no usable author identity{}", detail(stderr)),
            },
            GitError::InvalidBranchName { name } => {
                format!("{name:?} is not a valid branch name")
            }
            GitError::NotUtf8 { what } => format!("{what} is not UTF-8 text"),
            GitError::PushFailed {
                remote,
                branch,
                command,
                status,
                stderr,
            } => format!(
                "pushing {branch} to {remote} failed: `{command}` ended with {}{}",
                describe_status(*status),
                detail(stderr)
            ),
            GitError::Failed {
                command,
                status,
                stderr,
            } => format!(
                "`{command}` ended with {}{}",
                describe_status(*status),
                detail(stderr)
            ),
        }
    }

    /// What to do about it, when there is something useful to say.
    #[must_use]
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            GitError::NotInstalled { .. } => {
                "install git (https://git-scm.com) and make sure it is on PATH".to_owned()
            }
            GitError::NotARepository { .. } | GitError::NoWorkTree { .. } => {
                "run inside your Flux repository or pass --repo".to_owned()
            }
            GitError::NoCommits { .. } => {
                "commit something first, or clone the repository that holds your manifests"
                    .to_owned()
            }
            GitError::UnknownRevision { rev } => {
                if rev.contains('/') {
                    "check the name; for a remote branch, run `git fetch` first".to_owned()
                } else {
                    "check the name with `git branch -a`".to_owned()
                }
            }
            GitError::NoRemote { remote } => {
                format!("add it with `git remote add {remote} URL`, or do not ask to push")
            }
            GitError::NoIdentity { missing, .. } => match missing {
                Some("user.name") => "git config user.name \"Your Name\"".to_owned(),
                _ => "git config user.email you@example.com".to_owned(),
            },
            GitError::InvalidBranchName { .. } => {
                "see `git help check-ref-format` for the rules; for example use letters, digits, '-' and '/'"
                    .to_owned()
            }
            GitError::PushFailed { remote, branch, .. } => format!(
                "the commit is on the local branch {branch}; fix access to {remote} \
                 (credentials, network, branch protection) and run `git push -u {remote} {branch}`"
            ),
            GitError::Spawn { .. }
            | GitError::NotUtf8 { .. }
            | GitError::Failed { .. } => return None,
        })
    }

    fn render(&self) -> String {
        with_hint(self.message(), self.hint())
    }
}

/// `message`, then a `hint:` line when there is a hint.
pub(crate) fn with_hint(message: String, hint: Option<String>) -> String {
    match hint {
        Some(h) => format!("{message}\nhint: {h}"),
        None => message,
    }
}

fn detail(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}

fn describe_status(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => format!("{status}"),
    }
}

/// The commit new work starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BaseRef {
    /// The ref as named (`origin/main`, `HEAD`, or what the user passed).
    pub name: String,
    /// The full commit id it pointed at.
    pub commit: String,
}

/// A handle on a repository's working tree.
#[derive(Debug, Clone)]
pub struct Git {
    root: PathBuf,
}

/// A git invocation: where it runs and with which arguments.
struct Invocation<'a> {
    dir: &'a Path,
    args: Vec<OsString>,
    /// `push`: may prompt, so it gets the terminal's stdin and no `GIT_TERMINAL_PROMPT=0`.
    interactive: bool,
}

impl<'a> Invocation<'a> {
    /// A non-interactive invocation in `dir`.
    fn new<I, S>(dir: &'a Path, args: I) -> Invocation<'a>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Invocation {
            dir,
            args: os_args(args),
            interactive: false,
        }
    }

    fn command_line(&self) -> String {
        let mut parts = vec![
            "git".to_owned(),
            "-C".to_owned(),
            quote(self.dir.as_os_str()),
        ];
        parts.extend(self.args.iter().map(|a| quote(a)));
        parts.join(" ")
    }

    fn output(&self) -> Result<Output, GitError> {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(self.dir).args(&self.args);
        for var in REDIRECTING_ENV {
            cmd.env_remove(var);
        }
        if self.interactive {
            cmd.stdin(Stdio::inherit());
        } else {
            cmd.env("GIT_TERMINAL_PROMPT", "0").stdin(Stdio::null());
        }
        cmd.output().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                GitError::NotInstalled { source }
            } else {
                GitError::Spawn {
                    command: self.command_line(),
                    source,
                }
            }
        })
    }

    /// Runs, and turns a non-zero exit into [`GitError::Failed`].
    fn run(&self) -> Result<Output, GitError> {
        let out = self.output()?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.failed(&out))
        }
    }

    fn failed(&self, out: &Output) -> GitError {
        GitError::Failed {
            command: self.command_line(),
            status: out.status,
            stderr: stderr_of(out),
        }
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// stdout without the final newline.
fn stdout_line(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout);
    s.strip_suffix('\n').unwrap_or(&s).to_owned()
}

/// Quotes an argument for display when it would not survive a shell as is.
fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@^{}+,%~".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn os_args<I, S>(args: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().map(|a| a.as_ref().to_owned()).collect()
}

/// A path relative to the top level, with `/` separators, as git names it in
/// `rev:path` and in its output.
pub(crate) fn slash_path(path: &Path) -> String {
    let parts: Vec<_> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

impl Git {
    /// The repository containing `path` (a directory or a file inside the working tree).
    pub fn discover(path: &Path) -> Result<Git, GitError> {
        let dir = if path.is_file() {
            path.parent().unwrap_or(path)
        } else {
            path
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let top = Invocation {
            dir,
            args: os_args(["rev-parse", "--show-toplevel"]),
            interactive: false,
        };
        let out = top.output()?;
        if out.status.success() {
            let root = stdout_line(&out);
            if root.is_empty() {
                return Err(GitError::NoWorkTree {
                    path: path.to_owned(),
                });
            }
            return Ok(Git {
                root: PathBuf::from(root),
            });
        }
        // Inside a .git directory or a bare repository, `--git-dir` still answers.
        let git_dir = Invocation {
            dir,
            args: os_args(["rev-parse", "--git-dir"]),
            interactive: false,
        }
        .output()?;
        if git_dir.status.success() {
            Err(GitError::NoWorkTree {
                path: path.to_owned(),
            })
        } else {
            Err(GitError::NotARepository {
                path: path.to_owned(),
                stderr: stderr_of(&out),
            })
        }
    }

    /// The top level of the working tree.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn git<I, S>(&self, args: I) -> Invocation<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Invocation::new(&self.root, args)
    }

    /// Resolves `rev` to a full commit id, or `None` when it names no commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<Option<String>, GitError> {
        if rev.starts_with('-') {
            return Ok(None);
        }
        let inv = self.git([
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("{rev}^{{commit}}"),
        ]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(Some(stdout_line(&out))),
            Some(1) => Ok(None),
            _ => Err(inv.failed(&out)),
        }
    }

    /// The commit `HEAD` points at.
    pub fn head_commit(&self) -> Result<String, GitError> {
        self.resolve_commit("HEAD")?
            .ok_or_else(|| GitError::NoCommits {
                root: self.root.clone(),
            })
    }

    /// The checked-out branch, or `None` when `HEAD` is detached.
    pub fn current_branch(&self) -> Result<Option<String>, GitError> {
        let inv = self.git(["symbolic-ref", "--quiet", "--short", "HEAD"]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(Some(stdout_line(&out))),
            Some(1) => Ok(None),
            _ => Err(inv.failed(&out)),
        }
    }

    /// Whether a remote of that name is configured.
    pub fn has_remote(&self, remote: &str) -> Result<bool, GitError> {
        let out = self.git(["remote"]).run()?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == remote))
    }

    /// The base for new work: `preferred` when given; else, when a remote
    /// `origin` exists, the target of `origin/HEAD`, else `origin/main`, else
    /// `origin/master` (as last fetched: nothing is fetched here); else `HEAD`.
    pub fn base_ref(&self, preferred: Option<&str>) -> Result<BaseRef, GitError> {
        if let Some(rev) = preferred {
            let commit = self
                .resolve_commit(rev)?
                .ok_or_else(|| GitError::UnknownRevision {
                    rev: rev.to_owned(),
                })?;
            return Ok(BaseRef {
                name: rev.to_owned(),
                commit,
            });
        }
        if self.has_remote("origin")? {
            let mut candidates = Vec::new();
            let inv = self.git([
                "symbolic-ref",
                "--quiet",
                "--short",
                "refs/remotes/origin/HEAD",
            ]);
            let out = inv.output()?;
            match out.status.code() {
                Some(0) => candidates.push(stdout_line(&out)),
                Some(1) => {}
                _ => return Err(inv.failed(&out)),
            }
            candidates.push("origin/main".to_owned());
            candidates.push("origin/master".to_owned());
            for name in candidates {
                if let Some(commit) = self.resolve_commit(&format!("refs/remotes/{name}"))? {
                    return Ok(BaseRef { name, commit });
                }
            }
        }
        Ok(BaseRef {
            name: "HEAD".to_owned(),
            commit: self.head_commit()?,
        })
    }

    /// The paths among `paths` (relative to the top level; a directory stands
    /// for the files under it) with uncommitted changes, staged or not,
    /// including untracked files. Ignored files are not reported.
    pub fn dirty_paths(&self, paths: &[PathBuf]) -> Result<Vec<PathBuf>, GitError> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = os_args([
            "--literal-pathspecs",
            "--no-optional-locks",
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--",
        ]);
        args.extend(paths.iter().map(|p| OsString::from(slash_path(p))));
        let out = Invocation {
            dir: &self.root,
            args,
            interactive: false,
        }
        .run()?;
        let wanted: Vec<String> = paths.iter().map(|p| slash_path(p)).collect();
        let covered = |reported: &str| {
            wanted.iter().any(|w| {
                reported == w
                    || reported
                        .strip_prefix(w.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text.split('\0').filter(|f| !f.is_empty());
        let mut dirty = Vec::new();
        while let Some(entry) = fields.next() {
            let (Some(xy), Some(path)) = (entry.get(..2), entry.get(3..)) else {
                continue;
            };
            let mut reported = vec![path.to_owned()];
            // A rename or copy is followed by the path it came from.
            if (xy.contains('R') || xy.contains('C'))
                && let Some(from) = fields.next()
            {
                reported.push(from.to_owned());
            }
            for r in reported {
                let p = PathBuf::from(&r);
                if covered(&r) && !dirty.contains(&p) {
                    dirty.push(p);
                }
            }
        }
        dirty.sort();
        Ok(dirty)
    }

    /// Whether a local branch of that name exists.
    pub fn branch_exists(&self, name: &str) -> Result<bool, GitError> {
        let inv = self.git([
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &format!("refs/heads/{name}"),
        ]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(inv.failed(&out)),
        }
    }

    /// Refuses names git would not accept for a new branch.
    pub fn check_branch_name(&self, name: &str) -> Result<(), GitError> {
        let invalid = || GitError::InvalidBranchName {
            name: name.to_owned(),
        };
        if name.is_empty() || name.starts_with('-') || name == "HEAD" {
            return Err(invalid());
        }
        let inv = self.git(["check-ref-format", "--branch", name]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(()),
            Some(_) => Err(invalid()),
            None => Err(inv.failed(&out)),
        }
    }

    /// The content of `path` (relative to the top level) at `rev`, or `None`
    /// when no file exists there at that revision.
    pub fn show_file(&self, rev: &str, path: &Path) -> Result<Option<String>, GitError> {
        let commit = self
            .resolve_commit(rev)?
            .ok_or_else(|| GitError::UnknownRevision {
                rev: rev.to_owned(),
            })?;
        self.blob_at(&commit, path)
    }

    /// The file at a commit known to exist.
    fn blob_at(&self, commit: &str, path: &Path) -> Result<Option<String>, GitError> {
        let spec = format!("{commit}:{}", slash_path(path));
        let kind = self.git(["cat-file", "-t", &spec]).output()?;
        if !kind.status.success() || stdout_line(&kind) != "blob" {
            return Ok(None);
        }
        let out = self.git(["cat-file", "blob", &spec]).run()?;
        String::from_utf8(out.stdout)
            .map(Some)
            .map_err(|_| GitError::NotUtf8 {
                what: format!("{rev}:{}", slash_path(path), rev = commit),
            })
    }

    /// Every committed version of `path` (relative to the top level), oldest
    /// first, following renames: `(commit, content)` for each commit reachable
    /// from `HEAD` that changed the file. Commits that deleted it are left out.
    pub fn file_history(&self, path: &Path) -> Result<Vec<(String, String)>, GitError> {
        if self.resolve_commit("HEAD")?.is_none() {
            return Ok(Vec::new());
        }
        let out = self
            .git([
                OsString::from("log"),
                OsString::from("--follow"),
                OsString::from("--format=%x01%H"),
                OsString::from("--name-only"),
                OsString::from("-z"),
                OsString::from("--"),
                OsString::from(slash_path(path)),
            ])
            .run()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Newest first: each record is "\x01<commit>\0\n<path>\0" (no path for a merge).
        let mut newest_first: Vec<(String, String)> = Vec::new();
        let mut name = slash_path(path);
        for record in text.split('\u{1}').filter(|r| !r.is_empty()) {
            let (commit, rest) = record.split_once('\0').unwrap_or((record, ""));
            if let Some(p) = rest
                .trim_start_matches('\n')
                .split('\0')
                .find(|p| !p.is_empty())
            {
                p.clone_into(&mut name);
            }
            newest_first.push((commit.trim().to_owned(), name.clone()));
        }
        let mut history = Vec::new();
        for (commit, name) in newest_first.into_iter().rev() {
            if let Some(content) = self.blob_at(&commit, Path::new(&name))? {
                history.push((commit, content));
            }
        }
        Ok(history)
    }

    /// Checks that git can make a commit here: an author and a committer identity are configured.
    pub fn check_identity(&self) -> Result<(), GitError> {
        for var in ["GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"] {
            let out = self.git(["var", var]).output()?;
            if !out.status.success() {
                let missing = if self.config("user.email")?.is_none() {
                    Some("user.email")
                } else if self.config("user.name")?.is_none() {
                    Some("user.name")
                } else {
                    None
                };
                return Err(GitError::NoIdentity {
                    missing,
                    stderr: stderr_of(&out),
                });
            }
        }
        Ok(())
    }

    /// A config value, or `None` when unset.
    pub fn config(&self, key: &str) -> Result<Option<String>, GitError> {
        let inv = self.git(["config", "--get", key]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(Some(stdout_line(&out))),
            Some(1) => Ok(None),
            _ => Err(inv.failed(&out)),
        }
    }

    /// Fetches `branch` from `remote` (its remote-tracking ref is updated). git
    /// may ask for credentials on the terminal.
    pub fn fetch(&self, remote: &str, branch: &str) -> Result<(), GitError> {
        let inv = Invocation {
            dir: &self.root,
            args: os_args([
                "fetch",
                "--quiet",
                "--",
                remote,
                &format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}"),
            ]),
            interactive: true,
        };
        let out = inv.output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(inv.failed(&out))
        }
    }

    /// Whether `commit` is contained in `rev` (an ancestor of it, or it).
    pub fn contains(&self, rev: &str, commit: &str) -> Result<bool, GitError> {
        let inv = self.git([
            "merge-base",
            "--is-ancestor",
            "--end-of-options",
            commit,
            rev,
        ]);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(inv.failed(&out)),
        }
    }

    /// Whether `paths` are the same at `a` and `b` (so a squash or rebase merge
    /// of `a` into `b` counts). `None` when a revision is not known here.
    pub fn same_content(
        &self,
        a: &str,
        b: &str,
        paths: &[String],
    ) -> Result<Option<bool>, GitError> {
        for rev in [a, b] {
            if self.resolve_commit(rev)?.is_none() {
                return Ok(None);
            }
        }
        let mut args: Vec<String> = vec![
            "diff".into(),
            "--quiet".into(),
            "--end-of-options".into(),
            a.into(),
            b.into(),
            "--".into(),
        ];
        args.extend(paths.iter().cloned());
        let inv = self.git(args);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(Some(true)),
            Some(1) => Ok(Some(false)),
            _ => Err(inv.failed(&out)),
        }
    }

    /// Pushes `branch` to `remote` and sets it as the branch's upstream. git
    /// may ask for credentials on the terminal.
    pub fn push(&self, remote: &str, branch: &str) -> Result<(), GitError> {
        if !self.has_remote(remote)? {
            return Err(GitError::NoRemote {
                remote: remote.to_owned(),
            });
        }
        let inv = Invocation {
            dir: &self.root,
            args: os_args([
                "push",
                "--set-upstream",
                "--",
                remote,
                &format!("refs/heads/{branch}:refs/heads/{branch}"),
            ]),
            interactive: true,
        };
        let out = inv.output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(GitError::PushFailed {
                remote: remote.to_owned(),
                branch: branch.to_owned(),
                command: inv.command_line(),
                status: out.status,
                stderr: stderr_of(&out),
            })
        }
    }

    /// A handle on a working tree whose top level is known to be `dir` (a
    /// linked worktree this module made).
    pub(crate) fn at_top_level(dir: &Path) -> Git {
        Git {
            root: dir.to_owned(),
        }
    }

    /// Runs a git command here; its stdout without the final newline.
    pub(crate) fn run<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self.git(args).run()?;
        Ok(stdout_line(&out))
    }

    /// Runs a yes/no git command here: exit 0 is yes, exit 1 is no.
    pub(crate) fn test<I, S>(&self, args: I) -> Result<bool, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let inv = self.git(args);
        let out = inv.output()?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(inv.failed(&out)),
        }
    }
}

impl fmt::Display for BaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.commit.get(..12).unwrap_or(&self.commit);
        write!(f, "{} ({short})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_end_the_message() {
        let e = GitError::NoIdentity {
            missing: Some("user.email"),
            stderr: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "no user.email configured, so git cannot commit\nhint: git config user.email you@example.com"
        );
        let e = GitError::NotARepository {
            path: PathBuf::from("/tmp/x"),
            stderr: "fatal: not a git repository".to_owned(),
        };
        assert!(
            e.to_string()
                .ends_with("\nhint: run inside your Flux repository or pass --repo")
        );
    }

    #[test]
    fn quoting_for_display() {
        assert_eq!(quote(OsStr::new("rev-parse")), "rev-parse");
        assert_eq!(quote(OsStr::new("a b")), "'a b'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }

    #[test]
    fn slash_paths() {
        assert_eq!(slash_path(Path::new("a/b/c.yaml")), "a/b/c.yaml");
        assert_eq!(slash_path(Path::new("c.yaml")), "c.yaml");
    }
}
