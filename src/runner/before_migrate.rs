//! The `beforeMigrate` script: run at the start of every `migrate` (not `--mark-applied`,
//! not a dry run), under the lock, before the history is read under it; ownership is proved
//! again once it is done.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use crate::{Error, ErrorCode, Result};

use super::context::Run;
use super::host::script_info;
use super::{now_ms, Method, Runner, ScriptHost};

impl<H: ScriptHost> Runner<H> {
    /// The dry-run banner; or, for a real run, a lock check and the `beforeMigrate` script
    /// (not when only marking migrations as applied: nothing runs then).
    pub(crate) async fn setup(&self, run: &Run) -> Result<()> {
        if run.dry_run {
            self.info("🔍 DRY RUN MODE - No changes will be made");
            return Ok(());
        }
        // Just acquired: the lease, checked locally (no request).
        run.check_lease()?;
        if run.opts.mark_applied {
            return Ok(());
        }
        self.info("Checking for beforeMigrate setup script...");
        match &run.disc.before_migrate {
            Some(p) => {
                self.run_before_migrate(p, &run.username).await?;
                // It took time: ownership is proved again before anything else runs.
                self.check_guard(run.guard()).await
            }
            None => {
                self.info("No beforeMigrate script found, skipping setup phase");
                Ok(())
            }
        }
    }

    async fn run_before_migrate(&self, path: &Path, username: &str) -> Result<()> {
        let fail = |e: Error| {
            Error::new(
                ErrorCode::ScriptFailed,
                format!(
                    "beforeMigrate script {} failed: {}",
                    path.display(),
                    e.message
                ),
            )
        };
        self.info(&format!("Found beforeMigrate script: {}", path.display()));
        let meta = self.host.load(path).await.map_err(fail)?;
        if !meta.has_up {
            return Err(fail(Error::new(
                ErrorCode::ScriptFailed,
                "it does not export an up() method",
            )));
        }
        let started = Instant::now();
        let info = script_info(
            &self.cfg.before_migrate_name.clone().unwrap_or_default(),
            &path.to_string_lossy(),
            0,
            now_ms(),
            username,
        );
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self
            .run_script(&name, path, Method::Up, &info)
            .await
            .map_err(fail)?;
        self.info(&format!(
            "✓ beforeMigrate completed successfully in {}ms",
            started.elapsed().as_millis()
        ));
        if !out.is_null() {
            self.debug(&format!("Result: {}", display_value(&out)));
        }
        Ok(())
    }
}

fn display_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
