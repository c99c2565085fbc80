//! The HTTP transport under `Client`: one request (`Req`), one exchange (`send`, following
//! same-database redirects by hand so the Bearer header never reaches another host), retries of
//! failures that provably did nothing (`attempts`), and the mapping of HTTP failures to `Error`s
//! with stable codes (401 -> PERMISSION_DENIED naming the path, 404 -> DATABASE_NOT_FOUND, ...).
//! Failures whose outcome is unknown come back as `WriteError::Unknown` for `settle` to resolve.
//! A request with a gate (`gate`) asks it before every exchange and awaits each answer only
//! while the gate admits it.

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Client, Gate};
use crate::rtdb::retry::RetryNotice;
use crate::rtdb::Auth;
use crate::rtdb::{database_url, path};
use crate::{Error, ErrorCode, Result};
use std::time::Duration;

pub(super) const ETAG_REQUEST_HEADER: &str = "X-Firebase-ETag";
const MAX_REDIRECTS: usize = 5;
/// The most room reserved ahead for a body by its `Content-Length` (a response is at most
/// 256 MB; a longer one grows as it comes).
const MAX_RESERVED: u64 = 256 * 1024 * 1024;
pub(super) const MAX_ERROR_TEXT: usize = 500;
/// Everything but RFC 3986 unreserved characters is escaped in query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl Client {
    pub(super) async fn read(&self, req: Req) -> Result<Full> {
        match self.attempts(&req, true).await {
            Ok(Reply::Full(f)) => Ok(f),
            Ok(Reply::Stream(_)) => Err(Error::internal("unexpected stream")),
            Err(WriteError::Failed(e)) => Err(e),
            Err(WriteError::Unknown(why)) => Err(self.unreachable(&why, 1)),
        }
    }

    pub(super) async fn write(&self, req: Req) -> Result<Full, WriteError> {
        match self.attempts(&req, false).await? {
            Reply::Full(f) => Ok(f),
            Reply::Stream(_) => Err(WriteError::Failed(Error::internal("unexpected stream"))),
        }
    }

    /// Send with retries. Failures where nothing happened (connection refused, 503, 429) are retried
    /// for every request; failures with an unknown outcome are retried only when `idempotent`
    /// (reads), and otherwise returned as `WriteError::Unknown` for the caller to settle. A gated
    /// request asks its gate before every attempt, after every pause included, and is not sent
    /// again once the gate refuses (see `gate`).
    pub(super) async fn attempts(&self, req: &Req, idempotent: bool) -> Result<Reply, WriteError> {
        let policy = &self.inner.opts.retry;
        let started = std::time::Instant::now();
        let mut attempt = 0u32;
        // The previous attempt's failure, and whether it may have happened.
        let mut previous: Option<(String, bool)> = None;
        loop {
            if let Err(e) = req.admit() {
                return Err(WriteError::Failed(match &previous {
                    None => e,
                    Some((why, unknown)) => self.not_sent_again(req, why, *unknown, e),
                }));
            }
            let failure = match self.exchange(req).await {
                Ok(reply) => return Ok(reply),
                Err(f) => f,
            };
            let (why, unknown) = match failure {
                Failure::Fatal(e) => return Err(WriteError::Failed(e)),
                Failure::NotSent(why) => (why, false),
                Failure::Unknown(why) if idempotent => (why, true),
                Failure::Unknown(why) => return Err(WriteError::Unknown(why)),
            };
            if let Err(e) = req.admit() {
                return Err(WriteError::Failed(
                    self.not_sent_again(req, &why, unknown, e),
                ));
            }
            let pause = policy.delay(attempt + 1);
            if !policy.allows(attempt + 1, started.elapsed(), pause) {
                return Err(WriteError::Failed(self.unreachable_after(
                    &why,
                    attempt + 1,
                    started.elapsed(),
                )));
            }
            attempt += 1;
            if let Some(observe) = &self.inner.opts.on_retry {
                observe(&RetryNotice {
                    host: self.inner.opts.url.host_port(),
                    why: why.clone(),
                    retry: attempt,
                    pause,
                    elapsed: started.elapsed(),
                });
            }
            previous = Some((why, unknown));
            tokio::time::sleep(pause).await;
        }
    }

    /// One exchange; a gated request's answer is awaited only while its gate admits it (an
    /// answer that has not come by then has an unknown outcome).
    async fn exchange(&self, req: &Req) -> Result<Reply, Failure> {
        let Some(gate) = &req.gate else {
            return self.send(req).await;
        };
        tokio::select! {
            biased;
            reply = self.send(req) => reply,
            _ = super::gate::closes(gate.as_ref()) => Err(Failure::Unknown(
                "no answer before the write's deadline (the lock's lease) passed".to_string(),
            )),
        }
    }

    /// The refusal of a gated request's next attempt (`refused`), after an attempt that failed
    /// (`why`; `unknown`: it may have happened).
    pub(super) fn not_sent_again(
        &self,
        req: &Req,
        why: &str,
        unknown: bool,
        refused: Error,
    ) -> Error {
        Error::new(
            refused.code,
            format!(
                "{} — {} of {} {} ({why}) and was not sent again",
                refused.message,
                req.method,
                self.at(&req.path),
                if unknown {
                    "may or may not have happened"
                } else {
                    "did not happen"
                },
            ),
        )
    }

    /// One HTTP exchange (following same-database redirects). A 401 on a cached token replaces
    /// the token once and sends again (nothing happened: the request was refused).
    async fn send(&self, req: &Req) -> Result<Reply, Failure> {
        let opts = &self.inner.opts;
        let mut bearer = opts.auth.bearer().await.map_err(Failure::Fatal)?;
        let mut refreshed = false;
        let mut target = reqwest::Url::parse(&opts.url.data_url(&req.path))
            .map_err(|e| Failure::Fatal(Error::internal(format!("bad data URL: {e}"))))?;
        // Parameters are JSON texts; percent-encode them fully (a space is %20, never `+`).
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        if let Some(ns) = &opts.url.namespace {
            pairs.push(("ns", ns));
        }
        // The gate's claims (the lock's epoch under server fencing), fixed for this attempt.
        let merged = req
            .gate
            .as_ref()
            .and_then(|g| g.claims())
            .map(|claims| with_claims(opts.auth_variable_override.as_ref(), claims));
        if let Some(o) = merged
            .as_ref()
            .or(self.inner.auth_override.as_ref())
            .filter(|_| !req.as_admin)
        {
            pairs.push(("auth_variable_override", o));
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
            let http = if req.streaming {
                &self.inner.http_stream
            } else {
                &self.inner.http
            };
            if redirects > 0 || refreshed {
                // Sent again (redirected, or with a new token): asked again.
                req.admit().map_err(Failure::Fatal)?;
            }
            let mut rb = http
                .request(req.method.clone(), target.clone())
                .header("Authorization", &bearer.header);
            for (k, v) in &req.headers {
                rb = rb.header(*k, v);
            }
            if let Some(body) = &req.body {
                rb = rb
                    .header("Content-Type", "application/json")
                    .body(body.clone());
            }
            let no_answer = || {
                Failure::Unknown(format!(
                    "no response within {} (timed out)",
                    seconds(opts.request_timeout)
                ))
            };
            self.count_request();
            let sent = if req.streaming {
                match tokio::time::timeout(opts.request_timeout, rb.send()).await {
                    Ok(r) => r,
                    Err(_) => return Err(no_answer()),
                }
            } else {
                rb.send().await
            };
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_timeout() && !e.is_connect() => return Err(no_answer()),
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
            let body = match body_of(resp).await {
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
            if status == StatusCode::UNAUTHORIZED && !is_rules_denial(&body) {
                // The token itself was refused (revoked, rotated, expired early): drop it, and
                // when it was a cached one, try once more with a new one.
                opts.auth.invalidate(&bearer.header).await;
                if !bearer.fresh && !refreshed {
                    bearer = opts.auth.bearer().await.map_err(Failure::Fatal)?;
                    refreshed = true;
                    continue;
                }
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
        let production = to.scheme() == "https"
            && to
                .host_str()
                .is_some_and(database_url::is_production_domain);
        same_origin || (!self.inner.opts.url.emulator && production)
    }

    fn status_failure(&self, status: StatusCode, body: &[u8], p: &str) -> Failure {
        let text = server_error_text(body);
        match status.as_u16() {
            // The service's write-size limit (a delete counts the data it removes).
            400..=499 if text.contains("WRITE_TOO_BIG") => Failure::Fatal(Error::new(
                ErrorCode::WriteTooBig,
                format!(
                    "Writing {} was refused as too big for one request (HTTP {status}: {text})",
                    self.at(p)
                ),
            )),
            503 | 429 => Failure::NotSent(format!("HTTP {status}{}", suffix(&text))),
            // Any 401 but a rules denial refuses the token itself (after a fresh one was tried):
            // name who we are, never the token.
            401 if !is_rules_denial(body) => Failure::Fatal(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "The database at {} refused the access token of {} (HTTP 401{}); check that this identity may use \
                     the database (e.g. the Firebase Realtime Database Admin role in its project) and that its \
                     credentials are current",
                    self.inner.opts.url,
                    self.inner.opts.auth.identity(),
                    suffix(&text)
                ),
            )),
            401 | 403 => Failure::Fatal(Error::new(
                ErrorCode::PermissionDenied,
                format!(
                    "Permission denied at {}{}{}; check the Security Rules for this path (or the identity's access to this \
                     database, or that the credentials belong to this project)",
                    show(p),
                    match &self.inner.opts.auth {
                        Auth::EmulatorOwner => String::new(),
                        a => format!(" for {}", a.identity()),
                    },
                    suffix(&text)
                ),
            )),
            404 => Failure::Fatal(Error::new(
                ErrorCode::DatabaseNotFound,
                format!("Database not found at {}{}; check databaseUrl (the database name and region)", self.inner.opts.url, suffix(&text)),
            )),
            400 | 413 if is_too_big_text(&text) => Failure::Fatal(Error::new(
                ErrorCode::TooBig,
                format!(
                    "Reading {} was refused: {text}; read it in pages (orderByKey().startAfter(last).limitToFirst(n), \
                     or the paging helpers) or read smaller nodes below it",
                    self.at(p)
                ),
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
    pub(super) fn at(&self, p: &str) -> String {
        format!("{} at {}", show(p), self.inner.opts.url)
    }

    /// `unreachable`, saying how long the attempts took.
    pub(super) fn unreachable_after(&self, why: &str, attempts: u32, spent: Duration) -> Error {
        let mut e = self.unreachable(why, attempts);
        if attempts > 1 {
            e.message = e.message.replacen(
                &format!("{attempts} attempts)"),
                &format!("{attempts} attempts over {})", seconds(spent)),
                1,
            );
        }
        e
    }

    pub(super) fn unreachable(&self, why: &str, attempts: u32) -> Error {
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
}

/// `auth_variable_override` with `claims` added (over the configured override's own fields of
/// the same names), as sent: compact JSON.
fn with_claims(configured: Option<&Value>, claims: serde_json::Map<String, Value>) -> String {
    let mut auth = match configured {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    auth.extend(claims);
    Value::Object(auth).to_string()
}

/// A request to send (cheap to clone: the body is `Bytes`).
#[derive(Clone)]
pub(super) struct Req {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) params: Vec<(&'static str, String)>,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Option<Bytes>,
    pub(super) streaming: bool,
    /// Asked before every attempt of this request (writes of a gated client).
    pub(super) gate: Option<Gate>,
    /// Sent with the client's credentials alone, never an `auth_variable_override` (what only
    /// an admin may do: the rules document).
    pub(super) as_admin: bool,
}

impl Req {
    pub(super) fn new(method: Method, path: &str) -> Req {
        Req {
            method,
            path: path.to_string(),
            params: Vec::new(),
            headers: Vec::new(),
            body: None,
            streaming: false,
            gate: None,
            as_admin: false,
        }
    }
    /// Ok (with the time the answer may take, if bounded) when an attempt may leave now.
    pub(super) fn admit(&self) -> Result<Option<Duration>> {
        match &self.gate {
            Some(g) => g.admit(),
            None => Ok(None),
        }
    }
    pub(super) fn param(mut self, k: &'static str, v: &str) -> Req {
        self.params.push((k, v.to_string()));
        self
    }
    pub(super) fn header(mut self, k: &'static str, v: &str) -> Req {
        self.headers.push((k, v.to_string()));
        self
    }
    pub(super) fn json_body(mut self, v: &Value) -> Result<Req> {
        self.body =
            Some(Bytes::from(serde_json::to_vec(v).map_err(|e| {
                Error::internal(format!("JSON encoding: {e}"))
            })?));
        Ok(self)
    }
}

pub(super) enum Reply {
    Full(Full),
    Stream(reqwest::Response),
}

pub(super) struct Full {
    pub(super) status: StatusCode,
    pub(super) etag: Option<String>,
    pub(super) body: Bytes,
}

impl Full {
    pub(super) fn json(&self) -> Result<Value> {
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
    pub(super) fn etag_required(&self, at: &str) -> Result<String> {
        self.etag.clone().ok_or_else(|| {
            Error::new(
                ErrorCode::BadRequest,
                format!("The server sent no ETag for {at} although one was requested"),
            )
        })
    }
}

pub(super) enum Failure {
    /// Nothing reached the server, or it refused before doing anything (503, 429): safe to retry.
    NotSent(String),
    /// The request may have been processed (500, reset or timeout after sending).
    Unknown(String),
    /// A definite answer that retrying will not change.
    Fatal(Error),
}

pub(super) enum WriteError {
    Failed(Error),
    Unknown(String),
}

impl From<Error> for WriteError {
    fn from(e: Error) -> Self {
        WriteError::Failed(e)
    }
}

/// `2.5 s`
pub(super) fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.1} s")
    }
}

pub(super) fn classify(e: &reqwest::Error) -> Failure {
    let text = describe(e);
    if e.is_connect() {
        // The connection was never established: the request was not sent.
        Failure::NotSent(text)
    } else {
        Failure::Unknown(text)
    }
}

pub(super) use crate::rtdb::http_error::describe;

pub(super) fn norm(p: &str) -> Result<String> {
    Ok(path::segments(p)?.join("/"))
}

pub(super) fn show(p: &str) -> String {
    format!("/{p}")
}

pub(super) fn truncate(s: &str) -> String {
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_string();
    }
    let mut end = MAX_ERROR_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// RTDB answers a Security Rules denial with 401 `{"error": "Permission denied"}`; other 401s
/// refuse the token.
fn is_rules_denial(body: &[u8]) -> bool {
    server_error_text(body).starts_with("Permission denied")
}

pub(super) fn server_error_text(body: &[u8]) -> String {
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

/// The service's refusal of a read over its response-size limit (the SDKs call it `too_big`).
fn is_too_big_text(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("exceeds the maximum size")
        || t.contains("too_big")
        || t.contains("payload is too large")
}

pub(super) fn suffix(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// A response's whole body in one buffer, sized by its `Content-Length` when it has one: a big
/// body is held once, not gathered in pieces and then copied whole.
async fn body_of(mut resp: reqwest::Response) -> reqwest::Result<Bytes> {
    let expected = resp.content_length().unwrap_or(0).min(MAX_RESERVED);
    let mut body = Vec::with_capacity(expected as usize);
    while let Some(piece) = resp.chunk().await? {
        body.extend_from_slice(&piece);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

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
