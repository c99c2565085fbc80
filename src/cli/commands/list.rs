//! `list [-n N]`: the migrations, executed and pending, with their status (the newest N, or
//! `displayLimit`).

use super::runner::Session;
use crate::cli::host::CliHost;
use crate::cli::output::{table, Io};
use crate::runner::MigrationList;
use crate::time::iso_millis;
use crate::{Error, ErrorCode, ExitStatus};

pub async fn run<H: CliHost>(session: &Session<H>, io: &mut Io, number: &str) -> ExitStatus {
    let n = match number.trim().parse::<usize>() {
        Ok(n) => n,
        Err(_) => {
            let e = Error::new(
                ErrorCode::Usage,
                format!("Invalid number \"{number}\". Must be a non-negative integer."),
            );
            let text = format!("✗ Error: {}", e.message);
            return io.fail(&e, ExitStatus::GeneralError, text);
        }
    };
    match session.runner.list().await {
        Ok(list) => {
            let limit = if n > 0 {
                n
            } else {
                session.runner.cfg.display_limit as usize
            };
            print_list(io, list, limit, session.json);
            ExitStatus::Success
        }
        Err(e) => session.fail(io, "List error", &e),
    }
}

fn print_list(io: &mut Io, mut list: MigrationList, limit: usize, json: bool) {
    let total = list.migrations.len();
    if limit > 0 {
        // The newest `limit` migrations (highest versions), executed and pending alike; the
        // list is in version order, so they are its tail.
        list.migrations.drain(..total.saturating_sub(limit));
    }
    let doc = serde_json::to_value(&list).unwrap_or_default();
    if json {
        io.json(&doc);
    }
    io.result = Some(doc);
    if json {
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
    let t = table(["Version", "Name", "Status", "Executed", "Duration"], &rows);
    io.line(t.header);
    io.line(t.rule);
    for r in t.rows {
        io.line(r);
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
