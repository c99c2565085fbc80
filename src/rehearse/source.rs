//! Where a rehearsal's data comes from: a walk of the `{shift}` subtree of the source database
//! (`backup::walk`: reads only, bounded responses) or a backup file (checked, then copied), each
//! streamed into the sandbox emulator as it arrives (`Emulator::import_stream`).

use std::path::Path;
use std::sync::Arc;

use crate::backup::{self, Progress};
use crate::emulator::Emulator;
use crate::{Error, ErrorCode, Result};

use super::{internal, Rehearsal, Source, SourceInfo, SourceKind, NAMESPACE};

fn source_error(what: &str, e: &Error) -> Error {
    Error::new(
        ErrorCode::SourceUnreadable,
        format!(
            "Cannot read {what} to rehearse on: {}; nothing was run",
            e.message
        ),
    )
}

/// Load the source into the emulator at `at`.
pub(super) async fn load(
    r: &Rehearsal<'_>,
    emu: &Emulator,
    at: &str,
    shown: &str,
) -> Result<SourceInfo> {
    let progress = r.progress.clone().unwrap_or_default();
    match &r.source {
        Source::Database(client) => {
            progress.phase(backup::Phase::Read, None);
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
