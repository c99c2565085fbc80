//! `rehearse [target] [--from-backup file] [--down] [--keep file] [--examples N] [--rules file]
//! [--strict]`: the report of `crate::rehearse` as text (or `--format json`), and its exit code:
//! 0 when every rehearsed migration succeeded (and, with `--down`, round-tripped), 3 when one
//! failed, a write was denied by the rules or refused as too big for one request (and not done
//! in chunks) or, with `--strict`, there were warnings; 2 for bad
//! input, 7 when the source cannot be read. The rules: `--rules`, else firebase.json's for the
//! configured database, else the database's own.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::runner::{flush_errors, log_fn, progress};
use crate::backup::Progress;
use crate::cli::args::{GlobalFlags, RehearseArgs};
use crate::cli::host::CliHost;
use crate::cli::output::Io;
use crate::cli::signals::SIGNALS;
use crate::config::Config;
use crate::rehearse::{
    self, kind_word, Changes, DownOutcome, Findings, Outcome, Rehearsal, RehearsalReport,
    RehearseOptions, RulesChoice, RulesOrigin, Source, SourceKind, TooBigHandling,
};
use crate::rtdb::{Client, RetryObserver};
use crate::{Error, ExitStatus};

/// A failed rehearsal (or one that could not run) ends with this, unless its error has a status
/// of its own.
const OWN: ExitStatus = ExitStatus::MigrationFailed;

pub async fn run<H: CliHost>(
    args: RehearseArgs,
    flags: &GlobalFlags,
    cfg: Config,
    host: &H,
    io: &mut Io,
    cwd: &Path,
    notice: RetryObserver,
) -> ExitStatus {
    let target = match args
        .target
        .as_deref()
        .map(|t| crate::runner::plan::parse_target(t, false))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return fail(io, &e),
    };
    let client: Client;
    let source = match &args.from_backup {
        Some(f) => Source::Backup(Config::resolve(cwd, f)),
        None => {
            client = match crate::connection::client_with(&cfg, cwd, Some(notice)) {
                Ok(c) => c,
                Err(e) => {
                    let own = ExitStatus::DatabaseConnectionError;
                    return io.fail_plain("Connection error", &e, own);
                }
            };
            Source::Database(&client)
        }
    };
    let rules = match rules_choice(args.rules.as_deref(), &cfg, cwd) {
        Ok(r) => r,
        Err(e) => return fail(io, &e),
    };
    let held = Arc::new(Mutex::new(Vec::new()));
    let live = io.live.clone();
    // The read of the data (a walk of the database or the backup file) is a gauge.
    let reading = Arc::new(Progress::default());
    live.gauge(
        &crate::backup::shown(cfg.shift_path().as_deref()),
        reading.clone(),
    );
    let r = Rehearsal {
        cfg: &cfg,
        cwd,
        source,
        options: RehearseOptions {
            target,
            down: args.down,
            keep: args.keep.map(|k| Config::resolve(cwd, &k)),
            examples: args.examples,
            no_lock: flags.no_lock,
            rules,
            strict: args.strict,
            ..RehearseOptions::default()
        },
        log: log_fn(&cfg, held.clone(), live.clone()),
        events: Some(progress(live.clone(), None)),
        stop: SIGNALS.stop.clone(),
        progress: Some(reading),
    };
    let outcome = live
        .while_running(rehearse::rehearse(r, host.clone()))
        .await;
    let report = match outcome {
        Ok(r) => r,
        Err(e) => {
            flush_errors(io, &cfg, &held, Some(&e));
            return fail(io, &e);
        }
    };
    let err = report.failure();
    flush_errors(io, &cfg, &held, err.as_ref());
    if flags.json() {
        let value = serde_json::to_value(&report).unwrap_or_default();
        return match &err {
            None => {
                io.json(&value);
                ExitStatus::Success
            }
            Some(e) => io.fail_with(value, e, ExitStatus::of_failure(e.code, OWN), ""),
        };
    }
    print_report(io, &report);
    match &err {
        None => ExitStatus::Success,
        Some(e) => io.fail_run("Rehearsal failed", e, OWN),
    }
}

/// `--rules <file>`, else firebase.json's rules for the configured database, else the source
/// database's own.
fn rules_choice(given: Option<&str>, cfg: &Config, cwd: &Path) -> crate::Result<RulesChoice> {
    if let Some(f) = given {
        return Ok(RulesChoice::File(Config::resolve(cwd, f)));
    }
    let instance = cfg
        .database_url
        .as_deref()
        .and_then(|u| crate::rtdb::DatabaseUrl::parse(u).ok())
        .and_then(|u| u.instance());
    Ok(
        match crate::rules::firebase_json::rules_file_for(cwd, instance.as_deref())? {
            Some(file) => RulesChoice::File(file),
            None => RulesChoice::Production,
        },
    )
}

fn fail(io: &mut Io, e: &Error) -> ExitStatus {
    io.fail_run("Rehearsal error", e, OWN)
}

/// `1.2 MB`, `340 B`.
fn size(n: u64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1_000_000.0),
        n if n >= 1_000 => format!("{:.1} KB", n as f64 / 1_000.0),
        n => format!("{n} B"),
    }
}

fn counts(c: &Changes) -> String {
    format!(
        "+{} added, -{} removed, ~{} changed",
        c.added, c.removed, c.changed
    )
}

fn marker(k: rehearse::ChangeKind) -> &'static str {
    match k {
        rehearse::ChangeKind::Added => "+",
        rehearse::ChangeKind::Removed => "-",
        rehearse::ChangeKind::Changed => "~",
    }
}

/// A step's changes, indented under its line.
fn print_changes(io: &mut Io, c: &Changes) {
    if c.is_empty() {
        io.line(format!("    no data changed ({})", size(c.bytes_after)));
        return;
    }
    io.line(format!(
        "    {}; {} -> {}",
        counts(c),
        size(c.bytes_before),
        size(c.bytes_after)
    ));
    for ch in &c.children {
        io.line(format!(
            "      {}: +{} -{} ~{} ({} -> {})",
            ch.key,
            ch.added,
            ch.removed,
            ch.changed,
            size(ch.bytes_before),
            size(ch.bytes_after)
        ));
    }
    for e in &c.examples {
        io.line(format!("      {} {}", marker(e.kind), e.path));
    }
}

fn print_report(io: &mut Io, r: &RehearsalReport) {
    let s = &r.source;
    let from = match s.kind {
        SourceKind::Database => format!(
            "{} of {} (read in {} request(s), {})",
            s.path,
            s.database_url.as_deref().unwrap_or("the database"),
            s.requests,
            size(s.bytes)
        ),
        SourceKind::Backup => format!(
            "{} from the backup {} (made {}, {})",
            s.path,
            s.file
                .as_deref()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            s.created_at.as_deref().unwrap_or("at an unknown time"),
            size(s.bytes)
        ),
    };
    io.line(format!("Rehearsal on a copy of {from}"));
    if !s.snapshot {
        io.line(
            "  The data was read in pages: a walk is not a point-in-time snapshot (writes made while it ran may or may not be in it).",
        );
    }
    if s.lock_skipped {
        io.line("  The live migration lock in the data was not copied.");
    }
    print_rules(io, r);
    if r.migrations.is_empty() {
        io.line(format!(
            "{} Nothing to rehearse: all {} migration(s) already executed in the data's history",
            io.green("✓"),
            r.executed
        ));
        return;
    }
    io.line(format!(
        "  History: {} migration(s) executed; rehearsing {} pending",
        r.executed,
        r.migrations.len()
    ));
    if let Some(c) = &r.before_migrate {
        io.line("");
        io.line("beforeMigrate");
        print_changes(io, c);
    }
    io.line("");
    let total = r.migrations.len();
    for (i, m) in r.migrations.iter().enumerate() {
        let requests = if m.requests.by_method.is_empty() {
            "no requests".to_string()
        } else {
            let each: Vec<String> = m
                .requests
                .by_method
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            format!("{} request(s): {}", m.requests.total, each.join(", "))
        };
        let head = format!("[{}/{total}] {}", i + 1, m.name);
        match m.outcome {
            Outcome::Succeeded => {
                io.line(format!(
                    "{} {head} ({} ms, {requests})",
                    io.green("✓"),
                    m.duration_ms
                ));
            }
            Outcome::Failed => io.line(format!(
                "{} {head} failed ({} ms, {requests}): {}",
                io.red("✗"),
                m.duration_ms,
                m.error.as_deref().unwrap_or("")
            )),
            Outcome::NotRun => {
                io.line(format!("- {head} not run"));
                continue;
            }
        }
        if let Some(c) = &m.changes {
            print_changes(io, c);
        }
        print_findings(io, &m.findings);
    }
    if let Some(rb) = &r.rollback {
        io.line(format!(
            "  Rollback ({}) in the copy: {}; {}",
            rb.strategy,
            if rb.success { "done" } else { "failed" },
            rb.done
        ));
    }
    let t = &r.totals;
    io.line("");
    io.line(format!(
        "Total: {} migration(s), {} succeeded, {} failed, {} not run; +{} -{} ~{} values; {} -> {}; {} ms, {} request(s)",
        t.migrations,
        t.succeeded,
        t.failed,
        t.not_run,
        t.added,
        t.removed,
        t.changed,
        size(t.bytes_before),
        size(t.bytes_after),
        t.duration_ms,
        t.requests
    ));
    if let Some(d) = &r.down {
        io.line("");
        io.line("Downs, newest first:");
        for c in &d.migrations {
            match c.outcome {
                DownOutcome::Undone => {
                    io.line(format!("{} {}: down() undoes up()", io.green("✓"), c.name))
                }
                DownOutcome::Differs => {
                    let ch = c.changes.clone().unwrap_or_default();
                    io.line(format!(
                        "{} {}: down() does not undo up(); after it, compared with before up(): {}",
                        io.red("✗"),
                        c.name,
                        counts(&ch)
                    ));
                    for e in &ch.examples {
                        io.line(format!(
                            "      {} {} ({})",
                            marker(e.kind),
                            e.path,
                            kind_word(e.kind)
                        ));
                    }
                }
                DownOutcome::NoDown => {
                    io.line(format!("{} {}: has no down()", io.red("✗"), c.name))
                }
                DownOutcome::Failed => io.line(format!(
                    "{} {}: down() failed: {}",
                    io.red("✗"),
                    c.name,
                    c.error.as_deref().unwrap_or("")
                )),
                DownOutcome::NotChecked => io.line(format!(
                    "- {}: not checked (a newer migration could not be undone)",
                    c.name
                )),
            }
        }
        if d.round_trip {
            io.line(format!(
                "{} The data is back to what it was before the first up()",
                io.green("✓")
            ));
        }
    }
    if let Some(k) = &r.kept {
        io.line("");
        io.line(format!(
            "Kept the data as the migrations left it in {} (a backup file: msr-firebase backup restore <file>)",
            k.display()
        ));
    }
    if s.kind == SourceKind::Database {
        let rules = match r.rules.requests {
            0 => String::new(),
            n => format!(" and {n} of its rules"),
        };
        io.line(format!(
            "The database was only read ({} GET request(s) under {}{rules}); nothing was written to it.",
            s.requests, s.path
        ));
    }
    if r.warnings > 0 && !r.strict {
        io.line(format!(
            "{} warning(s) above (--strict makes them fail the rehearsal)",
            r.warnings
        ));
    }
    if r.success {
        io.line(format!(
            "{} Rehearsal passed: {} migration(s) would run",
            io.green("✓"),
            t.succeeded
        ));
    }
}

/// Which rules the sandbox applied, and as whom.
fn print_rules(io: &mut Io, r: &RehearsalReport) {
    let rules = &r.rules;
    let who = if rules.as_admin {
        "the scripts write as an admin (no databaseAuthVariableOverride): only indexes apply to them"
    } else {
        "the scripts write as databaseAuthVariableOverride, as in production"
    };
    match rules.origin {
        RulesOrigin::Production => io.line(format!(
            "  Rules: the database's own (read in {} request); {who}",
            rules.requests
        )),
        RulesOrigin::File => io.line(format!(
            "  Rules: {}; {who}",
            rules
                .file
                .as_deref()
                .map(|f| f.display().to_string())
                .unwrap_or_default()
        )),
        RulesOrigin::None => io.line(format!(
            "  Rules: none, the copy is open{}",
            rules
                .note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        )),
    }
}

/// What the rules, indexes and limits made of one migration, indented under it.
fn print_findings(io: &mut Io, f: &Findings) {
    for q in &f.unindexed {
        io.line(format!(
            "    ! a query on {} ordered by {} needs an index (answered on the client, slow in production): add {} at {}",
            q.path, q.child, q.index_on, q.path
        ));
    }
    for w in &f.denied {
        io.line(format!(
            "    {} denied by the rules: {} {}",
            io.red("✗"),
            w.method,
            w.path
        ));
    }
    for w in &f.refused {
        io.line(format!(
            "    {} refused ({}): {} {}",
            io.red("✗"),
            w.status,
            w.method,
            w.path
        ));
    }
    let same = |a: &str, b: &str| a.trim_matches('/') == b.trim_matches('/');
    for t in &f.too_big {
        let times = if t.refusals > 1 {
            format!(", refused {} times", t.refusals)
        } else {
            String::new()
        };
        match t.handled {
            TooBigHandling::Chunked => {
                let chunks = f
                    .chunked
                    .iter()
                    .find(|c| same(&c.path, &t.path))
                    .map(|c| format!(" ({} requests)", c.requests))
                    .unwrap_or_default();
                io.line(format!(
                    "    too big for one request: {} {}{times} — deleted in chunks instead{chunks}",
                    t.method, t.path
                ));
            }
            TooBigHandling::Failed => io.line(format!(
                "    {} too big for one request (WRITE_TOO_BIG, production's write-size limit): {} {}{times} — not written",
                io.red("✗"),
                t.method,
                t.path
            )),
        }
    }
    for c in &f.chunked {
        let said = f
            .too_big
            .iter()
            .any(|t| t.handled == TooBigHandling::Chunked && same(&c.path, &t.path));
        if !said {
            io.line(format!(
                "    too big for one request: {} deleted in chunks ({} requests)",
                c.path, c.requests
            ));
        }
    }
    for i in &f.invalid {
        io.line(format!(
            "    ! the data at {} fails .validate ({}, line {}): clients can no longer write there",
            i.path, i.rule, i.line
        ));
    }
    let more = f.invalid_total.saturating_sub(f.invalid.len() as u64);
    if more > 0 {
        io.line(format!(
            "    ! ... and {more} more place(s) that fail .validate"
        ));
    }
    if let Some(t) = &f.triggers {
        io.line(format!(
            "    writes: {} firing triggers, {} with disableTriggers",
            t.with_triggers, t.triggers_disabled
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearse::{ChunkedWrite, TooBigWrite, TriggerWrites};

    /// Too-big writes say how they were handled (with the chunks' requests when deleted in
    /// chunks), and the writes by triggers.
    #[test]
    fn findings_say_too_big_writes_and_triggers() {
        let (mut io, out, _) = Io::capture();
        let f = Findings {
            too_big: vec![
                TooBigWrite {
                    method: "DELETE".into(),
                    path: "/app/logs".into(),
                    refusals: 1,
                    handled: TooBigHandling::Chunked,
                },
                TooBigWrite {
                    method: "PUT".into(),
                    path: "/app/users".into(),
                    refusals: 2,
                    handled: TooBigHandling::Failed,
                },
            ],
            chunked: vec![
                ChunkedWrite {
                    path: "/app/logs".into(),
                    requests: 12,
                },
                ChunkedWrite {
                    path: "/app/old".into(),
                    requests: 3,
                },
            ],
            triggers: Some(TriggerWrites {
                with_triggers: 4,
                triggers_disabled: 7,
            }),
            ..Findings::default()
        };
        print_findings(&mut io, &f);
        assert_eq!(
            out.text(),
            "    too big for one request: DELETE /app/logs — deleted in chunks instead (12 requests)\n\
             \x20   ✗ too big for one request (WRITE_TOO_BIG, production's write-size limit): PUT /app/users, refused 2 times — not written\n\
             \x20   too big for one request: /app/old deleted in chunks (3 requests)\n\
             \x20   writes: 4 firing triggers, 7 with disableTriggers\n"
        );
    }
}
