//! The runner (INTERFACE; bodies to be implemented): discover scripts, plan, validate, back up,
//! run `up`s in order under the lock, record each, roll back on failure; `down`, `list`,
//! `validate`.

pub mod host;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use host::{Method, ScriptHost, ScriptMeta};

use crate::config::Config;
use crate::lock::{LockService, WaitPolicy};
use crate::rtdb::Client;
use crate::Result;

/// Log sink (level, message). The CLI prints; the library logs per `logLevel`.
pub type LogFn = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Set by SIGINT/SIGTERM: the runner stops after the current step.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst)
    }
    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

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

/// `{ success, executed, migrated, ignored, errors }`
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MigrationResult {
    pub success: bool,
    pub executed: Vec<MigrationInfo>,
    pub migrated: Vec<MigrationInfo>,
    pub ignored: Vec<MigrationInfo>,
    pub errors: Vec<String>,
}

/// How `migrate`/`down` take the lock (ignored when locking is disabled or `no_lock`).
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub target: Option<u64>,
    pub dry_run: bool,
    pub no_lock: bool,
    pub wait: WaitPolicy,
}

pub struct Runner<H: ScriptHost> {
    pub cfg: Config,
    pub client: Client,
    pub host: H,
    pub lock: Option<LockService>,
    /// Working directory relative paths resolve against.
    pub cwd: PathBuf,
    pub log: LogFn,
    pub stop: StopFlag,
}
