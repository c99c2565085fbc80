//! Reading a subtree of any size: the JSON text of one GET of it, produced by as many requests
//! as the service's response-size limit needs, as a stream of byte pieces with bounded memory.
//!
//! For a node: one GET, streamed through. When the service refuses it as too big (TOO_BIG), a
//! shallow listing gives the child keys, and the children are read in key-range pages
//! (`orderBy="$key"`, `startAt`, `endAt`), a few pages in flight, sized from the bytes per child
//! seen so far. A page the service refuses is split in two; a single child too big for one
//! response is walked the same way (recursively). When even the shallow listing is refused
//! (too many children to list), pages are read one after another with `startAt` = the last key
//! read and `limitToFirst`. The pieces together are one JSON document equal in content to the
//! node's value (children of split objects come in key order, page by page); a small node costs
//! exactly one GET, the same as before.
//!
//! Every read is a `format=export` read (the same requests, the data with its priorities: a
//! node's `.priority`, a primitive with one as `{".value": v, ".priority": p}`), so a copy is
//! lossless. The pages of a split node carry its children's priorities, not its own: that one
//! is read with one more GET (`<path>/.priority`), only for a node that had to be split, and
//! placed among the children in key order.
//!
//! Unlike one GET, a walk is not a snapshot: writes made while it runs may or may not be in it.
//!
//! The stream is the seam for consumers: `backup::create` writes it to a file, and an emulator
//! can load it as it arrives (`Emulator::import_stream`), e.g. to rehearse migrations on a copy
//! of production's `{shift}`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::mpsc;

use super::progress::{KeyCounter, Progress};
use crate::rtdb::order::compare_keys;
use crate::rtdb::page::members;
use crate::rtdb::{path, Client, Format, OrderBy, Query};
use crate::{Error, ErrorCode, Result};

/// How a walk reads.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// The JSON size a page aims at (default 4 MB).
    pub page_bytes: usize,
    /// Pages read at the same time (default 4).
    pub in_flight: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions {
            page_bytes: 4 * 1024 * 1024,
            in_flight: 4,
        }
    }
}

/// Children per page at most, and at first (before any page told the size of a child).
const MAX_PAGE_KEYS: usize = 10_000;
const FIRST_PAGE_KEYS: usize = 128;

/// The JSON of the subtree at `path`, in pieces. Memory is bounded by the pages in flight.
pub struct Walk {
    rx: mpsc::Receiver<Result<Bytes>>,
    task: tokio::task::JoinHandle<()>,
}

impl Walk {
    /// The next piece; `None` at the end. An error ends the walk.
    pub async fn next(&mut self) -> Option<Result<Bytes>> {
        self.rx.recv().await
    }
    /// As a `Stream` of pieces.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static {
        futures_util::stream::unfold(self, |mut w| async move { w.next().await.map(|i| (i, w)) })
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Walk the subtree at `path`, counting into `progress` (bytes, keys, requests).
pub fn walk(client: &Client, path: &str, opts: WalkOptions, progress: Arc<Progress>) -> Walk {
    let (tx, rx) = mpsc::channel(4);
    let mut w = Walker {
        client: client.clone(),
        opts,
        progress,
        tx,
        keys: KeyCounter::default(),
    };
    let path = path.to_string();
    let task = tokio::spawn(async move {
        let res = match path::normalize(&path) {
            Ok(p) => w.node(p).await,
            Err(e) => Err(e),
        };
        if let Err(e) = res {
            let _ = w.tx.send(Err(e)).await;
        }
    });
    Walk { rx, task }
}

struct Walker {
    client: Client,
    opts: WalkOptions,
    progress: Arc<Progress>,
    tx: mpsc::Sender<Result<Bytes>>,
    keys: KeyCounter,
}

fn too_big(e: &Error) -> bool {
    e.code == ErrorCode::TooBig
}

fn at(p: &str) -> String {
    format!("/{p}")
}

impl Walker {
    async fn emit(&mut self, b: Bytes) -> Result<()> {
        self.progress.bytes(b.len() as u64);
        self.progress.nodes(self.keys.feed(&b));
        self.tx
            .send(Ok(b))
            .await
            .map_err(|_| Error::internal("the backup stopped reading"))
    }

    /// The JSON of the node at `p`.
    fn node(&mut self, p: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.progress.request();
            match self.client.get_stream(&p, Format::Export).await {
                Ok(mut body) => {
                    let mut any = false;
                    while let Some(chunk) = body.next().await {
                        let chunk = chunk?;
                        any |= !chunk.is_empty();
                        self.emit(chunk).await?;
                    }
                    if !any {
                        self.emit(Bytes::from_static(b"null")).await?;
                    }
                    return Ok(());
                }
                Err(e) if too_big(&e) => {}
                Err(e) => return Err(e),
            }
            self.progress.request();
            match self.client.get_shallow_raw(&p).await {
                Ok(body) => match shallow_keys(&body)? {
                    Some(keys) => self.keyed(&p, keys).await,
                    None => Err(Error::new(
                        ErrorCode::TooBig,
                        format!("{} holds a single value larger than one response can carry; it cannot be read", at(&p)),
                    )),
                },
                Err(e) if too_big(&e) => self.unkeyed(&p).await,
                Err(e) => Err(e),
            }
        })
    }

    /// Children of `p` read in key-range pages, the keys known.
    async fn keyed(&mut self, p: &str, mut keys: Keys) -> Result<()> {
        keys.sort();
        let mut priority = self.priority(p).await?;
        self.emit(Bytes::from_static(b"{")).await?;
        let mut first = true;
        let mut sizer = Sizer::new(self.opts.page_bytes);
        let mut retry: VecDeque<(usize, usize)> = VecDeque::new();
        let mut cursor = 0usize;
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < self.opts.in_flight.max(1) {
                let range = match retry.pop_front() {
                    Some(r) => r,
                    None if cursor < keys.len() => {
                        let end = (cursor + sizer.keys()).min(keys.len());
                        let r = (cursor, end);
                        cursor = end;
                        r
                    }
                    None => break,
                };
                let (client, path) = (self.client.clone(), p.to_string());
                let (first_key, last_key) = (keys.get(range.0), keys.get(range.1 - 1));
                let q = Query {
                    order_by: Some(OrderBy::Key),
                    start_at: Some(Value::String(first_key.to_string())),
                    end_at: Some(Value::String(last_key.to_string())),
                    ..Query::default()
                };
                self.progress.request();
                in_flight.push(tokio::spawn(async move {
                    (range, client.get_raw_as(&path, &q, Format::Export).await)
                }));
            }
            let Some(done) = in_flight.next().await else {
                break;
            };
            let (range, res) =
                done.map_err(|e| Error::internal(format!("a page read failed: {e}")))?;
            match res {
                Ok(body) => {
                    sizer.saw(range.1 - range.0, body.len());
                    let mut out = BytesMut::with_capacity(body.len());
                    put_members(&mut out, &members(&body)?, None, &mut first, &mut priority);
                    drop(body);
                    if !out.is_empty() {
                        self.emit(out.freeze()).await?;
                    }
                }
                Err(e) if too_big(&e) && range.1 - range.0 > 1 => {
                    let mid = range.0 + (range.1 - range.0) / 2;
                    sizer.refused(range.1 - range.0);
                    retry.push_back((range.0, mid));
                    retry.push_back((mid, range.1));
                }
                Err(e) if too_big(&e) => {
                    // One child too big for a response: walk it on its own.
                    let key = keys.get(range.0);
                    let mut head = BytesMut::new();
                    put_priority(&mut head, Some(key), &mut first, &mut priority);
                    if !first {
                        head.extend_from_slice(b",");
                    }
                    head.extend_from_slice(&serde_json::to_vec(key).expect("a key serialises"));
                    head.extend_from_slice(b":");
                    first = false;
                    self.emit(head.freeze()).await?;
                    self.node(path::join(p, key)).await?;
                }
                Err(e) => return Err(e),
            }
        }
        self.close(first, priority).await
    }

    /// The priority of a node that is split (its pages do not carry it): `"<json>"` or none.
    async fn priority(&mut self, p: &str) -> Result<Option<Vec<u8>>> {
        self.progress.request();
        let v = self.client.get_priority(p).await?;
        Ok((!v.is_null()).then(|| serde_json::to_vec(&v).expect("JSON serialises")))
    }

    /// The end of a split node: its priority if it comes after every child, then `}`.
    async fn close(&mut self, mut first: bool, mut priority: Option<Vec<u8>>) -> Result<()> {
        let mut out = BytesMut::new();
        put_priority(&mut out, None, &mut first, &mut priority);
        out.extend_from_slice(b"}");
        self.emit(out.freeze()).await
    }

    /// Children of `p` read one page after another (`startAt` the last key, `limitToFirst`),
    /// for a node whose keys are too many to list.
    async fn unkeyed(&mut self, p: &str) -> Result<()> {
        let mut priority = self.priority(p).await?;
        self.emit(Bytes::from_static(b"{")).await?;
        let mut first = true;
        let mut sizer = Sizer::new(self.opts.page_bytes);
        let mut after: Option<String> = None;
        loop {
            let n = sizer.keys();
            let asked = n + usize::from(after.is_some());
            let q = Query {
                order_by: Some(OrderBy::Key),
                start_at: after.clone().map(Value::String),
                limit_to_first: Some(asked as u32),
                ..Query::default()
            };
            self.progress.request();
            let body = match self.client.get_raw_as(p, &q, Format::Export).await {
                Ok(b) => b,
                Err(e) if too_big(&e) && n > 1 => {
                    sizer.refused(n);
                    continue;
                }
                Err(e) if too_big(&e) => {
                    return Err(Error::new(
                        ErrorCode::TooBig,
                        format!(
                            "{}: the child after key {:?} is larger than one response, and the node has too many children to list \
                             their keys (its shallow listing is refused too); it cannot be read in pieces",
                            at(p),
                            after.as_deref().unwrap_or("")
                        ),
                    ))
                }
                Err(e) => return Err(e),
            };
            sizer.saw(n, body.len());
            let members = members(&body)?;
            let got = members.len();
            let mut out = BytesMut::with_capacity(body.len());
            put_members(
                &mut out,
                &members,
                after.as_deref(),
                &mut first,
                &mut priority,
            );
            let next = members
                .iter()
                .map(|(k, _)| k.as_str())
                .max_by(|a, b| compare_keys(a, b))
                .map(str::to_string);
            drop(members);
            if !out.is_empty() {
                self.emit(out.freeze()).await?;
            }
            if got < asked || next.is_none() || next == after {
                break;
            }
            after = next;
        }
        self.close(first, priority).await
    }
}

/// Children per page: aims at `page_bytes` from the bytes per child seen so far; never above a
/// size the service refused.
struct Sizer {
    page_bytes: usize,
    per_key: Option<f64>,
    cap: usize,
}

impl Sizer {
    fn new(page_bytes: usize) -> Sizer {
        Sizer {
            page_bytes: page_bytes.max(1),
            per_key: None,
            cap: MAX_PAGE_KEYS,
        }
    }
    fn keys(&self) -> usize {
        let want = match self.per_key {
            None => FIRST_PAGE_KEYS,
            Some(b) => (self.page_bytes as f64 / b.max(1.0)) as usize,
        };
        want.clamp(1, self.cap)
    }
    fn saw(&mut self, keys: usize, bytes: usize) {
        if keys > 0 && bytes > 2 {
            let b = bytes as f64 / keys as f64;
            self.per_key = Some(match self.per_key {
                None => b,
                Some(old) => (old + b) / 2.0,
            });
        }
    }
    fn refused(&mut self, keys: usize) {
        self.cap = (keys / 2).max(1);
    }
}

/// Keys of one node, compactly: one text and 8 bytes per key.
#[derive(Debug, Default)]
struct Keys {
    text: String,
    spans: Vec<(u32, u32)>,
}

impl Keys {
    fn push(&mut self, k: &str) {
        self.spans.push((self.text.len() as u32, k.len() as u32));
        self.text.push_str(k);
    }
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn get(&self, i: usize) -> &str {
        let (at, n) = self.spans[i];
        &self.text[at as usize..(at + n) as usize]
    }
    /// In RTDB key order.
    fn sort(&mut self) {
        let text = &self.text;
        let s = |(at, n): (u32, u32)| &text[at as usize..(at + n) as usize];
        self.spans.sort_by(|a, b| compare_keys(s(*a), s(*b)));
    }
}

/// The keys of a shallow listing; `None` when the node is not an object.
fn shallow_keys(body: &[u8]) -> Result<Option<Keys>> {
    struct Listing;
    impl<'de> Visitor<'de> for Listing {
        type Value = Option<Keys>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a shallow listing")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Keys::default();
            while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                map.next_value::<de::IgnoredAny>()?;
                out.push(&k);
            }
            Ok(Some(out))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // An array node: its keys are the indexes of its non-null elements.
            let mut out = Keys::default();
            let mut i = 0usize;
            while let Some(v) = seq.next_element::<Value>()? {
                if !v.is_null() {
                    out.push(&i.to_string());
                }
                i += 1;
            }
            Ok(Some(out))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Some(Keys::default()))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_any(Listing)
        .map_err(|e| bad_answer("shallow listing", &e))
}

fn bad_answer(what: &str, e: &serde_json::Error) -> Error {
    Error::new(
        ErrorCode::BadRequest,
        format!("The server's answer to a {what} is not what RTDB sends ({e})"),
    )
}

/// The split node's own priority (`".priority":<json>`), once, where it goes in key order:
/// before `next` (the member about to be written) when it sorts first, or at the end (`None`).
fn put_priority(
    out: &mut BytesMut,
    next: Option<&str>,
    first: &mut bool,
    priority: &mut Option<Vec<u8>>,
) {
    if priority.is_none()
        || next.is_some_and(|k| compare_keys(".priority", k) != std::cmp::Ordering::Less)
    {
        return;
    }
    let json = priority.take().expect("checked");
    if !*first {
        out.extend_from_slice(b",");
    }
    *first = false;
    out.extend_from_slice(b"\".priority\":");
    out.extend_from_slice(&json);
}

/// Append `"k":v` for each member (but `skip`) to `out`, a comma before each but the first of
/// the object (`first` tracks that across pages); the split node's `priority` where it goes.
fn put_members(
    out: &mut BytesMut,
    members: &[(String, &RawValue)],
    skip: Option<&str>,
    first: &mut bool,
    priority: &mut Option<Vec<u8>>,
) {
    for (k, v) in members {
        if skip == Some(k.as_str()) {
            continue;
        }
        put_priority(out, Some(k), first, priority);
        if !*first {
            out.extend_from_slice(b",");
        }
        *first = false;
        out.extend_from_slice(&serde_json::to_vec(k).expect("a key serialises"));
        out.extend_from_slice(b":");
        out.extend_from_slice(v.get().as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_aim_at_their_byte_size_and_respect_refusals() {
        let mut s = Sizer::new(1000);
        assert_eq!(s.keys(), FIRST_PAGE_KEYS);
        s.saw(100, 10_000);
        assert_eq!(s.keys(), 10);
        s.refused(8);
        assert_eq!(s.keys(), 4);
        s.saw(4, 4);
        assert_eq!(s.keys(), 4, "never above the refused size");
    }

    #[test]
    fn shallow_listings_and_pages() {
        let mut k = shallow_keys(br#"{"b":true,"a":true,"10":true,"9":true}"#)
            .unwrap()
            .unwrap();
        k.sort();
        let sorted: Vec<&str> = (0..k.len()).map(|i| k.get(i)).collect();
        assert_eq!(sorted, vec!["9", "10", "a", "b"]);
        assert_eq!(shallow_keys(b"null").unwrap().unwrap().len(), 0);
        assert!(shallow_keys(b"\"text\"").unwrap().is_none());
        assert!(shallow_keys(b"{nope").is_err());
        let body = br#" {"a":{"x":[1,2]},"b":"}"} "#;
        let mut out = BytesMut::new();
        let mut first = true;
        let mut none = None;
        put_members(
            &mut out,
            &members(body).unwrap(),
            Some("b"),
            &mut first,
            &mut none,
        );
        put_members(
            &mut out,
            &members(br#"{"c":3}"#).unwrap(),
            None,
            &mut first,
            &mut none,
        );
        assert_eq!(&out[..], br#""a":{"x":[1,2]},"c":3"#);
        // A split node's priority goes where its key sorts: after integer keys, before "a".
        let mut out = BytesMut::new();
        let mut first = true;
        let mut priority = Some(b"5".to_vec());
        put_members(
            &mut out,
            &members(br#"{"1":1,"b":2}"#).unwrap(),
            None,
            &mut first,
            &mut priority,
        );
        assert_eq!(&out[..], br#""1":1,".priority":5,"b":2"#);
        assert!(priority.is_none());
        assert!(members(b"null").unwrap().is_empty());
        assert!(members(b"{nope").is_err());
    }
}
