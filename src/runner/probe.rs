//! What a probe asks the runner, answered from the live views of the history and lock nodes
//! (`runner::status::StatusState`; no request once they have answered): `Runner::status` and
//! `Runner::wait_until_migrated`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lock::live::{lock_status, LiveNode, NodeView};
use crate::{Error, ErrorCode, Result};

use super::discover::{discover, Script};
use super::plan::check_target;
use super::status::{readiness, RunnerStatus};
use super::{Runner, ScriptHost};

/// How long `wait_until_migrated`, once the history shows the migrations, gives the lock's view to
/// answer for the status it resolves with.
const LOCK_GRACE: Duration = Duration::from_secs(2);

impl<H: ScriptHost> Runner<H> {
    fn scripts(&self) -> Result<&[Script]> {
        self.live
            .scripts
            .get_or_init(|| discover(&self.cfg, &self.cwd).map(|d| d.scripts))
            .as_deref()
            .map_err(Clone::clone)
    }

    fn history_view(&self) -> &LiveNode {
        self.live
            .history
            .get(&self.client, &self.cfg.history_path())
    }

    fn lock_view(&self) -> Option<&LiveNode> {
        let svc = self.lock.as_ref()?;
        Some(self.live.lock.get(&self.client, svc.path()))
    }

    /// Where the database stands for this app, from the live views (no request once they have
    /// answered). Waits up to `within` for views that are current; after that answers with the
    /// last values known (`current: false`; the lock unknown when its view never answered), or
    /// CONNECTION_FAILED when the history's view never answered.
    /// `version`: the version the app needs (default: the newest file in its folder).
    pub async fn status(&self, version: Option<u64>, within: Duration) -> Result<RunnerStatus> {
        if let Some(v) = version {
            check_target(v, false)?;
        }
        let scripts = self.scripts()?;
        let history = self.history_view();
        let lock = self.lock_view();
        let (h, l) = tokio::join!(history.current(within), async {
            match lock {
                Some(l) => Some(l.current(within).await),
                None => None,
            }
        });
        let mut stale = Vec::new();
        let mut known = |node: &LiveNode, r: Result<Arc<NodeView>>| {
            let v = r.unwrap_or_else(|_| node.view());
            if let Some(why) = v.why_not_current() {
                stale.push(format!("{}: {why}", node.path()));
            }
            v
        };
        // The history never answered: nothing to say about the migrations.
        if let Err(e) = h.as_ref().map_err(Clone::clone) {
            if history.view().value.is_none() {
                return Err(e);
            }
        }
        let h = known(history, h);
        let l = lock.zip(l).map(|(node, r)| known(node, r));
        let records = self.live.records(history.path(), &h);
        let lock = l.and_then(|v| lock_status(&self.client, &v));
        let lease_remaining = self.lock.as_ref().map(|_| match &lock {
            Some(s) if s.is_locked => self
                .client
                .server_clock()
                .now_ms()
                .map_or(0.0, |now| (s.expires_at - now).max(0) as f64 / 1000.0),
            _ => 0.0,
        });
        Ok(RunnerStatus {
            readiness: readiness(scripts, &records, version),
            lock,
            current: stale.is_empty(),
            stale_because: (!stale.is_empty()).then(|| stale.join("; ")),
            last_run: self.live.last_run.lock().unwrap().clone(),
            lease_remaining,
        })
    }

    /// Resolves once the history shows every migration the app needs (`version`, default the
    /// newest file in its folder), from the history's live view (no polling). Out of `timeout`:
    /// MIGRATIONS_PENDING naming the versions still pending (or why the database did not answer).
    pub async fn wait_until_migrated(
        &self,
        version: Option<u64>,
        timeout: Option<Duration>,
    ) -> Result<RunnerStatus> {
        if let Some(v) = version {
            check_target(v, false)?;
        }
        let scripts = self.scripts()?;
        let history = self.history_view();
        let mut rx = history.subscribe();
        let started = Instant::now();
        let until = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let view = rx.borrow_and_update().clone();
            if view.is_current() {
                let records = self.live.records(history.path(), &view);
                if readiness(scripts, &records, version).up_to_date {
                    return self.status(version, LOCK_GRACE).await;
                }
            }
            let changed = rx.changed();
            let timed_out = match until {
                Some(at) => tokio::time::timeout_at(at, changed).await.is_err(),
                None => changed.await.is_err(),
            };
            if timed_out {
                return Err(self.not_migrated(scripts, history, version, started.elapsed()));
            }
        }
    }

    fn not_migrated(
        &self,
        scripts: &[Script],
        history: &LiveNode,
        version: Option<u64>,
        waited: Duration,
    ) -> Error {
        let view = history.view();
        let waited = crate::time::human(waited);
        let Some(_) = view.value else {
            return Error::new(
                ErrorCode::MigrationsPending,
                format!(
                    "The database did not answer within {waited} ({}), so the migrations this app needs cannot be confirmed. Check the connection to the database.",
                    view.why_not_current().unwrap_or_default()
                ),
            );
        };
        let records = self.live.records(history.path(), &view);
        let r = readiness(scripts, &records, version);
        let pending: Vec<String> = r
            .pending
            .iter()
            .map(|p| format!("{} ({})", p.version, p.name))
            .collect();
        let needed = r
            .needed_version
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        let applied = r
            .applied_version
            .map_or_else(|| "none".to_string(), |v| v.to_string());
        let stale = view
            .why_not_current()
            .map(|w| format!(" The history's view is not current ({w})."))
            .unwrap_or_default();
        let what = if pending.is_empty() {
            format!("version {needed} is not recorded yet")
        } else {
            format!("still pending: {}", pending.join(", "))
        };
        Error::new(
            ErrorCode::MigrationsPending,
            format!(
                "Migrations not applied after {waited}: {what} (needed: {needed}; the newest recorded: {applied}).{stale} Run `msr-firebase migrate` (or let the migration Job finish), or wait longer with a larger timeout."
            ),
        )
    }
}
