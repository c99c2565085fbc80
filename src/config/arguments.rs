//! The arguments of library calls, checked as strictly as the CLI checks its flags: an unknown
//! option name is refused with a "did you mean" (a misspelt `dryRun` must never run for real),
//! every value has the kind and range its flag has (no negative retry counts, no fractions of a
//! migration), and executor ids are non-empty strings. Messages name the call, the option and
//! the fix (`CONFIG_INVALID`).

use serde_json::Value;

use super::schema::{check_field, shown, Kind};
use crate::{Error, Result};

/// The options each call takes, with their kinds.
const CALLS: &[(&str, &[(&str, Kind)])] = &[
    (
        "getInstance()",
        &[
            ("config", Kind::Legacy),
            ("logger", Kind::Legacy),
            ("hooks", Kind::Legacy),
            ("metricsCollectors", Kind::Legacy),
        ],
    ),
    ("migrate()", RUN),
    ("up()", RUN),
    ("down()", RUN),
    (
        "rehearse()",
        &[
            ("target", Kind::Legacy),
            ("fromBackup", Kind::OptStr),
            ("down", Kind::Bool),
            ("keep", Kind::OptStr),
            ("examples", Kind::UInt("examples")),
            ("noLock", Kind::Bool),
            ("rules", Kind::OptStr),
            ("strict", Kind::Bool),
        ],
    ),
    ("runExclusive()", WAIT),
    (
        "getLockStatus()",
        &[("cached", Kind::Bool), ("timeout", Kind::UInt("ms"))],
    ),
    ("status()", STATUS),
    ("waitUntilMigrated()", STATUS),
    ("healthHandler()", HEALTH),
    ("metricsHandler()", METRICS),
    ("registerMetrics()", METRICS),
    (
        "startEmulator()",
        &[
            ("host", Kind::Str),
            ("port", Kind::UInt("port")),
            ("import", Kind::Legacy),
            ("importFile", Kind::Str),
            // A path, or {"<namespace>": path}: checked below.
            ("rules", Kind::Legacy),
        ],
    ),
];

/// `migrate()` / `down()` options (`target` is the first argument; `steps` only for `down`).
const RUN: &[(&str, Kind)] = &[
    ("dryRun", Kind::Bool),
    ("noLock", Kind::Bool),
    ("wait", Kind::Bool),
    ("waitTimeout", Kind::OptUInt("ms")),
    ("retryAttempts", Kind::UInt("attempts")),
    ("retryDelay", Kind::UInt("ms")),
    ("markApplied", Kind::Bool),
    ("steps", Kind::UInt("migrations")),
    ("target", Kind::Legacy),
];

/// `runner.status()` / `waitUntilMigrated()` (`version` is parsed as a target).
const STATUS: &[(&str, Kind)] = &[("version", Kind::Legacy), ("timeout", Kind::UInt("ms"))];

/// `healthHandler(runner, options)` from `@migration-script-runner/firebase/health`.
const HEALTH: &[(&str, Kind)] = &[
    ("requireUpToDate", Kind::Bool),
    ("version", Kind::Legacy),
    ("timeout", Kind::UInt("ms")),
];

/// `metricsHandler` / `registerMetrics` (`registry`: a prom-client registry, or false).
const METRICS: &[(&str, Kind)] = &[
    ("registry", Kind::Legacy),
    ("version", Kind::Legacy),
    ("timeout", Kind::UInt("ms")),
];

/// `runExclusive(work, options)` (and `acquireExclusive`).
const WAIT: &[(&str, Kind)] = &[
    ("wait", Kind::Bool),
    ("waitTimeout", Kind::OptUInt("ms")),
    ("retryAttempts", Kind::UInt("attempts")),
    ("retryDelay", Kind::UInt("ms")),
    ("executorId", Kind::Legacy),
];

/// Check the options object of `call`: an object (or nothing), known names only, each value of
/// its kind (`undefined`/`null` = not given).
pub fn check_options(call: &str, options: &Value) -> Result<()> {
    let Some((_, fields)) = CALLS.iter().find(|(c, _)| *c == call) else {
        return Err(Error::internal(format!("no option list for {call}")));
    };
    let map = match options {
        Value::Null => return Ok(()),
        Value::Object(m) => m,
        other => {
            return Err(Error::config(format!(
                "{call}: options must be an object such as {{ {}: ... }} (got {})",
                fields[0].0,
                shown(other)
            )))
        }
    };
    for (key, v) in map {
        let Some((_, kind)) = fields.iter().find(|(f, _)| f == key) else {
            let close = fields
                .iter()
                .map(|(f, _)| {
                    (
                        strsim::osa_distance(&key.to_ascii_lowercase(), &f.to_ascii_lowercase()),
                        *f,
                    )
                })
                .filter(|(d, f)| *d <= (f.len() / 3).max(1))
                .min_by_key(|(d, _)| *d);
            let fix = match close {
                Some((_, f)) => format!("did you mean `{f}`?"),
                None => format!(
                    "the options are: {}.",
                    fields
                        .iter()
                        .map(|(f, _)| *f)
                        .filter(|f| *f != "target")
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(Error::config(format!(
                "{call}: unknown option `{key}`; {fix} (an option that is not understood is never ignored)"
            )));
        };
        if v.is_null() {
            continue;
        }
        let out_of_range = match (key.as_str(), v.as_f64()) {
            ("steps", Some(n)) => n < 1.0,
            ("port", Some(n)) => !(0.0..=65535.0).contains(&n),
            _ => false,
        };
        if out_of_range {
            return Err(Error::config(match key.as_str() {
                "steps" => format!("{call} option steps must be 1 or more (got {v}): the number of executed migrations to roll back, newest first"),
                _ => format!("{call} option port must be a port number, 0 to 65535 (got {v}; 0 = any free port)"),
            }));
        }
        check_field(&format!("{call} option {key}"), *kind, v)?;
    }
    if let Some(rules) = map.get("rules").filter(|v| !v.is_null()) {
        let paths = match rules {
            Value::Object(m) => m.values().all(Value::is_string),
            other => other.is_string(),
        };
        if !paths {
            return Err(Error::config(format!(
                "{call} option rules must be the path of a rules file, or {{ \"<namespace>\": \"<path>\" }} (\"*\": every other namespace); got {}",
                shown(rules)
            )));
        }
    }
    if let Some(id) = map.get("executorId").filter(|v| !v.is_null()) {
        executor_id(call, id)?;
    }
    Ok(())
}

/// An executor id: a non-empty string (whitespace alone is empty).
pub fn executor_id(call: &str, id: &Value) -> Result<String> {
    match id {
        Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
        other => Err(Error::config(format!(
            "{call}: the executor id must be a non-empty string naming this process (got {}); \
             an empty or missing id would make unrelated processes the same lock holder. Leave it out of \
             runExclusive() for <host>-<pid>-<uuid>",
            match other {
                Value::String(_) => "an empty string".to_string(),
                Value::Null => "nothing".to_string(),
                v => shown(v),
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_options_and_bad_values_are_refused() {
        let e = check_options("migrate()", &json!({"dryrun": true})).unwrap_err();
        assert!(
            e.message.contains("unknown option `dryrun`") && e.message.contains("`dryRun`"),
            "{}",
            e.message
        );
        let e = check_options("migrate()", &json!({"retryAttempts": -1})).unwrap_err();
        assert!(
            e.message.contains("retryAttempts") && e.message.contains("0 or more"),
            "{}",
            e.message
        );
        let e = check_options("down()", &json!({"steps": 0})).unwrap_err();
        assert!(
            e.message.contains("steps must be 1 or more"),
            "{}",
            e.message
        );
        let e = check_options("down()", &json!({"steps": 1.5})).unwrap_err();
        assert!(e.message.contains("whole number"), "{}", e.message);
        let e = check_options("runExclusive()", &json!({"executorId": " "})).unwrap_err();
        assert!(e.message.contains("non-empty string"), "{}", e.message);
        let e = check_options("startEmulator()", &json!({"rules": {"db": 5}})).unwrap_err();
        assert!(
            e.message.contains("option rules must be the path"),
            "{}",
            e.message
        );
        check_options(
            "startEmulator()",
            &json!({"rules": {"db": "a.json", "*": "b.json"}}),
        )
        .unwrap();
        check_options("startEmulator()", &json!({"rules": "a.json"})).unwrap();
        let e = check_options("startEmulator()", &json!({"port": 70000})).unwrap_err();
        assert!(e.message.contains("0 to 65535"), "{}", e.message);
        let e = check_options("rehearse()", &json!("x")).unwrap_err();
        assert!(e.message.contains("must be an object"), "{}", e.message);
        check_options(
            "migrate()",
            &json!({"dryRun": true, "waitTimeout": null, "retryAttempts": 2, "target": 1}),
        )
        .unwrap();
        check_options("runExclusive()", &json!({"executorId": "me", "wait": true})).unwrap();
        check_options("down()", &Value::Null).unwrap();
        let e = check_options("healthHandler()", &json!({"requireUptoDate": true})).unwrap_err();
        assert!(e.message.contains("`requireUpToDate`"), "{}", e.message);
        let e = check_options("status()", &json!({"timeout": -1})).unwrap_err();
        assert!(e.message.contains("timeout"), "{}", e.message);
    }
}
