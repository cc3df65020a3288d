//! `cnpg-ops pitr`, `cnpg-ops clone` and `cnpg-ops playbook`: the runbooks
//! that end in a git commit, driven by the engine in `runbook`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::catalog::target::TimelineChoice;
use crate::catalog::time::Zone;
use crate::cli::{
    BackupArgs, CloneArgs, GlobalArgs, OutputFormat, PitrArgs, PlaybookCommand, RecloneArgs,
    RunArgs, WriteArgs, WriteMode,
};
use crate::commands::deliver;
use crate::exit::{Failure, OK};
use crate::gitops::changes::Mode;
use crate::gitops::plan::RecoveryRequest;
use crate::gitops::repo::Repo;
use crate::output::{Printer, text};
use crate::runbook::backup::{BackupRun, BackupSettings};
use crate::runbook::engine::{self, Options};
use crate::runbook::journal::{Journal, state_dir};
use crate::runbook::playbook;
use crate::runbook::recovery::{Kind, LiveSettings, RecoveryRun, Settings, target_for};

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

/// The playbook `name`.
fn book(name: &str) -> Result<playbook::Playbook, Failure> {
    playbook::get(name).ok_or_else(|| Failure::usage(format!("no playbook {name}"), None))
}

async fn execute(
    book: playbook::Playbook,
    settings: Settings,
    args: serde_json::Value,
    opts: Options,
    p: &Printer,
) -> Result<u8, Failure> {
    // A check or a dry run changes nothing, so there is nothing to resume.
    let mut journal = if opts.dry_run || settings.write.mode == Mode::Check {
        None
    } else {
        Some(
            Journal::open(&state_dir(), &book.name, &args, opts.restart)
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
    let zone = super::zone(g)?;
    let root = super::repo_root(g)?;
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
            live: None,
        })
    }
}

/// Runs `pitr`.
pub async fn pitr(a: &PitrArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = super::zone(g)?;
    let opts = options(&a.run, &a.write)?;
    let root = super::repo_root(g)?;
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
    if a.in_place {
        if a.write.mode == Some(WriteMode::Check) {
            return Err(Failure::usage(
                "pitr --in-place acts on the cluster; --mode check has nothing to compare",
                Some("use --dry-run to see what it would do".to_owned()),
            ));
        }
        let mut settings = common.settings(
            Kind::Reclone,
            (&env, &svc),
            (&env, &svc),
            None,
            &format!("cnpg-ops/pitr-in-place-{env}-{svc}-{{label}}"),
            false,
        )?;
        settings.live = Some(LiveSettings {
            context: a.context.clone(),
            poll: playbook::parse_duration(&a.poll)
                .map_err(|e| Failure::usage(format!("--poll: {e}"), None))?,
            skip_backup: a.skip_backup,
        });
        let words = settings.target_words.clone();
        let args = json!({
            "repo": canonical(&root), "env": env, "svc": svc, "to": words, "timeline": a.timeline,
            "in_place": true, "skip_backup": a.skip_backup, "context": a.context,
            "branch": a.write.branch, "base": a.write.base, "push": a.write.push,
        });
        let book = with_wait_timeout(book("pitr-in-place")?, a.timeout.as_deref())?;
        return execute(book, settings, args, opts, p).await;
    }
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
    execute(book("pitr")?, settings, args, opts, p).await
}

/// The playbook with `timeout` on every step that waits on the cluster.
fn with_wait_timeout(
    mut book: playbook::Playbook,
    timeout: Option<&str>,
) -> Result<playbook::Playbook, Failure> {
    if let Some(t) = timeout {
        playbook::parse_duration(t).map_err(|e| Failure::usage(format!("--timeout: {e}"), None))?;
        for s in &mut book.steps {
            if matches!(
                s.action.as_str(),
                "create-backup"
                    | "delete-cluster"
                    | "resume-kustomization"
                    | "wait-cluster-healthy"
            ) {
                t.clone_into(&mut s.timeout);
            }
        }
    }
    Ok(book)
}

/// Runs `clone`.
pub async fn clone(a: &CloneArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = super::zone(g)?;
    let opts = options(&a.run, &a.write)?;
    let root = super::repo_root(g)?;
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
    execute(book("clone")?, settings, args, opts, p).await
}

/// Runs `reclone`: the clone's source is the database of the same service in
/// `--from`, else the one whose catalog the clone's recovery source names.
pub async fn reclone(a: &RecloneArgs, g: &GlobalArgs, p: &Printer) -> Result<u8, Failure> {
    let zone = super::zone(g)?;
    if a.write.mode == Some(WriteMode::Check) {
        return Err(Failure::usage(
            "reclone acts on the cluster; --mode check has nothing to compare",
            Some("use --dry-run to see what it would do".to_owned()),
        ));
    }
    let opts = options(&a.run, &a.write)?;
    let root = super::repo_root(g)?;
    let src_env = match &a.from {
        Some(e) => e.clone(),
        None => source_env_of(&root, &a.dst_env, &a.svc)?,
    };
    if src_env == a.dst_env {
        return Err(Failure::usage(
            format!(
                "the source and the destination are both `{}/{}`",
                src_env, a.svc
            ),
            Some("pass --from with the env the clone comes from".into()),
        ));
    }
    let poll = playbook::parse_duration(&a.poll)
        .map_err(|e| Failure::usage(format!("--poll: {e}"), None))?;
    let common = Common {
        root: root.clone(),
        zone,
        run: &a.run,
        write: &a.write,
        to: &a.to,
        timeline: &a.timeline,
        printer: p,
    };
    let mut settings = common.settings(
        Kind::Reclone,
        (&src_env, &a.svc),
        (&a.dst_env, &a.svc),
        None,
        &format!("cnpg-ops/reclone-{}-{}-{{label}}", a.dst_env, a.svc),
        false,
    )?;
    settings.live = Some(LiveSettings {
        context: a.context.clone(),
        poll,
        skip_backup: a.skip_backup,
    });
    let words = settings.target_words.clone();
    let args = json!({
        "repo": canonical(&root), "src": src_env, "dst": a.dst_env, "svc": a.svc, "to": words,
        "timeline": a.timeline, "skip_backup": a.skip_backup, "context": a.context,
        "branch": a.write.branch, "base": a.write.base, "push": a.write.push,
    });
    let book = with_wait_timeout(book("reclone")?, a.timeout.as_deref())?;
    execute(book, settings, args, opts, p).await
}

/// The env a clone was made from: the database of the same service whose
/// catalog the clone's recovery source reads, else the only other env that
/// has the service.
fn source_env_of(root: &Path, dst_env: &str, svc: &str) -> Result<String, Failure> {
    let repo = Repo::load(root).map_err(|e| Failure::usage(e.to_string(), None))?;
    let found = crate::gitops::discover::discover(&repo);
    let dest = found.find(dst_env, svc).ok_or_else(|| {
        Failure::usage(
            format!("no database `{svc}` in env `{dst_env}`: there is nothing to re-clone"),
            Some("cnpg-ops ls lists them".into()),
        )
    })?;
    let others: Vec<&crate::gitops::discover::Database> = found
        .databases
        .iter()
        .filter(|d| d.svc == svc && d.env != dst_env)
        .collect();
    let same = |a: &crate::gitops::discover::CatalogLocation,
                b: &crate::gitops::discover::CatalogLocation| {
        a.destination_path.trim_end_matches('/') == b.destination_path.trim_end_matches('/')
            && a.server_name == b.server_name
    };
    let by_catalog = dest
        .recovery
        .as_ref()
        .and_then(|r| r.catalog.as_ref())
        .and_then(|rc| {
            others
                .iter()
                .find(|d| d.catalog.as_ref().is_some_and(|c| same(c, rc)))
        });
    match (by_catalog, others.as_slice()) {
        (Some(d), _) | (None, [d]) => Ok(d.env.clone()),
        (None, []) => Err(Failure::usage(
            format!("no other env has a database `{svc}` to re-clone {dst_env}/{svc} from"),
            None,
        )),
        (None, many) => Err(Failure::usage(
            format!(
                "{dst_env}/{svc} could come from {}; say which",
                many.iter()
                    .map(|d| d.env.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Some("pass --from ENV".into()),
        )),
    }
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
