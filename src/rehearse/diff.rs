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
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::iter::Peekable;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::report::{ChangeKind, Changes, ChildChanges, Example};
use crate::emulator::{write_json_plain as write_json, NodeRef};
use crate::rtdb::order::compare_keys;

/// Paths (relative to the compared node, as segments) left out of snapshots and diffs.
pub type Exclusions = Vec<Vec<String>>;

type Kids<'a> = Peekable<Box<dyn Iterator<Item = (Cow<'a, str>, NodeRef<'a>)> + 'a>>;

/// The children of a node in key order (none for a primitive; a priority is not a child).
fn kids(n: NodeRef<'_>) -> Box<dyn Iterator<Item = (Cow<'_, str>, NodeRef<'_>)> + '_> {
    match n {
        NodeRef::Obj(o) => Box::new(
            o.iter()
                .filter(|(k, _)| !k.starts_with('.'))
                .map(|(k, v)| (Cow::Borrowed(k), v)),
        ),
        other => Box::new(other.children().into_iter()),
    }
}

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
pub fn diff(
    before: impl Read,
    after: Option<NodeRef<'_>>,
    input: &DiffInput<'_>,
) -> Result<DiffResult, String> {
    let mut acc = Acc {
        input,
        base: input.base.split('/').filter(|s| !s.is_empty()).collect(),
        path: Vec::new(),
        out: DiffResult::default(),
        child: None,
        before_index: 0,
        after_index: 0,
    };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(
        256 * 1024,
        before,
    ));
    ValueSeed {
        at: Slot::Root(after, input.exclusions.to_vec()),
        acc: &mut acc,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end())
    .map_err(|e| format!("the snapshot could not be read back ({e})"))?;
    Ok(acc.out)
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
    /// Segments below the compared node.
    path: Vec<String>,
    out: DiffResult,
    /// The top-level child being compared: its key, counts and sizes.
    child: Option<(String, Counts, u64, Option<usize>)>,
    before_index: usize,
    after_index: usize,
}

impl Acc<'_> {
    /// A difference at the current path.
    fn record(&mut self, kind: ChangeKind, c: Counts) {
        if !c.any() {
            return;
        }
        if let Some(visit) = self.input.visit {
            visit(&self.path, kind);
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
                .chain(self.path.iter().map(String::as_str))
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
    kids: Kids<'a>,
    excl: Exclusions,
    /// The compared node itself (its children are the top-level ones).
    top: bool,
    prev: Option<String>,
}

impl<'a> Level<'a> {
    fn new(n: NodeRef<'a>, excl: Exclusions, top: bool) -> Level<'a> {
        Level {
            kids: kids(n).peekable(),
            excl,
            top,
            prev: None,
        }
    }

    /// The after child at `key`; after-only children before it are recorded as added.
    fn take(&mut self, key: &str, acc: &mut Acc<'_>) -> Result<Option<NodeRef<'a>>, String> {
        if let Some(p) = &self.prev {
            if compare_keys(p, key) != std::cmp::Ordering::Less {
                return Err(format!("keys out of order ({p:?} before {key:?})"));
            }
        }
        match &mut self.prev {
            Some(p) => {
                p.clear();
                p.push_str(key);
            }
            None => self.prev = Some(key.to_string()),
        }
        while let Some((k, _)) = self.kids.peek() {
            match compare_keys(k, key) {
                std::cmp::Ordering::Less => {
                    let (k, v) = self.kids.next().expect("peeked");
                    self.added(&k, v, acc);
                }
                std::cmp::Ordering::Equal => {
                    let (k, v) = self.kids.next().expect("peeked");
                    return Ok(below(&self.excl, &k)
                        .filter(|rest| present(v, rest))
                        .map(|_| v));
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        Ok(None)
    }

    fn added(&self, key: &str, v: NodeRef<'_>, acc: &mut Acc<'_>) {
        let Some(rest) = below(&self.excl, key).filter(|rest| present(v, rest)) else {
            return;
        };
        if self.top {
            acc.begin_child(key, false, true);
        }
        acc.path.push(key.to_string());
        let n = leaves(v, &rest);
        acc.record(
            ChangeKind::Added,
            Counts {
                added: n,
                ..Counts::default()
            },
        );
        acc.path.pop();
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

/// Where a before value sits: the compared node itself, or a child of a level.
enum Slot<'l, 'a> {
    Root(Option<NodeRef<'a>>, Exclusions),
    In(&'l mut Level<'a>, String),
}

/// Compares one before value with its after counterpart, recording the differences.
struct ValueSeed<'l, 'a, 'c, 'i> {
    at: Slot<'l, 'a>,
    acc: &'c mut Acc<'i>,
}

impl<'a> ValueSeed<'_, 'a, '_, '_> {
    /// The after side, entering the value's path. `None` when absent.
    fn enter<E: de::Error>(&mut self) -> Result<(Option<NodeRef<'a>>, Exclusions), E> {
        match &mut self.at {
            Slot::Root(after, excl) => Ok((*after, std::mem::take(excl))),
            Slot::In(level, key) => {
                let after = level.take(key, self.acc).map_err(E::custom)?;
                let rest = below(&level.excl, key).unwrap_or_default();
                if level.top {
                    self.acc.begin_child(key, true, after.is_some());
                }
                self.acc.path.push(std::mem::take(key));
                Ok((after, rest))
            }
        }
    }

    fn leave(&mut self) {
        if let Slot::In(level, _) = &self.at {
            self.acc.path.pop();
            if level.top {
                self.acc.end_child();
            }
        }
    }

    fn leaf<E: de::Error>(mut self, before: Leaf<'_>) -> Result<(), E> {
        let (after, excl) = self.enter()?;
        match after {
            None => self.acc.record(
                ChangeKind::Removed,
                Counts {
                    removed: 1,
                    ..Counts::default()
                },
            ),
            Some(a) => match leaf_of(a) {
                Some(l) if l == before => {}
                Some(_) => self.acc.record(
                    ChangeKind::Changed,
                    Counts {
                        changed: 1,
                        ..Counts::default()
                    },
                ),
                None => self.acc.record(
                    ChangeKind::Changed,
                    Counts {
                        removed: 1,
                        added: leaves(a, &excl),
                        changed: 0,
                    },
                ),
            },
        }
        self.leave();
        Ok(())
    }

    /// A before object or array: `read` walks its members with the seed each one gets.
    fn container<E: de::Error>(
        mut self,
        read: impl FnOnce(Members<'_, 'a, '_, '_>) -> Result<u64, E>,
    ) -> Result<(), E> {
        let (after, excl) = self.enter()?;
        match after {
            Some(a) if a.has_children() => {
                let top = matches!(self.at, Slot::Root(..));
                let mut level = Level::new(a, excl, top);
                read(Members::Compare(&mut level, &mut *self.acc))?;
                level.finish(self.acc);
            }
            Some(a) => {
                let n = read(Members::Count)?;
                self.acc.record(
                    ChangeKind::Changed,
                    Counts {
                        removed: n,
                        added: leaves(a, &excl),
                        changed: 0,
                    },
                );
            }
            None => {
                let n = read(Members::Count)?;
                self.acc.record(
                    ChangeKind::Removed,
                    Counts {
                        removed: n,
                        ..Counts::default()
                    },
                );
            }
        }
        self.leave();
        Ok(())
    }
}

/// How the members of a before container are read.
enum Members<'l, 'a, 'c, 'i> {
    /// Against an after object.
    Compare(&'l mut Level<'a>, &'c mut Acc<'i>),
    /// Only counted (no after counterpart).
    Count,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_, '_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_, '_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("RTDB data")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        // Nothing here (an array's gap, or an empty compared node).
        if let Slot::Root(Some(a), excl) = &self.at {
            let n = leaves(*a, excl);
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
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(Leaf::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(Leaf::Num(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(Leaf::Num(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(Leaf::Num(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(Leaf::Str(Cow::Borrowed(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.container(|members| match members {
            Members::Compare(level, acc) => {
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value_seed(ValueSeed {
                        at: Slot::In(level, key),
                        acc,
                    })?;
                }
                Ok(0)
            }
            Members::Count => {
                let mut n = 0;
                while map.next_key::<IgnoredAny>()?.is_some() {
                    n += map.next_value_seed(CountSeed)?;
                }
                Ok(n)
            }
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.container(|members| match members {
            Members::Compare(level, acc) => {
                let mut i = 0usize;
                while seq
                    .next_element_seed(ValueSeed {
                        at: Slot::In(level, i.to_string()),
                        acc,
                    })?
                    .is_some()
                {
                    i += 1;
                }
                Ok(0)
            }
            Members::Count => {
                let mut n = 0;
                while let Some(c) = seq.next_element_seed(CountSeed)? {
                    n += c;
                }
                Ok(n)
            }
        })
    }
}

/// Leaf values of a before value.
struct CountSeed;

impl<'de> DeserializeSeed<'de> for CountSeed {
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountSeed {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("RTDB data")
    }
    fn visit_unit<E: de::Error>(self) -> Result<u64, E> {
        Ok(0)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<u64, E> {
        Ok(1)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while map.next_key::<IgnoredAny>()?.is_some() {
            n += map.next_value_seed(CountSeed)?;
        }
        Ok(n)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut n = 0;
        while let Some(c) = seq.next_element_seed(CountSeed)? {
            n += c;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::{Emulator, EmulatorOptions};
    use serde_json::{json, Value};

    /// Diff `before` against `after` (both loaded into an emulator, as the rehearsal sees them).
    async fn changes(before: Value, after: Value, excl: &[&str]) -> DiffResult {
        let excl: Exclusions = excl
            .iter()
            .map(|p| p.split('/').map(String::from).collect())
            .collect();
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
}
