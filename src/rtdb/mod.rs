//! Firebase Realtime Database REST client (shared/spec/rtdb-rest.md): URL forms, key validation,
//! auth, retries, conditional writes, queries and event streams.
//!
//! Sub-modules:
//! - `url`: `DatabaseUrl` — the production and emulator URL forms, `FIREBASE_DATABASE_EMULATOR_HOST`.
//! - `path`: key/path validation shared by the client and the emulator.
//! - `order`: RTDB child ordering and query evaluation (`Query`), shared by the client (client-side
//!   sort) and the emulator (server-side filtering).
//! - `auth`: `Auth` — `Bearer owner` for the emulator, a cached service-account token otherwise.
//! - `retry`: the retry policy (capped exponential backoff with jitter).
//! - `clock`: `Clock` (injectable wall clock) and `ServerClock` (server-time estimate from responses).
//! - `client`: `Client`, the HTTP client.

pub mod auth;
pub mod client;
pub mod clock;
pub mod order;
pub mod path;
pub mod retry;
pub mod url;

pub use auth::Auth;
pub use client::{CasOutcome, Client, ClientOptions, EventStream, StreamEvent, Versioned};
pub use clock::{Clock, ServerClock, SystemClock};
pub use order::{OrderBy, Query};
pub use retry::RetryPolicy;
pub use url::DatabaseUrl;

/// The ETag RTDB gives a missing node; `if-match: null_etag` means "create only if absent".
pub const NULL_ETAG: &str = "null_etag";
