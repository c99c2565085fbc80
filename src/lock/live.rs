//! A node's value kept current in the background, for status probes at no request per probe:
//! the lock node (`lockingService.watchLockStatus()`, `getLockStatus({ cached: true })`) and the
//! history node (`runner.status()`).
//!
//! One task per node drives the same `Watch` the waiting pods use: the node's event stream (one
//! request to open it, then every change arrives as an event), keep-alive silence, reconnects
//! with backoff. Where streams are refused it reads the node every `POLL_EVERY` instead
//! (`LIVE_POLL`: less often while reads fail). Readers get the latest `NodeView` from a `tokio::sync::watch`
//! channel, without a request; `LiveNode::current` waits (bounded) for a view that is current.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

use crate::rtdb::Client;
use crate::{Error, ErrorCode, Result};

use super::policy::LIVE_POLL;
use super::record::{LockNode, LockStatus};
use super::watch::{Heard, Watch, STREAM_SILENCE};

/// Where streams are refused: how often the node is read.
pub const POLL_EVERY: Duration = LIVE_POLL.base_delay;
/// One polling read may take this long before the view counts as out of contact.
const POLL_DEADLINE: Duration = Duration::from_secs(2);

/// How the view is connected to the node.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// No answer yet.
    Connecting,
    /// The event stream is open: the value is current.
    Streaming,
    /// Streams are refused: the value is from the read that answered at `at`.
    Polling { at: Instant },
    /// Out of contact since `since` (`why` in words): the value is the last one known.
    Down { since: Instant, why: String },
}

/// The node as the background task last saw it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// `None` until the first answer; `Some(Value::Null)` for a missing node.
    pub value: Option<Value>,
    pub link: Link,
    /// Counts the changes of `value` (readers cache what they derive from it by this).
    pub changes: u64,
}

impl NodeView {
    /// The value is current: a stream is open, or the last polling read answered.
    pub fn is_current(&self) -> bool {
        self.value.is_some() && matches!(self.link, Link::Streaming | Link::Polling { .. })
    }

    /// Why the view is not current, in words (`None` when it is).
    pub fn why_not_current(&self) -> Option<String> {
        match &self.link {
            _ if self.is_current() => None,
            Link::Down { why, .. } => Some(why.clone()),
            _ => Some("no answer yet".into()),
        }
    }
}

/// A node kept current in the background; the task ends when this is dropped.
pub struct LiveNode {
    path: String,
    rx: watch::Receiver<Arc<NodeView>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LiveNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LiveNode {
    /// Start keeping `path` current (needs a tokio runtime). The first request goes out at once.
    pub fn start(client: Client, path: String) -> LiveNode {
        Self::start_with(client, path, STREAM_SILENCE)
    }

    /// `start`, with the keep-alive silence after which a stream counts as dead.
    pub fn start_with(client: Client, path: String, silence: Duration) -> LiveNode {
        let (tx, rx) = watch::channel(Arc::new(NodeView {
            value: None,
            link: Link::Connecting,
            changes: 0,
        }));
        let task = tokio::spawn(keep_current(client, path.clone(), silence, tx));
        LiveNode { path, rx, task }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The view now (no request).
    pub fn view(&self) -> Arc<NodeView> {
        self.rx.borrow().clone()
    }

    /// A receiver that sees every new view.
    pub fn subscribe(&self) -> watch::Receiver<Arc<NodeView>> {
        self.rx.clone()
    }

    /// The view once it is current, waiting up to `within`; CONNECTION_FAILED saying why not.
    pub async fn current(&self, within: Duration) -> Result<Arc<NodeView>> {
        let mut rx = self.rx.clone();
        let ready = async { rx.wait_for(|v| v.is_current()).await.map(|v| v.clone()) };
        match tokio::time::timeout(within, ready).await {
            Ok(Ok(v)) => Ok(v),
            _ => {
                let why = self.view().why_not_current().unwrap_or_default();
                Err(Error::new(
                    ErrorCode::ConnectionFailed,
                    format!(
                        "No current answer from the database for {} within {} ms ({why})",
                        self.path,
                        within.as_millis()
                    ),
                ))
            }
        }
    }
}

/// A `LiveNode` started on first use, shared by clones.
#[derive(Clone, Default)]
pub struct LiveCell(Arc<OnceLock<LiveNode>>);

impl LiveCell {
    /// The node's view, started (on the runtime of the caller) when first asked for.
    pub fn get(&self, client: &Client, path: &str) -> &LiveNode {
        self.0
            .get_or_init(|| LiveNode::start(client.clone(), path.to_string()))
    }
}

/// The background task: the stream while it lives, reads where streams are refused.
async fn keep_current(
    client: Client,
    path: String,
    silence: Duration,
    tx: watch::Sender<Arc<NodeView>>,
) {
    let mut watch = Watch::new(silence);
    // Polling reads that failed in a row (`LIVE_POLL`'s count, less one).
    let mut failed_polls = 0u32;
    let publish = |value: Option<Value>, link: Link| {
        tx.send_modify(|v| {
            let mut next = (**v).clone();
            if let Some(value) = value {
                if next.value.as_ref() != Some(&value) {
                    next.changes += 1;
                }
                next.value = Some(value);
            }
            next.link = link;
            *v = Arc::new(next);
        });
    };
    let down = |why: String| {
        let since = match &tx.borrow().link {
            Link::Down { since, .. } => *since,
            _ => Instant::now(),
        };
        Link::Down { since, why }
    };
    loop {
        if tx.is_closed() {
            return;
        }
        if let Err(e) = watch.ensure(&client, &path).await {
            publish(None, down(e.message));
        }
        if watch.live() {
            match watch.next(None).await {
                Heard::Changed => publish(Some(watch.value().clone()), Link::Streaming),
                Heard::Lost(why) => publish(None, down(why)),
                Heard::Timeout => {}
            }
        } else if watch.refused() {
            match tokio::time::timeout(POLL_DEADLINE, client.get(&path)).await {
                Ok(Ok(v)) => publish(Some(v), Link::Polling { at: Instant::now() }),
                Ok(Err(e)) => publish(None, down(e.message)),
                Err(_) => publish(
                    None,
                    down(format!("no answer within {} ms", POLL_DEADLINE.as_millis())),
                ),
            }
            failed_polls = match tx.borrow().link {
                Link::Polling { .. } => 0,
                _ => failed_polls.saturating_add(1),
            };
            tokio::time::sleep(LIVE_POLL.delay(failed_polls.saturating_add(1))).await;
        } else if let Some(at) = watch.reconnect_at() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        }
    }
}

/// `getLockStatus()` from a view of the lock node (no request): the holder, `isLocked` false
/// once its lease ran out by the server-time estimate; `None` when free or not known yet.
pub fn lock_status(client: &Client, view: &NodeView) -> Option<LockStatus> {
    match LockNode::parse(view.value.as_ref()?) {
        LockNode::Free { .. } => None,
        LockNode::Held(r) => {
            let expired = client
                .server_clock()
                .now_ms()
                .is_some_and(|now| r.expires_at <= now);
            Some(r.status(!expired))
        }
    }
}
