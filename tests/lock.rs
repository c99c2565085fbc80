//! The distributed migration lock against the embedded emulator: properties L1–L7 and L9 of
//! docs/lock-properties.md, and the number of requests each operation costs. Every test starts
//! its own emulator, so the tests are independent of each other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{emulator, emulator_client, lever, lock_service_on, reset_counts};
use msr_firebase::emulator::Emulator;
use msr_firebase::lock::{
    ExclusiveGuard, LockOptions, LockService, WaitEvent, WaitHooks, WaitPolicy,
};
use msr_firebase::rtdb::clock::SkewedClock;
use msr_firebase::rtdb::{Client, RetryPolicy};
use msr_firebase::time::iso_millis as iso_ms;
use msr_firebase::ErrorCode;
use serde_json::{json, Value};

const LOCK: &str = "migrations/_lock";
const HOUR: i64 = 3_600_000;

// ---------------------------------------------------------------------------------------------
// helpers

/// A separate client (own connection pool and server-clock estimate) whose local clock is off by
/// `skew_ms`.
fn client(emu: &Emulator, skew_ms: i64) -> Client {
    emulator_client(
        emu,
        Arc::new(SkewedClock(skew_ms)),
        RetryPolicy::default(),
        Duration::from_secs(10),
    )
}

fn service_with(emu: &Emulator, skew_ms: i64, timeout_ms: u64) -> LockService {
    lock_service_on(client(emu, skew_ms), timeout_ms)
}

fn service(emu: &Emulator, timeout_ms: u64) -> LockService {
    service_with(emu, 0, timeout_ms)
}

/// (total, GETs of the lock node, PUTs of the lock node) since the last reset.
async fn counts(emu: &Emulator) -> (u64, u64, u64) {
    let v = lever(emu, reqwest::Method::GET, "requests", None).await;
    let by = |k: &str| v["byPath"][k].as_u64().unwrap_or(0);
    (
        v["total"].as_u64().expect("total"),
        by(&format!("GET /{LOCK}")),
        by(&format!("PUT /{LOCK}")),
    )
}

/// The server's clock (ms) as the emulator reports it.
async fn server_now(emu: &Emulator) -> i64 {
    lever(emu, reqwest::Method::GET, "clock", None).await["now"]
        .as_i64()
        .expect("now")
}

/// The raw lock node.
async fn node(emu: &Emulator) -> Value {
    client(emu, 0).get(LOCK).await.expect("read lock node")
}

fn epoch_of(v: &Value) -> u64 {
    v["epoch"].as_u64().unwrap_or(0)
}

/// Poll `acquire` every 100 ms until it succeeds or `limit` passes; the time it took.
async fn acquire_within(svc: &LockService, id: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if svc.acquire(id).await.expect("acquire") {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn guide_message_regex() -> regex::Regex {
    regex::Regex::new(
        r"^Migration lock is currently held by another process\.\nExecutor: (.+)\nLocked since: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\nExpires at: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\n\nIf you believe this is a stale lock, use: msr-firebase lock:release --force$",
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// L1 mutual exclusion

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn l1_twenty_racers_exactly_one_winner_per_round() {
    const RACERS: usize = 20;
    const ROUNDS: usize = 30;
    let emu = emulator().await;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let holding = Arc::new(AtomicUsize::new(0));
    let max_holding = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let svc = service(&emu, 60_000);
        let (barrier, holding, max_holding) =
            (barrier.clone(), holding.clone(), max_holding.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("racer-{i}");
            let mut won = Vec::new();
            for _ in 0..ROUNDS {
                barrier.wait().await;
                let ok = svc.acquire(&id).await.expect("acquire");
                if ok {
                    let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                    max_holding.fetch_max(now, Ordering::SeqCst);
                    assert!(
                        svc.verify_ownership(&id).await.unwrap(),
                        "winner does not own the lock"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    holding.fetch_sub(1, Ordering::SeqCst);
                }
                won.push(ok);
                // Everyone has tried before the winner releases.
                barrier.wait().await;
                if ok {
                    svc.release(&id).await.expect("release");
                }
                barrier.wait().await;
            }
            won
        }));
    }
    let mut winners = vec![0usize; ROUNDS];
    for t in tasks {
        for (round, ok) in t.await.unwrap().into_iter().enumerate() {
            winners[round] += ok as usize;
        }
    }
    assert!(
        winners.iter().all(|&w| w == 1),
        "winners per round: {winners:?}"
    );
    assert_eq!(max_holding.load(Ordering::SeqCst), 1, "two holders at once");
    // One new owner per round: the fencing epoch counted every one of them.
    let n = node(&emu).await;
    assert_eq!(epoch_of(&n), ROUNDS as u64, "{n}");
    assert!(
        n.get("executorId").is_none(),
        "released lock still held: {n}"
    );
}

// ---------------------------------------------------------------------------------------------
// L2 expiry

#[tokio::test]
async fn l2_expired_lock_of_vanished_holder_is_taken_over() {
    let emu = emulator().await;
    // The holder takes the lock and vanishes (no renewal, no release).
    let holder = service(&emu, 1500);
    assert!(holder.acquire("vanished").await.unwrap());
    let taker = service(&emu, 1500);
    assert!(!taker.acquire("taker").await.unwrap(), "live lock taken");
    let took = acquire_within(&taker, "taker", Duration::from_secs(6))
        .await
        .expect("expired lock never taken over");
    assert!(
        // The first lease of a fresh client can be up to 1 s short (its server-time estimate
        // comes from a Date header, truncated to the second), never longer.
        took >= Duration::from_millis(400),
        "taken over before expiry: {took:?}"
    );
    let st = taker.status().await.unwrap().unwrap();
    assert_eq!(
        (st.locked_by.as_str(), st.epoch, st.is_locked),
        ("taker", 2, true)
    );
    // The vanished holder is no longer the owner, and its release changes nothing.
    assert!(!holder.verify_ownership("vanished").await.unwrap());
    holder.release("vanished").await.unwrap();
    assert_eq!(taker.status().await.unwrap().unwrap().locked_by, "taker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l2_two_simultaneous_takers_of_an_expired_lock_one_wins() {
    let emu = emulator().await;
    let raw = client(&emu, 0);
    for round in 0..15u64 {
        let expired = json!({
            "executorId": "dead", "lockedAt": server_now(&emu).await - 5000,
            "expiresAt": server_now(&emu).await - 1000, "hostname": "gone", "processId": 1, "epoch": 10 * round,
        });
        raw.set(LOCK, &expired).await.unwrap();
        let (a, b) = (service(&emu, 60_000), service(&emu, 60_000));
        let (ra, rb) = tokio::join!(a.acquire("a"), b.acquire("b"));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(ra ^ rb, "round {round}: a={ra} b={rb}");
        let n = node(&emu).await;
        assert_eq!(n["executorId"], json!(if ra { "a" } else { "b" }));
        assert_eq!(epoch_of(&n), 10 * round + 1);
    }
}

// ---------------------------------------------------------------------------------------------
// L3 renewal

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_renewal_keeps_the_lock_beyond_the_timeout() {
    let emu = emulator().await;
    let holder = service(&emu, 1500);
    let guard = ExclusiveGuard::acquire(&holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    let first_expiry = node(&emu).await["expiresAt"].as_i64().unwrap();
    let stop = Instant::now() + Duration::from_millis(4500);
    let mut others = Vec::new();
    for i in 0..3 {
        let svc = service(&emu, 1500);
        others.push(tokio::spawn(async move {
            let mut tries = 0;
            while Instant::now() < stop {
                assert!(
                    !svc.acquire(&format!("other-{i}")).await.unwrap(),
                    "lock stolen from a renewing holder"
                );
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tries
        }));
    }
    for o in others {
        assert!(o.await.unwrap() > 10);
    }
    guard.check().await.expect("holder lost its renewed lock");
    let n = node(&emu).await;
    assert!(
        n["expiresAt"].as_i64().unwrap() > first_expiry + 2000,
        "not renewed: {n}"
    );
    assert!(n["renewedAt"].as_i64().is_some(), "{n}");
    assert_eq!(epoch_of(&n), 1, "renewal must keep the epoch");
    guard.release().await.unwrap();
    let next = service(&emu, 1500);
    assert!(
        next.acquire("next").await.unwrap(),
        "release did not let the next one in"
    );
    assert_eq!(next.status().await.unwrap().unwrap().epoch, 2);
}

// ---------------------------------------------------------------------------------------------
// L4 loss detection

#[tokio::test]
async fn l4_force_release_during_the_hold_is_detected() {
    let emu = emulator().await;
    let holder = service(&emu, 3000);
    let guard = ExclusiveGuard::acquire(&holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    guard.check().await.unwrap();
    let admin = service(&emu, 3000);
    let released = admin
        .force_release()
        .await
        .unwrap()
        .expect("something released");
    assert_eq!((released.locked_by.as_str(), released.epoch), ("holder", 1));
    let e = guard.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost);
    assert!(
        e.message.contains("lock") && e.message.contains("force-released"),
        "{}",
        e.message
    );
    // The renewal task notices too and stops; the lock is not resurrected by it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(guard.is_lost());
    assert!(node(&emu).await.get("executorId").is_none());
    // Later checks keep failing even if someone else takes the lock meanwhile.
    assert!(admin.acquire("admin").await.unwrap());
    assert_eq!(guard.check().await.unwrap_err().code, ErrorCode::LockLost);
    // Releasing the lost guard must not release the new owner's lock.
    guard.release().await.unwrap();
    assert_eq!(admin.status().await.unwrap().unwrap().locked_by, "admin");
}

#[tokio::test]
async fn l4_takeover_after_a_pause_is_detected() {
    let emu = emulator().await;
    let holder = service(&emu, 1500);
    let guard = ExclusiveGuard::acquire(&holder, "paused", WaitPolicy::FailFast)
        .await
        .unwrap();
    // A long pause: no heartbeats.
    guard.stop_renewal();
    let other = service(&emu, 60_000);
    acquire_within(&other, "other", Duration::from_secs(6))
        .await
        .expect("expired lock not taken over");
    let e = guard.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost);
    assert!(
        e.message.contains("lock") && e.message.contains("other"),
        "{}",
        e.message
    );
    guard.release().await.unwrap();
    let st = other.status().await.unwrap().unwrap();
    assert_eq!((st.locked_by.as_str(), st.epoch), ("other", 2));
}

#[tokio::test]
async fn l4_local_lease_expiry_is_loss_even_before_anyone_takes_over() {
    let emu = emulator().await;
    let holder = service(&emu, 1200);
    let guard = ExclusiveGuard::acquire(&holder, "paused", WaitPolicy::FailFast)
        .await
        .unwrap();
    guard.stop_renewal();
    assert!(guard.lease_remaining() <= Duration::from_millis(1200));
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // Nobody took the lock, but the lease this process can vouch for has run out.
    let e = guard.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
    assert!(e.message.contains("lock"), "{}", e.message);
}

// ---------------------------------------------------------------------------------------------
// L5 clock skew

#[tokio::test]
async fn l5_contender_an_hour_ahead_does_not_steal_a_live_lock() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    let ahead = service_with(&emu, HOUR, 60_000);
    assert!(
        !ahead.acquire("ahead").await.unwrap(),
        "a contender whose clock is +1h stole a live lock"
    );
    let st = ahead.status().await.unwrap().unwrap();
    assert!(st.is_locked && st.locked_by == "holder");
    ahead.check_and_release_expired().await.unwrap();
    assert!(holder.verify_ownership("holder").await.unwrap());
    let e = ExclusiveGuard::acquire(&ahead, "ahead", WaitPolicy::FailFast)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::LockHeld);
}

#[tokio::test]
async fn l5_dead_lock_written_by_a_holder_an_hour_ahead_expires_after_its_timeout() {
    let emu = emulator().await;
    let ahead = service_with(&emu, HOUR, 1500);
    let before = server_now(&emu).await;
    assert!(ahead.acquire("ahead").await.unwrap());
    let n = node(&emu).await;
    let exp = n["expiresAt"].as_i64().unwrap();
    assert!(
        exp <= server_now(&emu).await + 1500 && exp >= before - 1000,
        "expiresAt not in server time: {n}"
    );
    // The holder dies; a contender with a correct clock takes over soon after the timeout.
    let normal = service(&emu, 1500);
    let took = acquire_within(&normal, "normal", Duration::from_secs(6)).await;
    assert!(
        took.is_some(),
        "dead lock of a +1h holder not taken over after its timeout"
    );
}

#[tokio::test]
async fn l5_contender_an_hour_behind_takes_over_an_expired_lock() {
    let emu = emulator().await;
    let holder = service(&emu, 1000);
    assert!(holder.acquire("holder").await.unwrap());
    let behind = service_with(&emu, -HOUR, 60_000);
    assert!(!behind.acquire("behind").await.unwrap(), "live lock taken");
    let took = acquire_within(&behind, "behind", Duration::from_secs(6)).await;
    assert!(
        took.is_some(),
        "a contender whose clock is -1h never took over an expired lock"
    );
    assert_eq!(behind.status().await.unwrap().unwrap().epoch, 2);
}

#[tokio::test]
async fn l5_renewing_holder_an_hour_behind_keeps_its_lock_against_one_an_hour_ahead() {
    let emu = emulator().await;
    let behind = service_with(&emu, -HOUR, 1500);
    let guard = ExclusiveGuard::acquire(&behind, "behind", WaitPolicy::FailFast)
        .await
        .unwrap();
    let ahead = service_with(&emu, HOUR, 1500);
    for _ in 0..20 {
        assert!(
            !ahead.acquire("ahead").await.unwrap(),
            "lock stolen across skewed clocks"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    guard.check().await.unwrap();
    guard.release().await.unwrap();
    assert!(ahead.acquire("ahead").await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// L6 owner-checked release, force release, fencing epoch

#[tokio::test]
async fn l6_release_by_a_non_owner_is_a_no_op() {
    let emu = emulator().await;
    let a = service(&emu, 60_000);
    let b = service(&emu, 60_000);
    b.release("b")
        .await
        .expect("releasing a missing lock is fine");
    assert!(a.acquire("a").await.unwrap());
    b.release("b").await.unwrap();
    b.release("someone-else").await.unwrap();
    let st = a
        .status()
        .await
        .unwrap()
        .expect("lock gone after a non-owner's release");
    assert_eq!(st.locked_by, "a");
    assert!(a.verify_ownership("a").await.unwrap());
    assert!(!b.verify_ownership("b").await.unwrap());
    a.release("a").await.unwrap();
    assert_eq!(a.status().await.unwrap(), None);
}

#[tokio::test]
async fn l6_same_fixed_executor_id_in_another_process_is_not_the_owner() {
    // `locking.executorId` can be fixed in config, so two pods may share one id: a lock written
    // by another host/process (or an older epoch) under the same id is not ours.
    let emu = emulator().await;
    let now = server_now(&emu).await;
    let theirs = json!({"executorId": "fixed", "lockedAt": now, "expiresAt": now + 600_000,
        "hostname": "other-pod", "processId": 1, "epoch": 3});
    client(&emu, 0).set(LOCK, &theirs).await.unwrap();
    let s = service(&emu, 60_000);
    assert!(
        !s.acquire("fixed").await.unwrap(),
        "took over another process's live lock"
    );
    assert!(!s.verify_ownership("fixed").await.unwrap());
    s.release("fixed").await.unwrap();
    assert_eq!(node(&emu).await, theirs, "released another process's lock");
}

#[tokio::test]
async fn l6_stale_guard_does_not_release_a_newer_epoch_under_the_same_id() {
    let emu = emulator().await;
    let a = service(&emu, 1200);
    let stale = ExclusiveGuard::acquire(&a, "fixed", WaitPolicy::FailFast)
        .await
        .unwrap();
    stale.stop_renewal();
    let b = service(&emu, 60_000);
    acquire_within(&b, "fixed", Duration::from_secs(6))
        .await
        .expect("expired lock not taken over");
    assert_eq!(b.status().await.unwrap().unwrap().epoch, 2);
    let e = stale.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
    stale.release().await.unwrap();
    let st = b
        .status()
        .await
        .unwrap()
        .expect("stale guard released the newer lock");
    assert_eq!((st.locked_by.as_str(), st.epoch), ("fixed", 2));
}

#[tokio::test]
async fn l6_force_release_removes_any_lock_and_epoch_grows_per_owner() {
    let emu = emulator().await;
    let s = service(&emu, 60_000);
    assert_eq!(s.force_release().await.unwrap(), None, "nothing to release");
    let mut epochs = Vec::new();
    for (i, id) in ["x", "y", "z", "w"].iter().enumerate() {
        assert!(s.acquire(id).await.unwrap());
        // Re-acquiring while holding is a renewal: same epoch.
        assert!(s.acquire(id).await.unwrap());
        epochs.push(s.status().await.unwrap().unwrap().epoch);
        if i % 2 == 0 {
            s.release(id).await.unwrap();
        } else {
            let other = service(&emu, 60_000);
            let r = other.force_release().await.unwrap().expect("released");
            assert_eq!(&r.locked_by, id);
        }
        assert_eq!(s.status().await.unwrap(), None);
    }
    assert_eq!(epochs, vec![1, 2, 3, 4]);
    // A predecessor-style record (no epoch) is force-released too.
    let raw = client(&emu, 0);
    let now = server_now(&emu).await;
    raw.set(LOCK, &json!({"executorId": "ts-1-u", "lockedAt": now, "expiresAt": now + 600_000, "hostname": "h", "processId": 7}))
        .await
        .unwrap();
    let st = s.status().await.unwrap().unwrap();
    assert_eq!(
        (st.locked_by.as_str(), st.process_id, st.is_locked),
        ("ts-1-u", Some(7), true)
    );
    assert!(s.force_release().await.unwrap().is_some());
    assert_eq!(s.status().await.unwrap(), None);
}

#[tokio::test]
async fn l6_record_has_real_hostname_pid_and_server_times() {
    let emu = emulator().await;
    let s = service_with(&emu, HOUR, 600_000);
    let before = server_now(&emu).await;
    assert!(s.acquire("not-a-host-9999-x").await.unwrap());
    let after = server_now(&emu).await;
    let n = node(&emu).await;
    let host = hostname::get().unwrap().to_string_lossy().into_owned();
    assert_eq!(n["hostname"], json!(host));
    assert_eq!(n["processId"], json!(std::process::id()));
    let locked_at = n["lockedAt"].as_i64().unwrap();
    assert!(
        locked_at >= before && locked_at <= after,
        "lockedAt is not server time: {n}"
    );
    let exp = n["expiresAt"].as_i64().unwrap();
    assert!(
        exp > locked_at + 590_000 && exp <= locked_at + 600_000,
        "{n}"
    );
    let st = s.status().await.unwrap().unwrap();
    assert_eq!(
        (st.locked_at, st.expires_at, st.hostname.as_str()),
        (locked_at, exp, host.as_str())
    );
}

#[tokio::test]
async fn status_reports_an_expired_record_as_not_locked() {
    let emu = emulator().await;
    // A first lease can be up to a second short (its expiry comes from a `Date` header, which is
    // truncated to the second), so the lease is long enough to be seen held on a loaded machine.
    let s = service(&emu, 2500);
    assert!(s.acquire("short").await.unwrap());
    assert!(s.status().await.unwrap().unwrap().is_locked);
    tokio::time::sleep(Duration::from_millis(3700)).await;
    let st = s.status().await.unwrap().unwrap();
    assert!(!st.is_locked && st.locked_by == "short");
    assert!(!s.verify_ownership("short").await.unwrap());
    s.check_and_release_expired().await.unwrap();
    assert_eq!(s.status().await.unwrap(), None);
    assert_eq!(epoch_of(&node(&emu).await), 1);
}

// ---------------------------------------------------------------------------------------------
// L7 waiting

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l7_wait_acquires_after_the_holder_releases() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    let g = ExclusiveGuard::acquire(&holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    let waiter = service(&emu, 60_000);
    let w = tokio::spawn(async move {
        let g = ExclusiveGuard::acquire(
            &waiter,
            "waiter",
            WaitPolicy::wait_up_to(Duration::from_secs(20), "test"),
        )
        .await;
        (g, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!w.is_finished(), "waiter got the lock while it was held");
    let released = Instant::now();
    g.release().await.unwrap();
    let (wg, at) = w.await.unwrap();
    let wg = wg.expect("waiter never acquired");
    assert_eq!((wg.executor_id(), wg.epoch()), ("waiter", 2));
    // Woken by the event stream, not by the next backoff step (which is up to 5 s here).
    assert!(
        at.duration_since(released) < Duration::from_millis(400),
        "{:?}",
        at.duration_since(released)
    );
    wg.release().await.unwrap();
}

#[tokio::test]
async fn l7_wait_acquires_after_the_holder_expires() {
    let emu = emulator().await;
    let holder = service(&emu, 1500);
    assert!(holder.acquire("vanished").await.unwrap());
    let waiter = service(&emu, 1500);
    let start = Instant::now();
    let g = ExclusiveGuard::acquire(
        &waiter,
        "waiter",
        WaitPolicy::wait_up_to(Duration::from_secs(10), "test"),
    )
    .await
    .expect("waiter never took over the expired lock");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(g.epoch(), 2);
    g.release().await.unwrap();
}

#[tokio::test]
async fn l7_wait_gives_up_after_max_wait_with_the_guide_message() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("web-server-2-67890-e5f6g7h8").await.unwrap());
    let st = holder.status().await.unwrap().unwrap();
    let waiter = service(&emu, 60_000);
    let start = Instant::now();
    let e = ExclusiveGuard::acquire(
        &waiter,
        "waiter",
        WaitPolicy::wait_up_to(Duration::from_millis(1200), "test"),
    )
    .await
    .err()
    .expect("acquired a held lock");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(e.code, ErrorCode::LockHeld);
    // First the line that says the wait gave up and which setting limits it, then the guide's text.
    let (gave_up, held) = e.message.split_once('\n').unwrap();
    assert!(
        gave_up.starts_with("Gave up waiting for the migration lock at migrations/_lock after 1.")
            && gave_up.ends_with("the wait limit is 1.2 s, set by test; raise it to wait longer."),
        "{}",
        e.message
    );
    let caps = guide_message_regex()
        .captures(held)
        .unwrap_or_else(|| panic!("not the guide's text:\n{}", e.message));
    assert_eq!(&caps[1], "web-server-2-67890-e5f6g7h8");
    assert_eq!(&caps[2], iso_ms(st.locked_at));
    assert_eq!(&caps[3], iso_ms(st.expires_at));
    assert_eq!(held, st.held_message());
}

#[tokio::test]
async fn l7_fail_fast_and_retry_policies() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    let c = service(&emu, 60_000);

    let start = Instant::now();
    let e = ExclusiveGuard::acquire(&c, "c", WaitPolicy::FailFast)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, ErrorCode::LockHeld);
    assert!(guide_message_regex().is_match(&e.message), "{}", e.message);
    assert!(e.message.to_lowercase().contains("lock"));
    assert!(start.elapsed() < Duration::from_millis(500));

    // retryAttempts = 3, retryDelay = 300 ms: 4 tries, 3 pauses.
    reset_counts(&emu).await;
    let start = Instant::now();
    let e = ExclusiveGuard::acquire(
        &c,
        "c",
        WaitPolicy::Retry {
            attempts: 3,
            delay: Duration::from_millis(300),
        },
    )
    .await
    .err()
    .unwrap();
    let took = start.elapsed();
    assert_eq!(e.code, ErrorCode::LockHeld);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    // 4 tries (one GET each; the lock is live so nothing is written); the message names the
    // holder the last one saw.
    let (_, gets, puts) = counts(&emu).await;
    assert_eq!((gets, puts), (4, 0));

    // Released during the retries: acquired.
    let h = holder.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        h.release("holder").await.unwrap();
    });
    let g = ExclusiveGuard::acquire(
        &c,
        "c",
        WaitPolicy::Retry {
            attempts: 5,
            delay: Duration::from_millis(300),
        },
    )
    .await
    .expect("retry did not pick up the released lock");
    assert_eq!(g.epoch(), 2);
    g.release().await.unwrap();
}

/// The wait loop's seams: an observer hears each held attempt (with the holder) and the
/// acquisition; cancelling ends the wait with INTERRUPTED and leaves the holder's lock alone.
#[tokio::test]
async fn l7_wait_can_be_observed_and_cancelled() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    let before = node(&emu).await;
    let waiter = service(&emu, 60_000);

    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let hooks = WaitHooks {
        observer: Some(Arc::new(move |e: &WaitEvent| {
            seen.lock().unwrap().push(e.clone())
        })),
        cancel: Some(tokio_util::sync::CancellationToken::new()),
        ..WaitHooks::default()
    };
    let cancel = hooks.cancel.clone().unwrap();
    let waiting = {
        let (waiter, hooks) = (waiter.clone(), hooks.clone());
        tokio::spawn(async move {
            let policy = WaitPolicy::wait_up_to(Duration::from_secs(600), "test");
            ExclusiveGuard::acquire_with(&waiter, "waiter", &policy, &hooks).await
        })
    };
    // Cancel once the waiter has found the lock held (it then watches the node's event stream).
    for _ in 0..500 {
        if !events.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
    let e = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("cancel did not end the wait")
        .unwrap()
        .err()
        .expect("acquired a held lock");
    assert_eq!(e.code, ErrorCode::Interrupted, "{}", e.message);
    assert_eq!(node(&emu).await, before, "the holder's lock was touched");
    let evs = events.lock().unwrap().clone();
    match &evs[0] {
        WaitEvent::Held {
            attempt: 1, holder, ..
        } => assert_eq!(holder.as_ref().unwrap().executor_id, "holder"),
        other => panic!("first event {other:?}"),
    }
    assert!(
        matches!(evs.last(), Some(WaitEvent::Cancelled { .. })),
        "{evs:?}"
    );

    // After a release the same observer hears the acquisition.
    events.lock().unwrap().clear();
    holder.release("holder").await.unwrap();
    let hooks = WaitHooks {
        cancel: None,
        ..hooks
    };
    let g = ExclusiveGuard::acquire_with(&waiter, "waiter", &WaitPolicy::FailFast, &hooks)
        .await
        .unwrap();
    let evs = events.lock().unwrap().clone();
    assert!(
        matches!(evs[..], [WaitEvent::Acquired { attempt: 1, .. }]),
        "{evs:?}"
    );
    g.release().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// L9 errors

#[tokio::test]
async fn l9_permission_denied_message_is_exact() {
    let emu = emulator().await;
    let s = service(&emu, 60_000);
    s.init_storage().await.expect("init on an absent node");
    assert!(s.ensure_accessible().await.unwrap());
    lever(
        &emu,
        reqwest::Method::PUT,
        "deny",
        Some(json!({"ns": "test", "paths": [LOCK]})),
    )
    .await;
    let e = s.init_storage().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    assert_eq!(
        e.message,
        "Failed to initialize lock storage at migrations/_lock: PERMISSION_DENIED"
    );
    assert!(!s.ensure_accessible().await.unwrap());
    let e = s.acquire("x").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::PermissionDenied);
    assert!(
        e.message.starts_with("Failed to acquire lock: "),
        "{}",
        e.message
    );
    for (what, e) in [
        ("verify", s.verify_ownership("x").await.unwrap_err()),
        ("release", s.release("x").await.unwrap_err()),
        ("status", s.status().await.unwrap_err()),
        ("force", s.force_release().await.err().unwrap()),
        ("expired", s.check_and_release_expired().await.unwrap_err()),
    ] {
        assert!(e.message.contains("lock"), "{what}: {}", e.message);
    }

    // With a shift, the path in the message is the shifted one.
    let shifted = LockService::new(client(&emu, 0), Some("prod"), LockOptions::default());
    lever(
        &emu,
        reqwest::Method::PUT,
        "deny",
        Some(json!({"ns": "test", "paths": ["prod/migrations/_lock"]})),
    )
    .await;
    let e = shifted.init_storage().await.unwrap_err();
    assert_eq!(
        e.message,
        "Failed to initialize lock storage at prod/migrations/_lock: PERMISSION_DENIED"
    );
}

#[tokio::test]
async fn init_storage_leaves_a_held_lock_untouched() {
    let emu = emulator().await;
    let s = service(&emu, 60_000);
    assert!(s.acquire("holder").await.unwrap());
    let before = node(&emu).await;
    s.init_storage().await.unwrap();
    assert_eq!(node(&emu).await, before);
    assert!(s.verify_ownership("holder").await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// request counts

/// Each operation at its request floor: every compare-and-set starts from the ETag of the last
/// answer (a response to a conditional request carries it), so taking a free lock, proving
/// ownership (renewing) and releasing are one conditional write each; nothing reads first.
#[tokio::test]
async fn request_counts_per_operation() {
    let emu = emulator().await;
    let s = service(&emu, 600_000);
    let count = |expected: (u64, u64, u64), what: &'static str| {
        let emu = &emu;
        async move {
            assert_eq!(counts(emu).await, expected, "{what}: (total, GET, PUT)");
            reset_counts(emu).await;
        }
    };
    reset_counts(&emu).await;
    s.init_storage().await.unwrap();
    count(
        (2, 1, 0),
        "init_storage on an absent node (GET + DELETE if-match null_etag)",
    )
    .await;
    assert!(s.acquire("me").await.unwrap());
    count((1, 0, 1), "acquire of a free lock (one conditional PUT)").await;
    assert!(s.verify_ownership("me").await.unwrap());
    count((1, 1, 0), "verify").await;
    s.status().await.unwrap();
    count((1, 1, 0), "status").await;
    s.release("me").await.unwrap();
    count((1, 0, 1), "release (one conditional PUT of the tombstone)").await;
    assert!(s.acquire("me").await.unwrap());
    count((1, 0, 1), "acquire of a released lock").await;

    // Another process: before any answer it knows no server time, so it reads first.
    let other = service(&emu, 600_000);
    assert!(!other.acquire("other").await.unwrap());
    count((1, 1, 0), "acquire of a held lock (a cold process)").await;
    assert!(!other.acquire("other").await.unwrap());
    count((1, 1, 0), "acquire of a lock last seen held (read again)").await;
    s.release("me").await.unwrap();
    count((1, 0, 1), "release").await;
    assert!(other.acquire("other").await.unwrap());
    count(
        (2, 1, 1),
        "acquire of a lock last seen held, since released (read, then the write)",
    )
    .await;
    other.force_release().await.unwrap();
    count((1, 0, 1), "force release of a lock last seen held").await;

    // The guard (`runExclusive`): take, prove ownership by renewing, give back.
    let g = ExclusiveGuard::acquire(&s, "me", WaitPolicy::FailFast)
        .await
        .unwrap();
    count(
        (2, 0, 2),
        "guard acquire after another service's release (stale ETag)",
    )
    .await;
    g.check().await.unwrap();
    count((1, 0, 1), "guard check = one conditional renewal").await;
    g.release().await.unwrap();
    count((1, 0, 1), "guard release").await;
    let g = ExclusiveGuard::acquire(&s, "me", WaitPolicy::FailFast)
        .await
        .unwrap();
    g.release().await.unwrap();
    count((2, 0, 2), "runExclusive of no-op work: acquire + release").await;
}

/// The wait report through `LockService::with_observer`: one `Waiting { first }` naming the
/// holder when the wait starts, updates every `wait_log_interval` (the wait loop wakes up for
/// them), and `GaveUp` with the limit and its setting; then, once the lock is free, `Acquired`
/// after a wait, `Renewed` by the heartbeat and `Released` at the end; `ForceReleased` from
/// `force_release`.
#[tokio::test]
async fn the_lock_reports_waits_acquisitions_renewals_and_releases_to_its_observer() {
    use msr_firebase::lock::LockEvent;
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder-pod").await.unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::<LockEvent>::new()));
    let sink = seen.clone();
    let waiter = LockService::new(
        client(&emu, 0),
        None,
        LockOptions {
            timeout_ms: 3_000,
            renew_interval: Some(Duration::from_millis(100)),
            wait_log_interval: Duration::from_millis(150),
            ..Default::default()
        },
    )
    .with_observer(Arc::new(move |e: &LockEvent| {
        sink.lock().unwrap().push(e.clone())
    }));
    let policy = WaitPolicy::wait_up_to(Duration::from_millis(700), "--wait-timeout");
    let e = ExclusiveGuard::acquire(&waiter, "waiter", policy.clone())
        .await
        .err()
        .expect("acquired a held lock");
    assert_eq!(e.code, ErrorCode::LockHeld);
    let evs = seen.lock().unwrap().clone();
    let LockEvent::Waiting {
        holder: Some(h),
        first: true,
        limit,
        ..
    } = &evs[0]
    else {
        panic!("first event {:?}", evs[0])
    };
    assert_eq!(h.executor_id, "holder-pod");
    assert_eq!(h.process_id, Some(std::process::id()));
    assert_eq!(
        *limit,
        WaitPolicy::Wait {
            max_wait: Duration::from_millis(700),
            set_by: "--wait-timeout"
        }
    );
    let updates = evs
        .iter()
        .filter(|e| matches!(e, LockEvent::Waiting { first: false, .. }))
        .count();
    // 700 ms at one update per 150 ms: about four; the bound only says "steady, not per attempt".
    assert!((2..=6).contains(&updates), "{updates} updates: {evs:?}");
    assert!(
        matches!(evs.last(), Some(LockEvent::GaveUp { waited, .. }) if *waited >= Duration::from_millis(700)),
        "{evs:?}"
    );
    assert!(e.message.starts_with("Gave up waiting for the migration lock at migrations/_lock after 0.7 s: the wait limit is 0.7 s, set by --wait-timeout"), "{}", e.message);

    seen.lock().unwrap().clear();
    holder.release("holder-pod").await.unwrap();
    let g = ExclusiveGuard::acquire(&waiter, "waiter", policy)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    g.release().await.unwrap();
    let names: Vec<&str> = seen.lock().unwrap().iter().map(|e| e.name()).collect();
    assert_eq!(names.first(), Some(&"lock.acquired"), "{names:?}");
    assert!(
        names.iter().filter(|n| **n == "lock.renewed").count() >= 1,
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"lock.released"), "{names:?}");

    assert!(holder.acquire("holder-pod").await.unwrap());
    seen.lock().unwrap().clear();
    let previous = waiter.force_release().await.unwrap();
    assert_eq!(
        previous.as_ref().map(|s| s.locked_by.as_str()),
        Some("holder-pod")
    );
    assert!(matches!(
        seen.lock().unwrap().as_slice(),
        [LockEvent::ForceReleased { previous: Some(p), .. }] if p.locked_by == "holder-pod"
    ));
}

/// Retries keep their rhythm however often the wait is reported: `retryAttempts` × `retryDelay`
/// is still the time spent, and the give-up names the retry settings.
#[tokio::test]
async fn frequent_wait_reports_do_not_use_up_retries() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder-pod").await.unwrap());
    let waiter = LockService::new(
        client(&emu, 0),
        None,
        LockOptions {
            timeout_ms: 60_000,
            wait_log_interval: Duration::from_millis(20),
            ..Default::default()
        },
    )
    .with_observer(Arc::new(|_: &msr_firebase::lock::LockEvent| {}));
    let started = Instant::now();
    let e = ExclusiveGuard::acquire(
        &waiter,
        "waiter",
        WaitPolicy::Retry {
            attempts: 2,
            delay: Duration::from_millis(300),
        },
    )
    .await
    .err()
    .expect("acquired a held lock");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
    assert!(
        e.message
            .contains("out of attempts: retryAttempts is 2, retryDelay 300 ms"),
        "{}",
        e.message
    );
}

// ---------------------------------------------------------------------------------------------
// L10–L12: exit paths, outages are not loss, fencing

/// A service whose client gives up on a failing request after `window_ms` (the lease-level
/// retries then take over).
fn impatient(emu: &Emulator, timeout_ms: u64, window_ms: u64) -> LockService {
    let retry = RetryPolicy {
        window: Some(Duration::from_millis(window_ms)),
        ..RetryPolicy::default()
    };
    let c = emulator_client(emu, Arc::new(SkewedClock(0)), retry, Duration::from_secs(2));
    lock_service_on(c, timeout_ms)
}

/// A guard on `holder`'s lock, then an outage of `outage_ms` from now.
async fn held_into_an_outage(
    emu: &Emulator,
    holder: &LockService,
    outage_ms: u64,
) -> ExclusiveGuard {
    let guard = ExclusiveGuard::acquire(holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    lever(
        emu,
        reqwest::Method::PUT,
        "outage",
        Some(json!({ "ms": outage_ms })),
    )
    .await;
    guard
}

#[tokio::test]
async fn l11_an_outage_shorter_than_the_lease_is_not_a_loss() {
    let emu = emulator().await;
    let holder = impatient(&emu, 3000, 200);
    let guard = held_into_an_outage(&emu, &holder, 1500).await;
    // The check rides the outage out (its requests fail for 1.5 s), and so does renewal.
    let retries = AtomicUsize::new(0);
    guard
        .check_with(&|e, _| {
            assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
            retries.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    assert!(retries.into_inner() > 0, "the check met the outage");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    guard.check().await.unwrap();
    assert!(!guard.is_lost());
    assert!(guard.lease_remaining() > Duration::from_millis(1000));
    let st = holder.status().await.unwrap().unwrap();
    assert_eq!((st.locked_by.as_str(), st.epoch), ("holder", 1));
    assert!(st.is_locked);
    guard.release().await.unwrap();
    assert!(node(&emu).await.get("executorId").is_none());
}

#[tokio::test]
async fn l11_an_outage_longer_than_the_lease_ends_it_as_unreachable_not_lost() {
    let emu = emulator().await;
    let holder = impatient(&emu, 1500, 200);
    let guard = held_into_an_outage(&emu, &holder, 3000).await;
    let e = guard.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
    assert!(e.message.contains("lease"), "{}", e.message);
    assert!(guard.is_lost());
    // L12: from the deadline on, writes under the lease are refused.
    let refused = guard.lease().allows_writes().unwrap_err();
    assert_eq!(refused.code, ErrorCode::LockLost);
    // Once the database is back and another process took over, the report says so.
    lever(&emu, reqwest::Method::DELETE, "outage", None).await;
    let other = service(&emu, 60_000);
    acquire_within(&other, "other", Duration::from_secs(5))
        .await
        .expect("taken over once expired");
    let e = guard.check().await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
    assert!(e.message.contains("other"), "{}", e.message);
    // The stale guard's release leaves the new owner's lock alone.
    guard.release().await.unwrap();
    assert_eq!(other.status().await.unwrap().unwrap().locked_by, "other");
}

#[tokio::test]
async fn l11_a_renewal_whose_answer_is_lost_is_settled_and_the_lease_goes_on() {
    let emu = emulator().await;
    let holder = service(&emu, 1200);
    let guard = ExclusiveGuard::acquire(&holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    // Every write (the renewals) is applied and its answer lost, by dropping or by a 500.
    for mode in ["drop", "500"] {
        lever(
            &emu,
            reqwest::Method::PUT,
            "lost-responses",
            Some(json!({"count": null, "mode": mode})),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        guard.check().await.unwrap();
        let lost = lever(&emu, reqwest::Method::GET, "lost-responses", None).await["lost"]
            .as_u64()
            .unwrap();
        assert!(lost >= 2, "{mode}: {lost} renewals lost their answer");
    }
    lever(&emu, reqwest::Method::DELETE, "lost-responses", None).await;
    assert_eq!(epoch_of(&node(&emu).await), 1);
    guard.release().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// waiting: the lock node's event stream, keep-alives, reconnects, polling when refused

/// A waiter on `holder`'s lock (Wait policy, up to a minute) with `hooks`; its result.
fn waiter(
    emu: &Emulator,
    hooks: WaitHooks,
) -> tokio::task::JoinHandle<msr_firebase::Result<ExclusiveGuard>> {
    let w = service(emu, 60_000);
    tokio::spawn(async move {
        let policy = WaitPolicy::wait_up_to(Duration::from_secs(60), "test");
        ExclusiveGuard::acquire_with(&w, "waiter", &policy, &hooks).await
    })
}

/// Requests on the lock node that are not the holder's: (GETs and stream opens).
async fn lock_gets(emu: &Emulator) -> u64 {
    counts(emu).await.1
}

/// Until `f` holds (bounded: 10 s).
async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F, what: &str) {
    for _ in 0..500 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never: {what}");
}

/// A waiting process costs one open event stream: one attempt (a read of the held lock), one
/// stream, and nothing more however long it waits and however often the holder renews (the
/// renewals arrive on the stream and move the lease end it waits for). The release arrives on
/// the stream too and the waiter takes the lock at once (one read, one write).
#[tokio::test]
async fn a_waiting_process_costs_one_open_stream() {
    let emu = emulator().await;
    let holder = LockService::new(
        client(&emu, 0),
        None,
        LockOptions {
            timeout_ms: 60_000,
            renew_interval: Some(Duration::from_millis(200)),
            ..LockOptions::default()
        },
    );
    let g = ExclusiveGuard::acquire(&holder, "holder", WaitPolicy::FailFast)
        .await
        .unwrap();
    reset_counts(&emu).await;
    let w = waiter(&emu, WaitHooks::default());
    // Several renewals by the holder while the waiter waits.
    eventually(|| async { counts(&emu).await.2 >= 8 }, "8 renewals").await;
    assert!(!w.is_finished());
    assert_eq!(
        lock_gets(&emu).await,
        2,
        "one read and one stream while waiting"
    );
    g.release().await.unwrap();
    let wg = w
        .await
        .unwrap()
        .expect("the waiter takes the released lock");
    assert_eq!(wg.epoch(), 2);
    // After the release: one read (its last answer was the held lock) and one write.
    assert_eq!(lock_gets(&emu).await, 3);
    wg.release().await.unwrap();
}

/// Where event streams are refused (a proxy that does not pass them), a waiting process polls
/// with backoff and jitter: about one read per 2.5–5 s once the backoff is up, and it still takes
/// the lock once it is released.
#[tokio::test]
async fn refused_streams_fall_back_to_polling_with_backoff() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    lever(
        &emu,
        reqwest::Method::PUT,
        "streams",
        Some(json!({"refuse": 400})),
    )
    .await;
    reset_counts(&emu).await;
    let started = Instant::now();
    let w = waiter(&emu, WaitHooks::default());
    // Polling reads: 0.1–0.2, 0.2–0.4, 0.4–0.8, 0.8–1.6, 1.6–3.2 s apart, then 2.5–5 s.
    eventually(|| async { lock_gets(&emu).await >= 7 }, "polling reads").await;
    let (gets, secs) = (lock_gets(&emu).await, started.elapsed().as_secs_f64());
    // The attempt, one refused stream, and the polls: never more than the backoff allows.
    assert!(gets <= 10, "{gets} reads in {secs:.1} s");
    assert!(!w.is_finished());
    holder.release("holder").await.unwrap();
    let wg = w
        .await
        .unwrap()
        .expect("a polling waiter takes the released lock");
    assert_eq!(wg.epoch(), 2);
    wg.release().await.unwrap();
    lever(&emu, reqwest::Method::DELETE, "streams", None).await;
}

/// A stream the server ends is reopened (after a pause with jitter), and one that goes silent —
/// no event and no keep-alive for longer than the silence limit, as a half-open connection would —
/// is reopened too; one that keeps sending keep-alives is kept.
#[tokio::test]
async fn streams_are_reopened_when_they_end_or_go_silent_and_kept_while_alive() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    let silence = |ms| WaitHooks {
        stream_silence: Some(Duration::from_millis(ms)),
        ..WaitHooks::default()
    };

    // Keep-alives every 100 ms, silence limit 400 ms: one stream for the whole wait.
    lever(
        &emu,
        reqwest::Method::PUT,
        "keepalive",
        Some(json!({"ms": 100})),
    )
    .await;
    reset_counts(&emu).await;
    let w = waiter(&emu, silence(400));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(lock_gets(&emu).await, 2, "the attempt and one stream");
    w.abort();

    // No keep-alives (one an hour): the silent stream is reopened, each time with a read.
    lever(
        &emu,
        reqwest::Method::PUT,
        "keepalive",
        Some(json!({"ms": 3_600_000})),
    )
    .await;
    reset_counts(&emu).await;
    let w = waiter(&emu, silence(300));
    eventually(|| async { lock_gets(&emu).await >= 6 }, "reopened streams").await;
    w.abort();

    // The server ends streams after 200 ms: reopened, and the release is still seen.
    lever(
        &emu,
        reqwest::Method::PUT,
        "keepalive",
        Some(json!({"ms": 100})),
    )
    .await;
    lever(
        &emu,
        reqwest::Method::PUT,
        "streams",
        Some(json!({"closeAfterMs": 200})),
    )
    .await;
    reset_counts(&emu).await;
    let w = waiter(&emu, WaitHooks::default());
    eventually(|| async { lock_gets(&emu).await >= 6 }, "reopened streams").await;
    lever(&emu, reqwest::Method::DELETE, "streams", None).await;
    holder.release("holder").await.unwrap();
    let wg = w
        .await
        .unwrap()
        .expect("the waiter takes the released lock");
    wg.release().await.unwrap();
}

/// Once the holder releases, a waiter first asks whether there is still work under the lock
/// (`still_needed`: the runner re-reads the history) and, when there is none, ends its wait
/// without writing to the lock at all.
#[tokio::test]
async fn a_waiter_with_nothing_left_to_do_does_not_contend() {
    let emu = emulator().await;
    let holder = service(&emu, 60_000);
    assert!(holder.acquire("holder").await.unwrap());
    let asked = Arc::new(AtomicUsize::new(0));
    let hooks = WaitHooks {
        still_needed: Some({
            let asked = asked.clone();
            Arc::new(move || {
                asked.fetch_add(1, Ordering::SeqCst);
                Box::pin(async { Ok(false) })
            })
        }),
        ..WaitHooks::default()
    };
    let w = service(&emu, 60_000);
    let waiting = tokio::spawn(async move {
        let policy = WaitPolicy::wait_up_to(Duration::from_secs(60), "test");
        ExclusiveGuard::acquire_if_needed(&w, "waiter", &policy, &hooks).await
    });
    eventually(|| async { lock_gets(&emu).await >= 2 }, "waiting").await;
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "not asked while the lock is held"
    );
    reset_counts(&emu).await;
    holder.release("holder").await.unwrap();
    let got = waiting.await.unwrap().unwrap();
    assert!(got.is_none(), "contended for a lock it did not need");
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // The holder's release and nothing else on the lock node.
    assert_eq!(counts(&emu).await, (1, 0, 1));
}
