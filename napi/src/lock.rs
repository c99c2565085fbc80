//! `lockingService` for JS: the lock operations plus `acquireExclusive` (the guard that
//! `runExclusive` in lib/locking.js drives).

use std::time::Duration;

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use napi_derive::napi;
use serde_json::Value;
use tokio::sync::Mutex;

use super::database::NativeDatabase;
use super::error::IntoNapi;
use msr_firebase::lock::live::{lock_status, LiveCell};
use msr_firebase::lock::{
    ExclusiveGuard, LockService, LockStatus, WaitDefault, WaitPolicy, WaitRequest,
};
use msr_firebase::Error;

#[napi]
pub struct NativeLock {
    pub(crate) svc: LockService,
    /// The lock node's live view (the runner's own, so `runner.status()` shares it).
    pub(crate) live: LiveCell,
}

/// Times are ms since the epoch; lib/locking.js turns them into `Date`s.
#[napi(object)]
pub struct NativeLockStatus {
    pub is_locked: bool,
    pub locked_by: String,
    pub locked_at: f64,
    pub expires_at: f64,
    pub process_id: Option<u32>,
    pub hostname: String,
    pub epoch: f64,
}

impl From<LockStatus> for NativeLockStatus {
    fn from(s: LockStatus) -> Self {
        NativeLockStatus {
            is_locked: s.is_locked,
            locked_by: s.locked_by,
            locked_at: s.locked_at as f64,
            expires_at: s.expires_at as f64,
            process_id: s.process_id,
            hostname: s.hostname,
            epoch: s.epoch as f64,
        }
    }
}

/// How to wait for a held lock (`lock::policy::WaitPolicy::resolve`): `{ wait: false }` fails
/// fast; `{ retryAttempts, retryDelay }` retries like the predecessor; `{ wait: true, waitTimeout }`
/// waits with backoff; unset: the config's retries or `waitTimeout`, else fail fast.
#[napi(object)]
pub struct AcquireOptions {
    pub wait: Option<bool>,
    /// ms; default: `locking.waitTimeout`, else the lock timeout × 2.
    pub wait_timeout: Option<f64>,
    pub retry_attempts: Option<u32>,
    pub retry_delay: Option<f64>,
}

/// The wait options JS passes (`runExclusive`, `migrate()`, `down()`), times in ms.
pub(crate) fn wait_request(
    wait: Option<bool>,
    wait_timeout: Option<f64>,
    retry_attempts: Option<u32>,
    retry_delay: Option<f64>,
) -> WaitRequest {
    WaitRequest {
        wait,
        wait_timeout: wait_timeout.map(ms),
        retry_attempts,
        retry_delay: retry_delay.map(ms),
    }
}

#[napi]
impl NativeLock {
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.svc.path().to_string()
    }
    #[napi(ts_args_type = "executorId: string")]
    pub async fn acquire_lock(&self, executor_id: Value) -> napi::Result<bool> {
        let id = executor_id_arg("acquireLock()", &executor_id)?;
        self.svc.acquire(&id).await.napi()
    }
    #[napi(ts_args_type = "executorId: string")]
    pub async fn verify_lock_ownership(&self, executor_id: Value) -> napi::Result<bool> {
        let id = executor_id_arg("verifyLockOwnership()", &executor_id)?;
        self.svc.verify_ownership(&id).await.napi()
    }
    #[napi(ts_args_type = "executorId: string")]
    pub async fn release_lock(&self, executor_id: Value) -> napi::Result<()> {
        let id = executor_id_arg("releaseLock()", &executor_id)?;
        self.svc.release(&id).await.napi()
    }
    #[napi]
    pub async fn get_lock_status(&self) -> napi::Result<Option<NativeLockStatus>> {
        Ok(self.svc.status().await.napi()?.map(Into::into))
    }
    /// The status from the lock node's live view (no request once it answered); when the view
    /// is not current within `within` ms, one read instead.
    #[napi]
    pub async fn get_cached_lock_status(
        &self,
        within: f64,
    ) -> napi::Result<Option<NativeLockStatus>> {
        let node = self.live.get(self.svc.client(), self.svc.path());
        match node.current(ms(within)).await {
            Ok(view) => Ok(lock_status(self.svc.client(), &view).map(Into::into)),
            Err(_) => self.get_lock_status().await,
        }
    }
    /// Calls `listener(update)` with the status once the live view has it, then on every
    /// change (a new holder, a renewal, a release, a lease running out) and when the view stops
    /// or starts being current. `close()` on the result stops it.
    #[napi(ts_args_type = "listener: (update: NativeLockUpdate) => void")]
    pub fn watch_lock_status(&self, listener: LockListener) -> NativeLockWatch {
        let client = self.svc.client().clone();
        let path = self.svc.path().to_string();
        let live = self.live.clone();
        let task = napi::bindgen_prelude::spawn(async move {
            let mut rx = live.get(&client, &path).subscribe();
            let mut last: Option<(Option<LockStatus>, bool)> = None;
            loop {
                let view = rx.borrow_and_update().clone();
                if view.value.is_some() {
                    let status = lock_status(&client, &view);
                    let now = (status.clone(), view.is_current());
                    if last.as_ref() != Some(&now) {
                        listener.call(
                            NativeLockUpdate {
                                status: status.clone().map(Into::into),
                                current: now.1,
                                reason: view.why_not_current(),
                            },
                            ThreadsafeFunctionCallMode::NonBlocking,
                        );
                        last = Some(now);
                    }
                }
                // Wake for the next change, or when the holder's lease runs out.
                let expiry = last
                    .as_ref()
                    .and_then(|(s, _)| s.as_ref().filter(|s| s.is_locked))
                    .and_then(|s| {
                        let now = client.server_clock().now_ms()?;
                        Some(Duration::from_millis(
                            (s.expires_at - now).max(0) as u64 + 20,
                        ))
                    });
                let changed = rx.changed();
                match expiry {
                    Some(d) => {
                        if let Ok(Err(_)) = tokio::time::timeout(d, changed).await {
                            return;
                        }
                    }
                    None => {
                        if changed.await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        NativeLockWatch { task }
    }
    /// Removes any lock; resolves with what was released (or null).
    #[napi]
    pub async fn force_release_lock(&self) -> napi::Result<Option<NativeLockStatus>> {
        Ok(self.svc.force_release().await.napi()?.map(Into::into))
    }
    #[napi]
    pub async fn check_and_release_expired_lock(&self) -> napi::Result<()> {
        self.svc.check_and_release_expired().await.napi()
    }
    #[napi]
    pub async fn init_lock_storage(&self) -> napi::Result<()> {
        self.svc.init_storage().await.napi()
    }
    #[napi]
    pub async fn ensure_lock_storage_accessible(&self) -> napi::Result<bool> {
        self.svc.ensure_accessible().await.napi()
    }
    /// Acquire (waiting per `options`), renew in the background until released.
    #[napi(ts_args_type = "executorId: string, options?: AcquireOptions | undefined | null")]
    pub async fn acquire_exclusive(
        &self,
        executor_id: Value,
        options: Option<AcquireOptions>,
    ) -> napi::Result<NativeLockGuard> {
        let executor_id = executor_id_arg("runExclusive()", &executor_id)?;
        let req = options
            .map(|o| wait_request(o.wait, o.wait_timeout, o.retry_attempts, o.retry_delay))
            .unwrap_or_default();
        let policy = WaitPolicy::resolve(self.svc.options(), &req, WaitDefault::FailFast);
        let guard = ExclusiveGuard::acquire(&self.svc, &executor_id, policy)
            .await
            .napi()?;
        let fenced = self
            .svc
            .client()
            .gated(std::sync::Arc::new(guard.lease().clone()));
        Ok(NativeLockGuard {
            epoch: guard.epoch() as f64,
            executor_id,
            database: NativeDatabase {
                client: fenced,
                check_path: self.svc.path().to_string(),
            },
            guard: Mutex::new(Some(guard)),
        })
    }
}

/// `(update) => void`, fire-and-forget; weak, so a watch never keeps Node alive on its own.
pub type LockListener =
    ThreadsafeFunction<NativeLockUpdate, (), NativeLockUpdate, Status, false, true>;

/// What `watchLockStatus()` listeners hear.
#[napi(object, use_nullable = true)]
pub struct NativeLockUpdate {
    /// As `getLockStatus()` answers (null: free).
    pub status: Option<NativeLockStatus>,
    /// The view is current (its event stream open, or its last read answered).
    pub current: bool,
    /// Why it is not current.
    pub reason: Option<String>,
}

/// A running `watchLockStatus()`.
#[napi]
pub struct NativeLockWatch {
    task: tokio::task::JoinHandle<()>,
}

#[napi]
impl NativeLockWatch {
    /// Stop listening (the live view itself stays for other readers). Idempotent.
    #[napi]
    pub fn close(&self) {
        self.task.abort();
    }
}

impl Drop for NativeLockWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_millis(v.max(0.0) as u64)
}

#[napi]
pub struct NativeLockGuard {
    guard: Mutex<Option<ExclusiveGuard>>,
    epoch: f64,
    executor_id: String,
    /// The lock's connection with this lease as the gate of every write.
    database: NativeDatabase,
}

#[napi]
impl NativeLockGuard {
    #[napi(getter)]
    pub fn epoch(&self) -> f64 {
        self.epoch
    }
    #[napi(getter)]
    pub fn executor_id(&self) -> String {
        self.executor_id.clone()
    }
    /// A database whose writes are fenced by this lease (`lock.database` in `runExclusive`):
    /// every attempt of every write is refused with LOCK_LOST from the lease deadline on, or
    /// once the lock is known lost.
    #[napi]
    pub fn database(&self) -> NativeDatabase {
        NativeDatabase {
            client: self.database.client.clone(),
            check_path: self.database.check_path.clone(),
        }
    }
    /// Rejects with LOCK_LOST when the lock is no longer ours.
    #[napi]
    pub async fn check(&self) -> napi::Result<()> {
        match self.guard.lock().await.as_ref() {
            Some(g) => g.check().await.napi(),
            None => Err(Error::new(
                msr_firebase::ErrorCode::LockLost,
                "The migration lock was already released by this process",
            ))
            .napi(),
        }
    }
    /// Stop renewing and release (idempotent).
    #[napi]
    pub async fn release(&self) -> napi::Result<()> {
        if let Some(g) = self.guard.lock().await.take() {
            g.release().await.napi()?;
        }
        Ok(())
    }
}

/// An executor id argument, checked in the core (a non-empty string).
fn executor_id_arg(call: &str, id: &Value) -> napi::Result<String> {
    msr_firebase::config::arguments::executor_id(call, id).napi()
}

/// Release every migration lock this process holds through a guard (a run or `runExclusive`),
/// bounded to 2 s; resolves with how many were released. For a second SIGINT/SIGTERM.
#[napi]
pub async fn release_held_locks() -> u32 {
    msr_firebase::lock::exit::release_all(msr_firebase::lock::exit::EXIT_BUDGET).await as u32
}

/// `releaseHeldLocks`, blocking (at most about 2 s): for `process.on('exit')`.
#[napi]
pub fn release_held_locks_sync() -> u32 {
    msr_firebase::lock::exit::release_all_blocking(msr_firebase::lock::exit::EXIT_BUDGET) as u32
}

static EXIT_HOOK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The process is exiting (`exit()`, which `process.exit()` ends in, whatever ran before).
#[cfg(any(target_os = "linux", target_os = "macos"))]
extern "C" fn release_at_exit() {
    msr_firebase::lock::exit::release_all_blocking(msr_firebase::lock::exit::EXIT_BUDGET);
}

/// The last resort (L10): release what is still held when the Node environment shuts down
/// (a cleanup hook) and when the process exits (`atexit`, which `process.exit()` reaches even
/// when no JS 'exit' listener runs). Installed once, by lib/native.js.
#[napi]
pub fn install_exit_hook(env: napi::Env) -> napi::Result<()> {
    if EXIT_HOOK.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    env.add_env_cleanup_hook((), |_| {
        msr_firebase::lock::exit::release_all_blocking(msr_firebase::lock::exit::EXIT_BUDGET);
    })?;
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    // SAFETY: registers a plain `extern "C" fn()` with the C runtime; it only touches this
    // crate's own statics and spawns a thread of its own.
    unsafe {
        libc::atexit(release_at_exit);
    }
    Ok(())
}
