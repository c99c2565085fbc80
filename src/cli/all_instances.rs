//! `--all-instances --project <id>`: the set of databases is the project's active Realtime
//! Database instances, as the Management API lists them (`crate::discovery`), named after their
//! instance ids; the rest of the configuration is shared as for `databases`. A configuration that
//! names databases too is refused (which set to run on would be a guess).

use std::path::Path;

use super::output::Io;
use crate::config::{Config, DatabaseEntry};
use crate::discovery::ManagementApi;
use crate::log::{LogLevel, LogLine};
use crate::{connection, Error, ExitStatus};

/// `cfg` with the project's instances as its `databases`, checked like configured ones.
pub async fn resolve(
    project: &str,
    mut cfg: Config,
    io: &mut Io,
    cwd: &Path,
) -> Result<Config, ExitStatus> {
    if cfg.is_many() || cfg.database_url.is_some() {
        let e = Error::config(
            "--all-instances runs on the instances of --project, but the configuration names \
             databases too (databaseUrl, databaseUrls or databases): drop --all-instances, or \
             remove those settings (and MSR_DATABASE_URL / --database-url)",
        );
        return Err(io.fail_plain("Configuration error", &e, ExitStatus::ValidationError));
    }
    let (explicit, env) = connection::credentials_chain(&cfg, cwd);
    let found = match ManagementApi::application_default(explicit.as_deref(), &env) {
        Ok(api) => api.discover(project).await,
        Err(e) => Err(e),
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => {
            return Err(io.fail_plain(
                "Listing the project's instances failed",
                &e,
                ExitStatus::DatabaseConnectionError,
            ))
        }
    };
    let names: Vec<&str> = found.instances.iter().map(|i| i.name.as_str()).collect();
    let mut lines = vec![LogLine::new(
        LogLevel::Info,
        "discovery.instances",
        format!(
            "Project {project}: {} Realtime Database instance(s) to run on: {}",
            names.len(),
            names.join(", ")
        ),
    )
    .with("project", project)
    .with("instances", names.join(","))];
    for s in &found.skipped {
        lines.push(
            LogLine::new(
                LogLevel::Warn,
                "discovery.skipped",
                format!("⚠ Instance {} skipped: {}", s.instance.name, s.reason),
            )
            .with("instance", &s.instance.name)
            .with("reason", &s.reason),
        );
    }
    for line in lines.iter().filter(|l| l.level <= cfg.log_level) {
        io.live
            .line(&line.render(cfg.log_format, crate::runner::now_ms()));
    }
    cfg.databases = found
        .databases()
        .into_iter()
        .map(|(name, database_url)| DatabaseEntry {
            name,
            database_url,
            shift: None,
            credentials: None,
        })
        .collect();
    if let Err(e) = cfg.validate() {
        return Err(io.fail_plain("Configuration error", &e, ExitStatus::ValidationError));
    }
    Ok(cfg)
}
