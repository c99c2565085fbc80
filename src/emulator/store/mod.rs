//! The data trees, one per namespace, and what happens to written data before it is stored.
//!
//! - `tree`: the compact representation (chunked objects in RTDB key order, small subtrees
//!   packed as JSON text), lookups, `$key` ranges and queries.
//! - `json`: writing stored values as JSON (with a byte limit) and walking packed text.
//! - `parse`: written JSON parsed and validated straight into nodes (keys, depth, 10 MB
//!   strings, server values as placeholders, arrays as objects, pruning).
//!
//! Numbers are stored as doubles (as RTDB stores them) and written back as integers when they
//! are integral and exact. `null` and empty objects never exist: writing them deletes, and a
//! parent left empty disappears. Reads show objects whose keys are all array indexes, with more
//! than half of the indexes up to the largest present, as arrays (missing entries `null`).

mod json;
mod parse;
mod stream;
mod tree;

use std::cell::Cell;
use std::collections::BTreeMap;

use serde_json::Value;

/// Walking compact JSON text (packed records, snapshots) without parsing it.
pub(crate) use json::{skip as skip_json, skip_str as skip_json_str, unquote as unquote_json};
pub use json::{write as write_json, write_plain as write_json_plain, Form, TooBig};
pub use parse::{check_priority, import_reader, parse, parse_update, parse_value};
pub use stream::{import_reader_fast, parse_reader};
pub use tree::{Node, NodeRef, Obj, ServerValue};

use crate::rtdb::order::Query;
use tree::array_index;

/// Why written data was refused (becomes a 400).
#[derive(Debug, Clone, PartialEq)]
pub struct DataError(pub String);

thread_local! {
    /// Work done by store calls on this thread (binary-search steps plus entries moved): a
    /// stable measure of an operation's cost, used to check that updates stay linear.
    static STEPS: Cell<u64> = const { Cell::new(0) };
}

fn step(n: usize) {
    STEPS.with(|s| s.set(s.get() + n as u64));
}

/// Run `f` and return its result with the store work it did.
pub fn measured<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = STEPS.with(Cell::get);
    let r = f();
    (r, STEPS.with(Cell::get) - before)
}

/// The last path segment that addresses a node's priority.
pub const PRIORITY: &str = ".priority";

#[derive(Debug, Default)]
pub struct Store {
    dbs: BTreeMap<String, Node>,
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value at `segs` in `ns` (None when missing).
    pub fn node(&self, ns: &str, segs: &[String]) -> Option<NodeRef<'_>> {
        self.dbs.get(ns)?.view().descend(segs)
    }

    /// An owned copy of the value at `segs` (None when missing), to read after the lock on the
    /// store is released while writers go on: an object shares its chunks with the store
    /// (taken in O(chunks at its top level); a later write copies the chunks it changes, so
    /// the snapshot keeps showing the value as it was), a value inside packed JSON or a
    /// primitive is copied (at most `PACK_MAX` bytes, or one string).
    pub fn snapshot(&self, ns: &str, segs: &[String]) -> Option<Snapshot> {
        let owned = match self.node(ns, segs)? {
            NodeRef::Bool(b) => Owned::Bool(b),
            NodeRef::Num(n) => Owned::Num(n),
            NodeRef::Str(s) => Owned::Str(s.into()),
            NodeRef::Json(t) => Owned::Json(t.into()),
            NodeRef::Obj(o) => Owned::Obj(o.clone()),
        };
        Some(Snapshot(owned))
    }

    /// The value at `segs` in output form (null when missing).
    pub fn get(&self, ns: &str, segs: &[String]) -> Value {
        self.node(ns, segs)
            .map(NodeRef::to_value)
            .unwrap_or(Value::Null)
    }

    /// Replace the value at `segs` with resolved data (`None` deletes and prunes). A last
    /// segment `.priority` sets (or removes) the priority of the node above it: nothing happens
    /// to a missing node, and a primitive keeps its priority as `{".priority": p, ".value": v}`.
    pub fn set(&mut self, ns: &str, segs: &[String], node: Option<Node>) {
        self.write(ns, segs, node);
        self.tidy(ns);
    }

    /// `set` without the tidy: a write of many paths tidies once, at its end.
    fn write(&mut self, ns: &str, segs: &[String], node: Option<Node>) {
        if let Some((last, parents)) = segs.split_last().filter(|(l, _)| *l == PRIORITY) {
            match self.node(ns, parents) {
                None => return,
                Some(n) if !n.has_children() && n.priority().is_none() => {
                    let Some(p) = node else { return };
                    let mut b = tree::Builder::default();
                    b.push(last, p, true);
                    b.push(".value", n.to_node(), true);
                    let wrapped = b.finish().map(|o| Node::Obj(Box::new(o)));
                    return self.write(ns, parents, wrapped);
                }
                Some(_) => {}
            }
        }
        let Some((last, parents)) = segs.split_last() else {
            match node {
                Some(n) => {
                    self.dbs.insert(ns.to_string(), n);
                }
                None => {
                    self.dbs.remove(ns);
                }
            }
            return;
        };
        if !matches!(self.dbs.get(ns), Some(Node::Obj(_))) {
            if node.is_none() {
                return;
            }
            self.dbs.insert(ns.to_string(), Node::Obj(Box::default()));
        }
        let Some(Node::Obj(root)) = self.dbs.get_mut(ns) else {
            unreachable!("the namespace root is an object")
        };
        set_in(root, parents, last, node);
        if root.tidy_priority() {
            self.dbs.remove(ns);
        } else if let Some(v) = root.lone_value() {
            self.dbs.insert(ns.to_string(), v);
        }
    }

    /// Apply a multi-path update at `base`: each `(relative path, data)` replaces that node
    /// (`None` deletes). The paths must not overlap (see `check_disjoint`).
    /// Priorities (`.../.priority`) are set last, so a node the same update creates gets its.
    pub fn update(&mut self, ns: &str, base: &[String], entries: Vec<(Vec<String>, Option<Node>)>) {
        let (prios, data): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(rel, _)| rel.last().is_some_and(|k| k == PRIORITY));
        for (rel, node) in data.into_iter().chain(prios) {
            let full: Vec<String> = base.iter().chain(rel.iter()).cloned().collect();
            self.write(ns, &full, node);
        }
        self.tidy(ns);
    }

    /// Give back the memory a write left unused in the chunks it changed (`Obj::tidy`), so
    /// rewriting data grows the store by what the data grew, not by copies of what it was.
    fn tidy(&mut self, ns: &str) {
        if let Some(Node::Obj(o)) = self.dbs.get_mut(ns) {
            o.tidy();
        }
    }

    pub fn clear(&mut self) {
        self.dbs.clear();
    }

    pub fn namespaces(&self) -> Vec<String> {
        self.dbs.keys().cloned().collect()
    }

    /// `{ "<ns>": <tree> }` in output form, priorities included (`format=export`).
    pub fn export(&self) -> Value {
        Value::Object(
            self.dbs
                .iter()
                .map(|(k, v)| (k.clone(), v.view().to_export_value()))
                .collect(),
        )
    }

    /// `export()` written as JSON (compact), without building it in memory.
    pub fn write_export(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        w.write_all(b"{")?;
        for (i, (k, v)) in self.dbs.iter().enumerate() {
            if i > 0 {
                w.write_all(b",\n")?;
            }
            json::write_str(w, k)?;
            w.write_all(b":")?;
            json::write(w, v.view())?;
        }
        w.write_all(b"}\n")
    }

    /// Bytes of heap the stored data takes (allocation sizes as glibc rounds them).
    pub fn heap_bytes(&self) -> usize {
        self.dbs
            .iter()
            .map(|(k, v)| {
                tree::malloc(k.len())
                    + match v {
                        Node::Str(s) => tree::malloc(s.len()),
                        Node::Obj(o) => o.heap_bytes_boxed(),
                        _ => 0,
                    }
            })
            .sum()
    }
}

/// A stored value as it was when `Store::snapshot` took it.
#[derive(Debug)]
pub struct Snapshot(Owned);

#[derive(Debug)]
enum Owned {
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    Json(Box<str>),
    Obj(Obj),
}

impl Snapshot {
    pub fn view(&self) -> NodeRef<'_> {
        match &self.0 {
            Owned::Bool(b) => NodeRef::Bool(*b),
            Owned::Num(n) => NodeRef::Num(*n),
            Owned::Str(s) => NodeRef::Str(s),
            Owned::Json(t) => NodeRef::Json(t),
            Owned::Obj(o) => NodeRef::Obj(o),
        }
    }
}

/// Set `last` under `parents` of `obj`, pruning what a delete empties and packing what a change
/// left small.
fn set_in(obj: &mut Obj, parents: &[String], last: &str, node: Option<Node>) {
    let Some((first, rest)) = parents.split_first() else {
        obj.put(last, node);
        return;
    };
    if node.is_none() {
        let Some(child) = obj.child_obj_existing(first) else {
            return; // nothing there, or a primitive: nothing to delete below it
        };
        set_in(child, rest, last, None);
    } else {
        set_in(obj.child_obj(first), rest, last, node);
    }
    obj.settle(first);
}

/// What a GET asks for.
#[derive(Debug, Clone, Copy)]
pub enum Read<'q> {
    Value,
    /// Each child of an object as `true`; a primitive as is.
    Shallow,
    /// The children a query selects, as an object in RTDB order (a primitive as is).
    Query(&'q Query),
}

/// The JSON a read of `node` returns (`null` when missing) in `form` (plain, or with priorities
/// for `format=export`), at most `limit` bytes.
pub fn render(
    node: Option<NodeRef<'_>>,
    read: Read<'_>,
    form: Form,
    limit: usize,
) -> Result<Vec<u8>, TooBig> {
    let mut out = Vec::new();
    let mut w = json::Limited {
        inner: &mut out,
        written: 0,
        limit,
    };
    let res = match (node, read) {
        (None, _) => std::io::Write::write_all(&mut w, b"null"),
        (Some(n), Read::Shallow) if n.has_children() => json::write_members(
            &mut w,
            n.children()
                .iter()
                .map(|(k, _)| (k.as_ref(), NodeRef::Bool(true))),
            form,
        ),
        (Some(n), Read::Query(q)) if n.has_children() && !q.is_empty() => {
            let selected = n.query(q);
            json::write_members(&mut w, selected.iter().map(|(k, v)| (k.as_ref(), *v)), form)
        }
        (Some(n), _) => render_value(&mut w, n, form),
    };
    match res {
        Ok(()) => Ok(out),
        Err(_) => Err(TooBig),
    }
}

/// What `render` writes for a plain read (`Read::Value`) of a stored value, written to `out`.
pub fn render_value(
    out: &mut impl std::io::Write,
    node: NodeRef<'_>,
    form: Form,
) -> std::io::Result<()> {
    match form {
        Form::Export => json::write(out, node),
        Form::Plain => json::write_plain(out, node),
    }
}

/// The length of what `render` returns for a plain read of `node`, counted without keeping it
/// (`TooBig` past `limit`).
pub fn rendered_len(node: NodeRef<'_>, form: Form, limit: usize) -> Result<usize, TooBig> {
    let mut w = json::Limited {
        inner: &mut std::io::sink(),
        written: 0,
        limit,
    };
    match render_value(&mut w, node, form) {
        Ok(()) => Ok(w.written),
        Err(_) => Err(TooBig),
    }
}

/// Multi-path update keys must not overlap (`a` and `a/b`): sorted, an ancestor comes right
/// before its first descendant, so checking neighbours finds every overlap. Returns the pair.
pub fn check_disjoint(paths: &[Vec<String>]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..paths.len()).collect();
    step(paths.len() * (usize::BITS as usize - paths.len().leading_zeros() as usize));
    order.sort_by(|&a, &b| paths[a].cmp(&paths[b]));
    order
        .windows(2)
        .find(|w| paths[w[1]].starts_with(&paths[w[0]]))
        .map(|w| (w[0], w[1]))
}

/// Resolve the server values in freshly parsed `node` against `current` (the value stored at
/// the same place before the write) and the server clock.
pub fn resolve(node: &mut Node, current: Option<NodeRef<'_>>, now_ms: i64) {
    match node {
        Node::Sv(sv) => *node = Node::Num(sv_value(*sv, current, now_ms)),
        Node::Obj(o) => o.resolve(current, now_ms),
        _ => {}
    }
}

fn sv_value(sv: ServerValue, current: Option<NodeRef<'_>>, now_ms: i64) -> f64 {
    let current = current.map(NodeRef::unwrapped);
    match sv {
        ServerValue::Timestamp => now_ms as f64,
        ServerValue::Increment(d) => match current {
            Some(NodeRef::Num(n)) => n + d,
            Some(NodeRef::Json(t)) => match serde_json::from_str::<Value>(t) {
                Ok(Value::Number(n)) => n.as_f64().unwrap_or(0.0) + d,
                _ => d,
            },
            _ => d,
        },
    }
}

/// Objects that look like arrays become arrays, for data kept as `serde_json::Value` in stored
/// form (event streams).
pub fn to_output(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let indexes: Option<Vec<usize>> = map.keys().map(|k| array_index(k)).collect();
            if let Some(indexes) = indexes.filter(|ix| !ix.is_empty()) {
                let max = *indexes.iter().max().expect("non-empty");
                if max < 2 * indexes.len() {
                    let mut arr = vec![Value::Null; max + 1];
                    for (k, v) in map {
                        arr[array_index(k).expect("index")] = to_output(v);
                    }
                    return Value::Array(arr);
                }
            }
            Value::Object(map.iter().map(|(k, v)| (k.clone(), to_output(v))).collect())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::rtdb::order::OrderBy;
    use parse::MAX_STRING_BYTES;
    const BAD_JSON: &str = "Invalid data; couldn't parse JSON object, array, or value.";

    use crate::emulator::test_segs as segs;

    fn node(v: Value) -> Option<Node> {
        let mut p = parse_value(&v, 0).unwrap();
        if let Some(n) = &mut p.node {
            resolve(n, None, 0);
        }
        p.node
    }

    #[test]
    fn set_get_and_prune() {
        let mut s = Store::new();
        s.set("ns", &segs("a/b/c"), node(json!(1)));
        s.set("ns", &segs("a/x"), node(json!("y")));
        assert_eq!(s.get("ns", &segs("a")), json!({"b": {"c": 1}, "x": "y"}));
        s.set("ns", &segs("a/b/c"), None);
        assert_eq!(s.get("ns", &segs("")), json!({"a": {"x": "y"}}));
        s.set("ns", &segs("a/x"), None);
        assert_eq!(s.get("ns", &segs("")), Value::Null);
        assert_eq!(s.export(), json!({}));
        // Writing below a primitive replaces it with an object.
        s.set("ns", &segs("p"), node(json!(5)));
        s.set("ns", &segs("p/q"), node(json!(6)));
        assert_eq!(s.get("ns", &segs("p")), json!({"q": 6}));
        // Deleting below a primitive is a no-op.
        s.set("ns", &segs("p/q/r"), None);
        assert_eq!(s.get("ns", &segs("p/q")), json!(6));
        assert_eq!(s.get("other", &segs("p")), Value::Null);
        // A primitive at the root, then an object over it.
        s.set("r", &[], node(json!("top")));
        assert_eq!(s.get("r", &[]), json!("top"));
        s.set("r", &segs("k"), node(json!(true)));
        assert_eq!(s.get("r", &[]), json!({"k": true}));
    }

    #[test]
    fn parse_prunes_normalises_and_validates() {
        let d = node(
            json!({"a": {}, "b": null, "c": {"d": {}}, "e": 1.0, "f": 1.5, "g": [1, null, 3]}),
        );
        let mut s = Store::new();
        s.set("n", &[], d);
        assert_eq!(
            s.get("n", &[]),
            json!({"e": 1, "f": 1.5, "g": [1, null, 3]})
        );
        assert!(parse_value(&json!({}), 3,).unwrap().node.is_none());
        for bad in [
            json!({"a.b": 1}),
            json!({"ok": {"$bad": 1}}),
            json!({"x": 1, ".priority": {"a": 1}}),
            json!({".value": 1, "x": 1}),
        ] {
            assert!(parse_value(&bad, 0).is_err(), "{bad}");
        }
        assert!(parse_value(&json!({"x": 1}), 30).is_ok());
        let e = parse_value(&json!({"x": 1}), 31).unwrap_err();
        assert!(e.0.contains("levels deep"), "{e:?}");
        assert_eq!(parse(b"{nope", 0).unwrap_err().0, BAD_JSON);
        assert_eq!(parse(b"1 2", 0).unwrap_err().0, BAD_JSON);
        // Duplicate keys: the last one wins.
        let p = parse(br#"{"a":1,"b":2,"a":3}"#, 0).unwrap();
        assert_eq!(p.node.unwrap().view().to_value(), json!({"a": 3, "b": 2}));
    }

    #[test]
    fn strings_up_to_10_mb() {
        let ok = format!("\"{}\"", "x".repeat(MAX_STRING_BYTES));
        assert!(parse(ok.as_bytes(), 0).is_ok());
        let big = format!("{{\"k\":\"{}\"}}", "é".repeat(MAX_STRING_BYTES / 2 + 1));
        let e = parse(big.as_bytes(), 0).unwrap_err();
        assert!(e.0.contains("10 MB"), "{e:?}");
    }

    #[test]
    fn server_values() {
        let mut p = parse_value(&json!({"t": {".sv": "timestamp"}}), 0).unwrap();
        assert!(p.has_sv);
        resolve(p.node.as_mut().unwrap(), None, 42);
        assert_eq!(p.node.unwrap().view().to_value(), json!({"t": 42}));
        let mut s = Store::new();
        s.set("n", &[], node(json!({"n": 5, "s": "x", "f": 1.5})));
        let inc = |k: &str, by: Value| {
            let mut p = parse_value(&json!({k: {".sv": {"increment": by}}}), 0).unwrap();
            resolve(p.node.as_mut().unwrap(), s.node("n", &[]), 0);
            p.node.unwrap().view().to_value()[k].clone()
        };
        assert_eq!(inc("n", json!(2)), json!(7));
        assert_eq!(inc("s", json!(2)), json!(2));
        assert_eq!(inc("missing", json!(3)), json!(3));
        assert_eq!(inc("f", json!(1)), json!(2.5));
        assert_eq!(inc("n", json!(0.5)), json!(5.5));
        assert_eq!(inc("n", json!(-5)), json!(0));
        for bad in [
            json!({".sv": "nope"}),
            json!({".sv": {"increment": "1"}}),
            json!({".sv": "timestamp", "x": 1}),
            json!({"x": 1, ".sv": "timestamp"}),
        ] {
            assert!(parse_value(&bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn output_arrays() {
        let o = |v: Value| node(v).unwrap().view().to_value();
        assert_eq!(o(json!({"0": "a", "1": "b"})), json!(["a", "b"]));
        assert_eq!(o(json!({"0": "a", "2": "c"})), json!(["a", null, "c"]));
        assert_eq!(o(json!({"0": "a", "5": "c"})), json!({"0": "a", "5": "c"}));
        assert_eq!(o(json!({"01": 1})), json!({"01": 1}));
        assert_eq!(o(json!({"x": {"1": 1}})), json!({"x": [null, 1]}));
        assert_eq!(o(json!({"-1": 1, "0": 2})), json!({"-1": 1, "0": 2}));
        assert_eq!(o(json!({"1": 1, "a": 2})), json!({"1": 1, "a": 2}));
    }

    #[test]
    fn numbers_are_doubles() {
        let o = |t: &str| {
            parse(t.as_bytes(), 0)
                .unwrap()
                .node
                .unwrap()
                .view()
                .to_value()
        };
        assert_eq!(o("1.0"), json!(1));
        assert_eq!(o("-0.0"), json!(0));
        assert_eq!(o("1e3"), json!(1000));
        assert_eq!(o("0.1"), json!(0.1));
        assert_eq!(o("9007199254740993"), json!(9007199254740992.0));
        assert_eq!(o("1e300"), json!(1e300));
    }

    /// Many children spread over chunks: lookups, inserts, deletes and iteration stay in RTDB key
    /// order, and deleting everything prunes the parent.
    #[test]
    fn large_objects_across_chunks() {
        let mut s = Store::new();
        let n = 5000;
        // Insert in a scrambled order, one at a time.
        for i in 0..n {
            let k = (i * 7919) % n;
            s.set("n", &segs(&format!("c/k{k:05}")), node(json!({"i": k})));
        }
        // Integer keys sort first.
        s.set("n", &segs("c/7"), node(json!("seven")));
        let NodeRef::Obj(o) = s.node("n", &segs("c")).unwrap() else {
            panic!()
        };
        assert!(o.chunk_sizes().len() > 5, "{:?}", o.chunk_sizes());
        let keys: Vec<&str> = o.iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), n + 1);
        assert_eq!(keys[0], "7");
        assert!(keys[1..].windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.get("n", &segs("c/k04321/i")), json!(4321));
        for i in 0..n {
            s.set("n", &segs(&format!("c/k{i:05}")), None);
        }
        assert_eq!(s.get("n", &segs("c")), json!({"7": "seven"}));
        s.set("n", &segs("c/7"), None);
        assert_eq!(s.export(), json!({}));
    }

    #[test]
    fn bulk_built_objects_sort_and_split() {
        let children: serde_json::Map<String, Value> = (0..3000)
            .rev()
            .map(|i| (format!("u{i:04}"), json!(format!("v{i}"))))
            .collect();
        let n = node(Value::Object(children.clone())).unwrap();
        let NodeRef::Obj(o) = n.view() else { panic!() };
        assert!(o.chunk_sizes().iter().all(|n| *n <= tree::CHUNK_MAX));
        assert_eq!(o.len(), 3000);
        assert_eq!(n.view().to_value(), Value::Object(children));
        let (first, _) = o.iter().next().unwrap();
        assert_eq!(first, "u0000");
        // In key order already (as exports and backups are): built chunk by chunk.
        let text = serde_json::to_vec(&n.view().to_value()).unwrap();
        let again = parse(&text, 0).unwrap().node.unwrap();
        let NodeRef::Obj(o2) = again.view() else {
            panic!()
        };
        assert!(o2.chunk_sizes().len() > 5, "{:?}", o2.chunk_sizes());
        assert!(o2.chunk_sizes().iter().all(|n| *n <= tree::CHUNK_MAX));
        assert_eq!(again.view().to_value(), n.view().to_value());
    }

    #[test]
    fn queries() {
        let n = node(json!({
            "carol": {"age": 30}, "alice": {"age": 25}, "bob": {"age": 25},
            "dave": {"x": 1}, "10": {"age": "old"}, "2": {"age": true}
        }))
        .unwrap();
        let q = |o: OrderBy, f: fn(&mut Query)| {
            let mut q = Query {
                order_by: Some(o),
                ..Default::default()
            };
            f(&mut q);
            n.view()
                .query(&q)
                .into_iter()
                .map(|(k, _)| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(OrderBy::Key, |_| {}),
            vec!["2", "10", "alice", "bob", "carol", "dave"]
        );
        assert_eq!(
            q(OrderBy::Key, |q| {
                q.start_at = Some(json!("b"));
                q.limit_to_first = Some(2)
            }),
            vec!["bob", "carol"]
        );
        assert_eq!(
            q(OrderBy::Key, |q| {
                q.end_at = Some(json!("bob"));
                q.limit_to_last = Some(2)
            }),
            vec!["alice", "bob"]
        );
        assert_eq!(
            q(OrderBy::Key, |q| q.equal_to = Some(json!("carol"))),
            vec!["carol"]
        );
        assert_eq!(
            q(OrderBy::Key, |q| q.start_at = Some(json!("zz"))),
            Vec::<String>::new()
        );
        assert_eq!(
            q(OrderBy::Child("age".into()), |_| {}),
            vec!["dave", "2", "alice", "bob", "carol", "10"]
        );
        assert_eq!(
            q(OrderBy::Child("age".into()), |q| {
                q.start_at = Some(json!(25));
                q.end_at = Some(json!(26))
            }),
            vec!["alice", "bob"]
        );
        assert_eq!(
            q(OrderBy::Value, |q| q.limit_to_last = Some(1)),
            vec!["dave"]
        );
    }

    #[test]
    fn disjoint_paths() {
        let p = |v: &[&str]| v.iter().map(|s| segs(s)).collect::<Vec<_>>();
        assert_eq!(check_disjoint(&p(&["a/b", "a/c", "b"])), None);
        assert!(check_disjoint(&p(&["a/b/c", "x", "a/b"])).is_some());
        assert!(check_disjoint(&p(&["a", "ab", "a/z"])).is_some());
    }

    #[test]
    fn import_from_a_reader() {
        let text = br#"{"one": {"a": {"b": [1, 2]}, "t": {".sv": "timestamp"}}, "two": 5}"#;
        let s = import_reader(&text[..], 99).unwrap();
        assert_eq!(
            s.export(),
            json!({"one": {"a": {"b": [1, 2]}, "t": 99}, "two": 5})
        );
        let e = import_reader(&br#"{"one": {"a.b": 1}}"#[..], 0).unwrap_err();
        assert!(e.0.contains("one") && e.0.contains("a.b"), "{e:?}");
        assert!(import_reader(&b"[1]"[..], 0).is_err());
        assert!(import_reader(&br#"{"bad ns!": 1}"#[..], 0).is_err());
    }

    /// Memory per stored byte, as allocations cost it: at most 4x the JSON text, for user-like
    /// records and for a wide object of short values.
    #[test]
    fn compact_in_memory() {
        let users: serde_json::Map<String, Value> = (0..20_000)
            .map(|i| {
                (
                    format!("user{i:06}"),
                    json!({"name": format!("User {i}"), "email": format!("u{i}@example.com"), "age": 20 + i % 50, "active": i % 3 == 0, "tags": {"a": true, "b": i}}),
                )
            })
            .collect();
        let text = serde_json::to_vec(&json!({"db": {"users": users}})).unwrap();
        let s = import_reader(&text[..], 0).unwrap();
        let ratio = s.heap_bytes() as f64 / text.len() as f64;
        assert!(ratio <= 4.0, "records: {ratio:.2}x");
        let wide: serde_json::Map<String, Value> =
            (0..50_000).map(|i| (format!("k{i}"), json!(i))).collect();
        let text = serde_json::to_vec(&json!({"db": wide})).unwrap();
        let s = import_reader(&text[..], 0).unwrap();
        let ratio2 = s.heap_bytes() as f64 / text.len() as f64;
        assert!(ratio2 <= 4.0, "wide: {ratio2:.2}x");
        println!("memory per JSON byte: records {ratio:.2}x, wide {ratio2:.2}x");
    }

    /// Rewriting every small record again and again (what a migration does to each user) does
    /// not grow memory: the old packed JSON left behind in the arenas is reclaimed.
    #[test]
    fn rewriting_packed_records_does_not_grow_memory() {
        let mut s = Store::new();
        let users: serde_json::Map<String, Value> = (0..5_000)
            .map(|i| {
                (
                    format!("u{i:05}"),
                    json!({"name": format!("User {i}"), "city": "X"}),
                )
            })
            .collect();
        s.set("n", &[], node(json!({ "users": users })));
        let before = s.heap_bytes();
        for round in 0..6 {
            let entries: Vec<(Vec<String>, Option<Node>)> = (0..5_000)
                .map(|i| (segs(&format!("users/u{i:05}/plan")), node(json!(round))))
                .collect();
            s.update("n", &[], entries);
        }
        assert_eq!(s.get("n", &segs("users/u04999/plan")), json!(5));
        let after = s.heap_bytes();
        let ratio = after as f64 / before as f64;
        println!("{before} -> {after} bytes ({ratio:.2}x) after 6 rewrites");
        assert!(
            ratio < 1.6,
            "{before} -> {after} bytes ({ratio:.2}x) after 6 rewrites"
        );
    }

    /// A subtree's size is its JSON's length, counted in place: packed records by their text,
    /// large objects member by member, and the count stops once past its limit.
    #[test]
    fn sizes_are_the_json_length_and_stop_at_the_limit() {
        let users: serde_json::Map<String, Value> = (0..3_000)
            .map(|i| {
                (
                    format!("u{i:05}"),
                    json!({"name": format!("User {i}"), "age": i % 90, "ok": i % 2 == 0, "x": -1.5}),
                )
            })
            .collect();
        let mut s = Store::new();
        s.set(
            "n",
            &[],
            node(json!({"users": users, "n": -42, "s": "hi", "t": true})),
        );
        for at in ["", "users", "users/u00042", "users/u00042/name", "n", "t"] {
            let n = s.node("n", &segs(at));
            let text = render(n, Read::Value, Form::Plain, usize::MAX).unwrap();
            assert_eq!(
                n.unwrap().size_within(u64::MAX),
                Some(text.len() as u64),
                "{at}"
            );
        }
        let root = s.node("n", &[]).unwrap();
        let whole = root.size_within(u64::MAX).unwrap();
        assert_eq!(root.size_within(whole), Some(whole));
        assert_eq!(root.size_within(whole - 1), None);
        // Stopping early: a small limit over a big object does little work.
        let (over, steps) = measured(|| root.size_within(1_000));
        assert_eq!(over, None);
        assert!(steps < 100, "{steps} steps");
    }

    /// Users shaped as the benchmarks' (about 240 bytes of JSON each), imported as an export
    /// is: `{"db": {"users": {...}}}`, in key order.
    fn imported_users(n: usize) -> Store {
        let users: serde_json::Map<String, Value> = (0..n)
            .map(|i| {
                let city = ["Berlin", "Paris", "Lisbon", "Oslo"][i % 4];
                (
                    format!("u{i:07}"),
                    json!({
                        "name": format!("User {i}"),
                        "email": format!("user{i}@example.com"),
                        "age": 18 + i % 60,
                        "city": city,
                        "createdAt": 1_700_000_000_000u64 + i as u64,
                        "tags": {"beta": i % 3 == 0, "newsletter": i % 2 == 0},
                        "bio": "Likes long walks and short migrations; ".repeat(2),
                    }),
                )
            })
            .collect();
        let text = serde_json::to_vec(&json!({"db": {"users": users}})).unwrap();
        import_reader(&text[..], 0).unwrap()
    }

    fn json_bytes(s: &Store) -> usize {
        let mut out = Vec::new();
        s.write_export(&mut out).unwrap();
        out.len()
    }

    /// A snapshot shares the store's chunks: taking one copies nothing, a write afterwards
    /// copies only the chunks on its path (the one chunk of `users` holding the record, and
    /// above it), the snapshot still reads and renders the old value, and the store grows by
    /// about one chunk, not by the data.
    #[test]
    fn snapshots_share_chunks_and_a_write_copies_only_what_it_changes() {
        let mut s = imported_users(5_000);
        let users = |s: &Store| match s.node("db", &segs("users")) {
            Some(NodeRef::Obj(o)) => o.clone(),
            other => panic!("{other:?}"),
        };
        let before = render(
            s.node("db", &segs("users")),
            Read::Value,
            Form::Export,
            usize::MAX,
        );
        let snap = s.snapshot("db", &segs("users")).unwrap();
        let NodeRef::Obj(old) = snap.view() else {
            panic!()
        };
        let (shared, total) = users(&s).shared_chunks(old);
        assert!(total > 10, "{total} chunks");
        assert_eq!(shared, total);
        let heap = s.heap_bytes();
        s.set("db", &segs("users/u0002500/name"), node(json!("Changed")));
        let (shared, total) = users(&s).shared_chunks(old);
        assert_eq!(total - shared, 1, "only the record's chunk is copied");
        let grew = s.heap_bytes() - heap;
        assert!(grew < 200_000, "the store grew by {grew} bytes");
        assert_eq!(s.get("db", &segs("users/u0002500/name")), json!("Changed"));
        let name = snap.view().descend(&segs("u0002500/name")).unwrap();
        assert_eq!(name.to_value(), json!("User 2500"));
        assert_eq!(
            render(Some(snap.view()), Read::Value, Form::Export, usize::MAX),
            before
        );
        // More writes (an insert that splits a chunk, a delete), then the snapshot is gone: the
        // store's chunks are its own and a tidy gives back what the writes left over.
        let entries = (0..600)
            .map(|i| (segs(&format!("users/u0001000x{i:03}")), node(json!(i))))
            .collect();
        s.update("db", &[], entries);
        s.set("db", &segs("users/u0004000"), None);
        assert_eq!(
            render(Some(snap.view()), Read::Value, Form::Export, usize::MAX),
            before
        );
        drop(snap);
        let again = s.snapshot("db", &segs("")).unwrap();
        let NodeRef::Obj(root) = again.view() else {
            panic!()
        };
        let NodeRef::Obj(live) = s.node("db", &[]).unwrap() else {
            panic!()
        };
        let (shared, total) = live.clone().shared_chunks(root);
        assert_eq!(shared, total);
        assert_eq!(s.get("db", &segs("users/u0001000x599")), json!(599));
        assert_eq!(s.get("db", &segs("users/u0004000")), Value::Null);
        // A snapshot of a value inside a packed record, and of nothing.
        let age = s.snapshot("db", &segs("users/u0000007/age")).unwrap();
        assert_eq!(age.view().to_value(), json!(25));
        assert!(s.snapshot("db", &segs("users/nobody")).is_none());
    }

    /// A migration's rewrite of every record — a field added with one multi-path update per
    /// 1,000 users, then a field renamed (two paths per user), then each record changed again
    /// by a write of its own — grows the store by at most 1.5x the bytes the data grew: the
    /// old packed JSON and the room a change made are given back after each write, so the
    /// store is not left holding up to twice the data.
    #[test]
    fn rewriting_every_record_grows_memory_by_what_changed() {
        let n = 5_000;
        let mut s = imported_users(n);
        let (heap0, json0) = (s.heap_bytes(), json_bytes(&s));
        for start in (0..n).step_by(1_000) {
            let plan = (start..start + 1_000)
                .map(|i| (segs(&format!("users/u{i:07}/plan")), node(json!("free"))))
                .collect();
            s.update("db", &[], plan);
        }
        for start in (0..n).step_by(500) {
            let rename = (start..start + 500)
                .flat_map(|i| {
                    let town = node(json!(["Berlin", "Paris", "Lisbon", "Oslo"][i % 4]));
                    [
                        (segs(&format!("users/u{i:07}/town")), town),
                        (segs(&format!("users/u{i:07}/city")), None),
                    ]
                })
                .collect();
            s.update("db", &[], rename);
        }
        for i in 0..n {
            s.set("db", &segs(&format!("users/u{i:07}/seen")), node(json!(i)));
        }
        assert_eq!(s.get("db", &segs("users/u0000001/town")), json!("Paris"));
        assert_eq!(s.get("db", &segs("users/u0004999/seen")), json!(4999));
        let (heap1, json1) = (s.heap_bytes(), json_bytes(&s));
        let (grew, changed) = (heap1 - heap0, json1 - json0);
        let ratio = grew as f64 / changed as f64;
        println!(
            "{n} records rewritten 3 times: data {json0} -> {json1} bytes, store {heap0} -> {heap1} bytes: grew {ratio:.2}x the change"
        );
        assert!(
            ratio <= 1.5,
            "the store grew by {grew} bytes for {changed} bytes of change ({ratio:.2}x)"
        );
    }

    /// Values of every size rewritten, inserted and deleted at random, in multi-path updates
    /// and single writes, read back as written (the arenas are compacted under them).
    #[test]
    fn rewrites_keep_every_value() {
        let mut s = Store::new();
        let mut model = serde_json::Map::new();
        let mut seed = 7u64;
        let mut rnd = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for round in 0..40 {
            let mut entries = Vec::new();
            let mut keys = std::collections::BTreeSet::new();
            for _ in 0..300 {
                let k = format!("k{:04}", rnd(1500));
                if !keys.insert(k.clone()) {
                    continue;
                }
                let v = match rnd(5) {
                    0 => Value::Null,
                    1 => json!("x".repeat(rnd(300) as usize)),
                    2 => json!({"a": "y".repeat(rnd(200) as usize), "n": round}),
                    3 => json!(rnd(1000)),
                    _ => json!({"big": "z".repeat(900 + rnd(400) as usize)}),
                };
                match &v {
                    Value::Null => model.remove(&k),
                    _ => model.insert(k.clone(), v.clone()),
                };
                entries.push((segs(&format!("c/{k}")), node(v)));
            }
            if round % 2 == 0 {
                s.update("n", &[], entries);
            } else {
                for (p, v) in entries {
                    s.set("n", &p, v);
                }
            }
            let want = if model.is_empty() {
                Value::Null
            } else {
                Value::Object(model.clone())
            };
            assert_eq!(s.get("n", &segs("c")), want, "round {round}");
        }
    }

    /// A multi-path update's cost grows linearly with its key count: 10x the keys is about 10x
    /// the work (binary-search steps and entries moved), not 100x.
    #[test]
    fn updates_are_linear_in_their_key_count() {
        let work = |k: usize| {
            let mut s = Store::new();
            s.set("n", &[], node(json!({"base": 1})));
            let entries: Vec<(Vec<String>, Option<Node>)> = (0..k)
                .map(|i| (segs(&format!("users/u{i:06}")), node(json!({"n": i}))))
                .collect();
            let paths: Vec<Vec<String>> = entries.iter().map(|(p, _)| p.clone()).collect();
            let ((), steps) = measured(|| {
                assert!(check_disjoint(&paths).is_none());
                s.update("n", &[], entries);
            });
            assert_eq!(
                s.get("n", &segs(&format!("users/u{:06}/n", k - 1))),
                json!(k - 1)
            );
            steps
        };
        let (small, large) = (work(4_000), work(40_000));
        let ratio = large as f64 / small as f64;
        assert!(
            ratio < 14.0,
            "4k keys: {small} steps, 40k keys: {large} steps ({ratio:.1}x)"
        );
    }
}
