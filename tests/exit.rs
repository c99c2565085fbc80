//! L10: exit paths release every lock this process holds (`lock::exit`). A test binary of its own:
//! the list of held locks is process-wide, and releasing it all would disturb other tests.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{emulator, emulator_client, lock_service_on};
use msr_firebase::emulator::Emulator;
use msr_firebase::lock::{ExclusiveGuard, LockService, WaitPolicy};
use msr_firebase::rtdb::{RetryPolicy, SystemClock};
use msr_firebase::ErrorCode;
use serde_json::Value;

fn service(emu: &Emulator, timeout_ms: u64) -> LockService {
    let c = emulator_client(
        emu,
        Arc::new(SystemClock),
        RetryPolicy::default(),
        Duration::from_secs(10),
    );
    lock_service_on(c, timeout_ms)
}

async fn node(svc: &LockService) -> Value {
    let s = svc.status().await.unwrap();
    serde_json::json!({ "executorId": s.map(|s| s.locked_by) })
}

#[tokio::test]
async fn l10_exit_paths_release_every_held_guard_owner_checked() {
    let emu = emulator().await;
    let svc = service(&emu, 60_000);
    let guard = ExclusiveGuard::acquire(&svc, "exiting", WaitPolicy::FailFast)
        .await
        .unwrap();
    assert_eq!(msr_firebase::lock::exit::held_count(), 1);
    // What a second SIGINT does (the guard itself is still alive).
    let released =
        msr_firebase::lock::exit::release_all(msr_firebase::lock::exit::EXIT_BUDGET).await;
    assert_eq!(released, 1);
    assert!(node(&svc).await["executorId"].is_null());
    assert_eq!(msr_firebase::lock::exit::held_count(), 0);
    // The guard finds out at its next check, and its own release is a no-op.
    assert_eq!(guard.check().await.unwrap_err().code, ErrorCode::LockLost);
    guard.release().await.unwrap();
    // The blocking variant (process exit) uses a runtime and connections of its own.
    let guard = ExclusiveGuard::acquire(&svc, "exiting", WaitPolicy::FailFast)
        .await
        .unwrap();
    let n = tokio::task::spawn_blocking(|| {
        msr_firebase::lock::exit::release_all_blocking(msr_firebase::lock::exit::EXIT_BUDGET)
    })
    .await
    .unwrap();
    assert_eq!(n, 1);
    assert!(node(&svc).await["executorId"].is_null());
    drop(guard);
}
