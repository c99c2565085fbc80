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
//!    scripts get that runner's `db` (`Runner::script_db`: the sandbox, fenced by the rehearsal
//!    runner's lease). Nothing is ever written to the source database.
//! 3. The report: the runner's events mark each migration's start and end; at each end the
//!    data is written to a snapshot file (on disk) and the previous snapshot is compared with
//!    the tree (`diff`), so memory holds the emulator's data and no second copy of it. Requests
//!    are the sandbox's counts for the step. A step reads a snapshot of the sandbox's store
//!    taken at the migration's end (it shares the store's chunks; the next migration's writes
//!    copy those they change), so the run goes on while an up's step works; the next event that
//!    needs its result, and the run's end, wait for it (`Watch::settle`).
//! 4. `down`: after the ups, the downs back to where the data started (newest first), each
//!    compared with the snapshot taken before its `up`; a migration without `down()` stops them.
//! 5. Production's rules (`RulesChoice`): read from the source database (one
//!    `GET /.settings/rules.json` as an admin; refused or unreadable: said, and the rehearsal
//!    goes on without them) or a rules file, loaded into the sandbox once the data is in, so the
//!    scripts run under them as the configured identity (`databaseAuthVariableOverride`) as in
//!    production, indexes included. Per migration (`Findings`): the client's notices
//!    (`query.unindexed`, `write.chunked` log lines), the writes the sandbox refused (401:
//!    denied by the rules, a failure; `WRITE_TOO_BIG`: too big for one request, deleted in
//!    chunks or a failure), the writes sent with and without `disableTriggers`, and the
//!    `.validate` rules the data it changed violates (checked over the changed subtrees the
//!    diff finds, a warning). `strict`: warnings fail.
//! 6. Production's write-size limit: the sandbox refuses writes over `large` (production's
//!    default for new databases; `RehearseOptions::write_size_limit`), so a `remove()` or
//!    `set()` of a node too big for one request shows here as it would there.

pub mod diff;
pub mod report;
mod source;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::backup::{self, Metadata, Progress, WalkOptions};
use crate::config::Config;
use crate::emulator::{Emulator, EmulatorOptions, StoreView};
use crate::log::{LineFn, LogLine};
use crate::rtdb::{path, Client};
use crate::rules::Rules;
use crate::runner::plan::{check_target, DownTo};
use crate::runner::{EventFn, RunEvent, RunOptions, Runner, ScriptHost, StopFlag};
use crate::time::ms;
use crate::{Error, ErrorCode, Result};

pub use crate::emulator::{WriteBudgets, WriteSizeLevel};
pub use report::{
    ChangeKind, Changes, ChildChanges, ChunkedWrite, DownCheck, DownOutcome, DownReport, Example,
    Findings, InvalidData, Outcome, RefusedWrite, RehearsalReport, RehearsedMigration, ReportError,
    Requests, RollbackInfo, RulesInfo, RulesOrigin, SourceInfo, SourceKind, TooBigHandling,
    TooBigWrite, Totals, TriggerWrites, UnindexedQuery,
};
use source::load;
use watch::{Seen, Validity, Watch};

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

/// The Security Rules to rehearse under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RulesChoice {
    /// The source database's (a backup has none: the sandbox is then open).
    #[default]
    Production,
    /// A rules file (the rules about to be deployed).
    File(PathBuf),
    /// None: the sandbox is open.
    None,
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
    /// The rules the sandbox applies.
    pub rules: RulesChoice,
    /// Warnings (unindexed queries, data `.validate` refuses) fail the rehearsal.
    pub strict: bool,
    /// The sandbox's write-size limit, production's default for new databases (`large`): a
    /// write that affects more than its budget is refused with `WRITE_TOO_BIG`, as production
    /// refuses it.
    pub write_size_limit: WriteSizeLevel,
    /// The bytes each write-size level allows in the sandbox (the emulator's model of the
    /// service's target times: 1 MB per second).
    pub write_budgets: WriteBudgets,
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
            rules: RulesChoice::default(),
            strict: false,
            write_size_limit: WriteSizeLevel::Large,
            write_budgets: WriteBudgets::default(),
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
struct Sandbox {
    /// The user's configuration pointed at the sandbox.
    cfg: Config,
    /// A client for it (`connection::sandbox_client`).
    client: Client,
}

fn internal(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("The rehearsal failed: {what}: {e}"))
}

/// Rehearse the pending migrations (see the module docs) with `host` running the scripts (on
/// the sandbox runner's `db`). `Err` when there was nothing to rehearse on (bad input:
/// CONFIG_INVALID / VALIDATION_FAILED; the source unreadable: SOURCE_UNREADABLE); a failing
/// migration or a `down` that does not undo its `up` is a report with `success: false` and its
/// `error`.
pub async fn rehearse<H: ScriptHost>(r: Rehearsal<'_>, host: H) -> Result<RehearsalReport> {
    let started = Instant::now();
    if let Some(t) = r.options.target {
        check_target(t, false)?;
    }
    if let Some(keep) = &r.options.keep {
        check_keep(keep)?;
    }
    let shift = r.cfg.shift_path();
    let at = shift.clone().unwrap_or_default();
    let shown = backup::shown(shift.as_deref());
    let segs = path::segments(&at)?;

    let work = tempfile::Builder::new()
        .prefix("msr-rehearsal-")
        .tempdir()
        .map_err(|e| internal("cannot create a folder for its snapshots", e))?;
    let emu = Emulator::start(EmulatorOptions::default()).await?;
    emu.set_write_size_limit(
        Some(NAMESPACE),
        r.options.write_size_limit,
        Some(r.options.write_budgets),
    );
    let url = format!("{}?ns={NAMESPACE}", emu.url());
    let mut sandbox_cfg = r.cfg.clone();
    sandbox_cfg.database_url = Some(url.clone());
    sandbox_cfg.application_credentials = None;
    sandbox_cfg.dry_run = false;
    sandbox_cfg.backup.folder = work.path().join("backups").to_string_lossy().into_owned();
    let sandbox = Sandbox {
        client: crate::connection::sandbox_client(&url, &sandbox_cfg)?,
        cfg: sandbox_cfg,
    };

    let loaded = load(&r, &emu, &at, &shown).await;
    if let Some(p) = &r.progress {
        p.finish();
    }
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
    let (rules, info) = match sandbox_rules(&r).await {
        Ok(r) => r,
        Err(e) => {
            let _ = emu.stop().await;
            return Err(e);
        }
    };
    let rules = rules.map(Arc::new);
    if let Some(rules) = &rules {
        emu.set_rules(Some(NAMESPACE), rules.clone());
    }
    let validity = rules.filter(|r| r.has_validate()).map(|rules| Validity {
        rules,
        auth: r
            .cfg
            .database_auth_variable_override
            .clone()
            .unwrap_or(serde_json::Value::Null),
    });
    let outcome = run(
        &r,
        &emu,
        sandbox,
        host,
        (source, info, validity),
        &segs,
        work.path(),
    )
    .await;
    let _ = emu.stop().await;
    let mut report = outcome?;
    report.duration_ms = ms(started.elapsed());
    Ok(report)
}

/// The rules to load into the sandbox, and what the report says of them. A rules file that
/// cannot be read or does not parse is bad input (CONFIG); production's rules that cannot be
/// read are a note, and the rehearsal goes on without them.
async fn sandbox_rules(r: &Rehearsal<'_>) -> Result<(Option<Rules>, RulesInfo)> {
    let mut info = RulesInfo {
        origin: RulesOrigin::None,
        file: None,
        requests: 0,
        note: None,
        as_admin: r.cfg.database_auth_variable_override.is_none(),
    };
    match (&r.options.rules, &r.source) {
        (RulesChoice::None, _) => Ok((None, info)),
        (RulesChoice::File(file), _) => {
            let rules = Rules::load(file)?;
            info.origin = RulesOrigin::File;
            info.file = Some(file.clone());
            Ok((Some(rules), info))
        }
        (RulesChoice::Production, Source::Backup(_)) => {
            info.note = Some(
                "a backup holds no rules: give the rules file to rehearse under (--rules <file>)"
                    .into(),
            );
            Ok((None, info))
        }
        (RulesChoice::Production, Source::Database(client)) => {
            info.requests = 1;
            let read = client.get_rules_text().await.and_then(|text| {
                Rules::parse(&text).map_err(|e| {
                    Error::new(ErrorCode::BadRequest, format!("they do not parse ({e})"))
                })
            });
            match read {
                Ok(rules) => {
                    info.origin = RulesOrigin::Production;
                    Ok((Some(rules), info))
                }
                Err(e) => {
                    info.note = Some(format!(
                        "production's rules could not be read ({}); rehearsing without rules (give them with --rules <file>)",
                        e.message
                    ));
                    Ok((None, info))
                }
            }
        }
    }
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

/// The run in the sandbox, then the report.
async fn run<H: ScriptHost>(
    r: &Rehearsal<'_>,
    emu: &Emulator,
    sandbox: Sandbox,
    host: H,
    (source, rules, validity): (SourceInfo, RulesInfo, Option<Validity>),
    segs: &[String],
    dir: &Path,
) -> Result<RehearsalReport> {
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
        exclusions: vec![vec![cfg.table_name.clone()], crate::backup::protected()],
        dir: dir.to_path_buf(),
        examples: r.options.examples,
        keep_snapshots: r.options.down,
        has_before_migrate,
        own: vec![
            format!("/{}", crate::lock::lock_path(shift.as_deref())),
            format!("/{}", cfg.history_path()),
        ],
        validity,
        seen: Mutex::new(Seen::default()),
        pending: Mutex::new(None),
    });
    let first = watch
        .step(None, false, true, false)
        .await
        .map_err(|e| internal("the first snapshot", e))?
        .snap;
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
    let hears = watch.clone();
    let marked: LineFn = Arc::new(move |l: &LogLine| {
        hears.heard(l);
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
    // The last up's step may still be running.
    watch.settle().await;
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
                findings: u.findings.clone(),
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
                findings: Findings::default(),
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
    // Writes the rules denied, and writes too big for one request that nothing replaced, fail
    // the rehearsal, as they fail in production (a script that caught the refusal included:
    // production would not have the data it meant to write).
    let unwritten = |m: &RehearsedMigration| {
        !m.findings.denied.is_empty()
            || m.findings
                .too_big
                .iter()
                .any(|t| t.handled == TooBigHandling::Failed)
    };
    if let Some(m) = migrations.iter().find(|m| unwritten(m)) {
        let denied = unwritten_text(m, r.options.write_size_limit);
        error = Some(match error {
            Some(mut e) if e.migration.as_deref() == Some(&m.name) => {
                e.message = format!("{}; {denied}", e.message);
                e
            }
            Some(e) => e,
            None => ReportError {
                code: ErrorCode::ScriptFailed.as_str().to_string(),
                message: denied,
                migration: Some(m.name.clone()),
            },
        });
    }
    let warnings: u64 = migrations.iter().map(|m| m.findings.warnings()).sum();
    if error.is_none() && r.options.strict && warnings > 0 {
        error = Some(ReportError {
            code: ErrorCode::ScriptFailed.as_str().to_string(),
            message: strict_text(&migrations, warnings),
            migration: migrations
                .iter()
                .find(|m| m.findings.warnings() > 0)
                .map(|m| m.name.clone()),
        });
    }

    let kept = match &r.options.keep {
        Some(file) => {
            let meta = Metadata::new(
                chrono::Utc::now(),
                source.database_url.clone(),
                shift.clone(),
            );
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
        rules,
        warnings,
        strict: r.options.strict,
        duration_ms: 0,
    })
}

/// `<migration>: the rules denied PUT /app/settings (and n more) — production would refuse it
/// too`, and/or `PUT /app/users was too big for one request (WRITE_TOO_BIG under production's
/// large write-size limit) — ...`.
fn unwritten_text(m: &RehearsedMigration, limit: WriteSizeLevel) -> String {
    let too_big: Vec<String> = m
        .findings
        .too_big
        .iter()
        .filter(|t| t.handled == TooBigHandling::Failed)
        .map(|t| format!("{} {}", t.method, t.path))
        .collect();
    let too_big = (!too_big.is_empty()).then(|| {
        format!(
            "{} {} too big for one request (WRITE_TOO_BIG under production's {} write-size limit) — production would refuse {} too; delete big nodes in chunks, write big data in several updates",
            too_big.join(", "),
            if too_big.len() == 1 { "was" } else { "were" },
            limit.name(),
            if too_big.len() == 1 { "it" } else { "them" }
        )
    });
    match (m.findings.denied.is_empty(), too_big) {
        (false, Some(t)) => format!("{}; {t}", denied_text(m)),
        (false, None) => denied_text(m),
        (true, Some(t)) => format!("{}: {t}", m.name),
        (true, None) => String::new(),
    }
}

/// `<migration>: the rules denied PUT /app/settings (and n more) — production would refuse it too`.
fn denied_text(m: &RehearsedMigration) -> String {
    let d = &m.findings.denied;
    let first: Vec<String> = d
        .iter()
        .take(3)
        .map(|w| format!("{} {}", w.method, w.path))
        .collect();
    let more = d.len().saturating_sub(first.len());
    format!(
        "{}: the rules denied {}{} — production would refuse {} too",
        m.name,
        first.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        },
        if d.len() == 1 { "it" } else { "them" }
    )
}

/// The failure of a `strict` rehearsal with warnings.
fn strict_text(migrations: &[RehearsedMigration], warnings: u64) -> String {
    let mut parts = Vec::new();
    for m in migrations {
        let f = &m.findings;
        for q in &f.unindexed {
            parts.push(format!(
                "{}: a query on {} needs an index (add {} there)",
                m.name, q.path, q.index_on
            ));
        }
        if let Some(i) = f.invalid.first() {
            parts.push(format!(
                "{}: the data at {} fails .validate ({}){}",
                m.name,
                i.path,
                i.rule,
                if f.invalid_total > 1 {
                    format!(" and {} more place(s)", f.invalid_total - 1)
                } else {
                    String::new()
                }
            ));
        }
    }
    format!("{warnings} warning(s) under --strict: {}", parts.join("; "))
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

/// `--keep`: the rehearsed subtree as a backup file, written whole or not at all (a private
/// temp file next to `file`, renamed over it).
async fn write_keep(
    view: StoreView,
    segs: Vec<String>,
    file: PathBuf,
    meta: Metadata,
) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        crate::private_files::replace(&file, |w| {
            use std::io::Write;
            view.read(NAMESPACE, &segs, |node| -> std::io::Result<()> {
                w.write_all(&meta.prefix())?;
                match node {
                    Some(n) => crate::emulator::write_json(w, n)?,
                    None => w.write_all(b"null")?,
                }
                w.write_all(backup::file::SUFFIX)
            })
        })
        .map_err(|e| Error::io(format!("Cannot write {}", file.display()), e))
    })
    .await
    .map_err(|e| internal("writing the kept data", e))?
}
