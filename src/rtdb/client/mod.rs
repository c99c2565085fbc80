//! The REST client (`Client`): every method validates its path before any request, sends auth
//! as a Bearer header only, retries transient failures per `RetryPolicy`, and maps HTTP errors to
//! `Error`s with stable codes.
//!
//! - `mod.rs` (this file): the facade — options, result types and one method per REST operation.
//! - `transport`: requests, one HTTP exchange, retries, redirects, HTTP-status -> error mapping.
//! - `settle`: writes whose outcome is unknown, settled by reading the node back.
//! - `gate`: `WriteGate`, what every attempt of a gated client's writes must pass (the fence).
//! - `stream`: event streams and streamed reads.
//! - `chunked`: deleting a node too big for one write in chunks, and the error for a write too
//!   big to split.
//! - `listing`: a shallow listing read child by child as it arrives (`Client::list_children`).

mod chunked;
mod gate;
mod listing;
mod settle;
mod stream;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use serde_json::Value;

use super::retry::RetryObserver;
use super::unindexed::Unindexed;
use super::{path, Auth, Clock, DatabaseUrl, Query, RetryPolicy, ServerClock};
use crate::log::LineFn;
use crate::{Error, ErrorCode, Result};
use settle::{matches_written, Settled};
use transport::{norm, show, truncate, Req, WriteError, ETAG_REQUEST_HEADER};

pub use chunked::{ChunkedDelete, ChunkingOptions};
pub use gate::{Gate, WriteGate};

/// How a read returns the data: as a plain GET does, or with priorities (`format=export`: a
/// node's `.priority`, a primitive with one as `{".value": v, ".priority": p}`), which is what
/// a copy needs to be lossless. Same requests either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Plain,
    Export,
}

impl Format {
    fn apply(self, req: Req) -> Req {
        match self {
            Format::Plain => req,
            Format::Export => req.param("format", "export"),
        }
    }
}
pub use stream::{EventStream, StreamEvent};

/// Options for building a client.
#[derive(Clone)]
pub struct ClientOptions {
    pub url: DatabaseUrl,
    pub auth: Auth,
    pub retry: RetryPolicy,
    /// The response deadline: how long a request waits for the server to answer, and for each
    /// further piece of the body (an inactivity bound, so large reads that keep flowing are fine).
    /// Event streams wait this long for their first answer only.
    pub request_timeout: Duration,
    /// The connect deadline (`None`: `DEFAULT_CONNECT_TIMEOUT`, at most `request_timeout`).
    pub connect_timeout: Option<Duration>,
    /// Hears every retry (the CLI prints a line on stderr while it retries).
    pub on_retry: Option<RetryObserver>,
    /// Wall clock used for the server-time estimate (injectable for clock-skew tests).
    pub clock: Arc<dyn Clock>,
    /// firebase-admin's `databaseAuthVariableOverride`, sent as `auth_variable_override` on every
    /// request: `None` = admin access; an object = that `auth` under Security Rules; `Null` =
    /// unauthenticated.
    pub auth_variable_override: Option<Value>,
}

/// The default response deadline (`network.responseTimeout`).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
/// The default connect deadline (`network.connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A value with the ETag it was read or written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub value: Value,
    pub etag: String,
}

/// Outcome of a conditional PUT/DELETE.
#[derive(Debug, Clone, PartialEq)]
pub enum CasOutcome {
    /// The write happened. `value` is the echo of what was written (server values resolved;
    /// `Value::Null` for a DELETE), `etag` the node's new ETag.
    Written(Versioned),
    /// 412: nothing written; the node's current value and ETag.
    Mismatch(Versioned),
}

/// Firebase RTDB REST client. Cheap to clone (shares the connection pool and token cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Carried by every write request this client builds (see `gated`).
    gate: Option<Gate>,
    /// What its queries do when refused for want of an index (see `with_unindexed`).
    pub(crate) unindexed: Option<Arc<Unindexed>>,
    /// Every write this client builds asks the database not to fire Cloud Functions triggers
    /// (`disableTriggers=true`; see `with_disable_triggers`).
    disable_triggers: bool,
    /// Where the client's notices go (a node deleted in chunks: `write.chunked`); see
    /// `with_notices`.
    notices: Option<LineFn>,
}

struct Inner {
    opts: ClientOptions,
    /// Requests with a response deadline (`read_timeout`).
    http: reqwest::Client,
    /// Streaming requests (event streams wait for events indefinitely; streamed reads bound
    /// their own idle time).
    http_stream: reqwest::Client,
    server_clock: ServerClock,
    /// `auth_variable_override` as sent (compact JSON).
    auth_override: Option<String>,
    /// HTTP requests sent (every attempt and redirect), for a run's report.
    sent: std::sync::atomic::AtomicU64,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        // reqwest (rustls, `ring`) and the token services' clients (`rtdb::auth`, also reqwest)
        // pass an explicit ring provider to rustls, so no process-wide default provider is
        // needed; nothing here can hit rustls' "no provider" panic. Redirects are followed by hand (see `send`) so the Bearer header never goes to a
        // host it was not meant for.
        let connect_timeout = opts
            .connect_timeout
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            .min(opts.request_timeout)
            .max(Duration::from_millis(100));
        let build = |read_timeout: Option<Duration>| {
            let mut b = reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("msr-firebase/", env!("CARGO_PKG_VERSION")));
            if let Some(t) = read_timeout {
                b = b.read_timeout(t);
            }
            b.build()
                .map_err(|e| Error::internal(format!("Could not build the HTTP client: {e}")))
        };
        let http = build(Some(opts.request_timeout))?;
        let http_stream = build(None)?;
        let server_clock = ServerClock::new(opts.clock.clone());
        let auth_override = opts.auth_variable_override.as_ref().map(|v| v.to_string());
        Ok(Client {
            inner: Arc::new(Inner {
                opts,
                http,
                http_stream,
                server_clock,
                auth_override,
                sent: Default::default(),
            }),
            gate: None,
            unindexed: None,
            disable_triggers: false,
            notices: None,
        })
    }
    /// How many HTTP requests this client (and its gated copies) has sent.
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
    pub(super) fn count_request(&self) {
        self.inner
            .sent
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    /// This client (same connections, credentials and server clock) with `gate` on every write
    /// it makes: each attempt of each write — first send, retries, re-sends after an unknown
    /// outcome — is sent only while the gate admits it and waits for its answer no longer than
    /// the gate allows (see `WriteGate`). Reads are never gated.
    pub fn gated(&self, gate: Gate) -> Client {
        Client {
            gate: Some(gate),
            ..self.clone()
        }
    }
    /// This client (same connections, gate and credentials) answering the queries the database
    /// refuses for want of an index as `policy` says: on the client (firebase-admin's way, with
    /// one notice per location and ordering) or with an error naming the `.indexOn` to add.
    /// Without a policy such a query fails with that error.
    pub fn with_unindexed(&self, policy: Arc<Unindexed>) -> Client {
        Client {
            unindexed: Some(policy),
            ..self.clone()
        }
    }
    /// This client with every write it makes sending `disableTriggers=true` (`disabled`), or
    /// none of them (the database fires its Cloud Functions triggers as for any write).
    pub fn with_disable_triggers(&self, disabled: bool) -> Client {
        Client {
            disable_triggers: disabled,
            ..self.clone()
        }
    }
    /// Whether this client's writes send `disableTriggers=true`.
    pub fn disables_triggers(&self) -> bool {
        self.disable_triggers
    }
    /// This client with its notices (log lines: a node deleted in chunks) going to `notices`
    /// (the runner's log for the scripts' `db`); without, they are dropped.
    pub fn with_notices(&self, notices: LineFn) -> Client {
        Client {
            notices: Some(notices),
            ..self.clone()
        }
    }
    /// A client with the same options on connections of its own (nothing shared but the
    /// credentials; no gate; the same trigger setting and notices): for work on another
    /// runtime, e.g. releasing the lock as the process exits.
    pub fn detached(&self) -> Result<Client> {
        Ok(Client {
            disable_triggers: self.disable_triggers,
            notices: self.notices.clone(),
            ..Client::new(self.inner.opts.clone())?
        })
    }
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.opts.url
    }
    /// Estimate of the server's clock (ms since epoch), learned from responses.
    pub fn server_clock(&self) -> &ServerClock {
        &self.inner.server_clock
    }
    /// GET: the value at `path` (`Value::Null` when missing).
    pub async fn get(&self, path: &str) -> Result<Value> {
        let p = norm(path)?;
        let r = self.read(Req::new(Method::GET, &p)).await?;
        r.json()
    }
    /// GET with `X-Firebase-ETag: true`.
    pub async fn get_versioned(&self, path: &str) -> Result<Versioned> {
        let p = norm(path)?;
        self.get_versioned_norm(&p).await
    }
    /// GET `shallow=true`.
    pub async fn get_shallow(&self, path: &str) -> Result<Value> {
        let p = norm(path)?;
        let r = self
            .read(Req::new(Method::GET, &p).param("shallow", "true"))
            .await?;
        r.json()
    }
    /// A query; the result sorted as RTDB orders it (client side), as `(key, value)` pairs.
    pub async fn query(&self, path: &str, query: &Query) -> Result<Vec<(String, Value)>> {
        let p = norm(path)?;
        let mut req = Req::new(Method::GET, &p);
        for (k, v) in query.to_params() {
            req = req.param(k, &v);
        }
        let value = self.read(req).await?.json()?;
        if value.is_null() {
            return Ok(Vec::new());
        }
        Ok(query.apply(&value))
    }
    /// GET with query parameters; the body as the server sent it (JSON text, not parsed).
    pub async fn get_raw(&self, path: &str, query: &Query) -> Result<Bytes> {
        self.get_raw_as(path, query, Format::Plain).await
    }
    /// `get_raw` in a `Format` (`Export`: with priorities).
    pub async fn get_raw_as(&self, path: &str, query: &Query, format: Format) -> Result<Bytes> {
        let p = norm(path)?;
        let mut req = format.apply(Req::new(Method::GET, &p));
        for (k, v) in query.to_params() {
            req = req.param(k, &v);
        }
        Ok(self.read(req).await?.body)
    }
    /// GET `<path>/.priority`: the node's priority (`Value::Null`: none, or no node).
    pub async fn get_priority(&self, path: &str) -> Result<Value> {
        let p = norm(path)?;
        let at = if p.is_empty() {
            ".priority".to_string()
        } else {
            format!("{p}/.priority")
        };
        self.read(Req::new(Method::GET, &at)).await?.json()
    }
    /// The database's Security Rules as stored (`GET /.settings/rules.json`: the text, comments
    /// kept). One request, with the client's credentials and never its `auth_variable_override`:
    /// only an admin may read the rules.
    pub async fn get_rules_text(&self) -> Result<String> {
        let mut req = Req::new(Method::GET, ".settings/rules");
        req.as_admin = true;
        let body = self.read(req).await?.body;
        String::from_utf8(body.to_vec()).map_err(|_| {
            Error::new(
                ErrorCode::BadRequest,
                format!("The rules of {} are not UTF-8 text", self.url()),
            )
        })
    }
    /// GET `shallow=true`; the body as the server sent it.
    pub async fn get_shallow_raw(&self, path: &str) -> Result<Bytes> {
        let p = norm(path)?;
        Ok(self
            .read(Req::new(Method::GET, &p).param("shallow", "true"))
            .await?
            .body)
    }
    /// PUT of JSON text (`print=silent`). Without server values (`".sv"`) the write is
    /// idempotent and retried like a read when its outcome is unknown; with them it is settled
    /// by reading the node back, as `set` does.
    pub async fn set_raw(&self, path: &str, json: Bytes) -> Result<()> {
        let p = norm(path)?;
        let mut req = self.write_req(Method::PUT, &p).param("print", "silent");
        req.body = Some(json.clone());
        match self.write_raw(req.clone(), &json).await {
            Ok(()) => Ok(()),
            // `set(null)` is a delete: too big for one request, it is deleted in chunks.
            Err(WriteError::Failed(e))
                if e.code == ErrorCode::WriteTooBig && json.trim_ascii() == b"null" =>
            {
                self.remove_after_refusal(&p, 1).await
            }
            Err(WriteError::Failed(e)) if e.code == ErrorCode::WriteTooBig => {
                Err(self.too_big_to_split("set()", &p, e).await)
            }
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let value = parse_body(&json)?;
                self.resettle(req, &p, why, |current| matches_written(&value, current))
                    .await
                    .map(|_| ())
            }
        }
    }
    /// PATCH of JSON text (an object of paths to values, `print=silent`); the keys are checked
    /// by the server. Retried or settled like `set_raw`.
    pub async fn update_raw(&self, path: &str, json: Bytes) -> Result<()> {
        let p = norm(path)?;
        let mut req = self.write_req(Method::PATCH, &p).param("print", "silent");
        req.body = Some(json.clone());
        match self.write_raw(req.clone(), &json).await {
            Ok(()) => Ok(()),
            Err(WriteError::Failed(e)) if e.code == ErrorCode::WriteTooBig => {
                Err(self.too_big_to_split("update()", &p, e).await)
            }
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let Value::Object(patch) = parse_body(&json)? else {
                    return Err(self.outcome_unknown("PATCH", &p, &why));
                };
                self.resettle(req, &p, why, |current| patch_landed(&patch, current))
                    .await
                    .map(|_| ())
            }
        }
    }
    /// PUT with `print=silent` (no echo).
    pub async fn set(&self, path: &str, value: &Value) -> Result<()> {
        let p = norm(path)?;
        let req = self
            .write_req(Method::PUT, &p)
            .param("print", "silent")
            .json_body(value)?;
        match self
            .idempotent_write(req, &p, |current| matches_written(value, current))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::WriteTooBig && value.is_null() => {
                self.remove_after_refusal(&p, 1).await
            }
            Err(e) if e.code == ErrorCode::WriteTooBig => {
                Err(self.too_big_to_split("set()", &p, e).await)
            }
            Err(e) => Err(e),
        }
    }
    /// PUT returning the echo (server values resolved).
    pub async fn set_echo(&self, path: &str, value: &Value) -> Result<Value> {
        let p = norm(path)?;
        let req = self.write_req(Method::PUT, &p).json_body(value)?;
        match self
            .idempotent_write(req, &p, |current| matches_written(value, current))
            .await?
        {
            Settled::Answered(r) => r.json(),
            Settled::Landed(current) => Ok(current),
        }
    }
    /// Conditional PUT (`if-match: etag`; `NULL_ETAG` = create only if absent).
    pub async fn put_if_match(&self, path: &str, value: &Value, etag: &str) -> Result<CasOutcome> {
        let p = norm(path)?;
        let body = Bytes::from(
            serde_json::to_vec(value)
                .map_err(|e| Error::internal(format!("JSON encoding: {e}")))?,
        );
        self.conditional(Method::PUT, &p, Some((body, value)), etag)
            .await
    }
    /// Conditional DELETE.
    pub async fn delete_if_match(&self, path: &str, etag: &str) -> Result<CasOutcome> {
        let p = norm(path)?;
        self.conditional(Method::DELETE, &p, None, etag).await
    }
    /// POST: a new child with a time-ordered push id; returns the id.
    pub async fn push(&self, path: &str, value: &Value) -> Result<String> {
        let p = norm(path)?;
        let req = self.write_req(Method::POST, &p).json_body(value)?;
        match self.write(req).await {
            Ok(r) => {
                let v = r.json()?;
                match v.get("name").and_then(Value::as_str) {
                    Some(name) => Ok(name.to_string()),
                    None => Err(Error::new(
                        ErrorCode::BadRequest,
                        format!(
                            "POST to {} answered without a push id: {}",
                            self.at(&p),
                            truncate(&v.to_string())
                        ),
                    )),
                }
            }
            Err(WriteError::Failed(e)) => Err(e),
            // The push id is chosen by the server: nothing to check against.
            Err(WriteError::Unknown(why)) => Err(self.outcome_unknown("POST", &p, &why)),
        }
    }
    /// PATCH with `print=silent`; keys may be multi-segment (`"a/b"`), `null` deletes.
    pub async fn update(&self, path: &str, patch: &serde_json::Map<String, Value>) -> Result<()> {
        let p = norm(path)?;
        for key in patch.keys() {
            let segs = path::segments(key)?;
            if segs.is_empty() {
                return Err(Error::new(
                    ErrorCode::InvalidPath,
                    format!("Empty key \"{key}\" in an update of {}", show(&p)),
                ));
            }
            if p.split('/').filter(|s| !s.is_empty()).count() + segs.len() >= path::MAX_DEPTH {
                return Err(Error::new(
                    ErrorCode::InvalidPath,
                    format!(
                        "Update key \"{key}\" under {} is too deep (max depth {})",
                        show(&p),
                        path::MAX_DEPTH - 1
                    ),
                ));
            }
        }
        let body = Value::Object(patch.clone());
        let req = self
            .write_req(Method::PATCH, &p)
            .param("print", "silent")
            .json_body(&body)?;
        match self
            .idempotent_write(req, &p, |current| patch_landed(patch, current))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::WriteTooBig => {
                Err(self.too_big_to_split("update()", &p, e).await)
            }
            Err(e) => Err(e),
        }
    }
    /// DELETE. A node too big for one request (`WRITE_TOO_BIG`) is deleted in chunks instead
    /// (see `remove_chunked`), with a `write.chunked` notice.
    pub async fn remove(&self, path: &str) -> Result<()> {
        let p = norm(path)?;
        match self
            .idempotent_write(self.write_req(Method::DELETE, &p), &p, Value::is_null)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::WriteTooBig => self.remove_after_refusal(&p, 1).await,
            Err(e) => Err(e),
        }
    }
    // ---- internals ----

    /// A write request, carrying this client's gate (and `disableTriggers=true` when this
    /// client sends it).
    fn write_req(&self, method: Method, p: &str) -> Req {
        let mut req = Req::new(method, p);
        req.gate = self.gate.clone();
        if self.disable_triggers {
            req = req.param("disableTriggers", "true");
        }
        req
    }

    /// A write of JSON text: repeated on an unknown outcome when it holds no server value.
    async fn write_raw(&self, req: Req, json: &[u8]) -> Result<(), WriteError> {
        let idempotent = !json.windows(5).any(|w| w == b"\".sv\"");
        self.attempts(&req, idempotent).await.map(|_| ())
    }

    async fn get_versioned_norm(&self, p: &str) -> Result<Versioned> {
        let r = self
            .read(Req::new(Method::GET, p).header(ETAG_REQUEST_HEADER, "true"))
            .await?;
        let etag = r.etag_required(&self.at(p))?;
        Ok(Versioned {
            value: r.json()?,
            etag,
        })
    }
}

/// Does `current` (read back at the updated node) hold every path of `patch`?
fn patch_landed(patch: &serde_json::Map<String, Value>, current: &Value) -> bool {
    patch.iter().all(|(k, v)| {
        let mut node = current;
        for seg in k.split('/').filter(|s| !s.is_empty()) {
            node = node.get(seg).unwrap_or(&Value::Null);
        }
        matches_written(v, node)
    })
}

fn parse_body(json: &[u8]) -> Result<Value> {
    serde_json::from_slice(json).map_err(|e| {
        Error::new(
            ErrorCode::BadRequest,
            format!("The data to write is not JSON: {e}"),
        )
    })
}
