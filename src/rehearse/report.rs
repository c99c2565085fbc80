//! What a rehearsal reports (serialised as camelCase: the CLI's `--format json` and the
//! library's typed result carry the same fields).

use std::path::PathBuf;

use serde::Serialize;

use crate::Error;

/// A difference's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// The topmost node of one difference, e.g. `/app/users/u1/fullName` added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Example {
    pub path: String,
    pub kind: ChangeKind,
}

/// Changes under one top-level child of the rehearsed subtree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildChanges {
    pub key: String,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// JSON bytes of the child before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// What a step changed in the data (leaf values; the history and the lock left out).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// JSON bytes of the data before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// The top-level children that changed, in key order.
    pub children: Vec<ChildChanges>,
    /// Up to the asked number of example paths, in key order.
    pub examples: Vec<Example>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added + self.removed + self.changed == 0
    }
}

/// Requests a step sent to the sandbox (the runner's own lock checks and history records left
/// out): `{ total, byMethod: { GET: n, PATCH: n, ... } }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Requests {
    pub total: u64,
    pub by_method: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Not reached: an earlier one failed (or the run was stopped).
    NotRun,
}

/// One pending migration, rehearsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsedMigration {
    pub name: String,
    pub version: u64,
    pub filepath: String,
    pub outcome: Outcome,
    pub duration_ms: u64,
    pub requests: Requests,
    /// What it changed (a failed one: what it had changed when it failed, before the rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What production's rules, indexes and limits made of it.
    pub findings: Findings,
}

/// A query the database refused for want of an index, answered on the client instead (the
/// `query.unindexed` notice): slow in production, and the line to add to the rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnindexedQuery {
    /// The queried location, `/app/users`.
    pub path: String,
    /// The child (or `.value`) it was ordered by.
    pub child: String,
    /// The rules line to add at `path`: `".indexOn": "email"`.
    pub index_on: String,
}

/// A write the sandbox refused: 401 = denied by the rules (as production would), another 4xx
/// (a bad request; writes too big for one request are `TooBigWrite`s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusedWrite {
    pub method: String,
    /// `/app/settings`
    pub path: String,
    pub status: u16,
}

/// What became of a write refused as too big for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TooBigHandling {
    /// The client deleted the node in chunks instead (its `write.chunked` notice): the same
    /// end state, in more requests.
    Chunked,
    /// Nothing took its place: the write did not happen (production would refuse it too).
    Failed,
}

/// Writes the sandbox refused with `WRITE_TOO_BIG` (production's write-size limit: the data
/// they affect, e.g. the node a DELETE removes, is more than one request may change), by method
/// and path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TooBigWrite {
    pub method: String,
    /// `/app/users`
    pub path: String,
    /// How many such requests were refused.
    pub refusals: u64,
    pub handled: TooBigHandling,
}

/// A node too big to delete in one request, deleted in chunks (the `write.chunked` notice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChunkedWrite {
    pub path: String,
    pub requests: u64,
}

/// Data a migration left that a `.validate` rule refuses: admin writes skip `.validate`, but a
/// client writing there now is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidData {
    /// Where the failing rule is, `/app/users/u1/age`.
    pub path: String,
    /// Its text and line in the rules.
    pub rule: String,
    pub line: u32,
}

/// Writes a migration sent to the sandbox, by whether they asked the database not to fire
/// Cloud Functions triggers (`disableTriggers=true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerWrites {
    pub with_triggers: u64,
    pub triggers_disabled: u64,
}

/// What production's rules, indexes and limits made of one migration's run in the sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    /// Queries that needed the client-side fallback (a warning each).
    pub unindexed: Vec<UnindexedQuery>,
    /// Writes the rules denied (a failure, as in production): the first 100.
    pub denied: Vec<RefusedWrite>,
    /// Writes refused as too big for one request, and how each was handled.
    pub too_big: Vec<TooBigWrite>,
    /// Other writes the sandbox refused (bad requests).
    pub refused: Vec<RefusedWrite>,
    /// Nodes deleted in chunks because one request was too big.
    pub chunked: Vec<ChunkedWrite>,
    /// `.validate` rules the data violates after it (a warning each): the first ones, and how
    /// many in all.
    pub invalid: Vec<InvalidData>,
    pub invalid_total: u64,
    /// Writes with and without `disableTriggers` (the runner's own lock and history writes
    /// left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triggers: Option<TriggerWrites>,
}

impl Findings {
    /// Warnings: unindexed queries and data the rules' `.validate` refuses.
    pub fn warnings(&self) -> u64 {
        self.unindexed.len() as u64 + self.invalid_total
    }
}

/// Where the sandbox's Security Rules came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RulesOrigin {
    /// Read from the source database (`GET /.settings/rules.json`).
    Production,
    /// A rules file (`--rules`, or firebase.json's `database.rules`).
    File,
    /// None: the sandbox was open (a backup without a rules file, or production's unreadable).
    None,
}

/// The rules the rehearsal ran under, and as whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RulesInfo {
    pub origin: RulesOrigin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Requests sent to the source database to read its rules (production: 1).
    pub requests: u64,
    /// Why production's rules are not loaded, when they were asked for and could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The scripts ran as an admin (no `databaseAuthVariableOverride`: rules other than
    /// indexes do not apply to their writes, as in production).
    pub as_admin: bool,
}

/// Where the data came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// `database` (a walk of the live subtree) or `backup` (a file).
    pub kind: SourceKind,
    /// The rehearsed path: `/<shift>`, or `/`.
    pub path: String,
    /// The database read (no credentials), or the one the backup names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// When the backup was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// JSON bytes loaded.
    pub bytes: u64,
    /// Requests sent to the database (reads only); 0 for a backup.
    pub requests: u64,
    /// Whether the data is one point in time (a backup of a small subtree read in one GET is;
    /// a walk in pages is not).
    pub snapshot: bool,
    /// A live lock found in the data, and not copied.
    pub lock_skipped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Database,
    Backup,
}

/// The rollback the runner did after a failure (in the sandbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RollbackInfo {
    pub strategy: crate::config::RollbackStrategy,
    pub success: bool,
    /// What it did, in words (`RollbackReport::done`).
    pub done: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownOutcome {
    /// `down` brought the data back to what it was before `up`.
    Undone,
    /// It left differences (see `changes`).
    Differs,
    /// The migration has no `down()`.
    NoDown,
    /// `down` threw.
    Failed,
    /// Not checked: a newer migration has no `down()` or failed.
    NotChecked,
}

/// One migration's round trip (`--down`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownCheck {
    pub name: String,
    pub version: u64,
    pub outcome: DownOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// What differs from the data before its `up` (differs: the paths its `down` did not put
    /// back; differences a newer migration's `down` already left are not repeated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `--down`: the downs back to where the data started, newest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownReport {
    /// Every rehearsed migration has a `down` and the data after them all equals the data
    /// before the first `up`.
    pub round_trip: bool,
    pub migrations: Vec<DownCheck>,
    /// The data after the downs compared with the data before the first `up` (absent when the
    /// downs could not all run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<Changes>,
}

/// Sums over the rehearsed migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    pub migrations: usize,
    pub succeeded: usize,
    pub failed: usize,
    pub not_run: usize,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    /// The data before the first migration and after the last one that ran.
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub duration_ms: u64,
    pub requests: u64,
}

/// Why a rehearsal did not pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportError {
    pub code: String,
    pub message: String,
    /// The migration that failed, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
}

/// What a rehearsal did and found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RehearsalReport {
    /// Every rehearsed migration succeeded (and, with `down`, round-tripped).
    pub success: bool,
    pub source: SourceInfo,
    /// Migrations already executed in the data's history.
    pub executed: usize,
    /// Pending migrations rehearsed (up to the target), in order.
    pub migrations: Vec<RehearsedMigration>,
    /// What `beforeMigrate` changed, when the folder has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_migrate: Option<Changes>,
    pub totals: Totals,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down: Option<DownReport>,
    /// The `keep` file written with the resulting data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ReportError>,
    /// The rules the sandbox applied.
    pub rules: RulesInfo,
    /// Warnings over all migrations (unindexed queries, data `.validate` refuses); with
    /// `strict` they fail the rehearsal.
    pub warnings: u64,
    pub strict: bool,
    pub duration_ms: u64,
}

impl RehearsalReport {
    /// The error to exit with, when the rehearsal did not pass.
    pub fn failure(&self) -> Option<Error> {
        let e = self.error.as_ref()?;
        let code = crate::ErrorCode::parse(&e.code).unwrap_or(crate::ErrorCode::ScriptFailed);
        Some(Error::new(code, e.message.clone()))
    }
}
