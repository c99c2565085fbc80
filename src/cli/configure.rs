//! The configuration of a CLI run: the `--env-file` variables first, then the layers (defaults <
//! config file < `MSR_*` env < flags), a JS config module loaded within `--config-timeout` and
//! ended by SIGINT/SIGTERM; the log switched to the configured format, with the notes on which
//! files were used or ignored.

use std::path::Path;

use serde_json::Value;

use super::args::GlobalFlags;
use super::host::CliHost;
use super::output::Io;
use super::signals::SIGNALS;
use crate::config::Config;
use crate::log::{LogFormat, LogLevel, LogLine};
use crate::{Error, ErrorCode, ExitStatus, Result};

/// Set the `--env-file` variables the environment does not set already (or print why the file
/// cannot be read and return the exit status).
pub async fn env_file<H: CliHost>(
    flags: &GlobalFlags,
    host: &H,
    io: &mut Io,
    cwd: &Path,
) -> std::result::Result<(), ExitStatus> {
    let Some(file) = &flags.env_file else {
        return Ok(());
    };
    let loaded = super::env_file::missing_vars(file, cwd, |k| std::env::var_os(k).is_some());
    let set = match loaded {
        Ok(vars) => host.set_env(vars).await,
        Err(e) => Err(e),
    };
    set.map_err(|e| {
        let text = format!("✗ Configuration error: {}", e.message);
        io.fail(&e, ExitStatus::ValidationError, text)
    })
}

/// Load the configuration (or print why it cannot be loaded and return the exit status, `own`
/// for a failure without a status of its own), switch the log to its format, and say which
/// config file it came from (debug) and which files were ignored (warn).
pub async fn configure<H: CliHost>(
    flags: &GlobalFlags,
    host: &H,
    io: &mut Io,
    cwd: &Path,
    own: ExitStatus,
) -> std::result::Result<Config, ExitStatus> {
    let (cfg, notes) = match load_config(flags, host, cwd).await {
        Ok(loaded) => loaded,
        Err(e) => return Err(io.fail_plain("Configuration error", &e, own)),
    };
    io.set_log_json(cfg.log_format == LogFormat::Json);
    for note in notes.iter().filter(|n| n.level <= cfg.log_level) {
        io.live
            .line(&note.render(cfg.log_format, crate::runner::now_ms()));
    }
    Ok(cfg)
}

/// How long a config module may take to load (its promise to settle) by default.
pub const CONFIG_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// The effective configuration for a CLI run, and the log lines about where it came from (the
/// file used, at debug; files ignored, at warn), to print once the log level is known.
pub async fn load_config<H: CliHost>(
    flags: &GlobalFlags,
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
