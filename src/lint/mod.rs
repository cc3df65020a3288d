//! `cnpg-ops lint`: static checks of the GitOps repository for the known
//! CloudNativePG footguns.
//!
//! Every rule has a stable id, a severity and a one-line meaning in [`RULES`]
//! (docs/lint-rules.md is generated from it). Rules are pure functions of the
//! repository as read ([`Context`]); the only IO is the optional git history
//! one rule consults. Each finding points at `file:line`, says what was found
//! and how to fix it.

pub mod cloud;
pub mod cnpg;
pub mod platform;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::catalog::findings::Severity;
use crate::gitops::discover::{Database, Discovery};
use crate::gitops::git::Git;
use crate::gitops::repo::{Doc, Repo};
use crate::yaml::Step;

/// A rule's description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable id.
    pub id: &'static str,
    /// Footgun group (1–13 in docs/lint-rules.md; 0 for schema and syntax).
    pub group: u8,
    /// Default severity.
    pub severity: Severity,
    /// What it catches, in one line.
    pub meaning: &'static str,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// Rule id.
    pub rule: &'static str,
    /// Severity.
    pub severity: Severity,
    /// File, relative to the repository root.
    pub file: PathBuf,
    /// 1-based line (0 when the finding is about a whole file or folder).
    pub line: usize,
    /// What was found.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// An edit `lint --fix` can make, when the fix is mechanical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<Fix>,
}

impl LintFinding {
    /// Attaches a mechanical fix.
    #[must_use]
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}

/// One change a fix makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixEdit {
    /// Set the value at a path (creating missing keys).
    Set(Vec<Step>, Value),
    /// Append to the sequence at a path (creating it).
    Append(Vec<Step>, Value),
}

/// A mechanical fix: edits to one document, made by `lint --fix` without
/// touching anything else in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    /// What it does, in a few words.
    pub summary: String,
    /// File, relative to the root.
    #[serde(skip)]
    pub file: PathBuf,
    /// Document index in the file.
    #[serde(skip)]
    pub doc: usize,
    /// The edits, in order.
    #[serde(skip)]
    pub edits: Vec<FixEdit>,
}

impl Fix {
    /// A fix of document `doc`.
    #[must_use]
    pub fn new(doc: &Doc, summary: impl Into<String>, edits: Vec<FixEdit>) -> Fix {
        Fix {
            summary: summary.into(),
            file: doc.file.clone(),
            doc: doc.index,
            edits,
        }
    }

    /// Applies the fix to the file's text.
    pub fn apply(&self, text: &str) -> Result<String, crate::yaml::edit::EditError> {
        let mut e = crate::yaml::edit::Editor::new(text);
        for edit in &self.edits {
            match edit {
                FixEdit::Set(path, v) => e.set(self.doc, path, v)?,
                FixEdit::Append(path, v) => e.append(self.doc, path, v)?,
            }
        }
        Ok(e.finish())
    }
}

/// What rules look at.
pub struct Context<'a> {
    /// The repository.
    pub repo: &'a Repo,
    /// The databases in it.
    pub discovery: &'a Discovery,
    /// Git, when the repository is a git work tree (for history rules).
    pub git: Option<&'a Git>,
}

impl<'a> Context<'a> {
    /// The documents of `kind` in the database's folder.
    #[must_use]
    pub fn doc_in(&self, db: &Database, group: &str, kind: &str) -> Vec<&'a Doc> {
        self.repo
            .docs_in(&db.folder)
            .filter(|d| d.is(group, kind))
            .collect()
    }

    /// The Cluster document of a database: the one discovery chose (a folder
    /// may also hold Clusters restored beside it).
    #[must_use]
    pub fn cluster_doc(&self, db: &Database) -> Option<&'a Doc> {
        let clusters = self.doc_in(db, "postgresql.cnpg.io", "Cluster");
        clusters
            .iter()
            .find(|d| d.at("") == db.cluster_file)
            .or_else(|| clusters.iter().find(|d| d.name() == db.cluster))
            .copied()
    }
}

/// Builds a finding at a document path.
#[must_use]
pub fn at(rule: &'static str, doc: &Doc, path: &str, message: String, hint: &str) -> LintFinding {
    LintFinding {
        rule,
        severity: severity(rule),
        file: doc.file.clone(),
        line: doc.line(path),
        message,
        hint: hint.to_owned(),
        fix: None,
    }
}

/// Builds a finding about a file (line may be 0).
#[must_use]
pub fn in_file(
    rule: &'static str,
    file: impl Into<PathBuf>,
    line: usize,
    message: String,
    hint: &str,
) -> LintFinding {
    LintFinding {
        rule,
        severity: severity(rule),
        file: file.into(),
        line,
        message,
        hint: hint.to_owned(),
        fix: None,
    }
}

/// The registered severity of a rule id.
///
/// # Panics
/// When the id is not registered (a test checks every emitted id).
#[must_use]
pub fn severity(rule: &str) -> Severity {
    rules().find(|r| r.id == rule).map_or_else(
        || panic!("lint rule `{rule}` is not registered"),
        |r| r.severity,
    )
}

/// A rule entry (for the per-module tables).
#[must_use]
pub const fn rule(id: &'static str, group: u8, severity: Severity, meaning: &'static str) -> Rule {
    Rule {
        id,
        group,
        severity,
        meaning,
    }
}

use Severity::Error;

/// Every rule, in documentation order.
pub fn rules() -> impl Iterator<Item = &'static Rule> {
    BASE_RULES
        .iter()
        .chain(cnpg::RULES)
        .chain(cloud::RULES)
        .chain(platform::RULES)
}

/// Rules about syntax and discovery.
const BASE_RULES: &[Rule] = &[
    rule("yaml-syntax", 0, Error, "A YAML file does not parse."),
    rule(
        "database-unreadable",
        0,
        Error,
        "A database folder has no Cluster, several, or one that does not read.",
    ),
];

/// Runs every rule.
#[must_use]
pub fn run(ctx: &Context<'_>) -> Vec<LintFinding> {
    let mut out = Vec::new();
    for b in &ctx.repo.bad_files {
        out.push(in_file(
            "yaml-syntax",
            b.file.clone(),
            b.line,
            format!("not valid YAML: {}", b.error),
            "fix the syntax; nothing else in this file was checked",
        ));
    }
    // A missing ObjectStore is reported by its own rule (group 5).
    for p in ctx
        .discovery
        .problems
        .iter()
        .filter(|p| p.code != "missing-object-store")
    {
        let (file, line) = split_at(&p.at);
        out.push(in_file(
            "database-unreadable",
            file,
            line,
            format!("{}/{}: {}", p.env, p.svc, p.message),
            "each database folder holds exactly one CloudNativePG Cluster",
        ));
    }
    cloud::check(ctx, &mut out);
    cnpg::check(ctx, &mut out);
    platform::check(ctx, &mut out);
    drop_generic_duplicates(&mut out);
    out.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
    out.dedup();
    out
}

/// Schema and webhook findings repeat what a specific rule already says when
/// both point at the same line (a malformed retentionPolicy breaks the CRD's
/// pattern too): keep the specific one, which has the better hint.
fn drop_generic_duplicates(out: &mut Vec<LintFinding>) {
    const GENERIC: &[&str] = &[
        "crd-schema",
        "crd-unknown-field",
        "webhook-rejects",
        "webhook-warns",
    ];
    let specific: std::collections::HashSet<(PathBuf, usize)> = out
        .iter()
        .filter(|f| !GENERIC.contains(&f.rule) && f.line > 0)
        .map(|f| (f.file.clone(), f.line))
        .collect();
    out.retain(|f| !GENERIC.contains(&f.rule) || !specific.contains(&(f.file.clone(), f.line)));
}

/// Splits `file:line`.
fn split_at(s: &str) -> (PathBuf, usize) {
    match s.rsplit_once(':') {
        Some((f, l)) if l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty() => {
            (PathBuf::from(f), l.parse().unwrap_or(0))
        }
        _ => (PathBuf::from(s), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_unique_and_kebab_case() {
        let mut ids: Vec<&str> = rules().map(|r| r.id).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate rule ids");
        for id in ids {
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                "{id}"
            );
        }
    }

    #[test]
    fn severities_are_looked_up() {
        assert_eq!(severity("yaml-syntax"), Severity::Error);
    }
}
