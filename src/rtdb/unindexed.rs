//! Queries the database refuses for want of an index (`400 Index not defined, add ".indexOn":
//! "email", for path "/users", to the rules`): a child or `$value` ordering at a location whose
//! rules do not list it in `.indexOn`. firebase-admin does not fail there: it downloads the
//! location, filters and orders it on the client and warns. A client given an [`Unindexed`]
//! policy does the same (`Client::with_unindexed`; the scripts' `db` gets one from
//! `queries.unindexed`): `fallback` reads the node and answers the query locally, exactly as the
//! indexed query would (see `page`), after one [`MissingIndex`] notice per location and ordering;
//! `error` (and a client without a policy) fails with the `.indexOn` line to add and where.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;

use super::order::{compare_keys, compare_values, OrderBy, Query};
use super::page::{each_member, row_sort, PageQuery, Row};
use super::Client;
use crate::{Error, ErrorCode, Result};

/// Children per key page at first, and at most.
const FIRST_PAGE_KEYS: u32 = 128;
const MAX_PAGE_KEYS: u32 = 10_000;
/// The JSON size a key page aims at.
const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// A query refused for want of an index: where, and by what it was ordered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MissingIndex {
    /// The queried location, `/users` (`/` for the root).
    pub path: String,
    /// What `.indexOn` must list there: the child path (`email`, `profile/age`) or `.value`.
    pub child: String,
}

impl MissingIndex {
    /// The index a query needs at `path` (as the client normalised it: `users`, `""` for the
    /// root); `None` for `$key` and `$priority`, which need none.
    pub fn of(path: &str, order: &OrderBy) -> Option<MissingIndex> {
        let child = match order {
            OrderBy::Child(c) => c.clone(),
            OrderBy::Value => ".value".to_string(),
            OrderBy::Key | OrderBy::Priority => return None,
        };
        Some(MissingIndex {
            path: format!("/{}", path.trim_matches('/')),
            child,
        })
    }

    /// The rules line to add at `path`: `".indexOn": "email"`.
    pub fn index_on(&self) -> String {
        format!(
            "\".indexOn\": {}",
            serde_json::Value::from(self.child.as_str())
        )
    }

    /// firebase-admin's warning, word for word.
    pub fn warning(&self) -> String {
        format!(
            "Using an unspecified index. Your data will be downloaded and filtered on the client. \
             Consider adding {} at {} to your security rules for better performance.",
            self.index_on(),
            self.path
        )
    }

    /// The failure of the query when it is not answered on the client.
    pub fn error(&self, policy_says_error: bool) -> Error {
        let by = if self.child == ".value" {
            "its value".to_string()
        } else {
            format!("child \"{}\"", self.child)
        };
        let fix = if policy_says_error {
            " (queries.unindexed is 'error'; with 'fallback', the default, the node is downloaded \
             and filtered on the client as firebase-admin does)"
        } else {
            ""
        };
        Error::new(
            ErrorCode::BadRequest,
            format!(
                "The query on {} ordered by {by} needs an index the database's rules do not define: \
                 add {} at {} to the rules{fix}",
                self.path,
                self.index_on(),
                self.path
            ),
        )
    }
}

/// Is `e` the database refusing a query for want of an index?
pub(crate) fn is_refusal(e: &Error) -> bool {
    e.code == ErrorCode::BadRequest && e.message.contains("Index not defined")
}

/// Hears each location and ordering answered on the client, once.
pub type NoticeFn = Arc<dyn Fn(&MissingIndex) + Send + Sync>;

/// What a client does with a query refused for want of an index.
pub struct Unindexed {
    /// Answer it on the client (`true`) or fail naming the index.
    pub fallback: bool,
    notice: NoticeFn,
    /// The locations and orderings already noticed.
    noticed: Mutex<HashSet<MissingIndex>>,
}

impl Unindexed {
    /// A policy: `fallback` or not, `notice` told once per location and ordering answered on
    /// the client.
    pub fn new(fallback: bool, notice: NoticeFn) -> Arc<Unindexed> {
        Arc::new(Unindexed {
            fallback,
            notice,
            noticed: Mutex::new(HashSet::new()),
        })
    }

    /// Tell the notice about `missing`, unless it was told already.
    pub(crate) fn notice(&self, missing: &MissingIndex) {
        let first = self
            .noticed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(missing.clone());
        if first {
            (self.notice)(missing);
        }
    }
}

/// A query answered on the client: what it keeps of each child and in which order.
struct Local<'a> {
    page: &'a PageQuery,
    order: OrderBy,
    /// The sent query's bounds, without its limits (applied once the rest is sorted).
    range: Query,
}

impl<'a> Local<'a> {
    fn new(page: &'a PageQuery, wire: &Query) -> Local<'a> {
        Local {
            page,
            order: wire.order(),
            range: Query {
                limit_to_first: None,
                limit_to_last: None,
                ..wire.clone()
            },
        }
    }

    /// The value the child with this JSON is ordered by, when the query keeps it.
    fn keeps(&self, key: &str, raw: &str) -> Result<Option<Value>> {
        let sort = row_sort(&self.order, raw)?;
        let kept = self.range.in_range(&self.order, key, &sort)
            && !self.page.is_bound(&self.order, key, &sort);
        Ok(kept.then_some(sort))
    }

    /// Sorted as RTDB orders the query (value, ties by key), then limited.
    fn finish<T>(&self, rows: &mut Vec<(String, Value, T)>) {
        rows.sort_by(|(ka, va, _), (kb, vb, _)| {
            compare_values(va, vb).then_with(|| compare_keys(ka, kb))
        });
        let q = &self.page.query;
        if let Some(n) = q.limit_to_first {
            rows.truncate(n as usize);
        }
        if let Some(n) = q.limit_to_last {
            let n = n as usize;
            if rows.len() > n {
                rows.drain(..rows.len() - n);
            }
        }
    }

    fn limited(&self) -> bool {
        self.page.query.limit_to_first.is_some() || self.page.query.limit_to_last.is_some()
    }
}

impl Client {
    /// `page` (sent as `wire`) answered on the client, as the database answers it with an
    /// index: one GET of the node; when the database refuses it as too big, the node in pages of
    /// children by key (`orderBy="$key"`, `startAfter` the last key, `limitToFirst`, halved when
    /// refused). Of each child only the value it is ordered by is parsed (`row_sort`), and only
    /// the children the query keeps are listed: memory holds the node's text (or one page's)
    /// and the result.
    pub(super) async fn answer_on_client(
        &self,
        path: &str,
        page: &PageQuery,
        wire: &Query,
    ) -> Result<(Bytes, Vec<Row>)> {
        let local = Local::new(page, wire);
        match self.get_raw(path, &Query::default()).await {
            Ok(body) => {
                let base = body.as_ptr() as usize;
                let mut rows = Vec::new();
                each_member(&body, |k, raw| {
                    if let Some(sort) = local.keeps(k, raw.get())? {
                        let start = raw.get().as_ptr() as usize - base;
                        rows.push((k.to_string(), sort, start..start + raw.get().len()));
                    }
                    Ok(())
                })?;
                local.finish(&mut rows);
                Ok((body, rows))
            }
            Err(e) if e.code == ErrorCode::TooBig => self.answer_by_pages(path, &local).await,
            Err(e) => Err(e),
        }
    }

    /// `answer_on_client` over pages of children by key: each page's kept children are copied
    /// out, and with a limit only the best ones are kept after each page.
    async fn answer_by_pages(&self, path: &str, local: &Local<'_>) -> Result<(Bytes, Vec<Row>)> {
        let mut kept: Vec<(String, Value, Vec<u8>)> = Vec::new();
        let mut last: Option<String> = None;
        let (mut per_page, mut cap) = (FIRST_PAGE_KEYS, MAX_PAGE_KEYS);
        loop {
            let keys = PageQuery {
                query: Query {
                    order_by: Some(OrderBy::Key),
                    limit_to_first: Some(per_page),
                    ..Query::default()
                },
                start_after: last.clone().map(Value::String),
                end_before: None,
            };
            let (body, rows) = match self.indexed_rows(path, &keys, keys.wire()?).await {
                Ok(answer) => answer,
                Err(e) if e.code == ErrorCode::TooBig && per_page > 1 => {
                    cap = per_page / 2;
                    per_page = cap;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let got = rows.len();
            for (k, _, at) in rows {
                let raw = std::str::from_utf8(&body[at]).map_err(|_| {
                    Error::new(
                        ErrorCode::BadRequest,
                        "The server sent a child that is not UTF-8",
                    )
                })?;
                if let Some(sort) = local.keeps(&k, raw)? {
                    kept.push((k.clone(), sort, raw.as_bytes().to_vec()));
                }
                last = Some(k);
            }
            if local.limited() {
                local.finish(&mut kept);
            }
            if got < per_page as usize {
                break;
            }
            let per_child = (body.len() / got.max(1)).max(1);
            per_page = ((PAGE_BYTES / per_child) as u32).clamp(1, cap);
        }
        local.finish(&mut kept);
        let mut body = Vec::with_capacity(kept.iter().map(|(_, _, j)| j.len()).sum());
        let rows = kept
            .into_iter()
            .map(|(k, sort, json)| {
                let start = body.len();
                body.extend_from_slice(&json);
                (k, sort, start..body.len())
            })
            .collect();
        Ok((Bytes::from(body), rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_index_in_firebase_admins_words() {
        let m = MissingIndex::of("users", &OrderBy::Child("email".into())).unwrap();
        assert_eq!(m.index_on(), "\".indexOn\": \"email\"");
        assert_eq!(
            m.warning(),
            "Using an unspecified index. Your data will be downloaded and filtered on the client. \
             Consider adding \".indexOn\": \"email\" at /users to your security rules for better performance."
        );
        let v = MissingIndex::of("", &OrderBy::Value).unwrap();
        assert_eq!((v.path.as_str(), v.child.as_str()), ("/", ".value"));
        assert!(MissingIndex::of("users", &OrderBy::Key).is_none());
        let e = m.error(true);
        assert!(
            e.message
                .contains("add \".indexOn\": \"email\" at /users to the rules")
                && e.message.contains("queries.unindexed is 'error'"),
            "{}",
            e.message
        );
    }

    #[test]
    fn notices_each_location_and_ordering_once() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let u = Unindexed::new(
            true,
            Arc::new(move |m: &MissingIndex| h.lock().unwrap().push(m.clone())),
        );
        let email = MissingIndex::of("users", &OrderBy::Child("email".into())).unwrap();
        let age = MissingIndex::of("users", &OrderBy::Child("age".into())).unwrap();
        for m in [&email, &age, &email, &age] {
            u.notice(m);
        }
        assert_eq!(*heard.lock().unwrap(), vec![email, age]);
    }
}
