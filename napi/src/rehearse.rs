//! `runner.rehearse()`: its report as typed JS objects (field for field what
//! `msr_firebase::rehearse::RehearsalReport` serialises to; counts and bytes as numbers).

use std::collections::HashMap;

use napi_derive::napi;

use super::results::count;
use msr_firebase::rehearse::{
    ChangeKind, Changes, DownCheck, DownOutcome, DownReport, Findings, Outcome, RefusedWrite,
    RehearsalReport, RehearsedMigration, Requests, RulesInfo, RulesOrigin, SourceKind,
    TooBigHandling,
};

/// Options of `rehearse()`.
#[napi(object)]
#[derive(Default, Clone)]
pub struct RehearseOptionsJs {
    /// Stop at this version.
    pub target: Option<f64>,
    /// Rehearse on this backup file instead of reading the database.
    pub from_backup: Option<String>,
    /// After the ups, run the downs back and check that each undoes its up.
    pub down: Option<bool>,
    /// Write the data as the migrations left it to this file (a backup file).
    pub keep: Option<String>,
    /// Example paths per migration (default 10).
    pub examples: Option<u32>,
    /// Run without the lock.
    pub no_lock: Option<bool>,
    /// Rehearse under this rules file (default: the database's own rules).
    pub rules: Option<String>,
    /// Warnings (queries that need an index, data `.validate` refuses) fail the rehearsal.
    pub strict: Option<bool>,
}

fn n(v: u64) -> f64 {
    v as f64
}

#[napi(string_enum = "lowercase")]
pub enum NativeChangeKind {
    Added,
    Removed,
    Changed,
}

/// The topmost node of one difference.
#[napi(object)]
pub struct NativeChangeExample {
    pub path: String,
    pub kind: NativeChangeKind,
}

/// Changes under one top-level child.
#[napi(object)]
pub struct NativeChildChanges {
    pub key: String,
    pub added: f64,
    pub removed: f64,
    pub changed: f64,
    pub bytes_before: f64,
    pub bytes_after: f64,
}

/// What a step changed in the data, in leaf values (history and lock left out).
#[napi(object)]
pub struct NativeChanges {
    pub added: f64,
    pub removed: f64,
    pub changed: f64,
    pub bytes_before: f64,
    pub bytes_after: f64,
    pub children: Vec<NativeChildChanges>,
    pub examples: Vec<NativeChangeExample>,
}

impl From<Changes> for NativeChanges {
    fn from(c: Changes) -> Self {
        NativeChanges {
            added: n(c.added),
            removed: n(c.removed),
            changed: n(c.changed),
            bytes_before: n(c.bytes_before),
            bytes_after: n(c.bytes_after),
            children: c
                .children
                .into_iter()
                .map(|ch| NativeChildChanges {
                    key: ch.key,
                    added: n(ch.added),
                    removed: n(ch.removed),
                    changed: n(ch.changed),
                    bytes_before: n(ch.bytes_before),
                    bytes_after: n(ch.bytes_after),
                })
                .collect(),
            examples: c
                .examples
                .into_iter()
                .map(|e| NativeChangeExample {
                    path: e.path,
                    kind: match e.kind {
                        ChangeKind::Added => NativeChangeKind::Added,
                        ChangeKind::Removed => NativeChangeKind::Removed,
                        ChangeKind::Changed => NativeChangeKind::Changed,
                    },
                })
                .collect(),
        }
    }
}

/// Requests a step sent to the sandbox (the runner's own lock checks and records left out).
#[napi(object)]
pub struct NativeRequests {
    pub total: f64,
    /// `{ GET: n, PATCH: n, ... }`
    pub by_method: HashMap<String, f64>,
}

impl From<Requests> for NativeRequests {
    fn from(r: Requests) -> Self {
        NativeRequests {
            total: n(r.total),
            by_method: r.by_method.into_iter().map(|(k, v)| (k, n(v))).collect(),
        }
    }
}

/// A query that needed the client-side fallback, and the rules line to add.
#[napi(object)]
pub struct NativeUnindexedQuery {
    pub path: String,
    pub child: String,
    /// `".indexOn": "email"`, to add at `path`.
    pub index_on: String,
}

/// A write the sandbox refused (401: denied by the rules).
#[napi(object)]
pub struct NativeRefusedWrite {
    pub method: String,
    pub path: String,
    pub status: u32,
}

impl From<RefusedWrite> for NativeRefusedWrite {
    fn from(w: RefusedWrite) -> Self {
        NativeRefusedWrite {
            method: w.method,
            path: w.path,
            status: u32::from(w.status),
        }
    }
}

/// Writes refused as too big for one request (`WRITE_TOO_BIG`), by method and path.
#[napi(object)]
pub struct NativeTooBigWrite {
    pub method: String,
    pub path: String,
    /// How many such requests were refused.
    pub refusals: f64,
    /// `chunked`: the node was deleted in chunks instead; `failed`: not written.
    pub handled: NativeTooBigHandling,
}

#[napi(string_enum = "lowercase")]
pub enum NativeTooBigHandling {
    Chunked,
    Failed,
}

/// A node deleted in chunks (too big for one request).
#[napi(object)]
pub struct NativeChunkedWrite {
    pub path: String,
    pub requests: f64,
}

/// Data a migration left that a `.validate` rule refuses.
#[napi(object)]
pub struct NativeInvalidData {
    pub path: String,
    pub rule: String,
    pub line: u32,
}

/// Writes with and without `disableTriggers`.
#[napi(object)]
pub struct NativeTriggerWrites {
    pub with_triggers: f64,
    pub triggers_disabled: f64,
}

/// What production's rules, indexes and limits made of a migration.
#[napi(object)]
pub struct NativeFindings {
    pub unindexed: Vec<NativeUnindexedQuery>,
    pub denied: Vec<NativeRefusedWrite>,
    pub too_big: Vec<NativeTooBigWrite>,
    pub refused: Vec<NativeRefusedWrite>,
    pub chunked: Vec<NativeChunkedWrite>,
    pub invalid: Vec<NativeInvalidData>,
    pub invalid_total: f64,
    pub triggers: Option<NativeTriggerWrites>,
}

impl From<Findings> for NativeFindings {
    fn from(f: Findings) -> Self {
        NativeFindings {
            unindexed: f
                .unindexed
                .into_iter()
                .map(|q| NativeUnindexedQuery {
                    path: q.path,
                    child: q.child,
                    index_on: q.index_on,
                })
                .collect(),
            denied: f.denied.into_iter().map(Into::into).collect(),
            too_big: f
                .too_big
                .into_iter()
                .map(|t| NativeTooBigWrite {
                    method: t.method,
                    path: t.path,
                    refusals: n(t.refusals),
                    handled: match t.handled {
                        TooBigHandling::Chunked => NativeTooBigHandling::Chunked,
                        TooBigHandling::Failed => NativeTooBigHandling::Failed,
                    },
                })
                .collect(),
            refused: f.refused.into_iter().map(Into::into).collect(),
            chunked: f
                .chunked
                .into_iter()
                .map(|c| NativeChunkedWrite {
                    path: c.path,
                    requests: n(c.requests),
                })
                .collect(),
            invalid: f
                .invalid
                .into_iter()
                .map(|i| NativeInvalidData {
                    path: i.path,
                    rule: i.rule,
                    line: i.line,
                })
                .collect(),
            invalid_total: n(f.invalid_total),
            triggers: f.triggers.map(|t| NativeTriggerWrites {
                with_triggers: n(t.with_triggers),
                triggers_disabled: n(t.triggers_disabled),
            }),
        }
    }
}

#[napi(string_enum = "lowercase")]
pub enum NativeRulesOrigin {
    Production,
    File,
    None,
}

/// The rules the sandbox applied, and as whom.
#[napi(object)]
pub struct NativeRulesInfo {
    pub origin: NativeRulesOrigin,
    pub file: Option<String>,
    /// Requests sent to read production's rules.
    pub requests: f64,
    /// Why production's rules are not loaded.
    pub note: Option<String>,
    /// The scripts ran as an admin (no `databaseAuthVariableOverride`).
    pub as_admin: bool,
}

impl From<RulesInfo> for NativeRulesInfo {
    fn from(r: RulesInfo) -> Self {
        NativeRulesInfo {
            origin: match r.origin {
                RulesOrigin::Production => NativeRulesOrigin::Production,
                RulesOrigin::File => NativeRulesOrigin::File,
                RulesOrigin::None => NativeRulesOrigin::None,
            },
            file: r.file.map(|f| f.to_string_lossy().into_owned()),
            requests: n(r.requests),
            note: r.note,
            as_admin: r.as_admin,
        }
    }
}

#[napi(string_enum = "kebab-case")]
pub enum NativeRehearsalOutcome {
    Succeeded,
    Failed,
    NotRun,
}

/// One pending migration, rehearsed.
#[napi(object)]
pub struct NativeRehearsedMigration {
    pub name: String,
    pub version: f64,
    pub filepath: String,
    pub outcome: NativeRehearsalOutcome,
    pub duration_ms: f64,
    pub requests: NativeRequests,
    /// What it changed (a failed one: what it had changed when it failed).
    pub changes: Option<NativeChanges>,
    pub error: Option<String>,
    /// What production's rules, indexes and limits made of it.
    pub findings: NativeFindings,
}

impl From<RehearsedMigration> for NativeRehearsedMigration {
    fn from(m: RehearsedMigration) -> Self {
        NativeRehearsedMigration {
            name: m.name,
            version: n(m.version),
            filepath: m.filepath,
            outcome: match m.outcome {
                Outcome::Succeeded => NativeRehearsalOutcome::Succeeded,
                Outcome::Failed => NativeRehearsalOutcome::Failed,
                Outcome::NotRun => NativeRehearsalOutcome::NotRun,
            },
            duration_ms: n(m.duration_ms),
            requests: m.requests.into(),
            changes: m.changes.map(Into::into),
            error: m.error,
            findings: m.findings.into(),
        }
    }
}

#[napi(string_enum = "lowercase")]
pub enum NativeSourceKind {
    Database,
    Backup,
}

/// Where the rehearsed data came from.
#[napi(object)]
pub struct NativeRehearsalSource {
    pub kind: NativeSourceKind,
    /// `/<shift>` or `/`.
    pub path: String,
    pub database_url: Option<String>,
    pub file: Option<String>,
    pub created_at: Option<String>,
    pub bytes: f64,
    /// Requests sent to the database: reads only.
    pub requests: f64,
    /// One point in time (false for a walk in pages).
    pub snapshot: bool,
    /// A live lock was in the data and was not copied.
    pub lock_skipped: bool,
}

#[napi(object)]
pub struct NativeRollbackInfo {
    pub strategy: String,
    pub success: bool,
    /// What it did, in words.
    pub done: String,
}

#[napi(string_enum = "kebab-case")]
pub enum NativeDownOutcome {
    Undone,
    Differs,
    NoDown,
    Failed,
    NotChecked,
}

/// One migration's round trip.
#[napi(object)]
pub struct NativeDownCheck {
    pub name: String,
    pub version: f64,
    pub outcome: NativeDownOutcome,
    pub duration_ms: Option<f64>,
    pub changes: Option<NativeChanges>,
    pub error: Option<String>,
}

impl From<DownCheck> for NativeDownCheck {
    fn from(c: DownCheck) -> Self {
        NativeDownCheck {
            name: c.name,
            version: n(c.version),
            outcome: match c.outcome {
                DownOutcome::Undone => NativeDownOutcome::Undone,
                DownOutcome::Differs => NativeDownOutcome::Differs,
                DownOutcome::NoDown => NativeDownOutcome::NoDown,
                DownOutcome::Failed => NativeDownOutcome::Failed,
                DownOutcome::NotChecked => NativeDownOutcome::NotChecked,
            },
            duration_ms: c.duration_ms.map(n),
            changes: c.changes.map(Into::into),
            error: c.error,
        }
    }
}

/// `down: true`: the downs back to the start, newest first.
#[napi(object)]
pub struct NativeDownReport {
    pub round_trip: bool,
    pub migrations: Vec<NativeDownCheck>,
    pub remaining: Option<NativeChanges>,
}

impl From<DownReport> for NativeDownReport {
    fn from(d: DownReport) -> Self {
        NativeDownReport {
            round_trip: d.round_trip,
            migrations: d.migrations.into_iter().map(Into::into).collect(),
            remaining: d.remaining.map(Into::into),
        }
    }
}

#[napi(object)]
pub struct NativeRehearsalTotals {
    pub migrations: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub not_run: u32,
    pub added: f64,
    pub removed: f64,
    pub changed: f64,
    pub bytes_before: f64,
    pub bytes_after: f64,
    pub duration_ms: f64,
    pub requests: f64,
}

#[napi(object)]
pub struct NativeRehearsalError {
    pub code: String,
    pub message: String,
    pub migration: Option<String>,
}

/// What `rehearse()` did and found.
#[napi(object)]
pub struct NativeRehearsalReport {
    pub success: bool,
    pub source: NativeRehearsalSource,
    pub executed: u32,
    pub migrations: Vec<NativeRehearsedMigration>,
    pub before_migrate: Option<NativeChanges>,
    pub totals: NativeRehearsalTotals,
    pub rollback: Option<NativeRollbackInfo>,
    pub down: Option<NativeDownReport>,
    pub kept: Option<String>,
    pub error: Option<NativeRehearsalError>,
    /// The rules the sandbox applied.
    pub rules: NativeRulesInfo,
    /// Warnings over all migrations (with `strict`, they fail the rehearsal).
    pub warnings: f64,
    pub strict: bool,
    pub duration_ms: f64,
}

impl From<RehearsalReport> for NativeRehearsalReport {
    fn from(r: RehearsalReport) -> Self {
        let s = r.source;
        let t = r.totals;
        NativeRehearsalReport {
            success: r.success,
            source: NativeRehearsalSource {
                kind: match s.kind {
                    SourceKind::Database => NativeSourceKind::Database,
                    SourceKind::Backup => NativeSourceKind::Backup,
                },
                path: s.path,
                database_url: s.database_url,
                file: s.file.map(|f| f.to_string_lossy().into_owned()),
                created_at: s.created_at,
                bytes: n(s.bytes),
                requests: n(s.requests),
                snapshot: s.snapshot,
                lock_skipped: s.lock_skipped,
            },
            executed: count(r.executed),
            migrations: r.migrations.into_iter().map(Into::into).collect(),
            before_migrate: r.before_migrate.map(Into::into),
            totals: NativeRehearsalTotals {
                migrations: count(t.migrations),
                succeeded: count(t.succeeded),
                failed: count(t.failed),
                not_run: count(t.not_run),
                added: n(t.added),
                removed: n(t.removed),
                changed: n(t.changed),
                bytes_before: n(t.bytes_before),
                bytes_after: n(t.bytes_after),
                duration_ms: n(t.duration_ms),
                requests: n(t.requests),
            },
            rollback: r.rollback.map(|rb| NativeRollbackInfo {
                strategy: rb.strategy.to_string(),
                success: rb.success,
                done: rb.done,
            }),
            down: r.down.map(Into::into),
            kept: r.kept.map(|k| k.to_string_lossy().into_owned()),
            error: r.error.map(|e| NativeRehearsalError {
                code: e.code,
                message: e.message,
                migration: e.migration,
            }),
            rules: r.rules.into(),
            warnings: n(r.warnings),
            strict: r.strict,
            duration_ms: n(r.duration_ms),
        }
    }
}
