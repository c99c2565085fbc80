//! Files that hold a copy of the data — backups, a rehearsal's `--keep` file, the emulator's
//! export — are created readable and writable by their owner only (0600), and a folder created
//! for them is 0700, on every platform that has file modes (elsewhere: the platform default).
//! An existing folder keeps its mode. `replace` writes such a file whole or not at all.

use std::io;
use std::path::Path;

/// Options to create a new private file for writing (`create_new`: fail if it exists).
pub fn options(create_new: bool) -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.write(true);
    if create_new {
        o.create_new(true);
    } else {
        o.create(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

/// `options(create_new)` for tokio.
pub fn tokio_options(create_new: bool) -> tokio::fs::OpenOptions {
    tokio::fs::OpenOptions::from(options(create_new))
}

/// Create `dir` and its missing parents, each created one 0700.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Write `path` whole, or not at all: `write` fills a private temp file next to it (buffered),
/// which is synced and renamed over `path`; on any failure the temp file is removed and `path`
/// is left as it was.
pub fn replace(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_next_to(path);
    let written = (|| {
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, options(true).open(&tmp)?);
        write(&mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Why a file cannot be written at `path` later (`replace`), checked now: it is a folder, names
/// no file, its folder does not exist, or takes no new file.
pub fn check_target(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err("it is a folder".into());
    }
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Err("it names no file".into());
    };
    if !dir.is_dir() {
        return Err(format!("the folder {} does not exist", dir.display()));
    }
    let probe = temp_next_to(path);
    match options(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!(
            "a file cannot be created in {} ({e})",
            dir.display()
        )),
    }
}

/// A hidden temp file next to `path`: `.<name>.<uuid>.tmp`.
fn temp_next_to(path: &Path) -> std::path::PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_are_0600_and_new_folders_0700() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let f = dir.join("x.json");
        std::io::Write::write_all(&mut options(true).open(&f).unwrap(), b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&t.path().join("a")), 0o700);
        assert!(
            options(true).open(&f).is_err(),
            "create_new refuses an existing file"
        );
    }

    #[test]
    fn replace_writes_whole_files_or_nothing() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("out.json");
        std::fs::write(&f, "old").unwrap();
        let failed = replace(&f, |w| {
            std::io::Write::write_all(w, b"half")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(t.path()).unwrap().count(),
            1,
            "no temp file left"
        );
        replace(&f, |w| std::io::Write::write_all(w, b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(check_target(t.path()).unwrap_err(), "it is a folder");
        assert!(check_target(&t.path().join("no/x.json"))
            .unwrap_err()
            .contains("does not exist"));
        check_target(&f).unwrap();
    }
}
