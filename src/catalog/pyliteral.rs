//! A reader for the Python literals barman writes into `backup.info`
//! (`ast.literal_eval` input): strings, numbers, `None`/`True`/`False`,
//! lists, tuples and dicts. It is not JSON: quotes may be single, tuples
//! exist, and strings carry Python escapes.

use std::collections::BTreeMap;

/// A decoded Python literal.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`
    None,
    /// `True` / `False`
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float (also integers too large for 64 bits).
    Float(f64),
    /// A string.
    Str(String),
    /// `[...]`
    List(Vec<PyValue>),
    /// `(...)`
    Tuple(Vec<PyValue>),
    /// `{...}`; keys rendered as text.
    Dict(BTreeMap<String, PyValue>),
}

impl PyValue {
    /// The string inside, if this is a string.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a list or a tuple.
    #[must_use]
    pub fn as_seq(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The integer inside, if this is an integer.
    #[must_use]
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Converts to JSON for output.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            PyValue::None => Value::Null,
            PyValue::Bool(b) => Value::Bool(*b),
            PyValue::Int(i) => Value::from(*i),
            PyValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            PyValue::Str(s) => Value::String(s.clone()),
            PyValue::List(v) | PyValue::Tuple(v) => {
                Value::Array(v.iter().map(PyValue::to_json).collect())
            }
            PyValue::Dict(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// Where and why a literal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}")]
pub struct PyParseError {
    /// 1-based character column in the value.
    pub column: usize,
    /// What was expected.
    pub message: String,
}

/// Nesting deeper than this is refused (barman never writes more than 3 levels).
const MAX_DEPTH: usize = 32;

/// Parses one complete literal; trailing text is an error.
pub fn parse(text: &str) -> Result<PyValue, PyParseError> {
    let mut p = Parser {
        chars: text.char_indices().collect(),
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    p.skip_ws();
    if p.pos < p.chars.len() {
        return Err(p.error("unexpected text after the value"));
    }
    Ok(v)
}

struct Parser {
    chars: Vec<(usize, char)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, message: &str) -> PyParseError {
        PyParseError {
            column: self.pos + 1,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<PyValue, PyParseError> {
        self.skip_ws();
        match self.peek() {
            None => Err(self.error("expected a value, found the end")),
            Some('\'' | '"') => self.string(false).map(PyValue::Str),
            Some(c @ ('[' | '(' | '{')) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(self.error("nesting too deep"));
                }
                self.pos += 1;
                let v = match c {
                    '[' => self.seq(']').map(PyValue::List),
                    '(' => self.seq(')').map(PyValue::Tuple),
                    _ => self.dict(),
                };
                self.depth -= 1;
                v
            }
            Some(c) if c == '-' || c == '+' || c == '.' || c.is_ascii_digit() => self.number(),
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos]
                    .iter()
                    .map(|&(_, c)| c)
                    .collect();
                match word.as_str() {
                    "None" => Ok(PyValue::None),
                    "True" => Ok(PyValue::Bool(true)),
                    "False" => Ok(PyValue::Bool(false)),
                    // A string prefix such as u'..' or r'..'.
                    "u" | "U" if matches!(self.peek(), Some('\'' | '"')) => {
                        self.string(false).map(PyValue::Str)
                    }
                    "r" | "R" if matches!(self.peek(), Some('\'' | '"')) => {
                        self.string(true).map(PyValue::Str)
                    }
                    _ => {
                        self.pos = start;
                        Err(self.error(&format!("unexpected name `{word}`; expected None, True, False, a number, a string, a list, a tuple or a dict")))
                    }
                }
            }
            Some(c) => Err(self.error(&format!("unexpected character `{}`", c.escape_default()))),
        }
    }

    fn seq(&mut self, close: char) -> Result<Vec<PyValue>, PyParseError> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.value()?);
            self.skip_ws();
            match self.bump() {
                Some(',') => {}
                Some(c) if c == close => return Ok(items),
                _ => {
                    self.pos = self.pos.saturating_sub(1);
                    return Err(self.error(&format!("expected `,` or `{close}`")));
                }
            }
        }
    }

    fn dict(&mut self) -> Result<PyValue, PyParseError> {
        let mut map = BTreeMap::new();
        loop {
            self.skip_ws();
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(PyValue::Dict(map));
            }
            let key = match self.value()? {
                PyValue::Str(s) => s,
                PyValue::Int(i) => i.to_string(),
                PyValue::Bool(b) => if b { "True" } else { "False" }.to_owned(),
                PyValue::None => "None".to_owned(),
                _ => return Err(self.error("dict keys must be strings, numbers or constants")),
            };
            self.skip_ws();
            if self.bump() != Some(':') {
                self.pos = self.pos.saturating_sub(1);
                return Err(self.error("expected `:` after a dict key"));
            }
            let v = self.value()?;
            map.insert(key, v);
            self.skip_ws();
            match self.bump() {
                Some(',') => {}
                Some('}') => return Ok(PyValue::Dict(map)),
                _ => {
                    self.pos = self.pos.saturating_sub(1);
                    return Err(self.error("expected `,` or `}`"));
                }
            }
        }
    }

    fn number(&mut self) -> Result<PyValue, PyParseError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'))
        {
            // A sign only at the start or after an exponent marker.
            if matches!(self.peek(), Some('-' | '+')) && self.pos != start {
                let prev = self.chars[self.pos - 1].1;
                if prev != 'e' && prev != 'E' {
                    break;
                }
            }
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos]
            .iter()
            .map(|&(_, c)| c)
            .filter(|&c| c != '_')
            .collect();
        if let Ok(i) = text.parse::<i64>() {
            return Ok(PyValue::Int(i));
        }
        match text.parse::<f64>() {
            Ok(f) if text.bytes().any(|b| b.is_ascii_digit()) => Ok(PyValue::Float(f)),
            _ => {
                self.pos = start;
                Err(self.error(&format!("`{text}` is not a number")))
            }
        }
    }

    /// A quoted string; a raw string (`r'..'`) keeps its backslashes.
    fn string(&mut self, raw: bool) -> Result<String, PyParseError> {
        let quote = self.bump().unwrap_or('\'');
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some(c) if c == quote => return Ok(out),
                Some('\n') if !raw => return Err(self.error("line break inside a string")),
                Some('\\') if raw => {
                    out.push('\\');
                    if let Some(c) = self.bump() {
                        out.push(c);
                    }
                }
                Some('\\') => self.escape(&mut out)?,
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), PyParseError> {
        let c = self
            .bump()
            .ok_or_else(|| self.error("unterminated escape"))?;
        match c {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(c),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            'x' => out.push(self.hex_escape(2)?),
            'u' => out.push(self.hex_escape(4)?),
            'U' => out.push(self.hex_escape(8)?),
            '0'..='7' => {
                let mut v = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).ok_or_else(|| self.error("invalid octal escape"))?);
            }
            // Python keeps unknown escapes verbatim.
            other => {
                out.push('\\');
                out.push(other);
            }
        }
        Ok(())
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, PyParseError> {
        let mut v: u32 = 0;
        for _ in 0..digits {
            let d = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.error(&format!("expected {digits} hex digits in an escape")))?;
            v = v * 16 + d;
        }
        char::from_u32(v).ok_or_else(|| self.error("escape is not a valid character"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_strings_keep_backslashes() {
        assert_eq!(parse(r"r'a\nb'").unwrap().as_str(), Some(r"a\nb"));
        assert_eq!(parse(r"u'a\nb'").unwrap().as_str(), Some("a\nb"));
    }

    #[test]
    fn backup_label_string() {
        let v = parse(
            r"'START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: it\'s\n'",
        )
        .unwrap();
        assert_eq!(
            v.as_str().unwrap(),
            "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nLABEL: it's\n"
        );
        let v = parse(r#""contains 'quotes' \x41\u00e9""#).unwrap();
        assert_eq!(v.as_str().unwrap(), "contains 'quotes' Aé");
    }

    #[test]
    fn tablespaces_and_stats() {
        let v = parse("[('analytics', 16390, '/var/lib/postgresql/tablespaces/analytics/data')]")
            .unwrap();
        let ts = v.as_seq().unwrap();
        assert_eq!(ts[0].as_seq().unwrap()[1].as_int(), Some(16390));
        let v = parse("{'total_time': 587.43, 'number_of_workers': 2, 'analysis_time_per_item': {'data': 0, '16390': 0}, 'x': None, 'y': True, 'z': -1e-3}").unwrap();
        let PyValue::Dict(m) = v else { panic!() };
        assert_eq!(m["number_of_workers"], PyValue::Int(2));
        assert_eq!(m["total_time"], PyValue::Float(587.43));
        assert_eq!(m["z"], PyValue::Float(-0.001));
        assert_eq!(m["y"], PyValue::Bool(true));
    }

    #[test]
    fn empty_and_trailing_commas() {
        assert_eq!(parse("[]").unwrap(), PyValue::List(vec![]));
        assert_eq!(
            parse("(1,)").unwrap(),
            PyValue::Tuple(vec![PyValue::Int(1)])
        );
        assert_eq!(
            parse("{'a': 1,}").unwrap().to_json(),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn errors_have_columns() {
        let e = parse("['a', 'b'").unwrap_err();
        assert!(e.message.contains("expected"), "{e}");
        let e = parse("'abc").unwrap_err();
        assert_eq!(e.message, "unterminated string");
        assert!(parse("os.system('x')").is_err());
        assert!(parse("[1] 2").is_err());
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&deep).is_err());
    }
}
