//! `migrate`: connect, lock, `beforeMigrate`, plan, validate, back up, run each pending `up` in
//! version order and record it right after it succeeds; roll back on failure; release the lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::history::{current_username, History, HistoryRecord};
use crate::lock::{is_connectivity, ExclusiveGuard, StillNeeded};
use crate::{Error, ErrorCode, Result};

use super::discover::{discover, Discovery, Script};
use super::events::{Command, RunEvent, Step};
use super::host::script_info;
use super::lost::Ended;
use super::plan::{check_target, plan, Plan};
use super::rollback::{Attempt, Done, Failure, RollbackReport};
use super::validate::{failure, validate_migrated, validate_script, ValidationIssue};
use super::{
    now_ms, Method, MigrationInfo, MigrationResult, RunOptions, RunOutcome, Runner, ScriptHost,
    ScriptMeta,
};

/// The history as read: records and warnings for skipped entries.
type HistoryRead = (Vec<HistoryRecord>, Vec<String>);

/// Whether this migrate runs the `beforeMigrate` script (on every run but `--mark-applied`).
fn runs_before_migrate(opts: &RunOptions, disc: &Discovery) -> bool {
    disc.before_migrate.is_some() && !opts.mark_applied
}

/// Nothing to run against `records`: no pending migration up to `target` and no
/// `beforeMigrate` script to run.
fn nothing_to_run(
    scripts: &[Script],
    before_migrate: bool,
    target: Option<u64>,
    records: &[HistoryRecord],
) -> bool {
    !before_migrate && plan(scripts, records).pending_up_to(target).is_empty()
}

/// Err once the lease is over (known locally, no request).
fn check_lease(guard: Option<&ExclusiveGuard>) -> Result<()> {
    match guard.and_then(|g| g.lease().check_local()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// What every step of one run's execution needs.
struct Run<'a> {
    history: &'a History,
    /// How many scripts this run executes.
    total: usize,
    guard: Option<&'a ExclusiveGuard>,
    executor_id: &'a str,
    epoch: Option<u64>,
    username: String,
    backup_path: Option<&'a std::path::Path>,
    metas: &'a HashMap<PathBuf, ScriptMeta>,
    /// What the rollback after a failure did (for the result).
    rollback: Mutex<Option<RollbackReport>>,
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
        let started = Instant::now();
        let command = if opts.mark_applied {
            Command::MarkApplied
        } else {
            Command::Migrate
        };
        let mut result = MigrationResult::empty();
        result.dry_run = opts.dry_run || self.cfg.dry_run;
        let error = self.migrate_run(&opts, &mut result).await.err();
        self.finish(command, &mut result, error.as_ref(), started)
            .await;
        RunOutcome { result, error }
    }

    /// Settle `result` with the run's error and tell the listeners (`Complete` / `Failed`).
    pub(crate) async fn finish(
        &self,
        command: Command,
        result: &mut MigrationResult,
        error: Option<&Error>,
        started: Instant,
    ) {
        let duration = started.elapsed();
        result.success = error.is_none();
        let ev = match error {
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
    }

    async fn migrate_run(&self, opts: &RunOptions, result: &mut MigrationResult) -> Result<()> {
        let dry = opts.dry_run || self.cfg.dry_run;
        if let Some(t) = opts.target {
            check_target(t, false)?;
        }
        let disc = self.discover_checked()?;
        let executor_id = self.executor_id();
        let mut metas = HashMap::new();
        // The history first, without the lock: this read is also the connection check.
        let first = self.read_history(Some("migration")).await?;
        let locking = self.lock.is_some() && !opts.no_lock && !dry;
        if !locking || self.nothing_to_run(opts, &disc, &first.0) {
            // Without a lock (locking off, --no-lock, a dry run), or nothing to run and no
            // beforeMigrate script (which runs on every migrate, under the lock): the run ends
            // on what was read, without touching the lock.
            let guard = self.take_lock(opts, &executor_id, false).await?;
            return self
                .migrate_locked(
                    opts,
                    &disc,
                    guard.as_ref(),
                    &executor_id,
                    result,
                    &mut metas,
                    Some(first),
                )
                .await;
        }
        // Pre-flight without the lock: scripts that cannot load (or drifted files) fail every
        // contender the same way, without touching the lock node. Repeated under the lock
        // (history may change meanwhile); loaded scripts are not loaded again.
        self.preflight(opts, &disc, &first.0, &mut metas).await?;
        // A wait ends without the lock when, once its holder released it, the history shows
        // nothing left to run: the waiting process never contends for a lock it does not need.
        let fresh: Arc<Mutex<Option<HistoryRead>>> = Arc::default();
        let still_needed: StillNeeded = {
            let history = History::new(self.client.clone(), &self.cfg);
            let scripts = Arc::new(disc.scripts.clone());
            let before_migrate = runs_before_migrate(opts, &disc);
            let (target, fresh) = (opts.target, fresh.clone());
            Arc::new(move || {
                let (history, scripts, fresh) = (history.clone(), scripts.clone(), fresh.clone());
                Box::pin(async move {
                    let read = history.read().await?;
                    let needed = !nothing_to_run(&scripts, before_migrate, target, &read.0);
                    *fresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(read);
                    Ok(needed)
                })
            })
        };
        let Some(guard) = self
            .take_lock_if_needed(opts, &executor_id, still_needed)
            .await?
        else {
            let path = self
                .lock
                .as_ref()
                .map(|l| l.path().to_string())
                .unwrap_or_default();
            self.info(&format!(
                "The migration lock at {path} was released and the history shows nothing left to run"
            ));
            let read = fresh.lock().unwrap_or_else(|p| p.into_inner()).take();
            return self
                .migrate_locked(opts, &disc, None, &executor_id, result, &mut metas, read)
                .await;
        };
        let guard = Some(guard);
        // Under the lock the history is read again: another process may have run them meanwhile.
        let r = self
            .migrate_locked(
                opts,
                &disc,
                guard.as_ref(),
                &executor_id,
                result,
                &mut metas,
                None,
            )
            .await;
        self.give_back(guard).await;
        r
    }

    /// Nothing to run for this migrate, judged on `records`: no pending migration selected, and
    /// no `beforeMigrate` script to run (`--mark-applied` runs none).
    fn nothing_to_run(
        &self,
        opts: &RunOptions,
        disc: &Discovery,
        records: &[HistoryRecord],
    ) -> bool {
        nothing_to_run(
            &disc.scripts,
            runs_before_migrate(opts, disc),
            opts.target,
            records,
        )
    }

    /// Discovery plus its warnings and the duplicate policy.
    pub(crate) fn discover_checked(&self) -> Result<Discovery> {
        let disc = discover(&self.cfg, &self.cwd)?;
        for w in &disc.warnings {
            self.warn(w);
        }
        for w in disc.check_duplicates(&self.cfg)? {
            self.warn(&w);
        }
        Ok(disc)
    }

    async fn run_before_migrate(&self, path: &std::path::Path) -> Result<()> {
        let fail = |e: Error| {
            Error::new(
                ErrorCode::ScriptFailed,
                format!(
                    "beforeMigrate script {} failed: {}",
                    path.display(),
                    e.message
                ),
            )
        };
        self.info(&format!("Found beforeMigrate script: {}", path.display()));
        let meta = self.host.load(path).await.map_err(fail)?;
        if !meta.has_up {
            return Err(fail(Error::new(
                ErrorCode::ScriptFailed,
                "it does not export an up() method",
            )));
        }
        let started = Instant::now();
        let info = script_info(
            &self.cfg.before_migrate_name.clone().unwrap_or_default(),
            &path.to_string_lossy(),
            0,
            now_ms(),
            &current_username(),
        );
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self
            .run_script(&name, path, Method::Up, &info)
            .await
            .map_err(fail)?;
        self.info(&format!(
            "✓ beforeMigrate completed successfully in {}ms",
            started.elapsed().as_millis()
        ));
        if !out.is_null() {
            self.debug(&format!("Result: {}", display_value(&out)));
        }
        Ok(())
    }

    /// The run under the lock (or without one), step by step. `read`: the history as already
    /// read (a run without the lock), else it is read now.
    #[allow(clippy::too_many_arguments)]
    async fn migrate_locked(
        &self,
        opts: &RunOptions,
        disc: &Discovery,
        guard: Option<&ExclusiveGuard>,
        executor_id: &str,
        result: &mut MigrationResult,
        metas: &mut HashMap<PathBuf, ScriptMeta>,
        read: Option<HistoryRead>,
    ) -> Result<()> {
        let dry = opts.dry_run || self.cfg.dry_run;
        self.setup(dry, opts.mark_applied, disc, guard).await?;
        let history = History::new(self.client.clone(), &self.cfg);
        let read = match read {
            Some(r) => r,
            None => self.read_history(None).await?,
        };
        let plan = self.read_plan(read, disc, result);
        let selected = plan.pending_up_to(opts.target);
        result.plan = selected.iter().map(MigrationInfo::pending).collect();
        // Validation of what is about to run (load, `up` present) and of what ran before.
        self.check_selected(&plan, &selected, metas, !opts.mark_applied, true)
            .await?;
        let start = RunEvent::Start {
            command: if opts.mark_applied {
                Command::MarkApplied
            } else {
                Command::Migrate
            },
            total: disc.scripts.len(),
            pending: selected.len(),
        };
        if self.report_only(dry, opts, &plan, &selected) {
            self.emit(start).await;
            return Ok(());
        }
        if self.stop.is_requested() {
            return Err(Error::new(
                ErrorCode::Interrupted,
                "Migration run interrupted before any migration started; nothing was executed.",
            ));
        }
        if opts.mark_applied {
            self.emit(start).await;
            return self
                .mark_applied(&history, &selected, guard, executor_id, result)
                .await;
        }
        let backup_path = self.backup_before(guard).await?;
        self.emit(start).await;
        let run = Run {
            history: &history,
            total: selected.len(),
            guard,
            executor_id,
            epoch: guard.map(ExclusiveGuard::epoch),
            username: current_username(),
            backup_path: backup_path.as_deref(),
            metas,
            rollback: Mutex::new(None),
        };
        match opts.target {
            Some(t) => self.info(&format!("Migrating to version {t}...")),
            None => self.info("Processing..."),
        }
        let mut done: Vec<Done> = Vec::new();
        for s in &selected {
            // The previous step ended with a proof of ownership (a conditional write): here the
            // lease is checked locally; the proof for this script comes after it ran.
            check_lease(guard).map_err(|e| lost_before(e, s, &done))?;
            if self.stop.is_requested() {
                return Err(Error::new(
                    ErrorCode::Interrupted,
                    format!(
                        "Migration run interrupted before {}: {} of {} migration(s) executed and recorded; the rest did not start. Run migrate again to continue.",
                        s.name,
                        done.len(),
                        selected.len()
                    ),
                ));
            }
            let d = match self.run_one(&run, s, &done).await {
                Ok(d) => d,
                Err(e) => {
                    result.rollback = run
                        .rollback
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take();
                    return Err(e);
                }
            };
            result.executed.push(MigrationInfo::from_record(&d.record));
            done.push(d);
        }
        match opts.target {
            Some(t) => self.info(&format!("Migration to version {t} finished successfully!")),
            None => self.info("Migration finished successfully!"),
        }
        Ok(())
    }

    /// The dry-run banner; or, for a real run, a lock check and the `beforeMigrate` script
    /// (not when only marking migrations as applied: nothing runs then).
    async fn setup(
        &self,
        dry: bool,
        mark_applied: bool,
        disc: &Discovery,
        guard: Option<&ExclusiveGuard>,
    ) -> Result<()> {
        if dry {
            self.info("🔍 DRY RUN MODE - No changes will be made");
            return Ok(());
        }
        // Just acquired: the lease, checked locally (no request).
        check_lease(guard)?;
        if mark_applied {
            return Ok(());
        }
        self.info("Checking for beforeMigrate setup script...");
        match &disc.before_migrate {
            Some(p) => {
                self.run_before_migrate(p).await?;
                // It took time: ownership is proved again before anything else runs.
                self.check_guard(guard).await
            }
            None => {
                self.info("No beforeMigrate script found, skipping setup phase");
                Ok(())
            }
        }
    }

    /// Plan against the history as read; fills `result.migrated` and `result.ignored`.
    fn read_plan(&self, read: HistoryRead, disc: &Discovery, result: &mut MigrationResult) -> Plan {
        let (records, warnings) = read;
        for w in &warnings {
            self.warn(w);
        }
        let plan = plan(&disc.scripts, &records);
        result.migrated = records.iter().map(MigrationInfo::from_record).collect();
        result.ignored = plan.ignored.iter().map(MigrationInfo::pending).collect();
        if !plan.ignored.is_empty() {
            self.warn(&format!(
                "Ignored {} out-of-order migration(s) not newer than the last executed one ({}): {}. They will not run; give them a newer timestamp to apply them.",
                plan.ignored.len(),
                plan.last_executed.unwrap_or(0),
                plan.ignored.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        plan
    }

    /// Nothing to do, or a dry run: say so and what would run. True when the run ends here.
    fn report_only(&self, dry: bool, opts: &RunOptions, plan: &Plan, selected: &[Script]) -> bool {
        let target = opts.target;
        if selected.is_empty() {
            match target {
                Some(t) if plan.last_executed.is_some_and(|last| t < last) => self.info(&format!(
                    "Already at target version {t} or beyond - nothing to do"
                )),
                _ => self.info("Nothing to do"),
            }
            if dry {
                self.info("✓ Dry run completed - no changes made");
                self.info("Would execute: 0 migration(s)");
            }
            return true;
        }
        if !dry {
            return false;
        }
        let would = if opts.mark_applied {
            "Would mark as applied (without running)"
        } else {
            "Would execute"
        };
        for s in selected {
            self.info(&format!("{would} {}", s.name));
        }
        self.info("✓ Dry run completed - no changes made");
        self.info(&format!("{would}: {} migration(s)", selected.len()));
        if !plan.ignored.is_empty() {
            self.info(&format!(
                "Would ignore: {} migration(s)",
                plan.ignored.len()
            ));
        }
        true
    }

    /// The backup taken before running, when the rollback strategy needs one.
    async fn backup_before(&self, guard: Option<&ExclusiveGuard>) -> Result<Option<PathBuf>> {
        if !self.should_create_backup() {
            return Ok(None);
        }
        check_lease(guard)?;
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
        self.check_guard(guard).await?;
        Ok(Some(p))
    }

    /// Run one script's `up` and record it; on failure, roll back per strategy and return the
    /// error to report.
    async fn run_one(&self, run: &Run<'_>, s: &Script, done: &[Done]) -> Result<Done> {
        let step = Step {
            index: done.len() + 1,
            total: run.total,
            method: Method::Up,
        };
        self.emit(RunEvent::BeforeMigrate {
            script: MigrationInfo::pending(s),
            step,
        })
        .await;
        let started_at = now_ms();
        let clock = Instant::now();
        let info = script_info(
            &s.name,
            &s.filepath_str(),
            s.version,
            started_at,
            &run.username,
        );
        let meta = run.metas.get(&s.filepath).cloned();
        let fail = |cause: Error| Failure {
            attempt: Attempt {
                script: s.clone(),
                meta: meta.clone(),
            },
            cause,
        };
        let failed = |error: &Error| RunEvent::MigrationError {
            script: MigrationInfo::pending(s),
            step,
            error: error.clone(),
            duration: clock.elapsed(),
        };
        let value = match self
            .run_script(&s.name, &s.filepath, Method::Up, &info)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                self.emit(failed(&e)).await;
                // Abandoned (scriptTimeout): it may still be running, so nothing is undone
                // under it.
                if e.code == ErrorCode::ScriptTimeout {
                    return Err(e);
                }
                return Err(match run.guard.and_then(|g| g.lease().check_local()) {
                    // L4/L11: a holder whose lease is over never rolls back (a restore or
                    // down() would undo the new holder's work); it stops and says what it
                    // leaves behind.
                    Some(over) => {
                        self.after_lease(run.guard, run.history, s, Ended::Stopped(&e), over)
                            .await
                    }
                    None => self.fail_run(run, fail(e), done).await,
                });
            }
        };
        let finished_at = now_ms();
        // The lock may have been lost while the script ran: then this process no longer owns
        // the database and must not write, not even the record. An unreachable database is
        // ridden out while the lease lasts (L11).
        if let Err(e) = self.check_guard(run.guard).await {
            let e = self
                .after_lease(run.guard, run.history, s, Ended::Ran, e)
                .await;
            self.emit(failed(&e)).await;
            return Err(e);
        }
        let record = HistoryRecord {
            key: String::new(),
            name: s.name.clone(),
            filepath: s.filepath_str(),
            timestamp: s.version,
            started_at: Some(started_at),
            finished_at: Some(finished_at),
            username: Some(run.username.clone()),
            result: Some(value).filter(|v| !v.is_null()),
            checksum: Some(s.checksum.clone()),
            duration: Some(finished_at - started_at),
            executor_id: Some(run.executor_id.to_string()),
            lock_epoch: run.epoch,
            marked_applied: None,
        };
        // Recorded whatever the network does: retried while the lease lasts; the create is
        // conditional and recognises its own earlier attempt, so a retry never records twice.
        let recorded = self
            .ride_out(run.guard, "record the migration in the history", || {
                run.history.record(&record)
            })
            .await;
        let key = match recorded {
            Ok(k) => k,
            Err(e) if is_connectivity(&e) || e.code == ErrorCode::LockLost => {
                let e = self
                    .after_lease(run.guard, run.history, s, Ended::Ran, e)
                    .await;
                self.emit(failed(&e)).await;
                return Err(e);
            }
            Err(e) => {
                let cause = e.context("it ran but could not be recorded in the migration history");
                self.emit(failed(&cause)).await;
                return Err(self.fail_run(run, fail(cause), done).await);
            }
        };
        let record = HistoryRecord { key, ..record };
        self.emit(RunEvent::AfterMigrate {
            script: MigrationInfo::from_record(&record),
            step,
            duration: clock.elapsed(),
        })
        .await;
        Ok(Done {
            script: s.clone(),
            record,
            meta,
        })
    }

    /// `--mark-applied`: record each selected migration as executed without running it, in
    /// version order, under the lock (checked before each record, like a real run).
    async fn mark_applied(
        &self,
        history: &History,
        selected: &[Script],
        guard: Option<&ExclusiveGuard>,
        executor_id: &str,
        result: &mut MigrationResult,
    ) -> Result<()> {
        let username = current_username();
        self.info(&format!(
            "Marking {} migration(s) as applied without running them...",
            selected.len()
        ));
        for (i, s) in selected.iter().enumerate() {
            self.check_guard(guard)
                .await
                .map_err(|e| lost_marking(e, s, i))?;
            if self.stop.is_requested() {
                return Err(Error::new(
                    ErrorCode::Interrupted,
                    format!(
                        "Interrupted before marking {}: {i} of {} migration(s) marked as applied. Run migrate --mark-applied again to continue.",
                        s.name,
                        selected.len()
                    ),
                ));
            }
            let now = now_ms();
            let record = HistoryRecord {
                key: String::new(),
                name: s.name.clone(),
                filepath: s.filepath_str(),
                timestamp: s.version,
                started_at: Some(now),
                finished_at: Some(now),
                username: Some(username.clone()),
                result: None,
                checksum: Some(s.checksum.clone()),
                duration: Some(0),
                executor_id: Some(executor_id.to_string()),
                lock_epoch: guard.map(ExclusiveGuard::epoch),
                marked_applied: Some(true),
            };
            let key = self
                .ride_out(guard, "record the migration in the history", || {
                    history.record(&record)
                })
                .await
                .map_err(|e| {
                    e.context(format!(
                        "Marking {} as applied failed after {i} of {} migration(s)",
                        s.name,
                        selected.len()
                    ))
                })?;
            let info = MigrationInfo::from_record(&HistoryRecord { key, ..record });
            result.executed.push(info.clone());
            self.emit(RunEvent::Marked {
                script: info,
                step: Step {
                    index: i + 1,
                    total: selected.len(),
                    method: Method::Up,
                },
            })
            .await;
        }
        Ok(())
    }

    async fn fail_run(&self, run: &Run<'_>, failure: Failure, done: &[Done]) -> Error {
        let (e, report) = self
            .fail(failure, done, run.backup_path, run.guard, run.executor_id)
            .await;
        *run.rollback.lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        e
    }

    async fn preflight(
        &self,
        opts: &RunOptions,
        disc: &Discovery,
        records: &[HistoryRecord],
        metas: &mut HashMap<PathBuf, ScriptMeta>,
    ) -> Result<()> {
        let plan = plan(&disc.scripts, records);
        let selected = plan.pending_up_to(opts.target);
        self.check_selected(&plan, &selected, metas, !opts.mark_applied, false)
            .await
    }

    /// `validateBeforeRun` (load + `up` present) for the selected scripts not loaded yet (when
    /// `load` says they will run), and `validateMigratedFiles` for the executed ones.
    /// `log_warnings` logs warning-level issues.
    async fn check_selected(
        &self,
        plan: &Plan,
        selected: &[Script],
        metas: &mut HashMap<PathBuf, ScriptMeta>,
        load: bool,
        log_warnings: bool,
    ) -> Result<()> {
        {
            if self.cfg.validate_before_run && load && !selected.is_empty() {
                let mut issues: Vec<ValidationIssue> = Vec::new();
                for s in selected {
                    if metas.contains_key(&s.filepath) {
                        continue;
                    }
                    let (v, meta) = validate_script(&self.host, &self.cfg, s).await;
                    if let Some(m) = meta {
                        metas.insert(s.filepath.clone(), m);
                    }
                    issues.extend(v.issues);
                }
                if log_warnings {
                    for w in issues.iter().filter(|i| !i.is_error()) {
                        self.warn(&format!("[{}] {}", w.code, w.message));
                    }
                }
                if issues.iter().any(ValidationIssue::is_error) {
                    return Err(failure(
                        "Migration validation failed",
                        &issues.iter().collect::<Vec<_>>(),
                    ));
                }
            }
            if self.cfg.validate_migrated_files {
                let issues = validate_migrated(&self.cfg, &plan.executed);
                if log_warnings {
                    for w in issues.iter().filter(|i| !i.is_error()) {
                        self.warn(&format!("[{}] {}", w.code, w.message));
                    }
                }
                if issues.iter().any(ValidationIssue::is_error) {
                    return Err(failure(
                        "Migration file integrity check failed",
                        &issues.iter().collect::<Vec<_>>(),
                    ));
                }
            }
            Ok(())
        }
    }

    /// Backup before running: strategy backup|both with mode full|create_only.
    pub(crate) fn should_create_backup(&self) -> bool {
        self.cfg.rollback_strategy.restores_backup() && self.cfg.backup_mode.takes_backup()
    }
}

fn lost_marking(e: Error, s: &Script, marked: usize) -> Error {
    if e.code == ErrorCode::LockLost {
        Error::new(
            e.code,
            format!("{} Stopped before marking {}: {marked} migration(s) were marked as applied; nothing further was written.", e.message, s.name),
        )
    } else {
        e
    }
}

fn lost_before(e: Error, s: &Script, done: &[Done]) -> Error {
    if e.code == ErrorCode::LockLost {
        Error::new(
            e.code,
            format!(
                "{} Stopped before {}: {} migration(s) of this run were executed and recorded; nothing further was written.",
                e.message,
                s.name,
                done.len()
            ),
        )
    } else {
        e
    }
}

pub(crate) fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
