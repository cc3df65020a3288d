//! Groups 1–4: the cloud half — GKE Workload Identity bindings, the backup
//! service account's roles, bucket lifecycle against retention, and
//! double-nested destination paths.

use super::{Context, LintFinding, Rule};

/// The rules of this module.
pub const RULES: &[Rule] = &[];

/// Runs this module's rules.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<LintFinding>) {}
