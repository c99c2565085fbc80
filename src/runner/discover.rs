//! Discovery: migration files in `folder` matching `filePatterns` (group 1 = version),
//! recursive per config, sorted by version; hidden files and folders and `node_modules` skipped,
//! every real folder and file taken once (a symbolic link loop or a link to a file already found
//! is skipped, with a warning for a file). Versions are whole numbers above 0 (a matching name without one is refused), a
//! (version, name) exists once; other duplicate versions per `duplicateTimestampMode`. The
//! `beforeMigrate` script; checksums of the raw bytes.

use std::path::{Path, PathBuf};

use md5::Md5;
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::config::{ChecksumAlgorithm, Config, DuplicateTimestampMode};
use crate::{Error, ErrorCode, Result};

/// Extensions a script may have.
pub const SCRIPT_EXTENSIONS: [&str; 4] = ["js", "cjs", "mjs", "ts"];

/// A migration file found on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// File name, e.g. `V202501010001_create_users.js`.
    pub name: String,
    /// Absolute path (folder resolved against the working directory).
    pub filepath: PathBuf,
    pub version: u64,
    /// Hex checksum of the raw bytes per `checksumAlgorithm`.
    pub checksum: String,
}

impl Script {
    pub fn filepath_str(&self) -> String {
        self.filepath.to_string_lossy().into_owned()
    }
}

/// Two (or more) files with one version.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub version: u64,
    pub files: Vec<PathBuf>,
    /// "Duplicate migration timestamp detected: <ts> ..." naming the files.
    pub message: String,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub folder: PathBuf,
    /// Sorted by version (then name).
    pub scripts: Vec<Script>,
    pub before_migrate: Option<PathBuf>,
    pub duplicates: Vec<Duplicate>,
    /// Warnings to log (empty folder, near-miss file names).
    pub warnings: Vec<String>,
}

/// Checksum of a file's raw bytes (`sha256` or `md5`, hex).
pub fn checksum_file(path: &Path, algorithm: ChecksumAlgorithm) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("Cannot read {}", path.display()), e))?;
    Ok(checksum_bytes(&bytes, algorithm))
}

pub fn checksum_bytes(bytes: &[u8], algorithm: ChecksumAlgorithm) -> String {
    match algorithm {
        ChecksumAlgorithm::Md5 => hex::encode(Md5::digest(bytes)),
        ChecksumAlgorithm::Sha256 => hex::encode(Sha256::digest(bytes)),
    }
}

/// The algorithm a stored checksum was made with, judged by its length (md5 = 32 hex chars),
/// so records from a run with another `checksumAlgorithm` still compare correctly.
pub fn algorithm_of(checksum: &str, configured: ChecksumAlgorithm) -> ChecksumAlgorithm {
    match checksum.len() {
        32 => ChecksumAlgorithm::Md5,
        64 => ChecksumAlgorithm::Sha256,
        _ => configured,
    }
}

fn compile_patterns(cfg: &Config) -> Result<Vec<Regex>> {
    cfg.file_patterns
        .iter()
        .enumerate()
        .map(|(i, p)| {
            crate::config::file_pattern(p).map_err(|why| {
                Error::config(format!("Invalid configuration: filePatterns[{i}] {why}"))
            })
        })
        .collect()
}

/// The version a file name encodes per the patterns: `None` = not a migration; `Some(Err)` =
/// a name the patterns match whose group 1 is no usable version (not a whole number, too large,
/// or 0), with the reason.
pub fn parse_version(patterns: &[Regex], name: &str) -> Option<std::result::Result<u64, String>> {
    let captured = patterns
        .iter()
        .find_map(|re| re.captures(name).map(|c| c.get(1).map(|m| m.as_str())))?;
    Some(match captured {
        None => Err("the pattern's group 1 captured nothing".into()),
        Some(v) => match v.parse::<u64>() {
            Ok(0) => Err(
                "version 0 is not a migration version (0 is what `down 0` rolls back to)".into(),
            ),
            Ok(n) if n > MAX_VERSION => {
                Err(format!("version {n} is too large (at most {MAX_VERSION})"))
            }
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "the version {v:?} (group 1 of the pattern) is not a whole number"
            )),
        },
    })
}

/// The largest version: the largest integer a JS number holds exactly (versions reach JS as
/// numbers).
pub const MAX_VERSION: u64 = (1 << 53) - 1;

/// A name that looks like a migration (`V`/`v` followed by a digit, a JS or TypeScript
/// extension in any case: `.JS`, `.mts`, ...) but does not match the patterns: probably a typo
/// worth a warning.
fn looks_like_migration(name: &str) -> bool {
    let mut chars = name.chars();
    let lower = name.to_ascii_lowercase();
    matches!(chars.next(), Some('V' | 'v'))
        && chars.next().is_some_and(|c| c.is_ascii_digit())
        && !lower.ends_with(".d.ts")
        && lower.rsplit_once('.').is_some_and(|(_, ext)| {
            SCRIPT_EXTENSIONS.contains(&ext) || ext == "mts" || ext == "cts"
        })
}

fn is_before_migrate(cfg: &Config, name: &str) -> bool {
    match cfg.before_migrate_name.as_deref().filter(|n| !n.is_empty()) {
        Some(bm) => name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| stem == bm && SCRIPT_EXTENSIONS.contains(&ext)),
        None => false,
    }
}

/// Walk the folder. Missing folder -> CONFIG_INVALID naming the resolved path and the fix.
pub fn discover(cfg: &Config, cwd: &Path) -> Result<Discovery> {
    let folder = cfg.folder_path(cwd);
    match std::fs::metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::config(format!(
                "Migration scripts folder {} is not a directory. Set the folder with --folder <path> or `folder` in msr.config.js.",
                folder.display()
            )))
        }
        Err(_) => {
            return Err(Error::config(format!(
                "Migration scripts folder not found: {} (folder '{}' resolved against {}). \
                 Create it, or point to your migrations with --folder <path> or `folder` in msr.config.js.",
                folder.display(),
                cfg.folder,
                cwd.display()
            )))
        }
    }
    let patterns = compile_patterns(cfg)?;
    let mut out = Discovery {
        folder: folder.clone(),
        ..Default::default()
    };
    let mut files = Vec::new();
    let mut seen = Walked::default();
    walk(&folder, cfg.recursive, &mut files, &mut seen)?;
    let mut any_entry = false;
    let mut unusable = Vec::new();
    for path in files {
        any_entry = true;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let top_level = path.parent() == Some(folder.as_path());
        if is_before_migrate(cfg, &name) {
            if top_level && out.before_migrate.is_none() {
                out.before_migrate = Some(path);
            }
            continue;
        }
        match parse_version(&patterns, &name) {
            Some(Ok(version)) => {
                let checksum = checksum_file(&path, cfg.checksum_algorithm)?;
                out.scripts.push(Script { name, filepath: path, version, checksum });
            }
            Some(Err(why)) => unusable.push(format!("{}: {why}", path.display())),
            None if looks_like_migration(&name) => out.warnings.push(format!(
                "Skipping {}: the name looks like a migration but does not match the expected pattern {} \
                 (e.g. V202501010001_create_users.js: 'V', 12 digits, '_', a name)",
                path.display(),
                cfg.file_patterns.join(" or ")
            )),
            None => {}
        }
    }
    if let Some(bm) = cfg.before_migrate_name.as_deref().filter(|n| !n.is_empty()) {
        // Prefer a deterministic choice if several extensions exist: .js, .cjs, .mjs, .ts order.
        for ext in SCRIPT_EXTENSIONS {
            let p = folder.join(format!("{bm}.{ext}"));
            if p.is_file() {
                out.before_migrate = Some(p);
                break;
            }
        }
    }
    if !unusable.is_empty() {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            format!(
                "Migration file name(s) without a usable version: {}. Rename each as V<YYYYMMDDHHmm>_<name>.js \
                 (e.g. V202501010001_create_users.js), or fix filePatterns (group 1 = the version, a whole number above 0)",
                unusable.join("; ")
            ),
        ));
    }
    for again in &seen.again {
        out.warnings.push(format!(
            "Skipping {again}: a symbolic link to a file already found; each migration is run once"
        ));
    }
    if !any_entry {
        out.warnings.push(format!(
            "Migration scripts folder is empty. Please check your configuration.\n{}",
            folder.display()
        ));
    }
    out.scripts
        .sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.name.cmp(&b.name)));
    let mut i = 0;
    while i < out.scripts.len() {
        let mut j = i + 1;
        while j < out.scripts.len() && out.scripts[j].version == out.scripts[i].version {
            j += 1;
        }
        if j - i > 1 {
            let group = &out.scripts[i..j];
            let files: Vec<PathBuf> = group.iter().map(|s| s.filepath.clone()).collect();
            if let Some((a, b)) = group.iter().enumerate().find_map(|(k, a)| {
                group[k + 1..]
                    .iter()
                    .find(|b| b.name == a.name)
                    .map(|b| (a, b))
            }) {
                // One history record per (version, name): the second could never be recorded,
                // whatever duplicateTimestampMode says.
                return Err(Error::new(
                    ErrorCode::ValidationFailed,
                    format!(
                        "The migration {} exists twice: {} and {}. Each migration must exist once in the migrations folder; \
                         remove one of them",
                        a.name,
                        a.filepath.display(),
                        b.filepath.display()
                    ),
                ));
            }
            let list = files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" and ");
            out.duplicates.push(Duplicate {
                version: out.scripts[i].version,
                message: format!(
                    "Duplicate migration timestamp detected: {} is used by {list}. \
                     Each migration needs a unique timestamp; rename one of them \
                     (duplicateTimestampMode decides whether this is a warning or an error).",
                    out.scripts[i].version
                ),
                files,
            });
        }
        i = j;
    }
    Ok(out)
}

impl Discovery {
    /// Apply `duplicateTimestampMode`: `error` -> VALIDATION_FAILED with the duplicate text;
    /// `warn` -> the messages to log; `ignore` -> nothing.
    pub fn check_duplicates(&self, cfg: &Config) -> Result<Vec<String>> {
        if self.duplicates.is_empty() {
            return Ok(Vec::new());
        }
        match cfg.duplicate_timestamp_mode {
            DuplicateTimestampMode::Error => Err(Error::new(
                ErrorCode::ValidationFailed,
                self.duplicates
                    .iter()
                    .map(|d| d.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
            DuplicateTimestampMode::Ignore => Ok(Vec::new()),
            DuplicateTimestampMode::Warn => {
                Ok(self.duplicates.iter().map(|d| d.message.clone()).collect())
            }
        }
    }
}

/// What a walk has been through, by real path (symbolic links resolved).
#[derive(Default)]
struct Walked {
    dirs: std::collections::HashSet<PathBuf>,
    files: std::collections::HashMap<PathBuf, PathBuf>,
    /// Files reached a second time through a link: "<path> (the same file as <first path>)".
    again: Vec<String>,
}

/// Folders a scan never enters: dependencies, and hidden ones (`.git`, ...).
fn skipped_folder(name: &str) -> bool {
    name.starts_with('.') || name == "node_modules"
}

fn walk(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>, seen: &mut Walked) -> Result<()> {
    // A folder reached again (a link to itself or to a parent) is not scanned twice.
    if let Ok(real) = std::fs::canonicalize(dir) {
        if !seen.dirs.insert(real) {
            return Ok(());
        }
    }
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("Cannot read migration folder {}", dir.display()), e))?;
    let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => continue, // dangling symlink
        };
        if meta.is_dir() {
            if recursive && !skipped_folder(&name) {
                walk(&path, recursive, out, seen)?;
            }
        } else if meta.is_file() {
            if let Ok(real) = std::fs::canonicalize(&path) {
                if let Some(first) = seen.files.get(&real) {
                    seen.again.push(format!(
                        "{} (the same file as {})",
                        path.display(),
                        first.display()
                    ));
                    continue;
                }
                seen.files.insert(real, path.clone());
            }
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, rel: &str, body: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn cfg(folder: &Path) -> Config {
        Config {
            folder: folder.to_string_lossy().into_owned(),
            ..Config::default()
        }
    }

    #[test]
    fn finds_sorts_and_skips() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        touch(d, "V202501010003_c.js", "c");
        touch(d, "sub/V202501010001_a.ts", "a");
        touch(d, "a-sub/V202501010002_b.mjs", "b");
        touch(d, ".hidden/V202501010004_h.js", "h");
        touch(d, ".V202501010005_x.js", "x");
        touch(d, "README.md", "");
        touch(d, "beforeMigrate.js", "bm");
        touch(d, "sub/beforeMigrate.js", "not top level");
        touch(d, "V2025_x.js", "");
        touch(d, "v202501010009_x.js", "");
        touch(d, "V202501010010.js", "");
        touch(d, "V202501010011_upper.JS", "");
        let disc = discover(&cfg(d), Path::new("/")).unwrap();
        let names: Vec<_> = disc.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "V202501010001_a.ts",
                "V202501010002_b.mjs",
                "V202501010003_c.js"
            ]
        );
        assert_eq!(
            disc.before_migrate.as_deref(),
            Some(d.join("beforeMigrate.js").as_path())
        );
        assert_eq!(disc.warnings.len(), 4, "{:?}", disc.warnings);
        for bad in [
            "V2025_x.js",
            "v202501010009_x.js",
            "V202501010010.js",
            "V202501010011_upper.JS",
        ] {
            assert!(
                disc.warnings
                    .iter()
                    .any(|w| w.contains(bad) && w.contains("expected pattern")),
                "{bad}"
            );
        }
        assert_eq!(
            disc.scripts[0].checksum,
            checksum_bytes(b"a", ChecksumAlgorithm::Sha256)
        );
        assert_eq!(
            checksum_bytes(b"a", ChecksumAlgorithm::Md5),
            "0cc175b9c0f1b6a831c399e269772661"
        );

        let flat = Config {
            recursive: false,
            ..cfg(d)
        };
        let disc = discover(&flat, Path::new("/")).unwrap();
        assert_eq!(disc.scripts.len(), 1);
    }

    #[test]
    fn missing_and_empty_folders() {
        let t = tempfile::tempdir().unwrap();
        let e = discover(
            &Config {
                folder: "nope/migrations".into(),
                ..Config::default()
            },
            t.path(),
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::ConfigInvalid);
        assert!(
            e.message
                .contains(&t.path().join("nope/migrations").display().to_string()),
            "{}",
            e.message
        );
        assert!(
            e.message.contains("--folder") && e.message.contains("msr.config.js"),
            "{}",
            e.message
        );
        let disc = discover(&cfg(t.path()), Path::new("/")).unwrap();
        assert!(disc.scripts.is_empty());
        assert!(
            disc.warnings[0].starts_with("Migration scripts folder is empty"),
            "{:?}",
            disc.warnings
        );
        assert!(disc.warnings[0].contains(&t.path().display().to_string()));
    }

    #[test]
    #[cfg(unix)]
    fn node_modules_hidden_folders_and_link_loops_are_scanned_once() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        touch(d, "V202501010001_a.js", "a");
        touch(d, "node_modules/pkg/V202501010002_dep.js", "dep");
        touch(d, ".git/V202501010003_h.js", "h");
        touch(d, "other/V202501010004_o.js", "o");
        std::os::unix::fs::symlink(".", d.join("self")).unwrap();
        std::os::unix::fs::symlink(
            d.join("V202501010001_a.js"),
            d.join("other/V202501010001_a.js"),
        )
        .unwrap();
        let disc = discover(&cfg(d), Path::new("/")).unwrap();
        let names: Vec<_> = disc.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["V202501010001_a.js", "V202501010004_o.js"]);
        assert!(disc.duplicates.is_empty());
        assert!(
            disc.warnings
                .iter()
                .any(|w| w.contains("other/V202501010001_a.js") && w.contains("symbolic link")),
            "{:?}",
            disc.warnings
        );
    }

    #[test]
    fn versions_must_be_whole_numbers_above_zero_and_a_migration_exists_once() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "V000000000000_x.js", "x");
        let e = discover(&cfg(t.path()), Path::new("/")).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(
            e.message.contains("V000000000000_x.js") && e.message.contains("version 0"),
            "{}",
            e.message
        );
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "M_abc_x.js", "x");
        let e = discover(
            &Config {
                file_patterns: vec![r"^M_(\w+)_.*\.js$".into()],
                ..cfg(t.path())
            },
            Path::new("/"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("\"abc\"") && e.message.contains("not a whole number"),
            "{}",
            e.message
        );
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "V202501010001_a.js", "a");
        touch(t.path(), "copy/V202501010001_a.js", "a2");
        let e = discover(&cfg(t.path()), Path::new("/")).unwrap_err();
        assert!(e.message.contains("exists twice"), "{}", e.message);
    }

    #[test]
    fn duplicates_per_mode() {
        let t = tempfile::tempdir().unwrap();
        touch(t.path(), "V202501010001_a.js", "a");
        touch(t.path(), "x/V202501010001_b.js", "b");
        let c = cfg(t.path());
        let disc = discover(&c, Path::new("/")).unwrap();
        assert_eq!(disc.duplicates.len(), 1);
        let w = disc.check_duplicates(&c).unwrap();
        assert!(w[0].starts_with("Duplicate migration timestamp detected: 202501010001"));
        assert!(w[0].contains("V202501010001_a.js") && w[0].contains("V202501010001_b.js"));
        let e = disc
            .check_duplicates(&Config {
                duplicate_timestamp_mode: DuplicateTimestampMode::Error,
                ..c.clone()
            })
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert!(e
            .message
            .starts_with("Duplicate migration timestamp detected: 202501010001"));
        assert!(disc
            .check_duplicates(&Config {
                duplicate_timestamp_mode: DuplicateTimestampMode::Ignore,
                ..c
            })
            .unwrap()
            .is_empty());
    }
}
