//! The backup seam: how the runner creates and restores backups of the `{shift}` subtree.
//! `DefaultBackups` uses `crate::backup`, counting into a `Progress` when given one (the CLI
//! draws it); tests may substitute their own.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::backup::{BackupOptions, Phase, Progress, RestoreOptions};
use crate::config::Config;
use crate::rtdb::Client;
use crate::Result;

pub trait BackupOps: Send + Sync {
    /// Back up the `{shift}` subtree (or the root) to a file; returns its path.
    fn create<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        cwd: &'a Path,
    ) -> BoxFuture<'a, Result<PathBuf>>;
    /// Replace the `{shift}` subtree with the backup's content.
    fn restore<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<()>>;
}

/// Backups through `crate::backup`.
#[derive(Debug, Clone, Default)]
pub struct DefaultBackups {
    /// Restarted for each backup and restore, finished when it is over.
    pub progress: Option<Arc<Progress>>,
}

impl DefaultBackups {
    pub fn with_progress(progress: Arc<Progress>) -> DefaultBackups {
        DefaultBackups {
            progress: Some(progress),
        }
    }

    fn counted(&self, phase: Phase) -> Option<Arc<Progress>> {
        let p = self.progress.clone()?;
        p.restart(phase);
        Some(p)
    }

    fn finish(&self) {
        if let Some(p) = &self.progress {
            p.finish();
        }
    }
}

impl BackupOps for DefaultBackups {
    fn create<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        cwd: &'a Path,
    ) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(async move {
            let opts = BackupOptions {
                progress: self.counted(Phase::Backup),
                ..BackupOptions::default()
            };
            let out = crate::backup::create_with(client, cfg, cwd, &opts).await;
            self.finish();
            out
        })
    }
    fn restore<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let opts = RestoreOptions {
                progress: self.counted(Phase::Validate),
                ..RestoreOptions::default()
            };
            let out = crate::backup::restore_with(client, cfg, path, &opts).await;
            self.finish();
            out.map(|_| ())
        })
    }
}
