//! The steps of a run as typed events, in the order they happen; the runner decides when each
//! fires. Listeners (`Runner::with_events`): the library's hooks and metrics collectors (the
//! JS side only calls the user's functions each event names), the CLI's progress display.
//! Every event also has its log line (`RunEvent::log_line`), written to the runner's log first.
//!
//! Order of one `migrate` (the predecessor's): lock events while waiting/acquiring;
//! `BeforeBackup`, `AfterBackup` (when a backup is taken); `Start { total, pending }`; per
//! script `BeforeMigrate`, then `AfterMigrate` or `MigrationError` (then the rollback's
//! `BeforeRestore`/`AfterRestore`, `Rollback`); finally `Complete` or `Failed` (after the lock
//! is released). `down` is the same without backups, with `method: Down` steps.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::lock::LockEvent;
use crate::log::{LogLevel, LogLine};
use crate::time::{human, ms};
use crate::Error;

use super::{Method, MigrationInfo, MigrationResult, RollbackReport};

/// Hears each event. The call itself must deliver the event (or queue it) before it returns;
/// the future resolves once the listeners are done with it. The runner awaits it, so hooks run
/// in order and before the run goes on; lock events (from the renewal task and the wait loop)
/// are delivered without waiting.
pub type EventFn = Arc<dyn Fn(&RunEvent) -> BoxFuture<'static, ()> + Send + Sync>;

/// Which command a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Migrate,
    /// `migrate --mark-applied`: records written, no script run.
    MarkApplied,
    Down,
}

/// Where a script is in its run: number `index` (1-based) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub index: usize,
    pub total: usize,
    pub method: Method,
}

#[derive(Debug, Clone)]
pub enum RunEvent {
    /// The plan is known, nothing has run: `total` scripts found, `pending` to run now.
    Start {
        command: Command,
        total: usize,
        pending: usize,
    },
    BeforeBackup,
    AfterBackup {
        path: PathBuf,
        duration: Duration,
    },
    /// A script's `up` (or `down`) is about to run.
    BeforeMigrate {
        script: MigrationInfo,
        step: Step,
    },
    /// It ran (and, for `up`, was recorded); `script.result` is what it returned.
    AfterMigrate {
        script: MigrationInfo,
        step: Step,
        duration: Duration,
    },
    /// It failed; the rollback (if any) follows.
    MigrationError {
        script: MigrationInfo,
        step: Step,
        error: Error,
        duration: Duration,
    },
    /// `--mark-applied` recorded a script as executed without running it.
    Marked {
        script: MigrationInfo,
        step: Step,
    },
    BeforeRestore {
        path: PathBuf,
    },
    AfterRestore {
        path: PathBuf,
        duration: Duration,
    },
    /// A rollback after a failure ended: what it did.
    Rollback {
        report: RollbackReport,
        duration: Duration,
    },
    /// The run succeeded (dry runs and "nothing to do" included).
    Complete {
        command: Command,
        result: MigrationResult,
        duration: Duration,
    },
    /// The run failed; `result` holds what it got done.
    Failed {
        command: Command,
        error: Error,
        result: MigrationResult,
        duration: Duration,
    },
    Lock(LockEvent),
}

impl Step {
    fn counter(&self) -> String {
        format!("[{}/{}]", self.index, self.total)
    }

    /// The fields every line about a script's step carries.
    fn fields(&self, line: LogLine, script: &MigrationInfo) -> LogLine {
        line.with("migration", &script.name)
            .with("version", script.timestamp)
            .with("index", self.index)
            .with("total", self.total)
            .with("method", self.method)
    }
}

impl RunEvent {
    /// The predecessor's hook this event calls (`hooks.<name>`), if any.
    pub fn hook(&self) -> Option<&'static str> {
        Some(match self {
            RunEvent::Start { .. } => "onStart",
            RunEvent::BeforeBackup => "onBeforeBackup",
            RunEvent::AfterBackup { .. } => "onAfterBackup",
            RunEvent::BeforeMigrate { .. } => "onBeforeMigrate",
            RunEvent::AfterMigrate { .. } => "onAfterMigrate",
            RunEvent::MigrationError { .. } => "onMigrationError",
            RunEvent::BeforeRestore { .. } => "onBeforeRestore",
            RunEvent::AfterRestore { .. } => "onAfterRestore",
            RunEvent::Complete { .. } => "onComplete",
            RunEvent::Failed { .. } => "onError",
            RunEvent::Lock(l) => match l {
                LockEvent::Waiting { .. } | LockEvent::GaveUp { .. } => "onLockWait",
                LockEvent::Acquired { .. } => "onLockAcquired",
                LockEvent::Renewed { .. } => "onLockRenewed",
                LockEvent::Lost { .. } => "onLockLost",
                LockEvent::Released { .. } => "onLockReleased",
                LockEvent::ForceReleased { .. } => "onForceRelease",
            },
            RunEvent::Marked { .. } | RunEvent::Rollback { .. } => return None,
        })
    }

    /// The metrics collector methods this event calls, in order (the predecessor's
    /// `MetricsCollectorHook`, plus `recordRollback` and a `close` after a failed run too).
    pub fn metrics(&self) -> &'static [&'static str] {
        match self {
            RunEvent::Start { .. } => &["recordMigrationStart"],
            RunEvent::BeforeMigrate { .. } => &["recordScriptStart"],
            RunEvent::AfterMigrate { .. } => &["recordScriptComplete"],
            RunEvent::MigrationError { .. } => &["recordScriptError"],
            RunEvent::AfterBackup { .. } => &["recordBackup"],
            RunEvent::Rollback { .. } => &["recordRollback"],
            RunEvent::Complete { .. } => &["recordMigrationComplete", "close"],
            RunEvent::Failed { .. } => &["recordError", "recordMigrationComplete", "close"],
            _ => &[],
        }
    }

    /// The log line for this event (stable event names for `--log-format json`).
    pub fn log_line(&self) -> LogLine {
        let info = |event, message: String| LogLine::new(LogLevel::Info, event, message);
        match self {
            RunEvent::Start { total, pending, .. } => LogLine::new(
                LogLevel::Debug,
                "run.start",
                format!("{total} migration script(s) found, {pending} to run"),
            )
            .with("total", total)
            .with("pending", pending),
            RunEvent::BeforeBackup => info("backup.start", "Preparing backup...".into()),
            RunEvent::AfterBackup { path, duration } => info(
                "backup.done",
                format!("Backup prepared successfully:\n {}", path.display()),
            )
            .with("path", path)
            .with("duration", ms(*duration)),
            RunEvent::BeforeMigrate { script, step } => {
                let message = match step.method {
                    Method::Up => format!("{} {} ...", step.counter(), script.name),
                    Method::Down => format!("{} Rolling back {} ...", step.counter(), script.name),
                };
                step.fields(info("migration.start", message), script)
            }
            RunEvent::AfterMigrate {
                script,
                step,
                duration,
            } => {
                let message = match step.method {
                    Method::Up => {
                        format!("{} {} ({})", step.counter(), script.name, human(*duration))
                    }
                    Method::Down => format!(
                        "{} {} rolled back ({})",
                        step.counter(),
                        script.name,
                        human(*duration)
                    ),
                };
                step.fields(info("migration.done", message), script)
                    .with("duration", ms(*duration))
            }
            RunEvent::MigrationError {
                script,
                step,
                error,
                duration,
            } => {
                let message = match step.method {
                    Method::Up => format!("Migration {} failed: {}", script.name, error.message),
                    Method::Down => format!(
                        "Rollback of migration {} failed: {}",
                        script.name, error.message
                    ),
                };
                step.fields(
                    LogLine::new(LogLevel::Error, "migration.failed", message),
                    script,
                )
                .with("duration", ms(*duration))
                .with("code", error.code.as_str())
            }
            RunEvent::Marked { script, step } => step.fields(
                info(
                    "migration.marked",
                    format!(
                        "{} {} marked as applied (not run)",
                        step.counter(),
                        script.name
                    ),
                ),
                script,
            ),
            RunEvent::BeforeRestore { path } => {
                info("restore.start", "Restoring from backup...".into()).with("path", path)
            }
            RunEvent::AfterRestore { path, duration } => info(
                "restore.done",
                format!("✓ Database restored from backup\n {}", path.display()),
            )
            .with("path", path)
            .with("duration", ms(*duration)),
            RunEvent::Rollback { report, duration } => LogLine::new(
                match (report.success, report.undone) {
                    (true, true) => LogLevel::Info,
                    (true, false) => LogLevel::Warn,
                    (false, _) => LogLevel::Error,
                },
                "rollback.done",
                format!(
                    "Rollback ({}) {} in {}: {}",
                    report.strategy,
                    if report.success { "done" } else { "failed" },
                    human(*duration),
                    report.done
                ),
            )
            .with("strategy", report.strategy)
            .with("success", report.success)
            .with("undone", report.undone)
            .with("restoredFrom", &report.restored_from)
            .with("downs", &report.downs)
            .with("duration", ms(*duration)),
            RunEvent::Complete {
                result, duration, ..
            } => LogLine::new(
                LogLevel::Debug,
                "run.complete",
                format!(
                    "Run complete: {} migration(s) in {}",
                    result.executed.len(),
                    human(*duration)
                ),
            )
            .with("executed", result.executed.len())
            .with("dryRun", result.dry_run)
            .with("duration", ms(*duration)),
            RunEvent::Failed {
                command,
                error,
                result,
                duration,
            } => {
                let message = match command {
                    Command::Down => format!("Rollback failed: {}", error.message),
                    _ => error.message.clone(),
                };
                LogLine::new(LogLevel::Error, "run.failed", message)
                    .with("code", error.code.as_str())
                    .with("executed", result.executed.len())
                    .with("duration", ms(*duration))
            }
            RunEvent::Lock(l) => l.log_line(),
        }
    }
}
