//! The data trees, one per namespace, and what happens to written data before it is stored:
//! key and depth validation, server values, arrays turned into objects keyed by index, integral
//! numbers normalised, and pruning (`null` and empty objects never exist: writing them deletes,
//! and a parent left empty disappears).
//!
//! Stored trees contain only objects, strings, numbers and booleans; `to_output` turns objects
//! that look like arrays back into arrays as RTDB does on reads.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::rtdb::path::{validate_key, MAX_DEPTH};

/// Why written data was refused (becomes a 400).
#[derive(Debug, Clone, PartialEq)]
pub struct DataError(pub String);

#[derive(Debug, Default)]
pub struct Store {
    dbs: BTreeMap<String, Value>,
}

fn lookup<'a>(root: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut cur = root;
    for s in segs {
        cur = cur.as_object()?.get(s)?;
    }
    Some(cur)
}

fn set_in(node: &mut Value, segs: &[String], value: Value) {
    let Some((first, rest)) = segs.split_first() else {
        *node = value;
        return;
    };
    if !node.is_object() {
        if value.is_null() {
            return;
        }
        *node = Value::Object(Map::new());
    }
    let map = node.as_object_mut().expect("object");
    let child = map.entry(first.clone()).or_insert(Value::Null);
    set_in(child, rest, value);
    if child.is_null() {
        map.remove(first);
    }
    if map.is_empty() {
        *node = Value::Null;
    }
}

impl Store {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value at `segs` in `ns` (null when missing).
    pub fn get(&self, ns: &str, segs: &[String]) -> Value {
        self.get_ref(ns, segs).cloned().unwrap_or(Value::Null)
    }

    pub fn get_ref(&self, ns: &str, segs: &[String]) -> Option<&Value> {
        lookup(self.dbs.get(ns)?, segs)
    }

    /// Replace the value at `segs` with already prepared data (`null` deletes and prunes).
    pub fn set(&mut self, ns: &str, segs: &[String], value: Value) {
        let root = self.dbs.entry(ns.to_string()).or_insert(Value::Null);
        set_in(root, segs, value);
        if root.is_null() {
            self.dbs.remove(ns);
        }
    }

    pub fn clear(&mut self) {
        self.dbs.clear();
    }

    /// `{ "<ns>": <tree> }` in output form.
    pub fn export(&self) -> Value {
        Value::Object(
            self.dbs
                .iter()
                .map(|(k, v)| (k.clone(), to_output(v)))
                .collect(),
        )
    }
}

/// Turn a JSON float that holds an integer into an integer, as RTDB stores numbers as doubles.
fn normalize_number(n: &Number) -> Value {
    if n.is_f64() {
        let f = n.as_f64().unwrap_or(0.0);
        if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
            return Value::from(f as i64);
        }
    }
    Value::Number(n.clone())
}

fn add_numbers(current: Option<&Value>, delta: &Number) -> Value {
    let base = current.and_then(Value::as_number);
    match (base.and_then(Number::as_i64), delta.as_i64(), base) {
        (Some(a), Some(b), _) => match a.checked_add(b) {
            Some(s) => Value::from(s),
            None => {
                normalize_number(&Number::from_f64(a as f64 + b as f64).unwrap_or(Number::from(0)))
            }
        },
        (None, Some(b), None) => Value::from(b),
        (_, _, base) => {
            let sum = base.and_then(Number::as_f64).unwrap_or(0.0) + delta.as_f64().unwrap_or(0.0);
            Number::from_f64(sum)
                .map(|n| normalize_number(&n))
                .unwrap_or(Value::Null)
        }
    }
}

/// Validate and normalise data written at a location `depth` levels below the root, resolving
/// server values against `current` (the value stored there before the write) and `now_ms`.
/// Returns the value to store (null when it prunes away entirely).
pub fn prepare(
    data: &Value,
    depth: usize,
    current: Option<&Value>,
    now_ms: i64,
) -> Result<Value, DataError> {
    match data {
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(data.clone()),
        Value::Number(n) => Ok(normalize_number(n)),
        Value::Array(items) => {
            let obj: Map<String, Value> = items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect();
            prepare(&Value::Object(obj), depth, current, now_ms)
        }
        Value::Object(map) => {
            if let Some(sv) = map.get(".sv") {
                if map.len() != 1 {
                    return Err(DataError(
                        "Invalid data; a server value {\".sv\": ...} cannot have other keys".into(),
                    ));
                }
                return match sv {
                    Value::String(s) if s == "timestamp" => Ok(Value::from(now_ms)),
                    Value::Object(o)
                        if o.len() == 1 && o.get("increment").is_some_and(Value::is_number) =>
                    {
                        let delta = o["increment"].as_number().expect("number");
                        Ok(add_numbers(current, delta))
                    }
                    other => Err(DataError(format!(
                        "Invalid data; unsupported server value {other}"
                    ))),
                };
            }
            let mut out = Map::new();
            for (k, v) in map {
                validate_key(k).map_err(|e| DataError(format!("Invalid data; {}", e.message)))?;
                if depth + 1 >= MAX_DEPTH {
                    return Err(DataError(format!(
                        "Invalid data; key \"{k}\" is {} levels deep; data must be fewer than {MAX_DEPTH} levels deep",
                        depth + 1
                    )));
                }
                let cur = current.and_then(|c| c.as_object()).and_then(|c| c.get(k));
                let child = prepare(v, depth + 1, cur, now_ms)?;
                if !child.is_null() {
                    out.insert(k.clone(), child);
                }
            }
            Ok(if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            })
        }
    }
}

fn array_index(k: &str) -> Option<usize> {
    if k == "0" || (!k.starts_with('0') && !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit())) {
        k.parse::<i32>().ok().map(|i| i as usize)
    } else {
        None
    }
}

/// Output form: objects whose keys are all array indexes, with more than half of the indexes up
/// to the largest present, come back as arrays (missing entries `null`), as RTDB does.
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

    use crate::emulator::test_segs as segs;

    #[test]
    fn set_get_and_prune() {
        let mut s = Store::new();
        s.set("ns", &segs("a/b/c"), json!(1));
        s.set("ns", &segs("a/x"), json!("y"));
        assert_eq!(s.get("ns", &segs("a")), json!({"b": {"c": 1}, "x": "y"}));
        s.set("ns", &segs("a/b/c"), Value::Null);
        assert_eq!(s.get("ns", &segs("")), json!({"a": {"x": "y"}}));
        s.set("ns", &segs("a/x"), Value::Null);
        assert_eq!(s.get("ns", &segs("")), Value::Null);
        assert_eq!(s.export(), json!({}));
        // Writing below a primitive replaces it with an object.
        s.set("ns", &segs("p"), json!(5));
        s.set("ns", &segs("p/q"), json!(6));
        assert_eq!(s.get("ns", &segs("p")), json!({"q": 6}));
        // Deleting below a primitive is a no-op.
        s.set("ns", &segs("p/q/r"), Value::Null);
        assert_eq!(s.get("ns", &segs("p/q")), json!(6));
        assert_eq!(s.get("other", &segs("p")), Value::Null);
    }

    #[test]
    fn prepare_prunes_and_normalises() {
        let d = prepare(
            &json!({"a": {}, "b": null, "c": {"d": {}}, "e": 1.0, "f": 1.5, "g": [1, null, 3]}),
            0,
            None,
            0,
        )
        .unwrap();
        assert_eq!(d, json!({"e": 1, "f": 1.5, "g": {"0": 1, "2": 3}}));
        assert_eq!(prepare(&json!({}), 3, None, 0).unwrap(), Value::Null);
        assert!(prepare(&json!({"a.b": 1}), 0, None, 0).is_err());
        assert!(prepare(&json!({"ok": {"$bad": 1}}), 0, None, 0).is_err());
        assert!(prepare(&json!({".priority": 1}), 0, None, 0).is_err());
        assert!(prepare(&json!({"x": 1}), 30, None, 0).is_ok());
        assert!(prepare(&json!({"x": 1}), 31, None, 0).is_err());
    }

    #[test]
    fn server_values() {
        assert_eq!(
            prepare(&json!({"t": {".sv": "timestamp"}}), 0, None, 42).unwrap(),
            json!({"t": 42})
        );
        let cur = json!({"n": 5, "s": "x", "f": 1.5});
        let inc = |k: &str, by: Value| {
            prepare(&json!({k: {".sv": {"increment": by}}}), 0, Some(&cur), 0).unwrap()[k].clone()
        };
        assert_eq!(inc("n", json!(2)), json!(7));
        assert_eq!(inc("s", json!(2)), json!(2));
        assert_eq!(inc("missing", json!(3)), json!(3));
        assert_eq!(inc("f", json!(1)), json!(2.5));
        assert_eq!(inc("n", json!(0.5)), json!(5.5));
        assert_eq!(inc("n", json!(-5)), json!(0));
        assert!(prepare(&json!({".sv": "nope"}), 0, None, 0).is_err());
        assert!(prepare(&json!({".sv": {"increment": "1"}}), 0, None, 0).is_err());
        assert!(prepare(&json!({".sv": "timestamp", "x": 1}), 0, None, 0).is_err());
    }

    #[test]
    fn output_arrays() {
        assert_eq!(to_output(&json!({"0": "a", "1": "b"})), json!(["a", "b"]));
        assert_eq!(
            to_output(&json!({"0": "a", "2": "c"})),
            json!(["a", null, "c"])
        );
        assert_eq!(
            to_output(&json!({"0": "a", "5": "c"})),
            json!({"0": "a", "5": "c"})
        );
        assert_eq!(to_output(&json!({"01": 1})), json!({"01": 1}));
        assert_eq!(to_output(&json!({"x": {"1": 1}})), json!({"x": [null, 1]}));
    }
}
