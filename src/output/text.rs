//! Text renderings of command results, for people.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use super::{Printer, Style, sanitize};
use crate::catalog::analysis::{Catalog, WindowEnd, human_duration};
use crate::catalog::findings::{Finding, Severity};
use crate::catalog::retention::RetentionReport;
use crate::catalog::target::CheckReport;
use crate::catalog::time::format_utc;

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map_or_else(|| "-".to_owned(), format_utc)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Renders findings.
pub fn findings(p: &Printer, out: &mut String, list: &[Finding]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n{}",
        p.paint(Style::Heading, &format!("Findings ({})", list.len()))
    );
    for f in list {
        let sev = match f.severity {
            Severity::Error => p.paint(Style::Bad, "error  "),
            Severity::Warning => p.paint(Style::Warn, "warning"),
            Severity::Info => p.paint(Style::Dim, "info   "),
        };
        let _ = writeln!(
            out,
            "  {sev} {} {}",
            p.paint(Style::Dim, f.id),
            sanitize(&f.message)
        );
        if let Some(h) = &f.hint {
            let _ = writeln!(
                out,
                "          {} {}",
                p.paint(Style::Dim, "hint:"),
                sanitize(h)
            );
        }
    }
}

/// `catalog show`.
#[must_use]
#[allow(clippy::many_single_char_names)] // p(rinter), c(atalog), o(ut), t(ime) are used on every line
pub fn show(p: &Printer, dest: &str, c: &Catalog, extra: &[Finding]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {}  ({} segments from {}, {} objects)",
        p.paint(Style::Heading, "Catalog"),
        sanitize(dest),
        c.segment_size,
        c.segment_size_source,
        c.objects
    );
    let _ = writeln!(
        o,
        "\n{}",
        p.paint(Style::Heading, &format!("Backups ({})", c.backups.len()))
    );
    if c.backups.is_empty() {
        let _ = writeln!(o, "  none");
    } else {
        let _ = writeln!(
            o,
            "  {:<17} {:<15} {:>3}  {:<32} {:<24} {:>9}  notes",
            "ID", "STATUS", "TL", "END", "BEGIN WAL", "SIZE"
        );
        for b in c.backups.iter().rev() {
            let status = match b.status.as_str() {
                "DONE" if b.usable => p.paint(Style::Good, &format!("{:<15}", "DONE")),
                "DONE" => p.paint(Style::Bad, &format!("{:<15}", "DONE (unusable)")),
                s => p.paint(Style::Warn, &format!("{s:<15}")),
            };
            let mut notes = Vec::new();
            if let Some(k) = &b.keep {
                notes.push(format!(
                    "keep:{}",
                    serde_json::to_value(k)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ));
            }
            if let Some(from) = &b.backup_from {
                notes.push(format!("from {from}"));
            }
            if let Some(n) = &b.name {
                notes.push(n.clone());
            }
            notes.extend(b.unusable_reasons.iter().cloned());
            let _ = writeln!(
                o,
                "  {:<17} {status} {:>3}  {:<32} {:<24} {:>9}  {}",
                sanitize(&b.id),
                b.timeline.map_or_else(|| "-".to_owned(), |x| x.to_string()),
                t(b.end_time),
                b.begin_wal.as_deref().unwrap_or("-"),
                bytes(b.size_bytes),
                sanitize(&notes.join("; "))
            );
        }
    }
    let _ = writeln!(
        o,
        "\n{}",
        p.paint(
            Style::Heading,
            &format!("Timelines ({})", c.timelines.len())
        )
    );
    for tl in &c.timelines {
        let origin = match (tl.parent, tl.switchpoint) {
            (Some(pa), Some(sp)) => format!("forked from {pa} at {sp}"),
            _ if tl.timeline == 1 => "the first timeline".to_owned(),
            _ => format!("history file {}", tl.history),
        };
        let range = match (&tl.first_segment, &tl.last_segment) {
            (Some(a), Some(b)) => format!("{} segments {a} .. {b}", tl.segments),
            _ => "no segments".to_owned(),
        };
        let age = tl.last_archived_at.map_or_else(String::new, |at| {
            format!(
                ", newest archived {} ({} ago)",
                format_utc(at),
                human_duration(c.now - at)
            )
        });
        let gaps = c.gaps.iter().filter(|g| g.timeline == tl.timeline).count();
        let gap_text = if gaps > 0 {
            p.paint(Style::Bad, &format!(", {gaps} gap(s)"))
        } else {
            String::new()
        };
        let _ = writeln!(o, "  {:>3}  {origin}; {range}{age}{gap_text}", tl.timeline);
        if !tl.partials.is_empty() {
            let _ = writeln!(o, "       partial: {}", tl.partials.join(", "));
        }
    }
    if !c.gaps.is_empty() {
        let _ = writeln!(
            o,
            "\n{}",
            p.paint(Style::Heading, &format!("Gaps ({})", c.gaps.len()))
        );
        for g in &c.gaps {
            let _ = writeln!(
                o,
                "  timeline {}: {} .. {} ({} missing, between {} and {}){}",
                g.timeline,
                g.first_missing,
                g.last_missing,
                g.missing_count,
                g.after,
                g.before,
                if g.breaks_recovery {
                    p.paint(Style::Bad, "  breaks recovery")
                } else {
                    String::new()
                }
            );
        }
    }
    let _ = writeln!(o, "\n{}", p.paint(Style::Heading, "Recovery windows"));
    if c.windows.is_empty() {
        let _ = writeln!(
            o,
            "  {}",
            p.paint(Style::Bad, "none: no backup can anchor a restore")
        );
    }
    for tw in &c.windows {
        if tw.lineage.contains('→') {
            let _ = writeln!(
                o,
                "  restoring to timeline {} (following {}):",
                tw.timeline, tw.lineage
            );
        } else {
            let _ = writeln!(o, "  restoring to timeline {}:", tw.timeline);
        }
        for w in &tw.windows {
            let end = match w.end_reason {
                WindowEnd::Head => "newest archived WAL".to_owned(),
                WindowEnd::Gap => format!("gap at {}", w.missing_segment.as_deref().unwrap_or("?")),
            };
            let until = match (&w.latest_time_target, &w.last_transaction) {
                (Some(at), Some(x)) => format!(
                    "{}  (exact: 1 µs before transaction {} ends",
                    format_utc(*at),
                    x.xid.unwrap_or_default()
                ),
                _ => format!("≈{}  (", t(w.end_time)),
            };
            let _ = writeln!(
                o,
                "    {} → {until}; from backup {}; WAL unbroken to {}, {end})",
                format_utc(w.start_time),
                w.backups.join(", "),
                w.end_segment
            );
            if let Some(why) = &w.end_unread {
                let _ = writeln!(o, "      end not read from the WAL: {}", sanitize(why));
            }
        }
    }
    let _ = writeln!(o);
    match c.first_recoverable_point() {
        Some((at, id)) => {
            let _ = writeln!(
                o,
                "First recoverable point: {} (end of backup {id})",
                format_utc(at)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "First recoverable point: {}",
                p.paint(Style::Bad, "none")
            );
        }
    }
    if let Some(cnpg) = c.cnpg_first_recoverability_point()
        && c.first_recoverable_point().is_none_or(|(at, _)| at != cnpg)
    {
        let _ = writeln!(
            o,
            "  CloudNativePG reports {} (it counts every backup with an end time, FAILED ones too, and checks no WAL)",
            format_utc(cnpg)
        );
    }
    let mut all: Vec<Finding> = extra.to_vec();
    all.extend(c.findings.iter().cloned());
    findings(p, &mut o, &all);
    o
}

/// `catalog check`.
#[must_use]
pub fn check(p: &Printer, r: &CheckReport) -> String {
    let mut o = String::new();
    let tl = r.timeline.map_or_else(|| "?".to_owned(), |x| x.to_string());
    if r.recoverable {
        let _ = writeln!(
            o,
            "{} {} on timeline {tl}{}",
            p.paint(Style::Good, "recoverable:"),
            r.target,
            if r.exact { "" } else { " (approximate)" }
        );
    } else {
        let _ = writeln!(
            o,
            "{} {} (timeline {}){}",
            p.paint(Style::Bad, "NOT recoverable:"),
            r.target,
            r.timeline_requested,
            if r.exact {
                ""
            } else {
                " (approximate: not proven either way)"
            }
        );
    }
    if let Some(id) = &r.backup_id {
        let _ = writeln!(
            o,
            "  anchor backup: {} (ended {})",
            sanitize(id),
            t(r.backup_end_time)
        );
    }
    if let (Some(a), Some(b)) = (&r.wal_from, &r.wal_to) {
        let _ = writeln!(o, "  WAL needed:    {a} .. {b}");
    }
    if let Some(s) = &r.stops_at {
        let _ = writeln!(o, "  recovery stops at: {s}");
    }
    if let Some(w) = &r.wal {
        if let Some(x) = &w.stop {
            let _ = writeln!(o, "  stop record:   {}", sanitize(&x.describe()));
        }
        if let Some(x) = &w.last_transaction {
            let _ = writeln!(
                o,
                "  last transaction replayed: {}",
                sanitize(&x.describe())
            );
        }
        if let Some(t) = w.latest_time_target {
            let _ = writeln!(o, "  latest reachable time: {}", format_utc(t));
        }
        for u in &w.unreadable {
            let _ = writeln!(
                o,
                "  {} {}: {}",
                p.paint(Style::Warn, "unreadable:"),
                u.segment,
                sanitize(&u.error)
            );
        }
    }
    if !r.missing_wal.is_empty() {
        let _ = writeln!(o, "  missing WAL:   {}", r.missing_wal.join(", "));
    }
    if !r.reasons.is_empty() {
        let _ = writeln!(o, "  {}", if r.recoverable { "notes:" } else { "reasons:" });
        for x in &r.reasons {
            let _ = writeln!(o, "    - {}", sanitize(x));
        }
    }
    if !r.nearest.is_empty() {
        let _ = writeln!(o, "  nearest recoverable targets:");
        for s in &r.nearest {
            let _ = writeln!(
                o,
                "    --to {} --timeline {}   {}",
                s.target,
                s.timeline,
                sanitize(&s.description)
            );
        }
    }
    o
}

/// `catalog retention`.
#[must_use]
pub fn retention(p: &Printer, r: &RetentionReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "{} {} at {}",
        p.paint(Style::Heading, "Retention"),
        r.policy,
        format_utc(r.now)
    );
    if let Some(por) = r.point_of_recoverability {
        let _ = writeln!(o, "  window starts {}", format_utc(por));
    }
    let _ = writeln!(
        o,
        "\n  {:<17} {:<8} {:<32} {:<16} action",
        "ID", "STATUS", "END", "RETENTION"
    );
    for b in &r.backups {
        let action = if b.deleted {
            p.paint(Style::Bad, "delete")
        } else if b.anchor {
            "keep (anchor)".to_owned()
        } else {
            "keep".to_owned()
        };
        let _ = writeln!(
            o,
            "  {:<17} {:<8} {:<32} {:<16} {action}",
            sanitize(&b.id),
            b.status,
            t(b.end_time),
            b.retention
        );
    }
    let _ = writeln!(o);
    if r.deleted_backups.is_empty() {
        let _ = writeln!(o, "Nothing is deleted.");
    } else {
        let _ = writeln!(
            o,
            "Deletes {} backup(s), {} object(s), {}:",
            r.deleted_backups.len(),
            r.deleted_objects,
            bytes(r.deleted_bytes)
        );
        for w in &r.deleted_wal {
            let _ = writeln!(
                o,
                "  with {}: timeline {} WAL {} .. {} ({} objects)",
                w.with_backup, w.timeline, w.first, w.last, w.objects
            );
        }
    }
    let _ = writeln!(
        o,
        "First recoverable point: {} → {}",
        t(r.first_recoverable_point_before),
        t(r.first_recoverable_point_after)
    );
    let _ = writeln!(
        o,
        "  as CloudNativePG reports it: {} → {}",
        t(r.cnpg_first_recoverability_point_before),
        t(r.cnpg_first_recoverability_point_after)
    );
    for n in &r.notes {
        let _ = writeln!(o, "  note: {}", sanitize(n));
    }
    o
}

/// Renders rows as columns separated by two spaces; the first row is the
/// header. Cells are sanitized.
#[must_use]
pub fn table(p: &Printer, rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| sanitize(c).into_owned()).collect())
        .collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        let line = line.trim_end();
        if n == 0 {
            let _ = writeln!(out, "{}", p.paint(Style::Heading, line));
        } else {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// `cnpg-ops ls`.
#[must_use]
pub fn databases(
    p: &Printer,
    list: &[&crate::gitops::discover::Database],
    problems: &[&crate::gitops::discover::Problem],
) -> String {
    use crate::gitops::discover::BackupModel;
    let mut rows = vec![
        [
            "ENV",
            "SVC",
            "NAMESPACE/CLUSTER",
            "BACKUPS",
            "CATALOG",
            "CREDENTIALS",
            "RETENTION",
            "SCHEDULE",
            "BOOTSTRAP",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    for d in list {
        let model = match d.backup_model {
            BackupModel::Inline => "inline",
            BackupModel::Plugin => "plugin",
            BackupModel::Both => "inline+plugin",
            BackupModel::None => "none",
        };
        let (catalog, creds) = d.catalog.as_ref().map_or_else(
            || ("-".to_owned(), "-".to_owned()),
            |c| {
                let mut s = format!(
                    "{}/{}",
                    c.destination_path.trim_end_matches('/'),
                    c.server_name
                );
                if !c.server_name_explicit {
                    s.push_str(" (default name)");
                }
                (s, c.credentials.label())
            },
        );
        let schedule = if d.schedules.is_empty() {
            "-".to_owned()
        } else {
            d.schedules
                .iter()
                .map(|s| s.schedule.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let bootstrap = match &d.recovery {
            Some(r) => match &r.catalog {
                Some(c) => format!(
                    "recovery from {}/{}",
                    c.destination_path.trim_end_matches('/'),
                    c.server_name
                ),
                None => format!("recovery from {}", r.source),
            },
            None => d.bootstrap.join("+"),
        };
        rows.push(vec![
            d.env.clone(),
            d.svc.clone(),
            format!("{}/{}", d.namespace, d.cluster),
            model.to_owned(),
            catalog,
            creds,
            d.retention_policy.clone().unwrap_or_else(|| "-".into()),
            schedule,
            bootstrap,
        ]);
    }
    let mut out = if list.is_empty() {
        "no databases found\n".to_owned()
    } else {
        table(p, &rows)
    };
    if !problems.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Style::Heading, "Not read"));
        for pr in problems {
            let _ = writeln!(
                out,
                "  {}/{} {}: {}",
                sanitize(&pr.env),
                sanitize(&pr.svc),
                p.paint(Style::Dim, &sanitize(&pr.at)),
                sanitize(&pr.message)
            );
        }
    }
    out
}

/// `cnpg-ops lint`.
#[must_use]
pub fn lint(
    p: &Printer,
    findings: &[crate::lint::LintFinding],
    files: usize,
    databases: usize,
) -> String {
    let mut out = String::new();
    for f in findings {
        let sev = match f.severity {
            Severity::Error => p.paint(Style::Bad, "error"),
            Severity::Warning => p.paint(Style::Warn, "warning"),
            Severity::Info => p.paint(Style::Dim, "info"),
        };
        let place = if f.line > 0 {
            format!("{}:{}", f.file.display(), f.line)
        } else {
            f.file.display().to_string()
        };
        let _ = writeln!(
            out,
            "{}: {sev} [{}] {}",
            sanitize(&place),
            f.rule,
            sanitize(&f.message)
        );
        if !f.hint.is_empty() {
            let _ = writeln!(
                out,
                "  {} {}",
                p.paint(Style::Dim, "hint:"),
                sanitize(&f.hint)
            );
        }
    }
    let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, notes) = (n(Severity::Error), n(Severity::Warning), n(Severity::Info));
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let summary = format!(
        "{}, {}, {} in {} and {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(notes, "note"),
        plural(files, "YAML file"),
        plural(databases, "database"),
    );
    if !findings.is_empty() {
        out.push('\n');
    }
    let style = if errors > 0 {
        Style::Bad
    } else if warnings > 0 {
        Style::Warn
    } else {
        Style::Good
    };
    let _ = writeln!(out, "{}", p.paint(style, &summary));
    out
}

/// `cnpg-ops lint --list-rules`.
#[must_use]
pub fn lint_rules(p: &Printer, rules: &[&crate::lint::Rule]) -> String {
    let mut rows = vec![
        ["GROUP", "RULE", "SEVERITY", "CATCHES"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for r in rules {
        rows.push(vec![
            r.group.to_string(),
            r.id.to_owned(),
            r.severity.to_string(),
            r.meaning.to_owned(),
        ]);
    }
    table(p, &rows)
}

/// `cnpg-ops playbook list`.
#[must_use]
pub fn playbook_list(p: &Printer, books: &[crate::runbook::playbook::Playbook]) -> String {
    let mut rows = vec![["PLAYBOOK", "STEPS", "SUMMARY"].map(str::to_owned).to_vec()];
    for b in books {
        rows.push(vec![
            b.name.clone(),
            b.steps.len().to_string(),
            b.summary.clone(),
        ]);
    }
    table(p, &rows)
}

/// `cnpg-ops playbook show`: the runbook as a person would follow it.
#[must_use]
pub fn playbook_show(p: &Printer, b: &crate::runbook::playbook::Playbook) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        p.paint(Style::Heading, &format!("{} — {}", b.name, b.summary))
    );
    let _ = writeln!(out, "  {}\n", b.command);
    for (i, s) in b.steps.iter().enumerate() {
        let mut tags = vec![s.action.clone(), format!("timeout {}", s.timeout)];
        if s.destructive {
            tags.push(p.paint(Style::Bad, "destructive"));
        } else if s.read_only {
            tags.push("read-only".to_owned());
        }
        let _ = writeln!(out, "{}. {} [{}]", i + 1, s.title, tags.join(", "));
        let _ = writeln!(out, "   {} {}", p.paint(Style::Dim, "by hand:"), s.manual);
    }
    out
}

/// `cnpg-ops audit`.
#[must_use]
pub fn audit(
    p: &Printer,
    databases: &[crate::commands::audit::DatabaseReport],
    findings: &[crate::audit::AuditFinding],
    seconds: f64,
) -> String {
    use crate::audit::Scope;
    let mut out = String::new();
    let age = |s: Option<i64>| {
        s.map_or_else(
            || "-".to_owned(),
            |s| human_duration(chrono::Duration::seconds(s)),
        )
    };
    let mut rows = vec![vec![
        "DATABASE".to_owned(),
        "CATALOG".to_owned(),
        "FIRST RECOVERABLE".to_owned(),
        "NEWEST WAL".to_owned(),
        "NEWEST BACKUP".to_owned(),
        "GAPS".to_owned(),
        "FINDINGS".to_owned(),
    ]];
    for d in databases {
        let m = &d.metrics;
        let mine = findings.iter().filter(|f| {
            f.scope == Scope::Database
                && f.env.as_deref() == Some(d.env.as_str())
                && f.svc.as_deref() == Some(d.svc.as_str())
        });
        let (e, w) = mine.fold((0, 0), |(e, w), f| match f.severity {
            Severity::Error => (e + 1, w),
            Severity::Warning => (e, w + 1),
            Severity::Info => (e, w),
        });
        let status = match (e, w) {
            (0, 0) => p.paint(Style::Good, "ok"),
            (0, w) => p.paint(Style::Warn, &format!("{w} warning(s)")),
            (e, _) => p.paint(Style::Bad, &format!("{e} error(s)")),
        };
        rows.push(vec![
            format!("{}/{}", d.env, d.svc),
            sanitize(d.catalog.as_deref().unwrap_or("-")).into_owned(),
            if m.catalog_readable {
                t(m.first_recoverable)
            } else {
                "unreadable".to_owned()
            },
            age(m.newest_wal_age_seconds),
            age(m.newest_backup_age_seconds),
            m.wal_gaps.map_or_else(|| "-".to_owned(), |g| g.to_string()),
            status,
        ]);
    }
    out.push_str(&table(p, &rows));
    if !findings.is_empty() {
        let _ = writeln!(out);
    }
    let mut last = String::new();
    for f in findings {
        let head = match f.scope {
            Scope::Database => format!(
                "{}/{}",
                f.env.as_deref().unwrap_or("?"),
                f.svc.as_deref().unwrap_or("?")
            ),
            Scope::Bucket => format!("bucket {}", f.location.as_deref().unwrap_or("?")),
            Scope::Destination => f.location.clone().unwrap_or_default(),
        };
        if head != last {
            let _ = writeln!(out, "{}", p.paint(Style::Heading, &sanitize(&head)));
            last = head;
        }
        let sev = match f.severity {
            Severity::Error => p.paint(Style::Bad, "error  "),
            Severity::Warning => p.paint(Style::Warn, "warning"),
            Severity::Info => p.paint(Style::Dim, "info   "),
        };
        let _ = writeln!(
            out,
            "  {sev} {} {}",
            p.paint(Style::Dim, f.id),
            sanitize(&f.message)
        );
        if let Some(h) = &f.hint {
            let _ = writeln!(
                out,
                "          {} {}",
                p.paint(Style::Dim, "hint:"),
                sanitize(h)
            );
        }
    }
    let n = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings, notes) = (n(Severity::Error), n(Severity::Warning), n(Severity::Info));
    let style = if errors > 0 {
        Style::Bad
    } else if warnings > 0 {
        Style::Warn
    } else {
        Style::Good
    };
    let _ = writeln!(
        out,
        "\n{}",
        p.paint(
            style,
            &format!(
                "{} database(s) audited in {seconds:.1}s: {errors} error(s), {warnings} warning(s), {notes} note(s)",
                databases.len()
            )
        )
    );
    out
}

/// `catalog wal`.
#[must_use]
pub fn wal_segment(
    p: &Printer,
    segment: &str,
    object: &str,
    r: &crate::catalog::walread::SegmentRecords,
) -> String {
    use crate::catalog::walread::SegmentEnd;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (PostgreSQL {}, timeline {}, system {})",
        p.paint(Style::Heading, segment),
        r.pg_major,
        r.timeline,
        r.system_id
    );
    let _ = writeln!(out, "  read from {}", sanitize(object));
    let ends = match r.end {
        SegmentEnd::Switch => "ends with a WAL switch",
        SegmentEnd::ContinuesInNext => "its last record continues in the next segment",
        SegmentEnd::Invalid => "its valid WAL ends (unwritten space, or damage)",
    };
    let _ = writeln!(out, "  {} records, {ends} at {}", r.records, r.end_lsn);
    if r.continued_bytes > 0 {
        let _ = writeln!(
            out,
            "  the first {} bytes continue a record of the previous segment",
            r.continued_bytes
        );
    }
    if !r.xacts.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Style::Heading, "Commits and aborts"));
        for x in &r.xacts {
            let _ = writeln!(
                out,
                "  {:<12} {:<8} xid {:<10} {}",
                x.lsn.to_string(),
                match (x.committed, x.prepared) {
                    (true, false) => "commit",
                    (false, false) => "abort",
                    (true, true) => "commit-2pc",
                    (false, true) => "abort-2pc",
                },
                x.xid,
                x.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
        }
    }
    if !r.restore_points.is_empty() {
        let _ = writeln!(out, "\n{}", p.paint(Style::Heading, "Restore points"));
        for rp in &r.restore_points {
            let _ = writeln!(
                out,
                "  {:<12} {} {}",
                rp.lsn.to_string(),
                sanitize(&rp.name),
                rp.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            );
        }
    }
    for (lsn, tli, prev) in &r.end_of_recovery {
        let _ = writeln!(out, "  {lsn} end of recovery: timeline {prev} -> {tli}");
    }
    out
}
