//! `cnpg-ops pitr`, `cnpg-ops clone` and `cnpg-ops playbook`: the runbooks
//! that end in a git commit, driven by the engine in `runbook`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::catalog::target::TimelineChoice;
use crate::catalog::time::Zone;
use crate::cli::{
    BackupArgs, CloneArgs, GlobalArgs, OutputFormat, PitrArgs, PlaybookCommand, RunArgs, WriteArgs,
    WriteMode,
};
use crate::commands::deliver;
use crate::exit::{Failure, OK};
use crate::gitops::changes::Mode;
use crate::gitops::plan::RecoveryRequest;
use crate::gitops::repo::{self, Repo};
use crate::output::{Printer, text};
use crate::runbook::backup::{BackupRun, BackupSettings};
use crate::runbook::engine::{self, Options};
use crate::runbook::journal::{Journal, state_dir};
use crate::runbook::playbook;
use crate::runbook::recovery::{Kind, RecoveryRun, Settings, target_for};

fn zone(g: &GlobalArgs) -> Result<Zone, Failure> {
    g.tz.parse()
        .map_err(|e: String| Failure::usage(format!("--tz: {e}"), None))
}

fn timeline(s: &str) -> Result<(TimelineChoice, Option<String>), Failure> {
    match s {
        "latest" => Ok((TimelineChoice::Latest, None)),
        n => n
            .parse::<u32>()
            .ok()
            .filter(|t| *t > 0)
            .map(|t| (TimelineChoice::Id(t), Some(t.to_string())))
            .ok_or_else(|| {
                Failure::usage(
                    format!(
                        "--timeline `{n}` is not a timeline; expected latest or a number from 1"
                    ),
                    None,
                )
            }),
    }
}

fn root(g: &GlobalArgs) -> Result<PathBuf, Failure> {
    match &g.repo {
        Some(p) => Ok(p.clone()),
        None => std::env::current_dir()
            .map(|d| repo::find_root(&d))
            .map_err(|e| Failure::usage(format!("cannot read the current directory: {e}"), None)),
    }
}

fn canonical(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_owned())
}

/// env and svc from the current directory, when it is (inside) a database folder.
fn infer_env_svc(root: &Path) -> Option<(String, String)> {
    let cwd = std::env::current_dir().ok()?.canonicalize().ok()?;
    let repo = Repo::load(root).ok()?;
    repo.database_folders()
        .into_iter()
        .find(|(_, _, folder)| cwd.starts_with(repo.root.join(folder)))
        .map(|(e, s, _)| (e, s))
}

fn options(run: &RunArgs, write: &WriteArgs) -> Result<Options, Failure> {
    deliver::check_flags(write)?;
    Ok(Options {
        dry_run: run.dry_run || write.mode == Some(WriteMode::DryRun),
        yes: run.yes,
        restart: run.restart,
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin())
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    })
}

fn write_options(write: &WriteArgs, branch: String) -> crate::gitops::changes::WriteOptions {
    let mut o = deliver::options(write, "");
    o.branch = write.branch.clone().unwrap_or(branch);
    if o.mode == Mode::DryRun {
        o.mode = Mode::Write; // the engine plans write steps in a dry run; it never applies them
    }
    o
}

async fn execute(
    name: &str,
    settings: Settings,
    args: serde_json::Value,
    opts: Options,
    p: &Printer,
) -> Result<u8, Failure> {
    let book =
        playbook::get(name).ok_or_else(|| Failure::usage(format!("no playbook {name}"), None))?;
    // A check or a dry run changes nothing, so there is nothing to resume.
    let mut journal = if opts.dry_run || settings.write.mode == Mode::Check {
        None
    } else {
        Some(
            Journal::open(&state_dir(), name, &args, opts.restart)
                .map_err(|e| Failure::usage(e, None))?,
        )
    };
    let mut run = RecoveryRun::new(settings, p);
    engine::run(&book, &mut run, journal.as_mut(), opts, p).await
}

/// env and svc from the flags, else from the database folder the command runs in.
fn env_svc(
    root: &Path,
    env: Option<&String>,
    svc: Option<&String>,
) -> Result<(String, String), Failure> {
    let inferred = if env.is_some() && svc.is_some() {
        None
    } else {
        infer_env_svc(root)
    };
    let env = env
        .cloned()
        .or_else(|| inferred.as_ref().map(|x| x.0.clone()));
    let svc = svc
        .cloned()
        .or_else(|| inferred.as_ref().map(|x| x.1.clone()));
    match (env, svc) {
        (Some(e), Some(s)) => Ok((e, s)),
        _ => Err(Failure::usage(
            "which database? pass --env and --svc, or run inside its folder",
            Some("cnpg-ops ls lists them".to_owned()),
        )),
    }
}

/// Runs `backup`.
pub async fn backup(a: &BackupArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = zone(g)?;
    let root = root(g)?;
    let (env, svc) = env_svc(&root, a.env.as_ref(), a.svc.as_ref())?;
    let poll = playbook::parse_duration(&a.poll)
        .map_err(|e| Failure::usage(format!("--poll: {e}"), None))?;
    let timeout = playbook::parse_duration(&a.timeout)
        .map_err(|e| Failure::usage(format!("--timeout: {e}"), None))?;
    let mut book =
        playbook::get("backup").ok_or_else(|| Failure::usage("no playbook backup", None))?;
    for s in &mut book.steps {
        if s.action == "wait-backup" {
            s.timeout.clone_from(&a.timeout);
        }
    }
    let opts = Options {
        dry_run: a.run.dry_run,
        yes: a.run.yes,
        restart: a.run.restart,
        interactive: std::io::IsTerminal::is_terminal(&std::io::stdin())
            && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let args = json!({"env": env, "svc": svc, "context": a.context, "repo": canonical(&root)});
    let mut journal = if opts.dry_run {
        None
    } else {
        Some(
            Journal::open(&state_dir(), "backup", &args, opts.restart)
                .map_err(|e| Failure::usage(e, None))?,
        )
    };
    let settings = BackupSettings {
        root,
        env,
        svc,
        context: a.context.clone(),
        wait: a.wait,
        poll,
        // WAL follows a backup within minutes; never longer than the whole wait.
        confirm_timeout: timeout.min(std::time::Duration::from_mins(10)),
        endpoint_url: a.run.endpoint_url.clone(),
        concurrency: a.run.concurrency,
        zone,
    };
    let mut run = BackupRun::new(settings, p);
    engine::run(&book, &mut run, journal.as_mut(), opts, p).await
}

/// What pitr and clone share once their arguments are read.
struct Common<'a> {
    root: PathBuf,
    zone: Zone,
    run: &'a RunArgs,
    write: &'a WriteArgs,
    to: &'a str,
    timeline: &'a str,
    printer: &'a Printer,
}

impl Common<'_> {
    /// The settings of a run from `source` to `dest`, with its branch name
    /// (`{label}` is replaced by the target's label).
    fn settings(
        &self,
        kind: Kind,
        source: (&str, &str),
        dest: (&str, &str),
        dest_cluster: Option<String>,
        branch: &str,
        fallback_initdb: bool,
    ) -> Result<Settings, Failure> {
        let (target, render_target, words, label) = target_for(self.to, self.zone)?;
        announce_target(self.to, &words, self.zone, self.printer);
        let (tl, tli) = timeline(self.timeline)?;
        Ok(Settings {
            kind,
            root: self.root.clone(),
            write: write_options(self.write, branch.replace("{label}", &label)),
            request: RecoveryRequest {
                source_env: source.0.to_owned(),
                source_svc: source.1.to_owned(),
                dest_env: dest.0.to_owned(),
                dest_svc: dest.1.to_owned(),
                dest_cluster,
                target: render_target,
                backup_id: None,
                timeline: tli,
                label,
            },
            target,
            timeline: tl,
            target_words: words,
            zone: self.zone,
            endpoint_url: self.run.endpoint_url.clone(),
            concurrency: self.run.concurrency,
            now: self.run.now.clone(),
            fallback_initdb,
        })
    }
}

/// Runs `pitr`.
pub async fn pitr(a: &PitrArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = zone(g)?;
    let opts = options(&a.run, &a.write)?;
    let root = root(g)?;
    let (env, svc) = env_svc(&root, a.env.as_ref(), a.svc.as_ref())?;
    let common = Common {
        root: root.clone(),
        zone,
        run: &a.run,
        write: &a.write,
        to: &a.to,
        timeline: &a.timeline,
        printer: p,
    };
    let settings = common.settings(
        Kind::Pitr,
        (&env, &svc),
        (&env, &svc),
        a.into.clone(),
        &format!("cnpg-ops/pitr-{env}-{svc}-{{label}}"),
        false,
    )?;
    let words = settings.target_words.clone();
    let args = json!({
        "repo": canonical(&root), "env": env, "svc": svc, "to": words, "timeline": a.timeline,
        "into": a.into, "branch": a.write.branch, "base": a.write.base, "push": a.write.push,
    });
    execute("pitr", settings, args, opts, p).await
}

/// Runs `clone`.
pub async fn clone(a: &CloneArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = zone(g)?;
    let opts = options(&a.run, &a.write)?;
    let root = root(g)?;
    if a.src_env == a.dst_env {
        return Err(Failure::usage(
            format!("SRC_ENV and DST_ENV are both `{}`", a.src_env),
            Some("to restore beside the original in the same env, use cnpg-ops pitr".into()),
        ));
    }
    let common = Common {
        root: root.clone(),
        zone,
        run: &a.run,
        write: &a.write,
        to: &a.to,
        timeline: &a.timeline,
        printer: p,
    };
    let settings = common.settings(
        Kind::Clone,
        (&a.src_env, &a.svc),
        (&a.dst_env, &a.svc),
        None,
        &format!("cnpg-ops/clone-{}-{}-{}", a.src_env, a.dst_env, a.svc),
        a.fallback_initdb,
    )?;
    let words = settings.target_words.clone();
    let args = json!({
        "repo": canonical(&root), "src": a.src_env, "dst": a.dst_env, "svc": a.svc, "to": words,
        "timeline": a.timeline, "fallback_initdb": a.fallback_initdb, "branch": a.write.branch,
        "base": a.write.base, "push": a.write.push,
    });
    execute("clone", settings, args, opts, p).await
}

/// Prints how a target without an offset was read.
fn announce_target(given: &str, resolved: &str, zone: Zone, p: &Printer) {
    let has_offset = given.ends_with('Z')
        || given.ends_with('z')
        || given.rfind(['+', '-']).is_some_and(|i| i > 10);
    if given.contains(':') && !has_offset && p.format == OutputFormat::Text {
        p.warn(&format!(
            "`{given}` has no offset; read in {zone} as {resolved}"
        ));
    }
}

/// Runs `playbook list|show`.
pub fn playbooks(cmd: &PlaybookCommand, p: &Printer) -> Result<u8, Failure> {
    match cmd {
        PlaybookCommand::List => {
            let all = playbook::all();
            if p.format == OutputFormat::Json {
                p.json(&json!({"schema_version": 1, "playbooks": all}));
            } else {
                p.out(&text::playbook_list(p, &all));
            }
        }
        PlaybookCommand::Show { name } => {
            let book = playbook::get(name).ok_or_else(|| {
                Failure::usage(
                    format!("no playbook `{name}`"),
                    Some(format!(
                        "one of: {}",
                        playbook::all()
                            .iter()
                            .map(|b| b.name.clone())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                )
            })?;
            if p.format == OutputFormat::Json {
                p.json(&json!({"schema_version": 1, "playbook": book}));
            } else {
                p.out(&text::playbook_show(p, &book));
            }
        }
    }
    Ok(OK)
}
