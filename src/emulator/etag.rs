//! ETags: a content hash of the value at a location, the hex SHA-256 of its compact JSON as the
//! store writes it for a `format=export` read (children in RTDB key order, numbers as stored,
//! priorities included), so equal values always have equal ETags whatever the order of writes,
//! and a change of priority alone changes the ETag (the service's node hashes cover priorities).
//! Data without priorities hashes as its plain JSON. A missing node's ETag is the literal
//! `null_etag`.

use sha2::{Digest, Sha256};

use super::store::{write_json, NodeRef};
pub use crate::rtdb::NULL_ETAG;

struct Hasher(Sha256);

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The ETag of a stored value (`null_etag` for a missing node).
pub fn etag(node: Option<NodeRef<'_>>) -> String {
    let Some(node) = node else {
        return NULL_ETAG.to_string();
    };
    // Hashed as it is written: no copy of the value's JSON is kept.
    let mut h = Hasher(Sha256::new());
    write_json(&mut h, node).expect("hashing cannot fail");
    hex::encode(h.0.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::store::parse;

    fn tag(json: &str) -> String {
        let p = parse(json.as_bytes(), 0).unwrap();
        etag(p.node.as_ref().map(|n| n.view()))
    }

    #[test]
    fn null_is_null_etag() {
        assert_eq!(etag(None), "null_etag");
        assert_eq!(tag("null"), "null_etag");
        assert_eq!(tag("{}"), "null_etag");
    }

    #[test]
    fn key_order_does_not_matter_but_content_does() {
        let a = tag(r#"{"a":1,"b":{"x":true,"y":"s"}}"#);
        assert_eq!(a, tag(r#"{"b":{"y":"s","x":true},"a":1.0}"#));
        assert_ne!(a, tag(r#"{"a":2,"b":{"x":true,"y":"s"}}"#));
        assert_ne!(tag("1"), tag("\"1\""));
        assert_eq!(tag("1").len(), 64);
    }
}
