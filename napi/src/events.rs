//! The runner's events for lib/hooks.js as typed objects: which hook and which metrics
//! collector methods each one calls (decided in `runner::events`), with what they need. The
//! JS side awaits the user's functions; the runner waits for it before going on.

use std::sync::Arc;

use napi::bindgen_prelude::Promise;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;

use super::lock::NativeLockStatus;
use super::results::{count, NativeMigrationInfo, NativeMigrationResult};
use msr_firebase::lock::{LockEvent, LockRecord};
use msr_firebase::runner::{EventFn, RunEvent};

/// `(event) => Promise<void>`; weak, so it never keeps Node alive on its own.
pub type EventCallback =
    ThreadsafeFunction<NativeRunEvent, Promise<()>, NativeRunEvent, Status, false, true>;

/// An error as hooks receive it (lib/hooks.js makes it an `Error` with `code`).
#[napi(object)]
pub struct NativeErrorInfo {
    pub code: String,
    pub message: String,
}

/// What the lock hooks receive (`onLockWait(info)`, `onLockAcquired(info)`, ...).
#[napi(object)]
pub struct NativeLockInfo {
    /// `lock.waiting`, `lock.still-waiting`, `lock.gave-up`, `lock.acquired`, `lock.renewed`,
    /// `lock.lost`, `lock.released`, `lock.force-released`.
    pub event: String,
    pub path: String,
    /// The holder: the other process while waiting, this one once acquired (the previous
    /// holder for a force release).
    pub holder: Option<NativeLockStatus>,
    /// ms waited so far.
    pub waited: Option<f64>,
    /// ms this wait may last (absent: no limit, or a retry count).
    pub wait_limit: Option<f64>,
    /// The setting the limit came from.
    pub limit_set_by: Option<String>,
    pub attempts: Option<u32>,
    pub epoch: Option<f64>,
    /// The log line's text.
    pub message: String,
}

/// One step of a run.
#[napi(object)]
pub struct NativeRunEvent {
    /// The stable event name (as in `--log-format json`), e.g. `migration.done`.
    pub event: String,
    /// The hook it calls (`onStart`, `onAfterMigrate`, `onLockWait`, ...).
    pub hook: Option<String>,
    /// The metrics collector methods it calls, in order.
    pub metrics: Vec<String>,
    /// The log line's text.
    pub message: String,
    pub total: Option<u32>,
    pub pending: Option<u32>,
    pub script: Option<NativeMigrationInfo>,
    /// 1-based position of `script` in this run.
    pub index: Option<u32>,
    pub error: Option<NativeErrorInfo>,
    pub result: Option<NativeMigrationResult>,
    pub path: Option<String>,
    /// ms
    pub duration: Option<f64>,
    pub strategy: Option<String>,
    pub success: Option<bool>,
    /// What a rollback did, in words.
    pub outcome: Option<String>,
    pub lock: Option<NativeLockInfo>,
    /// The database of a run over many (`databases`): hooks and collectors get it.
    pub database: Option<String>,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn holder(r: &LockRecord) -> NativeLockStatus {
    r.status(true).into()
}

fn lock_info(ev: &LockEvent) -> NativeLockInfo {
    let mut info = NativeLockInfo {
        event: ev.name().to_string(),
        path: ev.path().to_string(),
        holder: None,
        waited: None,
        wait_limit: None,
        limit_set_by: None,
        attempts: None,
        epoch: None,
        message: ev.log_line().message,
    };
    let limit = |info: &mut NativeLockInfo, limit: &msr_firebase::lock::WaitPolicy| {
        info.wait_limit = limit.max_wait_ms().map(|m| m as f64);
        info.limit_set_by = limit.set_by().map(String::from);
    };
    match ev {
        LockEvent::Waiting {
            holder: h,
            waited,
            limit: l,
            ..
        } => {
            info.holder = h.as_ref().map(holder);
            info.waited = Some(ms(*waited));
            limit(&mut info, l);
        }
        LockEvent::GaveUp {
            holder: h,
            waited,
            attempts,
            limit: l,
            ..
        } => {
            info.holder = h.as_ref().map(holder);
            info.waited = Some(ms(*waited));
            info.attempts = Some(*attempts);
            limit(&mut info, l);
        }
        LockEvent::Acquired {
            record,
            waited,
            attempts,
            ..
        } => {
            info.holder = Some(holder(record));
            info.waited = Some(ms(*waited));
            info.attempts = Some(*attempts);
            info.epoch = Some(record.epoch as f64);
        }
        LockEvent::Renewed { record, .. } => {
            info.holder = Some(holder(record));
            info.epoch = Some(record.epoch as f64);
        }
        LockEvent::Released { epoch, .. } => info.epoch = Some(*epoch as f64),
        LockEvent::ForceReleased { previous, .. } => {
            info.holder = previous.clone().filter(|s| s.is_locked).map(Into::into);
        }
        LockEvent::Lost { .. } => {}
    }
    info
}

impl From<&RunEvent> for NativeRunEvent {
    fn from(ev: &RunEvent) -> Self {
        let line = ev.log_line();
        let mut n = NativeRunEvent {
            event: line.event.to_string(),
            hook: ev.hook().map(String::from),
            metrics: ev.metrics().iter().map(|m| m.to_string()).collect(),
            message: line.message,
            total: None,
            pending: None,
            script: None,
            index: None,
            error: None,
            result: None,
            path: None,
            duration: None,
            strategy: None,
            success: None,
            outcome: None,
            lock: None,
            database: None,
        };
        let error = |e: &msr_firebase::Error| NativeErrorInfo {
            code: e.code.as_str().to_string(),
            message: e.message.clone(),
        };
        match ev {
            RunEvent::Start { total, pending, .. } => {
                n.total = Some(count(*total));
                n.pending = Some(count(*pending));
            }
            RunEvent::BeforeBackup => {}
            RunEvent::AfterBackup { path, duration } => {
                n.path = Some(path.to_string_lossy().into_owned());
                n.duration = Some(ms(*duration));
            }
            RunEvent::BeforeMigrate { script, step } | RunEvent::Marked { script, step } => {
                n.script = Some(script.clone().into());
                n.index = Some(count(step.index));
                n.total = Some(count(step.total));
            }
            RunEvent::AfterMigrate {
                script,
                step,
                duration,
            } => {
                n.script = Some(script.clone().into());
                n.index = Some(count(step.index));
                n.total = Some(count(step.total));
                n.duration = Some(ms(*duration));
            }
            RunEvent::MigrationError {
                script,
                step,
                error: e,
                duration,
            } => {
                n.script = Some(script.clone().into());
                n.index = Some(count(step.index));
                n.total = Some(count(step.total));
                n.error = Some(error(e));
                n.duration = Some(ms(*duration));
            }
            RunEvent::BeforeRestore { path } => n.path = Some(path.to_string_lossy().into_owned()),
            RunEvent::AfterRestore { path, duration } => {
                n.path = Some(path.to_string_lossy().into_owned());
                n.duration = Some(ms(*duration));
            }
            RunEvent::Rollback { report, duration } => {
                n.strategy = Some(report.strategy.to_string());
                n.success = Some(report.success);
                n.outcome = Some(report.done.clone());
                n.duration = Some(ms(*duration));
            }
            RunEvent::Complete {
                result, duration, ..
            } => {
                n.result = Some(result.clone().into());
                n.duration = Some(ms(*duration));
            }
            RunEvent::Failed {
                error: e,
                result,
                duration,
                ..
            } => {
                n.error = Some(error(e));
                n.result = Some(result.clone().into());
                n.duration = Some(ms(*duration));
            }
            RunEvent::Lock(l) => n.lock = Some(lock_info(l)),
        }
        n
    }
}

/// The runner's listener that hands each event to `callback` (queued at once, in order) and
/// resolves when the JS side has run the user's functions for it.
pub fn event_fn(callback: Arc<EventCallback>, database: Option<String>) -> EventFn {
    Arc::new(move |ev: &RunEvent| {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut native = NativeRunEvent::from(ev);
        native.database = database.clone();
        let status = callback.call_with_return_value(
            native,
            ThreadsafeFunctionCallMode::NonBlocking,
            move |ret: napi::Result<Promise<()>>, _env| {
                let _ = tx.send(ret);
                Ok(())
            },
        );
        Box::pin(async move {
            if status != Status::Ok {
                return;
            }
            if let Ok(Ok(done)) = rx.await {
                // The JS side isolates the user's errors; a rejection here is not the run's.
                let _ = done.await;
            }
        })
    })
}
