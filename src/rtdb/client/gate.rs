//! `WriteGate`: what every attempt of a write must pass before it leaves. A client made with
//! [`Client::gated`](super::Client::gated) puts its gate on each write request it builds; the
//! transport asks the gate before every exchange of that request — the first send, a retry after
//! a pause, a re-send by `settle`, a redirect, a send with a refreshed token — and no attempt
//! waits for its answer past the time the gate has left. The lock's fence is one
//! (`lock::Fence`): a write made under a lease is never sent after the lease deadline, however
//! often the client would retry it.

use std::sync::Arc;
use std::time::Duration;

use crate::{Error, Result};

/// What a write must pass before each attempt.
pub trait WriteGate: Send + Sync {
    /// May an attempt leave now? `Ok(None)`: yes, without a bound; `Ok(Some(left))`: yes, and
    /// its answer must come within `left` (asked again then: a bound that moved on, as a renewed
    /// lease does, extends the wait); `Err`: no, and why.
    fn admit(&self) -> Result<Option<Duration>>;
    /// Claims this attempt adds to the request's `auth_variable_override` (merged into the
    /// configured one, or alone when none is set): the lock's epoch under server fencing, for
    /// the database's rules to check. `None`: the request goes as configured.
    fn claims(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        None
    }
}

/// A gate as requests carry it.
pub type Gate = Arc<dyn WriteGate>;

/// Resolves with the gate's refusal once it stops admitting attempts; never while it admits
/// them without a bound.
pub(super) async fn closes(gate: &dyn WriteGate) -> Error {
    loop {
        match gate.admit() {
            Err(e) => return e,
            Ok(None) => std::future::pending::<()>().await,
            Ok(Some(left)) => tokio::time::sleep(left.max(Duration::from_millis(1))).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use std::sync::Mutex;

    /// Open until `until`, moved on by `extend`.
    struct Until(Mutex<std::time::Instant>);
    impl WriteGate for Until {
        fn admit(&self) -> Result<Option<Duration>> {
            let until = *self.0.lock().unwrap();
            let now = std::time::Instant::now();
            if now >= until {
                return Err(Error::new(ErrorCode::LockLost, "over"));
            }
            Ok(Some(until - now))
        }
    }

    #[tokio::test]
    async fn closes_when_the_bound_passes_and_follows_a_bound_that_moved_on() {
        let gate = Arc::new(Until(Mutex::new(
            std::time::Instant::now() + Duration::from_millis(60),
        )));
        let g = gate.clone();
        let extend = async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            *g.0.lock().unwrap() += Duration::from_millis(60);
        };
        let started = std::time::Instant::now();
        let (e, ()) = tokio::join!(closes(gate.as_ref()), extend);
        assert_eq!(e.code, ErrorCode::LockLost);
        assert!(
            started.elapsed() >= Duration::from_millis(110),
            "{:?}",
            started.elapsed()
        );
    }
}
