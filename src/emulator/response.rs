//! Building responses (JSON bodies, `{"error": ...}`, ETags) and reading JSON request bodies.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// An injected fault that closes the connection without an answer (the service's error: hyper
/// then drops the connection).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an emulator lever")
    }
}

impl std::error::Error for Dropped {}

/// A response, or a dropped connection.
pub type Reply = Result<Response<Body>, Dropped>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub fn respond(
    status: StatusCode,
    body: Body,
    content_type: Option<&'static str>,
) -> Response<Body> {
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

pub fn json_response(status: StatusCode, value: &Value, pretty: bool) -> Response<Body> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    respond(status, full(text), Some("application/json; charset=utf-8"))
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json_response(status, &json!({ "error": message.into() }), false)
}

pub fn bad_request(message: impl Into<String>) -> Response<Body> {
    error(StatusCode::BAD_REQUEST, message)
}

pub fn with_etag(mut res: Response<Body>, tag: Option<String>) -> Response<Body> {
    if let Some(tag) = tag {
        if let Ok(v) = HeaderValue::from_str(&tag) {
            res.headers_mut().insert("etag", v);
        }
    }
    res
}

/// The largest request body accepted (RTDB's REST write limit).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

pub async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    let bytes = read_body(req).await?;
    serde_json::from_slice(&bytes)
        .map_err(|_| bad_request("Invalid data; couldn't parse JSON object, array, or value."))
}

/// The request body (at most the REST write limit).
pub async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Write too large: a REST write can be at most 256 MB",
        )),
        Err(e) => Err(bad_request(format!("Could not read the request body: {e}"))),
    }
}
