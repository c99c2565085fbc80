//! The runner's state as Prometheus metrics: one list of definitions (`DEFINITIONS`), their
//! samples from a `RunnerStatus` (`metrics`), and the text exposition format (`render`, version
//! 0.0.4). lib/health.js serves the text, or registers the same definitions into prom-client's
//! registry when the app uses prom-client.

use super::events::Command;
use super::status::RunnerStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

/// A metric's name, help text, type and label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
}

const fn gauge(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Definition {
    Definition {
        name,
        help,
        kind: MetricKind::Gauge,
        labels,
    }
}

pub const LOCK_HELD: Definition = gauge(
    "msr_lock_held",
    "1 while a process holds the migration lock (its lease not run out), else 0.",
    &[],
);
pub const LOCK_HOLDER: Definition = gauge(
    "msr_lock_holder_info",
    "The migration lock's holder (value 1; absent while the lock is free).",
    &["executor", "host"],
);
pub const LEASE_REMAINING: Definition = gauge(
    "msr_lock_lease_remaining_seconds",
    "Seconds until the holder's lease runs out unless renewed (server time; 0 while free).",
    &[],
);
pub const APPLIED: Definition = Definition {
    name: "msr_migrations_applied_total",
    help: "Migrations recorded in the migration history.",
    kind: MetricKind::Counter,
    labels: &[],
};
pub const PENDING: Definition = gauge(
    "msr_migrations_pending",
    "Migrations this app needs that the history does not show yet.",
    &[],
);
pub const LAST_RUN_DURATION: Definition = gauge(
    "msr_last_run_duration_seconds",
    "Duration of this process's last migrate or down run (absent before one).",
    &["command"],
);
pub const LAST_RUN_SUCCESS: Definition = gauge(
    "msr_last_run_success",
    "1 when this process's last migrate or down run succeeded, 0 when it failed (absent before one).",
    &["command"],
);

/// Every metric, in the order they are exposed.
pub const DEFINITIONS: [Definition; 7] = [
    LOCK_HELD,
    LOCK_HOLDER,
    LEASE_REMAINING,
    APPLIED,
    PENDING,
    LAST_RUN_DURATION,
    LAST_RUN_SUCCESS,
];

/// One value of a metric, with its label values (in the definition's label order).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<String>,
    pub value: f64,
}

/// A metric and its samples now.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub definition: Definition,
    pub samples: Vec<Sample>,
}

/// The `command` label of a run.
pub fn command_label(c: Command) -> &'static str {
    match c {
        Command::Migrate => "migrate",
        Command::MarkApplied => "mark-applied",
        Command::Down => "down",
    }
}

/// The metrics of `status`. Lock metrics have no samples when locking is off.
pub fn metrics(status: &RunnerStatus) -> Vec<Metric> {
    let one = |value: f64| {
        vec![Sample {
            labels: vec![],
            value,
        }]
    };
    let held = status.lock.as_ref().filter(|l| l.is_locked);
    let locking = status.lease_remaining.is_some();
    let r = &status.readiness;
    let run = status.last_run.as_ref();
    let run_sample = |value: fn(&super::status::LastRun) -> f64| {
        run.map(|l| Sample {
            labels: vec![command_label(l.command).to_string()],
            value: value(l),
        })
        .into_iter()
        .collect::<Vec<_>>()
    };
    let samples = |d: &Definition| -> Vec<Sample> {
        match d.name {
            n if n == LOCK_HELD.name && locking => one(if held.is_some() { 1.0 } else { 0.0 }),
            n if n == LOCK_HOLDER.name => held
                .map(|l| Sample {
                    labels: vec![l.locked_by.clone(), l.hostname.clone()],
                    value: 1.0,
                })
                .into_iter()
                .collect(),
            n if n == LEASE_REMAINING.name => status.lease_remaining.map(one).unwrap_or_default(),
            n if n == APPLIED.name => one(r.applied as f64),
            n if n == PENDING.name => one(r.pending.len() as f64),
            n if n == LAST_RUN_DURATION.name => run_sample(|l| l.duration.as_secs_f64()),
            n if n == LAST_RUN_SUCCESS.name => run_sample(|l| if l.success { 1.0 } else { 0.0 }),
            _ => Vec::new(),
        }
    };
    DEFINITIONS
        .iter()
        .map(|d| Metric {
            definition: *d,
            samples: samples(d),
        })
        .collect()
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// The Prometheus text exposition format (0.0.4): `# HELP`, `# TYPE`, then the samples.
pub fn render(metrics: &[Metric]) -> String {
    let mut out = String::new();
    for m in metrics {
        let d = &m.definition;
        out.push_str(&format!(
            "# HELP {} {}\n",
            d.name,
            d.help.replace('\\', "\\\\")
        ));
        out.push_str(&format!("# TYPE {} {}\n", d.name, d.kind.as_str()));
        for s in &m.samples {
            out.push_str(d.name);
            if !d.labels.is_empty() {
                let labels: Vec<String> = d
                    .labels
                    .iter()
                    .zip(&s.labels)
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                out.push_str(&format!("{{{}}}", labels.join(",")));
            }
            out.push_str(&format!(" {}\n", number(s.value)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::LockStatus;
    use crate::runner::status::{LastRun, PendingMigration, Readiness};
    use std::time::Duration;

    fn status(lock: Option<LockStatus>) -> RunnerStatus {
        RunnerStatus {
            readiness: Readiness {
                applied_version: Some(202501010001),
                applied: 1,
                pending: vec![PendingMigration {
                    version: 202501010002,
                    name: "V202501010002_b.js".into(),
                }],
                needed_version: Some(202501010002),
                up_to_date: false,
            },
            lock,
            current: true,
            stale_because: None,
            last_run: Some(LastRun {
                command: Command::Migrate,
                success: false,
                duration: Duration::from_millis(1500),
            }),
            lease_remaining: Some(12.5),
        }
    }

    #[test]
    fn text_format() {
        let held = LockStatus {
            is_locked: true,
            locked_by: "pod-\"1\"".into(),
            locked_at: 1,
            expires_at: 2,
            process_id: Some(7),
            hostname: "h\\1".into(),
            epoch: 3,
        };
        let text = render(&metrics(&status(Some(held))));
        for line in [
            "# HELP msr_lock_held 1 while a process holds the migration lock (its lease not run out), else 0.",
            "# TYPE msr_lock_held gauge",
            "msr_lock_held 1",
            "msr_lock_holder_info{executor=\"pod-\\\"1\\\"\",host=\"h\\\\1\"} 1",
            "msr_lock_lease_remaining_seconds 12.5",
            "# TYPE msr_migrations_applied_total counter",
            "msr_migrations_applied_total 1",
            "msr_migrations_pending 1",
            "msr_last_run_duration_seconds{command=\"migrate\"} 1.5",
            "msr_last_run_success{command=\"migrate\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        }
        assert!(text.ends_with('\n'));
        // Free, locking on: held 0, no holder sample.
        let mut free = status(None);
        free.lease_remaining = Some(0.0);
        let text = render(&metrics(&free));
        assert!(text.lines().any(|l| l == "msr_lock_held 0"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("msr_lock_holder_info")));
        // Locking off: no lock samples at all.
        let mut off = status(None);
        off.lease_remaining = None;
        let text = render(&metrics(&off));
        assert!(!text.lines().any(|l| l.starts_with("msr_lock")), "{text}");
    }
}
