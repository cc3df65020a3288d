//! Runbooks: the playbooks in `playbooks/` (data, embedded), the engine that
//! runs them step by step (plan, confirm, apply, journal, report), and the
//! runbooks' built-in actions (`pitr`, `clone`, `backup`).
//!
//! A step's plan half is pure and decides what the step will do; its apply
//! half does the IO. `--dry-run` applies only read-only steps and prints the
//! plans of the others.

pub mod backup;
pub mod engine;
pub mod journal;
pub mod live;
pub mod playbook;
pub mod recovery;
