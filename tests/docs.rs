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
