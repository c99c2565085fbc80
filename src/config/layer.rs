//! A layer of settings: a partial JSON object in the shape of `FirebaseConfig` (the defaults, a
//! config file, the `MSR_*` variables, the flags), merged onto the ones below it.

use serde_json::{Map, Value};

/// Merge `layer` into `base`: objects merge key by key, anything else replaces.
pub fn deep_merge(base: &mut Value, layer: &Value) {
    match (base, layer) {
        (Value::Object(b), Value::Object(l)) => {
            for (k, v) in l {
                match b.get_mut(k) {
                    // An auth override is one value, not a group of settings: replaced whole.
                    Some(slot)
                        if slot.is_object()
                            && v.is_object()
                            && k != "databaseAuthVariableOverride" =>
                    {
                        deep_merge(slot, v)
                    }
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, l) => *b = l.clone(),
    }
}

/// Build a partial layer from dotted keys: `[("locking.enabled", true)]` -> `{locking:{enabled:true}}`.
pub fn layer_from_pairs(pairs: impl IntoIterator<Item = (String, Value)>) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let mut node = &mut root;
        let parts: Vec<&str> = key.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let obj = node.as_object_mut().expect("layer nodes are objects");
            if i + 1 == parts.len() {
                obj.insert(part.to_string(), value.clone());
                break;
            }
            node = obj
                .entry(part.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
        }
    }
    root
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_build_nested_layers() {
        let l = layer_from_pairs([
            ("locking.enabled".to_string(), json!(true)),
            ("folder".to_string(), json!("x")),
        ]);
        assert_eq!(l, json!({"locking": {"enabled": true}, "folder": "x"}));
    }
}
