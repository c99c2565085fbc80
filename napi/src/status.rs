//! `runner.status()`, `runner.waitUntilMigrated()` and the metrics for lib/health.js, as typed
//! objects over `msr_firebase::runner::{status, metrics}` (the policy is there).

use std::collections::HashMap;
use std::time::Duration;

use napi_derive::napi;

use super::error::IntoNapi;
use super::lock::NativeLockStatus;
use super::runner::NativeRunner;
use msr_firebase::runner::metrics::{self, Definition, DEFINITIONS};
use msr_firebase::runner::status::{health, PendingMigration, RunnerStatus};

/// How long `status()` waits for current views unless told (ms): a probe's own deadline.
const DEFAULT_WITHIN_MS: f64 = 1500.0;

/// Options of `status()` and `waitUntilMigrated()`; times in ms.
#[napi(object)]
#[derive(Default)]
pub struct StatusOptions {
    /// The version the app needs (default: the newest migration in its folder).
    pub version: Option<f64>,
    /// `status()`: how long to wait for current values (default 1500); `waitUntilMigrated()`:
    /// how long to wait for the migrations (default: no limit).
    pub timeout: Option<f64>,
}

impl StatusOptions {
    fn version(&self) -> Option<u64> {
        self.version.map(|v| v.max(0.0) as u64)
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
            .map(|t| Duration::from_millis(t.max(0.0) as u64))
    }
}

/// A migration the app needs that the history does not show yet.
#[napi(object)]
pub struct NativePendingMigration {
    pub version: f64,
    pub name: String,
}

impl From<PendingMigration> for NativePendingMigration {
    fn from(p: PendingMigration) -> Self {
        NativePendingMigration {
            version: p.version as f64,
            name: p.name,
        }
    }
}

/// The end of this process's last `migrate()` / `down()`.
#[napi(object)]
pub struct NativeLastRun {
    /// `migrate`, `mark-applied` or `down`.
    pub command: String,
    pub success: bool,
    /// ms
    pub duration: f64,
}

/// `runner.status()`.
#[napi(object, use_nullable = true)]
pub struct NativeRunnerStatus {
    /// The newest recorded migration's version (null: none recorded).
    pub applied_version: Option<f64>,
    /// How many migrations the history records.
    pub applied_count: u32,
    /// The migrations the app needs that are still to run, oldest first.
    pub pending: Vec<NativePendingMigration>,
    /// The version "up to date" is judged against (null: no migrations, none asked for).
    pub needed_version: Option<f64>,
    pub up_to_date: bool,
    /// The lock's holder, as `getLockStatus()` shows it (null: free, or locking off).
    pub lock: Option<NativeLockStatus>,
    /// The values are current (event streams open, or the last reads answered); otherwise they
    /// are the last ones known and `reason` says why.
    pub current: bool,
    pub reason: Option<String>,
    pub last_run: Option<NativeLastRun>,
}

impl From<RunnerStatus> for NativeRunnerStatus {
    fn from(s: RunnerStatus) -> Self {
        let r = s.readiness;
        NativeRunnerStatus {
            applied_version: r.applied_version.map(|v| v as f64),
            applied_count: r.applied as u32,
            pending: r.pending.into_iter().map(Into::into).collect(),
            needed_version: r.needed_version.map(|v| v as f64),
            up_to_date: r.up_to_date,
            lock: s.lock.map(Into::into),
            current: s.current,
            reason: s.stale_because,
            last_run: s.last_run.map(|l| NativeLastRun {
                command: metrics::command_label(l.command).to_string(),
                success: l.success,
                duration: l.duration.as_secs_f64() * 1000.0,
            }),
        }
    }
}

/// Options of a health probe (`healthHandler`).
#[napi(object)]
#[derive(Default)]
pub struct HealthOptions {
    /// Answer 503 while a migration the app needs is pending (a readiness probe).
    pub require_up_to_date: Option<bool>,
    pub version: Option<f64>,
    /// ms to wait for current values (default 1500).
    pub timeout: Option<f64>,
}

/// What a health probe answers.
#[napi(object, use_nullable = true)]
pub struct NativeHealth {
    /// 200 or 503.
    pub http_status: u32,
    #[napi(ts_type = "'ok' | 'pending' | 'unavailable'")]
    pub status: String,
    /// Why it is not `ok`.
    pub reason: Option<String>,
    /// The status it was judged on (null when there was none to be had).
    pub runner: Option<NativeRunnerStatus>,
}

/// A metric's definition (prom-client registers these).
#[napi(object)]
pub struct NativeMetricDefinition {
    pub name: String,
    pub help: String,
    #[napi(ts_type = "'gauge' | 'counter'")]
    pub kind: String,
    pub label_names: Vec<String>,
}

impl From<&Definition> for NativeMetricDefinition {
    fn from(d: &Definition) -> Self {
        NativeMetricDefinition {
            name: d.name.to_string(),
            help: d.help.to_string(),
            kind: d.kind.as_str().to_string(),
            label_names: d.labels.iter().map(|l| l.to_string()).collect(),
        }
    }
}

/// One value of a metric.
#[napi(object)]
pub struct NativeSample {
    pub labels: HashMap<String, String>,
    pub value: f64,
}

/// A metric's samples now.
#[napi(object)]
pub struct NativeMetric {
    pub name: String,
    pub samples: Vec<NativeSample>,
}

/// The metrics `metricsHandler` exposes (names, help, types, label names).
#[napi]
pub fn metric_definitions() -> Vec<NativeMetricDefinition> {
    DEFINITIONS.iter().map(Into::into).collect()
}

fn within(o: &StatusOptions) -> Duration {
    Duration::from_millis(o.timeout.unwrap_or(DEFAULT_WITHIN_MS).max(0.0) as u64)
}

#[napi]
impl NativeRunner {
    /// Where the database stands for this app, from live views of the history and the lock
    /// (one request each, the first time; none per call after that).
    #[napi]
    pub async fn status(&self, options: Option<StatusOptions>) -> napi::Result<NativeRunnerStatus> {
        let o = options.unwrap_or_default();
        Ok(self
            .runner
            .status(o.version(), within(&o))
            .await
            .napi()?
            .into())
    }

    /// Resolves once the history shows every migration the app needs; MIGRATIONS_PENDING naming
    /// the pending versions when `timeout` runs out first.
    #[napi]
    pub async fn wait_until_migrated(
        &self,
        options: Option<StatusOptions>,
    ) -> napi::Result<NativeRunnerStatus> {
        let o = options.unwrap_or_default();
        Ok(self
            .runner
            .wait_until_migrated(o.version(), o.timeout())
            .await
            .napi()?
            .into())
    }

    /// A health probe's answer (`runner::status::health`): never rejects.
    #[napi]
    pub async fn health(&self, options: Option<HealthOptions>) -> NativeHealth {
        let o = options.unwrap_or_default();
        let so = StatusOptions {
            version: o.version,
            timeout: o.timeout,
        };
        let status = self.runner.status(so.version(), within(&so)).await;
        let (verdict, reason) = health(&status, o.require_up_to_date.unwrap_or(false));
        NativeHealth {
            http_status: verdict.http_status() as u32,
            status: verdict.as_str().to_string(),
            reason,
            runner: status.ok().map(Into::into),
        }
    }

    /// The metrics now (from `status()`).
    #[napi]
    pub async fn metrics(&self, options: Option<StatusOptions>) -> napi::Result<Vec<NativeMetric>> {
        let o = options.unwrap_or_default();
        let status = self.runner.status(o.version(), within(&o)).await.napi()?;
        Ok(metrics::metrics(&status)
            .into_iter()
            .map(|m| NativeMetric {
                name: m.definition.name.to_string(),
                samples: m
                    .samples
                    .into_iter()
                    .map(|s| NativeSample {
                        labels: m
                            .definition
                            .labels
                            .iter()
                            .map(|l| l.to_string())
                            .zip(s.labels)
                            .collect(),
                        value: s.value,
                    })
                    .collect(),
            })
            .collect())
    }

    /// The metrics in the Prometheus text format (0.0.4).
    #[napi]
    pub async fn metrics_text(&self, options: Option<StatusOptions>) -> napi::Result<String> {
        let o = options.unwrap_or_default();
        let status = self.runner.status(o.version(), within(&o)).await.napi()?;
        Ok(metrics::render(&metrics::metrics(&status)))
    }
}
