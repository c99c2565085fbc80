//! `migrate`, `down`, `list`, `validate`: the commands that go through the runner.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::args::{Command, GlobalFlags};
use super::live::Live;
use super::output::Io;
use super::{exit, exit_code, CliHost, SIGNALS};
use crate::backup::Progress;
use crate::config::Config;
use crate::lock::{WaitDefault, WaitPolicy, WaitRequest};
use crate::log::{LineFn, LogFormat, LogLevel, LogLine};
use crate::rtdb::Client;
use crate::runner::plan::{parse_target, DownTo};
use crate::runner::validate::{IssueType, ValidationIssue};
use crate::runner::{
    now_ms, DefaultBackups, EventFn, Method, MigrationInfo, MigrationResult, RunEvent, RunOptions,
    Runner,
};
use crate::time::iso_millis;
use crate::{Error, ErrorCode};

/// How `migrate` and `down` wait for a held lock: the lock core's one rule, with the CLI's
/// default (wait; `--no-wait` fails fast; `--wait-timeout` or `locking.waitTimeout` bound it).
pub(super) fn wait_policy(cfg: &Config, no_wait: bool, wait_timeout: Option<u64>) -> WaitPolicy {
    let req = WaitRequest {
        wait: no_wait.then_some(false),
        wait_timeout: wait_timeout.map(Duration::from_millis),
        ..WaitRequest::default()
    };
    WaitPolicy::resolve(&cfg.lock_options(), &req, WaitDefault::Wait)
}

/// Runner log lines go to stderr (so `--format json` keeps stdout clean), filtered by logLevel,
/// as text or JSON per logFormat, above the live progress line on a terminal. Error lines are
/// held back until the command ends, so that the one that merely repeats the command's final
/// error is not printed twice.
pub(super) fn log_fn(cfg: &Config, held_errors: Arc<Mutex<Vec<LogLine>>>, live: Live) -> LineFn {
    let max = LogLevel::parse(&cfg.log_level);
    let format = LogFormat::parse(&cfg.log_format);
    Arc::new(move |line: &LogLine| {
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

/// The CLI's listener: the live line follows the running script, and the runner's backup and
/// restore (counted into `gauge`, about `/<shift>`).
pub(super) fn progress(live: Live, gauge: Option<(String, Arc<Progress>)>) -> EventFn {
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
pub(super) fn flush_errors(
    io: &mut Io,
    cfg: &Config,
    held: &Mutex<Vec<LogLine>>,
    final_error: Option<&Error>,
) {
    let format = LogFormat::parse(&cfg.log_format);
    for line in held.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        // JSON lines keep their event names, so nothing is dropped there.
        if format == LogFormat::Text
            && final_error.is_some_and(|e| line.message.ends_with(&e.message))
        {
            continue;
        }
        io.eline(line.render(format, now_ms()));
    }
}

pub async fn run<H: CliHost>(
    command: Command,
    flags: &GlobalFlags,
    cfg: Config,
    client: Client,
    host: H,
    io: &mut Io,
    cwd: &Path,
) -> i32 {
    let json = flags.json();
    let failure = match &command {
        Command::Migrate { .. } => exit::MIGRATION_FAILED,
        Command::Down { .. } => exit::ROLLBACK_FAILED,
        Command::Validate => exit::VALIDATION,
        _ => exit::GENERAL,
    };
    if let Err(e) = host
        .init(&json!({"config": cfg.to_value(), "cwd": cwd}))
        .await
    {
        let text = format!("✗ {}", e.message);
        return io.fail(&e, exit_code(&e, failure), text);
    }
    let held = Arc::new(Mutex::new(Vec::new()));
    let live = io.live.clone();
    let lock = cfg.locking.enabled.then(|| cfg.lock_service(&client));
    let gauge = Arc::new(Progress::default());
    let shown = crate::backup::shown(cfg.shift_path().as_deref());
    let fence = crate::lock::Fence::default();
    *super::SCRIPT_DB.lock().unwrap_or_else(|p| p.into_inner()) =
        Some((client.clone(), fence.clone(), cfg.history_path()));
    let runner = Runner::new(cfg.clone(), client, host, cwd.to_path_buf())
        .with_fence(fence)
        .with_lock(lock)
        .with_log_lines(log_fn(&cfg, held.clone(), live.clone()))
        .with_events(progress(live.clone(), Some((shown, gauge.clone()))))
        .with_backups(Arc::new(DefaultBackups::with_progress(gauge)))
        .with_stop(SIGNALS.stop.clone());
    let dry_run = flags.dry_run || cfg.dry_run;
    match command {
        Command::Migrate {
            target,
            no_wait,
            wait_timeout,
            mark_applied,
        } => {
            let target = match target
                .as_deref()
                .map(|t| parse_target(t, false))
                .transpose()
            {
                Ok(t) => t,
                Err(e) => return fail(io, "Migration error", &e, failure),
            };
            let opts = RunOptions {
                target,
                dry_run,
                no_lock: flags.no_lock,
                wait: wait_policy(&cfg, no_wait, wait_timeout),
                mark_applied,
            };
            let outcome = live.while_running(runner.migrate_outcome(opts)).await;
            flush_errors(io, &cfg, &held, outcome.error.as_ref());
            let r = &outcome.result;
            match &outcome.error {
                Some(e) => fail_run(io, "Migration failed", e, failure, r),
                None if json => {
                    io.json(&to_json(r));
                    exit::SUCCESS
                }
                None if dry_run => {
                    io.line(format!(
                        "{} Dry run completed - no changes made",
                        io.green("✓")
                    ));
                    let would = if mark_applied {
                        "Would mark as applied"
                    } else {
                        "Would execute"
                    };
                    print_plan(io, would, &r.plan);
                    exit::SUCCESS
                }
                None if r.executed.is_empty() => {
                    io.line(format!(
                        "{} Nothing to do: all {} migration(s) already executed",
                        io.green("✓"),
                        r.migrated.len()
                    ));
                    exit::SUCCESS
                }
                None => {
                    let n = r.executed.len();
                    if mark_applied {
                        io.line(format!(
                            "{} Marked {n} migration(s) as applied without running them",
                            io.green("✓")
                        ));
                    } else {
                        io.line(format!(
                            "{} Successfully executed {n} migration(s)",
                            io.green("✓")
                        ));
                    }
                    print_infos(io, &r.executed);
                    exit::SUCCESS
                }
            }
        }
        Command::Down {
            target,
            steps,
            no_wait,
            wait_timeout,
        } => {
            let to = match (steps, target.as_deref()) {
                (Some(n), _) => DownTo::Steps(n),
                (None, Some(t)) => match parse_target(t, true) {
                    Ok(t) => DownTo::Version(t),
                    Err(e) => return fail(io, "Rollback error", &e, exit::GENERAL),
                },
                (None, None) => {
                    let e = Error::new(
                        ErrorCode::Usage,
                        "down needs a targetVersion (0 rolls back everything) or --steps N",
                    );
                    return fail(io, "Rollback error", &e, exit::GENERAL);
                }
            };
            let opts = RunOptions {
                target: None,
                dry_run,
                no_lock: flags.no_lock,
                wait: wait_policy(&cfg, no_wait, wait_timeout),
                mark_applied: false,
            };
            let outcome = live.while_running(runner.down_to_outcome(to, opts)).await;
            flush_errors(io, &cfg, &held, outcome.error.as_ref());
            let r = &outcome.result;
            match &outcome.error {
                Some(e) => fail_run(io, "Rollback failed", e, failure, r),
                None if json => {
                    io.json(&to_json(r));
                    exit::SUCCESS
                }
                None if dry_run => {
                    io.line(format!(
                        "{} Dry run completed - no changes made",
                        io.green("✓")
                    ));
                    print_plan(io, "Would roll back", &r.plan);
                    exit::SUCCESS
                }
                None => {
                    let n = r.executed.len();
                    let now_at = r.migrated.iter().map(|m| m.timestamp).max().unwrap_or(0);
                    match to {
                        DownTo::Version(t) => io.line(format!(
                            "{} Successfully rolled back {n} migration(s) to version {t}",
                            io.green("✓")
                        )),
                        DownTo::Steps(_) => io.line(format!(
                            "{} Successfully rolled back {n} migration(s); now at version {now_at}",
                            io.green("✓")
                        )),
                    }
                    print_infos(io, &r.executed);
                    exit::SUCCESS
                }
            }
        }
        Command::List { number } => {
            let n = match number.trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    let e = Error::new(
                        ErrorCode::Usage,
                        format!("Invalid number \"{number}\". Must be a non-negative integer."),
                    );
                    let text = format!("✗ Error: {}", e.message);
                    return io.fail(&e, exit::GENERAL, text);
                }
            };
            match runner.list().await {
                Ok(list) => {
                    let limit = if n > 0 { n } else { cfg.display_limit as usize };
                    print_list(io, list, limit, json);
                    exit::SUCCESS
                }
                Err(e) => fail(io, "List error", &e, exit::GENERAL),
            }
        }
        Command::Validate => match runner.validate().await {
            Ok(report) => {
                let ok = report.error_count == 0;
                if json {
                    io.json(&serde_json::to_value(&report).unwrap_or_default());
                } else {
                    io.line("");
                    io.line("Validation Results:");
                    io.line(format!(
                        "  Pending migrations validated: {}",
                        report.pending.len()
                    ));
                    io.line(format!(
                        "  Pending migrations with errors: {}",
                        report.pending.iter().filter(|p| !p.valid).count()
                    ));
                    io.line(format!(
                        "  Executed migrations with issues: {}",
                        report.migrated.len()
                    ));
                    for p in &report.pending {
                        for i in &p.issues {
                            io.line(format!(
                                "  - {} [{}] {}: {}",
                                p.name,
                                i.code,
                                kind(i),
                                i.message
                            ));
                        }
                    }
                    for i in report.migrated.iter().chain(report.general.iter()) {
                        io.line(format!("  - [{}] {}: {}", i.code, kind(i), i.message));
                    }
                    io.line("");
                    if ok {
                        io.line(format!("{} All migrations are valid", io.green("✓")));
                    } else {
                        io.line(format!("{} Validation failed", io.red("✗")));
                    }
                }
                if ok {
                    exit::SUCCESS
                } else {
                    exit::VALIDATION
                }
            }
            Err(e) => fail(io, "Validation error", &e, exit::VALIDATION),
        },
        _ => exit::GENERAL,
    }
}

fn to_json(r: &MigrationResult) -> Value {
    serde_json::to_value(r).unwrap_or_default()
}

fn fail(io: &mut Io, what: &str, e: &Error, default: i32) -> i32 {
    let text = fail_text(io, what, e);
    io.fail(e, exit_code(e, default), text)
}

/// A failed `migrate`/`down`: under `--format json` the partial result with the error.
fn fail_run(io: &mut Io, what: &str, e: &Error, default: i32, r: &MigrationResult) -> i32 {
    let text = fail_text(io, what, e);
    io.fail_with(to_json(r), e, exit_code(e, default), text)
}

pub(super) fn fail_text(io: &Io, what: &str, e: &Error) -> String {
    if e.code == ErrorCode::LockHeld {
        // The guide's text, verbatim.
        e.message.clone()
    } else {
        format!("{} {what}: {}", io.red("✗"), e.message)
    }
}

/// What a dry run would do, in order.
fn print_plan(io: &mut Io, would: &str, plan: &[MigrationInfo]) {
    io.line(format!("{would}: {} migration(s)", plan.len()));
    for (i, m) in plan.iter().enumerate() {
        io.line(format!("  {}. {}", i + 1, m.name));
    }
}

fn print_infos(io: &mut Io, infos: &[MigrationInfo]) {
    for m in infos {
        let dur = match (m.started_at, m.finished_at) {
            (Some(s), Some(f)) => format!(" ({} ms)", f - s),
            _ => String::new(),
        };
        io.line(format!("  - {}{dur}", m.name));
    }
}

fn print_list(io: &mut Io, mut list: crate::runner::list::MigrationList, limit: usize, json: bool) {
    let total = list.migrations.len();
    if limit > 0 {
        // The newest `limit` migrations (highest versions), executed and pending alike; the
        // list is in version order, so they are its tail.
        list.migrations.drain(..total.saturating_sub(limit));
    }
    if json {
        io.json(&serde_json::to_value(&list).unwrap_or_default());
        return;
    }
    if list.migrations.is_empty() {
        io.line("No migrations found.");
        return;
    }
    let rows: Vec<[String; 5]> = list
        .migrations
        .iter()
        .map(|m| {
            [
                m.version.to_string(),
                m.name.clone(),
                serde_json::to_value(m.status)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                m.executed_at.map(iso_millis).unwrap_or_default(),
                m.duration
                    .map(|d| format!("{:.3}s", d as f64 / 1000.0))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["Version", "Name", "Status", "Executed", "Duration"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt_row = |cells: &[String]| {
        cells
            .iter()
            .zip(widths.iter())
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    io.line(fmt_row(&header.map(String::from)));
    io.line(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  "),
    );
    for r in &rows {
        io.line(fmt_row(r));
    }
    io.line("");
    let shown = if list.migrations.len() < total {
        format!("newest {} of {total} shown; ", list.migrations.len())
    } else {
        String::new()
    };
    io.line(format!(
        "{shown}{} executed, {} pending, {} ignored",
        list.executed, list.pending, list.ignored
    ));
}

fn kind(i: &ValidationIssue) -> &'static str {
    match i.kind {
        IssueType::Error => "error",
        IssueType::Warning => "warning",
    }
}
