//! Write-size limits, as the service enforces them: each database has a default limit
//! (`defaultWriteSizeLimit`; here per namespace, `unlimited` in a fresh emulator), a write may
//! ask for a lower one with `?writeSizeLimit=tiny|small|medium|large|unlimited` (never a higher
//! one: the service lets a request ask for less), and a write whose estimate passes the
//! budget of its limit is refused whole with `WRITE_TOO_BIG` — nothing written, no event, the
//! ETag unchanged.
//!
//! The service estimates the time a write would take from the data it affects; this emulator
//! estimates it in bytes: the body, plus what the write replaces — the stored subtree at the
//! written path (PUT, and DELETE, whose body is empty: a DELETE of a big node is big), at each
//! path of a multi-path PATCH, nothing for a POST (a new child). The subtree is counted in
//! place (`NodeRef::size_within`: packed subtrees by their length, the count stopped once past
//! the budget), so no write serializes what it replaces and an `unlimited` write counts nothing.
//!
//! Budgets: bytes per level, a choice made here — 1 MB per second of the service's target time
//! (`tiny` 1 s, `small` 10 s, `medium` 30 s, `large` 60 s), so `large` refuses a write that
//! affects more than 60 MB. The `write-size-limit` lever sets the default per namespace and the
//! budgets (small ones let tests trigger `WRITE_TOO_BIG` with small data).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::state::ALL_NAMESPACES;
use super::store::NodeRef;

/// The service's refusal of a write over its limit (a 400).
pub const WRITE_TOO_BIG: &str = "WRITE_TOO_BIG: Data to write exceeds the maximum size that can be modified with a single request.";

/// A write-size limit, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriteSizeLevel {
    Tiny,
    Small,
    Medium,
    Large,
    Unlimited,
}

impl WriteSizeLevel {
    pub const ALL: [WriteSizeLevel; 5] = [
        WriteSizeLevel::Tiny,
        WriteSizeLevel::Small,
        WriteSizeLevel::Medium,
        WriteSizeLevel::Large,
        WriteSizeLevel::Unlimited,
    ];

    /// Its name in requests and levers (`tiny`, ...).
    pub fn name(self) -> &'static str {
        match self {
            WriteSizeLevel::Tiny => "tiny",
            WriteSizeLevel::Small => "small",
            WriteSizeLevel::Medium => "medium",
            WriteSizeLevel::Large => "large",
            WriteSizeLevel::Unlimited => "unlimited",
        }
    }

    pub fn parse(s: &str) -> Option<WriteSizeLevel> {
        Self::ALL.into_iter().find(|l| l.name() == s)
    }
}

/// The 400 for a `writeSizeLimit` parameter that names no level.
pub fn bad_level(value: &str) -> String {
    format!(
        "Invalid writeSizeLimit parameter {value:?}: use tiny, small, medium, large or unlimited"
    )
}

/// Bytes a write may affect at each level (`unlimited` has no budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudgets {
    pub tiny: u64,
    pub small: u64,
    pub medium: u64,
    pub large: u64,
}

const MB: u64 = 1024 * 1024;

impl Default for WriteBudgets {
    /// 1 MB per second of the service's target time.
    fn default() -> Self {
        WriteBudgets {
            tiny: MB,
            small: 10 * MB,
            medium: 30 * MB,
            large: 60 * MB,
        }
    }
}

impl WriteBudgets {
    /// The budget of `level` (`None`: unlimited).
    pub fn of(&self, level: WriteSizeLevel) -> Option<u64> {
        match level {
            WriteSizeLevel::Tiny => Some(self.tiny),
            WriteSizeLevel::Small => Some(self.small),
            WriteSizeLevel::Medium => Some(self.medium),
            WriteSizeLevel::Large => Some(self.large),
            WriteSizeLevel::Unlimited => None,
        }
    }

    fn slot(&mut self, level: WriteSizeLevel) -> Option<&mut u64> {
        match level {
            WriteSizeLevel::Tiny => Some(&mut self.tiny),
            WriteSizeLevel::Small => Some(&mut self.small),
            WriteSizeLevel::Medium => Some(&mut self.medium),
            WriteSizeLevel::Large => Some(&mut self.large),
            WriteSizeLevel::Unlimited => None,
        }
    }

    fn json(&self) -> Value {
        json!({ "tiny": self.tiny, "small": self.small, "medium": self.medium, "large": self.large })
    }
}

/// The emulator's write-size settings: each namespace's default limit (or every namespace's)
/// and the budgets.
#[derive(Debug, Clone, Default)]
pub struct WriteSizeLimits {
    /// ns (or `*`) -> its default limit; a namespace with none is `unlimited`.
    defaults: BTreeMap<String, WriteSizeLevel>,
    pub budgets: WriteBudgets,
}

impl WriteSizeLimits {
    /// Set the default limit of `ns` (`None`: of every namespace without its own).
    pub fn set_default(&mut self, ns: Option<&str>, level: WriteSizeLevel) {
        self.defaults
            .insert(ns.unwrap_or(ALL_NAMESPACES).to_string(), level);
    }

    /// The default limit of `ns`.
    pub fn default_of(&self, ns: &str) -> WriteSizeLevel {
        self.defaults
            .get(ns)
            .or_else(|| self.defaults.get(ALL_NAMESPACES))
            .copied()
            .unwrap_or(WriteSizeLevel::Unlimited)
    }

    /// The budget of a write to `ns` asking for `asked` (`None`: unlimited): the lower of the
    /// namespace's default and what the request asked for.
    pub fn budget(&self, ns: &str, asked: Option<WriteSizeLevel>) -> Option<u64> {
        let level = match asked {
            Some(a) => a.min(self.default_of(ns)),
            None => self.default_of(ns),
        };
        self.budgets.of(level)
    }

    /// What `GET /.emulator/write-size-limit` shows.
    pub fn json(&self) -> Value {
        let namespaces: BTreeMap<&str, &str> = self
            .defaults
            .iter()
            .filter(|(ns, _)| *ns != ALL_NAMESPACES)
            .map(|(ns, l)| (ns.as_str(), l.name()))
            .collect();
        let default = self
            .defaults
            .get(ALL_NAMESPACES)
            .copied()
            .unwrap_or(WriteSizeLevel::Unlimited);
        json!({ "default": default.name(), "namespaces": namespaces, "budgets": self.budgets.json() })
    }

    /// Apply the lever's body `{"default": "<level>", "ns": "<namespace>", "budgets": {"tiny":
    /// <bytes>, ...}}` (each part optional, at least one given; budgets not named stay). Nothing
    /// changes when any part is bad (`Err`: the 400 text).
    pub fn apply(&mut self, body: &Value) -> Result<(), String> {
        const SHAPE: &str = "write-size-limit: expected {\"default\": \"tiny|small|medium|large|unlimited\", \"ns\": \"<namespace, omitted: every namespace>\", \"budgets\": {\"tiny\": <bytes>, \"small\": <bytes>, \"medium\": <bytes>, \"large\": <bytes>}}";
        let Some(obj) = body.as_object() else {
            return Err(SHAPE.into());
        };
        if let Some(k) = obj
            .keys()
            .find(|k| !["default", "ns", "budgets"].contains(&k.as_str()))
        {
            return Err(format!("{SHAPE}; unknown field {k:?}"));
        }
        let level = match obj.get("default") {
            None => None,
            Some(v) => match v.as_str().and_then(WriteSizeLevel::parse) {
                Some(l) => Some(l),
                None => return Err(format!("{SHAPE}; bad default {v}")),
            },
        };
        let ns = match obj.get("ns") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if crate::rtdb::database_url::valid_namespace(s) => {
                Some(s.as_str())
            }
            Some(v) => return Err(format!("{SHAPE}; bad ns {v}")),
        };
        if ns.is_some() && level.is_none() {
            return Err(format!("{SHAPE}; \"ns\" needs a \"default\""));
        }
        let mut budgets = self.budgets;
        if let Some(b) = obj.get("budgets") {
            let Some(b) = b.as_object() else {
                return Err(SHAPE.into());
            };
            for (k, v) in b {
                let slot = WriteSizeLevel::parse(k).and_then(|l| budgets.slot(l));
                match (slot, v.as_u64().filter(|n| *n > 0)) {
                    (Some(slot), Some(n)) => *slot = n,
                    (None, _) => {
                        return Err(format!(
                            "{SHAPE}; no budget for {k:?} (tiny, small, medium or large)"
                        ))
                    }
                    (_, None) => {
                        return Err(format!(
                            "{SHAPE}; the budget of {k} must be a positive number of bytes"
                        ))
                    }
                }
            }
        } else if level.is_none() {
            return Err(SHAPE.into());
        }
        self.budgets = budgets;
        if let Some(l) = level {
            self.set_default(ns, l);
        }
        Ok(())
    }
}

/// Whether a write over `budget` bytes (`None`: unlimited) with a body of `body` bytes that
/// replaces each of `replaced` is too big.
pub fn too_big<'a>(
    budget: Option<u64>,
    body: usize,
    replaced: impl IntoIterator<Item = Option<NodeRef<'a>>>,
) -> bool {
    let Some(budget) = budget else {
        return false;
    };
    let Some(mut left) = budget.checked_sub(body as u64) else {
        return true;
    };
    for node in replaced.into_iter().flatten() {
        match node.size_within(left) {
            Some(n) => left -= n,
            None => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_may_lower_the_limit_never_raise_it() {
        let mut l = WriteSizeLimits::default();
        assert_eq!(l.budget("db", None), None);
        assert_eq!(l.budget("db", Some(WriteSizeLevel::Tiny)), Some(MB));
        l.apply(&json!({"default": "small", "budgets": {"tiny": 10, "small": 100}}))
            .unwrap();
        l.apply(&json!({"default": "large", "ns": "big"})).unwrap();
        assert_eq!(l.budget("db", None), Some(100));
        assert_eq!(l.budget("db", Some(WriteSizeLevel::Large)), Some(100));
        assert_eq!(l.budget("db", Some(WriteSizeLevel::Unlimited)), Some(100));
        assert_eq!(l.budget("db", Some(WriteSizeLevel::Tiny)), Some(10));
        assert_eq!(l.budget("big", None), Some(60 * MB));
        assert_eq!(
            l.json(),
            json!({"default": "small", "namespaces": {"big": "large"},
                   "budgets": {"tiny": 10, "small": 100, "medium": 30 * MB, "large": 60 * MB}})
        );
    }

    #[test]
    fn bad_lever_bodies_change_nothing() {
        let mut l = WriteSizeLimits::default();
        for bad in [
            json!({}),
            json!({"default": "huge"}),
            json!({"ns": "db"}),
            json!({"default": "tiny", "ns": "bad ns!"}),
            json!({"budgets": {"unlimited": 5}}),
            json!({"budgets": {"tiny": 0}}),
            json!({"default": "tiny", "budgets": {"tiny": 10, "small": -1}}),
            json!({"default": "tiny", "other": 1}),
        ] {
            assert!(l.apply(&bad).is_err(), "{bad}");
        }
        assert_eq!(l.budget("db", None), None);
        assert_eq!(l.budgets, WriteBudgets::default());
    }
}
