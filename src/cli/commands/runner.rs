//! What the commands that run scripts share: the `Session` (the runner, built once per command
//! with the CLI's log sink, progress listener, backups and stop flag), the log sink and the
//! progress listener themselves (`rehearse` uses them too), and the report of a `migrate`/`down`
//! run: the error, the JSON result, the dry run's plan, or the command's own success text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use super::invocation::Invocation;
use crate::backup::Progress;
use crate::cli::args::WaitArgs;
use crate::cli::host::CliHost;
use crate::cli::live::Live;
use crate::cli::output::Io;
use crate::config::Config;
use crate::lock::{WaitDefault, WaitPolicy, WaitRequest};
use crate::log::{LineFn, LogFormat, LogLevel, LogLine};
use crate::rtdb::Client;
use crate::runner::{
    now_ms, DefaultBackups, EventFn, Method, MigrationInfo, MigrationResult, RunEvent, RunOptions,
    RunOutcome, Runner,
};
use crate::{Error, ExitStatus};

/// A command's runner, with what its report needs.
pub struct Session<H: CliHost> {
    pub runner: Runner<H>,
    /// The command's own failure status.
    pub own: ExitStatus,
    /// `--format json`.
    pub json: bool,
    /// `--dry-run` or `dryRun`.
    pub dry_run: bool,
    no_lock: bool,
    /// Error log lines, held back until the command's end (see [`log_fn`]).
    held: Arc<Mutex<Vec<LogLine>>>,
    live: Live,
}

impl<H: CliHost> Session<H> {
    /// Build the runner: its log lines and progress on stderr; its scripts get its `db`
    /// (`Runner::script_db`: its connection, fenced by its lease).
    pub fn start(
        inv: Invocation<'_, H>,
        cfg: Config,
        client: Client,
        io: &Io,
        stop: crate::runner::StopFlag,
    ) -> Session<H> {
        let Invocation {
            global: flags,
            host,
            cwd,
            own,
        } = inv;
        let held = Arc::new(Mutex::new(Vec::new()));
        let live = io.live.clone();
        let lock = cfg.locking.enabled.then(|| cfg.lock_service(&client));
        let gauge = Arc::new(Progress::default());
        let shown = crate::backup::shown(cfg.shift_path().as_deref());
        let dry_run = flags.dry_run || cfg.dry_run;
        let runner = Runner::new(cfg.clone(), client, host.clone(), cwd.to_path_buf())
            .with_lock(lock)
            .with_log_lines(log_fn(&cfg, held.clone(), live.clone()))
            .with_events(progress(live.clone(), Some((shown, gauge.clone()))))
            .with_backups(Arc::new(DefaultBackups::with_progress(gauge)))
            .with_stop(stop);
        Session {
            runner,
            own,
            json: flags.json(),
            dry_run,
            no_lock: flags.no_lock,
            held,
            live,
        }
    }

    /// The run options of `migrate`/`down`. How they wait for a held lock: the lock core's one
    /// rule, with the CLI's default (wait; `--no-wait` fails fast; `--wait-timeout` or
    /// `locking.waitTimeout` bound it).
    pub fn options(&self, target: Option<u64>, wait: WaitArgs, mark_applied: bool) -> RunOptions {
        let req = WaitRequest {
            wait: wait.no_wait.then_some(false),
            wait_timeout: wait.wait_timeout.map(Duration::from_millis),
            ..WaitRequest::default()
        };
        RunOptions {
            target,
            dry_run: self.dry_run,
            no_lock: self.no_lock,
            wait: WaitPolicy::resolve(&self.runner.cfg.lock_options(), &req, WaitDefault::Wait),
            mark_applied,
        }
    }

    /// Run a `migrate`/`down` with the live progress line, and report it: the held error lines,
    /// then the error (`failed`: "Migration failed"), the result under `--format json`, the plan
    /// of a dry run (`would`: "Would execute"), else `done`.
    pub async fn run_and_report(
        &self,
        io: &mut Io,
        work: impl std::future::Future<Output = RunOutcome>,
        failed: &str,
        would: &str,
        done: impl FnOnce(&mut Io, &MigrationResult),
    ) -> ExitStatus {
        let outcome = self.live.while_running(work).await;
        flush_errors(io, &self.runner.cfg, &self.held, outcome.error.as_ref());
        let r = &outcome.result;
        io.result = Some(to_json(r));
        match &outcome.error {
            // Under `--format json` the partial result goes with the error.
            Some(e) => {
                let text = io.failure_text(failed, e);
                let status = ExitStatus::of_failure(e.code, self.own);
                io.fail_with(to_json(r), e, status, text)
            }
            None if self.json => {
                io.json(&to_json(r));
                ExitStatus::Success
            }
            None if self.dry_run => {
                io.line(format!(
                    "{} Dry run completed - no changes made",
                    io.green("✓")
                ));
                io.line(format!("{would}: {} migration(s)", r.plan.len()));
                for (i, m) in r.plan.iter().enumerate() {
                    io.line(format!("  {}. {}", i + 1, m.name));
                }
                ExitStatus::Success
            }
            None => {
                done(io, r);
                ExitStatus::Success
            }
        }
    }

    /// A failure before the run: `✗ <what>: <message>`.
    pub fn fail(&self, io: &mut Io, what: &str, e: &Error) -> ExitStatus {
        io.fail_run(what, e, self.own)
    }
}

fn to_json(r: &MigrationResult) -> Value {
    serde_json::to_value(r).unwrap_or_default()
}

/// The migrations a run executed, with their durations.
pub fn print_infos(io: &mut Io, infos: &[MigrationInfo]) {
    for m in infos {
        let dur = match (m.started_at, m.finished_at) {
            (Some(s), Some(f)) => format!(" ({} ms)", f - s),
            _ => String::new(),
        };
        io.line(format!("  - {}{dur}", m.name));
    }
}

/// Runner log lines go to stderr (so `--format json` keeps stdout clean), filtered by logLevel,
/// as text or JSON per logFormat, above the live progress line on a terminal. Error lines are
/// held back until the command ends, so that the one that merely repeats the command's final
/// error is not printed twice.
pub fn log_fn(cfg: &Config, held_errors: Arc<Mutex<Vec<LogLine>>>, live: Live) -> LineFn {
    let max = cfg.log_level;
    let format = cfg.log_format;
    Arc::new(move |line: &LogLine| {
        let tagged;
        let line = match live.lane_name() {
            Some(name) => {
                tagged = of_database(line, name, format);
                &tagged
            }
            None => line,
        };
        if line.level == LogLevel::Error {
            held_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line.clone());
            return;
        }
        if line.level > max {
            return;
        }
        match line.event {
            // On a terminal the live line shows the running script.
            "migration.start" if live.enabled() => return,
            // A step's or a backup's live line ends before its "done" line.
            "migration.done" | "migration.marked" | "backup.done" | "restore.done" => live.stop(),
            _ => {}
        }
        live.line(&line.render(format, now_ms()));
    })
}

pub use crate::log::of_database;

/// The CLI's listener: the live line follows the running script, and the runner's backup and
/// restore (counted into `gauge`, about `/<shift>`).
pub fn progress(live: Live, gauge: Option<(String, Arc<Progress>)>) -> EventFn {
    Arc::new(move |ev: &RunEvent| {
        match ev {
            RunEvent::BeforeBackup | RunEvent::BeforeRestore { .. } => {
                if let Some((what, p)) = &gauge {
                    live.gauge(what, p.clone());
                }
            }
            RunEvent::BeforeMigrate { script, step } => live.start(match step.method {
                Method::Up => format!("[{}/{}] {}", step.index, step.total, script.name),
                Method::Down => format!(
                    "[{}/{}] Rolling back {}",
                    step.index, step.total, script.name
                ),
            }),
            RunEvent::AfterMigrate { .. } | RunEvent::MigrationError { .. } => live.stop(),
            _ => {}
        }
        Box::pin(std::future::ready(()))
    })
}

/// Print the held error lines (as text, except those that repeat `final_error`).
pub fn flush_errors(
    io: &mut Io,
    cfg: &Config,
    held: &Mutex<Vec<LogLine>>,
    final_error: Option<&Error>,
) {
    for line in held.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        // JSON lines keep their event names, so nothing is dropped there.
        if cfg.log_format == LogFormat::Text
            && final_error.is_some_and(|e| line.message.ends_with(&e.message))
        {
            continue;
        }
        io.eline(line.render(cfg.log_format, now_ms()));
    }
}
