//! The lock record stored in RTDB and the status shown to users.
//!
//! The lock node holds one of:
//! - nothing (never locked): epoch 0;
//! - a held record `{executorId, lockedAt, expiresAt, hostname, processId, epoch, renewedAt?}`;
//! - a tombstone `{epoch, releasedAt}` left by a release, so the fencing epoch keeps growing
//!   across owners. A node without `executorId` is unlocked.

use crate::time::iso_millis;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

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

/// Where the lock lives under the shift (the database root without one).
pub const LOCK_NODE: &str = "migrations/_lock";

/// `{shift}/migrations/_lock`, or `migrations/_lock` without a shift.
pub fn lock_path(shift: Option<&str>) -> String {
    match shift.map(|s| s.trim_matches('/')).filter(|s| !s.is_empty()) {
        Some(s) => format!("{s}/{LOCK_NODE}"),
        None => LOCK_NODE.to_string(),
    }
}

/// Default executor id: `hostname-pid-uuid`.
pub fn default_executor_id() -> String {
    format!(
        "{}-{}-{}",
        this_host(),
        std::process::id(),
        uuid::Uuid::new_v4()
    )
}

/// This machine's host name, as lock records store it.
pub fn this_host() -> String {
    hostname::get()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// `{".sv":"timestamp"}`: the server writes its own clock.
pub fn server_timestamp() -> Value {
    json!({".sv": "timestamp"})
}

fn as_i64(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<f64>().ok().map(|f| f as i64),
        _ => None,
    }
}

fn as_u64(v: Option<&Value>) -> Option<u64> {
    as_i64(v).and_then(|n| u64::try_from(n).ok())
}

impl LockRecord {
    /// A new record for `executor_id`; `lockedAt`/`renewedAt` are filled by [`LockRecord::to_write`].
    pub fn new(executor_id: &str, expires_at: i64, epoch: u64) -> LockRecord {
        LockRecord {
            executor_id: executor_id.to_string(),
            locked_at: 0,
            expires_at,
            hostname: this_host(),
            process_id: Some(std::process::id()),
            epoch,
            renewed_at: None,
        }
    }

    /// Parse a stored held record leniently (records written by the predecessor carry no epoch;
    /// numbers may come back as floats). `None` when the value has no `executorId` (unlocked).
    pub fn from_value(v: &Value) -> Option<LockRecord> {
        let o = v.as_object()?;
        let executor_id = match o.get("executorId")? {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        };
        Some(LockRecord {
            executor_id,
            locked_at: as_i64(o.get("lockedAt")).unwrap_or(0),
            // A record without a usable expiry is treated as expired.
            expires_at: as_i64(o.get("expiresAt")).unwrap_or(0),
            hostname: o
                .get("hostname")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            process_id: as_u64(o.get("processId")).and_then(|n| u32::try_from(n).ok()),
            epoch: as_u64(o.get("epoch")).unwrap_or(0),
            renewed_at: as_i64(o.get("renewedAt")),
        })
    }

    /// The value to write. A first acquisition (`renewal == false`) writes `lockedAt` as a server
    /// timestamp; a renewal keeps `lockedAt` and writes `renewedAt` as a server timestamp.
    pub fn to_write(&self, renewal: bool) -> Value {
        let mut m = Map::new();
        m.insert("executorId".into(), json!(self.executor_id));
        m.insert(
            "lockedAt".into(),
            if renewal {
                json!(self.locked_at)
            } else {
                server_timestamp()
            },
        );
        m.insert("expiresAt".into(), json!(self.expires_at));
        m.insert("hostname".into(), json!(self.hostname));
        if let Some(pid) = self.process_id {
            m.insert("processId".into(), json!(pid));
        }
        m.insert("epoch".into(), json!(self.epoch));
        if renewal {
            m.insert("renewedAt".into(), server_timestamp());
        }
        Value::Object(m)
    }

    /// Server time of the last write of this record (renewal or acquisition).
    pub fn last_write_at(&self) -> i64 {
        self.renewed_at
            .unwrap_or(self.locked_at)
            .max(self.locked_at)
    }

    /// Lease length this record was written with.
    pub fn lease_ms(&self) -> i64 {
        (self.expires_at - self.last_write_at()).max(0)
    }

    pub fn status(&self, is_locked: bool) -> LockStatus {
        LockStatus {
            is_locked,
            locked_by: self.executor_id.clone(),
            locked_at: self.locked_at,
            expires_at: self.expires_at,
            process_id: self.process_id,
            hostname: self.hostname.clone(),
            epoch: self.epoch,
        }
    }
}

impl LockRecord {
    /// The stored form of a record whose server timestamps are resolved.
    pub(crate) fn to_write_resolved(&self) -> Value {
        let mut v = self.to_write(false);
        if let Some(o) = v.as_object_mut() {
            o.insert("lockedAt".into(), self.locked_at.into());
            if let Some(r) = self.renewed_at {
                o.insert("renewedAt".into(), r.into());
            }
        }
        v
    }
}

/// The tombstone written by a release: keeps the epoch, no `executorId`.
pub fn tombstone(epoch: u64) -> Value {
    json!({"epoch": epoch, "releasedAt": server_timestamp()})
}

/// What the lock node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum LockNode {
    /// Unlocked; `epoch` is the last owner's epoch (0 when never locked).
    Free {
        epoch: u64,
    },
    Held(LockRecord),
}

impl LockNode {
    pub fn parse(v: &Value) -> LockNode {
        match LockRecord::from_value(v) {
            Some(r) => LockNode::Held(r),
            None => LockNode::Free {
                epoch: v.get("epoch").and_then(|e| as_u64(Some(e))).unwrap_or(0),
            },
        }
    }
    /// Epoch of the current or last owner.
    pub fn epoch(&self) -> u64 {
        match self {
            LockNode::Free { epoch } => *epoch,
            LockNode::Held(r) => r.epoch,
        }
    }
}

impl LockStatus {
    /// The LOCK_HELD message, exactly as the locking guide shows it.
    pub fn held_message(&self) -> String {
        held_message(&self.locked_by, self.locked_at, self.expires_at)
    }
}

/// The LOCK_HELD message, exactly as the locking guide shows it.
pub fn held_message(executor_id: &str, locked_at: i64, expires_at: i64) -> String {
    format!(
        "Migration lock is currently held by another process.\nExecutor: {executor_id}\nLocked since: {}\nExpires at: {}\n\n\
         If you believe this is a stale lock, use: msr-firebase lock:release --force",
        iso_millis(locked_at),
        iso_millis(expires_at)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_has_millis_and_z() {
        assert_eq!(iso_millis(1_705_314_600_000), "2024-01-15T10:30:00.000Z");
        assert_eq!(iso_millis(1_705_314_600_123), "2024-01-15T10:30:00.123Z");
    }

    #[test]
    fn held_message_matches_guide() {
        let m = held_message(
            "web-server-2-67890-e5f6g7h8",
            1_705_314_600_000,
            1_705_315_200_000,
        );
        assert_eq!(
            m,
            "Migration lock is currently held by another process.\nExecutor: web-server-2-67890-e5f6g7h8\n\
             Locked since: 2024-01-15T10:30:00.000Z\nExpires at: 2024-01-15T10:40:00.000Z\n\n\
             If you believe this is a stale lock, use: msr-firebase lock:release --force"
        );
    }

    #[test]
    fn parses_predecessor_record_and_tombstones() {
        let v = json!({"executorId": "h-1-u", "lockedAt": 1.0, "expiresAt": 2, "hostname": "h", "processId": 12345});
        let r = LockRecord::from_value(&v).unwrap();
        assert_eq!(
            (r.locked_at, r.expires_at, r.epoch, r.process_id),
            (1, 2, 0, Some(12345))
        );
        assert_eq!(LockNode::parse(&Value::Null), LockNode::Free { epoch: 0 });
        assert_eq!(
            LockNode::parse(&json!({"epoch": 7, "releasedAt": 5})),
            LockNode::Free { epoch: 7 }
        );
    }
}
