//! The REST client. Every method validates its path before any request, sends auth as a Bearer
//! header only, retries transient failures per `RetryPolicy`, and maps HTTP errors to `Error`s
//! with stable codes (401 -> PERMISSION_DENIED naming the path, 404 -> DATABASE_NOT_FOUND, ...).
//!
//! INTERFACE CONTRACT (other modules code against these signatures).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Auth, Clock, DatabaseUrl, Query, RetryPolicy, ServerClock};
use crate::Result;

/// Options for building a client.
#[derive(Clone)]
pub struct ClientOptions {
    pub url: DatabaseUrl,
    pub auth: Auth,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Wall clock used for the server-time estimate (injectable for clock-skew tests).
    pub clock: Arc<dyn Clock>,
}

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

/// One event of an RTDB event stream (`Accept: text/event-stream`).
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Put { path: String, data: Value },
    Patch { path: String, data: Value },
    KeepAlive,
    Cancel(String),
    AuthRevoked,
}

/// A live event stream on one node.
pub struct EventStream {
    // implementation detail of client.rs
    pub(crate) rx: tokio::sync::mpsc::Receiver<Result<StreamEvent>>,
}

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<StreamEvent>> {
        self.rx.recv().await
    }
}

/// Firebase RTDB REST client. Cheap to clone (shares the connection pool and token cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    opts: ClientOptions,
    http: reqwest::Client,
    server_clock: ServerClock,
}

impl Client {
    pub fn new(opts: ClientOptions) -> Result<Client> {
        todo!("rtdb client: {}", opts.url)
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
        todo!("{path}")
    }
    /// GET with `X-Firebase-ETag: true`.
    pub async fn get_versioned(&self, path: &str) -> Result<Versioned> {
        todo!("{path}")
    }
    /// GET `shallow=true`.
    pub async fn get_shallow(&self, path: &str) -> Result<Value> {
        todo!("{path}")
    }
    /// A query; the result sorted as RTDB orders it (client side), as `(key, value)` pairs.
    pub async fn query(&self, path: &str, query: &Query) -> Result<Vec<(String, Value)>> {
        todo!("{path} {query:?}")
    }
    /// PUT with `print=silent` (no echo).
    pub async fn set(&self, path: &str, value: &Value) -> Result<()> {
        todo!("{path} {value}")
    }
    /// PUT returning the echo (server values resolved).
    pub async fn set_echo(&self, path: &str, value: &Value) -> Result<Value> {
        todo!("{path} {value}")
    }
    /// Conditional PUT (`if-match: etag`; `NULL_ETAG` = create only if absent).
    pub async fn put_if_match(&self, path: &str, value: &Value, etag: &str) -> Result<CasOutcome> {
        todo!("{path} {value} {etag}")
    }
    /// Conditional DELETE.
    pub async fn delete_if_match(&self, path: &str, etag: &str) -> Result<CasOutcome> {
        todo!("{path} {etag}")
    }
    /// POST: a new child with a time-ordered push id; returns the id.
    pub async fn push(&self, path: &str, value: &Value) -> Result<String> {
        todo!("{path} {value}")
    }
    /// PATCH with `print=silent`; keys may be multi-segment (`"a/b"`), `null` deletes.
    pub async fn update(&self, path: &str, patch: &serde_json::Map<String, Value>) -> Result<()> {
        todo!("{path} {patch:?}")
    }
    /// DELETE.
    pub async fn remove(&self, path: &str) -> Result<()> {
        todo!("{path}")
    }
    /// Open an event stream on `path`.
    pub async fn stream(&self, path: &str) -> Result<EventStream> {
        todo!("{path}")
    }
    /// A cheap real round trip (shallow GET of the root); Err when unreachable or denied.
    pub async fn check_connection(&self) -> Result<()> {
        todo!()
    }
}
