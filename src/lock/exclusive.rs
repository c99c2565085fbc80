//! Running work while holding the lock: acquire (waiting per `WaitPolicy`, in `lock::wait`),
//! renew in the background, check ownership between steps, release at the end (also on error).
//!
//! - Renewal (L3): a tokio task renews the lease every `renew_interval` (default timeout/3)
//!   with a conditional PUT on the last known ETag. A 412 showing another owner or epoch marks
//!   the guard LOST; transient errors are retried soon; if the local (monotonic) lease deadline
//!   passes without a successful renewal, the guard is LOST.
//! - `check()` (L4): LOCK_LOST when marked lost, when the local lease ran out, or when a fresh
//!   read shows another owner/epoch or no lock at all (force release).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::{Error, ErrorCode, Result};

use super::events::LockEvent;
use super::record::{LockNode, LockRecord};
use super::service::{wrap, Held, LockService, RenewOutcome};
use super::wait::{wait_for_lock, WaitHooks, WaitPolicy};

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

impl ExclusiveGuard {
    /// Acquire, waiting per `wait` (see `lock::wait`), then renew in the background.
    pub async fn acquire(
        service: &LockService,
        executor_id: &str,
        wait: WaitPolicy,
    ) -> Result<ExclusiveGuard> {
        Self::acquire_with(service, executor_id, &wait, &WaitHooks::default()).await
    }

    /// `acquire`, with an observer of the wait and a way to cancel it.
    pub async fn acquire_with(
        service: &LockService,
        executor_id: &str,
        wait: &WaitPolicy,
        hooks: &WaitHooks,
    ) -> Result<ExclusiveGuard> {
        let held = wait_for_lock(service, executor_id, wait, hooks).await?;
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
        mark_lost(&self.service, &self.state, msg.clone());
        Err(Error::new(ErrorCode::LockLost, msg))
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
            .map_err(wrap("Failed to release lock"))?;
        if !self.is_lost() {
            self.service.emit(LockEvent::Released {
                path: self.service.path.clone(),
                executor_id: self.executor_id.clone(),
                epoch: self.epoch,
            });
        }
        Ok(())
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

/// Record why the lock was lost (the first reason sticks) and tell the observer, once.
fn mark_lost(service: &LockService, state: &Mutex<GuardState>, msg: String) {
    let first = {
        let mut s = state.lock().unwrap();
        let first = s.lost.is_none();
        s.lost.get_or_insert_with(|| msg.clone());
        first
    };
    if first {
        service.emit(LockEvent::Lost {
            path: service.path.clone(),
            message: msg,
        });
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
            mark_lost(&service, &state, msg);
            return;
        }
        // Renew no later than half-way through what is left of the lease.
        tokio::time::sleep(delay.min(left / 2)).await;
        match service.renew(&held).await {
            Ok(RenewOutcome::Renewed(h)) => {
                let record = h.record.clone();
                {
                    let mut s = state.lock().unwrap();
                    if s.lost.is_some() {
                        return;
                    }
                    s.held = h;
                }
                service.emit(LockEvent::Renewed {
                    path: service.path.clone(),
                    record,
                });
                delay = every;
            }
            Ok(RenewOutcome::Lost(node)) => {
                let msg = lost_message(
                    &service.path,
                    held.record.epoch,
                    &describe(&node, &executor_id),
                );
                mark_lost(&service, &state, msg);
                return;
            }
            Err(_) => delay = retry_soon,
        }
    }
}
