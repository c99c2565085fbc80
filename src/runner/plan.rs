//! Planning: which files are executed (in history), pending (newer than the last executed) and
//! ignored (not executed but not newer than the last executed: out of order, never run).

use crate::history::HistoryRecord;
use crate::{Error, ErrorCode, Result};

use super::discover::Script;

/// An executed migration and its file, when the file still exists.
#[derive(Debug, Clone)]
pub struct Executed {
    pub record: HistoryRecord,
    pub script: Option<Script>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// History, sorted by timestamp.
    pub executed: Vec<Executed>,
    /// Not executed, version > last executed; ascending.
    pub pending: Vec<Script>,
    /// Not executed, version <= last executed; ascending.
    pub ignored: Vec<Script>,
    /// Highest executed timestamp.
    pub last_executed: Option<u64>,
}

/// How far `down` goes: to a version (0 = everything), or back a number of migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownTo {
    Version(u64),
    Steps(u32),
}

impl DownTo {
    /// The one rule for what `down` is asked to do, for the CLI and the library alike: exactly
    /// one of a version (12 digits, or 0 for everything) and a number of steps (1 or more);
    /// neither or both is CONFIG_INVALID, and nothing is rolled back.
    pub fn new(version: Option<u64>, steps: Option<u32>) -> Result<DownTo> {
        let to = match (version, steps) {
            (Some(v), None) => DownTo::Version(v),
            (None, Some(n)) => DownTo::Steps(n),
            (None, None) => {
                return Err(Error::config(
                    "down needs the version to roll back to, e.g. 202501010001 (0 rolls back everything), \
                     or a number of steps: `down --steps N`, `down(null, { steps: N })`",
                ))
            }
            (Some(v), Some(n)) => {
                return Err(Error::config(format!(
                    "down takes a version or a number of steps, not both (got version {v} and steps {n}): \
                     `down {v}` rolls back everything newer than {v}, `down --steps {n}` the newest {n}"
                )))
            }
        };
        to.check().map(|()| to)
    }

    /// A version is a target version (`check_target`, 0 allowed); steps are 1 or more.
    pub fn check(self) -> Result<()> {
        match self {
            DownTo::Version(v) => check_target(v, true),
            DownTo::Steps(0) => Err(Error::config(
                "down --steps must be 1 or more (the number of executed migrations to roll back, newest first)",
            )),
            DownTo::Steps(_) => Ok(()),
        }
    }
}

/// Match history to files: first by (timestamp, name), then by timestamp alone (a renamed file
/// still counts as executed; checksum validation reports content drift).
pub fn plan(scripts: &[Script], history: &[HistoryRecord]) -> Plan {
    let mut used = vec![false; scripts.len()];
    let mut matched: Vec<Option<usize>> = vec![None; history.len()];
    for (hi, r) in history.iter().enumerate() {
        if let Some(si) = scripts
            .iter()
            .enumerate()
            .position(|(i, s)| !used[i] && s.version == r.timestamp && s.name == r.name)
        {
            used[si] = true;
            matched[hi] = Some(si);
        }
    }
    for (hi, r) in history.iter().enumerate() {
        if matched[hi].is_some() {
            continue;
        }
        if let Some(si) = scripts
            .iter()
            .enumerate()
            .position(|(i, s)| !used[i] && s.version == r.timestamp)
        {
            used[si] = true;
            matched[hi] = Some(si);
        }
    }
    let last_executed = history.iter().map(|r| r.timestamp).max();
    let mut out = Plan {
        last_executed,
        ..Default::default()
    };
    for (hi, r) in history.iter().enumerate() {
        out.executed.push(Executed {
            record: r.clone(),
            script: matched[hi].map(|si| scripts[si].clone()),
        });
    }
    for (i, s) in scripts.iter().enumerate() {
        if used[i] {
            continue;
        }
        if last_executed.is_some_and(|last| s.version <= last) {
            out.ignored.push(s.clone());
        } else {
            out.pending.push(s.clone());
        }
    }
    out.pending
        .sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.name.cmp(&b.name)));
    out.ignored
        .sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.name.cmp(&b.name)));
    out
}

/// A target version must be a 12-digit timestamp (`allow_zero`: 0 = "everything" for `down`).
pub fn check_target(target: u64, allow_zero: bool) -> Result<()> {
    if (target == 0 && allow_zero) || (100_000_000_000..=999_999_999_999).contains(&target) {
        return Ok(());
    }
    Err(bad_target(&target.to_string(), allow_zero))
}

/// A target version as typed (`migrate 202501010001`, `down 0`), checked as `check_target`.
pub fn parse_target(raw: &str, allow_zero: bool) -> Result<u64> {
    let t = raw
        .trim()
        .parse::<u64>()
        .map_err(|_| bad_target(raw, allow_zero))?;
    check_target(t, allow_zero).map(|()| t)
}

fn bad_target(raw: &str, allow_zero: bool) -> Error {
    Error::new(
        ErrorCode::ConfigInvalid,
        format!(
            "Invalid target version {raw:?}: use the 12-digit version of a migration file, e.g. 202501010001 \
             (from V202501010001_create_users.js){}",
            if allow_zero {
                ", or 0 to roll back everything"
            } else {
                ""
            }
        ),
    )
}

impl Plan {
    /// `down <version>` rolls back to a version that was executed (or 0, everything): any other
    /// number (a typo, a pending migration) is refused, naming the nearest executed versions,
    /// instead of rolling back whatever lies above it.
    pub fn check_down_target(&self, to: DownTo) -> Result<()> {
        let DownTo::Version(t) = to else {
            return Ok(());
        };
        if t == 0 || self.executed.iter().any(|e| e.record.timestamp == t) {
            return Ok(());
        }
        let below = self
            .executed
            .iter()
            .filter(|e| e.record.timestamp < t)
            .max_by_key(|e| e.record.timestamp);
        let above = self
            .executed
            .iter()
            .filter(|e| e.record.timestamp > t)
            .min_by_key(|e| e.record.timestamp);
        let shown = |e: &Executed| format!("{} ({})", e.record.timestamp, e.record.name);
        let nearest = match (below, above) {
            (None, None) => {
                "No migration has been executed yet, so there is nothing to roll back".to_string()
            }
            (Some(b), None) => format!("The nearest executed version is {}", shown(b)),
            (None, Some(a)) => format!("The nearest executed version is {}", shown(a)),
            (Some(b), Some(a)) => format!(
                "The nearest executed versions are {} and {}",
                shown(b),
                shown(a)
            ),
        };
        Err(Error::new(
            ErrorCode::ValidationFailed,
            format!(
                "Cannot roll back to version {t}: no executed migration has that version (down rolls back every \
                 migration newer than the executed version it is given). {nearest}. Give an executed version, \
                 0 to roll back everything, or --steps N (down(null, {{ steps: N }}) in the library); nothing was changed"
            ),
        ))
    }

    /// Pending scripts up to and including `target` (all when `None`).
    pub fn pending_up_to(&self, target: Option<u64>) -> Vec<Script> {
        self.pending
            .iter()
            .filter(|s| target.is_none_or(|t| s.version <= t))
            .cloned()
            .collect()
    }

    /// What `down` undoes, newest first: everything newer than a version, or the newest `n`.
    pub fn to_undo(&self, to: DownTo) -> Vec<Executed> {
        match to {
            DownTo::Version(t) => self.executed_after(t),
            DownTo::Steps(n) => {
                let mut v = self.executed_after(0);
                v.truncate(n as usize);
                v
            }
        }
    }

    /// Executed migrations newer than `target`, newest first (for `down`).
    pub fn executed_after(&self, target: u64) -> Vec<Executed> {
        let mut v: Vec<Executed> = self
            .executed
            .iter()
            .filter(|e| e.record.timestamp > target)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            b.record
                .timestamp
                .cmp(&a.record.timestamp)
                .then_with(|| b.record.key.cmp(&a.record.key))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn down_takes_exactly_one_of_a_version_and_steps() {
        assert_eq!(DownTo::new(Some(0), None).unwrap(), DownTo::Version(0));
        assert_eq!(
            DownTo::new(Some(202501010001), None).unwrap(),
            DownTo::Version(202501010001)
        );
        assert_eq!(DownTo::new(None, Some(2)).unwrap(), DownTo::Steps(2));
        for (version, steps, says) in [
            (None, None, "down needs the version to roll back to"),
            (Some(202501010001), Some(1), "not both"),
            (None, Some(0), "must be 1 or more"),
            (Some(42), None, "Invalid target version"),
        ] {
            let e = DownTo::new(version, steps).unwrap_err();
            let refused = e.code == ErrorCode::ConfigInvalid && e.message.contains(says);
            assert!(refused, "{version:?} {steps:?}: {e}");
        }
    }

    fn s(v: u64, n: &str) -> Script {
        Script {
            name: n.into(),
            filepath: PathBuf::from(n),
            version: v,
            checksum: String::new(),
        }
    }
    fn r(v: u64, n: &str) -> HistoryRecord {
        HistoryRecord {
            key: format!("v{v}"),
            name: n.into(),
            timestamp: v,
            ..Default::default()
        }
    }

    #[test]
    fn pending_ignored_executed() {
        let scripts = vec![
            s(202501010001, "a"),
            s(202501010002, "b"),
            s(202501010003, "c"),
            s(202501010004, "d"),
        ];
        let history = vec![r(202501010001, "a"), r(202501010003, "c")];
        let p = plan(&scripts, &history);
        assert_eq!(p.last_executed, Some(202501010003));
        assert_eq!(
            p.pending.iter().map(|s| s.version).collect::<Vec<_>>(),
            vec![202501010004]
        );
        assert_eq!(
            p.ignored.iter().map(|s| s.version).collect::<Vec<_>>(),
            vec![202501010002]
        );
        assert!(p.executed.iter().all(|e| e.script.is_some()));
        assert_eq!(p.pending_up_to(Some(202501010003)).len(), 0);
        assert_eq!(
            p.executed_after(202501010001)
                .iter()
                .map(|e| e.record.timestamp)
                .collect::<Vec<_>>(),
            vec![202501010003]
        );
        let steps = |n| {
            p.to_undo(DownTo::Steps(n))
                .iter()
                .map(|e| e.record.timestamp)
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(1), vec![202501010003]);
        assert_eq!(steps(5), vec![202501010003, 202501010001]);
    }

    #[test]
    fn missing_files_and_renames() {
        let scripts = vec![s(202501010001, "a-renamed")];
        let history = vec![r(202501010001, "a"), r(202501010002, "b")];
        let p = plan(&scripts, &history);
        assert!(p.executed[0].script.is_some());
        assert!(p.executed[1].script.is_none());
        assert!(p.pending.is_empty() && p.ignored.is_empty());
    }

    #[test]
    fn down_targets_must_be_executed_versions() {
        let scripts = vec![s(202501010001, "a"), s(202501010003, "c")];
        let p = plan(&scripts, &[r(202501010001, "a"), r(202501010003, "c")]);
        p.check_down_target(DownTo::Version(202501010001)).unwrap();
        p.check_down_target(DownTo::Version(0)).unwrap();
        p.check_down_target(DownTo::Steps(3)).unwrap();
        let e = p
            .check_down_target(DownTo::Version(202501010002))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(
            e.message.contains("202501010001 (a) and 202501010003 (c)")
                && e.message.contains("--steps"),
            "{}",
            e.message
        );
        let e = plan(&scripts, &[])
            .check_down_target(DownTo::Version(202501010001))
            .unwrap_err();
        assert!(
            e.message.contains("No migration has been executed yet"),
            "{}",
            e.message
        );
    }

    #[test]
    fn targets() {
        assert!(check_target(202501010001, false).is_ok());
        assert!(check_target(0, true).is_ok());
        assert_eq!(
            check_target(0, false).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
        assert!(check_target(2025, true)
            .unwrap_err()
            .message
            .contains("12-digit"));
        assert!(check_target(1_000_000_000_000, false).is_err());
    }
}
