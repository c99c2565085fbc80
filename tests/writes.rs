//! Production's write limits and triggers, as the client meets them on the embedded emulator:
//! a node too big for one write deleted in chunks (every chunk under `writeSizeLimit=tiny`,
//! through the client's gate), a replacement too big refused with an error that says what to
//! do, and `disableTriggers=true` on every write of a client that sends it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use common::lever;
use msr_firebase::backup::{self, RestoreOptions};
use msr_firebase::config::Config;
use msr_firebase::emulator::Emulator;
use msr_firebase::log::LogLine;
use msr_firebase::rtdb::{Client, WriteGate};
use msr_firebase::ErrorCode;
use reqwest::Method;
use serde_json::{json, Map, Value};

async fn emulator() -> (Emulator, Client) {
    let emu = common::emulator().await;
    let client = common::owner_client(&format!("{}?ns=writes", emu.url()), 2);
    (emu, client)
}

/// 2,000 users of 34 bytes each (`{"name":"user 0000","n":1000}`).
fn users(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| {
                (
                    format!("u{i:04}"),
                    json!({"name": format!("user {i:04}"), "n": 1000 + i}),
                )
            })
            .collect::<Map<String, Value>>(),
    )
}

/// The database refuses writes affecting more than 20 kB (its default limit, `small` here), or
/// 4 kB under `writeSizeLimit=tiny`.
async fn limit(emu: &Emulator) {
    lever(
        emu,
        Method::PUT,
        "write-size-limit",
        Some(json!({"default": "small", "budgets": {"tiny": 4000, "small": 20000}})),
    )
    .await;
}

/// The journal's entries since it was started (`PUT /.emulator/journal`).
async fn journal(emu: &Emulator) -> Vec<Value> {
    let j = lever(emu, Method::GET, "journal", None).await;
    j["entries"].as_array().cloned().unwrap_or_default()
}

fn heard(client: &Client) -> (Client, Arc<Mutex<Vec<LogLine>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let c = client.with_notices(Arc::new(move |l: &LogLine| {
        sink.lock().unwrap().push(l.clone())
    }));
    (c, lines)
}

#[tokio::test]
async fn a_node_too_big_for_one_write_is_removed_in_chunks_under_tiny() {
    let (emu, c) = emulator().await;
    c.set("app", &json!({"users": users(2000), "keep": {"a": 1}}))
        .await
        .unwrap();
    limit(&emu).await;
    lever(&emu, Method::PUT, "journal", None).await;
    let (c, notices) = heard(&c);

    c.remove("app/users").await.unwrap();

    let seen = journal(&emu).await;
    assert_eq!(
        c.get("app").await.unwrap(),
        json!({"keep": {"a": 1}}),
        "the node is gone, its sibling untouched"
    );
    // The DELETE is refused (nothing written), then one shallow listing and PATCHes of null,
    // each under tiny: 500, 250 and 125 children refused, 62 accepted, then the remaining
    // 1,938 children at 62 a chunk (32 PATCHes, 4 at a time).
    let line = |e: &Value| {
        format!(
            "{} {} {} {}",
            e["method"].as_str().unwrap(),
            e["path"].as_str().unwrap(),
            e["status"],
            e["writeSizeLimit"].as_str().unwrap_or("-")
        )
    };
    let lines: Vec<String> = seen.iter().map(line).collect();
    assert_eq!(lines[0], "DELETE /app/users 400 -");
    assert_eq!(lines[1], "GET /app/users 200 -");
    assert!(
        lines[2..]
            .iter()
            .all(|l| l.starts_with("PATCH /app/users ") && l.ends_with(" tiny")),
        "{lines:#?}"
    );
    let refused = lines.iter().filter(|l| l.contains(" 400 ")).count();
    let requests = seen.len();
    assert_eq!((requests, refused), (38, 4), "{lines:#?}");
    // The notice, as the runner logs it (the rehearsal's finding).
    let notices = notices.lock().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].event, "write.chunked");
    assert_eq!(notices[0].fields["path"], "/app/users");
    assert_eq!(notices[0].fields["requests"], requests as u64);
    assert_eq!(notices[0].fields["deleted"], 2000);
    assert!(
        notices[0]
            .message
            .contains("/app/users was too big to delete in one request"),
        "{}",
        notices[0].message
    );
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn set_null_of_a_big_node_deletes_it_in_chunks_too() {
    let (emu, c) = emulator().await;
    c.set("big", &users(2000)).await.unwrap();
    limit(&emu).await;
    c.set_raw("big", "null".into()).await.unwrap();
    assert_eq!(c.get("big").await.unwrap(), Value::Null);
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_replacement_too_big_for_one_write_fails_clearly_and_changes_nothing() {
    let (emu, c) = emulator().await;
    c.set("app/users", &users(2000)).await.unwrap();
    limit(&emu).await;
    for (e, size) in [
        (
            c.set("app/users", &json!({"u0001": 1})).await.unwrap_err(),
            "/app/users holds 2,000 children",
        ),
        (
            c.set_raw("app/users", r#"{"u0001": 1}"#.into())
                .await
                .unwrap_err(),
            "/app/users holds 2,000 children",
        ),
        (
            c.update_raw("app", r#"{"users": {"u0001": 1}}"#.into())
                .await
                .unwrap_err(),
            "/app holds 1 child",
        ),
    ] {
        assert_eq!(e.code, ErrorCode::WriteTooBig, "{}", e.message);
        for part in [
            size,
            "write-size limit",
            "db.bulkWriter()",
            "ref.children()",
            "remove(), which deletes big nodes in chunks",
            "atomicity",
        ] {
            assert!(e.message.contains(part), "{part} in {}", e.message);
        }
    }
    assert_eq!(c.get("app/users").await.unwrap(), users(2000));
    emu.stop().await.unwrap();
}

/// A gate open for its first `n` attempts (a lease that ends part way).
struct Admits(AtomicUsize);

impl WriteGate for Admits {
    fn admit(&self) -> msr_firebase::Result<Option<Duration>> {
        match self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Ok(None),
            Err(_) => Err(msr_firebase::Error::new(
                ErrorCode::LockLost,
                "Write refused: the lease is over",
            )),
        }
    }
}

#[tokio::test]
async fn every_chunk_passes_the_gate_and_a_closed_gate_stops_the_delete() {
    let (emu, c) = emulator().await;
    c.set("users", &users(2000)).await.unwrap();
    limit(&emu).await;
    lever(&emu, Method::PUT, "journal", None).await;
    let gate = Arc::new(Admits(AtomicUsize::new(30)));
    let e = c.gated(gate.clone()).remove("users").await.unwrap_err();
    assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
    assert!(
        e.message
            .contains("the chunked delete of /users stopped after deleting"),
        "{}",
        e.message
    );
    assert!(e.message.contains("run it again"), "{}", e.message);
    // Each write took at least one admission (the answer is awaited while the gate admits it,
    // which asks it again), so no more than 30 writes left, and none once it closed.
    let writes = journal(&emu)
        .await
        .iter()
        .filter(|e| e["method"] != "GET")
        .count();
    assert!((2..=30).contains(&writes), "{writes}");
    let left = c.get_shallow("users").await.unwrap();
    let left = left.as_object().map_or(0, Map::len);
    assert!(left > 0 && left < 2000, "{left}");
    // A holder with the lock again finishes it.
    c.remove("users").await.unwrap();
    assert_eq!(c.get("users").await.unwrap(), Value::Null);
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_client_that_disables_triggers_says_so_on_every_write_and_only_then() {
    let (emu, plain) = emulator().await;
    for disabled in [true, false] {
        let c = plain.with_disable_triggers(disabled);
        assert_eq!(c.disables_triggers(), disabled);
        lever(&emu, Method::DELETE, "write-size-limit", None).await;
        plain.set("big", &users(400)).await.unwrap();
        // 400 users are too big to delete at once.
        lever(
            &emu,
            Method::PUT,
            "write-size-limit",
            Some(json!({"default": "small", "budgets": {"tiny": 4000, "small": 8000}})),
        )
        .await;
        lever(&emu, Method::PUT, "journal", None).await;
        common::reset_counts(&emu).await;
        c.set("a", &json!({"x": 1})).await.unwrap();
        c.set_raw("b", "2".into()).await.unwrap();
        c.update("a", &json!({"y": 2}).as_object().unwrap().clone())
            .await
            .unwrap();
        c.update_raw("", r#"{"c/d": 3}"#.into()).await.unwrap();
        let id = c.push("list", &json!(1)).await.unwrap();
        let v = c.get_versioned("a").await.unwrap();
        c.put_if_match("a", &json!(5), &v.etag).await.unwrap();
        let v = c.get_versioned("a").await.unwrap();
        c.delete_if_match("a", &v.etag).await.unwrap();
        c.remove(&format!("list/{id}")).await.unwrap();
        c.remove("big").await.unwrap(); // in chunks
        let writes: Vec<Value> = journal(&emu)
            .await
            .into_iter()
            .filter(|e| e["method"] != "GET")
            .collect();
        assert!(writes.len() > 12, "{writes:#?}");
        assert!(
            writes.iter().all(|w| w["disableTriggers"] == disabled),
            "{writes:#?}"
        );
        let triggers = lever(&emu, Method::GET, "requests", None).await["triggers"].clone();
        let n = writes.len() as u64;
        let (off, on) = if disabled { (n, 0) } else { (0, n) };
        assert_eq!(
            (triggers["disabled"].as_u64(), triggers["enabled"].as_u64()),
            (Some(off), Some(on)),
            "{triggers}"
        );
    }
    emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_restore_clears_live_nodes_too_big_for_one_write_in_chunks_and_fires_no_triggers() {
    let (emu, c) = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        shift: Some("prod".into()),
        ..Config::default()
    };
    c.set("prod", &json!({"users": users(50), "config": {"x": 1}}))
        .await
        .unwrap();
    let file = backup::create(&c, &cfg, dir.path()).await.unwrap();
    let backed_up = c.get("prod").await.unwrap();
    for restore_triggers in [false, true] {
        // After the backup: a big node it does not have, and a node it has grown big.
        lever(&emu, Method::DELETE, "write-size-limit", None).await;
        c.set("prod/big", &users(2000)).await.unwrap();
        c.set("prod/users", &users(2000)).await.unwrap();
        limit(&emu).await;
        lever(&emu, Method::PUT, "journal", None).await;
        cfg.backup.restore_triggers = restore_triggers;

        let report = backup::restore_with(&c, &cfg, &file, &RestoreOptions::default())
            .await
            .unwrap();

        assert_eq!(c.get("prod").await.unwrap(), backed_up);
        let seen = journal(&emu).await;
        let writes: Vec<&Value> = seen.iter().filter(|e| e["method"] != "GET").collect();
        assert_eq!(report.writes, writes.len(), "{report:?} {writes:#?}");
        assert!(report.chunked > 0, "{report:?}");
        let tiny = writes
            .iter()
            .filter(|w| w["writeSizeLimit"] == "tiny")
            .count();
        assert!(tiny > 2, "{writes:#?}");
        // Every write of a restore asks for no triggers, unless restoreTriggers says otherwise.
        assert!(
            writes
                .iter()
                .all(|w| w["disableTriggers"] == !restore_triggers),
            "{writes:#?}"
        );
    }
    emu.stop().await.unwrap();
}
