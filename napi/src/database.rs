//! `NativeDatabase`: the REST client for JS (the `db.database` facade in lib/database.js is
//! built on it).

use napi_derive::napi;
use serde_json::Value;

use super::error::IntoNapi;
use msr_firebase::rtdb::{CasOutcome, Client, OrderBy, PageQuery, Query};
use msr_firebase::Error;

#[napi]
pub struct NativeDatabase {
    pub(crate) client: Client,
    /// What `checkConnection()` reads (shallow): the history node, one of the runner's own
    /// paths; never the root, which Security Rules usually deny.
    pub(crate) check_path: String,
}

/// Query parameters as JS passes them.
#[napi(object)]
pub struct QueryOptions {
    /// `$key`, `$value`, `$priority` or a child path.
    pub order_by: Option<String>,
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<u32>,
    pub limit_to_last: Option<u32>,
    /// Children strictly after this value (by the ordering).
    pub start_after: Option<Value>,
    /// Children strictly before this value.
    pub end_before: Option<Value>,
}

/// Query results as JSON text: an object of the children in RTDB order, and their keys in that
/// order (JS objects put integer-like keys first, so the order is not the object's own).
#[napi(object)]
pub struct JsonPage {
    pub json: String,
    pub keys: Vec<String>,
}

impl From<QueryOptions> for PageQuery {
    fn from(mut q: QueryOptions) -> PageQuery {
        let (start_after, end_before) = (q.start_after.take(), q.end_before.take());
        PageQuery {
            query: q.into(),
            start_after,
            end_before,
        }
    }
}

impl From<QueryOptions> for Query {
    fn from(q: QueryOptions) -> Query {
        Query {
            order_by: q.order_by.map(|o| match o.as_str() {
                "$key" => OrderBy::Key,
                "$value" => OrderBy::Value,
                "$priority" => OrderBy::Priority,
                child => OrderBy::Child(child.to_string()),
            }),
            start_at: q.start_at,
            end_at: q.end_at,
            equal_to: q.equal_to,
            limit_to_first: q.limit_to_first,
            limit_to_last: q.limit_to_last,
        }
    }
}

/// A value with the ETag it was read at.
#[napi(object)]
pub struct NativeVersioned {
    #[napi(ts_type = "unknown")]
    pub value: Value,
    pub etag: String,
}

/// A conditional write: `written`, else the node's current value and ETag.
#[napi(object)]
pub struct NativeCasResult {
    pub written: bool,
    /// The value written (server values resolved), or the current one on a mismatch.
    #[napi(ts_type = "unknown")]
    pub value: Value,
    pub etag: String,
}

impl From<CasOutcome> for NativeCasResult {
    fn from(outcome: CasOutcome) -> Self {
        let (written, v) = match outcome {
            CasOutcome::Written(v) => (true, v),
            CasOutcome::Mismatch(v) => (false, v),
        };
        NativeCasResult {
            written,
            value: v.value,
            etag: v.etag,
        }
    }
}

#[napi]
impl NativeDatabase {
    /// The database URL (never with credentials).
    #[napi(getter)]
    pub fn url(&self) -> String {
        self.client.url().to_string()
    }
    /// Whether this connection's writes send `disableTriggers=true`.
    #[napi(getter)]
    pub fn disables_triggers(&self) -> bool {
        self.client.disables_triggers()
    }
    /// The same connection (gate and notices included) with its writes sending
    /// `disableTriggers=true` (`disabled`) or not: a `bulkWriter({ disableTriggers })`.
    #[napi]
    pub fn with_disable_triggers(&self, disabled: bool) -> NativeDatabase {
        NativeDatabase {
            client: self.client.with_disable_triggers(disabled),
            check_path: self.check_path.clone(),
        }
    }
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn get(&self, path: String) -> napi::Result<Value> {
        self.client.get(&path).await.napi()
    }
    #[napi]
    pub async fn get_versioned(&self, path: String) -> napi::Result<NativeVersioned> {
        let v = self.client.get_versioned(&path).await.napi()?;
        Ok(NativeVersioned {
            value: v.value,
            etag: v.etag,
        })
    }
    #[napi(ts_return_type = "Promise<unknown>")]
    pub async fn get_shallow(&self, path: String) -> napi::Result<Value> {
        self.client.get_shallow(&path).await.napi()
    }
    /// Children as `[key, value]` pairs in RTDB order.
    #[napi(ts_return_type = "Promise<Array<[string, unknown]>>")]
    pub async fn query(
        &self,
        path: String,
        query: QueryOptions,
    ) -> napi::Result<Vec<(String, Value)>> {
        self.client.query_page(&path, &query.into()).await.napi()
    }
    /// The value at `path` as the JSON text the server sent (`"null"` when missing): cheaper for
    /// JS to parse than a converted value.
    #[napi]
    pub async fn get_json(&self, path: String) -> napi::Result<String> {
        let body = self.client.get_raw(&path, &Query::default()).await.napi()?;
        String::from_utf8(body.to_vec())
            .map_err(|_| {
                Error::new(
                    msr_firebase::ErrorCode::BadRequest,
                    "The server sent a body that is not UTF-8",
                )
            })
            .napi()
    }
    /// A query (exclusive bounds allowed) as JSON text.
    #[napi]
    pub async fn query_json(&self, path: String, query: QueryOptions) -> napi::Result<JsonPage> {
        let page = self
            .client
            .query_page_raw(&path, &query.into())
            .await
            .napi()?;
        Ok(JsonPage {
            json: page.json,
            keys: page.keys,
        })
    }
    /// PUT of JSON text (from `JSON.stringify`).
    #[napi]
    pub async fn set_json(&self, path: String, json: String) -> napi::Result<()> {
        self.client.set_raw(&path, json.into()).await.napi()
    }
    /// Multi-path PATCH of JSON text (an object of paths to values).
    #[napi]
    pub async fn update_json(&self, path: String, json: String) -> napi::Result<()> {
        self.client.update_raw(&path, json.into()).await.napi()
    }
    #[napi]
    pub async fn set(&self, path: String, value: Value) -> napi::Result<()> {
        self.client.set(&path, &value).await.napi()
    }
    #[napi]
    pub async fn update(&self, path: String, patch: Value) -> napi::Result<()> {
        match patch {
            Value::Object(map) => self.client.update(&path, &map).await.napi(),
            other => Err(Error::new(
                msr_firebase::ErrorCode::BadRequest,
                format!("update() at '{path}' needs an object of children to write, got {other}"),
            ))
            .napi(),
        }
    }
    /// DELETE; a node too big for one request is deleted in chunks (`write.chunked` notice).
    #[napi]
    pub async fn remove(&self, path: String) -> napi::Result<()> {
        self.client.remove(&path).await.napi()
    }
    /// New child with a time-ordered push id; returns the id.
    #[napi]
    pub async fn push(&self, path: String, value: Value) -> napi::Result<String> {
        self.client.push(&path, &value).await.napi()
    }
    /// Conditional PUT (on a mismatch, the current value and ETag).
    #[napi]
    pub async fn put_if_match(
        &self,
        path: String,
        value: Value,
        etag: String,
    ) -> napi::Result<NativeCasResult> {
        Ok(self
            .client
            .put_if_match(&path, &value, &etag)
            .await
            .napi()?
            .into())
    }
    #[napi]
    pub async fn delete_if_match(
        &self,
        path: String,
        etag: String,
    ) -> napi::Result<NativeCasResult> {
        Ok(self
            .client
            .delete_if_match(&path, &etag)
            .await
            .napi()?
            .into())
    }
    /// A real round trip (a shallow read of the history node); rejects with the reason when the
    /// database cannot be reached or the read is denied.
    #[napi]
    pub async fn check_connection(&self) -> napi::Result<()> {
        self.client
            .get_shallow(&self.check_path)
            .await
            .map(|_| ())
            .napi()
    }
}

/// `path` normalised (`a/b`, `""` for the root); throws INVALID_PATH naming the bad key and why
/// (RTDB keys: at most 768 bytes, none of `. $ # [ ] /`, no control characters; depth below 32).
#[napi]
pub fn normalize_path(path: String) -> napi::Result<String> {
    msr_firebase::rtdb::path::normalize(&path).napi()
}
