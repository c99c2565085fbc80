//! The backup seam: how the runner creates and restores backups of the `{shift}` subtree.
//! `DefaultBackups` uses `crate::backup`; tests may substitute their own.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

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
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultBackups;

impl BackupOps for DefaultBackups {
    fn create<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        cwd: &'a Path,
    ) -> BoxFuture<'a, Result<PathBuf>> {
        Box::pin(crate::backup::create(client, cfg, cwd))
    }
    fn restore<'a>(
        &'a self,
        client: &'a Client,
        cfg: &'a Config,
        path: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(crate::backup::restore(client, cfg, path))
    }
}
