//! Files that hold a copy of the data — backups, a rehearsal's `--keep` file, the emulator's
//! export — are created readable and writable by their owner only (0600), and a folder created
//! for them is 0700, on every platform that has file modes (elsewhere: the platform default).
//! An existing folder keeps its mode.

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
}
