//! Security Rules in the emulator: the rules of each namespace, who a data request acts as, and
//! the checks data requests make — one call each, evaluated by `crate::rules` over the store
//! (and, for writes, the pending write laid over it; nothing is copied).
//!
//! - A namespace without rules is open and has no index checks (as Google's emulator).
//! - Admins (a request with `Authorization: Bearer <token>` or `access_token=`, and no
//!   `auth_variable_override`; or `auth=` with a database secret) bypass `.read`, `.write` and
//!   `.validate`; index checks apply to them too.
//! - Everyone else is evaluated as `auth`: the `auth_variable_override` (`null`:
//!   unauthenticated), the claims of an ID token passed as `auth=<JWT>` (not verified), or
//!   `null` for a request with no credentials at all.

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::response::{bad_request, error, Body};
use super::store::{Node, NodeRef, Store};
use crate::rtdb::order::Query;
use crate::rules::{Context, DataView, Found, Rules, Write, PERMISSION_DENIED};
use crate::{Error, Result};

/// The key of the rules that apply to every namespace without rules of its own.
pub const EVERY_NAMESPACE: &str = "*";

/// The rules per namespace (`*`: every namespace without its own), and those the emulator
/// started with (what a reset goes back to).
#[derive(Debug, Default)]
pub struct RulesSet {
    current: HashMap<String, Arc<Rules>>,
    initial: HashMap<String, Arc<Rules>>,
}

impl RulesSet {
    /// The rules that apply in `ns` (`None`: open, no index checks).
    pub fn of(&self, ns: &str) -> Option<Arc<Rules>> {
        self.current
            .get(ns)
            .or_else(|| self.current.get(EVERY_NAMESPACE))
            .cloned()
    }
    /// Set the rules of `ns` (`None`: every namespace without rules of its own).
    pub fn set(&mut self, ns: Option<&str>, rules: impl Into<Arc<Rules>>) {
        self.current
            .insert(ns.unwrap_or(EVERY_NAMESPACE).to_string(), rules.into());
    }
    /// What the emulator starts with: the current rules, kept for `reset`.
    pub fn keep_as_initial(&mut self) {
        self.initial = self.current.clone();
    }
    pub fn reset(&mut self) {
        self.current = self.initial.clone();
    }
    /// `{"<ns or *>": "<rules text>"}`, the form saved beside an export.
    pub fn saved(&self) -> BTreeMap<&str, &str> {
        self.current
            .iter()
            .map(|(k, v)| (k.as_str(), v.text()))
            .collect()
    }
}

/// The file beside a data file where its namespaces' rules are saved: `data.json` ->
/// `data.rules.json`.
pub fn rules_file_beside(data_file: &Path) -> PathBuf {
    let name = data_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".json").unwrap_or(&name);
    data_file.with_file_name(format!("{stem}.rules.json"))
}

/// Read rules saved beside a data file (`{"<ns or *>": "<rules text>"}`), if there are any.
pub fn read_saved(data_file: &Path) -> Result<Vec<(Option<String>, Rules)>> {
    let file = rules_file_beside(data_file);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("Cannot read {}", file.display()), e)),
    };
    let bad = |what: String| Error::config(format!("{}: {what}", file.display()));
    let saved: BTreeMap<String, String> = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "expected {{\"<namespace>\": \"<rules text>\"}} ({e})"
        ))
    })?;
    saved
        .into_iter()
        .map(|(ns, text)| {
            let rules = Rules::parse(&text).map_err(|e| bad(format!("rules of {ns:?}: {e}")))?;
            Ok(((ns != EVERY_NAMESPACE).then_some(ns), rules))
        })
        .collect()
}

/// The text saved beside a data file: `{"<ns or *>": "<rules text>"}`; `None` without rules.
pub fn saved_text(set: &RulesSet) -> Option<String> {
    let saved = set.saved();
    (!saved.is_empty())
        .then(|| serde_json::to_string_pretty(&saved).expect("strings serialize") + "\n")
}

/// Who a data request acts as.
#[derive(Debug, Clone, PartialEq)]
pub enum Who {
    /// Bypasses rules.
    Admin,
    /// Evaluated as this `auth` (`null`: unauthenticated).
    User(Value),
}

/// Who a request is, from its `Authorization` header and its `auth_variable_override`,
/// `access_token` and `auth` parameters; also the override itself (for the auth lever). `Err`:
/// the 400 text for an override that is not a JSON object or `null`.
pub fn who(
    authorization: Option<&str>,
    params: &[(String, String)],
) -> std::result::Result<(Who, Option<Value>), &'static str> {
    let param = |name: &str| params.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
    if let Some(o) = param("auth_variable_override") {
        return match serde_json::from_str::<Value>(o) {
            Ok(v @ (Value::Object(_) | Value::Null)) => Ok((Who::User(v.clone()), Some(v))),
            _ => Err("Invalid auth_variable_override: expected a JSON object (or null)"),
        };
    }
    let who = if authorization.is_some() || param("access_token").is_some() {
        Who::Admin
    } else {
        match param("auth") {
            Some(token) => id_token_claims(token).map_or(Who::Admin, Who::User),
            None => Who::User(Value::Null),
        }
    };
    Ok((who, None))
}

/// The `auth` of a Firebase ID token (a JWT; its signature is not checked here): `uid`,
/// `provider` and the claims as `token`. `None` when it is not a JWT (a database secret).
fn id_token_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let uid = claims.get("user_id").or_else(|| claims.get("sub"))?.clone();
    let provider = claims
        .pointer("/firebase/sign_in_provider")
        .cloned()
        .unwrap_or(Value::Null);
    Some(json!({ "uid": uid, "provider": provider, "token": claims }))
}

/// What a data request may do: who it is and its namespace's rules, taken when it arrives.
pub struct Access {
    who: Who,
    rules: Option<Arc<Rules>>,
    now_ms: i64,
}

fn denied() -> Response<Body> {
    error(StatusCode::UNAUTHORIZED, PERMISSION_DENIED)
}

impl Access {
    pub fn new(who: Who, rules: Option<Arc<Rules>>, now_ms: i64) -> Access {
        Access { who, rules, now_ms }
    }

    /// A read of `segs` in `ns` (a query when `query` orders): `.read`, then the index check
    /// (admins too). The refusal, if any: 401, or 400 with the service's index text.
    pub fn read(
        &self,
        store: &Store,
        ns: &str,
        segs: &[String],
        query: Option<&Query>,
    ) -> Option<Response<Body>> {
        let rules = self.rules.as_ref()?;
        if let Who::User(auth) = &self.who {
            let cx = Context {
                auth,
                now_ms: self.now_ms,
            };
            if !rules.can_read(&cx, &StoreData(store.node(ns, &[])), segs, query) {
                return Some(denied());
            }
        }
        let order = query?.order_by.as_ref()?;
        rules.missing_index(segs, order).map(bad_request)
    }

    /// A write at `base` in `ns` of `writes` (paths relative to `base`; `None` deletes):
    /// `.write` and `.validate` against the store with the write laid over it. The refusal, if
    /// any: 401.
    pub fn write(
        &self,
        store: &Store,
        ns: &str,
        base: &[String],
        writes: &[(&[String], Option<&Node>)],
    ) -> Option<Response<Body>> {
        let (Some(rules), Who::User(auth)) = (&self.rules, &self.who) else {
            return None;
        };
        let paths: Vec<Vec<String>> = writes
            .iter()
            .map(|(rel, _)| base.iter().chain(rel.iter()).cloned().collect())
            .collect();
        let values: Vec<Option<StoreData<'_>>> = writes
            .iter()
            .map(|(_, n)| n.map(|n| StoreData(Some(n.view()))))
            .collect();
        let views: Vec<Write<'_>> = paths
            .iter()
            .zip(&values)
            .map(|(path, v)| (&path[..], v.as_ref().map(|v| v as &dyn DataView)))
            .collect();
        let cx = Context {
            auth,
            now_ms: self.now_ms,
        };
        rules
            .check_write(&cx, &StoreData(store.node(ns, &[])), &views)
            .err()
            .map(|_| denied())
    }
}

/// Stored data as rules see it: a tree rooted at a namespace's root (or a value being written).
/// The store (a namespace's root node) as rules see it.
pub struct StoreData<'a>(pub Option<NodeRef<'a>>);

impl DataView for StoreData<'_> {
    fn at(&self, path: &[String]) -> Option<Found<'_>> {
        Some(found(self.0?.descend(path)?))
    }

    fn each_child(&self, path: &[String], f: &mut dyn FnMut(&str) -> ControlFlow<()>) {
        match self.0.and_then(|n| n.descend(path)) {
            Some(NodeRef::Obj(o)) => {
                // A priority (`.priority`, `.value`) is not a child.
                for (k, _) in o.iter().filter(|(k, _)| !k.starts_with('.')) {
                    if f(k).is_break() {
                        return;
                    }
                }
            }
            Some(n @ NodeRef::Json(_)) => {
                for (k, _) in n.children() {
                    if f(&k).is_break() {
                        return;
                    }
                }
            }
            _ => {}
        }
    }

    /// The priority stored with the node (`getPriority()`).
    fn priority(&self, path: &[String]) -> Option<Found<'_>> {
        Some(found(self.0?.descend(path)?.priority()?))
    }
}

/// [`StoreData`] for many lookups close to each other (a rehearsal's `.validate` check of every
/// path a migration changed, in key order): it remembers the nodes on the way to the parent of
/// the last path it looked up and starts from the deepest one the next path shares, instead of
/// from the root (`users/u2/town` after `users/u1/town`: from `users`). The same answers as
/// `StoreData`; for a store that does not change while it is used.
pub struct CachedStoreData<'a> {
    root: Option<NodeRef<'a>>,
    near: std::cell::RefCell<Near<'a>>,
}

/// The remembered way down: the first `len` of `chain`, each a segment and the node there
/// (`None`: nothing there, so nothing below it either); the rest are spare buffers.
struct Near<'a> {
    chain: Vec<(String, Option<NodeRef<'a>>)>,
    len: usize,
}

impl<'a> CachedStoreData<'a> {
    pub fn new(root: Option<NodeRef<'a>>) -> Self {
        CachedStoreData {
            root,
            near: std::cell::RefCell::new(Near {
                chain: Vec::new(),
                len: 0,
            }),
        }
    }

    /// The node at `path`, from the deepest remembered node on its way; the way to its parent
    /// is remembered.
    fn node(&self, path: &[String]) -> Option<NodeRef<'a>> {
        let Some((last, parent)) = path.split_last() else {
            return self.root;
        };
        let mut near = self.near.borrow_mut();
        let Near { chain, len } = &mut *near;
        let shared = chain[..*len]
            .iter()
            .zip(parent)
            .take_while(|((seg, _), p)| seg == *p)
            .count();
        *len = shared;
        for seg in &parent[shared..] {
            let up = match *len {
                0 => self.root,
                n => chain[n - 1].1,
            };
            let here = up.and_then(|u| u.child(seg));
            match chain.get_mut(*len) {
                Some(c) => {
                    c.0.clone_from(seg);
                    c.1 = here;
                }
                None => chain.push((seg.clone(), here)),
            }
            *len += 1;
        }
        let up = match *len {
            0 => self.root,
            n => chain[n - 1].1,
        };
        up.and_then(|n| n.child(last))
    }
}

impl DataView for CachedStoreData<'_> {
    fn at(&self, path: &[String]) -> Option<Found<'_>> {
        Some(found(self.node(path)?))
    }

    fn each_child(&self, path: &[String], f: &mut dyn FnMut(&str) -> ControlFlow<()>) {
        StoreData(self.node(path)).each_child(&[], f)
    }

    fn priority(&self, path: &[String]) -> Option<Found<'_>> {
        Some(found(self.node(path)?.priority()?))
    }
}

fn found(n: NodeRef<'_>) -> Found<'_> {
    // A primitive with a priority is that primitive.
    match n.unwrapped() {
        NodeRef::Bool(b) => Found::Bool(b),
        NodeRef::Num(x) => Found::Num(x),
        NodeRef::Str(s) => Found::Str(s.into()),
        NodeRef::Obj(_) => Found::Object,
        // Packed JSON: an object or array, or a primitive inside one.
        NodeRef::Json(t) => match t.as_bytes().first() {
            Some(b'{' | b'[') => Found::Object,
            Some(b't') => Found::Bool(true),
            Some(b'f') => Found::Bool(false),
            Some(b'"') if !t.contains('\\') => Found::Str(t[1..t.len() - 1].into()),
            Some(b'"') => Found::Str(serde_json::from_str::<String>(t).unwrap_or_default().into()),
            _ => Found::Num(t.parse().unwrap_or(0.0)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_a_request_is() {
        let p = |kv: &[(&str, &str)]| -> Vec<(String, String)> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let who_is = |a: Option<&str>, kv: &[(&str, &str)]| who(a, &p(kv)).unwrap().0;
        assert_eq!(who_is(Some("Bearer owner"), &[]), Who::Admin);
        assert_eq!(who_is(None, &[]), Who::User(Value::Null));
        assert_eq!(
            who(
                Some("Bearer owner"),
                &p(&[("auth_variable_override", r#"{"uid":"u"}"#)])
            )
            .unwrap(),
            (Who::User(json!({"uid": "u"})), Some(json!({"uid": "u"})))
        );
        assert_eq!(
            who_is(None, &[("auth_variable_override", "null")]),
            Who::User(Value::Null)
        );
        assert!(who(None, &p(&[("auth_variable_override", "5")])).is_err());
        assert_eq!(who_is(None, &[("access_token", "t")]), Who::Admin);
        assert_eq!(who_is(None, &[("auth", "a-database-secret")]), Who::Admin);
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"sub": "u7", "firebase": {"sign_in_provider": "password"}}"#);
        let token = format!("h.{claims}.s");
        let Who::User(auth) = who_is(None, &[("auth", &token)]) else {
            panic!("an ID token is a user")
        };
        assert_eq!(auth["uid"], "u7");
        assert_eq!(auth["provider"], "password");
        assert_eq!(auth["token"]["sub"], "u7");
    }

    #[test]
    fn saved_rules_sit_beside_the_data() {
        assert_eq!(
            rules_file_beside(Path::new("/x/data.json")),
            Path::new("/x/data.rules.json")
        );
        assert_eq!(
            rules_file_beside(Path::new("sandbox")),
            Path::new("sandbox.rules.json")
        );
    }

    /// The cached view answers every lookup as the plain one does, in any order: below, above
    /// and beside the remembered node, missing parents, packed children, priorities, children.
    #[test]
    fn a_cached_view_answers_as_the_store_does() {
        let mut store = Store::new();
        let data = json!({
            "users": {
                "u1": {"name": "a", "tags": {"x": true}},
                "u2": {".priority": 2, "name": "b", "n": 1.5},
                "u3": {"big": {"deep": {"v": "w\\\"q"}}}
            },
            "s": "top"
        });
        let node = crate::emulator::store::parse_value(&data, 0).unwrap().node;
        store.set("ns", &[], node);
        let root = store.node("ns", &[]);
        let (plain, cached) = (StoreData(root), CachedStoreData::new(root));
        let paths = [
            "users/u1/name",
            "users/u1/tags/x",
            "users/u1",
            "users/u2/name",
            "users/u2",
            "users/u9/name",
            "users/u9/name/x",
            "users/u1/name",
            "users/u3/big/deep/v",
            "users/u3/big/deep",
            "users/u3/big/nope",
            "s",
            "s/x",
            "",
            "users",
            "users/u2/n",
        ];
        for p in paths {
            let segs: Vec<String> = p
                .split('/')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            assert_eq!(cached.at(&segs), plain.at(&segs), "at {p}");
            assert_eq!(
                cached.priority(&segs),
                plain.priority(&segs),
                "priority {p}"
            );
            let kids = |v: &dyn DataView| {
                let mut k = Vec::new();
                v.each_child(&segs, &mut |c| {
                    k.push(c.to_string());
                    ControlFlow::Continue(())
                });
                k
            };
            assert_eq!(kids(&cached), kids(&plain), "children {p}");
        }
    }
}
