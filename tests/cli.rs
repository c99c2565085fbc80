//! The CLI in-process (`msr_firebase::cli::run`, as bin/msr-firebase.js runs it) against the
//! embedded emulator: how `migrate` and `down` wait for a lock another process holds.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use msr_firebase::cli::{self, CliHost, Io};
use msr_firebase::config::Config;
mod common;

use msr_firebase::emulator::Emulator;
use msr_firebase::rtdb::WriteGate;
use msr_firebase::runner::{Method, ScriptDb, ScriptHost, ScriptMeta};
use msr_firebase::{Error, ErrorCode, Result};
use serde_json::{json, Value};

/// A host that loads no scripts (the tests' folders hold only a beforeMigrate script, never run) and no JS config files
/// (the tests use `msr.config.json`, which the CLI reads itself).
#[derive(Clone)]
struct NoJs;

impl ScriptHost for NoJs {
    async fn load(&self, file: &Path) -> Result<ScriptMeta> {
        Err(Error::new(
            ErrorCode::ScriptFailed,
            format!("no scripts here: {}", file.display()),
        ))
    }
    async fn run(&self, file: &Path, _: Method, _: &Value, _: &ScriptDb) -> Result<Value> {
        self.load(file).await.map(|_| Value::Null)
    }
}

impl CliHost for NoJs {
    async fn load_config(&self, file: &Path) -> Result<Value> {
        Err(Error::config(format!("no JS here: {}", file.display())))
    }
}

/// Start an emulator, hold the lock of namespace `ns` as another executor, and write a config
/// file with `locking` merged in. Returns the emulator, the config file and the project dir.
async fn held_lock_project(ns: &str, locking: Value) -> (Emulator, String, tempfile::TempDir) {
    let emu = common::emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("migrations");
    std::fs::create_dir(&folder).unwrap();
    // Something to do under the lock (a `migrate` with nothing to do never takes it): a
    // beforeMigrate script, which runs on every migrate, under the lock. Never loaded here: the
    // lock stays held.
    std::fs::write(folder.join("beforeMigrate.js"), "").unwrap();
    let mut lock = json!({"enabled": true, "timeout": 60_000});
    msr_firebase::config::deep_merge(&mut lock, &locking);
    let config = json!({
        "folder": folder,
        "databaseUrl": format!("{}?ns={ns}", emu.url()),
        "locking": lock,
    });
    let cfg = Config::from_value(&config).unwrap();
    let client = msr_firebase::connection::client_for(&cfg, dir.path()).unwrap();
    assert!(cfg
        .lock_service(&client)
        .acquire("holder-elsewhere")
        .await
        .unwrap());
    let file = dir.path().join("msr.config.json");
    std::fs::write(&file, config.to_string()).unwrap();
    (emu, file.to_string_lossy().into_owned(), dir)
}

/// Run the CLI; fails the test if it is still waiting after `limit`.
async fn run_within(args: &[&str], limit: Duration) -> (i32, String, String) {
    let (mut io, out, err) = Io::capture();
    let argv = args.iter().map(|s| s.to_string()).collect();
    let code = tokio::time::timeout(limit, cli::run(argv, NoJs, &mut io))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`msr-firebase {}` was still waiting after {limit:?}",
                args.join(" ")
            )
        });
    (code, out.text(), err.text())
}

/// stderr from the give-up line on (the wait's first line comes before it): that line and the
/// rest.
fn gave_up_and_held(err: &str) -> (&str, &str) {
    let at = err
        .find("Gave up waiting")
        .unwrap_or_else(|| panic!("no give-up line: {err}"));
    assert!(
        err[..at].starts_with(
            "Waiting for the migration lock at migrations/_lock: held by holder-elsewhere"
        ),
        "the wait was announced first: {err}"
    );
    err[at..].split_once('\n').unwrap()
}

const HELD: &str =
    "Migration lock is currently held by another process.\nExecutor: holder-elsewhere\n";

/// `locking.waitTimeout` bounds the wait of `down` as it bounds `migrate`'s: both give up with
/// exit 3 (the table's "lock held", whichever command: nothing was rolled back) once it has
/// passed, saying they gave up after the wait limit and which setting sets it, followed by the
/// guide's LOCK_HELD text.
#[tokio::test]
async fn down_and_migrate_give_up_after_locking_wait_timeout() {
    for (cmd, exit_code) in [("down", 3), ("migrate", 3)] {
        let ns = format!("cli-wait-{cmd}");
        let (emu, file, _dir) = held_lock_project(&ns, json!({"waitTimeout": 700})).await;
        let args: Vec<&str> = match cmd {
            "down" => vec!["down", "0", "--config-file", &file],
            _ => vec!["migrate", "--config-file", &file],
        };
        let started = Instant::now();
        let (code, _out, err) = run_within(&args, Duration::from_secs(20)).await;
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "{cmd} did not wait"
        );
        assert_eq!(code, exit_code, "{cmd}: {err}");
        let (gave_up, held) = gave_up_and_held(&err);
        assert!(
            gave_up.starts_with("Gave up waiting for the migration lock at migrations/_lock after 0.") && gave_up.ends_with(
                ": the wait limit is 0.7 s, set by locking.waitTimeout (MSR_LOCKING_WAIT_TIMEOUT); raise it to wait longer."
            ),
            "{cmd}: {err}"
        );
        assert!(held.starts_with(HELD), "{cmd}: {err}");
        emu.stop().await.unwrap();
    }
}

/// `--no-wait` fails fast on both commands with the guide's text alone; `--wait-timeout` bounds
/// `migrate` and `down`, and their give-up message names the flag.
#[tokio::test]
async fn no_wait_and_wait_timeout_flags() {
    let (emu, file, _dir) = held_lock_project("cli-flags", json!({"waitTimeout": 60_000})).await;
    for args in [
        vec!["down", "0", "--no-wait", "--config-file", &file],
        vec!["migrate", "--no-wait", "--config-file", &file],
    ] {
        let (code, _out, err) = run_within(&args, Duration::from_secs(20)).await;
        assert_ne!(code, 0, "{args:?}");
        assert!(err.starts_with(HELD), "{args:?}: {err}");
    }
    for args in [
        vec!["migrate", "--wait-timeout", "300", "--config-file", &file],
        vec!["down", "0", "--wait-timeout", "300", "--config-file", &file],
    ] {
        let (code, _out, err) = run_within(&args, Duration::from_secs(20)).await;
        assert_ne!(code, 0, "{args:?}");
        let (gave_up, held) = gave_up_and_held(&err);
        assert!(
            gave_up
                .starts_with("Gave up waiting for the migration lock at migrations/_lock after ")
                && gave_up.ends_with(
                    "the wait limit is 0.3 s, set by --wait-timeout; raise it to wait longer."
                ),
            "{args:?}: {err}"
        );
        assert!(held.starts_with(HELD), "{args:?}: {err}");
    }
    emu.stop().await.unwrap();
}

/// Scripts that write, through the `db` they are given, which pod ran them, and note what that
/// `db` is: its id, whether its writes are bounded by a lease, who holds the lock its lock
/// service sees. The scripts of two commands meet at `both` before writing, so that both
/// commands' runners exist when they do.
#[derive(Clone)]
struct Pod {
    name: &'static str,
    both: Arc<tokio::sync::Barrier>,
    seen: Arc<Mutex<Vec<SeenDb>>>,
}

/// What a script saw of its `db`.
#[derive(Clone, Debug)]
struct SeenDb {
    id: u64,
    /// Its writes are bounded by a lease.
    fenced: bool,
    /// Who holds the lock, as its lock service sees it.
    holder: Option<String>,
}

impl ScriptHost for Pod {
    async fn load(&self, _: &Path) -> Result<ScriptMeta> {
        Ok(ScriptMeta {
            has_up: true,
            has_down: false,
            up_is_async: true,
        })
    }
    async fn run(&self, _: &Path, _: Method, _: &Value, db: &ScriptDb) -> Result<Value> {
        self.both.wait().await;
        db.client.set("ran_by", &json!(self.name)).await?;
        let holder = match &db.lock {
            Some(lock) => lock.status().await?.map(|s| s.locked_by),
            None => None,
        };
        let fenced = db.fence.admit()?.is_some();
        self.seen.lock().unwrap().push(SeenDb {
            id: db.id,
            fenced,
            holder,
        });
        Ok(Value::Null)
    }
}

impl CliHost for Pod {
    async fn load_config(&self, file: &Path) -> Result<Value> {
        Err(Error::config(format!("no JS here: {}", file.display())))
    }
}

/// Two `migrate` commands in one process, on two databases, at the same time: the scripts of
/// each get their own command's `db` — their writes land in their own database, fenced by their
/// own runner's lease, and the lock service they are handed sees their own runner's lock. (A
/// `db` kept in a process global would hand both the one set last.)
#[tokio::test]
async fn two_commands_in_one_process_give_their_scripts_their_own_fenced_db() {
    let emu = common::emulator().await;
    let both = Arc::new(tokio::sync::Barrier::new(2));
    let project = |pod: &str| {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("migrations");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("V202501010001_mark.js"), "").unwrap();
        let config = json!({
            "folder": folder,
            "databaseUrl": format!("{}?ns=two-{pod}", emu.url()),
            "locking": {"enabled": true, "timeout": 60_000, "executorId": pod},
        });
        let file = dir.path().join("msr.config.json");
        std::fs::write(&file, config.to_string()).unwrap();
        (dir, file.to_string_lossy().into_owned())
    };
    let ((_a, file_a), (_b, file_b)) = (project("pod-a"), project("pod-b"));
    let run = |name: &'static str, file: String| {
        let pod = Pod {
            name,
            both: both.clone(),
            seen: Arc::default(),
        };
        let seen = pod.seen.clone();
        async move {
            let (mut io, _out, err) = Io::capture();
            let argv = vec!["migrate".to_string(), "--config-file".to_string(), file];
            let code = tokio::time::timeout(Duration::from_secs(20), cli::run(argv, pod, &mut io))
                .await
                .expect("both scripts ran");
            assert_eq!(code, 0, "{name}: {}", err.text());
            let seen = seen.lock().unwrap().clone();
            seen
        }
    };
    let (seen_a, seen_b) = tokio::join!(run("pod-a", file_a), run("pod-b", file_b));

    let data = emu.export();
    assert_eq!(data["two-pod-a"]["ran_by"], "pod-a", "{data}");
    assert_eq!(data["two-pod-b"]["ran_by"], "pod-b", "{data}");
    let ([a], [b]) = (seen_a.as_slice(), seen_b.as_slice()) else {
        panic!("one script each: {seen_a:?} {seen_b:?}")
    };
    assert_ne!(a.id, b.id, "two runners, two dbs");
    assert!(a.fenced && b.fenced, "each db fenced by its runner's lease");
    assert_eq!(a.holder.as_deref(), Some("pod-a"));
    assert_eq!(b.holder.as_deref(), Some("pod-b"));
    emu.stop().await.unwrap();
}
