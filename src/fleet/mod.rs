//! A fleet: many databases in one run (the instances of a sharded Realtime Database, each with
//! the same migrations). The databases come from the config (`config::databases`: one `Member`,
//! with its own complete config, per database); each runs its own work — its own `Runner`, lock
//! and history, exactly as a single run — `concurrency` at a time, in configured order.
//!
//! `failFast` off: one database failing does not stop the others. On: after a failure no other
//! database starts, and the running ones are asked to stop (their `StopFlag`: each finishes its
//! current migration, gives its lock back and ends `INTERRUPTED`). A stop of the whole run (a
//! signal) reaches every running database the same way.
//!
//! What each database came to is an [`Outcome`]; [`Summary`] counts them and [`exit_status`]
//! is the run's status: the most severe of the databases' (`ExitStatus::severity`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::config::Member;
use crate::runner::{MigrationResult, RunOutcome, StopFlag};
use crate::{Error, ErrorCode, ExitStatus};

/// What one database's work returns: its result (also a partial one beside an error), its error,
/// and the requests it sent.
pub struct Done<T> {
    pub result: Option<T>,
    pub error: Option<Error>,
    /// The status the work ended with (`None`: from the error, by the command's own status).
    pub status: Option<ExitStatus>,
    pub requests: u64,
}

impl<T> Done<T> {
    pub fn ok(result: T, requests: u64) -> Done<T> {
        Done {
            result: Some(result),
            error: None,
            status: None,
            requests,
        }
    }

    /// Work that failed before it had a result or sent a request.
    pub fn failed(error: Error) -> Done<T> {
        Done {
            result: None,
            error: Some(error),
            status: None,
            requests: 0,
        }
    }
}

impl Done<MigrationResult> {
    /// A migrate or down run: its result (a partial one beside an error) and its error; the
    /// status from the error, the requests counted by the caller.
    pub fn from_outcome(out: RunOutcome) -> Self {
        Done {
            result: Some(out.result),
            error: out.error,
            status: None,
            requests: 0,
        }
    }
}

/// Where one database of the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Succeeded,
    Failed,
    /// Asked to stop (failFast after another database failed, or a signal) and stopped cleanly.
    Stopped,
    /// Never started: failFast, after another database failed (or a signal came first).
    NotStarted,
}

/// One database's part of the run.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub name: String,
    pub database_url: String,
    pub state: State,
    pub result: Option<T>,
    pub error: Option<Error>,
    pub status: ExitStatus,
    pub duration_ms: u64,
    pub requests: u64,
}

/// The run's counts, and the databases that did not succeed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub databases: usize,
    pub succeeded: usize,
    pub failed: Vec<String>,
    pub stopped: Vec<String>,
    pub not_started: Vec<String>,
    pub exit_code: i32,
    pub duration_ms: u64,
    pub requests: u64,
}

/// How the run goes: how many at a time, whether a failure stops the rest, and the run's own
/// stop (a signal), passed on to every running database.
#[derive(Clone)]
pub struct Plan {
    pub concurrency: usize,
    pub fail_fast: bool,
    pub stop: StopFlag,
    /// The failure status of the command (for an error without a status of its own).
    pub own: ExitStatus,
}

/// One database's part, started when polled.
type Job<'a, T> = Pin<Box<dyn Future<Output = Outcome<T>> + Send + 'a>>;

/// Run `work` on every member, `plan.concurrency` at a time; the outcomes in members' order.
/// `work` gets the member and its own stop flag (give it to the member's `Runner`).
pub async fn run<'a, T, F, Fut>(members: &'a [Member], plan: &'a Plan, work: F) -> Vec<Outcome<T>>
where
    T: Send + 'a,
    F: Fn(Member, StopFlag) -> Fut + Send + Sync + 'a,
    Fut: Future<Output = Done<T>> + Send + 'a,
{
    let stops: Arc<Vec<StopFlag>> = Arc::new(members.iter().map(|_| StopFlag::default()).collect());
    let failed = Arc::new(AtomicBool::new(false));
    let finished = tokio_util::sync::CancellationToken::new();
    let work = Arc::new(work);
    // The jobs are built first and held as boxed futures: no iterator adapter borrowing from
    // this function is held across an await.
    let mut jobs: Vec<Job<'a, T>> = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        let (work, failed, stops) = (work.clone(), failed.clone(), stops.clone());
        jobs.push(Box::pin(async move {
            let stop = stops[i].clone();
            let base = |state, status| Outcome {
                name: m.name.clone(),
                database_url: m.database_url().to_string(),
                state,
                result: None,
                error: None,
                status,
                duration_ms: 0,
                requests: 0,
            };
            if (plan.fail_fast && failed.load(Ordering::SeqCst)) || plan.stop.is_requested() {
                return base(State::NotStarted, ExitStatus::Success);
            }
            let t0 = Instant::now();
            let done = work(m.clone(), stop.clone()).await;
            let stopped_by_us = stop.is_requested();
            let mut out = base(State::Succeeded, ExitStatus::Success);
            out.duration_ms = t0.elapsed().as_millis() as u64;
            out.requests = done.requests;
            out.result = done.result;
            let status = done.status.or_else(|| {
                done.error
                    .as_ref()
                    .map(|e| ExitStatus::of_failure(e.code, plan.own))
            });
            if let Some(status) = status.filter(|s| *s != ExitStatus::Success) {
                out.status = status;
                // Asked to stop, it ended interrupted (or with a status only): stopped.
                out.state = match &done.error {
                    _ if !stopped_by_us => State::Failed,
                    Some(e) if e.code != ErrorCode::Interrupted => State::Failed,
                    _ => State::Stopped,
                };
                if out.state == State::Failed && plan.fail_fast {
                    failed.store(true, Ordering::SeqCst);
                    stops.iter().for_each(StopFlag::request);
                }
            }
            out.error = done.error;
            out
        }));
    }
    let each = async {
        let outcomes: Vec<Outcome<T>> = stream::iter(jobs)
            .buffered(plan.concurrency.max(1))
            .collect()
            .await;
        finished.cancel();
        outcomes
    };
    // A stop of the whole run reaches each database's own flag.
    let relay = async {
        let token = plan.stop.token();
        tokio::select! {
            () = token.cancelled() => stops.iter().for_each(StopFlag::request),
            () = finished.cancelled() => {}
        }
    };
    let (outcomes, ()) = futures_util::future::join(each, relay).await;
    outcomes
}

/// The run's status: success when every database succeeded, else the most severe status among
/// them (`ExitStatus::severity`).
pub fn exit_status<T>(outcomes: &[Outcome<T>]) -> ExitStatus {
    outcomes
        .iter()
        .map(|o| match o.state {
            State::NotStarted if o.status == ExitStatus::Success => ExitStatus::Success,
            _ => o.status,
        })
        .max_by_key(|s| s.severity())
        .unwrap_or(ExitStatus::Success)
}

/// The counts of a run that took `duration_ms`.
pub fn summary<T>(outcomes: &[Outcome<T>], duration_ms: u64) -> Summary {
    let named = |s: State| {
        outcomes
            .iter()
            .filter(|o| o.state == s)
            .map(|o| o.name.clone())
            .collect::<Vec<_>>()
    };
    Summary {
        databases: outcomes.len(),
        succeeded: named(State::Succeeded).len(),
        failed: named(State::Failed),
        stopped: named(State::Stopped),
        not_started: named(State::NotStarted),
        exit_code: exit_status(outcomes).code(),
        duration_ms,
        requests: outcomes.iter().map(|o| o.requests).sum(),
    }
}

impl Summary {
    /// One sentence: "5 of 5 databases succeeded", or which failed, stopped and never started.
    pub fn sentence(&self) -> String {
        let mut s = format!(
            "{} of {} database(s) succeeded",
            self.succeeded, self.databases
        );
        for (what, names) in [
            ("failed", &self.failed),
            ("stopped (failFast)", &self.stopped),
            ("not started (failFast)", &self.not_started),
        ] {
            if !names.is_empty() {
                s.push_str(&format!("; {what}: {}", names.join(", ")));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;
    use std::sync::atomic::AtomicUsize;

    fn members(n: usize) -> Vec<Member> {
        let urls: Vec<String> = (0..n)
            .map(|i| format!("https://db-{i}.firebaseio.com"))
            .collect();
        Config::from_value(&json!({ "databaseUrls": urls }))
            .unwrap()
            .members()
    }

    fn plan(concurrency: usize, fail_fast: bool) -> Plan {
        Plan {
            concurrency,
            fail_fast,
            stop: StopFlag::default(),
            own: ExitStatus::MigrationFailed,
        }
    }

    #[tokio::test]
    async fn at_most_concurrency_run_at_once_and_a_failure_stops_no_other() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let ms = members(6);
        let out = run(&ms, &plan(2, false), |m, _| {
            let (running, most) = (&running, &most);
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if m.name == "db-1" {
                    Done {
                        result: None,
                        error: Some(Error::new(ErrorCode::ScriptFailed, "boom")),
                        status: None,
                        requests: 3,
                    }
                } else {
                    Done::ok(m.name.clone(), 2)
                }
            }
        })
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 2);
        let states: Vec<State> = out.iter().map(|o| o.state).collect();
        assert_eq!(states.iter().filter(|s| **s == State::Succeeded).count(), 5);
        assert_eq!(out[1].state, State::Failed);
        assert_eq!(exit_status(&out), ExitStatus::MigrationFailed);
        let s = summary(&out, 10);
        assert_eq!(s.failed, ["db-1"]);
        assert_eq!(s.requests, 13);
        assert_eq!(s.exit_code, 3);
        assert!(s.sentence().contains("failed: db-1"), "{}", s.sentence());
    }

    #[tokio::test]
    async fn fail_fast_starts_no_other_and_stops_the_running_ones() {
        let ms = members(5);
        let out = run(&ms, &plan(2, true), |m, stop| async move {
            if m.name == "db-0" {
                tokio::task::yield_now().await;
                return Done {
                    result: None,
                    error: Some(Error::new(ErrorCode::RollbackFailed, "boom")),
                    status: None,
                    requests: 1,
                };
            }
            // db-1 runs beside it: it stops at its next step once asked.
            stop.token().cancelled().await;
            Done::<String> {
                result: None,
                error: Some(Error::new(ErrorCode::Interrupted, "stopped")),
                status: None,
                requests: 1,
            }
        })
        .await;
        let states: Vec<State> = out.iter().map(|o| o.state).collect();
        assert_eq!(
            states,
            [
                State::Failed,
                State::Stopped,
                State::NotStarted,
                State::NotStarted,
                State::NotStarted
            ]
        );
        assert_eq!(exit_status(&out), ExitStatus::RollbackFailed);
    }
}
