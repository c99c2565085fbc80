//! Turning a `Config` into a connected `Client`: the database URL (or the emulator named by
//! `FIREBASE_DATABASE_EMULATOR_HOST`), the credentials, the clock, and whether its writes send
//! `disableTriggers=true` (`writes.disableTriggers`).

use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::log::{LogLevel, LogLine};
use crate::rtdb::{
    auth, clock, Auth, Client, ClientOptions, DatabaseUrl, RetryObserver, RetryPolicy,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}
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
    client_with(cfg, cwd, None)
}

/// `client_for`, with `on_retry` hearing every retry of a failing request.
pub fn client_with(cfg: &Config, cwd: &Path, on_retry: Option<RetryObserver>) -> Result<Client> {
    let url = DatabaseUrl::resolve(cfg.database_url.as_deref())?;
    let auth = if url.emulator && !emulator_uses_credentials() {
        Auth::EmulatorOwner
    } else {
        let (explicit, env) = credentials_chain(cfg, cwd);
        Auth::application_default(explicit.as_deref(), &env)?
    };
    Ok(Client::new(options(cfg, url, auth, on_retry))?
        .with_disable_triggers(cfg.writes.disable_triggers))
}

/// The Application Default Credentials chain of `cfg`: its explicit first step (the configured
/// credentials file, when it is not simply `GOOGLE_APPLICATION_CREDENTIALS`) and the environment,
/// relative paths resolved against `cwd`. The database client and `discovery` both start there.
pub fn credentials_chain(cfg: &Config, cwd: &Path) -> (Option<std::path::PathBuf>, auth::Env) {
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
    (explicit, env)
}

/// The client options for `cfg`'s network settings.
fn options(
    cfg: &Config,
    url: DatabaseUrl,
    auth: Auth,
    on_retry: Option<RetryObserver>,
) -> ClientOptions {
    ClientOptions {
        url,
        auth,
        retry: RetryPolicy {
            window: Some(ms(cfg.network.retry_window)),
            ..RetryPolicy::default()
        },
        request_timeout: ms(cfg.network.response_timeout),
        connect_timeout: Some(ms(cfg.network.connect_timeout)),
        on_retry,
        clock: clock::clock_from_env(),
        auth_variable_override: cfg.database_auth_variable_override.clone(),
    }
}

/// A retry observer that tells a person what is going on while a request is retried: one log
/// line (`network.retry`: `⚠ Could not reach the database at 127.0.0.1:9000 (no response within
/// 10 s (timed out)); retry 2 in 0.6 s (10.4 s so far)`, with the host, retry, pause and time so
/// far as fields), at most one a second, through `sink`.
pub fn retry_reporter(sink: impl Fn(&LogLine) + Send + Sync + 'static) -> RetryObserver {
    let last: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    std::sync::Arc::new(move |n: &crate::rtdb::RetryNotice| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        *last = Some(std::time::Instant::now());
        let line = LogLine::new(
            LogLevel::Warn,
            "network.retry",
            format!(
                "⚠ Could not reach the database at {} ({}); retry {} in {:.1} s ({:.1} s so far)",
                n.host,
                n.why,
                n.retry,
                n.pause.as_secs_f64(),
                n.elapsed.as_secs_f64()
            ),
        )
        .with("host", &n.host)
        .with("reason", &n.why)
        .with("retry", n.retry)
        .with("pauseMs", n.pause.as_millis() as u64)
        .with("elapsedMs", n.elapsed.as_millis() as u64);
        sink(&line);
    })
}

/// A client for the in-process emulator at `url` (`http://127.0.0.1:<port>?ns=<ns>`, a
/// rehearsal's sandbox), exactly there: `FIREBASE_DATABASE_EMULATOR_HOST` and the credentials
/// chain are not consulted, so a sandbox client can never reach another database. Anything but
/// a loopback emulator URL is refused.
pub fn sandbox_client(url: &str, cfg: &Config) -> Result<Client> {
    let parsed = DatabaseUrl::parse(url)?;
    let loopback = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "127.0.0.1" || h == "localhost" || h == "[::1]");
    if !parsed.emulator || !loopback {
        return Err(crate::Error::config(format!(
            "{url} is not a loopback emulator URL; a sandbox lives on 127.0.0.1"
        )));
    }
    Ok(
        Client::new(options(cfg, parsed, Auth::EmulatorOwner, None))?
            .with_disable_triggers(cfg.writes.disable_triggers),
    )
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
