//! Drawing the progress of a backup or restore on stderr while it runs: on a terminal one line
//! redrawn in place a few times a second; elsewhere (logs, pipes) a plain line every 10 s, or a
//! JSON log line (`backup.progress`, with the counters as fields) under `--log-format json`.
//! Operations done within a second print nothing. stdout is never touched, so `--format json`
//! output stays clean.

use std::future::Future;
use std::io::Write as _;
use std::time::Duration;

use crate::backup::{Phase, Progress, Snapshot};
use crate::log::{LogLevel, LogLine};

use super::Io;

const FIRST_AFTER: Duration = Duration::from_secs(1);
const TTY_EVERY: Duration = Duration::from_millis(200);
const PLAIN_EVERY: Duration = Duration::from_secs(10);

/// Run `work`, drawing `progress` about `what` (e.g. `/prod`) meanwhile.
pub async fn drawn<F: Future>(io: &mut Io, what: &str, progress: &Progress, work: F) -> F::Output {
    let tty = io.err_tty && !io.log_json;
    let every = if tty { TTY_EVERY } else { PLAIN_EVERY };
    tokio::pin!(work);
    let mut drew = false;
    let mut next = FIRST_AFTER;
    loop {
        tokio::select! {
            out = &mut work => {
                if drew {
                    draw(io, what, &progress.snapshot(), tty, true);
                }
                return out;
            }
            _ = tokio::time::sleep(next) => {
                draw(io, what, &progress.snapshot(), tty, false);
                drew = true;
                next = every;
            }
        }
    }
}

fn draw(io: &mut Io, what: &str, s: &Snapshot, tty: bool, last: bool) {
    let line = render(what, s);
    if io.log_json {
        let event = match s.phase {
            Phase::Backup => "backup.progress",
            Phase::Validate | Phase::Restore => "restore.progress",
        };
        let json = LogLine::new(LogLevel::Info, event, line)
            .with("path", what)
            .with("bytes", s.bytes)
            .with("totalBytes", s.total_bytes)
            .with("nodes", s.nodes)
            .with("requests", s.requests)
            .with("writes", s.writes)
            .with("elapsedMs", s.elapsed.as_millis() as u64)
            .to_json(crate::runner::now_ms());
        let _ = writeln!(io.err, "{json}");
    } else if tty {
        let _ = write!(io.err, "\r\x1b[2K{line}{}", if last { "\n" } else { "" });
    } else {
        let _ = writeln!(io.err, "{line}");
    }
    let _ = io.err.flush();
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One progress line.
pub fn render(what: &str, s: &Snapshot) -> String {
    let secs = s.elapsed.as_secs_f64().max(0.001);
    let rate = format!("{}/s", mb((s.bytes as f64 / secs) as u64));
    let done = match s.total_bytes {
        Some(total) => format!(
            "{} of {} ({}%)",
            mb(s.bytes),
            mb(total),
            (s.bytes * 100).checked_div(total).unwrap_or(100).min(100)
        ),
        None => mb(s.bytes),
    };
    let nodes = thousands(s.nodes);
    match s.phase {
        Phase::Backup => format!(
            "Backing up {what}: {done}, {nodes} nodes, {rate}, {} requests",
            thousands(s.requests)
        ),
        Phase::Validate => format!("Checking the backup of {what}: {done}, {rate}"),
        Phase::Restore => format!(
            "Restoring {what}: {done}, {nodes} nodes, {rate}, {} writes",
            thousands(s.writes)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let s = Snapshot {
            phase: Phase::Restore,
            bytes: 12_345_678,
            total_bytes: Some(250_000_000),
            nodes: 1_234_567,
            requests: 9,
            writes: 7,
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(
            render("/prod", &s),
            "Restoring /prod: 12.3 MB of 250.0 MB (4%), 1,234,567 nodes, 6.2 MB/s, 7 writes"
        );
        let b = Snapshot {
            phase: Phase::Backup,
            total_bytes: None,
            ..s
        };
        assert_eq!(
            render("/", &b),
            "Backing up /: 12.3 MB, 1,234,567 nodes, 6.2 MB/s, 9 requests"
        );
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
    }
}
