//! Data requests (`/<path>.json`): counting, latency and injected faults first, then parsing
//! (namespace, `print`, ETag headers), deny rules, and one handler per method, each reading and
//! writing the store under its lock and publishing what it wrote for the event streams.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use super::etag::etag;
use super::response::{
    bad_request, error, full, json_response, read_json, respond, with_etag, Body,
};
use super::sse;
use super::state::{State, WriteEvent};
use super::store::{prepare, to_output};
use crate::rtdb::order::{Query, QUERY_PARAMS};
use crate::rtdb::path::{self, MAX_DEPTH};

/// The name of the namespace used when a request has no `?ns=`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Query parameters that may accompany `shallow=true` (and that are otherwise ignored).
const NEUTRAL_PARAMS: [&str; 5] = [
    "ns",
    "print",
    "auth",
    "access_token",
    "auth_variable_override",
];

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

pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Response<Body> {
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
        Some(ns) if crate::rtdb::database_url::valid_namespace(&ns) => ns,
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

    // The token first (as the service: a refused token is refused before any rule is looked
    // at), then the `auth` the request acts as, then the rules.
    if !state
        .levers()
        .token_accepted(header(&req, "authorization").as_deref())
    {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized request.");
    }
    let auth_override = dr
        .params
        .iter()
        .rev()
        .find(|(k, _)| k == "auth_variable_override")
        .map(|(_, v)| v.clone());
    if let Some(o) = auth_override {
        match serde_json::from_str::<Value>(&o) {
            Ok(v @ (Value::Object(_) | Value::Null)) => state.levers().last_override = Some(v),
            _ => {
                return bad_request(
                    "Invalid auth_variable_override: expected a JSON object (or null)",
                )
            }
        }
    }
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
