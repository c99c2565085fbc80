//! Watching a node at the cost of one open event stream: the lock node while waiting for it
//! (`nap`), and any node a status view keeps current (`next`, used by `lock::live`).
//!
//! - The node's event stream (`Accept: text/event-stream`): its first `put` is the whole value,
//!   later `put`/`patch` events are applied to a copy of it, so the waiter knows the holder, its
//!   renewals (lease end) and the release without a single further request.
//! - Keep-alives: a stream that says nothing (no event, no `keep-alive`) for `silence` is
//!   treated as dead (a half-open connection never ends by itself) and reopened.
//! - Reconnects: a stream that ends or breaks is reopened after a pause (`STREAM_RECONNECT`: with
//!   jitter, doubling while streams keep dying young, 0.5 s up to 30 s), so a flapping proxy
//!   costs little.
//! - Refused (the server or a proxy answers the stream request with an HTTP error, or cancels
//!   it): no more streams; the wait loop polls instead, with backoff and jitter.
//!
//! The caller decides what a wake-up means (`Wake`); this module only keeps the view current.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::rtdb::{Client, EventStream, StreamEvent};
use crate::Result;

use super::lease::is_connectivity;
use super::policy::STREAM_RECONNECT;
use super::record::{LockNode, LockRecord};

/// How long a stream may stay silent before it counts as dead. RTDB sends a `keep-alive` about
/// every 30 s.
pub const STREAM_SILENCE: Duration = Duration::from_secs(75);
/// A stream that lived this long was healthy: the next reconnect starts from the first pause.
const HEALTHY: Duration = Duration::from_secs(30);

/// Why a watch ended its nap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The time asked for passed.
    Timeout,
    /// The stream showed the node unlocked.
    Free,
    /// The stream showed another holder (or epoch).
    Changed,
    /// The stream ended, broke or went silent: the node's state is unknown.
    Lost,
}

/// What the stream said (`Watch::next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Heard {
    /// The time asked for passed.
    Timeout,
    /// The view changed (the first `put` of a stream included).
    Changed,
    /// The stream ended, broke, went silent or was cancelled: the view is no longer kept
    /// current (why, in words).
    Lost(String),
}

/// A node as its event stream shows it (the lock node for a waiting process, any node for a
/// status view).
pub(crate) struct Watch {
    stream: Option<EventStream>,
    /// The node's value as the stream showed it.
    value: Value,
    /// Streams were refused: poll from now on.
    refused: bool,
    /// No stream is opened before this (reconnect pause).
    not_before: Option<Instant>,
    /// Reconnects since the last healthy stream (`STREAM_RECONNECT`'s count).
    reconnects: u32,
    opened: Instant,
    heard: Instant,
    silence: Duration,
    /// Streams opened so far (each is one request).
    pub opens: u32,
}

impl Watch {
    pub fn new(silence: Duration) -> Watch {
        let now = Instant::now();
        Watch {
            stream: None,
            value: Value::Null,
            refused: false,
            not_before: None,
            reconnects: 0,
            opened: now,
            heard: now,
            silence,
            opens: 0,
        }
    }

    /// A stream is open: the view is current without requests.
    pub fn live(&self) -> bool {
        self.stream.is_some()
    }

    /// Streams were refused (an HTTP error, or cancelled by the server): read instead.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// The node's value as the stream last showed it.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// When the next stream may be opened (`None`: now).
    pub fn reconnect_at(&self) -> Option<Instant> {
        self.not_before.filter(|t| Instant::now() < *t)
    }

    /// Open the stream on `path` unless it is open, refused, or in its reconnect pause. `Err`:
    /// it was tried and failed (unreachable: tried again after a pause; an HTTP error: refused).
    pub async fn ensure(&mut self, client: &Client, path: &str) -> Result<()> {
        if self.stream.is_some() || self.refused || self.reconnect_at().is_some() {
            return Ok(());
        }
        self.opens += 1;
        match client.stream(path).await {
            Ok(s) => {
                let now = Instant::now();
                self.stream = Some(s);
                self.opened = now;
                self.heard = now;
                Ok(())
            }
            // Not reached: try again after a pause (poll meanwhile).
            Err(e) if is_connectivity(&e) => {
                self.pause_reconnect();
                Err(e)
            }
            // Refused (an HTTP error): this server or proxy does not pass event streams.
            Err(e) => {
                self.refused = true;
                Err(e)
            }
        }
    }

    fn pause_reconnect(&mut self) {
        self.stream = None;
        if self.opened.elapsed() >= HEALTHY {
            self.reconnects = 0;
        }
        self.reconnects = self.reconnects.saturating_add(1);
        self.not_before = Some(Instant::now() + STREAM_RECONNECT.delay(self.reconnects));
    }

    /// Wait for the stream's next change to the view, up to `deadline` (`None`: no limit).
    /// Keep-alives only prove the stream alive; a stream silent for longer than `silence`,
    /// ended or broken is lost (reopened after a pause by the next `ensure`).
    pub async fn next(&mut self, deadline: Option<tokio::time::Instant>) -> Heard {
        let far = || tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
        let deadline = deadline.unwrap_or_else(far);
        loop {
            let Some(s) = self.stream.as_mut() else {
                tokio::time::sleep_until(deadline).await;
                return Heard::Timeout;
            };
            let silent_at = tokio::time::Instant::from_std(self.heard + self.silence);
            let ev = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Heard::Timeout,
                _ = tokio::time::sleep_until(silent_at) => None,
                ev = s.next() => Some(ev),
            };
            let change = match ev {
                // Silent for too long, or ended, or broke: reopen after a pause.
                None => {
                    self.pause_reconnect();
                    return Heard::Lost(format!(
                        "the event stream was silent for {} s",
                        self.silence.as_secs()
                    ));
                }
                Some(None) => {
                    self.pause_reconnect();
                    return Heard::Lost("the event stream ended".into());
                }
                Some(Some(Err(e))) => {
                    self.pause_reconnect();
                    return Heard::Lost(e.message);
                }
                Some(Some(Ok(ev))) => ev,
            };
            self.heard = Instant::now();
            match change {
                StreamEvent::KeepAlive => continue,
                StreamEvent::Put { path, data } => apply(&mut self.value, &path, data, false),
                StreamEvent::Patch { path, data } => apply(&mut self.value, &path, data, true),
                // The server ended the stream for good (rules changed): poll.
                StreamEvent::Cancel(why) => {
                    self.stream = None;
                    self.refused = true;
                    return Heard::Lost(format!("the server cancelled the event stream ({why})"));
                }
                // The credential expired: a new stream gets a fresh token.
                StreamEvent::AuthRevoked => {
                    self.stream = None;
                    return Heard::Lost("the event stream's credential expired".into());
                }
            }
            return Heard::Changed;
        }
    }

    /// Nap up to `d`, returning early when the stream shows the node free, another holder, or
    /// the stream is lost. `last` follows the holder the stream shows (renewals included).
    pub async fn nap(&mut self, d: Duration, last: &mut Option<LockRecord>) -> Wake {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match self.next(Some(deadline)).await {
                Heard::Timeout => return Wake::Timeout,
                Heard::Lost(_) => return Wake::Lost,
                Heard::Changed => {}
            }
            match LockNode::parse(&self.value) {
                LockNode::Free { .. } => return Wake::Free,
                LockNode::Held(r) => {
                    let same = last
                        .as_ref()
                        .is_some_and(|l| l.executor_id == r.executor_id && l.epoch == r.epoch);
                    *last = Some(r);
                    if !same {
                        return Wake::Changed;
                    }
                }
            }
        }
    }
}

/// Apply a `put` (or `patch`: each key of `data` is a path below `path`) to `value`.
fn apply(value: &mut Value, path: &str, data: Value, patch: bool) {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if patch {
        if let Value::Object(m) = data {
            for (k, v) in m {
                let mut full = segs.clone();
                full.extend(k.split('/').filter(|s| !s.is_empty()));
                set(value, &full, v);
            }
        }
    } else {
        set(value, &segs, data);
    }
}

fn set(value: &mut Value, segs: &[&str], data: Value) {
    let Some((first, rest)) = segs.split_first() else {
        *value = data;
        return;
    };
    if !value.is_object() {
        if data.is_null() {
            return;
        }
        *value = Value::Object(Map::new());
    }
    let m = value.as_object_mut().expect("object");
    if rest.is_empty() && data.is_null() {
        m.remove(*first);
        return;
    }
    let child = m.entry(first.to_string()).or_insert(Value::Null);
    set(child, rest, data);
    if child.is_null() || child.as_object().is_some_and(Map::is_empty) {
        m.remove(*first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_applied_to_the_view() {
        let mut v = Value::Null;
        apply(
            &mut v,
            "/",
            json!({"executorId": "a", "epoch": 1, "expiresAt": 5}),
            false,
        );
        apply(&mut v, "/expiresAt", json!(9), false);
        assert_eq!(v, json!({"executorId": "a", "epoch": 1, "expiresAt": 9}));
        apply(
            &mut v,
            "/",
            json!({"executorId": null, "releasedAt": 3}),
            true,
        );
        assert_eq!(v, json!({"epoch": 1, "expiresAt": 9, "releasedAt": 3}));
        assert!(matches!(LockNode::parse(&v), LockNode::Free { epoch: 1 }));
        apply(&mut v, "/", Value::Null, false);
        assert_eq!(v, Value::Null);
        apply(&mut v, "/a/b", json!(1), false);
        assert_eq!(v, json!({"a": {"b": 1}}));
        apply(&mut v, "/a/b", Value::Null, false);
        assert_eq!(v, json!({}));
    }
}
