//! Rehearsals against a second emulator standing in for production: the report's diffs match
//! the data, failures and `down`s are reported, backups work offline, and production only ever
//! receives reads of the `{shift}` subtree (its request log is checked in every test).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use msr_firebase::config::Config;
use msr_firebase::emulator::Emulator;
use msr_firebase::history::History;
use msr_firebase::lock::LockService;
use msr_firebase::rehearse::{
    self, ChangeKind, DownOutcome, Example, Outcome, Rehearsal, RehearsalReport, RehearseOptions,
    Source, SourceKind,
};
use msr_firebase::rtdb::Client;
use msr_firebase::runner::{
    Method, RunOptions, Runner, ScriptDb, ScriptHost, ScriptMeta, StopFlag,
};
use msr_firebase::{Error, ErrorCode, Result};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Scripts: closures given the `db` the runner gives its scripts (the sandbox in a rehearsal).

type Step = Arc<dyn Fn(Client) -> BoxFuture<'static, Result<Value>> + Send + Sync>;

fn step<F, Fut>(f: F) -> Step
where
    F: Fn(Client) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value>> + Send + 'static,
{
    Arc::new(move |c| Box::pin(f(c)))
}

#[derive(Clone)]
struct Script {
    up: Step,
    down: Option<Step>,
}

#[derive(Clone)]
struct Host {
    scripts: Arc<HashMap<String, Script>>,
    calls: Arc<Mutex<Vec<String>>>,
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

impl ScriptHost for Host {
    async fn load(&self, file: &Path) -> Result<ScriptMeta> {
        let s = self.scripts.get(&name_of(file)).ok_or_else(|| {
            Error::new(
                ErrorCode::ScriptFailed,
                format!("no script {}", file.display()),
            )
        })?;
        Ok(ScriptMeta {
            has_up: true,
            has_down: s.down.is_some(),
            up_is_async: true,
        })
    }
    async fn run(
        &self,
        file: &Path,
        method: Method,
        _info: &Value,
        db: &ScriptDb,
    ) -> Result<Value> {
        let name = name_of(file);
        let s = self.scripts.get(&name).cloned().expect("script");
        self.calls
            .lock()
            .unwrap()
            .push(format!("{method:?} {name}"));
        let f = match method {
            Method::Up => s.up,
            Method::Down => s.down.expect("down"),
        };
        f(db.client.clone()).await
    }
}

const INIT: &str = "V202501010001_init.js";
const RENAME: &str = "V202501010002_rename_name.js";
const THIRD: &str = "V202501010003_third.js";

/// Rename `name` to `fullName` for every user (one read, one multi-path PATCH); down reverses it.
fn rename() -> Script {
    let flip = |from: &'static str, to: &'static str| {
        step(move |c: Client| async move {
            let users = c.get("app/users").await?;
            let mut patch = Map::new();
            for (k, u) in users.as_object().cloned().unwrap_or_default() {
                if let Some(n) = u.get(from) {
                    patch.insert(format!("{k}/{to}"), n.clone());
                    patch.insert(format!("{k}/{from}"), Value::Null);
                }
            }
            c.update("app/users", &patch).await?;
            Ok(json!(format!("renamed {} users", patch.len() / 2)))
        })
    };
    Script {
        up: flip("name", "fullName"),
        down: Some(flip("fullName", "name")),
    }
}

/// up: set `node` (under app) to `value`; down: remove it (or nothing, without one).
fn set(node: &'static str, value: Value, with_down: bool) -> Script {
    let v = value.clone();
    Script {
        up: step(move |c: Client| {
            let v = v.clone();
            async move {
                c.set(&format!("app/{node}"), &v).await?;
                Ok(Value::Null)
            }
        }),
        down: with_down.then(|| {
            step(move |c: Client| async move {
                c.remove(&format!("app/{node}")).await?;
                Ok(Value::Null)
            })
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Production (an emulator) and the project (a folder of scripts)

fn client_for(url: &str) -> Client {
    common::owner_client(url, 1)
}

const DATA: &str = r#"{"users": {"u1": {"name": "Alice", "age": 30}, "u2": {"name": "Bob", "age": 25}},
                       "posts": {"p1": {"title": "Hi"}}}"#;

struct Prod {
    emu: Emulator,
    client: Client,
    dir: tempfile::TempDir,
    cfg: Config,
    scripts: HashMap<String, Script>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Prod {
    /// Production with users and posts under `app`, V1 executed there, and its lock held by
    /// another pod.
    async fn new() -> Prod {
        let emu = common::emulator().await;
        let url = format!("{}?ns=prod", emu.url());
        let client = client_for(&url);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
        let cfg = Config {
            folder: "migrations".into(),
            shift: Some("app".into()),
            database_url: Some(url),
            locking: msr_firebase::config::LockingConfig {
                enabled: true,
                ..Default::default()
            },
            ..Config::default()
        };
        let mut p = Prod {
            emu,
            client,
            dir,
            cfg,
            scripts: HashMap::new(),
            logs: Arc::default(),
        };
        p.client
            .set("app", &serde_json::from_str(DATA).unwrap())
            .await
            .unwrap();
        p.add(INIT, set("init", json!(true), true));
        let runner = Runner::new(
            Config {
                locking: Default::default(),
                ..p.cfg.clone()
            },
            p.client.clone(),
            p.host(),
            p.dir.path().to_path_buf(),
        );
        runner.migrate(RunOptions::default()).await.unwrap();
        LockService::new(p.client.clone(), Some("app"), p.cfg.lock_options())
            .acquire("another-pod")
            .await
            .unwrap()
            .then_some(())
            .expect("the other pod holds the lock");
        p
    }

    fn add(&mut self, name: &str, s: Script) {
        std::fs::write(
            self.dir.path().join("migrations").join(name),
            format!("// {name}\n"),
        )
        .unwrap();
        self.scripts.insert(name.to_string(), s);
    }

    fn host(&self) -> Host {
        Host {
            scripts: Arc::new(self.scripts.clone()),
            calls: Arc::default(),
        }
    }

    async fn counts(&self) -> Value {
        common::lever(&self.emu, reqwest::Method::GET, "requests", None).await
    }

    fn data(&self) -> Value {
        self.emu.export()["prod"]["app"].clone()
    }

    async fn rehearse(
        &self,
        source: Source<'_>,
        options: RehearseOptions,
    ) -> Result<RehearsalReport> {
        let logs = self.logs.clone();
        let r = Rehearsal {
            cfg: &self.cfg,
            cwd: self.dir.path(),
            source,
            options,
            log: Arc::new(move |l| logs.lock().unwrap().push(l.message.clone())),
            events: None,
            stop: StopFlag::default(),
            progress: None,
        };
        rehearse::rehearse(r, self.host()).await
    }

    /// Production got reads only, each at or under `/app`.
    async fn only_read(&self) {
        let counts = self.counts().await;
        let methods: Vec<&String> = counts["byMethod"].as_object().unwrap().keys().collect();
        assert!(
            methods.iter().all(|m| *m == "GET"),
            "production received {methods:?}: {counts}"
        );
        for p in counts["byPath"].as_object().unwrap().keys() {
            assert!(
                p == "GET /app" || p.starts_with("GET /app/"),
                "production read outside the shift: {p}"
            );
        }
    }
}

fn ex(path: &str, kind: ChangeKind) -> Example {
    Example {
        path: path.into(),
        kind,
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rename_reports_its_counts_and_example_paths_and_production_only_reads() {
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    prod.add(
        THIRD,
        set("settings", json!({"theme": "dark", "beta": false}), true),
    );
    // Pages: the walk is refused whole and reads the subtree in pieces.
    common::lever(
        &prod.emu,
        reqwest::Method::PUT,
        "limits",
        Some(json!({"responseBytes": 300})),
    )
    .await;
    common::reset_counts(&prod.emu).await;
    let before = prod.data();

    let keep = prod.dir.path().join("rehearsed.json");
    let report = prod
        .rehearse(
            Source::Database(&prod.client),
            RehearseOptions {
                keep: Some(keep.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    assert!(report.success, "{report:#?}");
    assert_eq!(report.source.kind, SourceKind::Database);
    assert_eq!(report.source.path, "/app");
    assert!(!report.source.snapshot, "a walk in pages is no snapshot");
    assert!(report.source.requests > 1, "{:?}", report.source);
    assert!(report.source.lock_skipped, "the held lock was not copied");
    assert_eq!(report.executed, 1);
    let names: Vec<&str> = report.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, [RENAME, THIRD]);

    let m = &report.migrations[0];
    assert_eq!(m.outcome, Outcome::Succeeded);
    let c = m.changes.as_ref().unwrap();
    assert_eq!((c.added, c.removed, c.changed), (2, 2, 0));
    assert_eq!(
        c.examples,
        [
            ex("/app/users/u1/fullName", ChangeKind::Added),
            ex("/app/users/u1/name", ChangeKind::Removed),
            ex("/app/users/u2/fullName", ChangeKind::Added),
            ex("/app/users/u2/name", ChangeKind::Removed),
        ]
    );
    assert_eq!(c.children.len(), 1, "only users changed: {:?}", c.children);
    let users = &c.children[0];
    assert_eq!(users.key, "users");
    assert_eq!((users.added, users.removed, users.changed), (2, 2, 0));
    let before_users = r#"{"u1":{"age":30,"name":"Alice"},"u2":{"age":25,"name":"Bob"}}"#;
    let after_users = r#"{"u1":{"age":30,"fullName":"Alice"},"u2":{"age":25,"fullName":"Bob"}}"#;
    assert_eq!(users.bytes_before, before_users.len() as u64);
    assert_eq!(users.bytes_after, after_users.len() as u64);
    assert_eq!(
        c.bytes_after - c.bytes_before,
        8,
        "two names became fullNames"
    );
    // One read and one PATCH: the script's own requests (lock checks and records left out).
    assert_eq!(m.requests.total, 2, "{:?}", m.requests);
    assert_eq!(m.requests.by_method.get("GET"), Some(&1));
    assert_eq!(m.requests.by_method.get("PATCH"), Some(&1));

    let t = &report.migrations[1].changes.as_ref().unwrap();
    assert_eq!((t.added, t.removed, t.changed), (2, 0, 0));
    assert_eq!(t.examples, [ex("/app/settings", ChangeKind::Added)]);
    assert_eq!(t.children[0].bytes_before, 0);
    assert_eq!((report.totals.added, report.totals.removed), (4, 2));
    assert_eq!(report.totals.succeeded, 2);

    // Production: untouched, read only, the other pod still holds its lock.
    assert_eq!(prod.data(), before);
    prod.only_read().await;
    assert!(prod
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.starts_with("[rehearsal] ")));

    // The kept file is a backup of the rehearsed data: restored into a staging database it
    // has the renamed users and the new history records.
    let staging = common::emulator().await;
    let staging_client = client_for(&format!("{}?ns=staging", staging.url()));
    msr_firebase::backup::restore(&staging_client, &prod.cfg, &keep)
        .await
        .unwrap();
    let app = &staging.export()["staging"]["app"];
    assert_eq!(app["users"]["u1"], json!({"age": 30, "fullName": "Alice"}));
    assert_eq!(app["settings"]["theme"], "dark");
    let staged = History::new(staging_client, &prod.cfg)
        .read()
        .await
        .unwrap()
        .0;
    let versions: Vec<u64> = staged.iter().map(|r| r.timestamp).collect();
    assert_eq!(versions, [202501010001, 202501010002, 202501010003]);
    assert!(app["migrations"].get("_lock").is_none(), "{app}");
}

#[tokio::test]
async fn a_failing_script_is_named_rolled_back_in_the_sandbox_and_production_is_untouched() {
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    prod.add(
        THIRD,
        Script {
            up: step(|c: Client| async move {
                c.set("app/half", &json!("written before the failure"))
                    .await?;
                Err(Error::new(ErrorCode::ScriptFailed, "users[7] has no email"))
            }),
            down: None,
        },
    );
    common::reset_counts(&prod.emu).await;
    let before = prod.data();
    let report = prod
        .rehearse(Source::Database(&prod.client), RehearseOptions::default())
        .await
        .unwrap();
    assert!(!report.success);
    let e = report.error.as_ref().unwrap();
    assert_eq!(e.code, "SCRIPT_FAILED");
    assert_eq!(e.migration.as_deref(), Some(THIRD));
    assert!(e.message.contains("users[7] has no email"), "{}", e.message);
    let outcomes: Vec<Outcome> = report.migrations.iter().map(|m| m.outcome).collect();
    assert_eq!(outcomes, [Outcome::Succeeded, Outcome::Failed]);
    let failed = &report.migrations[1];
    assert!(failed.error.as_deref().unwrap().contains("no email"));
    assert_eq!(
        failed.changes.as_ref().unwrap().examples,
        [ex("/app/half", ChangeKind::Added)],
        "what it wrote before it failed"
    );
    let rb = report.rollback.as_ref().unwrap();
    assert_eq!((rb.strategy.as_str(), rb.success), ("backup", true));
    assert!(report.source.snapshot, "one GET is a point in time");
    assert_eq!(prod.data(), before);
    prod.only_read().await;
}

#[tokio::test]
async fn down_flags_a_stray_node_and_passes_a_round_trip() {
    // A round trip.
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    common::reset_counts(&prod.emu).await;
    let down = RehearseOptions {
        down: true,
        ..Default::default()
    };
    let report = prod
        .rehearse(Source::Database(&prod.client), down.clone())
        .await
        .unwrap();
    assert!(report.success, "{report:#?}");
    let d = report.down.as_ref().unwrap();
    assert!(d.round_trip);
    assert_eq!(d.migrations.len(), 1);
    assert_eq!(d.migrations[0].outcome, DownOutcome::Undone);
    assert!(d.remaining.as_ref().unwrap().is_empty());
    prod.only_read().await;

    // A down that leaves a stray node, on top of one that round-trips.
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    prod.add(
        THIRD,
        Script {
            up: step(|c: Client| async move {
                c.set("app/flags/a", &json!(1)).await?;
                c.set("app/stray", &json!({"x": 1, "y": 2})).await?;
                Ok(Value::Null)
            }),
            down: Some(step(|c: Client| async move {
                c.remove("app/flags").await?;
                Ok(Value::Null)
            })),
        },
    );
    common::reset_counts(&prod.emu).await;
    let report = prod
        .rehearse(Source::Database(&prod.client), down.clone())
        .await
        .unwrap();
    assert!(!report.success);
    let d = report.down.as_ref().unwrap();
    assert!(!d.round_trip);
    let by_name: HashMap<&str, _> = d.migrations.iter().map(|c| (c.name.as_str(), c)).collect();
    let third = by_name[THIRD];
    assert_eq!(third.outcome, DownOutcome::Differs);
    let ch = third.changes.as_ref().unwrap();
    assert_eq!((ch.added, ch.removed, ch.changed), (2, 0, 0));
    assert_eq!(ch.examples, [ex("/app/stray", ChangeKind::Added)]);
    assert_eq!(
        by_name[RENAME].outcome,
        DownOutcome::Undone,
        "the stray node is the newer migration's, not this one's"
    );
    let rem = d.remaining.as_ref().unwrap();
    assert_eq!(rem.examples, [ex("/app/stray", ChangeKind::Added)]);
    let e = report.error.as_ref().unwrap();
    assert!(
        e.message.contains(THIRD) && e.message.contains("/app/stray added"),
        "{}",
        e.message
    );
    prod.only_read().await;

    // A migration without down(): reported, and the older ones are not checked.
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    prod.add(THIRD, set("settings", json!(1), false));
    common::reset_counts(&prod.emu).await;
    let report = prod
        .rehearse(Source::Database(&prod.client), down)
        .await
        .unwrap();
    assert!(!report.success);
    let d = report.down.as_ref().unwrap();
    let outcomes: Vec<(&str, DownOutcome)> = d
        .migrations
        .iter()
        .map(|c| (c.name.as_str(), c.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (THIRD, DownOutcome::NoDown),
            (RENAME, DownOutcome::NotChecked)
        ]
    );
    assert!(report.error.unwrap().message.contains("has no down()"));
    prod.only_read().await;
}

#[tokio::test]
async fn from_backup_works_with_no_database_reachable() {
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    let file = msr_firebase::backup::create(&prod.client, &prod.cfg, prod.dir.path())
        .await
        .unwrap();
    common::reset_counts(&prod.emu).await;
    // The database is gone: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}?ns=prod", closed.local_addr().unwrap());
    drop(closed);
    let cfg = Config {
        database_url: Some(dead),
        ..prod.cfg.clone()
    };
    let logs = prod.logs.clone();
    let r = Rehearsal {
        cfg: &cfg,
        cwd: prod.dir.path(),
        source: Source::Backup(file.clone()),
        options: RehearseOptions::default(),
        log: Arc::new(move |l| logs.lock().unwrap().push(l.message.clone())),
        events: None,
        stop: StopFlag::default(),
        progress: None,
    };
    let report = rehearse::rehearse(r, prod.host()).await.unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(report.source.kind, SourceKind::Backup);
    assert_eq!(report.source.file.as_deref(), Some(file.as_path()));
    assert!(report.source.lock_skipped);
    let c = report.migrations[0].changes.as_ref().unwrap();
    assert_eq!((c.added, c.removed), (2, 2));
    assert_eq!(
        prod.counts().await["total"],
        0,
        "nothing reached production"
    );
}

/// A rehearsal that must fail; the scripts it ran go to `calls`.
async fn fails(
    prod: &Prod,
    source: Source<'_>,
    options: RehearseOptions,
    cfg: Config,
    calls: &Arc<Mutex<Vec<String>>>,
) -> Error {
    let r = Rehearsal {
        cfg: &cfg,
        cwd: prod.dir.path(),
        source,
        options,
        log: Arc::new(|_| {}),
        events: None,
        stop: StopFlag::default(),
        progress: None,
    };
    let host = Host {
        calls: calls.clone(),
        ..prod.host()
    };
    rehearse::rehearse(r, host).await.expect_err("fails")
}

#[tokio::test]
async fn bad_inputs_and_unreadable_sources_fail_before_anything_runs() {
    let mut prod = Prod::new().await;
    let calls = Arc::new(Mutex::new(Vec::new()));
    prod.add(RENAME, rename());
    let cfg = prod.cfg.clone();
    common::reset_counts(&prod.emu).await;

    let e = fails(
        &prod,
        Source::Database(&prod.client),
        RehearseOptions {
            target: Some(42),
            ..Default::default()
        },
        cfg.clone(),
        &calls,
    )
    .await;
    // A bad target is bad input, as in the CLI and the library.
    assert_eq!(e.code, ErrorCode::ConfigInvalid, "{e}");

    let missing = prod.dir.path().join("nope.json");
    let e = fails(
        &prod,
        Source::Backup(missing),
        RehearseOptions::default(),
        cfg.clone(),
        &calls,
    )
    .await;
    assert_eq!(e.code, ErrorCode::SourceUnreadable, "{e}");
    assert!(e.message.contains("nope.json"), "{e}");

    let not_backup = prod.dir.path().join("data.json");
    std::fs::write(&not_backup, r#"{"users": {}}"#).unwrap();
    let e = fails(
        &prod,
        Source::Backup(not_backup),
        RehearseOptions::default(),
        cfg.clone(),
        &calls,
    )
    .await;
    assert_eq!(e.code, ErrorCode::ValidationFailed, "{e}");
    assert!(e.message.contains("metadata"), "{e}");

    let other_shift = Config {
        shift: Some("staging".into()),
        ..cfg.clone()
    };
    let file = msr_firebase::backup::create(&prod.client, &prod.cfg, prod.dir.path())
        .await
        .unwrap();
    common::reset_counts(&prod.emu).await;
    let e = fails(
        &prod,
        Source::Backup(file),
        RehearseOptions::default(),
        other_shift,
        &calls,
    )
    .await;
    assert_eq!(e.code, ErrorCode::ValidationFailed, "{e}");
    assert!(
        e.message.contains("/app") && e.message.contains("/staging"),
        "{e}"
    );

    let e = fails(
        &prod,
        Source::Database(&prod.client),
        RehearseOptions {
            keep: Some(prod.dir.path().join("no/such/folder/x.json")),
            ..Default::default()
        },
        cfg.clone(),
        &calls,
    )
    .await;
    assert_eq!(e.code, ErrorCode::ConfigInvalid, "{e}");

    // The source cannot be read: production refuses the subtree.
    common::lever(
        &prod.emu,
        reqwest::Method::PUT,
        "deny",
        Some(json!({"paths": ["app"]})),
    )
    .await;
    let e = fails(
        &prod,
        Source::Database(&prod.client),
        RehearseOptions::default(),
        cfg,
        &calls,
    )
    .await;
    assert_eq!(e.code, ErrorCode::SourceUnreadable, "{e}");
    assert!(e.message.contains("/app"), "{e}");
    assert!(calls.lock().unwrap().is_empty(), "no script ran");
    common::lever(&prod.emu, reqwest::Method::DELETE, "deny", None).await;
    prod.only_read().await;
}

#[tokio::test]
async fn nothing_pending_says_so() {
    let prod = Prod::new().await;
    common::reset_counts(&prod.emu).await;
    let report = prod
        .rehearse(Source::Database(&prod.client), RehearseOptions::default())
        .await
        .unwrap();
    assert!(report.success);
    assert!(report.migrations.is_empty());
    assert_eq!(report.executed, 1);
    prod.only_read().await;
    assert_eq!(prod.counts().await["total"], json!(report.source.requests));
}

// ---------------------------------------------------------------------------------------------
// Under production's rules

/// The `/.settings/rules` requests production's journal saw, and whether everything it saw was
/// a read.
async fn rules_reads(prod: &Prod) -> (usize, bool) {
    let j = common::lever(&prod.emu, reqwest::Method::GET, "journal", None).await;
    let entries = j["entries"].as_array().cloned().unwrap_or_default();
    let rules = entries
        .iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/.settings/rules")
        })
        .count();
    (rules, entries.iter().all(|e| e["method"] == "GET"))
}

#[tokio::test]
async fn under_the_override_a_write_production_rules_deny_fails_naming_the_migration_and_the_path()
{
    let mut prod = Prod::new().await;
    // Production's rules: the migrator reads the shift and writes users and the runner's own
    // nodes — not settings.
    let rules = r#"{
      // what the migrator may do
      "rules": { "app": {
        ".read": "auth.uid === 'migrator'",
        "users": { ".write": "auth.uid === 'migrator'" },
        "migrations": { ".write": "auth.uid === 'migrator'" },
        "schema_version": { ".write": "auth.uid === 'migrator'" }
      } }
    }"#;
    prod.emu.set_rules(
        Some("prod"),
        msr_firebase::rules::Rules::parse(rules).unwrap(),
    );
    let auth = json!({"uid": "migrator"});
    prod.cfg.database_auth_variable_override = Some(auth.clone());
    prod.add(RENAME, rename());
    prod.add(THIRD, set("settings", json!({"theme": "dark"}), true));
    let source = common::client_as(prod.cfg.database_url.as_deref().unwrap(), 1, Some(auth));
    common::reset_counts(&prod.emu).await;
    common::lever(&prod.emu, reqwest::Method::PUT, "journal", None).await;
    let before = prod.data();

    let report = prod
        .rehearse(Source::Database(&source), RehearseOptions::default())
        .await
        .unwrap();

    assert!(!report.success, "{report:#?}");
    assert_eq!(report.rules.origin, rehearse::RulesOrigin::Production);
    assert_eq!(report.rules.requests, 1);
    assert!(!report.rules.as_admin);
    let e = report.error.as_ref().unwrap();
    assert_eq!(e.migration.as_deref(), Some(THIRD));
    assert!(
        e.message.contains(THIRD) && e.message.contains("PUT /app/settings"),
        "{}",
        e.message
    );
    let [renamed, third] = &report.migrations[..] else {
        panic!("{:?}", report.migrations)
    };
    assert_eq!(renamed.outcome, Outcome::Succeeded, "{renamed:?}");
    assert!(renamed.findings.denied.is_empty(), "{renamed:?}");
    assert_eq!(third.outcome, Outcome::Failed);
    assert_eq!(
        third.findings.denied,
        [rehearse::RefusedWrite {
            method: "PUT".into(),
            path: "/app/settings".into(),
            status: 401
        }]
    );
    // Production: untouched, read only; its rules read with one request.
    assert_eq!(prod.data(), before);
    prod.only_read().await;
    assert_eq!(rules_reads(&prod).await, (1, true));
}

#[tokio::test]
async fn data_a_validate_rule_refuses_after_a_migration_warns_and_fails_under_strict() {
    let mut prod = Prod::new().await;
    // Ages must be numbers; post titles too (p1's is not, but no migration touches it).
    let file = prod.dir.path().join("database.rules.json");
    std::fs::write(
        &file,
        r#"{ "rules": { ".read": true, ".write": true, "app": {
             "users": { "$uid": { "age": { ".validate": "newData.isNumber()" } } },
             "posts": { "$p": { "title": { ".validate": "newData.isNumber()" } } } } } }"#,
    )
    .unwrap();
    prod.add(RENAME, set("users/u1/age", json!("thirty"), true));
    let options = |strict| RehearseOptions {
        rules: rehearse::RulesChoice::File(file.clone()),
        strict,
        ..Default::default()
    };
    common::reset_counts(&prod.emu).await;
    let report = prod
        .rehearse(Source::Database(&prod.client), options(false))
        .await
        .unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(report.rules.origin, rehearse::RulesOrigin::File);
    assert_eq!(report.rules.requests, 0);
    assert_eq!(report.warnings, 1);
    let f = &report.migrations[0].findings;
    assert_eq!(
        f.invalid,
        [rehearse::InvalidData {
            path: "/app/users/u1/age".into(),
            rule: "newData.isNumber()".into(),
            line: 2
        }]
    );
    assert_eq!(f.invalid_total, 1);

    let strict = prod
        .rehearse(Source::Database(&prod.client), options(true))
        .await
        .unwrap();
    assert!(!strict.success);
    let e = strict.error.as_ref().unwrap();
    assert_eq!(e.migration.as_deref(), Some(RENAME));
    assert!(e.message.contains("/app/users/u1/age"), "{}", e.message);
    assert_eq!(
        strict
            .failure()
            .map(|e| msr_firebase::ExitStatus::of_failure(
                e.code,
                msr_firebase::ExitStatus::MigrationFailed
            )),
        Some(msr_firebase::ExitStatus::MigrationFailed)
    );
    prod.only_read().await;
}

/// Many changed paths (more than the diff hands the `.validate` check at a time): every
/// violation counted, the first ones listed in key order.
#[tokio::test]
async fn validate_findings_over_many_changed_paths_come_in_key_order() {
    let mut prod = Prod::new().await;
    let file = prod.dir.path().join("database.rules.json");
    std::fs::write(
        &file,
        r#"{ "rules": { ".read": true, ".write": true, "app": {
             "bulk": { "$k": { "age": { ".validate": "newData.isNumber()" } } } } } }"#,
    )
    .unwrap();
    let n = 9000;
    let key = |i: usize| format!("k{i:05}");
    let before: Map<String, Value> = (0..n)
        .map(|i| (key(i), json!({"age": 1, "n": i})))
        .collect();
    prod.client
        .set("app/bulk", &Value::Object(before))
        .await
        .unwrap();
    // Every record changed; every 7th age made a string.
    let after: Map<String, Value> = (0..n)
        .map(|i| {
            let age = if i % 7 == 3 { json!("old") } else { json!(2) };
            (key(i), json!({"age": age, "n": i}))
        })
        .collect();
    prod.add(RENAME, set("bulk", Value::Object(after), true));
    let report = prod
        .rehearse(
            Source::Database(&prod.client),
            RehearseOptions {
                rules: rehearse::RulesChoice::File(file.clone()),
                examples: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(report.success, "{report:#?}");
    let m = &report.migrations[0];
    assert_eq!(m.changes.as_ref().unwrap().changed, n as u64);
    let f = &m.findings;
    assert_eq!(
        f.invalid_total,
        (0..n).filter(|i| i % 7 == 3).count() as u64
    );
    let paths: Vec<&str> = f.invalid.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/app/bulk/k00003/age",
            "/app/bulk/k00010/age",
            "/app/bulk/k00017/age",
            "/app/bulk/k00024/age"
        ]
    );
}

#[tokio::test]
async fn production_rules_refused_are_said_and_the_rehearsal_goes_on_without_them() {
    let mut prod = Prod::new().await;
    prod.add(RENAME, rename());
    // A production that serves the data but refuses its rules document.
    let data = serde_json::to_string(&prod.data()).unwrap();
    let fake = common::fake_server(Arc::new(move |s: &common::Seen, _| {
        if s.uri.starts_with("/.settings/rules.json") {
            common::answer(401, r#"{"error": "Permission denied"}"#)
        } else {
            common::answer(200, data.clone())
        }
    }))
    .await;
    prod.cfg.database_url = Some(fake.url());
    prod.cfg.database_auth_variable_override = Some(json!({"uid": "migrator"}));
    let source = common::client_as(&fake.url(), 1, Some(json!({"uid": "migrator"})));
    let report = prod
        .rehearse(Source::Database(&source), RehearseOptions::default())
        .await
        .unwrap();
    assert!(report.success, "{report:#?}");
    assert_eq!(report.rules.origin, rehearse::RulesOrigin::None);
    assert_eq!(report.rules.requests, 1);
    let note = report.rules.note.as_deref().unwrap_or_default();
    assert!(
        note.contains("could not be read") && note.contains("--rules"),
        "{note}"
    );
    // One request for the rules, as an admin: without the override the data reads carry.
    let rules: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.uri.starts_with("/.settings/rules.json"))
        .collect();
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert!(
        !rules[0].uri.contains("auth_variable_override"),
        "{rules:?}"
    );
    assert!(fake.seen().iter().all(|s| s.method == "GET"));
}

// ---------------------------------------------------------------------------------------------
// Under production's write-size limit, and what the scripts said of triggers

/// 40 users of about 130 bytes each: about 5.5 KB of JSON.
fn big_node() -> Value {
    Value::Object(
        (0..40)
            .map(|i| (format!("u{i:03}"), json!({"name": "x".repeat(100), "n": i})))
            .collect(),
    )
}

/// Budgets so small that replacing `big_node()` in one request is too big at `large`.
fn small_budgets() -> rehearse::WriteBudgets {
    rehearse::WriteBudgets {
        tiny: 300,
        small: 1000,
        medium: 2000,
        large: 3000,
    }
}

#[tokio::test]
async fn a_write_too_big_for_one_request_fails_the_rehearsal_as_production_would() {
    let mut prod = Prod::new().await;
    prod.client.set("app/big", &big_node()).await.unwrap();
    // No rollback: the copy's restore would clear the big node in one request, too big as well.
    prod.cfg.rollback_strategy = msr_firebase::config::RollbackStrategy::None;
    prod.add(RENAME, rename());
    prod.add(THIRD, set("big", json!("replaced in one request"), true));
    common::reset_counts(&prod.emu).await;
    let before = prod.data();

    let report = prod
        .rehearse(
            Source::Database(&prod.client),
            RehearseOptions {
                write_budgets: small_budgets(),
                ..RehearseOptions::default()
            },
        )
        .await
        .unwrap();

    assert!(!report.success, "{report:#?}");
    let e = report.error.as_ref().unwrap();
    assert_eq!(e.migration.as_deref(), Some(THIRD));
    assert!(
        e.message.contains("WRITE_TOO_BIG")
            && e.message.contains(&format!(
                "{THIRD}: PUT /app/big was too big for one request (WRITE_TOO_BIG under production's large write-size limit)"
            )),
        "{}",
        e.message
    );
    let [renamed, third] = &report.migrations[..] else {
        panic!("{:?}", report.migrations)
    };
    assert_eq!(renamed.outcome, Outcome::Succeeded, "{renamed:?}");
    assert!(renamed.findings.too_big.is_empty(), "{renamed:?}");
    assert_eq!(third.outcome, Outcome::Failed);
    assert_eq!(
        third.findings.too_big,
        [rehearse::TooBigWrite {
            method: "PUT".into(),
            path: "/app/big".into(),
            refusals: 1,
            handled: rehearse::TooBigHandling::Failed,
        }]
    );
    assert!(third.findings.refused.is_empty(), "{third:?}");
    // Nothing was written: the copy still has the big node as it was.
    assert!(third.changes.as_ref().unwrap().is_empty(), "{third:?}");
    // Each migration's writes, by triggers: the rename's one PATCH, the refused PUT (sent all
    // the same); the runner's lock and history writes left out.
    let writes = |with, disabled| {
        Some(rehearse::TriggerWrites {
            with_triggers: with,
            triggers_disabled: disabled,
        })
    };
    assert_eq!(renamed.findings.triggers, writes(1, 0));
    assert_eq!(third.findings.triggers, writes(1, 0));
    // In JSON.
    let j = serde_json::to_value(&report).unwrap();
    assert_eq!(
        j["migrations"][1]["findings"]["tooBig"],
        json!([{"method": "PUT", "path": "/app/big", "refusals": 1, "handled": "failed"}])
    );
    assert_eq!(
        j["migrations"][0]["findings"]["triggers"],
        json!({"withTriggers": 1, "triggersDisabled": 0})
    );
    // Production: untouched, read only.
    assert_eq!(prod.data(), before);
    prod.only_read().await;
}

#[tokio::test]
async fn under_the_default_large_limit_ordinary_writes_pass_and_disable_triggers_is_counted() {
    let mut prod = Prod::new().await;
    prod.client.set("app/big", &big_node()).await.unwrap();
    // A script that writes twice with disableTriggers=true (as Google's CLI does) and once
    // without: a client sending the parameter itself, to the copy it was given.
    prod.add(
        RENAME,
        Script {
            up: step(|c: Client| async move {
                let http = reqwest::Client::new();
                for (path, body) in [
                    ("app/flags", json!({"a": 1})),
                    ("app/more", json!({"b": 2})),
                ] {
                    let url = format!(
                        "{}?ns={}&disableTriggers=true",
                        c.url().data_url(path),
                        rehearse::NAMESPACE
                    );
                    let res = http
                        .patch(url)
                        .header("Authorization", "Bearer owner")
                        .body(body.to_string())
                        .send()
                        .await
                        .unwrap();
                    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
                }
                c.set("app/big", &json!("replaced")).await?;
                Ok(Value::Null)
            }),
            down: None,
        },
    );
    common::reset_counts(&prod.emu).await;
    let before = prod.data();

    let report = prod
        .rehearse(Source::Database(&prod.client), RehearseOptions::default())
        .await
        .unwrap();

    assert!(report.success, "{report:#?}");
    let [m] = &report.migrations[..] else {
        panic!("{:?}", report.migrations)
    };
    // 5.5 KB is far below `large` (60 MB): replaced in one request.
    assert!(m.findings.too_big.is_empty(), "{m:?}");
    assert_eq!(
        m.findings.triggers,
        Some(rehearse::TriggerWrites {
            with_triggers: 1,
            triggers_disabled: 2,
        })
    );
    assert_eq!(prod.data(), before);
    prod.only_read().await;
}

#[tokio::test]
async fn a_delete_too_big_for_one_request_goes_in_chunks_in_the_copy_and_the_report_says_so() {
    let mut prod = Prod::new().await;
    prod.client.set("app/big", &big_node()).await.unwrap();
    prod.add(
        RENAME,
        Script {
            up: step(|c: Client| async move {
                c.remove("app/big").await?;
                Ok(Value::Null)
            }),
            down: None,
        },
    );
    common::reset_counts(&prod.emu).await;
    let before = prod.data();

    let report = prod
        .rehearse(
            Source::Database(&prod.client),
            RehearseOptions {
                write_budgets: small_budgets(),
                ..RehearseOptions::default()
            },
        )
        .await
        .unwrap();

    assert!(report.success, "{report:#?}");
    let [m] = &report.migrations[..] else {
        panic!("{:?}", report.migrations)
    };
    let f = &m.findings;
    assert_eq!(
        (f.too_big[0].method.as_str(), f.too_big[0].path.as_str()),
        ("DELETE", "/app/big"),
        "{f:?}"
    );
    assert!(
        f.too_big
            .iter()
            .all(|t| t.handled == rehearse::TooBigHandling::Chunked),
        "{f:?}"
    );
    let [chunked] = &f.chunked[..] else {
        panic!("{f:?}")
    };
    assert_eq!(chunked.path, "/app/big");
    assert!(chunked.requests > 2, "{chunked:?}");
    assert_eq!(m.changes.as_ref().unwrap().removed, 80, "{m:?}");
    assert_eq!(prod.data(), before);
    prod.only_read().await;
}

/// A PUT of JSON text at `path` of production (priorities: the crate's client writes data).
async fn put_text(prod: &Prod, path: &str, body: &str) {
    let r = reqwest::Client::new()
        .put(format!("{}/{path}.json?ns=prod", prod.emu.url()))
        .header("Authorization", "Bearer owner")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// The rehearsal's copy keeps priorities (it reads with `format=export`): the sandbox has them,
/// so the kept file has them and a restore of it puts them back. A small subtree is still one
/// GET; one read in pages costs one more, for the split node's own priority.
#[tokio::test]
async fn the_copy_keeps_priorities_and_a_small_subtree_is_still_one_read() {
    let mut prod = Prod::new().await;
    prod.add(THIRD, set("settings", json!({"theme": "dark"}), true));
    let ranked = json!({"a": {"score": 1, ".priority": 2}, "b": {".value": "x", ".priority": "p"}});
    put_text(&prod, "app/ranked", &ranked.to_string()).await;
    put_text(&prod, "app/.priority", "7").await;
    let keep = prod.dir.path().join("rehearsed.json");
    for paged in [false, true] {
        if paged {
            common::lever(
                &prod.emu,
                reqwest::Method::PUT,
                "limits",
                Some(json!({"responseBytes": 300})),
            )
            .await;
        }
        common::reset_counts(&prod.emu).await;
        let report = prod
            .rehearse(
                Source::Database(&prod.client),
                RehearseOptions {
                    keep: Some(keep.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(report.success, "{report:#?}");
        let counts = prod.counts().await;
        if paged {
            assert_eq!(counts["byPath"]["GET /app/.priority"], 1, "{counts}");
        } else {
            assert_eq!(report.source.requests, 1, "{:?}", report.source);
            assert_eq!(counts["byPath"]["GET /app"], 1, "{counts}");
        }
        prod.only_read().await;
        // Priorities are not data changes: the migration's diff is the settings it added.
        let c = report.migrations[0].changes.as_ref().unwrap();
        assert_eq!((c.added, c.removed, c.changed), (1, 0, 0), "{c:?}");

        let kept: Value = serde_json::from_slice(&std::fs::read(&keep).unwrap()).unwrap();
        assert_eq!(kept["data"]["ranked"], ranked, "paged: {paged}");
        assert_eq!(kept["data"][".priority"], 7, "paged: {paged}");
        assert_eq!(kept["metadata"]["version"], 2);

        let staging = common::emulator().await;
        let staging_client = client_for(&format!("{}?ns=staging", staging.url()));
        msr_firebase::backup::restore(&staging_client, &prod.cfg, &keep)
            .await
            .unwrap();
        let app = &staging.export()["staging"]["app"];
        assert_eq!(app["ranked"], ranked);
        assert_eq!(app[".priority"], 7);
        assert_eq!(app["settings"], json!({"theme": "dark"}));
        staging.stop().await.unwrap();
    }
}
