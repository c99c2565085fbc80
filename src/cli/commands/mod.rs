//! The commands, one file each (or one per small family), and `dispatch`, the one place that
//! picks a command's file and hands it what it needs: the configuration, a database client, the
//! runner. Each command prints through `Io` and returns its `ExitStatus`.

mod backup;
mod create;
mod down;
mod emulator;
mod firebase;
mod fleet;
mod list;
mod lock;
mod migrate;
mod rehearse;
mod rules_fencing;
mod runner;
mod validate;

use std::path::Path;

use super::args::{BackupCommand, Cli, Command, GlobalFlags};
use super::configure::{configure, env_file};
use super::host::CliHost;
use super::output::Io;
use super::signals::SIGNALS;
use crate::config::Config;
use crate::connection;
use crate::runner::StopFlag;
use crate::{ErrorCode, ExitStatus};

pub async fn dispatch<H: CliHost + 'static>(
    cli: Cli,
    host: &H,
    io: &mut Io,
    cwd: &Path,
) -> ExitStatus {
    let Cli { global, command } = cli;
    // A command that needs neither configuration nor a database.
    if let Command::LockRelease { force: false } = &command {
        return lock::release_needs_force(io);
    }
    if let Err(status) = env_file(&global, host, io, cwd).await {
        return status;
    }
    if let Command::Emulator {
        host: h,
        port,
        import,
        export_on_exit,
        rules,
    } = &command
    {
        let files = emulator::Files {
            import: import.as_deref(),
            export: export_on_exit.as_deref(),
            rules: rules.as_deref(),
        };
        return emulator::run(h, *port, files, io, cwd).await;
    }
    let own = own_failure(&command);
    let cfg = match configure(&global, host, io, cwd, own).await {
        Ok(cfg) => cfg,
        Err(status) => return status,
    };
    if cfg.is_many() {
        return fleet::run(command, &global, cfg, host, io, cwd, own).await;
    }
    // One database: `--database` may name it (and nothing else).
    if let Err(e) = cfg.pick(&global.databases) {
        return io.fail_plain("Configuration error", &e, ExitStatus::ValidationError);
    }
    one(
        command,
        &global,
        cfg,
        host,
        io,
        cwd,
        own,
        SIGNALS.stop.clone(),
    )
    .await
    .0
}

/// A command on one database (`cfg`'s), stopped by `stop`: its status and the requests it sent.
#[allow(clippy::too_many_arguments)]
pub(super) async fn one<H: CliHost>(
    command: Command,
    global: &GlobalFlags,
    cfg: Config,
    host: &H,
    io: &mut Io,
    cwd: &Path,
    own: ExitStatus,
    stop: StopFlag,
) -> (ExitStatus, u64) {
    let json = global.json();
    // Retry notices print above the progress line, like the log.
    let shown = io.live.clone();
    let format = cfg.log_format;
    let notice = connection::retry_reporter(move |line| {
        let line = match shown.lane_name() {
            Some(name) => runner::of_database(line, name, format),
            None => line.clone(),
        };
        shown.line(&line.render(format, crate::runner::now_ms()))
    });
    let command = match command {
        Command::Create { name, ext } => return (create::run(&cfg, &name, &ext, io, cwd, json), 0),
        Command::FirebaseInfo => return (firebase::info(&cfg, io, json), 0),
        Command::RulesFencing { paths } => return (rules_fencing::run(&cfg, &paths, io, json), 0),
        Command::Rehearse(args) => {
            return (
                rehearse::run(args, global, cfg, host, io, cwd, notice).await,
                0,
            )
        }
        other => other,
    };
    let client = match connection::client_with(&cfg, cwd, Some(notice)) {
        Ok(c) => c,
        Err(e) => {
            let what = match e.code {
                ErrorCode::ConfigInvalid => "Configuration error",
                _ => "Connection error",
            };
            return (
                io.fail_plain(what, &e, ExitStatus::DatabaseConnectionError),
                0,
            );
        }
    };
    let status = match command {
        Command::LockStatus => lock::status(&cfg.lock_service(&client), io, json).await,
        Command::LockRelease { .. } => lock::release(&cfg.lock_service(&client), io, json).await,
        Command::FirebaseTestConnection => firebase::test_connection(&client, &cfg, io, json).await,
        Command::FirebaseNodes => firebase::nodes(&client, &cfg, io, json).await,
        Command::FirebaseBackupNodes { nodes } => {
            firebase::backup_nodes(&client, &cfg, &nodes, io).await
        }
        Command::Backup(cmd) => backup::run(cmd, &client, &cfg, io, json, cwd, own).await,
        // The commands that run scripts: through the runner.
        command => {
            let session =
                runner::Session::start(global, cfg, client.clone(), host, io, cwd, own, stop);
            match command {
                Command::Migrate {
                    target,
                    wait,
                    mark_applied,
                } => migrate::run(&session, io, target.as_deref(), wait, mark_applied).await,
                Command::Down {
                    target,
                    steps,
                    wait,
                } => down::run(&session, io, target.as_deref(), steps, wait).await,
                Command::List { number } => list::run(&session, io, &number).await,
                Command::Validate => validate::run(&session, io).await,
                _ => ExitStatus::GeneralError,
            }
        }
    };
    (status, client.requests_sent())
}

/// A command's own failure status: what a failure without a status of its own ends it with.
fn own_failure(c: &Command) -> ExitStatus {
    match c {
        Command::Migrate { .. } | Command::Rehearse(_) => ExitStatus::MigrationFailed,
        Command::Down { .. } => ExitStatus::RollbackFailed,
        Command::Validate => ExitStatus::ValidationError,
        Command::Backup(BackupCommand::Create) => ExitStatus::BackupFailed,
        Command::Backup(BackupCommand::Restore { .. }) => ExitStatus::RestoreFailed,
        Command::FirebaseInfo
        | Command::FirebaseTestConnection
        | Command::FirebaseNodes
        | Command::FirebaseBackupNodes { .. } => ExitStatus::DatabaseConnectionError,
        _ => ExitStatus::GeneralError,
    }
}
