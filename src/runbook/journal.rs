//! The run journal: after every finished step, what it found, so an
//! interrupted run resumes where it stopped and never repeats a step that
//! changed something.
//!
//! One JSON file per run key (the playbook, its arguments and the repository)
//! under `$CNPG_OPS_STATE_DIR`, else `$XDG_STATE_HOME/cnpg-ops/runs`, else
//! `~/.local/state/cnpg-ops/runs`. Written atomically (temporary file +
//! rename).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::engine::Facts;

/// One finished step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step id.
    pub id: String,
    /// Whether it was destructive.
    pub destructive: bool,
    /// Whether it only read.
    pub read_only: bool,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Its one-line summary.
    pub summary: String,
    /// Its facts.
    pub facts: Facts,
}

/// The journal file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Playbook.
    pub playbook: String,
    /// The arguments that identify the run.
    pub args: Value,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// Whether every step finished.
    pub completed: bool,
    /// Finished steps, in order.
    pub steps: Vec<StepRecord>,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    key: String,
    record: RunRecord,
    resumed: bool,
}

/// The directory journals live in.
#[must_use]
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CNPG_OPS_STATE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("cnpg-ops/runs");
    }
    std::env::var_os("HOME").map_or_else(
        || std::env::temp_dir().join("cnpg-ops/runs"),
        |h| PathBuf::from(h).join(".local/state/cnpg-ops/runs"),
    )
}

/// FNV-1a, for a short stable file name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Journal {
    /// Opens the journal of the run identified by `playbook` and `args` in
    /// `dir`: an unfinished one is resumed unless `restart`.
    pub fn open(dir: &Path, playbook: &str, args: &Value, restart: bool) -> Result<Self, String> {
        let key = format!("{playbook}-{:016x}", fnv(&format!("{playbook}\n{args}")));
        let path = dir.join(format!("{key}.json"));
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the run journal folder {}: {e}; set CNPG_OPS_STATE_DIR to a writable folder",
                dir.display()
            )
        })?;
        let existing: Option<RunRecord> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let (record, resumed) = match existing {
            // Only a run that changed something is resumed; one that stopped
            // after reading starts over (its reads are redone anyway).
            Some(r) if !r.completed && !restart && r.steps.iter().any(|s| !s.read_only) => {
                (r, true)
            }
            _ => (
                RunRecord {
                    playbook: playbook.to_owned(),
                    args: args.clone(),
                    started_at: Utc::now(),
                    completed: false,
                    steps: Vec::new(),
                },
                false,
            ),
        };
        Ok(Journal {
            path,
            key,
            record,
            resumed,
        })
    }

    /// The run key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this run resumes an interrupted one.
    #[must_use]
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The last step that finished.
    #[must_use]
    pub fn last_finished(&self) -> Option<String> {
        self.record.steps.last().map(|s| s.id.clone())
    }

    /// A finished step's record.
    #[must_use]
    pub fn finished(&self, id: &str) -> Option<&StepRecord> {
        self.record.steps.iter().find(|s| s.id == id)
    }

    /// Records a finished step and writes the file.
    pub fn record(&mut self, step: StepRecord) -> Result<(), String> {
        self.record.steps.retain(|s| s.id != step.id);
        self.record.steps.push(step);
        self.write()
    }

    /// Marks the run complete.
    pub fn complete(&mut self) -> Result<(), String> {
        self.record.completed = true;
        self.write()
    }

    fn write(&self) -> Result<(), String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cannot create the run journal folder {}: {e}",
                dir.display()
            )
        })?;
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(&self.record).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| format!("cannot write the run journal {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(id: &str) -> StepRecord {
        StepRecord {
            id: id.into(),
            destructive: false,
            read_only: false,
            finished_at: Utc::now(),
            duration_ms: 1,
            summary: "done".into(),
            facts: Facts::new(),
        }
    }

    #[test]
    fn an_unfinished_run_resumes_and_a_finished_one_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let args = json!({"svc": "foo"});
        let mut j = Journal::open(dir.path(), "pitr", &args, false).unwrap();
        assert!(!j.resumed());
        j.record(StepRecord {
            read_only: true,
            ..rec("read")
        })
        .unwrap();
        assert!(
            !Journal::open(dir.path(), "pitr", &args, false)
                .unwrap()
                .resumed(),
            "reads alone do not resume"
        );
        j.record(rec("locate")).unwrap();
        let j2 = Journal::open(dir.path(), "pitr", &args, false).unwrap();
        assert!(j2.resumed());
        assert_eq!(j2.last_finished().as_deref(), Some("locate"));
        assert!(
            !Journal::open(dir.path(), "pitr", &args, true)
                .unwrap()
                .resumed()
        );
        assert!(
            !Journal::open(dir.path(), "pitr", &json!({"svc": "bar"}), false)
                .unwrap()
                .resumed()
        );
        let mut j3 = Journal::open(dir.path(), "pitr", &args, false).unwrap();
        j3.complete().unwrap();
        assert!(
            !Journal::open(dir.path(), "pitr", &args, false)
                .unwrap()
                .resumed()
        );
    }
}
