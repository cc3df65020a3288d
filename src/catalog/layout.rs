//! Which server folders live under a destination path, and the path
//! mistakes that show in the folder structure: a server folder nested in
//! itself, a destination path that already names the server, siblings.

use std::collections::{BTreeMap, BTreeSet};

use super::findings::{Finding, Severity};

/// The folder structure under a destination path, two or three levels deep.
#[derive(Debug, Clone, Default)]
pub struct DestLayout {
    /// Folders directly under the destination path.
    pub top: BTreeSet<String>,
    /// For each top folder, the folders directly inside it.
    pub children: BTreeMap<String, BTreeSet<String>>,
    /// For `<s>/<s>/`, the folders inside it.
    pub nested: BTreeMap<String, BTreeSet<String>>,
}

/// Servers found and path findings.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Folders that hold a catalog (`base/` or `wals/`).
    pub servers: Vec<String>,
    /// The destination path itself holds `base/` or `wals/`.
    pub dest_is_server: bool,
    /// Findings about the layout.
    pub findings: Vec<Finding>,
}

fn is_catalog(folders: &BTreeSet<String>) -> bool {
    folders.contains("base") || folders.contains("wals")
}

impl DestLayout {
    /// Reads the layout.
    #[must_use]
    pub fn discover(&self, dest: &str) -> Discovery {
        let mut d = Discovery {
            dest_is_server: is_catalog(&self.top),
            servers: self
                .children
                .iter()
                .filter(|(_, c)| is_catalog(c))
                .map(|(s, _)| s.clone())
                .collect(),
            findings: Vec::new(),
        };
        if d.dest_is_server {
            let last = dest
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or(dest);
            d.findings.push(
                Finding::new(
                    "path-includes-server",
                    Severity::Error,
                    dest,
                    format!("{dest} holds base/ or wals/ directly: it is a server folder, not a destinationPath"),
                )
                .hint(format!(
                    "barman appends the serverName to destinationPath; use the parent prefix as destinationPath and `{last}` as serverName"
                )),
            );
        }
        for (server, inner) in &self.nested {
            if is_catalog(inner) {
                d.findings.push(
                    Finding::new(
                        "path-double-nested",
                        Severity::Error,
                        format!("{server}/{server}/"),
                        format!("a catalog sits in {server}/{server}/: the destinationPath already ended with the server name when barman appended it again"),
                    )
                    .hint(format!("set destinationPath to the parent prefix (without `/{server}`), or read this catalog with DEST ending in /{server}")),
                );
            }
        }
        if d.servers.len() > 1 {
            d.findings.push(
                Finding::new(
                    "path-sibling-servers",
                    Severity::Info,
                    dest,
                    format!("{} server folders share this destination path: {}", d.servers.len(), d.servers.join(", ")),
                )
                .hint("normal for clone generations or several clusters; folders no manifest names any more are orphans"),
            );
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn finds_servers_and_nesting() {
        let mut l = DestLayout {
            top: set(&["pg-main", "pg-old", "notes"]),
            ..DestLayout::default()
        };
        l.children
            .insert("pg-main".into(), set(&["base", "wals", "pg-main"]));
        l.children.insert("pg-old".into(), set(&["wals"]));
        l.children.insert("notes".into(), set(&["x"]));
        l.nested.insert("pg-main".into(), set(&["base"]));
        let d = l.discover("s3://b/prod");
        assert_eq!(d.servers, vec!["pg-main", "pg-old"]);
        let ids: Vec<&str> = d.findings.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec!["path-double-nested", "path-sibling-servers"]);
    }

    #[test]
    fn dest_that_is_a_server() {
        let l = DestLayout {
            top: set(&["base", "wals"]),
            ..DestLayout::default()
        };
        let d = l.discover("s3://b/prod/pg-main");
        assert!(d.dest_is_server);
        assert!(d.findings[0].hint.as_deref().unwrap().contains("`pg-main`"));
    }
}
