//! YAML as the GitOps repository holds it: hand-written, commented files.
//!
//! Three jobs, no IO:
//! - [`parse`] reads a multi-document stream into [`Node`] trees that remember
//!   where each node sits in the text (byte range, line, column), so a lint can
//!   say `file:line` and an edit can splice text;
//! - [`Node::to_json`] turns a tree into a `serde_json::Value` (YAML 1.2 core
//!   schema), from which typed documents are deserialized;
//! - [`emit`] writes new documents deterministically, and [`edit`] changes
//!   existing files by replacing only the bytes that change, so comments, key
//!   order and formatting survive.
//!
//! What it does not do: YAML 1.1 booleans (`yes`, `on`) are read as strings, as
//! in YAML 1.2; the emitter quotes them so the files it writes mean the same to
//! every parser.

pub mod edit;
pub mod emit;

use std::fmt;
use std::ops::Range;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A YAML syntax error, with the position it was found at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct Error {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// How a scalar was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted.
    Plain,
    /// `'single'`.
    SingleQuoted,
    /// `"double"`.
    DoubleQuoted,
    /// `|` block.
    Literal,
    /// `>` block.
    Folded,
}

/// One node with its place in the text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The content.
    pub kind: Kind,
    /// Byte range in the source text. For block collections the range ends
    /// where their last content ends (trailing comments are not part of it).
    pub span: Range<usize>,
    /// 1-based line of the first character.
    pub line: usize,
    /// 0-based column (in characters) of the first character.
    pub column: usize,
    /// An explicit tag such as `!!str`, if any.
    pub tag: Option<String>,
    /// Whether a collection is written in flow style (`[a, b]`, `{a: 1}`).
    pub flow: bool,
}

/// Node content.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A scalar: its decoded text and how it was written.
    Scalar(String, Style),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in the order written.
    Map(Vec<(Node, Node)>),
}

/// One document of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The root node; `None` for an empty document.
    pub root: Option<Node>,
    /// 1-based line where the document starts (its `---` if explicit).
    pub line: usize,
}

/// Parses a multi-document YAML stream.
pub fn parse(text: &str) -> Result<Vec<Document>, Error> {
    let offsets = Offsets::new(text);
    let mut builder = Builder {
        text,
        offsets: &offsets,
        stack: Vec::new(),
        anchors: Vec::new(),
        docs: Vec::new(),
        doc_line: 1,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| Error {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        builder.event(event, span)?;
    }
    Ok(builder.docs)
}

/// Parses a stream and converts every non-empty document to JSON.
pub fn parse_values(text: &str) -> Result<Vec<Value>, Error> {
    Ok(parse(text)?
        .into_iter()
        .filter_map(|d| d.root.map(|n| n.to_json()))
        .collect())
}

/// Character index to byte offset, for sources with non-ASCII text.
struct Offsets {
    bytes: Option<Vec<usize>>,
    len: usize,
}

impl Offsets {
    fn new(text: &str) -> Self {
        let bytes = (!text.is_ascii()).then(|| {
            let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
            v.push(text.len());
            v
        });
        Self {
            bytes,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.bytes {
            None => char_index.min(self.len),
            Some(v) => v.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Frame {
    Seq {
        start: Span,
        anchor: usize,
        tag: Option<String>,
        items: Vec<Node>,
    },
    Map {
        start: Span,
        anchor: usize,
        tag: Option<String>,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    text: &'a str,
    offsets: &'a Offsets,
    stack: Vec<Frame>,
    anchors: Vec<(usize, Node)>,
    docs: Vec<Document>,
    doc_line: usize,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Error> {
        match event {
            Event::DocumentStart(_) => {
                self.doc_line = span.start.line();
                self.docs.push(Document {
                    root: None,
                    line: self.doc_line,
                });
            }
            Event::Scalar(value, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted => Style::SingleQuoted,
                    ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let mut start = self.offsets.byte(span.start.index());
                let mut end = self.offsets.byte(span.end.index());
                match style {
                    Style::Literal | Style::Folded => {
                        // The span covers the content only and runs on to the
                        // next token: take in the `|`/`>` header, and end at the
                        // last non-blank content.
                        end = start + self.text[start..end].trim_end().len();
                        if let Some(h) = self.text[..start].rfind(['|', '>']) {
                            start = h;
                        }
                    }
                    Style::SingleQuoted | Style::DoubleQuoted => {
                        // The span may run over trailing blanks and a comment.
                        end = quoted_end(self.text, start).unwrap_or(end);
                    }
                    Style::Plain => {}
                }
                let node = Node {
                    kind: Kind::Scalar(value.into_owned(), style),
                    span: start..end,
                    line: span.start.line(),
                    column: span.start.col(),
                    tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                    flow: false,
                };
                self.remember(anchor, &node);
                self.push(node, span)?;
            }
            Event::SequenceStart(anchor, tag) => self.stack.push(Frame::Seq {
                start: span,
                anchor,
                tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, tag) => self.stack.push(Frame::Map {
                start: span,
                anchor,
                tag: tag.map(|t| format!("{}{}", t.handle, t.suffix)),
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().ok_or_else(|| Error {
                    line: span.start.line(),
                    column: span.start.col() + 1,
                    message: "unbalanced collection end".into(),
                })?;
                let (start, anchor, tag, kind) = match frame {
                    Frame::Seq {
                        start,
                        anchor,
                        tag,
                        items,
                    } => (start, anchor, tag, Kind::Seq(items)),
                    Frame::Map {
                        start,
                        anchor,
                        tag,
                        entries,
                        ..
                    } => (start, anchor, tag, Kind::Map(entries)),
                };
                let begin = self.offsets.byte(start.start.index());
                let flow = matches!(self.text.as_bytes().get(begin), Some(b'[' | b'{'));
                let end = if flow {
                    // The end event's span may run on over blanks and a comment.
                    flow_end(self.text, begin)
                        .unwrap_or_else(|| self.offsets.byte(span.end.index()))
                } else {
                    last_content_end(&kind).unwrap_or(begin)
                };
                let node = Node {
                    kind,
                    span: begin..end.max(begin),
                    line: start.start.line(),
                    column: start.start.col(),
                    tag,
                    flow,
                };
                self.remember(anchor, &node);
                self.push(node, span)?;
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, n)| n.clone())
                    .ok_or_else(|| Error {
                        line: span.start.line(),
                        column: span.start.col() + 1,
                        message: "alias to an unknown anchor".into(),
                    })?;
                self.push(node, span)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor != 0 {
            self.anchors.push((anchor, node.clone()));
        }
    }

    fn push(&mut self, node: Node, span: Span) -> Result<(), Error> {
        match self.stack.last_mut() {
            None => {
                if self.docs.is_empty() {
                    self.docs.push(Document {
                        root: None,
                        line: self.doc_line,
                    });
                }
                if let Some(doc) = self.docs.last_mut() {
                    doc.root = Some(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    if !matches!(node.kind, Kind::Scalar(..)) {
                        return Err(Error {
                            line: span.start.line(),
                            column: span.start.col() + 1,
                            message: "mapping keys must be scalars".into(),
                        });
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

/// The byte just past the bracket that closes the flow collection at `start`.
fn flow_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => depth += 1,
            b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'"' | b'\'' => {
                i = quoted_end(text, i)?;
                continue;
            }
            b'#' if i > 0 && bytes[i - 1].is_ascii_whitespace() => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The byte just past the closing quote of the quoted scalar at `start`.
fn quoted_end(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let quote = *bytes.get(start)?;
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            c if c == quote => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn last_content_end(kind: &Kind) -> Option<usize> {
    match kind {
        Kind::Scalar(..) => None,
        Kind::Seq(items) => items.iter().map(|n| n.span.end).max(),
        Kind::Map(entries) => entries
            .iter()
            .map(|(k, v)| k.span.end.max(v.span.end))
            .max(),
    }
}

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
    /// The sequence item that is a mapping whose `key` holds the scalar `value`
    /// (such as the `plugins` entry named `barman-cloud.cloudnative-pg.io`).
    Where(String, String),
}

impl Step {
    /// A key step.
    pub fn key(k: impl Into<String>) -> Self {
        Step::Key(k.into())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Key(k) => write!(f, ".{k}"),
            Step::Index(i) => write!(f, "[{i}]"),
            Step::Where(k, v) => write!(f, "[{k}={v}]"),
        }
    }
}

/// Renders a path as `spec.plugins[name=x].parameters`.
#[must_use]
pub fn path_string(path: &[Step]) -> String {
    let s: String = path.iter().map(ToString::to_string).collect();
    s.strip_prefix('.').map(str::to_owned).unwrap_or(s)
}

/// Parses `spec.plugins[0].name` or `spec.plugins[name=x.y]` into steps (dots
/// inside brackets belong to the value).
#[must_use]
pub fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut key = String::new();
    let mut chars = path.chars();
    let flush = |key: &mut String, out: &mut Vec<Step>| {
        if !key.is_empty() {
            out.push(Step::Key(std::mem::take(key)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '.' => flush(&mut key, &mut out),
            '[' => {
                flush(&mut key, &mut out);
                let body: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if let Ok(n) = body.parse() {
                    out.push(Step::Index(n));
                } else if let Some((k, v)) = body.split_once('=') {
                    out.push(Step::Where(k.to_owned(), v.to_owned()));
                }
            }
            _ => key.push(c),
        }
    }
    flush(&mut key, &mut out);
    out
}

impl Node {
    /// The scalar text, if this is a scalar.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key and value nodes under `key`.
    #[must_use]
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.kind {
            Kind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The node at `path`, if every step exists.
    #[must_use]
    pub fn at(&self, path: &[Step]) -> Option<&Node> {
        let mut node = self;
        for step in path {
            node = node.child(step)?;
        }
        Some(node)
    }

    /// One step down.
    #[must_use]
    pub fn child(&self, step: &Step) -> Option<&Node> {
        match (step, &self.kind) {
            (Step::Key(k), Kind::Map(_)) => self.get(k),
            (Step::Index(i), Kind::Seq(items)) => items.get(*i),
            (Step::Where(k, v), Kind::Seq(items)) => items
                .iter()
                .find(|n| n.get(k).and_then(Node::as_str) == Some(v.as_str())),
            _ => None,
        }
    }

    /// The line of the node at a dotted path (`spec.backup.retentionPolicy`),
    /// or of the deepest existing ancestor, for pointing at a finding.
    #[must_use]
    pub fn line_of(&self, path: &str) -> usize {
        self.line_at(&steps(path))
    }

    /// [`Node::line_of`] for a path already split into steps.
    #[must_use]
    pub fn line_at(&self, path: &[Step]) -> usize {
        let mut node = self;
        let mut line = self.line;
        for step in path {
            let next = match step {
                Step::Key(k) => node.entry(k).map(|(key, v)| (key.line, v)),
                other => node.child(other).map(|v| (v.line, v)),
            };
            let Some((l, v)) = next else { break };
            line = l;
            node = v;
        }
        line
    }

    /// The value as JSON, resolving plain scalars with the YAML 1.2 core
    /// schema (null, booleans, integers, floats) unless a tag says otherwise.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Scalar(s, style) => scalar_json(s, *style, self.tag.as_deref()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    if k.as_str() == Some("<<") {
                        // Merge key: entries already present win.
                        if let Value::Object(merged) = v.to_json() {
                            for (mk, mv) in merged {
                                map.entry(mk).or_insert(mv);
                            }
                        }
                        continue;
                    }
                    let key = match k.to_json() {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    map.insert(key, v.to_json());
                }
                Value::Object(map)
            }
        }
    }
}

fn scalar_json(s: &str, style: Style, tag: Option<&str>) -> Value {
    let core_tag = matches!(tag, None | Some("!!int" | "!!float" | "!!bool" | "!!null"));
    if !core_tag || style != Style::Plain {
        return Value::String(s.to_owned());
    }
    resolve_plain(s)
}

/// YAML 1.2 core-schema resolution of a plain scalar.
#[must_use]
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Some(n) = parse_int(s) {
        return Value::Number(n);
    }
    if looks_like_float(s)
        && let Some(n) = s.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(s.to_owned())
}

fn parse_int(s: &str) -> Option<Number> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, body) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    if radix != 10 && neg {
        return None;
    }
    let magnitude = u64::from_str_radix(body, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(s: &str) -> bool {
    let body = s.trim_start_matches(['-', '+']);
    if matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN") {
        return false; // not representable in JSON; keep as a string
    }
    let mut digits = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.peek() {
        if c.is_ascii_digit() {
            digits = true;
            chars.next();
        } else {
            break;
        }
    }
    let mut rest: String = chars.collect();
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.chars().take_while(char::is_ascii_digit).count();
        digits |= n > 0;
        rest = frac[n..].to_owned();
    }
    if !digits {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    let Some(exp) = rest.strip_prefix(['e', 'E']) else {
        return false;
    };
    let exp = exp.strip_prefix(['-', '+']).unwrap_or(exp);
    !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multi_document_stream_with_comments_and_positions() {
        let text = "# leading comment\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod-foo # trailing\n---\n# second\nkind: Secret\nstringData:\n  key: \"quoted\"\n";
        let docs = parse(text).unwrap();
        assert_eq!(docs.len(), 2);
        let first = docs[0].root.as_ref().unwrap();
        let name = first.at(&steps("metadata.name")).unwrap();
        assert_eq!(name.as_str(), Some("prod-foo"));
        assert_eq!(name.line, 5);
        assert_eq!(&text[name.span.clone()], "prod-foo");
        let second = docs[1].root.as_ref().unwrap();
        assert_eq!(
            second.to_json(),
            json!({"kind": "Secret", "stringData": {"key": "quoted"}})
        );
        assert_eq!(first.line_of("metadata.name"), 5);
        assert_eq!(first.line_of("metadata.missing.deeper"), 4);
    }

    #[test]
    fn block_collection_spans_end_at_their_last_content() {
        let text = "a:\n  - one\n  - two # c\n\n# about b\nb: 1\n";
        let root = parse(text).unwrap().remove(0).root.unwrap();
        let seq = root.get("a").unwrap();
        assert_eq!(&text[seq.span.clone()], "- one\n  - two");
        assert!(!seq.flow);
        let flow = parse("x: [1, 2]\n").unwrap().remove(0).root.unwrap();
        let x = flow.get("x").unwrap();
        assert!(x.flow);
        assert_eq!(x.span, 3..9);
        let t = "p: {a: \"]\", b: [1]}  # c ]\nq: 1\n";
        let root = parse(t).unwrap().remove(0).root.unwrap();
        assert_eq!(
            &t[root.get("p").unwrap().span.clone()],
            "{a: \"]\", b: [1]}"
        );
    }

    #[test]
    fn core_schema_resolution() {
        let v = parse_values(
            "a: 1\nb: -2\nc: 1.5\nd: true\ne: ~\nf: '1'\ng: yes\nh: 0x1F\ni: 1e3\nj: 10Gi\nk: !!str 3\nl: .inf\nm: 0 0 2 * * *\n",
        )
        .unwrap();
        assert_eq!(
            v[0],
            json!({"a": 1, "b": -2, "c": 1.5, "d": true, "e": null, "f": "1", "g": "yes",
                   "h": 31, "i": 1000.0, "j": "10Gi", "k": "3", "l": ".inf", "m": "0 0 2 * * *"})
        );
    }

    #[test]
    fn anchors_merge_keys_and_non_ascii_offsets() {
        let text = "base: &b\n  x: 1\nuse:\n  <<: *b\n  y: 2\nnote: \"héllo\"\nafter: z\n";
        let docs = parse(text).unwrap();
        let root = docs[0].root.as_ref().unwrap();
        assert_eq!(root.to_json()["use"], json!({"y": 2, "x": 1}));
        let after = root.get("after").unwrap();
        assert_eq!(&text[after.span.clone()], "z");
    }

    #[test]
    fn block_scalars_keep_their_text_and_tight_spans() {
        let text = "sql: |\n  CREATE EXTENSION vector;\n  SELECT 1;\n\nnext: 1\n";
        let root = parse(text).unwrap().remove(0).root.unwrap();
        let sql = root.get("sql").unwrap();
        assert_eq!(sql.as_str(), Some("CREATE EXTENSION vector;\nSELECT 1;\n"));
        assert!(text[sql.span.clone()].ends_with("SELECT 1;"));
        assert!(text[sql.span.clone()].starts_with('|'));
        let q = "a: \"fo\\\"o\"  # c\nb: 'it''s' # d\n";
        let root = parse(q).unwrap().remove(0).root.unwrap();
        assert_eq!(&q[root.get("a").unwrap().span.clone()], "\"fo\\\"o\"");
        assert_eq!(&q[root.get("b").unwrap().span.clone()], "'it''s'");
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err}");
        let err = parse("a:\n  b: 1\n c: 2\n").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }

    #[test]
    fn path_steps_round_trip() {
        let p = steps("spec.plugins[name=barman-cloud.cloudnative-pg.io].parameters");
        assert_eq!(
            p,
            vec![
                Step::key("spec"),
                Step::key("plugins"),
                Step::Where("name".into(), "barman-cloud.cloudnative-pg.io".into()),
                Step::key("parameters"),
            ]
        );
        assert_eq!(path_string(&steps("spec.items[2].x")), "spec.items[2].x");
    }
}
