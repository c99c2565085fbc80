//! The rules document as the service accepts it: JSON that may hold `//` and `/* */` comments,
//! parsed into values that remember where they start (line and column, both from 1), so every
//! later error can name its place.

use serde_json::{Map, Number, Value};

use super::RulesError;

/// Where something starts in the document: line and column (in characters), both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

/// A value of the document and where it starts.
#[derive(Debug, Clone)]
pub(super) struct Item {
    pub pos: Pos,
    pub value: Doc,
}

#[derive(Debug, Clone)]
pub(super) enum Doc {
    Null,
    Bool(bool),
    Num(Number),
    /// A string and, when it held escapes, nothing more exact than its start is known for the
    /// characters inside it (`escaped`).
    Str {
        text: String,
        escaped: bool,
    },
    Arr(Vec<Item>),
    /// Members in document order, each key with its position.
    Obj(Vec<(String, Pos, Item)>),
}

impl Item {
    /// The document without comments, as plain JSON (members in document order).
    pub fn to_json(&self) -> Value {
        match &self.value {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Num(n) => Value::Number(n.clone()),
            Doc::Str { text, .. } => Value::String(text.clone()),
            Doc::Arr(items) => Value::Array(items.iter().map(Item::to_json).collect()),
            Doc::Obj(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, _, v)| (k.clone(), v.to_json()))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// The position of character `offset` (a byte offset) of a string value: exact when the
    /// string had no escapes, else the string's start.
    pub fn pos_in_string(&self, offset: usize) -> Pos {
        match &self.value {
            Doc::Str {
                text,
                escaped: false,
            } => Pos {
                line: self.pos.line,
                column: self.pos.column + 1 + text[..offset.min(text.len())].chars().count() as u32,
            },
            _ => self.pos,
        }
    }
}

/// Parse a document. Errors name the line and column.
pub(super) fn parse(text: &str) -> Result<Item, RulesError> {
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        i: 0,
        line: 1,
        line_start: 0,
    };
    p.skip_space()?;
    let item = p.value(0)?;
    p.skip_space()?;
    if p.i < p.s.len() {
        return Err(p.error("Unexpected text after the end of the document"));
    }
    Ok(item)
}

/// Deeper nesting than this is refused (the data itself can be at most 32 levels deep).
const MAX_NESTING: usize = 128;

struct Parser<'t> {
    s: &'t [u8],
    text: &'t str,
    i: usize,
    line: u32,
    line_start: usize,
}

impl Parser<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.text[self.line_start..self.i].chars().count() as u32 + 1,
        }
    }

    fn error(&self, message: impl Into<String>) -> RulesError {
        RulesError::at(self.pos(), message)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) {
        if self.s[self.i] == b'\n' {
            self.line += 1;
            self.line_start = self.i + 1;
        }
        self.i += 1;
    }

    /// Whitespace and comments.
    fn skip_space(&mut self) -> Result<(), RulesError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.bump(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'/') => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.peek() {
                            None => return Err(RulesError::at(start, "Unterminated /* comment")),
                            Some(b'*') if self.s.get(self.i + 1) == Some(&b'/') => {
                                self.bump();
                                self.bump();
                                break;
                            }
                            Some(_) => self.bump(),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn expect_word(&mut self, word: &str, value: Doc) -> Result<Doc, RulesError> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(value)
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> RulesError {
        match self.text[self.i..].chars().next() {
            None => self.error("Unexpected end of the document"),
            Some(c) => self.error(format!("Unexpected character '{c}'")),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Item, RulesError> {
        if depth > MAX_NESTING {
            return Err(self.error("The document is nested too deeply"));
        }
        let pos = self.pos();
        let value = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => {
                let (text, escaped) = self.string()?;
                Doc::Str { text, escaped }
            }
            Some(b't') => self.expect_word("true", Doc::Bool(true))?,
            Some(b'f') => self.expect_word("false", Doc::Bool(false))?,
            Some(b'n') => self.expect_word("null", Doc::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.unexpected()),
        };
        Ok(Item { pos, value })
    }

    fn object(&mut self, depth: usize) -> Result<Doc, RulesError> {
        self.bump(); // {
        let mut members: Vec<(String, Pos, Item)> = Vec::new();
        self.skip_space()?;
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Doc::Obj(members));
        }
        loop {
            self.skip_space()?;
            if self.peek() != Some(b'"') {
                return Err(self.error("Expected a property name in double quotes"));
            }
            let key_pos = self.pos();
            let (key, _) = self.string()?;
            if members.iter().any(|(k, _, _)| *k == key) {
                return Err(RulesError::at(key_pos, format!("Duplicate key \"{key}\"")));
            }
            self.skip_space()?;
            if self.peek() != Some(b':') {
                return Err(self.error("Expected ':' after a property name"));
            }
            self.bump();
            self.skip_space()?;
            let value = self.value(depth + 1)?;
            members.push((key, key_pos, value));
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(Doc::Obj(members));
                }
                _ => return Err(self.error("Expected ',' or '}' after a property value")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Doc, RulesError> {
        self.bump(); // [
        let mut items = Vec::new();
        self.skip_space()?;
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Doc::Arr(items));
        }
        loop {
            self.skip_space()?;
            items.push(self.value(depth + 1)?);
            self.skip_space()?;
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(Doc::Arr(items));
                }
                _ => return Err(self.error("Expected ',' or ']' after an array element")),
            }
        }
    }

    /// A JSON string (the opening quote at `self.i`): its text and whether it held escapes.
    fn string(&mut self) -> Result<(String, bool), RulesError> {
        let start = self.pos();
        self.bump(); // "
        let mut out = String::new();
        let mut escaped = false;
        loop {
            let Some(c) = self.peek() else {
                return Err(RulesError::at(start, "Unterminated string"));
            };
            match c {
                b'"' => {
                    self.bump();
                    return Ok((out, escaped));
                }
                b'\n' | b'\r' => {
                    return Err(self.error("Unterminated string (a line break inside it)"))
                }
                b'\\' => {
                    escaped = true;
                    self.bump();
                    let Some(e) = self.peek() else {
                        return Err(RulesError::at(start, "Unterminated string"));
                    };
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.bump();
                            let ch = self.unicode_escape()?;
                            out.push(ch);
                            continue;
                        }
                        _ => return Err(self.error("Invalid escape in a string")),
                    };
                    self.bump();
                    out.push(ch);
                }
                c if c < 0x20 => return Err(self.error("Control character in a string")),
                _ => {
                    // Copy one UTF-8 character.
                    let ch = self.text[self.i..].chars().next().expect("in bounds");
                    out.push(ch);
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    /// `XXXX` after `\u` (and a low surrogate's `\uXXXX` after a high one).
    fn unicode_escape(&mut self) -> Result<char, RulesError> {
        let hex4 = |p: &mut Self| -> Result<u32, RulesError> {
            let h = p
                .text
                .get(p.i..p.i + 4)
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| p.error("Invalid \\u escape in a string"))?;
            p.i += 4;
            Ok(h)
        };
        let hi = hex4(self)?;
        if (0xD800..0xDC00).contains(&hi) {
            if self.s[self.i..].starts_with(b"\\u") {
                self.i += 2;
                let lo = hex4(self)?;
                if (0xDC00..0xE000).contains(&lo) {
                    let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                    return char::from_u32(c).ok_or_else(|| self.error("Invalid \\u escape"));
                }
            }
            return Err(self.error("Invalid surrogate pair in a string"));
        }
        char::from_u32(hi).ok_or_else(|| self.error("Invalid \\u escape in a string"))
    }

    fn number(&mut self) -> Result<Doc, RulesError> {
        let start = self.i;
        let pos = self.pos();
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.bump();
        }
        let raw = &self.text[start..self.i];
        match serde_json::from_str::<Number>(raw) {
            Ok(n) => Ok(Doc::Num(n)),
            Err(_) => Err(RulesError::at(pos, format!("Invalid number {raw}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn comments_and_positions() {
        let doc = parse(
            "// top\n{\n  /* a\n  block */ \"rules\": { // end\n    \".read\": \"auth != null\"\n  }\n}\n",
        )
        .unwrap();
        let Doc::Obj(m) = &doc.value else { panic!() };
        assert_eq!(m[0].0, "rules");
        assert_eq!(
            m[0].1,
            Pos {
                line: 4,
                column: 12
            }
        );
        let Doc::Obj(inner) = &m[0].2.value else {
            panic!()
        };
        assert_eq!(
            inner[0].2.pos,
            Pos {
                line: 5,
                column: 14
            }
        );
        assert_eq!(
            inner[0].2.pos_in_string(5),
            Pos {
                line: 5,
                column: 20
            }
        );
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"rules": {".read": "auth != null"}})
        );
    }

    #[test]
    fn errors_name_line_and_column() {
        assert_eq!(
            err("{\n  \"a\": 1\n  \"b\": 2\n}"),
            "3:3: Expected ',' or '}' after a property value"
        );
        assert_eq!(err("{\"a\": tru}"), "1:7: Unexpected character 't'");
        assert_eq!(err("{\"a\": 1, \"a\": 2}"), "1:10: Duplicate key \"a\"");
        assert_eq!(
            err("{} x"),
            "1:4: Unexpected text after the end of the document"
        );
        assert_eq!(err("{ /* open"), "1:3: Unterminated /* comment");
        assert_eq!(err("{\"a\": \"x\\q\"}"), "1:10: Invalid escape in a string");
        assert_eq!(err(""), "1:1: Unexpected end of the document");
        assert_eq!(err("{\"é\": [1,]}"), "1:10: Unexpected character ']'");
    }
}
