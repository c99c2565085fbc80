//! The embedded RTDB emulator: a hyper/tokio server on loopback speaking the service's REST
//! protocol (namespaces, ETags, conditional PUT/DELETE, 412 bodies, `null_etag`, server values,
//! `shallow`, `print`, queries, event streams, `{"error": ...}` bodies, Security Rules and
//! indexes; for users: docs/emulator.md), plus test levers. It is the project's test server for
//! a distributed lock, so it is never more lenient than the real service (where unsure, it
//! refuses).
//!
//! Modules: this file (start/stop, accepting connections, routing `/.emulator/...` vs data),
//! `state` (the store, lever settings, push ids and the write feed, shared by every request),
//! `data` (data requests: parsing and one handler per method), `security` (the rules of each
//! namespace, who a request acts as, the checks data requests make through `crate::rules`),
//! `settings` (`/.settings/rules.json`), `levers` (the test levers' endpoint), `journal` (the
//! request journal), `delay` (the delay lever), `write_size` (write-size limits: levels,
//! budgets, the estimate), `triggers` (`disableTriggers`: parsed and counted), `trim` (free
//! memory given back after a burst of traffic), `sse` (event streams), `streamed` (big reads
//! streamed from a snapshot of the store), `response` (response building, JSON bodies), `store` (data trees, validation, server values, pruning, sizes),
//! `etag`. Push ids come from `crate::rtdb::push_id`.
//!
//! # Addressing
//! - Data: `/<path>.json?ns=<namespace>`. Any other path (outside `/.emulator/`) is a 404.
//! - Without `?ns=`, the namespace is the first label of the `Host` header when it is a DNS name
//!   of two or more labels (`mydb.localhost:9000` -> `mydb`), otherwise `default`.
//! - Auth: any `Authorization` header (e.g. `Bearer owner`) or `access_token=` makes the request
//!   an admin, unless the auth lever requires a token: then anything but `Bearer <that token>`
//!   gets 401 `{"error":"Unauthorized request."}`, as the service refuses a bad token. With
//!   `auth_variable_override` (a JSON object, or `null` for unauthenticated; 400 otherwise) the
//!   request acts as that `auth`; the last one seen is shown by `GET /.emulator/auth`. A request
//!   with no credentials acts as `auth == null`; `auth=<ID token>` as the token's claims (not
//!   verified), `auth=<anything else>` (a database secret) as an admin.
//!
//! # Security Rules (`crate::rules`, wired in `security`)
//! - Per namespace, set by `PUT /.settings/rules.json?ns=<ns>` (admins only; the body is a rules
//!   document, `//` and `/* */` comments allowed; one that does not parse or check is a 400
//!   `{"error": "<line>:<column>: <why>"}`), `GET` returns the stored text, `?format=strict` plain
//!   JSON. At start: `EmulatorOptions::rules` (files, for one namespace or every namespace
//!   without its own) and the rules saved beside an import file (`data.rules.json` beside
//!   `data.json`, `{"<ns or *>": "<rules text>"}`); `saved_rules` gives that file's text.
//! - A namespace without rules is open (read and write for everyone) and checks no index.
//! - With rules: admins bypass `.read`/`.write`/`.validate`; everyone else is evaluated, and a
//!   denied read or write (a multi-path PATCH whole) is 401 `{"error":"Permission denied"}`.
//!   A query ordered by a child or `$value` without that `.indexOn` at its location is a 400
//!   `Index not defined, add ".indexOn": "<child>", for path "/<path>", to the rules` (admins
//!   included); `$key` and `$priority` need no index. Event streams are checked when opened.
//! - The deny and allow levers apply as well, before the rules.
//!
//! # Write-size limits and triggers (`write_size`, `triggers`)
//! - Each namespace has a default write-size limit, `unlimited` in a fresh emulator (the
//!   service's default for new databases is `large`: set it with the `write-size-limit` lever
//!   or `Emulator::set_write_size_limit`). A write (PUT, PATCH, POST, DELETE) may ask for a
//!   lower one with `?writeSizeLimit=tiny|small|medium|large|unlimited`; asking for a higher
//!   one gets the default (the service lets a request ask for less). Another value is a 400
//!   `Invalid writeSizeLimit parameter ...`.
//! - The estimate is in bytes: the body plus what the write replaces (the stored subtree at the
//!   path; each path's for a multi-path PATCH; nothing for a POST), so a DELETE of a big node is
//!   big although its body is empty. Over the level's budget: 400 `{"error": "WRITE_TOO_BIG:
//!   Data to write exceeds the maximum size that can be modified with a single request."}`
//!   (the status is a choice: the service's is not documented; Google's CLI treats any 4xx of
//!   a chunk as "too big"), checked after the rules and before an `if-match` comparison;
//!   nothing is written, no event sent, the ETag unchanged. Budgets (a choice, 1 MB per second
//!   of the service's target time): `tiny` 1 MB, `small` 10 MB, `medium` 30 MB, `large` 60 MB.
//! - `?disableTriggers=true|false` is accepted on writes (another value: 400 `Invalid
//!   disableTriggers parameter ...`); there are no functions to fire, but writes are counted by
//!   it (`GET /.emulator/requests` -> `triggers`) and the journal marks each write.
//!
//! # Priorities (as the service keeps them)
//! - Written data may carry them in the export form: `".priority": p` in an object, and
//!   `{".value": v, ".priority": p}` for a primitive (PUT, PATCH, POST, imports). A priority is a
//!   number or a string (or a server value); `null` is none; `.value` with other children, a
//!   `.priority` that is an object or a boolean, are 400s. A priority on nothing is nothing.
//! - `<path>/.priority` is the node's priority: GET reads it (`null`: none), PUT sets it, DELETE
//!   removes it, a PATCH key may end in it (applied after the update's data); it does nothing
//!   to a missing node. Rules see such a write as a write of the node (`.write` at and above
//!   it, the `.validate` rules at and above it).
//! - Replacing a node (PUT) replaces its priority; writing below a node keeps its priority (a
//!   prioritised primitive that gets children keeps the priority, not the value).
//! - A plain GET leaves them out; `format=export` returns them (queries and shallow reads too);
//!   `/.emulator/export`, export-on-exit and `Emulator::write_export` keep them. Event streams
//!   carry plain data.
//! - `orderBy="$priority"`: children without a priority first, then numbers, then strings
//!   (`startAt`/`endAt`/`equalTo` compare priorities), ties by key. Rules' `getPriority()`
//!   reads them.
//! - Stored in the node they belong to, as the export form says (a `.priority` member; a
//!   primitive with one becomes that small object): nothing for data without priorities.
//!
//! # Behaviour where the real service is unspecified (choices made here)
//! - ETags are the hex SHA-256 of the value's JSON as the store writes it, in the export form
//!   (children in key order, priorities included: a priority change changes the ETag, as the
//!   service's node hashes include priorities; data without priorities hashes as plain JSON);
//!   `null_etag` for a missing node. They are sent when asked for with
//!   `X-Firebase-ETag: true` and on every response to a conditional request (`if-match` PUT or
//!   DELETE, `if-none-match` GET), asked for or not, as the service does.
//! - A read whose response would pass the response-size limit (256 MB, lowered with the
//!   `limits` lever) is a 400 with the service's text, "The data requested exceeds the maximum
//!   size that can be accessed with a single request." (shallow reads and queries included).
//! - A read's body shows the data as it was when the read arrived, however long the client
//!   takes to read it; writes meanwhile are not held up by it (a big read is sent from a
//!   snapshot, `streamed`).
//! - `X-Firebase-ETag: true` on PATCH, `if-match` on GET/POST/PATCH, `if-none-match` on anything
//!   but GET, and query parameters (`shallow`, `orderBy`, ...) on anything but GET are 400s.
//! - A 412 always carries the current value as its body, even under `print=silent`.
//! - `print=silent` gives 204 on every method, DELETE included.
//! - Query results are a JSON object; a query on a primitive returns the primitive, on a missing
//!   node `null`. Queries on event streams are a 400.
//! - Overlapping PATCH paths (`"a"` and `"a/b"`) are a 400.
//! - Arrays are stored as objects keyed by index and read back as arrays when more than half of
//!   the indexes up to the largest are present (as RTDB does).
//!
//! # Test levers (`/.emulator/...`; JSON in and out; not counted, not delayed, not denied)
//! - `GET /.emulator/requests` -> `{"total": n, "byMethod": {"GET": n}, "byPath": {"GET /a/b": n},
//!   "storeSteps": n, "connections": n, "streamedReads": n}` (storeSteps: the store work data
//!   requests did, binary-search steps plus entries moved, a stable measure of their cost;
//!   connections: the connections that carried a data request, so reuse shows; streamedReads:
//!   the reads whose body was streamed from a snapshot, see the `limits` lever; `refused`: the first 100 writes
//!   answered 4xx other than 412 — `{"method", "path", "status"}`, 401 a rules denial, plus
//!   `"reason": "tooBig"` for `WRITE_TOO_BIG` — and `refusedTotal` all of them; `triggers`:
//!   `{"disabled": n, "enabled": n, "disabledByPath": {"PATCH /a": n}}`, the writes sent with
//!   `disableTriggers=true` and without it, as they arrived)
//!   (every data request, whatever its outcome; paths without `.json` and `ns`);
//!   `DELETE /.emulator/requests` resets the counts.
//! - `PUT /.emulator/deny` `{"ns": "<namespace>", "paths": ["migrations/_lock"]}` replaces the deny
//!   rules of that namespace (`ns` omitted: every namespace; empty `paths`: remove). Any data
//!   request at, under or over a denied path gets 401 `{"error":"Permission denied"}`.
//!   `GET` shows the rules (`{"rules": {"<ns>": ["a/b"]}}`), `DELETE` clears them all.
//! - `PUT /.emulator/allow` `{"ns": "<namespace>", "paths": ["app"]}`: allow-list rules (same
//!   shape as deny): a data request in that namespace is allowed only at or under one of the
//!   paths; one over them (the root included) gets 401 `{"error":"Permission denied"}`, as
//!   rules that grant exactly `app/` would. Deny rules still apply inside. `GET`, `DELETE` as deny.
//! - `PUT /.emulator/auth` `{"tokens": ["<access token>", ...]}`: from then on a data request
//!   needs `Authorization: Bearer <one of them>` (empty list: accept anything again). `GET` ->
//!   `{"tokens": <how many>, "lastOverride": <last auth_variable_override or null>}` (never the
//!   tokens); `DELETE` clears them.
//! - `PUT /.emulator/latency` `{"ms": n}`: every data request waits n ms first. `GET` shows it.
//! - `PUT /.emulator/faults` `{"unavailableProbability": p}` (0..=1): each data request fails with
//!   503 `{"error": "..."}` with that probability before doing anything. `GET` shows it.
//! - `PUT /.emulator/outage` `{"ms": n, "mode": "drop", "ns": "<namespace>"}`: an outage of n ms
//!   from now: every data request (of any method) fails before doing anything — its connection
//!   is closed without an answer (`"drop"`, the default) or it gets 500 (`"500"`). With `ns`,
//!   only that namespace (one database of many) is down, the others serve; without it, every
//!   namespace. `GET` -> `{"remainingMs", "mode"}` of the every-namespace outage and
//!   `"namespaces": {"<ns>": {"remainingMs", "mode"}}` of those on one; `DELETE` ends them all.
//! - `PUT /.emulator/lost-responses` `{"skip": k, "count": n, "probability": p, "mode": "drop"}`:
//!   "write applied but response lost". Of the successful writes (PUT, PATCH, POST, DELETE) from
//!   now on, the first `k` (default 0) pass; then each of the next `n` (default 1; `null`: all)
//!   loses its response with probability `p` (default 1): the write is applied, then the
//!   connection is closed (`"drop"`) or answered 500 (`"500"`). `GET` shows the settings and
//!   `lost`, how many responses were lost; `DELETE` turns it off.
//! - `PUT /.emulator/delay` `{"path": "a/b", "ms": n, "method": "PUT", "ns": "<namespace>",
//!   "count": k}`: the next `k` (default 1; `null`: all) data requests with that method (default:
//!   any), namespace (default: any) and exact path wait n ms (after the latency lever), then are
//!   served as usual — a request held up on the way. `GET` shows the settings, `delayed` (so
//!   far) and `waiting` (now); `DELETE` turns it off and lets the requests waiting now go on
//!   at once (a request held up until the test says so: set `ms` long, then `DELETE`).
//! - `PUT /.emulator/journal`: from now on every data request (and `/.settings/rules.json`
//!   request, path `/.settings/rules`) is journaled (a new journal);
//!   `GET` -> `{"on", "entries": [{"seq", "at", "doneAt", "method", "ns", "path", "peer",
//!   "status", "disableTriggers", "writeSizeLimit"}], "overflow"}`: arrival and answer in
//!   server ms, the path as `/a/b`, the peer address of the request's connection (the client),
//!   the answer's status (`null`: the connection was dropped, or no answer yet), whether a
//!   write was sent with `disableTriggers=true`, the `writeSizeLimit` it asked for (`null`:
//!   none); at most 100000 entries, later requests only
//!   counted in `overflow`. `DELETE` turns it off and clears it.
//! - `PUT /.emulator/clock` `{"offsetMs": n}`: shifts the server clock (server timestamps, push
//!   ids). `GET` -> `{"offsetMs": n, "now": <server ms>}`.
//! - `PUT /.emulator/keepalive` `{"ms": n}`: keep-alive interval of event streams opened from
//!   then on (default 30000).
//! - `PUT /.emulator/streams` `{"refuse": 400, "closeAfterMs": n}`: event streams are refused with
//!   that HTTP status (as a proxy that does not pass them would; `null`: served), and streams
//!   opened from then on are ended by the server after n ms (`null`: never). `GET` shows the
//!   settings, `DELETE` clears them. Events on a stream arrive half the latency lever's delay
//!   after the write (one way of a round trip).
//! - `PUT /.emulator/limits` `{"responseBytes": n, "streamAboveBytes": m}` (either or both):
//!   reads whose response would pass n bytes are refused (default 268435456, the service's
//!   256 MB), so tests can use small data; plain reads (no `shallow`, no query, no `print`) of
//!   an object whose JSON passes about m bytes (default 4194304) are streamed from a snapshot
//!   taken when the read arrives (`streamed`: the same bytes, memory bounded, writers not held
//!   up while it is sent), so tests can stream small data. `GET` shows both.
//! - `PUT /.emulator/write-size-limit` `{"default": "large", "ns": "<namespace>", "budgets":
//!   {"tiny": 1000, "small": 5000, "medium": 20000, "large": 50000}}`: the default write-size
//!   limit of that namespace (`ns` omitted: of every namespace without its own; `ns` needs a
//!   `default`), and the bytes each level allows (for every namespace; levels not named keep
//!   theirs), each part optional. `GET` -> `{"default": "<level>", "namespaces": {"<ns>":
//!   "<level>"}, "budgets": {...}}`; `DELETE` goes back to `unlimited` everywhere and the
//!   default budgets.
//! - `GET /.emulator/export` -> every namespace's data `{"<ns>": <tree>}` (priorities kept,
//!   as `format=export`).
//! - `POST /.emulator/reset`: clears all data, all levers and the counts; the rules go back to
//!   those the emulator started with.

mod data;
mod delay;
mod etag;
mod journal;
mod levers;
mod response;
mod security;
mod settings;
mod sse;
mod state;
mod store;
mod streamed;
mod triggers;
mod trim;
mod write_size;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::{Error, Result};
use state::{stopped, State};

pub use crate::rules::firebase_json::RulesFile;
pub use data::DEFAULT_NAMESPACE;
pub use security::{rules_file_beside, CachedStoreData, StoreData};
pub use state::{Refused, TOO_BIG_REASON};
pub(crate) use store::{skip_json, skip_json_str, unquote_json};
pub use store::{write_json, write_json_plain, NodeRef, Obj, Snapshot};
pub use triggers::TriggerCounts;
pub use write_size::{WriteBudgets, WriteSizeLevel, WRITE_TOO_BIG};

#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    pub host: String,
    /// 0 = any free port.
    pub port: u16,
    /// Initial data: `{ "<namespace>": <tree>, ... }`.
    pub import: Option<Value>,
    /// Initial data from a JSON file of the same shape, parsed as it is read (any size); rules
    /// saved beside it (see [`rules_file_beside`]) are loaded too.
    pub import_file: Option<std::path::PathBuf>,
    /// Security Rules files, each for one namespace or for every namespace without its own;
    /// applied after those saved beside the import file.
    pub rules: Vec<RulesFile>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            host: "127.0.0.1".into(),
            port: 0,
            import: None,
            import_file: None,
            rules: Vec::new(),
        }
    }
}

/// A running emulator. Dropping it does not stop it; call `stop()`.
pub struct Emulator {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Build the initial store from `{ "<ns>": <tree> }`, validating keys and depth.
fn import(data: &Value) -> Result<store::Store> {
    let mut st = store::Store::new();
    let Value::Object(dbs) = data else {
        return Err(Error::config(
            "Emulator import must be a JSON object of namespaces: {\"<namespace>\": <data>}",
        ));
    };
    let now = crate::rtdb::Clock::now_ms(&crate::rtdb::SystemClock);
    for (ns, tree) in dbs {
        let mut parsed = store::parse_value(tree, 0)
            .map_err(|e| Error::config(format!("Emulator import, namespace {ns:?}: {}", e.0)))?;
        if let Some(n) = &mut parsed.node {
            store::resolve(n, None, now);
        }
        st.set(ns, &[], parsed.node);
    }
    Ok(st)
}

/// Build the initial store from a JSON file `{ "<ns>": <tree> }`, parsed as it is read.
fn import_file(path: &std::path::Path) -> Result<store::Store> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("Cannot read {}", path.display()), e))?;
    let now = crate::rtdb::Clock::now_ms(&crate::rtdb::SystemClock);
    if let Some(st) = store::import_reader_fast(f, now) {
        return Ok(st);
    }
    // Refused: read again the way that words the error (line and column included).
    let f = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("Cannot read {}", path.display()), e))?;
    store::import_reader(f, now).map_err(|e| {
        Error::config(format!(
            "Emulator import {}: {}",
            path.display(),
            e.0.trim_start_matches("Invalid data; ")
        ))
    })
}

impl Emulator {
    pub async fn start(opts: EmulatorOptions) -> Result<Emulator> {
        trim::own_pages_for_large_blocks();
        let st = match (&opts.import, &opts.import_file) {
            (Some(data), _) => import(data)?,
            (None, Some(path)) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || import_file(&path))
                    .await
                    .map_err(|e| Error::internal(format!("The import failed: {e}")))??
            }
            (None, None) => store::Store::new(),
        };
        let mut rules = security::RulesSet::default();
        if let Some(file) = &opts.import_file {
            for (ns, r) in security::read_saved(file)? {
                rules.set(ns.as_deref(), r);
            }
        }
        for f in &opts.rules {
            rules.set(f.namespace.as_deref(), crate::rules::Rules::load(&f.path)?);
        }
        rules.keep_as_initial();
        let (listener, addr) = bind(&opts.host, opts.port).await.map_err(|e| {
            Error::io(
                format!("Cannot start the emulator on {}:{}", opts.host, opts.port),
                e,
            )
        })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let state = Arc::new(State::new(st, shutdown_rx));
        *state.rules() = rules;
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Emulator {
            addr,
            state,
            shutdown,
            task,
        })
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://host:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// `host:port`, the value for `FIREBASE_DATABASE_EMULATOR_HOST`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }
    /// Every namespace's data: `{ "<namespace>": <tree> }`.
    pub fn export(&self) -> Value {
        self.state.store.lock().expect("store lock").export()
    }
    /// Write every namespace's data as JSON to `w`, straight from the store (for an export
    /// file: `crate::private_files::replace`).
    pub fn write_export(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        self.state.store.lock().expect("store lock").write_export(w)
    }
    /// Set the Security Rules of `namespace` (`None`: of every namespace without its own), as
    /// `PUT /.settings/rules.json` does.
    pub fn set_rules(&self, namespace: Option<&str>, rules: impl Into<Arc<crate::rules::Rules>>) {
        self.state.rules().set(namespace, rules);
    }
    /// Set the default write-size limit of `namespace` (`None`: of every namespace without its
    /// own), as the `write-size-limit` lever does; `budgets`, when given, replace the bytes each
    /// level allows.
    pub fn set_write_size_limit(
        &self,
        namespace: Option<&str>,
        level: WriteSizeLevel,
        budgets: Option<WriteBudgets>,
    ) {
        let mut l = self.state.levers();
        l.write_size.set_default(namespace, level);
        if let Some(b) = budgets {
            l.write_size.budgets = b;
        }
    }
    /// The rules of the namespaces that have some, in the form saved beside an export (see
    /// [`rules_file_beside`]): `{"<namespace or *>": "<rules text>"}`; `None` without rules.
    pub fn saved_rules(&self) -> Option<String> {
        security::saved_text(&self.state.rules())
    }
    /// Parse JSON from `reader` as it is read (any size) and write it at `path` in namespace
    /// `ns`, replacing what is there, as one PUT would (keys, depth and strings validated,
    /// server values resolved). For loading data streamed from elsewhere, e.g. the body of
    /// `crate::backup::walk` over a production subtree.
    pub async fn import_json<R: std::io::Read + Send + 'static>(
        &self,
        ns: &str,
        path: &str,
        reader: R,
    ) -> Result<()> {
        self.import_json_read(ns, path, reader)
            .await
            .map_err(|(e, _)| e)
    }
    /// `import_json`; an error says whether the reader failed (rather than the data being
    /// refused).
    async fn import_json_read<R: std::io::Read + Send + 'static>(
        &self,
        ns: &str,
        path: &str,
        reader: R,
    ) -> std::result::Result<(), (Error, bool)> {
        if !crate::rtdb::database_url::valid_namespace(ns) {
            return Err((
                Error::config(format!(
                    "Invalid namespace {ns:?}: use letters, digits, '-' and '_'"
                )),
                false,
            ));
        }
        let segs = crate::rtdb::path::segments(path).map_err(|e| (e, false))?;
        let depth = segs.len();
        let parsed = tokio::task::spawn_blocking(move || store::parse_reader(reader, depth))
            .await
            .map_err(|e| (Error::internal(format!("The import failed: {e}")), false))?
            .map_err(|e| {
                let read = e.is_read_failure();
                let msg = format!("Import at /{}: {}", segs.join("/"), e.0);
                (Error::config(msg), read)
            })?;
        let mut node = parsed.node;
        let mut st = self.state.store.lock().expect("store lock");
        if let Some(n) = &mut node {
            let now = self.state.levers.lock().expect("levers lock").now_ms();
            store::resolve(n, st.node(ns, &segs), now);
        }
        st.set(ns, &segs, node);
        Ok(())
    }
    /// `import_json` from an async stream of JSON pieces (e.g. `crate::backup::walk` of a
    /// subtree elsewhere): parsed as the pieces arrive, so memory holds the tree being built and
    /// a few pieces. A failed stream fails the import and changes nothing.
    pub async fn import_stream<S>(&self, ns: &str, path: &str, stream: S) -> Result<()>
    where
        S: futures_util::Stream<Item = Result<bytes::Bytes>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<bytes::Bytes>>(4);
        let feed = tokio::spawn(async move {
            use futures_util::StreamExt;
            let mut stream = std::pin::pin!(stream);
            while let Some(piece) = stream.next().await {
                let failed = piece.is_err();
                if tx.send(piece).is_err() || failed {
                    return;
                }
            }
        });
        let failure = std::sync::Arc::new(std::sync::Mutex::new(None::<Error>));
        let reader = PieceReader {
            rx,
            cur: bytes::Bytes::new(),
            failure: failure.clone(),
        };
        let res = self.import_json_read(ns, path, reader).await;
        feed.abort();
        let stream_error = failure.lock().expect("failure lock").take();
        match (stream_error, res) {
            // The stream's own error when the parse stopped on it (the parse reads ahead, so
            // it may have seen the failure after data it refused first).
            (Some(e), Ok(()) | Err((_, true))) => Err(e),
            (_, res) => res.map_err(|(e, _)| e),
        }
    }
    /// A read-only view of the stored data, for in-process consumers that walk it without
    /// copying (a rehearsal's diff). Sendable to a blocking thread.
    pub fn view(&self) -> StoreView {
        StoreView(self.state.clone())
    }
    /// The data requests counted so far (what `GET /.emulator/requests` shows), then reset.
    pub fn take_request_counts(&self) -> RequestCounts {
        self.view().take_request_counts()
    }
    /// Bytes of memory the stored data takes (allocations as glibc sizes them).
    pub fn data_heap_bytes(&self) -> usize {
        self.state.store.lock().expect("store lock").heap_bytes()
    }
    /// Stop accepting, close streams, wait for in-flight requests.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(true);
        self.task
            .await
            .map_err(|e| Error::internal(format!("The emulator's server task failed: {e}")))
    }
}

/// See [`Emulator::view`].
#[derive(Clone)]
pub struct StoreView(Arc<State>);

impl StoreView {
    /// Run `f` on the value at `segs` in `ns` (None when missing) under the store's lock:
    /// requests wait meanwhile, so call it off the async threads (`spawn_blocking`).
    pub fn read<R>(
        &self,
        ns: &str,
        segs: &[String],
        f: impl FnOnce(Option<NodeRef<'_>>) -> R,
    ) -> R {
        let st = self.0.store.lock().expect("store lock");
        f(st.node(ns, segs))
    }
    /// An owned copy of the value at `segs` in `ns` (None when missing), taken under the store's
    /// lock in O(chunks at its top level) and read after it is released while writers go on
    /// (it shares the store's chunks; a write afterwards copies the chunks it changes).
    pub fn snapshot(&self, ns: &str, segs: &[String]) -> Option<Snapshot> {
        self.0.store.lock().expect("store lock").snapshot(ns, segs)
    }
    /// See [`Emulator::take_request_counts`].
    pub fn take_request_counts(&self) -> RequestCounts {
        let mut l = self.0.levers();
        let counts = RequestCounts {
            total: l.total,
            by_method: std::mem::take(&mut l.by_method),
            by_path: std::mem::take(&mut l.by_path),
            refused: std::mem::take(&mut l.refused),
            refused_total: l.refused_total,
            triggers: std::mem::take(&mut l.triggers),
        };
        l.reset_counts();
        counts
    }
}

/// Data requests counted by method (`"GET"`) and by method and path (`"GET /a/b"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    pub by_method: std::collections::BTreeMap<String, u64>,
    pub by_path: std::collections::BTreeMap<String, u64>,
    /// Writes refused (4xx but 412; 401: denied by the rules; `reason` [`TOO_BIG_REASON`]:
    /// over the write-size limit): the first ones, and how many.
    pub refused: Vec<Refused>,
    pub refused_total: u64,
    /// Writes by whether they were sent with `disableTriggers=true`.
    pub triggers: TriggerCounts,
}

/// Accept connections until shutdown, then wait for every connection to finish.
pub async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut shutdown = state.shutdown.clone();
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, peer)) = accepted else {
            // Out of file descriptors and the like: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        conns.spawn(async move {
            let mut shutdown = state.shutdown.clone();
            let svc_state = state.clone();
            // Connections that carry data requests are counted (keep-alive reuse shows there).
            let carried_data = std::sync::atomic::AtomicBool::new(false);
            let svc = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(journal::Peer(peer));
                if !req.uri().path().starts_with("/.emulator")
                    && !carried_data.swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    svc_state.levers().connections += 1;
                }
                handle(svc_state.clone(), req)
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut shutdown) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    while conns.join_next().await.is_some() {}
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> response::Reply {
    let path = req.uri().path().to_string();
    if path == "/.emulator" || path.starts_with("/.emulator/") {
        return Ok(levers::handle(&state, req).await);
    }
    if path == settings::RULES_PATH {
        let seq = data::arrive(&state, &req);
        let res = settings::handle(&state, req).await;
        data::answered(&state, seq, Some(res.status().as_u16()));
        return Ok(res);
    }
    data::handle(&state, req).await
}

/// Bind and start serving; returns the bound address and the serving task.
pub async fn bind(host: &str, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((host, port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A blocking reader over pieces sent from an async stream (for `import_stream`).
struct PieceReader {
    rx: std::sync::mpsc::Receiver<Result<bytes::Bytes>>,
    cur: bytes::Bytes,
    failure: std::sync::Arc<std::sync::Mutex<Option<Error>>>,
}

impl std::io::Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.recv() {
                Ok(Ok(piece)) => self.cur = piece,
                Ok(Err(e)) => {
                    let msg = e.message.clone();
                    *self.failure.lock().expect("failure lock") = Some(e);
                    return Err(std::io::Error::other(msg));
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// `"a/b"` -> `["a", "b"]`, for the emulator's unit tests.
#[cfg(test)]
pub(crate) fn test_segs(p: &str) -> Vec<String> {
    p.split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// The emulator's boundary: it serves the REST protocol and shares only the protocol's pieces
/// with the client (`rtdb`'s key rules, ordering, push ids, namespaces, ETag and clock), plus
/// the error type and the rules engine it enforces. It never reaches into the lock, the runner,
/// the CLI or the backups, so it can serve tests and rehearsals without them.
#[cfg(test)]
mod boundary {
    const ALLOWED: &[&str] = &[
        "crate::emulator",
        "crate::rules",
        "crate::Error",
        "crate::Result",
        "crate::error",
        "crate::rtdb::order",
        "crate::rtdb::path",
        "crate::rtdb::push_id",
        "crate::rtdb::PushIdGenerator",
        "crate::rtdb::database_url::valid_namespace",
        "crate::rtdb::NULL_ETAG",
        "crate::rtdb::Clock",
        "crate::rtdb::SystemClock",
    ];

    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src/emulator") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn imports_only_the_protocol() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/emulator");
        let mut files = Vec::new();
        sources(&dir, &mut files);
        let mut outside = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read source");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let mut rest = code;
                while let Some(at) = rest.find("crate::") {
                    let used = &rest[at..];
                    // This check's own string literals.
                    if rest[..at].ends_with('"') {
                        rest = &used[7..];
                        continue;
                    }
                    let path: String = used
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    // `use crate::{Error, Result}`: the names inside the braces.
                    let names: Vec<String> = if path == "crate::" && used[7..].starts_with('{') {
                        let inner = used[8..].split('}').next().unwrap_or_default();
                        inner
                            .split(',')
                            .map(|s| format!("crate::{}", s.trim()))
                            .collect()
                    } else {
                        vec![path]
                    };
                    for name in names {
                        if !ALLOWED.iter().any(|a| name.starts_with(a)) {
                            outside.push(format!("{}:{}: {name}", file.display(), n + 1));
                        }
                    }
                    rest = &used[7..];
                }
            }
        }
        assert!(
            outside.is_empty(),
            "the emulator reaches past the protocol: {outside:#?}"
        );
    }
}
