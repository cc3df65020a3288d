//! Runs a playbook: for every step, the runbook's pure plan half, then —
//! unless this is a dry run of a step that changes something — its IO apply
//! half, with a timeout, a confirmation for destructive steps, progress on a
//! terminal or JSON Lines events, and a journal that makes the run resumable.

use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::journal::{Journal, StepRecord};
use super::playbook::{Playbook, Step};
use crate::cli::OutputFormat;
use crate::exit::{FINDINGS, Failure, OK, USAGE};
use crate::output::{Printer, Style, sanitize};

/// What a step found or did: small, JSON-serialisable values kept in the
/// journal and shown in events.
pub type Facts = Map<String, Value>;

/// The pure half of a step: what it will do, and whether it may.
#[derive(Debug, Clone, Default)]
pub struct StepPlan {
    /// One line: which backup, which WAL range, which files.
    pub summary: String,
    /// More lines (a diff, the files).
    pub details: Vec<String>,
    /// Why the step must not run, when its safety precondition is not
    /// proven. A refused step stops the run, with or without `--yes`.
    pub refusal: Option<StepError>,
}

/// What an applied step reports.
#[derive(Debug, Clone, Default)]
pub struct StepOutcome {
    /// One line for people.
    pub summary: String,
    /// More lines for people (printed after the step).
    pub details: Vec<String>,
    /// Facts for the journal and events.
    pub facts: Facts,
}

/// A step that failed or refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepError {
    /// Exit code for the run.
    pub code: u8,
    /// What went wrong, naming the object.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

impl StepError {
    /// A finding: the run did its checks and the answer is no.
    pub fn finding(message: impl Into<String>, hint: Option<String>) -> Self {
        StepError {
            code: FINDINGS,
            message: message.into(),
            hint,
        }
    }

    /// Bad input.
    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Self {
        StepError {
            code: USAGE,
            message: message.into(),
            hint,
        }
    }
}

impl From<Failure> for StepError {
    fn from(f: Failure) -> Self {
        StepError {
            code: f.code,
            message: f.message,
            hint: f.hint,
        }
    }
}

/// A runbook's built-in actions.
#[allow(async_fn_in_trait)]
pub trait Runbook {
    /// The pure half: decide what the step will do from what earlier steps
    /// found. No IO beyond reading files already on disk.
    fn plan(&mut self, step: &Step) -> Result<StepPlan, StepError>;

    /// The IO half.
    async fn apply(&mut self, step: &Step, plan: &StepPlan) -> Result<StepOutcome, StepError>;

    /// A step that changed something finished in an earlier run: take back
    /// its facts and say whether what it did still holds (false: the step
    /// runs again, e.g. its branch was deleted since).
    fn resume(&mut self, step: &Step, facts: &Facts) -> Result<bool, StepError>;

    /// The action names this runbook implements.
    fn actions(&self) -> &'static [&'static str];

    /// Before the first step of a resumed run: the facts of a step an earlier
    /// run finished, so that what it left behind (say, a suspension) is
    /// known even when an earlier step fails on the way back to it.
    fn preload(&mut self, _step: &Step, _facts: &Facts) {}

    /// A step failed, timed out or was refused: the runbook may add what
    /// the person must know about the state it leaves (say, what it
    /// suspended and how to undo that).
    fn on_failure(&self, _step: &Step, err: StepError) -> StepError {
        err
    }
}

/// How the engine runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Plan every step, apply only the read-only ones.
    pub dry_run: bool,
    /// Confirm destructive steps without asking.
    pub yes: bool,
    /// Ignore an unfinished journal and start over.
    pub restart: bool,
    /// Whether a person can answer a prompt (stdin and stderr are terminals).
    pub interactive: bool,
}

/// One JSON Lines event (`-o json`).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The run starts.
    RunStarted {
        /// Playbook.
        playbook: &'a str,
        /// Journal key.
        run: &'a str,
        /// Dry run.
        dry_run: bool,
        /// Steps finished in an earlier run that are skipped.
        resumed_from: Option<&'a str>,
        /// Time.
        at: DateTime<Utc>,
    },
    /// A step starts.
    StepStarted {
        /// Step id.
        step: &'a str,
        /// Title.
        title: &'a str,
        /// Destructive.
        destructive: bool,
        /// Time.
        at: DateTime<Utc>,
    },
    /// A step planned only (dry run).
    StepPlanned {
        /// Step id.
        step: &'a str,
        /// What it would do.
        summary: &'a str,
        /// Details (a diff).
        details: &'a [String],
    },
    /// A step finished.
    StepFinished {
        /// Step id.
        step: &'a str,
        /// Milliseconds.
        duration_ms: u64,
        /// One line.
        summary: &'a str,
        /// More lines for people (caveats, next steps).
        details: &'a [String],
        /// Facts.
        facts: &'a Facts,
    },
    /// A step finished in an earlier run and is not repeated.
    StepSkipped {
        /// Step id.
        step: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// A step failed or was refused.
    StepFailed {
        /// Step id.
        step: &'a str,
        /// Milliseconds.
        duration_ms: u64,
        /// What went wrong.
        error: &'a str,
        /// What to do.
        hint: Option<&'a str>,
    },
    /// The run ended.
    Summary {
        /// Playbook.
        playbook: &'a str,
        /// `succeeded`, `failed`, `dry-run`.
        status: &'a str,
        /// Milliseconds.
        duration_ms: u64,
        /// Per step: id and status.
        steps: &'a [(String, String)],
    },
}

/// Runs `playbook` with `runbook`; returns the exit code.
pub async fn run<R: Runbook>(
    playbook: &Playbook,
    runbook: &mut R,
    journal: Option<&mut Journal>,
    opts: Options,
    p: &Printer,
) -> Result<u8, Failure> {
    let json = p.format == OutputFormat::Json;
    let started = Instant::now();
    let mut statuses: Vec<(String, String)> = Vec::new();
    for s in &playbook.steps {
        if !runbook.actions().contains(&s.action.as_str()) {
            return Err(Failure::usage(
                format!(
                    "playbook {} step {} names the action {}, which this command does not provide",
                    playbook.name, s.id, s.action
                ),
                None,
            ));
        }
    }
    let mut journal = if opts.dry_run { None } else { journal };
    let resumed_from = journal
        .as_ref()
        .and_then(|j| j.resumed().then(|| j.last_finished()).flatten());
    let run_key = journal
        .as_ref()
        .map_or_else(String::new, |j| j.key().to_owned());
    if json {
        p.json_line(&Event::RunStarted {
            playbook: &playbook.name,
            run: &run_key,
            dry_run: opts.dry_run,
            resumed_from: resumed_from.as_deref(),
            at: Utc::now(),
        });
    } else if let Some(last) = &resumed_from {
        p.warn(&format!(
            "resuming an interrupted {} run after step {last} (pass --restart to start over)",
            playbook.name
        ));
    }

    if let Some(j) = journal.as_ref() {
        for step in &playbook.steps {
            if let Some(done) = j.finished(&step.id) {
                runbook.preload(step, &done.facts);
            }
        }
    }
    let mut failure: Option<StepError> = None;
    for step in &playbook.steps {
        // Steps that changed something are never repeated on resume; reads
        // run again so later steps plan from fresh facts.
        if let Some(done) = journal.as_ref().and_then(|j| j.finished(&step.id)).cloned()
            && !step.read_only
            && runbook.resume(step, &done.facts).map_err(Failure::from)?
        {
            if json {
                p.json_line(&Event::StepSkipped {
                    step: &step.id,
                    reason: "finished in an earlier run",
                });
            } else {
                p.out(&format!(
                    "{} {} — done in an earlier run: {}\n",
                    p.paint(Style::Dim, "="),
                    step.title,
                    sanitize(&done.summary)
                ));
            }
            statuses.push((step.id.clone(), "skipped".into()));
            continue;
        }
        let t0 = Instant::now();
        let plan = match runbook.plan(step) {
            Ok(plan) => plan,
            Err(e) => {
                let e = runbook.on_failure(step, e);
                report_failure(p, json, step, &e, t0);
                statuses.push((step.id.clone(), "failed".into()));
                failure = Some(e);
                break;
            }
        };
        if let Some(refusal) = &plan.refusal {
            let refusal = runbook.on_failure(step, refusal.clone());
            report_failure(p, json, step, &refusal, t0);
            statuses.push((step.id.clone(), "refused".into()));
            failure = Some(refusal);
            break;
        }
        if opts.dry_run && !step.read_only {
            if json {
                p.json_line(&Event::StepPlanned {
                    step: &step.id,
                    summary: &plan.summary,
                    details: &plan.details,
                });
            } else {
                let mut s = format!(
                    "{} {} — would: {}\n",
                    p.paint(Style::Warn, "~"),
                    step.title,
                    sanitize(&plan.summary)
                );
                for d in &plan.details {
                    s.push_str(&sanitize(d));
                    if !d.ends_with('\n') {
                        s.push('\n');
                    }
                }
                p.out(&s);
            }
            statuses.push((step.id.clone(), "planned".into()));
            continue;
        }
        if step.destructive
            && let Err(e) = confirm(step, &plan, opts)
        {
            let e = runbook.on_failure(step, e);
            report_failure(p, json, step, &e, t0);
            statuses.push((step.id.clone(), "declined".into()));
            failure = Some(e);
            break;
        }
        if json {
            p.json_line(&Event::StepStarted {
                step: &step.id,
                title: &step.title,
                destructive: step.destructive,
                at: Utc::now(),
            });
        }
        let spinner = (!json).then(|| p.step_spinner(&step.title)).flatten();
        let result = match tokio::time::timeout(step.timeout(), runbook.apply(step, &plan)).await {
            Ok(r) => r,
            Err(_) => Err(StepError::finding(
                format!("step {} did not finish within {}", step.id, step.timeout),
                Some("run the command again: finished steps are not repeated".to_owned()),
            )),
        }
        .map_err(|e| runbook.on_failure(step, e));
        if let Some(s) = spinner {
            s.finish_and_clear();
        }
        match result {
            Ok(outcome) => {
                let ms = millis(t0);
                let recorded = journal.as_deref_mut().map_or(Ok(()), |j| {
                    j.record(StepRecord {
                        id: step.id.clone(),
                        destructive: step.destructive,
                        read_only: step.read_only,
                        finished_at: Utc::now(),
                        duration_ms: ms,
                        summary: outcome.summary.clone(),
                        facts: outcome.facts.clone(),
                    })
                });
                if let Err(e) = recorded {
                    // The step did its work but a resumed run would not know:
                    // stop here and say so, with the summary still printed.
                    let e = StepError::usage(
                        format!("{}: {e}", outcome.summary),
                        Some(
                            "the step's work is done; fix the journal folder before running again"
                                .into(),
                        ),
                    );
                    let e = runbook.on_failure(step, e);
                    report_failure(p, json, step, &e, t0);
                    statuses.push((step.id.clone(), "failed".into()));
                    failure = Some(e);
                    break;
                }
                if json {
                    p.json_line(&Event::StepFinished {
                        step: &step.id,
                        duration_ms: ms,
                        summary: &outcome.summary,
                        details: &outcome.details,
                        facts: &outcome.facts,
                    });
                } else {
                    let mut s = format!(
                        "{} {} — {} {}\n",
                        p.paint(Style::Good, "✓"),
                        step.title,
                        sanitize(&outcome.summary),
                        p.paint(Style::Dim, &format!("({})", human_ms(ms)))
                    );
                    for d in &outcome.details {
                        s.push_str(&sanitize(d));
                        if !d.ends_with('\n') {
                            s.push('\n');
                        }
                    }
                    p.out(&s);
                }
                statuses.push((step.id.clone(), "finished".into()));
            }
            Err(e) => {
                report_failure(p, json, step, &e, t0);
                statuses.push((step.id.clone(), "failed".into()));
                failure = Some(e);
                break;
            }
        }
    }
    let status = match (&failure, opts.dry_run) {
        (Some(_), _) => "failed",
        (None, true) => "dry-run",
        (None, false) => "succeeded",
    };
    if failure.is_none()
        && let Some(j) = journal.as_mut()
    {
        j.complete().map_err(|e| Failure::usage(e, None))?;
    }
    if json {
        p.json_line(&Event::Summary {
            playbook: &playbook.name,
            status,
            duration_ms: millis(started),
            steps: &statuses,
        });
    }
    match failure {
        None => Ok(OK),
        Some(e) if json => Ok(e.code),
        Some(e) => Err(e.into()),
    }
}

impl From<StepError> for Failure {
    fn from(e: StepError) -> Failure {
        Failure {
            code: e.code,
            message: e.message,
            hint: e.hint,
        }
    }
}

fn report_failure(p: &Printer, json: bool, step: &Step, e: &StepError, t0: Instant) {
    if json {
        p.json_line(&Event::StepFailed {
            step: &step.id,
            duration_ms: millis(t0),
            error: &e.message,
            hint: e.hint.as_deref(),
        });
    } else {
        p.out(&format!("{} {}\n", p.paint(Style::Bad, "✗"), step.title));
    }
}

/// Asks before a destructive step; never blocks without a terminal.
fn confirm(step: &Step, plan: &StepPlan, opts: Options) -> Result<(), StepError> {
    if opts.yes {
        return Ok(());
    }
    if !opts.interactive {
        return Err(StepError::usage(
            format!(
                "step {} is destructive ({}) and there is no terminal to confirm it on",
                step.id, plan.summary
            ),
            Some("review the plan with --dry-run, then pass --yes".to_owned()),
        ));
    }
    let answer = dialoguer::Confirm::new()
        .with_prompt(format!("{}: {}. Go ahead?", step.title, plan.summary))
        .default(false)
        .interact()
        .map_err(|e| StepError::usage(format!("cannot ask for confirmation: {e}"), None))?;
    if answer {
        Ok(())
    } else {
        Err(StepError::finding(
            format!("step {} declined; nothing was changed by it", step.id),
            Some("run the command again to resume from this step".to_owned()),
        ))
    }
}

fn millis(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        #[allow(clippy::cast_precision_loss)]
        let s = ms as f64 / 1000.0;
        format!("{s:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::ColorChoice;
    use crate::runbook::journal::Journal;

    /// Records what ran; `refuse` names a step whose precondition fails.
    struct Fake {
        applied: Vec<String>,
        refuse: Option<&'static str>,
        fail: Option<&'static str>,
        resumed: Vec<String>,
    }

    impl Runbook for Fake {
        fn plan(&mut self, step: &Step) -> Result<StepPlan, StepError> {
            Ok(StepPlan {
                summary: format!("plan {}", step.id),
                details: Vec::new(),
                refusal: (self.refuse == Some(step.id.as_str()))
                    .then(|| StepError::finding("not proven", None)),
            })
        }

        async fn apply(&mut self, step: &Step, _: &StepPlan) -> Result<StepOutcome, StepError> {
            if self.fail == Some(step.id.as_str()) {
                return Err(StepError::finding("boom", None));
            }
            self.applied.push(step.id.clone());
            let mut facts = Facts::new();
            facts.insert("id".into(), Value::String(step.id.clone()));
            Ok(StepOutcome {
                summary: format!("did {}", step.id),
                details: Vec::new(),
                facts,
            })
        }

        fn resume(&mut self, step: &Step, _: &Facts) -> Result<bool, StepError> {
            self.resumed.push(step.id.clone());
            Ok(true)
        }

        fn actions(&self) -> &'static [&'static str] {
            &["a"]
        }
    }

    fn fake() -> Fake {
        Fake {
            applied: Vec::new(),
            refuse: None,
            fail: None,
            resumed: Vec::new(),
        }
    }

    fn book() -> Playbook {
        let step = |id: &str, destructive: bool, read_only: bool| Step {
            id: id.into(),
            action: "a".into(),
            title: id.into(),
            destructive,
            read_only,
            timeout: "5s".into(),
            manual: "by hand".into(),
        };
        Playbook {
            name: "test".into(),
            summary: "s".into(),
            command: "c".into(),
            steps: vec![
                step("read", false, true),
                step("write", false, false),
                step("delete", true, false),
                step("after", false, false),
            ],
        }
    }

    fn printer() -> Printer {
        Printer::new(OutputFormat::Json, ColorChoice::Never, 0)
    }

    fn run_sync(f: &mut Fake, j: Option<&mut Journal>, opts: Options) -> u8 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run(&book(), f, j, opts, &printer()))
            .unwrap_or_else(|e| e.code)
    }

    #[test]
    fn a_destructive_step_never_waits_for_a_prompt_without_a_terminal() {
        let mut f = fake();
        let code = run_sync(&mut f, None, Options::default());
        assert_eq!(code, USAGE);
        assert_eq!(
            f.applied,
            ["read", "write"],
            "stopped before the destructive step"
        );
        let mut f = fake();
        let code = run_sync(
            &mut f,
            None,
            Options {
                yes: true,
                ..Options::default()
            },
        );
        assert_eq!(code, OK);
        assert_eq!(f.applied, ["read", "write", "delete", "after"]);
    }

    #[test]
    fn an_unproven_precondition_stops_the_run_even_with_yes() {
        let mut f = Fake {
            refuse: Some("delete"),
            ..fake()
        };
        let code = run_sync(
            &mut f,
            None,
            Options {
                yes: true,
                ..Options::default()
            },
        );
        assert_eq!(code, FINDINGS);
        assert_eq!(f.applied, ["read", "write"]);
    }

    #[test]
    fn a_dry_run_applies_only_reads() {
        let mut f = fake();
        let code = run_sync(
            &mut f,
            None,
            Options {
                dry_run: true,
                ..Options::default()
            },
        );
        assert_eq!(code, OK);
        assert_eq!(f.applied, ["read"]);
    }

    #[test]
    fn a_resumed_run_never_repeats_a_finished_step_that_changed_something() {
        let dir = tempfile::tempdir().unwrap();
        let args = serde_json::json!({"x": 1});
        let mut j = Journal::open(dir.path(), "test", &args, false).unwrap();
        let mut f = Fake {
            fail: Some("after"),
            ..fake()
        };
        let yes = Options {
            yes: true,
            ..Options::default()
        };
        assert_eq!(run_sync(&mut f, Some(&mut j), yes), FINDINGS);
        assert_eq!(f.applied, ["read", "write", "delete"]);

        let mut j = Journal::open(dir.path(), "test", &args, false).unwrap();
        assert!(j.resumed());
        let mut f = fake();
        assert_eq!(run_sync(&mut f, Some(&mut j), Options::default()), OK);
        // Reads run again; the write and the destructive step are not repeated
        // (and no confirmation is needed for a step that is not run).
        assert_eq!(f.applied, ["read", "after"]);
        assert_eq!(f.resumed, ["write", "delete"]);
        let j = Journal::open(dir.path(), "test", &args, false).unwrap();
        assert!(!j.resumed(), "a completed run is not resumed");
    }
}
