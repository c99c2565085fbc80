//! The distributed migration lock at `{shift}/migrations/_lock`. Properties L1–L12 of
//! shared/spec/product.md §5.
//!
//! Design in short:
//! - Every lock field lives in one node, changed only by conditional PUTs (ETag + `if-match`),
//!   re-evaluated from the 412 body on conflict. Never read-then-write.
//! - Held: `{executorId, lockedAt, expiresAt, hostname, processId, epoch, renewedAt?}`; `lockedAt`
//!   and `renewedAt` are server timestamps, `expiresAt` = server-time estimate + timeout.
//!   Released: a tombstone `{epoch, releasedAt}` so the fencing epoch grows with every owner.
//! - Expiry is judged against the server-time estimate (`ServerClock`, a lower bound), never the
//!   local wall clock. A holder's own lease end is on the lease clock (`lease`: monotonic,
//!   counting while the machine sleeps), from its last confirmed renewal.
//! - `lease`: the one place that decides "lost" (the database shows another owner) vs
//!   "unreachable" (a failed request proves nothing), and fencing of writes once the lease is over.
//! - `fence`: what the `db` given to migration scripts checks before every write (L12).
//! - `exit`: every held guard, released on whatever exit path ends the process (L10).
//! - `LockService` is the predecessor's API (acquire/verify/release/status/force...);
//!   `ExclusiveGuard` adds waiting, background renewal and `check()` between steps.
//! - `wait`: the one wait policy (`WaitPolicy::resolve` from config + call options) and the one
//!   wait loop, with an observer and a cancellation seam, and `still_needed`: once the lock is
//!   free, is there still work under it (no stampede of pods that would find nothing to do).
//! - `watch`: the lock node's event stream while waiting (keep-alives, reconnects, polling when
//!   streams are refused).
//! - `live`: a node kept current in the background by the same `watch` (the lock's status for
//!   `watchLockStatus()` and cached reads, the history for `runner.status()`): probes cost no
//!   request.
//! - `events`: what the lock tells observers (`LockService::with_observer`): the wait report
//!   (who holds it, since when, lease end, how long waited), acquisitions, renewals, loss, release.

pub mod events;
pub mod exclusive;
pub mod exit;
pub mod fence;
pub mod lease;
pub mod live;
pub mod record;
pub mod service;
pub mod wait;
pub mod watch;

pub use events::{LockEvent, LockObserver, WaitLimit};
pub use exclusive::ExclusiveGuard;
pub use fence::Fence;
pub use lease::{is_connectivity, Lease, LeaseEnd, LeaseInstant};
pub use record::{held_message, LockNode, LockRecord, LockStatus};
pub use service::{LockOptions, LockService};
pub use wait::{StillNeeded, WaitDefault, WaitEvent, WaitHooks, WaitPolicy, WaitRequest};

/// Where the lock lives under the shift (the database root without one).
pub const LOCK_NODE: &str = "migrations/_lock";

/// `{shift}/migrations/_lock`, or `migrations/_lock` without a shift.
pub fn lock_path(shift: Option<&str>) -> String {
    match shift.map(|s| s.trim_matches('/')).filter(|s| !s.is_empty()) {
        Some(s) => format!("{s}/{LOCK_NODE}"),
        None => LOCK_NODE.to_string(),
    }
}

/// Default executor id: `hostname-pid-uuid`.
pub fn default_executor_id() -> String {
    format!(
        "{}-{}-{}",
        record::this_host(),
        std::process::id(),
        uuid::Uuid::new_v4()
    )
}
