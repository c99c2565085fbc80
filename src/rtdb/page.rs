//! Queries with exclusive bounds, `startAfter` and `endBefore`, which the REST protocol does not
//! have (it has `startAt`/`endAt`, both inclusive). They are sent as `startAt`/`endAt` and the
//! children equal to the bound (by the query's ordering) are dropped here. With a limit on the
//! side of the bound (`startAfter` + `limitToFirst`, `endBefore` + `limitToLast`) the dropped
//! children would eat into it, so the limit is sent larger and raised again while ties fill it:
//! for `$key` (keys are unique) one extra child is always enough.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::Range;

use bytes::Bytes;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
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
    let mut out = Vec::new();
    each_member(body, |k, v| {
        out.push((k.to_string(), v));
        Ok(())
    })?;
    Ok(out)
}

/// `members` one at a time, nothing kept: `f(key, raw JSON)` for each child, in document order;
/// the first error of `f` stops the walk and is returned.
pub(crate) fn each_member<'b>(
    body: &'b [u8],
    mut f: impl FnMut(&str, &'b RawValue) -> Result<()>,
) -> Result<()> {
    struct Each<'f, F> {
        f: &'f mut F,
        failed: &'f mut Option<Error>,
    }
    impl<'f, F> Each<'f, F> {
        fn give<'b, E: de::Error>(&mut self, k: &str, v: &'b RawValue) -> Result<(), E>
        where
            F: FnMut(&str, &'b RawValue) -> Result<()>,
        {
            (self.f)(k, v).map_err(|e| {
                *self.failed = Some(e);
                E::custom("stopped")
            })
        }
    }
    impl<'b, F: FnMut(&str, &'b RawValue) -> Result<()>> Visitor<'b> for Each<'_, F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("query results")
        }
        fn visit_map<A: MapAccess<'b>>(mut self, mut map: A) -> Result<(), A::Error> {
            while let Some(k) = map.next_key::<Key<'b>>()? {
                let v = map.next_value::<&RawValue>()?;
                self.give(&k.0, v)?;
            }
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'b>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0usize;
            while let Some(v) = seq.next_element::<&RawValue>()? {
                if v.get() != "null" {
                    self.give(&i.to_string(), v)?;
                }
                i += 1;
            }
            Ok(())
        }
    }
    let mut failed = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let walked = match body.trim_ascii_start().first() {
        Some(b'{' | b'[') => de.deserialize_any(Each {
            f: &mut f,
            failed: &mut failed,
        }),
        // null or a plain value: no children.
        _ => IgnoredAny::deserialize(&mut de).map(|_| ()),
    }
    .and_then(|()| de.end());
    match (failed, walked) {
        (Some(e), _) => Err(e),
        (None, Ok(())) => Ok(()),
        (None, Err(e)) => Err(Error::new(
            ErrorCode::BadRequest,
            format!("The server's answer to a query is not JSON ({e})"),
        )),
    }
}

/// A key as the response has it: borrowed from it unless it has escapes.
struct Key<'b>(Cow<'b, str>);

impl<'b> Deserialize<'b> for Key<'b> {
    fn deserialize<D: Deserializer<'b>>(d: D) -> Result<Self, D::Error> {
        struct KeyText;
        impl<'b> Visitor<'b> for KeyText {
            type Value = Key<'b>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'b str) -> Result<Key<'b>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'b>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyText)
    }
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
/// (ordered by key) and for a missing child, objects and arrays as `{}` (all equal). Only the
/// ordered value is made: the rest of the child is read past, not built.
pub(super) fn row_sort(order: &OrderBy, raw: &str) -> Result<Value> {
    let path = match order {
        OrderBy::Key | OrderBy::Priority => return Ok(Value::Null),
        OrderBy::Value => "",
        OrderBy::Child(path) => path.as_str(),
    };
    let mut de = serde_json::Deserializer::from_str(raw);
    SortAt(path)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::new(ErrorCode::BadRequest, format!("query results: {e}")))
}

/// The value at a child path (`a/b`; `""`: the value itself) as `row_sort` compares it.
struct SortAt<'p>(&'p str);

impl SortAt<'_> {
    /// The first segment of the path and the rest; `None` at its end.
    fn step(&self) -> Option<(&str, &str)> {
        let p = self.0.trim_start_matches('/');
        (!p.is_empty()).then(|| p.split_once('/').unwrap_or((p, "")))
    }
    /// A plain value: itself at the end of the path, else nothing there.
    fn plain(&self, v: impl FnOnce() -> Value) -> Value {
        match self.step() {
            None => v(),
            Some(_) => Value::Null,
        }
    }
}

impl<'de> DeserializeSeed<'de> for SortAt<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SortAt<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a child")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(self.plain(|| Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(self.plain(|| Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(self.plain(|| Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(self.plain(|| Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(self.plain(|| Value::from(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let Some((seg, rest)) = self.step() else {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            return Ok(Value::Object(Default::default()));
        };
        // The last of equal keys counts, as when the child is parsed whole.
        let mut found = Value::Null;
        while let Some(here) = map.next_key_seed(KeyIs(seg))? {
            if here {
                found = map.next_value_seed(SortAt(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(self.plain(|| Value::Object(Default::default())))
    }
}

/// Is the next key this one? (Compared without keeping it.)
struct KeyIs<'s>(&'s str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `row_sort` as it was: the child parsed whole, then the path followed.
    fn parsed_whole(order: &OrderBy, raw: &str) -> Value {
        let v: Value = serde_json::from_str(raw).unwrap();
        let at = match order {
            OrderBy::Key | OrderBy::Priority => return Value::Null,
            OrderBy::Value => Some(&v),
            OrderBy::Child(path) => path
                .split('/')
                .filter(|s| !s.is_empty())
                .try_fold(&v, |cur, seg| cur.get(seg)),
        };
        match at {
            None => Value::Null,
            Some(Value::Object(_) | Value::Array(_)) => Value::Object(Default::default()),
            Some(x) => x.clone(),
        }
    }

    #[test]
    fn row_sort_reads_only_the_ordered_value_and_finds_what_a_whole_parse_finds() {
        let children = [
            "null",
            "true",
            "-7",
            "18446744073709551615",
            "2.5e3",
            r#""text""#,
            r#"[1, {"a": 2}]"#,
            r#"{}"#,
            r#"{"email": "a@b", "age": 30, "tags": {"x": true}}"#,
            r#"{"email": null, "age": "30"}"#,
            r#"{"profile": {"age": 41, "name": "n"}, "age": [1]}"#,
            r#"{"profile": 5}"#,
            r#"{"profile": {"age": {"deep": 1}}}"#,
            r#"{"age": 1, "age": 2}"#,
            r#"{"a\"ge": 3, "\u0061ge": 9}"#,
            r#"{"profile": [ {"age": 1} ]}"#,
        ];
        let orders = [
            OrderBy::Key,
            OrderBy::Priority,
            OrderBy::Value,
            OrderBy::Child("age".into()),
            OrderBy::Child("email".into()),
            OrderBy::Child("profile/age".into()),
            OrderBy::Child("/profile//age/".into()),
            OrderBy::Child("tags/x".into()),
            OrderBy::Child("profile/0".into()),
        ];
        for raw in children {
            for order in &orders {
                assert_eq!(
                    row_sort(order, raw).unwrap(),
                    parsed_whole(order, raw),
                    "{order:?} of {raw}"
                );
            }
        }
        assert!(row_sort(&OrderBy::Value, "{\"a\": 1} x").is_err());
        assert!(row_sort(&OrderBy::Child("a".into()), "{\"a\": ").is_err());
    }

    #[test]
    fn each_member_borrows_keys_and_stops_at_the_first_error() {
        let body = br#"{"a": 1, "b\u0041": {"x": [1]}, "c": null}"#;
        let mut seen = Vec::new();
        each_member(body, |k, v| {
            seen.push(format!("{k}={}", v.get()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["a=1", r#"bA={"x": [1]}"#, "c=null"]);
        let mut n = 0;
        let e = each_member(body, |_, _| {
            n += 1;
            Err(Error::new(ErrorCode::TooBig, "enough"))
        })
        .unwrap_err();
        assert_eq!((n, e.code), (1, ErrorCode::TooBig));
        assert!(each_member(b"{nope", |_, _| Ok(())).is_err());
        assert_eq!(members(b"[1, null, 3]").unwrap().len(), 2);
        for plain in [&b" null "[..], b"5", br#""s""#, b"true"] {
            assert!(members(plain).unwrap().is_empty());
        }
        assert!(members(b"5 6").is_err());
    }
}
