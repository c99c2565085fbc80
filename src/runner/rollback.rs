//! What happens when a script fails during `migrate`: apply `rollbackStrategy`
//! (`backup` | `down` | `both` | `none`), remove the records of what was undone, and build the
//! error (SCRIPT_FAILED; ROLLBACK_FAILED when the rollback failed too; LOCK_LOST when the lock
//! is gone, in which case this process writes nothing more).

use std::path::PathBuf;

use crate::config::{BackupMode, RollbackStrategy};
use crate::history::HistoryRecord;
use crate::lock::is_connectivity;
use crate::{Error, ErrorCode, Result};

use super::context::Run;
use super::discover::Script;
use super::events::RunEvent;
use super::host::script_info;
use super::{now_ms, Method, RollbackReport, Runner, ScriptHost, ScriptMeta};

/// A migration this run executed and recorded (what a rollback undoes).
#[derive(Debug, Clone)]
pub(crate) struct Done {
    pub script: Script,
    pub record: HistoryRecord,
    pub meta: Option<ScriptMeta>,
}

/// The script that failed.
pub(crate) struct Attempt {
    pub script: Script,
    pub meta: Option<ScriptMeta>,
}

pub(crate) struct Failure {
    pub attempt: Attempt,
    pub cause: Error,
}

/// Why a `down` chain stopped.
enum DownError {
    /// A `down()` threw (or could not be loaded): the backup may still help (`both`).
    Script(Error),
    /// Something else (history write, lock lost): stop.
    Fatal(Error),
}

impl<H: ScriptHost> Runner<H> {
    /// Apply the rollback strategy after `failure`; returns the error to report and what the
    /// rollback did.
    pub(crate) async fn fail(
        &self,
        run: &Run,
        failure: Failure,
        done: &[Done],
    ) -> (Error, RollbackReport) {
        let name = failure.attempt.script.name.clone();
        // Logged as the `MigrationError` event's line.
        let base = format!("Migration {name} failed: {}", failure.cause.message);
        let started = std::time::Instant::now();
        let mut report = RollbackReport::new(self.cfg.rollback_strategy);
        let outcome = self
            .rollback(run, &failure.attempt, done, &mut report)
            .await;
        report.settle(&name, &outcome);
        self.emit(RunEvent::Rollback {
            report: report.clone(),
            duration: started.elapsed(),
        })
        .await;
        let e = match outcome {
            Ok(()) => Error::new(ErrorCode::ScriptFailed, base),
            // The database went away: exit 7 (connection), never a lock error.
            Err(e) if is_connectivity(&e) => Error::new(
                ErrorCode::ConnectionFailed,
                format!(
                    "{base}; the rollback could not reach the database ({}): the database may hold part of {name}'s \
                     changes; it is not recorded, so the next migrate runs it again",
                    e.message
                ),
            ),
            Err(e) if e.code == ErrorCode::LockLost => Error::new(
                ErrorCode::LockLost,
                format!(
                    "{base}; rollback stopped because the migration lock was lost: {}",
                    e.message
                ),
            ),
            Err(e) => Error::new(
                ErrorCode::RollbackFailed,
                format!("{base}; rollback failed: {}", e.message),
            ),
        };
        (e, report)
    }

    async fn rollback(
        &self,
        run: &Run,
        failed: &Attempt,
        done: &[Done],
        report: &mut RollbackReport,
    ) -> Result<()> {
        // Without the lock this process no longer owns the database: no rollback writes.
        self.check_guard(run.guard()).await?;
        match self.cfg.rollback_strategy {
            RollbackStrategy::None => {
                self.warn("⚠️  No rollback configured - database may be in inconsistent state");
                report.why = Some("rollbackStrategy is 'none'".into());
                Ok(())
            }
            RollbackStrategy::Down => match self.down_chain(run, failed, done, report).await {
                Ok(()) => Ok(()),
                Err(DownError::Script(e)) | Err(DownError::Fatal(e)) => Err(e),
            },
            RollbackStrategy::Both => match self.down_chain(run, failed, done, report).await {
                Ok(()) => Ok(()),
                Err(DownError::Fatal(e)) => Err(e),
                Err(DownError::Script(e)) => {
                    self.error(&format!(
                        "Rollback with down() failed: {}; falling back to the backup",
                        e.message
                    ));
                    self.restore_backup(run, done, true, report)
                        .await
                        .map_err(|e2| {
                            Error::new(
                                e2.code,
                                format!("{}; backup restore: {}", e.message, e2.message),
                            )
                        })
                }
            },
            RollbackStrategy::Backup => self.restore_backup(run, done, false, report).await,
        }
    }

    /// `down()` of the failed script first, then of this run's executed ones in reverse,
    /// removing the record of each one undone. Scripts without `down` are skipped with a warning.
    async fn down_chain(
        &self,
        run: &Run,
        failed: &Attempt,
        done: &[Done],
        report: &mut RollbackReport,
    ) -> std::result::Result<(), DownError> {
        let (guard, username) = (run.guard(), &run.username);
        self.info("Rolling back with down()...");
        // The failed script: it has no record.
        self.check_guard(guard).await.map_err(DownError::Fatal)?;
        self.run_down(&failed.script, failed.meta.as_ref(), username, report)
            .await?;
        for d in done.iter().rev() {
            self.check_guard(guard).await.map_err(DownError::Fatal)?;
            if self
                .run_down(&d.script, d.meta.as_ref(), username, report)
                .await?
            {
                self.check_guard(guard).await.map_err(DownError::Fatal)?;
                run.history
                    .remove_records([&d.record])
                    .await
                    .map_err(DownError::Fatal)?;
            }
        }
        self.info("✓ Rolled back with down()");
        Ok(())
    }

    /// Run one script's `down`. `Ok(false)` when it has none (skipped with a warning).
    async fn run_down(
        &self,
        script: &Script,
        meta: Option<&ScriptMeta>,
        username: &str,
        report: &mut RollbackReport,
    ) -> std::result::Result<bool, DownError> {
        let meta = match meta {
            Some(m) => m.clone(),
            None => self.host.load(&script.filepath).await.map_err(|e| {
                DownError::Script(Error::new(
                    ErrorCode::ScriptFailed,
                    format!("cannot load {} to roll it back: {}", script.name, e.message),
                ))
            })?,
        };
        if !meta.has_down {
            self.warn(&format!(
                "{} has no down() method; skipping it during rollback",
                script.name
            ));
            report.skipped.push(script.name.clone());
            return Ok(false);
        }
        let info = script_info(
            &script.name,
            &script.filepath_str(),
            script.version,
            now_ms(),
            username,
        );
        self.run_script(&script.name, &script.filepath, Method::Down, &info)
            .await
            .map_err(|e| {
                DownError::Script(Error::new(
                    ErrorCode::ScriptFailed,
                    format!("down() of {} failed: {}", script.name, e.message),
                ))
            })?;
        self.info(&format!("✓ Rolled back {}", script.name));
        report.downs.push(script.name.clone());
        Ok(true)
    }

    /// Restore per `backupMode`. `required`: the `both` fallback, where an unavailable backup
    /// is a failure rather than a warning.
    async fn restore_backup(
        &self,
        run: &Run,
        done: &[Done],
        required: bool,
        report: &mut RollbackReport,
    ) -> Result<()> {
        let guard = run.guard();
        let path: Option<PathBuf> = match self.cfg.backup_mode {
            BackupMode::Full => run.backup_path.clone(),
            BackupMode::RestoreOnly => match self.cfg.backup.existing_backup_path.as_deref() {
                Some(p) => Some(crate::config::Config::resolve(&self.cwd, p)),
                None => {
                    return Err(Error::new(
                        ErrorCode::RestoreFailed,
                        "backupMode restore_only requires backup.existingBackupPath",
                    ))
                }
            },
            BackupMode::CreateOnly | BackupMode::Manual => {
                let msg = "⚠️  Backup restore skipped due to backupMode setting";
                if required {
                    return Err(Error::new(
                        ErrorCode::RollbackFailed,
                        format!("{msg} ({})", self.cfg.backup_mode),
                    ));
                }
                self.warn(msg);
                report.why = Some(format!(
                    "backupMode '{}' restores no backup",
                    self.cfg.backup_mode
                ));
                return Ok(());
            }
        };
        let Some(path) = path else {
            if required {
                return Err(Error::new(
                    ErrorCode::RollbackFailed,
                    "No backup available for restore",
                ));
            }
            self.warn("No backup available for restore");
            report.why = Some("no backup was taken before this run".into());
            return Ok(());
        };
        self.check_guard(guard).await?;
        self.emit(RunEvent::BeforeRestore { path: path.clone() })
            .await;
        let started = std::time::Instant::now();
        self.backups
            .restore(&self.client, &self.cfg, &path)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorCode::RestoreFailed,
                    format!("restore from {} failed: {}", path.display(), e.message),
                )
            })?;
        report.restored_from = Some(path.display().to_string());
        // The history came back with the data. Make sure no record of what this run executed
        // survived (e.g. a backup that does not cover the history node).
        let (records, _) = run.history.read().await?;
        let stale: Vec<_> = records
            .iter()
            .filter(|r| {
                r.executor_id.as_deref() == Some(run.executor_id.as_str())
                    && done
                        .iter()
                        .any(|d| d.record.timestamp == r.timestamp && d.record.key == r.key)
            })
            .collect();
        if !stale.is_empty() {
            self.check_guard(guard).await?;
            run.history.remove_records(stale).await?;
        }
        self.emit(RunEvent::AfterRestore {
            path,
            duration: started.elapsed(),
        })
        .await;
        Ok(())
    }
}
