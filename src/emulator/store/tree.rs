//! The compact tree. An object is a list of chunks; a chunk holds up to `CHUNK_MAX` children in
//! RTDB key order as 24-byte entries, plus one string arena with the children's keys, string
//! values and packed subtrees. A child object whose JSON is at most `PACK_MAX` bytes is packed:
//! its compact JSON in output form lives in the arena (see `json`), so a small record costs its
//! JSON text plus one entry; a larger one is an `Obj` of its own. Looking a key up is two binary
//! searches; inserting or removing one moves at most `CHUNK_MAX` entries.
//!
//! Memory under rewrites: changing a packed child appends its new JSON and leaves the old as
//! garbage, so during a write an arena may grow (or be compacted in place when a quarter of it is
//! garbage). Every chunk a write changed is marked (`touched`, up the path), and once the write is
//! done `Obj::tidy` visits the marked chunks only and gives back their garbage and spare room:
//! exactly the live text after a chunk was much rewritten, 1/64 of room after a few changes. A
//! store rewritten record by record thus holds its data plus what the data grew, not up to twice
//! the data.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;
use smallvec::SmallVec;

use super::json;
use super::step;
use crate::rtdb::order::{compare_keys, OrderBy, Query};

/// Children per chunk before it is split in two.
pub(super) const CHUNK_MAX: usize = 512;
/// Children per chunk when an object is built in one go (room left for inserts).
const CHUNK_FILL: usize = 384;
/// Child objects up to this many bytes of JSON are packed.
pub(super) const PACK_MAX: usize = 1024;

/// A server value placeholder, resolved when the write is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ServerValue {
    Timestamp,
    Increment(f64),
}

/// A value outside any object: the root of a namespace, or data about to be written. Never null,
/// never an empty object.
#[derive(Debug)]
pub enum Node {
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    Obj(Box<Obj>),
    /// Only in freshly parsed data, never in the store.
    Sv(ServerValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Span {
    off: u32,
    len: u32,
}

/// A child inside a chunk (16 bytes); strings and packed JSON live in the chunk's arena.
#[derive(Debug, Clone)]
pub(super) enum Slot {
    Bool(bool),
    Num(f64),
    Str(Span),
    Json(Span),
    Obj(Box<Obj>),
    Sv(ServerValue),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    key: Span,
    slot: Slot,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Chunk {
    text: String,
    entries: Vec<Entry>,
    /// Bytes of `text` no longer referenced.
    dead: usize,
    /// Bytes appended to `text` since the last `tidy`.
    fresh: usize,
    /// Changed, here or in an object below, since the last `tidy`.
    touched: bool,
}

/// An object: non-empty chunks in key order. Chunks are shared (copy on write): a clone of an
/// object is a list of the same chunks, O(chunks at its top level), and a change to a chunk
/// another clone also holds copies that chunk first (`Obj::chunk_mut`), so a clone taken under
/// the store's lock stays as it was while writers go on (`super::Snapshot`).
#[derive(Debug, Default, Clone)]
pub struct Obj {
    chunks: SmallVec<[Arc<Chunk>; 1]>,
}

/// Builds an object from children pushed one by one. Children arriving in key order (exports,
/// backups, most imports) go straight into chunks, nothing held twice; any other order is
/// collected and sorted at the end (`Obj::build`).
#[derive(Debug, Default)]
pub(super) struct Builder {
    done: Vec<Chunk>,
    cur: Chunk,
    /// Every key so far came after the one before.
    unsorted: bool,
}

impl Builder {
    pub(super) fn push(&mut self, key: &str, node: Node, pack: bool) {
        self.before_push(key);
        self.cur.push(key, node, pack);
    }

    /// `push` of a child object given as its packed text: compact JSON in output form, at most
    /// `PACK_MAX` bytes, exactly what packing the parsed object would store (the caller checks).
    pub(super) fn push_packed(&mut self, key: &str, json: &str) {
        self.before_push(key);
        let c = &mut self.cur;
        let key = c.append(key);
        c.entries.push(Entry {
            key,
            slot: Slot::Bool(false),
        });
        // As `Chunk::push`: the key's span is in `entries` before the value is added.
        let slot = Slot::Json(c.append(json));
        c.entries.last_mut().expect("just pushed").slot = slot;
    }

    fn before_push(&mut self, key: &str) {
        let last = self
            .cur
            .entries
            .last()
            .map(|_| self.cur.last_key())
            .or_else(|| self.done.last().map(Chunk::last_key));
        if last.is_some_and(|l| compare_keys(l, key) != Ordering::Less) {
            self.unsorted = true;
        }
        if !self.unsorted && self.cur.len() >= CHUNK_FILL {
            let mut full = std::mem::take(&mut self.cur);
            full.fit();
            self.done.push(full);
        }
    }

    pub(super) fn finish(mut self) -> Option<Obj> {
        if !self.unsorted {
            if !self.cur.entries.is_empty() {
                self.cur.fit();
                self.done.push(self.cur);
            }
            if self.done.is_empty() {
                return None;
            }
            step(self.done.iter().map(Chunk::len).sum());
            return Some(Obj {
                chunks: self.done.into_iter().map(Arc::new).collect(),
            });
        }
        // Out of order: everything into one chunk, sorted there.
        let mut all = Chunk::default();
        for mut c in self.done.into_iter().chain(std::iter::once(self.cur)) {
            for e in std::mem::take(&mut c.entries) {
                let key = all.append(c.str(e.key));
                let slot = match e.slot {
                    Slot::Str(s) => Slot::Str(all.append(c.str(s))),
                    Slot::Json(s) => Slot::Json(all.append(c.str(s))),
                    other => other,
                };
                all.entries.push(Entry { key, slot });
            }
        }
        Obj::build(all)
    }
}

/// A borrowed view of a stored value.
#[derive(Debug, Clone, Copy)]
pub enum NodeRef<'a> {
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// A packed subtree, or a value inside one: compact JSON in output form.
    Json(&'a str),
    Obj(&'a Obj),
}

impl Node {
    pub fn view(&self) -> NodeRef<'_> {
        match self {
            Node::Bool(b) => NodeRef::Bool(*b),
            Node::Num(n) => NodeRef::Num(*n),
            Node::Str(s) => NodeRef::Str(s),
            Node::Obj(o) => NodeRef::Obj(o),
            Node::Sv(_) => NodeRef::Num(0.0),
        }
    }
}

fn span_of(slot: &Slot) -> Option<Span> {
    match slot {
        Slot::Str(s) | Slot::Json(s) => Some(*s),
        _ => None,
    }
}

impl Chunk {
    /// Add `s` to the arena. When it does not fit and a quarter of the arena is garbage, the
    /// garbage is dropped first (in place) rather than the arena grown. Any span taken before
    /// this call and not yet in `entries` would be left stale: take spans one call at a time.
    fn append(&mut self, s: &str) -> Span {
        if self.text.len() + s.len() > self.text.capacity()
            && self.dead >= s.len()
            && self.dead * 4 >= self.text.len()
        {
            self.compact();
        }
        let off = self.text.len() as u32;
        self.text.push_str(s);
        self.fresh += s.len();
        self.touched = true;
        Span {
            off,
            len: s.len() as u32,
        }
    }
    fn str(&self, span: Span) -> &str {
        &self.text[span.off as usize..(span.off + span.len) as usize]
    }
    fn key(&self, i: usize) -> &str {
        self.str(self.entries[i].key)
    }
    fn last_key(&self) -> &str {
        self.key(self.entries.len() - 1)
    }
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Append the compact JSON of `obj` to the arena when it is small enough.
    fn try_pack(&mut self, obj: &Obj) -> Option<Span> {
        // An empty object is only ever a child about to be filled: keep it an object.
        if obj.is_empty() || obj.len() > PACK_MAX / 6 {
            return None; // every member takes at least 6 bytes: cannot fit
        }
        let mut buf = Vec::with_capacity(128);
        match json::write_limited(&mut buf, NodeRef::Obj(obj), PACK_MAX) {
            // JSON written from valid strings is valid UTF-8.
            Ok(_) => Some(self.append(std::str::from_utf8(&buf).expect("JSON is UTF-8"))),
            Err(json::TooBig) => None,
        }
    }

    /// The slot for a node; small objects are packed (`pack` false: keep them as objects, for
    /// data with unresolved server values).
    pub(super) fn slot_of(&mut self, node: Node, pack: bool) -> Slot {
        match node {
            Node::Bool(b) => Slot::Bool(b),
            Node::Num(n) => Slot::Num(n),
            Node::Str(s) => Slot::Str(self.append(&s)),
            Node::Obj(o) => match pack.then(|| self.try_pack(&o)).flatten() {
                Some(span) => Slot::Json(span),
                None => Slot::Obj(o),
            },
            Node::Sv(sv) => Slot::Sv(sv),
        }
    }

    /// Add a child while building (any order; `Obj::build` sorts).
    pub(super) fn push(&mut self, key: &str, node: Node, pack: bool) {
        let key = self.append(key);
        self.entries.push(Entry {
            key,
            slot: Slot::Bool(false),
        });
        // The key's span is in `entries` before the value is added (`append` may compact).
        let slot = self.slot_of(node, pack);
        self.entries.last_mut().expect("just pushed").slot = slot;
    }

    fn view(&self, i: usize) -> NodeRef<'_> {
        match &self.entries[i].slot {
            Slot::Bool(b) => NodeRef::Bool(*b),
            Slot::Num(n) => NodeRef::Num(*n),
            Slot::Str(s) => NodeRef::Str(self.str(*s)),
            Slot::Json(s) => NodeRef::Json(self.str(*s)),
            Slot::Obj(o) => NodeRef::Obj(o),
            Slot::Sv(_) => NodeRef::Num(0.0),
        }
    }
    /// Text that is garbage now (`touched`: the tidy after the write gives it back).
    fn forget(&mut self, slot: &Slot) {
        if let Some(s) = span_of(slot) {
            self.dead += s.len as usize;
        }
        self.touched = true;
    }
    /// Replace entry `i`'s value.
    fn replace(&mut self, i: usize, node: Node) {
        let slot = self.slot_of(node, true);
        let old = std::mem::replace(&mut self.entries[i].slot, slot);
        self.forget(&old);
    }
    fn insert(&mut self, i: usize, key: &str, node: Node) {
        let key = self.append(key);
        step(self.entries.len() - i);
        self.entries.insert(
            i,
            Entry {
                key,
                slot: Slot::Bool(false),
            },
        );
        // The key's span is in `entries` before the value is added (`append` may compact).
        self.entries[i].slot = self.slot_of(node, true);
    }
    fn remove(&mut self, i: usize) {
        step(self.entries.len() - i);
        let e = self.entries.remove(i);
        self.dead += e.key.len as usize;
        self.forget(&e.slot);
    }
    /// Drop the garbage from the arena in place: the live text moves down in arena order, the
    /// spans follow it; the allocation is kept (`tidy` gives back what is left over).
    fn compact(&mut self) {
        if self.dead == 0 {
            return;
        }
        let mut spans: Vec<&mut Span> = Vec::with_capacity(2 * self.entries.len());
        for e in &mut self.entries {
            spans.push(&mut e.key);
            if let Slot::Str(s) | Slot::Json(s) = &mut e.slot {
                spans.push(s);
            }
        }
        spans.sort_unstable_by_key(|s| s.off);
        let mut bytes = std::mem::take(&mut self.text).into_bytes();
        let mut at = 0;
        for s in spans {
            let (from, len) = (s.off as usize, s.len as usize);
            bytes.copy_within(from..from + len, at);
            s.off = at as u32;
            at += len;
        }
        debug_assert_eq!(at, bytes.len() - self.dead);
        bytes.truncate(at);
        // Whole strings, moved whole: still UTF-8.
        self.text = String::from_utf8(bytes).expect("live text is UTF-8");
        self.dead = 0;
    }
    /// After a write: give back the garbage and the spare room a change left in the arena and
    /// the entry list, keeping a little room (1/64 of the live text) where only a few children
    /// changed, so the next few small changes need no new allocation, and none where much of the
    /// chunk was rewritten (a bulk rewrite leaves every chunk it went through exactly its size).
    fn tidy(&mut self) {
        let live = self.text.len() - self.dead;
        if self.text.capacity() > live + live / 32 + 64 {
            let room = if self.fresh * 8 >= live { 0 } else { live / 64 };
            self.compact();
            self.text.shrink_to(live + room);
        }
        let n = self.entries.len();
        if self.entries.capacity() > n + n / 32 + 4 {
            self.entries.shrink_to(n + n / 64);
        }
        self.fresh = 0;
        self.touched = false;
    }
    /// Exactly its size (a chunk just built).
    fn fit(&mut self) {
        self.compact();
        self.text.shrink_to_fit();
        self.entries.shrink_to_fit();
        self.fresh = 0;
        self.touched = false;
    }
    /// Move entries `from..` into a new chunk with its own arena (exactly its size); the text
    /// they leave here is garbage until the next `tidy`.
    fn split_off(&mut self, from: usize) -> Chunk {
        let moved: Vec<Entry> = self.entries.drain(from..).collect();
        step(moved.len());
        let bytes: usize = moved
            .iter()
            .map(|e| (e.key.len + span_of(&e.slot).map_or(0, |s| s.len)) as usize)
            .sum();
        let mut out = Chunk {
            text: String::with_capacity(bytes),
            entries: Vec::with_capacity(moved.len()),
            ..Chunk::default()
        };
        self.dead += bytes;
        self.touched = true;
        for e in moved {
            let key = out.append(self.str(e.key));
            let slot = match e.slot {
                Slot::Str(s) => Slot::Str(out.append(self.str(s))),
                Slot::Json(s) => Slot::Json(out.append(self.str(s))),
                other => other,
            };
            out.entries.push(Entry { key, slot });
        }
        out
    }
    fn heap_bytes(&self) -> usize {
        let mut n = malloc(self.text.capacity())
            + malloc(self.entries.capacity() * std::mem::size_of::<Entry>());
        for e in &self.entries {
            if let Slot::Obj(o) = &e.slot {
                n += o.heap_bytes_boxed();
            }
        }
        n
    }
}

/// What an allocation of `n` bytes costs with glibc malloc (8-byte header, 16-byte granules,
/// 32-byte minimum).
pub(super) fn malloc(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Where a key is, or where it would go.
type Pos = Result<(usize, usize), (usize, usize)>;

impl Obj {
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    /// Chunk sizes (for tests of the representation).
    #[cfg(test)]
    pub(super) fn chunk_sizes(&self) -> Vec<usize> {
        self.chunks.iter().map(|c| c.len()).collect()
    }

    /// How many of this object's chunks, and of those of the objects below it, `other` holds
    /// too (the same allocation), and how many there are in all (for tests of the sharing).
    #[cfg(test)]
    pub(super) fn shared_chunks(&self, other: &Obj) -> (usize, usize) {
        fn all(o: &Obj, out: &mut Vec<*const Chunk>) {
            for c in &o.chunks {
                out.push(Arc::as_ptr(c));
                for e in &c.entries {
                    if let Slot::Obj(child) = &e.slot {
                        all(child, out);
                    }
                }
            }
        }
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        all(self, &mut mine);
        all(other, &mut theirs);
        let theirs: std::collections::HashSet<_> = theirs.into_iter().collect();
        (
            mine.iter().filter(|c| theirs.contains(c)).count(),
            mine.len(),
        )
    }

    /// The chunk at `ci` for a change: copied first when another clone of the object holds it
    /// too (copy on write; the copy's objects below share their chunks in turn).
    fn chunk_mut(&mut self, ci: usize) -> &mut Chunk {
        Arc::make_mut(&mut self.chunks[ci])
    }

    fn locate(&self, key: &str) -> Pos {
        if self.chunks.is_empty() {
            return Err((0, 0));
        }
        let n = self.chunks.len();
        step(usize::BITS as usize - n.leading_zeros() as usize);
        let ci = self
            .chunks
            .partition_point(|c| compare_keys(c.last_key(), key) == Ordering::Less);
        if ci == n {
            return Err((n - 1, self.chunks[n - 1].len()));
        }
        let c = &self.chunks[ci];
        step(usize::BITS as usize - c.len().leading_zeros() as usize);
        match c
            .entries
            .binary_search_by(|e| compare_keys(c.str(e.key), key))
        {
            Ok(i) => Ok((ci, i)),
            Err(i) => Err((ci, i)),
        }
    }

    /// The child at `key`.
    pub fn get(&self, key: &str) -> Option<NodeRef<'_>> {
        match self.locate(key) {
            Ok((ci, i)) => Some(self.chunks[ci].view(i)),
            Err(_) => None,
        }
    }

    /// Children in key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, NodeRef<'_>)> + '_ {
        self.chunks
            .iter()
            .flat_map(|c| (0..c.len()).map(move |i| (c.key(i), c.view(i))))
    }

    /// Replace, insert (`Some`) or remove (`None`) the child `key`.
    pub fn put(&mut self, key: &str, node: Option<Node>) {
        match (self.locate(key), node) {
            (Ok((ci, i)), Some(n)) => self.chunk_mut(ci).replace(i, n),
            (Ok((ci, i)), None) => {
                let c = self.chunk_mut(ci);
                c.remove(i);
                if c.entries.is_empty() {
                    self.chunks.remove(ci);
                }
            }
            (Err(_), None) => {}
            (Err((ci, i)), Some(n)) => {
                if self.chunks.is_empty() {
                    self.chunks.push(Arc::default());
                }
                let c = self.chunk_mut(ci);
                c.insert(i, key, n);
                if c.len() > CHUNK_MAX {
                    let half = c.len() / 2;
                    let tail = c.split_off(half);
                    step(self.chunks.len() - ci);
                    self.chunks.insert(ci + 1, Arc::new(tail));
                }
            }
        }
    }

    /// Turn a packed object child into an `Obj` so it can be changed in place.
    fn unpack(&mut self, ci: usize, i: usize) {
        let c = self.chunk_mut(ci);
        if let Slot::Json(s) = c.entries[i].slot {
            let text = c.str(s);
            if json::has_children(text) {
                let parsed = super::parse::parse(text.as_bytes(), 0)
                    .expect("packed JSON parses back")
                    .node;
                if let Some(Node::Obj(o)) = parsed {
                    c.entries[i].slot = Slot::Obj(o);
                    c.dead += s.len as usize;
                    c.touched = true;
                }
            }
        }
    }

    /// Mutable access to the object child `key`, turning a primitive there (or nothing) into an
    /// empty object first.
    pub(super) fn child_obj(&mut self, key: &str) -> &mut Obj {
        let (ci, i) = match self.locate(key) {
            Ok((ci, i)) => {
                self.unpack(ci, i);
                if !matches!(self.chunks[ci].entries[i].slot, Slot::Obj(_)) {
                    let c = self.chunk_mut(ci);
                    let old = std::mem::replace(&mut c.entries[i].slot, Slot::Obj(Box::default()));
                    c.forget(&old);
                }
                (ci, i)
            }
            Err(_) => {
                // Inserted as an empty object, which `put` never packs (it has no members yet).
                self.put(key, Some(Node::Obj(Box::default())));
                self.locate(key).expect("just inserted")
            }
        };
        match &mut self.chunk_mut(ci).entries[i].slot {
            Slot::Obj(o) => o,
            _ => unreachable!("child is an object"),
        }
    }

    /// The object child `key` for a change below it (None: missing or a primitive).
    pub(super) fn child_obj_existing(&mut self, key: &str) -> Option<&mut Obj> {
        let (ci, i) = self.locate(key).ok()?;
        self.unpack(ci, i);
        match &mut self.chunk_mut(ci).entries[i].slot {
            Slot::Obj(o) => Some(o),
            _ => None,
        }
    }

    /// After a change below `key`: remove the child when it became empty, else pack it again
    /// when it is small.
    pub(super) fn settle(&mut self, key: &str) {
        let Ok((ci, i)) = self.locate(key) else {
            return;
        };
        // Only ever after a change below `key`: its chunk is this object's own by now.
        let (empty, lone_value) = match &mut self.chunk_mut(ci).entries[i].slot {
            Slot::Obj(o) => (o.tidy_priority(), o.lone_value()),
            _ => return,
        };
        if empty {
            self.put(key, None);
            return;
        }
        if let Some(v) = lone_value {
            self.chunk_mut(ci).replace(i, v);
            return;
        }
        let c = self.chunk_mut(ci);
        // Changed below: the next `tidy` looks inside.
        c.touched = true;
        if let Some(span) = c.try_pack_at(i) {
            c.entries[i].slot = Slot::Json(span);
        }
    }

    /// After a write: tidy every chunk changed since the last tidy, here and in the objects
    /// below them (`Chunk::tidy`). Only changed chunks are looked into, and only those this
    /// object holds alone: a chunk a clone holds too has not changed since the clone was taken
    /// (a change copies it first), so it waits for a tidy after the clone is gone rather than
    /// being copied for it.
    pub(super) fn tidy(&mut self) {
        for c in self.chunks.iter_mut().filter(|c| c.touched) {
            let Some(c) = Arc::get_mut(c) else { continue };
            for e in &mut c.entries {
                if let Slot::Obj(o) = &mut e.slot {
                    o.tidy();
                }
            }
            c.tidy();
        }
    }

    /// Objects whose keys are all array indexes, more than half of them present up to the
    /// largest: the array length.
    pub(super) fn array_len(&self) -> Option<usize> {
        let first = self.chunks.first()?.key(0);
        array_len_of(
            [first, self.chunks.last()?.last_key()].into_iter(),
            self.len(),
        )
    }

    /// The priority (`.priority`), if the object has one.
    pub fn priority(&self) -> Option<NodeRef<'_>> {
        self.get(".priority")
    }

    /// After a change inside, keep priorities as the service does: a prioritised primitive
    /// (`.priority` + `.value`) that gained children keeps its priority and loses its value;
    /// a priority left alone is nothing. True when nothing is left.
    pub(super) fn tidy_priority(&mut self) -> bool {
        // Only an object of at most 3 children can need it (a priority and a value that just
        // got a child, or a priority alone): nothing to look up for any other.
        if self.chunks.len() > 1 || self.chunks.first().is_some_and(|c| c.len() > 3) {
            return false;
        }
        if self.priority().is_none() {
            return self.is_empty();
        }
        let value = self.get(".value").is_some();
        let metas = 1 + usize::from(value);
        if self.len() > metas && value {
            self.put(".value", None);
        } else if self.len() == 1 {
            self.put(".priority", None);
        }
        self.is_empty()
    }

    /// A `.value` left without its priority: the primitive it stands for.
    pub(super) fn lone_value(&self) -> Option<Node> {
        if self.chunks.len() != 1 || self.chunks[0].len() != 1 {
            return None;
        }
        self.get(".value").map(NodeRef::to_node)
    }

    pub(super) fn heap_bytes_boxed(&self) -> usize {
        let mut n = malloc(std::mem::size_of::<Obj>());
        if self.chunks.spilled() {
            n += malloc(self.chunks.capacity() * std::mem::size_of::<Arc<Chunk>>());
        }
        // Each chunk in an allocation of its own, with the two reference counts (a chunk a
        // clone shares is counted by each holder).
        let each = malloc(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Chunk>());
        n + self
            .chunks
            .iter()
            .map(|c| each + c.heap_bytes())
            .sum::<usize>()
    }

    /// Resolve server values in place (see `super::resolve`), packing children that become
    /// plain data.
    pub(super) fn resolve(&mut self, current: Option<NodeRef<'_>>, now_ms: i64) {
        for c in self.chunks.iter_mut() {
            let c = Arc::make_mut(c);
            for i in 0..c.entries.len() {
                let cur = current.and_then(|n| n.child(c.key(i)));
                let packed = match &mut c.entries[i].slot {
                    Slot::Sv(sv) => {
                        c.entries[i].slot = Slot::Num(super::sv_value(*sv, cur, now_ms));
                        None
                    }
                    Slot::Obj(child) => {
                        child.resolve(cur, now_ms);
                        Some(())
                    }
                    _ => None,
                };
                if packed.is_some() {
                    if let Some(span) = c.try_pack_at(i) {
                        c.entries[i].slot = Slot::Json(span);
                    }
                }
            }
        }
    }

    /// Build from children pushed in any order (later duplicates win); `None` when there are
    /// none.
    pub(super) fn build(mut first: Chunk) -> Option<Obj> {
        if first.entries.is_empty() {
            return None;
        }
        step(first.entries.len());
        let mut entries = std::mem::take(&mut first.entries);
        {
            let text = &first.text;
            let key = |e: &Entry| &text[e.key.off as usize..(e.key.off + e.key.len) as usize];
            entries.sort_by(|x, y| compare_keys(key(x), key(y)));
            // Keep the last of equal keys (the sort is stable).
            let mut kept: Vec<Entry> = Vec::with_capacity(entries.len());
            for e in entries {
                if let Some(prev) = kept.last_mut() {
                    if key(prev) == key(&e) {
                        first.dead += prev.key.len as usize
                            + span_of(&prev.slot).map_or(0, |s| s.len as usize);
                        *prev = e;
                        continue;
                    }
                }
                kept.push(e);
            }
            entries = kept;
        }
        first.entries = entries;
        let mut rest = Vec::new();
        if first.len() > CHUNK_MAX {
            // Split off the last group of CHUNK_FILL children until one group is left.
            while first.len() > CHUNK_FILL {
                let at = (first.len() - 1) / CHUNK_FILL * CHUNK_FILL;
                rest.push(first.split_off(at));
            }
        }
        first.fit();
        for c in &mut rest {
            c.touched = false;
        }
        let mut chunks = SmallVec::new();
        chunks.push(Arc::new(first));
        chunks.extend(rest.into_iter().rev().map(Arc::new));
        Some(Obj { chunks })
    }
}

impl Chunk {
    /// Pack the object child at `i` into the arena when it is small enough.
    fn try_pack_at(&mut self, i: usize) -> Option<Span> {
        let Slot::Obj(o) = &self.entries[i].slot else {
            return None;
        };
        if o.len() > PACK_MAX / 6 {
            return None;
        }
        let mut buf = Vec::with_capacity(128);
        json::write_limited(&mut buf, NodeRef::Obj(o), PACK_MAX).ok()?;
        Some(self.append(std::str::from_utf8(&buf).expect("JSON is UTF-8")))
    }
}

/// The array length of children with these keys (in key order: the first and the last are
/// enough), when they are all array indexes with more than half of them present up to the
/// largest.
pub(super) fn array_len_of<'k>(
    mut keys: impl DoubleEndedIterator<Item = &'k str>,
    len: usize,
) -> Option<usize> {
    // Integer keys sort first and numerically: when the last key is an index all keys are
    // integers, and when the first is an index none is negative.
    let first = keys.next()?;
    let last = keys.next_back().unwrap_or(first);
    array_index(first)?;
    let hi = array_index(last)?;
    (hi < 2 * len).then_some(hi + 1)
}

pub(super) fn array_index(k: &str) -> Option<usize> {
    if k == "0" || (!k.starts_with('0') && !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())) {
        k.parse::<i32>().ok().map(|i| i as usize)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

impl<'a> NodeRef<'a> {
    /// The child `key` (None when missing or this is a primitive).
    pub fn child(self, key: &str) -> Option<NodeRef<'a>> {
        match self {
            NodeRef::Obj(o) => o.get(key),
            NodeRef::Json(t) => json::child(t, key).map(NodeRef::Json),
            _ => None,
        }
    }

    /// The node below `segs` (None when missing).
    pub fn descend(self, segs: &[String]) -> Option<NodeRef<'a>> {
        let mut cur = self;
        for s in segs {
            cur = cur.child(s)?;
        }
        Some(cur)
    }

    /// Children in key order (an array's non-null elements keyed by index); a priority is not
    /// a child.
    pub fn children(self) -> Vec<(Cow<'a, str>, NodeRef<'a>)> {
        let mut kids = self.entries();
        kids.retain(|(k, _)| !json::is_meta(k));
        kids
    }

    /// Children in key order as stored: `.priority` and `.value` included (see `children`).
    pub fn entries(self) -> Vec<(Cow<'a, str>, NodeRef<'a>)> {
        match self {
            NodeRef::Obj(o) => o.iter().map(|(k, v)| (Cow::Borrowed(k), v)).collect(),
            NodeRef::Json(t) => {
                let mut kids: Vec<(Cow<'a, str>, NodeRef<'a>)> = json::children(t)
                    .into_iter()
                    .map(|(k, v)| (k, NodeRef::Json(v)))
                    .collect();
                kids.sort_by(|a, b| compare_keys(&a.0, &b.0));
                kids
            }
            _ => Vec::new(),
        }
    }

    /// An object (a prioritised primitive, `{".priority": p, ".value": v}`, is not one).
    pub fn has_children(self) -> bool {
        match self {
            NodeRef::Obj(o) => o.iter().any(|(k, _)| !json::is_meta(k)),
            // Keys in order: a prioritised primitive's text starts with its priority.
            NodeRef::Json(t) if t.starts_with(PRIORITY_FIRST) => json::child(t, ".value").is_none(),
            NodeRef::Json(t) => json::has_children(t),
            _ => false,
        }
    }

    /// The node's priority (None: it has none).
    pub fn priority(self) -> Option<NodeRef<'a>> {
        match self {
            NodeRef::Obj(o) => o.priority(),
            NodeRef::Json(t) if t.starts_with('{') && json::has_meta(t) => {
                json::child(t, ".priority").map(NodeRef::Json)
            }
            _ => None,
        }
    }

    /// A prioritised primitive (`{".priority": p, ".value": v}`) as its value `v`; anything else
    /// as is.
    pub fn unwrapped(self) -> NodeRef<'a> {
        let value = match self {
            NodeRef::Obj(o) if o.len() == 2 => o.get(".value"),
            NodeRef::Json(t) if t.starts_with(PRIORITY_FIRST) => {
                json::child(t, ".value").map(NodeRef::Json)
            }
            _ => None,
        };
        value.unwrap_or(self)
    }

    /// An owned copy (as stored: priorities kept).
    pub fn to_node(self) -> Node {
        match self {
            NodeRef::Bool(b) => Node::Bool(b),
            NodeRef::Num(n) => Node::Num(n),
            NodeRef::Str(s) => Node::Str(s.into()),
            other => {
                let mut buf = Vec::new();
                json::write(&mut buf, other).expect("writing to memory");
                super::parse::parse(&buf, 0)
                    .expect("stored JSON parses back")
                    .node
                    .expect("a stored value is never null")
            }
        }
    }

    /// In output form (arrays where RTDB shows arrays), as a plain read returns it.
    pub fn to_value(self) -> Value {
        match self {
            NodeRef::Json(t) => json::to_value(t),
            other => {
                let mut buf = Vec::new();
                json::write_plain(&mut buf, other).expect("writing to memory");
                serde_json::from_slice(&buf).unwrap_or(Value::Null)
            }
        }
    }

    /// In output form with priorities (`format=export`).
    pub fn to_export_value(self) -> Value {
        let mut buf = Vec::new();
        json::write(&mut buf, self).expect("writing to memory");
        serde_json::from_slice(&buf).unwrap_or(Value::Null)
    }

    /// In stored form (objects only), as event streams describe writes.
    pub fn to_stored_value(self) -> Value {
        fn stored(v: Value) -> Value {
            match v {
                Value::Array(items) => Value::Object(
                    items
                        .into_iter()
                        .enumerate()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(i, v)| (i.to_string(), stored(v)))
                        .collect(),
                ),
                Value::Object(m) => {
                    Value::Object(m.into_iter().map(|(k, v)| (k, stored(v))).collect())
                }
                other => other,
            }
        }
        stored(self.to_value())
    }

    /// Children selected by a query, in RTDB order (none for a primitive).
    pub fn query(self, q: &Query) -> Vec<(Cow<'a, str>, NodeRef<'a>)> {
        let order = q.order();
        if let (NodeRef::Obj(o), OrderBy::Key) = (self, &order) {
            return key_range(o, q)
                .into_iter()
                .map(|(k, v)| (Cow::Borrowed(k), v))
                .collect();
        }
        let items = self
            .children()
            .into_iter()
            .map(|(k, v)| {
                let sort = sort_value(&order, v);
                (k, sort, v)
            })
            .collect();
        q.select(items)
            .into_iter()
            .map(|(k, _, v)| (k, v))
            .collect()
    }
}

/// How packed text with a priority first starts: a prioritised primitive always does (its keys
/// are `.priority` and `.value`, in that order).
const PRIORITY_FIRST: &str = "{\".priority\":";

/// A `$key` query by binary search and a walk over the range: O(log n + result).
fn key_range<'a>(o: &'a Obj, q: &Query) -> Vec<(&'a str, NodeRef<'a>)> {
    let lo = q
        .equal_to
        .as_ref()
        .or(q.start_at.as_ref())
        .and_then(Value::as_str);
    let hi = q
        .equal_to
        .as_ref()
        .or(q.end_at.as_ref())
        .and_then(Value::as_str);
    let below_hi = |k: &str| hi.is_none_or(|h| compare_keys(k, h) != Ordering::Greater);
    let above_lo = |k: &str| lo.is_none_or(|l| compare_keys(k, l) != Ordering::Less);
    if let Some(n) = q.limit_to_last {
        // Backwards from the first key past `hi`.
        let end = match hi {
            None => (o.chunks.len(), 0),
            Some(h) => match o.locate(h) {
                Ok((ci, i)) => (ci, i + 1),
                Err(p) => p,
            },
        };
        let mut out: Vec<_> = o
            .chunks
            .iter()
            .enumerate()
            .take((end.0 + 1).min(o.chunks.len()))
            .rev()
            .flat_map(move |(ci, c)| {
                let upto = if ci == end.0 { end.1 } else { c.len() };
                (0..upto).rev().map(move |i| (c.key(i), c.view(i)))
            })
            .filter(|(k, _)| !json::is_meta(k))
            .take_while(|(k, _)| above_lo(k))
            .take(n as usize)
            .collect();
        out.reverse();
        return out;
    }
    let start = match lo {
        None => (0, 0),
        Some(l) => match o.locate(l) {
            Ok(p) | Err(p) => p,
        },
    };
    let limit = q.limit_to_first.map(|n| n as usize).unwrap_or(usize::MAX);
    o.chunks
        .iter()
        .enumerate()
        .skip(start.0)
        .flat_map(move |(ci, c)| {
            let from = if ci == start.0 { start.1 } else { 0 };
            (from..c.len()).map(move |i| (c.key(i), c.view(i)))
        })
        .filter(|(k, _)| !json::is_meta(k))
        .take_while(|(k, _)| below_hi(k))
        .take(limit)
        .collect()
}

/// The value a child is ordered by, for value and child orderings (objects all compare equal).
fn sort_value(order: &OrderBy, child: NodeRef<'_>) -> Value {
    let target = match order {
        OrderBy::Key => return Value::Null,
        OrderBy::Priority => return child.priority().map_or(Value::Null, NodeRef::to_value),
        OrderBy::Value => Some(child.unwrapped()),
        OrderBy::Child(path) => path
            .split('/')
            .filter(|s| !s.is_empty())
            .try_fold(child, |n, s| n.child(s)),
    };
    match target {
        None => Value::Null,
        Some(n) if n.has_children() => Value::Object(serde_json::Map::new()),
        Some(v) => v.to_value(),
    }
}

// ---------------------------------------------------------------------------------------------
// Sizes

impl<'a> NodeRef<'a> {
    /// The bytes of this value's compact JSON in stored form (strings without their escapes,
    /// numbers at most 17 digits), counted without writing anything: a packed subtree is its
    /// text's length, an object the sum of its members. `None` as soon as the count passes
    /// `limit`, so the cost of a count is bounded by what it may find, not by the subtree: a
    /// write's estimate never walks more than its budget allows (the write-size limit).
    pub fn size_within(self, limit: u64) -> Option<u64> {
        let n = match self {
            NodeRef::Bool(b) => 4 + u64::from(!b),
            NodeRef::Num(n) => num_len(n),
            NodeRef::Str(s) => s.len() as u64 + 2,
            NodeRef::Json(t) => t.len() as u64,
            NodeRef::Obj(o) => {
                // `{` and `}`, then per member `"key":value` and a comma (one too many: the
                // braces' count is one short of it).
                let mut total = 1u64;
                let mut seen = 0usize;
                for (k, v) in o.iter() {
                    seen += 1;
                    total += k.len() as u64 + 4;
                    if total > limit {
                        step(seen);
                        return None;
                    }
                    total += v.size_within(limit - total)?;
                }
                step(seen);
                total
            }
        };
        (n <= limit).then_some(n)
    }
}

/// The length of a number as JSON, about: exact for integers, 17 for the rest (the digits a
/// double needs at most, which is what most fractions print).
fn num_len(n: f64) -> u64 {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        let i = n as i64;
        let digits = i.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1);
        u64::from(digits) + u64::from(i < 0)
    } else if n.is_finite() {
        17
    } else {
        4
    }
}
