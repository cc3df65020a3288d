//! The repository as read from disk: every YAML document with the file and
//! line it came from, and the databases found in it.
//!
//! Reading is the only IO here; discovery is a pure function of what was read.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::config::{Config, ConfigError, Env};
use crate::yaml::{self, Node};

/// Files larger than this are not YAML we care about.
const MAX_FILE: u64 = 4 << 20;

/// One YAML document in the repository.
#[derive(Debug, Clone)]
pub struct Doc {
    /// File, relative to the repository root.
    pub file: PathBuf,
    /// Index of the document in its file.
    pub index: usize,
    /// The parsed tree, with positions.
    pub node: Node,
    /// The same as JSON.
    pub value: Value,
}

impl Doc {
    /// `apiVersion`.
    #[must_use]
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// `kind`.
    #[must_use]
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// `metadata.name`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Whether this is `kind` in API group `group` (any version).
    #[must_use]
    pub fn is(&self, group: &str, kind: &str) -> bool {
        self.kind() == kind && self.api_version().split('/').next() == Some(group)
    }

    /// The line of a dotted path in this document (or of its nearest
    /// existing ancestor).
    #[must_use]
    pub fn line(&self, path: &str) -> usize {
        self.node.line_of(path)
    }

    /// `file:line` for a path.
    #[must_use]
    pub fn at(&self, path: &str) -> String {
        format!("{}:{}", self.file.display(), self.line(path))
    }
}

/// A YAML file that did not parse.
#[derive(Debug, Clone, Serialize)]
pub struct BadFile {
    /// File, relative to the root.
    pub file: PathBuf,
    /// Parser message.
    pub error: String,
    /// Line of the error.
    pub line: usize,
}

/// Everything read from the repository.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Absolute root.
    pub root: PathBuf,
    /// `.cnpg-ops.toml`, or the defaults.
    pub config: Config,
    /// Every YAML document, in path order.
    pub docs: Vec<Doc>,
    /// Files that are not valid YAML.
    pub bad_files: Vec<BadFile>,
    /// Every file path (relative), YAML or not, in order.
    pub files: Vec<PathBuf>,
}

/// The repository could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Root missing or unreadable.
    #[error(
        "cannot read the repository at {path}: {source}\nhint: run inside your Flux repository or pass --repo"
    )]
    Io {
        /// Path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Bad config.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Repo {
    /// Reads every YAML file under `root` (skipping `.git` and hidden folders).
    pub fn load(root: &Path) -> Result<Self, RepoError> {
        let root = root.canonicalize().map_err(|source| RepoError::Io {
            path: root.to_owned(),
            source,
        })?;
        let config = Config::load(&root)?;
        let mut files = Vec::new();
        walk(&root, &root, &mut files).map_err(|source| RepoError::Io {
            path: root.clone(),
            source,
        })?;
        files.sort();
        let mut repo = Repo {
            root,
            config,
            docs: Vec::new(),
            bad_files: Vec::new(),
            files: Vec::new(),
        };
        for rel in files {
            let is_yaml = rel.extension().is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml {
                let path = repo.root.join(&rel);
                let too_big = std::fs::metadata(&path).map_or(true, |m| m.len() > MAX_FILE);
                if !too_big && let Ok(text) = std::fs::read_to_string(&path) {
                    repo.add_text(&rel, &text);
                }
            }
            repo.files.push(rel);
        }
        Ok(repo)
    }

    /// Builds a repository from in-memory files (for tests and plans).
    #[must_use]
    pub fn from_files(root: &Path, config: Config, files: &[(&str, &str)]) -> Self {
        let mut repo = Repo {
            root: root.to_owned(),
            config,
            docs: Vec::new(),
            bad_files: Vec::new(),
            files: Vec::new(),
        };
        let mut sorted: Vec<_> = files.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (path, text) in sorted {
            repo.add_text(Path::new(path), text);
            repo.files.push(PathBuf::from(path));
        }
        repo
    }

    /// The repository as it reads once `changes` (path, new text or None
    /// for a deletion) are written; the config is kept.
    #[must_use]
    pub fn with_changes(&self, changes: &[(PathBuf, Option<String>)]) -> Repo {
        let rewritten = |f: &Path| changes.iter().any(|(p, _)| p == f);
        let mut repo = Repo {
            root: self.root.clone(),
            config: self.config.clone(),
            docs: self
                .docs
                .iter()
                .filter(|d| !rewritten(&d.file))
                .cloned()
                .collect(),
            bad_files: self
                .bad_files
                .iter()
                .filter(|b| !rewritten(&b.file))
                .cloned()
                .collect(),
            files: self
                .files
                .iter()
                .filter(|f| !rewritten(f))
                .cloned()
                .collect(),
        };
        for (path, text) in changes {
            if let Some(text) = text {
                if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    repo.add_text(path, text);
                }
                repo.files.push(path.clone());
            }
        }
        repo.files.sort();
        repo.docs
            .sort_by(|a, b| a.file.cmp(&b.file).then(a.index.cmp(&b.index)));
        repo
    }

    fn add_text(&mut self, rel: &Path, text: &str) {
        match yaml::parse(text) {
            Ok(docs) => {
                for (index, d) in docs.into_iter().enumerate() {
                    if let Some(node) = d.root {
                        let value = node.to_json();
                        self.docs.push(Doc {
                            file: rel.to_owned(),
                            index,
                            node,
                            value,
                        });
                    }
                }
            }
            Err(e) => self.bad_files.push(BadFile {
                file: rel.to_owned(),
                error: e.message.clone(),
                line: e.line,
            }),
        }
    }

    /// Documents in files under `folder` (relative).
    pub fn docs_in<'a>(&'a self, folder: &Path) -> impl Iterator<Item = &'a Doc> + 'a {
        let folder = folder.to_owned();
        self.docs
            .iter()
            .filter(move |d| d.file.starts_with(&folder))
    }

    /// Documents of a kind in an API group.
    pub fn docs_of<'a>(
        &'a self,
        group: &'a str,
        kind: &'a str,
    ) -> impl Iterator<Item = &'a Doc> + 'a {
        self.docs.iter().filter(move |d| d.is(group, kind))
    }

    /// The text of a file, relative to the root.
    pub fn read(&self, rel: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(self.root.join(rel))
    }

    /// The env settings for `env`.
    #[must_use]
    pub fn env(&self, env: &str) -> Env {
        self.config.env(env)
    }

    /// Every `(env, svc, folder)` whose folder matches a database template and
    /// holds at least one file.
    #[must_use]
    pub fn database_folders(&self) -> Vec<(String, String, PathBuf)> {
        let mut out = Vec::new();
        for (only_env, template) in self.config.database_templates() {
            for file in &self.files {
                if let Some((env, svc, folder)) = match_template(&template, file) {
                    if only_env.as_ref().is_some_and(|e| *e != env) {
                        continue;
                    }
                    // An env with its own template is not read through the default.
                    if only_env.is_none()
                        && self
                            .config
                            .env
                            .get(&env)
                            .is_some_and(|s| s.databases.is_some())
                    {
                        continue;
                    }
                    if !out.iter().any(|(e, s, _)| *e == env && *s == svc) {
                        out.push((env, svc, folder));
                    }
                }
            }
        }
        out.sort();
        out
    }
}

/// The repository root for `start`: the nearest ancestor holding
/// `.cnpg-ops.toml` or `.git`, else `start` itself.
#[must_use]
pub fn find_root(start: &Path) -> PathBuf {
    start
        .ancestors()
        .find(|d| d.join(super::config::FILE_NAME).is_file() || d.join(".git").exists())
        .unwrap_or(start)
        .to_owned()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') && name != ".cnpg-ops.toml" {
            continue;
        }
        let ft = entry.file_type()?;
        let path = entry.path();
        if ft.is_dir() {
            walk(root, &path, out)?;
        } else if ft.is_file()
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_owned());
        }
    }
    Ok(())
}

/// Matches a file path against a folder template such as
/// `fluxcd/databases/{env}/{svc}`: the file must sit directly in the folder.
fn match_template(template: &str, file: &Path) -> Option<(String, String, PathBuf)> {
    let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
    let comps: Vec<String> = file
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if comps.len() != parts.len() + 1 {
        return None;
    }
    let (mut env, mut svc) = (None, None);
    for (p, c) in parts.iter().zip(&comps) {
        match *p {
            "{env}" => env = Some(c.clone()),
            "{svc}" => svc = Some(c.clone()),
            literal if literal == c => {}
            _ => return None,
        }
    }
    let folder: PathBuf = comps[..parts.len()].iter().collect();
    Some((env?, svc?, folder))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_matching() {
        let m = match_template(
            "fluxcd/databases/{env}/{svc}",
            Path::new("fluxcd/databases/prod/foo/database.yaml"),
        );
        assert_eq!(
            m,
            Some((
                "prod".into(),
                "foo".into(),
                PathBuf::from("fluxcd/databases/prod/foo")
            ))
        );
        assert!(
            match_template(
                "fluxcd/databases/{env}/{svc}",
                Path::new("fluxcd/databases/prod/x.yaml")
            )
            .is_none()
        );
        assert!(
            match_template(
                "fluxcd/databases/{env}/{svc}",
                Path::new("fluxcd/other/prod/foo/a.yaml")
            )
            .is_none()
        );
    }
}
