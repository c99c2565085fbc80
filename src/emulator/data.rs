//! Data requests (`/<path>.json`): the journal, counting, latency, a delay and injected faults first, then parsing
//! (namespace, `print`, ETag headers), deny rules, and one handler per method, each reading and
//! writing the store under its lock and publishing what it wrote for the event streams; a big
//! plain read is answered after the lock is released, from a snapshot (`super::streamed`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as _, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use super::etag::etag;
use super::response::{
    bad_request, error, full, read_body, respond, with_etag, Body, Dropped, Reply,
};
use super::security::{self, Access};
use super::sse;
use super::state::{FaultMode, State, WriteEvent, TOO_BIG_REASON};
use super::store::{self, Form, NodeRef, Read, PRIORITY};
use super::streamed::{BigRead, Refusal};
use super::triggers;
use super::write_size::{self, WriteSizeLevel};
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
    /// Who the request is and its namespace's rules.
    access: Access,
    /// The bytes a write may affect (`None`: unlimited): the namespace's write-size limit, or
    /// the lower one the request asked for.
    budget: Option<u64>,
}

/// Marks a response as the refusal of a write too big for one request (for the counts).
#[derive(Debug, Clone, Copy)]
struct TooBigWrite;

/// The service's refusal of a write over its write-size limit.
fn write_too_big() -> Response<Body> {
    let mut res = bad_request(write_size::WRITE_TOO_BIG);
    res.extensions_mut().insert(TooBigWrite);
    res
}

/// Whether `method` writes.
fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::PUT | Method::PATCH | Method::POST | Method::DELETE
    )
}

pub(super) fn header(req: &Request<Incoming>, name: &str) -> Option<String> {
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

/// A request's query parameters, decoded.
pub(super) fn query_params(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace a request addresses: `?ns=` (validated; `Err`: the 400 text), else from the
/// Host header.
pub(super) fn namespace(
    req: &Request<Incoming>,
    params: &[(String, String)],
) -> Result<String, String> {
    match params.iter().rev().find(|(k, _)| k == "ns").map(|(_, v)| v) {
        Some(ns) if crate::rtdb::database_url::valid_namespace(ns) => Ok(ns.clone()),
        Some(ns) => Err(format!(
            "Invalid namespace {ns:?}: use letters, digits, '-' and '_'"
        )),
        None => Ok(default_namespace(req)),
    }
}

/// The namespace a request addresses, for the journal and the delay lever (empty when `?ns=` is
/// invalid).
fn request_ns(req: &Request<Incoming>) -> String {
    namespace(req, &query_params(req)).unwrap_or_default()
}

/// A data request, journaled when the journal is on.
pub async fn handle(state: &Arc<State>, req: Request<Incoming>) -> Reply {
    let seq = arrive(state, &req);
    let res = answer(state, req).await;
    answered(state, seq, res.as_ref().ok().map(|r| r.status().as_u16()));
    res
}

/// A request arrived: its journal entry, when the journal is on.
pub(super) fn arrive(state: &Arc<State>, req: &Request<Incoming>) -> Option<usize> {
    let mut l = state.levers();
    if !l.journal.is_on() {
        return None;
    }
    let now = l.now_ms();
    let path = journal_path(req);
    l.journal.arrive(now, req, &request_ns(req), &path)
}

/// The request of journal entry `seq` was answered with `status` (`None`: dropped).
pub(super) fn answered(state: &Arc<State>, seq: Option<usize>, status: Option<u16>) {
    if let Some(seq) = seq {
        let mut l = state.levers();
        let now = l.now_ms();
        l.journal.answered(seq, now, status);
    }
}

/// `/a/b` for `/a/b.json` (the path as given otherwise).
fn journal_path(req: &Request<Incoming>) -> String {
    let decoded = percent_decode_str(req.uri().path()).decode_utf8_lossy();
    match decoded.strip_suffix(".json").map(path::data_segments) {
        Some(Ok(segs)) => format!("/{}", segs.join("/")),
        _ => decoded.into_owned(),
    }
}

/// A data request, with the outage and lost-responses levers applied around it.
async fn answer(state: &Arc<State>, req: Request<Incoming>) -> Reply {
    let is_write = is_write(req.method());
    let refusal = is_write.then(|| (req.method().to_string(), journal_path(&req)));
    let res = serve(state, req).await?;
    let status = res.status();
    if let Some((method, path)) =
        refusal.filter(|_| status.is_client_error() && status != StatusCode::PRECONDITION_FAILED)
    {
        let reason = res
            .extensions()
            .get::<TooBigWrite>()
            .map(|_| TOO_BIG_REASON);
        state
            .levers()
            .refuse(&method, &path, status.as_u16(), reason);
    }
    if is_write && res.status().is_success() {
        match state.levers().lose_response() {
            None => {}
            Some(FaultMode::Drop) => return Err(Dropped),
            Some(FaultMode::ServerError) => {
                return Ok(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error (injected by the emulator's lost-responses lever; the write was applied)",
                ))
            }
        }
    }
    Ok(res)
}

async fn serve(state: &Arc<State>, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    let raw_path = req.uri().path().to_string();
    let decoded = percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let data_path = decoded.strip_suffix(".json");
    let parsed_segs = data_path.map(path::data_segments);

    // Count, then latency, then an outage and injected faults: before anything else. A write
    // is counted by what it said of triggers (a bad value: in neither count, refused below).
    let no_triggers = is_write(&method)
        .then(|| triggers::disabled(&query_params(&req)).ok())
        .flatten();
    let (latency, fault_p) = {
        let mut l = state.levers();
        let key = match &parsed_segs {
            Some(Ok(segs)) => format!("/{}", segs.join("/")),
            _ => decoded.clone(),
        };
        l.count(method.as_str(), &key);
        if let Some(disabled) = no_triggers {
            l.triggers.count(method.as_str(), &key, disabled);
        }
        (l.latency_ms, l.unavailable_probability)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let delay = {
        let mut l = state.levers();
        match (&mut l.delay, &parsed_segs) {
            (Some(d), Some(Ok(segs))) => {
                d.take(&method, &request_ns(&req), &format!("/{}", segs.join("/")))
            }
            _ => None,
        }
    };
    if let Some((d, release)) = delay {
        let released = release.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = released => {}
        }
        if let Some(d) = &mut state.levers().delay {
            d.done();
        }
    }
    let outage = state.levers().outage(&request_ns(&req));
    match outage {
        None => {}
        Some(FaultMode::Drop) => return Err(Dropped),
        Some(FaultMode::ServerError) => {
            return Ok(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error (an outage injected by the emulator's outage lever); the request was not attempted",
            ))
        }
    }
    if fault_p > 0.0 && rand::random::<f64>() < fault_p {
        return Ok(error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable (injected by the emulator's faults lever); the request was not attempted"));
    }
    Ok(serve_data(state, req, method, raw_path, parsed_segs).await)
}

async fn serve_data(
    state: &Arc<State>,
    req: Request<Incoming>,
    method: Method,
    raw_path: String,
    parsed_segs: Option<crate::Result<Vec<String>>>,
) -> Response<Body> {
    let segs = match parsed_segs {
        None => return error(StatusCode::NOT_FOUND, format!("Not found: {raw_path} is not a data endpoint (data paths end in .json, e.g. /a/b.json)")),
        Some(Err(e)) => return bad_request(e.message),
        Some(Ok(segs)) => segs,
    };
    let params = query_params(&req);
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let ns = match namespace(&req, &params) {
        Ok(ns) => ns,
        Err(msg) => return bad_request(msg),
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

    // The token first (as the service: a refused token is refused before any rule is looked
    // at), then who the request acts as, then the levers' deny rules; Security Rules are
    // checked by each handler, against the data.
    let authorization = header(&req, "authorization");
    if !state.levers().token_accepted(authorization.as_deref()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized request.");
    }
    let who = match security::who(authorization.as_deref(), &params) {
        Ok((who, Some(o))) => {
            state.levers().last_override = Some(o);
            who
        }
        Ok((who, None)) => who,
        Err(msg) => return bad_request(msg),
    };
    if state.levers().is_denied(&ns, &segs) {
        return error(StatusCode::UNAUTHORIZED, "Permission denied");
    }
    let access = Access::new(who, state.rules().of(&ns), state.levers().now_ms());
    // Write parameters: `disableTriggers` (counted on arrival) and `writeSizeLimit`.
    let mut budget = None;
    if is_write(&method) {
        if let Err(msg) = triggers::disabled(&params) {
            return bad_request(msg);
        }
        let asked = match param("writeSizeLimit") {
            None => None,
            Some(v) => match WriteSizeLevel::parse(&v) {
                Some(l) => Some(l),
                None => return bad_request(write_size::bad_level(&v)),
            },
        };
        budget = state.levers().write_size.budget(&ns, asked);
    }
    let dr = DataReq {
        ns,
        segs,
        pretty,
        silent,
        want_etag,
        if_match: header(&req, "if-match"),
        if_none_match: header(&req, "if-none-match"),
        params,
        access,
        budget,
    };
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
            let res = match counted(state, || get(state, dr)) {
                Got::Answer(res) => res,
                Got::Big { read, dr, tag } => big_read(state, read, &dr, tag).await,
            };
            if let Some(bytes) = res.body().size_hint().exact() {
                state.trim.after(bytes);
            }
            res
        }
        Method::PUT => match read_body(req).await {
            Ok(body) => {
                let res = counted(state, || put(state, dr, &body));
                state.trim.after(body.len() as u64);
                res
            }
            Err(res) => res,
        },
        Method::POST => match read_body(req).await {
            Ok(body) => {
                let res = counted(state, || post(state, dr, &body));
                state.trim.after(body.len() as u64);
                res
            }
            Err(res) => res,
        },
        Method::PATCH => {
            if dr.want_etag {
                return bad_request(
                    "X-Firebase-ETag is not supported on PATCH (an update cannot be conditional)",
                );
            }
            match read_body(req).await {
                Ok(body) => {
                    let res = counted(state, || patch(state, dr, &body));
                    state.trim.after(body.len() as u64);
                    res
                }
                Err(res) => res,
            }
        }
        Method::DELETE => counted(state, || delete(state, dr)),
        other => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Method {other} is not supported"),
        ),
    }
}

/// Run a handler and add the store work it did to the request counts (`storeSteps`).
fn counted<R>(state: &State, handler: impl FnOnce() -> R) -> R {
    let (res, steps) = store::measured(handler);
    state.levers().store_steps += steps;
    res
}

/// `print=pretty`: the same JSON, indented.
fn pretty(json: Vec<u8>, pretty: bool) -> Vec<u8> {
    if !pretty {
        return json;
    }
    serde_json::from_slice::<Value>(&json)
        .and_then(|v| serde_json::to_vec_pretty(&v))
        .unwrap_or(json)
}

/// A stored value (null when missing) as the request's JSON.
fn value_json(node: Option<NodeRef<'_>>, dr: &DataReq) -> Vec<u8> {
    let json = store::render(node, Read::Value, Form::Plain, usize::MAX).expect("no limit");
    pretty(json, dr.pretty)
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    json_body(status, full(body))
}

fn json_body(status: StatusCode, body: Body) -> Response<Body> {
    respond(status, body, Some("application/json; charset=utf-8"))
}

/// Whether a response carries the ETag: asked for with `X-Firebase-ETag: true`, or a
/// conditional request (`if-match`, `if-none-match`), which the service answers with the ETag
/// whether asked or not.
fn sends_etag(dr: &DataReq) -> bool {
    dr.want_etag || dr.if_match.is_some() || dr.if_none_match.is_some()
}

/// 200 with the value (204 under `print=silent`), plus the ETag when asked for with
/// `X-Firebase-ETag: true` or when the request is conditional (`if-match`, `if-none-match`): the
/// service answers those with the ETag whether asked or not.
fn ok_json(dr: &DataReq, body: impl FnOnce() -> Vec<u8>, tag: Option<String>) -> Response<Body> {
    let res = if dr.silent {
        respond(StatusCode::NO_CONTENT, full(Bytes::new()), None)
    } else {
        json_bytes(StatusCode::OK, body())
    };
    with_etag(res, if sends_etag(dr) { tag } else { None })
}

/// What a GET's handler decided under the store's lock: its answer, or a big read to stream
/// from a snapshot once the lock is released (`streamed`).
enum Got {
    Answer(Response<Body>),
    Big {
        read: BigRead,
        dr: DataReq,
        tag: Option<String>,
    },
}

impl From<Response<Body>> for Got {
    fn from(res: Response<Body>) -> Self {
        Got::Answer(res)
    }
}

/// A big read's answer: 200 with the streamed body (and the ETag taken under the lock), or the
/// same 400 as an unstreamed read over the response-size limit.
async fn big_read(
    state: &State,
    read: BigRead,
    dr: &DataReq,
    tag: Option<String>,
) -> Response<Body> {
    match read.body().await {
        Ok(body) => {
            state.levers().streamed_reads += 1;
            with_etag(
                json_body(StatusCode::OK, body),
                if sends_etag(dr) { tag } else { None },
            )
        }
        Err(Refusal::TooBig) => bad_request(TOO_BIG),
        Err(Refusal::Failed) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error: the emulator failed to write the response",
        ),
    }
}

/// The service's answer to a read whose response would pass its size limit.
pub const TOO_BIG: &str =
    "The data requested exceeds the maximum size that can be accessed with a single request.";

fn stream(state: &Arc<State>, dr: DataReq) -> Response<Body> {
    if dr
        .params
        .iter()
        .any(|(k, _)| !NEUTRAL_PARAMS.contains(&k.as_str()))
    {
        return bad_request("This emulator does not support query parameters on event streams");
    }
    if let Some(code) = state.levers().stream_refusal {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        return super::response::error(status, "Event streams are refused here (streams lever)");
    }
    if let Some(res) = dr.access.read(&state.store(), &dr.ns, &dr.segs, None) {
        return res;
    }
    let body = sse::open(state.clone(), dr.ns, dr.segs);
    respond(StatusCode::OK, body, Some("text/event-stream"))
}

fn get(state: &Arc<State>, dr: DataReq) -> Got {
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
            return bad_request(format!("Invalid shallow parameter {other:?}: use true")).into()
        }
    };
    if shallow {
        if let Some((k, _)) = dr
            .params
            .iter()
            .find(|(k, _)| k != "shallow" && !NEUTRAL_PARAMS.contains(&k.as_str()))
        {
            return bad_request(format!("Mixing 'shallow' and '{k}' is not allowed: shallow cannot be combined with other query parameters")).into();
        }
    }
    let query = match Query::from_params(&dr.params) {
        Ok(q) => q,
        Err(e) => return bad_request(e.message).into(),
    };
    let form = match dr
        .params
        .iter()
        .rev()
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.as_str())
    {
        None => Form::Plain,
        Some("export") => Form::Export,
        Some(other) => {
            return bad_request(format!(
                "Invalid format parameter {other:?}: use \"export\" (the data with priorities)"
            ))
            .into()
        }
    };
    let (body, tag) = {
        let store = state.store();
        if let Some(res) = dr.access.read(&store, &dr.ns, &dr.segs, Some(&query)) {
            return res.into();
        }
        let node = store.node(&dr.ns, &dr.segs);
        let tag = (dr.want_etag || dr.if_none_match.is_some()).then(|| etag(node));
        if dr.if_none_match.is_some() && dr.if_none_match == tag {
            return with_etag(
                respond(StatusCode::NOT_MODIFIED, full(Bytes::new()), None),
                tag,
            )
            .into();
        }
        let (limit, stream_above) = {
            let l = state.levers();
            (l.max_response_bytes, l.stream_above_bytes)
        };
        // A plain read of a big object: streamed from a snapshot after the lock is released
        // (`streamed`); `print=pretty` is re-indented whole, as before.
        if !dr.silent && !dr.pretty && !shallow && query.is_empty() {
            if let Some(n @ NodeRef::Obj(_)) = node {
                if n.size_within(stream_above as u64).is_none() {
                    let snapshot = store.snapshot(&dr.ns, &dr.segs).expect("the node is there");
                    drop(store);
                    let read = BigRead {
                        snapshot,
                        form,
                        limit,
                    };
                    return Got::Big { read, dr, tag };
                }
            }
        }
        let body = if dr.silent {
            Vec::new()
        } else {
            let read = if shallow {
                Read::Shallow
            } else {
                Read::Query(&query)
            };
            match store::render(node, read, form, limit) {
                Ok(json) => pretty(json, dr.pretty),
                Err(store::TooBig) => return bad_request(TOO_BIG).into(),
            }
        };
        (body, tag)
    };
    ok_json(&dr, || body, tag).into()
}

/// The 412 for a failed `if-match`: the current value as plain JSON and its ETag.
fn precondition_failed(current: Option<NodeRef<'_>>, dr: &DataReq) -> Response<Body> {
    let body = value_json(current, dr);
    with_etag(
        json_bytes(StatusCode::PRECONDITION_FAILED, body),
        Some(etag(current)),
    )
}

/// Publish a write to the open event streams (only built when someone listens).
fn publish(state: &State, event: impl FnOnce() -> WriteEvent) {
    if state.events.receiver_count() > 0 {
        let _ = state.events.send(Arc::new(event()));
    }
}

fn stored(node: &Option<store::Node>) -> Value {
    node.as_ref()
        .map(|n| n.view().to_stored_value())
        .unwrap_or(Value::Null)
}

/// A write at `<path>/.priority` must write a priority.
fn check_priority_write(dr: &DataReq, node: Option<&store::Node>) -> Option<Response<Body>> {
    if dr.segs.last().map(String::as_str) != Some(PRIORITY) {
        return None;
    }
    let msg = store::check_priority(node?).err()?;
    Some(bad_request(msg))
}

fn put(state: &Arc<State>, dr: DataReq, body: &[u8]) -> Response<Body> {
    // Parse outside the lock; resolve and apply under it.
    let parsed = match store::parse(body, dr.segs.len()) {
        Ok(p) => p,
        Err(e) => return bad_request(e.0),
    };
    if let Some(res) = check_priority_write(&dr, parsed.node.as_ref()) {
        return res;
    }
    let mut node = parsed.node;
    let (echo, tag) = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        let current = store.node(&dr.ns, &dr.segs);
        if parsed.has_sv {
            if let Some(n) = &mut node {
                store::resolve(n, current, now);
            }
        }
        if let Some(res) = dr
            .access
            .write(&store, &dr.ns, &dr.segs, &[(&[], node.as_ref())])
        {
            return res;
        }
        if write_size::too_big(dr.budget, body.len(), [current]) {
            return write_too_big();
        }
        if let Some(expected) = &dr.if_match {
            if *expected != etag(current) {
                return precondition_failed(current, &dr);
            }
        }
        let view = node.as_ref().map(|n| n.view());
        let echo = (!dr.silent).then(|| value_json(view, &dr));
        let tag = (dr.want_etag || dr.if_match.is_some()).then(|| etag(view));
        publish(state, || WriteEvent::Put {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            data: stored(&node),
        });
        store.set(&dr.ns, &dr.segs, node);
        (echo, tag)
    };
    ok_json(&dr, || echo.unwrap_or_default(), tag)
}

fn delete(state: &Arc<State>, dr: DataReq) -> Response<Body> {
    {
        let mut store = state.store();
        if let Some(res) = dr.access.write(&store, &dr.ns, &dr.segs, &[(&[], None)]) {
            return res;
        }
        let current = store.node(&dr.ns, &dr.segs);
        if write_size::too_big(dr.budget, 0, [current]) {
            return write_too_big();
        }
        if let Some(expected) = &dr.if_match {
            if *expected != etag(current) {
                return precondition_failed(current, &dr);
            }
        }
        store.set(&dr.ns, &dr.segs, None);
        publish(state, || WriteEvent::Put {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            data: Value::Null,
        });
    }
    ok_json(&dr, || b"null".to_vec(), Some(etag(None)))
}

fn post(state: &Arc<State>, dr: DataReq, body: &[u8]) -> Response<Body> {
    if dr.segs.last().map(String::as_str) == Some(PRIORITY) {
        return bad_request("Invalid path: nothing can be pushed under .priority (a priority is a number or a string: PUT it)");
    }
    if dr.segs.len() + 1 >= MAX_DEPTH {
        return bad_request(format!("Invalid path: a pushed child would be {} levels deep; paths must be fewer than {MAX_DEPTH} levels deep", dr.segs.len() + 1));
    }
    let parsed = match store::parse(body, dr.segs.len() + 1) {
        Ok(p) => p,
        Err(e) => return bad_request(e.0),
    };
    let mut node = parsed.node;
    let (name, tag) = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        let name = state.push_ids.lock().expect("push id lock").next_id(now);
        let mut at = dr.segs.clone();
        at.push(name.clone());
        if let Some(n) = &mut node {
            store::resolve(n, None, now);
        }
        if let Some(res) = dr
            .access
            .write(&store, &dr.ns, &at, &[(&[], node.as_ref())])
        {
            return res;
        }
        if write_size::too_big(dr.budget, body.len(), []) {
            return write_too_big();
        }
        let tag = dr.want_etag.then(|| etag(node.as_ref().map(|n| n.view())));
        publish(state, || WriteEvent::Put {
            ns: dr.ns.clone(),
            path: at.clone(),
            data: stored(&node),
        });
        store.set(&dr.ns, &at, node);
        (name, tag)
    };
    ok_json(
        &dr,
        || pretty(json!({ "name": name }).to_string().into_bytes(), dr.pretty),
        tag,
    )
}

fn patch(state: &Arc<State>, dr: DataReq, body: &[u8]) -> Response<Body> {
    let mut entries = match store::parse_update(body, dr.segs.len()) {
        Ok(e) => e,
        Err(e) => return bad_request(e.0),
    };
    let paths: Vec<Vec<String>> = entries.iter().map(|e| e.rel.clone()).collect();
    if let Some((a, b)) = store::check_disjoint(&paths) {
        let (a, b) = (&entries[a].key, &entries[b].key);
        return bad_request(format!(
            "Invalid data; update paths {a:?} and {b:?} overlap (one is an ancestor of the other)"
        ));
    }
    let echo = {
        let mut store = state.store();
        let now = state.levers().now_ms();
        // The update's location, looked up once: each entry's node is found from there.
        let at = store.node(&dr.ns, &dr.segs);
        for e in entries.iter_mut().filter(|e| e.data.has_sv) {
            if let Some(n) = &mut e.data.node {
                store::resolve(n, at.and_then(|a| a.descend(&e.rel)), now);
            }
        }
        let writes: Vec<_> = entries
            .iter()
            .map(|e| (&e.rel[..], e.data.node.as_ref()))
            .collect();
        if let Some(res) = dr.access.write(&store, &dr.ns, &dr.segs, &writes) {
            return res;
        }
        if dr.budget.is_some() {
            let replaced = entries.iter().map(|e| at.and_then(|n| n.descend(&e.rel)));
            if write_size::too_big(dr.budget, body.len(), replaced) {
                return write_too_big();
            }
        }
        let echo = (!dr.silent).then(|| {
            let map: Map<String, Value> = entries
                .iter()
                .map(|e| {
                    let v = e.data.node.as_ref().map(|n| n.view().to_value());
                    (e.key.clone(), v.unwrap_or(Value::Null))
                })
                .collect();
            pretty(Value::Object(map).to_string().into_bytes(), dr.pretty)
        });
        publish(state, || WriteEvent::Patch {
            ns: dr.ns.clone(),
            path: dr.segs.clone(),
            entries: entries
                .iter()
                .map(|e| (e.key.clone(), e.rel.clone(), stored(&e.data.node)))
                .collect(),
        });
        store.update(
            &dr.ns,
            &dr.segs,
            entries.into_iter().map(|e| (e.rel, e.data.node)).collect(),
        );
        echo
    };
    ok_json(&dr, || echo.unwrap_or_default(), None)
}
