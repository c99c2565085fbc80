//! Running work while holding the lock: acquire (waiting per `WaitPolicy`), renew in the
//! background, check ownership between steps, release at the end (also on error).
//!
//! - Renewal (L3): a tokio task renews the lease every `renew_interval` (default timeout/3)
//!   with a conditional PUT on the last known ETag. A 412 showing another owner or epoch marks
//!   the guard LOST; transient errors are retried soon; if the local (monotonic) lease deadline
//!   passes without a successful renewal, the guard is LOST.
//! - `check()` (L4): LOCK_LOST when marked lost, when the local lease ran out, or when a fresh
//!   read shows another owner/epoch or no lock at all (force release).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinHandle;

use crate::rtdb::{EventStream, StreamEvent};
use crate::{Error, ErrorCode, Result};

use super::record::{held_message, LockNode, LockRecord};
use super::service::{wrap, AcquireOutcome, Held, RenewOutcome};
use super::LockService;

#[derive(Debug, Clone)]
pub enum WaitPolicy {
    /// One attempt; LOCK_HELD with the guide's message when held.
    FailFast,
    /// The predecessor's `retryAttempts` × `retryDelay`.
    Retry { attempts: u32, delay: Duration },
    /// Wait with capped backoff + jitter (or the lock node's event stream) up to `max_wait`.
    Wait { max_wait: Duration },
}

/// Mutable state shared with the renewal task.
struct GuardState {
    held: Held,
    /// Why the lock was lost, once it was (sticky).
    lost: Option<String>,
}

/// Held lock with a background renewal task.
pub struct ExclusiveGuard {
    service: LockService,
    executor_id: String,
    epoch: u64,
    state: Arc<Mutex<GuardState>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

const VERIFY_FAILED: &str = "Lock ownership verification failed. Lock was acquired but is no longer owned by this executor. \
     This may indicate a race condition or clock skew between servers.";

fn lost_message(path: &str, epoch: u64, what: &str) -> String {
    format!("Migration lock lost: the lock at {path} {what} while this process held it (epoch {epoch}); no further steps were run")
}

/// What happened to the lock, for LOCK_LOST messages.
fn describe(node: &LockNode, executor_id: &str) -> String {
    match node {
        LockNode::Free { .. } => "was force-released".to_string(),
        LockNode::Held(r) if r.executor_id == executor_id => {
            format!(
                "was taken over by a newer acquisition of {} (epoch {})",
                r.executor_id, r.epoch
            )
        }
        LockNode::Held(r) => format!("was taken over by {} (epoch {})", r.executor_id, r.epoch),
    }
}

fn jittered(d: Duration) -> Duration {
    let ms = d.as_millis().max(2) as u64;
    Duration::from_millis(rand::rng().random_range(ms / 2..=ms))
}

impl ExclusiveGuard {
    pub async fn acquire(
        service: &LockService,
        executor_id: &str,
        wait: WaitPolicy,
    ) -> Result<ExclusiveGuard> {
        let held = match wait {
            WaitPolicy::FailFast => Self::attempts(service, executor_id, 1, Duration::ZERO).await?,
            WaitPolicy::Retry { attempts, delay } => {
                Self::attempts(service, executor_id, attempts.saturating_add(1), delay).await?
            }
            WaitPolicy::Wait { max_wait } => Self::wait(service, executor_id, max_wait).await?,
        };
        // Two-phase: confirm ownership (owner and epoch) before any work runs under the lock.
        let epoch = held.record.epoch;
        let ok = match service.verify(executor_id, Some(epoch)).await {
            Ok(ok) => ok,
            Err(e) => {
                // Do not leave a lock nobody will renew or release: best effort, owner-checked.
                let _ = service.release_owned(executor_id, Some(epoch)).await;
                return Err(wrap("Failed to verify lock ownership")(e));
            }
        };
        if !ok {
            return Err(Error::new(ErrorCode::LockLost, VERIFY_FAILED));
        }
        let state = Arc::new(Mutex::new(GuardState { held, lost: None }));
        let task = tokio::spawn(renew_loop(
            service.clone(),
            executor_id.to_string(),
            state.clone(),
        ));
        Ok(ExclusiveGuard {
            service: service.clone(),
            executor_id: executor_id.to_string(),
            epoch,
            state,
            task: Mutex::new(Some(task)),
        })
    }

    /// Up to `tries` attempts, `delay` apart.
    async fn attempts(
        service: &LockService,
        id: &str,
        tries: u32,
        delay: Duration,
    ) -> Result<Held> {
        let mut last = None;
        for i in 0..tries.max(1) {
            if i > 0 {
                tokio::time::sleep(delay).await;
            }
            if let Some(h) = attempt(service, id, &mut last).await? {
                return Ok(h);
            }
        }
        Err(held_error(service, last).await)
    }

    /// Retry until acquired or `max_wait` elapsed: capped exponential backoff with jitter, woken
    /// early by the lock node's event stream (a release) and when the holder's lease runs out.
    async fn wait(service: &LockService, id: &str, max_wait: Duration) -> Result<Held> {
        let end = Instant::now().checked_add(max_wait);
        let mut last: Option<LockRecord> = None;
        let mut stream: Option<EventStream> = None;
        let mut stream_tried = false;
        let mut backoff = Duration::from_millis(200);
        loop {
            if let Some(h) = attempt(service, id, &mut last).await? {
                return Ok(h);
            }
            let now = Instant::now();
            if end.is_some_and(|e| now >= e) {
                return Err(held_error(service, last).await);
            }
            if !stream_tried {
                stream_tried = true;
                stream = service.client.stream(&service.path).await.ok();
            }
            let mut d = jittered(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
            if let (Some(r), Some(server_now)) = (&last, service.client.server_clock().now_ms()) {
                let until_expiry = (r.expires_at - server_now).max(0) as u64 + 20;
                d = d.min(Duration::from_millis(until_expiry));
            }
            if let Some(e) = end {
                d = d.min(e.saturating_duration_since(now));
            }
            wait_for_change(&mut stream, d).await;
        }
    }

    /// Err(LOCK_LOST) when the lock is no longer ours. Call between steps.
    pub async fn check(&self) -> Result<()> {
        let (lost, deadline) = {
            let s = self.state.lock().unwrap();
            (s.lost.clone(), s.held.deadline)
        };
        if let Some(msg) = lost {
            return Err(Error::new(ErrorCode::LockLost, msg));
        }
        let read = self.service.read_node().await;
        let ours = |node: &LockNode| matches!(node, LockNode::Held(r) if r.executor_id == self.executor_id && r.epoch == self.epoch);
        let msg = match read {
            Ok((node, _)) if !ours(&node) => lost_message(&self.service.path, self.epoch, &describe(&node, &self.executor_id)),
            _ if Instant::now() >= deadline => lost_message(
                &self.service.path,
                self.epoch,
                "ran out of lease before it could be renewed (the lease may have expired and been taken over)",
            ),
            Ok(_) => return Ok(()),
            Err(e) => return Err(wrap("Failed to verify lock ownership")(e)),
        };
        self.mark_lost(&msg);
        Err(Error::new(ErrorCode::LockLost, msg))
    }

    fn mark_lost(&self, msg: &str) {
        let mut s = self.state.lock().unwrap();
        if s.lost.is_none() {
            s.lost = Some(msg.to_string());
        }
    }

    /// The fencing epoch this guard holds.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn executor_id(&self) -> &str {
        &self.executor_id
    }
    /// The lock record as of the last successful acquisition or renewal.
    pub fn record(&self) -> LockRecord {
        self.state.lock().unwrap().held.record.clone()
    }
    /// True once the renewal task or `check()` found the lock lost.
    pub fn is_lost(&self) -> bool {
        self.state.lock().unwrap().lost.is_some()
    }
    /// Time left on the local (conservative) lease.
    pub fn lease_remaining(&self) -> Duration {
        self.state
            .lock()
            .unwrap()
            .held
            .deadline
            .saturating_duration_since(Instant::now())
    }

    /// Stop the background renewal without releasing: simulates a process that stalls (tests,
    /// and callers that want to hand the lease over to expiry).
    pub fn stop_renewal(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }

    /// Stop renewing and release (owner- and epoch-checked; a no-op if the lock is no longer ours).
    pub async fn release(self) -> Result<()> {
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        self.service
            .release_owned(&self.executor_id, Some(self.epoch))
            .await
            .map(|_| ())
            .map_err(wrap("Failed to release lock"))
    }
}

impl Drop for ExclusiveGuard {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

/// LOCK_HELD with the guide's message for the current (or last seen) holder.
async fn held_error(service: &LockService, last: Option<LockRecord>) -> Error {
    let holder = match service.read_node().await {
        Ok((LockNode::Held(r), _)) => Some(r),
        _ => last,
    };
    match holder {
        Some(r) => Error::new(
            ErrorCode::LockHeld,
            held_message(&r.executor_id, r.locked_at, r.expires_at),
        ),
        None => Error::new(
            ErrorCode::LockHeld,
            format!(
                "Failed to acquire lock at {}: it kept changing hands under contention; try again",
                service.path
            ),
        ),
    }
}

/// Sleep `d`, returning early when the event stream shows the lock node changed to unlocked
/// (or changed in a way that is cheaper to re-read than to interpret).
async fn wait_for_change(stream: &mut Option<EventStream>, d: Duration) {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    loop {
        let Some(s) = stream.as_mut() else {
            sleep.await;
            return;
        };
        tokio::select! {
            _ = &mut sleep => return,
            ev = s.next() => match ev {
                Some(Ok(StreamEvent::KeepAlive)) => {}
                Some(Ok(StreamEvent::Put { path, data })) if path == "/" => {
                    if matches!(LockNode::parse(&data), LockNode::Free { .. }) {
                        return;
                    }
                }
                Some(Ok(StreamEvent::Put { .. } | StreamEvent::Patch { .. })) => return,
                // The stream ended or failed: poll from now on.
                _ => *stream = None,
            }
        }
    }
}

/// The heartbeat: renew before the lease runs out; stop when the lock is lost.
async fn renew_loop(service: LockService, executor_id: String, state: Arc<Mutex<GuardState>>) {
    let every = service.opts.renew_every();
    let retry_soon = (every / 10).clamp(Duration::from_millis(50), Duration::from_secs(2));
    let mut delay = every;
    loop {
        let held = state.lock().unwrap().held.clone();
        let left = held.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let msg = lost_message(
                &service.path,
                held.record.epoch,
                "ran out of lease before it could be renewed (the lease may have expired and been taken over)",
            );
            state.lock().unwrap().lost.get_or_insert(msg);
            return;
        }
        // Renew no later than half-way through what is left of the lease.
        tokio::time::sleep(delay.min(left / 2)).await;
        match service.renew(&held).await {
            Ok(RenewOutcome::Renewed(h)) => {
                let mut s = state.lock().unwrap();
                if s.lost.is_some() {
                    return;
                }
                s.held = h;
                delay = every;
            }
            Ok(RenewOutcome::Lost(node)) => {
                let msg = lost_message(
                    &service.path,
                    held.record.epoch,
                    &describe(&node, &executor_id),
                );
                state.lock().unwrap().lost.get_or_insert(msg);
                return;
            }
            Err(_) => delay = retry_soon,
        }
    }
}

/// One acquire attempt: the held lock, or `None` (remembering the holder in `last`).
async fn attempt(
    service: &LockService,
    id: &str,
    last: &mut Option<LockRecord>,
) -> Result<Option<Held>> {
    match service
        .try_acquire(id)
        .await
        .map_err(wrap("Failed to acquire lock"))?
    {
        AcquireOutcome::Acquired(h) => Ok(Some(h)),
        AcquireOutcome::HeldBy(r) => {
            *last = Some(r);
            Ok(None)
        }
        AcquireOutcome::Contended => Ok(None),
    }
}
