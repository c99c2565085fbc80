//! Runner integration tests against the embedded emulator. Scripts are Rust closures behind a
//! `FakeHost` (keyed by file name); the files themselves are real files in a temp dir, so
//! discovery and checksums are real.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod common;

use futures_util::future::BoxFuture;
use msr_firebase::config::{BackupMode, Config, DuplicateTimestampMode, RollbackStrategy};
use msr_firebase::emulator::{Emulator, EmulatorOptions};
use msr_firebase::history::{History, HistoryRecord};
use msr_firebase::lock::{LockService, WaitPolicy};
use msr_firebase::rtdb::Client;
use msr_firebase::runner::{
    IssueType, LogLevel, Method, MigrationStatus, RunOptions, Runner, ScriptDb, ScriptHost,
    ScriptMeta, StopFlag,
};
use msr_firebase::{Error, ErrorCode, Result};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// FakeHost

type ScriptFn = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value>> + Send + Sync>;

#[derive(Clone, Default)]
struct FakeScript {
    up: Option<ScriptFn>,
    down: Option<ScriptFn>,
    load_error: Option<String>,
}

#[derive(Clone, Default)]
struct FakeHost {
    scripts: Arc<Mutex<HashMap<String, FakeScript>>>,
    /// "up V..." / "down V..." in call order.
    calls: Arc<Mutex<Vec<String>>>,
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

impl FakeHost {
    fn set(&self, name: &str, s: FakeScript) {
        self.scripts.lock().unwrap().insert(name.to_string(), s);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn clear_calls(&self) {
        self.calls.lock().unwrap().clear();
    }
}

impl ScriptHost for FakeHost {
    async fn load(&self, file: &Path) -> Result<ScriptMeta> {
        let s = self.scripts.lock().unwrap().get(&file_name(file)).cloned();
        match s {
            None => Err(Error::new(
                ErrorCode::ScriptFailed,
                format!("Cannot find module '{}'", file.display()),
            )),
            Some(s) => match s.load_error {
                Some(e) => Err(Error::new(ErrorCode::ScriptFailed, e)),
                None => Ok(ScriptMeta {
                    has_up: s.up.is_some(),
                    has_down: s.down.is_some(),
                    up_is_async: true,
                }),
            },
        }
    }

    async fn run(&self, file: &Path, method: Method, info: &Value, _: &ScriptDb) -> Result<Value> {
        let name = file_name(file);
        let s = self.scripts.lock().unwrap().get(&name).cloned();
        let s = s.ok_or_else(|| {
            Error::new(
                ErrorCode::ScriptFailed,
                format!("Cannot find module {name}"),
            )
        })?;
        let f = match method {
            Method::Up => s.up,
            Method::Down => s.down,
        };
        let f = f.ok_or_else(|| {
            Error::new(ErrorCode::ScriptFailed, format!("{name} has no {method:?}"))
        })?;
        self.calls.lock().unwrap().push(format!(
            "{} {name}",
            if method == Method::Up { "up" } else { "down" }
        ));
        f(info.clone()).await
    }
}

fn func<F, Fut>(f: F) -> ScriptFn
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value>> + Send + 'static,
{
    Arc::new(move |info| Box::pin(f(info)))
}

/// up: set `node` to `value`; down: remove `node`.
fn set_node(client: &Client, node: &str, value: Value) -> FakeScript {
    let (c1, c2) = (client.clone(), client.clone());
    let (n1, n2) = (node.to_string(), node.to_string());
    FakeScript {
        up: Some(func(move |_| {
            let (c, n, v) = (c1.clone(), n1.clone(), value.clone());
            async move {
                c.set(&n, &v).await?;
                Ok(json!(format!("created {n}")))
            }
        })),
        down: Some(func(move |_| {
            let (c, n) = (c2.clone(), n2.clone());
            async move {
                c.remove(&n).await?;
                Ok(Value::Null)
            }
        })),
        load_error: None,
    }
}

fn failing(msg: &'static str) -> ScriptFn {
    func(move |_| async move { Err(Error::new(ErrorCode::ScriptFailed, msg)) })
}

// ---------------------------------------------------------------------------------------------
// Environment

const USERS: &str = "V202501010001_create_users.js";
const POSTS: &str = "V202501010002_create_posts.js";
const COMMENTS: &str = "V202501010003_create_comments.js";
const SETTINGS: &str = "V202501010004_create_settings.js";

type Logs = Arc<Mutex<Vec<(LogLevel, String)>>>;

struct Env {
    emu: Emulator,
    client: Client,
    dir: tempfile::TempDir,
    cfg: Config,
    host: FakeHost,
    logs: Logs,
    ns: String,
}

fn client_for(url: &str) -> Client {
    common::owner_client(url, 2)
}

impl Env {
    async fn new(shift: Option<&str>) -> Env {
        let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
        let ns = "runner-test".to_string();
        let client = client_for(&format!("{}?ns={ns}", emu.url()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        let cfg = Config {
            folder: "migrations".into(),
            shift: shift.map(String::from),
            backup: msr_firebase::config::BackupConfig {
                folder: "backups".into(),
                ..Default::default()
            },
            ..Config::default()
        };
        Env {
            emu,
            client,
            dir,
            cfg,
            host: FakeHost::default(),
            logs: Arc::default(),
            ns,
        }
    }

    fn folder(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    fn write(&self, name: &str) {
        std::fs::write(
            self.folder().join(name),
            format!("// {name}\nexport default class {{ async up() {{}} }}\n"),
        )
        .unwrap();
    }

    fn path(&self, p: &str) -> String {
        self.cfg.build_path(p)
    }

    /// The four smoke scripts (files + closures).
    fn smoke_scripts(&self) {
        let c = &self.client;
        self.add(USERS, set_node(c, &self.path("users"), json!({"user1": {"name": "Alice", "role": "admin"}, "user2": {"name": "Bob"}, "user3": {"name": "Charlie"}})));
        self.add(
            POSTS,
            set_node(
                c,
                &self.path("posts"),
                json!({"post1": {"title": "First Post"}, "post2": {"title": "Second"}}),
            ),
        );
        self.add(
            COMMENTS,
            set_node(
                c,
                &self.path("comments"),
                json!({"comment1": "a", "comment2": "b", "comment3": "c"}),
            ),
        );
        self.add(SETTINGS, set_node(c, &self.path("settings"), json!({"app": {"name": "MSR Firebase Test"}, "features": {"x": true}, "limits": {"n": 5}})));
    }

    fn add(&self, name: &str, s: FakeScript) {
        self.write(name);
        self.host.set(name, s);
    }

    fn lock_service(&self) -> LockService {
        LockService::new(
            self.client.clone(),
            self.cfg.shift_path().as_deref(),
            self.cfg.lock_options(),
        )
    }

    fn runner(&self) -> Runner<FakeHost> {
        let logs = self.logs.clone();
        Runner::new(
            self.cfg.clone(),
            self.client.clone(),
            self.host.clone(),
            self.dir.path().to_path_buf(),
        )
        .with_log(Arc::new(move |lvl, msg| {
            logs.lock().unwrap().push((lvl, msg.to_string()))
        }))
    }

    fn locked_runner(&self) -> Runner<FakeHost> {
        self.runner().with_lock(Some(self.lock_service()))
    }

    async fn get(&self, p: &str) -> Value {
        self.client.get(&self.path(p)).await.unwrap()
    }

    async fn history(&self) -> Vec<HistoryRecord> {
        History::new(self.client.clone(), &self.cfg)
            .read()
            .await
            .unwrap()
            .0
    }

    async fn history_names(&self) -> Vec<String> {
        self.history().await.into_iter().map(|r| r.name).collect()
    }

    /// The namespace's data, exactly.
    fn raw_export(&self) -> Value {
        self.emu
            .export()
            .get(&self.ns)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The namespace's data without the lock node (its release tombstone is the lock's
    /// business; the lock tests cover it).
    fn export(&self) -> Value {
        let mut v = self.raw_export();
        let base = match self.cfg.shift_path() {
            Some(s) => format!("/{s}"),
            None => String::new(),
        };
        if let Some(node) = v.pointer_mut(&base) {
            if let Some(m) = node.get_mut("migrations").and_then(Value::as_object_mut) {
                m.remove("_lock");
                if m.is_empty() {
                    node.as_object_mut().unwrap().remove("migrations");
                }
            }
        }
        v
    }

    fn logged(&self, level: LogLevel, needle: &str) -> bool {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .any(|(l, m)| *l == level && m.contains(needle))
    }

    fn log_text(&self) -> String {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .map(|(l, m)| format!("{l:?}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn lever(&self, method: reqwest::Method, name: &str) -> Value {
        let r = reqwest::Client::new()
            .request(method, format!("{}/.emulator/{name}", self.emu.url()))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap_or(Value::Null)
    }

    async fn reset_counts(&self) {
        self.lever(reqwest::Method::DELETE, "requests").await;
    }

    /// Number of write requests (anything but GET) since the last reset.
    async fn writes(&self) -> u64 {
        let counts = self.lever(reqwest::Method::GET, "requests").await;
        counts["byMethod"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "GET")
                    .map(|(_, v)| v.as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }
}

fn target(t: u64) -> RunOptions {
    RunOptions {
        target: Some(t),
        ..RunOptions::default()
    }
}

fn names(infos: &[msr_firebase::runner::MigrationInfo]) -> Vec<&str> {
    infos.iter().map(|i| i.name.as_str()).collect()
}

// ---------------------------------------------------------------------------------------------
// The predecessor's smoke scenario

#[tokio::test]
async fn smoke_scenario_up_down_up() {
    let env = Env::new(Some("/test-smoke")).await;
    env.smoke_scripts();
    let runner = env.locked_runner();

    let r = runner.migrate(target(202501010002)).await.unwrap();
    assert!(r.success);
    assert_eq!(names(&r.executed), [USERS, POSTS]);
    assert!(r.migrated.is_empty());
    assert_eq!(env.history_names().await, [USERS, POSTS]);
    assert_eq!(env.get("users/user1/name").await, json!("Alice"));
    assert_eq!(env.get("posts/post1/title").await, json!("First Post"));
    assert_eq!(env.get("comments").await, Value::Null);
    let raw = env.client.get("test-smoke/schema_version").await.unwrap();
    let rec = &raw["v202501010001"];
    assert_eq!(rec["name"], json!(USERS));
    assert_eq!(rec["timestamp"], json!(202501010001u64));
    assert_eq!(rec["result"], json!("created /test-smoke/users"));
    assert!(rec["startedAt"].is_i64() && rec["finishedAt"].is_i64() && rec["duration"].is_i64());
    assert!(rec["checksum"].as_str().unwrap().len() == 64);
    assert!(
        rec["executorId"].is_string() && rec["lockEpoch"].is_u64() && rec["username"].is_string()
    );
    assert!(rec["filepath"].as_str().unwrap().ends_with(USERS));

    let r = runner.migrate(RunOptions::default()).await.unwrap();
    assert_eq!(names(&r.executed), [COMMENTS, SETTINGS]);
    assert_eq!(names(&r.migrated), [USERS, POSTS]);
    assert_eq!(
        env.history_names().await,
        [USERS, POSTS, COMMENTS, SETTINGS]
    );
    assert_eq!(
        env.get("settings/app/name").await,
        json!("MSR Firebase Test")
    );

    let r = runner.migrate(RunOptions::default()).await.unwrap();
    assert!(r.success && r.executed.is_empty());
    assert!(
        env.logged(LogLevel::Info, "Nothing to do"),
        "{}",
        env.log_text()
    );
    assert!(env.logged(LogLevel::Info, &format!("[1/2] {USERS} (")));
    assert!(env.logged(LogLevel::Info, &format!("[2/2] {SETTINGS} (")));

    let r = runner
        .down(202501010003, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&r.executed), [SETTINGS]);
    assert_eq!(env.get("settings").await, Value::Null);
    assert_eq!(env.history_names().await, [USERS, POSTS, COMMENTS]);

    let r = runner
        .down(202501010001, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&r.executed), [COMMENTS, POSTS]);
    assert_eq!(env.history_names().await, [USERS]);
    assert_eq!(env.get("posts").await, Value::Null);
    assert_eq!(env.get("users/user2/name").await, json!("Bob"));

    let r = runner.migrate(RunOptions::default()).await.unwrap();
    assert_eq!(names(&r.executed), [POSTS, COMMENTS, SETTINGS]);
    let h = env.history().await;
    assert_eq!(h.len(), 4);
    assert!(h.iter().all(|r| r.started_at.is_some()
        && r.finished_at.is_some()
        && r.key == format!("v{}", r.timestamp)));

    // Lock released after every run.
    assert!(env.lock_service().status().await.unwrap().is_none());
    // list shows everything executed.
    let l = runner.list().await.unwrap();
    assert_eq!(l.executed, 4);
    assert!(l
        .migrations
        .iter()
        .all(|m| m.status == MigrationStatus::Executed && m.executed_at.is_some()));

    // down to 0 = everything.
    let r = runner.down(0, RunOptions::default()).await.unwrap();
    assert_eq!(r.executed.len(), 4);
    assert!(env.history().await.is_empty());
    assert_eq!(env.get("users").await, Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Predecessor-format history

#[tokio::test]
async fn predecessor_history_under_push_ids_is_respected() {
    let env = Env::new(None).await;
    env.smoke_scripts();
    let folder = env.folder();
    env.client
        .set(
            "schema_version",
            &json!({
                "-NbC1aaaaaaaaaaaaaaa": {"name": USERS, "filepath": folder.join(USERS).to_string_lossy(), "timestamp": 202501010001u64,
                                         "startedAt": 1700000000000i64, "finishedAt": 1700000000100i64, "username": "ci", "result": "ok",
                                         "checksum": "0000"},
                "-NbC1bbbbbbbbbbbbbbb": {"name": POSTS, "filepath": folder.join(POSTS).to_string_lossy(), "timestamp": 202501010002u64,
                                         "startedAt": 1700000000200i64, "finishedAt": 1700000000300i64, "username": "ci", "result": "ok"},
                "junk": "not a record",
            }),
        )
        .await
        .unwrap();
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert_eq!(names(&r.executed), [COMMENTS, SETTINGS]);
    assert_eq!(names(&r.migrated), [USERS, POSTS]);
    assert_eq!(
        env.host.calls(),
        [format!("up {COMMENTS}"), format!("up {SETTINGS}")]
    );
    assert!(
        env.logged(LogLevel::Warn, "schema_version/junk"),
        "{}",
        env.log_text()
    );
    let keys: Vec<String> = env.history().await.into_iter().map(|r| r.key).collect();
    assert_eq!(
        keys,
        [
            "-NbC1aaaaaaaaaaaaaaa",
            "-NbC1bbbbbbbbbbbbbbb",
            "v202501010003",
            "v202501010004"
        ]
    );

    // down removes the predecessor's records by their push ids.
    let r = env
        .runner()
        .down(202501010001, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&r.executed), [SETTINGS, COMMENTS, POSTS]);
    let raw = env.client.get("schema_version").await.unwrap();
    assert!(raw.get("-NbC1bbbbbbbbbbbbbbb").is_none() && raw.get("-NbC1aaaaaaaaaaaaaaa").is_some());

    // An out-of-order file is ignored (warned about), never run.
    env.add(
        "V202412310001_late.js",
        set_node(&env.client, "late", json!(1)),
    );
    env.host.clear_calls();
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert_eq!(names(&r.ignored), ["V202412310001_late.js"]);
    assert!(!env.host.calls().iter().any(|c| c.contains("late")));
    assert!(env.logged(LogLevel::Warn, "V202412310001_late.js"));
}

// ---------------------------------------------------------------------------------------------
// Failures and rollback strategies

/// users, posts ok; comments writes a partial node then throws; settings never runs.
fn failing_setup(env: &Env, comments_has_down: bool, posts_down_fails: bool) {
    env.smoke_scripts();
    let c = env.client.clone();
    let p = env.path("comments/comment1");
    let mut comments = set_node(&env.client, &env.path("comments"), json!(null));
    comments.up = Some(func(move |_| {
        let (c, p) = (c.clone(), p.clone());
        async move {
            c.set(&p, &json!("partial")).await?;
            Err(Error::new(ErrorCode::ScriptFailed, "TypeError: boom"))
        }
    }));
    if !comments_has_down {
        comments.down = None;
    }
    env.host.set(COMMENTS, comments);
    if posts_down_fails {
        let mut posts = set_node(
            &env.client,
            &env.path("posts"),
            json!({"post1": {"title": "First Post"}}),
        );
        posts.down = Some(failing("posts down exploded"));
        env.host.set(POSTS, posts);
    }
}

async fn seed(env: &Env) -> Value {
    env.client
        .set(&env.path("existing"), &json!({"keep": 1}))
        .await
        .unwrap();
    env.export()
}

/// `rollbackStrategy` and `backupMode` by their names, as a config file gives them.
fn with(env: &mut Env, strategy: &str, mode: &str) {
    env.cfg.rollback_strategy = serde_json::from_value(json!(strategy)).unwrap();
    env.cfg.backup_mode = serde_json::from_value(json!(mode)).unwrap();
}

/// The backup taken before a run (backupMode full) goes through the same walk as `backup
/// create`, and the rollback restore streams: both work for a `{shift}` the service would refuse
/// to send in one response.
#[tokio::test]
async fn the_pre_migrate_backup_and_its_restore_handle_data_bigger_than_one_response() {
    let mut env = Env::new(Some("app")).await;
    with(&mut env, "backup", "full");
    failing_setup(&env, true, false);
    let users: serde_json::Map<String, Value> = (0..3000)
        .map(|i| {
            (
                format!("u{i:05}"),
                json!({"name": format!("User {i}"), "bio": "b".repeat(250)}),
            )
        })
        .collect();
    env.client
        .set(&env.path("existing"), &Value::Object(users))
        .await
        .unwrap();
    let before = env.export();
    let limit = 64 * 1024;
    reqwest::Client::new()
        .put(format!("{}/.emulator/limits", env.emu.url()))
        .json(&json!({ "responseBytes": limit }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        env.client.get(&env.path("")).await.unwrap_err().code,
        ErrorCode::TooBig,
        "one read of the shift is refused"
    );
    let out = env
        .locked_runner()
        .migrate_outcome(RunOptions::default())
        .await;
    assert_eq!(out.error.unwrap().code, ErrorCode::ScriptFailed);
    assert_eq!(env.export(), before, "restored from the walked backup");
    let file = std::fs::read_dir(env.dir.path().join("backups"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(std::fs::metadata(&file).unwrap().len() > 10 * limit as u64);
}

#[tokio::test]
async fn failure_with_backup_strategy_restores_data_and_history() {
    let mut env = Env::new(Some("app")).await;
    with(&mut env, "backup", "full");
    failing_setup(&env, true, false);
    let before = seed(&env).await;
    let out = env
        .locked_runner()
        .migrate_outcome(RunOptions::default())
        .await;
    let e = out.error.unwrap();
    assert_eq!(e.code, ErrorCode::ScriptFailed, "{}", e.message);
    assert_eq!(
        e.message,
        format!("Migration {COMMENTS} failed: TypeError: boom")
    );
    assert!(!out.result.success);
    assert_eq!(names(&out.result.executed), [USERS, POSTS]);
    assert_eq!(out.result.errors, std::slice::from_ref(&e.message));
    assert_eq!(
        env.export(),
        before,
        "database restored to the state before the run"
    );
    assert!(env.history().await.is_empty());
    assert!(
        env.logged(LogLevel::Info, "✓ Database restored from backup"),
        "{}",
        env.log_text()
    );
    assert!(!env.host.calls().iter().any(|c| c.contains(SETTINGS)));
    assert!(
        std::fs::read_dir(env.dir.path().join("backups"))
            .unwrap()
            .count()
            >= 1
    );
}

#[tokio::test]
async fn failure_with_down_strategy_undoes_and_removes_records() {
    let mut env = Env::new(Some("app")).await;
    with(&mut env, "down", "manual");
    failing_setup(&env, true, false);
    let before = seed(&env).await;
    let e = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert_eq!(
        env.host.calls(),
        [
            format!("up {USERS}"),
            format!("up {POSTS}"),
            format!("up {COMMENTS}"),
            format!("down {COMMENTS}"),
            format!("down {POSTS}"),
            format!("down {USERS}")
        ]
    );
    assert!(
        env.history().await.is_empty(),
        "records of undone migrations are removed"
    );
    assert_eq!(env.export(), before);
    assert!(
        !env.dir.path().join("backups").exists(),
        "no backup for strategy down"
    );
}

#[tokio::test]
async fn failure_with_down_strategy_skips_scripts_without_down() {
    let mut env = Env::new(None).await;
    with(&mut env, "down", "full");
    failing_setup(&env, true, false);
    let mut users = set_node(&env.client, "users", json!({"user1": {"name": "Alice"}}));
    users.down = None;
    env.host.set(USERS, users);
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert!(
        env.logged(LogLevel::Warn, &format!("{USERS} has no down() method")),
        "{}",
        env.log_text()
    );
    // users stays (data and record: consistent), posts undone.
    assert_eq!(env.history_names().await, [USERS]);
    assert_eq!(env.get("users/user1/name").await, json!("Alice"));
    assert_eq!(env.get("posts").await, Value::Null);
    assert_eq!(env.get("comments").await, Value::Null);
}

#[tokio::test]
async fn failure_with_both_falls_back_to_backup_when_a_down_throws() {
    let mut env = Env::new(Some("app")).await;
    with(&mut env, "both", "full");
    failing_setup(&env, true, true);
    let before = seed(&env).await;
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed, "{}", e.message);
    assert!(
        env.logged(LogLevel::Error, "posts down exploded"),
        "{}",
        env.log_text()
    );
    assert_eq!(env.export(), before);
    assert!(env.history().await.is_empty());
}

#[tokio::test]
async fn failure_with_both_and_no_backup_is_rollback_failed_with_both_causes() {
    let mut env = Env::new(Some("app")).await;
    with(&mut env, "both", "manual");
    failing_setup(&env, true, true);
    seed(&env).await;
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::RollbackFailed);
    assert!(
        e.message
            .contains(&format!("Migration {COMMENTS} failed: TypeError: boom")),
        "{}",
        e.message
    );
    assert!(e.message.contains("posts down exploded"), "{}", e.message);
    // comments undone, posts down failed: posts keeps its record and data.
    assert_eq!(env.history_names().await, [USERS, POSTS]);
}

#[tokio::test]
async fn failure_with_down_strategy_and_failing_down_is_rollback_failed() {
    let mut env = Env::new(None).await;
    with(&mut env, "down", "manual");
    failing_setup(&env, true, true);
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::RollbackFailed);
    assert!(
        e.message.contains("TypeError: boom") && e.message.contains("posts down exploded"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn failure_with_none_strategy_leaves_everything_and_warns() {
    let mut env = Env::new(None).await;
    with(&mut env, "none", "manual");
    failing_setup(&env, true, false);
    let e = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    assert!(env.logged(
        LogLevel::Warn,
        "No rollback configured - database may be in inconsistent state"
    ));
    assert_eq!(env.history_names().await, [USERS, POSTS]);
    assert_eq!(env.get("comments/comment1").await, json!("partial"));
    assert!(
        env.lock_service().status().await.unwrap().is_none(),
        "lock released on error"
    );
}

#[tokio::test]
async fn restore_only_uses_the_existing_backup() {
    let mut env = Env::new(Some("app")).await;
    failing_setup(&env, true, false);
    let before = seed(&env).await;
    let cfg = env.cfg.clone();
    let path = msr_firebase::backup::create(&env.client, &cfg, env.dir.path())
        .await
        .unwrap();
    with(&mut env, "backup", "restore_only");
    env.cfg.backup.existing_backup_path = Some(path.to_string_lossy().into_owned());
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed, "{}", e.message);
    assert_eq!(env.export(), before);
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("backups"))
            .unwrap()
            .count(),
        1,
        "no new backup in restore_only"
    );
}

// ---------------------------------------------------------------------------------------------
// Validation errors leave the database unchanged

#[tokio::test]
async fn bad_inputs_fail_with_the_right_code_and_change_nothing() {
    let mut env = Env::new(None).await;
    env.smoke_scripts();
    seed(&env).await;
    let before = env.raw_export();

    // Bad targets.
    for t in [0u64, 2025, 1_000_000_000_000] {
        let e = env.runner().migrate(target(t)).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::ConfigInvalid, "{t}");
        assert!(e.message.contains("12-digit"), "{}", e.message);
    }
    let e = env
        .runner()
        .down(77, RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ConfigInvalid);

    // Missing up.
    env.host.set(
        COMMENTS,
        FakeScript {
            up: None,
            ..set_node(&env.client, "x", json!(1))
        },
    );
    let e = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(
        e.message.contains("MISSING_UP_METHOD") && e.message.contains(COMMENTS),
        "{}",
        e.message
    );

    // Load error.
    env.host.set(
        COMMENTS,
        FakeScript {
            load_error: Some("SyntaxError: Unexpected token".into()),
            ..Default::default()
        },
    );
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(
        e.message.contains("IMPORT_FAILED")
            && e.message.contains(COMMENTS)
            && e.message.contains("SyntaxError"),
        "{}",
        e.message
    );
    assert!(env.host.calls().is_empty(), "nothing ran");

    // Missing folder.
    env.cfg.folder = "nope".into();
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ConfigInvalid);
    assert!(
        e.message
            .contains(&env.dir.path().join("nope").display().to_string())
            && e.message.contains("--folder"),
        "{}",
        e.message
    );

    // Empty folder: a warning, not an error.
    std::fs::create_dir_all(env.dir.path().join("empty")).unwrap();
    env.cfg.folder = "empty".into();
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert!(r.executed.is_empty());
    assert!(env.logged(LogLevel::Warn, "Migration scripts folder is empty"));
    assert!(env.logged(
        LogLevel::Warn,
        &env.dir.path().join("empty").display().to_string()
    ));

    // Bad file names: warnings naming the file and the pattern.
    env.cfg.folder = "odd".into();
    std::fs::create_dir_all(env.dir.path().join("odd")).unwrap();
    for n in ["V2025_x.js", "v202501010001_x.js", "V202501010001.js"] {
        std::fs::write(env.dir.path().join("odd").join(n), "x").unwrap();
    }
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert!(r.executed.is_empty());
    for n in ["V2025_x.js", "v202501010001_x.js", "V202501010001.js"] {
        assert!(env.logged(LogLevel::Warn, n), "{n}: {}", env.log_text());
    }
    assert!(env.logged(LogLevel::Warn, "expected pattern"));

    assert_eq!(
        env.raw_export(),
        before,
        "nothing written by any failed run"
    );
}

#[tokio::test]
async fn duplicate_timestamps_per_mode() {
    let mut env = Env::new(None).await;
    env.add("V202501010001_a.js", set_node(&env.client, "a", json!(1)));
    env.add("V202501010001_b.js", set_node(&env.client, "b", json!(2)));
    let before = env.export();

    env.cfg.duplicate_timestamp_mode = DuplicateTimestampMode::Error;
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(
        e.message
            .starts_with("Duplicate migration timestamp detected: 202501010001"),
        "{}",
        e.message
    );
    assert!(e.message.contains("V202501010001_a.js") && e.message.contains("V202501010001_b.js"));
    assert_eq!(env.export(), before);
    let report = env.runner().validate().await.unwrap();
    assert!(report
        .general
        .iter()
        .any(|i| i.code == "DUPLICATE_TIMESTAMP" && i.kind == IssueType::Error));

    env.cfg.duplicate_timestamp_mode = DuplicateTimestampMode::Ignore;
    env.runner().validate().await.unwrap();
    assert!(!env.logged(LogLevel::Warn, "Duplicate migration timestamp"));

    env.cfg.duplicate_timestamp_mode = DuplicateTimestampMode::Warn;
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert!(env.logged(
        LogLevel::Warn,
        "Duplicate migration timestamp detected: 202501010001"
    ));
    assert_eq!(r.executed.len(), 2, "both run, each recorded once");
    let keys: Vec<String> = env.history().await.into_iter().map(|r| r.key).collect();
    assert_eq!(keys, ["v202501010001", "v202501010001_V202501010001_b_js"]);
    let r = env.runner().migrate(RunOptions::default()).await.unwrap();
    assert!(r.executed.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Stop flag, lock loss

#[tokio::test]
async fn stop_flag_mid_run_finishes_and_records_the_current_script_only() {
    let env = Env::new(None).await;
    env.smoke_scripts();
    let stop = StopFlag::default();
    let (s, c) = (stop.clone(), env.client.clone());
    env.host.set(
        POSTS,
        FakeScript {
            up: Some(func(move |_| {
                let (s, c) = (s.clone(), c.clone());
                async move {
                    s.request(); // SIGINT arrives while this script runs
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    c.set("posts", &json!({"p": 1})).await?;
                    Ok(json!("ok"))
                }
            })),
            ..Default::default()
        },
    );
    let out = env
        .locked_runner()
        .with_stop(stop)
        .migrate_outcome(RunOptions::default())
        .await;
    let e = out.error.unwrap();
    assert_eq!(e.code, ErrorCode::Interrupted, "{}", e.message);
    assert_eq!(names(&out.result.executed), [USERS, POSTS]);
    assert_eq!(env.history_names().await, [USERS, POSTS]);
    assert_eq!(env.get("posts/p").await, json!(1));
    assert_eq!(env.get("comments").await, Value::Null);
    assert!(
        env.lock_service().status().await.unwrap().is_none(),
        "lock released"
    );
}

#[tokio::test]
async fn lock_lost_mid_run_stops_and_writes_nothing_more() {
    let env = Env::new(Some("app")).await;
    env.smoke_scripts();
    let mut runner = env.locked_runner();
    runner.cfg.rollback_strategy = RollbackStrategy::Down; // would write if it (wrongly) rolled back
    let lock = env.lock_service();
    let snapshot: Arc<Mutex<Option<Value>>> = Arc::default();
    let (c, snap, emu_url) = (env.client.clone(), snapshot.clone(), env.emu.url());
    let ns = env.ns.clone();
    env.host.set(
        POSTS,
        FakeScript {
            up: Some(func(move |_| {
                let (c, lock, snap, emu_url, ns) = (
                    c.clone(),
                    lock.clone(),
                    snap.clone(),
                    emu_url.clone(),
                    ns.clone(),
                );
                async move {
                    c.set("app/posts", &json!({"p": 1})).await?;
                    lock.force_release().await?; // an operator force-releases the lock
                    let export: Value = reqwest::get(format!("{emu_url}/.emulator/export"))
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    *snap.lock().unwrap() = Some(export[&ns].clone());
                    Ok(json!("ok"))
                }
            })),
            down: Some(failing("must not run")),
            load_error: None,
        },
    );
    let out = runner.migrate_outcome(RunOptions::default()).await;
    let e = out.error.unwrap();
    assert_eq!(e.code, ErrorCode::LockLost, "{}", e.message);
    assert!(e.message.to_lowercase().contains("lock"));
    assert_eq!(names(&out.result.executed), [USERS]);
    assert_eq!(
        env.host.calls(),
        [format!("up {USERS}"), format!("up {POSTS}")],
        "no further script, no rollback"
    );
    let mut after = env.export();
    let mut snap = snapshot.lock().unwrap().clone().unwrap();
    // Compare everything but the lock node itself (tombstones are the lock's business).
    for v in [&mut after, &mut snap] {
        if let Some(app) = v.get_mut("app").and_then(Value::as_object_mut) {
            app.remove("migrations");
        }
    }
    assert_eq!(after, snap, "nothing written after the lock was lost");
    assert_eq!(env.history_names().await, [USERS]);
}

// ---------------------------------------------------------------------------------------------
// History

#[tokio::test]
async fn history_conditional_create_prevents_a_second_record() {
    let env = Env::new(Some("s")).await;
    let h = History::new(env.client.clone(), &env.cfg);
    let rec = HistoryRecord {
        name: USERS.into(),
        timestamp: 202501010001,
        started_at: Some(1000),
        executor_id: Some("run-1".into()),
        lock_epoch: Some(1),
        ..Default::default()
    };
    assert_eq!(h.record(&rec).await.unwrap(), "v202501010001");
    // Another run recording the same migration is refused...
    let other = HistoryRecord {
        executor_id: Some("run-2".into()),
        lock_epoch: Some(2),
        ..rec.clone()
    };
    let e = h.record(&other).await.unwrap_err();
    assert!(e.message.contains("already recorded"), "{}", e.message);
    // ...while the same record again (a retry whose first answer was lost) is recognised.
    assert_eq!(h.record(&rec).await.unwrap(), "v202501010001");
    assert_eq!(h.read().await.unwrap().0.len(), 1);
    // A push-id record with another timestamp is removed by its own key.
    env.client
        .set(
            "s/schema_version/-Nabc",
            &json!({"name": POSTS, "timestamp": 202501010002u64}),
        )
        .await
        .unwrap();
    assert_eq!(h.remove(202501010002).await.unwrap(), ["-Nabc"]);
    assert_eq!(h.remove(202501010002).await.unwrap(), Vec::<String>::new());
    assert_eq!(h.read().await.unwrap().0.len(), 1);
}

#[tokio::test]
async fn concurrent_runs_without_lock_never_record_twice() {
    let mut env = Env::new(None).await;
    with(&mut env, "none", "manual");
    env.smoke_scripts();
    let (a, b) = (env.runner(), env.runner());
    let (ra, rb) = tokio::join!(
        a.migrate(RunOptions::default()),
        b.migrate(RunOptions::default())
    );
    let total = ra.as_ref().map(|r| r.executed.len()).unwrap_or(0)
        + rb.as_ref().map(|r| r.executed.len()).unwrap_or(0);
    assert!(total >= 4, "{ra:?} {rb:?}");
    if let Err(e) = ra.as_ref().and(rb.as_ref()) {
        assert!(e.message.contains("already recorded"), "{}", e.message);
    }
    let h = env.history().await;
    assert_eq!(h.len(), 4, "each migration recorded exactly once");
}

// ---------------------------------------------------------------------------------------------
// Dry run, beforeMigrate, validate, list, down errors

#[tokio::test]
async fn dry_run_writes_nothing() {
    let env = Env::new(Some("app")).await;
    env.smoke_scripts();
    env.add(
        "beforeMigrate.js",
        set_node(&env.client, "app/bm", json!(1)),
    );
    let before = env.export();
    env.reset_counts().await;
    let r = env
        .locked_runner()
        .migrate(RunOptions {
            dry_run: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert!(r.success && r.executed.is_empty());
    assert_eq!(env.writes().await, 0, "zero write requests");
    assert_eq!(env.export(), before);
    assert!(
        env.logged(LogLevel::Info, "Would execute: 4 migration(s)"),
        "{}",
        env.log_text()
    );
    assert!(env.host.calls().is_empty());
    assert!(!env.dir.path().join("backups").exists());
}

#[tokio::test]
async fn before_migrate_runs_first_and_is_not_recorded() {
    let env = Env::new(None).await;
    env.smoke_scripts();
    env.add(
        "beforeMigrate.js",
        set_node(&env.client, "bm", json!("ran")),
    );
    let r = env.runner().migrate(target(202501010001)).await.unwrap();
    assert_eq!(names(&r.executed), [USERS]);
    assert_eq!(env.host.calls()[0], "up beforeMigrate.js");
    assert_eq!(env.get("bm").await, json!("ran"));
    assert_eq!(env.history_names().await, [USERS]);
    // A target older than the last executed: nothing to do.
    let r = env.runner().migrate(target(202412310000)).await.unwrap();
    assert!(r.executed.is_empty());
    assert!(env.logged(LogLevel::Info, "nothing to do"));
}

#[tokio::test]
async fn validate_reports_codes_and_list_reports_status() {
    let mut env = Env::new(None).await;
    env.smoke_scripts();
    env.runner().migrate(target(202501010002)).await.unwrap();
    // Drift: USERS changed after running; POSTS deleted.
    std::fs::write(env.folder().join(USERS), "// changed").unwrap();
    std::fs::remove_file(env.folder().join(POSTS)).unwrap();
    env.host.set(
        COMMENTS,
        FakeScript {
            load_error: Some("Cannot find package 'x'".into()),
            ..Default::default()
        },
    );
    env.host.set(
        SETTINGS,
        FakeScript {
            up: None,
            ..set_node(&env.client, "s", json!(1))
        },
    );
    let before = env.export();
    env.reset_counts().await;
    let rep = env.runner().validate().await.unwrap();
    assert_eq!(env.writes().await, 0);
    assert_eq!(env.export(), before);
    let codes = |n: &str| {
        rep.pending
            .iter()
            .find(|p| p.name == n)
            .unwrap()
            .issues
            .iter()
            .map(|i| i.code.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(codes(COMMENTS), ["IMPORT_FAILED"]);
    assert_eq!(codes(SETTINGS), ["MISSING_UP_METHOD"]);
    assert!(rep.pending.iter().all(|p| !p.valid));
    let mcodes: Vec<&str> = rep.migrated.iter().map(|i| i.code.as_str()).collect();
    assert!(
        mcodes.contains(&"MIGRATED_FILE_CHECKSUM_MISMATCH")
            && mcodes.contains(&"MIGRATED_FILE_MISSING"),
        "{mcodes:?}"
    );
    assert_eq!(rep.error_count, 4);
    let json = serde_json::to_value(&rep).unwrap();
    assert_eq!(json["pending"][0]["issues"][0]["type"], json!("ERROR"));
    assert!(json["errorCount"].is_u64());

    // validateMigratedFiles makes migrate fail on the drift, before anything runs.
    env.cfg.validate_migrated_files = true;
    env.cfg.validate_before_run = false;
    let e = env
        .runner()
        .migrate(RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(
        e.message.contains("integrity") && e.message.contains("MIGRATED_FILE_CHECKSUM_MISMATCH"),
        "{}",
        e.message
    );

    let l = env.runner().list().await.unwrap();
    let st: Vec<(String, MigrationStatus)> = l
        .migrations
        .iter()
        .map(|m| (m.name.clone(), m.status))
        .collect();
    assert_eq!(
        st,
        [
            (USERS.to_string(), MigrationStatus::Executed),
            (POSTS.to_string(), MigrationStatus::MissingFile),
            (COMMENTS.to_string(), MigrationStatus::Pending),
            (SETTINGS.to_string(), MigrationStatus::Pending)
        ]
    );
    assert_eq!(
        serde_json::to_value(&l).unwrap()["migrations"][1]["status"],
        json!("missing-file")
    );

    // down needs the file of every migration it undoes.
    let e = env
        .runner()
        .down(0, RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(
        e.message.contains(POSTS) && e.message.contains("not found"),
        "{}",
        e.message
    );
    assert_eq!(
        env.history_names().await,
        [USERS, POSTS],
        "nothing rolled back"
    );
}

#[tokio::test]
async fn down_without_down_method_names_it_and_changes_nothing() {
    let env = Env::new(None).await;
    env.smoke_scripts();
    env.runner().migrate(RunOptions::default()).await.unwrap();
    let mut posts = set_node(&env.client, "posts", json!(1));
    posts.down = None;
    env.host.set(POSTS, posts);
    let before = env.export();
    let e = env
        .runner()
        .down(202501010001, RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        e.message,
        format!("Migration {POSTS} does not have a down() method - cannot roll back")
    );
    assert_eq!(env.export(), before);
    let r = env
        .runner()
        .down(202501010003, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(names(&r.executed), [SETTINGS]);
    // At that version already: nothing to roll back.
    let r = env
        .runner()
        .down(202501010003, RunOptions::default())
        .await
        .unwrap();
    assert!(r.executed.is_empty());
    assert!(env.logged(LogLevel::Info, "nothing to roll back"));
    // A version no longer executed (rolled back just now) is not a point to roll back to.
    let e = env
        .runner()
        .down(202501010004, RunOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed, "{e}");
    assert!(e.message.contains("202501010003"), "{e}");
}

#[tokio::test]
async fn lock_held_by_another_fails_fast() {
    let env = Env::new(None).await;
    env.smoke_scripts();
    let other = env.lock_service();
    assert!(other.acquire("someone-else").await.unwrap());
    let before = env.export();
    let e = env
        .locked_runner()
        .migrate(RunOptions {
            wait: WaitPolicy::FailFast,
            ..RunOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::LockHeld, "{}", e.message);
    assert!(env.host.calls().is_empty());
    assert_eq!(env.export(), before);
    // --no-lock runs anyway.
    let r = env
        .locked_runner()
        .migrate(RunOptions {
            no_lock: true,
            ..RunOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(r.executed.len(), 4);
}

/// Every step of a run as a typed event, in the predecessor's hook order; each names its hook
/// and collector methods. A slow listener is waited for before the run goes on.
#[tokio::test]
async fn run_events_come_in_the_predecessors_order_and_are_awaited() {
    use msr_firebase::runner::RunEvent;
    let mut env = Env::new(Some("ev")).await;
    with(&mut env, "backup", "full");
    failing_setup(&env, true, false);
    type Seen = Vec<(String, Vec<&'static str>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let sink = seen.clone();
    let host_calls = env.host.calls.clone();
    let runner = env
        .locked_runner()
        .with_events(Arc::new(move |ev: &RunEvent| {
            let name = ev.hook().unwrap_or("-").to_string();
            let label = match ev {
                RunEvent::BeforeMigrate { script, step } => {
                    format!("{name} {} [{}/{}]", script.name, step.index, step.total)
                }
                RunEvent::AfterMigrate { script, .. } => format!("{name} {}", script.name),
                RunEvent::MigrationError { script, error, .. } => {
                    format!("{name} {} {}", script.name, error.code.as_str())
                }
                RunEvent::Start { total, pending, .. } => format!("{name} {total} {pending}"),
                RunEvent::Rollback { report, .. } => {
                    format!("rollback {} {}", report.strategy, report.success)
                }
                _ => name,
            };
            sink.lock().unwrap().push((label, ev.metrics().to_vec()));
            let calls = host_calls.clone();
            // A listener that takes its time: no script may start meanwhile.
            Box::pin(async move {
                let before = calls.lock().unwrap().len();
                tokio::time::sleep(Duration::from_millis(5)).await;
                assert_eq!(calls.lock().unwrap().len(), before, "the run went on");
            })
        }));
    let e = runner.migrate(RunOptions::default()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptFailed);
    let got = seen.lock().unwrap().clone();
    let labels: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        [
            "onLockAcquired",
            "onBeforeBackup",
            "onAfterBackup",
            "onStart 4 4",
            &format!("onBeforeMigrate {USERS} [1/4]"),
            &format!("onAfterMigrate {USERS}"),
            &format!("onBeforeMigrate {POSTS} [2/4]"),
            &format!("onAfterMigrate {POSTS}"),
            &format!("onBeforeMigrate {COMMENTS} [3/4]"),
            &format!("onMigrationError {COMMENTS} SCRIPT_FAILED"),
            "onBeforeRestore",
            "onAfterRestore",
            "rollback backup true",
            "onLockReleased",
            "onError",
        ]
    );
    let metrics: Vec<&str> = got.iter().flat_map(|(_, m)| m.iter().copied()).collect();
    assert_eq!(
        metrics,
        [
            "recordBackup",
            "recordMigrationStart",
            "recordScriptStart",
            "recordScriptComplete",
            "recordScriptStart",
            "recordScriptComplete",
            "recordScriptStart",
            "recordScriptError",
            "recordRollback",
            "recordError",
            "recordMigrationComplete",
            "close"
        ]
    );
    // The log carries the same steps as lines with stable event names.
    assert!(env.logged(LogLevel::Info, &format!("[2/4] {POSTS} (")));
    assert!(env.logged(
        LogLevel::Error,
        &format!("Migration {COMMENTS} failed: TypeError: boom")
    ));
}

// ---------------------------------------------------------------------------------------------
// Faults (L11, L12): outages within the lease, a lease that ran out, scriptTimeout

/// PUT a lever of `env`'s emulator.
async fn put_lever(emu_url: &str, name: &str, body: Value) {
    reqwest::Client::new()
        .put(format!("{emu_url}/.emulator/{name}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
}

/// up: set `node`, then start an outage of `ms` (right after up() resolves, in effect).
fn set_then_outage(client: &Client, node: &str, emu_url: &str, ms: u64) -> FakeScript {
    let (c, n, url) = (client.clone(), node.to_string(), emu_url.to_string());
    FakeScript {
        up: Some(func(move |_| {
            let (c, n, url) = (c.clone(), n.clone(), url.clone());
            async move {
                c.set(&n, &json!(true)).await?;
                put_lever(&url, "outage", json!({ "ms": ms })).await;
                Ok(Value::Null)
            }
        })),
        down: Some(failing("down must not run")),
        load_error: None,
    }
}

#[tokio::test]
async fn an_outage_right_after_up_is_ridden_out_within_the_lease_and_recorded_once() {
    let mut env = Env::new(Some("app")).await;
    env.cfg.locking.timeout = 4000;
    env.smoke_scripts();
    let url = env.emu.url();
    env.add(POSTS, set_then_outage(&env.client, "app/posts", &url, 2000));
    let out = env
        .locked_runner()
        .migrate_outcome(RunOptions::default())
        .await;
    assert!(out.error.is_none(), "{:?}\n{}", out.error, env.log_text());
    assert_eq!(
        env.history_names().await,
        [USERS, POSTS, COMMENTS, SETTINGS]
    );
    assert!(
        env.logged(LogLevel::Warn, "retrying for up to"),
        "{}",
        env.log_text()
    );
    assert!(
        env.lock_service().status().await.unwrap().is_none(),
        "released"
    );
}

#[tokio::test]
async fn an_outage_longer_than_the_lease_stops_with_a_connection_error_naming_what_ran_unrecorded()
{
    let mut env = Env::new(Some("app")).await;
    env.cfg.locking.timeout = 1200;
    env.cfg.rollback_strategy = RollbackStrategy::Down;
    env.smoke_scripts();
    let url = env.emu.url();
    env.add(POSTS, set_then_outage(&env.client, "app/posts", &url, 3000));
    let out = env
        .locked_runner()
        .migrate_outcome(RunOptions::default())
        .await;
    let e = out.error.expect("fails");
    assert_eq!(e.code, ErrorCode::ConnectionFailed, "{}", e.message);
    assert!(
        e.message.contains(&format!("the migration {POSTS} RAN"))
            && e.message.contains("NOT RECORDED")
            && e.message.contains("--mark-applied 202501010002"),
        "{}",
        e.message
    );
    assert!(
        !env.host.calls().iter().any(|c| c.starts_with("down")),
        "no rollback"
    );
    tokio::time::sleep(Duration::from_millis(1900)).await; // the outage ends
    assert_eq!(env.history_names().await, [USERS]);
    assert_eq!(env.get("posts").await, json!(true), "its changes stay");
}

#[tokio::test]
async fn a_script_failing_after_the_lease_ran_out_is_not_rolled_back() {
    let mut env = Env::new(Some("app")).await;
    env.cfg.locking.timeout = 1000;
    env.cfg.rollback_strategy = RollbackStrategy::Down;
    env.smoke_scripts();
    let (c, url) = (env.client.clone(), env.emu.url());
    env.host.set(
        POSTS,
        FakeScript {
            up: Some(func(move |_| {
                let (c, url) = (c.clone(), url.clone());
                async move {
                    c.set("app/posts", &json!(1)).await?;
                    put_lever(&url, "outage", json!({"ms": 2500})).await;
                    // Its next write fails once the client gives up: the lease has run out by then.
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                    c.set("app/posts", &json!(2)).await?;
                    Ok(Value::Null)
                }
            })),
            down: Some(failing("down must not run")),
            load_error: None,
        },
    );
    let out = env
        .locked_runner()
        .migrate_outcome(RunOptions::default())
        .await;
    let e = out.error.expect("fails");
    assert!(
        matches!(e.code, ErrorCode::ConnectionFailed | ErrorCode::LockLost),
        "{}",
        e.message
    );
    assert!(e.message.contains("No rollback was run"), "{}", e.message);
    assert!(!env.host.calls().iter().any(|c| c.starts_with("down")));
}

#[tokio::test]
async fn script_timeout_abandons_the_script_fences_its_writes_and_releases_the_lock() {
    let mut env = Env::new(Some("app")).await;
    env.cfg.script_timeout = Some(200);
    env.cfg.rollback_strategy = RollbackStrategy::Down;
    env.add(
        USERS,
        FakeScript {
            up: Some(func(|_| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(Value::Null)
            })),
            down: Some(failing("down must not run")),
            load_error: None,
        },
    );
    let fence = msr_firebase::lock::Fence::default();
    let runner = env.locked_runner().with_fence(fence.clone());
    let e = runner.migrate(RunOptions::default()).await.unwrap_err();
    assert_eq!(e.code, ErrorCode::ScriptTimeout, "{}", e.message);
    assert!(
        e.message.contains(USERS) && e.message.contains("scriptTimeout (200 ms)"),
        "{}",
        e.message
    );
    assert_eq!(env.host.calls(), [format!("up {USERS}")], "no rollback");
    // The abandoned script's writes through db stay refused; the lock is free.
    assert_eq!(fence.check().unwrap_err().code, ErrorCode::ScriptTimeout);
    assert!(env.lock_service().status().await.unwrap().is_none());
    assert!(env.history_names().await.is_empty());
}

#[tokio::test]
async fn the_scripts_db_is_fenced_by_the_lease_while_a_run_holds_the_lock() {
    let env = Env::new(Some("app")).await;
    let fence = msr_firebase::lock::Fence::default();
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let (f, s) = (fence.clone(), seen.clone());
    env.add(
        USERS,
        FakeScript {
            up: Some(func(move |_| {
                let (f, s) = (f.clone(), s.clone());
                async move {
                    s.lock().unwrap().push(f.check().is_ok());
                    Ok(Value::Null)
                }
            })),
            down: None,
            load_error: None,
        },
    );
    let runner = env.locked_runner().with_fence(fence.clone());
    runner.migrate(RunOptions::default()).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [true]);
    fence.check().unwrap();
}

// ---------------------------------------------------------------------------------------------
// request floors (issue 10): counts are stable figures, asserted exactly

impl Env {
    /// (total, requests on the lock node) since the last reset.
    async fn requests(&self) -> (u64, u64) {
        let counts = self.lever(reqwest::Method::GET, "requests").await;
        let lock = format!(
            "/{}",
            msr_firebase::lock::lock_path(self.cfg.shift_path().as_deref())
        );
        let on_lock = counts["byPath"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.ends_with(&lock))
                    .map(|(_, v)| v.as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        (counts["total"].as_u64().unwrap(), on_lock)
    }

    /// `n` migrations whose `up` does nothing.
    fn no_op_scripts(&self, n: usize) {
        for i in 1..=n {
            self.add(
                &format!("V{:012}_noop.js", 202501010000u64 + i as u64),
                FakeScript {
                    up: Some(func(|_| async { Ok(Value::Null) })),
                    ..FakeScript::default()
                },
            );
        }
    }
}

/// A locked `migrate` of N no-op migrations costs 2N + 4 requests: the history (read without
/// the lock; it is the connection check too), one conditional write taking the lock, the history
/// again under it, per migration one conditional write that proves ownership and renews the
/// lease plus the record, and one conditional write releasing it. With nothing pending, a migrate
/// reads the history and touches no lock: 1 request.
#[tokio::test]
async fn locked_migrate_runs_at_its_request_floor() {
    let mut env = Env::new(None).await;
    // No backup before running (a backup is a walk of the data, and ownership is proved again
    // after it).
    env.cfg.backup_mode = BackupMode::Manual;
    env.cfg.rollback_strategy = RollbackStrategy::None;
    env.no_op_scripts(100);
    env.reset_counts().await;
    let r = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.executed.len(), 100);
    assert_eq!(
        env.requests().await,
        (204, 102),
        "(total, on the lock node): 100 no-op migrations on a never-locked database"
    );
    // All of them on one kept-alive connection.
    let counts = env.lever(reqwest::Method::GET, "requests").await;
    assert_eq!(counts["connections"], 1, "{counts}");

    env.reset_counts().await;
    let r = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap();
    assert!(r.executed.is_empty() && r.migrated.len() == 100);
    assert_eq!(
        env.requests().await,
        (1, 0),
        "nothing pending: the history only"
    );
    assert!(
        env.log_text().contains("Nothing to do"),
        "{}",
        env.log_text()
    );

    // One more pending migration, on a lock node holding the last release's tombstone: a new
    // process guesses "absent" (create if absent), and the 412 hands it the tombstone's ETag.
    env.no_op_scripts(101);
    env.reset_counts().await;
    let r = env
        .locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap();
    assert_eq!(r.executed.len(), 1);
    assert_eq!(
        env.requests().await,
        (7, 4),
        "1 migration, lock released before"
    );
}

/// A `beforeMigrate` script runs on every migrate, under the lock: with one, the lock is taken
/// even when nothing is pending.
#[tokio::test]
async fn migrate_with_nothing_pending_takes_the_lock_only_for_before_migrate() {
    let mut env = Env::new(None).await;
    env.cfg.backup_mode = BackupMode::Manual;
    env.cfg.rollback_strategy = RollbackStrategy::None;
    env.no_op_scripts(1);
    env.locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap();
    env.add(
        "beforeMigrate.js",
        FakeScript {
            up: Some(func(|_| async { Ok(Value::Null) })),
            ..FakeScript::default()
        },
    );
    env.reset_counts().await;
    env.host.clear_calls();
    env.locked_runner()
        .migrate(RunOptions::default())
        .await
        .unwrap();
    assert_eq!(env.host.calls(), vec!["up beforeMigrate.js"]);
    let (total, on_lock) = env.requests().await;
    // history, lock (412 + write), history under the lock, proof after beforeMigrate, release.
    assert_eq!((total, on_lock), (6, 4));
}
