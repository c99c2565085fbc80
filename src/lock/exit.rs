//! Exit paths (L10). Every lock this process holds through an `ExclusiveGuard` is listed here
//! while it is held, so that whatever ends the process — a second SIGINT/SIGTERM, a
//! `process.exit()` outside a migration script, an uncaught error — releases it first: best
//! effort, owner- and epoch-checked (a lock taken over meanwhile is left alone), bounded by
//! `EXIT_BUDGET`.
//!
//! `release_all` runs on the caller's runtime (a second signal); `release_all_blocking` runs on a
//! thread and runtime of its own with fresh connections, for the moment the process exits (the
//! napi cleanup hook and `process.on('exit')`), when the usual runtime may be busy or gone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::service::LockService;

/// How long an exit path may spend releasing.
pub const EXIT_BUDGET: Duration = Duration::from_secs(2);

struct Entry {
    id: u64,
    service: LockService,
    executor_id: String,
    epoch: u64,
}

static HELD: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn held() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    HELD.lock().unwrap_or_else(|p| p.into_inner())
}

/// List a lock as held; returns its entry id.
pub(crate) fn register(service: &LockService, executor_id: &str, epoch: u64) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    held().push(Entry {
        id,
        service: service.clone(),
        executor_id: executor_id.to_string(),
        epoch,
    });
    id
}

/// The lock of entry `id` was released (or given up) by its guard.
pub(crate) fn unregister(id: u64) {
    held().retain(|e| e.id != id);
}

/// How many locks this process holds through guards.
pub fn held_count() -> usize {
    held().len()
}

async fn release(entries: Vec<Entry>, budget: Duration) -> usize {
    let releases = entries.iter().map(|e| async move {
        matches!(
            e.service.release_owned(&e.executor_id, Some(e.epoch)).await,
            Ok(true)
        )
    });
    tokio::time::timeout(budget, futures_util::future::join_all(releases))
        .await
        .map(|done| done.into_iter().filter(|ok| *ok).count())
        .unwrap_or(0)
}

/// Release every lock still held, within `budget`; returns how many were released.
pub async fn release_all(budget: Duration) -> usize {
    let entries: Vec<Entry> = held().drain(..).collect();
    if entries.is_empty() {
        return 0;
    }
    release(entries, budget).await
}

/// `release_all` on a thread and runtime of its own, with fresh connections; blocks for at most
/// about `budget`.
pub fn release_all_blocking(budget: Duration) -> usize {
    let entries: Vec<Entry> = held()
        .drain(..)
        .filter_map(|e| {
            Some(Entry {
                service: e.service.detached().ok()?,
                ..e
            })
        })
        .collect();
    if entries.is_empty() {
        return 0;
    }
    std::thread::spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(release(entries, budget)),
            Err(_) => 0,
        }
    })
    .join()
    .unwrap_or(0)
}
