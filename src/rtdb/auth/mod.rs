//! Who the runner is to the database. The emulator takes `Bearer owner`; a real database gets a
//! Google OAuth2 access token (scopes firebase.database + userinfo.email) from Application
//! Default Credentials, resolved as firebase-admin does (`adc`): an explicit credentials file,
//! `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's application-default file, the metadata server.
//! File types: `service_account` (JWT-bearer exchange at its `token_uri`), `authorized_user`
//! (refresh token), `external_account` (file-, URL- or executable-sourced subject token, STS
//! exchange, optional impersonation) and `impersonated_service_account`.
//!
//! Tokens are cached and refreshed before expiry (`token`). A token, key, refresh token or
//! subject token only ever travels to its own service or in an `Authorization: Bearer` header:
//! never in a URL, a log line, an error message or a `Debug` output.
//!
//! Modules: `adc` (the chain and its environment), `file` (reading credentials files),
//! `provider` (one `fetch` over the credential types), `service_account`, `user`, `external`,
//! `impersonated`, `metadata`, `oauth` (HTTP to token services), `token` (the cache).

mod adc;
mod external;
mod file;
mod impersonated;
mod metadata;
mod oauth;
mod provider;
mod service_account;
mod token;
mod user;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, Weak};

pub use adc::{Env, CREDENTIALS_ENV};
pub use external::ALLOW_EXECUTABLES_ENV;
pub use metadata::{DEFAULT_METADATA_HOST, METADATA_HOST_ENV, METADATA_TIMEOUT};
pub use token::{Bearer, TokenSource};

use crate::Result;

/// OAuth2 scopes for the Realtime Database REST API.
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/firebase.database",
    "https://www.googleapis.com/auth/userinfo.email",
];

/// The OAuth2 scope for reading a project's Firebase resources (the Realtime Database
/// Management API's instance list, `discovery`): read-only.
pub const FIREBASE_READONLY_SCOPES: [&str; 1] =
    ["https://www.googleapis.com/auth/firebase.readonly"];

#[derive(Clone)]
pub enum Auth {
    /// The emulator: `Authorization: Bearer owner`.
    EmulatorOwner,
    /// A Google OAuth2 access token from one credential, cached and refreshed.
    Google(Arc<TokenSource>),
}

impl Auth {
    /// Application Default Credentials: `explicit` (the configured file, when it is not simply
    /// `GOOGLE_APPLICATION_CREDENTIALS`), then the chain over `env`. No request is made here;
    /// the first token is fetched with the first database request.
    pub fn application_default(explicit: Option<&Path>, env: &Env) -> Result<Auth> {
        Auth::application_default_for(explicit, env, &SCOPES)
    }

    /// `application_default`, for a Google API other than the database: tokens with `scopes`
    /// (a cache of their own, so a database token is never sent elsewhere nor the other way).
    pub fn application_default_for(
        explicit: Option<&Path>,
        env: &Env,
        scopes: &'static [&'static str],
    ) -> Result<Auth> {
        let (p, key) = adc::resolve(explicit, env)?;
        Ok(Auth::shared(key, p, scopes))
    }

    /// One credentials file of any supported type (errors name the file and the problem,
    /// never its contents).
    pub fn from_file(path: &Path, env: &Env) -> Result<Auth> {
        let f = file::read(path, "")?;
        Ok(Auth::shared(
            f.key.clone(),
            file::provider(&f, env)?,
            &SCOPES,
        ))
    }

    /// The metadata server at `host` (what `GCE_METADATA_HOST` names).
    pub fn metadata_server(host: &str) -> Auth {
        Auth::shared(
            format!("metadata:{host}"),
            provider::Provider::Metadata(metadata::MetadataServer::new(host.to_string(), None)),
            &SCOPES,
        )
    }

    /// One token cache per credential in the process: the CLI's runner and its scripts' `db`,
    /// or several runners in one app, share a token instead of each fetching their own.
    fn shared(key: String, p: provider::Provider, scopes: &'static [&'static str]) -> Auth {
        let key = format!("{key}|{}", scopes.join(" "));
        static SOURCES: OnceLock<Mutex<HashMap<String, Weak<TokenSource>>>> = OnceLock::new();
        let mut sources = SOURCES
            .get_or_init(Default::default)
            .lock()
            .expect("token sources");
        sources.retain(|_, s| s.strong_count() > 0);
        if let Some(existing) = sources.get(&key).and_then(Weak::upgrade) {
            return Auth::Google(existing);
        }
        let source = Arc::new(TokenSource::new(p, scopes));
        sources.insert(key, Arc::downgrade(&source));
        Auth::Google(source)
    }

    /// The `Authorization` header value and whether it was fetched just now.
    pub async fn bearer(&self) -> Result<Bearer> {
        match self {
            Auth::EmulatorOwner => Ok(Bearer {
                header: "Bearer owner".to_string(),
                fresh: true,
            }),
            Auth::Google(t) => t.bearer().await,
        }
    }

    /// The `Authorization` header value.
    pub async fn header(&self) -> Result<String> {
        Ok(self.bearer().await?.header)
    }

    /// The database refused `header`: drop it from the cache (if still cached).
    pub async fn invalidate(&self, header: &str) {
        if let Auth::Google(t) = self {
            t.invalidate(header).await;
        }
    }

    /// Who the runner is, for messages: an email, the metadata server, an external account's
    /// audience; "the emulator owner" for the emulator.
    pub fn identity(&self) -> String {
        match self {
            Auth::EmulatorOwner => "the emulator owner".to_string(),
            Auth::Google(t) => t.identity(),
        }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::EmulatorOwner => f.write_str("Auth::EmulatorOwner"),
            Auth::Google(t) => write!(f, "Auth::Google({})", t.identity()),
        }
    }
}
