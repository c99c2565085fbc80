//! Authentication (INTERFACE; body to be implemented). The token only ever travels in an
//! `Authorization: Bearer` header; never in a URL, a log line or an error message.

use std::sync::Arc;

use crate::Result;

#[derive(Clone)]
pub enum Auth {
    /// The emulator: `Authorization: Bearer owner`.
    EmulatorOwner,
    /// A service account key file, through gcp_auth (token cached and refreshed).
    ServiceAccount(Arc<gcp_auth::CustomServiceAccount>),
}

impl Auth {
    /// Load a service account key file (path relative to the working directory). Errors name
    /// the file and what is wrong with it, never its secret contents.
    pub fn service_account_file(path: &str) -> Result<Auth> {
        todo!("{path}")
    }
    /// The `Authorization` header value.
    pub async fn header(&self) -> Result<String> {
        todo!()
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::EmulatorOwner => f.write_str("Auth::EmulatorOwner"),
            Auth::ServiceAccount(_) => f.write_str("Auth::ServiceAccount(<redacted>)"),
        }
    }
}
