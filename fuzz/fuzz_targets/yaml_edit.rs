#![no_main]
//! YAML from a repository never panics the reader, node spans stay inside
//! the text, and an edit is either refused or leaves a text that parses with
//! the same number of documents (the editor verifies the rest itself).

use cnpg_ops::yaml::{self, Step, edit::Editor};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(docs) = yaml::parse(text) else { return };
    for d in &docs {
        if let Some(root) = &d.root {
            assert!(root.span.end <= text.len() && root.span.start <= root.span.end);
            let _ = root.to_json();
        }
    }
    let Ok(before) = yaml::parse_values(text) else { return };
    for path in [
        vec![Step::key("spec"), Step::key("instances")],
        vec![Step::key("resources")],
        vec![Step::key("metadata"), Step::key("name")],
    ] {
        let mut e = Editor::new(text);
        if e.set(0, &path, &json!("x")).is_ok() {
            let after = yaml::parse_values(e.text()).expect("verified edits parse");
            assert_eq!(after.len(), before.len());
        }
        let mut e = Editor::new(text);
        if e.append(0, &path, &json!({"name": "n", "v": [1, "two"]})).is_ok() {
            assert!(yaml::parse_values(e.text()).is_ok());
        }
        let mut e = Editor::new(text);
        let _ = e.remove(0, &path);
    }
});
