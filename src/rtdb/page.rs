//! Queries with exclusive bounds, `startAfter` and `endBefore`, which the REST protocol does not
//! have (it has `startAt`/`endAt`, both inclusive). They are sent as `startAt`/`endAt` and the
//! children equal to the bound (by the query's ordering) are dropped here. With a limit on the
//! side of the bound (`startAfter` + `limitToFirst`, `endBefore` + `limitToLast`) the dropped
//! children would eat into it, so the limit is sent larger and raised again while ties fill it:
//! for `$key` (keys are unique) one extra child is always enough.

use std::cmp::Ordering;

use serde_json::Value;

use super::order::{compare_keys, compare_values, OrderBy, Query};
use super::Client;
use crate::{Error, ErrorCode, Result};

/// A query plus exclusive bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageQuery {
    pub query: Query,
    /// Children strictly after this value (by the query's ordering).
    pub start_after: Option<Value>,
    /// Children strictly before this value.
    pub end_before: Option<Value>,
}

fn bad(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::BadRequest, message)
}

impl PageQuery {
    /// Refuse what RTDB refuses, with the SDKs' wording where they have one.
    fn check(&self) -> Result<()> {
        let q = &self.query;
        if self.start_after.is_some() && (q.start_at.is_some() || q.equal_to.is_some()) {
            return Err(bad("startAfter: Starting point was already set (by another call to startAt, startAfter, or equalTo)"));
        }
        if self.end_before.is_some() && (q.end_at.is_some() || q.equal_to.is_some()) {
            return Err(bad("endBefore: Ending point was already set (by another call to endAt, endBefore or equalTo)"));
        }
        if q.order() == OrderBy::Key {
            for v in [&self.start_after, &self.end_before].into_iter().flatten() {
                if !v.is_string() {
                    return Err(bad("Query: When ordering by key, the argument passed to startAt(), startAfter(), endAt(), endBefore(), or equalTo() must be a string."));
                }
            }
        }
        for v in [&self.start_after, &self.end_before].into_iter().flatten() {
            if v.is_object() || v.is_array() {
                return Err(bad(
                    "Query: startAfter() and endBefore() take a primitive (null, boolean, number or string)",
                ));
            }
        }
        Ok(())
    }
}

/// The value a child is ordered by (as `order::Query::apply` orders it).
fn sort_value<'a>(order: &OrderBy, child: &'a Value) -> Option<&'a Value> {
    match order {
        OrderBy::Key | OrderBy::Priority => None,
        OrderBy::Value => Some(child),
        OrderBy::Child(path) => {
            let mut cur = child;
            for seg in path.split('/').filter(|s| !s.is_empty()) {
                cur = cur.get(seg)?;
            }
            Some(cur)
        }
    }
}

fn ties(order: &OrderBy, bound: &Value, key: &str, child: &Value) -> bool {
    match order {
        OrderBy::Key => compare_keys(key, bound.as_str().unwrap_or_default()) == Ordering::Equal,
        OrderBy::Priority => bound.is_null(),
        other => {
            let v = sort_value(other, child).unwrap_or(&Value::Null);
            compare_values(v, bound) == Ordering::Equal
        }
    }
}

impl Client {
    /// A query that may have exclusive bounds; children in RTDB order as `(key, value)`.
    pub async fn query_page(&self, path: &str, page: &PageQuery) -> Result<Vec<(String, Value)>> {
        page.check()?;
        let mut wire = page.query.clone();
        if page.start_after.is_some() {
            wire.start_at = page.start_after.clone();
        }
        if page.end_before.is_some() {
            wire.end_at = page.end_before.clone();
        }
        if wire.order_by.is_none() {
            let filtered =
                wire.start_at.is_some() || wire.end_at.is_some() || wire.equal_to.is_some();
            if filtered {
                return Err(bad(
                    "startAt(), endAt(), equalTo(), startAfter() and endBefore() need an ordering first: \
                     orderByKey(), orderByChild(path) or orderByValue() (priorities are not supported)",
                ));
            }
            // Limits alone order by key, as the SDKs do (every priority being null).
            if !wire.is_empty() {
                wire.order_by = Some(OrderBy::Key);
            }
        }
        let order = wire.order();
        let is_bound = |k: &str, v: &Value| {
            page.start_after
                .as_ref()
                .is_some_and(|b| ties(&order, b, k, v))
                || page
                    .end_before
                    .as_ref()
                    .is_some_and(|b| ties(&order, b, k, v))
        };
        // The limit the dropped children can eat into, if any.
        let eaten = match (
            page.query.limit_to_first,
            page.query.limit_to_last,
            &page.start_after,
            &page.end_before,
        ) {
            (Some(n), _, Some(_), _) => Some((n, true)),
            (_, Some(n), _, Some(_)) => Some((n, false)),
            _ => None,
        };
        let mut extra: u32 = 1;
        loop {
            if let Some((n, first)) = eaten {
                let asked = n.saturating_add(extra);
                if first {
                    wire.limit_to_first = Some(asked);
                } else {
                    wire.limit_to_last = Some(asked);
                }
            }
            let rows = self.query(path, &wire).await?;
            let returned = rows.len();
            let mut kept: Vec<(String, Value)> =
                rows.into_iter().filter(|(k, v)| !is_bound(k, v)).collect();
            let Some((n, first)) = eaten else {
                return Ok(kept);
            };
            let n = n as usize;
            let asked = n.saturating_add(extra as usize);
            if kept.len() < n && returned >= asked && extra < u32::MAX / 2 {
                // Ties with the bound filled the page: ask for more.
                extra = extra
                    .saturating_mul(4)
                    .max((returned - kept.len() + 1) as u32);
                continue;
            }
            if kept.len() > n {
                if first {
                    kept.truncate(n);
                } else {
                    kept.drain(..kept.len() - n);
                }
            }
            return Ok(kept);
        }
    }
}
