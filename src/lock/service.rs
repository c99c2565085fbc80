//! `LockService`: acquire/verify/release/status/force-release on conditional PUT/DELETE only.

use std::sync::Arc;
use std::time::Duration;

use crate::rtdb::Client;
use crate::Result;

use super::LockStatus;

#[derive(Debug, Clone)]
pub struct LockOptions {
    /// Lease length in ms (`locking.timeout`, default 600000).
    pub timeout_ms: u64,
    /// Predecessor's retries for `acquire` in the runner (0 = fail fast).
    pub retry_attempts: u32,
    pub retry_delay_ms: u64,
    /// Renew every this often while holding (default timeout/3).
    pub renew_interval: Option<Duration>,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            timeout_ms: 600_000,
            retry_attempts: 0,
            retry_delay_ms: 1000,
            renew_interval: None,
        }
    }
}

#[derive(Clone)]
pub struct LockService {
    pub(crate) client: Client,
    pub(crate) path: String,
    pub(crate) opts: LockOptions,
    _p: Arc<()>,
}

impl LockService {
    pub fn new(client: Client, shift: Option<&str>, opts: LockOptions) -> LockService {
        LockService {
            client,
            path: super::lock_path(shift),
            opts,
            _p: Arc::new(()),
        }
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn options(&self) -> &LockOptions {
        &self.opts
    }
    pub async fn acquire(&self, executor_id: &str) -> Result<bool> {
        todo!("{executor_id}")
    }
    pub async fn verify_ownership(&self, executor_id: &str) -> Result<bool> {
        todo!("{executor_id}")
    }
    pub async fn release(&self, executor_id: &str) -> Result<()> {
        todo!("{executor_id}")
    }
    pub async fn status(&self) -> Result<Option<LockStatus>> {
        todo!()
    }
    pub async fn force_release(&self) -> Result<Option<LockStatus>> {
        todo!()
    }
    pub async fn check_and_release_expired(&self) -> Result<()> {
        todo!()
    }
    pub async fn init_storage(&self) -> Result<()> {
        todo!()
    }
    pub async fn ensure_accessible(&self) -> Result<bool> {
        todo!()
    }
}
