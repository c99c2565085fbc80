//! Running work while holding the lock: acquire (waiting per `WaitPolicy`, in `lock::wait`),
//! renew in the background, check ownership between steps, release at the end (also on error).
//! The lease itself (deadline, lost vs unreachable, fencing) is `lock::lease`.
//!
//! - Renewal (L3): a tokio task renews the lease every `renew_interval` (default timeout/3)
//!   with a conditional PUT on the last known ETag. A 412 showing another owner or epoch ends
//!   the lease as lost; a failure to reach the database is retried soon, each attempt bounded by
//!   the time left (L11: an outage is not a loss); a lease whose deadline passes without a
//!   confirmed renewal is over.
//! - `fate()`: once the lease is over, what became of the lock (taken over by whom, or
//!   force-released), read once and recorded in the lease for its error message.
//! - `check()` (L4): fails once the lease is over; otherwise reads the node, riding out
//!   connectivity failures while the lease lasts: LOCK_LOST when it shows another owner or epoch
//!   or no lock at all (force release).
//! - Every held guard is known to `lock::exit`, which releases it when the process ends another
//!   way (a second signal, `process.exit()`, a crash of the JS side).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Error, ErrorCode, Result};

use super::events::LockEvent;
use super::exit;
use super::lease::{is_connectivity, judge, Lease, LeaseEnd, LeaseInstant, Verdict, Within};
use super::policy::WaitPolicy;
use super::record::{LockNode, LockRecord};
use super::service::{wrap, LockService, RenewOutcome};
use super::wait::{wait_for_lock, WaitHooks};

/// Held lock with a background renewal task.
pub struct ExclusiveGuard {
    renewal: Renewal,
    epoch: u64,
    task: Mutex<Option<JoinHandle<()>>>,
    /// This guard's entry in `lock::exit`.
    exit_id: u64,
}

/// The lease's renewal, shared by the guard (`check()`) and the heartbeat task: one conditional
/// write at a time on the last confirmed ETag, each cut at a slice of what is left of the lease.
#[derive(Clone)]
struct Renewal {
    service: LockService,
    executor_id: String,
    lease: Lease,
    /// Held while a renewal is in flight: a check and the heartbeat never race each other.
    one: Arc<tokio::sync::Mutex<()>>,
}

/// How long `check()` waits for a read that only improves the message of a lease that ran out.
const REPORT_READ: Duration = Duration::from_secs(2);

/// How long a normal release may take (it rides out a short outage; `lock::exit` has its own,
/// shorter bound).
pub const RELEASE_BUDGET: Duration = Duration::from_secs(10);

/// What happened to the lock held by `executor_id` at `epoch` (seen as `node`), for LOCK_LOST
/// messages: taken over (by whom, on which host, at which epoch), or force-released.
fn describe(node: &LockNode, executor_id: &str, epoch: u64) -> String {
    match node {
        LockNode::Free { epoch: e } if *e > epoch => {
            format!("was taken over (epoch {e}; the holder that took it has released it since)")
        }
        LockNode::Free { .. } => "was force-released".to_string(),
        LockNode::Held(r) if r.executor_id == executor_id => {
            format!(
                "was taken over by a newer acquisition of {} (epoch {})",
                r.executor_id, r.epoch
            )
        }
        LockNode::Held(r) if r.epoch > epoch + 1 => format!(
            "was taken over; it is now held by {} on {} (epoch {})",
            r.executor_id,
            host(r),
            r.epoch
        ),
        LockNode::Held(r) => format!(
            "was taken over by {} on {} (epoch {})",
            r.executor_id,
            host(r),
            r.epoch
        ),
    }
}

fn host(r: &LockRecord) -> &str {
    if r.hostname.is_empty() {
        "an unknown host"
    } else {
        &r.hostname
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
        Self::acquire_if_needed(service, executor_id, wait, hooks)
            .await?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Interrupted,
                    "The wait for the migration lock ended: nothing is left to do under it",
                )
            })
    }

    /// `acquire_with`; `None` when `hooks.still_needed` said, once the lock was free again,
    /// that nothing is left to do under it.
    pub async fn acquire_if_needed(
        service: &LockService,
        executor_id: &str,
        wait: &WaitPolicy,
        hooks: &WaitHooks,
    ) -> Result<Option<ExclusiveGuard>> {
        let Some(held) = wait_for_lock(service, executor_id, wait, hooks).await? else {
            return Ok(None);
        };
        let epoch = held.record.epoch;
        // Known to `lock::exit` from now on, so no exit path leaves it behind. The conditional
        // write that took the lock is the proof of ownership: no read follows it.
        let exit_id = exit::register(service, executor_id, epoch);
        let lease = Lease::new(held, &service.path);
        // The observer hears the end of the lease once, however it came.
        let observer = service.clone();
        lease.on_end(move |message| {
            observer.emit(LockEvent::Lost {
                path: observer.path.clone(),
                message,
            })
        });
        let renewal = Renewal {
            service: service.clone(),
            executor_id: executor_id.to_string(),
            lease,
            one: Arc::default(),
        };
        let task = tokio::spawn(renewal.clone().heartbeat());
        Ok(Some(ExclusiveGuard {
            renewal,
            epoch,
            task: Mutex::new(Some(task)),
            exit_id,
        }))
    }

    /// Err when the lock is no longer ours (LOCK_LOST), or when the database could not be
    /// reached for the rest of the lease (CONNECTION_FAILED). Call between steps.
    pub async fn check(&self) -> Result<()> {
        self.check_with(&|_, _| {}).await
    }

    /// `check`, with `on_retry(error, time left)` hearing each retry of an unreachable database.
    pub async fn check_with(&self, on_retry: &(dyn Fn(&Error, Duration) + Sync)) -> Result<()> {
        let lease = self.lease();
        if let Some(LeaseEnd::RanOut { .. }) = lease.end() {
            // Over for good; when the database answers at once, say what became of the lock.
            self.fate(Some(REPORT_READ)).await;
            return Err(lease.check_local().expect("over"));
        }
        // One conditional write proves ownership and renews the lease (no read): a 412 showing
        // another owner or epoch, or no lock, is the loss.
        let prove = || async {
            let node = match self.renewal.renew(false).await {
                Ok(RenewOutcome::Renewed(_)) => return Ok(()),
                Ok(RenewOutcome::Lost(node)) => Ok(node),
                Err(e) => Err(e),
            };
            match judge(node, self.executor_id(), self.epoch) {
                Verdict::Ours => Ok(()),
                Verdict::Lost(_) => Err(lease.check_local().expect("lost")),
                // A failed request proves nothing: retried while the lease lasts.
                Verdict::Unreachable(e) => Err(e),
                Verdict::Failed(e) => Err(wrap("Failed to verify lock ownership")(e)),
            }
        };
        Within::Lease(lease).run(prove, on_retry).await?;
        // A renewal that landed after the deadline does not revive the lease.
        match lease.check_local() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What became of the lock, read once (with the client's retries, within `bound` when
    /// given): the node as read, and when it shows another owner or epoch, or no lock, the loss
    /// is recorded in the lease (whose error then says what happened: taken over by whom, or
    /// force-released). `None` when it could not be read.
    pub async fn fate(&self, bound: Option<Duration>) -> Option<LockNode> {
        let read = self.renewal.service.read_node();
        let read = match bound {
            Some(b) => tokio::time::timeout(b, read).await.ok(),
            None => Some(read.await),
        };
        let Some(Ok((node, _))) = read else {
            return None;
        };
        if let Verdict::Lost(lost) = judge(Ok(node.clone()), self.executor_id(), self.epoch) {
            self.lease()
                .lose(describe(&lost, self.executor_id(), self.epoch));
        }
        Some(node)
    }

    /// The fencing epoch this guard holds.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    pub fn executor_id(&self) -> &str {
        &self.renewal.executor_id
    }
    /// The lease (deadline, how it ended, fencing), shared with the renewal task.
    pub fn lease(&self) -> &Lease {
        &self.renewal.lease
    }
    /// The lock record as of the last successful acquisition or renewal.
    pub fn record(&self) -> LockRecord {
        self.lease().held().record
    }
    /// True once the lease is over (lost, or ran out).
    pub fn is_lost(&self) -> bool {
        self.lease().is_over()
    }
    /// Time left on the local (conservative) lease.
    pub fn lease_remaining(&self) -> Duration {
        self.lease().remaining()
    }

    /// Stop the background renewal without releasing: simulates a process that stalls (tests,
    /// and callers that want to hand the lease over to expiry).
    pub fn stop_renewal(&self) {
        if let Some(t) = self.task.lock().unwrap().take() {
            t.abort();
        }
    }

    /// Stop renewing and release (owner- and epoch-checked; a no-op if the lock is no longer
    /// ours), riding out a short outage: up to `RELEASE_BUDGET` while the lease lasts, the exit
    /// paths' 2 s once it is over (the lock then expires on its own soon).
    pub async fn release(self) -> Result<()> {
        let task = self.task.lock().unwrap().take();
        if let Some(t) = task {
            t.abort();
            let _ = t.await;
        }
        let budget = self
            .lease()
            .remaining()
            .clamp(super::exit::EXIT_BUDGET, RELEASE_BUDGET);
        let Renewal {
            service,
            executor_id,
            ..
        } = &self.renewal;
        let released = Within::Deadline(LeaseInstant::now().after(budget))
            .run(
                || service.release_owned(executor_id, Some(self.epoch)),
                &|_, _| {},
            )
            .await;
        exit::unregister(self.exit_id);
        released.map_err(wrap("Failed to release lock"))?;
        if !self.is_lost() {
            service.emit(LockEvent::Released {
                path: service.path.clone(),
                executor_id: executor_id.clone(),
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

/// How long one renewal attempt may take: a slice of what is left of the lease, so that after
/// an outage the next attempt comes soon (rather than after the client's own growing backoff).
/// A cut-off renewal that landed after all is adopted by the next one (a 412 showing this owner
/// and epoch).
fn attempt_slice(every: Duration, left: Duration) -> Duration {
    left.min((every / 3).max(Duration::from_millis(500)))
}

impl Renewal {
    /// One renewal of the lease, within its slice (`attempt_slice`): confirmed into the lease,
    /// or the loss recorded. `heartbeat`: the observer hears it as a renewal (`check()`'s
    /// renewals are proofs of ownership, not reported).
    async fn renew(&self, heartbeat: bool) -> Result<RenewOutcome> {
        let slice = attempt_slice(self.service.opts.renew_every(), self.lease.remaining());
        match tokio::time::timeout(slice, self.renew_once(heartbeat)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::new(
                ErrorCode::ConnectionFailed,
                format!(
                    "no answer to the lease renewal within {} ms",
                    slice.as_millis()
                ),
            )),
        }
    }

    /// A conditional write on the last confirmed ETag, one at a time.
    async fn renew_once(&self, heartbeat: bool) -> Result<RenewOutcome> {
        let _one = self.one.lock().await;
        let out = self.service.renew(&self.lease.held()).await?;
        match &out {
            RenewOutcome::Renewed(h) => {
                if self.lease.confirm(h.clone()) && heartbeat {
                    self.service.emit(LockEvent::Renewed {
                        path: self.service.path.clone(),
                        record: h.record.clone(),
                    });
                }
            }
            RenewOutcome::Lost(node) => {
                let epoch = self.lease.epoch();
                self.lease.lose(describe(node, &self.executor_id, epoch))
            }
        }
        Ok(out)
    }

    /// The heartbeat: renew `renew_every` after the last confirmed write of the record (a
    /// check's renewal counts), and no later than half-way through what is left of the lease;
    /// stop when the lease is over.
    async fn heartbeat(self) {
        let lease = &self.lease;
        let every = self.service.opts.renew_every();
        let retry_soon = (every / 10).clamp(Duration::from_millis(50), Duration::from_secs(2));
        let mut failing = false;
        loop {
            if lease.is_over() {
                return;
            }
            let last = lease.held().written;
            let pause = if failing {
                retry_soon
            } else {
                last.after(every).remaining()
            };
            tokio::time::sleep(pause.min(lease.remaining() / 2)).await;
            // Passing the deadline (e.g. while this process was stopped) ends the lease for good.
            if lease.is_over() {
                return;
            }
            if lease.held().written != last {
                // Renewed meanwhile (by a check): plan from that renewal.
                failing = false;
                continue;
            }
            match self.renew(true).await {
                Ok(RenewOutcome::Renewed(_)) => failing = false,
                Ok(RenewOutcome::Lost(_)) => return,
                Err(e) => {
                    if is_connectivity(&e) {
                        lease.unreachable(&e.message);
                    }
                    failing = true;
                }
            }
        }
    }
}
