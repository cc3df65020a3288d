//! Generated documentation stays in step with the code: `UPDATE_DOCS=1 cargo test --test docs`
//! rewrites it.

use std::fmt::Write as _;
use std::path::Path;

fn check(path: &str, expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, expected).unwrap();
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{} is stale; regenerate it with UPDATE_DOCS=1 cargo test --test docs",
        path.display()
    );
}

#[test]
fn findings_catalogue() {
    let mut s = String::from(
        "# Findings\n\nGenerated from `src/catalog/findings.rs` by `UPDATE_DOCS=1 cargo test --test docs`.\n\n| id | meaning |\n|---|---|\n",
    );
    for (id, meaning) in cnpg_ops::catalog::findings::CATALOG {
        writeln!(s, "| `{id}` | {meaning} |").unwrap();
    }
    check("docs/findings.md", &s);
}

#[test]
fn every_emitted_finding_id_is_documented() {
    // Scan the sources for Finding::new("id", …) and make sure each id is in the catalogue.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, _) in text.match_indices("Finding::new(") {
                let rest = text[i + 13..].trim_start();
                if let Some(id) = rest.strip_prefix('"').and_then(|r| r.split('"').next())
                    && !cnpg_ops::catalog::findings::CATALOG
                        .iter()
                        .any(|(c, _)| *c == id)
                {
                    missing.push(format!("{id} ({})", p.display()));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "finding ids not in findings::CATALOG: {missing:?}"
    );
}

#[test]
fn lint_rules_catalogue() {
    let mut s = String::from(
        "# Lint rules\n\nGenerated from `src/lint/` by `UPDATE_DOCS=1 cargo test --test docs`. \
         `cnpg-ops lint --list-rules` prints the same table.\n\n\
         | group | rule | severity | catches |\n|---|---|---|---|\n",
    );
    for r in cnpg_ops::lint::rules() {
        writeln!(
            s,
            "| {} | `{}` | {} | {} |",
            r.group, r.id, r.severity, r.meaning
        )
        .unwrap();
    }
    check("docs/lint-rules.md", &s);
}

#[test]
fn every_emitted_lint_rule_is_registered_and_tested() {
    // Rule ids are passed as the first argument of lint::at / lint::in_file,
    // or named in a `rule: "…"` field.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let call = regex::Regex::new(r#"\b(?:at|in_file)\(\s*"([a-z0-9-]+)""#).unwrap();
    let ids: Vec<&str> = cnpg_ops::lint::rules().map(|r| r.id).collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(root.join("src/lint")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for c in call.captures_iter(&text) {
            if !ids.contains(&&c[1]) {
                missing.push(c[1].to_owned());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "lint rule ids used but not registered: {missing:?}"
    );
    // Every rule is named by at least one test.
    let mut tests = String::new();
    for entry in std::fs::read_dir(root.join("tests")).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "rs") {
            tests.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    let untested: Vec<&&str> = ids
        .iter()
        .filter(|id| !tests.contains(&format!("\"{id}\"")))
        .collect();
    assert!(
        untested.is_empty(),
        "lint rules no test names: {untested:?}"
    );
}

#[test]
fn playbooks_document() {
    let mut s = String::from(
        "# Playbooks\n\nGenerated from `playbooks/*.toml` by `UPDATE_DOCS=1 cargo test --test docs`; \
         the binary runs the same files (`cnpg-ops playbook show NAME`).\n",
    );
    for b in cnpg_ops::runbook::playbook::all() {
        writeln!(s, "\n## {}\n\n{}\n\n`{}`\n", b.name, b.summary, b.command).unwrap();
        writeln!(
            s,
            "| # | step | action | kind | timeout | by hand |\n|---|---|---|---|---|---|"
        )
        .unwrap();
        for (i, st) in b.steps.iter().enumerate() {
            let kind = if st.destructive {
                "**destructive**"
            } else if st.read_only {
                "read-only"
            } else {
                "changes"
            };
            writeln!(
                s,
                "| {} | {} | `{}` | {kind} | {} | {} |",
                i + 1,
                st.title,
                st.action,
                st.timeout,
                st.manual.replace('|', "\\|")
            )
            .unwrap();
        }
    }
    check("docs/playbooks.md", &s);
}

#[test]
fn audit_document() {
    use cnpg_ops::audit::{DatabaseMetrics, RunInfo, all_checks, prometheus};
    let mut s = String::from(
        "# Audit checks and metrics\n\nGenerated from `src/audit` by `UPDATE_DOCS=1 cargo test --test docs`. \
         `cnpg-ops audit` prints these ids in its text and JSON reports; the metrics are what \
         `--prometheus` and `--textfile` write.\n\n## Findings\n\n| id | meaning |\n|---|---|\n",
    );
    for (id, meaning) in all_checks() {
        writeln!(s, "| `{id}` | {meaning} |").unwrap();
    }
    let m = DatabaseMetrics {
        env: "prod".into(),
        svc: "orders".into(),
        namespace: "orders".into(),
        cluster: "orders-pg".into(),
        catalog_readable: true,
        first_recoverable: None,
        newest_wal_age_seconds: Some(1),
        newest_backup_age_seconds: Some(1),
        wal_gaps: Some(0),
        lifecycle_checked: true,
    };
    let run = RunInfo {
        finished_at: chrono::DateTime::UNIX_EPOCH,
        duration_seconds: 0.0,
    };
    s.push_str("\n## Metrics\n\nEvery metric is a gauge. Per-database metrics carry the labels `env`, `svc`, `namespace` and `cluster`; findings about a bucket or a shared destination path carry `scope` and `location`.\n\n| metric | meaning |\n|---|---|\n");
    for line in prometheus(&[], &[m], run).lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            writeln!(s, "| `{name}` | {help} |").unwrap();
        }
    }
    check("docs/audit.md", &s);
}
