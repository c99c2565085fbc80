//! Imports of any size, parsed as they are read, faster than a reader-driven parse: a light
//! scanner finds where each value ends in a window of read-ahead text (strings, escapes and
//! brackets only), values that fit are parsed from that slice (`parse`'s rules, through a
//! slice deserializer, much cheaper than a reader one), and only containers longer than the
//! window are walked member by member here (`MapState`/`SeqState`, the same rules). A child
//! object that is already small compact JSON in output form (what an export or a GET sends)
//! is stored as that text (put in key order) without being built and written again (`pack`).
//!
//! Same results and errors as `parse_reader`'s serde reader: errors are found in the order the
//! text has them (a value is parsed before anything after it is looked at), syntax errors are
//! `BAD_JSON`, serde_json's nesting limit (128) is kept by cutting a slice where it would
//! stop, and a read failure is reported only where the reader-driven parse would have met it
//! (worded without the line and column serde_json sometimes adds: the text is not at fault).

use std::io::Read;

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::parse::{Ctx, MapState, Member, NodeSeed, Parsed, SeqState, BAD_JSON};
use super::tree::{array_len_of, Node, PACK_MAX};
use super::{resolve, DataError, Store};
use std::cmp::Ordering;

use crate::rtdb::order::compare_keys;
use crate::rtdb::path::{validate_key, MAX_DEPTH};

/// Containers at least this long are walked member by member, shorter values parsed whole
/// (tests: small, so small texts are walked).
const WINDOW: usize = if cfg!(test) { 48 } else { 64 * 1024 };
/// Bytes asked of the reader at a time.
const READ: usize = if cfg!(test) { 16 } else { 256 * 1024 };
/// serde_json's nesting limit: the 128th open container is an error.
const NESTING: usize = 128;

/// Why a parse stopped.
enum Fail {
    /// Not JSON (`BAD_JSON`).
    Syntax,
    /// The reader failed.
    Io(String),
    /// Data refused (the message).
    Data(String),
}

/// How far the value at the read position goes.
enum Extent {
    /// Complete (or ended by the end of the input): this many bytes.
    Whole(usize),
    /// Cut where serde_json's nesting limit stops it: this many bytes, then an error.
    Cut(usize),
    /// A container longer than the window: walk it.
    Long,
}

/// A value read as a child of an object or array.
enum Child {
    Node(Option<Node>, bool),
    /// Packed text in `Input::packed`, from `len` bytes at the read position (the caller
    /// steps past them).
    Packed(usize),
}

/// Read-ahead text over a reader.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    io: Option<String>,
    /// The text of the last child packed (`Child::Packed`).
    packed: String,
}

impl<R: Read> Input<R> {
    fn new(r: R) -> Self {
        Input {
            r,
            buf: Vec::with_capacity(2 * READ),
            pos: 0,
            eof: false,
            io: None,
            packed: String::with_capacity(PACK_MAX),
        }
    }

    /// Read more text; false at the end of the input or after a read failure (kept in `io`).
    fn more(&mut self) -> bool {
        if self.eof {
            return false;
        }
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ, 0);
        loop {
            match self.r.read(&mut self.buf[len..]) {
                Ok(0) => {
                    self.buf.truncate(len);
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.buf.truncate(len + n);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(len);
                    self.eof = true;
                    self.io = Some(e.to_string());
                    return false;
                }
            }
        }
    }

    /// The byte `k` past the read position, reading as needed.
    fn peek(&mut self, k: usize) -> Option<u8> {
        while self.pos + k >= self.buf.len() {
            if !self.more() {
                return None;
            }
        }
        Some(self.buf[self.pos + k])
    }

    fn skip_ws(&mut self) {
        loop {
            while let Some(&b) = self.buf.get(self.pos) {
                if !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                    return;
                }
                self.pos += 1;
            }
            if !self.more() {
                return;
            }
        }
    }

    /// The input ended (or failed) where more was needed.
    fn ended(&self) -> Fail {
        match &self.io {
            Some(e) => Fail::Io(e.clone()),
            None => Fail::Syntax,
        }
    }

    /// Expect `c` after whitespace.
    fn expect(&mut self, c: u8) -> Result<(), Fail> {
        self.skip_ws();
        match self.peek(0) {
            Some(b) if b == c => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Fail::Syntax),
            None => Err(self.ended()),
        }
    }

    /// Where the value at the read position (not whitespace) ends. `nest`: containers open
    /// around it; `window`: walk containers this long (`None`: never).
    fn extent(&mut self, nest: usize, window: Option<usize>) -> Extent {
        let Some(first) = self.peek(0) else {
            return Extent::Whole(0);
        };
        let mut k = 0usize;
        match first {
            b'"' => {
                k = 1;
                loop {
                    let hay = &self.buf[self.pos + k..];
                    match memchr::memchr2(b'"', b'\\', hay) {
                        Some(i) if hay[i] == b'"' => return Extent::Whole(k + i + 1),
                        Some(i) => k += i + 2,
                        None => k += hay.len(),
                    }
                    while self.pos + k >= self.buf.len() {
                        if !self.more() {
                            return Extent::Whole(self.buf.len() - self.pos);
                        }
                    }
                }
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut in_str = false;
                loop {
                    let end = self.buf.len();
                    let b = &self.buf[..end];
                    let mut i = self.pos + k;
                    while i < end {
                        let c = b[i];
                        if in_str {
                            match memchr::memchr2(b'"', b'\\', &b[i..end]) {
                                Some(j) if b[i + j] == b'"' => {
                                    in_str = false;
                                    i += j + 1;
                                }
                                Some(j) => i += j + 2,
                                None => i = end,
                            }
                            continue;
                        }
                        match c {
                            b'"' => in_str = true,
                            b'{' | b'[' => {
                                depth += 1;
                                if nest + depth >= NESTING {
                                    return Extent::Cut(i - self.pos);
                                }
                            }
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    return Extent::Whole(i + 1 - self.pos);
                                }
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                    // An escape may have stepped past the end.
                    k = i - self.pos;
                    if window.is_some_and(|w| k >= w) {
                        return Extent::Long;
                    }
                    while self.pos + k >= self.buf.len() {
                        if !self.more() {
                            return Extent::Whole(self.buf.len() - self.pos);
                        }
                    }
                }
            }
            _ => loop {
                let hay = &self.buf[self.pos + k..];
                match hay.iter().position(|c| {
                    matches!(
                        c,
                        b',' | b'}' | b']' | b':' | b' ' | b'\n' | b'\t' | b'\r' | b'{' | b'['
                    )
                }) {
                    Some(i) => return Extent::Whole(k + i),
                    None => k += hay.len(),
                }
                if !self.more() {
                    return Extent::Whole(self.buf.len() - self.pos);
                }
            },
        }
    }

    /// A failed slice parse of `len` bytes at the read position: the input's end (or read
    /// failure) when the slice ran into it, else a syntax error.
    fn slice_failed(&self, eof: bool, len: usize, cut: bool) -> Fail {
        if eof && !cut && self.pos + len == self.buf.len() && self.eof {
            self.ended()
        } else {
            Fail::Syntax
        }
    }

    /// Parse `len` bytes at the read position as a value `depth` levels deep, and step past.
    fn parse_slice(
        &mut self,
        len: usize,
        cut: bool,
        depth: usize,
        ctx: &mut Ctx,
    ) -> Result<Option<Node>, Fail> {
        let mut de = serde_json::Deserializer::from_slice(&self.buf[self.pos..self.pos + len]);
        let res = NodeSeed {
            depth,
            ctx: &mut *ctx,
        }
        .deserialize(&mut de)
        .and_then(|n| de.end().map(|()| n));
        match res {
            Ok(n) if !cut => {
                self.pos += len;
                Ok(n)
            }
            Ok(_) => Err(Fail::Syntax),
            Err(e) => Err(match ctx.error.take() {
                Some(msg) => Fail::Data(msg),
                None => self.slice_failed(e.is_eof(), len, cut),
            }),
        }
    }

    /// A whole value (never walked), for `.sv`, `.priority` and `.value`: its bytes.
    fn whole(&mut self, nest: usize) -> (usize, bool) {
        match self.extent(nest, None) {
            Extent::Whole(n) => (n, false),
            Extent::Cut(n) => (n, true),
            Extent::Long => unreachable!("no window"),
        }
    }

    /// A value `depth` levels deep with `nest` containers open around it (whitespace skipped).
    /// `pack`: a small object already in output form may come back as its text.
    fn child(
        &mut self,
        depth: usize,
        nest: usize,
        pack: bool,
        ctx: &mut Ctx,
    ) -> Result<Child, Fail> {
        self.skip_ws();
        match self.extent(nest, Some(WINDOW)) {
            Extent::Whole(len) => {
                if pack
                    && len <= PACK_MAX
                    && self::pack(&self.buf[self.pos..self.pos + len], depth, &mut self.packed)
                {
                    return Ok(Child::Packed(len));
                }
                let before = std::mem::take(&mut ctx.has_sv);
                let n = self.parse_slice(len, false, depth, ctx)?;
                let sv = ctx.has_sv;
                ctx.has_sv |= before;
                Ok(Child::Node(n, sv))
            }
            Extent::Cut(len) => self
                .parse_slice(len, true, depth, ctx)
                .map(|_| unreachable!()),
            Extent::Long => {
                let before = std::mem::take(&mut ctx.has_sv);
                let n = if self.buf[self.pos] == b'{' {
                    self.object(depth, nest, ctx)?
                } else {
                    self.array(depth, nest, ctx)?
                };
                let sv = ctx.has_sv;
                ctx.has_sv |= before;
                Ok(Child::Node(n, sv))
            }
        }
    }

    /// A key (a JSON string at the read position, whitespace skipped), decoded.
    fn key(&mut self) -> Result<String, Fail> {
        let Extent::Whole(len) = self.extent(0, None) else {
            unreachable!("a string is never cut or walked")
        };
        let raw = &self.buf[self.pos + 1..self.pos + len.max(1)];
        let plain = len >= 2
            && raw.last() == Some(&b'"')
            && !raw[..raw.len() - 1].iter().any(|&c| c == b'\\' || c < 0x20);
        let key = if plain {
            std::str::from_utf8(&raw[..raw.len() - 1])
                .map(str::to_owned)
                .map_err(|_| Fail::Syntax)?
        } else {
            serde_json::from_slice::<String>(&self.buf[self.pos..self.pos + len])
                .map_err(|e| self.slice_failed(e.is_eof(), len, false))?
        };
        self.pos += len;
        Ok(key)
    }

    /// After a member or element: `,` (true) or the closing `close` (false).
    fn next_or_close(&mut self, close: u8) -> Result<bool, Fail> {
        self.skip_ws();
        match self.peek(0) {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            Some(_) => Err(Fail::Syntax),
            None => Err(self.ended()),
        }
    }

    /// Before a key: true if the object closes here (allowed right after `{` only).
    fn object_ends(&mut self, first: bool) -> Result<bool, Fail> {
        self.skip_ws();
        match self.peek(0) {
            Some(b'}') if first => {
                self.pos += 1;
                Ok(true)
            }
            Some(b'"') => Ok(false),
            Some(_) => Err(Fail::Syntax),
            None => Err(self.ended()),
        }
    }

    /// An object at the read position, walked member by member (`NodeSeed::visit_map`).
    fn object(&mut self, depth: usize, nest: usize, ctx: &mut Ctx) -> Result<Option<Node>, Fail> {
        self.pos += 1;
        let mut m = MapState::default();
        if !self.object_ends(true)? {
            loop {
                let key = self.key()?;
                let member = m.key(depth, &key).map_err(Fail::Data)?;
                self.expect(b':')?;
                self.skip_ws();
                match member {
                    Member::Sv => {
                        let (len, cut) = self.whole(nest + 1);
                        let mut de = serde_json::Deserializer::from_slice(
                            &self.buf[self.pos..self.pos + len],
                        );
                        let v = serde::Deserialize::deserialize(&mut de)
                            .and_then(|v: Value| de.end().map(|()| v));
                        match v {
                            Ok(v) if !cut => {
                                self.pos += len;
                                m.sv_value(&v).map_err(Fail::Data)?;
                                ctx.has_sv = true;
                            }
                            Ok(_) => return Err(Fail::Syntax),
                            Err(e) => return Err(self.slice_failed(e.is_eof(), len, cut)),
                        }
                    }
                    Member::Meta => {
                        let (len, cut) = self.whole(nest + 1);
                        let before = std::mem::take(&mut ctx.has_sv);
                        let child = self.parse_slice(len, cut, depth, ctx)?;
                        let sv = ctx.has_sv;
                        ctx.has_sv |= before;
                        m.meta_value(&key, child, sv).map_err(Fail::Data)?;
                    }
                    Member::Data(d) => match self.child(d, nest + 1, true, ctx)? {
                        Child::Node(n, sv) => m.data_value(&key, n, sv),
                        Child::Packed(len) => {
                            m.data_packed(&key, &self.packed);
                            self.pos += len;
                        }
                    },
                }
                if !self.next_or_close(b'}')? {
                    break;
                }
                if self.object_ends(false)? {
                    unreachable!("object_ends(false) never closes");
                }
            }
        }
        m.finish().map_err(Fail::Data)
    }

    /// An array at the read position, walked element by element (`NodeSeed::visit_seq`).
    fn array(&mut self, depth: usize, nest: usize, ctx: &mut Ctx) -> Result<Option<Node>, Fail> {
        self.pos += 1;
        let mut st = SeqState::default();
        self.skip_ws();
        if self.peek(0) == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                match self.child(depth + 1, nest + 1, true, ctx)? {
                    Child::Node(n, sv) => st.element(depth, n, sv).map_err(Fail::Data)?,
                    Child::Packed(len) => {
                        st.element_packed(depth, &self.packed).map_err(Fail::Data)?;
                        self.pos += len;
                    }
                }
                if !self.next_or_close(b']')? {
                    break;
                }
            }
        }
        Ok(super::parse::wrap(st.b))
    }

    /// After the top value: only whitespace to the end.
    fn end(&mut self) -> Result<(), Fail> {
        self.skip_ws();
        match self.peek(0) {
            Some(_) => Err(Fail::Syntax),
            None if self.io.is_some() => Err(self.ended()),
            None => Ok(()),
        }
    }
}

fn message(f: Fail) -> String {
    match f {
        Fail::Syntax => BAD_JSON.to_string(),
        Fail::Io(e) => format!("{READ_FAILED}{e}"),
        Fail::Data(m) => m,
    }
}

/// How a read failure is reported (`is_read_failure`).
pub(super) const READ_FAILED: &str = "Could not read the data: ";

impl DataError {
    /// The reader failed (rather than the data being refused).
    pub fn is_read_failure(&self) -> bool {
        self.0.starts_with(READ_FAILED)
    }
}

/// `parse` from a reader (imports of any size): see the module's notes.
pub fn parse_reader(r: impl Read, depth: usize) -> Result<Parsed, DataError> {
    let mut input = Input::new(r);
    let mut ctx = Ctx::default();
    let res = input
        .child(depth, 0, false, &mut ctx)
        .and_then(|c| input.end().map(|()| c));
    match res {
        Ok(Child::Node(node, _)) => Ok(Parsed {
            node,
            has_sv: ctx.has_sv,
        }),
        Ok(Child::Packed(_)) => unreachable!("not asked to pack"),
        Err(f) => Err(DataError(message(f))),
    }
}

/// An import `{ "<namespace>": <tree>, ... }` from a reader straight into a store, as
/// `import_reader` does; on any error, `None` (the caller reads it again with `import_reader`
/// for its exact message).
pub fn import_reader_fast(r: impl Read, now_ms: i64) -> Option<Store> {
    let mut input = Input::new(r);
    let mut store = Store::new();
    let mut ctx = Ctx::default();
    input.skip_ws();
    if input.peek(0) != Some(b'{') {
        return None;
    }
    input.pos += 1;
    if !input.object_ends(true).ok()? {
        loop {
            let ns = input.key().ok()?;
            if !crate::rtdb::database_url::valid_namespace(&ns) {
                return None;
            }
            input.expect(b':').ok()?;
            let Child::Node(mut node, _) = input.child(0, 1, false, &mut ctx).ok()? else {
                return None;
            };
            if let Some(n) = &mut node {
                resolve(n, None, now_ms);
            }
            store.set(&ns, &[], node);
            if !input.next_or_close(b'}').ok()? {
                break;
            }
            if input.object_ends(false).ok()? {
                return None;
            }
        }
    }
    input.end().ok()?;
    Some(store)
}

/// `s` (a whole value, an object `depth` levels deep) as the text packing it would store,
/// written to `out` without building it, when that is simple: a non-empty object of valid,
/// distinct keys (put in key order here), not read as an array, with no whitespace, no null,
/// no empty object, no array, strings without escapes, integers written as `json` writes them,
/// at most `PACK_MAX` bytes (an export or a GET sends records so). False for anything else,
/// which is parsed and built as usual.
fn pack(s: &[u8], depth: usize, out: &mut String) -> bool {
    out.clear();
    if s.len() > PACK_MAX || s.first() != Some(&b'{') {
        return false;
    }
    let Ok(t) = std::str::from_utf8(s) else {
        return false;
    };
    let mut i = 0;
    object(t, &mut i, depth, out) && i == s.len()
}

/// One member of an object being packed: its key and where its value's text is (in the input,
/// or in the nested objects' text).
struct Packing<'t> {
    key: &'t str,
    from: usize,
    to: usize,
    nested: bool,
}

fn object(t: &str, i: &mut usize, depth: usize, out: &mut String) -> bool {
    let s = t.as_bytes();
    // At '{'.
    *i += 1;
    if depth + 1 >= MAX_DEPTH {
        return false;
    }
    let mut members: smallvec::SmallVec<[Packing<'_>; 12]> = smallvec::SmallVec::new();
    let mut nested = String::new();
    let mut sorted = true;
    loop {
        let Some(key) = string(t, i) else {
            return false;
        };
        if validate_key(key).is_err() {
            return false;
        }
        if members
            .last()
            .is_some_and(|m| compare_keys(m.key, key) != Ordering::Less)
        {
            sorted = false;
        }
        if s.get(*i) != Some(&b':') {
            return false;
        }
        *i += 1;
        let from = *i;
        let ok = match s.get(*i) {
            Some(b'"') => string(t, i).is_some(),
            Some(b't') => word(s, i, b"true"),
            Some(b'f') => word(s, i, b"false"),
            Some(b'-' | b'0'..=b'9') => integer(s, i),
            Some(b'{') => {
                let at = nested.len();
                if !object(t, i, depth + 1, &mut nested) {
                    return false;
                }
                members.push(Packing {
                    key,
                    from: at,
                    to: nested.len(),
                    nested: true,
                });
                true
            }
            _ => false,
        };
        if !ok {
            return false;
        }
        if members
            .last()
            .is_none_or(|m| m.key.as_ptr() != key.as_ptr())
        {
            members.push(Packing {
                key,
                from,
                to: *i,
                nested: false,
            });
        }
        match s.get(*i) {
            Some(b',') => *i += 1,
            Some(b'}') => {
                *i += 1;
                break;
            }
            _ => return false,
        }
    }
    if !sorted {
        members.sort_unstable_by(|a, b| compare_keys(a.key, b.key));
        if members
            .windows(2)
            .any(|w| compare_keys(w[0].key, w[1].key) != Ordering::Less)
        {
            return false; // the same key twice
        }
    }
    // An object with index keys may be written as an array.
    let (first, last) = (members[0].key, members[members.len() - 1].key);
    if array_len_of([first, last].into_iter(), members.len()).is_some() {
        return false;
    }
    out.push('{');
    for (n, m) in members.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(m.key);
        out.push_str("\":");
        out.push_str(if m.nested {
            &nested[m.from..m.to]
        } else {
            &t[m.from..m.to]
        });
    }
    out.push('}');
    true
}

/// A string without escapes or control characters (its text), the position past it.
fn string<'t>(t: &'t str, i: &mut usize) -> Option<&'t str> {
    let s = t.as_bytes();
    if s.get(*i) != Some(&b'"') {
        return None;
    }
    let start = *i + 1;
    let len = s[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    if s[start + len] != b'"' {
        return None;
    }
    *i = start + len + 1;
    // '"' is ASCII: both ends are boundaries.
    Some(&t[start..start + len])
}

fn word(s: &[u8], i: &mut usize, w: &[u8]) -> bool {
    if s[*i..].starts_with(w) {
        *i += w.len();
        true
    } else {
        false
    }
}

/// An integer as `json::write_num` writes it: no '+', no leading zero, no "-0", no fraction or
/// exponent, at most 15 digits (exact as a double, written back the same).
fn integer(s: &[u8], i: &mut usize) -> bool {
    let neg = s[*i] == b'-';
    let start = *i + usize::from(neg);
    let digits = s[start..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 || digits > 15 || (s[start] == b'0' && (digits > 1 || neg)) {
        return false;
    }
    let end = start + digits;
    if matches!(s.get(end), Some(b'.' | b'e' | b'E')) {
        return false;
    }
    *i = end;
    true
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_reader_serde;
    use super::super::{import_reader, Store};
    use super::*;

    /// A reader handing out `text` `n` bytes at a time, then failing at byte `fail` if given.
    struct Pieces<'a> {
        text: &'a [u8],
        n: usize,
        fail: Option<usize>,
    }
    impl Read for Pieces<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.text.is_empty() && self.fail.is_some() {
                return Err(std::io::Error::other("the connection was reset"));
            }
            let n = self.n.min(buf.len()).min(self.text.len());
            buf[..n].copy_from_slice(&self.text[..n]);
            self.text = &self.text[n..];
            Ok(n)
        }
    }
    fn pieces(text: &[u8], n: usize, fail: Option<usize>) -> Pieces<'_> {
        let text = fail.map_or(text, |f| &text[..f.min(text.len())]);
        Pieces { text, n, fail }
    }

    /// The tree exactly as built (chunks, packed text, entries) and the flags, or the error.
    fn shown(r: Result<Parsed, DataError>) -> String {
        match r {
            Ok(p) => format!("{:?} sv={}", p.node, p.has_sv),
            Err(e) => format!("error: {}", e.0),
        }
    }

    /// The streamed parse gives what serde_json's reader-driven parse gives, for every size of
    /// the pieces the text arrives in (1 byte: split at every boundary).
    fn same(text: &[u8], depth: usize) -> String {
        same_in(text, depth, &[1, 2, 3, 7, 64, 1 << 20])
    }
    fn same_in(text: &[u8], depth: usize, sizes: &[usize]) -> String {
        let want = shown(parse_reader_serde(text, depth));
        for &n in sizes {
            let got = shown(parse_reader(pieces(text, n, None), depth));
            assert_eq!(
                got,
                want,
                "pieces of {n}: {}",
                String::from_utf8_lossy(text)
            );
        }
        want
    }

    fn user(i: usize) -> String {
        format!(
            r#"{{"age":{},"bio":"Likes {{braces}} and [brackets], \"quotes\" \\ and \u00e9","city":"Oslo","email":"u{i}@example.com","tags":{{"beta":true,"n":-{i}}}}}"#,
            18 + i % 60
        )
    }

    /// Inputs that take every path: packed as they are, parsed and built, walked.
    fn corpus() -> Vec<String> {
        let canonical: Vec<String> = (0..6)
            .map(|i| format!(r#""u{i}":{{"a":{i},"b":"x{{y}}","c":{{"d":true,"e":"]"}}}}"#))
            .collect();
        let users: Vec<String> = (0..5).map(|i| format!(r#""k{i}": {}"#, user(i))).collect();
        vec![
            format!("{{{}}}", canonical.join(",")),
            format!(" {{ \"users\" : {{ {} }} , \"n\": 1.5e3 }} \n", users.join(" ,\n ")),
            format!(r#"{{"a":{{"users":{{{}}}}},"b":[{}]}}"#, canonical.join(","), (0..6).map(user).collect::<Vec<_>>().join(",")),
            // Not in output form: unsorted, array-like, -0, fractions, long integers,
            // escapes, nulls, empty objects, whitespace, unicode keys.
            r#"{"b":{"z":1,"a":2},"c":{"0":"x","1":"y"},"d":{"n":-0},"e":{"n":0.5},"f":{"n":1234567890123456},"g":{"s":"a\/b"},"h":{"n":null,"m":1},"i":{"e":{},"m":1},"j":{ "m":1},"k":{"é":"ü"},"l":{"n":1e2},"m":{"n":7.0}}"#.to_string(),
            r#"[1, null, {"a": [true, false, "s"]}, [], {}, "x", 2.5, {"b": {"c": null}}, [[1], [2, [3]]], "\ud83d\ude00"]"#.to_string(),
            r#"{"p": {".priority": 5, "a": 1}, "q": {".value": "v", ".priority": "z"}, "t": {".sv": "timestamp"}, "i": {".sv": {"increment": 2}}, "r": {".priority": null, ".value": 3}, "long": {"x": "0123456789012345678901234567890123456789012345678901234567890123456789"}}"#.to_string(),
            r#""just a string with } and ] and \" inside""#.to_string(),
            "123".to_string(),
            "null".to_string(),
            "{}".to_string(),
            "[]".to_string(),
            r#"{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":1}}}}}}}}}}}"#.to_string(),
        ]
    }

    #[test]
    fn streamed_parse_matches_the_reader_parse_at_every_split() {
        for text in corpus() {
            let shown = same(text.as_bytes(), 0);
            assert!(!shown.starts_with("error"), "{text}: {shown}");
            same(text.as_bytes(), 3);
        }
    }

    #[test]
    fn packed_children_are_stored_as_the_built_ones_would_be() {
        // Every member here is in output form and packed as it is: the chunks hold the same
        // text and entries as building and writing each child gives.
        let members: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    r#""u{i:04}":{{"a":{i},"b":"x","c":{{"d":true,"e":-{}}},"z":"é"}}"#,
                    i + 1
                )
            })
            .collect();
        let text = format!("{{\"users\":{{{}}}}}", members.join(","));
        same(text.as_bytes(), 0);
        let mut out = String::new();
        for m in &members {
            let value = &m[m.find(':').unwrap() + 1..];
            assert!(pack(value.as_bytes(), 0, &mut out));
            assert_eq!(out, value);
        }
        let packs = |s: &str, depth: usize| {
            let mut out = String::new();
            pack(s.as_bytes(), depth, &mut out).then_some(out)
        };
        assert_eq!(
            packs(r#"{"b":1,"a":{"z":"x","10":true,"9":false}}"#, 0).as_deref(),
            Some(r#"{"a":{"9":false,"10":true,"z":"x"},"b":1}"#),
            "put in key order"
        );
        assert_eq!(packs(r#"{"0":1,"1":2}"#, 0), None, "an array");
        assert_eq!(packs(r#"{"a":1,"a":2}"#, 0), None, "a key twice");
        assert_eq!(packs(r#"{"a":-0}"#, 0), None, "-0");
        assert_eq!(packs(r#"{"a":"\n"}"#, 0), None, "an escape");
        assert_eq!(packs(r#"{"a":{"b":1}}"#, 30), None, "too deep");
        assert!(packs(r#"{"a":{"b":1}}"#, 29).is_some());
    }

    #[test]
    fn streamed_parse_refuses_what_the_reader_parse_refuses() {
        // Every truncation and several corruptions at every position of every input.
        for text in corpus() {
            let b = text.as_bytes();
            for at in 0..b.len() {
                same(&b[..at], 0);
                for c in [b'}', b']', b',', b'"', b'\\', b'x', b'{', b':', 0x01, 0xff] {
                    let mut bad = b.to_vec();
                    bad[at] = c;
                    same_in(&bad, 0, &[1, 1 << 20]);
                }
                let mut extra = b.to_vec();
                extra.insert(at, b',');
                same_in(&extra, 0, &[3]);
            }
            let mut trailing = b.to_vec();
            trailing.extend_from_slice(b" x");
            same(&trailing, 0);
        }
    }

    #[test]
    fn streamed_parse_checks_keys_depth_strings_and_server_values() {
        for text in [
            r#"{"users": {"a": 1, "b.c": 2}}"#,
            r#"{"users": {"a": {"$x": 1}}}"#,
            r#"{"users": {"a": 1, "": 2}}"#,
            r#"{"users": {"a\u0001": 1}}"#,
            r#"{"a": {".sv": "timestamp", "b": 1}}"#,
            r#"{"a": {"b": 1, ".sv": "timestamp"}}"#,
            r#"{"a": {".sv": "later"}}"#,
            r#"{"a": {".value": {"b": 1}}}"#,
            r#"{"a": {".value": 1, "b": 2}}"#,
            r#"{"a": {".priority": true, "b": 2}}"#,
            r#"{"list": [1, 2, {"a.b": 3}]}"#,
        ] {
            let shown = same(text.as_bytes(), 0);
            assert!(
                shown.starts_with("error: Invalid data; "),
                "{text}: {shown}"
            );
        }
        // 32 levels: a key 31 levels down is the deepest.
        let nest = |n: usize| {
            let mut s = String::from("1");
            for _ in 0..n {
                s = format!(r#"{{"k":{s},"pad":"................................."}}"#);
            }
            s
        };
        assert!(!same(nest(31).as_bytes(), 0).starts_with("error"));
        assert!(same(nest(32).as_bytes(), 0).contains("levels deep"));
        assert!(same(nest(30).as_bytes(), 2).contains("levels deep"));
        // Arrays: serde_json's nesting limit (128) before the depth check, wherever it falls.
        for n in [120, 126, 127, 128, 129, 140] {
            let arrays = format!("{}1{}", "[".repeat(n), "]".repeat(n));
            same(arrays.as_bytes(), 0);
            let inside = format!(r#"{{"a":{},"pad":"{}"}}"#, arrays, "-".repeat(60));
            same(inside.as_bytes(), 0);
            let sv = format!(r#"{{"pad":"{}","t":{{".sv":{}}}}}"#, "-".repeat(60), arrays);
            same(sv.as_bytes(), 0);
        }
        // Strings up to 10 MB, in a walked object.
        let long = format!(
            r#"{{"a":"{}","b":"{}"}}"#,
            "x".repeat(MAX_STRING),
            "y".repeat(MAX_STRING + 1)
        );
        let want = shown(parse_reader_serde(long.as_bytes(), 0));
        assert!(want.contains("10 MB"), "{want}");
        assert_eq!(
            shown(parse_reader(pieces(long.as_bytes(), 4096, None), 0)),
            want
        );
    }
    const MAX_STRING: usize = super::super::parse::MAX_STRING_BYTES;

    #[test]
    fn a_failing_reader_is_reported_where_the_reader_parse_meets_it() {
        for text in corpus() {
            let b = text.as_bytes();
            // serde_json adds where the text stopped, at some places only.
            let shown = |r| {
                let s = shown(r);
                match s.find(" at line ") {
                    Some(i) if s.contains("Could not read") => s[..i].to_string(),
                    _ => s,
                }
            };
            for at in 0..b.len() {
                let want = shown(parse_reader_serde(pieces(b, 5, Some(at)), 0));
                for n in [1, 5, 1 << 20] {
                    assert_eq!(
                        shown(parse_reader(pieces(b, n, Some(at)), 0)),
                        want,
                        "{text} at {at}"
                    );
                }
                // Data refused before the failure is what is reported.
                let mut bad = b.to_vec();
                bad[at / 2] = b'x';
                let want = shown(parse_reader_serde(pieces(&bad, 5, Some(at)), 0));
                assert_eq!(shown(parse_reader(pieces(&bad, 3, Some(at)), 0)), want);
            }
        }
    }

    fn store_shown(s: &Store) -> String {
        format!("{} {}", s.export(), s.heap_bytes())
    }

    #[test]
    fn imports_store_the_same_data() {
        let users: Vec<String> = (0..300)
            .map(|i| format!(r#""u{i:04}":{}"#, user(i)))
            .collect();
        let canonical: Vec<String> = (0..300)
            .map(|i| format!(r#""u{i:04}":{{"a":{i},"b":"x","c":{{"d":true}}}}"#))
            .collect();
        let text = format!(
            r#"{{"one": {{"users": {{{}}}, "t": {{".sv": "timestamp"}}}}, "two": {{"users": {{{}}}}}, "three": [1, {{"a": 2}}], "four": 5}}"#,
            users.join(","),
            canonical.join(",")
        );
        let want = import_reader(text.as_bytes(), 7).unwrap();
        for n in [1, 13, 1 << 20] {
            let got = import_reader_fast(pieces(text.as_bytes(), n, None), 7).unwrap();
            assert_eq!(store_shown(&got), store_shown(&want));
        }
        for bad in [
            r#"{"one": {"a.b": 1}}"#,
            "[1]",
            r#"{"bad ns!": 1}"#,
            r#"{"one": 1,}"#,
            r#"{"one": 1} x"#,
            r#"{"one": {"a": 1}"#,
        ] {
            assert!(import_reader(bad.as_bytes(), 0).is_err());
            assert!(import_reader_fast(bad.as_bytes(), 0).is_none(), "{bad}");
        }
    }
}
