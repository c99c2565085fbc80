//! What rules read data through: [`DataView`], a tree seen by absolute paths, so a caller can
//! evaluate rules against any data (the emulator's store, a JSON value, a backup being checked).
//! [`Overlay`] is the data as it would be after a write: a view of the data before it with the
//! written values laid over it, built without copying either.

use std::borrow::Cow;
use std::ops::ControlFlow;

use serde_json::Value;

/// What is at a path: a primitive, or an object (rules never see an object's members whole:
/// `val()` of an object is a value that equals nothing).
#[derive(Debug, Clone, PartialEq)]
pub enum Found<'a> {
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Object,
}

/// A data tree seen by paths (segments from its root). Nothing and null are the same: `None`.
pub trait DataView {
    /// The value at `path` (`None` when there is nothing there).
    fn at(&self, path: &[String]) -> Option<Found<'_>>;
    /// Call `f` with the key of each child at `path` (in no particular order) until it breaks.
    fn each_child(&self, path: &[String], f: &mut dyn FnMut(&str) -> ControlFlow<()>);
    /// The priority at `path` (`None`: no priority).
    fn priority(&self, path: &[String]) -> Option<Found<'_>> {
        let _ = path;
        None
    }
}

/// A JSON value as a data tree: arrays are objects keyed by index, `null` and empty objects are
/// nothing, and `{".value": v, ".priority": p}` is `v` with priority `p` (the export format).
impl DataView for Value {
    fn at(&self, path: &[String]) -> Option<Found<'_>> {
        found(json_at(self, path)?)
    }
    fn each_child(&self, path: &[String], f: &mut dyn FnMut(&str) -> ControlFlow<()>) {
        match json_at(self, path) {
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    if !k.starts_with('.') && found(v).is_some() && f(k).is_break() {
                        return;
                    }
                }
            }
            Some(Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    if found(v).is_some() && f(&i.to_string()).is_break() {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    fn priority(&self, path: &[String]) -> Option<Found<'_>> {
        let mut cur = self;
        for s in path {
            cur = child_json(cur, s)?;
        }
        found(cur.get(".priority")?)
    }
}

fn child_json<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let v = v.get(".value").unwrap_or(v);
    match v {
        Value::Object(m) if !key.starts_with('.') => m.get(key),
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    }
}

fn json_at<'v>(v: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = v;
    for s in path {
        cur = child_json(cur, s)?;
    }
    Some(cur.get(".value").unwrap_or(cur))
}

fn found(v: &Value) -> Option<Found<'_>> {
    let v = v.get(".value").unwrap_or(v);
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(Found::Bool(*b)),
        Value::Number(n) => Some(Found::Num(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Some(Found::Str(Cow::Borrowed(s))),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| !k.starts_with('.') && found(v).is_some())
            .then_some(Found::Object),
        Value::Array(items) => items
            .iter()
            .any(|v| found(v).is_some())
            .then_some(Found::Object),
    }
}

/// One write: the path it replaces and the new value there (`None` deletes), a view rooted at
/// that path.
pub type Write<'a> = (&'a [String], Option<&'a dyn DataView>);

/// The data after a write: `base` with each written value replacing what was at its path.
/// Paths must not overlap (one an ancestor of another); lookups are binary searches over them.
pub struct Overlay<'a> {
    base: &'a dyn DataView,
    /// Sorted by path: an ancestor sorts right before its descendants.
    writes: Vec<Write<'a>>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn DataView, writes: &[Write<'a>]) -> Overlay<'a> {
        let mut writes = writes.to_vec();
        writes.sort_by(|a, b| a.0.cmp(b.0));
        Overlay { base, writes }
    }

    /// The write whose path is `path` or one of its ancestors.
    fn covering(&self, path: &[String]) -> Option<&Write<'a>> {
        let i = self.writes.partition_point(|w| w.0 <= path);
        let w = self.writes.get(i.checked_sub(1)?)?;
        path.starts_with(w.0).then_some(w)
    }

    /// The writes strictly below `path`.
    fn below(&self, path: &[String]) -> &[Write<'a>] {
        let start = self.writes.partition_point(|w| w.0 <= path);
        let n = self.writes[start..]
            .iter()
            .take_while(|w| w.0.starts_with(path))
            .count();
        &self.writes[start..start + n]
    }

    /// The write of the priority of the node at `path` (`<path>/.priority`), if any.
    fn priority_write(&self, path: &[String]) -> Option<&Write<'a>> {
        self.writes
            .iter()
            .find(|(at, _)| at.len() == path.len() + 1 && is_priority(at) && at.starts_with(path))
    }
}

/// A write of a node's priority (`<path>/.priority`), not of data.
fn is_priority(path: &[String]) -> bool {
    path.last().is_some_and(|k| k == ".priority")
}

impl DataView for Overlay<'_> {
    fn at(&self, path: &[String]) -> Option<Found<'_>> {
        if let Some((at, value)) = self.covering(path) {
            return value.as_ref()?.at(&path[at.len()..]);
        }
        let below = self.below(path);
        if below.iter().all(|(at, _)| is_priority(at)) {
            return self.base.at(path);
        }
        // Over written paths: an object if any data is written below, else what survives.
        if below.iter().any(|(at, v)| {
            v.is_some_and(|v| v.at(&[]).is_some()) && at.len() > path.len() && !is_priority(at)
        }) {
            return Some(Found::Object);
        }
        match self.base.at(path)? {
            Found::Object => {
                let mut child = path.to_vec();
                child.push(String::new());
                let mut survives = false;
                self.base.each_child(path, &mut |k| {
                    *child.last_mut().expect("pushed") = k.to_string();
                    let touched = self.covering(&child).is_some() || !self.below(&child).is_empty();
                    if !touched || self.at(&child).is_some() {
                        survives = true;
                        return ControlFlow::Break(());
                    }
                    ControlFlow::Continue(())
                });
                survives.then_some(Found::Object)
            }
            primitive => Some(primitive),
        }
    }

    fn each_child(&self, path: &[String], f: &mut dyn FnMut(&str) -> ControlFlow<()>) {
        if let Some((at, value)) = self.covering(path) {
            if let Some(v) = value {
                v.each_child(&path[at.len()..], f);
            }
            return;
        }
        let below = self.below(path);
        if below.iter().all(|(at, _)| is_priority(at)) {
            return self.base.each_child(path, f);
        }
        let mut touched: Vec<&str> = below
            .iter()
            .filter(|(at, _)| !(at.len() == path.len() + 1 && is_priority(at)))
            .map(|(at, _)| at[path.len()].as_str())
            .collect();
        touched.dedup();
        let mut stopped = false;
        self.base.each_child(path, &mut |k| {
            if touched.contains(&k) {
                return ControlFlow::Continue(());
            }
            let flow = f(k);
            stopped = flow.is_break();
            flow
        });
        if stopped {
            return;
        }
        let mut child = path.to_vec();
        child.push(String::new());
        for k in touched {
            *child.last_mut().expect("pushed") = k.to_string();
            if self.at(&child).is_some() && f(k).is_break() {
                return;
            }
        }
    }

    fn priority(&self, path: &[String]) -> Option<Found<'_>> {
        if let Some((_, value)) = self.priority_write(path) {
            // A priority on nothing is nothing.
            return value.as_ref()?.at(&[]).filter(|_| self.at(path).is_some());
        }
        match self.covering(path) {
            Some((at, value)) => value.as_ref()?.priority(&path[at.len()..]),
            None => self.base.priority(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Vec<String> {
        s.split('/')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    }

    fn keys(v: &dyn DataView, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        v.each_child(&p(path), &mut |k| {
            out.push(k.to_string());
            ControlFlow::Continue(())
        });
        out.sort();
        out
    }

    #[test]
    fn json_views() {
        let v =
            json!({"a": {"b": 1, "c": [null, "x"]}, "e": {}, "p": {".value": 3, ".priority": 5}});
        assert_eq!(v.at(&p("a/b")), Some(Found::Num(1.0)));
        assert_eq!(v.at(&p("a/c/1")), Some(Found::Str("x".into())));
        assert_eq!(v.at(&p("a")), Some(Found::Object));
        assert_eq!(v.at(&p("e")), None);
        assert_eq!(v.at(&p("p")), Some(Found::Num(3.0)));
        assert_eq!(v.priority(&p("p")), Some(Found::Num(5.0)));
        assert_eq!(keys(&v, "a/c"), vec!["1"]);
        assert_eq!(keys(&v, ""), vec!["a", "p"]);
    }

    #[test]
    fn overlay_lays_writes_over_the_data() {
        let before = json!({"users": {"a": {"n": 1}, "b": {"n": 2}}, "x": 5});
        let a_new = json!({"n": 9, "m": 1});
        let ab = p("users/a");
        let bb = p("users/b");
        let xb = p("x/y");
        let writes: Vec<Write<'_>> = vec![(&bb, None), (&ab, Some(&a_new)), (&xb, None)];
        let after = Overlay::new(&before, &writes);
        assert_eq!(after.at(&p("users/a/n")), Some(Found::Num(9.0)));
        assert_eq!(after.at(&p("users/a/m")), Some(Found::Num(1.0)));
        assert_eq!(after.at(&p("users/b")), None);
        assert_eq!(after.at(&p("users")), Some(Found::Object));
        assert_eq!(
            after.at(&p("x")),
            Some(Found::Num(5.0)),
            "a delete under a primitive changes nothing"
        );
        assert_eq!(keys(&after, "users"), vec!["a"]);
        assert_eq!(keys(&after, ""), vec!["users", "x"]);

        // Deleting every child removes the parent.
        let writes: Vec<Write<'_>> = vec![(&bb, None), (&ab, None)];
        let after = Overlay::new(&before, &writes);
        assert_eq!(after.at(&p("users")), None);
        assert_eq!(keys(&after, ""), vec!["x"]);
        // A write under a missing node creates its parents.
        let deep = p("new/deep");
        let one = json!(1);
        let writes: Vec<Write<'_>> = vec![(&deep, Some(&one))];
        let after = Overlay::new(&before, &writes);
        assert_eq!(after.at(&p("new")), Some(Found::Object));
        assert_eq!(keys(&after, ""), vec!["new", "users", "x"]);
    }
}
