//! Edits to existing YAML files that replace only the bytes they must.
//!
//! The repositories we edit are hand-written and heavily commented; an edit
//! that re-serialises a file drops every comment. Each operation here finds
//! the node by its byte range, splices new text in at the file's own
//! indentation, then parses the result again and checks that the edited
//! document equals the intended value and that every other document is
//! unchanged — an edit that cannot be verified is refused, never written.

use serde_json::Value;

use super::{Kind, Node, Step, emit, parse, path_string};

/// Why an edit was refused.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The file does not parse.
    #[error("the file is not valid YAML: {0}")]
    Parse(#[from] super::Error),
    /// No such document.
    #[error("the file has no document number {0}")]
    NoDocument(usize),
    /// A step of the path does not exist or has the wrong shape.
    #[error("`{path}` {problem}")]
    Path {
        /// The path, dotted.
        path: String,
        /// What was found instead.
        problem: String,
    },
    /// The edited text did not read back as intended.
    #[error(
        "the edit of `{path}` could not be verified (the result does not read back as intended); nothing was written\nhint: edit the file by hand or report this file's layout as a bug"
    )]
    Verify {
        /// The path, dotted.
        path: String,
    },
}

/// A text being edited.
#[derive(Debug, Clone)]
pub struct Editor {
    text: String,
}

enum Op<'a> {
    Set(&'a Value),
    Append(&'a Value),
    Remove,
}

impl Editor {
    /// Starts editing `text`.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into() }
    }

    /// The current text.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The edited text.
    #[must_use]
    pub fn finish(self) -> String {
        self.text
    }

    /// Sets the value at `path` in document `doc`, creating missing mapping
    /// keys on the way.
    pub fn set(&mut self, doc: usize, path: &[Step], value: &Value) -> Result<(), EditError> {
        self.apply(doc, path, &Op::Set(value))
    }

    /// Sets the value at `path` with the fewest edits: mappings are merged
    /// key by key (keys missing from `value` are removed), sequences of equal
    /// length item by item, and only scalars that differ are rewritten, so
    /// comments on unchanged parts stay where they are. Falls back to
    /// [`Editor::set`] for a part that cannot be merged.
    pub fn update(&mut self, doc: usize, path: &[Step], value: &Value) -> Result<(), EditError> {
        let docs = parse(&self.text)?;
        let current = docs
            .get(doc)
            .and_then(|d| d.root.as_ref())
            .ok_or(EditError::NoDocument(doc))?
            .at(path)
            .map(Node::to_json);
        let saved = self.text.clone();
        let merged: Result<(), EditError> = match (&current, value) {
            (Some(old), new) if old == new => return Ok(()),
            (Some(Value::Object(old)), Value::Object(new)) => (|| {
                for (k, v) in new {
                    let mut p = path.to_vec();
                    p.push(Step::Key(k.clone()));
                    self.update(doc, &p, v)?;
                }
                for k in old.keys().filter(|k| !new.contains_key(*k)) {
                    let mut p = path.to_vec();
                    p.push(Step::Key(k.clone()));
                    self.remove(doc, &p)?;
                }
                Ok(())
            })(),
            (Some(Value::Array(old)), Value::Array(new)) if old.len() == new.len() => (|| {
                for (i, v) in new.iter().enumerate() {
                    let mut p = path.to_vec();
                    p.push(Step::Index(i));
                    self.update(doc, &p, v)?;
                }
                Ok(())
            })(
            ),
            _ => return self.set(doc, path, value),
        };
        if merged.is_err() {
            self.text = saved;
            return self.set(doc, path, value);
        }
        Ok(())
    }

    /// Appends `item` to the sequence at `path`, creating it when missing.
    pub fn append(&mut self, doc: usize, path: &[Step], item: &Value) -> Result<(), EditError> {
        self.apply(doc, path, &Op::Append(item))
    }

    /// Removes the mapping entry or sequence item at `path`.
    pub fn remove(&mut self, doc: usize, path: &[Step]) -> Result<(), EditError> {
        self.apply(doc, path, &Op::Remove)
    }

    /// Appends a new document at the end of the stream.
    pub fn push_document(&mut self, value: &Value) -> Result<(), EditError> {
        let before = super::parse_values(&self.text)?;
        let mut text = self.text.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !before.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&emit::to_string(value));
        let text = line_endings(&self.text, text);
        let after = super::parse_values(&text)?;
        let mut expected = before;
        expected.push(value.clone());
        if after != expected {
            return Err(EditError::Verify {
                path: "(new document)".into(),
            });
        }
        self.text = text;
        Ok(())
    }

    fn apply(&mut self, doc: usize, path: &[Step], op: &Op<'_>) -> Result<(), EditError> {
        let docs = parse(&self.text)?;
        let root = docs
            .get(doc)
            .and_then(|d| d.root.as_ref())
            .ok_or(EditError::NoDocument(doc))?;
        let before: Vec<Option<Value>> = docs
            .iter()
            .map(|d| d.root.as_ref().map(Node::to_json))
            .collect();
        let current = root.to_json();
        let mut expected = current.clone();
        apply_json(&mut expected, path, op)?;
        if expected == current {
            // Nothing to change: leave the text (and its comments) alone.
            return Ok(());
        }
        let (range, replacement) = splice(&self.text, root, path, op)?;
        let mut text = self.text.clone();
        text.replace_range(range, &line_endings(&self.text, replacement));
        let after: Vec<Option<Value>> = parse(&text)
            .map_err(|_| EditError::Verify {
                path: path_string(path),
            })?
            .iter()
            .map(|d| d.root.as_ref().map(Node::to_json))
            .collect();
        let ok = after.len() == before.len()
            && after.iter().zip(&before).enumerate().all(|(i, (a, b))| {
                if i == doc {
                    a.as_ref() == Some(&expected)
                } else {
                    a == b
                }
            });
        if !ok {
            return Err(EditError::Verify {
                path: path_string(path),
            });
        }
        self.text = text;
        Ok(())
    }
}

/// New text in the file's own line endings (CRLF files stay CRLF).
fn line_endings(file: &str, new: String) -> String {
    if file.contains("\r\n") {
        new.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        new
    }
}

fn path_err(path: &[Step], problem: impl Into<String>) -> EditError {
    EditError::Path {
        path: path_string(path),
        problem: problem.into(),
    }
}

fn json_child<'v>(value: &'v mut Value, step: &Step) -> Option<&'v mut Value> {
    match (step, value) {
        (Step::Key(k), Value::Object(m)) => m.get_mut(k),
        (Step::Index(i), Value::Array(a)) => a.get_mut(*i),
        (Step::Where(k, v), Value::Array(a)) => a
            .iter_mut()
            .find(|item| item.get(k).and_then(Value::as_str) == Some(v.as_str())),
        _ => None,
    }
}

/// The same operation on the JSON value, to know what the text must read as.
fn apply_json(root: &mut Value, path: &[Step], op: &Op<'_>) -> Result<(), EditError> {
    let Some((last, parents)) = path.split_last() else {
        return Err(path_err(path, "is empty"));
    };
    let mut node = root;
    for (i, step) in parents.iter().enumerate() {
        if matches!(op, Op::Set(_) | Op::Append(_))
            && matches!(step, Step::Key(_))
            && node.is_object()
            && json_child(node, step).is_none()
            && let (Step::Key(k), Value::Object(m)) = (step, &mut *node)
        {
            m.insert(k.clone(), Value::Object(serde_json::Map::new()));
        }
        if matches!(op, Op::Set(_) | Op::Append(_)) && node.is_null() {
            *node = Value::Object(serde_json::Map::new());
            if let (Step::Key(k), Value::Object(m)) = (step, &mut *node) {
                m.insert(k.clone(), Value::Object(serde_json::Map::new()));
            }
        }
        node = json_child(node, step).ok_or_else(|| path_err(&path[..=i], "does not exist"))?;
    }
    if node.is_null() && !matches!(op, Op::Remove) {
        *node = Value::Object(serde_json::Map::new());
    }
    match op {
        Op::Set(v) => match (last, node) {
            (Step::Key(k), Value::Object(m)) => {
                m.insert(k.clone(), (*v).clone());
            }
            (step, node) => {
                *json_child(node, step).ok_or_else(|| path_err(path, "does not exist"))? =
                    (*v).clone();
            }
        },
        Op::Append(item) => {
            if let (Step::Key(k), Value::Object(m)) = (last, &mut *node) {
                let seq = m
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if seq.is_null() {
                    *seq = Value::Array(Vec::new());
                }
                return match seq {
                    Value::Array(a) => {
                        a.push((*item).clone());
                        Ok(())
                    }
                    _ => Err(path_err(path, "is not a sequence")),
                };
            }
            match json_child(node, last) {
                Some(Value::Array(a)) => a.push((*item).clone()),
                _ => return Err(path_err(path, "is not a sequence")),
            }
        }
        Op::Remove => match (last, node) {
            (Step::Key(k), Value::Object(m)) => {
                m.shift_remove(k)
                    .ok_or_else(|| path_err(path, "does not exist"))?;
            }
            (Step::Index(_) | Step::Where(..), Value::Array(a)) => {
                let idx = index_of_json(a, last).ok_or_else(|| path_err(path, "does not exist"))?;
                a.remove(idx);
            }
            _ => return Err(path_err(path, "does not exist")),
        },
    }
    Ok(())
}

fn index_of_json(a: &[Value], step: &Step) -> Option<usize> {
    match step {
        Step::Index(i) => (*i < a.len()).then_some(*i),
        Step::Where(k, v) => a
            .iter()
            .position(|item| item.get(k).and_then(Value::as_str) == Some(v.as_str())),
        Step::Key(_) => None,
    }
}

fn index_of_node(items: &[Node], step: &Step) -> Option<usize> {
    match step {
        Step::Index(i) => (*i < items.len()).then_some(*i),
        Step::Where(k, v) => items
            .iter()
            .position(|n| n.get(k).and_then(Node::as_str) == Some(v.as_str())),
        Step::Key(_) => None,
    }
}

/// Byte offset just past the end of the line holding `pos` (past its `\n`).
fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

/// Column (in bytes) of `pos` on its line.
fn column(text: &str, pos: usize) -> usize {
    pos - line_start(text, pos)
}

/// Text inserted after the line holding `pos`; adds the missing final newline.
fn after_line(text: &str, pos: usize, insert: String) -> (std::ops::Range<usize>, String) {
    let at = line_end(text, pos);
    if at == text.len() && !text.ends_with('\n') {
        (at..at, format!("\n{insert}"))
    } else {
        (at..at, insert)
    }
}

/// Byte offset just past the colon that follows a mapping key.
fn after_colon(text: &str, key: &Node) -> usize {
    text[key.span.end..]
        .find(':')
        .map_or(key.span.end, |c| key.span.end + c + 1)
}

fn is_empty_scalar(node: &Node) -> bool {
    matches!(&node.kind, Kind::Scalar(s, super::Style::Plain) if s.is_empty())
}

fn flow_json(value: &Value) -> String {
    value.to_string()
}

/// The byte range to replace and its replacement.
fn splice(
    text: &str,
    root: &Node,
    path: &[Step],
    op: &Op<'_>,
) -> Result<(std::ops::Range<usize>, String), EditError> {
    // Walk as far as the path exists; remember the key node of the last step.
    let mut node = root;
    let mut key_node: Option<&Node> = None;
    for (i, step) in path.iter().enumerate() {
        let next = match (step, &node.kind) {
            (Step::Key(k), Kind::Map(_)) => node.entry(k).map(|(key, v)| (Some(key), v)),
            (Step::Index(_) | Step::Where(..), Kind::Seq(items)) => {
                index_of_node(items, step).map(|idx| (None, &items[idx]))
            }
            _ => None,
        };
        let Some((key, child)) = next else {
            return splice_missing(text, node, key_node, path, i, op);
        };
        if i + 1 == path.len() {
            return splice_existing(text, node, key, child, path, op);
        }
        key_node = key;
        node = child;
    }
    Err(path_err(path, "is empty"))
}

/// `path[..i]` exists as `node`, `path[i]` does not.
fn splice_missing(
    text: &str,
    node: &Node,
    key_node: Option<&Node>,
    path: &[Step],
    i: usize,
    op: &Op<'_>,
) -> Result<(std::ops::Range<usize>, String), EditError> {
    let value = match op {
        Op::Remove => return Err(path_err(&path[..=i], "does not exist")),
        Op::Set(v) => (*v).clone(),
        Op::Append(item) => Value::Array(vec![(*item).clone()]),
    };
    // Build the value for the missing tail: {path[i]: {path[i+1]: … value}}.
    let mut tail = value;
    for step in path[i + 1..].iter().rev() {
        let Step::Key(k) = step else {
            return Err(path_err(
                path,
                "cannot be created (it indexes a missing sequence)",
            ));
        };
        let mut m = serde_json::Map::new();
        m.insert(k.clone(), tail);
        tail = Value::Object(m);
    }
    let Step::Key(key) = &path[i] else {
        return Err(path_err(&path[..=i], "does not exist"));
    };
    match &node.kind {
        Kind::Map(entries) if !node.flow && !entries.is_empty() => {
            let col = column(text, entries[0].0.span.start);
            Ok(after_line(
                text,
                node.span.end,
                emit::map_entry(key, &tail, col),
            ))
        }
        Kind::Map(entries) if node.flow => {
            let close = node.span.end - 1;
            let sep = if entries.is_empty() { "" } else { ", " };
            Ok((
                close..close,
                format!(
                    "{sep}{}: {}",
                    flow_json(&Value::String(key.clone())),
                    flow_json(&tail)
                ),
            ))
        }
        Kind::Scalar(s, _) if s.is_empty() || s == "~" || s == "null" => {
            // `key:` with nothing after it: give it a block.
            let Some(k) = key_node else {
                return Err(path_err(&path[..i], "is empty"));
            };
            let mut m = serde_json::Map::new();
            m.insert(key.clone(), tail);
            let col = column(text, k.span.start);
            let block = emit::block(&Value::Object(m), col + 2);
            let colon = after_colon(text, k);
            Ok((colon..colon, format!("\n{}", block.trim_end_matches('\n'))))
        }
        _ => Err(path_err(&path[..i], "is not a mapping")),
    }
}

fn splice_existing(
    text: &str,
    parent: &Node,
    key: Option<&Node>,
    node: &Node,
    path: &[Step],
    op: &Op<'_>,
) -> Result<(std::ops::Range<usize>, String), EditError> {
    match op {
        Op::Set(value) => {
            let col = key.map_or_else(
                || column(text, node.span.start),
                |k| column(text, k.span.start),
            );
            if let (Kind::Scalar(_, style), Some(inline)) = (&node.kind, emit::inline(value, col)) {
                if is_empty_scalar(node) {
                    let at = key.map_or(node.span.start, |k| after_colon(text, k));
                    return Ok((at..at, format!(" {inline}")));
                }
                let rendered = match (style, value) {
                    (super::Style::DoubleQuoted, Value::String(s)) => {
                        flow_json(&Value::String(s.clone()))
                    }
                    (super::Style::SingleQuoted, Value::String(s)) if !s.contains('\n') => {
                        format!("'{}'", s.replace('\'', "''"))
                    }
                    _ => inline,
                };
                return Ok((node.span.clone(), rendered));
            }
            if node.flow || parent.flow {
                return Ok((node.span.clone(), flow_json(value)));
            }
            let Some(k) = key else {
                // A sequence item: replace the item after its dash.
                let item = emit::seq_item(value, column(text, node.span.start) - 2);
                let start = line_start(text, node.span.start);
                let end = line_end(text, node.span.end);
                let dash = text[start..node.span.start].rfind('-').map(|d| start + d);
                return match dash {
                    Some(d) if text[start..d].trim().is_empty() => Ok((start..end, item)),
                    _ => Err(path_err(
                        path,
                        "is laid out in a way that cannot be edited in place",
                    )),
                };
            };
            let colon = after_colon(text, k);
            let col = column(text, k.span.start);
            let block_below = !matches!(node.kind, Kind::Scalar(..))
                && !node.flow
                && text[colon..node.span.start].contains('\n');
            if let (true, None) = (block_below, emit::inline(value, col)) {
                // Block replaced by a block: keep the key's line (and its
                // comment) and the block's own indentation.
                let start = line_start(text, node.span.start);
                let indent = column(text, node.span.start);
                let rendered = emit::block(value, indent);
                return Ok((
                    start..node.span.end,
                    rendered.trim_end_matches('\n').to_owned(),
                ));
            }
            let rendered = match emit::inline(value, col) {
                Some(inline) => format!(" {inline}"),
                None => format!("\n{}", emit::block(value, col + 2).trim_end_matches('\n')),
            };
            let end = if is_empty_scalar(node) {
                colon
            } else {
                node.span.end.max(colon)
            };
            Ok((colon..end, rendered))
        }
        Op::Append(item) => match &node.kind {
            Kind::Seq(items) if node.flow => {
                let close = node.span.end - 1;
                let sep = if items.is_empty() { "" } else { ", " };
                Ok((close..close, format!("{sep}{}", flow_json(item))))
            }
            Kind::Seq(items) if !items.is_empty() => {
                // The first item follows its dash, possibly on the next line.
                let before = text[..items[0].span.start].trim_end();
                if !before.ends_with('-') {
                    return Err(path_err(
                        path,
                        "is laid out in a way that cannot be edited in place",
                    ));
                }
                let dash = column(text, before.len() - 1);
                Ok(after_line(text, node.span.end, emit::seq_item(item, dash)))
            }
            Kind::Scalar(s, _) if s.is_empty() || s == "~" || s == "null" => {
                let value = Value::Array(vec![(*item).clone()]);
                splice_existing(text, parent, key, node, path, &Op::Set(&value))
            }
            _ => Err(path_err(path, "is not a sequence")),
        },
        Op::Remove => {
            let siblings = match &parent.kind {
                Kind::Map(e) => e.len(),
                Kind::Seq(s) => s.len(),
                Kind::Scalar(..) => 0,
            };
            if parent.flow || siblings == 1 {
                // Rewrite the parent as a flow collection without the entry.
                let mut v = parent.to_json();
                let last = path.last().ok_or_else(|| path_err(path, "is empty"))?;
                match (&mut v, last) {
                    (Value::Object(m), Step::Key(k)) => {
                        m.shift_remove(k);
                    }
                    (Value::Array(a), step) => {
                        if let Some(i) = index_of_json(a, step) {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
                let start = if parent.flow {
                    parent.span.start
                } else {
                    // Block: from the end of the parent's own key line.
                    let ls = line_start(text, parent.span.start);
                    let before = &text[..ls];
                    before.trim_end_matches('\n').len()
                };
                let rendered = if parent.flow {
                    flow_json(&v)
                } else {
                    format!(" {}", flow_json(&v))
                };
                return Ok((start..parent.span.end, rendered));
            }
            let first = key.map_or(node.span.start, |k| k.span.start);
            let start = line_start(text, first);
            if !text[start..first].trim_start().is_empty() && key.is_some() {
                return Err(path_err(
                    path,
                    "is laid out in a way that cannot be edited in place",
                ));
            }
            Ok((
                start..line_end(text, node.span.end.max(first)),
                String::new(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::steps;
    use serde_json::json;

    const SA: &str = "\
# Service accounts for prod. Hand-maintained: keep the comments.
service_accounts:
  # CloudNativePG backups
  - name: cnpg-backup
    roles:
      - roles/storage.objectAdmin   # objects
    workload_identity_bindings:
      - prod-foo/foo-pg   # foo
      - prod-bar/bar-pg
    # end of cnpg-backup

  - name: other
    roles: [roles/viewer]
";

    #[test]
    fn append_to_a_block_sequence_keeps_every_comment() {
        let mut e = Editor::new(SA);
        e.append(
            0,
            &steps("service_accounts[name=cnpg-backup].workload_identity_bindings"),
            &json!("dev-foo/foo-pg"),
        )
        .unwrap();
        let out = e.finish();
        assert_eq!(
            out,
            SA.replace(
                "      - prod-bar/bar-pg\n",
                "      - prod-bar/bar-pg\n      - dev-foo/foo-pg\n"
            )
        );
    }

    #[test]
    fn append_to_a_flow_sequence_and_create_a_missing_one() {
        let mut e = Editor::new(SA);
        e.append(
            0,
            &steps("service_accounts[name=other].roles"),
            &json!("roles/storage.objectViewer"),
        )
        .unwrap();
        e.append(
            0,
            &steps("service_accounts[name=other].workload_identity_bindings"),
            &json!("dev/x"),
        )
        .unwrap();
        let out = e.finish();
        assert!(
            out.contains("roles: [roles/viewer, \"roles/storage.objectViewer\"]\n"),
            "{out}"
        );
        assert!(
            out.ends_with("    workload_identity_bindings:\n      - dev/x\n"),
            "{out}"
        );
        assert!(out.contains("# end of cnpg-backup"));
    }

    #[test]
    fn set_replaces_scalars_in_their_own_style() {
        let text = "metadata:\n  name: \"foo-pg\"  # the name\nspec:\n  instances: 3\n  storage:\n    size: 10Gi\n";
        let mut e = Editor::new(text);
        e.set(0, &steps("metadata.name"), &json!("bar-pg")).unwrap();
        e.set(0, &steps("spec.instances"), &json!(1)).unwrap();
        e.set(0, &steps("spec.storage.size"), &json!("20Gi"))
            .unwrap();
        let out = e.finish();
        assert!(
            out.starts_with("metadata:\n  name: \"bar-pg\"  # the name\n"),
            "{out}"
        );
        assert!(out.contains("  instances: 1\n"));
        assert!(out.contains("    size: 20Gi\n"));
    }

    #[test]
    fn set_creates_nested_keys_and_replaces_blocks() {
        let text = "apiVersion: v1\nkind: Cluster\nmetadata:\n  name: foo # keep\nspec:\n  bootstrap:\n    initdb:\n      database: app\n  # storage below\n  storage:\n    size: 1Gi\n";
        let mut e = Editor::new(text);
        e.set(
            0,
            &steps("spec.bootstrap"),
            &json!({"recovery": {"source": "origin"}}),
        )
        .unwrap();
        e.set(
            0,
            &[
                Step::key("metadata"),
                Step::key("labels"),
                Step::key("cnpg.io/x"),
            ],
            &json!("z"),
        )
        .unwrap();
        let out = e.finish();
        assert_eq!(
            out,
            "apiVersion: v1\nkind: Cluster\nmetadata:\n  name: foo # keep\n  labels:\n    cnpg.io/x: z\nspec:\n  bootstrap:\n    recovery:\n      source: origin\n  # storage below\n  storage:\n    size: 1Gi\n"
        );
    }

    #[test]
    fn remove_entries_and_items() {
        let text = "a:\n  keep: 1 # k\n  drop: 2\n  also: [1, 2]\nlist:\n  - x\n  - y\n";
        let mut e = Editor::new(text);
        e.remove(0, &steps("a.drop")).unwrap();
        e.remove(0, &steps("list[0]")).unwrap();
        e.remove(0, &steps("a.also[1]")).unwrap();
        assert_eq!(e.text(), "a:\n  keep: 1 # k\n  also: [1]\nlist:\n  - y\n");
        e.remove(0, &steps("list[0]")).unwrap();
        assert_eq!(e.text(), "a:\n  keep: 1 # k\n  also: [1]\nlist: []\n");
        assert!(matches!(
            e.remove(0, &steps("a.nope")),
            Err(EditError::Path { .. })
        ));
    }

    #[test]
    fn other_documents_are_untouched_and_new_documents_appended() {
        let text = "kind: A\nx: 1\n---\n# b\nkind: B\nx: 2\n";
        let mut e = Editor::new(text);
        e.set(1, &steps("x"), &json!(3)).unwrap();
        e.push_document(&json!({"kind": "C"})).unwrap();
        assert_eq!(
            e.finish(),
            "kind: A\nx: 1\n---\n# b\nkind: B\nx: 3\n---\nkind: C\n"
        );
    }

    #[test]
    fn crlf_files_stay_crlf() {
        let text = "a:\r\n  - x\r\nb: 1\r\n";
        let mut e = Editor::new(text);
        e.append(0, &steps("a"), &json!("z")).unwrap();
        e.set(0, &steps("c.d"), &json!(2)).unwrap();
        let out = e.finish();
        assert_eq!(out, "a:\r\n  - x\r\n  - z\r\nb: 1\r\nc:\r\n  d: 2\r\n");
    }

    #[test]
    fn unchanged_values_and_key_line_comments_are_kept() {
        let text = "spec:\n  bootstrap: # cloned by hand\n    # inner note\n    recovery:\n      source: prod # the source\n  x: 1\n";
        let mut e = Editor::new(text);
        e.set(
            0,
            &steps("spec.bootstrap"),
            &json!({"recovery": {"source": "prod"}}),
        )
        .unwrap();
        assert_eq!(e.text(), text, "an unchanged value is not rewritten");
        e.set(
            0,
            &steps("spec.bootstrap"),
            &json!({"initdb": {"database": "app"}}),
        )
        .unwrap();
        assert!(
            e.text()
                .starts_with("spec:\n  bootstrap: # cloned by hand\n"),
            "{}",
            e.text()
        );
        let mut u = Editor::new(text);
        u.update(
            0,
            &steps("spec.bootstrap"),
            &json!({"recovery": {"source": "dev", "database": "foo"}}),
        )
        .unwrap();
        assert_eq!(
            u.text(),
            "spec:\n  bootstrap: # cloned by hand\n    # inner note\n    recovery:\n      source: dev # the source\n      database: foo\n  x: 1\n"
        );
    }

    #[test]
    fn flow_collections_with_trailing_comments() {
        let text = "parameters: {barmanObjectName: store} # write store
roles: [a]  # keep
";
        let mut e = Editor::new(text);
        e.set(0, &steps("parameters.serverName"), &json!("x-g2"))
            .unwrap();
        e.append(0, &steps("roles"), &json!("b")).unwrap();
        assert_eq!(
            e.text(),
            "parameters: {barmanObjectName: store, \"serverName\": \"x-g2\"} # write store
roles: [a, \"b\"]  # keep
"
        );
    }

    #[test]
    fn empty_keys_become_blocks() {
        let text = "resources:\nother: 1\n";
        let mut e = Editor::new(text);
        e.append(0, &steps("resources"), &json!("database.yaml"))
            .unwrap();
        assert_eq!(e.text(), "resources:\n  - database.yaml\nother: 1\n");
    }
}
