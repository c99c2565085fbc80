//! Backups against the embedded emulator: create, restore (exact, chunked, lock-safe), listing,
//! failures, list_nodes/backup_nodes.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use msr_firebase::backup::{self, RestoreOptions};
use msr_firebase::config::Config;
use msr_firebase::emulator::{Emulator, EmulatorOptions};
use msr_firebase::rtdb::{Auth, Client, ClientOptions, DatabaseUrl, RetryPolicy, SystemClock};
use msr_firebase::ErrorCode;
use serde_json::{json, Value};

struct Env {
    emu: Emulator,
    client: Client,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&format!("{}?ns=backup-test", emu.url())).unwrap(),
        auth: Auth::EmulatorOwner,
        retry: RetryPolicy::none(),
        request_timeout: Duration::from_secs(60),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .unwrap();
    Env {
        emu,
        client,
        http: reqwest::Client::new(),
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    async fn counts(&self) -> Value {
        self.http
            .get(format!("{}/.emulator/requests", self.emu.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn reset_counts(&self) {
        self.http
            .delete(format!("{}/.emulator/requests", self.emu.url()))
            .send()
            .await
            .unwrap();
    }
    /// PUT + PATCH + DELETE + POST since the last reset.
    async fn writes(&self) -> u64 {
        let c = self.counts().await;
        ["PUT", "PATCH", "DELETE", "POST"]
            .iter()
            .map(|m| c["byMethod"][m].as_u64().unwrap_or(0))
            .sum()
    }
    fn cwd(&self) -> &Path {
        self.dir.path()
    }
}

fn shifted(shift: &str) -> Config {
    Config {
        shift: Some(shift.into()),
        ..Config::default()
    }
}

fn seed() -> Value {
    json!({
        "users": {
            "alice": {"name": "Alice", "age": 31, "tags": {"admin": true, "beta": false}, "score": 1.5},
            "bob": {"name": "Bob", "address": {"city": "Paris", "geo": {"lat": 48.85, "lng": 2.35}}}
        },
        "config": {"theme": "dark", "limits": {"max": 10}},
        "list": ["a", "b", "c"],
        "flag": true,
        "migrations": {"_lock": {"executorId": "old-holder", "lockedAt": 1, "expiresAt": 2}, "note": "keep"},
        "schema_version": {"-Nabc": {"name": "V202401010000_init.js", "result": "ok"}}
    })
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[tokio::test]
async fn create_writes_metadata_and_the_exact_subtree_into_a_new_folder() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    e.client.set("other", &json!({"x": 1})).await.unwrap();
    let cfg = shifted("/prod/");
    assert!(!e.cwd().join("backups").exists());

    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();

    assert_eq!(
        path.parent().unwrap(),
        e.cwd().join("backups"),
        "default folder, created"
    );
    let name = path.file_name().unwrap().to_str().unwrap();
    let re = regex::Regex::new(r"^backup-\d{8}-\d{6}-\d{3}\.json$").unwrap();
    assert!(re.is_match(name), "{name}");
    let v = read_json(&path);
    let m = &v["metadata"];
    assert_eq!(m["version"], 2);
    assert_eq!(m["tool"], "msr-firebase");
    assert_eq!(m["shift"], "prod");
    assert_eq!(m["path"], "/prod");
    assert_eq!(m["excluded"], json!(["migrations/_lock"]));
    assert_eq!(m["databaseUrl"], format!("{}?ns=backup-test", e.emu.url()));
    assert!(chrono::DateTime::parse_from_rfc3339(m["createdAt"].as_str().unwrap()).is_ok());
    assert_eq!(
        v["data"],
        e.client.get("prod").await.unwrap(),
        "exactly the live subtree"
    );
    assert!(v["data"].get("other").is_none());
    // Nothing else left in the folder (no temp file).
    assert_eq!(
        std::fs::read_dir(e.cwd().join("backups")).unwrap().count(),
        1
    );

    // A second backup never overwrites the first.
    let second = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    assert_ne!(second, path);
    assert!(path.exists() && second.exists());
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn custom_folder_prefix_suffix_extension_and_root_backup() {
    let e = env().await;
    e.client
        .set(
            "",
            &json!({"a": {"b": 1}, "migrations": {"_lock": {"executorId": "x"}}}),
        )
        .await
        .unwrap();
    let mut cfg = Config::default();
    cfg.backup.folder = "deep/nested/bk".into();
    cfg.backup.prefix = "snap".into();
    cfg.backup.suffix = "_pre".into();
    cfg.backup.extension = "bkp".into();
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    assert_eq!(path.parent().unwrap(), e.cwd().join("deep/nested/bk"));
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        regex::Regex::new(r"^snap-\d{8}-\d{6}-\d{3}_pre\.bkp$")
            .unwrap()
            .is_match(name),
        "{name}"
    );
    let v = read_json(&path);
    assert_eq!(v["metadata"]["shift"], Value::Null);
    assert_eq!(v["metadata"]["path"], "/");
    assert_eq!(v["data"], e.client.get("").await.unwrap());
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn restore_puts_the_subtree_back_exactly_and_spares_the_lock_and_the_rest() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    e.client.set("other", &json!({"x": 1})).await.unwrap();
    let cfg = shifted("prod");
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    let backed_up = e.client.get("prod").await.unwrap();

    // Change everything: modify nested values, add and delete nodes, touch data outside the shift,
    // and take the lock after the backup.
    e.client
        .set("prod/users/alice/name", &json!("Modified"))
        .await
        .unwrap();
    e.client
        .set("prod/users/bob/address/geo", &json!("flat"))
        .await
        .unwrap();
    e.client
        .set("prod/users/carol", &json!({"name": "Carol"}))
        .await
        .unwrap();
    e.client.remove("prod/config").await.unwrap();
    e.client.set("prod/list", &json!({"x": 1})).await.unwrap();
    e.client
        .set("prod/new_node", &json!({"deep": {"er": 1}}))
        .await
        .unwrap();
    e.client
        .set("prod/migrations/extra", &json!(1))
        .await
        .unwrap();
    e.client.remove("prod/migrations/note").await.unwrap();
    let lock = json!({"executorId": "new-holder", "lockedAt": 100, "expiresAt": 200, "hostname": "h", "processId": 7});
    e.client.set("prod/migrations/_lock", &lock).await.unwrap();
    e.client.set("other", &json!({"x": 2})).await.unwrap();

    backup::restore(&e.client, &cfg, &path).await.unwrap();

    let mut expected = backed_up.clone();
    expected["migrations"]["_lock"] = lock.clone();
    assert_eq!(e.client.get("prod").await.unwrap(), expected);
    assert_eq!(
        e.client.get("prod/migrations/_lock").await.unwrap(),
        lock,
        "the live lock is untouched"
    );
    assert_eq!(
        e.client.get("other").await.unwrap(),
        json!({"x": 2}),
        "outside the shift is untouched"
    );

    // With no live lock, the backed-up lock is not resurrected either.
    e.client.remove("prod/migrations/_lock").await.unwrap();
    backup::restore(&e.client, &cfg, &path).await.unwrap();
    assert_eq!(
        e.client.get("prod/migrations/_lock").await.unwrap(),
        Value::Null
    );
    assert_eq!(
        e.client.get("prod/migrations/note").await.unwrap(),
        json!("keep")
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn root_restore_without_shift_spares_the_lock() {
    let e = env().await;
    e.client
        .set(
            "",
            &json!({"a": {"b": 1}, "c": 2, "migrations": {"_lock": {"executorId": "old"}}}),
        )
        .await
        .unwrap();
    let cfg = Config::default();
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    e.client
        .set(
            "",
            &json!({"z": 1, "migrations": {"_lock": {"executorId": "live"}, "other": 3}}),
        )
        .await
        .unwrap();
    backup::restore(&e.client, &cfg, &path).await.unwrap();
    assert_eq!(
        e.client.get("").await.unwrap(),
        json!({"a": {"b": 1}, "c": 2, "migrations": {"_lock": {"executorId": "live"}}})
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn restore_of_an_empty_subtree_clears_it_except_the_lock() {
    let e = env().await;
    let cfg = shifted("empty");
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    assert_eq!(read_json(&path)["data"], Value::Null);
    e.client
        .set(
            "empty",
            &json!({"a": 1, "migrations": {"_lock": {"executorId": "live"}, "b": 2}}),
        )
        .await
        .unwrap();
    backup::restore(&e.client, &cfg, &path).await.unwrap();
    assert_eq!(
        e.client.get("empty").await.unwrap(),
        json!({"migrations": {"_lock": {"executorId": "live"}}})
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_tiny_chunk_limit_splits_the_restore_into_many_writes() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    let big: serde_json::Map<String, Value> = (0..50)
        .map(|i| {
            (
                format!("item{i:03}"),
                json!({"n": i, "text": "x".repeat(40)}),
            )
        })
        .collect();
    e.client.set("prod/big", &Value::Object(big)).await.unwrap();
    let cfg = shifted("prod");
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    let backed_up = e.client.get("prod").await.unwrap();

    // Default limit: one PATCH at the shift (stale children as nulls) and one at `migrations`,
    // which is written around the lock node.
    e.client
        .set("prod/users/alice/name", &json!("Modified"))
        .await
        .unwrap();
    e.client.set("prod/stale", &json!(1)).await.unwrap();
    e.reset_counts().await;
    let report = backup::restore_with(&e.client, &cfg, &path, &RestoreOptions::default())
        .await
        .unwrap();
    let default_writes = e.writes().await;
    assert_eq!(report.writes as u64, default_writes);
    assert_eq!(default_writes, 2, "{:?}", e.counts().await);
    assert_eq!(e.client.get("prod").await.unwrap(), backed_up);

    // Tiny limit: many writes, same result.
    e.client
        .set("prod/users/alice/name", &json!("Modified"))
        .await
        .unwrap();
    e.client
        .set("prod/big/item007/n", &json!(-1))
        .await
        .unwrap();
    e.client
        .set("prod/big/item999", &json!("stale"))
        .await
        .unwrap();
    e.client.set("prod/stale", &json!(1)).await.unwrap();
    e.reset_counts().await;
    let opts = RestoreOptions {
        chunk_limit: 200,
        ..RestoreOptions::default()
    };
    let report = backup::restore_with(&e.client, &cfg, &path, &opts)
        .await
        .unwrap();
    let counts = e.counts().await;
    let tiny_writes = e.writes().await;
    assert_eq!(report.writes as u64, tiny_writes);
    assert!(
        tiny_writes >= 20,
        "expected many writes, got {tiny_writes}: {counts}"
    );
    assert!(report.bytes / report.writes <= 200 + 100, "{report:?}");
    assert_eq!(counts["byMethod"]["DELETE"].as_u64().unwrap_or(0), 0);
    assert_eq!(e.client.get("prod").await.unwrap(), backed_up);
    println!(
        "restore writes: default limit {default_writes}, 200-byte limit {tiny_writes} ({counts})"
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_large_subtree_streams_to_disk_and_back() {
    // The create path copies the HTTP body to the file chunk by chunk (see backup::create): no
    // `serde_json::Value` of the data exists in this crate's code during a backup.
    let e = env().await;
    let n = 20_000;
    let users: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            (
                format!("user{i:05}"),
                json!({"name": format!("User {i}"), "email": format!("u{i}@example.com"), "n": i}),
            )
        })
        .collect();
    e.client
        .set("big/users", &Value::Object(users))
        .await
        .unwrap();
    e.client
        .set("big/migrations/_lock", &json!({"executorId": "live"}))
        .await
        .unwrap();
    let cfg = shifted("big");
    let t = std::time::Instant::now();
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    let create_time = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 1_000_000, "{size}");
    let v = read_json(&path);
    assert_eq!(v["data"]["users"].as_object().unwrap().len(), n);

    e.client.remove("big/users").await.unwrap();
    e.reset_counts().await;
    let t = std::time::Instant::now();
    let report = backup::restore_with(
        &e.client,
        &cfg,
        &path,
        &RestoreOptions {
            chunk_limit: 256 * 1024,
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let restore_time = t.elapsed();
    assert_eq!(
        e.client
            .get_shallow("big/users")
            .await
            .unwrap()
            .as_object()
            .unwrap()
            .len(),
        n
    );
    assert_eq!(
        e.client.get("big/users/user12345/email").await.unwrap(),
        json!("u12345@example.com")
    );
    assert_eq!(
        e.client.get("big/migrations/_lock").await.unwrap(),
        json!({"executorId": "live"})
    );
    assert!(report.writes > 1, "{report:?}");
    println!("20k children: file {size} bytes, create {create_time:?}, restore {restore_time:?}, {report:?}");
    e.emu.stop().await.unwrap();
}

async fn assert_refused(e: &Env, cfg: &Config, file: &Path, needle: &str) {
    let before = e.emu.export();
    e.reset_counts().await;
    let err = backup::restore(&e.client, cfg, file).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::RestoreFailed, "{err:?}");
    assert!(
        err.message.contains(&file.display().to_string()),
        "names the file: {}",
        err.message
    );
    assert!(
        err.message.contains(needle),
        "expected {needle:?} in: {}",
        err.message
    );
    assert_eq!(e.writes().await, 0, "no write was sent");
    assert_eq!(e.emu.export(), before, "database unchanged");
}

#[tokio::test]
async fn bad_files_are_refused_before_anything_is_written() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    let cfg = shifted("prod");
    let good = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    e.client
        .set("prod/users/alice/name", &json!("Modified"))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&good).unwrap();

    assert_refused(&e, &cfg, &e.cwd().join("nope.json"), "cannot open").await;

    let truncated = e.cwd().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    assert_refused(&e, &cfg, &truncated, "truncated").await;

    let garbage = e.cwd().join("garbage.json");
    std::fs::write(&garbage, "this is not json").unwrap();
    assert_refused(&e, &cfg, &garbage, "not valid").await;

    let no_meta = e.cwd().join("no-meta.json");
    std::fs::write(&no_meta, r#"{"/": {"prod": {"users": {}}}}"#).unwrap();
    assert_refused(&e, &cfg, &no_meta, "metadata").await;

    let bad_key = e.cwd().join("bad-key.json");
    std::fs::write(&bad_key, text.replacen("\"alice\"", "\"al.ice\"", 1)).unwrap();
    assert_refused(&e, &cfg, &bad_key, "al.ice").await;

    let version = e.cwd().join("version.json");
    std::fs::write(&version, text.replacen("\"version\":2", "\"version\":7", 1)).unwrap();
    assert_refused(&e, &cfg, &version, "version is 7").await;

    // Same file, other shift: refused with both paths named.
    assert_refused(&e, &shifted("staging"), &good, "/prod").await;
    assert_refused(&e, &Config::default(), &good, "shift is /").await;

    assert_eq!(
        e.client.get("prod/users/alice/name").await.unwrap(),
        json!("Modified")
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_failed_backup_leaves_no_file_and_says_why() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    e.http
        .put(format!("{}/.emulator/deny", e.emu.url()))
        .json(&json!({"paths": ["prod"]}))
        .send()
        .await
        .unwrap();
    let err = backup::create(&e.client, &shifted("prod"), e.cwd())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::BackupFailed);
    assert!(
        err.message.contains("backups") && err.message.contains("/prod"),
        "{}",
        err.message
    );
    assert!(
        err.message.to_lowercase().contains("permission"),
        "{}",
        err.message
    );
    assert_eq!(
        std::fs::read_dir(e.cwd().join("backups")).unwrap().count(),
        0,
        "no partial or temp file"
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn listing_is_newest_first_with_sizes_and_dates() {
    let e = env().await;
    let cfg = shifted("prod");
    assert!(
        backup::list(&cfg, e.cwd()).await.unwrap().is_empty(),
        "missing folder lists nothing"
    );
    e.client.set("prod", &json!({"a": 1})).await.unwrap();
    let first = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    e.client
        .set("prod", &json!({"a": 1, "b": "more data"}))
        .await
        .unwrap();
    let second = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    std::fs::write(e.cwd().join("backups/notes.txt"), "not a backup").unwrap();

    let list = backup::list(&cfg, e.cwd()).await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].path, second);
    assert_eq!(list[1].path, first);
    assert_eq!(list[0].size, std::fs::metadata(&second).unwrap().len());
    assert_eq!(
        list[0].file_name,
        second.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(
        list[0].created_at.as_deref(),
        read_json(&second)["metadata"]["createdAt"].as_str()
    );
    assert_eq!(list[0].backed_up_path.as_deref(), Some("/prod"));
    assert!(list[0].created_at > list[1].created_at);
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn list_nodes_and_backup_nodes_with_and_without_shift() {
    let e = env().await;
    e.client.set("", &json!({"top": {"x": 1}, "prod": {"users": {"a": 1}, "config": {"c": true}}, "leaf": 5})).await.unwrap();

    let root = Config::default();
    assert_eq!(
        backup::list_nodes(&e.client, &root).await.unwrap(),
        vec!["leaf", "prod", "top"]
    );
    let prod = shifted("prod");
    assert_eq!(
        backup::list_nodes(&e.client, &prod).await.unwrap(),
        vec!["config", "users"]
    );
    assert!(backup::list_nodes(&e.client, &shifted("missing"))
        .await
        .unwrap()
        .is_empty());
    assert!(backup::list_nodes(&e.client, &shifted("leaf"))
        .await
        .unwrap()
        .is_empty());

    let got = backup::backup_nodes(&e.client, &prod, &["users", "nothing", "config/c"])
        .await
        .unwrap();
    assert_eq!(
        Value::Object(got),
        json!({"users": {"a": 1}, "nothing": null, "config/c": true})
    );
    let got = backup::backup_nodes(&e.client, &root, &["top", "leaf"])
        .await
        .unwrap();
    assert_eq!(Value::Object(got), json!({"top": {"x": 1}, "leaf": 5}));

    e.reset_counts().await;
    for bad in ["a.b", "", "x$"] {
        let err = backup::backup_nodes(&e.client, &root, &["top", bad])
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPath, "{bad}: {err:?}");
    }
    assert_eq!(
        e.counts().await["total"],
        0,
        "names are checked before any read"
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_restore_the_server_refuses_is_restore_failed_with_the_cause() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    let cfg = shifted("prod");
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    e.http
        .put(format!("{}/.emulator/deny", e.emu.url()))
        .json(&json!({"paths": ["prod/users"]}))
        .send()
        .await
        .unwrap();
    let err = backup::restore(&e.client, &cfg, &path).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::RestoreFailed);
    let msg = &err.message;
    assert!(
        msg.contains(&path.display().to_string()) && msg.to_lowercase().contains("permission"),
        "{msg}"
    );
    assert!(!msg.contains("owner"), "no credentials in messages: {msg}");
    e.emu.stop().await.unwrap();
}

impl Env {
    /// The data at `path` with priorities (`format=export`), as the emulator holds it.
    async fn exported(&self, path: &str) -> Value {
        self.http
            .get(format!(
                "{}/{path}.json?ns=backup-test&format=export",
                self.emu.url()
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    /// A PUT of JSON text (priorities are written this way: the crate's client writes data).
    async fn put_text(&self, path: &str, body: &str) {
        let r = self
            .http
            .put(format!("{}/{path}.json?ns=backup-test", self.emu.url()))
            .header("Authorization", "Bearer owner")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    async fn responses_up_to(&self, bytes: u64) {
        self.http
            .put(format!("{}/.emulator/limits", self.emu.url()))
            .body(json!({ "responseBytes": bytes }).to_string())
            .send()
            .await
            .unwrap();
    }
}

/// Data with priorities everywhere they can be: on the shift's node, on objects, on primitives
/// (`.value`), with numbers and strings.
fn prioritised() -> Value {
    let many: serde_json::Map<String, Value> = (0..30)
        .map(|i| {
            (
                format!("p{i:02}"),
                json!({"n": i, "text": "y".repeat(20), ".priority": 100 - i}),
            )
        })
        .collect();
    json!({
        ".priority": 7,
        "users": {
            ".priority": "users",
            "alice": {"name": "Alice", ".priority": 1},
            "bob": {".value": "just a name", ".priority": "b"},
            "carol": {"name": "Carol"}
        },
        "many": Value::Object(many),
        "flag": {".value": true, ".priority": 0.5},
        "migrations": {"note": "keep"}
    })
}

/// A backup of data with priorities, restored into another emulator, has them all back; one
/// GET made the backup (`format=export` adds no request), and a walk in pages (a node too big
/// for one response) and a restore in small chunks keep them too.
#[tokio::test]
async fn a_backup_keeps_priorities_and_a_restore_into_another_database_puts_them_back() {
    let src = env().await;
    src.put_text("prod", &prioritised().to_string()).await;
    let cfg = shifted("prod");
    let live = src.exported("prod").await;
    assert_eq!(live, prioritised(), "the emulator keeps them");

    src.reset_counts().await;
    let file = backup::create(&src.client, &cfg, src.cwd()).await.unwrap();
    let counts = src.counts().await;
    assert_eq!(
        counts["total"], 1,
        "one GET, as without priorities: {counts}"
    );
    assert_eq!(counts["byPath"]["GET /prod"], 1);
    let v = read_json(&file);
    assert_eq!(v["metadata"]["version"], 2);
    assert_eq!(
        v["data"], live,
        "the file holds the data with its priorities"
    );

    // Restored into another database (emulator to emulator): exactly the same, priorities
    // included; then again with small chunks (nodes opened, their priorities as entries).
    let dst = env().await;
    dst.put_text(
        "prod",
        r#"{"stale": 1, "users": {"alice": {"name": "Old"}}}"#,
    )
    .await;
    backup::restore(&dst.client, &cfg, &file).await.unwrap();
    assert_eq!(dst.exported("prod").await, live);
    for chunk_limit in [120, 400] {
        dst.put_text("prod", r#"{"stale": 1}"#).await;
        let opts = RestoreOptions {
            chunk_limit,
            ..RestoreOptions::default()
        };
        let report = backup::restore_with(&dst.client, &cfg, &file, &opts)
            .await
            .unwrap();
        assert!(report.writes > 3, "{report:?}");
        assert_eq!(
            dst.exported("prod").await,
            live,
            "chunk limit {chunk_limit}"
        );
    }

    // A walk in pages: the node's own priority is read once more, and kept.
    src.responses_up_to(600).await;
    src.reset_counts().await;
    let paged = backup::create(&src.client, &cfg, src.cwd()).await.unwrap();
    let counts = src.counts().await;
    assert!(counts["total"].as_u64().unwrap() > 3, "{counts}");
    assert_eq!(counts["byPath"]["GET /prod/.priority"], 1, "{counts}");
    assert_eq!(read_json(&paged)["data"], live);
    dst.put_text("prod", r#"{"stale": 1}"#).await;
    backup::restore(&dst.client, &cfg, &paged).await.unwrap();
    assert_eq!(dst.exported("prod").await, live);
    src.emu.stop().await.unwrap();
    dst.emu.stop().await.unwrap();
}

/// A backup written before priorities were kept (format version 1, plain data) still restores.
#[tokio::test]
async fn an_old_backup_without_priorities_still_restores() {
    let e = env().await;
    e.client.set("prod", &seed()).await.unwrap();
    let cfg = shifted("prod");
    let file = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    let backed_up = e.client.get("prod").await.unwrap();
    let mut old = read_json(&file);
    old["metadata"]["version"] = json!(1);
    let old_file = e.cwd().join("backups").join("old.json");
    std::fs::write(&old_file, serde_json::to_vec(&old).unwrap()).unwrap();

    e.put_text("prod/users/.priority", "3").await;
    e.client
        .set("prod/users/alice/name", &json!("Modified"))
        .await
        .unwrap();
    backup::restore(&e.client, &cfg, &old_file).await.unwrap();
    assert_eq!(e.client.get("prod").await.unwrap(), backed_up);
    assert_eq!(
        e.exported("prod/users/.priority").await,
        Value::Null,
        "the old backup's data replaced the node, priority and all"
    );
    e.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_restore_whose_listing_breaks_off_reads_it_again_and_ends_exact() {
    let e = env().await;
    let users: serde_json::Map<String, Value> = (0..300)
        .map(|i| (format!("u{i:04}"), json!({"n": i})))
        .collect();
    e.client.set("prod", &Value::Object(users)).await.unwrap();
    let cfg = shifted("prod");
    let path = backup::create(&e.client, &cfg, e.cwd()).await.unwrap();
    let backed_up = e.client.get("prod").await.unwrap();
    // Children the backup does not have, on both sides of the listing's cut.
    for k in ["a000", "u0150x", "zzz"] {
        e.client
            .set(&format!("prod/{k}"), &json!({"extra": true}))
            .await
            .unwrap();
    }
    // The first shallow listing of /prod (the restored path, whose live children the backup does
    // not have are deleted) breaks off half way through its body.
    let (proxy, picked) = common::cutting_proxy(e.emu.url().to_string(), 1, |m, uri| {
        m == "GET" && uri.starts_with("/prod.json") && uri.contains("shallow=true")
    })
    .await;
    let through = common::owner_client(&format!("{proxy}?ns=backup-test"), 0);
    backup::restore(&through, &cfg, &path).await.unwrap();
    assert_eq!(e.client.get("prod").await.unwrap(), backed_up);
    let picked = picked.lock().unwrap().clone();
    assert_eq!(
        picked.len(),
        2,
        "the listing that broke off was read once more: {picked:?}"
    );
    e.emu.stop().await.unwrap();
}
