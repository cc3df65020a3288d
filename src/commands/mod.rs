//! One module per subcommand. Each turns parsed arguments into settings,
//! drives the store and the analysis, and hands results to the printer.

pub mod audit;
pub mod catalog;
pub mod deliver;
pub mod lint;
pub mod ls;
pub mod new;
pub mod runbooks;
pub mod verify;

use chrono::{DateTime, Utc};

use crate::catalog::time::{Zone, parse_target};
use crate::cli::{Cli, Command, GlobalArgs};
use crate::exit::Failure;
use crate::output::Printer;

/// Runs the parsed command; returns the exit code.
pub async fn run(cli: Cli, printer: &Printer) -> Result<u8, Failure> {
    match cli.command {
        Command::Catalog(cmd) => catalog::run(cmd, &cli.global, printer).await,
        Command::Ls(args) => ls::run(&args, &cli.global, printer),
        Command::Lint(args) => lint::run(&args, &cli.global, printer),
        Command::Pitr(args) => runbooks::pitr(&args, &cli.global, printer).await,
        Command::Clone(args) => runbooks::clone(&args, &cli.global, printer).await,
        Command::Audit(args) => audit::run(&args, &cli.global, printer).await,
        Command::Backup(args) => runbooks::backup(&args, &cli.global, printer).await,
        Command::Reclone(args) => runbooks::reclone(&args, &cli.global, printer).await,
        Command::Playbook(cmd) => runbooks::playbooks(&cmd, printer),
        Command::New(args) => new::run(&args, &cli.global, printer),
        Command::Verify(args) => verify::run(&args, &cli.global, printer).await,
    }
}

/// The zone of `--tz`.
pub fn zone(g: &GlobalArgs) -> Result<Zone, Failure> {
    g.tz.parse()
        .map_err(|e: String| Failure::usage(format!("--tz: {e}"), None))
}

/// `--now` read in `zone`, else the current time.
pub fn now(arg: Option<&str>, zone: Zone) -> Result<DateTime<Utc>, Failure> {
    match arg {
        Some(s) => parse_target(s, zone)
            .map(|t| t.utc())
            .map_err(|e| Failure::usage(format!("--now: {e}"), None)),
        None => Ok(Utc::now()),
    }
}

/// The repository named by `--repo`, or the one around the current
/// directory.
pub fn repo_root(g: &GlobalArgs) -> Result<std::path::PathBuf, Failure> {
    match &g.repo {
        Some(p) => Ok(p.clone()),
        None => std::env::current_dir()
            .map(|d| crate::gitops::repo::find_root(&d))
            .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}"), None)),
    }
}
