//! `cnpg-ops new`: a new database folder, delivered like every other change.

use std::cell::RefCell;
use std::path::Path;

use serde::Serialize;

use crate::cli::OutputFormat;
use crate::cli::{CniArg, GlobalArgs, NewArgs};
use crate::exit::Failure;
use crate::gitops::config::Cni;
use crate::gitops::provision::{self, NewRequest};
use crate::output::{Printer, sanitize};

use super::deliver;

/// The JSON details of `new`.
#[derive(Serialize)]
struct Details<'a> {
    env: &'a str,
    svc: &'a str,
    from: Option<&'a str>,
    vector: bool,
    /// What the commit message says: what was made, the Secrets to create
    /// and how, what is left to do by hand (of the last plan made).
    message: RefCell<String>,
}

/// The sops that encrypts placeholder Secrets: `CNPG_OPS_SOPS` (empty: none),
/// else `sops` on PATH.
fn sops_program() -> Option<std::path::PathBuf> {
    match std::env::var_os("CNPG_OPS_SOPS") {
        Some(p) if p.is_empty() => None,
        Some(p) => Some(p.into()),
        None => std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|d| d.join("sops"))
            .find(|p| p.is_file()),
    }
}

/// Runs `cnpg-ops new`.
pub fn run(a: &NewArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    deliver::check_flags(&a.write)?;
    let root = super::repo_root(g)?;
    let req = NewRequest {
        env: a.env.clone(),
        svc: a.svc.clone(),
        from: a.from.clone(),
        vector: a.vector,
        cni: a.cni.map(|c| match c {
            CniArg::Cilium => Cni::Cilium,
            CniArg::Vanilla => Cni::Vanilla,
            CniArg::None => Cni::None,
        }),
        app_namespace: a.app_namespace.clone(),
        sops: sops_program(),
    };
    let opts = deliver::options(&a.write, &format!("new-{}-{}", a.env, a.svc));
    let details = Details {
        env: &a.env,
        svc: &a.svc,
        from: a.from.as_deref(),
        vector: a.vector,
        message: RefCell::new(String::new()),
    };
    // The plan runs once on the checkout and, to write, once more where the
    // commit is made: its last message is the one shown.
    let code = deliver::deliver(&root, &opts, p, &details, |r: &Path| {
        let planned = provision::new_database(r, &req)?;
        *details.message.borrow_mut() = format!("{}\n\n{}", planned.subject, planned.body);
        Ok::<_, crate::gitops::plan::PlanError>(planned)
    })?;
    if p.format == OutputFormat::Text {
        p.out(&format!("\n{}\n", sanitize(&details.message.borrow())));
    }
    Ok(code)
}
