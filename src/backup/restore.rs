//! Writing backed-up data back as it is read from the file, in writes that respect RTDB's
//! limits, with memory that does not grow with the file.
//!
//! The data is parsed as a stream (`Shredder`): each finished child is kept as compact JSON in
//! its parent until the parent is finished, so small nodes are written whole. When what is kept
//! passes `chunk_limit`, the unfinished nodes are "opened": each is written with the children
//! it has so far (one multi-path entry `"a/b": {...}`, which replaces the node and so also
//! clears what the backup does not have there), and from then on each of its children is its
//! own entry. Entries are packed into PATCHes at the restored path of at most `chunk_limit`
//! bytes (an entry larger than that goes alone); a PATCH never holds two entries where one is
//! inside the other (RTDB refuses those), and PATCHes are sent in order, one at a time, while
//! the next one is being parsed.
//!
//! Priorities (a version 2 file holds the data in the export form) are written back with their
//! nodes: a node written whole carries its `".priority"` (a primitive its `{".value",
//! ".priority"}`); an opened node gets its priority as an entry of its own,
//! `"<path>/.priority"`, after its children (a primitive's value and priority as one entry
//! `"<path>": {".value", ".priority"}`), so it is set on the data it belongs to.
//!
//! The restored path itself and the live lock's parent (`migrations`) are never replaced whole:
//! their live children that the backup does not have are deleted (`null`s, from a shallow
//! read), and the lock node (`migrations/_lock`) is never written or deleted, whatever the
//! backup holds there.
//!
//! The writes are not one transaction: RTDB offers none across several writes. A restore that
//! fails half way leaves the subtree partly restored, and the error says how far it got; running
//! it again finishes it (every write is a plain replace, so repeating is safe).

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::progress::Progress;
use crate::rtdb::client::ChunkingOptions;
use crate::rtdb::{path, Client};
use crate::{Error, ErrorCode, Result};

/// How many times a restore reads a shallow listing that breaks off before it fails.
const LISTING_READS: u32 = 3;

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
    /// The last path written (relative to the restored path), for messages.
    pub last: Option<String>,
    /// Requests of chunked deletes (counted in `writes` and `reads` too): live nodes too big to
    /// delete or replace in one write, deleted in chunks first.
    pub chunked: usize,
}

// ---------------------------------------------------------------------------------------------
// Parsing the data into writes

/// What the shredder hands the writer, in order.
#[derive(Debug)]
pub(crate) enum Piece {
    /// A PATCH body at the restored path: `{"<rel path>": <json>, ...}`.
    Patch { body: Vec<u8>, last: String },
    /// `data` is not an object: its JSON (a primitive; `null` for nothing).
    Whole(Vec<u8>),
    /// The lock's parent holds a primitive in the backup: its JSON.
    ProtectedPrimitive(Vec<u8>),
}

/// A node being read: finished children as `"key":json,...` until it is opened.
struct Frame {
    path: Vec<String>,
    open: bool,
    text: Vec<u8>,
    count: usize,
    /// Its `.priority` (JSON; written again when it is finished if it was opened) and, once
    /// open, its `.value`.
    priority: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Frame {
    fn new(path: Vec<String>, open: bool) -> Frame {
        Frame {
            path,
            open,
            text: Vec::new(),
            count: 0,
            priority: None,
            value: None,
        }
    }
}

/// Turns the `data` value of a backup file into `Piece`s (see the module docs).
pub struct Shredder {
    budget: usize,
    /// The lock node relative to the restored path, as segments.
    protect: Vec<String>,
    frames: Vec<Frame>,
    /// Bytes kept in frames that are not open.
    kept: usize,
    batch: Vec<u8>,
    batch_entries: usize,
    batch_last: String,
    send: Box<dyn FnMut(Piece) -> bool + Send>,
    stopped: bool,
    progress: Option<Arc<Progress>>,
}

impl Shredder {
    pub(crate) fn new(
        budget: usize,
        protect: Vec<String>,
        progress: Option<Arc<Progress>>,
        send: Box<dyn FnMut(Piece) -> bool + Send>,
    ) -> Shredder {
        Shredder {
            budget: budget.max(1),
            protect,
            frames: Vec::new(),
            kept: 0,
            batch: Vec::new(),
            batch_entries: 0,
            batch_last: String::new(),
            send,
            stopped: false,
            progress,
        }
    }

    /// The receiver went away (the write side failed or was stopped).
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    fn hand<E: de::Error>(&mut self, piece: Piece) -> Result<(), E> {
        if !(self.send)(piece) {
            self.stopped = true;
            return Err(E::custom("the restore stopped"));
        }
        Ok(())
    }

    fn flush<E: de::Error>(&mut self) -> Result<(), E> {
        if self.batch_entries == 0 {
            return Ok(());
        }
        let mut body = std::mem::take(&mut self.batch);
        body.push(b'}');
        self.batch_entries = 0;
        let piece = Piece::Patch {
            body,
            last: std::mem::take(&mut self.batch_last),
        };
        self.hand(piece)
    }

    /// One multi-path entry: `path` (relative, non-empty) replaced by `json`.
    fn entry<E: de::Error>(&mut self, path: &[String], json: &[u8]) -> Result<(), E> {
        let rel = path.join("/");
        let key = serde_json::to_vec(&rel).expect("a path serialises");
        if self.batch_entries > 0 && self.batch.len() + key.len() + json.len() + 3 > self.budget {
            self.flush()?;
        }
        self.batch
            .push(if self.batch_entries == 0 { b'{' } else { b',' });
        self.batch.extend_from_slice(&key);
        self.batch.push(b':');
        self.batch.extend_from_slice(json);
        self.batch_entries += 1;
        self.batch_last = rel;
        Ok(())
    }

    /// A child of the innermost frame is finished.
    fn child<E: de::Error>(&mut self, key: &str, json: &[u8]) -> Result<(), E> {
        if let Some(p) = &self.progress {
            p.nodes(1);
        }
        let top = self.frames.last_mut().expect("inside an object");
        if key == ".priority" {
            // Kept in case the node is opened before it has data to carry it.
            top.priority = Some(json.to_vec());
            if top.open {
                return Ok(());
            }
        }
        if top.open && key == ".value" {
            top.value = Some(json.to_vec());
            return Ok(());
        }
        if top.open {
            let mut path = top.path.clone();
            path.push(key.to_string());
            return self.entry(&path, json);
        }
        let before = top.text.len();
        if top.count > 0 {
            top.text.push(b',');
        }
        top.text
            .extend_from_slice(&serde_json::to_vec(key).expect("a key serialises"));
        top.text.push(b':');
        top.text.extend_from_slice(json);
        top.count += 1;
        self.kept += top.text.len() - before;
        if self.kept > self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Open every frame that is not open yet, outermost first: write each with the children it
    /// has so far, as one entry in a PATCH of its own (entries below it follow in later ones).
    fn spill<E: de::Error>(&mut self) -> Result<(), E> {
        for i in 0..self.frames.len() {
            if self.frames[i].open {
                continue;
            }
            let f = &mut self.frames[i];
            let mut json = Vec::with_capacity(f.text.len() + 2);
            json.push(b'{');
            json.append(&mut f.text);
            json.push(b'}');
            self.kept -= json.len() - 2;
            f.open = true;
            f.count = 0;
            let path = f.path.clone();
            self.entry(&path, &json)?;
            self.flush()?;
        }
        Ok(())
    }

    /// An opened node is finished: its priority, after its children (with its value, for a
    /// primitive: one entry replacing the node). The restored path's own value goes whole.
    fn finish_open<E: de::Error>(&mut self, f: Frame) -> Result<(), E> {
        match (f.value, f.priority) {
            (Some(v), p) => {
                let json = match p {
                    Some(p) => [&b"{\".value\":"[..], &v, b",\".priority\":", &p, b"}"].concat(),
                    None => v,
                };
                if f.path.is_empty() {
                    self.flush()?;
                    return self.hand(Piece::Whole(json));
                }
                self.entry(&f.path, &json)
            }
            (None, Some(p)) => {
                let mut path = f.path;
                path.push(".priority".into());
                self.entry(&path, &p)
            }
            (None, None) => Ok(()),
        }
    }

    fn is_protected_parent(&self, path: &[String], key: &str) -> bool {
        self.protect.len() > 1 && path.is_empty() && key == self.protect[0]
    }

    fn is_protected(&self, path: &[String], key: &str) -> bool {
        path.len() + 1 == self.protect.len()
            && path == &self.protect[..path.len()]
            && key == self.protect[path.len()]
    }
}

/// The whole `data` value.
impl<'de> DeserializeSeed<'de> for &mut Shredder {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(Top(self))
    }
}

struct Top<'s>(&'s mut Shredder);

impl Top<'_> {
    /// `data` is an object (or array): the restored path is open from the start.
    fn root<E: de::Error>(self, read: impl FnOnce(Children<'_>) -> Result<(), E>) -> Result<(), E> {
        let sh = self.0;
        sh.frames.push(Frame::new(Vec::new(), true));
        read(Children { sh: &mut *sh })?;
        let f = sh.frames.pop().expect("pushed above");
        sh.finish_open(f)?;
        sh.flush()
    }
}

fn scalar<T: serde::Serialize>(v: T) -> Vec<u8> {
    serde_json::to_vec(&v).expect("a scalar serialises")
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("RTDB data")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.root(|c| c.visit_map(map))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.root(|c| c.visit_seq(seq))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.hand(Piece::Whole(b"null".to_vec()))
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.hand(Piece::Whole(scalar(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.hand(Piece::Whole(scalar(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.hand(Piece::Whole(scalar(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.hand(Piece::Whole(scalar(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.hand(Piece::Whole(scalar(v)))
    }
}

/// The children of the innermost frame (an object, or an array as an object keyed by index).
struct Children<'s> {
    sh: &'s mut Shredder,
}

impl<'de> Visitor<'de> for Children<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(ChildSeed {
                sh: &mut *self.sh,
                key,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let seed = ChildSeed {
                sh: &mut *self.sh,
                key: i.to_string(),
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
}

/// One child value of the innermost frame.
struct ChildSeed<'s> {
    sh: &'s mut Shredder,
    key: String,
}

impl<'de> DeserializeSeed<'de> for ChildSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let parent = &self.sh.frames.last().expect("inside an object").path;
        if self.sh.is_protected(parent, &self.key) {
            // The live lock: whatever the backup holds there is skipped.
            IgnoredAny::deserialize(d)?;
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

use serde::Deserialize as _;

impl ChildSeed<'_> {
    fn open_child<A, F>(self, read: F) -> Result<(), A>
    where
        A: de::Error,
        F: FnOnce(Children<'_>) -> Result<(), A>,
    {
        let sh = self.sh;
        let parent = sh.frames.last().expect("inside an object");
        let mut path = parent.path.clone();
        let protected_parent = sh.is_protected_parent(&parent.path, &self.key);
        path.push(self.key.clone());
        // The lock's parent is never replaced whole: its children are written one by one.
        sh.frames.push(Frame::new(path, protected_parent));
        read(Children { sh: &mut *sh })?;
        let f = sh.frames.pop().expect("pushed above");
        if f.open {
            // Written already, but for its priority.
            return sh.finish_open(f);
        }
        if f.count == 0 {
            // Empty (nothing to keep: RTDB has no empty objects).
            return Ok(());
        }
        sh.kept -= f.text.len();
        let mut json = Vec::with_capacity(f.text.len() + 2);
        json.push(b'{');
        json.extend_from_slice(&f.text);
        json.push(b'}');
        sh.child(&self.key, &json)
    }

    fn leaf<E: de::Error>(self, json: Vec<u8>) -> Result<(), E> {
        let parent = &self.sh.frames.last().expect("inside an object").path;
        if self.sh.is_protected_parent(parent, &self.key) {
            return self.sh.hand(Piece::ProtectedPrimitive(json));
        }
        self.sh.child(&self.key, &json)
    }
}

impl<'de> Visitor<'de> for ChildSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("RTDB data")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.open_child(|c| c.visit_map(map))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.open_child(|c| c.visit_seq(seq))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(()) // null: nothing there
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.leaf(scalar(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.leaf(scalar(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.leaf(scalar(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.leaf(scalar(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.leaf(scalar(v))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

type Fut<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// Children queued for one PATCH at `at` (the protected nodes' deletions).
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
    progress: Option<Arc<Progress>>,
    pub(crate) report: RestoreReport,
}

impl<'c> Writer<'c> {
    pub(crate) fn new(
        client: &'c Client,
        chunk_limit: usize,
        progress: Option<Arc<Progress>>,
    ) -> Writer<'c> {
        Writer {
            client,
            chunk_limit: chunk_limit.max(1),
            progress,
            report: RestoreReport::default(),
        }
    }

    fn wrote(&mut self, bytes: usize, last: Option<String>) {
        self.report.writes += 1;
        self.report.bytes += bytes;
        if last.is_some() {
            self.report.last = last;
        }
        if let Some(p) = &self.progress {
            p.write();
        }
    }

    /// Before the data: delete the live children of `at` (the restored path) and of its
    /// protected descendants that the backup does not have, never the protected node.
    pub(crate) async fn prepare(
        &mut self,
        at: &str,
        top_keys: &[String],
        protected_keys: Option<&[String]>,
        protect: &[String],
    ) -> Result<()> {
        let keys: HashSet<String> = top_keys.iter().cloned().collect();
        self.prune(at, &keys, protect).await?;
        if let (Some(parent_keys), Some(parent)) = (protected_keys, protect.first()) {
            if keys.contains(parent) && protect.len() > 1 {
                let keys: HashSet<String> = parent_keys.iter().cloned().collect();
                self.prune(&path::join(at, parent), &keys, &protect[1..])
                    .await?;
            }
        }
        Ok(())
    }

    /// Send one PATCH of restored data at `at`. Refused as too big (it replaces live nodes
    /// too big for one write), the nodes it replaces are deleted in chunks first, then it is
    /// sent again.
    pub(crate) async fn patch(&mut self, at: &str, body: Vec<u8>, last: String) -> Result<()> {
        let n = body.len();
        let body = Bytes::from(body);
        match self.client.update_raw(at, body.clone()).await {
            Err(e) if e.code == ErrorCode::WriteTooBig => {
                let entries: Map<String, Value> = serde_json::from_slice(&body)
                    .map_err(|e| Error::internal(format!("a restore's PATCH: {e}")))?;
                let paths: Vec<String> = entries.into_iter().map(|(k, _)| k).collect();
                self.report.writes += 1; // the refused one
                self.clear_chunked(at, &paths).await?;
                self.client.update_raw(at, body).await?;
            }
            other => other?,
        }
        self.wrote(n, Some(last));
        Ok(())
    }

    /// Delete `keys` (paths below `at`) in chunks: what one PATCH could not delete or replace
    /// because the live data there is too big for one write.
    async fn clear_chunked(&mut self, at: &str, keys: &[String]) -> Result<()> {
        let done = self
            .client
            .delete_children_chunked(at, keys, &ChunkingOptions::default())
            .await?;
        let writes = (done.requests - done.listings) as usize;
        self.report.writes += writes;
        self.report.reads += done.listings as usize;
        self.report.chunked += done.requests as usize;
        if let Some(p) = &self.progress {
            for _ in 0..writes {
                p.write();
            }
        }
        Ok(())
    }

    /// `data` is a primitive or null: the restored path becomes it, except that the lock is
    /// never deleted.
    pub(crate) async fn whole(
        &mut self,
        at: &str,
        json: Vec<u8>,
        protect: &[String],
    ) -> Result<()> {
        if json == b"null" {
            return self.clear(at, protect).await;
        }
        self.primitive(at, json, protect).await
    }

    /// A primitive at `at`, above the protected node: written only when that node is absent.
    pub(crate) async fn primitive(
        &mut self,
        at: &str,
        json: Vec<u8>,
        protect: &[String],
    ) -> Result<()> {
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
        let n = json.len();
        self.client.set_raw(at, Bytes::from(json)).await?;
        self.wrote(n, Some(at.to_string()));
        Ok(())
    }

    /// Replace the node at `at` with nothing, never touching `protect` below it.
    fn clear<'a>(&'a mut self, at: &'a str, protect: &'a [String]) -> Fut<'a> {
        Box::pin(async move { self.prune(at, &HashSet::new(), protect).await })
    }

    /// Delete the live children of `at` that are not in `keys` (see `remove_missing`).
    async fn prune(&mut self, at: &str, keys: &HashSet<String>, protect: &[String]) -> Result<()> {
        let mut batch = Batch::new(at);
        self.remove_missing(&mut batch, keys, protect).await?;
        self.flush(&mut batch).await
    }

    /// Queue `null`s for live children of `batch.at` that are not in `keys`; a protected child
    /// is emptied around the protected node instead of deleted. The live children come from a
    /// shallow listing read as it arrives (a node of 1M children is never held as one listing);
    /// a listing that breaks off is read again, up to `LISTING_READS` times in all (the `null`s
    /// already queued or sent for its first part are harmless to send again).
    async fn remove_missing(
        &mut self,
        batch: &mut Batch,
        keys: &HashSet<String>,
        protect: &[String],
    ) -> Result<()> {
        let mut reads = 0;
        loop {
            reads += 1;
            self.report.reads += 1;
            if let Some(p) = &self.progress {
                p.request();
            }
            let Some(mut live) = self.client.list_children(&batch.at).await? else {
                return Ok(());
            };
            let mut broke = None;
            while let Some(child) = live.next().await {
                let k = match child {
                    Ok(c) => c.key,
                    Err(e) => {
                        broke = Some(e);
                        break;
                    }
                };
                if keys.contains(&k) {
                    continue;
                }
                if protect.first() == Some(&k) {
                    if protect.len() > 1 {
                        let at = path::join(&batch.at, &k);
                        self.clear(&at, &protect[1..]).await?;
                    }
                    continue;
                }
                let entry = k.len() + 8;
                if !batch.map.is_empty() && batch.bytes + entry > self.chunk_limit {
                    self.flush(batch).await?;
                }
                batch.bytes += entry;
                batch.map.insert(k, Value::Null);
            }
            match broke {
                None => return Ok(()),
                Some(e) if e.code != ErrorCode::ConnectionFailed || reads >= LISTING_READS => {
                    return Err(e)
                }
                Some(_) => continue,
            }
        }
    }

    /// Delete the children queued in `batch`; in chunks when one PATCH of them is too big.
    async fn flush(&mut self, batch: &mut Batch) -> Result<()> {
        if batch.map.is_empty() {
            return Ok(());
        }
        let map = std::mem::take(&mut batch.map);
        let bytes = std::mem::replace(&mut batch.bytes, 2);
        match self.client.update(&batch.at, &map).await {
            Err(e) if e.code == ErrorCode::WriteTooBig => {
                let keys: Vec<String> = map.into_iter().map(|(k, _)| k).collect();
                self.clear_chunked(&batch.at, &keys).await?;
            }
            other => other?,
        }
        self.wrote(bytes, None);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Run the shredder over `data` and return what it hands over, as (path -> value) writes.
    fn shred(data: &str, budget: usize) -> Vec<Value> {
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = out.clone();
        let mut sh = Shredder::new(
            budget,
            vec!["migrations".into(), "_lock".into()],
            None,
            Box::new(move |p| {
                sink.lock().unwrap().push(p);
                true
            }),
        );
        let mut de = serde_json::Deserializer::from_str(data);
        (&mut sh).deserialize(&mut de).unwrap();
        let pieces = std::mem::take(&mut *out.lock().unwrap());
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Patch { body, .. } => serde_json::from_slice(&body).unwrap(),
                Piece::Whole(j) => json!({"whole": serde_json::from_slice::<Value>(&j).unwrap()}),
                Piece::ProtectedPrimitive(j) => {
                    json!({"protected": serde_json::from_slice::<Value>(&j).unwrap()})
                }
            })
            .collect()
    }

    /// Applying the writes in order to an empty tree gives back the data (minus the lock).
    fn apply(writes: &[Value]) -> Value {
        let mut root = json!({});
        for w in writes {
            for (k, v) in w.as_object().unwrap() {
                let segs: Vec<&str> = k.split('/').collect();
                let mut node = &mut root;
                for s in &segs[..segs.len() - 1] {
                    if !node.get(*s).is_some_and(Value::is_object) {
                        node[*s] = json!({});
                    }
                    node = node.get_mut(*s).unwrap();
                }
                node[segs[segs.len() - 1]] = v.clone();
            }
        }
        root
    }

    #[test]
    fn small_data_is_one_patch_of_whole_children() {
        let w = shred(r#"{"a":{"b":1,"c":[1,2]},"d":"x","n":null,"e":{}}"#, 1000);
        assert_eq!(
            w,
            vec![json!({"a": {"b": 1, "c": {"0": 1, "1": 2}}, "d": "x"})]
        );
    }

    #[test]
    fn big_nodes_are_opened_and_written_in_budget_sized_patches() {
        let users: Map<String, Value> = (0..200)
            .map(|i| {
                (
                    format!("u{i:03}"),
                    json!({"name": format!("user {i}"), "tags": {"a": i}}),
                )
            })
            .collect();
        let data = json!({"users": users, "config": {"x": 1}, "migrations": {"_lock": {"owner": "old"}, "note": "keep"}});
        let w = shred(&data.to_string(), 600);
        assert!(w.len() > 10, "{}", w.len());
        for write in &w {
            let body = write.to_string();
            let keys: Vec<&String> = write.as_object().unwrap().keys().collect();
            assert!(body.len() <= 600 || keys.len() == 1, "{body}");
            for a in &keys {
                for b in &keys {
                    assert!(
                        a == b || !b.starts_with(&format!("{a}/")),
                        "overlap {a} {b}"
                    );
                }
            }
        }
        let mut expected = data.clone();
        expected["migrations"]
            .as_object_mut()
            .unwrap()
            .remove("_lock");
        assert_eq!(apply(&w), expected);
    }

    #[test]
    fn the_lock_and_its_parent_are_special() {
        let w = shred(r#"{"migrations":{"_lock":{"x":1},"a":2}}"#, 1000);
        assert_eq!(w, vec![json!({"migrations/a": 2})]);
        let w = shred(r#"{"migrations":5}"#, 1000);
        assert_eq!(w, vec![json!({"protected": 5})]);
        let w = shred(r#"{"x":{"migrations":{"_lock":1}}}"#, 1000);
        assert_eq!(
            w,
            vec![json!({"x": {"migrations": {"_lock": 1}}})],
            "only at the top"
        );
        assert_eq!(shred("7", 10), vec![json!({"whole": 7})]);
        assert_eq!(shred("null", 10), vec![json!({"whole": null})]);
    }
}
