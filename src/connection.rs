//! Turning a `Config` into a connected `Client`: the database URL (or the emulator named by
//! `FIREBASE_DATABASE_EMULATOR_HOST`), the credentials, and the clock.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::rtdb::{auth, clock, Auth, Client, ClientOptions, DatabaseUrl, RetryPolicy};
use crate::Result;

/// The seam that points the production auth path at an emulator: with
/// `MSR_FIREBASE_EMULATOR_AUTH=credentials`, an emulator database gets the Application Default
/// Credentials token (as production does) instead of `Bearer owner`, so a test can walk key file
/// -> token endpoint -> `Authorization` header -> the emulator's required-token lever.
pub const EMULATOR_AUTH_ENV: &str = "MSR_FIREBASE_EMULATOR_AUTH";

fn emulator_uses_credentials() -> bool {
    std::env::var(EMULATOR_AUTH_ENV).is_ok_and(|v| v.trim() == "credentials")
}

fn env_path(name: &str, cwd: &Path) -> Option<std::path::PathBuf> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| Config::resolve(cwd, &v))
}

/// Build a client for `cfg` (no request is made; the first token is fetched with the first
/// request). Relative credential paths resolve against `cwd`.
pub fn client_for(cfg: &Config, cwd: &Path) -> Result<Client> {
    let url = DatabaseUrl::resolve(cfg.database_url.as_deref())?;
    let auth = if url.emulator && !emulator_uses_credentials() {
        Auth::EmulatorOwner
    } else {
        let env = auth::Env {
            credentials_file: env_path(auth::CREDENTIALS_ENV, cwd),
            ..auth::Env::from_process()
        };
        // `applicationCredentials` defaults to GOOGLE_APPLICATION_CREDENTIALS; only a different
        // value is the explicit first step of the chain.
        let explicit = cfg
            .application_credentials
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .map(|p| Config::resolve(cwd, p))
            .filter(|p| Some(p) != env.credentials_file.as_ref());
        Auth::application_default(explicit.as_deref(), &env)?
    };
    Client::new(ClientOptions {
        url,
        auth,
        retry: RetryPolicy::default(),
        request_timeout: Duration::from_secs(30),
        clock: clock::clock_from_env(),
        auth_variable_override: cfg.database_auth_variable_override.clone(),
    })
}

/// Prove the database answers and lets this identity in, with one cheap request on one of the
/// runner's own paths: a shallow read of the history node `{shift}/{tableName}`. Never the root,
/// which Security Rules (or an identity limited to its own subtree) usually deny.
pub async fn check(client: &Client, cfg: &Config) -> Result<()> {
    client.get_shallow(&cfg.history_path()).await.map(|_| ())
}

/// What `getConnectionInfo()` and `firebase:info` show.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInfo {
    pub database_url: Option<String>,
    pub shift: Option<String>,
    pub table_name: String,
    pub emulator: bool,
}

impl ConnectionInfo {
    pub fn new(cfg: &Config, client: &Client) -> ConnectionInfo {
        ConnectionInfo {
            database_url: Some(client.url().to_string()),
            shift: cfg.shift.clone(),
            table_name: cfg.table_name.clone(),
            emulator: client.url().emulator,
        }
    }
}
