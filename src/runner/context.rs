//! One `migrate`/`down` run, built once (`Run`): what it was asked (the options, dry run or
//! not, whether it takes the lock), what it found (the scripts, the history as last read and
//! the plan worked out from it, once per read), and what it holds (the lock, the backup taken,
//! the scripts loaded so far). `Runner::run_outcome` is the frame every such run goes through:
//! the context, the work, the lock given back, the end told to the listeners.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::history::{current_username, History, HistoryRecord};
use crate::lock::{ExclusiveGuard, StillNeeded};
use crate::Result;

use super::discover::{Discovery, Script};
use super::events::{Command, RunEvent};
use super::plan::{check_target, plan, DownTo, Plan};
use super::{
    MigrationResult, RollbackReport, RunOptions, RunOutcome, Runner, ScriptHost, ScriptMeta,
};

/// What a run does.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Work {
    /// `migrate` (with `--mark-applied`: record without running).
    Migrate,
    /// `down` to a version or back a number of steps.
    Down(DownTo),
}

/// The history as read, and the plan worked out from it (once per read).
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub records: Vec<HistoryRecord>,
    /// Warnings for history entries that were skipped.
    pub warnings: Vec<String>,
    pub plan: Plan,
}

impl Planned {
    pub fn new(
        scripts: &[Script],
        (records, warnings): (Vec<HistoryRecord>, Vec<String>),
    ) -> Planned {
        Planned {
            plan: plan(scripts, &records),
            records,
            warnings,
        }
    }
}

/// One `migrate`/`down` run.
pub(crate) struct Run {
    pub command: Command,
    pub opts: RunOptions,
    /// A dry run: asked for, or the config's `dryRun`.
    pub dry_run: bool,
    /// The run takes the lock: locking is configured, no `--no-lock`, not a dry run.
    pub locking: bool,
    pub disc: Discovery,
    pub history: History,
    pub executor_id: String,
    pub username: String,
    /// The history as last read and its plan (`None`: to be read).
    pub planned: Option<Planned>,
    /// The scripts loaded so far (not loaded again).
    pub metas: HashMap<PathBuf, ScriptMeta>,
    pub guard: Option<ExclusiveGuard>,
    /// The backup taken before running.
    pub backup_path: Option<PathBuf>,
    /// What the rollback after a failure did.
    pub rollback: Option<RollbackReport>,
}

impl Run {
    /// The lock held, if any.
    pub fn guard(&self) -> Option<&ExclusiveGuard> {
        self.guard.as_ref()
    }

    /// Err once the lease is over (known locally, no request).
    pub fn check_lease(&self) -> Result<()> {
        match self.guard().and_then(|g| g.lease().check_local()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What `migrate` selects from the plan: the pending migrations up to the target (none
    /// before the history was read).
    pub fn selected(&self) -> Vec<Script> {
        self.planned
            .as_ref()
            .map(|p| p.plan.pending_up_to(self.opts.target))
            .unwrap_or_default()
    }

    /// Whether this migrate runs the `beforeMigrate` script (on every run but `--mark-applied`).
    pub fn runs_before_migrate(&self) -> bool {
        self.disc.before_migrate.is_some() && !self.opts.mark_applied
    }

    /// Nothing to run for this migrate, judged on the history as last read: no pending
    /// migration selected, and no `beforeMigrate` script to run.
    pub fn nothing_to_run(&self) -> bool {
        self.planned
            .as_ref()
            .is_some_and(|p| nothing_to_run(self.runs_before_migrate(), self.opts.target, &p.plan))
    }

    /// The question a wait for the lock asks once the lock is free: is there still something to
    /// run (the history read again)? The read and its plan are left in the returned cell, for a
    /// run that ends without the lock.
    pub fn still_needed(&self) -> (StillNeeded, Arc<Mutex<Option<Planned>>>) {
        let fresh: Arc<Mutex<Option<Planned>>> = Arc::default();
        let history = self.history.clone();
        let scripts = Arc::new(self.disc.scripts.clone());
        let (before_migrate, target) = (self.runs_before_migrate(), self.opts.target);
        let cell = fresh.clone();
        let still: StillNeeded = Arc::new(move || {
            let (history, scripts, cell) = (history.clone(), scripts.clone(), cell.clone());
            Box::pin(async move {
                let planned = Planned::new(&scripts, history.read().await?);
                let needed = !nothing_to_run(before_migrate, target, &planned.plan);
                *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(planned);
                Ok(needed)
            })
        });
        (still, fresh)
    }

    /// The history record of `s` as this run writes it: it ran from `started_at` to
    /// `finished_at` and returned `result`, or (`marked`) it was marked as applied.
    pub fn record(
        &self,
        s: &Script,
        (started_at, finished_at): (i64, i64),
        result: Option<Value>,
        marked: bool,
    ) -> HistoryRecord {
        HistoryRecord {
            key: String::new(),
            name: s.name.clone(),
            filepath: s.filepath_str(),
            timestamp: s.version,
            started_at: Some(started_at),
            finished_at: Some(finished_at),
            username: Some(self.username.clone()),
            result: result.filter(|v| !v.is_null()),
            checksum: Some(s.checksum.clone()),
            duration: Some(finished_at - started_at),
            executor_id: Some(self.executor_id.clone()),
            lock_epoch: self.guard().map(ExclusiveGuard::epoch),
            marked_applied: marked.then_some(true),
        }
    }
}

fn nothing_to_run(before_migrate: bool, target: Option<u64>, plan: &Plan) -> bool {
    !before_migrate && plan.pending_up_to(target).is_empty()
}

impl<H: ScriptHost> Runner<H> {
    /// The frame of every `migrate`/`down` run: the target checked, the scripts discovered, the
    /// context built once; then the work, the lock given back, and the end settled into the
    /// result and told to the listeners (`Complete` / `Failed`).
    pub(crate) async fn run_outcome(&self, opts: RunOptions, work: Work) -> RunOutcome {
        let started = Instant::now();
        let command = match work {
            Work::Down(_) => Command::Down,
            Work::Migrate if opts.mark_applied => Command::MarkApplied,
            Work::Migrate => Command::Migrate,
        };
        let mut result = MigrationResult::empty();
        result.dry_run = opts.dry_run || self.cfg.dry_run;
        let error = match self.run_context(command, opts, work, result.dry_run) {
            Err(e) => Some(e),
            Ok(mut run) => {
                let done = match work {
                    Work::Migrate => self.migrate_run(&mut run, &mut result).await,
                    Work::Down(to) => self.down_run(to, &mut run, &mut result).await,
                };
                self.give_back(run.guard.take()).await;
                result.rollback = run.rollback.take();
                done.err()
            }
        };
        result.success = error.is_none();
        let duration = started.elapsed();
        let ev = match &error {
            None => RunEvent::Complete {
                command,
                result: result.clone(),
                duration,
            },
            Some(e) => {
                result.errors.push(e.message.clone());
                RunEvent::Failed {
                    command,
                    error: e.clone(),
                    result: result.clone(),
                    duration,
                }
            }
        };
        self.emit(ev).await;
        RunOutcome { result, error }
    }

    fn run_context(
        &self,
        command: Command,
        opts: RunOptions,
        work: Work,
        dry_run: bool,
    ) -> Result<Run> {
        match (work, opts.target) {
            (Work::Migrate, Some(t)) => check_target(t, false)?,
            (Work::Down(to), _) => to.check()?,
            _ => {}
        }
        let disc = self.discover_checked()?;
        Ok(Run {
            command,
            locking: self.lock.is_some() && !opts.no_lock && !dry_run,
            opts,
            dry_run,
            disc,
            history: self.history(),
            executor_id: self.executor_id(),
            username: current_username(),
            planned: None,
            metas: HashMap::new(),
            guard: None,
            backup_path: None,
            rollback: None,
        })
    }

    /// Read the history into `run` and work out its plan (`first`: see `read_history`).
    pub(crate) async fn read_planned(&self, run: &mut Run, first: Option<&str>) -> Result<()> {
        let read = self.read_history(&run.history, first).await?;
        run.planned = Some(Planned::new(&run.disc.scripts, read));
        Ok(())
    }
}
