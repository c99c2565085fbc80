//! A command over many databases (`databases` / `databaseUrls`; `--database <name>` picks):
//! each database runs the command exactly as a single run would (`commands::one`, with its own
//! config, client, runner, lock and stop flag), `concurrency` at a time (`crate::fleet`), its
//! output kept apart; then one report — each database's output under its name, a table and the
//! summary naming what failed — or, under `--format json`, one document
//! `{ databases: [{ name, databaseUrl, status, durationMs, requests, result | error }], summary }`.
//! Log lines go to stderr as they come, each naming its database; on a terminal each running
//! database has a progress line of its own (`Live::lane`).

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::invocation::Invocation;
use crate::cli::args::{BackupCommand, Command};
use crate::cli::host::CliHost;
use crate::cli::output::{self, Io};
use crate::cli::signals::SIGNALS;
use crate::config::Config;
use crate::fleet::{self, Done, Outcome, State};
use crate::{Error, ErrorCode, ExitStatus};

/// What one database's command printed.
struct Printed {
    out: String,
    err: String,
    /// Its result as `--format json` has it (`Io::result`).
    result: Option<Value>,
}

pub async fn run<H: CliHost + 'static>(
    command: Command,
    inv: Invocation<'_, H>,
    cfg: Config,
    io: &mut Io,
) -> ExitStatus {
    let (global, own) = (inv.global, inv.own);
    let members = match cfg.pick(&global.databases) {
        Ok(m) => m,
        Err(e) => return io.fail_plain("Configuration error", &e, ExitStatus::ValidationError),
    };
    let names = || {
        members
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Commands that change one database by force or wholesale: only on a database named.
    let one_only = match &command {
        Command::LockRelease { .. } => Some("lock:release --force"),
        Command::Backup(BackupCommand::Restore { .. }) => Some("backup restore"),
        _ => None,
    };
    if let Some(what) = one_only {
        if global.databases.len() != 1 || members.len() != 1 {
            let e = Error::new(
                ErrorCode::Usage,
                format!(
                    "{what} acts on one database: name it with --database <name> (the databases of the set: {}); nothing was done",
                    names()
                ),
            );
            return io.fail_plain("Error", &e, ExitStatus::GeneralError);
        }
    }
    if let Command::Rehearse(args) = &command {
        if args.keep.is_some() && members.len() > 1 {
            let e = Error::new(
                ErrorCode::Usage,
                format!(
                    "rehearse --keep writes one file: pick one database with --database <name> (the databases of the set: {}); nothing was done",
                    names()
                ),
            );
            return io.fail_plain("Error", &e, ExitStatus::GeneralError);
        }
    }
    // Commands that touch no database: once (their settings are shared).
    if matches!(
        command,
        Command::Create { .. } | Command::RulesFencing { .. }
    ) {
        let first = members[0].cfg.clone();
        let stop = SIGNALS.stop.clone();
        return super::one::run(command, inv, first, io, stop).await.0;
    }
    let plan = fleet::Plan {
        concurrency: usize::try_from(cfg.concurrency).unwrap_or(usize::MAX),
        fail_fast: cfg.fail_fast,
        stop: SIGNALS.stop.clone(),
        own,
    };
    let (format_json, log_json, fancy) = (io.format_json, io.log_json, io.fancy);
    let live = io.live.clone();
    let t0 = Instant::now();
    // The work owns what it uses (no borrow in the closure: an `async` block borrowing through
    // a closure is not provably `Send` for every lifetime, which napi requires).
    let (host, cwd, global) = (inv.host.clone(), inv.cwd.to_path_buf(), global.clone());
    let work = move |m: crate::config::Member,
                     stop|
          -> Pin<Box<dyn Future<Output = Done<Printed>> + Send>> {
        let (command, live) = (command.clone(), live.lane(&m.name));
        let (host, cwd, global) = (host.clone(), cwd.clone(), global.clone());
        Box::pin(async move {
            let (mut mine, out, err) = Io::capture();
            mine.format_json = format_json;
            mine.log_json = log_json;
            mine.fancy = fancy;
            mine.live = live;
            let inv = Invocation {
                global: &global,
                host: &host,
                cwd: &cwd,
                own,
            };
            let (status, requests) = super::one::run(command, inv, m.cfg, &mut mine, stop).await;
            let printed = Printed {
                out: out.text(),
                err: err.text(),
                result: mine.result.take(),
            };
            let error = (status != ExitStatus::Success).then(|| stopped_or_failed(&printed));
            Done {
                result: Some(printed),
                error,
                status: Some(status),
                requests,
            }
        })
    };
    let outcomes = fleet::run(&members, &plan, work).await;
    let summary = fleet::summary(&outcomes, t0.elapsed().as_millis() as u64);
    let status = fleet::exit_status(&outcomes);
    if format_json {
        let databases: Vec<Value> = outcomes.iter().map(json_entry).collect();
        io.json(&json!({ "databases": databases, "summary": summary }));
    } else {
        for o in &outcomes {
            text_entry(io, o, log_json);
        }
        table(io, &outcomes);
    }
    let sentence = summary.sentence();
    if status == ExitStatus::Success {
        if !format_json {
            io.line(format!("{} {sentence}", io.green("✓")));
        }
    } else if log_json {
        let line = crate::log::LogLine::new(
            crate::log::LogLevel::Error,
            "command.failed",
            sentence.as_str(),
        )
        .with("failed", &summary.failed)
        .with("exitCode", status.code());
        io.eline(line.to_json(crate::runner::now_ms()));
    } else if !format_json {
        io.eline(format!(
            "{} {sentence} (exit {})",
            io.red("✗"),
            status.code()
        ));
    }
    status
}

/// A failed database's error, as its output says it (the JSON error's code, else the text):
/// `INTERRUPTED` tells a database stopped by failFast from one that failed.
fn stopped_or_failed(p: &Printed) -> Error {
    let from_json = serde_json::from_str::<Value>(&p.out).ok().and_then(|v| {
        let e = v.get("error")?;
        let code = e.get("code")?.as_str()?;
        let message = e.get("message")?.as_str()?.to_string();
        Some((code == ErrorCode::Interrupted.as_str(), message))
    });
    let (interrupted, message) = from_json.unwrap_or_else(|| {
        let text = p.err.trim().to_string();
        (
            text.contains("interrupted") || text.contains("Stopped"),
            text,
        )
    });
    let code = if interrupted {
        ErrorCode::Interrupted
    } else {
        ErrorCode::ScriptFailed
    };
    Error::new(code, message)
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Succeeded => "succeeded",
        State::Failed => "failed",
        State::Stopped => "stopped",
        State::NotStarted => "not started",
    }
}

/// What a database's JSON output counts: migrations executed (a migrate or down run) and
/// pending (what it set out to do and did not, or `list`'s pending).
fn counts(v: &Value) -> (Option<usize>, Option<usize>) {
    let len = |k: &str| v.get(k).and_then(Value::as_array).map(Vec::len);
    let executed = len("executed");
    let pending = match (len("plan"), executed) {
        (Some(plan), Some(done)) => Some(plan.saturating_sub(done)),
        _ => v.get("pending").and_then(Value::as_u64).map(|n| n as usize),
    };
    (executed, pending)
}

trait Counted {
    fn counts(&self) -> (Option<usize>, Option<usize>);
}

impl Counted for Outcome<Printed> {
    fn counts(&self) -> (Option<usize>, Option<usize>) {
        self.result
            .as_ref()
            .and_then(|p| p.result.as_ref())
            .map_or((None, None), counts)
    }
}

fn json_entry(o: &Outcome<Printed>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), o.name.clone().into());
    m.insert("databaseUrl".into(), o.database_url.clone().into());
    m.insert(
        "status".into(),
        state_name(o.state).replace(' ', "_").into(),
    );
    m.insert("durationMs".into(), o.duration_ms.into());
    m.insert("requests".into(), o.requests.into());
    let doc = o
        .result
        .as_ref()
        .and_then(|p| serde_json::from_str::<Value>(&p.out).ok());
    let (executed, pending) = o.counts();
    if let Some(n) = executed {
        m.insert("executed".into(), n.into());
    }
    if let Some(n) = pending {
        m.insert("pending".into(), n.into());
    }
    match (o.state, doc) {
        (State::NotStarted, _) => {}
        (_, Some(Value::Object(mut d))) if d.contains_key("error") => {
            let e = d.remove("error").unwrap_or_default();
            m.insert("error".into(), e);
        }
        (_, Some(doc)) if o.status == ExitStatus::Success => {
            m.insert("result".into(), doc);
        }
        (_, _) => {
            let message = o
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            m.insert(
                "error".into(),
                json!({ "message": message, "exitCode": o.status.code() }),
            );
        }
    }
    Value::Object(m)
}

/// A database's block: its name, then what it printed (its stderr lines to stderr; JSON log
/// lines get its name).
fn text_entry(io: &mut Io, o: &Outcome<Printed>, log_json: bool) {
    let head = format!(
        "── {} ({}) ── {}",
        o.name,
        o.database_url,
        state_name(o.state)
    );
    io.line(head);
    let Some(p) = &o.result else {
        io.line("  not started: failFast, after another database failed");
        return;
    };
    for l in p.out.lines() {
        io.line(l);
    }
    for l in p.err.lines() {
        match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(mut m)) if log_json => {
                m.entry("database").or_insert_with(|| o.name.clone().into());
                io.eline(Value::Object(m).to_string());
            }
            _ => io.eline(format!("[{}] {l}", o.name)),
        }
    }
}

/// The table: one row per database.
fn table(io: &mut Io, outcomes: &[Outcome<Printed>]) {
    let header = [
        "Database", "Status", "Executed", "Pending", "Duration", "Requests", "Error",
    ];
    let rows: Vec<[String; 7]> = outcomes
        .iter()
        .map(|o| {
            let error = o
                .error
                .as_ref()
                .map(|e| e.message.lines().last().unwrap_or_default())
                .map(|l| l.trim_start_matches("✗ ").to_string())
                .unwrap_or_default();
            let (executed, pending) = o.counts();
            let n = |c: Option<usize>| c.map(|n| n.to_string()).unwrap_or_default();
            [
                o.name.clone(),
                state_name(o.state).to_string(),
                n(executed),
                n(pending),
                format!("{:.1} s", o.duration_ms as f64 / 1000.0),
                o.requests.to_string(),
                error.chars().take(100).collect(),
            ]
        })
        .collect();
    let t = output::table(header, &rows);
    io.line("");
    io.line(t.header);
    for r in t.rows {
        io.line(r);
    }
}
