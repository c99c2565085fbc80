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

const BAD_JSON: &str = "Invalid data; couldn't parse JSON object, array, or value.";

/// Parse JSON written at a location `depth` levels below the root, validating as RTDB does.
pub fn parse(json: &[u8], depth: usize) -> Result<Parsed, DataError> {
    let mut de = serde_json::Deserializer::from_slice(json);
    parse_with(&mut de, depth)
}

/// `parse` from a reader (imports of any size).
pub fn parse_reader(r: impl Read, depth: usize) -> Result<Parsed, DataError> {
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
struct Ctx {
    has_sv: bool,
    error: Option<String>,
}

impl Ctx {
    fn fail<E: de::Error>(&mut self, msg: String) -> E {
        let e = E::custom(&msg);
        self.error = Some(msg);
        e
    }
}

struct NodeSeed<'c> {
    depth: usize,
    ctx: &'c mut Ctx,
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
    fn child_depth<E: de::Error>(&mut self, key: &str) -> Result<usize, E> {
        if self.depth + 1 >= MAX_DEPTH {
            return Err(self.ctx.fail(format!(
                "Invalid data; key \"{key}\" is {} levels deep; data must be fewer than {MAX_DEPTH} levels deep",
                self.depth + 1
            )));
        }
        Ok(self.depth + 1)
    }
}

fn wrap(b: Builder) -> Option<Node> {
    b.finish().map(|o| Node::Obj(Box::new(o)))
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
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Option<Node>, A::Error> {
        let mut b = Builder::default();
        let mut i = 0usize;
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
            if let Some(n) = child {
                let key = i.to_string();
                self.child_depth::<A::Error>(&key)?;
                b.push(&key, n, !sv);
            }
            i += 1;
        }
        Ok(wrap(b))
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Option<Node>, A::Error> {
        let mut b = Builder::default();
        let mut sv: Option<ServerValue> = None;
        let mut seen_other = false;
        // Priorities (the `format=export` form): `.priority` is kept as a member; a `.value`
        // makes this a primitive with that priority.
        let mut priority = false;
        let mut value: Option<Node> = None;
        let mut members = 0usize;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == ".sv" {
                if seen_other || sv.is_some() {
                    return Err(self.ctx.fail(
                        "Invalid data; a server value {\".sv\": ...} cannot have other keys".into(),
                    ));
                }
                let v: Value = map.next_value()?;
                sv = Some(match &v {
                    Value::String(s) if s == "timestamp" => ServerValue::Timestamp,
                    Value::Object(o)
                        if o.len() == 1 && o.get("increment").is_some_and(Value::is_number) =>
                    {
                        ServerValue::Increment(o["increment"].as_f64().unwrap_or(0.0))
                    }
                    other => {
                        return Err(self
                            .ctx
                            .fail(format!("Invalid data; unsupported server value {other}")))
                    }
                });
                self.ctx.has_sv = true;
                continue;
            }
            if sv.is_some() {
                return Err(self.ctx.fail(
                    "Invalid data; a server value {\".sv\": ...} cannot have other keys".into(),
                ));
            }
            seen_other = true;
            if key == ".priority" || key == ".value" {
                let before = std::mem::take(&mut self.ctx.has_sv);
                let child = map.next_value_seed(NodeSeed {
                    depth: self.depth,
                    ctx: &mut *self.ctx,
                })?;
                let sv = self.ctx.has_sv;
                self.ctx.has_sv |= before;
                if key == ".priority" {
                    if let Some(p) = child {
                        check_priority(&p).map_err(|msg| self.ctx.fail(msg))?;
                        priority = true;
                        b.push(&key, p, !sv);
                    }
                } else if let Some(v) = child {
                    if matches!(v, Node::Obj(_)) {
                        return Err(self.ctx.fail(
                            "Invalid data; \".value\" must be a string, a number or a boolean (an object cannot have a .value)".into(),
                        ));
                    }
                    value = Some(v);
                }
                continue;
            }
            if let Err(e) = validate_key(&key) {
                return Err(self.ctx.fail(format!("Invalid data; {}", e.message)));
            }
            let depth = self.child_depth(&key)?;
            let before = std::mem::take(&mut self.ctx.has_sv);
            let child = map.next_value_seed(NodeSeed {
                depth,
                ctx: &mut *self.ctx,
            })?;
            let sv = self.ctx.has_sv;
            self.ctx.has_sv |= before;
            if let Some(n) = child {
                members += 1;
                b.push(&key, n, !sv);
            }
        }
        if let Some(sv) = sv {
            return Ok(Some(Node::Sv(sv)));
        }
        match value {
            Some(_) if members > 0 => Err(self.ctx.fail(
                "Invalid data; \".value\" cannot have siblings other than \".priority\"".into(),
            )),
            Some(v) if priority => {
                b.push(".value", v, true);
                Ok(wrap(b))
            }
            Some(v) => Ok(Some(v)),
            // A priority on nothing is nothing.
            None if members == 0 => Ok(None),
            None => Ok(wrap(b)),
        }
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
