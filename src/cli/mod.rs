//! The `msr-firebase` command line: argument parsing (clap), configuration loading
//! (defaults < file < `MSR_*` env < flags), the commands and their output, and exit codes.
//! It runs inside Node (bin/msr-firebase.js) because config files and scripts are JS; `CliHost`
//! is what it needs from JS.

mod args;
mod commands;
mod env_file;
mod live;
mod lock_cmds;
pub mod output;
mod progress;
mod rehearse;
mod run_cmds;
mod scaffold;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use clap::Parser;
use serde_json::Value;
use tokio::sync::Notify;

pub use args::{Cli, Command, Format};
pub use output::Io;

use crate::config::Config;
use crate::log::{LogLevel, LogLine};
use crate::runner::{ScriptHost, StopFlag};
use crate::{Error, ErrorCode, Result};

/// Exit codes (the predecessor's).
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const GENERAL: i32 = 1;
    pub const VALIDATION: i32 = 2;
    pub const MIGRATION_FAILED: i32 = 3;
    pub const ROLLBACK_FAILED: i32 = 4;
    pub const BACKUP_FAILED: i32 = 5;
    pub const RESTORE_FAILED: i32 = 6;
    pub const CONNECTION: i32 = 7;
}

/// What the CLI needs from JS besides running scripts.
pub trait CliHost: ScriptHost + Clone {
    /// Evaluate a JS config file (object, function or promise of either) to plain settings.
    fn load_config(&self, file: &Path) -> impl Future<Output = Result<Value>> + Send;
    /// Tell JS the effective configuration before any script runs (it builds `db`/`handler`).
    fn init(&self, config: &Value) -> impl Future<Output = Result<()>> + Send;
    /// Set environment variables (from `--env-file`) for the rest of the process, Rust and JS
    /// alike. JS sets them on its own thread, where Node expects environment changes.
    fn set_env(&self, vars: Vec<(String, String)>) -> impl Future<Output = Result<()>> + Send {
        async move {
            for (k, v) in vars {
                std::env::set_var(k, v);
            }
            Ok(())
        }
    }
}

/// SIGINT/SIGTERM delivered by bin/msr-firebase.js: migrations stop after the current step, the
/// emulator shuts down.
pub struct Signals {
    pub stop: StopFlag,
    pub notify: Notify,
}

pub static SIGNALS: LazyLock<Signals> = LazyLock::new(|| Signals {
    stop: StopFlag::default(),
    notify: Notify::new(),
});

/// The connection and fence of the CLI's runner, for the `db` its scripts get (`cliDatabase()`
/// in the binding): scripts share the runner's connection and are fenced by its lease (L12).
/// `(client, fence, the path checkConnection() reads)`.
pub type ScriptDb = (crate::rtdb::Client, crate::lock::Fence, String);

pub static SCRIPT_DB: std::sync::Mutex<Option<ScriptDb>> = std::sync::Mutex::new(None);

pub fn signal() {
    SIGNALS.stop.request();
    SIGNALS.notify.notify_waiters();
    SIGNALS.notify.notify_one();
}

/// The exit code for an error, given the command's own failure code.
pub fn exit_code(e: &Error, command_default: i32) -> i32 {
    match e.code {
        ErrorCode::ConfigInvalid | ErrorCode::ValidationFailed | ErrorCode::InvalidPath => {
            exit::VALIDATION
        }
        ErrorCode::ConnectionFailed
        | ErrorCode::DatabaseNotFound
        | ErrorCode::AuthFailed
        | ErrorCode::PermissionDenied
        | ErrorCode::SourceUnreadable => exit::CONNECTION,
        ErrorCode::Usage => exit::GENERAL,
        // The table's 3, whichever command: a held lock (--no-wait), a lost lock, a signal.
        ErrorCode::LockHeld | ErrorCode::LockLost | ErrorCode::Interrupted => {
            exit::MIGRATION_FAILED
        }
        ErrorCode::RollbackFailed => exit::ROLLBACK_FAILED,
        ErrorCode::BackupFailed => exit::BACKUP_FAILED,
        ErrorCode::RestoreFailed => exit::RESTORE_FAILED,
        _ => command_default,
    }
}

/// `--format json` (or `--format=json`) anywhere in `argv`: known even when parsing fails.
fn wants_json(argv: &[String]) -> bool {
    argv.iter()
        .zip(argv.iter().skip(1).map(Some).chain([None]))
        .any(|(a, next)| {
            a == "--format=json" || (a == "--format" && next.is_some_and(|n| n == "json"))
        })
}

/// Parse `argv` (without the program name) and run the command. Returns the exit code.
pub async fn run<H: CliHost>(argv: Vec<String>, host: H, io: &mut Io) -> i32 {
    io.format_json = wants_json(&argv);
    let cli = match Cli::try_parse_from(std::iter::once("msr-firebase".to_string()).chain(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayVersion => {
                    io.line(env!("CARGO_PKG_VERSION"));
                    exit::SUCCESS
                }
                ErrorKind::DisplayHelp => {
                    let _ = std::io::Write::write_all(&mut io.out, text.as_bytes());
                    exit::SUCCESS
                }
                kind if io.format_json => {
                    // clap's message and its tips (the fix, e.g. "a similar argument exists:
                    // '--dry-run'"), without the usage and the pointer to --help.
                    let parts: Vec<String> = text
                        .split("\n\n")
                        .filter(|p| {
                            let p = p.trim_start();
                            !p.is_empty()
                                && !p.starts_with("Usage:")
                                && !p.starts_with("For more information")
                        })
                        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                        .collect();
                    let joined = parts.join("; ");
                    let message = match kind {
                        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                            "a subcommand is required (run with --help to list them)"
                        }
                        _ => joined.strip_prefix("error: ").unwrap_or(&joined),
                    };
                    io.fail(&Error::new(ErrorCode::Usage, message), exit::GENERAL, "")
                }
                _ => {
                    io.eline(text.trim_end());
                    exit::GENERAL
                }
            };
        }
    };
    io.format_json = cli.global.json();
    // Until the configuration is read: the flag, else MSR_LOG_FORMAT.
    io.set_log_json(cli.global.log_format.map_or_else(
        || std::env::var("MSR_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json")),
        |f| f == args::LogFormatArg::Json,
    ));
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    commands::dispatch(cli, &host, io, &cwd).await
}

/// How long the process may outlive its command's end before it is ended from here.
pub const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The command is over with `code`: end the process with it after [`EXIT_GRACE`] unless it has
/// ended by then. The JS side exits at once; this is for a JS thread that cannot (a config module
/// stuck in a synchronous loop), so that no input makes the CLI hang.
pub fn exit_after_grace(code: i32) {
    std::thread::spawn(move || {
        std::thread::sleep(EXIT_GRACE);
        std::process::exit(code)
    });
}

/// How long a config module may take to load (its promise to settle) by default.
pub const CONFIG_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The effective configuration for a CLI run, and the log lines about where it came from (the
/// file used, at debug; files ignored, at warn), to print once the log level is known.
pub async fn load_config<H: CliHost>(
    flags: &args::GlobalFlags,
    host: &H,
    cwd: &Path,
) -> Result<(Config, Vec<LogLine>)> {
    let env = std::env::var("MSR_CONFIG_FILE").ok();
    let found = crate::config::file::find(flags.config_file.as_deref(), env.as_deref(), cwd)?;
    let mut notes: Vec<LogLine> = found
        .ignored
        .iter()
        .map(|(p, why)| {
            LogLine::new(
                LogLevel::Warn,
                "config.ignored",
                format!("⚠ Ignoring {}: {why}", p.display()),
            )
            .with("file", p)
        })
        .collect();
    let mut layers: Vec<(String, Value)> = Vec::new();
    if let Some(file) = &found.path {
        notes.push(
            LogLine::new(
                LogLevel::Debug,
                "config.file",
                format!("Using config file {} ({})", file.display(), found.source),
            )
            .with("file", file),
        );
        let value = if file.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::config(format!("Cannot read config file {}: {e}", file.display()))
            })?;
            serde_json::from_str(&text).map_err(|e| {
                Error::config(format!(
                    "Config file {} is not valid JSON: {e}",
                    file.display()
                ))
            })?
        } else {
            let deadline = flags
                .config_timeout
                .map_or(CONFIG_DEADLINE, std::time::Duration::from_millis);
            load_module(host, file, deadline).await?
        };
        if value.is_null() {
            return Err(Error::config(format!(
                "Config file {} exports null (or nothing): export an object of settings, e.g. \
                 module.exports = {{ folder: './migrations', locking: {{ enabled: true }} }} \
                 (a function returning one, or a promise of one, works too)",
                file.display()
            )));
        }
        layers.push((format!("config file {}", file.display()), value));
    }
    layers.push((
        "environment (MSR_* variables)".into(),
        crate::config::env_layer(std::env::vars())?,
    ));
    layers.push(("command-line flags".into(), flags.config_layer()));
    let refs: Vec<(&str, Value)> = layers
        .iter()
        .map(|(s, v)| (s.as_str(), v.clone()))
        .collect();
    Ok((Config::from_layers(&refs)?, notes))
}

/// Evaluate a JS config module, within `deadline`; SIGINT/SIGTERM end the wait at once.
async fn load_module<H: CliHost>(
    host: &H,
    file: &Path,
    deadline: std::time::Duration,
) -> Result<Value> {
    let stop = SIGNALS.stop.token();
    tokio::select! {
        loaded = host.load_config(file) => loaded.map_err(|e| Error::config(e.message)),
        () = tokio::time::sleep(deadline) => Err(Error::config(format!(
            "Config file {} did not finish loading within {}: a config module must export its settings, or a function \
             or promise that settles with them; look for a promise that never settles (e.g. a connection opened while \
             loading), or give it longer with --config-timeout <ms>. Nothing was done",
            file.display(),
            crate::time::human(deadline)
        ))),
        () = stop.cancelled() => Err(Error::new(
            ErrorCode::Interrupted,
            format!("Stopped by a signal while loading config file {}; nothing was done", file.display()),
        )),
    }
}
