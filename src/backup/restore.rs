//! Writing backed-up data back in chunks that respect RTDB's write limits.
//!
//! A node is replaced like this:
//! - if it is not an ancestor of a protected path and its JSON fits in `chunk_limit`, one PUT;
//! - otherwise a shallow GET lists the live children; children missing from the backup are
//!   deleted with `null`s, and backed-up children are written with PATCHes at the node, as many
//!   children per PATCH as fit in `chunk_limit` (a PATCH replaces each child it names). A child
//!   whose JSON alone is larger than `chunk_limit` is replaced the same way, recursively.
//! - the protected path (the live lock, `migrations/_lock` below the backed-up path) is never
//!   written or deleted: its ancestors are always replaced child by child and the protected node
//!   is skipped, whatever the backup holds there.
//!
//! The writes are not one transaction: RTDB offers none across several writes. A restore that
//! fails half way leaves the subtree partly restored; running it again finishes it (every write
//! is a plain replace, so repeating is safe).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::rtdb::{path, Client};
use crate::{Error, ErrorCode, Result};

/// Default upper bound for the JSON size of one write (RTDB's hard limit is 256 MB).
pub const DEFAULT_CHUNK_LIMIT: usize = 8 * 1024 * 1024;

/// Counts of what a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// PUT and PATCH requests sent.
    pub writes: usize,
    /// Shallow GETs sent (to find live children missing from the backup).
    pub reads: usize,
    /// JSON bytes written.
    pub bytes: usize,
}

type Fut<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Children queued for one PATCH at `at`.
pub(crate) struct Batch {
    at: String,
    map: Map<String, Value>,
    bytes: usize,
}

impl Batch {
    pub(crate) fn new(at: &str) -> Batch {
        Batch {
            at: at.to_string(),
            map: Map::new(),
            bytes: 2,
        }
    }
}

pub(crate) struct Writer<'c> {
    client: &'c Client,
    chunk_limit: usize,
    pub(crate) report: RestoreReport,
}

impl<'c> Writer<'c> {
    pub(crate) fn new(client: &'c Client, chunk_limit: usize) -> Writer<'c> {
        Writer {
            client,
            chunk_limit: chunk_limit.max(1),
            report: RestoreReport::default(),
        }
    }

    /// Replace the node at `at` with `value`, never touching `protect` (a path relative to `at`
    /// as segments; empty = nothing protected below `at`).
    pub(crate) fn replace<'a>(
        &'a mut self,
        at: &'a str,
        value: Value,
        protect: &'a [String],
    ) -> Fut<'a> {
        Box::pin(async move {
            if protect.is_empty() {
                let size = json_size(&value);
                if size <= self.chunk_limit {
                    return self.put(at, &value, size).await;
                }
            }
            match into_children(value) {
                Ok(children) => {
                    let keys: HashSet<String> = children.keys().cloned().collect();
                    let mut batch = Batch::new(at);
                    self.remove_missing(&mut batch, &keys, protect).await?;
                    for (k, v) in children {
                        self.child(&mut batch, k, v, protect).await?;
                    }
                    self.flush(&mut batch).await
                }
                // A primitive: nothing to split. Above a protected node it may only be written when
                // that node does not exist (writing it would delete the live lock).
                Err(value) => {
                    if !protect.is_empty() {
                        let guarded = path::join(at, &protect.join("/"));
                        self.report.reads += 1;
                        if !self.client.get_shallow(&guarded).await?.is_null() {
                            return Err(Error::new(
                                ErrorCode::RestoreFailed,
                                format!(
                                    "the backup holds a plain value at /{at}, which cannot be written without deleting \
                                     the live lock at /{guarded}; release the lock first"
                                ),
                            ));
                        }
                    }
                    let size = json_size(&value);
                    self.put(at, &value, size).await
                }
            }
        })
    }

    /// Queue `null`s for live children of `batch.at` that are not in `keys`; a protected child is
    /// emptied around the protected node instead of deleted.
    pub(crate) async fn remove_missing(
        &mut self,
        batch: &mut Batch,
        keys: &HashSet<String>,
        protect: &[String],
    ) -> Result<()> {
        self.report.reads += 1;
        let live = self.client.get_shallow(&batch.at).await?;
        let Value::Object(live) = live else {
            return Ok(());
        };
        for k in live.keys() {
            if keys.contains(k) {
                continue;
            }
            if protect.first() == Some(k) {
                if protect.len() > 1 {
                    let at = path::join(&batch.at, k);
                    self.replace(&at, Value::Object(Map::new()), &protect[1..])
                        .await?;
                }
                continue;
            }
            self.add(batch, k.clone(), Value::Null, 4).await?;
        }
        Ok(())
    }

    /// Write one backed-up child of `batch.at`.
    pub(crate) async fn child(
        &mut self,
        batch: &mut Batch,
        key: String,
        value: Value,
        protect: &[String],
    ) -> Result<()> {
        if protect.first() == Some(&key) {
            if protect.len() == 1 {
                return Ok(()); // the protected node itself: never written
            }
            let at = path::join(&batch.at, &key);
            return self.replace(&at, value, &protect[1..]).await;
        }
        let size = json_size(&value);
        if size + key.len() + 4 > self.chunk_limit {
            let at = path::join(&batch.at, &key);
            return self.replace(&at, value, &[]).await;
        }
        self.add(batch, key, value, size).await
    }

    async fn add(
        &mut self,
        batch: &mut Batch,
        key: String,
        value: Value,
        size: usize,
    ) -> Result<()> {
        let entry = size + key.len() + 4;
        if !batch.map.is_empty() && batch.bytes + entry > self.chunk_limit {
            self.flush(batch).await?;
        }
        batch.bytes += entry;
        batch.map.insert(key, value);
        Ok(())
    }

    pub(crate) async fn flush(&mut self, batch: &mut Batch) -> Result<()> {
        if batch.map.is_empty() {
            return Ok(());
        }
        let map = std::mem::take(&mut batch.map);
        self.report.writes += 1;
        self.report.bytes += batch.bytes;
        batch.bytes = 2;
        self.client.update(&batch.at, &map).await
    }

    async fn put(&mut self, at: &str, value: &Value, size: usize) -> Result<()> {
        self.report.writes += 1;
        self.report.bytes += size;
        self.client.set(at, value).await
    }
}

/// The children of an object (or of an array, which RTDB stores as an object with index keys;
/// `null` elements are absent). Anything else comes back as `Err(value)`.
fn into_children(value: Value) -> std::result::Result<Map<String, Value>, Value> {
    match value {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::Array(items) => Ok(items
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_null())
            .map(|(i, v)| (i.to_string(), v))
            .collect()),
        other => Err(other),
    }
}

/// Length of the compact JSON encoding, computed without allocating it.
pub(crate) fn json_size(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_and_children() {
        assert_eq!(json_size(&json!({"a": [1, "x"]})), r#"{"a":[1,"x"]}"#.len());
        assert_eq!(
            into_children(json!([1, null, 3])).unwrap(),
            json!({"0": 1, "2": 3}).as_object().unwrap().clone()
        );
        assert!(into_children(json!(5)).is_err());
        assert!(into_children(Value::Null).unwrap().is_empty());
    }
}
