//! Property tests of the comment-preserving YAML editor on generated,
//! hand-written-looking files: comments before keys and after values,
//! indented and indentless sequences, several documents. Every edit of an
//! existing scalar, every append and every new key must succeed, read back as
//! intended (the editor checks that itself) and keep every comment.

use std::fmt::Write as _;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use cnpg_ops::yaml::{self, Step, edit::Editor};

#[derive(Debug, Clone)]
enum Tree {
    Scalar(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,8}",
        "[0-9]{1,4}",
        Just("true".to_owned()),
        Just("s3://bucket/path/".to_owned()),
        Just("0 0 2 * * *".to_owned()),
        Just("it's".to_owned()),
        Just("a: b".to_owned()),
    ]
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = scalar().prop_map(Tree::Scalar);
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Tree::Seq),
            prop::collection::btree_map("[a-z]{1,6}", inner, 1..4)
                .prop_map(|m| Tree::Map(m.into_iter().collect())),
        ]
    })
}

fn root() -> impl Strategy<Value = Tree> {
    prop::collection::btree_map("[a-z]{1,6}", tree(), 1..5)
        .prop_map(|m| Tree::Map(m.into_iter().collect()))
}

/// A scalar as hand-written YAML: quoted when plain would change it.
fn scalar_text(s: &str, style: usize) -> String {
    if !cnpg_ops::yaml::emit::plain_is_safe(s) || style % 3 == 1 {
        serde_json::to_string(s).unwrap()
    } else if style % 3 == 2 {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        s.to_owned()
    }
}

struct Writer {
    out: String,
    n: usize,
    indentless: bool,
}

impl Writer {
    fn comment(&mut self, indent: usize) {
        self.n += 1;
        let _ = writeln!(self.out, "{}# note {}", " ".repeat(indent), self.n);
    }

    fn trailing(&mut self) -> String {
        self.n += 1;
        if self.n.is_multiple_of(2) {
            format!("  # tail {}", self.n)
        } else {
            String::new()
        }
    }

    fn map(&mut self, entries: &[(String, Tree)], indent: usize, first_inline: bool) {
        for (i, (k, v)) in entries.iter().enumerate() {
            let pad = if i == 0 && first_inline {
                String::new()
            } else {
                " ".repeat(indent)
            };
            if !(i == 0 && first_inline) && self.n.is_multiple_of(3) {
                self.comment(indent);
            }
            match v {
                Tree::Scalar(s) => {
                    let t = self.trailing();
                    let n = self.n;
                    let _ = writeln!(self.out, "{pad}{k}: {}{t}", scalar_text(s, n));
                }
                Tree::Seq(items) => {
                    let _ = writeln!(self.out, "{pad}{k}:");
                    let at = if self.indentless { indent } else { indent + 2 };
                    self.seq(items, at);
                }
                Tree::Map(m) => {
                    let _ = writeln!(self.out, "{pad}{k}:");
                    self.map(m, indent + 2, false);
                }
            }
        }
    }

    fn seq(&mut self, items: &[Tree], indent: usize) {
        for item in items {
            if self.n % 4 == 1 {
                self.comment(indent);
            }
            let pad = " ".repeat(indent);
            match item {
                Tree::Scalar(s) => {
                    let t = self.trailing();
                    let n = self.n;
                    let _ = writeln!(self.out, "{pad}- {}{t}", scalar_text(s, n));
                }
                Tree::Map(m) => {
                    let _ = write!(self.out, "{pad}- ");
                    self.map(m, indent + 2, true);
                }
                Tree::Seq(inner) => {
                    let _ = writeln!(self.out, "{pad}-");
                    self.seq(inner, indent + 2);
                }
            }
        }
    }
}

fn render(t: &Tree, indentless: bool) -> String {
    let mut w = Writer {
        out: "# header\n".to_owned(),
        n: 0,
        indentless,
    };
    if let Tree::Map(m) = t {
        w.map(m, 0, false);
    }
    w.out
}

/// Paths to every scalar and every sequence.
fn paths(v: &Value, prefix: &mut Vec<Step>, out: &mut Vec<(Vec<Step>, bool)>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                prefix.push(Step::Key(k.clone()));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            out.push((prefix.clone(), true));
            for (i, child) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(child, prefix, out);
                prefix.pop();
            }
        }
        _ => out.push((prefix.clone(), false)),
    }
}

fn comments(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.find('#').map(|i| l[i..].to_owned()))
        .filter(|c| c.starts_with("# "))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn edits_succeed_and_keep_every_comment(
        t in root(),
        indentless in any::<bool>(),
        pick in any::<prop::sample::Index>(),
        new in scalar(),
        second_doc in any::<bool>(),
    ) {
        let mut text = render(&t, indentless);
        if second_doc {
            text.push_str("---\n# other document\nkind: Other\n");
        }
        let parsed = yaml::parse_values(&text);
        prop_assert!(parsed.is_ok(), "generated text does not parse: {:?}\n{}", parsed, text);
        let value = parsed.unwrap().remove(0);
        let mut all = Vec::new();
        paths(&value, &mut Vec::new(), &mut all);
        let (path, is_seq) = pick.get(&all).clone();
        let before = comments(&text);

        let mut e = Editor::new(text.clone());
        if is_seq {
            e.append(0, &path, &json!({"name": new, "n": 1})).map_err(|x| TestCaseError::fail(format!("{x}\n{text}")))?;
            e.append(0, &path, &Value::String(new.clone())).map_err(|x| TestCaseError::fail(format!("{x}\n{text}")))?;
        } else {
            e.set(0, &path, &Value::String(new.clone())).map_err(|x| TestCaseError::fail(format!("{x}\n{text}")))?;
        }
        let mut fresh = Map::new();
        fresh.insert("added".into(), json!([1, "two"]));
        e.set(0, &[Step::key("zz-new"), Step::key("inner")], &Value::Object(fresh))
            .map_err(|x| TestCaseError::fail(format!("{x}\n{text}")))?;
        let out = e.finish();
        for c in &before {
            prop_assert!(out.contains(c.as_str()), "comment {:?} lost:\n{}\n---\n{}", c, text, out);
        }
        if second_doc {
            prop_assert!(out.ends_with("---\n# other document\nkind: Other\n") || out.contains("---\n# other document\nkind: Other\n"));
        }
    }
}
