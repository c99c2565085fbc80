//! Turning a `Config` into a connected `Client`: the database URL (or the emulator named by
//! `FIREBASE_DATABASE_EMULATOR_HOST`), the credentials, and the clock.

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::rtdb::{clock, Auth, Client, ClientOptions, DatabaseUrl, RetryPolicy};
use crate::{Error, ErrorCode, Result};

/// Build a client for `cfg` (no request is made). Relative credential paths resolve against `cwd`.
pub fn client_for(cfg: &Config, cwd: &Path) -> Result<Client> {
    let url = DatabaseUrl::resolve(cfg.database_url.as_deref())?;
    let auth = if url.emulator {
        Auth::EmulatorOwner
    } else {
        match cfg.application_credentials.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(path) => Auth::service_account_file(&Config::resolve(cwd, path).to_string_lossy())?,
            None => {
                return Err(Error::new(
                    ErrorCode::AuthFailed,
                    "Application credentials not found in configuration: set applicationCredentials, --credentials or \
                     GOOGLE_APPLICATION_CREDENTIALS to a service account key file (or FIREBASE_DATABASE_EMULATOR_HOST for an emulator)",
                ))
            }
        }
    };
    Client::new(ClientOptions {
        url,
        auth,
        retry: RetryPolicy::default(),
        request_timeout: Duration::from_secs(30),
        clock: clock::clock_from_env(),
    })
}

/// Build a client and prove the database answers (one real round trip).
pub async fn connect(cfg: &Config, cwd: &Path) -> Result<Client> {
    let client = client_for(cfg, cwd)?;
    client.check_connection().await?;
    Ok(client)
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
