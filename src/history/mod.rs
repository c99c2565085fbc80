//! Migration history at `{shift}/{tableName}` (`Config::history_path`).
//!
//! Each executed migration is one record:
//! `{ name, filepath, timestamp, startedAt, finishedAt, username, result, checksum }` plus
//! `duration`, `executorId` and `lockEpoch` (and `markedApplied: true` for migrations recorded
//! by `migrate --mark-applied` without running).
//!
//! - **Writing** is a conditional create (`put_if_match(.., NULL_ETAG)`) at the deterministic key
//!   `v<timestamp>` (e.g. `v202501010001`), so the same migration can never be recorded twice:
//!   a 412 means it is already recorded and is an error, never a second record. (Only when two
//!   *different* files share a timestamp — `duplicateTimestampMode` warn/ignore — does the second
//!   one go to `v<timestamp>_<name>`, again created only if absent.)
//! - **Reading** takes the whole node; records under any key are accepted, including the push
//!   ids the TypeScript predecessor wrote (same fields, `timestamp` a number). Primitives and
//!   entries without a usable `timestamp` are skipped with a warning.
//! - **Removal** by timestamp deletes the record's actual key, whatever it is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::Config;
use crate::rtdb::{CasOutcome, Client, NULL_ETAG};
use crate::{Error, ErrorCode, Result};

/// One stored migration record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    /// The key the record is stored under (not stored in the record itself).
    #[serde(skip)]
    pub key: String,
    pub name: String,
    #[serde(default)]
    pub filepath: String,
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What `up` returned; omitted when it returned undefined/null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `finishedAt - startedAt` in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<String>,
    /// Fencing epoch of the lock the migration ran under (absent when run without a lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_epoch: Option<u64>,
    /// Recorded by `migrate --mark-applied`: the migration was not run here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub marked_applied: Option<bool>,
}

impl HistoryRecord {
    /// The record as a JSON object (without `key`).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("history record serialises")
    }

    /// Parse one child of the history node. `Err` carries the reason it was skipped.
    pub fn from_entry(key: &str, value: &Value) -> std::result::Result<HistoryRecord, String> {
        let obj = match value {
            Value::Object(o) => o,
            Value::Null => return Err("empty entry".into()),
            other => return Err(format!("not a migration record (a {})", kind(other))),
        };
        let timestamp = match obj.get("timestamp") {
            Some(Value::Number(n)) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            }),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        let Some(timestamp) = timestamp.filter(|t| *t > 0) else {
            return Err("no numeric `timestamp` field".into());
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let int = |k: &str| {
            obj.get(k)
                .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64)))
        };
        let started_at = int("startedAt");
        let finished_at = int("finishedAt");
        Ok(HistoryRecord {
            key: key.to_string(),
            name: text("name").unwrap_or_default(),
            filepath: text("filepath").unwrap_or_default(),
            timestamp,
            started_at,
            finished_at,
            username: text("username"),
            result: obj.get("result").filter(|v| !v.is_null()).cloned(),
            checksum: text("checksum").filter(|c| !c.is_empty()),
            duration: int("duration").or(match (started_at, finished_at) {
                (Some(s), Some(f)) if f >= s => Some(f - s),
                _ => None,
            }),
            executor_id: text("executorId"),
            lock_epoch: obj.get("lockEpoch").and_then(Value::as_u64),
            marked_applied: obj.get("markedApplied").and_then(Value::as_bool),
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The deterministic key of a migration's record: `v<timestamp>`.
pub fn record_key(timestamp: u64) -> String {
    format!("v{timestamp}")
}

/// Key for a second file sharing a timestamp: `v<timestamp>_<name with unsafe chars replaced>`.
fn duplicate_key(timestamp: u64, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if matches!(c, '.' | '$' | '#' | '[' | ']' | '/') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("v{timestamp}_{safe}")
}

/// Parse a whole history node (object of records). Returns the records, sorted by timestamp
/// (then key), and a warning per skipped entry.
pub fn parse_node(path: &str, node: &Value) -> (Vec<HistoryRecord>, Vec<String>) {
    let mut records = Vec::new();
    let mut warnings = Vec::new();
    match node {
        Value::Null => {}
        Value::Object(map) => {
            for (key, value) in map {
                match HistoryRecord::from_entry(key, value) {
                    Ok(r) => records.push(r),
                    Err(why) => {
                        warnings.push(format!("Skipping history entry {path}/{key}: {why}"))
                    }
                }
            }
        }
        Value::Array(items) => {
            // RTDB turns objects with small integer keys into arrays; accept them too.
            for (i, value) in items.iter().enumerate() {
                if value.is_null() {
                    continue;
                }
                match HistoryRecord::from_entry(&i.to_string(), value) {
                    Ok(r) => records.push(r),
                    Err(why) => warnings.push(format!("Skipping history entry {path}/{i}: {why}")),
                }
            }
        }
        other => warnings.push(format!(
            "Ignoring the history node {path}: expected an object of migration records, found a {}",
            kind(other)
        )),
    }
    records.sort_by(|a, b| {
        a.timestamp
            .cmp(&b.timestamp)
            .then_with(|| a.key.cmp(&b.key))
    });
    (records, warnings)
}

/// Access to the history node.
#[derive(Clone)]
pub struct History {
    client: Client,
    path: String,
}

impl History {
    pub fn new(client: Client, cfg: &Config) -> History {
        History {
            client,
            path: cfg.history_path(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    fn child(&self, key: &str) -> String {
        crate::rtdb::path::join(&self.path, key)
    }

    /// All records (sorted by timestamp) and warnings for skipped entries.
    pub async fn read(&self) -> Result<(Vec<HistoryRecord>, Vec<String>)> {
        let node =
            self.client.get(&self.path).await.map_err(|e| {
                e.context(format!("Failed to read migration history at {}", self.path))
            })?;
        Ok(parse_node(&self.path, &node))
    }

    /// Record an executed migration with a conditional create at `v<timestamp>`.
    /// Returns the key it was stored under. Already recorded by another run -> `Err`
    /// (VALIDATION_FAILED); already recorded by this very record (an earlier attempt whose answer
    /// was lost landed after all) -> `Ok`, so retrying a record never records twice.
    pub async fn record(&self, rec: &HistoryRecord) -> Result<String> {
        let value = rec.to_value();
        let key = record_key(rec.timestamp);
        match self.create(&key, &value).await? {
            None => Ok(key),
            Some(existing) if is_same_record(&existing, rec) => Ok(key),
            Some(existing) => {
                let existing_name = existing.get("name").and_then(Value::as_str).unwrap_or("");
                if !existing_name.is_empty() && existing_name != rec.name {
                    // A different file with the same timestamp (duplicates allowed by config).
                    let key2 = duplicate_key(rec.timestamp, &rec.name);
                    match self.create(&key2, &value).await? {
                        None => return Ok(key2),
                        Some(existing) if is_same_record(&existing, rec) => return Ok(key2),
                        Some(_) => return Err(already_recorded(&self.child(&key2), &rec.name)),
                    }
                }
                Err(already_recorded(&self.child(&key), &rec.name))
            }
        }
    }

    /// Conditional create; `Some(current value)` when something is already there.
    async fn create(&self, key: &str, value: &Value) -> Result<Option<Value>> {
        let path = self.child(key);
        match self.client.put_if_match(&path, value, NULL_ETAG).await {
            Ok(CasOutcome::Written(_)) => Ok(None),
            Ok(CasOutcome::Mismatch(current)) => Ok(Some(current.value)),
            Err(e) => Err(e.context(format!("Failed to record migration in history at {path}"))),
        }
    }

    /// Remove every record with this timestamp (by its actual key). Returns the removed keys.
    pub async fn remove(&self, timestamp: u64) -> Result<Vec<String>> {
        let (records, _) = self.read().await?;
        self.remove_records(records.iter().filter(|r| r.timestamp == timestamp))
            .await
    }

    /// Remove the given records by key.
    pub async fn remove_records<'a>(
        &self,
        records: impl IntoIterator<Item = &'a HistoryRecord>,
    ) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for r in records {
            let path = self.child(&r.key);
            self.client.remove(&path).await.map_err(|e| {
                e.context(format!(
                    "Failed to remove history record {path} ({})",
                    r.name
                ))
            })?;
            removed.push(r.key.clone());
        }
        Ok(removed)
    }
}

/// Whether a stored record is `rec` itself: same migration, run, executor and lock epoch.
fn is_same_record(stored: &Value, rec: &HistoryRecord) -> bool {
    HistoryRecord::from_entry("", stored).is_ok_and(|r| {
        r.timestamp == rec.timestamp
            && r.name == rec.name
            && r.started_at == rec.started_at
            && r.executor_id == rec.executor_id
            && r.lock_epoch == rec.lock_epoch
    })
}

fn already_recorded(path: &str, name: &str) -> Error {
    Error::new(
        ErrorCode::ValidationFailed,
        format!(
            "Migration {name} is already recorded in the migration history at {path}; \
             it was executed by another run (is another process migrating this database without the lock?)"
        ),
    )
}

/// The current OS user name (for `username`).
pub fn current_username() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Build an object of records keyed like the predecessor (used by tests and tools).
pub fn records_to_object(records: &[HistoryRecord]) -> Value {
    let mut m = Map::new();
    for r in records {
        m.insert(
            if r.key.is_empty() {
                record_key(r.timestamp)
            } else {
                r.key.clone()
            },
            r.to_value(),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_predecessor_push_id_records() {
        let node = json!({
            "-NxAbc123": {"name": "V202501010002_b.ts", "filepath": "/m/V202501010002_b.ts", "timestamp": 202501010002u64,
                          "startedAt": 1000, "finishedAt": 1500, "username": "ci", "result": "ok", "checksum": "ab"},
            "-NxAbc000": {"name": "V202501010001_a.ts", "filepath": "/m/V202501010001_a.ts", "timestamp": 202501010001u64,
                          "startedAt": 900, "finishedAt": 950, "username": "ci", "result": "ok"},
            "v202501010003": {"name": "V202501010003_c.js", "timestamp": 202501010003u64, "executorId": "h-1-u", "lockEpoch": 4},
            "garbage": 17,
            "weird": {"name": "x"},
        });
        let (recs, warns) = parse_node("schema_version", &node);
        assert_eq!(
            recs.iter().map(|r| r.timestamp).collect::<Vec<_>>(),
            vec![202501010001, 202501010002, 202501010003]
        );
        assert_eq!(recs[0].key, "-NxAbc000");
        assert_eq!(recs[0].duration, Some(50));
        assert_eq!(recs[1].result, Some(json!("ok")));
        assert_eq!(recs[2].lock_epoch, Some(4));
        assert_eq!(warns.len(), 2, "{warns:?}");
        assert!(warns.iter().any(|w| w.contains("schema_version/garbage")));
    }

    #[test]
    fn record_value_omits_undefined_result() {
        let r = HistoryRecord {
            name: "V1_a.js".into(),
            timestamp: 202501010001,
            ..Default::default()
        };
        let v = r.to_value();
        assert!(v.get("result").is_none());
        assert!(v.get("key").is_none());
        assert_eq!(v["timestamp"], json!(202501010001u64));
    }

    #[test]
    fn keys() {
        assert_eq!(record_key(202501010001), "v202501010001");
        assert_eq!(
            duplicate_key(202501010001, "V202501010001_a.b.js"),
            "v202501010001_V202501010001_a_b_js"
        );
    }
}
