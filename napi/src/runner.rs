//! `NativeRunner`: the Rust runner for `FirebaseRunner` in lib/runner.js.

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use serde_json::Value;

use super::error::IntoNapi;
use super::events::{event_fn, EventCallback};
use super::host::{HostFn, JsHost};
use super::lock::wait_request;
use super::rehearse::{NativeRehearsalReport, RehearseOptionsJs};
use super::results::{
    NativeConnectionInfo, NativeMigrationList, NativeMigrationResult, NativeValidationReport,
};
use super::script_db::NativeScriptDb;
use msr_firebase::config::Config;
use msr_firebase::connection::{self, ConnectionInfo};
use msr_firebase::lock::{LockOptions, WaitDefault, WaitPolicy};
use msr_firebase::log::LogLine;
use msr_firebase::rehearse::{Rehearsal, RehearseOptions, RulesChoice, Source};
use msr_firebase::runner::plan::DownTo;
use msr_firebase::runner::{RunOptions, Runner, StopFlag};

/// `(level, message) => void`, called with two arguments, fire-and-forget; weak, so it never
/// keeps Node alive on its own.
pub type LogCallback = ThreadsafeFunction<LogArgs, (), LogArgs, Status, false, true>;
/// `(level, message)` as two JS arguments.
pub type LogArgs = FnArgs<(String, String)>;

#[napi]
pub struct NativeRunner {
    pub(crate) runner: Arc<Runner<JsHost>>,
    stop: StopFlag,
}

/// Options of `migrate()` / `down()` from JS. How a held lock is waited for follows
/// `lock::policy::WaitPolicy::resolve`, like `runExclusive`.
#[napi(object)]
#[derive(Default)]
pub struct RunOptionsJs {
    pub target: Option<f64>,
    pub dry_run: Option<bool>,
    pub no_lock: Option<bool>,
    /// Wait for a held lock (default: the config's retryAttempts/retryDelay or waitTimeout, else
    /// fail fast).
    pub wait: Option<bool>,
    /// ms
    pub wait_timeout: Option<f64>,
    /// Extra attempts when the lock is held (default: `locking.retryAttempts`).
    pub retry_attempts: Option<u32>,
    /// ms between attempts (default: `locking.retryDelay`).
    pub retry_delay: Option<f64>,
    /// `migrate()`: record the pending migrations as executed without running them.
    pub mark_applied: Option<bool>,
    /// `down()`: roll back the newest N executed migrations (instead of a target version).
    pub steps: Option<u32>,
}

impl RunOptionsJs {
    pub(crate) fn run_options(&self, lock: &LockOptions) -> RunOptions {
        let req = wait_request(
            self.wait,
            self.wait_timeout,
            self.retry_attempts,
            self.retry_delay,
        );
        RunOptions {
            target: self.target.map(|t| t.max(0.0) as u64),
            dry_run: self.dry_run.unwrap_or(false),
            no_lock: self.no_lock.unwrap_or(false),
            wait: WaitPolicy::resolve(lock, &req, WaitDefault::FailFast),
            mark_applied: self.mark_applied.unwrap_or(false),
        }
    }
}

impl NativeRunner {
    fn run_options(&self, o: Option<RunOptionsJs>) -> RunOptions {
        o.unwrap_or_default()
            .run_options(&self.runner.cfg.lock_options())
    }
}

#[napi]
impl NativeRunner {
    /// What this runner's scripts get (`getHandler()` is built on it): its connection fenced by
    /// its lease, its lock service (events to the runner's logger and lock hooks).
    #[napi(getter)]
    pub fn script_db(&self) -> NativeScriptDb {
        self.runner.script_db().into()
    }
    #[napi]
    pub fn connection_info(&self) -> NativeConnectionInfo {
        ConnectionInfo::new(&self.runner.cfg, &self.runner.client).into()
    }
    /// SIGINT/SIGTERM: stop after the current step.
    #[napi]
    pub fn request_stop(&self) {
        self.stop.request();
    }
    #[napi]
    pub async fn migrate(
        &self,
        options: Option<RunOptionsJs>,
    ) -> napi::Result<NativeMigrationResult> {
        let opts = self.run_options(options);
        Ok(self.runner.migrate(opts).await.napi()?.into())
    }
    /// Roll back to `options.target` or the newest `options.steps`: exactly one of them
    /// (CONFIG_INVALID otherwise, the core's rule for the CLI too).
    #[napi]
    pub async fn down(&self, options: Option<RunOptionsJs>) -> napi::Result<NativeMigrationResult> {
        let steps = options.as_ref().and_then(|o| o.steps);
        let opts = self.run_options(options);
        let to = DownTo::new(opts.target, steps).napi()?;
        Ok(self
            .runner
            .down_to_outcome(to, opts)
            .await
            .into_result()
            .napi()?
            .into())
    }
    #[napi]
    pub async fn list(&self) -> napi::Result<NativeMigrationList> {
        Ok(self.runner.list().await.napi()?.into())
    }
    #[napi]
    pub async fn validate(&self) -> napi::Result<NativeValidationReport> {
        Ok(self.runner.validate().await.napi()?.into())
    }
    /// Rehearse the pending migrations on a copy of the data (see `msr_firebase::rehearse`); the
    /// database is only read. Resolves with the report, `success: false` when a migration
    /// failed or a `down` does not undo its `up`; rejects when there is nothing to rehearse on
    /// (bad input, the source unreadable). Hooks and metrics collectors are not called.
    #[napi]
    pub async fn rehearse(
        &self,
        options: Option<RehearseOptionsJs>,
    ) -> napi::Result<NativeRehearsalReport> {
        let report = rehearse_on(&self.runner, &self.stop, options.unwrap_or_default()).await;
        Ok(report.napi()?.into())
    }
    /// Path of the new backup file.
    #[napi]
    pub async fn create_backup(&self) -> napi::Result<String> {
        let r = &self.runner;
        Ok(msr_firebase::backup::create(&r.client, &r.cfg, &r.cwd)
            .await
            .napi()?
            .to_string_lossy()
            .into_owned())
    }
    #[napi]
    pub async fn restore_from_backup(&self, path: String) -> napi::Result<()> {
        let r = &self.runner;
        msr_firebase::backup::restore(&r.client, &r.cfg, &Config::resolve(&r.cwd, &path))
            .await
            .napi()
    }
    #[napi]
    pub async fn list_nodes(&self) -> napi::Result<Vec<String>> {
        msr_firebase::backup::list_nodes(&self.runner.client, &self.runner.cfg)
            .await
            .napi()
    }
    /// `{ <node>: <its value, or null when missing> }`
    #[napi(ts_return_type = "Promise<Record<string, unknown>>")]
    pub async fn backup_nodes(&self, nodes: Vec<String>) -> napi::Result<Value> {
        Ok(Value::Object(
            msr_firebase::backup::backup_nodes(&self.runner.client, &self.runner.cfg, &nodes)
                .await
                .napi()?,
        ))
    }
}

/// Validate the config, connect (one real round trip on the runner's own paths), and build the
/// runner. `log` gets each log line (as text, or as a JSON object's text with
/// `logFormat: 'json'`); `events` each step of a run (lib/hooks.js calls the hooks and metrics
/// collectors it names).
#[napi(
    ts_args_type = "config: any, cwd: string, host: (request: any, db?: NativeScriptDb) => Promise<any>, log?: (level: string, message: string) => void, events?: (event: NativeRunEvent) => Promise<void>"
)]
pub async fn create_runner(
    config: Value,
    cwd: String,
    host: HostFn,
    log: Option<LogCallback>,
    events: Option<EventCallback>,
) -> napi::Result<NativeRunner> {
    let cfg = Config::from_value(&config).napi()?;
    let log = log.map(Arc::new);
    let events = events.map(Arc::new);
    let (runner, stop) = build_runner(
        cfg,
        PathBuf::from(cwd),
        JsHost::new(host),
        log,
        events,
        None,
    )
    .await?;
    Ok(NativeRunner { runner, stop })
}

/// A library runner for `cfg`: connected (one real round trip on the runner's own paths), its
/// log lines to `log`, its events to `events`; with `database` (one of a run over many), its log
/// lines and events name it.
pub(crate) async fn build_runner(
    cfg: Config,
    cwd: PathBuf,
    host: JsHost,
    log: Option<Arc<LogCallback>>,
    events: Option<Arc<EventCallback>>,
    database: Option<String>,
) -> napi::Result<(Arc<Runner<JsHost>>, StopFlag)> {
    let format = cfg.log_format;
    // The runner's log lines go to the logger, and so do retries of a failing request (as
    // warnings).
    let name = database.clone();
    let log_line = log.map(|log| {
        Arc::new(move |line: &LogLine| {
            let tagged;
            let line = match &name {
                Some(n) => {
                    tagged = msr_firebase::log::of_database(line, n, format);
                    &tagged
                }
                None => line,
            };
            log.call(
                (
                    line.level.as_str().to_string(),
                    line.render(format, msr_firebase::runner::now_ms()),
                )
                    .into(),
                ThreadsafeFunctionCallMode::NonBlocking,
            );
        })
    });
    let notice = log_line
        .clone()
        .map(|f| connection::retry_reporter(move |line| f(line)));
    let client = connection::client_with(&cfg, &cwd, notice).napi()?;
    let lock = cfg.locking.enabled.then(|| cfg.lock_service(&client));
    // The first request: with locking on, initialise the lock storage (as the predecessor does),
    // so a denied lock path reports itself; otherwise a shallow read of the history node. Never
    // the root.
    match &lock {
        Some(l) => l.init_storage().await.napi()?,
        None => connection::check(&client, &cfg).await.napi()?,
    }
    let stop = StopFlag::default();
    let mut runner = Runner::new(cfg, client, host, cwd)
        .with_lock(lock)
        .with_stop(stop.clone());
    if let Some(f) = log_line {
        runner = runner.with_log_lines(f);
    }
    if let Some(events) = events {
        runner = runner.with_events(event_fn(events, database));
    }
    Ok((Arc::new(runner), stop))
}

/// `rehearse()` of one runner (a library runner, or one database's of a run over many).
pub(crate) async fn rehearse_on(
    runner: &Runner<JsHost>,
    stop: &StopFlag,
    o: RehearseOptionsJs,
) -> msr_firebase::Result<msr_firebase::rehearse::RehearsalReport> {
    let r = runner;
    let source = match &o.from_backup {
        Some(f) => Source::Backup(Config::resolve(&r.cwd, f)),
        None => Source::Database(&r.client),
    };
    let options = RehearseOptions {
        target: o.target.map(|t| t.max(0.0) as u64),
        down: o.down.unwrap_or(false),
        keep: o.keep.as_deref().map(|k| Config::resolve(&r.cwd, k)),
        examples: o
            .examples
            .map_or(msr_firebase::rehearse::DEFAULT_EXAMPLES, |e| e as usize),
        no_lock: o.no_lock.unwrap_or(false),
        rules: match &o.rules {
            Some(f) => RulesChoice::File(Config::resolve(&r.cwd, f)),
            None => RulesChoice::Production,
        },
        strict: o.strict.unwrap_or(false),
        ..RehearseOptions::default()
    };
    let rehearsal = Rehearsal {
        cfg: &r.cfg,
        cwd: &r.cwd,
        source,
        options,
        log: r.log.clone(),
        events: None,
        stop: stop.clone(),
        progress: None,
    };
    msr_firebase::rehearse::rehearse(rehearsal, r.host.clone()).await
}
