//! `backup create | restore <file> | list`: the `{shift}` subtree to a backup file and back, with
//! a progress gauge on stderr; SIGINT/SIGTERM stop a transfer (a partial backup file is removed,
//! a restore says what it wrote).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::backup::{BackupOptions, Progress, RestoreOptions};
use crate::cli::live::Live;
use crate::cli::output::Io;
use crate::cli::signals::SIGNALS;
use crate::config::Config;
use crate::rtdb::Client;
use crate::ExitStatus;

/// `backup create`; `own` is its failure status (5).
pub async fn create(
    client: &Client,
    cfg: &Config,
    io: &mut Io,
    json: bool,
    cwd: &Path,
    own: ExitStatus,
) -> ExitStatus {
    let made = counted(io.live.clone(), cfg, |progress| {
        let opts = BackupOptions {
            progress: Some(progress),
            stop: Some(SIGNALS.stop.shared()),
            ..Default::default()
        };
        async move { crate::backup::create_with(client, cfg, cwd, &opts).await }
    })
    .await;
    let ended = made.map(|path| {
        let text = format!(
            "{} Backup created successfully: {}",
            io.green("✓"),
            path.display()
        );
        (json!({"path": path}), text)
    });
    report(io, json, ended, "Backup creation failed", own)
}

/// `backup restore <file>`; `own` is its failure status (6).
pub async fn restore(
    client: &Client,
    cfg: &Config,
    file: &str,
    io: &mut Io,
    json: bool,
    cwd: &Path,
    own: ExitStatus,
) -> ExitStatus {
    let path = Config::resolve(cwd, file);
    let restored = counted(io.live.clone(), cfg, |progress| {
        let opts = RestoreOptions {
            progress: Some(progress),
            stop: Some(SIGNALS.stop.shared()),
            ..Default::default()
        };
        let path = &path;
        async move { crate::backup::restore_with(client, cfg, path, &opts).await }
    })
    .await;
    let ended = restored.map(|_| {
        let text = format!(
            "{} Database restored successfully from {}",
            io.green("✓"),
            path.display()
        );
        (json!({"restored": path}), text)
    });
    report(io, json, ended, "Restore failed", own)
}

/// A transfer of `/<shift>` counted into a gauge on stderr while it runs.
async fn counted<F: Future>(
    live: Live,
    cfg: &Config,
    work: impl FnOnce(Arc<Progress>) -> F,
) -> F::Output {
    let progress = Arc::new(Progress::default());
    let work = work(progress.clone());
    live.gauge(&crate::backup::shown(cfg.shift_path().as_deref()), progress);
    live.while_running(work).await
}

/// The end of a transfer: its result (JSON under `--format json`, else its line), or the error
/// with the transfer's own status unless the database was out of reach.
fn report(
    io: &mut Io,
    json: bool,
    ended: crate::Result<(Value, String)>,
    failed: &str,
    own: ExitStatus,
) -> ExitStatus {
    match ended {
        Ok((value, _)) if json => {
            io.json(&value);
            ExitStatus::Success
        }
        Ok((_, text)) => {
            io.line(text);
            ExitStatus::Success
        }
        Err(e) => {
            let text = format!("{} {failed}: {}", io.red("✗"), e.message);
            io.fail(&e, ExitStatus::of_transfer_failure(e.code, own), text)
        }
    }
}

/// `backup list`: the backup files in `backup.folder`, newest first.
pub async fn list(cfg: &Config, io: &mut Io, json: bool, cwd: &Path) -> ExitStatus {
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
