//! `ScriptDb`: what a runner's scripts get as their `db`, and the lock service their `handler`
//! offers. Decided here, once, for every way scripts run — a library runner, a CLI command, the
//! sandbox runner of a rehearsal: the runner's own connection with the runner's fence as the gate
//! of every write (L12: refused once the lease is over, the lock is lost or a script was
//! abandoned), the runner's lock service (its events in the runner's log and lock hooks) and the
//! lock node's live view the runner's `status()` reads. `Runner::script_db` builds it once per
//! runner and hands it to its `ScriptHost` with every script it runs; no other path leads a
//! script to a database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::{Config, UnindexedQueries};
use crate::lock::live::LiveCell;
use crate::lock::{Fence, LockService};
use crate::log::{LineFn, LogLevel, LogLine};
use crate::rtdb::{Client, MissingIndex, Unindexed};

/// Ids tell runners apart (a host builds a script context once per id); no database is kept here.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The scripts' `db` of one runner (see the module docs). Cheap to clone; clones share it.
#[derive(Clone)]
pub struct ScriptDb {
    /// The same for the runner's whole life, different for every runner in the process.
    pub id: u64,
    /// The runner's connection, [`ScriptDb::fence`] the gate of each attempt of each write; a
    /// query refused for want of an index is answered as `queries.unindexed` says (see
    /// [`unindexed`]); its writes send `disableTriggers=true` under `writes.disableTriggers`.
    pub client: Client,
    /// The runner's fence (held by its lease during a locked run).
    pub fence: Fence,
    /// What `checkConnection()` reads (shallow): the history node, one of the runner's own
    /// paths; never the root, which Security Rules usually deny.
    pub check_path: String,
    /// The runner's lock service (`None` when locking is disabled).
    pub lock: Option<LockService>,
    /// The lock node's live view, shared with the runner's `status()`.
    pub live_lock: LiveCell,
    /// The runner's configuration (`handler.cfg`).
    pub cfg: Arc<Config>,
}

impl ScriptDb {
    /// The `db` of the runner with this configuration, connection, fence, lock service, live
    /// view of the lock node and log (`Runner::script_db`, once per runner). The connection's
    /// notices (a node deleted in chunks: `write.chunked`) go to the runner's log.
    pub(crate) fn new(
        cfg: &Config,
        client: &Client,
        fence: &Fence,
        lock: Option<LockService>,
        live_lock: LiveCell,
        log: LineFn,
    ) -> ScriptDb {
        ScriptDb {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            client: client
                .gated(Arc::new(fence.clone()))
                .with_unindexed(unindexed(cfg, log.clone()))
                .with_notices(log),
            fence: fence.clone(),
            check_path: cfg.history_path(),
            lock,
            live_lock,
            cfg: Arc::new(cfg.clone()),
        }
    }
}

/// The scripts' policy for queries the database refuses for want of an index
/// (`queries.unindexed`): answered on the client, as firebase-admin does, with its warning once per
/// location and child as a `query.unindexed` line of the runner's log (fields `path`, `child`,
/// `indexOn`; the rehearsal turns it into a finding), or failed naming the `.indexOn` to add.
pub fn unindexed(cfg: &Config, log: LineFn) -> Arc<Unindexed> {
    Unindexed::new(
        cfg.queries.unindexed == UnindexedQueries::Fallback,
        Arc::new(move |m: &MissingIndex| {
            log(
                &LogLine::new(LogLevel::Warn, "query.unindexed", m.warning())
                    .with("path", &m.path)
                    .with("child", &m.child)
                    .with("indexOn", m.index_on()),
            )
        }),
    )
}
