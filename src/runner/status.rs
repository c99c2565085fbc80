//! Where the database stands for this app, at no request per probe: what `Runner::status`
//! (`runner.status()`, the health and metrics handlers) and `Runner::wait_until_migrated`
//! (`runner::probe`) answer from, and the policies that judge it.
//!
//! - The views: the history node and the lock node, each a `lock::live::LiveNode` (read once
//!   by opening its event stream, then kept current from its events; read every few seconds
//!   where streams are refused), started on first use and shared by every caller of this runner,
//!   its `lockingService` included.
//! - The policy (`readiness`): pending are the migrations `migrate` would run (this app's files
//!   not in the history and newer than the newest recorded one; see `plan`), up to the version
//!   the app needs — by default the newest file in its own folder. The database is up to date
//!   for the app when none of them is pending and the newest recorded migration is at least
//!   that version (a newer app's migrations recorded after them keep it up to date).
//! - The last run: this process's last `migrate`/`down` (dry runs aside), as `Runner::emit`
//!   saw it end.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::history::{parse_node, HistoryRecord};
use crate::lock::live::{LiveCell, NodeView};
use crate::lock::LockStatus;
use crate::{Error, Result};

use super::discover::Script;
use super::events::{Command, RunEvent};
use super::plan::plan;

/// A migration the app needs that the history does not show yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMigration {
    pub version: u64,
    pub name: String,
}

/// How the history stands against this app's migrations (`readiness`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The newest recorded migration's version (`None`: nothing recorded).
    pub applied_version: Option<u64>,
    /// How many migrations the history records.
    pub applied: usize,
    /// The migrations the app needs that are still to run, oldest first.
    pub pending: Vec<PendingMigration>,
    /// The version the app needs (`None`: no migrations and none asked for).
    pub needed_version: Option<u64>,
    pub up_to_date: bool,
}

/// The policy: which of `scripts` (the app's folder) are pending against `history`, up to
/// `version` (default: the newest script), and whether the database is up to date for the app.
pub fn readiness(scripts: &[Script], history: &[HistoryRecord], version: Option<u64>) -> Readiness {
    let plan = plan(scripts, history);
    let needed_version = version.or_else(|| scripts.iter().map(|s| s.version).max());
    let pending: Vec<PendingMigration> = plan
        .pending_up_to(needed_version)
        .into_iter()
        .map(|s| PendingMigration {
            version: s.version,
            name: s.name,
        })
        .collect();
    let reached = needed_version.is_none_or(|v| plan.last_executed.is_some_and(|l| l >= v));
    Readiness {
        applied_version: plan.last_executed,
        applied: history.len(),
        up_to_date: pending.is_empty() && reached,
        pending,
        needed_version,
    }
}

/// The end of this process's last run.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub command: Command,
    pub success: bool,
    pub duration: Duration,
}

/// `runner.status()`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerStatus {
    pub readiness: Readiness,
    /// The lock's holder (`is_locked` false once its lease ran out); `None` when free, or when
    /// locking is off.
    pub lock: Option<LockStatus>,
    /// Whether the values are current (every view's stream open, or its last read answered);
    /// otherwise they are the last ones known, and `stale_because` says why.
    pub current: bool,
    pub stale_because: Option<String>,
    pub last_run: Option<LastRun>,
    /// Seconds until the holder's lease runs out by the server-time estimate (0 when free).
    pub lease_remaining: Option<f64>,
}

/// What a health probe says (`health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200: the database answers (and, when required, the app is up to date).
    Ok,
    /// 503: a migration the app needs is pending.
    Pending,
    /// 503: the database does not answer (or never did).
    Unavailable,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Pending => "pending",
            Verdict::Unavailable => "unavailable",
        }
    }
    pub fn http_status(self) -> u16 {
        match self {
            Verdict::Ok => 200,
            _ => 503,
        }
    }
}

/// The policy of a health probe: unavailable unless the values are current; with
/// `require_up_to_date` (a readiness probe), pending while a migration the app needs is.
/// `Err`: the status could not be had at all (the history never answered, the folder unreadable).
pub fn health(
    status: &Result<RunnerStatus>,
    require_up_to_date: bool,
) -> (Verdict, Option<String>) {
    let s = match status {
        Err(e) => return (Verdict::Unavailable, Some(e.message.clone())),
        Ok(s) => s,
    };
    if !s.current {
        let why = s.stale_because.clone().unwrap_or_default();
        return (
            Verdict::Unavailable,
            Some(format!("The database is unreachable: {why}")),
        );
    }
    let r = &s.readiness;
    if require_up_to_date && !r.up_to_date {
        let at = r.applied_version.map_or_else(
            || "no migration recorded yet".to_string(),
            |v| format!("the database is at {v}"),
        );
        let reason = if r.pending.is_empty() {
            let needed = r.needed_version.unwrap_or_default();
            format!("Version {needed} is not recorded yet ({at})")
        } else {
            let list: Vec<String> = r
                .pending
                .iter()
                .map(|p| format!("{} ({})", p.version, p.name))
                .collect();
            let n = r.pending.len();
            let s = if n == 1 { "" } else { "s" };
            format!("{n} migration{s} pending: {} ({at})", list.join(", "))
        };
        return (Verdict::Pending, Some(reason));
    }
    (Verdict::Ok, None)
}

/// The history's records as parsed from the view with this change count.
type Parsed = (u64, Arc<Vec<HistoryRecord>>);

/// What the runner keeps for `status`: the two views, the app's scripts (discovered once: the
/// folder does not change under a running app), the parsed history (by the view's change
/// count) and the last run.
#[derive(Clone, Default)]
pub struct StatusState {
    pub lock: LiveCell,
    pub(crate) history: LiveCell,
    pub(crate) scripts: Arc<OnceLock<std::result::Result<Vec<Script>, Error>>>,
    parsed: Arc<Mutex<Option<Parsed>>>,
    pub(crate) last_run: Arc<Mutex<Option<LastRun>>>,
}

impl StatusState {
    /// Remember how a run ended (`Runner::emit` hands every event here).
    pub(crate) fn saw(&self, ev: &RunEvent) {
        let (command, success, duration, dry) = match ev {
            RunEvent::Complete {
                command,
                result,
                duration,
            } => (*command, true, *duration, result.dry_run),
            RunEvent::Failed {
                command,
                result,
                duration,
                ..
            } => (*command, false, *duration, result.dry_run),
            _ => return,
        };
        if !dry {
            *self.last_run.lock().unwrap() = Some(LastRun {
                command,
                success,
                duration,
            });
        }
    }

    pub(crate) fn records(&self, path: &str, view: &NodeView) -> Arc<Vec<HistoryRecord>> {
        let mut parsed = self.parsed.lock().unwrap();
        match &*parsed {
            Some((changes, records)) if *changes == view.changes => records.clone(),
            _ => {
                let value = view.value.clone().unwrap_or_default();
                let records = Arc::new(parse_node(path, &value).0);
                *parsed = Some((view.changes, records.clone()));
                records
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use std::path::PathBuf;

    fn script(version: u64) -> Script {
        Script {
            name: format!("V{version}_m.js"),
            filepath: PathBuf::from(format!("/m/V{version}_m.js")),
            version,
            checksum: String::new(),
        }
    }

    fn record(timestamp: u64) -> HistoryRecord {
        HistoryRecord {
            key: format!("v{timestamp}"),
            name: format!("V{timestamp}_m.js"),
            timestamp,
            ..Default::default()
        }
    }

    const A: u64 = 202501010001;
    const B: u64 = 202501010002;
    const C: u64 = 202501010003;

    #[test]
    fn pending_is_what_migrate_would_run_up_to_the_needed_version() {
        let scripts = [script(A), script(B), script(C)];
        let r = readiness(&scripts, &[record(A)], None);
        assert_eq!(r.applied_version, Some(A));
        assert_eq!(r.needed_version, Some(C));
        assert_eq!(
            r.pending.iter().map(|p| p.version).collect::<Vec<_>>(),
            [B, C]
        );
        assert!(!r.up_to_date);
        let r = readiness(&scripts, &[record(A), record(B)], Some(B));
        assert!(r.up_to_date, "{r:?}");
        assert!(r.pending.is_empty());
        let all = [record(A), record(B), record(C)];
        assert!(readiness(&scripts, &all, None).up_to_date);
        assert_eq!(readiness(&scripts, &all, None).applied, 3);
    }

    #[test]
    fn health_verdicts() {
        let scripts = [script(A), script(B)];
        let status = |history: &[HistoryRecord], current: bool| {
            Ok(RunnerStatus {
                readiness: readiness(&scripts, history, None),
                lock: None,
                current,
                stale_because: (!current).then(|| "schema_version: the event stream ended".into()),
                last_run: None,
                lease_remaining: None,
            })
        };
        let pending = status(&[record(A)], true);
        assert_eq!(health(&pending, false), (Verdict::Ok, None));
        assert_eq!(
            health(&pending, true),
            (
                Verdict::Pending,
                Some("1 migration pending: 202501010002 (V202501010002_m.js) (the database is at 202501010001)".into())
            )
        );
        assert_eq!(
            health(&status(&[record(A), record(B)], true), true).0,
            Verdict::Ok
        );
        let stale = health(&status(&[record(A), record(B)], false), true);
        assert_eq!(stale.0, Verdict::Unavailable);
        assert_eq!(
            stale.1.unwrap(),
            "The database is unreachable: schema_version: the event stream ended"
        );
        let never = Err(Error::new(ErrorCode::ConnectionFailed, "no answer"));
        assert_eq!(
            health(&never, false),
            (Verdict::Unavailable, Some("no answer".into()))
        );
        assert_eq!(
            (Verdict::Ok.http_status(), Verdict::Pending.http_status()),
            (200, 503)
        );
    }

    #[test]
    fn a_newer_apps_history_keeps_an_older_app_up_to_date() {
        // An out-of-order file the history skipped (B) is not pending: migrate would not run it.
        let r = readiness(&[script(A), script(B)], &[record(A), record(C)], None);
        assert!(r.up_to_date, "{r:?}");
        assert_eq!(r.applied_version, Some(C));
    }

    #[test]
    fn a_version_asked_for_must_be_recorded() {
        // A version beyond the app's files: up to date only once something that new is recorded.
        let r = readiness(&[script(A)], &[record(A)], Some(C));
        assert!(!r.up_to_date && r.pending.is_empty(), "{r:?}");
        assert!(readiness(&[script(A)], &[record(C)], Some(C)).up_to_date);
        // No files, nothing asked for: nothing to wait for.
        assert!(readiness(&[], &[], None).up_to_date);
        assert!(!readiness(&[script(A)], &[], None).up_to_date);
    }
}
