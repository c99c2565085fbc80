//! The HTTP server: hyper 1 over tokio, one task per connection, graceful shutdown. Data requests
//! go through counting, latency, fault injection, parsing and deny rules, then to one of the
//! method handlers; every read and write of the store happens under one lock, so a conditional
//! check and its write are atomic with respect to every other write.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use super::etag::etag;
use super::levers::{Levers, ALL_NAMESPACES};
use super::push_id::PushIdGenerator;
use super::sse::{self, WriteEvent};
use super::store::{prepare, to_output, Store};
use crate::rtdb::order::{Query, QUERY_PARAMS};
use crate::rtdb::path::{self, MAX_DEPTH};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The name of the namespace used when a request has no `?ns=`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Query parameters that may accompany `shallow=true` (and that are otherwise ignored).
const NEUTRAL_PARAMS: [&str; 4] = ["ns", "print", "auth", "access_token"];

pub struct State {
    pub store: Mutex<Store>,
    pub levers: Mutex<Levers>,
    pub push_ids: Mutex<PushIdGenerator>,
    pub events: broadcast::Sender<Arc<WriteEvent>>,
    pub shutdown: watch::Receiver<bool>,
}

impl State {
    pub fn new(store: Store, shutdown: watch::Receiver<bool>) -> Self {
        State {
            store: Mutex::new(store),
            levers: Mutex::new(Levers::default()),
            push_ids: Mutex::new(PushIdGenerator::new()),
            events: broadcast::channel(4096).0,
            shutdown,
        }
    }
    fn levers(&self) -> std::sync::MutexGuard<'_, Levers> {
        self.levers.lock().expect("levers lock")
    }
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("store lock")
    }
}

/// Resolves once the emulator is stopping (at once if it already is).
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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
        let Ok((stream, _peer)) = accepted else {
            // Out of file descriptors and the like: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        conns.spawn(async move {
            let mut shutdown = state.shutdown.clone();
            let svc_state = state.clone();
            let svc = service_fn(move |req| handle(svc_state.clone(), req));
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

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn respond(status: StatusCode, body: Body, content_type: Option<&'static str>) -> Response<Body> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    if let Some(ct) = content_type {
        res.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    res.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    res.headers_mut()
        .insert("access-control-allow-origin", HeaderValue::from_static("*"));
    res
}

fn json_response(status: StatusCode, value: &Value, pretty: bool) -> Response<Body> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    respond(status, full(text), Some("application/json; charset=utf-8"))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_response(status, &json!({ "error": message.into() }), false)
}

fn bad_request(message: impl Into<String>) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, message)
}

fn with_etag(mut res: Response<Body>, tag: Option<String>) -> Response<Body> {
    if let Some(tag) = tag {
        if let Ok(v) = HeaderValue::from_str(&tag) {
            res.headers_mut().insert("etag", v);
        }
    }
    res
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    if path == "/.emulator" || path.starts_with("/.emulator/") {
        return Ok(levers_request(&state, req).await);
    }
    Ok(data_request(&state, req).await)
}

// ---------------------------------------------------------------------------------------------
// Levers

/// The largest request body accepted (RTDB's REST write limit).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    let bytes = match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Write too large: a REST write can be at most 256 MB",
            ))
        }
        Err(e) => return Err(bad_request(format!("Could not read the request body: {e}"))),
    };
    serde_json::from_slice(&bytes)
        .map_err(|_| bad_request("Invalid data; couldn't parse JSON object, array, or value."))
}

async fn levers_request(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let name = req
        .uri()
        .path()
        .trim_start_matches("/.emulator")
        .trim_matches('/')
        .to_string();
    let ok = |v: Value| json_response(StatusCode::OK, &v, false);
    match (method, name.as_str()) {
        (Method::GET, "requests") => ok(state.levers().counts_json()),
        (Method::DELETE, "requests") => {
            state.levers().reset_counts();
            ok(state.levers().counts_json())
        }
        (Method::GET, "deny") => ok(state.levers().deny_json()),
        (Method::DELETE, "deny") => {
            state.levers().deny.clear();
            ok(state.levers().deny_json())
        }
        (Method::PUT, "deny") => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(res) => return res,
            };
            let ns = match body.get("ns") {
                None | Some(Value::Null) => ALL_NAMESPACES.to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return bad_request("deny: \"ns\" must be a string"),
            };
            let Some(paths) = body.get("paths").and_then(Value::as_array) else {
                return bad_request(
                    "deny: expected {\"ns\": \"<namespace>\", \"paths\": [\"a/b\", ...]}",
                );
            };
            let mut rules = Vec::new();
            for p in paths {
                let Some(p) = p.as_str() else {
                    return bad_request("deny: paths must be strings");
                };
                match path::segments(p) {
                    Ok(segs) => rules.push(segs),
                    Err(e) => return bad_request(format!("deny: {}", e.message)),
                }
            }
            let mut levers = state.levers();
            if rules.is_empty() {
                levers.deny.remove(&ns);
            } else {
                levers.deny.insert(ns, rules);
            }
            ok(levers.deny_json())
        }
        (Method::GET, "latency") => ok(json!({ "ms": state.levers().latency_ms })),
        (Method::PUT, "latency") => match read_json(req).await {
            Ok(b) => match b.get("ms").and_then(Value::as_u64) {
                Some(ms) => {
                    state.levers().latency_ms = ms;
                    ok(json!({ "ms": ms }))
                }
                None => bad_request("latency: expected {\"ms\": <non-negative integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "faults") => {
            ok(json!({ "unavailableProbability": state.levers().unavailable_probability }))
        }
        (Method::PUT, "faults") => match read_json(req).await {
            Ok(b) => match b.get("unavailableProbability").and_then(Value::as_f64) {
                Some(p) if (0.0..=1.0).contains(&p) => {
                    state.levers().unavailable_probability = p;
                    ok(json!({ "unavailableProbability": p }))
                }
                _ => bad_request(
                    "faults: expected {\"unavailableProbability\": <number between 0 and 1>}",
                ),
            },
            Err(res) => res,
        },
        (Method::GET, "clock") => {
            let l = state.levers();
            ok(json!({ "offsetMs": l.clock_offset_ms, "now": l.now_ms() }))
        }
        (Method::PUT, "clock") => match read_json(req).await {
            Ok(b) => match b.get("offsetMs").and_then(Value::as_i64) {
                Some(off) => {
                    let mut l = state.levers();
                    l.clock_offset_ms = off;
                    ok(json!({ "offsetMs": off, "now": l.now_ms() }))
                }
                None => bad_request("clock: expected {\"offsetMs\": <integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "keepalive") => ok(json!({ "ms": state.levers().keepalive_ms })),
        (Method::PUT, "keepalive") => match read_json(req).await {
            Ok(b) => match b.get("ms").and_then(Value::as_u64).filter(|ms| *ms > 0) {
                Some(ms) => {
                    state.levers().keepalive_ms = ms;
                    ok(json!({ "ms": ms }))
                }
                None => bad_request("keepalive: expected {\"ms\": <positive integer>}"),
            },
            Err(res) => res,
        },
        (Method::GET, "export") => ok(state.store().export()),
        (Method::POST, "reset") => {
            // Data first, under the store lock, with an event so open streams see the wipe.
            {
                let mut store = state.store();
                let namespaces: Vec<String> = store
                    .export()
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                store.clear();
                for ns in namespaces {
                    let _ = state.events.send(Arc::new(WriteEvent::Put {
                        ns,
                        path: Vec::new(),
                        data: Value::Null,
                    }));
                }
            }
            *state.levers() = Levers::default();
            ok(json!({ "reset": true }))
        }
        (method, _) => error(
            StatusCode::NOT_FOUND,
            format!("Unknown emulator lever: {method} /.emulator/{name}"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Data

struct DataReq {
    ns: String,
    segs: Vec<String>,
    params: Vec<(String, String)>,
    pretty: bool,
    silent: bool,
    want_etag: bool,
    if_match: Option<String>,
    if_none_match: Option<String>,
}

fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The namespace when `?ns=` is absent: the first label of the Host header when it is a DNS name
/// with at least two labels (`mydb.localhost:9000` -> `mydb`), else `default`.
fn default_namespace(req: &Request<Incoming>) -> String {
    let host = header(req, "host").unwrap_or_default();
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host);
    let is_ip = name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[');
    match name.split_once('.') {
        Some((first, _)) if !is_ip && !first.is_empty() => first.to_ascii_lowercase(),
        _ => DEFAULT_NAMESPACE.to_string(),
    }
}

async fn data_request(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let decoded = percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let data_path = decoded.strip_suffix(".json");
    let parsed_segs = data_path.map(path::segments);

    // Count, then latency, then injected faults: before anything else.
    let (latency, fault_p) = {
        let mut l = state.levers();
        let key = match &parsed_segs {
            Some(Ok(segs)) => format!("/{}", segs.join("/")),
            _ => decoded.clone(),
        };
        l.count(method.as_str(), &key);
        (l.latency_ms, l.unavailable_probability)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if fault_p > 0.0 && rand::random::<f64>() < fault_p {
        return error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable (injected by the emulator's faults lever); the request was not attempted");
    }

    let segs = match parsed_segs {
        None => return error(StatusCode::NOT_FOUND, format!("Not found: {raw_path} is not a data endpoint (data paths end in .json, e.g. /a/b.json)")),
        Some(Err(e)) => return bad_request(e.message),
        Some(Ok(segs)) => segs,
    };
    let params: Vec<(String, String)> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let ns = match param("ns") {
        Some(ns) if crate::rtdb::url::valid_namespace(&ns) => ns,
        Some(ns) => {
            return bad_request(format!(
                "Invalid namespace {ns:?}: use letters, digits, '-' and '_'"
            ))
        }
        None => default_namespace(&req),
    };
    let (pretty, silent) = match param("print").as_deref() {
        None => (false, false),
        Some("pretty") => (true, false),
        Some("silent") => (false, true),
        Some(other) => {
            return bad_request(format!(
                "Invalid print parameter {other:?}: use \"pretty\" or \"silent\""
            ))
        }
    };
    let want_etag = header(&req, "x-firebase-etag").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let dr = DataReq {
        ns,
        segs,
        pretty,
        silent,
        want_etag,
        if_match: header(&req, "if-match"),
        if_none_match: header(&req, "if-none-match"),
        params,
    };

    if state.levers().is_denied(&dr.ns, &dr.segs) {
        return error(StatusCode::UNAUTHORIZED, "Permission denied");
    }
    // Only GET takes query parameters.
    if method != Method::GET
        && dr
            .params
            .iter()
            .any(|(k, _)| k == "shallow" || QUERY_PARAMS.contains(&k.as_str()))
    {
        return bad_request(format!("Query parameters (shallow, orderBy, startAt, ...) are only allowed on GET, not {method}"));
    }
    if method != Method::GET && dr.if_none_match.is_some() {
        return bad_request(format!(
            "if-none-match is only supported on GET, not {method}"
        ));
    }
    if dr.if_match.is_some() && !(method == Method::PUT || method == Method::DELETE) {
        return bad_request(format!(
            "if-match is only supported on PUT and DELETE, not {method}"
        ));
    }

    match method {
        Method::GET => {
            let accept = header(&req, "accept").unwrap_or_default();
            if accept.contains("text/event-stream") {
                return stream(state, dr);
            }
            get(state, dr)
        }
        Method::PUT => match read_json(req).await {
            Ok(body) => put(state, dr, body),
            Err(res) => res,
        },
        Method::POST => match read_json(req).await {
            Ok(body) => post(state, dr, body),
            Err(res) => res,
        },
        Method::PATCH => {
            if dr.want_etag {
                return bad_request(
                    "X-Firebase-ETag is not supported on PATCH (an update cannot be conditional)",
                );
            }
            match read_json(req).await {
                Ok(body) => patch(state, dr, body),
                Err(res) => res,
            }
        }
        Method::DELETE => delete(state, dr),
        other => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {other} is not supported"),
        ),
    }
}

/// 200 with the value (204 under `print=silent`), plus the ETag when asked for.
fn ok_value(dr: &DataReq, value: &Value, tag: Option<String>) -> Response<Body> {
    let res = if dr.silent {
        respond(StatusCode::NO_CONTENT, full(Bytes::new()), None)
    } else {
        json_response(StatusCode::OK, value, dr.pretty)
    };
    with_etag(res, if dr.want_etag { tag } else { None })
}

fn stream(state: &Arc<State>, dr: DataReq) -> Response<Body> {
    if dr
        .params
        .iter()
        .any(|(k, _)| !NEUTRAL_PARAMS.contains(&k.as_str()))
    {
        return bad_request("This emulator does not support query parameters on event streams");
    }
    let body = sse::open(state.clone(), dr.ns, dr.segs);
    respond(StatusCode::OK, body, Some("text/event-stream"))
}

fn get(state: &Arc<State>, dr: DataReq) -> Response<Body> {
    let shallow = match dr
        .params
        .iter()
        .rev()
        .find(|(k, _)| k == "shallow")
        .map(|(_, v)| v.as_str())
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return bad_request(format!("Invalid shallow parameter {other:?}: use true"))
        }
    };
    if shallow {
        if let Some((k, _)) = dr
            .params
            .iter()
            .find(|(k, _)| k != "shallow" && !NEUTRAL_PARAMS.contains(&k.as_str()))
        {
            return bad_request(format!("Mixing 'shallow' and '{k}' is not allowed: shallow cannot be combined with other query parameters"));
        }
    }
    let query = match Query::from_params(&dr.params) {
        Ok(q) => q,
        Err(e) => return bad_request(e.message),
    };
    let (value, tag) = {
        let store = state.store();
        let node = store.get_ref(&dr.ns, &dr.segs);
        let tag = etag(node.unwrap_or(&Value::Null));
        if dr.if_none_match.as_deref() == Some(tag.as_str()) {
            return with_etag(
                respond(StatusCode::NOT_MODIFIED, full(Bytes::new()), None),
                Some(tag),
            );
        }
        let value = match node {
            None => Value::Null,
            Some(Value::Object(m)) if shallow => {
                Value::Object(m.keys().map(|k| (k.clone(), Value::Bool(true))).collect())
            }
            Some(v @ Value::Object(_)) if !query.is_empty() => Value::Object(
                query
                    .apply(v)
                    .into_iter()
                    .map(|(k, v)| (k, to_output(&v)))
                    .collect::<Map<_, _>>(),
            ),
            Some(v) => to_output(v),
        };
        (value, tag)
    };
    ok_value(&dr, &value, Some(tag))
}

/// The 412 for a failed `if-match`: the current value as plain JSON and its ETag.
fn precondition_failed(current: &Value, tag: String, pretty: bool) -> Response<Body> {
    with_etag(
        json_response(StatusCode::PRECONDITION_FAILED, &to_output(current), pretty),
        Some(tag),
    )
}

fn put(state: &Arc<State>, dr: DataReq, body: Value) -> Response<Body> {
    let (written, tag) = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        let current = store.get_ref(&dr.ns, &dr.segs);
        let data = match prepare(&body, dr.segs.len(), current, now) {
            Ok(d) => d,
            Err(e) => return bad_request(e.0),
        };
        if let Some(expected) = &dr.if_match {
            let current = current.cloned().unwrap_or(Value::Null);
            let tag = etag(&current);
            if *expected != tag {
                return precondition_failed(&current, tag, dr.pretty);
            }
        }
        store.set(&dr.ns, &dr.segs, data.clone());
        let _ = state.events.send(Arc::new(WriteEvent::Put {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            data: data.clone(),
        }));
        let tag = etag(&data);
        (data, tag)
    };
    ok_value(&dr, &to_output(&written), Some(tag))
}

fn delete(state: &Arc<State>, dr: DataReq) -> Response<Body> {
    {
        let mut store = state.store();
        if let Some(expected) = &dr.if_match {
            let current = store.get(&dr.ns, &dr.segs);
            let tag = etag(&current);
            if *expected != tag {
                return precondition_failed(&current, tag, dr.pretty);
            }
        }
        store.set(&dr.ns, &dr.segs, Value::Null);
        let _ = state.events.send(Arc::new(WriteEvent::Put {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            data: Value::Null,
        }));
    }
    ok_value(&dr, &Value::Null, Some(etag(&Value::Null)))
}

fn post(state: &Arc<State>, dr: DataReq, body: Value) -> Response<Body> {
    if dr.segs.len() + 1 >= MAX_DEPTH {
        return bad_request(format!("Invalid path: a pushed child would be {} levels deep; paths must be fewer than {MAX_DEPTH} levels deep", dr.segs.len() + 1));
    }
    let (name, tag) = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        let name = state.push_ids.lock().expect("push id lock").next_id(now);
        let mut at = dr.segs.clone();
        at.push(name.clone());
        let data = match prepare(&body, at.len(), None, now) {
            Ok(d) => d,
            Err(e) => return bad_request(e.0),
        };
        store.set(&dr.ns, &at, data.clone());
        let tag = etag(&data);
        let _ = state.events.send(Arc::new(WriteEvent::Put {
            ns: dr.ns.clone(),
            path: at,
            data,
        }));
        (name, tag)
    };
    ok_value(&dr, &json!({ "name": name }), Some(tag))
}

fn patch(state: &Arc<State>, dr: DataReq, body: Value) -> Response<Body> {
    let Value::Object(entries) = body else {
        return bad_request(
            "Invalid data; an update (PATCH) must be a JSON object of paths to values",
        );
    };
    let mut targets: Vec<(String, Vec<String>)> = Vec::with_capacity(entries.len());
    for k in entries.keys() {
        let rel = match path::segments(k) {
            Ok(rel) if !rel.is_empty() => rel,
            Ok(_) => return bad_request(format!("Invalid data; update key {k:?} is empty")),
            Err(e) => return bad_request(format!("Invalid data; {}", e.message)),
        };
        if dr.segs.len() + rel.len() >= MAX_DEPTH {
            return bad_request(format!("Invalid data; update path {k:?} is too deep: paths must be fewer than {MAX_DEPTH} levels deep"));
        }
        if let Some((other, _)) = targets
            .iter()
            .find(|(_, o)| o.starts_with(&rel) || rel.starts_with(o))
        {
            return bad_request(format!("Invalid data; update paths {other:?} and {k:?} overlap (one is an ancestor of the other)"));
        }
        targets.push((k.clone(), rel));
    }
    let echo = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        let mut prepared = Vec::with_capacity(targets.len());
        for (k, rel) in targets {
            let full: Vec<String> = dr.segs.iter().chain(rel.iter()).cloned().collect();
            match prepare(&entries[&k], full.len(), store.get_ref(&dr.ns, &full), now) {
                Ok(d) => prepared.push((k, rel, d)),
                Err(e) => return bad_request(e.0),
            }
        }
        for (_, rel, data) in &prepared {
            let full: Vec<String> = dr.segs.iter().chain(rel.iter()).cloned().collect();
            store.set(&dr.ns, &full, data.clone());
        }
        let echo: Map<String, Value> = prepared
            .iter()
            .map(|(k, _, d)| (k.clone(), to_output(d)))
            .collect();
        let _ = state.events.send(Arc::new(WriteEvent::Patch {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            entries: prepared,
        }));
        Value::Object(echo)
    };
    ok_value(&dr, &echo, None)
}

/// Bind and start serving; returns the bound address and the serving task.
pub async fn bind(host: &str, port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((host, port)).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
