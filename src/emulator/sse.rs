//! Event streams (`Accept: text/event-stream` on a GET). Every write is published, under the
//! store lock (so in write order), on a broadcast channel as a `WriteEvent` (`state`); each open stream
//! turns the writes that touch its node (an ancestor, the node or a descendant) into `put` or
//! `patch` events with paths relative to the streamed node, sends `keep-alive` events
//! periodically, and ends when the emulator stops or the client goes away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc};

use super::response::Body;
use super::state::{stopped, State, WriteEvent};
use super::store::to_output;

fn rel(path: &[String]) -> String {
    format!("/{}", path.join("/"))
}

fn sse(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The value below `data` at relative `segs` (null if absent).
fn descend(data: &Value, segs: &[String]) -> Value {
    let mut cur = data;
    for s in segs {
        match cur.as_object().and_then(|m| m.get(s)) {
            Some(v) => cur = v,
            None => return Value::Null,
        }
    }
    cur.clone()
}

/// A put of `data` at `path` as seen from a stream on `at`.
fn put_event(at: &[String], path: &[String], data: &Value) -> Option<Bytes> {
    if at.starts_with(path) {
        let sub = descend(data, &at[path.len()..]);
        Some(sse("put", &json!({"path": "/", "data": to_output(&sub)})))
    } else if path.starts_with(at) {
        Some(sse(
            "put",
            &json!({"path": rel(&path[at.len()..]), "data": to_output(data)}),
        ))
    } else {
        None
    }
}

/// The SSE messages a stream on `(ns, at)` sends for one write.
pub fn events_for(ns: &str, at: &[String], ev: &WriteEvent) -> Vec<Bytes> {
    match ev {
        WriteEvent::Put {
            ns: ens,
            path,
            data,
        } if ens == ns => put_event(at, path, data).into_iter().collect(),
        WriteEvent::Patch {
            ns: ens,
            path,
            entries,
        } if ens == ns => {
            if path.starts_with(at) {
                let data: Map<String, Value> = entries
                    .iter()
                    .map(|(k, _, v)| (k.clone(), to_output(v)))
                    .collect();
                vec![sse(
                    "patch",
                    &json!({"path": rel(&path[at.len()..]), "data": data}),
                )]
            } else if at.starts_with(path) {
                entries
                    .iter()
                    .filter_map(|(_, segs, v)| {
                        let full: Vec<String> = path.iter().chain(segs.iter()).cloned().collect();
                        put_event(at, &full, v)
                    })
                    .collect()
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// Open a stream on `(ns, at)`: the first event is a `put` of the current value.
pub fn open(state: Arc<State>, ns: String, at: Vec<String>) -> Body {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let (mut events, initial, keepalive_ms, close_after) = {
        let store = state.store.lock().expect("store lock");
        // Subscribe under the store lock: no write can slip between the snapshot and the feed.
        let events = state.events.subscribe();
        let initial = store.get(&ns, &at);
        let levers = state.levers.lock().expect("levers lock");
        (
            events,
            initial,
            levers.keepalive_ms,
            levers.stream_close_after_ms,
        )
    };
    // The `closeAfterMs` lever: the server ends the stream then.
    let closed_by_server = async move {
        match close_after {
            Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    };
    let mut shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        let first = sse("put", &json!({"path": "/", "data": to_output(&initial)}));
        if tx.send(first).await.is_err() {
            return;
        }
        let mut keepalive = tokio::time::interval(Duration::from_millis(keepalive_ms.max(1)));
        keepalive.tick().await;
        tokio::pin!(closed_by_server);
        loop {
            let msgs = tokio::select! {
                _ = stopped(&mut shutdown) => return,
                _ = &mut closed_by_server => return,
                _ = tx.closed() => return,
                _ = keepalive.tick() => vec![sse("keep-alive", &Value::Null)],
                ev = events.recv() => match ev {
                    Ok(ev) => events_for(&ns, &at, &ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Too far behind: resynchronise with the whole current value.
                        let now = state.store.lock().expect("store lock").get(&ns, &at);
                        vec![sse("put", &json!({"path": "/", "data": to_output(&now)}))]
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            // An event takes half a round trip of the latency lever to arrive.
            let latency = state.levers.lock().expect("levers lock").latency_ms;
            if latency > 1 && !msgs.is_empty() {
                tokio::time::sleep(Duration::from_millis(latency / 2)).await;
            }
            for m in msgs {
                if tx.send(m).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    StreamBody::new(stream.boxed()).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::emulator::test_segs as segs;
    fn text(b: Vec<Bytes>) -> Vec<String> {
        b.into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn put_relations() {
        let put = |p: &str, d: Value| WriteEvent::Put {
            ns: "n".into(),
            path: segs(p),
            data: d,
        };
        assert_eq!(
            text(events_for("n", &segs("a"), &put("a/b", json!(1)))),
            vec!["event: put\ndata: {\"path\":\"/b\",\"data\":1}\n\n"]
        );
        assert_eq!(
            text(events_for(
                "n",
                &segs("a/b"),
                &put("a", json!({"b": {"c": 2}}))
            )),
            vec!["event: put\ndata: {\"path\":\"/\",\"data\":{\"c\":2}}\n\n"]
        );
        assert_eq!(
            text(events_for("n", &segs("a/b"), &put("a", json!({"x": 1})))),
            vec!["event: put\ndata: {\"path\":\"/\",\"data\":null}\n\n"]
        );
        assert!(events_for("n", &segs("a/b"), &put("a/c", json!(1))).is_empty());
        assert!(events_for("other", &segs("a"), &put("a", json!(1))).is_empty());
    }

    #[test]
    fn patch_relations() {
        let patch = WriteEvent::Patch {
            ns: "n".into(),
            path: segs("a"),
            entries: vec![
                ("b/c".into(), segs("b/c"), json!(1)),
                ("d".into(), segs("d"), Value::Null),
            ],
        };
        assert_eq!(
            text(events_for("n", &segs(""), &patch)),
            vec!["event: patch\ndata: {\"path\":\"/a\",\"data\":{\"b/c\":1,\"d\":null}}\n\n"]
        );
        assert_eq!(
            text(events_for("n", &segs("a/b"), &patch)),
            vec!["event: put\ndata: {\"path\":\"/c\",\"data\":1}\n\n"]
        );
        assert_eq!(
            text(events_for("n", &segs("a/d/e"), &patch)),
            vec!["event: put\ndata: {\"path\":\"/\",\"data\":null}\n\n"]
        );
        assert!(events_for("n", &segs("x"), &patch).is_empty());
    }
}
