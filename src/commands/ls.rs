//! `cnpg-ops ls`: the databases in the GitOps repository and where their
//! backups live.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{GlobalArgs, LsArgs, OutputFormat};
use crate::exit::{Failure, OK};
use crate::gitops::discover::{self, Database, Problem};
use crate::gitops::repo::Repo;
use crate::output::{Printer, text};

/// Version tag of the JSON document.
pub const SCHEMA_VERSION: u32 = 1;

/// Loads the repository named by `--repo`, or the one around the current
/// directory.
pub fn load_repo(g: &GlobalArgs) -> Result<Repo, Failure> {
    Repo::load(&super::repo_root(g)?).map_err(|e| Failure::usage(e.to_string(), None))
}

/// `ls -o json`.
#[derive(Serialize)]
pub struct LsJson<'a> {
    /// Document version.
    pub schema_version: u32,
    /// Repository root.
    pub repo: PathBuf,
    /// Databases.
    pub databases: Vec<&'a Database>,
    /// Folders that could not be read as databases.
    pub problems: Vec<&'a Problem>,
}

/// Runs `ls`.
pub fn run(a: &LsArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let repo = load_repo(g)?;
    let found = discover::discover(&repo);
    let keep = |env: &str, svc: &str| {
        a.env.as_deref().is_none_or(|e| e == env) && a.svc.as_deref().is_none_or(|s| s == svc)
    };
    let databases: Vec<&Database> = found
        .databases
        .iter()
        .filter(|d| keep(&d.env, &d.svc))
        .collect();
    let problems: Vec<&Problem> = found
        .problems
        .iter()
        .filter(|d| keep(&d.env, &d.svc))
        .collect();
    if databases.is_empty() && problems.is_empty() && (a.env.is_some() || a.svc.is_some()) {
        let known: Vec<String> = found
            .databases
            .iter()
            .map(|d| format!("{}/{}", d.env, d.svc))
            .collect();
        return Err(Failure::usage(
            format!(
                "no database matches{}{} in {}",
                a.env
                    .as_ref()
                    .map(|e| format!(" --env {e}"))
                    .unwrap_or_default(),
                a.svc
                    .as_ref()
                    .map(|s| format!(" --svc {s}"))
                    .unwrap_or_default(),
                repo.root.display()
            ),
            Some(if known.is_empty() {
                "no database folders were found; check `databases` in .cnpg-ops.toml".to_owned()
            } else {
                format!("known: {}", known.join(", "))
            }),
        ));
    }
    if p.format == OutputFormat::Json {
        p.json(&LsJson {
            schema_version: SCHEMA_VERSION,
            repo: repo.root.clone(),
            databases,
            problems,
        });
    } else {
        p.out(&text::databases(p, &databases, &problems));
    }
    for b in &repo.bad_files {
        p.warn(&format!(
            "{}:{}: not valid YAML: {}",
            b.file.display(),
            b.line,
            b.error
        ));
    }
    Ok(OK)
}
