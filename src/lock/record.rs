//! The lock record stored in RTDB and the status shown to users.

use serde::{Deserialize, Serialize};

/// What is stored at the lock node (camelCase fields, compatible with the predecessor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockRecord {
    pub executor_id: String,
    /// ms since epoch, server time.
    pub locked_at: i64,
    /// ms since epoch, server time.
    pub expires_at: i64,
    pub hostname: String,
    pub process_id: Option<u32>,
    /// Fencing epoch: grows with every new owner.
    #[serde(default)]
    pub epoch: u64,
    /// Last renewal (server time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<i64>,
}

/// `getLockStatus()` result.
#[derive(Debug, Clone, PartialEq)]
pub struct LockStatus {
    pub is_locked: bool,
    pub locked_by: String,
    pub locked_at: i64,
    pub expires_at: i64,
    pub process_id: Option<u32>,
    pub hostname: String,
    pub epoch: u64,
}
