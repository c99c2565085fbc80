//! RTDB ordering and queries (INTERFACE; body to be implemented). Shared by the client (sorting
//! results, which REST returns as an unordered object) and the emulator (filtering and limits).
//! Order for a child or `$value`: null < false < true < numbers < strings < objects, ties by key.
//! `$key`: keys that parse as 32-bit integers first, numerically, then the rest lexicographically.

use std::cmp::Ordering;

use serde_json::Value;

use crate::Result;

#[derive(Debug, Clone, PartialEq)]
pub enum OrderBy {
    Key,
    Value,
    Priority,
    /// A child path such as `"role"` or `"profile/age"`.
    Child(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    pub order_by: Option<OrderBy>,
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<u32>,
    pub limit_to_last: Option<u32>,
}

impl Query {
    /// Query-string parameters (`orderBy="$key"`, `startAt=...`), JSON-encoded (not URL-encoded).
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        todo!()
    }
    /// Parse from query-string parameters (already URL-decoded); 400-style errors.
    pub fn from_params(params: &[(String, String)]) -> Result<Query> {
        todo!("{params:?}")
    }
    /// True when any parameter is set.
    pub fn is_empty(&self) -> bool {
        *self == Query::default()
    }
    /// Apply to a node's value: children sorted, filtered, limited.
    pub fn apply(&self, node: &Value) -> Vec<(String, Value)> {
        todo!("{node}")
    }
}

/// Compare two keys as RTDB does for `$key`.
pub fn compare_keys(a: &str, b: &str) -> Ordering {
    todo!("{a} {b}")
}

/// Compare two values as RTDB does for `$value` / child ordering (without the key tie-break).
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    todo!("{a} {b}")
}
