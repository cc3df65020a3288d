//! `cnpg-ops lint`: static checks of the GitOps repository.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::findings::Severity;
use crate::cli::{GlobalArgs, LintArgs, OutputFormat};
use crate::commands::deliver;
use crate::exit::{FINDINGS, Failure, OK};
use crate::gitops::changes::{ChangeSet, FileChange};
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
    deliver::check_flags(&a.write)?;
    if a.fix {
        return fix(&repo.root, &limit, a, p);
    }
    if a.write.mode.is_some() || a.write.push || a.write.branch.is_some() || a.write.base.is_some()
    {
        return Err(Failure::usage(
            "--mode, --push, --branch and --base deliver fixes",
            Some("add --fix".to_owned()),
        ));
    }
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

/// A fix made (or skipped) by `lint --fix`.
#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    /// Rule id.
    pub rule: &'static str,
    /// File, relative to the root.
    pub file: PathBuf,
    /// Line of the finding.
    pub line: usize,
    /// What the fix does.
    pub summary: String,
    /// Why it was not made, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Lints the repository at `root` and turns the mechanical fixes into one
/// change set.
fn plan_fixes(root: &Path, limit: &Path) -> Result<(ChangeSet, Vec<FixReport>), String> {
    let repo = Repo::load(root).map_err(|e| e.to_string())?;
    let found = discover::discover(&repo);
    let git = Git::discover(root).ok();
    let findings = lint::run(&Context {
        repo: &repo,
        discovery: &found,
        git: git.as_ref(),
    });
    let mut texts: Vec<(PathBuf, String, String)> = Vec::new();
    let mut reports = Vec::new();
    for f in findings.iter().filter(|f| f.file.starts_with(limit)) {
        let Some(fix) = &f.fix else { continue };
        let idx = if let Some(i) = texts.iter().position(|(p, _, _)| *p == fix.file) {
            i
        } else {
            {
                let text = repo
                    .read(&fix.file)
                    .map_err(|e| format!("{}: {e}", fix.file.display()))?;
                texts.push((fix.file.clone(), text.clone(), text));
                texts.len() - 1
            }
        };
        let skipped = match fix.apply(&texts[idx].2) {
            Ok(after) => {
                texts[idx].2 = after;
                None
            }
            Err(e) => Some(e.to_string()),
        };
        reports.push(FixReport {
            rule: f.rule,
            file: f.file.clone(),
            line: f.line,
            summary: fix.summary.clone(),
            skipped,
        });
    }
    let made: Vec<&FixReport> = reports.iter().filter(|r| r.skipped.is_none()).collect();
    let body = made
        .iter()
        .map(|r| {
            format!(
                "- {} ({}:{}): {}",
                r.rule,
                r.file.display(),
                r.line,
                r.summary
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let set = ChangeSet {
        changes: texts
            .into_iter()
            .map(|(path, before, after)| FileChange {
                path,
                before: Some(before),
                after: Some(after),
            })
            .collect(),
        subject: format!(
            "Fix {} lint finding{} found by cnpg-ops lint",
            made.len(),
            if made.len() == 1 { "" } else { "s" }
        ),
        body,
    };
    Ok((set, reports))
}

fn fix(root: &Path, limit: &Path, a: &LintArgs, p: &Printer) -> Result<u8, Failure> {
    let (_, reports) = plan_fixes(root, limit).map_err(|e| Failure::usage(e, None))?;
    if p.format == OutputFormat::Text {
        for r in &reports {
            let line = format!(
                "{}:{}: [{}] {}",
                r.file.display(),
                r.line,
                r.rule,
                r.summary
            );
            match &r.skipped {
                None => p.info(&line),
                Some(why) => p.warn(&format!("{line}: not fixed: {why}")),
            }
        }
    }
    let opts = deliver::options(&a.write, "lint-fix");
    deliver::deliver(root, &opts, p, &reports, |r: &Path| {
        plan_fixes(r, limit).map(|(set, _)| set)
    })
}
