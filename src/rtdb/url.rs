//! Database URL forms (INTERFACE; body to be implemented):
//! - production `https://<db>.firebaseio.com`, `https://<db>.<region>.firebasedatabase.app`
//! - emulator `http://host:port?ns=<ns>` (also `http://host:port/?ns=<ns>`)
//! - `FIREBASE_DATABASE_EMULATOR_HOST=host:port` (no scheme) with the namespace taken from the
//!   configured URL's host (`<ns>.firebaseio.com`) or its `?ns=`.

use std::fmt;

use crate::Result;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// `scheme://host[:port]`, no trailing slash.
    pub origin: String,
    /// `Some(ns)` for the emulator (sent as `?ns=`), `None` for production.
    pub namespace: Option<String>,
    /// True when talking to an emulator (auth is `Bearer owner`).
    pub emulator: bool,
}

impl DatabaseUrl {
    /// Parse a configured database URL. Errors name the accepted forms.
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        todo!("{url}")
    }
    /// Apply `FIREBASE_DATABASE_EMULATOR_HOST` (value `host:port`) to an optional configured URL.
    pub fn for_emulator_host(host: &str, configured: Option<&str>) -> Result<DatabaseUrl> {
        todo!("{host} {configured:?}")
    }
    /// Resolve from config + environment: the emulator host env var wins when set.
    pub fn resolve(configured: Option<&str>) -> Result<DatabaseUrl> {
        match std::env::var("FIREBASE_DATABASE_EMULATOR_HOST") {
            Ok(host) if !host.trim().is_empty() => Self::for_emulator_host(host.trim(), configured),
            _ => match configured {
                Some(u) => Self::parse(u),
                None => Err(crate::Error::config(
                    "databaseUrl is not set: set FirebaseConfig.databaseUrl, --database-url, FIREBASE_DATABASE_URL or DATABASE_URL \
                     (e.g. https://<db>.firebaseio.com), or FIREBASE_DATABASE_EMULATOR_HOST=host:port for an emulator",
                )),
            },
        }
    }
    /// `<origin>/<path>.json` (no query string; the client adds `ns` and other params).
    pub fn data_url(&self, path: &str) -> String {
        todo!("{path}")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}?ns={}", self.origin, ns),
            None => f.write_str(&self.origin),
        }
    }
}
