//! What the progress line of a backup, restore or a rehearsal's read says (`render`), and its
//! JSON log line (`json_line`); `cli::live` decides when and how it is drawn.

use crate::backup::{Phase, Snapshot};
use crate::log::{LogLevel, LogLine};

/// A gauge's JSON log line (`backup.progress` / `restore.progress`, the counters as fields).
pub fn json_line(what: &str, s: &Snapshot) -> String {
    let event = match s.phase {
        Phase::Backup => "backup.progress",
        Phase::Read => "read.progress",
        Phase::Validate | Phase::Restore => "restore.progress",
    };
    LogLine::new(LogLevel::Info, event, render(what, s))
        .with("path", what)
        .with("bytes", s.bytes)
        .with("totalBytes", s.total_bytes)
        .with("nodes", s.nodes)
        .with("requests", s.requests)
        .with("writes", s.writes)
        .with("elapsedMs", s.elapsed.as_millis() as u64)
        .to_json(crate::runner::now_ms())
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
        Phase::Read => format!(
            "Reading {what}: {done}, {nodes} nodes, {rate}, {} requests",
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
    use std::time::Duration;

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
            done: false,
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
