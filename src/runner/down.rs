//! `down(target)`: under the lock, run `down` of every executed migration newer than `target`
//! (newest first) and remove each one's record right after it succeeds.

use crate::history::HistoryRecord;
use crate::lock::is_connectivity;
use crate::{Error, ErrorCode, Result};

use super::context::{Run, Work};
use super::discover::Discovery;
use super::events::{Command, RunEvent, Step};
use super::host::script_info;
use super::plan::DownTo;
use super::{
    now_ms, Method, MigrationInfo, MigrationResult, RunOptions, RunOutcome, Runner, ScriptHost,
};

impl<H: ScriptHost> Runner<H> {
    /// Roll back to `target` (a 12-digit version, or 0 for everything). `result.executed` lists
    /// what was rolled back, newest first. Errors: VALIDATION_FAILED (bad target, missing file,
    /// no `down()`, load error — all checked before anything runs), SCRIPT_FAILED (a `down`
    /// threw; the ones before it stay rolled back and unrecorded), LOCK_LOST, INTERRUPTED.
    pub async fn down(&self, target: u64, opts: RunOptions) -> Result<MigrationResult> {
        self.down_outcome(target, opts).await.into_result()
    }

    pub async fn down_outcome(&self, target: u64, opts: RunOptions) -> RunOutcome {
        self.down_to_outcome(DownTo::Version(target), opts).await
    }

    /// `down` to a version or back a number of steps (`down --steps N`: the newest N executed
    /// migrations, counted under the lock).
    pub async fn down_to_outcome(&self, to: DownTo, opts: RunOptions) -> RunOutcome {
        self.run_outcome(opts, Work::Down(to)).await
    }

    /// The same checks without the lock first (the history read is also the connection
    /// check), then the lock, then the run under it.
    pub(crate) async fn down_run(
        &self,
        to: DownTo,
        run: &mut Run,
        result: &mut MigrationResult,
    ) -> Result<()> {
        if run.locking {
            self.down_preflight(to, run).await?;
        }
        run.guard = self.take_lock(run, None).await?;
        self.down_locked(to, run, result).await
    }

    async fn down_locked(
        &self,
        to: DownTo,
        run: &mut Run,
        result: &mut MigrationResult,
    ) -> Result<()> {
        match to {
            DownTo::Version(target) => self.info(&format!("Rolling back to version {target}...")),
            DownTo::Steps(n) => self.info(&format!("Rolling back the newest {n} migration(s)...")),
        }
        // Read again under the lock; without one this is the first request.
        let first = (!run.locking).then_some("rollback");
        self.read_planned(run, first).await?;
        let Some(planned) = &run.planned else {
            return Ok(());
        };
        for w in &planned.warnings {
            self.warn(w);
        }
        let plan = &planned.plan;
        plan.check_down_target(to)?;
        let todo = plan.to_undo(to);
        let start = RunEvent::Start {
            command: Command::Down,
            total: run.disc.scripts.len(),
            pending: todo.len(),
        };
        result.migrated = planned
            .records
            .iter()
            .filter(|r| !todo.iter().any(|e| e.record.key == r.key))
            .map(MigrationInfo::from_record)
            .collect();
        result.ignored = plan.ignored.iter().map(MigrationInfo::pending).collect();
        if todo.is_empty() {
            match to {
                DownTo::Version(target) => self.info(&format!(
                    "Already at version {target} or below - nothing to roll back"
                )),
                DownTo::Steps(_) => self.info("No executed migrations - nothing to roll back"),
            }
            self.emit(start).await;
            return Ok(());
        }
        // Check everything before changing anything: files exist, load, have down().
        let steps = self.down_steps(&todo, &run.disc).await?;
        result.plan = steps
            .iter()
            .map(|(r, _)| MigrationInfo::from_record(r))
            .collect();
        if run.dry_run {
            for (r, _) in &steps {
                self.info(&format!("Would roll back {}", r.name));
            }
            self.info("✓ Dry run completed - no changes made");
            self.info(&format!("Would roll back: {} migration(s)", steps.len()));
            self.emit(start).await;
            return Ok(());
        }
        self.emit(start).await;
        let (guard, history) = (run.guard(), &run.history);
        for (i, (r, script)) in steps.iter().enumerate() {
            self.check_guard(guard).await?;
            if self.stop.is_requested() {
                return Err(Error::new(
                    ErrorCode::Interrupted,
                    format!("Rollback interrupted before {}: {} of {} migration(s) rolled back. Run down again to continue.", script.name, i, steps.len()),
                ));
            }
            let step = Step {
                index: i + 1,
                total: steps.len(),
                method: Method::Down,
            };
            let script_info_js = MigrationInfo::from_record(r);
            self.emit(RunEvent::BeforeMigrate {
                script: script_info_js.clone(),
                step,
            })
            .await;
            let clock = std::time::Instant::now();
            let failed = |error: &Error| RunEvent::MigrationError {
                script: script_info_js.clone(),
                step,
                error: error.clone(),
                duration: clock.elapsed(),
            };
            let info = script_info(
                &script.name,
                &script.filepath_str(),
                script.version,
                now_ms(),
                &run.username,
            );
            let returned = match self
                .run_script(&script.name, &script.filepath, Method::Down, &info)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    self.emit(failed(&e)).await;
                    let code = match e.code {
                        ErrorCode::ScriptTimeout => e.code,
                        _ if guard.is_some_and(|g| g.lease().is_over()) => ErrorCode::LockLost,
                        _ => ErrorCode::ScriptFailed,
                    };
                    return Err(Error::new(
                        code,
                        format!(
                            "Rollback of migration {} failed: {}",
                            script.name, e.message
                        ),
                    ));
                }
            };
            let unremoved = |e: Error| {
                Error::new(
                    if is_connectivity(&e) {
                        ErrorCode::ConnectionFailed
                    } else {
                        e.code
                    },
                    format!(
                        "{} (down() of {} ran but its record was not removed: remove {}/{} before running down again)",
                        e.message,
                        script.name,
                        history.path(),
                        r.key
                    ),
                )
            };
            if let Err(e) = self.check_guard(guard).await {
                let e = unremoved(e);
                self.emit(failed(&e)).await;
                return Err(e);
            }
            if let Err(e) = self
                .ride_out(guard, "remove the migration's history record", || {
                    history.remove_records([r])
                })
                .await
            {
                let e = unremoved(e);
                self.emit(failed(&e)).await;
                return Err(e);
            }
            result.executed.push(script_info_js.clone());
            self.emit(RunEvent::AfterMigrate {
                // `result`: what down() returned.
                script: MigrationInfo {
                    result: Some(returned).filter(|v| !v.is_null()),
                    ..script_info_js
                },
                step,
                duration: clock.elapsed(),
            })
            .await;
        }
        Ok(())
    }

    /// The records to undo with their files, after checking each has a file that loads and
    /// has a `down()`.
    async fn down_steps(
        &self,
        todo: &[super::plan::Executed],
        disc: &Discovery,
    ) -> Result<Vec<(HistoryRecord, super::discover::Script)>> {
        let mut steps = Vec::new();
        for e in todo {
            let r = &e.record;
            let Some(script) = &e.script else {
                return Err(Error::new(
                    ErrorCode::ValidationFailed,
                    format!(
                        "Cannot rollback migration {} (timestamp: {}): Migration file not found in filesystem (looked in {}). Restore the file to roll it back.",
                        r.name,
                        r.timestamp,
                        disc.folder.display()
                    ),
                ));
            };
            let meta = self.host.load(&script.filepath).await.map_err(|err| {
                Error::new(
                    ErrorCode::ValidationFailed,
                    format!(
                        "Cannot rollback migration {}: failed to load {}: {}",
                        r.name,
                        script.filepath.display(),
                        err.message
                    ),
                )
            })?;
            if !meta.has_down {
                return Err(Error::new(
                    ErrorCode::ValidationFailed,
                    format!(
                        "Migration {} does not have a down() method - cannot roll back",
                        script.name
                    ),
                ));
            }
            steps.push((r.clone(), script.clone()));
        }
        Ok(steps)
    }

    /// Pre-flight of `down` before taking the lock: the same checks, so a missing file or
    /// `down()` fails without touching the lock node.
    async fn down_preflight(&self, to: DownTo, run: &mut Run) -> Result<()> {
        self.read_planned(run, Some("rollback")).await?;
        let Some(planned) = &run.planned else {
            return Ok(());
        };
        planned.plan.check_down_target(to)?;
        let todo = planned.plan.to_undo(to);
        self.down_steps(&todo, &run.disc).await.map(|_| ())
    }
}
