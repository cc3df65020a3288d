//! Writes JSON values as block-style YAML, deterministically: keys in the
//! order the value holds them, two-space indents, sequences indented under
//! their key, and strings quoted whenever a plain scalar could be read as
//! something else by any common parser (YAML 1.1 booleans included).

use serde_json::Value;

/// One document, ending with a newline.
#[must_use]
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

/// Several documents separated by `---`.
#[must_use]
pub fn to_stream(values: &[Value]) -> String {
    values
        .iter()
        .map(to_string)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// A value written as it would follow `key: ` or `- ` at column `indent`
/// (scalars and empty collections) — `None` when it needs a block of its own.
#[must_use]
pub fn inline(value: &Value, indent: usize) -> Option<String> {
    match value {
        Value::Object(m) if !m.is_empty() => None,
        Value::Array(a) if !a.is_empty() => None,
        other => Some(scalar(other, indent)),
    }
}

/// The block for a collection value at `indent` spaces (each line ends with
/// a newline).
#[must_use]
pub fn block(value: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_block(&mut out, value, indent);
    out
}

/// A sequence item at `indent` (the column of its dash).
#[must_use]
pub fn seq_item(value: &Value, indent: usize) -> String {
    let mut out = String::new();
    write_seq(&mut out, std::slice::from_ref(value), indent);
    out
}

/// A value on one line in flow style (`{a: b, c: [d, e]}`), as hints quote it.
#[must_use]
pub fn flow(value: &Value) -> String {
    match value {
        Value::Object(m) => {
            let entries: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", flow_string(k), flow(v)))
                .collect();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(flow).collect::<Vec<_>>().join(", ")),
        Value::String(s) => flow_string(s),
        other => scalar(other, 0),
    }
}

/// A string in flow context: plain when that is safe there too, else double-quoted.
fn flow_string(s: &str) -> String {
    if plain_is_safe(s) && !s.contains([',', '[', ']', '{', '}']) {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

/// A mapping entry `key: value` at `indent`.
#[must_use]
pub fn map_entry(key: &str, value: &Value, indent: usize) -> String {
    let mut map = serde_json::Map::new();
    map.insert(key.to_owned(), value.clone());
    let mut out = String::new();
    write_map(&mut out, &map, indent);
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in map {
        out.push_str(&pad);
        out.push_str(&string(k, indent));
        out.push(':');
        if let Some(s) = inline(v, indent) {
            out.push(' ');
            out.push_str(&s);
            out.push('\n');
        } else {
            out.push('\n');
            write_block(out, v, indent + 2);
        }
    }
}

fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    let pad = " ".repeat(indent);
    for item in items {
        out.push_str(&pad);
        out.push_str("- ");
        if let Some(s) = inline(item, indent) {
            out.push_str(&s);
            out.push('\n');
        } else {
            // The first line of the nested block shares the dash's line.
            let mut inner = String::new();
            write_block(&mut inner, item, indent + 2);
            out.push_str(&inner[indent + 2..]);
        }
    }
}

/// A non-empty collection as a block at `indent`.
fn write_block(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(m) => write_map(out, m, indent),
        Value::Array(a) => write_seq(out, a, indent),
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar(other, indent));
            out.push('\n');
        }
    }
}

fn scalar(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

/// A string as a scalar: plain when unambiguous, a literal block for
/// multi-line text, double-quoted otherwise.
fn string(s: &str, indent: usize) -> String {
    if plain_is_safe(s) {
        return s.to_owned();
    }
    if s.contains('\n') && literal_is_safe(s) {
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        let pad = " ".repeat(indent + 2);
        let mut out = format!("|{chomp}");
        for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
                out.push_str(line);
            }
        }
        return out;
    }
    // JSON string escapes are a subset of YAML's double-quoted escapes.
    Value::String(s.to_owned()).to_string()
}

fn literal_is_safe(s: &str) -> bool {
    !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && s.chars()
            .all(|c| c == '\n' || !(c.is_control() || c == '\u{feff}'))
        && s.lines().all(|l| !l.ends_with([' ', '\t']))
}

/// Whether `s` written without quotes reads back as the same string under
/// YAML 1.1 and 1.2.
#[must_use]
pub fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !matches!(super::resolve_plain(s), Value::String(_)) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "~"
    ) {
        return false;
    }
    // Special floats and YAML 1.1 binary integers read as numbers elsewhere.
    let unsigned = lower.trim_start_matches(['-', '+']);
    if matches!(unsigned, ".inf" | ".nan") || unsigned.starts_with("0b") {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first.is_whitespace() {
        // `-x` and `:x` are plain in YAML 1.2 but read badly; quote them.
        return false;
    }
    if s.ends_with([' ', '\t', ':']) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains('\t') {
        return false;
    }
    if s.chars().any(|c| c.is_control() || c == '\u{feff}') {
        return false;
    }
    // Numbers, times and dates in any YAML dialect (1:30, 2026-05-01, 1_000).
    let numeric_like = (first.is_ascii_digit() || first == '.' || first == '+')
        && s.chars().all(|c| {
            c.is_ascii_digit() || "_:.-+eE".contains(c) || c == ' ' || c == 'T' || c == 'Z'
        });
    !numeric_like
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flow_reads_back_as_written() {
        let v = json!({
            "ports": [{"port": "53", "protocol": "ANY"}, {"port": 9187}],
            "k8s:io.kubernetes.pod.namespace": "<app namespace>",
            "odd": ["a, b", "[x]", "{y}", "k: v", "", "yes", "-1", "#c", true, null, 1.5],
            "empty": [{}, []],
        });
        let text = flow(&v);
        assert!(!text.contains('\n'), "{text}");
        assert_eq!(crate::yaml::parse_values(&text).unwrap(), vec![v], "{text}");
        assert_eq!(
            flow(&json!({"podSelector": {}, "policyTypes": ["Egress"]})),
            "{podSelector: {}, policyTypes: [Egress]}"
        );
    }

    #[test]
    fn block_layout() {
        let v = json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "foo-pg", "annotations": {}},
            "spec": {
                "instances": 1,
                "externalClusters": [
                    {"name": "origin", "plugin": {"name": "barman-cloud.cloudnative-pg.io",
                        "parameters": {"serverName": "foo-pg"}}}
                ],
                "args": ["a", ["b", "c"]],
                "empty": []
            }
        });
        let text = to_string(&v);
        assert_eq!(
            text,
            "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: foo-pg\n  annotations: {}\nspec:\n  instances: 1\n  externalClusters:\n    - name: origin\n      plugin:\n        name: barman-cloud.cloudnative-pg.io\n        parameters:\n          serverName: foo-pg\n  args:\n    - a\n    - - b\n      - c\n  empty: []\n"
        );
        assert_eq!(super::super::parse_values(&text).unwrap(), vec![v]);
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "",
            "1",
            "1.5",
            "true",
            "yes",
            "On",
            "null",
            "~",
            "2026-05-01",
            "10:30",
            "@daily",
            "*",
            "- x",
            "a: b",
            "a #b",
            "trailing ",
            " lead",
            "x:",
            "0x1F",
            "1e3",
            "'q'",
            "2026-05-01T10:00:00+02:00",
            "tab\tin",
        ] {
            let text = to_string(&json!({ "k": s }));
            assert_eq!(
                super::super::parse_values(&text).unwrap()[0]["k"],
                json!(s),
                "{s:?} -> {text}"
            );
            assert!(text.contains('"'), "{s:?} should be quoted: {text}");
        }
        for s in [
            "foo-pg",
            "20Gi",
            "0 0 2 * * *",
            "s3://bucket/path/",
            "a:b",
            "ghcr.io/x:16.4",
        ] {
            assert_eq!(to_string(&json!({ "k": s })), format!("k: {s}\n"));
        }
    }

    #[test]
    fn multi_line_strings_use_literal_blocks() {
        let v = json!({"sql": ["CREATE EXTENSION vector;\nSELECT 1;\n", "no newline\nend"]});
        let text = to_string(&v);
        assert!(
            text.contains("  - |\n    CREATE EXTENSION vector;\n"),
            "{text}"
        );
        assert!(text.contains("- |-\n"), "{text}");
        assert_eq!(super::super::parse_values(&text).unwrap()[0], v);
    }

    #[test]
    fn streams_are_separated() {
        let s = to_stream(&[json!({"a": 1}), json!({"b": 2})]);
        assert_eq!(s, "a: 1\n---\nb: 2\n");
    }
}
