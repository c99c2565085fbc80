//! `CliHost`: what the CLI needs from JS besides running scripts.

use std::future::Future;
use std::path::Path;

use serde_json::Value;

use crate::runner::ScriptHost;
use crate::Result;

/// What the CLI needs from JS besides running scripts.
pub trait CliHost: ScriptHost + Clone {
    /// Evaluate a JS config file (object, function or promise of either) to plain settings.
    fn load_config(&self, file: &Path) -> impl Future<Output = Result<Value>> + Send;
    /// Set environment variables (from `--env-file`) for the rest of the process, Rust and JS
    /// alike. JS sets them on its own thread, where Node expects environment changes.
    fn set_env(&self, vars: Vec<(String, String)>) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (k, v) in vars {
                std::env::set_var(k, v);
            }
            Ok(())
        }
    }
}
