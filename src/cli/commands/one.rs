//! A command on one database: the config's, or one database's of a run over many (`fleet`).
//! Builds its client (counting its requests) and hands the command what it needs.

use super::invocation::Invocation;
use super::{
    backup, create, down, firebase, list, lock, migrate, rehearse, rules_fencing, runner, validate,
};
use crate::cli::args::Command;
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::config::Config;
use crate::connection;
use crate::runner::StopFlag;
use crate::{ErrorCode, ExitStatus};

/// A command on one database (`cfg`'s), stopped by `stop`: its status and the requests it sent.
pub async fn run<H: CliHost>(
    command: Command,
    inv: Invocation<'_, H>,
    cfg: Config,
    io: &mut Io,
    stop: StopFlag,
) -> (ExitStatus, u64) {
    let Invocation {
        global,
        host,
        cwd,
        own,
    } = inv;
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
            let session = runner::Session::start(inv, cfg, client.clone(), io, stop);
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
