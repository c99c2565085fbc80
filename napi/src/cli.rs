//! `runCli(argv, host)` for bin/msr-firebase.js, `cliSignal()` for its signal handlers, and
//! `exitStatuses()`, the exit codes (index.js's `ExitCode`, lib/signals.js's forced exits).

use napi_derive::napi;

use super::host::{HostFn, JsHost};
use msr_firebase::cli::{self, Io};
use msr_firebase::ExitStatus;

/// Run the CLI; resolves with the exit code (bin/msr-firebase.js then ends the process; should
/// its thread be stuck, `cli::exit_after_grace` does).
#[napi(ts_args_type = "argv: string[], host: (request: any, db?: NativeScriptDb) => Promise<any>")]
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

/// One exit status of the CLI.
#[napi(object)]
pub struct NativeExitStatus {
    /// `SUCCESS`, `MIGRATION_FAILED`, ... (the key in `ExitCode`).
    pub name: String,
    pub code: i32,
    /// The signal whose second delivery ends the process with this status; null for the
    /// statuses a command returns (the `ExitCode` table).
    pub signal: Option<String>,
}

/// Every exit status, from the core's one table.
#[napi]
pub fn exit_statuses() -> Vec<NativeExitStatus> {
    ExitStatus::all()
        .iter()
        .map(|s| NativeExitStatus {
            name: s.name().to_string(),
            code: s.code(),
            signal: s.signal().map(String::from),
        })
        .collect()
}
