//! `backup create | restore <file> | list`: the `{shift}` subtree to a backup file and back, with
//! a progress gauge on stderr; SIGINT/SIGTERM stop a transfer (a partial backup file is removed,
//! a restore says what it wrote).

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::backup::{BackupOptions, Progress, RestoreOptions};
use crate::cli::args::BackupCommand;
use crate::cli::output::Io;
use crate::cli::signals::SIGNALS;
use crate::config::Config;
use crate::rtdb::Client;
use crate::ExitStatus;

/// `backup create` (`own`: 5), `backup restore <file>` (`own`: 6), `backup list`.
pub async fn run(
    cmd: BackupCommand,
    client: &Client,
    cfg: &Config,
    io: &mut Io,
    json: bool,
    cwd: &Path,
    own: ExitStatus,
) -> ExitStatus {
    let (failed, file) = match cmd {
        BackupCommand::List => return list(cfg, io, json, cwd).await,
        BackupCommand::Create => ("Backup creation failed", None),
        BackupCommand::Restore { file } => ("Restore failed", Some(Config::resolve(cwd, &file))),
    };
    // The transfer of `/<shift>`, counted into a gauge on stderr while it runs.
    let progress = Arc::new(Progress::default());
    let (counted, stop) = (Some(progress.clone()), Some(SIGNALS.stop.shared()));
    let work = async {
        match &file {
            None => {
                let opts = BackupOptions {
                    progress: counted,
                    stop,
                    ..Default::default()
                };
                let path = crate::backup::create_with(client, cfg, cwd, &opts).await?;
                let done = format!("Backup created successfully: {}", path.display());
                Ok((json!({ "path": path }), done))
            }
            Some(path) => {
                let opts = RestoreOptions {
                    progress: counted,
                    stop,
                    ..Default::default()
                };
                crate::backup::restore_with(client, cfg, path, &opts).await?;
                let done = format!("Database restored successfully from {}", path.display());
                Ok((json!({ "restored": path }), done))
            }
        }
    };
    let live = io.live.clone();
    live.gauge(&crate::backup::shown(cfg.shift_path().as_deref()), progress);
    let ended: crate::Result<(Value, String)> = live.while_running(work).await;
    match ended {
        Ok((value, _)) if json => {
            io.json(&value);
            ExitStatus::Success
        }
        Ok((_, done)) => {
            io.line(format!("{} {done}", io.green("✓")));
            ExitStatus::Success
        }
        Err(e) => {
            let text = format!("{} {failed}: {}", io.red("✗"), e.message);
            io.fail(&e, ExitStatus::of_transfer_failure(e.code, own), text)
        }
    }
}

/// `backup list`: the backup files in `backup.folder`, newest first.
async fn list(cfg: &Config, io: &mut Io, json: bool, cwd: &Path) -> ExitStatus {
    match crate::backup::list(cfg, cwd).await {
        Ok(list) => {
            if json {
                io.json(&serde_json::to_value(&list).unwrap_or(Value::Null));
            } else if list.is_empty() {
                io.line(format!(
                    "No backups in {}",
                    cfg.backup_folder_path(cwd).display()
                ));
            } else {
                for b in &list {
                    io.line(format!(
                        "  {}  {:>10} bytes  {}",
                        b.created_at.as_deref().unwrap_or("(unknown time)"),
                        b.size,
                        b.path.display()
                    ));
                }
            }
            ExitStatus::Success
        }
        Err(e) => {
            let text = format!("{} Listing backups failed: {}", io.red("✗"), e.message);
            io.fail(&e, ExitStatus::GeneralError, text)
        }
    }
}
