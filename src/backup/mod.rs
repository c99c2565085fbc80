//! Backups of the `{shift}` subtree (the database root when no shift is set).
//!
//! - `create` streams the subtree from a GET straight into
//!   `<backup.folder>/<prefix>-<YYYYMMDD-HHMMSS-mmm>[-n]<suffix>.<extension>` (time in UTC; the
//!   folder is created when missing; an existing file is never overwritten: `-1`, `-2`, ... is
//!   added on a clash). The body is written to a hidden temp file in the same folder, checked
//!   (well-formed JSON, every key storable), synced and only then linked into place, so a failed
//!   backup leaves no file behind. The data never goes through a `serde_json::Value`: memory use
//!   does not grow with the database. Format: see `file`.
//! - `restore` validates the whole file first (streaming: metadata, same shift, well-formed, legal
//!   keys) and only then writes; a wrong, corrupt or missing file leaves the database untouched.
//!   The data is then read a second time, one top-level child at a time (memory is bounded by the
//!   largest top-level child), and written in chunks (see `restore`). The live lock node
//!   `{shift}/migrations/_lock` is kept in the file as it was but never written, deleted or
//!   replaced by a restore.
//! - `list` lists the backup files in the folder, newest first.
//! - `list_nodes` / `backup_nodes`: the top-level keys under the shift, and a map of chosen nodes.

pub mod file;
pub mod progress;
pub mod restore;
pub mod walk;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;

use crate::config::Config;
use crate::rtdb::{path, Client};
use crate::{Error, ErrorCode, Result};

pub use file::{Metadata, EXCLUDED, FORMAT_VERSION, TOOL};
pub use progress::{Phase, Progress, Snapshot};
pub use restore::{RestoreReport, DEFAULT_CHUNK_LIMIT};
pub use walk::{walk, Walk, WalkOptions};

/// One backup file in the backup folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupInfo {
    pub file_name: String,
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    /// From the metadata block; `None` when the file has no readable metadata.
    pub created_at: Option<String>,
    /// The backed-up path from the metadata (`/` or `/<shift>`).
    pub backed_up_path: Option<String>,
}

/// Options of a restore.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Upper bound for the JSON size of one write, in bytes (default 8 MB).
    pub chunk_limit: usize,
    /// Counted into while the restore runs (file bytes read, keys, writes).
    pub progress: Option<Arc<Progress>>,
    /// Set (by a signal handler) to stop before the next write; the error says what was written.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            chunk_limit: DEFAULT_CHUNK_LIMIT,
            progress: None,
            stop: None,
        }
    }
}

/// The lock node relative to the backed-up path, as segments.
pub(crate) fn protected() -> Vec<String> {
    EXCLUDED[0].split('/').map(String::from).collect()
}

/// The backed-up path as messages and progress lines show it: `/<shift>`, or `/`.
pub fn shown(shift: Option<&str>) -> String {
    format!("/{}", shift.unwrap_or(""))
}

fn backup_failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::BackupFailed, msg)
}

fn restore_failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::RestoreFailed, msg)
}

/// The database URL for the metadata: origin and `?ns=`, never credentials.
pub(crate) fn public_url(client: &Client) -> String {
    let shown = client.url().to_string();
    match url::Url::parse(&shown) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            let s = u.to_string();
            // `Url` adds a `/` path to `http://host:port?ns=x`; keep the configured form.
            if !shown.contains("/?") && !shown.ends_with('/') {
                s.replacen("/?", "?", 1).trim_end_matches('/').to_string()
            } else {
                s
            }
        }
        Err(_) => shown,
    }
}

fn file_name(cfg: &Config, stamp: &str, n: u32) -> String {
    let b = &cfg.backup;
    let mut name = String::new();
    if !b.prefix.is_empty() {
        name.push_str(&b.prefix);
        name.push('-');
    }
    name.push_str(stamp);
    if n > 0 {
        name.push_str(&format!("-{n}"));
    }
    name.push_str(&b.suffix);
    let ext = b.extension.trim_start_matches('.');
    if !ext.is_empty() {
        name.push('.');
        name.push_str(ext);
    }
    name
}

/// Options of a backup.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    pub walk: WalkOptions,
    /// Counted into while the backup runs (bytes, keys, requests).
    pub progress: Option<Arc<Progress>>,
    /// Set (by a signal handler) to stop; no file is left behind.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// Back up the `{shift}` subtree (root when no shift) to a new file; returns its path.
pub async fn create(client: &Client, cfg: &Config, cwd: &Path) -> Result<PathBuf> {
    create_with(client, cfg, cwd, &BackupOptions::default()).await
}

/// `create` with options.
pub async fn create_with(
    client: &Client,
    cfg: &Config,
    cwd: &Path,
    opts: &BackupOptions,
) -> Result<PathBuf> {
    let shift = cfg.shift_path();
    let folder = cfg.backup_folder_path(cwd);
    let what = shown(shift.as_deref());
    let made = folder.clone();
    let created = tokio::task::spawn_blocking(move || crate::private_files::create_dir_all(&made))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    created.map_err(|e| {
        backup_failed(format!(
            "Backup of {what} failed: could not create the backup folder {}: {e}",
            folder.display()
        ))
    })?;
    let now = chrono::Utc::now();
    let stamp = now.format("%Y%m%d-%H%M%S-%3f").to_string();
    let metadata = Metadata::new(now, Some(public_url(client)), shift.clone());
    let target = folder.join(file_name(cfg, &stamp, 0));
    let tmp = folder.join(format!(
        ".{}.{}.tmp",
        file_name(cfg, &stamp, 0),
        temp_owner(
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()
        )
    ));
    let fail = |why: String| {
        backup_failed(format!(
            "Backup of {what} to {} failed: {why}",
            target.display()
        ))
    };

    // The temp files of backups killed outright (SIGKILL) on this host.
    sweep_stale_temps(&folder).await;
    let progress = opts.progress.clone().unwrap_or_default();
    progress.phase(Phase::Backup, None);
    let body = walk(
        client,
        shift.as_deref().unwrap_or(""),
        opts.walk.clone(),
        progress,
    );
    let written = write_temp(body, &metadata, &tmp, opts.stop.as_deref()).await;
    let published = match written {
        Ok(()) => publish(&tmp, cfg, &folder, &stamp).await,
        Err(e) => Err(e),
    };
    match published {
        Ok(path) => Ok(path),
        Err(why) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(fail(why))
        }
    }
}

/// The part of a temp file's name that says who writes it: `<host>~<pid>~<uuid>`.
fn temp_owner(pid: u32, unique: &str) -> String {
    format!("{}~{pid}~{unique}", crate::lock::record::this_host())
}

/// Remove temp files left by a backup of this host whose process is gone (SIGKILL, a crash):
/// `.<name>.<host>~<pid>~<uuid>.tmp` with no process `pid`. Other hosts' files (a shared folder)
/// are left alone.
async fn sweep_stale_temps(folder: &Path) {
    let marker = format!(".{}~", crate::lock::record::this_host());
    let Ok(mut dir) = tokio::fs::read_dir(folder).await else {
        return;
    };
    while let Ok(Some(entry)) = dir.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rfind(&marker).map(|i| &n[i + marker.len()..]))
            .and_then(|rest| rest.split('~').next())
            .and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !process_alive(p)) {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

/// Whether process `pid` exists on this machine (unknown platforms: assume it does).
fn process_alive(pid: u32) -> bool {
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        true
    }
}

/// Stream metadata + body + closing brace into `tmp`, then check and sync it.
async fn write_temp(
    mut body: Walk,
    metadata: &Metadata,
    tmp: &Path,
    stop: Option<&std::sync::atomic::AtomicBool>,
) -> std::result::Result<(), String> {
    let f = crate::private_files::tokio_options(true)
        .open(tmp)
        .await
        .map_err(|e| format!("could not create {}: {e}", tmp.display()))?;
    let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, f);
    let io = |e: std::io::Error| format!("could not write {}: {e}", tmp.display());
    out.write_all(&metadata.prefix()).await.map_err(io)?;
    let mut body_bytes = 0u64;
    while let Some(chunk) = body.next().await {
        if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst)) {
            return Err("interrupted by a signal; no backup file was written".into());
        }
        let chunk = chunk.map_err(|e| e.message)?;
        body_bytes += chunk.len() as u64;
        out.write_all(&chunk).await.map_err(io)?;
    }
    if body_bytes == 0 {
        out.write_all(b"null").await.map_err(io)?;
    }
    out.write_all(file::SUFFIX).await.map_err(io)?;
    out.flush().await.map_err(io)?;
    let f = out.into_inner();
    f.sync_all().await.map_err(io)?;
    drop(f);
    // Check what was written before publishing it: a backup that cannot be restored is worse than
    // none. Streaming, so memory stays flat.
    let path = tmp.to_path_buf();
    let checked = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path)
            .map_err(|e| format!("could not re-read {}: {e}", path.display()))?;
        file::scan(f, file::Mode::Validate).map(|_| ())
    })
    .await
    .map_err(|e| format!("the check of the written file failed: {e}"))?;
    checked.map_err(|e| format!("the server's answer does not make a valid backup: {e}"))
}

/// Give `tmp` its final name without ever replacing an existing file.
async fn publish(
    tmp: &Path,
    cfg: &Config,
    folder: &Path,
    stamp: &str,
) -> std::result::Result<PathBuf, String> {
    for n in 0..1000 {
        let target = folder.join(file_name(cfg, stamp, n));
        match tokio::fs::hard_link(tmp, &target).await {
            Ok(()) => {
                let _ = tokio::fs::remove_file(tmp).await;
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // Filesystems without hard links: check, then rename.
            Err(_) => {
                if tokio::fs::try_exists(&target).await.unwrap_or(true) {
                    continue;
                }
                return match tokio::fs::rename(tmp, &target).await {
                    Ok(()) => Ok(target),
                    Err(e) => Err(format!(
                        "could not move the finished backup to {}: {e}",
                        target.display()
                    )),
                };
            }
        }
    }
    Err("too many backups with the same timestamp".into())
}

/// Restore a backup file over the `{shift}` subtree (see the module docs).
pub async fn restore(client: &Client, cfg: &Config, file: &Path) -> Result<()> {
    restore_with(client, cfg, file, &RestoreOptions::default())
        .await
        .map(|_| ())
}

/// `restore` with options; returns what was done.
pub async fn restore_with(
    client: &Client,
    cfg: &Config,
    file: &Path,
    opts: &RestoreOptions,
) -> Result<RestoreReport> {
    let shift = cfg.shift_path();
    let at = shift.clone().unwrap_or_default();
    let name = file.display().to_string();
    let bad = |why: String| {
        restore_failed(format!(
            "Cannot restore from {name}: {why}; the database was not changed"
        ))
    };

    // Pass 1: validate everything before touching the database.
    let progress = opts.progress.clone();
    let size = std::fs::metadata(file).map(|m| m.len()).ok();
    if let Some(p) = &progress {
        p.phase(Phase::Validate, size);
    }
    let path = file.to_path_buf();
    let counted = progress.clone();
    let scan = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open the file ({e})"))?;
        file::scan(Counted::new(f, counted), file::Mode::Validate)
    })
    .await
    .map_err(|e| bad(format!("the check failed ({e})")))?
    .map_err(bad)?;
    let meta = scan.metadata.clone().expect("scan checks metadata");
    file::check_metadata(&meta).map_err(bad)?;
    let backed_up = meta
        .shift
        .as_deref()
        .map(|s| s.trim_matches('/'))
        .filter(|s| !s.is_empty())
        .map(String::from);
    if backed_up != shift {
        return Err(bad(format!(
            "it is a backup of {} but the configured shift is {}; restore it with the shift it was made with",
            shown(backed_up.as_deref()),
            shown(shift.as_deref())
        )));
    }

    // Pass 2: parse the data again, as writes, while the previous write is in flight.
    if let Some(p) = &progress {
        p.phase(Phase::Restore, size);
    }
    let protect = protected();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<restore::Piece>(1);
    let path = file.to_path_buf();
    let (budget, guard, counted) = (opts.chunk_limit, protect.clone(), progress.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&path).map_err(|e| format!("cannot open the file ({e})"))?;
        let send = Box::new(move |piece| tx.blocking_send(piece).is_ok());
        let mut shredder = restore::Shredder::new(budget, guard, counted.clone(), send);
        file::scan(Counted::new(f, counted), file::Mode::Shred(&mut shredder))
    });
    // A restore puts back data users wrote once: it fires no Cloud Functions triggers unless
    // `backup.restoreTriggers` asks for them.
    let client = &client.with_disable_triggers(!cfg.backup.restore_triggers);
    let mut writer = restore::Writer::new(client, opts.chunk_limit, progress.clone());
    let stopped = || {
        opts.stop
            .as_ref()
            .is_some_and(|s| s.load(std::sync::atomic::Ordering::SeqCst))
    };
    let written: Result<()> = async {
        if let Some(keys) = &scan.top_keys {
            writer
                .prepare(&at, keys, scan.protected_keys.as_deref(), &protect)
                .await?;
        }
        while let Some(piece) = rx.recv().await {
            if stopped() {
                return Err(Error::new(
                    ErrorCode::Interrupted,
                    "interrupted by a signal",
                ));
            }
            match piece {
                restore::Piece::Patch { body, last, .. } => writer.patch(&at, body, last).await?,
                restore::Piece::Whole(json) => writer.whole(&at, json, &protect).await?,
                restore::Piece::ProtectedPrimitive(json) => {
                    let parent = path::join(&at, &protect[0]);
                    writer.primitive(&parent, json, &protect[1..]).await?
                }
            }
        }
        Ok(())
    }
    .await;
    drop(rx);
    let read = reader
        .await
        .map_err(|e| format!("reading failed ({e})"))
        .and_then(|r| r);
    let report = writer.report.clone();
    let partial = |code: ErrorCode, why: String| {
        let how_far = match &report.last {
            Some(last) => format!(
                "{} write(s), {} bytes, the last at {}",
                report.writes,
                report.bytes,
                shown(Some(&path::join(&at, last)))
            ),
            None => format!("{} write(s)", report.writes),
        };
        Error::new(
            code,
            format!(
                "Restore of {} from {name} stopped after {how_far}: {why}; the data may be partly restored, run the restore again",
                shown(shift.as_deref()),
            ),
        )
    };
    if let Err(e) = written {
        let code = if e.code == ErrorCode::Interrupted {
            ErrorCode::Interrupted
        } else {
            ErrorCode::RestoreFailed
        };
        return Err(partial(code, e.message));
    }
    match read {
        Ok(s) if !s.stopped && s.metadata.as_ref() == Some(&meta) => Ok(report),
        Ok(_) => Err(partial(
            ErrorCode::RestoreFailed,
            "the file changed while it was being restored".into(),
        )),
        Err(e) => Err(partial(ErrorCode::RestoreFailed, e)),
    }
}

/// A reader that counts what it reads into `progress`.
struct Counted<R> {
    inner: R,
    read: u64,
    progress: Option<Arc<Progress>>,
}

impl<R> Counted<R> {
    fn new(inner: R, progress: Option<Arc<Progress>>) -> Counted<R> {
        Counted {
            inner,
            read: 0,
            progress,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if let Some(p) = &self.progress {
            p.set_bytes(self.read);
        }
        Ok(n)
    }
}

/// The backup files in the backup folder, newest first. A missing folder lists nothing.
pub async fn list(cfg: &Config, cwd: &Path) -> Result<Vec<BackupInfo>> {
    let folder = cfg.backup_folder_path(cwd);
    let prefix = cfg.backup.prefix.clone();
    let ext = cfg.backup.extension.trim_start_matches('.').to_string();
    tokio::task::spawn_blocking(move || list_blocking(&folder, &prefix, &ext))
        .await
        .map_err(|e| backup_failed(format!("Listing backups failed: {e}")))?
}

fn list_blocking(folder: &Path, prefix: &str, ext: &str) -> Result<Vec<BackupInfo>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(backup_failed(format!(
                "Cannot list backups in {}: {e}",
                folder.display()
            )))
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| {
            backup_failed(format!("Cannot list backups in {}: {e}", folder.display()))
        })?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.')
            || !file_name.starts_with(prefix)
            || (!ext.is_empty() && !file_name.ends_with(&format!(".{ext}")))
        {
            continue;
        }
        let Ok(md) = entry.metadata() else { continue };
        if !md.is_file() {
            continue;
        }
        let path = entry.path();
        let head = std::fs::File::open(&path)
            .ok()
            .and_then(|f| file::scan(f, file::Mode::Head).ok())
            .and_then(|s| s.metadata);
        out.push(BackupInfo {
            file_name,
            path,
            size: md.len(),
            created_at: head.as_ref().map(|m| m.created_at.clone()),
            backed_up_path: head.map(|m| m.path),
        });
    }
    // Newest first: by createdAt (fixed-width UTC ISO strings), then by name; unreadable last.
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.file_name.cmp(&a.file_name))
    });
    Ok(out)
}

/// The keys under the shift (root when none), sorted; `[]` when absent or not an object.
pub async fn list_nodes(client: &Client, cfg: &Config) -> Result<Vec<String>> {
    let at = cfg.shift_path().unwrap_or_default();
    let mut keys: Vec<String> = match client.get_shallow(&at).await? {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    keys.sort();
    Ok(keys)
}

/// `{node: value | null}` for each node, read at `cfg.build_path(node)`. Node names are checked
/// (RTDB keys, `a/b` paths allowed, not empty) before anything is read.
pub async fn backup_nodes<S: AsRef<str>>(
    client: &Client,
    cfg: &Config,
    nodes: &[S],
) -> Result<Map<String, Value>> {
    let mut paths = Vec::with_capacity(nodes.len());
    for node in nodes {
        let node = node.as_ref();
        let segs =
            path::segments(node).map_err(|e| e.context(format!("Invalid node name {node:?}")))?;
        if segs.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidPath,
                format!("Invalid node name {node:?}: name a node under the shift (use createBackup for the whole subtree)"),
            ));
        }
        paths.push((node.to_string(), cfg.build_path(&segs.join("/"))));
    }
    let mut out = Map::new();
    for (node, at) in paths {
        let v = client.get(&at).await.map_err(|e| {
            Error::new(
                ErrorCode::BackupFailed,
                format!(
                    "Reading node {node} at /{}: {}",
                    at.trim_start_matches('/'),
                    e.message
                ),
            )
        })?;
        out.insert(node, v);
    }
    Ok(out)
}

/// Write `value` as a backup file body (for tests and tools that build backups by hand).
pub fn write_backup_file(path: &Path, metadata: &Metadata, data: &Value) -> Result<()> {
    let mut f = crate::private_files::options(false)
        .open(path)
        .map_err(|e| Error::io(path.display(), e))?;
    f.write_all(&metadata.prefix())
        .map_err(|e| Error::io(path.display(), e))?;
    serde_json::to_writer(&mut f, data).map_err(|e| Error::internal(e.to_string()))?;
    f.write_all(file::SUFFIX)
        .map_err(|e| Error::io(path.display(), e))
}
