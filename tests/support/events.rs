//! The JSON Lines events a runbook prints with `-o json`.

use std::process::Output;

use serde_json::Value;

/// Every event on stdout.
pub fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// The `step_finished` event of `step`.
pub fn finished<'a>(ev: &'a [Value], step: &str) -> &'a Value {
    ev.iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished event for {step}: {ev:#?}"))
}
