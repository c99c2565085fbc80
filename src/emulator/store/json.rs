//! Packed subtrees: small objects are kept as their compact JSON text in output form (the exact
//! bytes a read returns), inside the parent chunk's arena. This module writes stored values as
//! JSON (with a size limit) and walks packed text without building it: the text is always
//! produced here, so it is valid, compact JSON with no whitespace.

use std::borrow::Cow;
use std::io::Write;

use serde_json::Value;

use super::tree::NodeRef;

/// A write went past its byte limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooBig;

/// A writer that refuses to grow past `limit` bytes.
pub struct Limited<'w, W: Write> {
    pub inner: &'w mut W,
    pub written: usize,
    pub limit: usize,
}

impl<W: Write> Write for Limited<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.written + buf.len() > self.limit {
            return Err(std::io::Error::other(TooBigError));
        }
        self.written += buf.len();
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Debug)]
struct TooBigError;
impl std::fmt::Display for TooBigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("limit reached")
    }
}
impl std::error::Error for TooBigError {}

fn is_too_big(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|i| i.is::<TooBigError>())
}

/// Write `node` as compact JSON in output form, at most `limit` bytes.
pub fn write_limited(
    out: &mut impl Write,
    node: NodeRef<'_>,
    limit: usize,
) -> Result<usize, TooBig> {
    let mut w = Limited {
        inner: out,
        written: 0,
        limit,
    };
    match write(&mut w, node) {
        Ok(()) => Ok(w.written),
        Err(e) if is_too_big(&e) => Err(TooBig),
        // Writers here are in memory or hashers: nothing else can fail.
        Err(e) => panic!("writing JSON failed: {e}"),
    }
}

/// Write `node` as compact JSON in output form, as stored: priorities included (the
/// `format=export` form, also what ETags hash and exports save).
pub fn write(out: &mut impl Write, node: NodeRef<'_>) -> std::io::Result<()> {
    write_as(out, node, Form::Export)
}

/// Write `node` as a plain read returns it: without priorities (`.priority` members left out,
/// `{".priority": p, ".value": v}` as `v`).
pub fn write_plain(out: &mut impl Write, node: NodeRef<'_>) -> std::io::Result<()> {
    write_as(out, node, Form::Plain)
}

/// With or without priorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// What a plain GET returns.
    Plain,
    /// `format=export`: `.priority` members, `{".priority": p, ".value": v}` for a primitive.
    Export,
}

/// Keys starting with '.' are a node's priority and a prioritised primitive's value (`.priority`,
/// `.value`): data keys never do (see `crate::rtdb::path::validate_key`).
pub fn is_meta(key: &str) -> bool {
    key.starts_with('.')
}

/// Does packed text hold a priority anywhere? `".priority":` can only be a key there: data keys
/// cannot hold a '.', and a string value is never followed by ':'.
pub fn has_meta(t: &str) -> bool {
    memchr::memmem::find(t.as_bytes(), b"\".priority\":").is_some()
}

fn write_as(out: &mut impl Write, node: NodeRef<'_>, form: Form) -> std::io::Result<()> {
    match node {
        NodeRef::Bool(b) => out.write_all(if b { b"true" } else { b"false" }),
        NodeRef::Num(n) => write_num(out, n),
        NodeRef::Str(s) => write_str(out, s),
        NodeRef::Json(t) if form == Form::Plain && has_meta(t) => {
            // Rare (data with priorities): parsed back, written without them.
            match super::parse::parse(t.as_bytes(), 0)
                .expect("packed JSON parses back")
                .node
            {
                Some(n) => write_as(out, n.view(), form),
                None => out.write_all(b"null"),
            }
        }
        NodeRef::Json(t) => out.write_all(t.as_bytes()),
        NodeRef::Obj(o) if form == Form::Plain && o.priority().is_some() => {
            if let Some(v) = o.get(".value") {
                return write_as(out, v, form);
            }
            let kids: Vec<(&str, NodeRef<'_>)> = o.iter().filter(|(k, _)| !is_meta(k)).collect();
            let array = super::tree::array_len_of(kids.iter().map(|(k, _)| *k), kids.len());
            write_children(out, kids.into_iter(), array, form)
        }
        NodeRef::Obj(o) => write_children(out, o.iter(), o.array_len(), form),
    }
}

fn write_children<'a>(
    out: &mut impl Write,
    kids: impl Iterator<Item = (&'a str, NodeRef<'a>)>,
    array: Option<usize>,
    form: Form,
) -> std::io::Result<()> {
    match array {
        Some(len) => {
            out.write_all(b"[")?;
            let mut next = 0usize;
            for (k, v) in kids {
                let i = super::tree::array_index(k).unwrap_or(next);
                while next < i {
                    out.write_all(if next == 0 { b"null" } else { b",null" })?;
                    next += 1;
                }
                if next > 0 {
                    out.write_all(b",")?;
                }
                write_as(out, v, form)?;
                next += 1;
            }
            debug_assert_eq!(next, len);
            out.write_all(b"]")
        }
        None => write_members(out, kids, form),
    }
}

/// Children as an object, in the order given (query results).
pub fn write_members<'a>(
    out: &mut impl Write,
    members: impl IntoIterator<Item = (&'a str, NodeRef<'a>)>,
    form: Form,
) -> std::io::Result<()> {
    out.write_all(b"{")?;
    for (i, (k, v)) in members.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_str(out, k)?;
        out.write_all(b":")?;
        write_as(out, v, form)?;
    }
    out.write_all(b"}")
}

pub fn write_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, s).map_err(std::io::Error::from)
}

/// Numbers are doubles; integral ones below 2^53 are written as integers.
pub fn write_num(out: &mut impl Write, n: f64) -> std::io::Result<()> {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        serde_json::to_writer(&mut *out, &(n as i64)).map_err(std::io::Error::from)
    } else if n.is_finite() {
        serde_json::to_writer(&mut *out, &n).map_err(std::io::Error::from)
    } else {
        out.write_all(b"null")
    }
}

// ---------------------------------------------------------------------------------------------
// Walking packed text

/// The byte after the value starting at `i` (the text is compact, valid JSON).
pub(crate) fn skip(b: &[u8], mut i: usize) -> usize {
    match b[i] {
        b'"' => skip_str(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b[i] {
                    b'"' => {
                        i = skip_str(b, i);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return i + 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while i < b.len() && !matches!(b[i], b',' | b'}' | b']') {
                i += 1;
            }
            i
        }
    }
}

/// The byte after the string starting at `i` (the end of the text when it is not closed).
pub(crate) fn skip_str(b: &[u8], i: usize) -> usize {
    let mut i = i + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &b[i..]) {
            Some(j) if b[i + j] == b'"' => return i + j + 1,
            Some(j) => i += j + 2,
            None => return b.len(),
        }
    }
}

/// A JSON string's text without its quotes, unescaped when it has escapes.
pub(crate) fn unquote(t: &str) -> Cow<'_, str> {
    let inner = &t[1..t.len() - 1];
    if inner.contains('\\') {
        Cow::Owned(serde_json::from_str(t).unwrap_or_default())
    } else {
        Cow::Borrowed(inner)
    }
}

/// The children of packed text: an object's members, or an array's non-null elements keyed by
/// index; nothing for a primitive.
pub fn children(t: &str) -> Vec<(Cow<'_, str>, &str)> {
    let b = t.as_bytes();
    let mut out = Vec::new();
    match b.first() {
        Some(b'{') => {
            let mut i = 1;
            while b[i] != b'}' {
                let k_end = skip_str(b, i);
                let key = unquote(&t[i..k_end]);
                let v_start = k_end + 1;
                let v_end = skip(b, v_start);
                out.push((key, &t[v_start..v_end]));
                i = if b[v_end] == b',' { v_end + 1 } else { v_end };
            }
        }
        Some(b'[') => {
            let mut i = 1;
            let mut n = 0usize;
            while b[i] != b']' {
                let end = skip(b, i);
                let v = &t[i..end];
                if v != "null" {
                    out.push((Cow::Owned(n.to_string()), v));
                }
                n += 1;
                i = if b[end] == b',' { end + 1 } else { end };
            }
        }
        _ => {}
    }
    out
}

/// The child `key` of packed text.
pub fn child<'a>(t: &'a str, key: &str) -> Option<&'a str> {
    let b = t.as_bytes();
    match b.first() {
        Some(b'{') => {
            let mut i = 1;
            while b[i] != b'}' {
                let k_end = skip_str(b, i);
                let v_start = k_end + 1;
                let v_end = skip(b, v_start);
                if unquote(&t[i..k_end]) == key {
                    return Some(&t[v_start..v_end]);
                }
                i = if b[v_end] == b',' { v_end + 1 } else { v_end };
            }
            None
        }
        Some(b'[') => {
            let want = super::tree::array_index(key)?;
            let mut i = 1;
            let mut n = 0usize;
            while b[i] != b']' {
                let end = skip(b, i);
                if n == want {
                    let v = &t[i..end];
                    return (v != "null").then_some(v);
                }
                n += 1;
                i = if b[end] == b',' { end + 1 } else { end };
            }
            None
        }
        _ => None,
    }
}

/// Is the packed text an object (or array, which is stored as one)?
pub fn has_children(t: &str) -> bool {
    matches!(t.as_bytes().first(), Some(b'{' | b'['))
}

/// The packed text as a value (output form, as a plain read returns it).
pub fn to_value(t: &str) -> Value {
    if has_meta(t) {
        let mut buf = Vec::new();
        write_plain(&mut buf, NodeRef::Json(t)).expect("writing to memory");
        return serde_json::from_slice(&buf).unwrap_or(Value::Null);
    }
    serde_json::from_str(t).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_objects_and_arrays() {
        let t = r#"{"a":1,"b\"q":{"c":[1,{"d":"x,}"}]},"e":[null,"y",null,true],"f":"s"}"#;
        let kids: Vec<(String, &str)> = children(t)
            .into_iter()
            .map(|(k, v)| (k.into_owned(), v))
            .collect();
        assert_eq!(
            kids,
            vec![
                ("a".into(), "1"),
                ("b\"q".into(), r#"{"c":[1,{"d":"x,}"}]}"#),
                ("e".into(), r#"[null,"y",null,true]"#),
                ("f".into(), r#""s""#),
            ]
        );
        assert_eq!(child(t, "f"), Some(r#""s""#));
        assert_eq!(
            child(t, "b\"q").and_then(|c| child(c, "c")),
            Some(r#"[1,{"d":"x,}"}]"#)
        );
        let e = child(t, "e").unwrap();
        assert_eq!(child(e, "1"), Some(r#""y""#));
        assert_eq!(child(e, "0"), None);
        assert_eq!(child(e, "01"), None);
        let idx: Vec<String> = children(e)
            .into_iter()
            .map(|(k, _)| k.into_owned())
            .collect();
        assert_eq!(idx, vec!["1", "3"]);
        assert!(children("5").is_empty());
        assert!(children("{}").is_empty());
        assert_eq!(child(t, "zz"), None);
    }

    #[test]
    fn limited_writes_stop_at_the_limit() {
        let mut out = Vec::new();
        assert_eq!(write_limited(&mut out, NodeRef::Str("abc"), 5), Ok(5));
        let mut out = Vec::new();
        assert_eq!(
            write_limited(&mut out, NodeRef::Str("abcd"), 5),
            Err(TooBig)
        );
        let mut out = Vec::new();
        write(&mut out, NodeRef::Num(2.5)).unwrap();
        write(&mut out, NodeRef::Num(-3.0)).unwrap();
        assert_eq!(out, b"2.5-3");
    }
}
