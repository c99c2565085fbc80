//! What the lock tells whoever watches it: a waiting contender's status (who holds the lock,
//! since when, when its lease ends, how long this process has waited and may still wait), and
//! a holder's acquisitions, renewals, loss and release. One `LockEvent` per step, each with its
//! log line; the runner forwards them to its log and to the lock hooks of the library.
//!
//! When they fire is decided here and in `wait` / `exclusive` (the wait report: once when a
//! wait starts, then every `locking.waitLogInterval`, and at once when the holder changes).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::log::{LogLevel, LogLine};
use crate::time::{human, iso_millis, ms};

use super::policy::WaitPolicy;
use super::record::{LockRecord, LockStatus};

/// Hears every `LockEvent` of a `LockService` (and of the guards it hands out).
pub type LockObserver = Arc<dyn Fn(&LockEvent) + Send + Sync>;

#[derive(Debug, Clone, PartialEq)]
pub enum LockEvent {
    /// Waiting for a lock another process holds: `first` when the wait starts, then a short
    /// update every `locking.waitLogInterval` and whenever the holder changes.
    Waiting {
        path: String,
        holder: Option<LockRecord>,
        waited: Duration,
        /// The wait's policy: how long it may wait, and which setting said so.
        limit: WaitPolicy,
        first: bool,
    },
    /// The wait ran out of time or attempts; the acquisition fails with LOCK_HELD.
    GaveUp {
        path: String,
        holder: Option<LockRecord>,
        waited: Duration,
        attempts: u32,
        limit: WaitPolicy,
    },
    /// This process now holds the lock (`waited` zero when it was free).
    Acquired {
        path: String,
        record: LockRecord,
        waited: Duration,
        attempts: u32,
    },
    /// The lease was renewed (heartbeat).
    Renewed { path: String, record: LockRecord },
    /// The lock is no longer this process's (force-released, taken over, lease ran out).
    Lost { path: String, message: String },
    /// Released by its holder at the end of the work.
    Released {
        path: String,
        executor_id: String,
        epoch: u64,
    },
    /// `forceReleaseLock()` / `lock:release --force` removed the lock (`previous`: what it held).
    ForceReleased {
        path: String,
        previous: Option<LockStatus>,
    },
}

/// `web-2-67890-ab12 (host web-2, pid 67890) since 2025-01-15T10:30:00.000Z; its lease ends at ...`
fn holder_text(r: &LockRecord) -> String {
    let pid = r
        .process_id
        .map(|p| p.to_string())
        .unwrap_or_else(|| "unknown".into());
    let host = if r.hostname.is_empty() {
        "unknown"
    } else {
        &r.hostname
    };
    format!(
        "{} (host {host}, pid {pid}) since {}; its lease ends at {} unless renewed",
        r.executor_id,
        iso_millis(r.locked_at),
        iso_millis(r.expires_at)
    )
}

fn holder_json(r: &LockRecord) -> Value {
    json!({
        "executorId": r.executor_id, "hostname": r.hostname, "processId": r.process_id,
        "lockedAt": iso_millis(r.locked_at), "expiresAt": iso_millis(r.expires_at), "epoch": r.epoch,
    })
}

/// The first line of the LOCK_HELD error after a wait gave up (the guide's holder text follows).
pub fn gave_up_text(path: &str, waited: Duration, limit: &WaitPolicy) -> String {
    format!(
        "Gave up waiting for the migration lock at {path} after {}: {}.",
        human(waited),
        limit.limit_text()
    )
}

impl LockEvent {
    /// The stable event name (`--log-format json`'s `event`).
    pub fn name(&self) -> &'static str {
        match self {
            LockEvent::Waiting { first: true, .. } => "lock.waiting",
            LockEvent::Waiting { .. } => "lock.still-waiting",
            LockEvent::GaveUp { .. } => "lock.gave-up",
            LockEvent::Acquired { .. } => "lock.acquired",
            LockEvent::Renewed { .. } => "lock.renewed",
            LockEvent::Lost { .. } => "lock.lost",
            LockEvent::Released { .. } => "lock.released",
            LockEvent::ForceReleased { .. } => "lock.force-released",
        }
    }

    /// The lock node this event is about.
    pub fn path(&self) -> &str {
        match self {
            LockEvent::Waiting { path, .. }
            | LockEvent::GaveUp { path, .. }
            | LockEvent::Acquired { path, .. }
            | LockEvent::Renewed { path, .. }
            | LockEvent::Lost { path, .. }
            | LockEvent::Released { path, .. }
            | LockEvent::ForceReleased { path, .. } => path,
        }
    }

    /// The line for the log: what a person watching a pod's log needs to know.
    pub fn log_line(&self) -> LogLine {
        let line = |level, message: String| {
            LogLine::new(level, self.name(), message).with("path", self.path())
        };
        match self {
            LockEvent::Waiting {
                path,
                holder,
                waited,
                limit,
                first,
            } => {
                let held = match holder {
                    Some(r) => format!("held by {}", holder_text(r)),
                    None => "it is changing hands".into(),
                };
                let message = if *first {
                    format!(
                        "Waiting for the migration lock at {path}: {held}. {}",
                        limit.plan_text()
                    )
                } else {
                    format!(
                        "Still waiting for the migration lock at {path} ({} so far): {held}.",
                        human(*waited)
                    )
                };
                line(LogLevel::Info, message)
                    .with("holder", holder.as_ref().map(holder_json))
                    .with("waited", ms(*waited))
                    .with("waitLimit", limit.max_wait_ms())
                    .with("limitSetBy", limit.set_by())
            }
            LockEvent::GaveUp {
                path,
                holder,
                waited,
                attempts,
                limit,
            } => line(LogLevel::Debug, gave_up_text(path, *waited, limit))
                .with("holder", holder.as_ref().map(holder_json))
                .with("waited", ms(*waited))
                .with("attempts", attempts)
                .with("waitLimit", limit.max_wait_ms())
                .with("limitSetBy", limit.set_by()),
            LockEvent::Acquired {
                path,
                record,
                waited,
                attempts,
            } => {
                let (level, message) = if *attempts > 1 {
                    (
                        LogLevel::Info,
                        format!(
                            "Acquired the migration lock at {path} after waiting {} (epoch {})",
                            human(*waited),
                            record.epoch
                        ),
                    )
                } else {
                    (
                        LogLevel::Debug,
                        format!(
                            "Acquired the migration lock at {path} (epoch {})",
                            record.epoch
                        ),
                    )
                };
                line(level, message)
                    .with("executorId", &record.executor_id)
                    .with("epoch", record.epoch)
                    .with("expiresAt", iso_millis(record.expires_at))
                    .with("waited", ms(*waited))
                    .with("attempts", attempts)
            }
            LockEvent::Renewed { path, record } => line(
                LogLevel::Debug,
                format!(
                    "Renewed the migration lock at {path}; its lease ends at {}",
                    iso_millis(record.expires_at)
                ),
            )
            .with("epoch", record.epoch)
            .with("expiresAt", iso_millis(record.expires_at)),
            LockEvent::Lost { message, .. } => line(LogLevel::Warn, message.clone()),
            LockEvent::Released {
                path,
                executor_id,
                epoch,
            } => line(
                LogLevel::Debug,
                format!("Released the migration lock at {path} (epoch {epoch})"),
            )
            .with("executorId", executor_id)
            .with("epoch", epoch),
            LockEvent::ForceReleased { path, previous } => {
                let message = match previous.as_ref().filter(|s| s.is_locked) {
                    Some(s) => format!(
                        "Force-released the migration lock at {path}: it was held by {} since {}",
                        s.locked_by,
                        iso_millis(s.locked_at)
                    ),
                    None => format!("Force-released the migration lock at {path}: it was not held"),
                };
                line(LogLevel::Warn, message).with(
                    "previousHolder",
                    previous.as_ref().map(|s| s.locked_by.clone()),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> LockRecord {
        LockRecord {
            executor_id: "web-2-67890-ab12".into(),
            locked_at: 1_705_314_600_000,
            expires_at: 1_705_315_200_000,
            hostname: "web-2".into(),
            process_id: Some(67890),
            epoch: 4,
            renewed_at: None,
        }
    }

    #[test]
    fn waiting_lines_name_the_holder_its_lease_and_the_limit() {
        let first = LockEvent::Waiting {
            path: "migrations/_lock".into(),
            holder: Some(rec()),
            waited: Duration::ZERO,
            limit: WaitPolicy::wait_up_to(Duration::from_secs(300), "--wait-timeout"),
            first: true,
        };
        let l = first.log_line();
        assert_eq!(
            l.message,
            "Waiting for the migration lock at migrations/_lock: held by web-2-67890-ab12 (host web-2, pid 67890) \
             since 2024-01-15T10:30:00.000Z; its lease ends at 2024-01-15T10:40:00.000Z unless renewed. \
             Waiting up to 5m 00s (set by --wait-timeout)."
        );
        assert_eq!((l.level, l.event), (LogLevel::Info, "lock.waiting"));
        assert_eq!(l.fields["holder"]["processId"], 67890);
        assert_eq!(l.fields["waitLimit"], 300_000);
        let LockEvent::Waiting {
            path,
            holder,
            limit,
            ..
        } = first
        else {
            unreachable!()
        };
        let update = LockEvent::Waiting {
            path,
            holder,
            limit,
            first: false,
            waited: Duration::from_secs(90),
        };
        assert!(update
            .log_line()
            .message
            .starts_with("Still waiting for the migration lock at migrations/_lock (1m 30s so far): held by web-2-67890-ab12"));
        assert_eq!(update.name(), "lock.still-waiting");
    }

    #[test]
    fn the_give_up_text_names_the_setting() {
        let t = gave_up_text(
            "p/migrations/_lock",
            Duration::from_millis(30_400),
            &WaitPolicy::wait_up_to(
                Duration::from_secs(30),
                "locking.waitTimeout (MSR_LOCKING_WAIT_TIMEOUT)",
            ),
        );
        assert_eq!(t, "Gave up waiting for the migration lock at p/migrations/_lock after 30.4 s: the wait limit is 30.0 s, set by locking.waitTimeout (MSR_LOCKING_WAIT_TIMEOUT); raise it to wait longer.");
    }
}
