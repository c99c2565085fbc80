//! What a rehearsal run changed, step by step: `Watch` hears the sandbox runner's events; at
//! each step's end it writes the data to an on-disk snapshot and diffs the previous snapshot
//! against the tree (`diff`), so memory holds the emulator's data and no second copy of it.

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::emulator::{
    CachedStoreData, NodeRef, RequestCounts, Snapshot, StoreView, TOO_BIG_REASON,
};
use crate::log::LogLine;
use crate::rules::{Context, Denial, Rules};
use crate::runner::{Method, MigrationInfo, RunEvent};
use crate::Error;

use super::diff::{self, DiffInput, Exclusions};
use super::report::{
    ChunkedWrite, Findings, InvalidData, RefusedWrite, TooBigHandling, TooBigWrite, TriggerWrites,
    UnindexedQuery,
};
use super::{
    ms, ChangeKind, Changes, DownCheck, DownOutcome, Outcome, Requests, RollbackInfo, NAMESPACE,
};

/// A snapshot file and the sizes of its top-level children.
#[derive(Debug, Clone)]
pub(super) struct Snap {
    pub(super) file: PathBuf,
    pub(super) bytes: u64,
    pub(super) sizes: Vec<u64>,
}

/// One up as the events told it.
#[derive(Debug, Clone)]
pub(super) struct Up {
    pub(super) version: u64,
    pub(super) outcome: Outcome,
    pub(super) duration_ms: u64,
    pub(super) requests: Requests,
    pub(super) changes: Changes,
    pub(super) error: Option<String>,
    pub(super) findings: Findings,
    /// The data before it (kept for `down`).
    pub(super) before: Snap,
}

/// The `.validate` check of the data a migration changed: the rules and as whom.
pub(super) struct Validity {
    pub(super) rules: Arc<Rules>,
    pub(super) auth: Value,
}

#[derive(Debug, Default)]
pub(super) struct Seen {
    /// The data as the last step left it.
    pub(super) current: Option<Snap>,
    pub(super) next_file: usize,
    pub(super) before_migrate: Option<Changes>,
    pub(super) ups: Vec<Up>,
    pub(super) rollback: Option<RollbackInfo>,
    pub(super) downs: Vec<DownCheck>,
    /// Differences the downs so far left (hashed topmost paths).
    pub(super) known: HashSet<u64>,
    /// After the oldest down: the data against the data before the first up.
    pub(super) remaining: Option<Changes>,
    /// The first internal failure of the watcher (disk full, ...).
    pub(super) failure: Option<String>,
    /// What the client's notices said since the current migration began.
    pub(super) notices: Findings,
    /// Ups still to come (from the run's start).
    pub(super) ups_left: Option<usize>,
}

/// Hears the sandbox run's events, takes snapshots and diffs at each step's end.
pub(super) struct Watch {
    pub(super) view: StoreView,
    pub(super) segs: Vec<String>,
    pub(super) base: String,
    pub(super) exclusions: Exclusions,
    pub(super) dir: PathBuf,
    pub(super) examples: usize,
    pub(super) keep_snapshots: bool,
    pub(super) has_before_migrate: bool,
    /// Paths whose requests are the runner's own (lock, history): `/a/b`.
    pub(super) own: Vec<String>,
    /// With rules that have `.validate`: the data each up changed is checked against them.
    pub(super) validity: Option<Validity>,
    pub(super) seen: Mutex<Seen>,
    /// The step of the last up, still running while the run goes on (`Watch::settle`).
    pub(super) pending: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What a step took: the new snapshot, and with a previous one to compare, the diff and the
/// `.validate` findings (the first ones, and how many).
pub(super) struct Stepped {
    pub(super) snap: Snap,
    pub(super) diff: Option<diff::DiffResult>,
    pub(super) invalid: Option<Invalids>,
}

/// `.validate` findings: the first ones, and how many in all.
pub(super) type Invalids = (Vec<InvalidData>, u64);

/// A writer that only counts.
struct Counted(u64);

impl std::io::Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Changed paths handed to the `.validate` check at a time.
const PATHS_BATCH: usize = 4096;

/// Changed paths on their way to the `.validate` check: their segments end to end, and each
/// path's kind and number of segments.
#[derive(Default)]
struct Paths {
    text: String,
    ends: Vec<usize>,
    each: Vec<(ChangeKind, usize)>,
}

impl Paths {
    fn push(&mut self, below: &[String], kind: ChangeKind) {
        for s in below {
            self.text.push_str(s);
            self.ends.push(self.text.len());
        }
        self.each.push((kind, below.len()));
    }

    fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
        self.each.clear();
    }
}

/// The `.validate` findings of one diff: the first `keep`, and how many.
struct Invalid {
    keep: usize,
    found: Vec<InvalidData>,
    total: u64,
}

impl Watch {
    pub(super) fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request at `p` (`/a/b`) is the runner's own (lock, history).
    fn is_own(&self, p: &str) -> bool {
        self.own
            .iter()
            .any(|o| p == o || p.starts_with(&format!("{o}/")))
    }

    pub(super) fn requests(&self, counts: RequestCounts) -> Requests {
        let mut out = Requests::default();
        for (key, n) in counts.by_path {
            let Some((method, p)) = key.split_once(' ') else {
                continue;
            };
            if !self.is_own(p) {
                out.total += n;
                *out.by_method.entry(method.to_string()).or_default() += n;
            }
        }
        out
    }

    /// The scripts' writes by whether they were sent with `disableTriggers=true` (the
    /// runner's own left out; every write sent, refused ones included).
    fn trigger_writes(&self, counts: &RequestCounts) -> TriggerWrites {
        let scripts = |by_path: &std::collections::BTreeMap<String, u64>| -> u64 {
            by_path
                .iter()
                .filter_map(|(key, n)| {
                    let (method, p) = key.split_once(' ')?;
                    let write = matches!(method, "PUT" | "PATCH" | "POST" | "DELETE");
                    (write && !self.is_own(p)).then_some(*n)
                })
                .sum()
        };
        let disabled = scripts(&counts.triggers.disabled_by_path);
        TriggerWrites {
            with_triggers: scripts(&counts.by_path).saturating_sub(disabled),
            triggers_disabled: disabled,
        }
    }

    /// Write the data to a new snapshot; with `against`, diff that snapshot with the data too
    /// (`validate`: and check what differs against the rules' `.validate`). `keep`: the snapshot
    /// is needed later (else only its sizes are taken, nothing is written to disk). The data is
    /// the sandbox's as it is when this is called (a snapshot of the store, taken before the
    /// returned future first runs), so the run may go on while the step works. `behind`: the
    /// step shares the cores with the scripts of the next migration, so its threads run behind
    /// them ([`behind_the_scripts`]).
    pub(super) fn step(
        self: &Arc<Self>,
        against: Option<(Snap, Option<HashSet<u64>>)>,
        validate: bool,
        keep: bool,
        behind: bool,
    ) -> impl std::future::Future<Output = std::result::Result<Stepped, String>> + Send + 'static
    {
        let data = self.view.snapshot(NAMESPACE, &[]);
        let file = {
            let mut s = self.seen();
            s.next_file += 1;
            self.dir.join(format!("snapshot-{}.json", s.next_file))
        };
        let me = self.clone();
        async move {
            // A thread of its own (not tokio's blocking pool, whose threads are reused): its
            // priority, and that of the threads it starts, ends with it.
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("msr-rehearsal-step".into())
                .spawn(move || {
                    if behind {
                        behind_the_scripts();
                    }
                    let _ = tx.send(me.step_blocking(
                        data.as_ref().map(Snapshot::view),
                        file,
                        against,
                        validate,
                        keep,
                    ));
                })
                .map_err(|e| format!("cannot start a thread for the step: {e}"))?;
            rx.await.map_err(|_| "the step failed".to_string())?
        }
    }

    /// The step of the last up, if it is still running: wait for it (its findings and snapshot
    /// are in `seen` afterwards).
    pub(super) async fn settle(&self) {
        let job = self.pending.lock().expect("pending step").take();
        if let Some(job) = job {
            if let Err(e) = job.await {
                self.fail(format!("a step failed: {e}"));
            }
        }
    }

    /// See [`Watch::step`]. The new snapshot is written on a thread of its own while this one
    /// diffs the previous snapshot against `root` (the namespace as the snapshot has it).
    pub(super) fn step_blocking(
        &self,
        root: Option<NodeRef<'_>>,
        file: PathBuf,
        against: Option<(Snap, Option<HashSet<u64>>)>,
        validate: bool,
        keep: bool,
    ) -> std::result::Result<Stepped, String> {
        let node = root.and_then(|r| r.descend(&self.segs));
        let write = || self.write_snap(&file, node, keep);
        let Some((before, known)) = against else {
            return Ok(Stepped {
                snap: write()?,
                diff: None,
                invalid: None,
            });
        };
        std::thread::scope(|scope| {
            let writer = scope.spawn(write);
            let diffed = self.diff_against(root, node, &before, known.as_ref(), validate);
            let snap = writer
                .join()
                .map_err(|_| "the snapshot writer failed".to_string())??;
            let (mut d, invalid) = diffed?;
            d.sizes_after(&snap.sizes);
            d.changes.bytes_before = before.bytes;
            d.changes.bytes_after = snap.bytes;
            Ok(Stepped {
                snap,
                diff: Some(d),
                invalid,
            })
        })
    }

    /// The data at the compared node as a snapshot file (`keep`), or only its sizes.
    fn write_snap(
        &self,
        file: &std::path::Path,
        node: Option<NodeRef<'_>>,
        keep: bool,
    ) -> std::result::Result<Snap, String> {
        let io = |e: std::io::Error| format!("writing {}: {e}", file.display());
        if !keep {
            let mut sink = Counted(0);
            let sizes = diff::write_snapshot(&mut sink, node, &self.exclusions).map_err(io)?;
            return Ok(Snap {
                file: file.to_path_buf(),
                bytes: sink.0,
                sizes,
            });
        }
        let f = std::fs::File::create(file).map_err(io)?;
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, f);
        let sizes = diff::write_snapshot(&mut w, node, &self.exclusions).map_err(io)?;
        let f = w.into_inner().map_err(|e| io(e.into_error()))?;
        let bytes = f.metadata().map_err(io)?.len();
        Ok(Snap {
            file: file.to_path_buf(),
            bytes,
            sizes,
        })
    }

    /// The snapshot `before` against the tree (`node`, under the namespace's `root`), with the
    /// `.validate` check of each difference when `validate` and the rules have some.
    fn diff_against(
        &self,
        root: Option<NodeRef<'_>>,
        node: Option<NodeRef<'_>>,
        before: &Snap,
        known: Option<&HashSet<u64>>,
        validate: bool,
    ) -> std::result::Result<(diff::DiffResult, Option<Invalids>), String> {
        let f = std::fs::File::open(&before.file)
            .map_err(|e| format!("reading {}: {e}", before.file.display()))?;
        let input = DiffInput {
            base: &self.base,
            exclusions: &self.exclusions,
            before_sizes: &before.sizes,
            after_sizes: &[],
            examples: self.examples,
            known,
            collect: known.is_some(),
            visit: None,
        };
        let Some(v) = self.validity.as_ref().filter(|_| validate) else {
            return Ok((diff::diff(f, node, &input)?, None));
        };
        // The `.validate` check runs on a thread of its own, handed the changed paths in
        // batches, in the order the diff finds them (so its findings come in that order too).
        std::thread::scope(|scope| {
            let (full_tx, full_rx) = mpsc::sync_channel::<Paths>(2);
            let (empty_tx, empty_rx) = mpsc::channel::<Paths>();
            let checker = scope.spawn(move || self.check_paths(v, root, full_rx, empty_tx));
            let pending = RefCell::new(Paths::default());
            let visit = |below: &[String], kind: ChangeKind| {
                let mut p = pending.borrow_mut();
                p.push(below, kind);
                if p.each.len() >= PATHS_BATCH {
                    let next = empty_rx.try_recv().unwrap_or_default();
                    let _ = full_tx.send(std::mem::replace(&mut *p, next));
                }
            };
            let input = DiffInput {
                visit: Some(&visit),
                ..input
            };
            let d = diff::diff(f, node, &input);
            let _ = full_tx.send(pending.into_inner());
            drop(full_tx);
            let i = checker
                .join()
                .map_err(|_| "the .validate check failed".to_string())?;
            Ok((d?, Some((i.found, i.total))))
        })
    }

    /// The `.validate` check of each changed path handed over (below the compared node), in
    /// order: the first findings and how many.
    fn check_paths(
        &self,
        v: &Validity,
        root: Option<NodeRef<'_>>,
        full: mpsc::Receiver<Paths>,
        empty: mpsc::Sender<Paths>,
    ) -> Invalid {
        let mut invalid = Invalid {
            keep: self.examples.max(1),
            found: Vec::new(),
            total: 0,
        };
        // The changed paths come in key order: most lookups start where the last one ended.
        let data = CachedStoreData::new(root);
        let cx = Context {
            auth: &v.auth,
            // `now` in the rules: when the step began (the data does not change meanwhile).
            now_ms: crate::runner::now_ms(),
        };
        // The path checked, its segments' buffers reused from one check to the next.
        let mut path = self.segs.clone();
        let base = self.segs.len();
        for mut batch in full {
            let (mut seg, mut start) = (0, 0);
            for &(kind, n) in &batch.each {
                for i in 0..n {
                    let end = batch.ends[seg];
                    let s = &batch.text[start..end];
                    (seg, start) = (seg + 1, end);
                    match path.get_mut(base + i) {
                        Some(p) => {
                            p.clear();
                            p.push_str(s);
                        }
                        None => path.push(s.to_string()),
                    }
                }
                let holds = kind != ChangeKind::Removed;
                if let Err(Denial::Invalid { path, rule, pos }) =
                    v.rules
                        .check_valid(&cx, &data, [(&path[..base + n], holds)])
                {
                    invalid.total += 1;
                    let path = format!("/{path}");
                    if invalid.found.len() < invalid.keep
                        && !invalid.found.iter().any(|f| f.path == path)
                    {
                        invalid.found.push(InvalidData {
                            path,
                            rule,
                            line: pos.line,
                        });
                    }
                }
            }
            batch.clear();
            let _ = empty.send(batch);
        }
        invalid
    }

    /// A notice of the scripts' client, as the runner logged it: kept for the migration's
    /// findings (`query.unindexed`: `path`, `child`, `indexOn`; `write.chunked`: `path`,
    /// `requests`).
    pub(super) fn heard(&self, line: &LogLine) {
        let text = |k: &str| {
            line.fields
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match line.event {
            "query.unindexed" => {
                let q = UnindexedQuery {
                    path: text("path"),
                    child: text("child"),
                    index_on: text("indexOn"),
                };
                let mut s = self.seen();
                if !s.notices.unindexed.contains(&q) {
                    s.notices.unindexed.push(q);
                }
            }
            "write.chunked" => self.seen().notices.chunked.push(ChunkedWrite {
                path: text("path"),
                requests: line
                    .fields
                    .get("requests")
                    .and_then(Value::as_u64)
                    .unwrap_or(0),
            }),
            _ => {}
        }
    }

    pub(super) fn fail(&self, why: String) {
        let mut s = self.seen();
        if s.failure.is_none() {
            s.failure = Some(why);
        }
    }

    /// Replace the current snapshot, removing the old file unless `down` needs it.
    pub(super) fn advance(&self, s: &mut Seen, snap: Snap, keep_old: bool) {
        if let Some(old) = s.current.replace(snap) {
            if !keep_old {
                let _ = std::fs::remove_file(&old.file);
            }
        }
    }

    pub(super) async fn on(self: Arc<Self>, ev: RunEvent) {
        if let RunEvent::Start { pending, .. } = &ev {
            let mut s = self.seen();
            s.ups_left = s.ups_left.or(Some(*pending));
        }
        match ev {
            RunEvent::Start { pending, .. } if self.has_before_migrate && pending > 0 => {
                let Some(before) = self.seen().current.clone() else {
                    return;
                };
                match self.step(Some((before, None)), false, true, false).await {
                    Ok(st) => {
                        let mut s = self.seen();
                        s.before_migrate = st.diff.map(|d| d.changes);
                        self.advance(&mut s, st.snap, false);
                    }
                    Err(e) => self.fail(e),
                }
            }
            RunEvent::BeforeMigrate { .. } => {
                self.view.take_request_counts();
                self.seen().notices = Findings::default();
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
            RunEvent::Rollback { report, .. } => {
                self.seen().rollback = Some(RollbackInfo {
                    strategy: report.strategy,
                    success: report.success,
                    done: report.done,
                });
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

    pub(super) async fn up_done(
        self: &Arc<Self>,
        script: MigrationInfo,
        duration: Duration,
        error: Option<String>,
    ) {
        self.settle().await;
        let counts = self.view.take_request_counts();
        let mut findings = std::mem::take(&mut self.seen().notices);
        for r in &counts.refused {
            let w = RefusedWrite {
                method: r.method.clone(),
                path: r.path.clone(),
                status: r.status,
            };
            match (r.status, r.reason) {
                (_, Some(TOO_BIG_REASON)) => too_big(&mut findings, w),
                (401, _) => findings.denied.push(w),
                _ => findings.refused.push(w),
            }
        }
        findings.triggers = Some(self.trigger_writes(&counts));
        let requests = self.requests(counts);
        let Some(before) = self.seen().current.clone() else {
            return;
        };
        // The data after the last up is needed again only by the downs.
        let (keep, last) = {
            let mut s = self.seen();
            s.ups_left = s.ups_left.map(|n| n.saturating_sub(1));
            let last = s.ups_left == Some(0);
            (self.keep_snapshots || !last, last)
        };
        // The step runs while the run goes on (the next migration's scripts, behind them, or the
        // run's end); the next event that needs its result waits for it (`settle`).
        let stepping = self.step(Some((before.clone(), None)), true, keep, !last);
        let me = self.clone();
        let job = tokio::spawn(async move {
            match stepping.await {
                Ok(Stepped {
                    snap,
                    diff: d,
                    invalid,
                }) => {
                    if let Some((found, total)) = invalid {
                        findings.invalid = found;
                        findings.invalid_total = total;
                    }
                    let mut s = me.seen();
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
                        findings,
                        before,
                    });
                    me.advance(&mut s, snap, me.keep_snapshots);
                }
                Err(e) => me.fail(e),
            }
        });
        *self.pending.lock().expect("pending step") = Some(job);
    }

    /// A down ran (or threw): compare the data with the data before its up.
    pub(super) async fn down_done(
        self: &Arc<Self>,
        script: MigrationInfo,
        duration: Duration,
        error: Option<Error>,
    ) {
        self.settle().await;
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
        match self
            .step(Some((reference, Some(known))), false, false, false)
            .await
        {
            Ok(Stepped {
                snap,
                diff: Some(d),
                ..
            }) => {
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
            Ok(Stepped { snap, .. }) => {
                let _ = std::fs::remove_file(&snap.file);
            }
            Err(e) => self.fail(e),
        }
    }
}

/// Nice value of a step that runs beside the scripts. The scripts' pipeline (the runtime's main
/// thread, the client, the sandbox's server) leaves part of the cores idle; at this priority
/// each of its threads gets about ten times the step's share of a contended core, so the step
/// works mostly in the time they leave, and the scripts lose little to it. Not the lowest (19):
/// there, a step beside another program's CPU-bound work (a build on the same machine) gets
/// about 1.5% of a core, and the run waits for it at the next migration's end.
const BEHIND_NICE: i32 = 10;

/// Lower the calling thread's priority to [`BEHIND_NICE`], unless it is lower already (Linux,
/// where the nice value is each thread's own and threads started from it inherit it; elsewhere
/// nothing is asked). A thread cannot raise it again, so only threads that end with the step
/// call this.
fn behind_the_scripts() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority only read and set this thread's scheduling
    // attributes.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) < BEHIND_NICE {
            libc::setpriority(libc::PRIO_PROCESS, tid, BEHIND_NICE);
        }
    }
}

/// A write refused as too big for one request, counted with the others of its method and path;
/// handled by chunks when the client deleted a node at or over its path in chunks.
fn too_big(findings: &mut Findings, w: RefusedWrite) {
    let trimmed = |p: &str| p.trim_matches('/').to_string();
    let at = trimmed(&w.path);
    let chunked = findings.chunked.iter().any(|c| {
        let c = trimmed(&c.path);
        c.is_empty() || at == c || at.starts_with(&format!("{c}/"))
    });
    let handled = if chunked {
        TooBigHandling::Chunked
    } else {
        TooBigHandling::Failed
    };
    match findings
        .too_big
        .iter_mut()
        .find(|t| t.method == w.method && t.path == w.path)
    {
        Some(t) => {
            t.refusals += 1;
            t.handled = handled;
        }
        None => findings.too_big.push(TooBigWrite {
            method: w.method,
            path: w.path,
            refusals: 1,
            handled,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(method: &str, path: &str) -> RefusedWrite {
        RefusedWrite {
            method: method.into(),
            path: path.into(),
            status: 400,
        }
    }

    /// This thread's nice value.
    #[cfg(target_os = "linux")]
    fn nice() -> i32 {
        // SAFETY: reads this thread's scheduling attribute only.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// A step beside the scripts runs behind them, and so do the threads it starts (its
    /// snapshot writer and `.validate` check); the thread that started it keeps its priority.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_step_beside_the_scripts_runs_behind_them_with_the_threads_it_starts() {
        let caller = nice();
        if caller >= BEHIND_NICE {
            return; // the tests themselves run that far behind: nothing to see
        }
        let (own, started) = std::thread::spawn(|| {
            behind_the_scripts();
            (nice(), std::thread::spawn(nice).join().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!((own, started), (BEHIND_NICE, BEHIND_NICE));
        assert_eq!(nice(), caller);
    }

    /// Refusals at or under a node the client deleted in chunks were handled by the chunks;
    /// the others failed. Repeats are counted.
    #[test]
    fn too_big_writes_are_grouped_and_matched_with_chunked_deletes() {
        let mut f = Findings {
            chunked: vec![ChunkedWrite {
                path: "/app/logs".into(),
                requests: 5,
            }],
            ..Findings::default()
        };
        for (m, p) in [
            ("DELETE", "/app/logs"),
            ("PATCH", "/app/logs"),
            ("PATCH", "/app/logs"),
            ("PATCH", "/app/logs/2024"),
            ("PUT", "/app/logsx"),
        ] {
            too_big(&mut f, refused(m, p));
        }
        let got: Vec<(&str, &str, u64, TooBigHandling)> = f
            .too_big
            .iter()
            .map(|t| (t.method.as_str(), t.path.as_str(), t.refusals, t.handled))
            .collect();
        use TooBigHandling::{Chunked, Failed};
        assert_eq!(
            got,
            [
                ("DELETE", "/app/logs", 1, Chunked),
                ("PATCH", "/app/logs", 2, Chunked),
                ("PATCH", "/app/logs/2024", 1, Chunked),
                ("PUT", "/app/logsx", 1, Failed),
            ]
        );
    }
}
