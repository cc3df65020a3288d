//! Delivering a planned change to the repository: the `--mode`, `--push`,
//! `--branch` and `--base` flags every writing command shares, and how the
//! outcome is printed.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::cli::{OutputFormat, WriteArgs, WriteMode};
use crate::exit::{FINDINGS, Failure, OK, USAGE};
use crate::gitops::changes::{self, ChangeSet, Mode, Outcome, WriteOptions};
use crate::gitops::git::Git;
use crate::output::{Printer, Style, sanitize};

/// The options for `changes::apply`, with the branch name defaulting to
/// `cnpg-ops/<slug>-<UTC time>`.
#[must_use]
pub fn options(a: &WriteArgs, slug: &str) -> WriteOptions {
    let mode = match a.mode.unwrap_or(WriteMode::Write) {
        WriteMode::Write => Mode::Write,
        WriteMode::Check => Mode::Check,
        WriteMode::DryRun => Mode::DryRun,
    };
    WriteOptions {
        mode,
        push: a.push,
        branch: a.branch.clone().unwrap_or_else(|| {
            format!(
                "cnpg-ops/{slug}-{}",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            )
        }),
        base: a.base.clone(),
    }
}

/// Refuses flags that make no sense for the mode.
pub fn check_flags(a: &WriteArgs) -> Result<(), Failure> {
    if a.push && a.mode.is_some_and(|m| m != WriteMode::Write) {
        return Err(Failure::usage(
            "--push only applies to --mode write",
            Some("drop --push, or use --mode write".to_owned()),
        ));
    }
    Ok(())
}

/// Runs `plan` against the repository at `root` and delivers it; prints the
/// outcome (with `extra` in the JSON) and returns the exit code.
pub fn deliver<E, F, X>(
    root: &Path,
    opts: &WriteOptions,
    p: &Printer,
    extra: &X,
    plan: F,
) -> Result<u8, Failure>
where
    E: std::fmt::Display,
    F: Fn(&Path) -> Result<ChangeSet, E>,
    X: Serialize,
{
    let git = Git::discover(root).map_err(|e| Failure::usage(e.message(), e.hint()))?;
    // The repository may be a folder inside the git work tree: plans read
    // and name files relative to it, git relative to its top level.
    let top = git
        .root()
        .canonicalize()
        .unwrap_or_else(|_| git.root().to_owned());
    let here = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    let rel = here
        .strip_prefix(&top)
        .map(Path::to_owned)
        .unwrap_or_default();
    let plan = |r: &Path| {
        plan(&r.join(&rel)).map(|mut set: ChangeSet| {
            for c in &mut set.changes {
                c.path = rel.join(&c.path);
            }
            set
        })
    };
    // A refused or failed delivery (dirty files, an existing branch, a
    // failed push) is bad input for this run, not a finding.
    let outcome = changes::apply(&git, opts, plan).map_err(|e| Failure {
        code: USAGE,
        message: e.message(),
        hint: e.hint(),
    })?;
    if p.format == OutputFormat::Json {
        p.json(&OutcomeJson {
            schema_version: 1,
            outcome: &outcome,
            details: extra,
        });
    } else {
        p.out(&text(p, &outcome));
    }
    Ok(if outcome.mode == Mode::Check && outcome.differs {
        FINDINGS
    } else {
        OK
    })
}

/// The JSON document of a delivery.
#[derive(Serialize)]
struct OutcomeJson<'a, X: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    outcome: &'a Outcome,
    details: &'a X,
}

fn text(p: &Printer, o: &Outcome) -> String {
    let mut out = String::new();
    if o.mode == Mode::DryRun && o.differs {
        out.push_str(&sanitize(&o.diff));
        if !o.diff.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    for f in &o.files {
        let _ = writeln!(
            out,
            "  {:<7} {}",
            f.kind,
            sanitize(&f.path.display().to_string())
        );
    }
    let line = o.summary();
    let style = match (o.mode, o.differs) {
        (Mode::Check, true) => Style::Bad,
        (_, false) => Style::Dim,
        _ => Style::Good,
    };
    out.push_str(&p.paint(style, &sanitize(&line)));
    out.push('\n');
    if let Some(c) = &o.commit
        && !c.pushed
    {
        let _ = writeln!(
            out,
            "  {} git push -u origin {}   (or run again with --push)",
            p.paint(Style::Dim, "next:"),
            sanitize(&c.branch)
        );
    }
    out
}
