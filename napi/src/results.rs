//! The runner's results as typed JS objects (`#[napi(object)]`), field for field what the core
//! types serialise to: optional fields the core omits are omitted, the ones it sends as `null`
//! are `null` (`use_nullable`). Times are ms since the epoch, versions 12-digit numbers.

use napi_derive::napi;
use serde_json::Value;

use msr_firebase::connection::ConnectionInfo;
use msr_firebase::runner::validate::{
    IssueType, ScriptValidation, ValidationIssue, ValidationReport,
};
use msr_firebase::runner::{
    ListEntry, MigrationInfo, MigrationList, MigrationResult, MigrationStatus,
};

/// One migration as `migrate()` / `down()` report it.
#[napi(object)]
pub struct NativeMigrationInfo {
    pub name: String,
    pub filepath: String,
    pub timestamp: f64,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub username: Option<String>,
    /// What `up` returned (omitted when it returned nothing).
    #[napi(ts_type = "unknown")]
    pub result: Option<Value>,
    pub checksum: Option<String>,
}

impl From<MigrationInfo> for NativeMigrationInfo {
    fn from(m: MigrationInfo) -> Self {
        NativeMigrationInfo {
            name: m.name,
            filepath: m.filepath,
            timestamp: m.timestamp as f64,
            started_at: m.started_at.map(|t| t as f64),
            finished_at: m.finished_at.map(|t| t as f64),
            username: m.username,
            result: m.result,
            checksum: m.checksum,
        }
    }
}

/// `{ success, executed, migrated, ignored, errors, plan, dryRun }`
#[napi(object)]
pub struct NativeMigrationResult {
    pub success: bool,
    pub executed: Vec<NativeMigrationInfo>,
    pub migrated: Vec<NativeMigrationInfo>,
    pub ignored: Vec<NativeMigrationInfo>,
    pub errors: Vec<String>,
    /// What the run set out to do, in order (on a dry run: what it would have done).
    pub plan: Vec<NativeMigrationInfo>,
    pub dry_run: bool,
}

fn infos(v: Vec<MigrationInfo>) -> Vec<NativeMigrationInfo> {
    v.into_iter().map(Into::into).collect()
}

impl From<MigrationResult> for NativeMigrationResult {
    fn from(r: MigrationResult) -> Self {
        NativeMigrationResult {
            success: r.success,
            executed: infos(r.executed),
            migrated: infos(r.migrated),
            ignored: infos(r.ignored),
            errors: r.errors,
            plan: infos(r.plan),
            dry_run: r.dry_run,
        }
    }
}

#[napi(string_enum = "kebab-case")]
pub enum NativeMigrationStatus {
    Executed,
    Pending,
    Ignored,
    MissingFile,
}

impl From<MigrationStatus> for NativeMigrationStatus {
    fn from(s: MigrationStatus) -> Self {
        match s {
            MigrationStatus::Executed => NativeMigrationStatus::Executed,
            MigrationStatus::Pending => NativeMigrationStatus::Pending,
            MigrationStatus::Ignored => NativeMigrationStatus::Ignored,
            MigrationStatus::MissingFile => NativeMigrationStatus::MissingFile,
        }
    }
}

/// One row of `list()`.
#[napi(object, use_nullable = true)]
pub struct NativeListEntry {
    pub name: String,
    pub version: f64,
    pub status: NativeMigrationStatus,
    pub executed_at: Option<f64>,
    /// ms
    pub duration: Option<f64>,
    pub username: Option<String>,
    pub filepath: Option<String>,
}

/// `list()`: every migration in version order, with counts.
#[napi(object)]
pub struct NativeMigrationList {
    pub migrations: Vec<NativeListEntry>,
    pub executed: u32,
    pub pending: u32,
    pub ignored: u32,
}

/// A count for JS (a `u32`; saturating).
pub(super) fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl From<MigrationList> for NativeMigrationList {
    fn from(l: MigrationList) -> Self {
        NativeMigrationList {
            migrations: l
                .migrations
                .into_iter()
                .map(|e: ListEntry| NativeListEntry {
                    name: e.name,
                    version: e.version as f64,
                    status: e.status.into(),
                    executed_at: e.executed_at.map(|t| t as f64),
                    duration: e.duration.map(|d| d as f64),
                    username: e.username,
                    filepath: e.filepath,
                })
                .collect(),
            executed: count(l.executed),
            pending: count(l.pending),
            ignored: count(l.ignored),
        }
    }
}

#[napi(string_enum = "UPPERCASE")]
pub enum NativeIssueType {
    Error,
    Warning,
}

#[napi(object)]
pub struct NativeValidationIssue {
    #[napi(js_name = "type")]
    pub kind: NativeIssueType,
    /// `MISSING_UP_METHOD`, `IMPORT_FAILED`, `MIGRATED_FILE_MISSING`, ...
    pub code: String,
    pub message: String,
}

impl From<ValidationIssue> for NativeValidationIssue {
    fn from(i: ValidationIssue) -> Self {
        NativeValidationIssue {
            kind: match i.kind {
                IssueType::Error => NativeIssueType::Error,
                IssueType::Warning => NativeIssueType::Warning,
            },
            code: i.code,
            message: i.message,
        }
    }
}

fn issues(v: Vec<ValidationIssue>) -> Vec<NativeValidationIssue> {
    v.into_iter().map(Into::into).collect()
}

#[napi(object)]
pub struct NativeScriptValidation {
    pub name: String,
    pub filepath: String,
    pub timestamp: f64,
    pub valid: bool,
    pub issues: Vec<NativeValidationIssue>,
}

impl From<ScriptValidation> for NativeScriptValidation {
    fn from(s: ScriptValidation) -> Self {
        NativeScriptValidation {
            name: s.name,
            filepath: s.filepath,
            timestamp: s.timestamp as f64,
            valid: s.valid,
            issues: issues(s.issues),
        }
    }
}

/// `validate()`: the pending scripts' checks, issues with executed ones, and totals.
#[napi(object)]
pub struct NativeValidationReport {
    pub pending: Vec<NativeScriptValidation>,
    pub migrated: Vec<NativeValidationIssue>,
    pub general: Vec<NativeValidationIssue>,
    pub error_count: u32,
    pub warning_count: u32,
}

impl From<ValidationReport> for NativeValidationReport {
    fn from(r: ValidationReport) -> Self {
        NativeValidationReport {
            pending: r.pending.into_iter().map(Into::into).collect(),
            migrated: issues(r.migrated),
            general: issues(r.general),
            error_count: count(r.error_count),
            warning_count: count(r.warning_count),
        }
    }
}

/// `{ databaseUrl, shift, tableName, emulator }`
#[napi(object, use_nullable = true)]
pub struct NativeConnectionInfo {
    pub database_url: Option<String>,
    pub shift: Option<String>,
    pub table_name: String,
    pub emulator: bool,
}

impl From<ConnectionInfo> for NativeConnectionInfo {
    fn from(c: ConnectionInfo) -> Self {
        NativeConnectionInfo {
            database_url: c.database_url,
            shift: c.shift,
            table_name: c.table_name,
            emulator: c.emulator,
        }
    }
}
