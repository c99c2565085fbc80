//! Writes too big for one request. The service refuses a write that would change more data than
//! its write-size limit allows (`WRITE_TOO_BIG`; a delete counts the data it removes, so deleting
//! a big node is a big write although its body is empty), and writes nothing.
//!
//! A delete can be split without changing its outcome, as Google's CLI does (`database:remove`):
//! the node's children are listed (one shallow read, taken as they are needed: `listing`) and
//! deleted with multi-path PATCHes of `null` under `writeSizeLimit=tiny`; a refused chunk is
//! split in two, a child too big on its own is deleted the same way, its children first (deepest
//! first), and a plain value too big under `tiny` is deleted under the database's own limit. The
//! chunk size is found on the first chunks, one at a time: doubled while they are accepted (up
//! to `max_chunk`), halved while refused, and the first size accepted after a refusal is kept;
//! the rest go at that size, at most `in_flight` requests at a time, each refused one split in
//! halves — so the requests a delete takes depend only on the data and the limit, never on
//! timing. Every chunk is a write of the client that makes it: it carries the client's gate (a
//! stale lock holder stops deleting) and its `disableTriggers`.
//!
//! A replacement (`set`, `update`) cannot be split without losing its atomicity: refused, it is
//! an error naming the node's size and the bulk helpers (`too_big_to_split`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, FuturesUnordered, StreamExt};
use reqwest::Method;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

use super::listing::{Child, Children};
use super::transport::{show, Reply, WriteError};
use super::Client;
use crate::log::{LogLevel, LogLine};
use crate::rtdb::path;
use crate::{Error, ErrorCode, Result};

/// How a chunked delete sizes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkingOptions {
    /// Children in the first chunk.
    pub first_chunk: usize,
    /// The most children in one chunk.
    pub max_chunk: usize,
    /// The most requests in flight at once.
    pub in_flight: usize,
}

impl Default for ChunkingOptions {
    fn default() -> Self {
        ChunkingOptions {
            first_chunk: 500,
            max_chunk: 10_000,
            in_flight: 4,
        }
    }
}

/// What a chunked delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkedDelete {
    /// Requests sent: shallow listings and PATCHes (refused ones included).
    pub requests: u64,
    /// The shallow listings among them.
    pub listings: u64,
    /// Nodes deleted by name in the PATCHes that were accepted.
    pub deleted: u64,
}

/// How many times in a row a listing that broke off is read again.
const RELISTS: u32 = 3;

/// Children taken from a listing and not deleted yet.
#[derive(Default)]
struct Taken {
    ahead: VecDeque<Child>,
    /// The listing has ended.
    listed: bool,
}

impl Taken {
    /// At least `n` children ahead, unless the listing ends first.
    async fn fill(&mut self, children: &mut Children, n: usize) -> Result<()> {
        while self.ahead.len() < n && !self.listed {
            match children.next().await {
                Some(child) => self.ahead.push_back(child?),
                None => self.listed = true,
            }
        }
        Ok(())
    }
}

/// What the algorithm needs from a database (the client; a tree in memory in the tests).
pub(crate) trait Deleter: Sync {
    /// The children of the node at `at` (a shallow read), as they come: none when there is
    /// nothing there; `None` when it holds a plain value.
    fn children<'a>(&'a self, at: &'a str) -> BoxFuture<'a, Result<Option<Children>>>;
    /// One multi-path PATCH at `at` setting each of `keys` to `null`, under the `tiny`
    /// write-size limit (`tiny == false`: under the database's own). `Ok(false)`: refused as too
    /// big, nothing deleted.
    fn delete<'a>(
        &'a self,
        at: &'a str,
        keys: &'a [String],
        tiny: bool,
    ) -> BoxFuture<'a, Result<bool>>;
}

/// One chunked delete: its options, its request bound and its counts.
pub(crate) struct Chunker<'d, D: Deleter> {
    db: &'d D,
    opts: ChunkingOptions,
    permits: Semaphore,
    requests: AtomicU64,
    listings: AtomicU64,
    deleted: AtomicU64,
}

impl<'d, D: Deleter> Chunker<'d, D> {
    pub(crate) fn new(db: &'d D, opts: ChunkingOptions) -> Self {
        Chunker {
            db,
            opts: ChunkingOptions {
                first_chunk: opts.first_chunk.max(1),
                max_chunk: opts.max_chunk.max(opts.first_chunk).max(1),
                in_flight: opts.in_flight.max(1),
            },
            permits: Semaphore::new(opts.in_flight.max(1)),
            requests: AtomicU64::new(0),
            listings: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
        }
    }

    pub(crate) fn report(&self) -> ChunkedDelete {
        ChunkedDelete {
            requests: self.requests.load(Ordering::SeqCst),
            listings: self.listings.load(Ordering::SeqCst),
            deleted: self.deleted.load(Ordering::SeqCst),
        }
    }

    /// A listing of `at`: a request in flight until its answer starts (then it streams).
    async fn list(&self, at: &str) -> Result<Option<Children>> {
        let _permit = self.permits.acquire().await.expect("never closed");
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.listings.fetch_add(1, Ordering::SeqCst);
        self.db.children(at).await
    }

    async fn send(&self, at: &str, keys: &[String], tiny: bool) -> Result<bool> {
        let _permit = self.permits.acquire().await.expect("never closed");
        self.requests.fetch_add(1, Ordering::SeqCst);
        let done = self.db.delete(at, keys, tiny).await?;
        if done {
            self.deleted.fetch_add(keys.len() as u64, Ordering::SeqCst);
        }
        Ok(done)
    }

    /// Delete the node at `at` (the root included): its children, listed, in chunks.
    pub(crate) fn node<'a>(&'a self, at: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self.list(at).await? {
                Some(children) => self.children(at, children).await,
                None => self.value(at).await,
            }
        })
    }

    /// A plain value at `at`, too big under `tiny`: deleted under the database's own limit.
    async fn value(&self, at: &str) -> Result<()> {
        let (parent, key) = at.rsplit_once('/').unwrap_or(("", at));
        if !at.is_empty() && self.send(parent, &[key.to_string()], false).await? {
            return Ok(());
        }
        Err(Error::new(
            ErrorCode::WriteTooBig,
            format!(
                "The value at {} is too big to delete in one request, and a plain value cannot be \
                 deleted in parts; raise the database's write-size limit (defaultWriteSizeLimit) for this delete",
                show(at)
            ),
        ))
    }

    /// Delete `children` of `at`, taken from the listing as they are needed (at most
    /// `in_flight` chunks of them held): the chunk size found on the first chunks one at a time,
    /// then the rest at that size, `in_flight` at a time.
    pub(crate) async fn children(&self, at: &str, mut children: Children) -> Result<()> {
        let mut taken = Taken::default();
        let mut size = self.opts.first_chunk;
        let mut refused = false;
        // Finding the size, one chunk at a time: doubled while accepted, halved while refused;
        // accepted after a refusal, it is the size.
        loop {
            self.fill(at, &mut taken, &mut children, size).await?;
            if taken.ahead.is_empty() {
                return Ok(());
            }
            let n = size.min(taken.ahead.len());
            let keys: Vec<String> = taken.ahead.iter().take(n).map(|c| c.key.clone()).collect();
            if self.send(at, &keys, true).await? {
                taken.ahead.drain(..n);
                if refused {
                    break;
                }
                if n == size {
                    size = (size * 2).min(self.opts.max_chunk);
                }
            } else if n > 1 {
                size = n / 2;
                refused = true;
            } else {
                // One child too big on its own: its children first; then the size is found
                // again for the children after it.
                let child = taken.ahead.pop_front().expect("one child");
                self.alone(at, &child).await?;
                size = self.opts.first_chunk;
                refused = false;
            }
        }
        // The rest, at that size.
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.opts.in_flight {
                self.fill(at, &mut taken, &mut children, size).await?;
                if taken.ahead.is_empty() {
                    break;
                }
                let n = size.min(taken.ahead.len());
                let chunk: Vec<Child> = taken.ahead.drain(..n).collect();
                running.push(async move { self.chunk(at, &chunk).await });
            }
            match running.next().await {
                Some(done) => done?,
                None => return Ok(()),
            }
        }
    }

    /// `taken.fill`, listing `at` again (at most `RELISTS` times) when its listing broke off: the
    /// children deleted since are gone from the new listing, and those taken but not deleted
    /// are taken again from it (a chunk still in flight may be sent twice, which deletes
    /// nothing more).
    async fn fill(
        &self,
        at: &str,
        taken: &mut Taken,
        children: &mut Children,
        n: usize,
    ) -> Result<()> {
        let mut relisted = 0;
        loop {
            match taken.fill(children, n).await {
                Err(e) if e.code == ErrorCode::ConnectionFailed && relisted < RELISTS => {
                    relisted += 1;
                    let Some(again) = self.list(at).await? else {
                        return Err(e);
                    };
                    *children = again;
                    *taken = Taken::default();
                }
                done => return done,
            }
        }
    }

    /// One chunk of children of `at`, split in halves while refused.
    fn chunk<'a>(&'a self, at: &'a str, chunk: &'a [Child]) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let keys: Vec<String> = chunk.iter().map(|c| c.key.clone()).collect();
            if self.send(at, &keys, true).await? {
                return Ok(());
            }
            if let [child] = chunk {
                return self.alone(at, child).await;
            }
            let (a, b) = chunk.split_at(chunk.len() / 2);
            self.chunk(at, a).await?;
            self.chunk(at, b).await
        })
    }

    /// A child of `at` too big to delete on its own under `tiny`: its own children first
    /// (deepest first), or, a plain value, under the database's own limit.
    async fn alone(&self, at: &str, child: &Child) -> Result<()> {
        let below = path::join(at, &child.key);
        if child.object {
            self.node(&below).await
        } else {
            self.value(&below).await
        }
    }
}

impl Deleter for Client {
    fn children<'a>(&'a self, at: &'a str) -> BoxFuture<'a, Result<Option<Children>>> {
        Box::pin(self.list_children(at))
    }

    fn delete<'a>(
        &'a self,
        at: &'a str,
        keys: &'a [String],
        tiny: bool,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let body: Map<String, Value> = keys.iter().map(|k| (k.clone(), Value::Null)).collect();
            let mut req = self
                .write_req(Method::PATCH, at)
                .param("print", "silent")
                .json_body(&Value::Object(body))?;
            if tiny {
                req = req.param("writeSizeLimit", "tiny");
            }
            // Deleting is idempotent: an attempt of unknown outcome is sent again (while the
            // gate admits it), never read back (which would read the big node).
            match self.attempts(&req, true).await {
                Ok(Reply::Full(_)) => Ok(true),
                Ok(Reply::Stream(_)) => Err(Error::internal("unexpected stream")),
                Err(WriteError::Failed(e)) if e.code == ErrorCode::WriteTooBig => Ok(false),
                Err(WriteError::Failed(e)) => Err(e),
                Err(WriteError::Unknown(why)) => Err(self.outcome_unknown("PATCH", at, &why)),
            }
        })
    }
}

impl Client {
    /// Delete the node at `path` in chunks (see the module docs). `p` is normalised.
    pub async fn remove_chunked(
        &self,
        path: &str,
        opts: &ChunkingOptions,
    ) -> Result<ChunkedDelete> {
        let p = super::transport::norm(path)?;
        let chunker = Chunker::new(self, *opts);
        chunker
            .node(&p)
            .await
            .map_err(|e| self.stopped(&p, &chunker, e))?;
        Ok(chunker.report())
    }

    /// Delete the children `keys` of `at` (listed by the caller) in chunks: a restore's clear
    /// step, whose one PATCH of them was too big.
    pub async fn delete_children_chunked(
        &self,
        at: &str,
        keys: &[String],
        opts: &ChunkingOptions,
    ) -> Result<ChunkedDelete> {
        let p = super::transport::norm(at)?;
        let chunker = Chunker::new(self, *opts);
        // Whether each is an object is not known: a child refused alone is listed.
        let children: Vec<Result<Child>> = keys
            .iter()
            .map(|k| {
                Ok(Child {
                    key: k.clone(),
                    object: true,
                })
            })
            .collect();
        chunker
            .children(&p, stream::iter(children).boxed())
            .await
            .map_err(|e| self.stopped(&p, &chunker, e))?;
        Ok(chunker.report())
    }

    /// A delete refused as too big (`refused`: the requests it took, 1 for a plain DELETE),
    /// done in chunks; the `write.chunked` notice says so.
    pub(super) async fn remove_after_refusal(&self, p: &str, refused: u64) -> Result<()> {
        let done = self.remove_chunked(p, &ChunkingOptions::default()).await?;
        let requests = done.requests + refused;
        self.notice(
            LogLine::new(
                LogLevel::Info,
                "write.chunked",
                format!(
                    "{} was too big to delete in one request (the database's write-size limit): deleted in chunks, \
                     {requests} requests",
                    show(p)
                ),
            )
            .with("path", show(p))
            .with("requests", requests)
            .with("deleted", done.deleted),
        );
        Ok(())
    }

    /// The error of a chunked delete that stopped part way.
    fn stopped<D: Deleter>(&self, p: &str, chunker: &Chunker<'_, D>, e: Error) -> Error {
        let r = chunker.report();
        if r.deleted == 0 {
            return e;
        }
        Error::new(
            e.code,
            format!(
                "{} — the chunked delete of {} stopped after deleting {} of its nodes in {} requests; run it again to finish",
                e.message,
                show(p),
                r.deleted,
                r.requests
            ),
        )
    }

    /// A log line for whoever hears this client's notices.
    pub(super) fn notice(&self, line: LogLine) {
        if let Some(f) = &self.notices {
            f(&line);
        }
    }

    /// `set()`/`update()` of `p` refused as too big (`e`): the error says how big the node is
    /// and what to do, since a replacement cannot be split without losing its atomicity.
    pub(super) async fn too_big_to_split(&self, op: &str, p: &str, e: Error) -> Error {
        // Counted as the listing streams by, never held.
        let counted = match self.children(p).await {
            Ok(Some(children)) => children
                .fold(Ok(0usize), |n, c| async move {
                    n.and_then(|n| c.map(|_| n + 1))
                })
                .await
                .map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        let size = match counted {
            Ok(Some(0)) => format!(
                "{} holds nothing: the data written is too big on its own",
                show(p)
            ),
            Ok(Some(1)) => format!("{} holds 1 child", show(p)),
            Ok(Some(n)) => format!("{} holds {} children", show(p), group(n)),
            Ok(None) => format!("{} holds a plain value", show(p)),
            Err(_) => format!("{} holds more than one read returns", show(p)),
        };
        Error::new(
            ErrorCode::WriteTooBig,
            format!(
                "{op} of {} was refused: it would change more data than one request may (the database's write-size \
                 limit; {size}). A replacement cannot be split without losing its atomicity, so it is not retried in \
                 parts: write the data in pieces — db.bulkWriter() batches set/update/remove into multi-path updates, \
                 ref.children() reads a big node a page at a time — or delete the node first with remove(), which \
                 deletes big nodes in chunks ({})",
                self.at(p),
                e.message
            ),
        )
    }
}

/// `1234567` -> `1,234,567`.
fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// A tree in memory refusing any delete that removes more than `budget` bytes of JSON
    /// (`tiny`; `default` without it), counting requests and the most in flight.
    struct Tree {
        root: Mutex<Value>,
        tiny: usize,
        default: usize,
        log: Mutex<Vec<String>>,
        in_flight: AtomicU64,
        most: AtomicU64,
        /// Fail every request after this many (a gate that closed).
        fail_after: Option<u64>,
        /// The first listing breaks off after this many children.
        cut_listing: Mutex<Option<usize>>,
        sent: AtomicU64,
    }

    impl Tree {
        fn new(root: Value, tiny: usize) -> Tree {
            Tree {
                root: Mutex::new(root),
                tiny,
                default: usize::MAX,
                log: Mutex::new(Vec::new()),
                in_flight: AtomicU64::new(0),
                most: AtomicU64::new(0),
                fail_after: None,
                cut_listing: Mutex::new(None),
                sent: AtomicU64::new(0),
            }
        }
        fn at<'v>(root: &'v Value, p: &str) -> Option<&'v Value> {
            p.split('/')
                .filter(|s| !s.is_empty())
                .try_fold(root, |n, s| n.get(s))
        }
        async fn enter(&self) -> Result<()> {
            let n = self.sent.fetch_add(1, Ordering::SeqCst);
            if self.fail_after.is_some_and(|max| n >= max) {
                return Err(Error::new(ErrorCode::LockLost, "the lease is over"));
            }
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            Ok(())
        }
        fn leave(&self) {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Drop empty objects, as the database does.
    fn prune(v: &mut Value) {
        if let Value::Object(m) = v {
            for c in m.values_mut() {
                prune(c);
            }
            m.retain(|_, c| !c.is_null() && c.as_object().is_none_or(|o| !o.is_empty()));
        }
    }

    impl Deleter for Tree {
        fn children<'a>(&'a self, at: &'a str) -> BoxFuture<'a, Result<Option<Children>>> {
            Box::pin(async move {
                self.enter().await?;
                let root = self.root.lock().unwrap();
                let out: Option<Vec<Result<Child>>> = match Tree::at(&root, at) {
                    Some(Value::Object(m)) => Some(
                        m.iter()
                            .map(|(k, v)| {
                                Ok(Child {
                                    key: k.clone(),
                                    object: v.is_object(),
                                })
                            })
                            .collect(),
                    ),
                    None => Some(Vec::new()),
                    _ => None,
                };
                self.log.lock().unwrap().push(format!("list /{at}"));
                drop(root);
                self.leave();
                let cut = self.cut_listing.lock().unwrap().take();
                Ok(out.map(|mut children| {
                    if let Some(n) = cut {
                        children.truncate(n);
                        children.push(Err(Error::new(
                            ErrorCode::ConnectionFailed,
                            "the listing broke off",
                        )));
                    }
                    stream::iter(children).boxed()
                }))
            })
        }
        fn delete<'a>(
            &'a self,
            at: &'a str,
            keys: &'a [String],
            tiny: bool,
        ) -> BoxFuture<'a, Result<bool>> {
            Box::pin(async move {
                self.enter().await?;
                let mut root = self.root.lock().unwrap();
                let node = Tree::at(&root, at).cloned().unwrap_or(Value::Null);
                let bytes: usize = keys
                    .iter()
                    .filter_map(|k| node.get(k))
                    .map(|v| v.to_string().len())
                    .sum();
                let limit = if tiny { self.tiny } else { self.default };
                let ok = bytes <= limit;
                self.log.lock().unwrap().push(format!(
                    "{} /{at} {} {}",
                    if ok { "delete" } else { "refused" },
                    keys.len(),
                    if tiny { "tiny" } else { "default" }
                ));
                if ok {
                    let mut n = &mut *root;
                    for s in at.split('/').filter(|s| !s.is_empty()) {
                        n = n.get_mut(s).unwrap();
                    }
                    if let Value::Object(m) = n {
                        for k in keys {
                            m.remove(k);
                        }
                    }
                    prune(&mut root);
                }
                drop(root);
                self.leave();
                Ok(ok)
            })
        }
    }

    fn users(n: usize) -> Value {
        Value::Object(
            (0..n)
                .map(|i| {
                    (
                        format!("u{i:05}"),
                        json!({"name": format!("user {i}"), "n": i}),
                    )
                })
                .collect(),
        )
    }

    fn opts(first: usize, in_flight: usize) -> ChunkingOptions {
        ChunkingOptions {
            first_chunk: first,
            max_chunk: 1000,
            in_flight,
        }
    }

    #[tokio::test]
    async fn a_big_node_goes_in_chunks_sized_on_the_first_ones_then_in_parallel() {
        // 1000 users of 27-30 bytes; tiny lets ~100 go at once.
        let tree = Tree::new(json!({"app": {"users": users(1000), "keep": 1}}), 3000);
        let c = Chunker::new(&tree, opts(50, 4));
        c.node("app/users").await.unwrap();
        assert_eq!(*tree.root.lock().unwrap(), json!({"app": {"keep": 1}}));
        let log = tree.log.lock().unwrap().clone();
        // One listing; 50 and 100 accepted alone, 200 refused and split in two 100s; then the
        // remaining 650 in chunks of 100 (the last one 50).
        assert_eq!(
            log[..6],
            [
                "list /app/users",
                "delete /app/users 50 tiny",
                "delete /app/users 100 tiny",
                "refused /app/users 200 tiny",
                "delete /app/users 100 tiny",
                "delete /app/users 100 tiny",
            ]
        );
        assert_eq!(log.len(), 6 + 7, "{log:#?}");
        assert_eq!(
            c.report(),
            ChunkedDelete {
                requests: 13,
                listings: 1,
                deleted: 1000
            }
        );
        let most = tree.most.load(Ordering::SeqCst);
        assert!(most > 1 && most <= 4, "{most}");
    }

    #[tokio::test]
    async fn the_same_data_takes_the_same_requests_whatever_the_timing() {
        let counts: Vec<u64> = {
            let mut v = Vec::new();
            for in_flight in [1, 2, 8] {
                let tree = Tree::new(json!({"users": users(700)}), 2000);
                let c = Chunker::new(&tree, opts(64, in_flight));
                c.node("users").await.unwrap();
                assert!(tree.root.lock().unwrap().as_object().unwrap().is_empty());
                assert!(tree.most.load(Ordering::SeqCst) <= in_flight as u64);
                v.push(c.report().requests);
            }
            v
        };
        assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    }

    #[tokio::test]
    async fn a_child_too_big_alone_is_deleted_deepest_first() {
        let mut big = users(300);
        big["nested"] = json!({"deep": users(300)});
        let tree = Tree::new(json!({"a": {"small": 1, "big": big, "z": "x"}}), 4000);
        let c = Chunker::new(&tree, opts(8, 2));
        c.node("a").await.unwrap();
        assert_eq!(*tree.root.lock().unwrap(), json!({}));
        let log = tree.log.lock().unwrap().clone();
        let first = |s: &str| log.iter().position(|l| l.starts_with(s)).unwrap();
        // The deepest node is listed after its parent, and emptied before the parent's refused
        // chunk could be accepted.
        assert!(first("list /a/big/nested/deep") > first("list /a/big"));
        assert!(first("list /a/big/nested/deep") < first("delete /a/big/nested"));
        for l in log.iter().filter(|l| l.starts_with("delete")) {
            assert!(l.ends_with("tiny"), "{l}");
        }
    }

    #[tokio::test]
    async fn a_plain_value_too_big_for_tiny_goes_under_the_databases_limit() {
        let long = "x".repeat(5000);
        let tree = Tree::new(json!({"a": {"text": long, "b": 1}}), 1000);
        let c = Chunker::new(&tree, opts(8, 2));
        c.node("a").await.unwrap();
        assert_eq!(*tree.root.lock().unwrap(), json!({}));
        assert!(tree
            .log
            .lock()
            .unwrap()
            .contains(&"delete /a 1 default".to_string()));
        // Too big under the database's own limit too: a clear error, the rest deleted.
        let mut tree = Tree::new(json!({"a": {"text": "y".repeat(5000), "b": 1}}), 1000);
        tree.default = 2000;
        let c = Chunker::new(&tree, opts(8, 2));
        let e = c.node("a").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::WriteTooBig);
        assert!(e.message.contains("/a/text"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_refusal_of_the_gate_stops_the_delete() {
        let mut tree = Tree::new(json!({"users": users(1000)}), 600);
        tree.fail_after = Some(6);
        let c = Chunker::new(&tree, opts(10, 4));
        let e = c.node("users").await.unwrap_err();
        assert_eq!(e.code, ErrorCode::LockLost);
        // Nothing is sent once a request was refused but what was already on its way.
        assert!(tree.sent.load(Ordering::SeqCst) <= 6 + 4);
        assert!(!tree.root.lock().unwrap()["users"]
            .as_object()
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_listing_that_breaks_off_is_read_again_for_what_is_left() {
        let tree = Tree::new(json!({"users": users(1000), "keep": 1}), 3000);
        *tree.cut_listing.lock().unwrap() = Some(420);
        let c = Chunker::new(&tree, opts(50, 4));
        c.node("users").await.unwrap();
        assert_eq!(*tree.root.lock().unwrap(), json!({"keep": 1}));
        let log = tree.log.lock().unwrap().clone();
        let lists: Vec<&String> = log.iter().filter(|l| l.starts_with("list")).collect();
        assert_eq!(lists, ["list /users", "list /users"], "{log:#?}");
        assert_eq!(c.report().listings, 2);
    }

    #[tokio::test]
    async fn nothing_there_is_one_listing() {
        let tree = Tree::new(json!({"a": 1}), 10);
        let c = Chunker::new(&tree, opts(8, 2));
        c.node("gone").await.unwrap();
        assert_eq!(c.report().requests, 1, "{:?}", tree.log.lock().unwrap());
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }
}
