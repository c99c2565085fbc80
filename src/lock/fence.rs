//! The fence on the `db` given to migration scripts (L12). It is the `WriteGate` of that `db`'s
//! client, so it travels with each write: before every attempt of every write made through it
//! (the first send, the client's retries, a re-send after an unknown outcome), `Fence::admit`
//! says whether the attempt may go out:
//!
//! - **open** (no run in progress, or a run without the lock): yes;
//! - **held** (a run holds the lock): while its lease lasts, and no attempt waits for its answer
//!   past the lease deadline — from the deadline on, or once the lock is known lost, attempts
//!   are refused with LOCK_LOST, so a holder that was paused or cut off past its lease fails
//!   instead of racing the new holder, and its client never re-sends a write over the new
//!   holder's data;
//! - **closed** (a script was abandoned, e.g. after `scriptTimeout`): no, with the reason.
//!
//! No attempt is sent after the deadline. One already handed to the network before it cannot be
//! recalled: the database may still apply it after the deadline (a request held up on the way);
//! only a check by the database itself can refuse that one. With server fencing
//! (`locking.serverFencing`) a held fence gives each attempt the lease's epoch as a claim of its
//! `auth_variable_override` (`auth.msrLockEpoch`), which the rules `server_fence` generates
//! compare with the lock's epoch when the database applies the write.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::rtdb::WriteGate;
use crate::{Error, Result};

use super::lease::Lease;

#[derive(Clone, Default)]
enum State {
    #[default]
    Open,
    /// With server fencing: attempts carry the lease's epoch.
    Held(Lease, bool),
    Closed(Error),
}

/// Shared by a runner and the `db` its scripts get. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fence(Arc<Mutex<State>>);

impl Fence {
    fn set(&self, s: State) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
    /// Writes follow `lease` from now on (`server_fencing`: each attempt carries its epoch).
    pub fn hold(&self, lease: &Lease, server_fencing: bool) {
        self.set(State::Held(lease.clone(), server_fencing));
    }
    /// Writes are allowed again (the run ended).
    pub fn open(&self) {
        self.set(State::Open);
    }
    /// Writes are refused with `why` until the next `hold` or `open`.
    pub fn close(&self, why: Error) {
        self.set(State::Closed(why));
    }
    /// Whether the fence is closed (a script was abandoned).
    pub fn is_closed(&self) -> bool {
        matches!(
            *self.0.lock().unwrap_or_else(|p| p.into_inner()),
            State::Closed(_)
        )
    }
    /// Ok when a write may go out now.
    pub fn check(&self) -> Result<()> {
        self.admit().map(|_| ())
    }
}

impl WriteGate for Fence {
    /// Ok when an attempt may go out now (with the time left on the lease when held).
    fn admit(&self) -> Result<Option<Duration>> {
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match state {
            State::Open => Ok(None),
            State::Held(lease, _) => lease.admit(),
            State::Closed(e) => Err(e),
        }
    }

    /// Under server fencing, the epoch of the lease that holds the fence.
    fn claims(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        match &*self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            State::Held(lease, true) => Some(super::server_fence::claims(lease.epoch())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::lease::{Held, LeaseInstant};
    use crate::lock::record::LockRecord;
    use crate::ErrorCode;
    use std::time::Duration;

    #[test]
    fn writes_follow_the_lease_and_stop_at_its_deadline() {
        let fence = Fence::default();
        assert_eq!(fence.admit().unwrap(), None);
        let lease = Lease::new(
            Held {
                record: LockRecord::new("me", 0, 1),
                etag: "e".into(),
                written: LeaseInstant::now(),
                deadline: LeaseInstant::now().after(Duration::from_millis(40)),
            },
            "migrations/_lock",
        );
        fence.hold(&lease, false);
        assert_eq!(fence.claims(), None);
        fence.hold(&lease, true);
        assert_eq!(
            serde_json::Value::Object(fence.claims().unwrap()),
            serde_json::json!({"msrLockEpoch": 1})
        );
        let left = fence.admit().unwrap().expect("bounded by the lease");
        assert!(left <= Duration::from_millis(40), "{left:?}");
        std::thread::sleep(Duration::from_millis(50));
        let e = fence.admit().unwrap_err();
        assert_eq!(e.code, ErrorCode::LockLost);
        assert!(e.message.contains("migrations/_lock"), "{}", e.message);
        fence.close(Error::new(ErrorCode::ScriptFailed, "abandoned"));
        assert!(fence.is_closed());
        assert_eq!(fence.admit().unwrap_err().message, "abandoned");
        fence.open();
        assert_eq!(fence.admit().unwrap(), None);
    }
}
