//! Running work while holding the lock: acquire (waiting per `WaitPolicy`), renew in the
//! background, check ownership between steps, release at the end (also on error).

use std::time::Duration;

use crate::Result;

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

/// Held lock with a background renewal task.
pub struct ExclusiveGuard {
    _private: (),
}

impl ExclusiveGuard {
    pub async fn acquire(
        service: &LockService,
        executor_id: &str,
        wait: WaitPolicy,
    ) -> Result<ExclusiveGuard> {
        todo!("{} {executor_id} {wait:?}", service.path())
    }
    /// Err(LOCK_LOST) when the lock is no longer ours. Call between steps.
    pub async fn check(&self) -> Result<()> {
        todo!()
    }
    /// The fencing epoch this guard holds.
    pub fn epoch(&self) -> u64 {
        todo!()
    }
    pub fn executor_id(&self) -> &str {
        todo!()
    }
    /// Stop renewing and release (owner-checked).
    pub async fn release(self) -> Result<()> {
        todo!()
    }
}
