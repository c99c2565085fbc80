//! The delay lever (`/.emulator/delay`): the next data requests matching a method and a path (and
//! a namespace) wait a while before they are served, then are served as usual — a request held
//! up on the way, e.g. a write applied and answered only while its client is paused.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::response::{bad_request, json_response, read_json, Body};
use super::state::State;
use crate::rtdb::path;

#[derive(Debug, Clone)]
pub struct Delay {
    /// `None`: any method.
    method: Option<String>,
    /// `/a/b`
    path: String,
    /// `None`: any namespace.
    ns: Option<String>,
    ms: u64,
    /// Requests still to delay (`None`: all).
    left: Option<u64>,
    /// Requests delayed so far, and those waiting now.
    delayed: u64,
    waiting: u64,
    /// Wakes the requests waiting now (the lever turned off).
    release: Arc<tokio::sync::Notify>,
}

impl Delay {
    /// How long a request (`method`, namespace `ns`, `path` as `/a/b`) waits, if it matches,
    /// and what ends its wait early (the lever turned off); it then counts as waiting until
    /// `done`.
    pub fn take(
        &mut self,
        method: &Method,
        ns: &str,
        path: &str,
    ) -> Option<(Duration, Arc<tokio::sync::Notify>)> {
        let matches = self.method.as_deref().is_none_or(|m| m == method.as_str())
            && self.ns.as_deref().is_none_or(|n| n == ns)
            && self.path == path
            && self.left != Some(0);
        if !matches {
            return None;
        }
        if let Some(n) = &mut self.left {
            *n -= 1;
        }
        self.delayed += 1;
        self.waiting += 1;
        Some((Duration::from_millis(self.ms), self.release.clone()))
    }
    /// A delayed request goes on.
    pub fn done(&mut self) {
        self.waiting = self.waiting.saturating_sub(1);
    }
    fn json(&self) -> Value {
        json!({
            "method": self.method,
            "path": self.path,
            "ns": self.ns,
            "ms": self.ms,
            "count": self.left,
            "delayed": self.delayed,
            "waiting": self.waiting,
        })
    }
}

/// The settings from `{"method": "PUT", "path": "a/b", "ns": "<namespace>", "ms": n, "count": k}`.
fn parse(b: &Value) -> Option<Delay> {
    let text = |k: &str| match b.get(k) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    };
    let segs = path::segments(b.get("path")?.as_str()?).ok()?;
    Some(Delay {
        method: text("method")?.map(|m| m.to_ascii_uppercase()),
        path: format!("/{}", segs.join("/")),
        ns: text("ns")?,
        ms: b.get("ms")?.as_u64()?,
        left: match b.get("count") {
            None => Some(1),
            Some(Value::Null) => None,
            Some(v) => Some(v.as_u64()?),
        },
        delayed: 0,
        waiting: 0,
        release: Arc::default(),
    })
}

/// `PUT /.emulator/delay` sets it, `GET` shows it (with `delayed` and `waiting`), `DELETE`
/// turns it off and lets the requests waiting now go on at once.
pub async fn lever(state: &State, req: Request<Incoming>) -> Response<Body> {
    let ok = |v: Value| json_response(StatusCode::OK, &v, false);
    match *req.method() {
        Method::PUT => match read_json(req).await {
            Ok(b) => match parse(&b) {
                Some(d) => {
                    let v = d.json();
                    state.levers().delay = Some(d);
                    ok(v)
                }
                None => bad_request(
                    "delay: expected {\"path\": \"a/b\", \"ms\": <non-negative integer>, \"method\": \"PUT\" (default: any), \
                     \"ns\": \"<namespace>\" (default: any), \"count\": <requests to delay, default 1, null for all>}",
                ),
            },
            Err(res) => res,
        },
        Method::DELETE => {
            if let Some(d) = state.levers().delay.take() {
                d.release.notify_waiters();
            }
            ok(Value::Null)
        }
        _ => ok(state
            .levers()
            .delay
            .as_ref()
            .map_or(Value::Null, Delay::json)),
    }
}
