//! `cnpg-ops lint`: static checks of the GitOps repository.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::findings::Severity;
use crate::cli::{GlobalArgs, LintArgs, OutputFormat};
use crate::exit::{FINDINGS, Failure, OK};
use crate::gitops::discover;
use crate::gitops::git::Git;
use crate::gitops::repo::{self, Repo};
use crate::lint::{self, Context, LintFinding, Rule};
use crate::output::{Printer, text};

/// Version tag of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// Counts by severity.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Infos.
    pub infos: usize,
    /// YAML files read.
    pub files: usize,
    /// Databases found.
    pub databases: usize,
}

/// `lint -o json`.
#[derive(Serialize)]
pub struct LintJson<'a> {
    /// Document version.
    pub schema_version: u32,
    /// Repository root.
    pub repo: &'a Path,
    /// Findings, by file and line.
    pub findings: &'a [LintFinding],
    /// Counts.
    pub summary: Summary,
}

/// `lint --list-rules -o json`.
#[derive(Serialize)]
pub struct RulesJson {
    /// Document version.
    pub schema_version: u32,
    /// Every rule.
    pub rules: Vec<&'static Rule>,
}

/// Runs `lint`.
pub fn run(a: &LintArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    if a.list_rules {
        if p.format == OutputFormat::Json {
            p.json(&RulesJson {
                schema_version: SCHEMA_VERSION,
                rules: lint::rules().collect(),
            });
        } else {
            p.out(&text::lint_rules(p, &lint::rules().collect::<Vec<_>>()));
        }
        return Ok(OK);
    }
    let start: PathBuf = match (&a.path, &g.repo) {
        (Some(path), _) => path.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) => std::env::current_dir()
            .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}"), None))?,
    };
    let start = start.canonicalize().map_err(|e| {
        Failure::usage(
            format!("cannot read {}: {e}", start.display()),
            Some("pass the path of your Flux repository".to_owned()),
        )
    })?;
    let root = g.repo.clone().unwrap_or_else(|| repo::find_root(&start));
    let repo = Repo::load(&root).map_err(|e| Failure::usage(e.to_string(), None))?;
    let limit = start
        .strip_prefix(&repo.root)
        .ok()
        .map(Path::to_owned)
        .unwrap_or_default();
    let found = discover::discover(&repo);
    let git = Git::discover(&repo.root).ok();
    let ctx = Context {
        repo: &repo,
        discovery: &found,
        git: git.as_ref(),
    };
    let findings: Vec<LintFinding> = lint::run(&ctx)
        .into_iter()
        .filter(|f| f.file.starts_with(&limit))
        .collect();
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let summary = Summary {
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        files: repo
            .files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .count(),
        databases: found.databases.len(),
    };
    let fail = summary.errors > 0 || (a.deny_warnings && summary.warnings > 0);
    if p.format == OutputFormat::Json {
        p.json(&LintJson {
            schema_version: SCHEMA_VERSION,
            repo: &repo.root,
            findings: &findings,
            summary,
        });
    } else {
        p.out(&text::lint(p, &findings, summary.files, summary.databases));
    }
    Ok(if fail { FINDINGS } else { OK })
}
