//! `migrate`: connect, lock, `beforeMigrate`, plan, validate, back up, run each pending `up` in
//! version order and record it right after it succeeds; roll back on failure; release the lock.
//! The run's context (`Run`) is built once by `Runner::run_outcome`; this file is its steps
//! (the `beforeMigrate` script is `runner::before_migrate`, `--mark-applied` is
//! `runner::mark_applied`, the checks before running are `Runner::check_selected`).

use std::path::PathBuf;
use std::time::Instant;

use crate::lock::is_connectivity;
use crate::{Error, ErrorCode, Result};

use super::context::{Run, Work};
use super::discover::Script;
use super::events::{RunEvent, Step};
use super::host::script_info;
use super::lost::Ended;
use super::rollback::{Attempt, Done, Failure};
use super::{
    now_ms, Method, MigrationInfo, MigrationResult, RunOptions, RunOutcome, Runner, ScriptHost,
};

/// How a step of the run failed (`Runner::step_failed`).
enum Failed {
    /// Its `up()` threw, or did not finish within `scriptTimeout`.
    Threw(Error),
    /// It ran, then ownership could not be proved.
    NotProved(Error),
    /// It ran, then it could not be recorded.
    NotRecorded(Error),
}

/// The script a step is running, for its events and its rollback.
struct Attempting<'a> {
    script: &'a Script,
    step: Step,
    clock: Instant,
}

impl Attempting<'_> {
    fn failed(&self, error: &Error) -> RunEvent {
        RunEvent::MigrationError {
            script: MigrationInfo::pending(self.script),
            step: self.step,
            error: error.clone(),
            duration: self.clock.elapsed(),
        }
    }
}

impl<H: ScriptHost> Runner<H> {
    /// Run pending migrations (up to `opts.target`). See the module docs of `runner` for the
    /// error semantics: any failure is an `Err` with a stable code; use
    /// [`Runner::migrate_outcome`] to also get the partial result.
    pub async fn migrate(&self, opts: RunOptions) -> Result<MigrationResult> {
        self.migrate_outcome(opts).await.into_result()
    }

    /// `migrate`, returning the result together with the error that ended the run (if any).
    /// On failure `result.executed` lists the migrations this run executed and recorded
    /// before the failure (their effects may since have been rolled back).
    pub async fn migrate_outcome(&self, opts: RunOptions) -> RunOutcome {
        self.run_outcome(opts, Work::Migrate).await
    }

    /// The history first, without the lock (this read is also the connection check); the lock
    /// only when there is something to do under it.
    pub(crate) async fn migrate_run(
        &self,
        run: &mut Run,
        result: &mut MigrationResult,
    ) -> Result<()> {
        self.read_planned(run, Some("migration")).await?;
        if !run.locking || run.nothing_to_run() {
            // Without a lock (locking off, --no-lock, a dry run), or nothing to run and no
            // beforeMigrate script (which runs on every migrate, under the lock): the run ends
            // on what was read, without touching the lock.
            self.fence.open();
            return self.migrate_planned(run, result).await;
        }
        // Pre-flight without the lock: scripts that cannot load (or drifted files) fail every
        // contender the same way, without touching the lock node. Repeated under the lock
        // (history may change meanwhile); loaded scripts are not loaded again.
        self.check_selected(run, false).await?;
        // A wait ends without the lock when, once its holder released it, the history shows
        // nothing left to run: the waiting process never contends for a lock it does not need.
        let (still_needed, fresh) = run.still_needed();
        run.guard = self.take_lock(run, Some(still_needed)).await?;
        run.planned = match &run.guard {
            // Under the lock the history is read again: another process may have run them.
            Some(_) => None,
            None => {
                let path = self.lock.as_ref().map(|l| l.path()).unwrap_or_default();
                self.info(&format!(
                    "The migration lock at {path} was released and the history shows nothing left to run"
                ));
                fresh.lock().unwrap_or_else(|p| p.into_inner()).take()
            }
        };
        self.migrate_planned(run, result).await
    }

    /// The run under the lock (or without one), step by step, on the history as read, else
    /// read now (after `beforeMigrate`).
    async fn migrate_planned(&self, run: &mut Run, result: &mut MigrationResult) -> Result<()> {
        self.setup(run).await?;
        if run.planned.is_none() {
            self.read_planned(run, None).await?;
        }
        self.report_plan(run, result);
        let selected = run.selected();
        result.plan = selected.iter().map(MigrationInfo::pending).collect();
        // Validation of what is about to run (load, `up` present) and of what ran before.
        self.check_selected(run, true).await?;
        let start = RunEvent::Start {
            command: run.command,
            total: run.disc.scripts.len(),
            pending: selected.len(),
        };
        if self.report_only(run, &selected) {
            self.emit(start).await;
            return Ok(());
        }
        if self.stop.is_requested() {
            return Err(Error::new(
                ErrorCode::Interrupted,
                "Migration run interrupted before any migration started; nothing was executed.",
            ));
        }
        if run.opts.mark_applied {
            self.emit(start).await;
            return self.mark_applied(run, &selected, result).await;
        }
        run.backup_path = self.backup_before(run).await?;
        self.emit(start).await;
        match run.opts.target {
            Some(t) => self.info(&format!("Migrating to version {t}...")),
            None => self.info("Processing..."),
        }
        let mut done: Vec<Done> = Vec::new();
        for s in &selected {
            // The previous step ended with a proof of ownership (a conditional write): here the
            // lease is checked locally; the proof for this script comes after it ran.
            let so_far = format!(
                "{} migration(s) of this run were executed and recorded",
                done.len()
            );
            self.between_steps(run.check_lease(), &s.name, &so_far, || {
                format!(
                    "Migration run interrupted before {}: {} of {} migration(s) executed and recorded; the rest did not start. Run migrate again to continue.",
                    s.name,
                    done.len(),
                    selected.len()
                )
            })?;
            let step = Step {
                index: done.len() + 1,
                total: selected.len(),
                method: Method::Up,
            };
            let d = self.run_one(run, s, step, &done).await?;
            result.executed.push(MigrationInfo::from_record(&d.record));
            done.push(d);
        }
        match run.opts.target {
            Some(t) => self.info(&format!("Migration to version {t} finished successfully!")),
            None => self.info("Migration finished successfully!"),
        }
        Ok(())
    }

    /// The plan as read: the history's warnings, `result.migrated` and `result.ignored`.
    fn report_plan(&self, run: &Run, result: &mut MigrationResult) {
        let Some(planned) = &run.planned else {
            return;
        };
        for w in &planned.warnings {
            self.warn(w);
        }
        let plan = &planned.plan;
        result.migrated = planned
            .records
            .iter()
            .map(MigrationInfo::from_record)
            .collect();
        result.ignored = plan.ignored.iter().map(MigrationInfo::pending).collect();
        if !plan.ignored.is_empty() {
            self.warn(&format!(
                "Ignored {} out-of-order migration(s) not newer than the last executed one ({}): {}. They will not run; give them a newer timestamp to apply them.",
                plan.ignored.len(),
                plan.last_executed.unwrap_or(0),
                plan.ignored.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
    }

    /// Nothing to do, or a dry run: say so and what would run. True when the run ends here.
    fn report_only(&self, run: &Run, selected: &[Script]) -> bool {
        let (plan, target) = (run.planned.as_ref().map(|p| &p.plan), run.opts.target);
        if selected.is_empty() {
            let last = plan.and_then(|p| p.last_executed);
            match target {
                Some(t) if last.is_some_and(|last| t < last) => self.info(&format!(
                    "Already at target version {t} or beyond - nothing to do"
                )),
                _ => self.info("Nothing to do"),
            }
            if run.dry_run {
                self.info("✓ Dry run completed - no changes made");
                self.info("Would execute: 0 migration(s)");
            }
            return true;
        }
        if !run.dry_run {
            return false;
        }
        let would = if run.opts.mark_applied {
            "Would mark as applied (without running)"
        } else {
            "Would execute"
        };
        for s in selected {
            self.info(&format!("{would} {}", s.name));
        }
        self.info("✓ Dry run completed - no changes made");
        self.info(&format!("{would}: {} migration(s)", selected.len()));
        let ignored = plan.map_or(0, |p| p.ignored.len());
        if ignored > 0 {
            self.info(&format!("Would ignore: {ignored} migration(s)"));
        }
        true
    }

    /// The backup taken before running, when the rollback strategy needs one.
    async fn backup_before(&self, run: &Run) -> Result<Option<PathBuf>> {
        if !self.should_create_backup() {
            return Ok(None);
        }
        run.check_lease()?;
        self.emit(RunEvent::BeforeBackup).await;
        let started = Instant::now();
        let p = self
            .backups
            .create(&self.client, &self.cfg, &self.cwd)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorCode::BackupFailed,
                    format!("Backup before migrating failed: {}", e.message),
                )
            })?;
        self.emit(RunEvent::AfterBackup {
            path: p.clone(),
            duration: started.elapsed(),
        })
        .await;
        // It took time: ownership is proved again before the first script runs.
        self.check_guard(run.guard()).await?;
        Ok(Some(p))
    }

    /// Backup before running: strategy backup|both with mode full|create_only.
    fn should_create_backup(&self) -> bool {
        self.cfg.rollback_strategy.restores_backup() && self.cfg.backup_mode.takes_backup()
    }

    /// Run one script's `up` and record it; a failure goes to `step_failed`.
    async fn run_one(&self, run: &mut Run, s: &Script, step: Step, done: &[Done]) -> Result<Done> {
        self.emit(RunEvent::BeforeMigrate {
            script: MigrationInfo::pending(s),
            step,
        })
        .await;
        let at = Attempting {
            script: s,
            step,
            clock: Instant::now(),
        };
        let started_at = now_ms();
        let info = script_info(
            &s.name,
            &s.filepath_str(),
            s.version,
            started_at,
            &run.username,
        );
        let value = match self
            .run_script(&s.name, &s.filepath, Method::Up, &info)
            .await
        {
            Ok(v) => v,
            Err(e) => return Err(self.step_failed(run, &at, done, Failed::Threw(e)).await),
        };
        let finished_at = now_ms();
        // The lock may have been lost while the script ran: then this process no longer owns
        // the database and must not write, not even the record. An unreachable database is
        // ridden out while the lease lasts (L11).
        if let Err(e) = self.check_guard(run.guard()).await {
            return Err(self.step_failed(run, &at, done, Failed::NotProved(e)).await);
        }
        let record = run.record(s, (started_at, finished_at), Some(value), false);
        // Recorded whatever the network does: retried while the lease lasts; the create is
        // conditional and recognises its own earlier attempt, so a retry never records twice.
        let recorded = self
            .ride_out(run.guard(), "record the migration in the history", || {
                run.history.record(&record)
            })
            .await;
        let key = match recorded {
            Ok(k) => k,
            Err(e) => {
                return Err(self
                    .step_failed(run, &at, done, Failed::NotRecorded(e))
                    .await)
            }
        };
        let record = crate::history::HistoryRecord { key, ..record };
        self.emit(RunEvent::AfterMigrate {
            script: MigrationInfo::from_record(&record),
            step,
            duration: at.clock.elapsed(),
        })
        .await;
        Ok(Done {
            script: s.clone(),
            record,
            meta: run.metas.get(&s.filepath).cloned(),
        })
    }

    /// The one way a step of `migrate` fails, told as its `MigrationError` event. A holder whose
    /// lease is over never rolls back (L4/L11: a restore or down() would undo the new holder's
    /// work): it stops and says what it leaves behind (`runner::lost`). An abandoned script
    /// (`scriptTimeout`) may still be running: nothing is undone under it. Anything else is
    /// rolled back per strategy.
    async fn step_failed(
        &self,
        run: &mut Run,
        at: &Attempting<'_>,
        done: &[Done],
        how: Failed,
    ) -> Error {
        let s = at.script;
        let cause = match how {
            Failed::Threw(e) => {
                self.emit(at.failed(&e)).await;
                if e.code == ErrorCode::ScriptTimeout {
                    return e;
                }
                if let Some(over) = run.guard().and_then(|g| g.lease().check_local()) {
                    let ended = Ended::Stopped(&e);
                    return self
                        .after_lease(run.guard(), &run.history, s, ended, over)
                        .await;
                }
                e
            }
            Failed::NotRecorded(e) if !is_connectivity(&e) && e.code != ErrorCode::LockLost => {
                let cause = e.context("it ran but could not be recorded in the migration history");
                self.emit(at.failed(&cause)).await;
                cause
            }
            Failed::NotProved(e) | Failed::NotRecorded(e) => {
                let e = self
                    .after_lease(run.guard(), &run.history, s, Ended::Ran, e)
                    .await;
                self.emit(at.failed(&e)).await;
                return e;
            }
        };
        let failure = Failure {
            attempt: Attempt {
                script: s.clone(),
                meta: run.metas.get(&s.filepath).cloned(),
            },
            cause,
        };
        let (e, report) = self.fail(run, failure, done).await;
        run.rollback = Some(report);
        e
    }
}
