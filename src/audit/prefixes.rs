//! Path hygiene under the destination paths the repository uses: server
//! folders no manifest owns any more, catalogs nested in themselves, and
//! destination paths that already end with the server name. Free of IO: the
//! command lists the folders.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{AuditFinding, Scope};
use crate::catalog::findings::{Finding, Severity};
use crate::gitops::discover::{CatalogRefs, Database};

/// The ids this module emits.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "prefix-orphan",
        "a server folder under a destination path that no manifest writes or reads",
    ),
    (
        "prefix-double-nested",
        "a catalog written one folder too deep (`…/<server>/<server>/`)",
    ),
    (
        "prefix-includes-server",
        "a destination path that is itself a server folder",
    ),
    (
        "prefix-unlisted",
        "a destination path that could not be listed: orphans and nesting there are not judged",
    ),
];

/// A destination path whose folders could not be listed.
#[must_use]
pub fn unlisted(destination: &str, error: &str, hint: Option<&str>) -> AuditFinding {
    AuditFinding {
        id: "prefix-unlisted",
        severity: Severity::Warning,
        scope: Scope::Destination,
        env: None,
        svc: None,
        location: Some(normalise(destination)),
        subject: normalise(destination),
        message: format!(
            "cannot list the folders under {}: {error}; orphan and nested folders there are not judged, the catalogs are read one by one",
            normalise(destination)
        ),
        evidence: json!({"destination": normalise(destination), "error": error}),
        hint: Some(hint.map_or_else(
            || "grant list on the destination path to the audit's identity".to_owned(),
            str::to_owned,
        )),
    }
}

/// The server folders under one destination path and who owns them.
#[derive(Debug, Clone, Default)]
pub struct DestinationView {
    /// The destination path, without a trailing `/`.
    pub destination: String,
    /// Folders that hold `base/` or `wals/`.
    pub servers: Vec<String>,
    /// What the layout showed (double nesting, a destination that is a server).
    pub layout: Vec<Finding>,
    /// For each server folder a manifest names: `writes|reads by file:line`.
    pub owners: BTreeMap<String, Vec<String>>,
    /// Servers `s` whose catalog a manifest writes at `<destination>/s/s/`.
    pub nested_owned: BTreeSet<String>,
    /// `file:line` of Cluster manifests that do not read: owners unknown.
    pub unread_clusters: Vec<String>,
}

/// Normalises a destination path for comparison.
#[must_use]
pub fn normalise(destination: &str) -> String {
    destination.trim_end_matches('/').to_owned()
}

impl DestinationView {
    /// A view of `destination`, owned by the catalogs in `refs` that live there.
    #[must_use]
    pub fn new(
        destination: &str,
        servers: Vec<String>,
        layout: Vec<Finding>,
        refs: &CatalogRefs,
    ) -> DestinationView {
        let destination = normalise(destination);
        let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in refs
            .refs
            .iter()
            .filter(|r| normalise(&r.location.destination_path) == destination)
        {
            owners
                .entry(r.location.server_name.clone())
                .or_default()
                .push(format!("{} by {}", r.role, r.by));
        }
        let nested_owned = refs
            .refs
            .iter()
            .filter(|r| {
                normalise(&r.location.destination_path)
                    == format!("{destination}/{}", r.location.server_name)
            })
            .map(|r| r.location.server_name.clone())
            .collect();
        DestinationView {
            destination,
            servers,
            layout,
            owners,
            nested_owned,
            unread_clusters: refs.unread.clone(),
        }
    }
}

/// Orphans and nesting under one destination path.
#[must_use]
pub fn judge(view: &DestinationView) -> Vec<AuditFinding> {
    let finding =
        |id, severity, location: String, subject: String, message, evidence, hint| AuditFinding {
            id,
            severity,
            scope: Scope::Destination,
            env: None,
            svc: None,
            location: Some(location),
            subject,
            message,
            evidence,
            hint: Some(hint),
        };
    let mut out = Vec::new();
    for server in view
        .servers
        .iter()
        .filter(|s| !view.owners.contains_key(*s))
    {
        // A Cluster manifest that does not read may be its owner: say so, softly.
        let (severity, hint) = if view.unread_clusters.is_empty() {
            (
                Severity::Warning,
                "a folder left by an earlier serverName generation, a removed database or a typo: once no restore needs it, delete it (its storage is billed), or name it in a manifest".to_owned(),
            )
        } else {
            (
                Severity::Info,
                format!(
                    "{} Cluster manifest(s) do not read ({}); one of them may own this folder: fix them before deleting anything",
                    view.unread_clusters.len(),
                    view.unread_clusters.join(", ")
                ),
            )
        };
        out.push(finding(
            "prefix-orphan",
            severity,
            view.destination.clone(),
            server.clone(),
            format!(
                "{}/{server}/ holds a catalog that no Cluster in the repository writes or reads",
                view.destination
            ),
            json!({"destination": view.destination, "server": server,
                   "owned": view.owners.keys().collect::<Vec<_>>(),
                   "unread_clusters": view.unread_clusters}),
            hint,
        ));
    }
    for f in &view.layout {
        let (id, severity) = match f.id {
            "path-double-nested" => ("prefix-double-nested", Severity::Warning),
            "path-includes-server" => ("prefix-includes-server", Severity::Error),
            _ => continue,
        };
        let server = if id == "prefix-includes-server" {
            view.destination.rsplit('/').next().unwrap_or_default()
        } else {
            f.subject.split('/').next().unwrap_or_default()
        };
        // A manifest that writes to `<destination>/<server>` owns the nested folder;
        // the per-database check reports it there.
        if id == "prefix-double-nested" && view.nested_owned.contains(server) {
            continue;
        }
        out.push(finding(
            id,
            severity,
            view.destination.clone(),
            f.subject.clone(),
            f.message.clone(),
            json!({"destination": view.destination, "server": server, "layout_finding": f.id}),
            f.hint.clone().unwrap_or_default(),
        ));
    }
    out
}

/// A destination path that already ends with the server name: barman appends
/// the server name again and the catalog lands in `…/<server>/<server>/`,
/// where restores and tools pointed at the usual place do not look.
#[must_use]
pub fn nested_by_manifest(db: &Database) -> Option<AuditFinding> {
    let c = db.catalog.as_ref()?;
    let dest = normalise(&c.destination_path);
    let last = dest.rsplit('/').next()?;
    if last != c.server_name {
        return None;
    }
    Some(AuditFinding {
        id: "prefix-double-nested",
        severity: Severity::Warning,
        scope: Scope::Database,
        env: Some(db.env.clone()),
        svc: Some(db.svc.clone()),
        location: Some(format!("{dest}/{}", c.server_name)),
        subject: db.cluster.clone(),
        message: format!(
            "destinationPath {dest} already ends with the server name `{}`: the catalog is written to {dest}/{}/",
            c.server_name, c.server_name
        ),
        evidence: json!({"destination_path": c.destination_path, "server_name": c.server_name,
                         "server_name_explicit": c.server_name_explicit}),
        hint: Some(format!(
            "set destinationPath to {} and keep the server name; restores and clones that follow the convention look there",
            dest.rsplit_once('/').map_or(dest.as_str(), |(p, _)| p)
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::discover::{CatalogLocation, CatalogRef, Credentials};

    fn refs(list: &[CatalogRef]) -> CatalogRefs {
        CatalogRefs {
            refs: list.to_vec(),
            unread: Vec::new(),
        }
    }

    fn loc(dest: &str, server: &str) -> CatalogLocation {
        CatalogLocation {
            destination_path: dest.into(),
            server_name: server.into(),
            server_name_explicit: true,
            endpoint_url: None,
            credentials: Credentials::Unknown,
            object_store: None,
        }
    }

    fn r(dest: &str, server: &str, role: &'static str) -> CatalogRef {
        CatalogRef {
            location: loc(dest, server),
            role,
            by: format!("{server}.yaml:1"),
        }
    }

    #[test]
    fn servers_nobody_writes_or_reads_are_orphans() {
        let owned = [
            r("s3://b/pg/", "orders", "writes"),
            r("s3://b/pg", "orders-1", "reads"),
            r("s3://other/pg", "old", "writes"),
        ];
        let view = DestinationView::new(
            "s3://b/pg",
            vec!["old".into(), "orders".into(), "orders-1".into()],
            vec![],
            &refs(&owned),
        );
        let f = judge(&view);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "prefix-orphan");
        assert_eq!(f[0].location.as_deref(), Some("s3://b/pg"));
        assert_eq!(f[0].subject, "old");
        assert_eq!(f[0].severity, Severity::Warning);
        assert_eq!(f[0].evidence["owned"], json!(["orders", "orders-1"]));
        // With a Cluster manifest that does not read, the owner may be unknown.
        let mut unknown = refs(&owned);
        unknown.unread.push("prod/x/database.yaml:1".into());
        let view = DestinationView::new("s3://b/pg", vec!["old".into()], vec![], &unknown);
        let f = judge(&view);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(
            f[0].hint
                .as_deref()
                .unwrap()
                .contains("prod/x/database.yaml:1")
        );
    }

    #[test]
    fn layout_findings_become_destination_findings() {
        let layout = vec![
            Finding::new(
                "path-double-nested",
                Severity::Error,
                "orders/orders/",
                "nested",
            ),
            Finding::new("path-sibling-servers", Severity::Info, "s3://b/pg", "two"),
        ];
        let view = DestinationView::new("s3://b/pg", vec![], layout.clone(), &refs(&[]));
        let f = judge(&view);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].id, "prefix-double-nested");
        assert_eq!(f[0].location.as_deref(), Some("s3://b/pg"));
        assert_eq!(f[0].subject, "orders/orders/");
        // Written there on purpose by a manifest: reported per database instead.
        let owned = [r("s3://b/pg/orders", "orders", "writes")];
        let view = DestinationView::new("s3://b/pg", vec![], layout, &refs(&owned));
        assert!(judge(&view).is_empty());
    }

    #[test]
    fn a_destination_ending_with_the_server_name() {
        let mut db = crate::audit::tests::db(None, None);
        db.catalog = Some(loc("s3://b/pg/orders-pg/", "orders-pg"));
        let f = nested_by_manifest(&db).unwrap();
        assert_eq!(f.location.as_deref(), Some("s3://b/pg/orders-pg/orders-pg"));
        assert!(f.hint.unwrap().contains("s3://b/pg "));
        db.catalog = Some(loc("s3://b/pg", "orders-pg"));
        assert!(nested_by_manifest(&db).is_none());
    }
}
