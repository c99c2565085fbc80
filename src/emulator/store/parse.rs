//! Parsing written JSON straight into nodes, validating as RTDB does: keys, depth, the 10 MB
//! string limit, server values (left as placeholders for `resolve`), arrays as objects keyed by
//! index, and pruning of nulls and empty objects. Small child objects are packed as they are
//! built, so a large write or import never exists in memory in an expanded form.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::tree::{Builder, Node, ServerValue};
use super::{resolve, DataError, Store};
use crate::rtdb::path::{validate_key, MAX_DEPTH};

/// The longest string RTDB stores (10 MB of UTF-8).
pub const MAX_STRING_BYTES: usize = 10 * 1024 * 1024;

/// Data parsed from a request body or an import.
#[derive(Debug)]
pub struct Parsed {
    /// `None`: null, or nothing left after pruning (a delete).
    pub node: Option<Node>,
    /// Contains server values (call `resolve` before storing).
    pub has_sv: bool,
}

pub(super) const BAD_JSON: &str = "Invalid data; couldn't parse JSON object, array, or value.";

/// Parse JSON written at a location `depth` levels below the root, validating as RTDB does.
pub fn parse(json: &[u8], depth: usize) -> Result<Parsed, DataError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    parse_with(&mut de, depth)
}

/// `parse` from a reader driven by serde_json (what `stream::parse_reader` replaced; kept to
/// check that it gives the same results and errors).
#[cfg(test)]
pub(super) fn parse_reader_serde(r: impl Read, depth: usize) -> Result<Parsed, DataError> {
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(256 * 1024, r));
    parse_with(&mut de, depth)
}

/// `parse` of a `serde_json::Value` (data built in code).
pub fn parse_value(v: &Value, depth: usize) -> Result<Parsed, DataError> {
    let mut ctx = Ctx::default();
    let node = NodeSeed {
        depth,
        ctx: &mut ctx,
    }
    .deserialize(v)
    .map_err(|e| DataError(ctx.error.take().unwrap_or_else(|| e.to_string())))?;
    Ok(Parsed {
        node,
        has_sv: ctx.has_sv,
    })
}

fn parse_with<'de, R: serde_json::de::Read<'de>>(
    de: &mut serde_json::Deserializer<R>,
    depth: usize,
) -> Result<Parsed, DataError> {
    let mut ctx = Ctx::default();
    let res = NodeSeed {
        depth,
        ctx: &mut ctx,
    }
    .deserialize(&mut *de)
    .and_then(|n| de.end().map(|()| n));
    match res {
        Ok(node) => Ok(Parsed {
            node,
            has_sv: ctx.has_sv,
        }),
        Err(e) => Err(DataError(match ctx.error.take() {
            Some(msg) => msg,
            None if e.is_io() => format!("Could not read the data: {e}"),
            None => BAD_JSON.to_string(),
        })),
    }
}

#[derive(Default)]
pub(super) struct Ctx {
    pub(super) has_sv: bool,
    pub(super) error: Option<String>,
}

impl Ctx {
    fn fail<E: de::Error>(&mut self, msg: String) -> E {
        let e = E::custom(&msg);
        self.error = Some(msg);
        e
    }
}

pub(super) struct NodeSeed<'c> {
    pub(super) depth: usize,
    pub(super) ctx: &'c mut Ctx,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Option<Node>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<Node>, D::Error> {
        d.deserialize_any(self)
    }
}

impl NodeSeed<'_> {
    fn string<E: de::Error>(self, v: &str) -> Result<Option<Node>, E> {
        if v.len() > MAX_STRING_BYTES {
            return Err(self.ctx.fail(format!(
                "Invalid data; a string value is {} bytes long; strings can be at most {MAX_STRING_BYTES} bytes (10 MB) of UTF-8",
                v.len()
            )));
        }
        Ok(Some(Node::Str(v.into())))
    }
}

/// The depth of a child `key` of an object `depth` levels deep, or why it is too deep.
pub(super) fn child_depth(depth: usize, key: &str) -> Result<usize, String> {
    if depth + 1 >= MAX_DEPTH {
        return Err(format!(
            "Invalid data; key \"{key}\" is {} levels deep; data must be fewer than {MAX_DEPTH} levels deep",
            depth + 1
        ));
    }
    Ok(depth + 1)
}

pub(super) fn wrap(b: Builder) -> Option<Node> {
    b.finish().map(|o| Node::Obj(Box::new(o)))
}

const SV_ALONE: &str = "Invalid data; a server value {\".sv\": ...} cannot have other keys";

/// What a member of an object is, known from its key (before its value is read).
pub(super) enum Member {
    /// `.sv`: the object is a server value.
    Sv,
    /// `.priority` or `.value`, read at the object's own depth.
    Meta,
    /// A data key; its value is this many levels deep.
    Data(usize),
}

/// An object being read member by member (the rules of `NodeSeed::visit_map`, shared with the
/// streamed reader in `stream`).
#[derive(Default)]
pub(super) struct MapState {
    pub(super) b: Builder,
    sv: Option<ServerValue>,
    seen_other: bool,
    // Priorities (the `format=export` form): `.priority` is kept as a member; a `.value`
    // makes this a primitive with that priority.
    priority: bool,
    value: Option<Node>,
    members: usize,
}

impl MapState {
    /// A key of an object `depth` levels deep, checked before its value is read.
    pub(super) fn key(&mut self, depth: usize, key: &str) -> Result<Member, String> {
        if key == ".sv" {
            if self.seen_other || self.sv.is_some() {
                return Err(SV_ALONE.into());
            }
            return Ok(Member::Sv);
        }
        if self.sv.is_some() {
            return Err(SV_ALONE.into());
        }
        self.seen_other = true;
        if key == ".priority" || key == ".value" {
            return Ok(Member::Meta);
        }
        if let Err(e) = validate_key(key) {
            return Err(format!("Invalid data; {}", e.message));
        }
        child_depth(depth, key).map(Member::Data)
    }
    /// The value of `.sv`.
    pub(super) fn sv_value(&mut self, v: &Value) -> Result<(), String> {
        self.sv = Some(match v {
            Value::String(s) if s == "timestamp" => ServerValue::Timestamp,
            Value::Object(o)
                if o.len() == 1 && o.get("increment").is_some_and(Value::is_number) =>
            {
                ServerValue::Increment(o["increment"].as_f64().unwrap_or(0.0))
            }
            other => return Err(format!("Invalid data; unsupported server value {other}")),
        });
        Ok(())
    }
    /// The value of `.priority` or `.value` (`sv`: it holds server values).
    pub(super) fn meta_value(
        &mut self,
        key: &str,
        child: Option<Node>,
        sv: bool,
    ) -> Result<(), String> {
        if key == ".priority" {
            if let Some(p) = child {
                check_priority(&p)?;
                self.priority = true;
                self.b.push(key, p, !sv);
            }
        } else if let Some(v) = child {
            if matches!(v, Node::Obj(_)) {
                return Err(
                    "Invalid data; \".value\" must be a string, a number or a boolean (an object cannot have a .value)".into(),
                );
            }
            self.value = Some(v);
        }
        Ok(())
    }
    /// The value of a data key (`sv`: it holds server values).
    pub(super) fn data_value(&mut self, key: &str, child: Option<Node>, sv: bool) {
        if let Some(n) = child {
            self.members += 1;
            self.b.push(key, n, !sv);
        }
    }
    /// The value of a data key given as packed text (`stream::pack` wrote it).
    pub(super) fn data_packed(&mut self, key: &str, json: &str) {
        self.members += 1;
        self.b.push_packed(key, json);
    }
    pub(super) fn finish(self) -> Result<Option<Node>, String> {
        let mut b = self.b;
        if let Some(sv) = self.sv {
            return Ok(Some(Node::Sv(sv)));
        }
        match self.value {
            Some(_) if self.members > 0 => {
                Err("Invalid data; \".value\" cannot have siblings other than \".priority\"".into())
            }
            Some(v) if self.priority => {
                b.push(".value", v, true);
                Ok(wrap(b))
            }
            Some(v) => Ok(Some(v)),
            // A priority on nothing is nothing.
            None if self.members == 0 => Ok(None),
            None => Ok(wrap(b)),
        }
    }
}

/// An array being read element by element (stored as an object keyed by index).
#[derive(Default)]
pub(super) struct SeqState {
    pub(super) b: Builder,
    i: usize,
}

impl SeqState {
    /// The next element of an array `depth` levels deep (`sv`: it holds server values).
    pub(super) fn element(
        &mut self,
        depth: usize,
        child: Option<Node>,
        sv: bool,
    ) -> Result<(), String> {
        if let Some(n) = child {
            let key = self.i.to_string();
            child_depth(depth, &key)?;
            self.b.push(&key, n, !sv);
        }
        self.i += 1;
        Ok(())
    }
    /// The next element given as packed text (`stream::pack` wrote it).
    pub(super) fn element_packed(&mut self, depth: usize, json: &str) -> Result<(), String> {
        let key = self.i.to_string();
        child_depth(depth, &key)?;
        self.b.push_packed(&key, json);
        self.i += 1;
        Ok(())
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = Option<Node>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON data")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<Node>, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<Node>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Option<Node>, E> {
        Ok(Some(Node::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Node>, E> {
        Ok(Some(Node::Num(v as f64)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<Node>, E> {
        Ok(Some(Node::Num(v as f64)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<Node>, E> {
        Ok(Some(Node::Num(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Node>, E> {
        self.string(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Option<Node>, E> {
        self.string(&v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Node>, A::Error> {
        let mut st = SeqState::default();
        loop {
            let before = std::mem::take(&mut self.ctx.has_sv);
            let Some(child) = seq.next_element_seed(NodeSeed {
                depth: self.depth + 1,
                ctx: &mut *self.ctx,
            })?
            else {
                self.ctx.has_sv = before;
                break;
            };
            let sv = self.ctx.has_sv;
            self.ctx.has_sv |= before;
            st.element(self.depth, child, sv)
                .map_err(|msg| self.ctx.fail::<A::Error>(msg))?;
        }
        Ok(wrap(st.b))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Node>, A::Error> {
        let mut m = MapState::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match m
                .key(self.depth, &key)
                .map_err(|msg| self.ctx.fail::<A::Error>(msg))?
            {
                Member::Sv => {
                    let v: Value = map.next_value()?;
                    m.sv_value(&v)
                        .map_err(|msg| self.ctx.fail::<A::Error>(msg))?;
                    self.ctx.has_sv = true;
                }
                Member::Meta => {
                    let before = std::mem::take(&mut self.ctx.has_sv);
                    let child = map.next_value_seed(NodeSeed {
                        depth: self.depth,
                        ctx: &mut *self.ctx,
                    })?;
                    let sv = self.ctx.has_sv;
                    self.ctx.has_sv |= before;
                    m.meta_value(&key, child, sv)
                        .map_err(|msg| self.ctx.fail::<A::Error>(msg))?;
                }
                Member::Data(depth) => {
                    let before = std::mem::take(&mut self.ctx.has_sv);
                    let child = map.next_value_seed(NodeSeed {
                        depth,
                        ctx: &mut *self.ctx,
                    })?;
                    let sv = self.ctx.has_sv;
                    self.ctx.has_sv |= before;
                    m.data_value(&key, child, sv);
                }
            }
        }
        m.finish().map_err(|msg| self.ctx.fail(msg))
    }
}

/// A priority must be a number or a string (`null`: none; a server value resolves to a number).
pub fn check_priority(p: &Node) -> Result<(), String> {
    match p {
        Node::Num(_) | Node::Str(_) | Node::Sv(_) => Ok(()),
        _ => Err("Invalid data; a priority (.priority) must be a number, a string or null".into()),
    }
}

/// One path of a multi-path update, parsed.
#[derive(Debug)]
pub struct UpdateEntry {
    /// The key as written (`"a/b"`), for the echo and event streams.
    pub key: String,
    /// Its segments, relative to the updated location.
    pub rel: Vec<String>,
    pub data: Parsed,
}

/// Parse a PATCH body at a location `depth` levels below the root: a JSON object of paths to
/// values, each value parsed (and validated) at its own depth. Overlap is checked by the caller
/// (`check_disjoint`).
pub fn parse_update(json: &[u8], depth: usize) -> Result<Vec<UpdateEntry>, DataError> {
    struct Top<'c> {
        depth: usize,
        ctx: &'c mut Ctx,
    }
    impl<'de> DeserializeSeed<'de> for Top<'_> {
        type Value = Vec<UpdateEntry>;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Top<'_> {
        type Value = Vec<UpdateEntry>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of paths to values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                let rel = match crate::rtdb::path::data_segments(&key) {
                    Ok(rel) if !rel.is_empty() => rel,
                    Ok(_) => {
                        return Err(self
                            .ctx
                            .fail(format!("Invalid data; update key {key:?} is empty")))
                    }
                    Err(e) => return Err(self.ctx.fail(format!("Invalid data; {}", e.message))),
                };
                if self.depth + rel.len() >= MAX_DEPTH {
                    return Err(self.ctx.fail(format!("Invalid data; update path {key:?} is too deep: paths must be fewer than {MAX_DEPTH} levels deep")));
                }
                let before = std::mem::take(&mut self.ctx.has_sv);
                let node = map.next_value_seed(NodeSeed {
                    depth: self.depth + rel.len(),
                    ctx: &mut *self.ctx,
                })?;
                let has_sv = self.ctx.has_sv;
                self.ctx.has_sv = before || has_sv;
                if let (Some(n), Some(".priority")) = (&node, rel.last().map(String::as_str)) {
                    check_priority(n).map_err(|msg| self.ctx.fail::<A::Error>(msg))?;
                }
                out.push(UpdateEntry {
                    key,
                    rel,
                    data: Parsed { node, has_sv },
                });
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Err(self.ctx.fail(NOT_AN_UPDATE.into()))
        }
    }
    let mut ctx = Ctx::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    let res = Top {
        depth,
        ctx: &mut ctx,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    res.map_err(|_| DataError(ctx.error.take().unwrap_or_else(|| BAD_JSON.to_string())))
}

const NOT_AN_UPDATE: &str =
    "Invalid data; an update (PATCH) must be a JSON object of paths to values";

/// Parse an import `{ "<namespace>": <tree>, ... }` from a reader straight into a store.
pub fn import_reader(r: impl Read, now_ms: i64) -> Result<Store, DataError> {
    struct Top<'s> {
        store: &'s mut Store,
        ctx: &'s mut Ctx,
        now_ms: i64,
    }
    impl<'de> DeserializeSeed<'de> for Top<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Top<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object of namespaces: {\"<namespace>\": <data>}")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(ns) = map.next_key::<String>()? {
                if !crate::rtdb::database_url::valid_namespace(&ns) {
                    return Err(self.ctx.fail(format!(
                        "namespace {ns:?} is not a valid name: use letters, digits, '-' and '_'"
                    )));
                }
                let mut node = map
                    .next_value_seed(NodeSeed {
                        depth: 0,
                        ctx: &mut *self.ctx,
                    })
                    .map_err(|e| {
                        let msg = self.ctx.error.take().unwrap_or_else(|| e.to_string());
                        self.ctx
                            .fail::<A::Error>(format!("namespace {ns:?}: {msg}"))
                    })?;
                if let Some(n) = &mut node {
                    resolve(n, None, self.now_ms);
                }
                self.store.set(&ns, &[], node);
            }
            Ok(())
        }
    }
    let mut store = Store::new();
    let mut ctx = Ctx::default();
    let mut de =
        serde_json::Deserializer::from_reader(std::io::BufReader::with_capacity(256 * 1024, r));
    let res = Top {
        store: &mut store,
        ctx: &mut ctx,
        now_ms,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match res {
        Ok(()) => Ok(store),
        Err(e) => Err(DataError(ctx.error.take().unwrap_or_else(|| {
            if e.is_io() {
                format!("could not read it ({e})")
            } else {
                format!("it is not valid JSON ({e})")
            }
        }))),
    }
}
