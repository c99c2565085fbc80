//! Rehearsals: the pending migrations run on a copy of the data in an emulator inside this
//! process, and a report of what each would change.
//!
//! 1. The data: a walk of the `{shift}` subtree of the configured database (`backup::walk`:
//!    reads only, bounded responses, streamed) or a backup file, loaded into a fresh embedded
//!    emulator as it arrives (`Emulator::import_stream`). The history comes along as it is; a
//!    live lock in the data is not copied. A walk in pages is not a point-in-time snapshot
//!    (writes made while it runs may or may not be in it); the report says which it was.
//! 2. The run: the unmodified `Runner` with the user's config and scripts, pointed at the
//!    sandbox (`Sandbox`): `beforeMigrate`, the lock with its renewal, history records, the
//!    backup before the run and the rollback strategy all happen there as in a real run. The
//!    scripts get the sandbox as their `db` (the caller builds the host for it, see
//!    [`rehearse`]). Nothing is ever written to the source database.
//! 3. The report: the runner's events mark each migration's start and end; at each end the
//!    data is written to a snapshot file (on disk) and the previous snapshot is compared with
//!    the tree (`diff`), so memory holds the emulator's data and no second copy of it. Requests
//!    are the sandbox's counts for the step.
//! 4. `down`: after the ups, the downs back to where the data started (newest first), each
//!    compared with the snapshot taken before its `up`; a migration without `down()` stops them.

pub mod diff;
pub mod report;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backup::{self, Metadata, Progress, WalkOptions};
use crate::config::Config;
use crate::emulator::{Emulator, EmulatorOptions, RequestCounts, StoreView};
use crate::lock::Fence;
use crate::log::{LineFn, LogLine};
use crate::rtdb::{path, Client};
use crate::runner::plan::{check_target, DownTo};
use crate::runner::{
    EventFn, Method, MigrationInfo, RunEvent, RunOptions, Runner, ScriptHost, StopFlag,
};
use crate::{Error, ErrorCode, Result};

use diff::{DiffInput, Exclusions};
pub use report::{
    ChangeKind, Changes, ChildChanges, DownCheck, DownOutcome, DownReport, Example, Outcome,
    RehearsalReport, RehearsedMigration, ReportError, Requests, RollbackInfo, SourceInfo,
    SourceKind, Totals,
};

/// The sandbox's namespace.
pub const NAMESPACE: &str = "rehearsal";
/// Example paths per migration by default.
pub const DEFAULT_EXAMPLES: usize = 10;

/// Where the data comes from.
pub enum Source<'a> {
    /// A walk of the `{shift}` subtree of this database (reads only).
    Database(&'a Client),
    /// A backup file (no database is contacted).
    Backup(PathBuf),
}

/// What to rehearse and how.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    /// Stop at this version.
    pub target: Option<u64>,
    /// After the ups, run the downs back and check that they undo the ups.
    pub down: bool,
    /// Write the data after the ups to this file, as a backup file.
    pub keep: Option<PathBuf>,
    /// Example paths per migration at most.
    pub examples: usize,
    /// Run without the lock (`--no-lock`).
    pub no_lock: bool,
    /// How the source database is read.
    pub walk: WalkOptions,
}

impl Default for RehearseOptions {
    fn default() -> Self {
        RehearseOptions {
            target: None,
            down: false,
            keep: None,
            examples: DEFAULT_EXAMPLES,
            no_lock: false,
            walk: WalkOptions::default(),
        }
    }
}

/// A rehearsal to run.
pub struct Rehearsal<'a> {
    /// The user's configuration (its database is the source; the sandbox gets a copy of it).
    pub cfg: &'a Config,
    pub cwd: &'a Path,
    pub source: Source<'a>,
    pub options: RehearseOptions,
    /// The runner's log lines (marked as the rehearsal's).
    pub log: LineFn,
    /// Who else hears the run's events (the CLI's progress line); hooks and metrics collectors
    /// are not called for a rehearsal, which is not a deploy.
    pub events: Option<EventFn>,
    pub stop: StopFlag,
    /// Counted into while the data is read.
    pub progress: Option<Arc<Progress>>,
}

/// The emulator the scripts run against.
pub struct Sandbox {
    /// `http://127.0.0.1:<port>?ns=rehearsal`
    pub url: String,
    /// The user's configuration pointed at the sandbox.
    pub cfg: Config,
    /// A client for it (`connection::sandbox_client`).
    pub client: Client,
    /// The rehearsal runner's fence: the scripts' `db` is to be fenced by it, as in a real run.
    pub fence: Fence,
}

impl Sandbox {
    /// What a script host needs to give scripts the sandbox as their `db`: `{ url, config }`.
    pub fn database(&self) -> Value {
        json!({ "url": self.url, "config": self.cfg.to_value() })
    }
}

fn source_error(what: &str, e: &Error) -> Error {
    Error::new(
        ErrorCode::SourceUnreadable,
        format!(
            "Cannot read {what} to rehearse on: {}; nothing was run",
            e.message
        ),
    )
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("The rehearsal failed: {what}: {e}"))
}

/// Rehearse the pending migrations (see the module docs). `host_for` builds the script host
/// whose scripts see the sandbox as their `db` (its client, fenced by its fence). `Err` when there was nothing to rehearse on
/// (bad input: CONFIG_INVALID / VALIDATION_FAILED; the source unreadable: SOURCE_UNREADABLE);
/// a failing migration or a `down` that does not undo its `up` is a report with
/// `success: false` and its `error`.
pub async fn rehearse<H, F, Fut>(r: Rehearsal<'_>, host_for: F) -> Result<RehearsalReport>
where
    H: ScriptHost,
    F: FnOnce(&Sandbox) -> Fut,
    Fut: std::future::Future<Output = Result<H>>,
{
    let started = Instant::now();
    if let Some(t) = r.options.target {
        check_target(t, false)?;
    }
    if let Some(keep) = &r.options.keep {
        check_keep(keep)?;
    }
    let shift = r.cfg.shift_path();
    let at = shift.clone().unwrap_or_default();
    let shown = format!("/{at}");
    let segs = path::segments(&at)?;

    let work = tempfile::Builder::new()
        .prefix("msr-rehearsal-")
        .tempdir()
        .map_err(|e| internal("cannot create a folder for its snapshots", e))?;
    let emu = Emulator::start(EmulatorOptions::default()).await?;
    let url = format!("{}?ns={NAMESPACE}", emu.url());
    let mut sandbox_cfg = r.cfg.clone();
    sandbox_cfg.database_url = Some(url.clone());
    sandbox_cfg.application_credentials = None;
    sandbox_cfg.dry_run = false;
    sandbox_cfg.backup.folder = work.path().join("backups").to_string_lossy().into_owned();
    let sandbox = Sandbox {
        client: crate::connection::sandbox_client(&url, &sandbox_cfg)?,
        url,
        cfg: sandbox_cfg,
        fence: Fence::default(),
    };

    let loaded = load(&r, &emu, &at, &shown).await;
    let mut source = match loaded {
        Ok(s) => s,
        Err(e) => {
            let _ = emu.stop().await;
            return Err(e);
        }
    };
    let lock_at = crate::lock::lock_path(shift.as_deref());
    if !sandbox.client.get_shallow(&lock_at).await?.is_null() {
        sandbox.client.remove(&lock_at).await?;
        source.lock_skipped = true;
    }
    let outcome = run(&r, &emu, sandbox, host_for, source, &segs, work.path()).await;
    let _ = emu.stop().await;
    let mut report = outcome?;
    report.duration_ms = ms(started.elapsed());
    Ok(report)
}

/// `--keep`: a file in an existing folder.
fn check_keep(keep: &Path) -> Result<()> {
    let dir = keep.parent().filter(|d| !d.as_os_str().is_empty());
    if dir.is_some_and(|d| !d.is_dir()) || keep.is_dir() {
        return Err(Error::config(format!(
            "Cannot keep the rehearsed data in {}: name a file in an existing folder",
            keep.display()
        )));
    }
    Ok(())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Load the source into the emulator at `at`.
async fn load(r: &Rehearsal<'_>, emu: &Emulator, at: &str, shown: &str) -> Result<SourceInfo> {
    let progress = r.progress.clone().unwrap_or_default();
    match &r.source {
        Source::Database(client) => {
            progress.phase(backup::Phase::Backup, None);
            let url = backup::public_url(client);
            let walk = backup::walk(client, at, r.options.walk.clone(), progress.clone());
            emu.import_stream(NAMESPACE, at, walk.into_stream())
                .await
                .map_err(|e| source_error(&format!("{shown} from {url}"), &e))?;
            let s = progress.snapshot();
            Ok(SourceInfo {
                kind: SourceKind::Database,
                path: shown.to_string(),
                database_url: Some(url),
                file: None,
                created_at: None,
                bytes: s.bytes,
                requests: s.requests,
                snapshot: s.requests <= 1,
                lock_skipped: false,
            })
        }
        Source::Backup(file) => load_backup(emu, at, shown, file, progress).await,
    }
}

/// A writer into a channel of pieces (the backup's data on its way to the emulator).
struct Pipe {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes>>,
    bytes: u64,
}

impl std::io::Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::other("the import stopped"))?;
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn load_backup(
    emu: &Emulator,
    at: &str,
    shown: &str,
    file: &Path,
    progress: Arc<Progress>,
) -> Result<SourceInfo> {
    let name = file.display().to_string();
    let unreadable = |why: String| {
        Error::new(
            ErrorCode::SourceUnreadable,
            format!("Cannot read the backup {name} to rehearse on: {why}; nothing was run"),
        )
    };
    let bad = |why: String| {
        Error::new(
            ErrorCode::ValidationFailed,
            format!("Cannot rehearse on {name}: {why}"),
        )
    };
    let size = std::fs::metadata(file)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    progress.phase(backup::Phase::Validate, Some(size));
    let path = file.to_path_buf();
    let head = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| (true, e.to_string()))?;
        backup::file::scan(f, backup::file::Mode::Head).map_err(|e| (false, e))
    })
    .await
    .map_err(|e| internal("reading the backup", e))?;
    let meta = match head {
        Ok(s) => s.metadata.expect("a head scan finds the metadata"),
        Err((true, e)) => return Err(unreadable(e)),
        Err((false, e)) => return Err(bad(e)),
    };
    backup::file::check_metadata(&meta).map_err(bad)?;
    let backed_up = meta
        .shift
        .as_deref()
        .map(|s| s.trim_matches('/').to_string())
        .filter(|s| !s.is_empty());
    if backed_up.as_deref().unwrap_or("") != at {
        return Err(bad(format!(
            "it is a backup of /{} but the configured shift is {shown}; rehearse with the shift it was made with",
            backed_up.unwrap_or_default()
        )));
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(4);
    let path = file.to_path_buf();
    let copier = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| (true, e.to_string()))?;
        let mut pipe = std::io::BufWriter::with_capacity(
            256 * 1024,
            Pipe {
                tx: tx.clone(),
                bytes: 0,
            },
        );
        let scanned = backup::file::scan(f, backup::file::Mode::Copy(&mut pipe));
        let flushed = std::io::Write::flush(&mut pipe);
        let copied = pipe.get_ref().bytes;
        match (scanned, flushed) {
            (Ok(_), Ok(())) => Ok(copied),
            (Err(e), _) => {
                let io = e.starts_with("could not read");
                let _ = tx.blocking_send(Err(Error::new(ErrorCode::Internal, e.clone())));
                Err((io, e))
            }
            (_, Err(e)) => Err((false, e.to_string())),
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let imported = emu.import_stream(NAMESPACE, at, stream).await;
    let copied = copier
        .await
        .map_err(|e| internal("reading the backup", e))?;
    let bytes = match (copied, imported) {
        (Err((true, e)), _) => return Err(unreadable(e)),
        (Err((false, e)), _) => return Err(bad(e)),
        (Ok(_), Err(e)) => return Err(bad(e.message)),
        (Ok(n), Ok(())) => n,
    };
    progress.set_bytes(size);
    Ok(SourceInfo {
        kind: SourceKind::Backup,
        path: shown.to_string(),
        database_url: meta.database_url.clone(),
        file: Some(file.to_path_buf()),
        created_at: Some(meta.created_at.clone()),
        bytes,
        requests: 0,
        snapshot: true,
        lock_skipped: false,
    })
}

// ---------------------------------------------------------------------------------------------
// The run and what it changed

/// A snapshot file and the sizes of its top-level children.
#[derive(Debug, Clone)]
struct Snap {
    file: PathBuf,
    bytes: u64,
    sizes: Vec<u64>,
}

/// One up as the events told it.
#[derive(Debug, Clone)]
struct Up {
    version: u64,
    outcome: Outcome,
    duration_ms: u64,
    requests: Requests,
    changes: Changes,
    error: Option<String>,
    /// The data before it (kept for `down`).
    before: Snap,
}

#[derive(Debug, Default)]
struct Seen {
    /// The data as the last step left it.
    current: Option<Snap>,
    next_file: usize,
    before_migrate: Option<Changes>,
    ups: Vec<Up>,
    rollback: Option<RollbackInfo>,
    downs: Vec<DownCheck>,
    /// Differences the downs so far left (hashed topmost paths).
    known: HashSet<u64>,
    /// After the oldest down: the data against the data before the first up.
    remaining: Option<Changes>,
    /// The first internal failure of the watcher (disk full, ...).
    failure: Option<String>,
}

/// Hears the sandbox run's events, takes snapshots and diffs at each step's end.
struct Watch {
    view: StoreView,
    segs: Vec<String>,
    base: String,
    exclusions: Exclusions,
    dir: PathBuf,
    examples: usize,
    keep_snapshots: bool,
    has_before_migrate: bool,
    /// Paths whose requests are the runner's own (lock, history): `/a/b`.
    own: Vec<String>,
    seen: Mutex<Seen>,
}

impl Watch {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn requests(&self, counts: RequestCounts) -> Requests {
        let mut out = Requests::default();
        for (key, n) in counts.by_path {
            let Some((method, p)) = key.split_once(' ') else {
                continue;
            };
            let own = self
                .own
                .iter()
                .any(|o| p == o || p.starts_with(&format!("{o}/")));
            if !own {
                out.total += n;
                *out.by_method.entry(method.to_string()).or_default() += n;
            }
        }
        out
    }

    /// Write the data to a new snapshot; with `against`, diff that snapshot with the data too.
    async fn step(
        self: &Arc<Self>,
        against: Option<(Snap, Option<HashSet<u64>>)>,
    ) -> std::result::Result<(Snap, Option<diff::DiffResult>), String> {
        let file = {
            let mut s = self.seen();
            s.next_file += 1;
            self.dir.join(format!("snapshot-{}.json", s.next_file))
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.step_blocking(file, against))
            .await
            .map_err(|e| e.to_string())?
    }

    fn step_blocking(
        &self,
        file: PathBuf,
        against: Option<(Snap, Option<HashSet<u64>>)>,
    ) -> std::result::Result<(Snap, Option<diff::DiffResult>), String> {
        let io = |e: std::io::Error| format!("writing {}: {e}", file.display());
        self.view.read(NAMESPACE, &self.segs, |node| {
            let f = std::fs::File::create(&file).map_err(io)?;
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
            let sizes = diff::write_snapshot(&mut w, node, &self.exclusions).map_err(io)?;
            let f = w.into_inner().map_err(|e| io(e.into_error()))?;
            let bytes = f.metadata().map_err(io)?.len();
            drop(f);
            let snap = Snap {
                file: file.clone(),
                bytes,
                sizes,
            };
            let Some((before, known)) = against else {
                return Ok((snap, None));
            };
            let input = DiffInput {
                base: &self.base,
                exclusions: &self.exclusions,
                before_sizes: &before.sizes,
                after_sizes: &snap.sizes,
                examples: self.examples,
                known: known.as_ref(),
                collect: known.is_some(),
            };
            let f = std::fs::File::open(&before.file)
                .map_err(|e| format!("reading {}: {e}", before.file.display()))?;
            let mut d = diff::diff(f, node, &input)?;
            d.changes.bytes_before = before.bytes;
            d.changes.bytes_after = snap.bytes;
            Ok((snap, Some(d)))
        })
    }

    fn fail(&self, why: String) {
        let mut s = self.seen();
        if s.failure.is_none() {
            s.failure = Some(why);
        }
    }

    /// Replace the current snapshot, removing the old file unless `down` needs it.
    fn advance(&self, s: &mut Seen, snap: Snap, keep_old: bool) {
        if let Some(old) = s.current.replace(snap) {
            if !keep_old {
                let _ = std::fs::remove_file(&old.file);
            }
        }
    }

    async fn on(self: Arc<Self>, ev: RunEvent) {
        match ev {
            RunEvent::Start { pending, .. } if self.has_before_migrate && pending > 0 => {
                let Some(before) = self.seen().current.clone() else {
                    return;
                };
                match self.step(Some((before, None))).await {
                    Ok((snap, d)) => {
                        let mut s = self.seen();
                        s.before_migrate = d.map(|d| d.changes);
                        self.advance(&mut s, snap, false);
                    }
                    Err(e) => self.fail(e),
                }
            }
            RunEvent::BeforeMigrate { .. } => {
                self.view.take_request_counts();
            }
            RunEvent::AfterMigrate {
                script,
                step,
                duration,
            } if step.method == Method::Up => self.up_done(script, duration, None).await,
            RunEvent::MigrationError {
                script,
                step,
                error,
                duration,
            } if step.method == Method::Up => {
                self.up_done(script, duration, Some(error.message)).await
            }
            RunEvent::Rollback {
                strategy, success, ..
            } => {
                self.seen().rollback = Some(RollbackInfo { strategy, success });
            }
            RunEvent::AfterMigrate {
                script, duration, ..
            } => self.down_done(script, duration, None).await,
            RunEvent::MigrationError {
                script,
                error,
                duration,
                ..
            } => self.down_done(script, duration, Some(error)).await,
            _ => {}
        }
    }

    async fn up_done(
        self: &Arc<Self>,
        script: MigrationInfo,
        duration: Duration,
        error: Option<String>,
    ) {
        let requests = self.requests(self.view.take_request_counts());
        let Some(before) = self.seen().current.clone() else {
            return;
        };
        match self.step(Some((before.clone(), None))).await {
            Ok((snap, d)) => {
                let mut s = self.seen();
                s.ups.push(Up {
                    version: script.timestamp,
                    outcome: if error.is_some() {
                        Outcome::Failed
                    } else {
                        Outcome::Succeeded
                    },
                    duration_ms: ms(duration),
                    requests,
                    changes: d.map(|d| d.changes).unwrap_or_default(),
                    error,
                    before,
                });
                self.advance(&mut s, snap, self.keep_snapshots);
            }
            Err(e) => self.fail(e),
        }
    }

    /// A down ran (or threw): compare the data with the data before its up.
    async fn down_done(
        self: &Arc<Self>,
        script: MigrationInfo,
        duration: Duration,
        error: Option<Error>,
    ) {
        let check = |outcome, changes, error| DownCheck {
            name: script.name.clone(),
            version: script.timestamp,
            outcome,
            duration_ms: Some(ms(duration)),
            changes,
            error,
        };
        if let Some(e) = error {
            self.seen()
                .downs
                .push(check(DownOutcome::Failed, None, Some(e.message)));
            return;
        }
        let (reference, known, oldest) = {
            let s = self.seen();
            let Some(up) = s.ups.iter().find(|u| u.version == script.timestamp) else {
                return;
            };
            let oldest = s.ups.first().map(|u| u.version) == Some(script.timestamp);
            (up.before.clone(), s.known.clone(), oldest)
        };
        match self.step(Some((reference, Some(known)))).await {
            Ok((snap, Some(d))) => {
                let mut s = self.seen();
                let outcome = if d.fresh > 0 {
                    DownOutcome::Differs
                } else {
                    DownOutcome::Undone
                };
                if oldest {
                    let mut all = d.changes.clone();
                    all.examples = d.all_examples.clone();
                    s.remaining = Some(all);
                }
                let changes = (!d.changes.is_empty()).then_some(d.changes);
                s.downs.push(check(outcome, changes, None));
                s.known = d.paths;
                let _ = std::fs::remove_file(&snap.file);
            }
            Ok((snap, None)) => {
                let _ = std::fs::remove_file(&snap.file);
            }
            Err(e) => self.fail(e),
        }
    }
}

/// The run in the sandbox, then the report.
async fn run<H, F, Fut>(
    r: &Rehearsal<'_>,
    emu: &Emulator,
    sandbox: Sandbox,
    host_for: F,
    source: SourceInfo,
    segs: &[String],
    dir: &Path,
) -> Result<RehearsalReport>
where
    H: ScriptHost,
    F: FnOnce(&Sandbox) -> Fut,
    Fut: std::future::Future<Output = Result<H>>,
{
    let host = host_for(&sandbox).await?;
    let cfg = sandbox.cfg.clone();
    let shift = cfg.shift_path();
    let has_before_migrate = crate::runner::discover::discover(&cfg, r.cwd)
        .ok()
        .and_then(|d| d.before_migrate)
        .is_some();
    let watch = Arc::new(Watch {
        view: emu.view(),
        segs: segs.to_vec(),
        base: shift.clone().unwrap_or_default(),
        exclusions: vec![
            vec![cfg.table_name.clone()],
            crate::backup::EXCLUDED[0]
                .split('/')
                .map(String::from)
                .collect(),
        ],
        dir: dir.to_path_buf(),
        examples: r.options.examples,
        keep_snapshots: r.options.down,
        has_before_migrate,
        own: vec![
            format!("/{}", crate::lock::lock_path(shift.as_deref())),
            format!("/{}", cfg.history_path()),
        ],
        seen: Mutex::new(Seen::default()),
    });
    let (first, _) = watch
        .step(None)
        .await
        .map_err(|e| internal("the first snapshot", e))?;
    watch.seen().current = Some(first.clone());

    let user = r.events.clone();
    let heard = watch.clone();
    let events: EventFn = Arc::new(move |ev: &RunEvent| {
        let forwarded = user.as_ref().map(|f| f(ev));
        let (w, ev) = (heard.clone(), ev.clone());
        Box::pin(async move {
            if let Some(f) = forwarded {
                f.await;
            }
            w.on(ev).await;
        })
    });
    let log = r.log.clone();
    let marked: LineFn = Arc::new(move |l: &LogLine| {
        let mut l = l.clone().with("rehearsal", true);
        l.message = format!("[rehearsal] {}", l.message);
        log(&l)
    });
    let lock = cfg
        .locking
        .enabled
        .then(|| cfg.lock_service(&sandbox.client));
    let runner = Runner::new(
        cfg.clone(),
        sandbox.client.clone(),
        host,
        r.cwd.to_path_buf(),
    )
    .with_lock(lock)
    .with_log_lines(marked)
    .with_events(events)
    .with_stop(r.stop.clone());
    let opts = RunOptions {
        target: r.options.target,
        dry_run: false,
        no_lock: r.options.no_lock,
        wait: crate::lock::WaitPolicy::FailFast,
        mark_applied: false,
    };
    let outcome = runner.migrate_outcome(opts.clone()).await;
    if let Some(f) = watch.seen().failure.clone() {
        return Err(internal("recording what the migrations changed", f));
    }
    let plan = outcome.result.plan.clone();
    let (ups, before_migrate, rollback) = {
        let s = watch.seen();
        (s.ups.clone(), s.before_migrate.clone(), s.rollback.clone())
    };
    let migrations: Vec<RehearsedMigration> = plan
        .iter()
        .map(|m| match ups.iter().find(|u| u.version == m.timestamp) {
            Some(u) => RehearsedMigration {
                name: m.name.clone(),
                version: m.timestamp,
                filepath: m.filepath.clone(),
                outcome: u.outcome,
                duration_ms: u.duration_ms,
                requests: u.requests.clone(),
                changes: Some(u.changes.clone()),
                error: u.error.clone(),
            },
            None => RehearsedMigration {
                name: m.name.clone(),
                version: m.timestamp,
                filepath: m.filepath.clone(),
                outcome: Outcome::NotRun,
                duration_ms: 0,
                requests: Requests::default(),
                changes: None,
                error: None,
            },
        })
        .collect();
    let mut error = outcome.error.as_ref().map(|e| ReportError {
        code: e.code.as_str().to_string(),
        message: e.message.clone(),
        migration: migrations
            .iter()
            .find(|m| m.outcome == Outcome::Failed)
            .map(|m| m.name.clone()),
    });

    let kept = match &r.options.keep {
        Some(file) => {
            let meta = Metadata {
                version: backup::FORMAT_VERSION,
                tool: backup::TOOL.into(),
                created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                database_url: source.database_url.clone(),
                shift: shift.clone(),
                path: source.path.clone(),
                excluded: backup::EXCLUDED.iter().map(|s| s.to_string()).collect(),
            };
            write_keep(emu.view(), segs.to_vec(), file.clone(), meta).await?;
            Some(file.clone())
        }
        None => None,
    };

    let ran: Vec<&RehearsedMigration> = migrations
        .iter()
        .filter(|m| m.outcome == Outcome::Succeeded)
        .collect();
    let down = if r.options.down && error.is_none() && !ran.is_empty() {
        let report = downs(&runner, &watch, &ran, opts).await?;
        if !report.round_trip {
            error = Some(ReportError {
                code: ErrorCode::ScriptFailed.as_str().to_string(),
                message: down_failure(&report),
                migration: None,
            });
        }
        Some(report)
    } else {
        None
    };
    if let Some(f) = watch.seen().failure.clone() {
        return Err(internal("recording what the downs changed", f));
    }

    let mut totals = Totals {
        migrations: migrations.len(),
        bytes_before: first.bytes,
        bytes_after: first.bytes,
        ..Totals::default()
    };
    for (i, m) in migrations.iter().enumerate() {
        match m.outcome {
            Outcome::Succeeded => totals.succeeded += 1,
            Outcome::Failed => totals.failed += 1,
            Outcome::NotRun => totals.not_run += 1,
        }
        totals.duration_ms += m.duration_ms;
        totals.requests += m.requests.total;
        if let Some(c) = &m.changes {
            totals.added += c.added;
            totals.removed += c.removed;
            totals.changed += c.changed;
            if i == 0 {
                totals.bytes_before = c.bytes_before;
            }
            totals.bytes_after = c.bytes_after;
        }
    }
    Ok(RehearsalReport {
        success: error.is_none(),
        source,
        executed: outcome.result.migrated.len(),
        migrations,
        before_migrate,
        totals,
        rollback,
        down,
        kept,
        error,
        duration_ms: 0,
    })
}

/// The downs back to where the data started (newest first, stopping at one without `down()`).
async fn downs<H: ScriptHost>(
    runner: &Runner<H>,
    watch: &Arc<Watch>,
    ran: &[&RehearsedMigration],
    opts: RunOptions,
) -> Result<DownReport> {
    // Newest first: how many have a down before the first that has none.
    let mut with_down = 0usize;
    let mut missing: Option<usize> = None;
    for (i, m) in ran.iter().enumerate().rev() {
        let meta = runner.host.load(Path::new(&m.filepath)).await?;
        if !meta.has_down {
            missing = Some(i);
            break;
        }
        with_down += 1;
    }
    if with_down > 0 {
        let steps = u32::try_from(with_down).unwrap_or(u32::MAX);
        // A failing down is in the events (and so in the checks); the outcome adds nothing.
        let _ = runner.down_to_outcome(DownTo::Steps(steps), opts).await;
    }
    let s = watch.seen();
    let mut migrations = Vec::new();
    let mut stopped = false;
    for (i, m) in ran.iter().enumerate().rev() {
        let check = s.downs.iter().find(|d| d.version == m.version).cloned();
        let c = match check {
            Some(c) if !stopped => {
                stopped = c.outcome == DownOutcome::Failed;
                c
            }
            _ if missing == Some(i) => {
                stopped = true;
                DownCheck {
                    name: m.name.clone(),
                    version: m.version,
                    outcome: DownOutcome::NoDown,
                    duration_ms: None,
                    changes: None,
                    error: None,
                }
            }
            _ => DownCheck {
                name: m.name.clone(),
                version: m.version,
                outcome: DownOutcome::NotChecked,
                duration_ms: None,
                changes: None,
                error: None,
            },
        };
        migrations.push(c);
    }
    let remaining = s.remaining.clone();
    let round_trip = migrations.iter().all(|c| c.outcome == DownOutcome::Undone)
        && remaining.as_ref().is_some_and(Changes::is_empty);
    Ok(DownReport {
        round_trip,
        migrations,
        remaining,
    })
}

/// The error of a `--down` that did not round-trip.
fn down_failure(d: &DownReport) -> String {
    let mut parts = Vec::new();
    for c in &d.migrations {
        match c.outcome {
            DownOutcome::Differs => {
                let ch = c.changes.clone().unwrap_or_default();
                let eg = ch
                    .examples
                    .iter()
                    .take(3)
                    .map(|e| format!("{} {}", e.path, kind_word(e.kind)))
                    .collect::<Vec<_>>()
                    .join(", ");
                parts.push(format!(
                    "down() of {} does not undo its up(): {} value(s) differ from before it ({eg})",
                    c.name,
                    ch.added + ch.removed + ch.changed
                ));
            }
            DownOutcome::NoDown => parts.push(format!("{} has no down() to undo it", c.name)),
            DownOutcome::Failed => parts.push(format!(
                "down() of {} failed: {}",
                c.name,
                c.error.as_deref().unwrap_or("")
            )),
            _ => {}
        }
    }
    if parts.is_empty() {
        parts.push("after the downs the data differs from the data before the first up".into());
    }
    parts.join("; ")
}

pub(crate) fn kind_word(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Added => "added",
        ChangeKind::Removed => "removed",
        ChangeKind::Changed => "changed",
    }
}

/// `--keep`: the rehearsed subtree as a backup file, written next to `file` and renamed over it.
async fn write_keep(
    view: StoreView,
    segs: Vec<String>,
    file: PathBuf,
    meta: Metadata,
) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = file.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        let io = |e: std::io::Error| Error::io(format!("Cannot write {}", file.display()), e);
        let written = view.read(NAMESPACE, &segs, |node| -> std::io::Result<()> {
            use std::io::Write;
            let f = std::fs::File::create(&tmp)?;
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
            w.write_all(&meta.prefix())?;
            match node {
                Some(n) => crate::emulator::write_json(&mut w, n)?,
                None => w.write_all(b"null")?,
            }
            w.write_all(backup::file::SUFFIX)?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        let done = written.and_then(|()| std::fs::rename(&tmp, &file));
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        done.map_err(io)
    })
    .await
    .map_err(|e| internal("writing the kept data", e))?
}
