//! What a migration changed: the data before it, kept as a snapshot file (compact JSON in RTDB
//! key order, written from the emulator's tree), read back as a stream and compared with the
//! tree as it is now. Memory holds the path being compared and the counters, never a second
//! copy of the data; the before side is on disk.
//!
//! Changes are counted in leaf values (a string, number or boolean at a path): a leaf only
//! before is removed, only after is added, at both with another value changed; a leaf that
//! became an object (or the reverse) counts as removed and its replacement as added. Example
//! paths name the topmost node that differs (an added subtree once, not each of its leaves).
//! The history node and the lock node are left out of both sides: they are the runner's
//! bookkeeping, not data. So are priorities: snapshots and comparisons see the data as a plain
//! read does.

use std::borrow::Cow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::iter::Peekable;

use super::report::{ChangeKind, Changes, ChildChanges, Example};
use crate::emulator::{
    skip_json as skip, skip_json_str as skip_str, unquote_json as unquote,
    write_json_plain as write_json, NodeRef,
};
use crate::rtdb::order::compare_keys;

/// Paths (relative to the compared node, as segments) left out of snapshots and diffs.
pub type Exclusions = Vec<Vec<String>>;

/// The exclusions below child `key`: `None` when the child itself is excluded.
fn below(excl: &[Vec<String>], key: &str) -> Option<Exclusions> {
    let mut rest = Vec::new();
    for p in excl {
        if p.first().map(String::as_str) == Some(key) {
            if p.len() == 1 {
                return None;
            }
            rest.push(p[1..].to_vec());
        }
    }
    Some(rest)
}

/// Whether child `v` is there once `rest` (its exclusions) is left out: an object whose only
/// leaves are excluded (`migrations` holding just the lock) is not.
fn present(v: NodeRef<'_>, rest: &[Vec<String>]) -> bool {
    rest.is_empty() || !v.has_children() || leaves(v, rest) > 0
}

// ---------------------------------------------------------------------------------------------
// Snapshots

/// A writer that counts what goes through it.
struct Counting<'w> {
    inner: &'w mut dyn Write,
    n: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Write `node` (the compared node; `null` when missing) without the excluded paths. Returns
/// the JSON size of each written top-level child, in key order.
pub fn write_snapshot(
    w: &mut dyn Write,
    node: Option<NodeRef<'_>>,
    excl: &[Vec<String>],
) -> std::io::Result<Vec<u64>> {
    let mut sizes = Vec::new();
    match node {
        None => w.write_all(b"null")?,
        Some(n) if !n.has_children() => write_json(&mut &mut *w, n)?,
        Some(n) => write_object(&mut *w, n, excl, Some(&mut sizes))?,
    }
    Ok(sizes)
}

/// An object with its children in key order, the excluded ones left out.
fn write_object(
    w: &mut dyn Write,
    n: NodeRef<'_>,
    excl: &[Vec<String>],
    mut sizes: Option<&mut Vec<u64>>,
) -> std::io::Result<()> {
    w.write_all(b"{")?;
    let mut first = true;
    for (k, v) in kids(n) {
        let Some(rest) = below(excl, &k).filter(|rest| present(v, rest)) else {
            continue;
        };
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, k.as_ref()).map_err(std::io::Error::from)?;
        w.write_all(b":")?;
        let mut c = Counting {
            inner: &mut *w,
            n: 0,
        };
        if !rest.is_empty() && v.has_children() {
            write_object(&mut c, v, &rest, None)?;
        } else {
            write_json(&mut c, v)?;
        }
        if let Some(s) = sizes.as_deref_mut() {
            s.push(c.n);
        }
    }
    w.write_all(b"}")
}

// ---------------------------------------------------------------------------------------------
// The diff

/// What a diff needs besides the two sides.
pub struct DiffInput<'s> {
    /// The compared node's path, for example paths (`app` -> `/app/users/u1`).
    pub base: &'s str,
    pub exclusions: &'s [Vec<String>],
    /// Top-level child sizes of the before snapshot and of the after side, in key order (the
    /// after sizes may be empty, and filled in later with `DiffResult::sizes_after`).
    pub before_sizes: &'s [u64],
    pub after_sizes: &'s [u64],
    /// Example paths to keep at most.
    pub examples: usize,
    /// Differences (topmost paths) already known: examples prefer the ones not in it, and
    /// `fresh` counts those.
    pub known: Option<&'s HashSet<u64>>,
    /// Collect the topmost differing paths (hashed) of this diff.
    pub collect: bool,
    /// Hears each topmost difference (its path below the compared node, and its kind).
    pub visit: Option<Visit<'s>>,
}

/// A diff's result: the changes, and (when asked) the hashed paths that differ.
#[derive(Debug, Default)]
pub struct DiffResult {
    pub changes: Changes,
    /// Topmost differences not in `known`.
    pub fresh: u64,
    pub paths: HashSet<u64>,
    /// Example paths whether known or not (`changes.examples` has the fresh ones).
    pub all_examples: Vec<Example>,
    /// For each of `changes.children`, its index among the after side's top-level children
    /// (`None`: not there after): for filling in `bytes_after` when the after sizes are known
    /// only once the diff is done (see [`DiffResult::sizes_after`]).
    pub after_index: Vec<Option<usize>>,
}

impl DiffResult {
    /// Fill in the changed children's sizes after, from the after side's top-level child sizes.
    pub fn sizes_after(&mut self, sizes: &[u64]) {
        for (c, i) in self.changes.children.iter_mut().zip(&self.after_index) {
            c.bytes_after = i.and_then(|i| sizes.get(i).copied()).unwrap_or(0);
        }
    }
}

/// Hears each topmost difference: its path below the compared node, and its kind.
pub type Visit<'s> = &'s dyn Fn(&[String], ChangeKind);

/// Compare the snapshot `before` with the tree `after` (see the module docs).
/// Compare the snapshot `before` with the tree `after` (see the module docs).
///
/// The snapshot is read as bytes, not parsed into values: where the after side is packed (the
/// store's compact JSON of a small subtree, in the form the snapshot holds it), a before value
/// with the very same bytes is unchanged and is stepped over without reading it; otherwise the
/// two are compared member by member, each member tried the same way first.
pub fn diff(
    before: impl Read,
    after: Option<NodeRef<'_>>,
    input: &DiffInput<'_>,
) -> Result<DiffResult, String> {
    let mut w = Walker {
        src: Src::new(before),
        acc: Acc {
            input,
            base: input.base.split('/').filter(|s| !s.is_empty()).collect(),
            path: Vec::new(),
            depth: 0,
            out: DiffResult::default(),
            child: None,
            before_index: 0,
            after_index: 0,
        },
        keys: Vec::new(),
    };
    w.compare(after, input.exclusions, true)
        .and_then(|()| w.src.end())
        .map_err(|e| format!("the snapshot could not be read back ({e})"))?;
    Ok(w.acc.out)
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    added: u64,
    removed: u64,
    changed: u64,
}

impl Counts {
    fn any(&self) -> bool {
        self.added + self.removed + self.changed > 0
    }
}

struct Acc<'i> {
    input: &'i DiffInput<'i>,
    base: Vec<&'i str>,
    /// Segments below the compared node: the first `depth` of them (the rest are spare
    /// buffers, reused as the walk goes down again).
    path: Vec<String>,
    depth: usize,
    out: DiffResult,
    /// The top-level child being compared: its key, counts and sizes.
    child: Option<(String, Counts, u64, Option<usize>)>,
    before_index: usize,
    after_index: usize,
}

impl Acc<'_> {
    /// Go down to child `key`.
    fn enter(&mut self, key: &str) {
        match self.path.get_mut(self.depth) {
            Some(s) => {
                s.clear();
                s.push_str(key);
            }
            None => self.path.push(key.to_string()),
        }
        self.depth += 1;
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A difference at the current path.
    fn record(&mut self, kind: ChangeKind, c: Counts) {
        if !c.any() {
            return;
        }
        let path = &self.path[..self.depth];
        if let Some(visit) = self.input.visit {
            visit(path, kind);
        }
        let ch = &mut self.out.changes;
        ch.added += c.added;
        ch.removed += c.removed;
        ch.changed += c.changed;
        if let Some((_, cc, _, _)) = &mut self.child {
            cc.added += c.added;
            cc.removed += c.removed;
            cc.changed += c.changed;
        }
        let examples = self.input.examples;
        let wanted =
            self.out.all_examples.len() < examples || self.out.changes.examples.len() < examples;
        if self.input.known.is_none() && !self.input.collect && !wanted {
            // Every difference is fresh, and neither its path nor its hash is needed.
            self.out.fresh += 1;
            return;
        }
        let shown = format!(
            "/{}",
            self.base
                .iter()
                .copied()
                .chain(path.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join("/")
        );
        let mut h = std::collections::hash_map::DefaultHasher::new();
        shown.hash(&mut h);
        let hash = h.finish();
        let fresh = self.input.known.is_none_or(|k| !k.contains(&hash));
        if fresh {
            self.out.fresh += 1;
        }
        if self.input.collect {
            self.out.paths.insert(hash);
        }
        if self.out.all_examples.len() < self.input.examples {
            self.out.all_examples.push(Example {
                path: shown.clone(),
                kind,
            });
        }
        if fresh && self.out.changes.examples.len() < self.input.examples {
            self.out
                .changes
                .examples
                .push(Example { path: shown, kind });
        }
    }

    fn begin_child(&mut self, key: &str, before: bool, after: bool) {
        let size = |sizes: &[u64], i: &mut usize, present: bool| {
            if !present {
                return 0;
            }
            let s = sizes.get(*i).copied().unwrap_or(0);
            *i += 1;
            s
        };
        let b = size(self.input.before_sizes, &mut self.before_index, before);
        let a = after.then(|| {
            self.after_index += 1;
            self.after_index - 1
        });
        self.child = Some((key.to_string(), Counts::default(), b, a));
    }

    fn end_child(&mut self) {
        if let Some((key, c, b, a)) = self.child.take() {
            if c.any() {
                self.out.changes.children.push(ChildChanges {
                    key,
                    added: c.added,
                    removed: c.removed,
                    changed: c.changed,
                    bytes_before: b,
                    bytes_after: a
                        .and_then(|i| self.input.after_sizes.get(i).copied())
                        .unwrap_or(0),
                });
                self.out.after_index.push(a);
            }
        }
    }
}

/// Leaf values under `n` (1 for a primitive), the excluded paths left out.
fn leaves(n: NodeRef<'_>, excl: &[Vec<String>]) -> u64 {
    if !n.has_children() {
        return 1;
    }
    kids(n)
        .filter_map(|(k, v)| below(excl, &k).map(|rest| leaves(v, &rest)))
        .sum()
}

/// A primitive as compared.
#[derive(Debug, PartialEq)]
enum Leaf<'a> {
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
}

fn leaf_of(n: NodeRef<'_>) -> Option<Leaf<'_>> {
    match n.unwrapped() {
        NodeRef::Bool(b) => Some(Leaf::Bool(b)),
        NodeRef::Num(x) => Some(Leaf::Num(x)),
        NodeRef::Str(s) => Some(Leaf::Str(Cow::Borrowed(s))),
        // Packed JSON (compact, as the store writes it): read in place where it can be.
        NodeRef::Json(t) => match t.as_bytes().first()? {
            b'{' | b'[' | b'n' => None,
            b't' => Some(Leaf::Bool(true)),
            b'f' => Some(Leaf::Bool(false)),
            b'"' if !t.contains('\\') => Some(Leaf::Str(Cow::Borrowed(&t[1..t.len() - 1]))),
            b'"' => serde_json::from_str::<String>(t)
                .ok()
                .map(|s| Leaf::Str(Cow::Owned(s))),
            _ => serde_json::from_str::<f64>(t).ok().map(Leaf::Num),
        },
        NodeRef::Obj(_) => None,
    }
}

/// One level of the after side: its children not yet compared.
struct Level<'a> {
    kids: Peekable<Kids<'a>>,
    excl: Exclusions,
    /// The compared node itself (its children are the top-level ones).
    top: bool,
}

impl<'a> Level<'a> {
    fn new(n: NodeRef<'a>, excl: Exclusions, top: bool) -> Level<'a> {
        Level {
            kids: kids(n).peekable(),
            excl,
            top,
        }
    }

    /// The after child at `key`; after-only children before it are recorded as added.
    fn take(&mut self, key: &str, acc: &mut Acc<'_>) -> Option<NodeRef<'a>> {
        while let Some((k, _)) = self.kids.peek() {
            match compare_keys(k, key) {
                std::cmp::Ordering::Less => {
                    let (k, v) = self.kids.next().expect("peeked");
                    self.added(&k, v, acc);
                }
                std::cmp::Ordering::Equal => {
                    let (k, v) = self.kids.next().expect("peeked");
                    return below(&self.excl, &k)
                        .filter(|rest| present(v, rest))
                        .map(|_| v);
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        None
    }

    fn added(&self, key: &str, v: NodeRef<'_>, acc: &mut Acc<'_>) {
        let Some(rest) = below(&self.excl, key).filter(|rest| present(v, rest)) else {
            return;
        };
        if self.top {
            acc.begin_child(key, false, true);
        }
        acc.enter(key);
        let n = leaves(v, &rest);
        acc.record(
            ChangeKind::Added,
            Counts {
                added: n,
                ..Counts::default()
            },
        );
        acc.leave();
        if self.top {
            acc.end_child();
        }
    }

    /// The after-only children left at the end.
    fn finish(&mut self, acc: &mut Acc<'_>) {
        while let Some((k, v)) = self.kids.next() {
            self.added(&k, v, acc);
        }
    }
}

/// The walk: the snapshot's bytes against the tree.
struct Walker<'i, R> {
    src: Src<R>,
    acc: Acc<'i>,
    /// Spare key buffers (two per object being read: the key and the one before it).
    keys: Vec<String>,
}

impl<R: Read> Walker<'_, R> {
    /// Compare the before value at the reader with `after` (at the current path). `top`: this
    /// is the compared node itself.
    fn compare(
        &mut self,
        after: Option<NodeRef<'_>>,
        excl: &[Vec<String>],
        top: bool,
    ) -> Result<(), String> {
        // The same bytes as the packed after side: the same data.
        if let (Some(NodeRef::Json(t)), true) = (after, excl.is_empty()) {
            if self.src.same(t.as_bytes())? {
                return Ok(());
            }
        }
        match self.src.peek()? {
            b'{' | b'[' => self.container(after, excl, top),
            b'n' => {
                // Nothing here (an empty compared node).
                self.src.literal(b"null")?;
                if let (true, Some(a)) = (top, after) {
                    let n = leaves(a, excl);
                    self.acc.record(
                        ChangeKind::Added,
                        Counts {
                            added: n,
                            ..Counts::default()
                        },
                    );
                }
                Ok(())
            }
            _ => self.leaf(after, excl),
        }
    }

    fn leaf(&mut self, after: Option<NodeRef<'_>>, excl: &[Vec<String>]) -> Result<(), String> {
        let before = self.src.leaf()?;
        let (kind, c) = match after {
            None => (
                ChangeKind::Removed,
                Counts {
                    removed: 1,
                    ..Counts::default()
                },
            ),
            Some(a) => match leaf_of(a) {
                Some(l) if l == before => return Ok(()),
                Some(_) => (
                    ChangeKind::Changed,
                    Counts {
                        changed: 1,
                        ..Counts::default()
                    },
                ),
                None => (
                    ChangeKind::Changed,
                    Counts {
                        removed: 1,
                        added: leaves(a, excl),
                        changed: 0,
                    },
                ),
            },
        };
        self.acc.record(kind, c);
        Ok(())
    }

    /// A before object or array.
    fn container(
        &mut self,
        after: Option<NodeRef<'_>>,
        excl: &[Vec<String>],
        top: bool,
    ) -> Result<(), String> {
        match after {
            Some(a) if a.has_children() => {
                let mut level = Level::new(a, excl.to_vec(), top);
                let mut key = self.keys.pop().unwrap_or_default();
                let mut prev = self.keys.pop().unwrap_or_default();
                let r = self.members(&mut level, &mut key, &mut prev);
                self.keys.push(prev);
                self.keys.push(key);
                r?;
                level.finish(&mut self.acc);
            }
            Some(a) => {
                let n = self.src.count()?;
                self.acc.record(
                    ChangeKind::Changed,
                    Counts {
                        removed: n,
                        added: leaves(a, excl),
                        changed: 0,
                    },
                );
            }
            None => {
                let n = self.src.count()?;
                self.acc.record(
                    ChangeKind::Removed,
                    Counts {
                        removed: n,
                        ..Counts::default()
                    },
                );
            }
        }
        Ok(())
    }

    /// The members of a before object (or the elements of an array, keyed by index) against
    /// the after level.
    fn members(
        &mut self,
        level: &mut Level<'_>,
        key: &mut String,
        prev: &mut String,
    ) -> Result<(), String> {
        let array = self.src.next()? == b'[';
        let close = if array { b']' } else { b'}' };
        if self.src.peek()? == close {
            self.src.pos += 1;
            return Ok(());
        }
        let mut index = 0usize;
        let mut first = true;
        loop {
            key.clear();
            if array {
                use std::fmt::Write as _;
                let _ = write!(key, "{index}");
                index += 1;
            } else {
                self.src.string(key)?;
                self.src.eat(b':')?;
            }
            if !first && compare_keys(prev, key) != std::cmp::Ordering::Less {
                return Err(format!("keys out of order ({prev:?} before {key:?})"));
            }
            first = false;
            if self.src.peek()? == b'n' {
                // An array's gap: nothing there.
                self.src.literal(b"null")?;
            } else {
                let after = level.take(key, &mut self.acc);
                let rest = below(&level.excl, key).unwrap_or_default();
                if level.top {
                    self.acc.begin_child(key, true, after.is_some());
                }
                self.acc.enter(key);
                let r = self.compare(after, &rest, false);
                self.acc.leave();
                if level.top {
                    self.acc.end_child();
                }
                r?;
            }
            std::mem::swap(key, prev);
            match self.src.next()? {
                b',' => {}
                c if c == close => return Ok(()),
                c => return Err(self.src.unexpected(c)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the snapshot

/// The before side: a snapshot's compact JSON through a buffer that grows only for a value
/// longer than it (a long string, a packed child compared whole).
struct Src<R> {
    r: R,
    buf: Vec<u8>,
    /// The next byte to read, and the end of what was read.
    pos: usize,
    end: usize,
    /// Bytes dropped from the buffer's front so far (for error offsets).
    dropped: u64,
    eof: bool,
}

impl<R: Read> Src<R> {
    fn new(r: R) -> Self {
        Src {
            r,
            buf: vec![0; 256 * 1024],
            pos: 0,
            end: 0,
            dropped: 0,
            eof: false,
        }
    }

    /// Have `want` bytes from `pos` in the buffer if the file holds them; whether it does.
    fn fill(&mut self, want: usize) -> Result<bool, String> {
        while self.end - self.pos < want {
            if self.eof {
                return Ok(false);
            }
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.dropped += self.pos as u64;
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.end == self.buf.len() {
                let n = (self.buf.len() * 2).max(want);
                self.buf.resize(n, 0);
            }
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(true)
    }

    fn at(&self) -> u64 {
        self.dropped + self.pos as u64
    }

    fn unexpected(&self, c: u8) -> String {
        format!(
            "unexpected {:?} at byte {}",
            c as char,
            self.at().saturating_sub(1)
        )
    }

    fn peek(&mut self) -> Result<u8, String> {
        if self.pos == self.end && !self.fill(1)? {
            return Err(format!("unexpected end at byte {}", self.at()));
        }
        Ok(self.buf[self.pos])
    }

    fn next(&mut self) -> Result<u8, String> {
        let c = self.peek()?;
        self.pos += 1;
        Ok(c)
    }

    fn eat(&mut self, want: u8) -> Result<(), String> {
        match self.next()? {
            c if c == want => Ok(()),
            c => Err(self.unexpected(c)),
        }
    }

    /// Whether the value here is `t` byte for byte (a whole compact JSON value); stepped over
    /// if so.
    fn same(&mut self, t: &[u8]) -> Result<bool, String> {
        let n = t.len();
        if self.end - self.pos <= n {
            self.fill(n + 1)?;
        }
        let here = &self.buf[self.pos..self.end];
        // A number or a literal could go on ("12" in "123"): the value must end there.
        if here.get(..n) != Some(t) || !matches!(here.get(n), None | Some(b',' | b'}' | b']')) {
            return Ok(false);
        }
        self.pos += n;
        Ok(true)
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), String> {
        self.fill(word.len())?;
        if self.buf[self.pos..self.end].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(format!("invalid literal at byte {}", self.at()))
        }
    }

    /// The length of the string here (its quotes included), and whether it has escapes.
    fn string_len(&mut self) -> Result<(usize, bool), String> {
        if self.peek()? != b'"' {
            return Err(format!("expected a string at byte {}", self.at()));
        }
        let mut i = 1;
        let mut escaped = false;
        loop {
            let from = self.pos + i;
            match memchr::memchr2(b'"', b'\\', &self.buf[from.min(self.end)..self.end]) {
                Some(j) if self.buf[from + j] == b'"' => return Ok((i + j + 1, escaped)),
                Some(j) => {
                    escaped = true;
                    i += j + 2;
                }
                None => i = self.end - self.pos,
            }
            if self.pos + i >= self.end && !self.fill(i + 1)? {
                return Err(format!("unterminated string at byte {}", self.at()));
            }
        }
    }

    /// The string here, unescaped, appended to `out`.
    fn string(&mut self, out: &mut String) -> Result<(), String> {
        let (n, escaped) = self.string_len()?;
        let raw = &self.buf[self.pos..self.pos + n];
        if escaped {
            let s: String = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
            out.push_str(&s);
        } else {
            out.push_str(std::str::from_utf8(&raw[1..n - 1]).map_err(|e| e.to_string())?);
        }
        self.pos += n;
        Ok(())
    }

    /// The length of the number here.
    fn number_len(&mut self) -> Result<usize, String> {
        let mut i = 0;
        loop {
            while self.pos + i < self.end
                && matches!(
                    self.buf[self.pos + i],
                    b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                )
            {
                i += 1;
            }
            if self.pos + i < self.end || !self.fill(i + 1)? {
                break;
            }
        }
        if i == 0 {
            let c = self.peek()?;
            return Err(format!("unexpected {:?} at byte {}", c as char, self.at()));
        }
        Ok(i)
    }

    /// The primitive here (a string borrowed from the buffer when it has no escapes).
    fn leaf(&mut self) -> Result<Leaf<'_>, String> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Leaf::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Leaf::Bool(false)),
            b'"' => {
                let (n, escaped) = self.string_len()?;
                let start = self.pos;
                self.pos += n;
                let raw = &self.buf[start..start + n];
                if escaped {
                    let s: String = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
                    Ok(Leaf::Str(Cow::Owned(s)))
                } else {
                    let s = std::str::from_utf8(&raw[1..n - 1]).map_err(|e| e.to_string())?;
                    Ok(Leaf::Str(Cow::Borrowed(s)))
                }
            }
            _ => {
                let n = self.number_len()?;
                let start = self.pos;
                self.pos += n;
                std::str::from_utf8(&self.buf[start..start + n])
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                    .map(Leaf::Num)
                    .ok_or_else(|| format!("invalid number at byte {start}"))
            }
        }
    }

    /// Step over the value here: its leaf values.
    fn count(&mut self) -> Result<u64, String> {
        match self.peek()? {
            open @ (b'{' | b'[') => {
                self.pos += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                if self.peek()? == close {
                    self.pos += 1;
                    return Ok(0);
                }
                let mut n = 0;
                loop {
                    if open == b'{' {
                        let (len, _) = self.string_len()?;
                        self.pos += len;
                        self.eat(b':')?;
                    }
                    n += self.count()?;
                    match self.next()? {
                        b',' => {}
                        c if c == close => return Ok(n),
                        c => return Err(self.unexpected(c)),
                    }
                }
            }
            b'n' => self.literal(b"null").map(|()| 0),
            _ => self.leaf().map(|_| 1),
        }
    }

    /// Nothing but white space left.
    fn end(&mut self) -> Result<(), String> {
        loop {
            while self.pos < self.end {
                if !self.buf[self.pos].is_ascii_whitespace() {
                    return Err(format!("trailing characters at byte {}", self.at()));
                }
                self.pos += 1;
            }
            if !self.fill(1)? {
                return Ok(());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The after side's children

/// The children of a node in key order (none for a primitive; a priority is not a child).
enum Kids<'a> {
    Tree(Box<dyn Iterator<Item = (Cow<'a, str>, NodeRef<'a>)> + 'a>),
    Text(TextKids<'a>),
}

impl<'a> Iterator for Kids<'a> {
    type Item = (Cow<'a, str>, NodeRef<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Kids::Tree(it) => it.next(),
            Kids::Text(it) => it.next(),
        }
    }
}

fn kids(n: NodeRef<'_>) -> Kids<'_> {
    match n {
        NodeRef::Obj(o) => Kids::Tree(Box::new(
            o.iter()
                .filter(|(k, _)| !k.starts_with('.'))
                .map(|(k, v)| (Cow::Borrowed(k), v)),
        )),
        NodeRef::Json(t) => Kids::Text(TextKids::new(t)),
        _ => Kids::Text(TextKids::new("")),
    }
}

/// The children of packed text (compact JSON as the store packs it, members in key order, an
/// array's elements in index order), read in place: an object's members but its priority, an
/// array's non-null elements keyed by index.
struct TextKids<'a> {
    t: &'a str,
    i: usize,
    /// An array: the index of the next element.
    index: Option<usize>,
}

impl<'a> TextKids<'a> {
    fn new(t: &'a str) -> TextKids<'a> {
        match t.as_bytes().first() {
            Some(b'{') => TextKids {
                t,
                i: 1,
                index: None,
            },
            Some(b'[') => TextKids {
                t,
                i: 1,
                index: Some(0),
            },
            _ => TextKids {
                t,
                i: t.len(),
                index: None,
            },
        }
    }
}

impl<'a> Iterator for TextKids<'a> {
    type Item = (Cow<'a, str>, NodeRef<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.t.as_bytes();
        loop {
            if self.i >= b.len() || matches!(b[self.i], b'}' | b']') {
                return None;
            }
            let (key, start) = match &mut self.index {
                None => {
                    let k_end = skip_str(b, self.i);
                    (unquote(&self.t[self.i..k_end]), k_end + 1)
                }
                Some(n) => {
                    *n += 1;
                    (Cow::Owned((*n - 1).to_string()), self.i)
                }
            };
            let end = skip(b, start);
            self.i = if b.get(end) == Some(&b',') {
                end + 1
            } else {
                end
            };
            let v = &self.t[start..end];
            if key.starts_with('.') || v == "null" {
                continue;
            }
            return Some((key, NodeRef::Json(v)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{Emulator, EmulatorOptions};
    use serde_json::{json, Value};

    /// Diff `before` against `after` (both loaded into an emulator, as the rehearsal sees them).
    /// Exclusions given as `a/b` paths.
    fn exclusions(paths: &[&str]) -> Exclusions {
        paths
            .iter()
            .map(|p| p.split('/').map(String::from).collect())
            .collect()
    }

    async fn changes(before: Value, after: Value, excl: &[&str]) -> DiffResult {
        let excl = exclusions(excl);
        let emu = Emulator::start(EmulatorOptions {
            import: Some(json!({"b": {"app": before}, "a": {"app": after}})),
            ..Default::default()
        })
        .await
        .unwrap();
        let view = emu.view();
        let segs = vec!["app".to_string()];
        let mut snap = Vec::new();
        let before_sizes = view.read("b", &segs, |n| write_snapshot(&mut snap, n, &excl).unwrap());
        let mut after_snap = Vec::new();
        let after_sizes = view.read("a", &segs, |n| {
            write_snapshot(&mut after_snap, n, &excl).unwrap()
        });
        let input = DiffInput {
            base: "app",
            exclusions: &excl,
            before_sizes: &before_sizes,
            after_sizes: &after_sizes,
            examples: 10,
            known: None,
            collect: true,
            visit: None,
        };
        let d = view.read("a", &segs, |n| diff(&snap[..], n, &input).unwrap());
        emu.stop().await.unwrap();
        d
    }

    fn shown(d: &DiffResult) -> Vec<String> {
        d.changes
            .examples
            .iter()
            .map(|e| format!("{:?} {}", e.kind, e.path))
            .collect()
    }

    #[tokio::test]
    async fn leaves_are_counted_and_the_topmost_differing_node_is_named() {
        let d = changes(
            json!({"a": {"x": 1, "y": "s"}, "gone": {"p": 1, "q": {"r": true}}, "n": 2.5}),
            json!({"a": {"x": 1, "y": "t", "z": [1, 2]}, "new": {"k": "v"}, "n": 2.5}),
            &[],
        )
        .await;
        let c = &d.changes;
        assert_eq!((c.added, c.removed, c.changed), (3, 2, 1));
        assert_eq!(
            shown(&d),
            [
                "Changed /app/a/y",
                "Added /app/a/z",
                "Removed /app/gone",
                "Added /app/new"
            ]
        );
        let keys: Vec<&str> = c.children.iter().map(|ch| ch.key.as_str()).collect();
        assert_eq!(keys, ["a", "gone", "new"]);
        assert_eq!(
            c.children[1].bytes_before,
            r#"{"p":1,"q":{"r":true}}"#.len() as u64
        );
        assert_eq!(c.children[1].bytes_after, 0);
        assert_eq!(c.children[2].bytes_after, r#"{"k":"v"}"#.len() as u64);
        assert_eq!(d.paths.len(), 4);
    }

    #[tokio::test]
    async fn arrays_numbers_type_changes_and_big_objects() {
        // Arrays (stored as objects, written as arrays), gaps, equal numbers written alike.
        let d = changes(
            json!({"l": [1, null, 3], "n": 1.0, "t": 5, "o": {"a": 1, "b": 2}}),
            json!({"l": [1, 2, 3, 4], "n": 1, "t": {"x": 1, "y": 2}, "o": "flat"}),
            &[],
        )
        .await;
        let c = &d.changes;
        assert_eq!(
            shown(&d),
            [
                "Added /app/l/1",
                "Added /app/l/3",
                "Changed /app/o",
                "Changed /app/t"
            ]
        );
        assert_eq!((c.added, c.removed, c.changed), (2 + 1 + 2, 2 + 1, 0));
        // Nothing changed: nothing reported, whatever the size.
        let big: serde_json::Map<String, Value> = (0..3000)
            .map(|i| (format!("k{i:05}"), json!({"v": i, "s": "x".repeat(i % 50)})))
            .collect();
        let d = changes(
            json!({"big": big.clone()}),
            json!({"big": big.clone()}),
            &[],
        )
        .await;
        assert!(d.changes.is_empty() && d.changes.children.is_empty());
        let mut edited = big.clone();
        edited.insert("k01500".into(), json!({"v": -1, "s": ""}));
        edited.remove("k00007");
        let d = changes(json!({"big": big}), json!({"big": edited.clone()}), &[]).await;
        assert_eq!(
            shown(&d),
            ["Removed /app/big/k00007", "Changed /app/big/k01500/v"]
        );
        assert_eq!((d.changes.removed, d.changes.changed), (2, 1));
        let d = changes(json!({"o": 1}), json!({"o": 1, "big": edited}), &[]).await;
        assert_eq!(d.changes.added, 2999 * 2);
        assert_eq!(shown(&d), ["Added /app/big"]);
    }

    #[tokio::test]
    async fn excluded_paths_and_empty_roots() {
        let d = changes(
            json!({"schema_version": {"v1": {"name": "a"}}, "migrations": {"_lock": {"e": 1}}, "x": 1}),
            json!({"schema_version": {"v2": {"name": "b"}}, "migrations": {"_lock": {"e": 2}, "keep": 1}, "x": 1}),
            &["schema_version", "migrations/_lock"],
        )
        .await;
        // Before, `migrations` held only the (excluded) lock: it was not there.
        assert_eq!(shown(&d), ["Added /app/migrations"]);
        assert_eq!(d.changes.children[0].bytes_before, 0);
        let d = changes(Value::Null, json!({"a": 1}), &[]).await;
        assert_eq!(shown(&d), ["Added /app"]);
        let d = changes(json!({"a": {"b": 1}}), Value::Null, &[]).await;
        assert_eq!(shown(&d), ["Removed /app"]);
        assert_eq!(d.changes.removed, 1);
        let d = changes(json!("top"), json!("top"), &[]).await;
        assert!(d.changes.is_empty());
    }

    // -----------------------------------------------------------------------------------------
    // The diff against a plain model of it: every difference, in order, with its counts.

    /// The data as a diff sees it: objects only (an array as its non-null elements keyed by
    /// index), priorities left out, nulls and empty objects pruned.
    fn plain(v: &Value) -> Option<Value> {
        let obj = |kids: Vec<(String, &Value)>| {
            let m: serde_json::Map<String, Value> = kids
                .into_iter()
                .filter_map(|(k, v)| plain(v).map(|p| (k, p)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        };
        match v {
            Value::Null => None,
            Value::Array(a) => obj(a
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect()),
            Value::Object(m) => match m.get(".value") {
                Some(x) => plain(x),
                None => obj(m
                    .iter()
                    .filter(|(k, _)| !k.starts_with('.'))
                    .map(|(k, v)| (k.clone(), v))
                    .collect()),
            },
            other => Some(other.clone()),
        }
    }

    fn without(v: &Value, excl: &[&str]) -> Option<Value> {
        let mut v = plain(v)?;
        for p in excl {
            let segs: Vec<&str> = p.split('/').collect();
            let (last, up) = segs.split_last().unwrap();
            if let Some(Value::Object(m)) = up.iter().try_fold(&mut v, |n, s| n.get_mut(*s)) {
                m.remove(*last);
            }
        }
        plain(&v)
    }

    fn count(v: &Value) -> u64 {
        match v {
            Value::Object(m) => m.values().map(count).sum(),
            _ => 1,
        }
    }

    type Seen = Vec<(String, ChangeKind, Counts)>;

    /// Every topmost difference in key order (the model).
    fn model(b: Option<&Value>, a: Option<&Value>, path: &mut Vec<String>, out: &mut Seen) {
        let mut put = |kind, added, removed, changed| {
            let c = Counts {
                added,
                removed,
                changed,
            };
            out.push((path.join("/"), kind, c));
        };
        match (b, a) {
            (None, None) => {}
            (None, Some(a)) => put(ChangeKind::Added, count(a), 0, 0),
            (Some(b), None) => put(ChangeKind::Removed, 0, count(b), 0),
            (Some(Value::Object(bm)), Some(Value::Object(am))) => {
                let mut keys: Vec<&String> = bm.keys().chain(am.keys()).collect();
                keys.sort_by(|x, y| compare_keys(x, y));
                keys.dedup();
                for k in keys {
                    path.push(k.clone());
                    model(bm.get(k), am.get(k), path, out);
                    path.pop();
                }
            }
            (Some(b), Some(a)) if b.is_object() || a.is_object() => {
                put(ChangeKind::Changed, count(a), count(b), 0)
            }
            (Some(b), Some(a)) => {
                let same = match (b, a) {
                    (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
                    _ => b == a,
                };
                if !same {
                    put(ChangeKind::Changed, 0, 0, 1)
                }
            }
        }
    }

    /// A deterministic pseudo-random source.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn record(r: &mut Lcg, i: u64) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("age".into(), json!(18 + r.next(60)));
        m.insert("name".into(), json!(format!("User {i}")));
        match r.next(6) {
            0 => m.insert("score".into(), json!(1.5)),
            1 => m.insert(
                "note".into(),
                json!("a \"quoted\" \\ é \u{1F600} line\nnext"),
            ),
            2 => m.insert("list".into(), json!([1, null, "x", {"y": true}])),
            // Too big to be packed: an object of its own in the store.
            3 => m.insert("bio".into(), json!("walks ".repeat(300))),
            _ => m.insert(
                "tags".into(),
                json!({"beta": r.next(2) == 0, "n": r.next(3)}),
            ),
        };
        Value::Object(m)
    }

    /// One change to a record (or none).
    fn edit(r: &mut Lcg, v: &mut Value) {
        let m = v.as_object_mut().unwrap();
        match r.next(12) {
            0 => {
                m.insert("plan".into(), json!("free"));
            }
            1 => {
                m.remove("name");
            }
            2 => {
                m.insert("age".into(), json!(99));
            }
            // Type changes both ways.
            3 => {
                m.insert("name".into(), json!({"first": "A", "last": "B"}));
            }
            4 => {
                if let Some(t) = m.get_mut("tags") {
                    *t = json!("flat");
                }
            }
            // The same number written another way: unchanged.
            5 => {
                m.insert("age".into(), json!(m["age"].as_f64().unwrap()));
            }
            // A priority on the record, and a prioritised primitive: unchanged.
            6 => {
                m.insert(".priority".into(), json!(3));
                let name = m["name"].clone();
                m.insert("name".into(), json!({".value": name, ".priority": "p"}));
            }
            7 => {
                if let Some(Value::Array(l)) = m.get_mut("list") {
                    l[1] = json!(2);
                    l.push(json!(4));
                }
            }
            8 => {
                if let Some(Value::String(b)) = m.get_mut("bio") {
                    b.push('!');
                }
            }
            _ => {}
        }
    }

    /// `n` users before, and after with edits, removals, additions, changes at both ends.
    fn case(r: &mut Lcg, n: u64) -> (Value, Value) {
        let mut before = serde_json::Map::new();
        for i in 0..n {
            before.insert(format!("u{:03}", i * 2 + 1), record(r, i));
        }
        let mut after = before.clone();
        for (i, (_, v)) in after.iter_mut().enumerate() {
            if i == 0 || i as u64 == n - 1 || r.next(3) == 0 {
                edit(r, v);
            }
        }
        for _ in 0..r.next(4) {
            let k = format!("u{:03}", r.next(n) * 2 + 1);
            after.remove(&k);
        }
        for _ in 0..r.next(4) {
            let i = r.next(n + 1) * 2;
            after.insert(format!("u{i:03}"), record(r, i));
        }
        // Before the first key and after the last.
        if r.next(2) == 0 {
            after.insert("a".into(), json!({"k": 1}));
            after.insert("zz".into(), json!([true, false]));
        }
        let b = json!({
            "users": before,
            "migrations": {"_lock": {"epoch": 1}, "V1": {"name": "one"}},
            "counter": 1,
            "gone": {"x": {"y": 1, "z": "w"}}
        });
        let a = json!({
            "users": after,
            "migrations": {"_lock": {"epoch": 2}, "V1": {"name": "one"}, "V2": {"name": "two"}},
            "counter": {"n": 2},
            "fresh": {"p": [1, 2]}
        });
        (b, a)
    }

    /// Random data, diffed by the snapshot walk and by the model: the same differences in the
    /// same order (what the `.validate` check hears), counts, examples and top-level children.
    #[tokio::test]
    async fn the_walk_finds_what_a_plain_comparison_finds() {
        let mut r = Lcg(7);
        let excl = ["migrations/_lock", "history"];
        let cases: Vec<(Value, Value)> = (0..12).map(|i| case(&mut r, 5 + i * 9)).collect();
        let mut import = serde_json::Map::new();
        for (i, (b, a)) in cases.iter().enumerate() {
            import.insert(format!("b{i}"), json!({ "app": b }));
            import.insert(format!("a{i}"), json!({ "app": a }));
        }
        let emu = Emulator::start(EmulatorOptions {
            import: Some(Value::Object(import)),
            ..Default::default()
        })
        .await
        .unwrap();
        let view = emu.view();
        let segs = vec!["app".to_string()];
        let excl_segs = exclusions(&excl);
        for (i, (b, a)) in cases.iter().enumerate() {
            let mut expected = Vec::new();
            model(
                without(b, &excl).as_ref(),
                without(a, &excl).as_ref(),
                &mut Vec::new(),
                &mut expected,
            );
            assert!(expected.len() > 3, "case {i} has changes");
            let mut snap = Vec::new();
            let before_sizes = view.read(&format!("b{i}"), &segs, |n| {
                write_snapshot(&mut snap, n, &excl_segs).unwrap()
            });
            let heard = std::cell::RefCell::new(Vec::new());
            let visit = |p: &[String], k: ChangeKind| heard.borrow_mut().push((p.join("/"), k));
            for examples in [3, 1000] {
                heard.borrow_mut().clear();
                let input = DiffInput {
                    base: "app",
                    exclusions: &excl_segs,
                    before_sizes: &before_sizes,
                    after_sizes: &[],
                    examples,
                    known: None,
                    collect: false,
                    visit: Some(&visit),
                };
                let d = view.read(&format!("a{i}"), &segs, |n| {
                    diff(&snap[..], n, &input).unwrap()
                });
                let want: Vec<(String, ChangeKind)> =
                    expected.iter().map(|(p, k, _)| (p.clone(), *k)).collect();
                assert_eq!(*heard.borrow(), want, "case {i}: differences heard");
                let shown: Vec<String> = expected
                    .iter()
                    .take(examples)
                    .map(|(p, k, _)| format!("{k:?} /app/{p}"))
                    .collect();
                let got: Vec<String> = d
                    .changes
                    .examples
                    .iter()
                    .map(|e| format!("{:?} {}", e.kind, e.path))
                    .collect();
                assert_eq!(got, shown, "case {i}: examples");
                let sum = |f: fn(&Counts) -> u64| expected.iter().map(|(_, _, c)| f(c)).sum();
                let c = &d.changes;
                assert_eq!(
                    (c.added, c.removed, c.changed),
                    (sum(|c| c.added), sum(|c| c.removed), sum(|c| c.changed)),
                    "case {i}: counts"
                );
                assert_eq!(d.fresh, expected.len() as u64);
                // Top-level children: their counts summed from the model, in key order.
                let mut children: Vec<(String, u64, u64, u64)> = Vec::new();
                for (p, _, n) in &expected {
                    let key = p.split('/').next().unwrap().to_string();
                    match children.last_mut() {
                        Some(last) if last.0 == key => {
                            last.1 += n.added;
                            last.2 += n.removed;
                            last.3 += n.changed;
                        }
                        _ => children.push((key, n.added, n.removed, n.changed)),
                    }
                }
                let got: Vec<(String, u64, u64, u64)> = c
                    .children
                    .iter()
                    .map(|ch| (ch.key.clone(), ch.added, ch.removed, ch.changed))
                    .collect();
                assert_eq!(got, children, "case {i}: children");
            }
        }
        emu.stop().await.unwrap();
    }
}
