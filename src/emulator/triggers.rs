//! `disableTriggers`: a write parameter (`?disableTriggers=true`) asking the service not to fire
//! Cloud Functions database triggers for the write (Google's CLI sends it on its writes). There
//! are no functions here; the point is that tests can see what a client sent: writes are
//! counted by it (`GET /.emulator/requests` -> `triggers`) and the journal marks each write.
//! `true` and `false` are accepted; anything else is a 400 (a choice: the service's answer to
//! a bad value is not documented, and this emulator refuses where unsure).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// What a write said about triggers: `Ok(true)` = `disableTriggers=true`, `Ok(false)` = `false`
/// or absent, `Err` = the 400 text for any other value. The last occurrence wins.
pub fn disabled(params: &[(String, String)]) -> Result<bool, String> {
    match params
        .iter()
        .rev()
        .find(|(k, _)| k == "disableTriggers")
        .map(|(_, v)| v.as_str())
    {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "Invalid disableTriggers parameter {other:?}: use true or false"
        )),
    }
}

/// Writes counted by whether they disabled triggers (a write with a bad value is in neither).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggerCounts {
    /// Writes sent with `disableTriggers=true`.
    pub disabled: u64,
    /// Writes sent without it (or with `false`).
    pub enabled: u64,
    /// The disabled ones by method and path, as `byPath` counts (`"PATCH /a/b"`).
    pub disabled_by_path: BTreeMap<String, u64>,
}

impl TriggerCounts {
    /// A write to `path` (`/a/b`) arrived.
    pub fn count(&mut self, method: &str, path: &str, disabled: bool) {
        if disabled {
            self.disabled += 1;
            *self
                .disabled_by_path
                .entry(format!("{method} {path}"))
                .or_default() += 1;
        } else {
            self.enabled += 1;
        }
    }

    pub fn json(&self) -> Value {
        json!({ "disabled": self.disabled, "enabled": self.enabled, "disabledByPath": self.disabled_by_path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(disabled(&p(&[])), Ok(false));
        assert_eq!(disabled(&p(&[("disableTriggers", "true")])), Ok(true));
        assert_eq!(disabled(&p(&[("disableTriggers", "false")])), Ok(false));
        for bad in ["1", "TRUE", "", "yes"] {
            let e = disabled(&p(&[("disableTriggers", bad)])).unwrap_err();
            assert!(e.contains("use true or false"), "{e}");
        }
    }
}
