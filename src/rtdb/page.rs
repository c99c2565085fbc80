//! Queries with exclusive bounds, `startAfter` and `endBefore`, which the REST protocol does not
//! have (it has `startAt`/`endAt`, both inclusive). They are sent as `startAt`/`endAt` and the
//! children equal to the bound (by the query's ordering) are dropped here. With a limit on the
//! side of the bound (`startAfter` + `limitToFirst`, `endBefore` + `limitToLast`) the dropped
//! children would eat into it, so the limit is sent larger and raised again while ties fill it:
//! for `$key` (keys are unique) one extra child is always enough.

use std::cmp::Ordering;
use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use super::order::{compare_keys, compare_values, OrderBy, Query};
use super::unindexed::{self, MissingIndex};
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

impl PageQuery {
    /// The query sent: exclusive bounds as inclusive ones (their ties dropped on arrival), limits
    /// without an ordering by key.
    pub(super) fn wire(&self) -> Result<Query> {
        let mut wire = self.query.clone();
        if self.start_after.is_some() {
            wire.start_at = self.start_after.clone();
        }
        if self.end_before.is_some() {
            wire.end_at = self.end_before.clone();
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
        Ok(wire)
    }

    /// Is a child (its key and the value it is ordered by) equal to one of the exclusive bounds
    /// (dropped: the wire query includes them)?
    pub(super) fn is_bound(&self, order: &OrderBy, key: &str, sort: &Value) -> bool {
        [&self.start_after, &self.end_before]
            .into_iter()
            .flatten()
            .any(|b| ties(order, b, key, sort))
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

/// Is a child (its key and the value it is ordered by) equal to a bound?
fn ties(order: &OrderBy, bound: &Value, key: &str, sort: &Value) -> bool {
    match order {
        OrderBy::Key => compare_keys(key, bound.as_str().unwrap_or_default()) == Ordering::Equal,
        OrderBy::Priority => bound.is_null(),
        _ => compare_values(sort, bound) == Ordering::Equal,
    }
}

/// The children of a read's response: `(key, raw JSON)` in document order (an array's non-null
/// elements keyed by index; nothing for null or a primitive). Shared with the backup walk.
pub(crate) fn members(body: &[u8]) -> Result<Vec<(String, &RawValue)>> {
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Vec<(String, &'de RawValue)>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("query results")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                out.push((k, map.next_value::<&RawValue>()?));
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            let mut i = 0usize;
            while let Some(v) = seq.next_element::<&RawValue>()? {
                if v.get() != "null" {
                    out.push((i.to_string(), v));
                }
                i += 1;
            }
            Ok(out)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_any(Members).map_err(|e| {
        Error::new(
            ErrorCode::BadRequest,
            format!("The server's answer to a query is not JSON ({e})"),
        )
    })
}

/// Query results in RTDB order, as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPage {
    /// The children's keys in RTDB order.
    pub keys: Vec<String>,
    /// `{"<key>": <value>, ...}` in that order (`{}` when none).
    pub json: String,
}

/// One child of a response: key, the value it is ordered by, where its JSON is in the body.
pub(super) type Row = (String, Value, Range<usize>);

/// The value a child (its JSON) is ordered by, for comparing: `null` for `$key` and `$priority`
/// (ordered by key) and for a missing child, objects and arrays as `{}` (all equal).
pub(super) fn row_sort(order: &OrderBy, raw: &str) -> Result<Value> {
    Ok(match order {
        OrderBy::Key | OrderBy::Priority => Value::Null,
        other => {
            let v: Value = serde_json::from_str(raw)
                .map_err(|e| Error::new(ErrorCode::BadRequest, format!("query results: {e}")))?;
            match sort_value(other, &v) {
                None => Value::Null,
                Some(Value::Object(_) | Value::Array(_)) => Value::Object(Default::default()),
                Some(x) => x.clone(),
            }
        }
    })
}

/// The children of a response, sorted, filtered and limited by `wire` as RTDB would.
fn select(body: &[u8], wire: &Query) -> Result<Vec<Row>> {
    let order = wire.order();
    let base = body.as_ptr() as usize;
    let mut items = Vec::new();
    for (k, raw) in members(body)? {
        let sort = row_sort(&order, raw.get())?;
        let start = raw.get().as_ptr() as usize - base;
        items.push((k, sort, start..start + raw.get().len()));
    }
    Ok(wire.select(items))
}

impl Client {
    /// A query that may have exclusive bounds; children in RTDB order as `(key, value)`.
    pub async fn query_page(&self, path: &str, page: &PageQuery) -> Result<Vec<(String, Value)>> {
        let (body, rows) = self.page_rows(path, page).await?;
        rows.into_iter()
            .map(|(k, _, at)| {
                serde_json::from_slice(&body[at])
                    .map(|v| (k, v))
                    .map_err(|e| Error::new(ErrorCode::BadRequest, format!("query results: {e}")))
            })
            .collect()
    }

    /// `query_page` as JSON text: no value is converted, the children's JSON is passed through.
    pub async fn query_page_raw(&self, path: &str, page: &PageQuery) -> Result<RawPage> {
        let (body, rows) = self.page_rows(path, page).await?;
        let mut json = Vec::with_capacity(body.len() + 2);
        json.push(b'{');
        let mut keys = Vec::with_capacity(rows.len());
        for (i, (k, _, at)) in rows.into_iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            serde_json::to_writer(&mut json, &k).expect("a key serialises");
            json.push(b':');
            json.extend_from_slice(&body[at]);
            keys.push(k);
        }
        json.push(b'}');
        let json = String::from_utf8(json).map_err(|_| {
            Error::new(
                ErrorCode::BadRequest,
                "The server sent query results that are not UTF-8",
            )
        })?;
        Ok(RawPage { keys, json })
    }

    /// The rows of a page query in RTDB order, with the response body they point into. A query
    /// refused for want of an index is answered on the client or fails, as the client's
    /// `Unindexed` policy says (`rtdb::unindexed`).
    pub(super) async fn page_rows(
        &self,
        path: &str,
        page: &PageQuery,
    ) -> Result<(Bytes, Vec<Row>)> {
        page.check()?;
        let wire = page.wire()?;
        match self.indexed_rows(path, page, wire.clone()).await {
            Err(e) if unindexed::is_refusal(&e) => {
                let Some(missing) = MissingIndex::of(&super::path::normalize(path)?, &wire.order())
                else {
                    return Err(e);
                };
                match &self.unindexed {
                    Some(policy) if policy.fallback => {
                        policy.notice(&missing);
                        self.answer_on_client(path, page, &wire).await
                    }
                    policy => Err(missing.error(policy.is_some())),
                }
            }
            answered => answered,
        }
    }

    /// `page_rows` as the database answers it (with its indexes).
    pub(super) async fn indexed_rows(
        &self,
        path: &str,
        page: &PageQuery,
        mut wire: Query,
    ) -> Result<(Bytes, Vec<Row>)> {
        let order = wire.order();
        let is_bound = |k: &str, sort: &Value| page.is_bound(&order, k, sort);
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
            let body = self.get_raw(path, &wire).await?;
            let rows = select(&body, &wire)?;
            let returned = rows.len();
            let mut kept: Vec<Row> = rows
                .into_iter()
                .filter(|(k, sort, _)| !is_bound(k, sort))
                .collect();
            let Some((n, first)) = eaten else {
                return Ok((body, kept));
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
            return Ok((body, kept));
        }
    }
}
