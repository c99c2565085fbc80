//! The runner: discover scripts, plan, validate, back up, run `up`s in order under the lock,
//! record each, roll back on failure; `down`, `list`, `validate`.
//!
//! One module per concept, bottom up (a file uses only files listed before it; a test checks
//! that the `use` graph has no cycle): `host` (the seam to JS scripts), `discover` (files,
//! checksums, duplicates), `plan` (executed / pending / ignored), `backups` (the backup seam),
//! `result` (what a run returns), `events` (every step of a run), `status` (where the database
//! stands for this app: readiness, the live views, the last run), `metrics` (that status as
//! Prometheus metrics); this file (`Runner`, `RunOptions`); then the runner's work: `probe`
//! (`status()` and `wait_until_migrated()` from the live views), `list`, `context` (one
//! `migrate`/`down` run, built once), `guard` (the lock, the scripts' fence and time limit),
//! `validate` (issues, the report, the checks before a run), `lost` (what a run whose lease
//! ended says), `rollback` (what happens when a script fails), `before_migrate`,
//! `mark_applied`, `migrate` (the `migrate` workflow), `down`.
//!
//! ## Errors vs. results
//! `migrate` and `down` return `Err` (with a stable code) whenever the run did not succeed:
//! SCRIPT_FAILED (a script threw; rollback applied), ROLLBACK_FAILED (and the rollback failed
//! too; the message has both causes), LOCK_LOST, INTERRUPTED, VALIDATION_FAILED,
//! BACKUP_FAILED, CONFIG_INVALID, ... The JS layer can turn SCRIPT_FAILED into the
//! predecessor's `{ success: false, errors }` if it wants to. The partial result (what ran
//! before the failure) is available through `migrate_outcome` / `down_outcome`, which return a
//! [`RunOutcome`] holding both the `MigrationResult` and the error.

pub mod backups;
mod before_migrate;
mod context;
pub mod discover;
pub mod down;
pub mod events;
pub mod guard;
pub mod host;
pub mod list;
mod lost;
mod mark_applied;
pub mod metrics;
pub mod migrate;
pub mod plan;
mod probe;
pub mod result;
pub mod rollback;
pub mod script_db;
pub mod status;
pub mod validate;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

pub use backups::{BackupOps, DefaultBackups};
pub use events::{EventFn, RunEvent, Step};
pub use host::{Method, ScriptHost, ScriptMeta};
pub use list::{ListEntry, MigrationList, MigrationStatus};
pub use result::{MigrationInfo, MigrationResult, RollbackReport, RunOutcome};
pub use script_db::ScriptDb;
pub use validate::{IssueType, ScriptValidation, ValidationIssue, ValidationReport};

use crate::config::Config;
use crate::history::{History, HistoryRecord};
use crate::lock::{Fence, LockEvent, LockService, WaitPolicy};
use crate::rtdb::Client;
use crate::Result;

pub use crate::log::{LineFn, LogLevel, LogLine};

/// Log sink as (level, text). The CLI prints; the library logs per `logLevel`. For the
/// structured line (event name and fields) use [`Runner::with_log_lines`].
pub type LogFn = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// Set by SIGINT/SIGTERM: the runner stops after the current step, and a wait for the lock
/// ends at once. A library runner of a run over many databases is asked to stop by `failFast`
/// and `reset` before its next run.
#[derive(Clone, Default)]
pub struct StopFlag {
    current: Arc<std::sync::Mutex<Stop>>,
}

#[derive(Clone, Default)]
struct Stop {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl StopFlag {
    fn now(&self) -> Stop {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn request(&self) {
        let s = self.now();
        s.flag.store(true, Ordering::SeqCst);
        s.token.cancel()
    }
    pub fn is_requested(&self) -> bool {
        self.now().flag.load(Ordering::SeqCst)
    }
    /// Cancelled when a stop is requested (for waits that must end at once).
    pub fn token(&self) -> CancellationToken {
        self.now().token
    }
    /// The flag itself, for code below the runner that checks it (backups, restores).
    pub fn shared(&self) -> Arc<AtomicBool> {
        self.now().flag
    }
    /// A fresh start: no stop requested (what was handed out before stays as it was).
    pub fn reset(&self) {
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Stop::default();
    }
}

/// How `migrate`/`down` take the lock (ignored when locking is disabled or `no_lock`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Option<u64>,
    pub dry_run: bool,
    pub no_lock: bool,
    pub wait: WaitPolicy,
    /// `migrate`: record the selected pending migrations as executed without running them
    /// (adopting a database that already has their effects).
    pub mark_applied: bool,
}

impl Default for RunOptions {
    /// No target, no dry run, lock per config, fail fast when the lock is held (library default).
    fn default() -> Self {
        RunOptions {
            target: None,
            dry_run: false,
            no_lock: false,
            wait: WaitPolicy::FailFast,
            mark_applied: false,
        }
    }
}

pub struct Runner<H: ScriptHost> {
    pub cfg: Config,
    pub client: Client,
    pub host: H,
    pub lock: Option<LockService>,
    /// Working directory relative paths resolve against.
    pub cwd: PathBuf,
    pub log: LineFn,
    /// Who hears about each step of a run (hooks, metrics, progress); see `events`.
    pub events: Option<EventFn>,
    pub stop: StopFlag,
    /// How backups are created and restored (`DefaultBackups` = `crate::backup`).
    pub backups: Arc<dyn BackupOps>,
    /// What the `db` given to scripts checks before each write (L12; see `runner::guard`).
    pub fence: Fence,
    /// The live views behind `status` and the last run (see `runner::status`).
    pub live: status::StatusState,
    /// What the scripts get as `db` ([`Runner::script_db`]).
    script_db: OnceLock<ScriptDb>,
}

impl<H: ScriptHost> Runner<H> {
    /// A runner with no lock, a silent log, a fresh stop flag and the default backups.
    pub fn new(cfg: Config, client: Client, host: H, cwd: PathBuf) -> Self {
        Runner {
            cfg,
            client,
            host,
            lock: None,
            cwd,
            log: Arc::new(|_| {}),
            events: None,
            stop: StopFlag::default(),
            backups: Arc::new(DefaultBackups::default()),
            fence: Fence::default(),
            live: status::StatusState::default(),
            script_db: OnceLock::new(),
        }
    }
    pub fn with_lock(mut self, lock: Option<LockService>) -> Self {
        self.lock = lock;
        self
    }
    /// Log lines as (level, text).
    pub fn with_log(mut self, log: LogFn) -> Self {
        self.log = Arc::new(move |l: &LogLine| log(l.level, &l.message));
        self
    }
    /// Log lines with their event names and fields.
    pub fn with_log_lines(mut self, log: LineFn) -> Self {
        self.log = log;
        self
    }
    pub fn with_events(mut self, events: EventFn) -> Self {
        self.events = Some(events);
        self
    }
    pub fn with_stop(mut self, stop: StopFlag) -> Self {
        self.stop = stop;
        self
    }
    /// Share `fence` with the `db` given to scripts.
    pub fn with_fence(mut self, fence: Fence) -> Self {
        self.fence = fence;
        self
    }
    pub fn with_backups(mut self, backups: Arc<dyn BackupOps>) -> Self {
        self.backups = backups;
        self
    }

    pub(crate) fn info(&self, msg: &str) {
        (self.log)(&LogLine::text(LogLevel::Info, msg))
    }
    pub(crate) fn warn(&self, msg: &str) {
        (self.log)(&LogLine::text(LogLevel::Warn, msg))
    }
    pub(crate) fn error(&self, msg: &str) {
        (self.log)(&LogLine::text(LogLevel::Error, msg))
    }
    pub(crate) fn debug(&self, msg: &str) {
        (self.log)(&LogLine::text(LogLevel::Debug, msg))
    }

    /// Log `ev`'s line, then hand it to the listeners and wait until they are done.
    pub(crate) async fn emit(&self, ev: RunEvent) {
        (self.log)(&ev.log_line());
        self.live.saw(&ev);
        if let Some(f) = &self.events {
            f(&ev).await;
        }
    }

    /// The lock service, its events going to this runner's log and listeners (delivered
    /// without waiting: they come from the wait loop and the renewal task).
    pub fn lock_service(&self) -> Option<LockService> {
        let service = self.lock.clone()?;
        let log = self.log.clone();
        let events = self.events.clone();
        Some(service.with_observer(Arc::new(move |ev: &LockEvent| {
            log(&ev.log_line());
            if let Some(f) = &events {
                drop(f(&RunEvent::Lock(ev.clone())));
            }
        })))
    }

    /// The `db` this runner's scripts get (see `script_db`): built on first use, from the
    /// runner as built.
    pub fn script_db(&self) -> &ScriptDb {
        self.script_db.get_or_init(|| {
            ScriptDb::new(
                &self.cfg,
                &self.client,
                &self.fence,
                self.lock_service(),
                self.live.lock.clone(),
                self.log.clone(),
            )
        })
    }

    /// The executor id this process uses for the lock and in history records.
    pub(crate) fn executor_id(&self) -> String {
        self.cfg
            .locking
            .executor_id
            .clone()
            .unwrap_or_else(crate::lock::default_executor_id)
    }

    /// The migration history at this runner's `{shift}/{tableName}`.
    pub(crate) fn history(&self) -> History {
        History::new(self.client.clone(), &self.cfg)
    }

    /// Read the migration history. `first`: the command this is the first request of (the
    /// connection check folds into it: a failure says the connection check failed).
    pub(crate) async fn read_history(
        &self,
        history: &History,
        first: Option<&str>,
    ) -> Result<(Vec<HistoryRecord>, Vec<String>)> {
        let read = history.read().await;
        match first {
            Some(what) => read.map_err(|e| {
                e.context(format!(
                    "Database connection check failed. Cannot proceed with {what} operations"
                ))
            }),
            None => read,
        }
    }

    /// Discovery plus its warnings and the duplicate policy.
    pub(crate) fn discover_checked(&self) -> Result<discover::Discovery> {
        let disc = discover::discover(&self.cfg, &self.cwd)?;
        for w in &disc.warnings {
            self.warn(w);
        }
        for w in disc.check_duplicates(&self.cfg)? {
            self.warn(&w);
        }
        Ok(disc)
    }
}

/// Local wall clock, ms since the epoch (history timestamps).
pub fn now_ms() -> i64 {
    use crate::rtdb::Clock;
    crate::rtdb::SystemClock.now_ms()
}
