//! Streaming reads: RTDB event streams (`Accept: text/event-stream`, parsed by the
//! `eventsource-stream` crate) and JSON bodies too large to buffer (backups).

use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use super::transport::{describe, norm, Reply, Req, WriteError};
use super::Client;
use crate::{Error, ErrorCode, Result};

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
    rx: tokio::sync::mpsc::Receiver<Result<StreamEvent>>,
}

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<StreamEvent>> {
        self.rx.recv().await
    }
}

impl Client {
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
            let mut events = resp.bytes_stream().eventsource();
            while let Some(ev) = events.next().await {
                let (item, last) = match ev {
                    Ok(ev) => match stream_event(&ev) {
                        Some(item) => (item, false),
                        None => continue, // an event RTDB does not define
                    },
                    Err(e) => (
                        Err(Error::new(
                            ErrorCode::ConnectionFailed,
                            format!("Event stream on {at} broke: {}", broke(e)),
                        )),
                        true,
                    ),
                };
                if tx.send(item).await.is_err() || last {
                    return; // receiver dropped, or the stream failed
                }
            }
        });
        Ok(EventStream { rx })
    }

    /// GET `path` and hand back the JSON body chunk by chunk, never buffered whole. Failures before
    /// the body starts are retried and mapped like `get`'s; a body that breaks off, or sends
    /// nothing for `request_timeout`, ends the stream with a CONNECTION_FAILED error.
    /// `format` `Export`: with priorities (`format=export`).
    pub async fn get_stream(
        &self,
        path: &str,
        format: super::Format,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin + 'static> {
        let p = norm(path)?;
        self.stream_body(format.apply(Req::new(Method::GET, &p)))
            .await
    }

    /// A shallow listing of `path` (`shallow=true`), streamed as `get_stream` streams a body.
    pub async fn get_shallow_stream(
        &self,
        path: &str,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin + 'static> {
        let p = norm(path)?;
        self.stream_body(Req::new(Method::GET, &p).param("shallow", "true"))
            .await
    }

    async fn stream_body(
        &self,
        mut req: Req,
    ) -> Result<impl futures_util::Stream<Item = Result<Bytes>> + Send + Unpin + 'static> {
        let p = req.path.clone();
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

/// Why an event stream failed, without the URL.
fn broke(e: eventsource_stream::EventStreamError<reqwest::Error>) -> String {
    match e {
        eventsource_stream::EventStreamError::Transport(e) => e.without_url().to_string(),
        other => other.to_string(),
    }
}

/// An RTDB event as a `StreamEvent`; `None` for events RTDB does not define.
fn stream_event(ev: &Event) -> Option<Result<StreamEvent>> {
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
    let data = ev.data.as_str();
    Some(match ev.event.as_str() {
        "put" => parse_put(data).map(|(path, data)| StreamEvent::Put { path, data }),
        "patch" => parse_put(data).map(|(path, data)| StreamEvent::Patch { path, data }),
        "keep-alive" => Ok(StreamEvent::KeepAlive),
        "cancel" => Ok(StreamEvent::Cancel(
            match serde_json::from_str::<Value>(data) {
                Ok(Value::String(s)) => s,
                Ok(Value::Null) | Err(_) if data.is_empty() || data == "null" => {
                    "cancelled by the server".to_string()
                }
                _ => data.to_string(),
            },
        )),
        "auth_revoked" => Ok(StreamEvent::AuthRevoked),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The events RTDB sends, split across chunks at awkward places, through the same parser
    /// the client uses.
    #[tokio::test]
    async fn rtdb_events_across_chunks() {
        let chunks: Vec<std::result::Result<Bytes, std::io::Error>> = [
            &b"event: put\ndata: {\"path\":\"/\",\"data\":{\"a\":1}}\n"[..],
            b"\nevent: keep-alive\r\ndata: null\r\n\r\nevent: pat",
            b"ch\ndata: {\"path\":\"/b\",\"data\":{\"c\":2}}\n\n: comment\n\nevent: cancel\ndata: \"no\"\n\nevent: auth_revoked\ndata: \"x\"\n\nevent: odd\ndata: 1\n\n",
            b"event: put\ndata: {nope\n\n",
        ]
        .into_iter()
        .map(|c| Ok(Bytes::from_static(c)))
        .collect();
        let evs: Vec<Result<StreamEvent>> = futures_util::stream::iter(chunks)
            .eventsource()
            .filter_map(|e| async move { stream_event(&e.unwrap()) })
            .collect()
            .await;
        let (ok, bad) = evs.split_at(5);
        assert_eq!(
            ok.iter().map(|e| e.clone().unwrap()).collect::<Vec<_>>(),
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
        assert_eq!(bad.len(), 1);
        assert!(bad[0].is_err());
    }
}
