//! The holder's lease, and the one place that decides "lost" vs "unreachable" (L11, L12).
//!
//! - **Time** is `LeaseInstant`: a monotonic clock that keeps counting while the machine sleeps
//!   (`CLOCK_BOOTTIME` on Linux, `CLOCK_MONOTONIC` on macOS), so a frozen VM or a closed laptop
//!   lid finds its lease over when it wakes, as the other contenders do.
//! - **The deadline** comes only from the last *confirmed* write of the lock record (acquisition
//!   or renewal): the lease the server stored, counted from when that request left, less a 2%
//!   margin for clock-rate drift (`LockService::write_record`). Nothing else moves it.
//! - **Lost vs unreachable** ([`judge`], [`is_connectivity`]): the lock is lost only when the
//!   database shows another owner or epoch, or no lock at all. A request that failed to reach
//!   the database proves nothing about ownership; it is retried while the lease lasts
//!   ([`Lease::within`]).
//! - **The end** is sticky ([`LeaseEnd`]): once lost, or once the deadline passed without a
//!   confirmed renewal, the lease is over for good. Ran out while the database could not be
//!   reached: CONNECTION_FAILED (exit 7). Ran out while it could (this process was paused, e.g.
//!   SIGSTOP or a long GC pause): LOCK_LOST. Lost: LOCK_LOST.
//! - **Fencing** ([`Lease::allows_writes`], its `WriteGate`): writes under the lease are refused
//!   (LOCK_LOST) from the deadline on, or once it ended; each attempt may wait for its answer
//!   only for the time left.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Error, ErrorCode, Result};

use super::policy::RIDE_OUT;
use super::record::{LockNode, LockRecord};

/// A point on the lease clock (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseInstant(Duration);

impl LeaseInstant {
    pub fn now() -> LeaseInstant {
        LeaseInstant(clock_now())
    }
    /// `self + d` (saturating).
    pub fn after(self, d: Duration) -> LeaseInstant {
        LeaseInstant(self.0.saturating_add(d))
    }
    /// `self - earlier`, or zero.
    pub fn saturating_duration_since(self, earlier: LeaseInstant) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
    /// Time from now until `self` (zero once it passed).
    pub fn remaining(self) -> Duration {
        self.saturating_duration_since(LeaseInstant::now())
    }
    pub fn elapsed(self) -> Duration {
        LeaseInstant::now().saturating_duration_since(self)
    }
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn clock_now() -> Duration {
    #[cfg(target_os = "linux")]
    const CLOCK: libc::clockid_t = libc::CLOCK_BOOTTIME;
    #[cfg(target_os = "macos")]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is supported on this OS.
    let rc = unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn clock_now() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

/// A lock this process holds, as of its last confirmed write (the lease's view of it).
#[derive(Debug, Clone)]
pub(crate) struct Held {
    /// The record as stored (server timestamps resolved).
    pub record: LockRecord,
    pub etag: String,
    /// When the write that confirmed this record left (the lease clock).
    pub written: LeaseInstant,
    /// Local end of the lease on the lease clock: conservative, before the server-side
    /// `expiresAt` (see the module docs).
    pub deadline: LeaseInstant,
}

/// A failure that says nothing about who holds the lock: the request did not reach the
/// database, or its outcome is unknown.
pub fn is_connectivity(e: &Error) -> bool {
    matches!(
        e.code,
        ErrorCode::ConnectionFailed | ErrorCode::WriteOutcomeUnknown
    )
}

/// What a read of the lock node says about a holder (`executor_id`, `epoch`).
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The node holds this owner and epoch.
    Ours,
    /// The node holds someone else, another epoch, or no lock: what it holds.
    Lost(LockNode),
    /// The database could not be reached: proves nothing.
    Unreachable(Error),
    /// Any other failure (e.g. permission denied): not a loss either, but not retried.
    Failed(Error),
}

/// The one decision "lost" vs "unreachable" for a read of the lock node.
pub(crate) fn judge(read: Result<LockNode>, executor_id: &str, epoch: u64) -> Verdict {
    match read {
        Ok(LockNode::Held(r)) if r.executor_id == executor_id && r.epoch == epoch => Verdict::Ours,
        Ok(node) => Verdict::Lost(node),
        Err(e) if is_connectivity(&e) => Verdict::Unreachable(e),
        Err(e) => Verdict::Failed(e),
    }
}

/// How a lease ended.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseEnd {
    /// The database showed another owner or epoch, or no lock: `what` happened; `after`: how
    /// this process's lease had run out before that was seen, if it had.
    Lost { what: String, after: Option<String> },
    /// The deadline passed without a confirmed renewal; `unreachable`: why the database could not
    /// be reached meanwhile (`None`: it could, this process did not get to renew in time).
    RanOut { unreachable: Option<String> },
}

struct LeaseState {
    held: Held,
    end: Option<LeaseEnd>,
    /// The last failure to reach the database since the last confirmed renewal.
    failure: Option<String>,
}

/// Writes made under the lease (the fence's, and those of `runExclusive`'s `lock.database`):
/// the time left, or LOCK_LOST.
impl crate::rtdb::WriteGate for Lease {
    fn admit(&self) -> Result<Option<Duration>> {
        self.allows_writes()?;
        Ok(Some(self.remaining()))
    }
}

/// Told the lease's error message when the lease ends (once).
type OnEnd = Arc<dyn Fn(String) + Send + Sync>;

/// The lease of one held lock, shared by its guard, the renewal task and the fence.
#[derive(Clone)]
pub struct Lease {
    state: Arc<Mutex<LeaseState>>,
    path: Arc<str>,
    epoch: u64,
    on_end: Arc<Mutex<Option<OnEnd>>>,
}

impl Lease {
    pub(crate) fn new(held: Held, path: &str) -> Lease {
        Lease {
            epoch: held.record.epoch,
            path: path.into(),
            state: Arc::new(Mutex::new(LeaseState {
                held,
                end: None,
                failure: None,
            })),
            on_end: Arc::new(Mutex::new(None)),
        }
    }

    /// `f` hears the error message once, when the lease ends.
    pub(crate) fn on_end(&self, f: impl Fn(String) + Send + Sync + 'static) {
        *self.on_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(f));
    }

    /// Tell `on_end` about `end` (called once, when the lease first ended; outside the lock).
    fn ended(&self, end: &LeaseEnd) {
        let f = self.on_end.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(f) = f {
            f(self.error(end).message);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaseState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// The lock node's path.
    pub fn path(&self) -> &str {
        &self.path
    }
    pub(crate) fn held(&self) -> Held {
        self.lock().held.clone()
    }
    pub fn deadline(&self) -> LeaseInstant {
        self.lock().held.deadline
    }
    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline().remaining()
    }

    /// A renewal was confirmed by the database: the new deadline. Ignored (false) once the
    /// lease ended.
    pub(crate) fn confirm(&self, held: Held) -> bool {
        let mut s = self.lock();
        if s.end.is_none() && LeaseInstant::now() < s.held.deadline {
            s.held = held;
            s.failure = None;
            return true;
        }
        false
    }
    /// A request failed to reach the database.
    pub(crate) fn unreachable(&self, why: &str) {
        self.lock().failure = Some(why.to_string());
    }
    /// The database shows the lock is no longer ours: `what` happened to it. (This also says
    /// more about a lease that ran out: the lock was then taken over, or released; the message
    /// keeps how it ran out.)
    pub(crate) fn lose(&self, what: String) {
        let first = {
            let mut s = self.lock();
            let after = match &s.end {
                Some(LeaseEnd::Lost { .. }) => return,
                None => None,
                Some(LeaseEnd::RanOut { unreachable: None }) => {
                    Some("before it could renew it (was it paused?)".to_string())
                }
                Some(LeaseEnd::RanOut {
                    unreachable: Some(why),
                }) => Some(format!("while it could not reach the database ({why})")),
            };
            let first = s.end.is_none();
            s.end = Some(LeaseEnd::Lost { what, after });
            first.then(|| s.end.clone()).flatten()
        };
        if let Some(end) = first {
            self.ended(&end);
        }
    }

    /// How the lease ended, once it did (passing the deadline ends it, for good).
    pub fn end(&self) -> Option<LeaseEnd> {
        let (end, first) = {
            let mut s = self.lock();
            let first = s.end.is_none() && LeaseInstant::now() >= s.held.deadline;
            if first {
                s.end = Some(LeaseEnd::RanOut {
                    unreachable: s.failure.clone(),
                });
            }
            (s.end.clone(), first)
        };
        if let (true, Some(e)) = (first, &end) {
            self.ended(e);
        }
        end
    }
    pub fn is_over(&self) -> bool {
        self.end().is_some()
    }

    /// The error for an ended lease: LOCK_LOST, or CONNECTION_FAILED when it ran out while the
    /// database could not be reached.
    pub fn error(&self, end: &LeaseEnd) -> Error {
        let message = match end {
            LeaseEnd::Lost { what, after } => {
                let mut m = lost_message(&self.path, self.epoch, what);
                if let Some(after) = after {
                    m = m.replacen(
                        "; no further steps",
                        &format!(", after its lease had run out {after}; no further steps"),
                        1,
                    );
                }
                m
            }
            LeaseEnd::RanOut { unreachable: None } => lost_message(
                &self.path,
                self.epoch,
                "ran out of lease before it could be renewed (was this process paused? the lease may have expired and been taken over)",
            ),
            LeaseEnd::RanOut {
                unreachable: Some(why),
            } => {
                return Error::new(
                    ErrorCode::ConnectionFailed,
                    format!(
                        "The database could not be reached for the rest of the migration lock's lease (the lock at {} is no longer \
                         safely held; epoch {}): {why}",
                        self.path, self.epoch
                    ),
                )
            }
        };
        Error::new(ErrorCode::LockLost, message)
    }

    /// The error once the lease is over, `None` while it lasts.
    pub fn check_local(&self) -> Option<Error> {
        self.end().map(|e| self.error(&e))
    }

    /// L12: Ok while writes made under this lease are allowed; LOCK_LOST from the deadline on or
    /// once the lease ended.
    pub fn allows_writes(&self) -> Result<()> {
        match self.end() {
            None => Ok(()),
            Some(end) => {
                let why = match &end {
                    LeaseEnd::Lost { what, .. } => what.clone(),
                    LeaseEnd::RanOut { .. } => {
                        "passed its lease deadline without a confirmed renewal".to_string()
                    }
                };
                Err(Error::new(
                    ErrorCode::LockLost,
                    format!(
                        "Write refused: the migration lock at {} {why} (epoch {}); this process no longer owns the database",
                        self.path, self.epoch
                    ),
                ))
            }
        }
    }

    /// `Within::Lease(self).run(op, on_retry)`: `op` retried while the lease lasts.
    pub async fn within<T, F, Fut>(
        &self,
        op: F,
        on_retry: &(dyn Fn(&Error, Duration) + Sync),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Within::Lease(self).run(op, on_retry).await
    }
}

/// The LOCK_LOST message.
pub(crate) fn lost_message(path: &str, epoch: u64, what: &str) -> String {
    format!("Migration lock lost: the lock at {path} {what} while this process held it (epoch {epoch}); no further steps were run")
}

/// What bounds a retry that rides out an unreachable database: the lease (work under the lock),
/// or a deadline (work without one, which has no lease to bound it).
#[derive(Clone, Copy)]
pub enum Within<'a> {
    Lease(&'a Lease),
    Deadline(LeaseInstant),
}

impl<'a> Within<'a> {
    /// Within `lease` when there is one, else for `budget` from now.
    pub fn lease_or(lease: Option<&'a Lease>, budget: Duration) -> Within<'a> {
        match lease {
            Some(l) => Within::Lease(l),
            None => Within::Deadline(LeaseInstant::now().after(budget)),
        }
    }

    /// The one bounded retry. Run `op` until it gives an answer: a connectivity failure (the
    /// database was not reached) is retried with the `RIDE_OUT` backoff while the bound lasts,
    /// each attempt cut at the time it leaves; `on_retry(error, time left)` hears each retry.
    /// Ends with `op`'s answer, its error for anything else, or once the bound is spent: the
    /// lease's error (a lease that could not be renewed records why), or the last failure.
    pub async fn run<T, F, Fut>(
        self,
        mut op: F,
        on_retry: &(dyn Fn(&Error, Duration) + Sync),
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut last = None;
        let mut retry = 0u32;
        loop {
            let left = self.left(last.take())?;
            let outcome = match tokio::time::timeout(left, op()).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorCode::ConnectionFailed,
                    format!(
                        "no answer from the database within the {} ms left{}",
                        left.as_millis(),
                        if matches!(self, Within::Lease(_)) {
                            " on the lease"
                        } else {
                            ""
                        }
                    ),
                )),
            };
            match outcome {
                Err(e) if is_connectivity(&e) => {
                    if let Within::Lease(l) = self {
                        l.unreachable(&e.message);
                    }
                    let left = self.remaining();
                    if !left.is_zero() {
                        on_retry(&e, left);
                    }
                    retry = retry.saturating_add(1);
                    tokio::time::sleep(RIDE_OUT.delay(retry).min(left)).await;
                    last = Some(e);
                }
                other => return other,
            }
        }
    }

    fn remaining(&self) -> Duration {
        match self {
            Within::Lease(l) => l.remaining(),
            Within::Deadline(d) => d.remaining(),
        }
    }

    /// The time the next attempt may take, or the error that ends the retries (`last`: the
    /// failure that led to this attempt).
    fn left(&self, last: Option<Error>) -> Result<Duration> {
        match self {
            Within::Lease(l) => match l.end() {
                Some(end) => Err(l.error(&end)),
                None => Ok(l.remaining()),
            },
            Within::Deadline(d) if !d.remaining().is_zero() => Ok(d.remaining()),
            Within::Deadline(_) => Err(last.unwrap_or_else(|| {
                Error::new(
                    ErrorCode::ConnectionFailed,
                    "no time was left to reach the database",
                )
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(ms: u64) -> Held {
        Held {
            record: LockRecord::new("me", 0, 3),
            etag: "e".into(),
            written: LeaseInstant::now(),
            deadline: LeaseInstant::now().after(Duration::from_millis(ms)),
        }
    }

    #[test]
    fn the_lease_clock_is_monotonic() {
        let a = LeaseInstant::now();
        std::thread::sleep(Duration::from_millis(5));
        let b = LeaseInstant::now();
        assert!(b > a && b.saturating_duration_since(a) >= Duration::from_millis(5));
        assert_eq!(a.saturating_duration_since(b), Duration::ZERO);
    }

    #[test]
    fn a_failed_read_is_never_a_loss() {
        let e = Error::new(ErrorCode::ConnectionFailed, "refused");
        assert!(matches!(judge(Err(e), "me", 3), Verdict::Unreachable(_)));
        let e = Error::new(ErrorCode::WriteOutcomeUnknown, "reset");
        assert!(matches!(judge(Err(e), "me", 3), Verdict::Unreachable(_)));
        let e = Error::new(ErrorCode::PermissionDenied, "denied");
        assert!(matches!(judge(Err(e), "me", 3), Verdict::Failed(_)));
        let mine = LockNode::Held(LockRecord::new("me", 0, 3));
        assert!(matches!(judge(Ok(mine), "me", 3), Verdict::Ours));
        let newer = LockNode::Held(LockRecord::new("me", 0, 4));
        assert!(matches!(judge(Ok(newer), "me", 3), Verdict::Lost(_)));
        let other = LockNode::Held(LockRecord::new("you", 0, 3));
        assert!(matches!(judge(Ok(other), "me", 3), Verdict::Lost(_)));
        assert!(matches!(
            judge(Ok(LockNode::Free { epoch: 3 }), "me", 3),
            Verdict::Lost(_)
        ));
    }

    #[test]
    fn running_out_is_sticky_and_says_why() {
        let lease = Lease::new(held(30), "migrations/_lock");
        assert!(lease.allows_writes().is_ok());
        lease.unreachable("connection refused");
        std::thread::sleep(Duration::from_millis(40));
        let end = lease.end().unwrap();
        assert_eq!(
            end,
            LeaseEnd::RanOut {
                unreachable: Some("connection refused".into())
            }
        );
        let e = lease.error(&end);
        assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
        assert!(e.message.contains("connection refused"), "{}", e.message);
        assert_eq!(lease.allows_writes().unwrap_err().code, ErrorCode::LockLost);
        // A late confirmation does not revive it.
        lease.confirm(held(60_000));
        assert!(lease.is_over());
        // The database shows, once reachable, that the lock was taken over: LOCK_LOST, saying
        // what happened and how the lease had run out.
        lease.lose("was taken over by you on there (epoch 4)".into());
        let e = lease.check_local().unwrap();
        assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
        assert!(
            e.message.starts_with(
                "Migration lock lost: the lock at migrations/_lock was taken over by you on there (epoch 4) \
                 while this process held it (epoch 3), after its lease had run out while it could not reach the \
                 database (connection refused); no further steps were run"
            ),
            "{}",
            e.message
        );

        // Ran out while the database was reachable: the process was paused.
        let lease = Lease::new(held(10), "migrations/_lock");
        std::thread::sleep(Duration::from_millis(20));
        let e = lease.check_local().unwrap();
        assert_eq!(e.code, ErrorCode::LockLost);
        assert!(e.message.contains("lock"), "{}", e.message);
    }

    #[tokio::test]
    async fn within_rides_out_connectivity_failures_until_the_lease_ends() {
        let lease = Lease::new(held(10_000), "migrations/_lock");
        let tries = std::sync::atomic::AtomicU32::new(0);
        let retries = std::sync::atomic::AtomicU32::new(0);
        let v = lease
            .within(
                || async {
                    if tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                        Err(Error::new(ErrorCode::ConnectionFailed, "down"))
                    } else {
                        Ok(7)
                    }
                },
                &|_, _| {
                    retries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                },
            )
            .await
            .unwrap();
        assert_eq!((v, retries.into_inner()), (7, 3));
        // Other failures are not retried.
        let e = lease
            .within(
                || async { Err::<(), _>(Error::new(ErrorCode::PermissionDenied, "no")) },
                &|_, _| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        // Never reachable: the lease ends, with CONNECTION_FAILED.
        let short = Lease::new(held(300), "migrations/_lock");
        let e = short
            .within(
                || async { Err::<(), _>(Error::new(ErrorCode::ConnectionFailed, "down")) },
                &|_, _| {},
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
        // An attempt that hangs is cut at the deadline.
        let hang = Lease::new(held(200), "migrations/_lock");
        let e = hang
            .within(std::future::pending::<Result<()>>, &|_, _| {})
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
    }

    /// Work without a lock is bounded the same way: retried until the deadline, each attempt
    /// cut at it, and no attempt starts after it.
    #[tokio::test]
    async fn within_a_deadline_retries_until_it_and_cuts_an_attempt_that_hangs() {
        let budget = Duration::from_millis(300);
        let tries = std::sync::atomic::AtomicU32::new(0);
        let started = std::time::Instant::now();
        let e = Within::lease_or(None, budget)
            .run(
                || async {
                    tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Err::<(), _>(Error::new(ErrorCode::ConnectionFailed, "down"))
                },
                &|_, _| {},
            )
            .await
            .unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::ConnectionFailed, "down")
        );
        assert!(tries.into_inner() >= 2, "retried");
        assert!(started.elapsed() < budget + Duration::from_millis(200));
        // Other failures are not retried.
        let e = Within::lease_or(None, budget)
            .run(
                || async { Err::<(), _>(Error::new(ErrorCode::PermissionDenied, "no")) },
                &|_, _| panic!("retried"),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        // A hanging attempt ends at the deadline, not whenever it answers.
        let started = std::time::Instant::now();
        let e = Within::lease_or(None, budget)
            .run(std::future::pending::<Result<()>>, &|_, _| {})
            .await
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
        assert!(started.elapsed() < budget + Duration::from_millis(200));
    }
}
