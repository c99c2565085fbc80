//! Validation of pending scripts (load errors, missing `up`, ...) and of executed ones
//! (missing files, checksum drift), with the predecessor's issue codes: the `validate` command's
//! report, and `check_selected`, the checks before a `migrate` runs anything.

use serde::Serialize;

use crate::config::{Config, DuplicateTimestampMode, RollbackStrategy};
use crate::{Error, ErrorCode};

use super::context::Run;
use super::discover::{algorithm_of, checksum_file, Script};
use super::plan::Executed;
use super::{ScriptHost, ScriptMeta};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum IssueType {
    #[serde(rename = "ERROR")]
    Error,
    #[serde(rename = "WARNING")]
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationIssue {
    #[serde(rename = "type")]
    pub kind: IssueType,
    /// `MISSING_UP_METHOD`, `IMPORT_FAILED`, `MIGRATED_FILE_MISSING`, ...
    pub code: String,
    pub message: String,
}

impl ValidationIssue {
    pub fn error(code: &str, message: impl Into<String>) -> Self {
        ValidationIssue {
            kind: IssueType::Error,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn warning(code: &str, message: impl Into<String>) -> Self {
        ValidationIssue {
            kind: IssueType::Warning,
            code: code.into(),
            message: message.into(),
        }
    }
    pub fn is_error(&self) -> bool {
        self.kind == IssueType::Error
    }
}

/// One pending script's validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptValidation {
    pub name: String,
    pub filepath: String,
    pub timestamp: u64,
    pub valid: bool,
    pub issues: Vec<ValidationIssue>,
}

/// `validate()` result.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ValidationReport {
    pub pending: Vec<ScriptValidation>,
    /// Issues of executed migrations (missing files, checksum drift).
    pub migrated: Vec<ValidationIssue>,
    /// Issues not tied to one script (duplicate timestamps, out-of-order files).
    pub general: Vec<ValidationIssue>,
    pub error_count: usize,
    pub warning_count: usize,
}

impl ValidationReport {
    pub fn finish(mut self) -> Self {
        let all = self
            .pending
            .iter()
            .flat_map(|p| p.issues.iter())
            .chain(self.migrated.iter())
            .chain(self.general.iter());
        let (mut e, mut w) = (0, 0);
        for i in all {
            if i.is_error() {
                e += 1
            } else {
                w += 1
            }
        }
        self.error_count = e;
        self.warning_count = w;
        self
    }
    pub fn is_valid(&self) -> bool {
        self.error_count == 0
    }
}

/// Validate one pending script through the host. Returns the issues and the metadata (when it
/// loaded).
pub async fn validate_script<H: ScriptHost>(
    host: &H,
    cfg: &Config,
    script: &Script,
) -> (ScriptValidation, Option<ScriptMeta>) {
    let mut issues = Vec::new();
    let meta = match host.load(&script.filepath).await {
        Ok(meta) => {
            if !meta.has_up {
                issues.push(ValidationIssue::error(
                    "MISSING_UP_METHOD",
                    format!("{}: the script does not export an up() method (export a class or object with async up(db, info, handler))", script.name),
                ));
            } else if !meta.up_is_async {
                issues.push(ValidationIssue::warning(
                    "UP_NOT_ASYNC_FUNCTION",
                    format!("{}: up() is not declared async", script.name),
                ));
            }
            if !meta.has_down {
                match cfg.rollback_strategy {
                    RollbackStrategy::Down => issues.push(ValidationIssue::warning(
                        "MISSING_DOWN_WITH_DOWN_STRATEGY",
                        format!("{}: no down() method, but rollbackStrategy is 'down'; it cannot be rolled back", script.name),
                    )),
                    RollbackStrategy::Both => issues.push(ValidationIssue::warning(
                        "MISSING_DOWN_WITH_BOTH_STRATEGY",
                        format!("{}: no down() method; on failure only the backup can undo it", script.name),
                    )),
                    _ => {}
                }
            }
            Some(meta)
        }
        Err(e) => {
            issues.push(ValidationIssue::error(
                "IMPORT_FAILED",
                format!("{}: failed to load: {}", script.name, e.message),
            ));
            None
        }
    };
    let valid = !issues.iter().any(ValidationIssue::is_error);
    (
        ScriptValidation {
            name: script.name.clone(),
            filepath: script.filepath_str(),
            timestamp: script.version,
            valid,
            issues,
        },
        meta,
    )
}

/// Missing files and checksum drift of executed migrations.
pub fn validate_migrated(cfg: &Config, executed: &[Executed]) -> Vec<ValidationIssue> {
    let mut issues = Vec::new();
    for e in executed {
        let r = &e.record;
        match &e.script {
            None => {
                let msg = format!(
                    "{} (timestamp {}) is recorded as executed but its file is missing{}",
                    r.name,
                    r.timestamp,
                    if r.filepath.is_empty() {
                        String::new()
                    } else {
                        format!(" (was {})", r.filepath)
                    }
                );
                if cfg.validate_migrated_files_location {
                    issues.push(ValidationIssue::error("MIGRATED_FILE_MISSING", msg));
                } else {
                    issues.push(ValidationIssue::warning("MIGRATED_FILE_MISSING", msg));
                }
            }
            Some(script) => {
                let Some(stored) = r.checksum.as_deref() else {
                    continue;
                };
                let algo = algorithm_of(stored, cfg.checksum_algorithm);
                match checksum_file(&script.filepath, algo) {
                    Ok(actual) if actual.eq_ignore_ascii_case(stored) => {}
                    Ok(actual) => issues.push(ValidationIssue::error(
                        "MIGRATED_FILE_CHECKSUM_MISMATCH",
                        format!(
                            "{} was modified after it was executed: {algo} checksum {actual} does not match the recorded {stored}",
                            script.filepath.display()
                        ),
                    )),
                    Err(err) => issues.push(ValidationIssue::error("MIGRATED_FILE_MISSING", err.message)),
                }
            }
        }
    }
    issues
}

/// A VALIDATION_FAILED error listing the errors.
pub fn failure(title: &str, issues: &[&ValidationIssue]) -> Error {
    let lines: Vec<String> = issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| format!("  - [{}] {}", i.code, i.message))
        .collect();
    Error::new(
        ErrorCode::ValidationFailed,
        format!("{title}:\n{}", lines.join("\n")),
    )
}

impl<H: ScriptHost> super::Runner<H> {
    /// Validate pending scripts (load errors, missing `up`, ...), duplicates, and executed
    /// migrations (missing files, checksum drift). Takes no lock and writes nothing. Returns the
    /// report even when it has errors (`error_count > 0`); `Err` only when validation could not
    /// run (missing folder, database unreachable).
    pub async fn validate(&self) -> crate::Result<ValidationReport> {
        let disc = super::discover::discover(&self.cfg, &self.cwd)?;
        for w in &disc.warnings {
            self.warn(w);
        }
        let (records, warnings) = self
            .read_history(&self.history(), Some("validation"))
            .await?;
        for w in &warnings {
            self.warn(w);
        }
        let p = super::plan::plan(&disc.scripts, &records);
        let mut report = ValidationReport::default();
        for d in &disc.duplicates {
            match self.cfg.duplicate_timestamp_mode {
                DuplicateTimestampMode::Error => report.general.push(ValidationIssue::error(
                    "DUPLICATE_TIMESTAMP",
                    d.message.clone(),
                )),
                DuplicateTimestampMode::Ignore => {}
                DuplicateTimestampMode::Warn => report.general.push(ValidationIssue::warning(
                    "DUPLICATE_TIMESTAMP",
                    d.message.clone(),
                )),
            }
        }
        for s in &p.ignored {
            report.general.push(ValidationIssue::warning(
                "IGNORED_OUT_OF_ORDER",
                format!(
                    "{} is not executed but not newer than the last executed migration ({}); it will never run",
                    s.name,
                    p.last_executed.unwrap_or(0)
                ),
            ));
        }
        for s in &p.pending {
            let (v, _) = validate_script(&self.host, &self.cfg, s).await;
            report.pending.push(v);
        }
        report.migrated = validate_migrated(&self.cfg, &p.executed);
        let report = report.finish();
        self.info(&format!(
            "Validation: {} pending script(s), {} error(s), {} warning(s)",
            report.pending.len(),
            report.error_count,
            report.warning_count
        ));
        Ok(report)
    }

    /// The checks before a `migrate` runs anything, on the plan as last read: for the
    /// selected scripts not loaded yet, `validateBeforeRun` (they load, `up` is there; not for
    /// `--mark-applied`, which runs none); for the executed ones, `validateMigratedFiles`.
    /// `log_warnings` logs warning-level issues (the second time, under the lock).
    pub(crate) async fn check_selected(
        &self,
        run: &mut Run,
        log_warnings: bool,
    ) -> crate::Result<()> {
        let selected = run.selected();
        let Some(planned) = &run.planned else {
            return Ok(());
        };
        if self.cfg.validate_before_run && !run.opts.mark_applied && !selected.is_empty() {
            let mut issues: Vec<ValidationIssue> = Vec::new();
            for s in &selected {
                if run.metas.contains_key(&s.filepath) {
                    continue;
                }
                let (v, meta) = validate_script(&self.host, &self.cfg, s).await;
                if let Some(m) = meta {
                    run.metas.insert(s.filepath.clone(), m);
                }
                issues.extend(v.issues);
            }
            self.settle_issues("Migration validation failed", &issues, log_warnings)?;
        }
        if self.cfg.validate_migrated_files {
            let issues = validate_migrated(&self.cfg, &planned.plan.executed);
            self.settle_issues(
                "Migration file integrity check failed",
                &issues,
                log_warnings,
            )?;
        }
        Ok(())
    }

    /// Warnings logged (when `log`), errors turned into VALIDATION_FAILED under `title`.
    fn settle_issues(
        &self,
        title: &str,
        issues: &[ValidationIssue],
        log: bool,
    ) -> crate::Result<()> {
        if log {
            for w in issues.iter().filter(|i| !i.is_error()) {
                self.warn(&format!("[{}] {}", w.code, w.message));
            }
        }
        if issues.iter().any(ValidationIssue::is_error) {
            return Err(failure(title, &issues.iter().collect::<Vec<_>>()));
        }
        Ok(())
    }
}
