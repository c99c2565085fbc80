//! `NativeFleet`: the runners of a run over many databases (`databases` / `databaseUrls`), for
//! `FirebaseRunner` in lib/runner.js. One library runner per database (its own client, lock,
//! history, `db` and handler), run through the core's `fleet::run`; typed per-database results.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use napi_derive::napi;
use serde_json::Value;

use super::error::IntoNapi;
use super::events::EventCallback;
use super::host::{HostFn, JsHost};
use super::rehearse::{NativeRehearsalReport, RehearseOptionsJs};
use super::results::{NativeMigrationList, NativeMigrationResult};
use super::runner::{build_runner, rehearse_on, LogCallback, RunOptionsJs};
use super::script_db::NativeScriptDb;
use msr_firebase::config::{Config, Member};
use msr_firebase::fleet::{self, Done, Outcome, Plan, State};
use msr_firebase::runner::plan::DownTo;
use msr_firebase::runner::{Runner, StopFlag};
use msr_firebase::{Error, ErrorCode, ExitStatus};

struct Database {
    member: Member,
    runner: Arc<Runner<JsHost>>,
    stop: StopFlag,
}

#[napi]
pub struct NativeFleet {
    databases: Vec<Arc<Database>>,
    concurrency: usize,
    fail_fast: bool,
    /// SIGINT/SIGTERM during a call: every running database stops after its current step.
    stop: StopFlag,
}

/// An error of one database (`code`, `message`, the exit status it stands for).
#[napi(object)]
pub struct NativeDatabaseError {
    pub code: String,
    pub message: String,
    pub exit_code: u32,
}

/// The run's counts.
#[napi(object)]
pub struct NativeFleetSummary {
    pub databases: u32,
    pub succeeded: u32,
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub not_started: Vec<String>,
    /// 0 when every database succeeded, else the most severe of their statuses.
    pub exit_code: u32,
    pub duration_ms: f64,
    pub requests: f64,
}

macro_rules! per_database {
    ($(#[$doc:meta])* $name:ident, $run:ident, $result:ty) => {
        $(#[$doc])*
        #[napi(object)]
        pub struct $name {
            pub name: String,
            pub database_url: String,
            /// `succeeded`, `failed`, `stopped` (failFast), `not_started` (failFast).
            pub status: String,
            pub duration_ms: f64,
            /// HTTP requests sent to this database.
            pub requests: f64,
            /// Migrations this run executed (rolled back, for `down()`).
            pub executed: Option<u32>,
            /// Migrations left pending.
            pub pending: Option<u32>,
            pub result: Option<$result>,
            pub error: Option<NativeDatabaseError>,
        }

        /// Every database's part, and the counts.
        #[napi(object)]
        pub struct $run {
            pub databases: Vec<$name>,
            pub summary: NativeFleetSummary,
        }
    };
}

per_database!(
    /// One database's `migrate()` / `down()`.
    NativeDatabaseRun,
    NativeFleetRun,
    NativeMigrationResult
);
per_database!(
    /// One database's `list()`.
    NativeDatabaseList,
    NativeFleetList,
    NativeMigrationList
);
per_database!(
    /// One database's `rehearse()`.
    NativeDatabaseRehearsal,
    NativeFleetRehearsal,
    NativeRehearsalReport
);

fn status_name(s: State) -> String {
    match s {
        State::Succeeded => "succeeded",
        State::Failed => "failed",
        State::Stopped => "stopped",
        State::NotStarted => "not_started",
    }
    .to_string()
}

fn summary<T>(outcomes: &[Outcome<T>], duration_ms: u64) -> NativeFleetSummary {
    let s = fleet::summary(outcomes, duration_ms);
    NativeFleetSummary {
        databases: s.databases as u32,
        succeeded: s.succeeded as u32,
        failed: s.failed,
        stopped: s.stopped,
        not_started: s.not_started,
        exit_code: s.exit_code as u32,
        duration_ms: s.duration_ms as f64,
        requests: s.requests as f64,
    }
}

type Work<T> = Pin<Box<dyn Future<Output = Done<T>> + Send>>;

impl NativeFleet {
    fn picked(&self, names: Option<Vec<String>>) -> napi::Result<Vec<Arc<Database>>> {
        let names = names.unwrap_or_default();
        let all: Vec<&str> = self
            .databases
            .iter()
            .map(|d| d.member.name.as_str())
            .collect();
        if let Some(bad) = names.iter().find(|n| !all.contains(&n.as_str())) {
            return Err(Error::config(format!(
                "database {bad:?} is not one of this runner's; the databases are: {}",
                all.join(", ")
            )))
            .napi();
        }
        Ok(self
            .databases
            .iter()
            .filter(|d| names.is_empty() || names.contains(&d.member.name))
            .cloned()
            .collect())
    }

    /// Run `work` on the databases picked (all by default), `concurrency` at a time.
    async fn each<T: Send + 'static>(
        &self,
        names: Option<Vec<String>>,
        own: ExitStatus,
        work: impl Fn(Arc<Database>) -> Work<T> + Send + Sync + 'static,
    ) -> napi::Result<(Vec<Outcome<T>>, u64)> {
        let picked = self.picked(names)?;
        self.stop.reset();
        let plan = Plan {
            concurrency: self.concurrency,
            fail_fast: self.fail_fast,
            stop: self.stop.clone(),
            own,
        };
        let members: Vec<Member> = picked.iter().map(|d| d.member.clone()).collect();
        let picked = Arc::new(picked);
        let t0 = std::time::Instant::now();
        let work = Arc::new(work);
        let outcomes = fleet::run(&members, &plan, move |m: Member, stop: StopFlag| {
            let db = picked
                .iter()
                .find(|d| d.member.name == m.name)
                .cloned()
                .expect("a picked database");
            let work = work.clone();
            async move {
                // This database's runner stops when the run asks it to (failFast, a signal).
                db.stop.reset();
                let before = db.runner.client.requests_sent();
                let relay_stop = db.stop.clone();
                let token = stop.token();
                let relay = tokio::spawn(async move {
                    token.cancelled().await;
                    relay_stop.request();
                });
                let mut done = work(db.clone()).await;
                relay.abort();
                done.requests = db.runner.client.requests_sent() - before;
                done
            }
        })
        .await;
        Ok((outcomes, t0.elapsed().as_millis() as u64))
    }
}

fn error_of(o_status: ExitStatus, e: &Error) -> NativeDatabaseError {
    NativeDatabaseError {
        code: e.code.as_str().to_string(),
        message: e.message.clone(),
        exit_code: o_status.code() as u32,
    }
}

/// Executed / pending of a `migrate()` / `down()` result.
fn run_counts(r: &msr_firebase::runner::MigrationResult) -> (u32, u32) {
    let done = r.executed.len();
    (done as u32, r.plan.len().saturating_sub(done) as u32)
}

#[napi]
impl NativeFleet {
    /// The databases' names, in configured order.
    #[napi(getter)]
    pub fn names(&self) -> Vec<String> {
        self.databases
            .iter()
            .map(|d| d.member.name.clone())
            .collect()
    }
    /// What database `name`'s scripts get (its `getHandler(name)` is built on it).
    #[napi]
    pub fn script_db(&self, name: String) -> napi::Result<NativeScriptDb> {
        let d = self.picked(Some(vec![name]))?;
        Ok(d[0].runner.script_db().into())
    }
    /// SIGINT/SIGTERM: every running database stops after its current step.
    #[napi]
    pub fn request_stop(&self) {
        self.stop.request();
    }
    #[napi]
    pub async fn migrate(
        &self,
        options: Option<RunOptionsJs>,
        databases: Option<Vec<String>>,
    ) -> napi::Result<NativeFleetRun> {
        let options = Arc::new(options.unwrap_or_default());
        self.run(databases, ExitStatus::MigrationFailed, move |db| {
            let opts = options.run_options(&db.runner.cfg.lock_options());
            Box::pin(async move { Done::from_outcome(db.runner.migrate_outcome(opts).await) })
        })
        .await
    }
    /// `down()` on each database: `options.target` or `options.steps`, exactly one.
    #[napi]
    pub async fn down(
        &self,
        options: Option<RunOptionsJs>,
        databases: Option<Vec<String>>,
    ) -> napi::Result<NativeFleetRun> {
        let o = options.unwrap_or_default();
        let steps = o.steps;
        let target = o.target.map(|t| t.max(0.0) as u64);
        DownTo::new(target, steps).napi()?;
        let options = Arc::new(o);
        self.run(databases, ExitStatus::RollbackFailed, move |db| {
            let opts = options.run_options(&db.runner.cfg.lock_options());
            Box::pin(async move {
                let to = match DownTo::new(opts.target, steps) {
                    Ok(to) => to,
                    Err(e) => return Done::failed(e),
                };
                Done::from_outcome(db.runner.down_to_outcome(to, opts).await)
            })
        })
        .await
    }
    #[napi]
    pub async fn list(&self, databases: Option<Vec<String>>) -> napi::Result<NativeFleetList> {
        let (outcomes, ms) = self
            .each(databases, ExitStatus::GeneralError, |db| -> Work<_> {
                Box::pin(async move {
                    match db.runner.list().await {
                        Ok(l) => Done::ok(l, 0),
                        Err(e) => Done::failed(e),
                    }
                })
            })
            .await?;
        let summary = summary(&outcomes, ms);
        let databases = outcomes
            .into_iter()
            .map(|o| NativeDatabaseList {
                status: status_name(o.state),
                duration_ms: o.duration_ms as f64,
                requests: o.requests as f64,
                executed: o.result.as_ref().map(|l| l.executed as u32),
                pending: o.result.as_ref().map(|l| l.pending as u32),
                error: o.error.as_ref().map(|e| error_of(o.status, e)),
                result: o.result.map(Into::into),
                name: o.name,
                database_url: o.database_url,
            })
            .collect();
        Ok(NativeFleetList { databases, summary })
    }
    /// `rehearse()` on each database (each on a copy of its own data).
    #[napi]
    pub async fn rehearse(
        &self,
        options: Option<RehearseOptionsJs>,
        databases: Option<Vec<String>>,
    ) -> napi::Result<NativeFleetRehearsal> {
        let o = options.unwrap_or_default();
        if o.keep.is_some() && self.picked(databases.clone())?.len() > 1 {
            return Err(Error::new(
                ErrorCode::Usage,
                "rehearse({ keep }) writes one file: pick one database (rehearse(options, [name]))",
            ))
            .napi();
        }
        let o = Arc::new(o);
        let (outcomes, ms) = self
            .each(
                databases,
                ExitStatus::MigrationFailed,
                move |db| -> Work<_> {
                    let o = o.clone();
                    Box::pin(async move {
                        match rehearse_on(&db.runner, &db.stop, (*o).clone()).await {
                            Ok(r) => {
                                let failed = !r.success;
                                Done {
                                    result: Some(r),
                                    error: None,
                                    status: failed.then_some(ExitStatus::MigrationFailed),
                                    requests: 0,
                                }
                            }
                            Err(e) => Done::failed(e),
                        }
                    })
                },
            )
            .await?;
        let summary = summary(&outcomes, ms);
        let databases = outcomes
            .into_iter()
            .map(|o| NativeDatabaseRehearsal {
                status: status_name(o.state),
                duration_ms: o.duration_ms as f64,
                requests: o.requests as f64,
                executed: None,
                pending: None,
                error: o.error.as_ref().map(|e| error_of(o.status, e)),
                result: o.result.map(Into::into),
                name: o.name,
                database_url: o.database_url,
            })
            .collect();
        Ok(NativeFleetRehearsal { databases, summary })
    }
}

impl NativeFleet {
    /// A `migrate()` / `down()` over the databases: each one's result on success, its error
    /// (with the counts of what it got done) on failure.
    async fn run(
        &self,
        databases: Option<Vec<String>>,
        own: ExitStatus,
        work: impl Fn(Arc<Database>) -> Work<msr_firebase::runner::MigrationResult>
            + Send
            + Sync
            + 'static,
    ) -> napi::Result<NativeFleetRun> {
        let (outcomes, ms) = self.each(databases, own, work).await?;
        let summary = summary(&outcomes, ms);
        let databases = outcomes
            .into_iter()
            .map(|o| {
                let counts = o.result.as_ref().map(run_counts);
                NativeDatabaseRun {
                    status: status_name(o.state),
                    duration_ms: o.duration_ms as f64,
                    requests: o.requests as f64,
                    executed: counts.map(|c| c.0),
                    pending: counts.map(|c| c.1),
                    error: o.error.as_ref().map(|e| error_of(o.status, e)),
                    result: o.result.filter(|_| o.error.is_none()).map(Into::into),
                    name: o.name,
                    database_url: o.database_url,
                }
            })
            .collect();
        Ok(NativeFleetRun { databases, summary })
    }
}

/// Validate the config (a set of databases), connect to each database and build its runner.
/// `log` gets each log line (naming its database), `events` each step of a run (with its
/// `database`).
#[napi(
    ts_args_type = "config: any, cwd: string, host: (request: any, db?: NativeScriptDb) => Promise<any>, log?: (level: string, message: string) => void, events?: (event: NativeRunEvent) => Promise<void>"
)]
pub async fn create_fleet(
    config: Value,
    cwd: String,
    host: HostFn,
    log: Option<LogCallback>,
    events: Option<EventCallback>,
) -> napi::Result<NativeFleet> {
    let cfg = Config::from_value(&config).napi()?;
    let cwd = PathBuf::from(cwd);
    let host = JsHost::new(host);
    let log = log.map(Arc::new);
    let events = events.map(Arc::new);
    let mut databases = Vec::new();
    for member in cfg.members() {
        let (runner, stop) = build_runner(
            member.cfg.clone(),
            cwd.clone(),
            host.clone(),
            log.clone(),
            events.clone(),
            Some(member.name.clone()),
        )
        .await
        .map_err(|e| napi::Error::new(e.status, format!("{} ({})", e.reason, member.name)))?;
        databases.push(Arc::new(Database {
            member,
            runner,
            stop,
        }));
    }
    Ok(NativeFleet {
        databases,
        concurrency: usize::try_from(cfg.concurrency).unwrap_or(usize::MAX),
        fail_fast: cfg.fail_fast,
        stop: StopFlag::default(),
    })
}
