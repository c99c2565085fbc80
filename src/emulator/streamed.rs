//! Big reads streamed from a snapshot. A plain read of a node whose JSON passes the `limits`
//! lever's `streamAboveBytes` (`DEFAULT_STREAM_ABOVE_BYTES`) is not rendered into one buffer
//! under the store's lock, which would hold the whole response in memory beside the data (a
//! backup of a whole database: twice the data at the peak) and keep every writer waiting while
//! it is written. Its handler takes a `store::Snapshot` under the lock instead (O(chunks); the
//! chunks are shared, and a write afterwards copies only the chunks it changes), and here, on a
//! blocking thread, after the lock is released:
//!
//! 1. the response is counted (`store::rendered_len`, nothing kept), so a read over the
//!    response-size limit is still refused with the service's 400 before any byte is sent, and
//!    the body's length is known (`Content-Length`, as for any other answer);
//! 2. the same JSON is written again in pieces of `PIECE_BYTES` into a channel of
//!    `PIECES_IN_FLIGHT`, which the response body drains: the writer waits while the client
//!    reads slowly, so the memory a big read takes is bounded whatever the client's speed, and
//!    a client that goes away ends it.
//!
//! Both passes read the same immutable snapshot with the same code as `store::render`, so the
//! bytes are those an unstreamed read returns, and the body shows the data as it was when the
//! read arrived, whatever is written meanwhile.

use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use tokio::sync::{mpsc, oneshot};

use super::response::Body;
use super::store::{self, Form, Snapshot};

/// Responses up to this many bytes (about: `NodeRef::size_within`) are rendered whole under the
/// lock, as small ones always were: a buffer of 4 MB beside the data costs nothing worth
/// saving, and writing it takes a few milliseconds of the lock; a thread, two passes and a
/// channel are worth it only above that.
pub const DEFAULT_STREAM_ABOVE_BYTES: usize = 4 << 20;
/// The body is sent in pieces of about this size.
const PIECE_BYTES: usize = 256 << 10;
/// Pieces written and not yet taken by the connection, at most (with the one being written and
/// the one being sent: about 1.5 MB per big read in flight).
const PIECES_IN_FLIGHT: usize = 4;

/// A big read: what to write, how, and the response-size limit.
#[derive(Debug)]
pub struct BigRead {
    pub snapshot: Snapshot,
    pub form: Form,
    /// The response-size limit (`limits` lever's `responseBytes`).
    pub limit: usize,
}

/// Why a big read has no body.
#[derive(Debug)]
pub enum Refusal {
    /// Over the response-size limit.
    TooBig,
    /// Writing it failed (a panic on its thread).
    Failed,
}

impl BigRead {
    /// Count the response, then stream it: the body once its length is known and within the
    /// limit (the rest is written while the body is read).
    pub async fn body(self) -> Result<Body, Refusal> {
        let (len_tx, len_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(PIECES_IN_FLIGHT);
        tokio::task::spawn_blocking(move || {
            let node = self.snapshot.view();
            let len = store::rendered_len(node, self.form, self.limit);
            let within = len.is_ok();
            if len_tx.send(len).is_err() || !within {
                return;
            }
            let mut out = Pieces {
                tx,
                buf: Vec::with_capacity(PIECE_BYTES),
            };
            // An error here is the client gone: nothing more to send.
            let _ = store::render_value(&mut out, node, self.form).and_then(|()| out.flush());
        });
        match len_rx.await {
            Ok(Ok(len)) => Ok(Streamed {
                rx,
                left: len as u64,
            }
            .boxed_unsync()),
            Ok(Err(store::TooBig)) => Err(Refusal::TooBig),
            Err(_) => Err(Refusal::Failed),
        }
    }
}

/// The writer side: JSON cut into pieces sent to the body, waiting while the channel is full.
struct Pieces {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl Pieces {
    fn send(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE_BYTES));
        self.tx
            .blocking_send(Bytes::from(piece))
            .map_err(|_| std::io::Error::other("the client went away"))
    }
}

impl Write for Pieces {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= PIECE_BYTES {
            self.send()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.send()
        }
    }
}

/// The body side: the pieces as they come, of a known length.
struct Streamed {
    rx: mpsc::Receiver<Bytes>,
    left: u64,
}

impl hyper::body::Body for Streamed {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(piece)) => {
                self.left = self.left.saturating_sub(piece.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(piece))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}
