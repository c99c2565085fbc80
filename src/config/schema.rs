//! The shape of the configuration: one table of known fields and their kinds (`SCHEMA`), the
//! single source for checking every layer (unknown keys at any level, types, ranges, with messages
//! naming the field and the fix) and for reading `MSR_*` environment variables.

use serde_json::{Map, Value};
use strum::VariantNames;

use super::choices::{
    BackupMode, ChecksumAlgorithm, DuplicateTimestampMode, LogFormat, LogLevel, RollbackStrategy,
    UnindexedQueries,
};
use super::layer::{deep_merge, layer_from_pairs};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    /// A whole non-negative number; the unit is part of the message and sets the largest value
    /// accepted (see [`max_for`]).
    UInt(&'static str),
    /// A whole non-negative number or null.
    OptUInt(&'static str),
    Str,
    /// A string or null.
    OptStr,
    /// One of these names of a `config::choices` enum (case-insensitive on input; stored
    /// lower-case).
    Enum(&'static [&'static str]),
    StrList,
    /// An object. When `SCHEMA` lists fields under it (`locking.enabled`, ...), those are its only
    /// keys; otherwise its content is free-form.
    Object,
    /// A JSON object or null, taken whole (not a group of settings).
    OptObject,
    /// `databases`: an array of `{ name, databaseUrl, shift?, credentials? }`.
    Databases,
    /// `databaseUrls`: an array of database URLs.
    UrlList,
    /// A setting of the TypeScript predecessor that has no effect here; accepted (whatever its
    /// value) so that its configuration files still load.
    Legacy,
}

/// Every known field (dotted path, kind). Anything else, at any level, is rejected: a misspelt
/// `locking` must never silently turn the lock off.
pub const SCHEMA: &[(&str, Kind)] = &[
    ("folder", Kind::Str),
    ("tableName", Kind::Str),
    ("shift", Kind::OptStr),
    ("databaseUrl", Kind::OptStr),
    ("databases", Kind::Databases),
    ("databaseUrls", Kind::UrlList),
    ("concurrency", Kind::UInt("databases")),
    ("failFast", Kind::Bool),
    ("applicationCredentials", Kind::OptStr),
    ("databaseAuthVariableOverride", Kind::OptObject),
    ("filePatterns", Kind::StrList),
    ("beforeMigrateName", Kind::OptStr),
    ("recursive", Kind::Bool),
    ("dryRun", Kind::Bool),
    ("logLevel", Kind::Enum(LogLevel::VARIANTS)),
    ("logFormat", Kind::Enum(LogFormat::VARIANTS)),
    ("rollbackStrategy", Kind::Enum(RollbackStrategy::VARIANTS)),
    ("backupMode", Kind::Enum(BackupMode::VARIANTS)),
    ("backup", Kind::Object),
    ("backup.folder", Kind::Str),
    ("backup.prefix", Kind::Str),
    ("backup.suffix", Kind::Str),
    ("backup.extension", Kind::Str),
    ("backup.existingBackupPath", Kind::OptStr),
    ("backup.restoreTriggers", Kind::Bool),
    ("backup.timestamp", Kind::Legacy),
    ("backup.deleteBackup", Kind::Legacy),
    ("backup.custom", Kind::Legacy),
    ("backup.timestampFormat", Kind::Legacy),
    ("validateBeforeRun", Kind::Bool),
    ("validateMigratedFiles", Kind::Bool),
    ("validateMigratedFilesLocation", Kind::Bool),
    ("checksumAlgorithm", Kind::Enum(ChecksumAlgorithm::VARIANTS)),
    (
        "duplicateTimestampMode",
        Kind::Enum(DuplicateTimestampMode::VARIANTS),
    ),
    ("displayLimit", Kind::UInt("rows")),
    ("scriptTimeout", Kind::OptUInt("ms")),
    ("locking", Kind::Object),
    ("locking.enabled", Kind::Bool),
    ("locking.timeout", Kind::UInt("ms")),
    ("locking.retryAttempts", Kind::UInt("attempts")),
    ("locking.retryDelay", Kind::UInt("ms")),
    ("locking.waitTimeout", Kind::OptUInt("ms")),
    ("locking.renewInterval", Kind::OptUInt("ms")),
    ("locking.executorId", Kind::OptStr),
    ("locking.waitLogInterval", Kind::UInt("ms")),
    ("locking.serverFencing", Kind::Bool),
    ("locking.tableName", Kind::Legacy),
    ("queries", Kind::Object),
    ("queries.unindexed", Kind::Enum(UnindexedQueries::VARIANTS)),
    ("network", Kind::Object),
    ("network.connectTimeout", Kind::UInt("ms")),
    ("network.responseTimeout", Kind::UInt("ms")),
    ("network.retryWindow", Kind::UInt("ms")),
    ("writes", Kind::Object),
    ("writes.disableTriggers", Kind::Bool),
    // The predecessor's settings for features this runner does not have.
    ("transaction", Kind::Legacy),
    ("logging", Kind::Legacy),
    ("showBanner", Kind::Legacy),
    ("strictValidation", Kind::Legacy),
    ("downMethodPolicy", Kind::Legacy),
    ("customValidators", Kind::Legacy),
    ("envFileSources", Kind::Legacy),
];

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(root, |node, key| node.get(key))
}

/// The kind of a known field.
pub fn kind_of(dotted: &str) -> Option<Kind> {
    SCHEMA.iter().find(|(f, _)| *f == dotted).map(|(_, k)| *k)
}

/// The known fields directly under `parent` (`""` = the top level), as their last segment.
fn children(parent: &str) -> impl Iterator<Item = &'static str> + '_ {
    SCHEMA.iter().filter_map(move |(f, _)| {
        let rest = if parent.is_empty() {
            Some(*f)
        } else {
            f.strip_prefix(parent).and_then(|r| r.strip_prefix('.'))
        };
        rest.filter(|r| !r.contains('.'))
    })
}

/// The largest value a whole-number field takes, by unit: durations in ms up to 2^31 - 1 (about
/// 24.9 days, what Node timers take), counts up to 2^32 - 1, anything else up to 2^53 - 1 (the
/// largest integer a JS number holds exactly).
pub fn max_for(unit: &str) -> u64 {
    match unit {
        "ms" => (1 << 31) - 1,
        "attempts" => u32::MAX as u64,
        _ => (1 << 53) - 1,
    }
}

fn describe_max(unit: &str, max: u64) -> String {
    match unit {
        "ms" => format!("{max} ms (about {:.1} days)", max as f64 / 86_400_000.0),
        _ => format!("{max} {unit}"),
    }
}

/// A value as messages show it: scalars as they are, objects by their keys (never their
/// values: a credentials object pasted in the wrong place must not be echoed), arrays by length.
pub fn shown(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "an empty object".into(),
        Value::Object(m) => format!(
            "an object with keys {}",
            m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
        ),
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        other => format!("{}: {other}", type_name(other)),
    }
}

pub(super) fn check_field(field: &str, kind: Kind, v: &Value) -> Result<()> {
    if field.ends_with("applicationCredentials") && crate::redact::is_credentials(v) {
        return Err(Error::config(format!(
            "{field} must be the path of a credentials file (a string), not its content (got {}): \
             write applicationCredentials: './service-account.json' instead of require('./service-account.json'), \
             or set GOOGLE_APPLICATION_CREDENTIALS",
            shown(v)
        )));
    }
    let bad = |expected: String| {
        Err(Error::config(format!(
            "{field} must be {expected} (got {})",
            shown(v)
        )))
    };
    let uint = |v: &Value| {
        v.as_u64().is_some() || v.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0)
    };
    let too_large = |unit: &str| {
        let max = max_for(unit);
        let over = v
            .as_u64()
            .map_or_else(|| v.as_f64().is_some_and(|f| f > max as f64), |n| n > max);
        if over {
            Err(Error::config(format!(
                "{field} is too large: at most {} (got {v})",
                describe_max(unit, max)
            )))
        } else {
            Ok(())
        }
    };
    match kind {
        Kind::Bool if !v.is_boolean() => bad("true or false (a boolean)".into()),
        Kind::UInt(unit) if !uint(v) => bad(format!("a whole number of {unit}, 0 or more")),
        Kind::OptUInt(unit) if !(v.is_null() || uint(v)) => {
            bad(format!("a whole number of {unit}, 0 or more, or null"))
        }
        Kind::UInt(unit) | Kind::OptUInt(unit) => too_large(unit),
        Kind::Str if !v.is_string() => bad("a string".into()),
        Kind::OptStr if !(v.is_string() || v.is_null()) => bad("a string or null".into()),
        Kind::StrList if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
            bad("an array of regular expressions (strings or RegExp)".into())
        }
        Kind::Object if !v.is_object() => bad("an object".into()),
        Kind::OptObject if !(v.is_object() || v.is_null()) => {
            bad("an object such as { uid: 'migrator' }, or null".into())
        }
        Kind::Databases => super::databases::check_entries(field, v),
        Kind::UrlList => super::databases::check_urls(field, v),
        Kind::Enum(allowed) => match v.as_str() {
            Some(s) if allowed.contains(&s.to_ascii_lowercase().as_str()) => Ok(()),
            _ => Err(Error::config(format!(
                "{field} must be one of: {} (got {v})",
                allowed.join(", ")
            ))),
        },
        _ => Ok(()),
    }
}

/// Check a layer: every key (at any level) must be a known field, and every known field present
/// must have a value of its kind.
pub fn check_layer(layer: &Value) -> Result<()> {
    if let Value::Object(m) = layer {
        check_keys(m, "", "")?;
    }
    for (field, kind) in SCHEMA {
        if let Some(v) = lookup(layer, field) {
            check_field(field, *kind, v)?;
        }
    }
    Ok(())
}

/// Reject keys of `obj` (found at `parent`) that are not in `SCHEMA`. `shown` prefixes the key in
/// messages (e.g. `MSR_LOCKING: `).
fn check_keys(obj: &Map<String, Value>, parent: &str, shown: &str) -> Result<()> {
    for (key, value) in obj {
        let dotted = if parent.is_empty() {
            key.clone()
        } else {
            format!("{parent}.{key}")
        };
        match kind_of(&dotted) {
            None => return Err(unknown_key(&dotted, parent, shown)),
            Some(Kind::Object) if children(&dotted).next().is_some() => {
                if let Value::Object(m) = value {
                    check_keys(m, &dotted, shown)?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// "unknown setting `locking.enabeld`; did you mean `locking.enabled`?"
fn unknown_key(dotted: &str, parent: &str, shown: &str) -> Error {
    let leaf = dotted.rsplit('.').next().unwrap_or(dotted);
    let suggestion = suggest(leaf, parent);
    let why = if suggestion
        .as_deref()
        .unwrap_or(parent)
        .starts_with("locking")
    {
        " (a misspelt lock setting is never ignored: the run could otherwise go ahead without the lock)"
    } else {
        ""
    };
    let fix = match suggestion {
        Some(s) => format!("did you mean `{s}`? Fix its name or remove it{why}."),
        None if parent.is_empty() => "it is not a setting of msr-firebase; remove it (the settings are listed in docs/configuration.md).".to_string(),
        None => format!(
            "the settings of `{parent}` are: {}.",
            children(parent).collect::<Vec<_>>().join(", ")
        ),
    };
    Error::config(format!("{shown}unknown setting `{dotted}`; {fix}"))
}

/// The known field a misspelt `leaf` (under `parent`) most likely meant, as a dotted path: a
/// sibling within a small edit distance, else a field of that exact name elsewhere.
fn suggest(leaf: &str, parent: &str) -> Option<String> {
    let lower = leaf.to_ascii_lowercase();
    let full = |name: &str| {
        if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}.{name}")
        }
    };
    let close = children(parent)
        .map(|c| (strsim::osa_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| full(c));
    close.or_else(|| {
        SCHEMA
            .iter()
            .map(|(f, _)| *f)
            .find(|f| {
                f.rsplit('.')
                    .next()
                    .is_some_and(|l| l.eq_ignore_ascii_case(leaf))
            })
            .map(str::to_string)
    })
}

/// Lower-case enum values (so `ROLLBACK_STRATEGY=BACKUP` and `'Backup'` work) and store whole
/// numbers written as floats (`5000.0`) as integers.
pub fn normalize_enums(layer: &mut Value) {
    for (field, kind) in SCHEMA {
        let slot = field
            .split('.')
            .try_fold(&mut *layer, |node, key| node.get_mut(key));
        match (kind, slot) {
            (Kind::Enum(_), Some(Value::String(s))) => *s = s.to_ascii_lowercase(),
            (Kind::UInt(_) | Kind::OptUInt(_), Some(v)) => {
                if let Some(f) = v.as_f64().filter(|f| {
                    v.as_u64().is_none() && *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64
                }) {
                    *v = Value::from(f as u64);
                }
            }
            _ => {}
        }
    }
}

/// `locking.retryAttempts` -> `MSR_LOCKING_RETRY_ATTEMPTS`.
pub fn env_name(field: &str) -> String {
    let mut out = String::from("MSR");
    for part in field.split('.') {
        out.push('_');
        for c in part.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

fn parse_env(field: &str, kind: Kind, raw: &str) -> Result<Value> {
    let name = env_name(field);
    let raw_t = raw.trim();
    let v = match kind {
        Kind::Bool => match raw_t.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Value::Bool(true),
            "false" | "0" | "no" | "off" => Value::Bool(false),
            _ => {
                return Err(Error::config(format!(
                    "{name} must be true or false (got '{raw}')"
                )))
            }
        },
        Kind::UInt(unit) | Kind::OptUInt(unit) => match raw_t.parse::<u64>() {
            Ok(n) => Value::from(n),
            Err(_) => {
                return Err(Error::config(format!(
                    "{name} must be a whole number of {unit}, 0 or more (got '{raw}')"
                )))
            }
        },
        Kind::Str | Kind::OptStr | Kind::Enum(_) => Value::String(raw.to_string()),
        Kind::StrList => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ Value::Array(_)) => v,
            _ => Value::Array(
                raw.split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .collect(),
            ),
        },
        Kind::Databases => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ Value::Array(_)) => v,
            _ => {
                return Err(Error::config(format!(
                    "{name} must be a JSON array such as [{{\"name\":\"shard-1\",\"databaseUrl\":\"https://shard-1.firebaseio.com\"}}] (got '{raw}')"
                )))
            }
        },
        Kind::UrlList => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ Value::Array(_)) => v,
            _ => Value::Array(
                raw.split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .filter(|s| s.as_str() != Some(""))
                    .collect(),
            ),
        },
        Kind::OptObject => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ (Value::Object(_) | Value::Null)) => v,
            _ => {
                return Err(Error::config(format!(
                    "{name} must be a JSON object such as {{\"uid\":\"migrator\"}}, or null (got '{raw}')"
                )))
            }
        },
        Kind::Object => match serde_json::from_str::<Value>(raw_t) {
            Ok(Value::Object(m)) => {
                if children(field).next().is_some() {
                    check_keys(&m, field, &format!("{name}: "))?;
                }
                Value::Object(m)
            }
            _ => {
                return Err(Error::config(format!(
                    "{name} must be a JSON object (got '{raw}')"
                )))
            }
        },
        Kind::Legacy => match serde_json::from_str::<Value>(raw_t) {
            Ok(v) => v,
            Err(_) => Value::String(raw.to_string()),
        },
    };
    check_field(&name, kind, &v)?;
    Ok(v)
}

/// `MSR_*` variables that are not settings: the config file's path, the emulator's
/// authentication seam, the Management API's address (`discovery`), and the clock-skew test
/// lever.
pub const OTHER_ENV: [&str; 4] = [
    "MSR_CONFIG_FILE",
    "MSR_FIREBASE_EMULATOR_AUTH",
    "MSR_FIREBASE_MANAGEMENT_API",
    "MSR_CLOCK_SKEW_MS",
];

/// An `MSR_*` name that is neither a setting's variable nor one of [`OTHER_ENV`]: refused like
/// an unknown config key, with the closest known name.
fn unknown_env(name: &str) -> Error {
    let known = SCHEMA
        .iter()
        .map(|(f, _)| env_name(f))
        .chain(OTHER_ENV.iter().map(|s| s.to_string()));
    let close = known
        .map(|k| (strsim::osa_distance(name, &k), k))
        .filter(|(d, k)| *d <= (k.len() / 5).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    let fix = match close {
        Some(k) => {
            let why = if k.starts_with("MSR_LOCKING") {
                " (a misspelt lock setting is never ignored: the run could otherwise go ahead without the lock)"
            } else {
                ""
            };
            format!("did you mean {k}? Fix its name or unset it{why}.")
        }
        None => "it is not a setting of msr-firebase: unset it. Every setting has a variable MSR_<SETTING> \
                 (e.g. MSR_FOLDER, MSR_LOCKING_ENABLED; listed in docs/configuration.md)."
            .to_string(),
    };
    Error::config(format!("unknown environment variable {name}; {fix}"))
}

/// The `MSR_*` environment layer. Nested objects accept either `MSR_LOCKING` (JSON) or
/// `MSR_LOCKING_TIMEOUT` (which wins). Also `MSR_SHIFT`, `MSR_DATABASE_URL`, ... An empty
/// variable counts as unset; an unknown `MSR_*` name is an error.
pub fn env_layer(vars: impl IntoIterator<Item = (String, String)>) -> Result<Value> {
    let vars: Map<String, Value> = vars
        .into_iter()
        .filter(|(k, v)| k.starts_with("MSR_") && !v.is_empty())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    for name in vars.keys() {
        let known =
            OTHER_ENV.contains(&name.as_str()) || SCHEMA.iter().any(|(f, _)| env_name(f) == *name);
        if !known {
            return Err(unknown_env(name));
        }
    }
    let mut layer = Value::Object(Map::new());
    // Objects first so that specific fields override them.
    for pass_objects in [true, false] {
        for (field, kind) in SCHEMA {
            if (*kind == Kind::Object) != pass_objects {
                continue;
            }
            if let Some(Value::String(raw)) = vars.get(&env_name(field)) {
                let v = parse_env(field, *kind, raw)?;
                deep_merge(&mut layer, &layer_from_pairs([(field.to_string(), v)]));
            }
        }
    }
    normalize_enums(&mut layer);
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_names() {
        assert_eq!(
            env_name("locking.retryAttempts"),
            "MSR_LOCKING_RETRY_ATTEMPTS"
        );
        assert_eq!(env_name("tableName"), "MSR_TABLE_NAME");
        assert_eq!(env_name("shift"), "MSR_SHIFT");
    }

    #[test]
    fn env_layer_reads_typed_values() {
        let l = env_layer(vars(&[
            ("MSR_LOCKING_ENABLED", "true"),
            ("MSR_LOCKING_TIMEOUT", "5000"),
            ("MSR_FOLDER", "./m"),
            ("MSR_SHIFT", "prod"),
            ("MSR_ROLLBACK_STRATEGY", "DOWN"),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap();
        assert_eq!(
            l,
            json!({"locking": {"enabled": true, "timeout": 5000}, "folder": "./m", "shift": "prod", "rollbackStrategy": "down"})
        );
    }

    #[test]
    fn specific_env_var_beats_json_object() {
        let l = env_layer(vars(&[
            ("MSR_LOCKING", r#"{"enabled":true,"timeout":1000}"#),
            ("MSR_LOCKING_TIMEOUT", "9000"),
        ]))
        .unwrap();
        assert_eq!(l, json!({"locking": {"enabled": true, "timeout": 9000}}));
    }

    #[test]
    fn unknown_env_names_are_refused_with_a_hint() {
        let e = env_layer(vars(&[("MSR_LOCKING_ENABLE", "true")])).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::ConfigInvalid);
        assert!(
            e.message.contains("MSR_LOCKING_ENABLE")
                && e.message.contains("did you mean MSR_LOCKING_ENABLED?")
                && e.message.contains("without the lock"),
            "{}",
            e.message
        );
        let e = env_layer(vars(&[("MSR_COLOUR", "red")])).unwrap_err();
        assert!(e.message.contains("not a setting"), "{}", e.message);
        // The names that are not settings, an empty variable, other prefixes.
        env_layer(vars(&[
            ("MSR_CONFIG_FILE", "x.js"),
            ("MSR_FIREBASE_EMULATOR_AUTH", "credentials"),
            ("MSR_LOCKNG", ""),
            ("MSRX", "1"),
        ]))
        .unwrap();
    }

    #[test]
    fn bad_env_values_name_the_variable() {
        let e = env_layer(vars(&[("MSR_LOCKING_TIMEOUT", "ten minutes")])).unwrap_err();
        assert!(e.message.contains("MSR_LOCKING_TIMEOUT"), "{}", e.message);
        let e = env_layer(vars(&[("MSR_LOCKING_ENABLED", "maybe")])).unwrap_err();
        assert!(e.message.contains("MSR_LOCKING_ENABLED"), "{}", e.message);
    }
}
