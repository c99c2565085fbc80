//! `LockService`: acquire/verify/release/status/force-release on conditional PUT/DELETE only.
//!
//! Every change of the lock node is a conditional PUT (`if-match` the ETag the decision was
//! based on); a 412 hands back the node's current value and ETag, and the decision is made again
//! from those. Nothing is ever decided by reading and then writing unconditionally (L1).
//!
//! Expiry (L5) is judged in server time only: `expiresAt <= client.server_clock().now_ms()`, the
//! server clock being a lower-bound estimate learned from response `Date` headers and server
//! timestamps. When no server time is known yet, a record counts as expired only once its ETag
//! has stayed unchanged for its lease length on this machine's monotonic clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rtdb::{CasOutcome, Client, Versioned, NULL_ETAG};
use crate::{Error, ErrorCode, Result};

use super::events::{LockEvent, LockObserver};
use super::lease::{Held, LeaseInstant};
use super::policy::LockOptions;
use super::record::{lock_path, this_host, tombstone, LockNode, LockRecord, LockStatus};

/// How many times a compare-and-set is re-evaluated after a 412 before giving up.
const MAX_CAS_ROUNDS: usize = 16;

/// State shared by the clones of one `LockService`.
#[derive(Default)]
struct ServiceState {
    /// Fallback lease measurement when the server clock is unknown: the ETag seen and when it
    /// was first seen (monotonic).
    seen: Mutex<Option<(String, Instant)>>,
    /// Epochs this service acquired, per executor id (releases check them).
    owned: Mutex<HashMap<String, u64>>,
    /// The lock node as this service last saw it (value and ETag, from a read, a 412 or a
    /// write's answer): where the next compare-and-set starts, so that an uncontended acquire
    /// or release is one conditional write. A stale entry costs one 412, never correctness.
    last: Mutex<Option<Versioned>>,
}

#[derive(Clone)]
pub struct LockService {
    pub(crate) client: Client,
    pub(crate) path: String,
    pub(crate) opts: LockOptions,
    state: Arc<ServiceState>,
    /// Who hears this service's `LockEvent`s (and its guards').
    observer: Option<LockObserver>,
}

#[derive(Debug)]
pub(crate) enum AcquireOutcome {
    Acquired(Held),
    /// Held by another live owner.
    HeldBy(LockRecord),
    /// The node kept changing under contention (every compare-and-set lost).
    Contended,
}

#[derive(Debug)]
pub(crate) enum RenewOutcome {
    Renewed(Held),
    /// The node no longer holds this owner and epoch; what it holds instead.
    Lost(LockNode),
}

enum Wrote {
    Written(Held),
    Mismatch(Versioned),
}

/// Wrap a failure of a lock operation: "<prefix>: <message>", code LOCK_ERROR unless the
/// original code says something more specific.
pub(crate) fn wrap(prefix: &str) -> impl Fn(Error) -> Error + '_ {
    move |e: Error| {
        let code = match e.code {
            ErrorCode::PermissionDenied
            | ErrorCode::ConnectionFailed
            | ErrorCode::DatabaseNotFound
            | ErrorCode::AuthFailed
            | ErrorCode::WriteOutcomeUnknown
            | ErrorCode::LockHeld
            | ErrorCode::LockLost => e.code,
            _ => ErrorCode::LockError,
        };
        let message = if e.message.to_lowercase().contains("lock") && e.message.starts_with(prefix)
        {
            e.message
        } else {
            format!("{prefix}: {}", e.message)
        };
        Error::new(code, message)
    }
}

fn contended(path: &str) -> Error {
    Error::new(
        ErrorCode::LockError,
        format!("the lock at {path} kept changing under contention ({MAX_CAS_ROUNDS} conditional writes lost)"),
    )
}

fn num(v: &Value, key: &str) -> Option<i64> {
    v.get(key)
        .and_then(|n| n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)))
}

impl LockService {
    pub fn new(client: Client, shift: Option<&str>, opts: LockOptions) -> LockService {
        LockService {
            client,
            path: lock_path(shift),
            opts,
            state: Arc::new(ServiceState::default()),
            observer: None,
        }
    }

    /// This service (sharing its state) with `observer` hearing its `LockEvent`s.
    pub fn with_observer(mut self, observer: LockObserver) -> LockService {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn emit(&self, ev: LockEvent) {
        if let Some(o) = &self.observer {
            o(&ev);
        }
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The same service on fresh connections of its own (for releasing at process exit, from
    /// another runtime).
    pub(crate) fn detached(&self) -> Result<LockService> {
        Ok(LockService {
            client: self.client.detached()?,
            ..self.clone()
        })
    }
    pub fn options(&self) -> &LockOptions {
        &self.opts
    }
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn acquire(&self, executor_id: &str) -> Result<bool> {
        match self
            .try_acquire(executor_id)
            .await
            .map_err(wrap("Failed to acquire lock"))?
        {
            AcquireOutcome::Acquired(_) => Ok(true),
            AcquireOutcome::HeldBy(_) | AcquireOutcome::Contended => Ok(false),
        }
    }

    pub async fn verify_ownership(&self, executor_id: &str) -> Result<bool> {
        let epoch = self.owned_epoch(executor_id);
        self.verify(executor_id, epoch)
            .await
            .map_err(wrap("Failed to verify lock ownership"))
    }

    /// Owner-checked release (executor id, and the epoch this service acquired when known).
    /// A release by anyone else, or of a missing lock, is a no-op.
    pub async fn release(&self, executor_id: &str) -> Result<()> {
        let epoch = self.owned_epoch(executor_id);
        self.release_owned(executor_id, epoch)
            .await
            .map(|_| ())
            .map_err(wrap("Failed to release lock"))
    }

    /// `Some` for a held record (`is_locked` false once expired), `None` when unlocked.
    pub async fn status(&self) -> Result<Option<LockStatus>> {
        let cur = self
            .fetch()
            .await
            .map_err(wrap("Failed to get lock status"))?;
        Ok(match LockNode::parse(&cur.value) {
            LockNode::Held(r) => {
                let expired = self.is_expired(&r, &cur.etag);
                Some(r.status(!expired))
            }
            LockNode::Free { .. } => None,
        })
    }

    /// Release whatever lock is there; returns what was released.
    pub async fn force_release(&self) -> Result<Option<LockStatus>> {
        let previous = self
            .tombstone_where(|_, _| true)
            .await
            .map_err(wrap("Failed to force-release lock"))?;
        self.emit(LockEvent::ForceReleased {
            path: self.path.clone(),
            previous: previous.clone(),
        });
        Ok(previous)
    }

    pub async fn check_and_release_expired(&self) -> Result<()> {
        self.tombstone_where(|s, (r, etag)| s.is_expired(r, etag))
            .await
            .map(|_| ())
            .map_err(wrap("Failed to check and release expired lock"))
    }

    /// A read plus a no-op conditional write proving read and write access to the lock path.
    pub async fn init_storage(&self) -> Result<()> {
        let res = async {
            let cur = self.fetch().await?;
            // Either outcome proves access: a 412 only means someone changed the node meanwhile.
            let out = if cur.value.is_null() {
                self.client.delete_if_match(&self.path, NULL_ETAG).await?
            } else {
                self.client
                    .put_if_match(&self.path, &cur.value, &cur.etag)
                    .await?
            };
            match out {
                CasOutcome::Written(v) | CasOutcome::Mismatch(v) => self.remember(&v),
            }
            Ok::<(), Error>(())
        }
        .await;
        res.map_err(|e| {
            let prefix = format!("Failed to initialize lock storage at {}", self.path);
            if e.code == ErrorCode::PermissionDenied {
                Error::new(
                    ErrorCode::PermissionDenied,
                    format!("{prefix}: PERMISSION_DENIED"),
                )
            } else {
                wrap(&prefix)(e)
            }
        })
    }

    /// Whether the lock node can be read (one request, on the lock path only).
    pub async fn ensure_accessible(&self) -> Result<bool> {
        Ok(self.client.get_shallow(&self.path).await.is_ok())
    }

    // ---- internals shared with `ExclusiveGuard` ----

    /// GET the lock node with its ETag, remembering it.
    async fn fetch(&self) -> Result<Versioned> {
        let cur = self.client.get_versioned(&self.path).await?;
        self.remember(&cur);
        Ok(cur)
    }

    fn remember(&self, v: &Versioned) {
        *self.state.last.lock().unwrap() = Some(v.clone());
    }

    /// The lock node as last seen, when `usable` says a compare-and-set may start from it;
    /// otherwise a fresh read.
    async fn start_from(&self, usable: impl Fn(&Versioned) -> bool) -> Result<Versioned> {
        let known = self.state.last.lock().unwrap().clone();
        match known {
            Some(v) if usable(&v) => Ok(v),
            _ => self.fetch().await,
        }
    }

    fn owned_epoch(&self, executor_id: &str) -> Option<u64> {
        self.state.owned.lock().unwrap().get(executor_id).copied()
    }

    /// Whether a held record is this process's: same executor id and, when the epoch is known
    /// (acquired through this service or held by a guard), the same epoch; otherwise written by
    /// this host and process. Two processes configured with the same fixed executor id therefore
    /// never mistake each other's lock for their own.
    pub(crate) fn is_mine(&self, r: &LockRecord, executor_id: &str, epoch: Option<u64>) -> bool {
        r.executor_id == executor_id
            && match epoch {
                Some(e) => r.epoch == e,
                None => r.process_id == Some(std::process::id()) && r.hostname == this_host(),
            }
    }

    /// Expired iff `expiresAt <= server time`; with no server time known, iff the node's ETag
    /// stayed unchanged for the record's lease on the local monotonic clock.
    pub(crate) fn is_expired(&self, r: &LockRecord, etag: &str) -> bool {
        if let Some(now) = self.client.server_clock().now_ms() {
            return r.expires_at <= now;
        }
        let mut seen = self.state.seen.lock().unwrap();
        match &*seen {
            Some((e, since)) if e == etag => {
                let lease = if r.lease_ms() > 0 {
                    r.lease_ms() as u64
                } else {
                    self.opts.timeout_ms
                };
                since.elapsed() >= Duration::from_millis(lease)
            }
            _ => {
                *seen = Some((etag.to_string(), Instant::now()));
                false
            }
        }
    }

    /// Server time estimate and whether it is known.
    fn server_now(&self) -> Option<i64> {
        self.client.server_clock().now_ms()
    }

    /// Conditionally write a held record; on success learn server time from the echo and
    /// compute the local lease deadline.
    async fn write_record(&self, record: &LockRecord, etag: &str, renewal: bool) -> Result<Wrote> {
        let sent = LeaseInstant::now();
        let out = self
            .client
            .put_if_match(&self.path, &record.to_write(renewal), etag)
            .await?;
        match out {
            CasOutcome::Written(v) => {
                let written_at = num(&v.value, if renewal { "renewedAt" } else { "lockedAt" });
                if let Some(ms) = written_at {
                    self.client.server_clock().observe(ms);
                }
                let stored = LockRecord::from_value(&v.value).unwrap_or_else(|| {
                    let mut r = record.clone();
                    if let Some(ms) = written_at {
                        if renewal {
                            r.renewed_at = Some(ms);
                        } else {
                            r.locked_at = ms;
                        }
                    }
                    r
                });
                // The write happened at server time `last_write_at`, no earlier than when the
                // request left; the lease therefore has at least `expiresAt - last_write_at` left
                // from `sent`. Keep a 2% margin for clock-rate drift.
                let remaining = (stored.expires_at - stored.last_write_at()).max(0) as u64;
                let deadline = sent.after(Duration::from_millis(remaining - remaining / 50));
                self.remember(&v);
                Ok(Wrote::Written(Held {
                    record: stored,
                    etag: v.etag,
                    written: sent,
                    deadline,
                }))
            }
            CasOutcome::Mismatch(v) => {
                self.remember(&v);
                Ok(Wrote::Mismatch(v))
            }
        }
    }

    /// One acquisition: conditional PUTs re-evaluated on 412, starting from the node as last
    /// seen (a free or expired lock, or one of ours), or from "absent" (`null_etag`: create only
    /// if absent) when this service has seen nothing yet but knows the server's time. A held lock
    /// last seen live is read again first: "held" is never decided on an old answer. One request
    /// when uncontended.
    pub(crate) async fn try_acquire(&self, executor_id: &str) -> Result<AcquireOutcome> {
        // A guess needs the server's time (to write the expiry); before any answer taught it,
        // read first.
        let from_known = self.state.last.lock().unwrap().is_some() || self.server_now().is_none();
        let mut cur = if from_known {
            self.start_from(|v| match LockNode::parse(&v.value) {
                LockNode::Held(r) => {
                    self.is_mine(&r, executor_id, self.owned_epoch(executor_id))
                        || self.is_expired(&r, &v.etag)
                }
                LockNode::Free { .. } => true,
            })
            .await?
        } else {
            Versioned {
                value: Value::Null,
                etag: NULL_ETAG.to_string(),
            }
        };
        // The epoch of the new record this call last tried to write: if it is found stored (a
        // write whose outcome was unknown, or a provisional expiry written while the server clock
        // was unknown), it is ours and is renewed.
        let mut tried: Option<u64> = None;
        for _ in 0..MAX_CAS_ROUNDS {
            let node = LockNode::parse(&cur.value);
            let timeout = self.opts.timeout_ms as i64;
            let (record, renewal) = match node {
                LockNode::Held(r)
                    if tried == Some(r.epoch) && self.is_mine(&r, executor_id, None)
                        || self
                            .owned_epoch(executor_id)
                            .is_some_and(|e| self.is_mine(&r, executor_id, Some(e)))
                            && !self.is_expired(&r, &cur.etag) =>
                {
                    // Already ours: renew (same epoch).
                    match self.server_now() {
                        Some(now) => (
                            LockRecord {
                                expires_at: now + timeout,
                                ..r
                            },
                            true,
                        ),
                        None => {
                            return Err(Error::new(ErrorCode::LockError, "server time unknown"))
                        }
                    }
                }
                LockNode::Held(r) if !self.is_expired(&r, &cur.etag) => {
                    return Ok(AcquireOutcome::HeldBy(r))
                }
                other => {
                    let epoch = other.epoch() + 1;
                    // Without a server time estimate, write an already-expired record and fix
                    // its expiry right after, once the echoed `lockedAt` told us server time.
                    let expires_at = self.server_now().map(|n| n + timeout).unwrap_or(0);
                    tried = Some(epoch);
                    (LockRecord::new(executor_id, expires_at, epoch), false)
                }
            };
            match self.write_record(&record, &cur.etag, renewal).await {
                Ok(Wrote::Written(held)) => {
                    if !renewal && record.expires_at == 0 {
                        cur = Versioned {
                            value: held.record.to_write_resolved(),
                            etag: held.etag,
                        };
                        continue;
                    }
                    self.state
                        .owned
                        .lock()
                        .unwrap()
                        .insert(executor_id.to_string(), held.record.epoch);
                    return Ok(AcquireOutcome::Acquired(held));
                }
                Ok(Wrote::Mismatch(v)) => {
                    // A 412 proves the new record was not written: what it shows is not ours.
                    if !renewal {
                        tried = None;
                    }
                    cur = v
                }
                // A write whose outcome is unknown: look again (a record of ours is then renewed).
                Err(e) if e.code == ErrorCode::WriteOutcomeUnknown => {
                    cur = self.fetch().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(AcquireOutcome::Contended)
    }

    /// Renew a held lock (same owner and epoch): conditional PUT extending `expiresAt` and
    /// setting `renewedAt`. A 412 showing the same owner and epoch adopts the new ETag and
    /// retries; anything else means the lock is lost.
    pub(crate) async fn renew(&self, held: &Held) -> Result<RenewOutcome> {
        let mut etag = held.etag.clone();
        let mut base = held.record.clone();
        for _ in 0..MAX_CAS_ROUNDS {
            let now = match self.server_now() {
                Some(n) => n,
                None => return Err(Error::new(ErrorCode::LockError, "server time unknown")),
            };
            let record = LockRecord {
                expires_at: now + self.opts.timeout_ms as i64,
                ..base.clone()
            };
            let cur = match self.write_record(&record, &etag, true).await {
                Ok(Wrote::Written(h)) => return Ok(RenewOutcome::Renewed(h)),
                Ok(Wrote::Mismatch(v)) => v,
                Err(e) if e.code == ErrorCode::WriteOutcomeUnknown => self.fetch().await?,
                Err(e) => return Err(e),
            };
            match LockNode::parse(&cur.value) {
                LockNode::Held(r)
                    if r.executor_id == held.record.executor_id && r.epoch == held.record.epoch =>
                {
                    etag = cur.etag;
                    base = r;
                }
                other => return Ok(RenewOutcome::Lost(other)),
            }
        }
        Err(contended(&self.path))
    }

    /// GET: the node holds `executor_id` (and `epoch` when given) and has not expired.
    pub(crate) async fn verify(&self, executor_id: &str, epoch: Option<u64>) -> Result<bool> {
        let cur = self.fetch().await?;
        Ok(match LockNode::parse(&cur.value) {
            LockNode::Held(r) => {
                self.is_mine(&r, executor_id, epoch) && !self.is_expired(&r, &cur.etag)
            }
            LockNode::Free { .. } => false,
        })
    }

    /// The node's current state (for loss reports).
    pub(crate) async fn read_node(&self) -> Result<(LockNode, String)> {
        let cur = self.fetch().await?;
        Ok((LockNode::parse(&cur.value), cur.etag))
    }

    /// Tombstone the lock if it is held by `executor_id` (and `epoch` when given). Returns
    /// whether something was released.
    pub(crate) async fn release_owned(
        &self,
        executor_id: &str,
        epoch: Option<u64>,
    ) -> Result<bool> {
        let released = self
            .tombstone_where(|s, (r, _)| s.is_mine(r, executor_id, epoch))
            .await?;
        if released.is_some() {
            let mut owned = self.state.owned.lock().unwrap();
            if owned.get(executor_id).copied() == released.as_ref().map(|s| s.epoch) {
                owned.remove(executor_id);
            }
        }
        Ok(released.is_some())
    }

    /// Replace a held record for which `pred` holds with a tombstone keeping its epoch
    /// (conditional PUT; re-evaluated on 412). Returns the released record's status.
    async fn tombstone_where<F>(&self, pred: F) -> Result<Option<LockStatus>>
    where
        F: Fn(&LockService, (&LockRecord, &str)) -> bool,
    {
        // From the node as last seen when it shows a record to release (a stale one costs a
        // 412 that hands back the current one); a read otherwise, since "nothing to release"
        // must not be decided on an old answer.
        let mut cur = self
            .start_from(|v| match LockNode::parse(&v.value) {
                LockNode::Held(r) => pred(self, (&r, &v.etag)),
                LockNode::Free { .. } => false,
            })
            .await?;
        for _ in 0..MAX_CAS_ROUNDS {
            let r = match LockNode::parse(&cur.value) {
                LockNode::Held(r) if pred(self, (&r, &cur.etag)) => r,
                _ => return Ok(None),
            };
            match self
                .client
                .put_if_match(&self.path, &tombstone(r.epoch), &cur.etag)
                .await
            {
                Ok(CasOutcome::Written(v)) => {
                    self.remember(&v);
                    if let Some(ms) = num(&v.value, "releasedAt") {
                        self.client.server_clock().observe(ms);
                    }
                    let expired = self.is_expired(&r, &cur.etag);
                    return Ok(Some(r.status(!expired)));
                }
                Ok(CasOutcome::Mismatch(v)) => {
                    self.remember(&v);
                    cur = v;
                }
                Err(e) if e.code == ErrorCode::WriteOutcomeUnknown => {
                    cur = self.fetch().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(contended(&self.path))
    }
}
