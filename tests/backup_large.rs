//! Backups and restores of data bigger than one response and bigger than memory, against the
//! embedded emulator with its response-size limit lowered (the `limits` lever) so small data
//! stands in for large: the walk (pages, split pages, children too big for a response, nodes with
//! too many keys to list), content-identical restores into an empty database, request counts,
//! restores whose peak memory does not grow with the file, and interrupted restores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use msr_firebase::backup::{self, BackupOptions, Phase, Progress, RestoreOptions, WalkOptions};
use msr_firebase::config::Config;
use msr_firebase::emulator::{Emulator, EmulatorOptions};
use msr_firebase::rtdb::{Auth, Client, ClientOptions, DatabaseUrl, RetryPolicy, SystemClock};
use msr_firebase::ErrorCode;
use serde_json::{json, Map, Value};

const NS: &str = "large";

struct Db {
    emu: Emulator,
    client: Client,
    http: reqwest::Client,
}

async fn db(limit: Option<usize>) -> Db {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&format!("{}?ns={NS}", emu.url())).unwrap(),
        auth: Auth::EmulatorOwner,
        retry: RetryPolicy::none(),
        request_timeout: Duration::from_secs(60),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .unwrap();
    let d = Db {
        emu,
        client,
        http: reqwest::Client::new(),
    };
    if let Some(n) = limit {
        d.lever("PUT", "limits", Some(json!({ "responseBytes": n })))
            .await;
    }
    d
}

impl Db {
    async fn lever(&self, method: &str, name: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(
            method.parse().unwrap(),
            format!("{}/.emulator/{name}", self.emu.url()),
        );
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap().json().await.unwrap()
    }
    async fn counts(&self) -> Value {
        self.lever("GET", "requests", None).await
    }
    async fn reset_counts(&self) {
        self.lever("DELETE", "requests", None).await;
    }
    /// The namespace's whole data, straight from the store (no response limit).
    fn data(&self) -> Value {
        self.emu.export()[NS].clone()
    }
}

/// Equal content, or where the first difference is (values this big make unreadable panics).
#[track_caller]
fn assert_same(got: &Value, want: &Value, what: &str) {
    fn diff(a: &Value, b: &Value, at: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for k in x.keys().chain(y.keys()) {
                    let (u, v) = (
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    );
                    if let Some(d) = diff(u, v, &format!("{at}/{k}")) {
                        return Some(d);
                    }
                }
                None
            }
            (x, y) if x == y => None,
            (x, y) => {
                let short = |v: &Value| v.to_string().chars().take(120).collect::<String>();
                Some(format!("at {at}: {} != {}", short(x), short(y)))
            }
        }
    }
    if let Some(d) = diff(got, want, "") {
        panic!("{what}: {d}");
    }
}

fn shifted(shift: &str) -> Config {
    Config {
        shift: Some(shift.into()),
        ..Config::default()
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// ~2 MB under `prod`: a collection of records, a child that alone is bigger than a 64 KB
/// response, a node with so many keys that even its shallow listing passes 64 KB, arrays,
/// numbers, unicode and escapes, and the live lock.
fn big_data() -> Value {
    let users: Map<String, Value> = (0..6000)
        .map(|i| {
            (
                format!("user{i:05}"),
                json!({
                    "name": format!("User {i} «ü»"),
                    "email": format!("u{i}@example.com"),
                    "score": i as f64 / 7.0,
                    "tags": [i % 3, "t\"q", null, {"deep": i}],
                    "bio": "x".repeat(150),
                }),
            )
        })
        .collect();
    let huge: Map<String, Value> = (0..2000)
        .map(|i| {
            (
                format!("part{i:04}"),
                json!({"chunk": "y".repeat(90), "n": i}),
            )
        })
        .collect();
    let flags: Map<String, Value> = (0..9000).map(|i| (format!("{i}"), json!(true))).collect();
    json!({
        "users": users,
        "attachments": {"small": {"a": 1}, "huge": huge},
        "flags": flags,
        "config": {"theme": "dark", "list": ["a", "b"]},
        "migrations": {"_lock": {"executorId": "live-holder", "epoch": 3}, "note": "kept"},
    })
}

const LIMIT: usize = 64 * 1024;

#[tokio::test]
async fn a_subtree_30x_the_response_limit_backs_up_and_restores_identically_into_an_empty_database()
{
    let src = db(Some(LIMIT)).await;
    let data = big_data();
    let size = serde_json::to_vec(&data).unwrap().len();
    assert!(size > 30 * LIMIT, "{size} bytes");
    src.emu
        .import_json(
            NS,
            "prod",
            std::io::Cursor::new(serde_json::to_vec(&data).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(
        src.client.get("prod").await.unwrap_err().code,
        ErrorCode::TooBig,
        "one GET of it is refused"
    );

    let dir = tempfile::tempdir().unwrap();
    let progress = Arc::new(Progress::default());
    src.reset_counts().await;
    let file = backup::create_with(
        &src.client,
        &shifted("prod"),
        dir.path(),
        &BackupOptions {
            walk: WalkOptions {
                page_bytes: 16 * 1024,
                in_flight: 3,
            },
            progress: Some(progress.clone()),
            stop: None,
        },
    )
    .await
    .unwrap();
    let counts = src.counts().await;
    let gets = counts["byMethod"]["GET"].as_u64().unwrap();
    assert_eq!(counts["total"].as_u64().unwrap(), gets, "reads only");
    let file_data = read_json(&file)["data"].clone();
    let live = src.data()["prod"].clone();
    assert_same(&file_data, &live, "the file holds exactly the subtree");
    let snap = progress.snapshot();
    assert_eq!(snap.phase, Phase::Backup);
    assert_eq!(snap.requests, gets, "every request counted");
    let live_size = serde_json::to_vec(&live).unwrap().len();
    assert_eq!(snap.bytes as usize, live_size, "{snap:?}");
    assert!(snap.nodes > 6000 * 7, "{snap:?}");
    // Pages of ~16 KB: at least size/16K reads, and not wildly more (splits, shallow listings,
    // the refused GETs of the root and of the two nodes too big to read whole).
    let pages = (size / (16 * 1024)) as u64;
    assert!(
        gets >= pages && gets < pages * 3,
        "{gets} GETs for {size} bytes: {counts}"
    );
    println!(
        "{size} bytes under a {LIMIT}-byte limit: {gets} GETs, file {} bytes",
        std::fs::metadata(&file).unwrap().len()
    );

    // Restore into an empty database (its own emulator, the same low limit for its reads).
    let dst = db(Some(LIMIT)).await;
    assert_eq!(dst.data(), Value::Null);
    let report = backup::restore_with(
        &dst.client,
        &shifted("prod"),
        &file,
        &RestoreOptions {
            chunk_limit: 32 * 1024,
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let mut expected = live.clone();
    expected["migrations"]
        .as_object_mut()
        .unwrap()
        .remove("_lock");
    assert_same(
        &dst.data(),
        &json!({ "prod": expected }),
        "identical content, the backed-up lock not resurrected",
    );
    assert!(report.writes as usize >= size / (32 * 1024), "{report:?}");
    let counts = dst.counts().await;
    assert_eq!(
        counts["byMethod"]["PATCH"].as_u64().unwrap()
            + counts["byMethod"]["PUT"].as_u64().unwrap_or(0),
        report.writes as u64
    );

    // And over the source itself (a live lock there stays as it is).
    src.client
        .set("prod/users/user00001/name", &json!("changed"))
        .await
        .unwrap();
    src.client
        .remove("prod/attachments/huge/part0007")
        .await
        .unwrap();
    src.client
        .set("prod/stale", &json!({"x": 1}))
        .await
        .unwrap();
    backup::restore(&src.client, &shifted("prod"), &file)
        .await
        .unwrap();
    assert_same(
        &src.data()["prod"],
        &live,
        "restored over the changed source",
    );
    src.emu.stop().await.unwrap();
    dst.emu.stop().await.unwrap();
}

#[tokio::test]
async fn a_small_subtree_is_one_get_and_the_same_file_as_before() {
    let d = db(None).await;
    let data = json!({"a": {"b": [1, 2, {"c": "d"}]}, "e": 1.5, "f": "g"});
    d.client.set("prod", &data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    d.reset_counts().await;
    let file = backup::create(&d.client, &shifted("prod"), dir.path())
        .await
        .unwrap();
    let counts = d.counts().await;
    assert_eq!(counts["total"], 1, "{counts}");
    assert_eq!(counts["byPath"]["GET /prod"], 1);
    // The data section is the GET's body byte for byte.
    let text = std::fs::read_to_string(&file).unwrap();
    let body = d
        .http
        .get(format!("{}/prod.json?ns={NS}", d.emu.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(&format!("\"data\":{body}}}")), "{text}");
    d.emu.stop().await.unwrap();
}

/// The page walk on its own: a node whose shallow listing is refused is read with
/// `startAt`/`limitToFirst` pages, one after the other, and a child too big for any response is
/// refused with a message naming it.
#[tokio::test]
async fn a_node_with_too_many_keys_to_list_is_read_in_sequential_pages() {
    let d = db(Some(4 * 1024)).await;
    let many: Map<String, Value> = (0..3000).map(|i| (format!("k{i:04}"), json!(i))).collect();
    d.client
        .set("many", &Value::Object(many.clone()))
        .await
        .unwrap();
    assert_eq!(
        d.client.get_shallow("many").await.unwrap_err().code,
        ErrorCode::TooBig
    );
    d.reset_counts().await;
    let mut w = backup::walk(
        &d.client,
        "many",
        WalkOptions {
            page_bytes: 2 * 1024,
            in_flight: 4,
        },
        Arc::new(Progress::default()),
    );
    let mut text = Vec::new();
    while let Some(piece) = w.next().await {
        text.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(
        serde_json::from_slice::<Value>(&text).unwrap(),
        Value::Object(many)
    );
    let paths = d.counts().await["byPath"]["GET /many"].as_u64().unwrap();
    // 3000 values of ~10 bytes in pages of ~2 KB: about 15 pages, plus the two refused reads.
    assert!((10..40).contains(&paths), "{paths}");

    // One child larger than a response, among too many keys to list: named in the error.
    d.client
        .set("many/k1500", &json!({"big": "z".repeat(6000)}))
        .await
        .unwrap();
    let mut w = backup::walk(
        &d.client,
        "many",
        WalkOptions::default(),
        Arc::new(Progress::default()),
    );
    let err = loop {
        match w.next().await {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e,
            None => panic!("the walk should fail"),
        }
    };
    assert_eq!(err.code, ErrorCode::TooBig);
    assert!(
        err.message.contains("/many") && err.message.contains("k1499"),
        "{}",
        err.message
    );
    d.emu.stop().await.unwrap();
}

/// Restores whose data does not fit a write, interrupted: the error says how far it got, and
/// running it again finishes it.
#[tokio::test]
async fn an_interrupted_restore_says_what_was_written_and_a_second_run_finishes_it() {
    let d = db(Some(LIMIT)).await;
    let data = big_data();
    d.emu
        .import_json(
            NS,
            "prod",
            std::io::Cursor::new(serde_json::to_vec(&data).unwrap()),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = backup::create(&d.client, &shifted("prod"), dir.path())
        .await
        .unwrap();
    let live = d.data()["prod"].clone();
    d.client.remove("prod/users").await.unwrap();
    // The database becomes unreachable after a few writes.
    let progress = Arc::new(Progress::default());
    let opts = RestoreOptions {
        chunk_limit: 32 * 1024,
        progress: Some(progress.clone()),
        ..RestoreOptions::default()
    };
    let outage = {
        let (progress, http, url) = (progress.clone(), d.http.clone(), d.emu.url());
        tokio::spawn(async move {
            for _ in 0..2000 {
                if progress.snapshot().writes >= 5 {
                    http.put(format!("{url}/.emulator/faults"))
                        .json(&json!({"unavailableProbability": 1.0}))
                        .send()
                        .await
                        .unwrap();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let err = backup::restore_with(&d.client, &shifted("prod"), &file, &opts)
        .await
        .unwrap_err();
    outage.await.unwrap();
    assert_eq!(err.code, ErrorCode::RestoreFailed);
    let msg = &err.message;
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(
        regex::Regex::new(r"stopped after \d+ write\(s\), \d+ bytes, the last at /prod/\S+")
            .unwrap()
            .is_match(msg),
        "{msg}"
    );
    assert!(msg.contains("run the restore again"), "{msg}");
    assert!(
        d.data()["prod"]["users"].as_object().map_or(0, Map::len) < 6000,
        "failed before the end"
    );

    d.lever(
        "PUT",
        "faults",
        Some(json!({"unavailableProbability": 0.0})),
    )
    .await;
    backup::restore_with(&d.client, &shifted("prod"), &file, &opts)
        .await
        .unwrap();
    assert_same(&d.data()["prod"], &live, "a second run finishes it");

    // A stop request (the CLI sets it on SIGINT/SIGTERM) stops before the next write.
    d.client.remove("prod/users").await.unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let err = backup::restore_with(
        &d.client,
        &shifted("prod"),
        &file,
        &RestoreOptions {
            stop: Some(stop),
            ..opts.clone()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Interrupted);
    assert!(err.message.contains("interrupted"), "{}", err.message);
    d.emu.stop().await.unwrap();
}

/// The seam for rehearsals (issue 14): a walk of a subtree in one database, loaded as it arrives
/// into an emulator of its own, gives the same content.
#[tokio::test]
async fn a_walk_streams_into_another_emulator() {
    let src = db(Some(LIMIT)).await;
    let data = big_data();
    src.emu
        .import_json(
            NS,
            "prod",
            std::io::Cursor::new(serde_json::to_vec(&data).unwrap()),
        )
        .await
        .unwrap();
    let copy = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let walk = backup::walk(
        &src.client,
        "prod",
        WalkOptions::default(),
        Arc::new(Progress::default()),
    );
    copy.import_stream("rehearsal", "shifted/prod", walk.into_stream())
        .await
        .unwrap();
    assert_same(
        &copy.export()["rehearsal"]["shifted"]["prod"],
        &src.data()["prod"],
        "the copy",
    );
    // A walk that fails (the source denies reads) fails the import, which writes nothing.
    src.lever("PUT", "deny", Some(json!({"paths": ["prod/users"]})))
        .await;
    let walk = backup::walk(
        &src.client,
        "prod",
        WalkOptions::default(),
        Arc::new(Progress::default()),
    );
    let err = copy
        .import_stream("rehearsal", "other", walk.into_stream())
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::PermissionDenied, "{err:?}");
    assert_eq!(copy.export()["rehearsal"].get("other"), None);
    src.emu.stop().await.unwrap();
    copy.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Restore memory: a child process restores a file and reports its peak RSS.

/// Run in a child process (see below): restore `MSR_RSS_FILE` into the emulator at
/// `MSR_RSS_URL` and print the peak RSS.
#[tokio::test]
async fn rss_child() {
    let (Ok(file), Ok(url)) = (std::env::var("MSR_RSS_FILE"), std::env::var("MSR_RSS_URL")) else {
        return; // only meaningful as a child process
    };
    let client = Client::new(ClientOptions {
        url: DatabaseUrl::parse(&url).unwrap(),
        auth: Auth::EmulatorOwner,
        retry: RetryPolicy::none(),
        request_timeout: Duration::from_secs(120),
        connect_timeout: None,
        on_retry: None,
        clock: Arc::new(SystemClock),
        auth_variable_override: None,
    })
    .unwrap();
    backup::restore_with(
        &client,
        &shifted("prod"),
        Path::new(&file),
        &RestoreOptions {
            chunk_limit: 1024 * 1024,
            ..RestoreOptions::default()
        },
    )
    .await
    .unwrap();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap();
    println!("PEAK_RSS_KB={hwm}");
}

fn write_backup(dir: &Path, users: usize) -> PathBuf {
    let data: Map<String, Value> = (0..users)
        .map(|i| {
            (
                format!("user{i:07}"),
                json!({"name": format!("User {i}"), "bio": "b".repeat(200), "n": i}),
            )
        })
        .collect();
    let path = dir.join(format!("b{users}.json"));
    let meta = backup::Metadata {
        version: backup::FORMAT_VERSION,
        tool: backup::TOOL.into(),
        created_at: "2024-01-01T00:00:00.000Z".into(),
        database_url: None,
        shift: Some("prod".into()),
        path: "/prod".into(),
        excluded: backup::EXCLUDED.iter().map(|s| s.to_string()).collect(),
    };
    backup::write_backup_file(&path, &meta, &json!({"users": data})).unwrap();
    path
}

fn child_peak_rss_kb(file: &Path, url: &str) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rss_child", "--nocapture", "--test-threads=1"])
        .env("MSR_RSS_FILE", file)
        .env("MSR_RSS_URL", url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = text
        .find("PEAK_RSS_KB=")
        .unwrap_or_else(|| panic!("no peak in {text}"));
    text[at + "PEAK_RSS_KB=".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// A restore's peak memory does not grow with the file: 4x the data, about the same peak.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_peak_memory_does_not_grow_with_the_file() {
    let d = db(None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}?ns={NS}", d.emu.url());
    let (small, large) = (
        write_backup(dir.path(), 15_000),
        write_backup(dir.path(), 60_000),
    );
    let sizes = [
        std::fs::metadata(&small).unwrap().len() / 1024,
        std::fs::metadata(&large).unwrap().len() / 1024,
    ];
    let small_kb = child_peak_rss_kb(&small, &url);
    assert_eq!(d.data()["prod"]["users"].as_object().unwrap().len(), 15_000);
    let large_kb = child_peak_rss_kb(&large, &url);
    assert_eq!(d.data()["prod"]["users"].as_object().unwrap().len(), 60_000);
    let grew = large_kb as i64 - small_kb as i64;
    println!(
        "restore peak RSS: {small_kb} KB for a {} KB file, {large_kb} KB for a {} KB file",
        sizes[0], sizes[1]
    );
    // The file grows by ~11 MB; a restore holding the data would grow by several times that.
    assert!(
        grew < (sizes[1] - sizes[0]) as i64 / 4,
        "peak grew by {grew} KB while the file grew by {} KB ({small_kb} -> {large_kb})",
        sizes[1] - sizes[0]
    );
    d.emu.stop().await.unwrap();
}
