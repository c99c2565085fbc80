//! `runCli(argv, host)` for bin/msr-firebase.js, and `cliSignal()` for its signal handlers.

use napi_derive::napi;

use super::database::NativeDatabase;
use super::host::{HostFn, JsHost};
use msr_firebase::cli::{self, Io};

/// Run the CLI; resolves with the exit code (bin/msr-firebase.js then ends the process; should
/// its thread be stuck, `cli::exit_after_grace` does).
#[napi(ts_args_type = "argv: string[], host: (request: any) => Promise<any>")]
pub async fn run_cli(argv: Vec<String>, host: HostFn) -> napi::Result<i32> {
    let mut io = Io::stdio();
    let code = cli::run(argv, JsHost::new(host), &mut io).await;
    cli::exit_after_grace(code);
    Ok(code)
}

/// SIGINT/SIGTERM: running migrations stop after the current step; the emulator shuts down.
#[napi]
pub fn cli_signal() {
    cli::signal();
}

/// The `db` for the scripts of the running command: the runner's connection, fenced by its
/// lease. Null before a command that runs scripts has started.
#[napi]
pub fn cli_database() -> Option<NativeDatabase> {
    let db = cli::SCRIPT_DB.lock().unwrap_or_else(|p| p.into_inner());
    db.as_ref().map(NativeDatabase::from)
}
