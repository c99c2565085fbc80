//! `ScriptHost`: how the Rust runner reaches migration scripts, which live in JS. The napi
//! binding implements it by calling into Node (`require`/`import()`, then `up`/`down`); tests
//! implement it in Rust.

use std::future::Future;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ScriptDb;
use crate::Result;

/// What loading a script found out (load errors come back as `Err` with SCRIPT_FAILED).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScriptMeta {
    pub has_up: bool,
    pub has_down: bool,
    /// `up` is declared `async` (a warning only when false).
    pub up_is_async: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Up,
    Down,
}

/// The `info` argument given to `up`/`down`.
pub(crate) fn script_info(
    name: &str,
    filepath: &str,
    timestamp: u64,
    started_at: i64,
    username: &str,
) -> Value {
    json!({ "name": name, "filepath": filepath, "timestamp": timestamp, "startedAt": started_at, "username": username })
}

pub trait ScriptHost: Send + Sync + 'static {
    /// Load (import) a script and inspect its exports. Must not run `up`/`down`.
    fn load(&self, file: &Path) -> impl Future<Output = Result<ScriptMeta>> + Send;
    /// Run `up` or `down` of a script with `db` (the runner's [`ScriptDb`]: the one database
    /// the script may be given) and `info` (the migration's record so far: name, filepath,
    /// timestamp, startedAt, username...). Resolves with what the function returned
    /// (`Value::Null` for undefined). A throw becomes `Err` with SCRIPT_FAILED and the message.
    fn run(
        &self,
        file: &Path,
        method: Method,
        info: &Value,
        db: &ScriptDb,
    ) -> impl Future<Output = Result<Value>> + Send;
}
