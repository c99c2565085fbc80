//! What a run returns: `MigrationResult` (the migrations it ran, found, ignored, planned; its
//! errors), `MigrationInfo` (one migration as users see it), `RollbackReport` (what the rollback
//! after a failure did) and `RunOutcome` (the result with the error that ended the run).

use serde::Serialize;
use serde_json::Value;

use crate::config::RollbackStrategy;
use crate::history::HistoryRecord;
use crate::{Error, Result};

use super::discover::Script;

/// One migration as reported to users (and stored in history, see `crate::history`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationInfo {
    pub name: String,
    pub filepath: String,
    pub timestamp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl MigrationInfo {
    /// A stored history record as users see it.
    pub fn from_record(r: &HistoryRecord) -> MigrationInfo {
        MigrationInfo {
            name: r.name.clone(),
            filepath: r.filepath.clone(),
            timestamp: r.timestamp,
            started_at: r.started_at,
            finished_at: r.finished_at,
            username: r.username.clone(),
            result: r.result.clone(),
            checksum: r.checksum.clone(),
        }
    }

    /// A script that has not run yet.
    pub(crate) fn pending(s: &Script) -> MigrationInfo {
        MigrationInfo {
            name: s.name.clone(),
            filepath: s.filepath_str(),
            timestamp: s.version,
            started_at: None,
            finished_at: None,
            username: None,
            result: None,
            checksum: Some(s.checksum.clone()),
        }
    }
}

/// `{ success, executed, migrated, ignored, errors, plan, dryRun }`
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationResult {
    pub success: bool,
    pub executed: Vec<MigrationInfo>,
    pub migrated: Vec<MigrationInfo>,
    pub ignored: Vec<MigrationInfo>,
    pub errors: Vec<String>,
    /// What the run set out to do, in order: the migrations to run (`migrate`), to mark as
    /// applied (`--mark-applied`) or to roll back (`down`, newest first). On a dry run, what
    /// would have been done.
    pub plan: Vec<MigrationInfo>,
    pub dry_run: bool,
    /// After a failed `migrate`: what the rollback did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackReport>,
}

impl MigrationResult {
    pub fn empty() -> Self {
        MigrationResult {
            success: false,
            executed: Vec::new(),
            migrated: Vec::new(),
            ignored: Vec::new(),
            errors: Vec::new(),
            plan: Vec::new(),
            dry_run: false,
            rollback: None,
        }
    }
}

/// A run's result together with the error that ended it (if any). `result.success` is true
/// exactly when `error` is `None`; `result.errors` holds the error's message.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub result: MigrationResult,
    pub error: Option<Error>,
}

impl RunOutcome {
    pub fn into_result(self) -> Result<MigrationResult> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.result),
        }
    }
}

/// What a rollback after a failure did, as the log line, `--format json` (`rollback`) and the
/// `recordRollback` collectors report it: never "succeeded" when nothing was undone.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackReport {
    /// `rollbackStrategy` as configured.
    pub strategy: RollbackStrategy,
    /// The rollback ran to its end (false: it failed; the error says why).
    pub success: bool,
    /// The failed migration's changes (and this run's earlier ones) were undone: false when
    /// nothing (or not everything) could be undone, e.g. `none`, or a script without `down()`.
    pub undone: bool,
    /// What was done, in words ("restored the backup ...", "ran down() of ...", "nothing: ...").
    pub done: String,
    /// The backup file restored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<String>,
    /// The migrations whose `down()` ran, in order.
    pub downs: Vec<String>,
    /// The migrations skipped for having no `down()`.
    pub skipped: Vec<String>,
    /// Why nothing was restored, when that was not a failure (`none`, no backup taken).
    #[serde(skip)]
    pub(crate) why: Option<String>,
}

impl RollbackReport {
    pub(crate) fn new(strategy: RollbackStrategy) -> RollbackReport {
        RollbackReport {
            strategy,
            success: true,
            undone: false,
            done: String::new(),
            restored_from: None,
            downs: Vec::new(),
            skipped: Vec::new(),
            why: None,
        }
    }

    /// The sentence of what was done, from what was recorded (`failed`: the failed migration).
    pub(crate) fn settle(&mut self, failed: &str, outcome: &Result<()>) {
        self.success = outcome.is_ok();
        let mut parts = Vec::new();
        if !self.downs.is_empty() {
            parts.push(format!("ran down() of {}", self.downs.join(", ")));
        }
        if !self.skipped.is_empty() {
            parts.push(format!("skipped {} (no down())", self.skipped.join(", ")));
        }
        if let Some(p) = &self.restored_from {
            parts.push(format!("restored the backup {p}"));
        }
        self.undone = self.success
            && self.skipped.is_empty()
            && (self.restored_from.is_some() || !self.downs.is_empty());
        let what = if parts.is_empty() {
            "nothing was undone".to_string()
        } else {
            parts.join("; ")
        };
        let why = self
            .why
            .as_ref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        self.done = if self.undone {
            what
        } else {
            format!("{what}{why}: the database may still hold part of {failed}'s changes")
        };
    }
}
