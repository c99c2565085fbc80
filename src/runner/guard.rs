//! How a run holds the lock and its scripts (L10–L12): take the lock (a wait that a stop request
//! ends at once), fence the scripts' `db` by the lease, check ownership and write what must not
//! be lost while riding out outages for as long as the lease lasts, run scripts under the
//! optional `scriptTimeout`, and give the lock back.
//!
//! The decisions themselves ("lost" vs "unreachable", the deadline) are `lock::lease`'s; this
//! module only applies them to the runner's steps and words the messages.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::lock::{ExclusiveGuard, StillNeeded, WaitHooks, Within};
use crate::{Error, ErrorCode, Result};

use super::context::Run;
use super::{Method, Runner, ScriptHost};

/// How long work without a lock rides out an unreachable database before it gives up (with a
/// lock, the lease bounds it).
pub const UNLOCKED_RIDE_OUT: Duration = Duration::from_secs(30);

impl<H: ScriptHost> Runner<H> {
    /// The lock for `run` (`None` when it takes none): waits per its options, ends the wait at
    /// once when a stop is requested (INTERRUPTED, nothing written), then fences the scripts'
    /// `db` by the lease (or opens it: no lock). `still_needed`: asked once a waited-for lock is
    /// free; when it finds nothing left to do, the wait ends without the lock (`None`) and the
    /// process never contends for a lock it does not need.
    pub(crate) async fn take_lock(
        &self,
        run: &Run,
        still_needed: Option<StillNeeded>,
    ) -> Result<Option<ExclusiveGuard>> {
        let Some(service) = self.lock_service().filter(|_| run.locking) else {
            self.fence.open();
            return Ok(None);
        };
        let hooks = WaitHooks {
            still_needed,
            cancel: Some(self.stop.token()),
            ..WaitHooks::default()
        };
        let guard =
            ExclusiveGuard::acquire_if_needed(&service, &run.executor_id, &run.opts.wait, &hooks)
                .await?;
        match &guard {
            Some(g) => self.fence.hold(g.lease(), self.cfg.locking.server_fencing),
            None => self.fence.open(),
        }
        Ok(guard)
    }

    /// Between two steps: `checked` (the lease, or a proof of ownership) and a stop request.
    /// A LOCK_LOST says where the run stopped: before `next`, `so_far` done, nothing further
    /// written; a stop request is INTERRUPTED, saying `interrupted()`.
    pub(crate) fn between_steps(
        &self,
        checked: Result<()>,
        next: &str,
        so_far: &str,
        interrupted: impl FnOnce() -> String,
    ) -> Result<()> {
        checked.map_err(|e| match e.code {
            ErrorCode::LockLost => Error::new(
                e.code,
                format!(
                    "{} Stopped before {next}: {so_far}; nothing further was written.",
                    e.message
                ),
            ),
            _ => e,
        })?;
        if self.stop.is_requested() {
            return Err(Error::new(ErrorCode::Interrupted, interrupted()));
        }
        Ok(())
    }

    /// Release the run's lock (riding out a short outage) and lift the fence, unless a script
    /// was abandoned (its writes stay refused).
    pub(crate) async fn give_back(&self, guard: Option<ExclusiveGuard>) {
        if let Some(g) = guard {
            if let Err(e) = g.release().await {
                self.warn(&format!("Failed to release migration lock: {}", e.message));
            }
        }
        if !self.fence.is_closed() {
            self.fence.open();
        }
    }

    /// Err when the lock is no longer ours; an unreachable database is retried while the lease
    /// lasts (L11), with a warning now and then.
    pub(crate) async fn check_guard(&self, guard: Option<&ExclusiveGuard>) -> Result<()> {
        match guard {
            Some(g) => {
                g.check_with(&self.retry_notice("verify the migration lock"))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Run `op` (a step that must not be lost, e.g. the history record), retrying while the
    /// database cannot be reached: within the lease, or `UNLOCKED_RIDE_OUT` without a lock.
    pub(crate) async fn ride_out<T, F, Fut>(
        &self,
        guard: Option<&ExclusiveGuard>,
        what: &str,
        op: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        Within::lease_or(guard.map(ExclusiveGuard::lease), UNLOCKED_RIDE_OUT)
            .run(op, &self.retry_notice(what))
            .await
    }

    /// A warning for retry 1, 2, 4, 8, ... of `what`.
    fn retry_notice(&self, what: &str) -> impl Fn(&Error, Duration) + Sync + '_ {
        let n = AtomicU32::new(0);
        let what = what.to_string();
        move |e: &Error, left: Duration| {
            let i = n.fetch_add(1, Ordering::Relaxed) + 1;
            if i.is_power_of_two() {
                self.warn(&format!(
                    "⚠ Could not {what} ({}); retrying for up to {:.1} s more",
                    e.message,
                    left.as_secs_f64()
                ));
            }
        }
    }

    /// Run one script's `up`/`down`, within `scriptTimeout` when set. A script that does not
    /// finish in time is abandoned: SCRIPT_TIMEOUT, and its further writes through `db` are
    /// refused (it may still be running; nothing can stop a JS promise).
    pub(crate) async fn run_script(
        &self,
        name: &str,
        file: &Path,
        method: Method,
        info: &Value,
    ) -> Result<Value> {
        let run = self.host.run(file, method, info, self.script_db());
        let Some(ms) = self.cfg.script_timeout else {
            return run.await;
        };
        match tokio::time::timeout(Duration::from_millis(ms), run).await {
            Ok(r) => r,
            Err(_) => {
                let m = match method {
                    Method::Up => "up",
                    Method::Down => "down",
                };
                let e = Error::new(
                    ErrorCode::ScriptTimeout,
                    format!(
                        "{name}: {m}() did not finish within scriptTimeout ({ms} ms) and was abandoned; its further writes \
                         through db are refused. No rollback was run (the script may still be running); check the data it \
                         touches, then raise scriptTimeout (or fix the script) and run again"
                    ),
                );
                self.fence.close(e.clone());
                Err(e)
            }
        }
    }
}
