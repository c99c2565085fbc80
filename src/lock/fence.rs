//! The fence on the `db` given to migration scripts (L12). Before every write made through it,
//! `Fence::check` says whether the write may go out:
//!
//! - **open** (no run in progress, or a run without the lock): yes;
//! - **held** (a run holds the lock): while its lease lasts — from the lease deadline on, or
//!   once the lock is known lost, writes are refused with LOCK_LOST, so a holder that was paused
//!   past its lease fails at its next write instead of racing the new holder;
//! - **closed** (a script was abandoned, e.g. after `scriptTimeout`): no, with the reason.
//!
//! A write already handed to the network cannot be recalled: for a script that awaits each of
//! its writes, at most one write can land after the lease ran out.

use std::sync::{Arc, Mutex};

use crate::{Error, Result};

use super::lease::Lease;

#[derive(Clone, Default)]
enum State {
    #[default]
    Open,
    Held(Lease),
    Closed(Error),
}

/// Shared by a runner and the `db` its scripts get. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fence(Arc<Mutex<State>>);

impl Fence {
    fn set(&self, s: State) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
    /// Writes follow `lease` from now on.
    pub fn hold(&self, lease: &Lease) {
        self.set(State::Held(lease.clone()));
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
        let state = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match state {
            State::Open => Ok(()),
            State::Held(lease) => lease.allows_writes(),
            State::Closed(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::lease::LeaseInstant;
    use crate::lock::record::LockRecord;
    use crate::lock::service::Held;
    use crate::ErrorCode;
    use std::time::Duration;

    #[test]
    fn writes_follow_the_lease_and_stop_at_its_deadline() {
        let fence = Fence::default();
        fence.check().unwrap();
        let lease = Lease::new(
            Held {
                record: LockRecord::new("me", 0, 1),
                etag: "e".into(),
                written: LeaseInstant::now(),
                deadline: LeaseInstant::now().after(Duration::from_millis(40)),
            },
            "migrations/_lock",
        );
        fence.hold(&lease);
        fence.check().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let e = fence.check().unwrap_err();
        assert_eq!(e.code, ErrorCode::LockLost);
        assert!(e.message.contains("migrations/_lock"), "{}", e.message);
        fence.close(Error::new(ErrorCode::ScriptFailed, "abandoned"));
        assert!(fence.is_closed());
        assert_eq!(fence.check().unwrap_err().message, "abandoned");
        fence.open();
        fence.check().unwrap();
    }
}
