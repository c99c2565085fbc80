//! The shape of the configuration: one table of known fields and their kinds, used both to check
//! every layer (with messages naming the field) and to read `MSR_*` environment variables.

use serde_json::{Map, Value};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    /// A whole non-negative number; the unit is part of the message.
    UInt(&'static str),
    /// A whole non-negative number or null.
    OptUInt(&'static str),
    Str,
    /// A string or null.
    OptStr,
    /// One of these (case-insensitive on input; stored lower-case).
    Enum(&'static [&'static str]),
    StrList,
    Object,
    /// A JSON object or null, taken whole (not a group of settings).
    OptObject,
}

/// Every known field (dotted path, kind). Unknown fields are ignored, so configuration files
/// written for the TypeScript predecessor (with `transaction`, `logging`, ...) still load.
pub const SCHEMA: &[(&str, Kind)] = &[
    ("folder", Kind::Str),
    ("tableName", Kind::Str),
    ("shift", Kind::OptStr),
    ("databaseUrl", Kind::OptStr),
    ("applicationCredentials", Kind::OptStr),
    ("databaseAuthVariableOverride", Kind::OptObject),
    ("filePatterns", Kind::StrList),
    ("beforeMigrateName", Kind::OptStr),
    ("recursive", Kind::Bool),
    ("dryRun", Kind::Bool),
    ("logLevel", Kind::Enum(&["error", "warn", "info", "debug"])),
    (
        "rollbackStrategy",
        Kind::Enum(&["backup", "down", "both", "none"]),
    ),
    (
        "backupMode",
        Kind::Enum(&["full", "create_only", "restore_only", "manual"]),
    ),
    ("backup", Kind::Object),
    ("backup.folder", Kind::Str),
    ("backup.prefix", Kind::Str),
    ("backup.suffix", Kind::Str),
    ("backup.extension", Kind::Str),
    ("backup.existingBackupPath", Kind::OptStr),
    ("validateBeforeRun", Kind::Bool),
    ("validateMigratedFiles", Kind::Bool),
    ("validateMigratedFilesLocation", Kind::Bool),
    ("checksumAlgorithm", Kind::Enum(&["sha256", "md5"])),
    (
        "duplicateTimestampMode",
        Kind::Enum(&["warn", "error", "ignore"]),
    ),
    ("displayLimit", Kind::UInt("rows")),
    ("locking", Kind::Object),
    ("locking.enabled", Kind::Bool),
    ("locking.timeout", Kind::UInt("ms")),
    ("locking.retryAttempts", Kind::UInt("attempts")),
    ("locking.retryDelay", Kind::UInt("ms")),
    ("locking.waitTimeout", Kind::OptUInt("ms")),
    ("locking.renewInterval", Kind::OptUInt("ms")),
    ("locking.executorId", Kind::OptStr),
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

fn check_field(field: &str, kind: Kind, v: &Value) -> Result<()> {
    let bad = |expected: String| {
        Err(Error::config(format!(
            "{field} must be {expected} (got {}: {v})",
            type_name(v)
        )))
    };
    let uint = |v: &Value| {
        v.as_u64().is_some() || v.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0)
    };
    match kind {
        Kind::Bool if !v.is_boolean() => bad("true or false (a boolean)".into()),
        Kind::UInt(unit) if !uint(v) => bad(format!("a whole number of {unit}, 0 or more")),
        Kind::OptUInt(unit) if !(v.is_null() || uint(v)) => {
            bad(format!("a whole number of {unit}, 0 or more, or null"))
        }
        Kind::Str if !v.is_string() => bad("a string".into()),
        Kind::OptStr if !(v.is_string() || v.is_null()) => bad("a string or null".into()),
        Kind::StrList if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
            bad("an array of regular expressions (strings or RegExp)".into())
        }
        Kind::Object if !v.is_object() => bad("an object".into()),
        Kind::OptObject if !(v.is_object() || v.is_null()) => {
            bad("an object such as { uid: 'migrator' }, or null".into())
        }
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

/// Check every known field present in `layer`; enum values are lower-cased in place.
pub fn check_layer(layer: &Value) -> Result<()> {
    for (field, kind) in SCHEMA {
        if let Some(v) = lookup(layer, field) {
            check_field(field, *kind, v)?;
        }
    }
    Ok(())
}

/// Lower-case enum values so `ROLLBACK_STRATEGY=BACKUP` and `'Backup'` work.
pub fn normalize_enums(layer: &mut Value) {
    for (field, kind) in SCHEMA {
        if let Kind::Enum(_) = kind {
            let slot = field
                .split('.')
                .try_fold(&mut *layer, |node, key| node.get_mut(key));
            if let Some(Value::String(s)) = slot {
                *s = s.to_ascii_lowercase();
            }
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
        Kind::OptObject => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ (Value::Object(_) | Value::Null)) => v,
            _ => {
                return Err(Error::config(format!(
                    "{name} must be a JSON object such as {{\"uid\":\"migrator\"}}, or null (got '{raw}')"
                )))
            }
        },
        Kind::Object => match serde_json::from_str::<Value>(raw_t) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Err(Error::config(format!(
                    "{name} must be a JSON object (got '{raw}')"
                )))
            }
        },
    };
    check_field(&name, kind, &v)?;
    Ok(v)
}

/// The `MSR_*` environment layer. Nested objects accept either `MSR_LOCKING` (JSON) or
/// `MSR_LOCKING_TIMEOUT` (which wins). Also `MSR_SHIFT`, `MSR_DATABASE_URL`, ...
pub fn env_layer(vars: impl IntoIterator<Item = (String, String)>) -> Result<Value> {
    let vars: Map<String, Value> = vars
        .into_iter()
        .filter(|(k, v)| k.starts_with("MSR_") && !v.is_empty())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut layer = Value::Object(Map::new());
    // Objects first so that specific fields override them.
    for pass_objects in [true, false] {
        for (field, kind) in SCHEMA {
            if (*kind == Kind::Object) != pass_objects {
                continue;
            }
            if let Some(Value::String(raw)) = vars.get(&env_name(field)) {
                let v = parse_env(field, *kind, raw)?;
                super::deep_merge(
                    &mut layer,
                    &super::layer_from_pairs([(field.to_string(), v)]),
                );
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
    fn bad_env_values_name_the_variable() {
        let e = env_layer(vars(&[("MSR_LOCKING_TIMEOUT", "ten minutes")])).unwrap_err();
        assert!(e.message.contains("MSR_LOCKING_TIMEOUT"), "{}", e.message);
        let e = env_layer(vars(&[("MSR_LOCKING_ENABLED", "maybe")])).unwrap_err();
        assert!(e.message.contains("MSR_LOCKING_ENABLED"), "{}", e.message);
    }
}
