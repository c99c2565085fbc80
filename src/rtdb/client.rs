//! The REST client. Every method validates its path before any request, sends auth as a Bearer
//! header only, retries transient failures per `RetryPolicy`, and maps HTTP errors to `Error`s
//! with stable codes (401 -> PERMISSION_DENIED naming the path, 404 -> DATABASE_NOT_FOUND, ...).
//!
//! INTERFACE CONTRACT (other modules code against these signatures).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{path, Auth, Clock, DatabaseUrl, Query, RetryPolicy, ServerClock, NULL_ETAG};
use crate::{Error, ErrorCode, Result};

const ETAG_REQUEST_HEADER: &str = "X-Firebase-ETag";
const MAX_REDIRECTS: usize = 5;
const MAX_ERROR_TEXT: usize = 500;
/// Everything but RFC 3986 unreserved characters is escaped in query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

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
        // reqwest (rustls, `ring`) and gcp_auth both pass an explicit ring provider to rustls, so
        // no process-wide default provider is needed; nothing here can hit rustls' "no provider"
        // panic. Redirects are followed by hand (see `send`) so the Bearer header never goes to a
        // host it was not meant for.
        let connect_timeout = opts
            .request_timeout
            .min(Duration::from_secs(10))
            .max(Duration::from_millis(100));
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("msr-firebase/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("Could not build the HTTP client: {e}")))?;
        let server_clock = ServerClock::new(opts.clock.clone());
        Ok(Client {
            inner: Arc::new(Inner {
                opts,
                http,
                server_clock,
            }),
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
    /// PUT with `print=silent` (no echo).
    pub async fn set(&self, path: &str, value: &Value) -> Result<()> {
        let p = norm(path)?;
        let req = Req::new(Method::PUT, &p)
            .param("print", "silent")
            .json_body(value)?;
        match self.write(req).await {
            Ok(_) => Ok(()),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let current = self.recheck_read(&p, &why).await?;
                if matches_written(value, &current) {
                    Ok(())
                } else {
                    Err(self.outcome_unknown("PUT", &p, &why))
                }
            }
        }
    }
    /// PUT returning the echo (server values resolved).
    pub async fn set_echo(&self, path: &str, value: &Value) -> Result<Value> {
        let p = norm(path)?;
        let req = Req::new(Method::PUT, &p).json_body(value)?;
        match self.write(req).await {
            Ok(r) => r.json(),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let current = self.recheck_read(&p, &why).await?;
                if matches_written(value, &current) {
                    Ok(current)
                } else {
                    Err(self.outcome_unknown("PUT", &p, &why))
                }
            }
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
        let req = Req::new(Method::POST, &p).json_body(value)?;
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
        let req = Req::new(Method::PATCH, &p)
            .param("print", "silent")
            .json_body(&body)?;
        match self.write(req).await {
            Ok(_) => Ok(()),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let current = self.recheck_read(&p, &why).await?;
                let all = patch.iter().all(|(k, v)| {
                    let mut node = &current;
                    for seg in k.split('/').filter(|s| !s.is_empty()) {
                        node = node.get(seg).unwrap_or(&Value::Null);
                    }
                    matches_written(v, node)
                });
                if all {
                    Ok(())
                } else {
                    Err(self.outcome_unknown("PATCH", &p, &why))
                }
            }
        }
    }
    /// DELETE.
    pub async fn remove(&self, path: &str) -> Result<()> {
        let p = norm(path)?;
        match self.write(Req::new(Method::DELETE, &p)).await {
            Ok(_) => Ok(()),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => {
                let current = self.recheck_read(&p, &why).await?;
                if current.is_null() {
                    Ok(())
                } else {
                    Err(self.outcome_unknown("DELETE", &p, &why))
                }
            }
        }
    }
    /// Open an event stream on `path`.
    pub async fn stream(&self, path: &str) -> Result<EventStream> {
        let p = norm(path)?;
        let mut req = Req::new(Method::GET, &p).header("Accept", "text/event-stream");
        req.streaming = true;
        let resp = match self.attempts(&req, true).await {
            Ok(r) => r,
            Err(WriteError::Failed(e)) => return Err(e),
            Err(WriteError::Unknown(why)) => return Err(self.unreachable(&why, 1)),
        };
        let Reply::Stream(resp) = resp else {
            return Err(Error::internal("stream request answered without a stream"));
        };
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let at = self.at(&p);
        tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut parser = SseParser::default();
            while let Some(chunk) = body.next().await {
                match chunk {
                    Ok(bytes) => {
                        for ev in parser.feed(&bytes) {
                            if tx.send(ev).await.is_err() {
                                return; // receiver dropped
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Err(Error::new(
                                ErrorCode::ConnectionFailed,
                                format!("Event stream on {at} broke: {}", e.without_url()),
                            )))
                            .await;
                        return;
                    }
                }
            }
        });
        Ok(EventStream { rx })
    }
    /// A cheap real round trip (shallow GET of the root); Err when unreachable or denied.
    pub async fn check_connection(&self) -> Result<()> {
        self.read(Req::new(Method::GET, "").param("shallow", "true"))
            .await
            .map(|_| ())
    }

    // ---- internals ----

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

    /// A conditional PUT (`body` = Some) or DELETE. An unknown outcome is settled by re-reading the
    /// node: our value there -> written; the node unchanged -> the write did not happen, try again;
    /// anything else -> WRITE_OUTCOME_UNKNOWN.
    async fn conditional(
        &self,
        method: Method,
        p: &str,
        body: Option<(Bytes, &Value)>,
        etag: &str,
    ) -> Result<CasOutcome> {
        let written = body
            .as_ref()
            .map(|(_, v)| (*v).clone())
            .unwrap_or(Value::Null);
        let mut req = Req::new(method.clone(), p)
            .header("if-match", etag)
            .header(ETAG_REQUEST_HEADER, "true");
        req.body = body.map(|(b, _)| b);
        let mut rechecks = 0u32;
        let mut retried_after_unknown = false;
        loop {
            match self.write(req.clone()).await {
                Ok(r) if r.status == StatusCode::PRECONDITION_FAILED => {
                    let current = Versioned {
                        etag: r.etag_required(&self.at(p))?,
                        value: r.json()?,
                    };
                    if retried_after_unknown && matches_written(&written, &current.value) {
                        // Our earlier attempt landed after all.
                        return Ok(CasOutcome::Written(current));
                    }
                    return Ok(CasOutcome::Mismatch(current));
                }
                Ok(r) => {
                    let new_etag = match r.etag.clone() {
                        Some(e) => e,
                        None if method == Method::DELETE => NULL_ETAG.to_string(),
                        None => return Err(r.etag_required(&self.at(p)).unwrap_err()),
                    };
                    let value = if method == Method::DELETE {
                        Value::Null
                    } else {
                        r.json()?
                    };
                    return Ok(CasOutcome::Written(Versioned {
                        value,
                        etag: new_etag,
                    }));
                }
                Err(WriteError::Failed(e)) => return Err(e),
                Err(WriteError::Unknown(why)) => {
                    let current = self.get_versioned_norm(p).await.map_err(|e| {
                        Error::new(
                            ErrorCode::WriteOutcomeUnknown,
                            format!("Conditional {method} of {} may or may not have happened ({why}); re-reading it failed: {e}", self.at(p)),
                        )
                    })?;
                    if current.etag != etag && matches_written(&written, &current.value) {
                        return Ok(CasOutcome::Written(current));
                    }
                    if current.etag == etag && rechecks < self.inner.opts.retry.max_retries {
                        rechecks += 1;
                        retried_after_unknown = true;
                        tokio::time::sleep(self.inner.opts.retry.delay(rechecks)).await;
                        continue;
                    }
                    return Err(self.outcome_unknown(method.as_str(), p, &why));
                }
            }
        }
    }

    async fn recheck_read(&self, p: &str, why: &str) -> Result<Value> {
        let r = self.read(Req::new(Method::GET, p)).await.map_err(|e| {
            Error::new(
                ErrorCode::WriteOutcomeUnknown,
                format!(
                    "A write to {} may or may not have happened ({why}); re-reading it failed: {e}",
                    self.at(p)
                ),
            )
        })?;
        r.json()
    }

    async fn read(&self, req: Req) -> Result<Full> {
        match self.attempts(&req, true).await {
            Ok(Reply::Full(f)) => Ok(f),
            Ok(Reply::Stream(_)) => Err(Error::internal("unexpected stream")),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => Err(self.unreachable(&why, 1)),
        }
    }

    async fn write(&self, req: Req) -> Result<Full, WriteError> {
        match self.attempts(&req, false).await? {
            Reply::Full(f) => Ok(f),
            Reply::Stream(_) => Err(WriteError::Failed(Error::internal("unexpected stream"))),
        }
    }

    /// Send with retries. Failures where nothing happened (connection refused, 503, 429) are retried
    /// for every request; failures with an unknown outcome are retried only when `idempotent`
    /// (reads), and otherwise returned as `WriteError::Unknown` for the caller to settle.
    async fn attempts(&self, req: &Req, idempotent: bool) -> Result<Reply, WriteError> {
        let policy = &self.inner.opts.retry;
        let mut attempt = 0u32;
        loop {
            let failure = match self.send(req).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            let why = match failure {
                Failure::Fatal(e) => return Err(WriteError::Failed(e)),
                Failure::NotSent(why) => why,
                Failure::Unknown(why) if idempotent => why,
                Failure::Unknown(why) => return Err(WriteError::Unknown(why)),
            };
            if attempt >= policy.max_retries {
                return Err(WriteError::Failed(self.unreachable(&why, attempt + 1)));
            }
            attempt += 1;
            tokio::time::sleep(policy.delay(attempt)).await;
        }
    }

    /// One HTTP exchange (following same-database redirects).
    async fn send(&self, req: &Req) -> Result<Reply, Failure> {
        let opts = &self.inner.opts;
        let auth = opts.auth.header().await.map_err(Failure::Fatal)?;
        let mut target = reqwest::Url::parse(&opts.url.data_url(&req.path))
            .map_err(|e| Failure::Fatal(Error::internal(format!("bad data URL: {e}"))))?;
        // Parameters are JSON texts; percent-encode them fully (a space is %20, never `+`).
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(ns) = &opts.url.namespace {
            pairs.push(("ns", ns));
        }
        pairs.extend(req.params.iter().map(|(k, v)| (*k, v.as_str())));
        if !pairs.is_empty() {
            let qs: Vec<String> = pairs
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        utf8_percent_encode(k, QUERY_VALUE),
                        utf8_percent_encode(v, QUERY_VALUE)
                    )
                })
                .collect();
            target.set_query(Some(&qs.join("&")));
        }
        let mut redirects = 0;
        loop {
            let mut rb = self
                .inner
                .http
                .request(req.method.clone(), target.clone())
                .header("Authorization", &auth);
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(body) = &req.body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let sent = if req.streaming {
                match tokio::time::timeout(opts.request_timeout, rb.send()).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(Failure::Unknown(format!(
                            "no response within {:?}",
                            opts.request_timeout
                        )))
                    }
                }
            } else {
                rb.timeout(opts.request_timeout).send().await
            };
            let resp = match sent {
                Ok(r) => r,
                Err(e) => return Err(classify(&e)),
            };
            self.observe_date(&resp);
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| target.join(l).ok());
                match location {
                    Some(next)
                        if redirects < MAX_REDIRECTS
                            && self.redirect_allowed(&target, &next, &req.method, status) =>
                    {
                        redirects += 1;
                        target = next;
                        continue;
                    }
                    _ => {
                        return Err(Failure::Fatal(Error::new(
                            ErrorCode::BadRequest,
                            format!("Unexpected redirect ({status}) from {}", self.at(&req.path)),
                        )))
                    }
                }
            }
            if status.is_success() && req.streaming {
                return Ok(Reply::Stream(resp));
            }
            let etag = resp
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_string());
            let body = match resp.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    return Err(Failure::Unknown(format!(
                        "the response was cut off ({})",
                        e.without_url()
                    )))
                }
            };
            if status.is_success()
                || status == StatusCode::PRECONDITION_FAILED
                || status == StatusCode::NOT_MODIFIED
            {
                return Ok(Reply::Full(Full { status, etag, body }));
            }
            return Err(self.status_failure(status, &body, &req.path));
        }
    }

    fn redirect_allowed(
        &self,
        from: &reqwest::Url,
        to: &reqwest::Url,
        method: &Method,
        status: StatusCode,
    ) -> bool {
        let keeps_method = matches!(
            status,
            StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
        );
        if !keeps_method && *method != Method::GET {
            return false;
        }
        let same_origin = from.origin() == to.origin();
        let production =
            to.scheme() == "https" && to.host_str().is_some_and(super::url::is_production_domain);
        same_origin || (!self.inner.opts.url.emulator && production)
    }

    fn status_failure(&self, status: StatusCode, body: &[u8], p: &str) -> Failure {
        let text = server_error_text(body);
        match status.as_u16() {
            503 | 429 => Failure::NotSent(format!("HTTP {status}{}", suffix(&text))),
            401 | 403 => Failure::Fatal(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "Permission denied at {}{}; check the service account's access to this database (or the Security Rules, \
                     or that the credentials belong to this project)",
                    show(p),
                    suffix(&text)
                ),
            )),
            404 => Failure::Fatal(Error::new(
                ErrorCode::DatabaseNotFound,
                format!("Database not found at {}{}; check databaseUrl (the database name and region)", self.inner.opts.url, suffix(&text)),
            )),
            400 => Failure::Fatal(Error::new(
                ErrorCode::BadRequest,
                format!("Bad request for {}: {}", self.at(p), if text.is_empty() { "no details".to_string() } else { text }),
            )),
            500..=599 => Failure::Unknown(format!("HTTP {status}{}", suffix(&text))),
            _ => Failure::Fatal(Error::new(
                ErrorCode::BadRequest,
                format!("Unexpected HTTP {status} for {}{}", self.at(p), suffix(&text)),
            )),
        }
    }

    fn observe_date(&self, resp: &reqwest::Response) {
        let date = resp
            .headers()
            .get("date")
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok());
        if let Some(t) = date {
            if let Ok(d) = t.duration_since(std::time::UNIX_EPOCH) {
                self.inner.server_clock.observe(d.as_millis() as i64);
            }
        }
    }

    /// `/path` at `<database url>`, for messages (never contains a token).
    fn at(&self, p: &str) -> String {
        format!("{} at {}", show(p), self.inner.opts.url)
    }

    fn unreachable(&self, why: &str, attempts: u32) -> Error {
        Error::new(
            ErrorCode::ConnectionFailed,
            format!(
                "Could not reach the database at {} ({why}; {attempts} attempt{}); check databaseUrl, the network or proxy, \
                 and that the database (or emulator) is running",
                self.inner.opts.url,
                if attempts == 1 { "" } else { "s" }
            ),
        )
    }

    fn outcome_unknown(&self, method: &str, p: &str, why: &str) -> Error {
        Error::new(
            ErrorCode::WriteOutcomeUnknown,
            format!("{method} of {} may or may not have happened ({why}); it was not repeated blindly, check the data", self.at(p)),
        )
    }
}

/// A request to send (cheap to clone: the body is `Bytes`).
#[derive(Clone)]
struct Req {
    method: Method,
    path: String,
    params: Vec<(&'static str, String)>,
    headers: Vec<(&'static str, String)>,
    body: Option<Bytes>,
    streaming: bool,
}

impl Req {
    fn new(method: Method, path: &str) -> Req {
        Req {
            method,
            path: path.to_string(),
            params: Vec::new(),
            headers: Vec::new(),
            body: None,
            streaming: false,
        }
    }
    fn param(mut self, k: &'static str, v: &str) -> Req {
        self.params.push((k, v.to_string()));
        self
    }
    fn header(mut self, k: &'static str, v: &str) -> Req {
        self.headers.push((k, v.to_string()));
        self
    }
    fn json_body(mut self, v: &Value) -> Result<Req> {
        self.body =
            Some(Bytes::from(serde_json::to_vec(v).map_err(|e| {
                Error::internal(format!("JSON encoding: {e}"))
            })?));
        Ok(self)
    }
}

enum Reply {
    Full(Full),
    Stream(reqwest::Response),
}

struct Full {
    status: StatusCode,
    etag: Option<String>,
    body: Bytes,
}

impl Full {
    fn json(&self) -> Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::new(
                ErrorCode::BadRequest,
                format!(
                    "The server answered HTTP {} with a body that is not JSON ({e})",
                    self.status
                ),
            )
        })
    }
    fn etag_required(&self, at: &str) -> Result<String> {
        self.etag.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::BadRequest,
                format!("The server sent no ETag for {at} although one was requested"),
            )
        })
    }
}

enum Failure {
    /// Nothing reached the server, or it refused before doing anything (503, 429): safe to retry.
    NotSent(String),
    /// The request may have been processed (500, reset or timeout after sending).
    Unknown(String),
    /// A definite answer that retrying will not change.
    Fatal(Error),
}

enum WriteError {
    Failed(Error),
    Unknown(String),
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Failed(e)
    }
}

fn classify(e: &reqwest::Error) -> Failure {
    let text = describe(e);
    if e.is_connect() {
        // The connection was never established: the request was not sent.
        Failure::NotSent(text)
    } else {
        Failure::Unknown(text)
    }
}

/// An error's description with its source chain, without the URL.
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = if e.is_timeout() {
        "timed out".to_string()
    } else {
        String::new()
    };
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !t.is_empty() && !out.contains(&t) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&t);
        }
        src = s.source();
    }
    if out.is_empty() {
        out = e.to_string();
    }
    out
}

fn norm(p: &str) -> Result<String> {
    Ok(path::segments(p)?.join("/"))
}

fn show(p: &str) -> String {
    format!("/{p}")
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn server_error_text(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => match o.get("error") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => Value::Object(o).to_string(),
        },
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    truncate(&text)
}

fn suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// Does `current` (read back from the server) hold what `written` asked for? Server values
/// (`{".sv": ...}`) match any number; null children and empty objects vanish as RTDB drops them.
pub(crate) fn matches_written(written: &Value, current: &Value) -> bool {
    fn is_sv(v: &Value) -> bool {
        matches!(v, Value::Object(o) if o.len() == 1 && o.contains_key(".sv"))
    }
    fn normalize(v: &Value) -> Value {
        match v {
            _ if is_sv(v) => v.clone(),
            Value::Array(a) => normalize(&Value::Object(
                a.iter()
                    .enumerate()
                    .map(|(i, x)| (i.to_string(), x.clone()))
                    .collect(),
            )),
            Value::Object(o) => {
                let m: serde_json::Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| !k.starts_with('.'))
                    .map(|(k, x)| (k.clone(), normalize(x)))
                    .filter(|(_, x)| !x.is_null())
                    .collect();
                if m.is_empty() {
                    Value::Null
                } else {
                    Value::Object(m)
                }
            }
            other => other.clone(),
        }
    }
    fn eq(w: &Value, c: &Value) -> bool {
        if is_sv(w) {
            return c.is_number();
        }
        match (w, c) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| eq(x, y)))
            }
            (a, b) => a == b,
        }
    }
    eq(&normalize(written), &normalize(current))
}

/// Incremental `text/event-stream` parser.
#[derive(Default)]
struct SseParser {
    buf: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Vec<Result<StreamEvent>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if let Some(ev) = self.dispatch() {
                    out.push(ev);
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "event" => self.event = Some(value),
                "data" => self.data.push(value),
                _ => {}
            }
        }
        out
    }

    fn dispatch(&mut self) -> Option<Result<StreamEvent>> {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data).join("\n");
        let event = event?;
        let parse_put = |data: &str| -> Result<(String, Value)> {
            let v: Value = serde_json::from_str(data).map_err(|e| {
                Error::new(
                    ErrorCode::BadRequest,
                    format!("Event stream sent data that is not JSON ({e})"),
                )
            })?;
            let path = v
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_string();
            let data = v.get("data").cloned().unwrap_or(Value::Null);
            Ok((path, data))
        };
        Some(match event.as_str() {
            "put" => parse_put(&data).map(|(path, data)| StreamEvent::Put { path, data }),
            "patch" => parse_put(&data).map(|(path, data)| StreamEvent::Patch { path, data }),
            "keep-alive" => Ok(StreamEvent::KeepAlive),
            "cancel" => Ok(StreamEvent::Cancel(
                match serde_json::from_str::<Value>(&data) {
                    Ok(Value::String(s)) => s,
                    Ok(Value::Null) | Err(_) if data.is_empty() || data == "null" => {
                        "cancelled by the server".to_string()
                    }
                    _ => data,
                },
            )),
            "auth_revoked" => Ok(StreamEvent::AuthRevoked),
            _ => return None,
        })
    }
}

/// Streaming reads, for values too large to hold in memory (backups).
impl Client {
    /// GET `path` and hand back the JSON body chunk by chunk, never buffered whole. Failures before
    /// the body starts are retried and mapped like `get`'s; a body that breaks off, or sends
    /// nothing for `request_timeout`, ends the stream with a CONNECTION_FAILED error.
    pub async fn get_stream(
        &self,
        path: &str,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin + 'static> {
        let p = norm(path)?;
        let mut req = Req::new(Method::GET, &p);
        req.streaming = true;
        let resp = match self.attempts(&req, true).await {
            Ok(Reply::Stream(r)) => r,
            Ok(Reply::Full(f)) => {
                return Err(Error::new(
                    ErrorCode::BadRequest,
                    format!("Unexpected HTTP {} for {}", f.status, self.at(&p)),
                ))
            }
            Err(WriteError::Failed(e)) => return Err(e),
            Err(WriteError::Unknown(why)) => return Err(self.unreachable(&why, 1)),
        };
        let idle = self.inner.opts.request_timeout;
        let at = self.at(&p);
        let body = Box::pin(resp.bytes_stream());
        Ok(Box::pin(futures_util::stream::unfold(
            Some((body, at)),
            move |state| async move {
                let (mut body, at) = state?;
                let broke = |why: String| {
                    Error::new(
                        ErrorCode::ConnectionFailed,
                        format!("Reading {at} broke off ({why})"),
                    )
                };
                match tokio::time::timeout(idle, body.next()).await {
                    Ok(None) => None,
                    Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some((body, at)))),
                    Ok(Some(Err(e))) => Some((Err(broke(describe(&e))), None)),
                    Err(_) => Some((Err(broke(format!("no data for {idle:?}"))), None)),
                }
            },
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sse_parses_events_across_chunks() {
        let mut p = SseParser::default();
        let mut evs = p.feed(b"event: put\ndata: {\"path\":\"/\",\"data\":{\"a\":1}}\n");
        assert!(evs.is_empty());
        evs.extend(p.feed(b"\nevent: keep-alive\r\ndata: null\r\n\r\nevent: pat"));
        evs.extend(p.feed(b"ch\ndata: {\"path\":\"/b\",\"data\":{\"c\":2}}\n\n: comment\n\nevent: cancel\ndata: \"no\"\n\nevent: auth_revoked\ndata: \"x\"\n\nevent: odd\ndata: 1\n\n"));
        let evs: Vec<StreamEvent> = evs.into_iter().map(|e| e.unwrap()).collect();
        assert_eq!(
            evs,
            vec![
                StreamEvent::Put {
                    path: "/".into(),
                    data: json!({"a": 1})
                },
                StreamEvent::KeepAlive,
                StreamEvent::Patch {
                    path: "/b".into(),
                    data: json!({"c": 2})
                },
                StreamEvent::Cancel("no".into()),
                StreamEvent::AuthRevoked,
            ]
        );
        let bad = p.feed(b"event: put\ndata: {nope\n\n");
        assert!(bad[0].is_err());
    }

    #[test]
    fn written_values_match_what_the_server_keeps() {
        assert!(matches_written(
            &json!({"a": 1, "b": null, "c": {}}),
            &json!({"a": 1.0})
        ));
        assert!(matches_written(
            &json!({"t": {".sv": "timestamp"}, "o": "me"}),
            &json!({"t": 1700000000000i64, "o": "me"})
        ));
        assert!(!matches_written(
            &json!({"t": {".sv": "timestamp"}, "o": "me"}),
            &json!({"t": 1, "o": "you"})
        ));
        assert!(!matches_written(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(matches_written(&json!([1, 2]), &json!({"0": 1, "1": 2})));
        assert!(matches_written(&Value::Null, &json!({})));
        assert!(!matches_written(&Value::Null, &json!(0)));
        assert!(matches_written(&json!("x"), &json!("x")));
    }

    #[test]
    fn server_error_texts() {
        assert_eq!(
            server_error_text(br#"{"error":"Invalid data; couldn't parse JSON object"}"#),
            "Invalid data; couldn't parse JSON object"
        );
        assert_eq!(server_error_text(b"plain"), "plain");
        assert!(truncate(&"é".repeat(1000)).len() <= MAX_ERROR_TEXT + 3);
    }
}
