//! `migrate`, `down`, `list`, `validate`: the commands that go through the runner.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::args::{Command, GlobalFlags};
use super::output::Io;
use super::{exit, exit_code, CliHost, SIGNALS};
use crate::config::Config;
use crate::lock::{WaitDefault, WaitPolicy, WaitRequest};
use crate::rtdb::Client;
use crate::runner::validate::{IssueType, ValidationIssue};
use crate::runner::{LogLevel, MigrationInfo, RunOptions, Runner};
use crate::time::iso_millis;
use crate::{Error, ErrorCode};

/// How `migrate` and `down` wait for a held lock: the lock core's one rule, with the CLI's
/// default (wait; `--no-wait` fails fast; `--wait-timeout` or `locking.waitTimeout` bound it).
fn wait_policy(cfg: &Config, no_wait: bool, wait_timeout: Option<u64>) -> WaitPolicy {
    let req = WaitRequest {
        wait: no_wait.then_some(false),
        wait_timeout: wait_timeout.map(Duration::from_millis),
        ..WaitRequest::default()
    };
    WaitPolicy::resolve(&cfg.lock_options(), &req, WaitDefault::Wait)
}

fn level_of(s: &str) -> LogLevel {
    match s {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "debug" => LogLevel::Debug,
        _ => LogLevel::Info,
    }
}

/// Runner log lines go to stderr (so `--format json` keeps stdout clean), filtered by logLevel.
/// Error lines are held back until the command ends, so that the one that merely repeats the
/// command's final error is not printed twice.
fn log_fn(cfg: &Config, held_errors: Arc<Mutex<Vec<String>>>) -> crate::runner::LogFn {
    let max = level_of(&cfg.log_level);
    Arc::new(move |level, msg| {
        if level == LogLevel::Error {
            held_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(msg.to_string());
        } else if level <= max {
            super::output::stderr_line(msg);
        }
    })
}

/// Print the held error lines except those that repeat `final_error`.
fn flush_errors(io: &mut Io, held: &Mutex<Vec<String>>, final_error: Option<&Error>) {
    for line in held.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
        if final_error.is_some_and(|e| line.ends_with(&e.message)) {
            continue;
        }
        io.eline(line);
    }
}

fn parse_version(raw: &str, what: &str, allow_zero: bool) -> Result<u64, Error> {
    match raw.trim().parse::<u64>() {
        Ok(0) if allow_zero => Ok(0),
        Ok(v) if (100_000_000_000..=999_999_999_999).contains(&v) => Ok(v),
        _ => Err(Error::config(format!(
            "Invalid target version \"{raw}\" for {what}: use the 12-digit version of a migration file, e.g. 202501010001 \
             (from V202501010001_create_users.js){}",
            if allow_zero { ", or 0 for all" } else { "" }
        ))),
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
        io.eline(format!("✗ {}", e.message));
        return exit_code(&e, failure);
    }
    let held = Arc::new(Mutex::new(Vec::new()));
    let lock = cfg.locking.enabled.then(|| cfg.lock_service(&client));
    let runner = Runner::new(cfg.clone(), client, host, cwd.to_path_buf())
        .with_lock(lock)
        .with_log(log_fn(&cfg, held.clone()))
        .with_stop(SIGNALS.stop.clone());
    match command {
        Command::Migrate {
            target,
            no_wait,
            wait_timeout,
        } => {
            let target = match target
                .as_deref()
                .map(|t| parse_version(t, "migrate", false))
                .transpose()
            {
                Ok(t) => t,
                Err(e) => return fail(io, "Migration error", &e, failure),
            };
            let wait = wait_policy(&cfg, no_wait, wait_timeout);
            let opts = RunOptions {
                target,
                dry_run: flags.dry_run || cfg.dry_run,
                no_lock: flags.no_lock,
                wait,
            };
            let dry = opts.dry_run;
            let outcome = runner.migrate_outcome(opts).await;
            flush_errors(io, &held, outcome.error.as_ref());
            if json {
                io.json(&serde_json::to_value(&outcome.result).unwrap_or_default());
            }
            match outcome.error {
                None if json => exit::SUCCESS,
                None if dry => {
                    io.line(format!(
                        "{} Dry run completed - no changes made",
                        io.green("✓")
                    ));
                    exit::SUCCESS
                }
                None => {
                    let n = outcome.result.executed.len();
                    if n == 0 {
                        io.line(format!(
                            "{} Nothing to do: all {} migration(s) already executed",
                            io.green("✓"),
                            outcome.result.migrated.len()
                        ));
                    } else {
                        io.line(format!(
                            "{} Successfully executed {n} migration(s)",
                            io.green("✓")
                        ));
                        print_infos(io, &outcome.result.executed);
                    }
                    exit::SUCCESS
                }
                Some(e) => fail(io, "Migration failed", &e, failure),
            }
        }
        Command::Down { target, no_wait } => {
            let target = match parse_version(&target, "down", true) {
                Ok(t) => t,
                Err(e) => return fail(io, "Rollback error", &e, exit::GENERAL),
            };
            let wait = wait_policy(&cfg, no_wait, None);
            let opts = RunOptions {
                target: Some(target),
                dry_run: flags.dry_run || cfg.dry_run,
                no_lock: flags.no_lock,
                wait,
            };
            let outcome = runner.down_outcome(target, opts).await;
            flush_errors(io, &held, outcome.error.as_ref());
            if json {
                io.json(&serde_json::to_value(&outcome.result).unwrap_or_default());
            }
            match outcome.error {
                None if json => exit::SUCCESS,
                None => {
                    let n = outcome.result.executed.len();
                    io.line(format!(
                        "{} Successfully rolled back {n} migration(s) to version {target}",
                        io.green("✓")
                    ));
                    print_infos(io, &outcome.result.executed);
                    exit::SUCCESS
                }
                Some(e) => fail(io, "Rollback failed", &e, failure),
            }
        }
        Command::List { number } => {
            let n = match number.trim().parse::<usize>() {
                Ok(n) => n,
                Err(_) => {
                    io.eline(format!(
                        "✗ Error: Invalid number \"{number}\". Must be a non-negative integer."
                    ));
                    return exit::GENERAL;
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

fn fail(io: &mut Io, what: &str, e: &Error, default: i32) -> i32 {
    if e.code == ErrorCode::LockHeld {
        // The guide's text, verbatim.
        io.eline(&e.message);
    } else {
        io.eline(format!("{} {what}: {}", io.red("✗"), e.message));
    }
    exit_code(e, default)
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
    if limit > 0 {
        // The newest `limit` executed migrations, plus everything not executed.
        let mut executed: Vec<usize> = list
            .migrations
            .iter()
            .enumerate()
            .filter(|(_, m)| m.executed_at.is_some())
            .map(|(i, _)| i)
            .collect();
        let drop_n = executed.len().saturating_sub(limit);
        executed.truncate(drop_n);
        let mut i = 0;
        list.migrations.retain(|_| {
            let keep = !executed.contains(&i);
            i += 1;
            keep
        });
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
    io.line(format!(
        "{} executed, {} pending, {} ignored",
        list.executed, list.pending, list.ignored
    ));
}

fn kind(i: &ValidationIssue) -> &'static str {
    match i.kind {
        IssueType::Error => "error",
        IssueType::Warning => "warning",
    }
}
