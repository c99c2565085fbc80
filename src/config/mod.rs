//! Configuration: defaults, layering (defaults < file < `MSR_*` env < flags), validation with
//! messages that name the field and the accepted values, and `buildPath`.
//!
//! Every layer is a partial JSON object in the shape of `FirebaseConfig` (camelCase). Layers are
//! deep-merged onto the defaults, then checked field by field against `SCHEMA` before they are
//! turned into a typed `Config`, so a bad value never reaches the database.

pub mod arguments;
pub mod choices;
pub mod databases;
pub mod file;
mod layer;
mod schema;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::lock::{LockOptions, LockService};
use crate::rtdb::Client;
use crate::{Error, Result};

pub use choices::{
    BackupMode, ChecksumAlgorithm, DuplicateTimestampMode, LogFormat, LogLevel, RollbackStrategy,
    UnindexedQueries,
};
pub use databases::{DatabaseEntry, Member};
pub use layer::{deep_merge, layer_from_pairs};
pub use schema::{env_layer, env_name, kind_of, Kind, SCHEMA};

/// Default file patterns: `V<12 digits>_<name>.js|cjs|mjs|ts`; group 1 is the version.
pub const DEFAULT_FILE_PATTERNS: [&str; 1] = [r"^V(\d{12})_.*\.(js|cjs|mjs|ts)$"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    pub folder: String,
    pub table_name: String,
    pub shift: Option<String>,
    pub database_url: Option<String>,
    /// Many databases in one run (see `databases`): each `{ name, databaseUrl, shift?,
    /// credentials? }`, the rest of the config shared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseEntry>,
    /// The plain form of `databases`: URLs only, names taken from them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub database_urls: Vec<String>,
    /// How many databases of a set run at a time.
    pub concurrency: u64,
    /// After one database of a set fails, start no other and stop the running ones after
    /// their current migration.
    pub fail_fast: bool,
    pub application_credentials: Option<String>,
    /// firebase-admin's `databaseAuthVariableOverride` (REST `auth_variable_override`): unset =
    /// full admin access; an object = act as that `auth` under Security Rules; `null` = act as
    /// an unauthenticated client.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub database_auth_variable_override: Option<Value>,
    pub file_patterns: Vec<String>,
    pub before_migrate_name: Option<String>,
    pub recursive: bool,
    pub dry_run: bool,
    pub log_level: LogLevel,
    /// `text` (default) or `json`: one JSON object per log line.
    pub log_format: LogFormat,
    pub rollback_strategy: RollbackStrategy,
    pub backup_mode: BackupMode,
    pub backup: BackupConfig,
    pub validate_before_run: bool,
    pub validate_migrated_files: bool,
    pub validate_migrated_files_location: bool,
    pub checksum_algorithm: ChecksumAlgorithm,
    pub duplicate_timestamp_mode: DuplicateTimestampMode,
    pub display_limit: u64,
    /// Longest time one script's `up`/`down` may run, in ms (unset: no limit).
    pub script_timeout: Option<u64>,
    pub locking: LockingConfig,
    pub network: NetworkConfig,
    pub queries: QueriesConfig,
    pub writes: WritesConfig,
}

/// How the scripts' `db` answers queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueriesConfig {
    /// A query refused for want of an index: answered on the client (`fallback`, the default,
    /// as firebase-admin does) or failed naming the `.indexOn` to add (`error`).
    pub unindexed: UnindexedQueries,
}

/// How the runner writes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WritesConfig {
    /// Every write of a run (the scripts' `db`, `bulkWriter`, the lock and the history) sends
    /// `disableTriggers=true`: the database fires no Cloud Functions triggers for them.
    pub disable_triggers: bool,
}

/// Deadlines of requests to the database, in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkConfig {
    /// Longest wait for a connection to be established.
    pub connect_timeout: u64,
    /// Longest wait for the server to answer (and for each further piece of a response).
    pub response_timeout: u64,
    /// How long a failing request is retried before its error is reported.
    pub retry_window: u64,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            connect_timeout: crate::rtdb::client::DEFAULT_CONNECT_TIMEOUT.as_millis() as u64,
            response_timeout: crate::rtdb::client::DEFAULT_RESPONSE_TIMEOUT.as_millis() as u64,
            retry_window: crate::rtdb::retry::DEFAULT_WINDOW.as_millis() as u64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BackupConfig {
    pub folder: String,
    pub prefix: String,
    pub suffix: String,
    pub extension: String,
    pub existing_backup_path: Option<String>,
    /// Restores (`backup restore`, a rollback's) fire Cloud Functions triggers; by default they
    /// send `disableTriggers=true`, so restored data does not look like new writes to functions.
    pub restore_triggers: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockingConfig {
    pub enabled: bool,
    /// Lease length in ms.
    pub timeout: u64,
    /// Predecessor's retries (library `migrate()` default: 0 = fail fast).
    pub retry_attempts: u64,
    pub retry_delay: u64,
    /// How long a waiting contender waits for the lock, in ms (CLI `migrate` waits by default;
    /// unset = until the holder finishes or its lease expires and is taken over).
    pub wait_timeout: Option<u64>,
    /// Renewal period in ms (default timeout / 3).
    pub renew_interval: Option<u64>,
    /// Fixed executor id (default `hostname-pid-uuid`).
    pub executor_id: Option<String>,
    /// While waiting for a held lock, report "still waiting" this often, in ms.
    pub wait_log_interval: u64,
    /// The scripts' writes carry the holder's lock epoch in the auth override
    /// (`auth.msrLockEpoch`), so rules can refuse a write from an earlier epoch
    /// (`msr-firebase rules:fencing` prints them).
    pub server_fencing: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            folder: "./backups".into(),
            prefix: "backup".into(),
            suffix: String::new(),
            extension: "json".into(),
            existing_backup_path: None,
            restore_triggers: false,
        }
    }
}

impl Default for LockingConfig {
    fn default() -> Self {
        LockingConfig {
            enabled: false,
            timeout: 600_000,
            retry_attempts: 0,
            retry_delay: 1000,
            wait_timeout: None,
            renew_interval: None,
            executor_id: None,
            wait_log_interval: 30_000,
            server_fencing: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            folder: "./migrations".into(),
            table_name: "schema_version".into(),
            shift: None,
            database_url: None,
            databases: Vec::new(),
            database_urls: Vec::new(),
            concurrency: 4,
            fail_fast: false,
            application_credentials: None,
            database_auth_variable_override: None,
            file_patterns: DEFAULT_FILE_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            before_migrate_name: Some("beforeMigrate".into()),
            recursive: true,
            dry_run: false,
            log_level: LogLevel::default(),
            log_format: LogFormat::default(),
            rollback_strategy: RollbackStrategy::default(),
            backup_mode: BackupMode::default(),
            backup: BackupConfig::default(),
            validate_before_run: true,
            validate_migrated_files: false,
            validate_migrated_files_location: true,
            checksum_algorithm: ChecksumAlgorithm::default(),
            duplicate_timestamp_mode: DuplicateTimestampMode::default(),
            display_limit: 0,
            script_timeout: None,
            locking: LockingConfig::default(),
            network: NetworkConfig::default(),
            queries: QueriesConfig::default(),
            writes: WritesConfig::default(),
        }
    }
}

/// A field that is present, `null` included (`null` is a value here, not "unset").
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Read an env var, treating empty as unset.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Defaults plus the environment-derived ones: `databaseUrl` from `FIREBASE_DATABASE_URL`,
    /// else `DATABASE_URL`; `applicationCredentials` from `GOOGLE_APPLICATION_CREDENTIALS`.
    pub fn from_env_defaults() -> Config {
        Config {
            database_url: env_var("FIREBASE_DATABASE_URL").or_else(|| env_var("DATABASE_URL")),
            application_credentials: env_var("GOOGLE_APPLICATION_CREDENTIALS"),
            ..Config::default()
        }
    }

    /// Defaults (with env-derived fields) as the JSON object `new FirebaseConfig()` shows.
    pub fn defaults_value() -> Value {
        serde_json::to_value(Config::from_env_defaults()).expect("config serialises")
    }

    /// Build a config from layers (lowest precedence first) merged onto the env defaults.
    /// `sources` name each layer for error messages (e.g. the config file's path).
    pub fn from_layers(layers: &[(&str, Value)]) -> Result<Config> {
        Config::merge_layers(layers).map_err(|e| {
            // A value that passes its own check but not with the rest (an empty folder, a
            // contradiction): name the first layer that brings the problem in.
            let culprit = (1..layers.len())
                .find(|&n| Config::merge_layers(&layers[..n]).is_err())
                .unwrap_or(layers.len());
            match (
                e.message.strip_prefix("Invalid configuration: "),
                layers.get(culprit - 1),
            ) {
                (Some(rest), Some((source, _))) if culprit > 0 => {
                    Error::new(e.code, format!("Invalid configuration in {source}: {rest}"))
                }
                _ => e,
            }
        })
    }

    fn merge_layers(layers: &[(&str, Value)]) -> Result<Config> {
        let mut merged = Config::defaults_value();
        // What the layers set (without the defaults), for the contradictions between them.
        let mut given = Value::Object(Default::default());
        for (source, layer) in layers {
            match layer {
                Value::Null => {}
                Value::Object(_) => {
                    let mut layer = layer.clone();
                    schema::normalize_enums(&mut layer);
                    schema::check_layer(&layer)
                        .map_err(|e| e.context(format!("Invalid configuration in {source}")))?;
                    deep_merge(&mut given, &layer);
                    deep_merge(&mut merged, &layer);
                }
                other => {
                    return Err(Error::config(format!(
                        "Invalid configuration in {source}: expected an object of settings, got {}",
                        schema::type_name(other)
                    )))
                }
            }
        }
        databases::check_contradiction(&given)?;
        Config::from_value(&merged)
    }

    /// A complete or partial config object (e.g. a `FirebaseConfig` from JS), validated.
    pub fn from_value(value: &Value) -> Result<Config> {
        let mut merged = Config::defaults_value();
        let mut layer = value.clone();
        schema::normalize_enums(&mut layer);
        schema::check_layer(&layer).map_err(|e| e.context("Invalid configuration"))?;
        databases::check_contradiction(&layer)?;
        deep_merge(&mut merged, &layer);
        let cfg: Config = serde_json::from_value(merged)
            .map_err(|e| Error::config(format!("Invalid configuration: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("config serialises")
    }

    /// Cross-field and semantic checks (types and enums are checked by the schema).
    pub fn validate(&self) -> Result<()> {
        self.check_not_everything()?;
        self.check_databases()?;
        for (i, p) in self.file_patterns.iter().enumerate() {
            file_pattern(p).map_err(|why| {
                Error::config(format!(
                    "Invalid configuration: filePatterns[{i}] {why}; the default is {}",
                    DEFAULT_FILE_PATTERNS[0]
                ))
            })?;
        }
        if self.file_patterns.is_empty() {
            return Err(Error::config(
                "Invalid configuration: filePatterns must contain at least one pattern",
            ));
        }
        if self.rollback_strategy.restores_backup() && !self.backup_mode.restores() {
            return Err(Error::config(format!(
                "Invalid configuration: rollbackStrategy '{}' restores a backup after a failure, but backupMode '{}' {}, \
                 so a failed migration's changes would stay while the rollback claims success. Set rollbackStrategy to \
                 'down' (run the scripts' down()) or 'none', or backupMode to 'full' (the default rollbackStrategy is 'backup')",
                self.rollback_strategy,
                self.backup_mode,
                if self.backup_mode == BackupMode::Manual {
                    "takes no backup"
                } else {
                    "never restores one"
                }
            )));
        }
        if self.locking.server_fencing && !self.locking.enabled {
            return Err(Error::config(
                "Invalid configuration: locking.serverFencing needs locking.enabled: the epoch the scripts' writes carry \
                 is the lock's. Turn locking on, or serverFencing off",
            ));
        }
        if self.locking.server_fencing && self.database_auth_variable_override == Some(Value::Null)
        {
            return Err(Error::config(
                "Invalid configuration: locking.serverFencing adds the lock epoch to the scripts' identity, but \
                 databaseAuthVariableOverride is null (unauthenticated, which has no claims to add it to). Give the \
                 override an identity (e.g. {\"uid\": \"migrator\"}) or leave it unset (the scripts then write as \
                 {\"msrLockEpoch\": <epoch>})",
            ));
        }
        if self.locking.wait_log_interval < 100 {
            return Err(Error::config(format!(
                "Invalid configuration: locking.waitLogInterval must be at least 100 ms (got {}); the default is 30000",
                self.locking.wait_log_interval
            )));
        }
        let table = crate::rtdb::path::segments(&self.table_name).map_err(|e| {
            Error::config(format!("Invalid configuration: tableName: {}", e.message))
        })?;
        // The lock lives at `{shift}/migrations/_lock`: a history node there (or above it) would
        // hold the lock record, and a restore or `down` would rewrite the lock.
        let lock: Vec<String> = crate::rtdb::path::segments(crate::lock::LOCK_NODE)?;
        if table[..] == lock[..1] || table.starts_with(&lock) {
            return Err(Error::config(format!(
                "Invalid configuration: tableName '{}' collides with the migration lock at {{shift}}/{}: the history must not share the lock's node; \
                 choose another name (the default is 'schema_version')",
                self.table_name,
                crate::lock::LOCK_NODE
            )));
        }
        if let Some(shift) = &self.shift {
            crate::rtdb::path::segments(shift).map_err(|e| {
                Error::config(format!("Invalid configuration: shift: {}", e.message))
            })?;
        }
        if self.locking.timeout < 1000 {
            return Err(Error::config(format!(
                "Invalid configuration: locking.timeout must be at least 1000 ms (got {}); the default is 600000 (10 minutes)",
                self.locking.timeout
            )));
        }
        for (field, ms) in [
            ("network.connectTimeout", self.network.connect_timeout),
            ("network.responseTimeout", self.network.response_timeout),
        ] {
            if ms < 100 {
                return Err(Error::config(format!(
                    "Invalid configuration: {field} must be at least 100 ms (got {ms})"
                )));
            }
        }
        if self.script_timeout == Some(0) {
            return Err(Error::config(
                "Invalid configuration: scriptTimeout must be at least 1 ms (leave it unset for no limit)",
            ));
        }
        if let Some(r) = self.locking.renew_interval {
            if r == 0 || r >= self.locking.timeout {
                return Err(Error::config(format!(
                    "Invalid configuration: locking.renewInterval must be between 1 and locking.timeout - 1 ms (got {r})"
                )));
            }
        }
        if self.backup_mode == BackupMode::RestoreOnly
            && self.backup.existing_backup_path.is_none()
            && self.rollback_strategy != RollbackStrategy::None
        {
            return Err(Error::config(
                "Invalid configuration: backupMode 'restore_only' requires backup.existingBackupPath (the backup file to restore on failure)",
            ));
        }
        Ok(())
    }

    /// Strings that, empty, would widen what the runner touches (the working directory as the
    /// migrations folder, the database root as the shift) or silently fall back to something
    /// else (the environment's database URL or credentials): refused, naming the default.
    fn check_not_everything(&self) -> Result<()> {
        let blank = |s: &str| s.trim().is_empty();
        let refuse = |field: &str, why: &str| {
            Err(Error::config(format!(
                "Invalid configuration: {field} is empty; {why}"
            )))
        };
        if blank(&self.folder) {
            return refuse(
                "folder",
                "an empty folder would be the working directory, scanned with everything under it. \
                 Name the migrations folder (the default is './migrations'), or check the variable that should have set it",
            );
        }
        if let Some(shift) = &self.shift {
            if shift.trim().trim_matches('/').trim().is_empty() {
                return Err(Error::config(format!(
                    "Invalid configuration: shift {shift:?} would put the migrations at the database root. \
                     Leave shift unset for the root (the default), or give a path such as 'production'"
                )));
            }
        }
        if self.database_url.as_deref().is_some_and(blank) {
            return refuse(
                "databaseUrl",
                "give the database URL (https://<db>.firebaseio.com), or leave it unset to use FIREBASE_DATABASE_URL \
                 (or FIREBASE_DATABASE_EMULATOR_HOST for an emulator)",
            );
        }
        if self.application_credentials.as_deref().is_some_and(blank) {
            return refuse(
                "applicationCredentials",
                "give the path of a credentials file, or leave it unset to use GOOGLE_APPLICATION_CREDENTIALS and the rest of the credentials chain",
            );
        }
        if blank(&self.table_name) {
            return refuse(
                "tableName",
                "name the node that holds the migration history (the default is 'schema_version')",
            );
        }
        for (field, part) in [
            ("backup.prefix", &self.backup.prefix),
            ("backup.suffix", &self.backup.suffix),
            ("backup.extension", &self.backup.extension),
        ] {
            if part.contains(['/', '\\']) || part.contains("..") {
                return Err(Error::config(format!(
                    "Invalid configuration: {field} {part:?} is part of a backup file's name and must not contain '/', '\\' or '..' \
                     (backups are written to backup.folder)"
                )));
            }
        }
        if blank(&self.backup.folder) {
            return refuse(
                "backup.folder",
                "an empty folder would be the working directory; name the backup folder (the default is './backups')",
            );
        }
        if self
            .backup
            .existing_backup_path
            .as_deref()
            .is_some_and(blank)
        {
            return refuse(
                "backup.existingBackupPath",
                "give the backup file to restore on failure, or leave it unset",
            );
        }
        if self.locking.executor_id.as_deref().is_some_and(blank) {
            return refuse(
                "locking.executorId",
                "an empty executor id would make every process the same lock holder; leave it unset for <host>-<pid>-<uuid>",
            );
        }
        Ok(())
    }

    /// The shift as a normalised path (`None` for the root).
    pub fn shift_path(&self) -> Option<String> {
        self.shift
            .as_deref()
            .map(|s| s.trim_matches('/').to_string())
            .filter(|s| !s.is_empty())
    }

    /// `buildPath(p)`: `p` under the shift; with no shift, `p` itself (never `undefined/...`).
    pub fn build_path(&self, p: &str) -> String {
        build_path(self.shift.as_deref(), p)
    }

    /// The history node: `{shift}/{tableName}`.
    pub fn history_path(&self) -> String {
        crate::rtdb::path::join(self.shift_path().as_deref().unwrap_or(""), &self.table_name)
    }

    /// Resolve a possibly relative path against `cwd`.
    pub fn resolve(cwd: &Path, p: &str) -> PathBuf {
        let path = Path::new(p);
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            cwd.join(path)
        };
        // Drop `.` components so stored file paths read `/app/migrations/V..`, not `/app/./migrations/V..`.
        joined
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect()
    }

    pub fn folder_path(&self, cwd: &Path) -> PathBuf {
        Config::resolve(cwd, &self.folder)
    }

    pub fn backup_folder_path(&self, cwd: &Path) -> PathBuf {
        Config::resolve(cwd, &self.backup.folder)
    }

    /// The lock service for this config's shift and lock options on `client`.
    pub fn lock_service(&self, client: &Client) -> LockService {
        LockService::new(
            client.clone(),
            self.shift_path().as_deref(),
            self.lock_options(),
        )
    }

    pub fn lock_options(&self) -> LockOptions {
        LockOptions {
            timeout_ms: self.locking.timeout,
            retry_attempts: self.locking.retry_attempts.min(u32::MAX as u64) as u32,
            retry_delay_ms: self.locking.retry_delay,
            renew_interval: self
                .locking
                .renew_interval
                .map(std::time::Duration::from_millis),
            wait_timeout: self
                .locking
                .wait_timeout
                .map(std::time::Duration::from_millis),
            wait_log_interval: std::time::Duration::from_millis(self.locking.wait_log_interval),
        }
    }
}

/// Why a `filePatterns` entry cannot find migrations (`Err`), or its compiled form: it must be
/// a valid regular expression with a capturing group 1 (the version).
pub fn file_pattern(p: &str) -> std::result::Result<regex::Regex, String> {
    let re = regex::Regex::new(p).map_err(|e| {
        // The parser's error spans lines (the pattern, a caret); its last line says why.
        let text = e.to_string();
        let why = text.lines().last().unwrap_or_default().trim();
        format!(
            "({p:?}) is not a valid regular expression: {}",
            why.strip_prefix("error: ").unwrap_or(why)
        )
    })?;
    if re.captures_len() < 2 {
        return Err(format!(
            "({p:?}) has no capturing group: group 1 must capture the version, e.g. ^V(\\d{{12}})_.*\\.js$"
        ));
    }
    Ok(re)
}

/// `buildPath` on its own, for JS (`FirebaseConfig.buildPath`).
pub fn build_path(shift: Option<&str>, p: &str) -> String {
    match shift.filter(|s| !s.is_empty()) {
        Some(shift) => format!(
            "{}/{}",
            shift.trim_end_matches('/'),
            p.trim_start_matches('/')
        ),
        None => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_the_guide() {
        let c = Config::default();
        assert!(!c.locking.enabled);
        assert_eq!(c.locking.timeout, 600_000);
        assert_eq!(c.table_name, "schema_version");
        assert_eq!(c.folder, "./migrations");
        assert_eq!(c.shift, None);
    }

    #[test]
    fn plain_object_locking_keeps_other_defaults() {
        let c =
            Config::from_value(&json!({"locking": {"enabled": true, "timeout": 5000}})).unwrap();
        assert!(c.locking.enabled);
        assert_eq!(c.locking.timeout, 5000);
        assert_eq!(c.locking.retry_attempts, 0);
        assert_eq!(c.locking.retry_delay, 1000);
    }

    #[test]
    fn server_fencing_needs_the_lock_and_an_identity() {
        let ok = json!({"locking": {"enabled": true, "serverFencing": true}, "databaseAuthVariableOverride": {"uid": "m"}});
        assert!(Config::from_value(&ok).unwrap().locking.server_fencing);
        let e = Config::from_value(&json!({"locking": {"serverFencing": true}})).unwrap_err();
        assert!(e.message.contains("locking.enabled"), "{}", e.message);
        let e = Config::from_value(
            &json!({"locking": {"enabled": true, "serverFencing": true}, "databaseAuthVariableOverride": null}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("databaseAuthVariableOverride is null"),
            "{}",
            e.message
        );
    }

    #[test]
    fn auth_override_is_unset_an_object_or_null() {
        assert_eq!(Config::default().database_auth_variable_override, None);
        assert!(Config::defaults_value()
            .get("databaseAuthVariableOverride")
            .is_none());
        let c = Config::from_value(&json!({"databaseAuthVariableOverride": {"uid": "migrator"}}))
            .unwrap();
        assert_eq!(
            c.database_auth_variable_override,
            Some(json!({"uid": "migrator"}))
        );
        let c = Config::from_value(&json!({"databaseAuthVariableOverride": null})).unwrap();
        assert_eq!(c.database_auth_variable_override, Some(Value::Null));
        let e =
            Config::from_value(&json!({"databaseAuthVariableOverride": "migrator"})).unwrap_err();
        assert!(
            e.message.contains("databaseAuthVariableOverride") && e.message.contains("uid"),
            "{}",
            e.message
        );
        // A later layer replaces the override whole.
        let c = Config::from_layers(&[
            (
                "file",
                json!({"databaseAuthVariableOverride": {"uid": "a", "admin": true}}),
            ),
            ("env", json!({"databaseAuthVariableOverride": {"uid": "b"}})),
        ])
        .unwrap();
        assert_eq!(c.database_auth_variable_override, Some(json!({"uid": "b"})));
        let env = env_layer([(
            "MSR_DATABASE_AUTH_VARIABLE_OVERRIDE".to_string(),
            r#"{"uid":"ci"}"#.to_string(),
        )])
        .unwrap();
        assert_eq!(env, json!({"databaseAuthVariableOverride": {"uid": "ci"}}));
        assert!(env_layer([(
            "MSR_DATABASE_AUTH_VARIABLE_OVERRIDE".to_string(),
            "ci".to_string()
        )])
        .is_err());
    }

    #[test]
    fn build_path_never_says_undefined() {
        assert_eq!(build_path(None, "users"), "users");
        assert_eq!(build_path(Some("/test-123"), "users"), "/test-123/users");
        assert_eq!(build_path(Some("prod/"), "/users"), "prod/users");
        let c = Config {
            shift: Some("prod".into()),
            ..Config::default()
        };
        assert_eq!(c.history_path(), "prod/schema_version");
        assert_eq!(Config::default().history_path(), "schema_version");
    }

    #[test]
    fn bad_values_name_the_field_and_accepted_values() {
        let e = Config::from_value(&json!({"locking": {"timeout": -5}})).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::ConfigInvalid);
        assert!(e.message.contains("locking.timeout"), "{}", e.message);
        let e = Config::from_value(&json!({"rollbackStrategy": "sometimes"})).unwrap_err();
        assert!(
            e.message.contains("rollbackStrategy")
                && e.message.contains("backup, down, both, none"),
            "{}",
            e.message
        );
        let e = Config::from_value(&json!({"tableName": "schema.version"})).unwrap_err();
        assert!(e.message.contains("tableName"), "{}", e.message);
        let e = Config::from_value(&json!({"locking": {"enabled": "yes"}})).unwrap_err();
        assert!(
            e.message.contains("locking.enabled") && e.message.contains("boolean"),
            "{}",
            e.message
        );
    }

    #[test]
    fn empty_strings_that_would_mean_everything_are_refused() {
        for (v, field) in [
            (json!({"folder": ""}), "folder is empty"),
            (json!({"folder": "  "}), "folder is empty"),
            (json!({"shift": ""}), "database root"),
            (json!({"shift": "/"}), "database root"),
            (json!({"databaseUrl": ""}), "databaseUrl is empty"),
            (
                json!({"applicationCredentials": ""}),
                "applicationCredentials is empty",
            ),
            (json!({"backup": {"folder": ""}}), "backup.folder is empty"),
            (
                json!({"locking": {"executorId": ""}}),
                "locking.executorId is empty",
            ),
        ] {
            let e = Config::from_value(&v).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::ConfigInvalid);
            assert!(e.message.contains(field), "{v}: {}", e.message);
        }
        Config::from_value(&json!({"shift": "prod", "folder": "."})).unwrap();
    }

    #[test]
    fn contradictions_and_patterns_that_cannot_work_are_refused() {
        for (mode, strategy) in [("manual", "backup"), ("create_only", "both")] {
            let e = Config::from_value(&json!({"backupMode": mode, "rollbackStrategy": strategy}))
                .unwrap_err();
            assert!(
                e.message.contains(mode) && e.message.contains("'down'"),
                "{}",
                e.message
            );
        }
        // backupMode manual alone: the default strategy is backup.
        assert!(Config::from_value(&json!({"backupMode": "manual"})).is_err());
        Config::from_value(&json!({"backupMode": "manual", "rollbackStrategy": "down"})).unwrap();
        let e = Config::from_value(&json!({"filePatterns": [r"^V\d{12}_.*\.js$"]})).unwrap_err();
        assert!(e.message.contains("no capturing group"), "{}", e.message);
        let e = Config::from_value(&json!({"applicationCredentials": {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----\n"}}))
            .unwrap_err();
        assert!(
            e.message.contains("not its content") && !e.message.contains("SECRET"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_value_refused_with_the_rest_names_the_layer_that_brought_it() {
        let e = Config::from_layers(&[
            (
                "config file /app/msr.config.js",
                json!({"backupMode": "manual"}),
            ),
            (
                "environment (MSR_* variables)",
                json!({"rollbackStrategy": "backup"}),
            ),
            ("command-line flags", json!({"folder": "./m"})),
        ])
        .unwrap_err();
        assert!(
            e.message.starts_with(
                "Invalid configuration in config file /app/msr.config.js: rollbackStrategy"
            ),
            "{}",
            e.message
        );
        let e = Config::from_layers(&[
            ("config file /app/msr.config.js", json!({})),
            ("command-line flags", json!({"folder": ""})),
        ])
        .unwrap_err();
        assert!(
            e.message
                .starts_with("Invalid configuration in command-line flags: folder is empty"),
            "{}",
            e.message
        );
    }

    #[test]
    fn layers_apply_in_order() {
        let file = json!({"folder": "./from-file", "tableName": "file_table", "locking": {"enabled": true}});
        let env = json!({"tableName": "env_table"});
        let flags = json!({"folder": "./from-flag"});
        let c = Config::from_layers(&[
            ("msr.config.js", file),
            ("environment", env),
            ("flags", flags),
        ])
        .unwrap();
        assert_eq!(c.folder, "./from-flag");
        assert_eq!(c.table_name, "env_table");
        assert!(c.locking.enabled);
    }

    #[test]
    fn layer_errors_name_their_source() {
        let e = Config::from_layers(&[(
            "/app/msr.config.js",
            json!({"locking": {"timeout": "soon"}}),
        )])
        .unwrap_err();
        assert!(
            e.message.contains("/app/msr.config.js") && e.message.contains("locking.timeout"),
            "{}",
            e.message
        );
    }

    #[test]
    fn unknown_keys_at_any_level_are_rejected_with_a_hint() {
        let msg = |v: Value| Config::from_value(&v).unwrap_err();
        let e = msg(json!({"lockng": {"enabled": true}}));
        assert_eq!(e.code, crate::ErrorCode::ConfigInvalid);
        assert!(
            e.message.contains("unknown setting `lockng`")
                && e.message.contains("did you mean `locking`?"),
            "{}",
            e.message
        );
        let e = msg(json!({"locking": {"enabeld": true}}));
        assert!(
            e.message.contains("`locking.enabeld`")
                && e.message.contains("did you mean `locking.enabled`?"),
            "{}",
            e.message
        );
        let e = msg(json!({"enabled": true}));
        assert!(
            e.message.contains("did you mean `locking.enabled`?"),
            "{}",
            e.message
        );
        let e = msg(json!({"locking": {"colour": "red"}}));
        assert!(
            e.message.contains("`locking.colour`") && e.message.contains("enabled, timeout"),
            "{}",
            e.message
        );
        let e = msg(json!({"backup": {"foldr": "./b"}}));
        assert!(
            e.message.contains("did you mean `backup.folder`?"),
            "{}",
            e.message
        );
        // In layers, the source is named.
        let e =
            Config::from_layers(&[("config file /app/msr.config.js", json!({"tableNme": "x"}))])
                .unwrap_err();
        assert!(
            e.message.contains("/app/msr.config.js")
                && e.message.contains("did you mean `tableName`?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn the_predecessors_settings_still_load() {
        let c = Config::from_value(&json!({
            "transaction": {"mode": "NONE", "isolation": "READ COMMITTED"},
            "logging": {"enabled": false, "path": "./logs"},
            "showBanner": false, "strictValidation": false, "downMethodPolicy": "AUTO",
            "customValidators": [], "envFileSources": [".env"],
            "locking": {"enabled": true, "tableName": "migration_locks"},
            "backup": {"timestamp": true, "deleteBackup": true},
        }))
        .unwrap();
        assert!(c.locking.enabled);
    }

    #[test]
    fn env_json_objects_are_strict_too() {
        let e = crate::config::env_layer([(
            "MSR_LOCKING".to_string(),
            r#"{"enabeld": true}"#.to_string(),
        )])
        .unwrap_err();
        assert!(
            e.message.contains("MSR_LOCKING")
                && e.message.contains("did you mean `locking.enabled`?"),
            "{}",
            e.message
        );
    }

    #[test]
    fn table_name_must_not_share_the_lock_node() {
        for t in ["migrations", "migrations/_lock", "/migrations/_lock/x"] {
            let e = Config::from_value(&json!({"tableName": t})).unwrap_err();
            assert!(
                e.message.contains("tableName")
                    && e.message.contains("lock")
                    && e.message.contains("schema_version"),
                "{t}: {}",
                e.message
            );
        }
        for t in ["migrations_history", "migrations/history", "schema_version"] {
            Config::from_value(&json!({"tableName": t})).unwrap();
        }
    }

    #[test]
    fn numbers_too_large_name_the_field_and_the_limit() {
        let e = Config::from_value(&json!({"locking": {"timeout": 1e30}})).unwrap_err();
        assert!(
            e.message.contains("locking.timeout is too large")
                && e.message.contains("2147483647 ms"),
            "{}",
            e.message
        );
        let e = Config::from_value(&json!({"locking": {"retryAttempts": 5_000_000_000u64}}))
            .unwrap_err();
        assert!(
            e.message.contains("locking.retryAttempts is too large"),
            "{}",
            e.message
        );
        let e = Config::from_value(&json!({"displayLimit": 1e300})).unwrap_err();
        assert!(
            e.message.contains("displayLimit is too large"),
            "{}",
            e.message
        );
        // Whole numbers written as floats are fine.
        let c = Config::from_value(&json!({"locking": {"timeout": 5000.0}})).unwrap();
        assert_eq!(c.locking.timeout, 5000);
    }

    #[test]
    fn the_schema_lists_every_field_of_the_config() {
        fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
            if let Value::Object(m) = v {
                for (k, x) in m {
                    let dotted = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.push(dotted.clone());
                    if matches!(schema::kind_of(&dotted), Some(Kind::Object)) {
                        walk(&dotted, x, out);
                    }
                }
            }
        }
        let mut fields = Vec::new();
        walk("", &Config::defaults_value(), &mut fields);
        for f in &fields {
            assert!(
                schema::kind_of(f).is_some(),
                "{f} is a Config field missing from SCHEMA"
            );
        }
        // And the defaults pass their own check.
        Config::from_value(&Config::defaults_value()).unwrap();
    }
}
