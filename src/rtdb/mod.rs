//! Firebase Realtime Database REST client (the service's REST protocol: `<path>.json` requests,
//! ETags and conditional writes, query parameters, server values, event streams): URL forms, key
//! validation, auth, retries, conditional writes, queries and event streams.
//!
//! Sub-modules:
//! - `database_url`: `DatabaseUrl` — the production and emulator URL forms,
//!   `FIREBASE_DATABASE_EMULATOR_HOST`.
//! - `path`: key/path validation shared by the client and the emulator.
//! - `order`: RTDB child ordering and query evaluation (`Query`), shared by the client (client-side
//!   sort) and the emulator (server-side filtering).
//! - `auth`: `Auth` — `Bearer owner` for the emulator, otherwise an Application Default
//!   Credentials access token (cached, refreshed).
//! - `http_error`: reqwest failures described without their URL.
//! - `retry`: the retry policy (capped exponential backoff with jitter).
//! - `clock`: `Clock` (injectable wall clock) and `ServerClock` (server-time estimate from responses).
//! - `push_id`: `PushIdGenerator` — time-ordered push ids (client-side `push()` keys; the emulator
//!   makes its POST ids with it too).
//! - `client`: `Client`, the HTTP client (facade, transport, settling unknown outcomes, the
//!   `WriteGate` every attempt of a gated write passes, streams).
//! - `unindexed`: queries refused for want of an index (`Index not defined`), answered on the
//!   client as firebase-admin does or failed naming the `.indexOn` to add (`Unindexed`,
//!   `MissingIndex`).
//! - `page`: `PageQuery` — queries with exclusive bounds (`startAfter`, `endBefore`), which REST
//!   lacks, and limits without an ordering (by key).

pub mod auth;
pub mod client;
pub mod clock;
pub mod database_url;
pub(crate) mod http_error;
pub mod order;
pub mod page;
pub mod path;
pub mod push_id;
pub mod retry;
pub mod unindexed;

pub use auth::Auth;
pub use client::{
    CasOutcome, Client, ClientOptions, EventStream, Format, Gate, StreamEvent, Versioned, WriteGate,
};
pub use clock::{Clock, ServerClock, SystemClock};
pub use database_url::DatabaseUrl;
pub use order::{OrderBy, Query};
pub use page::{PageQuery, RawPage};
pub use push_id::{PushIdGenerator, PUSH_CHARS};
pub use retry::{RetryNotice, RetryObserver, RetryPolicy};
pub use unindexed::{MissingIndex, Unindexed};

/// The ETag RTDB gives a missing node; `if-match: null_etag` means "create only if absent".
pub const NULL_ETAG: &str = "null_etag";
