//! RTDB ordering and queries. Shared by the client (sorting results, which REST returns as an
//! unordered object) and the emulator (filtering and limits).
//! Order for a child or `$value`: null < false < true < numbers < strings < objects, ties by key.
//! `$key`: keys that parse as 32-bit integers first, numerically, then the rest lexicographically.
//! `$priority`: a child's priority (`.priority`, absent = null) compared like values, ties by key.

use std::cmp::Ordering;

use serde_json::Value;

use crate::{Error, ErrorCode, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum OrderBy {
    Key,
    Value,
    Priority,
    /// A child path such as `"role"` or `"profile/age"`.
    Child(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub order_by: Option<OrderBy>,
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<u32>,
    pub limit_to_last: Option<u32>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadRequest, message)
}

/// The query-string parameter names a `Query` uses.
pub const QUERY_PARAMS: [&str; 6] = [
    "orderBy",
    "startAt",
    "endAt",
    "equalTo",
    "limitToFirst",
    "limitToLast",
];

impl Query {
    /// Query-string parameters (`orderBy="$key"`, `startAt=...`), JSON-encoded (not URL-encoded).
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(o) = &self.order_by {
            let s = match o {
                OrderBy::Key => "$key",
                OrderBy::Value => "$value",
                OrderBy::Priority => "$priority",
                OrderBy::Child(p) => p.as_str(),
            };
            out.push(("orderBy", Value::String(s.to_string()).to_string()));
        }
        for (name, v) in [
            ("startAt", &self.start_at),
            ("endAt", &self.end_at),
            ("equalTo", &self.equal_to),
        ] {
            if let Some(v) = v {
                out.push((name, v.to_string()));
            }
        }
        if let Some(n) = self.limit_to_first {
            out.push(("limitToFirst", n.to_string()));
        }
        if let Some(n) = self.limit_to_last {
            out.push(("limitToLast", n.to_string()));
        }
        out
    }

    /// Parse from query-string parameters (already URL-decoded); 400-style errors (BAD_REQUEST).
    /// Parameters that are not query parameters (`ns`, `print`, ...) are ignored.
    pub fn from_params(params: &[(String, String)]) -> Result<Query> {
        let mut q = Query::default();
        for (name, raw) in params {
            if !QUERY_PARAMS.contains(&name.as_str()) {
                continue;
            }
            let parsed: Value = serde_json::from_str(raw).map_err(|_| {
                bad(format!("Invalid {name} parameter {raw}: it must be JSON (strings in double quotes, e.g. {name}=\"abc\")"))
            })?;
            match name.as_str() {
                "orderBy" => {
                    let Value::String(s) = parsed else {
                        return Err(bad(format!(
                            "orderBy must be a JSON string such as \"$key\", got {raw}"
                        )));
                    };
                    q.order_by = Some(match s.as_str() {
                        "$key" => OrderBy::Key,
                        "$value" => OrderBy::Value,
                        "$priority" => OrderBy::Priority,
                        other if other.starts_with('$') => {
                            return Err(bad(format!("orderBy {other:?} is not supported: use $key, $value, $priority or a child path")))
                        }
                        other => {
                            let segs = super::path::segments(other).map_err(|e| bad(format!("Invalid orderBy: {}", e.message)))?;
                            if segs.is_empty() {
                                return Err(bad("orderBy child path cannot be empty"));
                            }
                            OrderBy::Child(segs.join("/"))
                        }
                    });
                }
                "startAt" | "endAt" | "equalTo" => {
                    if parsed.is_object() || parsed.is_array() {
                        return Err(bad(format!("{name} must be a JSON primitive (null, boolean, number or string), got {raw}")));
                    }
                    let slot = match name.as_str() {
                        "startAt" => &mut q.start_at,
                        "endAt" => &mut q.end_at,
                        _ => &mut q.equal_to,
                    };
                    *slot = Some(parsed);
                }
                _ => {
                    let n = parsed
                        .as_u64()
                        .filter(|n| *n >= 1 && *n <= u32::MAX as u64)
                        .ok_or_else(|| {
                            bad(format!("{name} must be a positive integer, got {raw}"))
                        })?;
                    if name == "limitToFirst" {
                        q.limit_to_first = Some(n as u32);
                    } else {
                        q.limit_to_last = Some(n as u32);
                    }
                }
            }
        }
        q.validate()?;
        Ok(q)
    }

    fn validate(&self) -> Result<()> {
        let has_filter = self.start_at.is_some()
            || self.end_at.is_some()
            || self.equal_to.is_some()
            || self.limit_to_first.is_some()
            || self.limit_to_last.is_some();
        if has_filter && self.order_by.is_none() {
            return Err(bad(
                "orderBy must be defined when other query parameters are defined",
            ));
        }
        if self.equal_to.is_some() && (self.start_at.is_some() || self.end_at.is_some()) {
            return Err(bad("equalTo cannot be combined with startAt or endAt"));
        }
        if self.limit_to_first.is_some() && self.limit_to_last.is_some() {
            return Err(bad("limitToFirst and limitToLast cannot be combined"));
        }
        if self.order_by == Some(OrderBy::Key) {
            for v in [&self.start_at, &self.end_at, &self.equal_to]
                .into_iter()
                .flatten()
            {
                if !v.is_string() {
                    return Err(bad(
                        "When ordering by $key, startAt, endAt and equalTo must be strings",
                    ));
                }
            }
        }
        Ok(())
    }

    /// True when no parameter is set.
    pub fn is_empty(&self) -> bool {
        *self == Query::default()
    }

    /// The ordering in effect: `$key` when none is given.
    pub fn order(&self) -> OrderBy {
        self.order_by.clone().unwrap_or(OrderBy::Key)
    }

    /// Does a child (its key and the value it is ordered by) pass the filters?
    pub fn in_range(&self, order: &OrderBy, key: &str, sort: &Value) -> bool {
        let cmp = |arg: &Value| -> Ordering {
            match order {
                OrderBy::Key => compare_keys(key, arg.as_str().unwrap_or_default()),
                _ => compare_values(sort, arg),
            }
        };
        if let Some(eq) = &self.equal_to {
            return cmp(eq) == Ordering::Equal;
        }
        self.start_at
            .as_ref()
            .is_none_or(|s| cmp(s) != Ordering::Less)
            && self
                .end_at
                .as_ref()
                .is_none_or(|e| cmp(e) != Ordering::Greater)
    }

    /// Sort, filter and limit children given as `(key, value ordered by, item)`; the value ordered
    /// by is ignored for `$key`. Shared by `apply` and the emulator's store.
    pub fn select<K: AsRef<str>, T>(&self, mut items: Vec<(K, Value, T)>) -> Vec<(K, Value, T)> {
        let order = self.order();
        items.sort_by(|(ka, va, _), (kb, vb, _)| match &order {
            OrderBy::Key => compare_keys(ka.as_ref(), kb.as_ref()),
            _ => compare_values(va, vb).then_with(|| compare_keys(ka.as_ref(), kb.as_ref())),
        });
        items.retain(|(k, v, _)| self.in_range(&order, k.as_ref(), v));
        if let Some(n) = self.limit_to_first {
            items.truncate(n as usize);
        }
        if let Some(n) = self.limit_to_last {
            let n = n as usize;
            if items.len() > n {
                items.drain(..items.len() - n);
            }
        }
        items
    }

    /// Apply to a node's value: children sorted, filtered, limited. A primitive or null has no
    /// children; an array's non-null elements are children keyed by index. Without `orderBy`,
    /// children come in `$key` order.
    pub fn apply(&self, node: &Value) -> Vec<(String, Value)> {
        let children: Vec<(String, &Value)> = match node {
            Value::Object(m) => m
                .iter()
                .filter(|(k, _)| !k.starts_with('.'))
                .map(|(k, v)| (k.clone(), v))
                .collect(),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => Vec::new(),
        };
        let order = self.order();
        let items = children
            .into_iter()
            .map(|(k, v)| {
                let sort = sort_value(&order, v);
                (k, sort, v)
            })
            .collect();
        self.select(items)
            .into_iter()
            .map(|(k, _, v)| (k, v.clone()))
            .collect()
    }
}

/// The value a child is ordered by (null when absent).
fn sort_value(order: &OrderBy, child: &Value) -> Value {
    match order {
        OrderBy::Key => Value::Null,
        OrderBy::Value => child.clone(),
        OrderBy::Priority => child.get(".priority").cloned().unwrap_or(Value::Null),
        OrderBy::Child(path) => {
            let mut cur = child;
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                match cur.get(seg) {
                    Some(v) => cur = v,
                    None => return Value::Null,
                }
            }
            cur.clone()
        }
    }
}

/// Full order of two children `(key, value)` under an ordering, ties broken by key.
pub fn compare_children(order: &OrderBy, ka: &str, va: &Value, kb: &str, vb: &Value) -> Ordering {
    match order {
        OrderBy::Key => compare_keys(ka, kb),
        other => compare_values(&sort_value(other, va), &sort_value(other, vb))
            .then_with(|| compare_keys(ka, kb)),
    }
}

/// A key RTDB treats as a 32-bit integer: `0` or an optional `-` then a non-zero digit and more
/// digits, within the i32 range (`01`, `-0`, `+1`, `1.0` are strings).
fn int_key(k: &str) -> Option<i32> {
    let digits = k.strip_prefix('-').unwrap_or(k);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.starts_with('0') && (digits.len() > 1 || k.starts_with('-')) {
        return None;
    }
    k.parse::<i32>().ok()
}

/// Compare two keys as RTDB does for `$key`.
pub fn compare_keys(a: &str, b: &str) -> Ordering {
    match (int_key(a), int_key(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(false) => 1,
        Value::Bool(true) => 2,
        Value::Number(_) => 3,
        Value::String(_) => 4,
        Value::Array(_) | Value::Object(_) => 5,
    }
}

/// Compare two values as RTDB does for `$value` / child ordering (without the key tie-break).
/// Objects (and arrays) are all equal to each other.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x.cmp(&y)
            } else {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }
    fn keys(r: &[(String, Value)]) -> Vec<&str> {
        r.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn key_order_integers_first() {
        let mut ks = vec![
            "b",
            "10",
            "2",
            "-5",
            "a",
            "01",
            "1",
            "-0",
            "2147483648",
            "2147483647",
            "A",
            "1.5",
        ];
        ks.sort_by(|a, b| compare_keys(a, b));
        assert_eq!(
            ks,
            vec![
                "-5",
                "1",
                "2",
                "10",
                "2147483647",
                "-0",
                "01",
                "1.5",
                "2147483648",
                "A",
                "a",
                "b"
            ]
        );
        assert_eq!(compare_keys("0", "-1"), Ordering::Greater);
        assert_eq!(compare_keys("x", "x"), Ordering::Equal);
    }

    #[test]
    fn value_order_by_type_then_value() {
        let mut vs = vec![
            json!({"a": 1}),
            json!("b"),
            json!(2.5),
            json!(true),
            json!(null),
            json!(false),
            json!(-3),
            json!("a"),
            json!(10),
        ];
        vs.sort_by(compare_values);
        assert_eq!(
            vs,
            vec![
                json!(null),
                json!(false),
                json!(true),
                json!(-3),
                json!(2.5),
                json!(10),
                json!("a"),
                json!("b"),
                json!({"a": 1})
            ]
        );
        assert_eq!(compare_values(&json!(1), &json!(1.0)), Ordering::Equal);
        assert_eq!(compare_values(&json!("10"), &json!(9)), Ordering::Greater);
        assert_eq!(
            compare_values(&json!({"x": 1}), &json!({"y": 2})),
            Ordering::Equal
        );
        assert_eq!(
            compare_values(&json!(i64::MAX), &json!(i64::MAX - 1)),
            Ordering::Greater
        );
    }

    #[test]
    fn parses_and_round_trips_params() {
        let q = Query::from_params(&params(&[
            ("orderBy", "\"role\""),
            ("startAt", "\"a\""),
            ("endAt", "5"),
            ("limitToFirst", "3"),
            ("ns", "x"),
            ("print", "pretty"),
        ]))
        .unwrap();
        assert_eq!(q.order_by, Some(OrderBy::Child("role".into())));
        assert_eq!(q.start_at, Some(json!("a")));
        assert_eq!(q.end_at, Some(json!(5)));
        assert_eq!(q.limit_to_first, Some(3));
        let back: Vec<(String, String)> = q
            .to_params()
            .into_iter()
            .map(|(a, b)| (a.to_string(), b))
            .collect();
        assert_eq!(back[0], ("orderBy".to_string(), "\"role\"".to_string()));
        assert_eq!(Query::from_params(&back).unwrap(), q);
        for (o, want) in [
            ("\"$key\"", OrderBy::Key),
            ("\"$value\"", OrderBy::Value),
            ("\"$priority\"", OrderBy::Priority),
            ("\"/a/b/\"", OrderBy::Child("a/b".into())),
        ] {
            assert_eq!(
                Query::from_params(&params(&[("orderBy", o)]))
                    .unwrap()
                    .order_by,
                Some(want)
            );
        }
        assert!(Query::default().is_empty());
        assert!(Query::default().to_params().is_empty());
        assert!(Query::from_params(&params(&[("ns", "a")]))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn rejects_bad_params() {
        for p in [
            vec![("orderBy", "$key")],                           // not JSON-quoted
            vec![("orderBy", "\"$nope\"")],                      // unknown $ order
            vec![("orderBy", "5")],                              // not a string
            vec![("orderBy", "\"a.b\"")],                        // bad child key
            vec![("startAt", "1")],                              // filter without orderBy
            vec![("limitToFirst", "1")],                         // limit without orderBy
            vec![("orderBy", "\"$value\""), ("startAt", "abc")], // unquoted string
            vec![("orderBy", "\"$value\""), ("startAt", "{\"a\":1}")], // object
            vec![("orderBy", "\"$value\""), ("limitToFirst", "0")], // zero
            vec![("orderBy", "\"$value\""), ("limitToLast", "-1")], // negative
            vec![("orderBy", "\"$value\""), ("limitToLast", "1.5")], // fraction
            vec![
                ("orderBy", "\"$value\""),
                ("limitToFirst", "1"),
                ("limitToLast", "1"),
            ],
            vec![
                ("orderBy", "\"$value\""),
                ("equalTo", "1"),
                ("startAt", "1"),
            ],
            vec![("orderBy", "\"$key\""), ("startAt", "1")], // $key needs strings
        ] {
            let e = Query::from_params(&params(&p)).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{p:?}");
        }
    }

    fn people() -> Value {
        json!({
            "carol": {"age": 30, "role": "admin"},
            "alice": {"age": 25, "role": "user"},
            "bob": {"age": 25, "role": "admin"},
            "dave": {"role": "user"},
            "erin": {"age": "old"},
            "frank": {"age": true, "profile": {"n": 2}},
        })
    }

    #[test]
    fn orders_by_child_with_type_order_and_key_ties() {
        let q = Query {
            order_by: Some(OrderBy::Child("age".into())),
            ..Default::default()
        };
        assert_eq!(
            keys(&q.apply(&people())),
            vec!["dave", "frank", "alice", "bob", "carol", "erin"]
        );
        let q = Query {
            order_by: Some(OrderBy::Child("profile/n".into())),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&people())).last(), Some(&"frank"));
    }

    #[test]
    fn filters_and_limits() {
        let by_age = |f: fn(&mut Query)| {
            let mut q = Query {
                order_by: Some(OrderBy::Child("age".into())),
                ..Default::default()
            };
            f(&mut q);
            q.apply(&people())
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            by_age(|q| q.start_at = Some(json!(25))),
            vec!["alice", "bob", "carol", "erin"]
        );
        assert_eq!(
            by_age(|q| q.end_at = Some(json!(25))),
            vec!["dave", "frank", "alice", "bob"]
        );
        assert_eq!(
            by_age(|q| q.equal_to = Some(json!(25))),
            vec!["alice", "bob"]
        );
        assert_eq!(
            by_age(|q| {
                q.start_at = Some(json!(26));
                q.end_at = Some(json!(100));
            }),
            vec!["carol"]
        );
        assert_eq!(
            by_age(|q| q.limit_to_first = Some(2)),
            vec!["dave", "frank"]
        );
        assert_eq!(by_age(|q| q.limit_to_last = Some(2)), vec!["carol", "erin"]);
        assert_eq!(by_age(|q| q.limit_to_last = Some(100)).len(), 6);
        assert_eq!(by_age(|q| q.equal_to = Some(json!(null))), vec!["dave"]);
        assert_eq!(by_age(|q| q.start_at = Some(json!("a"))), vec!["erin"]);
    }

    #[test]
    fn orders_by_key_and_value() {
        let node = json!({"b": 3, "10": 1, "a": 2, "2": "x", "c": null});
        let q = Query {
            order_by: Some(OrderBy::Key),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&node)), vec!["2", "10", "a", "b", "c"]);
        let q = Query {
            order_by: Some(OrderBy::Key),
            start_at: Some(json!("a")),
            end_at: Some(json!("b")),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&node)), vec!["a", "b"]);
        let q = Query {
            order_by: Some(OrderBy::Key),
            end_at: Some(json!("3")),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&node)), vec!["2"]);
        let q = Query {
            order_by: Some(OrderBy::Value),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&node)), vec!["c", "10", "a", "b", "2"]);
        let q = Query {
            order_by: Some(OrderBy::Value),
            start_at: Some(json!(2)),
            limit_to_first: Some(2),
            ..Default::default()
        };
        assert_eq!(
            q.apply(&node),
            vec![("a".to_string(), json!(2)), ("b".to_string(), json!(3))]
        );
    }

    #[test]
    fn priority_and_default_order() {
        let node = json!({"x": {".priority": 2, "v": 1}, "y": {"v": 2}, "z": {".priority": "a"}, "w": {".priority": 1}});
        let q = Query {
            order_by: Some(OrderBy::Priority),
            ..Default::default()
        };
        assert_eq!(keys(&q.apply(&node)), vec!["y", "w", "x", "z"]);
        assert_eq!(
            keys(&Query::default().apply(&node)),
            vec!["w", "x", "y", "z"]
        );
    }

    #[test]
    fn non_objects_have_no_children() {
        let q = Query {
            order_by: Some(OrderBy::Value),
            ..Default::default()
        };
        assert!(q.apply(&json!(5)).is_empty());
        assert!(q.apply(&json!(null)).is_empty());
        assert_eq!(keys(&q.apply(&json!([3, null, 1]))), vec!["2", "0"]);
    }
}
