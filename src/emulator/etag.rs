//! ETags: a content hash of the value at a location. The hash is the hex SHA-256 of the value's
//! canonical JSON (object keys sorted by bytes, numbers as stored), so equal values always have
//! equal ETags whatever the order of writes. A missing node's ETag is the literal `null_etag`.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use crate::rtdb::NULL_ETAG;

/// The ETag of a stored value (`null_etag` for null / missing).
pub fn etag(value: &Value) -> String {
    if value.is_null() {
        return NULL_ETAG.to_string();
    }
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// Canonical JSON: keys sorted, no whitespace.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_is_null_etag() {
        assert_eq!(etag(&Value::Null), "null_etag");
    }

    #[test]
    fn key_order_does_not_matter_but_content_does() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":{"x":true,"y":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":{"y":"s","x":true},"a":1}"#).unwrap();
        assert_eq!(etag(&a), etag(&b));
        assert_ne!(etag(&a), etag(&json!({"a": 2, "b": {"x": true, "y": "s"}})));
        assert_ne!(etag(&json!(1)), etag(&json!("1")));
        assert_eq!(etag(&json!(1)).len(), 64);
    }
}
