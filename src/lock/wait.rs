//! Waiting for a held lock, in one place.
//!
//! - `wait_for_lock` is the one wait loop: attempt, then pause per the `WaitPolicy` (see
//!   `lock::policy`: the predecessor's fixed delay, or `WAIT_POLL`'s capped backoff with jitter,
//!   woken early by the lock node's event stream and when the holder's lease runs out), until
//!   acquired, out of time, or cancelled.
//! - `WaitHooks` are its seams: an observer that hears every step (`WaitEvent`), and a
//!   cancellation token that ends the wait at once with INTERRUPTED, writing nothing (an attempt
//!   in flight gets `CANCEL_GRACE` to finish, and a lock it took is released).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::{Error, ErrorCode, Result};

use super::events::{gave_up_text, LockEvent};
use super::lease::Held;
use super::policy::{WaitPolicy, UNBOUNDED_WAIT, WAIT_POLL};
use super::record::{held_message, LockNode, LockRecord};
use super::service::{wrap, AcquireOutcome, LockService};
use super::watch::{Wake, Watch, STREAM_SILENCE};

/// How long a cancelled wait lets its attempt in flight finish (and releases what it took).
const CANCEL_GRACE: Duration = Duration::from_millis(500);

/// One step of a wait, for observers (status lines, hooks, metrics).
#[derive(Debug, Clone, PartialEq)]
pub enum WaitEvent {
    /// Attempt number `attempt` found the lock held (by `holder`, when known); the next attempt
    /// comes in at most `retry_in`.
    Held {
        attempt: u32,
        holder: Option<LockRecord>,
        waited: Duration,
        retry_in: Duration,
    },
    /// Acquired on attempt `attempt`.
    Acquired { attempt: u32, waited: Duration },
    /// Out of attempts or time: the acquisition fails with LOCK_HELD.
    GaveUp { attempts: u32, waited: Duration },
    /// Cancelled through `WaitHooks::cancel`: the acquisition fails with INTERRUPTED.
    Cancelled { attempts: u32, waited: Duration },
}

pub type WaitObserver = Arc<dyn Fn(&WaitEvent) + Send + Sync>;

/// The seams of one wait: who hears about it, and what ends it early.
#[derive(Clone, Default)]
pub struct WaitHooks {
    pub observer: Option<WaitObserver>,
    pub cancel: Option<CancellationToken>,
    /// Asked once a wait (`WaitPolicy::Wait`) sees the lock free again (or its holder's lease
    /// ran out), before contending: whether there is still work to do under it (the runner
    /// re-reads the history). `false` ends the wait without the lock.
    pub still_needed: Option<StillNeeded>,
    /// How long the lock node's event stream may stay silent before it is reopened (default
    /// `lock::watch::STREAM_SILENCE`).
    pub stream_silence: Option<Duration>,
}

/// See `WaitHooks::still_needed`.
pub type StillNeeded = Arc<dyn Fn() -> BoxFuture<'static, Result<bool>> + Send + Sync>;

impl WaitHooks {
    fn emit(&self, ev: WaitEvent) {
        if let Some(o) = &self.observer {
            o(&ev);
        }
    }
}

/// The visible side of a wait (`LockEvent::Waiting` through the service's observer): one report
/// when the wait starts, then one every `every` (`locking.waitLogInterval`), and one at once
/// when another process becomes the holder. The wait loop wakes up for each report.
struct WaitReport {
    every: Duration,
    /// When the next update is due (None before the first report).
    next: Option<Instant>,
    /// Executor and epoch of the holder last reported.
    holder: Option<(String, u64)>,
}

impl WaitReport {
    fn new(every: Duration) -> WaitReport {
        WaitReport {
            every: every.max(Duration::from_millis(10)),
            next: None,
            holder: None,
        }
    }

    /// Whether to report now, having seen `holder` (after a failed attempt).
    fn due(&mut self, holder: Option<&LockRecord>, now: Instant) -> Option<bool> {
        let who = holder.map(|r| (r.executor_id.clone(), r.epoch));
        let first = self.next.is_none();
        let changed = who.is_some() && who != self.holder;
        if !(first || changed || self.next.is_some_and(|n| now >= n)) {
            return None;
        }
        self.next = Some(now + self.every);
        if who.is_some() {
            self.holder = who;
        }
        Some(first)
    }

    /// How long until the next update is due.
    fn due_in(&self, now: Instant) -> Option<Duration> {
        self.next.map(|n| n.saturating_duration_since(now))
    }
}

/// When the next attempt comes, per policy.
struct Schedule<'a> {
    policy: &'a WaitPolicy,
    end: Option<Instant>,
    /// Pauses taken without a live stream (`WAIT_POLL`'s count).
    polls: u32,
}

impl Schedule<'_> {
    /// The pause after failed attempt number `attempt` (1-based), or `None` to give up.
    /// `watching`: a live event stream tells of every change, so a wait needs no polling: it
    /// wakes up only when the holder's lease runs out (or the wait does).
    fn next(
        &mut self,
        attempt: u32,
        service: &LockService,
        last: Option<&LockRecord>,
        watching: bool,
    ) -> Option<Duration> {
        match self.policy {
            WaitPolicy::FailFast => None,
            WaitPolicy::Retry { attempts, delay } => {
                (attempt < attempts.saturating_add(1)).then_some(*delay)
            }
            WaitPolicy::Wait { .. } => {
                let now = Instant::now();
                if self.end.is_some_and(|e| now >= e) {
                    return None;
                }
                let mut d = if watching && last.is_some() {
                    UNBOUNDED_WAIT
                } else {
                    self.polls = self.polls.saturating_add(1);
                    WAIT_POLL.delay(self.polls)
                };
                if let (Some(r), Some(server_now)) = (last, service.client.server_clock().now_ms())
                {
                    // Try again right after the holder's lease runs out.
                    let until_expiry = (r.expires_at - server_now).max(0) as u64 + 20;
                    d = d.min(Duration::from_millis(until_expiry));
                }
                if let Some(e) = self.end {
                    d = d.min(e.saturating_duration_since(now));
                }
                Some(d)
            }
        }
    }

    /// Whether the wait follows the lock node (its event stream, or polling reads) and
    /// contends only when it is free or its lease ran out; retries attempt on every wake-up.
    fn follows_the_node(&self) -> bool {
        matches!(self.policy, WaitPolicy::Wait { .. })
    }
}

/// Acquire per `policy`: the lock as held, LOCK_HELD (the guide's message) when out of
/// attempts or time, INTERRUPTED when cancelled; `None` when `hooks.still_needed` said, once
/// the lock was free again, that there is nothing left to do under it.
///
/// A wait (`WaitPolicy::Wait`) follows the lock node's event stream (`lock::watch`): one open
/// stream and no requests while the holder works; when the stream shows it free (or the
/// holder's lease ran out) it asks `still_needed` and only then contends. Where streams are
/// refused it polls the node (one read per pause, backoff with jitter up to 5 s).
pub(crate) async fn wait_for_lock(
    service: &LockService,
    id: &str,
    policy: &WaitPolicy,
    hooks: &WaitHooks,
) -> Result<Option<Held>> {
    let started = Instant::now();
    let mut schedule = Schedule {
        policy,
        end: match policy {
            WaitPolicy::Wait { max_wait, .. } => started.checked_add(*max_wait),
            _ => None,
        },
        polls: 0,
    };
    let mut last: Option<LockRecord> = None;
    let mut watch = Watch::new(hooks.stream_silence.unwrap_or(STREAM_SILENCE));
    let mut attempt_no = 0u32;
    let mut report = WaitReport::new(service.opts.wait_log_interval);
    // Whether the next round attempts to take the lock (the first round always does).
    let mut contend = true;
    loop {
        if hooks.cancel.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(cancelled(hooks, service, attempt_no, started));
        }
        if contend {
            // Asked when a wait saw the lock free (or its lease run out); retries just attempt
            // (a run that gets the lock reads the history under it anyway).
            if attempt_no > 0 && schedule.follows_the_node() {
                if let Some(still) = &hooks.still_needed {
                    match until_cancelled(hooks, still()).await {
                        Some(Ok(true)) => {}
                        Some(Ok(false)) => return Ok(None),
                        Some(Err(e)) => return Err(e),
                        None => return Err(cancelled(hooks, service, attempt_no, started)),
                    }
                }
            }
            attempt_no += 1;
            let tried = attempt(service, id, &mut last);
            let got = match &hooks.cancel {
                None => tried.await?,
                Some(cancel) => {
                    tokio::pin!(tried);
                    tokio::select! {
                        r = &mut tried => r?,
                        _ = cancel.cancelled() => {
                            // Give the attempt in flight a moment: a lock it took must not be
                            // left behind (released, owner- and epoch-checked).
                            if let Ok(Ok(Some(h))) = tokio::time::timeout(CANCEL_GRACE, &mut tried).await {
                                let _ = tokio::time::timeout(
                                    CANCEL_GRACE,
                                    service.release_owned(id, Some(h.record.epoch)),
                                )
                                .await;
                            }
                            return Err(cancelled(hooks, service, attempt_no, started));
                        }
                    }
                }
            };
            if let Some(h) = got {
                hooks.emit(WaitEvent::Acquired {
                    attempt: attempt_no,
                    waited: started.elapsed(),
                });
                service.emit(LockEvent::Acquired {
                    path: service.path.clone(),
                    record: h.record.clone(),
                    waited: started.elapsed(),
                    attempts: attempt_no,
                });
                return Ok(Some(h));
            }
        }
        let Some(mut pause) = schedule.next(attempt_no, service, last.as_ref(), watch.live())
        else {
            let waited = started.elapsed();
            hooks.emit(WaitEvent::GaveUp {
                attempts: attempt_no,
                waited,
            });
            let gave_up = (*policy != WaitPolicy::FailFast)
                .then(|| gave_up_text(&service.path, waited, policy));
            if gave_up.is_some() {
                service.emit(LockEvent::GaveUp {
                    path: service.path.clone(),
                    holder: last.clone(),
                    waited,
                    attempts: attempt_no,
                    limit: policy.clone(),
                });
            }
            return Err(held_error(service, last, gave_up).await);
        };
        let now = Instant::now();
        if let Some(first) = report.due(last.as_ref(), now) {
            service.emit(LockEvent::Waiting {
                path: service.path.clone(),
                holder: last.clone(),
                waited: started.elapsed(),
                limit: policy.clone(),
                first,
            });
        }
        // A time-bounded wait wakes up for the next report; retries keep their own rhythm
        // (each wake-up is an attempt, and attempts are counted).
        if let (Some(d), true) = (report.due_in(now), schedule.follows_the_node()) {
            pause = pause.min(d);
        }
        if contend {
            hooks.emit(WaitEvent::Held {
                attempt: attempt_no,
                holder: last.clone(),
                waited: started.elapsed(),
                retry_in: pause,
            });
        }
        if !schedule.follows_the_node() {
            if until_cancelled(hooks, tokio::time::sleep(pause))
                .await
                .is_none()
            {
                return Err(cancelled(hooks, service, attempt_no, started));
            }
            contend = true;
            continue;
        }
        // A stream that could not be opened leaves the wait to poll (or reconnect later).
        let ensured = until_cancelled(hooks, watch.ensure(&service.client, &service.path)).await;
        let Some(_) = ensured else {
            return Err(cancelled(hooks, service, attempt_no, started));
        };
        let Some(wake) = until_cancelled(hooks, watch.nap(pause, &mut last)).await else {
            return Err(cancelled(hooks, service, attempt_no, started));
        };
        contend = match wake {
            Wake::Free => true,
            Wake::Changed => false,
            Wake::Timeout if watch.live() => {
                match (&last, service.client.server_clock().now_ms()) {
                    // Woken for the holder's lease end (or a report): contend once it ran out.
                    (Some(r), Some(now)) => r.expires_at <= now,
                    _ => true,
                }
            }
            // No stream (refused, or between reconnects), or it was just lost: one read tells.
            Wake::Timeout | Wake::Lost => {
                let read = until_cancelled(hooks, service.read_node()).await;
                let Some(read) = read else {
                    return Err(cancelled(hooks, service, attempt_no, started));
                };
                match read.map_err(wrap("Failed to acquire lock"))? {
                    (LockNode::Free { .. }, _) => true,
                    (LockNode::Held(r), etag) => {
                        let expired = service.is_expired(&r, &etag);
                        last = Some(r);
                        expired
                    }
                }
            }
        };
    }
}

/// `f`, or `None` once the wait is cancelled.
async fn until_cancelled<T>(
    hooks: &WaitHooks,
    f: impl std::future::Future<Output = T>,
) -> Option<T> {
    match &hooks.cancel {
        None => Some(f.await),
        Some(cancel) => tokio::select! {
            r = f => Some(r),
            _ = cancel.cancelled() => None,
        },
    }
}

fn cancelled(hooks: &WaitHooks, service: &LockService, attempts: u32, started: Instant) -> Error {
    hooks.emit(WaitEvent::Cancelled {
        attempts,
        waited: started.elapsed(),
    });
    Error::new(
        ErrorCode::Interrupted,
        format!(
            "Stopped while waiting for the migration lock at {}; nothing was run",
            service.path
        ),
    )
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

/// LOCK_HELD with the guide's message for the current (or last seen) holder; after a wait,
/// preceded by the line that says the wait gave up and which setting limits it.
async fn held_error(
    service: &LockService,
    last: Option<LockRecord>,
    gave_up: Option<String>,
) -> Error {
    // The holder the last attempt saw (its 412 is a fresh answer); a read only when none was.
    let holder = match last {
        Some(r) => Some(r),
        None => match service.read_node().await {
            Ok((LockNode::Held(r), _)) => Some(r),
            _ => None,
        },
    };
    let prefix = gave_up.map(|g| format!("{g}\n")).unwrap_or_default();
    match holder {
        Some(r) => Error::new(
            ErrorCode::LockHeld,
            format!(
                "{prefix}{}",
                held_message(&r.executor_id, r.locked_at, r.expires_at)
            ),
        ),
        None => Error::new(
            ErrorCode::LockHeld,
            format!(
                "{prefix}Failed to acquire lock at {}: it kept changing hands under contention; try again",
                service.path
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_wait_report_comes_first_then_every_interval_and_when_the_holder_changes() {
        let t0 = Instant::now();
        let rec = |id: &str, epoch| LockRecord {
            epoch,
            ..LockRecord::new(id, 0, epoch)
        };
        let a = rec("a", 1);
        let mut w = WaitReport::new(S(30));
        assert_eq!(w.due(Some(&a), t0), Some(true), "the first report");
        assert_eq!(w.due(Some(&a), t0 + S(5)), None, "not before the interval");
        assert_eq!(w.due_in(t0 + S(5)), Some(S(25)), "the loop wakes up for it");
        assert_eq!(w.due(Some(&a), t0 + S(30)), Some(false), "an update");
        assert_eq!(w.due(None, t0 + S(31)), None, "no holder seen: nothing new");
        assert_eq!(
            w.due(Some(&rec("b", 2)), t0 + S(32)),
            Some(false),
            "a new holder at once"
        );
        assert_eq!(w.due(Some(&rec("b", 2)), t0 + S(40)), None);
    }
}
