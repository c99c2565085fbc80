//! The `msr-firebase` command line: argument parsing (clap), configuration loading
//! (defaults < file < `MSR_*` env < flags), the commands and their output, and exit statuses.
//! It runs inside Node (bin/msr-firebase.js) because config files and scripts are JS; `CliHost`
//! is what it needs from JS.
//!
//! The files below import one another downwards only: `run` (here) -> `commands` (dispatch, then
//! one file per command) -> `configure`, `output`, `live`, `args`, ...; nothing imports this file.

mod all_instances;
mod args;
mod captured;
mod commands;
mod configure;
mod env_file;
mod host;
mod live;
pub mod output;
mod progress;
mod signals;

use std::path::PathBuf;

use clap::Parser;

pub use args::{Cli, Command, Format};
pub use configure::{load_config, CONFIG_DEADLINE};
pub use host::CliHost;
pub use output::Io;
pub use signals::{signal, Signals, SIGNALS};

use crate::log::LogFormat;
use crate::{Error, ErrorCode, ExitStatus};

/// `--format json` (or `--format=json`) anywhere in `argv`: known even when parsing fails.
fn wants_json(argv: &[String]) -> bool {
    argv.iter()
        .zip(argv.iter().skip(1).map(Some).chain([None]))
        .any(|(a, next)| {
            a == "--format=json" || (a == "--format" && next.is_some_and(|n| n == "json"))
        })
}

/// Parse `argv` (without the program name) and run the command. Returns the exit code.
pub async fn run<H: CliHost + 'static>(argv: Vec<String>, host: H, io: &mut Io) -> i32 {
    io.format_json = wants_json(&argv);
    let cli = match Cli::try_parse_from(std::iter::once("msr-firebase".to_string()).chain(argv)) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return match e.kind() {
                ErrorKind::DisplayVersion => {
                    io.line(env!("CARGO_PKG_VERSION"));
                    ExitStatus::Success.code()
                }
                ErrorKind::DisplayHelp => {
                    let _ = std::io::Write::write_all(&mut io.out, text.as_bytes());
                    ExitStatus::Success.code()
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
                    io.fail(
                        &Error::new(ErrorCode::Usage, message),
                        ExitStatus::GeneralError,
                        "",
                    )
                    .code()
                }
                _ => {
                    io.eline(text.trim_end());
                    ExitStatus::GeneralError.code()
                }
            };
        }
    };
    io.format_json = cli.global.json();
    // Until the configuration is read: the flag, else MSR_LOG_FORMAT.
    let format = cli.global.log_format.or_else(|| {
        std::env::var("MSR_LOG_FORMAT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    io.set_log_json(format == Some(LogFormat::Json));
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    commands::dispatch(cli, &host, io, &cwd).await.code()
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
