//! The commands, one file each (or one per small family), and `dispatch`, the one place that
//! picks a command's file and hands it what it needs: the configuration, a database client, the
//! runner. Each command prints through `Io` and returns its `ExitStatus`.

mod backup;
mod create;
mod down;
mod emulator;
mod firebase;
mod fleet;
mod invocation;
mod list;
mod lock;
mod migrate;
mod one;
mod rehearse;
mod rules_fencing;
mod runner;
mod validate;

use std::path::Path;

use super::all_instances;
use super::args::{BackupCommand, Cli, Command};
use super::configure::{configure, env_file};
use super::host::CliHost;
use super::output::Io;
use super::signals::SIGNALS;
use crate::ExitStatus;
use invocation::Invocation;

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
    // `--all-instances --project <id>`: the set is the project's instances (not for the
    // commands that touch no database).
    let cfg = match (&global.project, &command) {
        (_, Command::Create { .. } | Command::RulesFencing { .. }) => cfg,
        (Some(project), _) if global.all_instances => {
            match all_instances::resolve(project, cfg, io, cwd).await {
                Ok(cfg) => cfg,
                Err(status) => return status,
            }
        }
        _ => cfg,
    };
    let inv = Invocation {
        global: &global,
        host,
        cwd,
        own,
    };
    if cfg.is_many() {
        return fleet::run(command, inv, cfg, io).await;
    }
    // One database: `--database` may name it (and nothing else).
    if let Err(e) = cfg.pick(&global.databases) {
        return io.fail_plain("Configuration error", &e, ExitStatus::ValidationError);
    }
    one::run(command, inv, cfg, io, SIGNALS.stop.clone())
        .await
        .0
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
