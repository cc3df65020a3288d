//! The platform around a database: groups 8, 9, 12 and 13 — Flux
//! ownership and SOPS, sizing and images, NetworkPolicies, monitoring.

use super::{Context, LintFinding, Rule};

/// The rules of this module.
pub const RULES: &[Rule] = &[];

/// Runs this module's rules.
pub fn check(_ctx: &Context<'_>, _out: &mut Vec<LintFinding>) {}
