//! A run whose lease ended while a migration was running: what became of the lock and of the
//! migration, and the message that says so. Nothing is advised before both are read (once each,
//! concurrently, with the client's usual retries: a partition that heals within `retryWindow`
//! still gets the right advice): the lock node (taken over by whom, force-released, or still this process's
//! expired record: it ran out while the database could not be reached) and the history (is the
//! migration recorded, and by whom). `--mark-applied` is suggested only when the migration is not
//! recorded and no other holder is running it.

use crate::history::{History, HistoryRecord};
use crate::lock::{is_connectivity, ExclusiveGuard, LockNode};
use crate::{Error, ErrorCode};

use super::discover::Script;
use super::{Runner, ScriptHost};

/// What the database says about the migration once the lease is over.
enum Found {
    /// Recorded in the history (by whichever run): by whom.
    Recorded(String),
    /// Not recorded; another holder has the lock now (it will run the migration).
    Running(String),
    /// Not recorded, and nobody else holds the lock.
    Unrecorded,
    /// The history could not be read: why.
    Unknown(String),
}

/// How the run ended for the migration.
pub(crate) enum Ended<'a> {
    /// Its up() completed, then this process could not record it.
    Ran,
    /// Its up() failed (this cause) after the lease ended.
    Stopped(&'a Error),
}

impl<H: ScriptHost> Runner<H> {
    /// The error for `s` once the run's lease is over (`e`: the lease's error, or the failure to
    /// reach the database while recording). What became of the lock and whether `s` is recorded
    /// are read first (concurrently, with the client's retries).
    pub(crate) async fn after_lease(
        &self,
        guard: Option<&ExclusiveGuard>,
        history: &History,
        s: &Script,
        ended: Ended<'_>,
        e: Error,
    ) -> Error {
        let (node, records) = tokio::join!(
            async {
                match guard {
                    Some(g) => g.fate(None).await,
                    None => None,
                }
            },
            history.read()
        );
        // The lease's error, now that the lock's fate is known (taken over: LOCK_LOST).
        let e = guard.and_then(|g| g.lease().check_local()).unwrap_or(e);
        let code = if is_connectivity(&e) {
            ErrorCode::ConnectionFailed
        } else {
            e.code
        };
        let mine = guard.map(|g| (g.executor_id().to_string(), g.epoch()));
        let found = match records {
            Ok((records, _)) => match records.into_iter().find(|r| r.timestamp == s.version) {
                Some(r) => Found::Recorded(recorded_by(&r)),
                None => match node {
                    // Another live holder (not expired in server time, as far as it is known).
                    Some(LockNode::Held(r))
                        if mine
                            .as_ref()
                            .is_none_or(|(id, ep)| *id != r.executor_id || *ep != r.epoch)
                            && self
                                .client
                                .server_clock()
                                .now_ms()
                                .is_none_or(|now| r.expires_at > now) =>
                    {
                        Found::Running(format!(
                            "{} on {} (epoch {})",
                            r.executor_id, r.hostname, r.epoch
                        ))
                    }
                    _ => Found::Unrecorded,
                },
            },
            Err(read) => Found::Unknown(read.message),
        };
        let message = match ended {
            Ended::Ran => ran(&e, s, history, &found),
            Ended::Stopped(cause) => stopped(&e, s, cause, history, &found),
        };
        Error::new(code, message)
    }
}

/// `by <executor> (epoch N)` for a history record.
fn recorded_by(r: &HistoryRecord) -> String {
    let who = r.executor_id.as_deref().unwrap_or("another run");
    let how = if r.marked_applied == Some(true) {
        "marked as applied"
    } else {
        "recorded"
    };
    match r.lock_epoch {
        Some(epoch) => format!("{how} by {who} under the lock's epoch {epoch}"),
        None => format!("{how} by {who}"),
    }
}

fn mark_applied_advice(s: &Script) -> String {
    format!(
        "record it without running it again: msr-firebase migrate --mark-applied {} (or, if its up() is safe to run \
         twice, just run migrate again)",
        s.version
    )
}

/// `s`'s up() completed, and then the lease ended before it was recorded by this process.
fn ran(e: &Error, s: &Script, history: &History, found: &Found) -> String {
    let head = format!(
        "{} — the migration {} RAN here (its up() completed) but this process did not record it and did not roll it back",
        e.message, s.name
    );
    match found {
        Found::Recorded(r) => format!(
            "{head}. It is recorded in the migration history at {} ({}): nothing to record or run again; its data \
             is what the run that recorded it left.",
            history.path(),
            r
        ),
        Found::Running(holder) => format!(
            "{head}. It is NOT RECORDED in the migration history at {} yet, and the lock is now held by {holder}, \
             which runs the pending migrations, this one included: do not mark it as applied; once that run has \
             ended, msr-firebase list shows whether it is recorded.",
            history.path()
        ),
        Found::Unrecorded => format!(
            "{head}. It is NOT RECORDED in the migration history at {}, so the next migrate would run it again. Once \
             its changes are confirmed, {}.",
            history.path(),
            mark_applied_advice(s)
        ),
        Found::Unknown(why) => format!(
            "{head}. Whether another holder has recorded it since could not be checked (reading the history at {} \
             failed: {why}). Once the database is reachable, run msr-firebase list: if {} is listed as pending, it \
             is NOT RECORDED and the next migrate would run it again; once its changes are confirmed, {}.",
            history.path(),
            s.name,
            mark_applied_advice(s)
        ),
    }
}

/// `s`'s up() failed (`cause`) after the lease ended: nothing is undone.
fn stopped(e: &Error, s: &Script, cause: &Error, history: &History, found: &Found) -> String {
    let head = format!(
        "{} — the migration {} was stopped part-way here ({}). No rollback was run: this process no longer holds \
         the lock, and a restore or down() would undo the work of the holder that took over",
        e.message, s.name, cause.message
    );
    match found {
        Found::Recorded(r) => format!(
            "{head}. It is recorded in the migration history at {} ({}): nothing to do; its data is what the run \
             that recorded it left.",
            history.path(),
            r
        ),
        Found::Running(holder) => format!(
            "{head}. It is not recorded yet, and the lock is now held by {holder}, which runs it."
        ),
        Found::Unrecorded => format!(
            "{head}. It is not recorded: check the data {} touches; the next migrate runs it again.",
            s.name
        ),
        Found::Unknown(why) => format!(
            "{head}. It is not recorded by this process (whether another holder has recorded it could not be checked: \
             {why}): check the data {} touches; the next migrate runs it again unless msr-firebase list shows it \
             executed.",
            s.name
        ),
    }
}
