//! The distributed migration lock at `{shift}/migrations/_lock`. Its properties (L1–L12 and the
//! later ones), each with the code that keeps it and the tests that prove it, are listed in
//! docs/lock-properties.md.
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
//!
//! The files, bottom up: each uses only files listed before it (ARCHITECTURE.md's table of
//! `lock/`, checked by a test):
//! - `record`: the stored form (held record, tombstone, `LockNode`), where it lives
//!   (`lock_path`), this process's executor id.
//! - `policy`: the settings (`LockOptions`), how one acquisition waits (`WaitPolicy`, and
//!   `WaitPolicy::resolve`, the one rule from config + call options), the pauses of the lock's
//!   loops (one backoff: `rtdb::retry::RetryPolicy`).
//! - `lease`: the holder's view (`Held`, `Lease`): the lease clock, the one place that decides
//!   "lost" (the database shows another owner) vs "unreachable" (a failed request proves
//!   nothing), fencing of writes once the lease is over, and `Within`, the one bounded retry
//!   (within the lease, or within a deadline).
//! - `events`: what the lock tells observers (`LockService::with_observer`): the wait report
//!   (who holds it, since when, lease end, how long waited), acquisitions, renewals, loss, release.
//! - `service`: `LockService`, the predecessor's API (acquire/verify/release/status/force...) on
//!   conditional writes.
//! - `watch`: a node's event stream (keep-alives, reconnects, polling when streams are refused).
//! - `wait`: the one wait loop, with an observer and a cancellation seam, and `still_needed`:
//!   once the lock is free, is there still work under it (no stampede of pods that would find
//!   nothing to do).
//! - `live`: a node kept current in the background by a `watch` (the lock's status for
//!   `watchLockStatus()` and cached reads, the history for `runner.status()`): probes cost no
//!   request.
//! - `exit`: every held guard, released on whatever exit path ends the process (L10).
//! - `exclusive`: `ExclusiveGuard`: waiting, background renewal, `check()` between steps.
//! - `fence`: what the `db` given to migration scripts checks before every write (L12).

pub mod events;
pub mod exclusive;
pub mod exit;
pub mod fence;
pub mod lease;
pub mod live;
pub mod policy;
pub mod record;
pub mod server_fence;
pub mod service;
pub mod wait;
pub mod watch;

pub use events::{LockEvent, LockObserver};
pub use exclusive::ExclusiveGuard;
pub use fence::Fence;
pub use lease::{is_connectivity, Lease, LeaseEnd, LeaseInstant, Within};
pub use policy::{LockOptions, WaitDefault, WaitPolicy, WaitRequest};
pub use record::{
    default_executor_id, held_message, lock_path, LockNode, LockRecord, LockStatus, LOCK_NODE,
};
pub use service::LockService;
pub use wait::{StillNeeded, WaitEvent, WaitHooks};
