//! The request journal (`/.emulator/journal`, off by default): while on, every data request is
//! logged with its arrival and its answer in server time, its method, namespace and path, and
//! the client it came from (the peer address of its connection, so a test that gives each
//! client a connection of its own, e.g. through a proxy per process, can tell clients apart),
//! what a write asked for (`disableTriggers`, `writeSizeLimit`) and how it ended. Bounded: past `MAX_ENTRIES`, requests are only counted (`overflow`).

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::response::{json_response, Body};
use super::state::State;

/// The most entries kept.
pub const MAX_ENTRIES: usize = 100_000;

/// The peer address of the connection a request came on (set by the server on each request).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

#[derive(Debug, Clone)]
struct Entry {
    /// Server ms when the request arrived (before any lever delayed it).
    at: i64,
    /// Server ms when its answer was ready (or its connection dropped); `None` while in flight.
    done_at: Option<i64>,
    method: String,
    ns: String,
    path: String,
    peer: Option<SocketAddr>,
    /// The answer's status; `None` when the connection was dropped (or still in flight).
    status: Option<u16>,
    /// A write sent with `disableTriggers=true`.
    disable_triggers: bool,
    /// The `writeSizeLimit` a write asked for, as sent.
    write_size_limit: Option<String>,
}

#[derive(Debug, Default)]
pub struct Journal {
    on: bool,
    entries: Vec<Entry>,
    overflow: u64,
}

impl Journal {
    pub fn is_on(&self) -> bool {
        self.on
    }
    /// A data request arrived (`path` as `/a/b`): its entry's number, when journaling.
    pub fn arrive(
        &mut self,
        now: i64,
        req: &Request<Incoming>,
        ns: &str,
        path: &str,
    ) -> Option<usize> {
        if !self.on {
            return None;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.overflow += 1;
            return None;
        }
        let params = super::data::query_params(req);
        let param = |name: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let write = req.method() != Method::GET;
        self.entries.push(Entry {
            at: now,
            done_at: None,
            method: req.method().to_string(),
            ns: ns.to_string(),
            path: path.to_string(),
            peer: req.extensions().get::<Peer>().map(|p| p.0),
            status: None,
            disable_triggers: write && param("disableTriggers").as_deref() == Some("true"),
            write_size_limit: param("writeSizeLimit").filter(|_| write),
        });
        Some(self.entries.len() - 1)
    }
    /// Entry `seq` was answered with `status` (`None`: its connection was dropped).
    pub fn answered(&mut self, seq: usize, now: i64, status: Option<u16>) {
        if let Some(e) = self.entries.get_mut(seq) {
            e.done_at = Some(now);
            e.status = status;
        }
    }
    fn json(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .enumerate()
            .map(|(seq, e)| {
                json!({
                    "seq": seq,
                    "at": e.at,
                    "doneAt": e.done_at,
                    "method": e.method,
                    "ns": e.ns,
                    "path": e.path,
                    "peer": e.peer.map(|p| p.to_string()),
                    "status": e.status,
                    "disableTriggers": e.disable_triggers,
                    "writeSizeLimit": e.write_size_limit,
                })
            })
            .collect();
        json!({ "on": self.on, "entries": entries, "overflow": self.overflow })
    }
}

/// `PUT /.emulator/journal` starts a new journal (the previous one is cleared); `GET` shows it
/// (`{"on", "entries": [{"seq", "at", "doneAt", "method", "ns", "path", "peer", "status",
/// "disableTriggers", "writeSizeLimit"}], "overflow"}`); `DELETE` turns it off and clears it.
pub fn lever(state: &State, method: &Method) -> Response<Body> {
    let mut levers = state.levers();
    let journal = &mut levers.journal;
    match *method {
        Method::PUT => {
            *journal = Journal {
                on: true,
                ..Journal::default()
            }
        }
        Method::DELETE => *journal = Journal::default(),
        _ => {}
    }
    json_response(StatusCode::OK, &journal.json(), false)
}
