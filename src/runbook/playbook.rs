//! The runbooks as data: `playbooks/*.toml`, embedded in the binary.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One runbook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    /// Name (`pitr`).
    pub name: String,
    /// One sentence.
    pub summary: String,
    /// How it is called.
    pub command: String,
    /// Ordered steps.
    pub steps: Vec<Step>,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Stable id, unique in the playbook (journal key).
    pub id: String,
    /// The built-in action that runs it.
    pub action: String,
    /// What it does, for people.
    pub title: String,
    /// Whether it destroys something (asks for confirmation; never repeated).
    #[serde(default)]
    pub destructive: bool,
    /// Whether it only reads (it also runs in a dry run, to plan later steps).
    #[serde(default)]
    pub read_only: bool,
    /// Longest it may take (`30s`, `10m`, `2h`).
    pub timeout: String,
    /// What a person would do instead.
    pub manual: String,
}

impl Step {
    /// The timeout as a duration.
    ///
    /// # Panics
    /// Never for an embedded playbook: a test parses every timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        parse_duration(&self.timeout).unwrap_or(Duration::from_mins(1))
    }
}

/// Parses `90s`, `10m`, `2h`, `1h30m`, `1d`, `250ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration such as 30s, 10m or 2h");
    let mut total_ms = 0u64;
    let mut num = String::new();
    let mut chars = s.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit_ms = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        total_ms += n * unit_ms;
    }
    if !num.is_empty() || total_ms == 0 {
        return Err(bad());
    }
    Ok(Duration::from_millis(total_ms))
}

const FILES: &[(&str, &str)] = &[
    ("backup", include_str!("../../playbooks/backup.toml")),
    ("pitr", include_str!("../../playbooks/pitr.toml")),
    ("clone", include_str!("../../playbooks/clone.toml")),
    ("reclone", include_str!("../../playbooks/reclone.toml")),
    (
        "pitr-in-place",
        include_str!("../../playbooks/pitr-in-place.toml"),
    ),
    ("audit", include_str!("../../playbooks/audit.toml")),
];

/// Every embedded playbook, in the order above.
///
/// # Panics
/// When an embedded file does not parse; a test parses them all.
#[must_use]
pub fn all() -> Vec<Playbook> {
    FILES
        .iter()
        .map(|(name, text)| {
            toml::from_str(text).unwrap_or_else(|e| panic!("playbooks/{name}.toml: {e}"))
        })
        .collect()
}

/// The playbook `name`.
#[must_use]
pub fn get(name: &str) -> Option<Playbook> {
    all().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_playbook_parses_with_unique_steps_and_valid_timeouts() {
        for (file, _) in FILES {
            let p = get(file).unwrap();
            assert_eq!(p.name, *file);
            let mut ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), p.steps.len(), "{file}: duplicate step ids");
            for s in &p.steps {
                parse_duration(&s.timeout).unwrap();
                assert!(!(s.destructive && s.read_only), "{file}/{}", s.id);
                assert!(!s.manual.is_empty());
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_mins(90));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(
            parse_duration("1m500ms").unwrap(),
            Duration::from_millis(60_500)
        );
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
    }
}
