//! Which config file the CLI reads: `--config-file`, else `MSR_CONFIG_FILE`, else the first of
//! [`NAMES`] in the working directory. A file there that looks like a config file but has
//! another name (`msr.conf.js`, `msr-config.js`, `msr.config.yaml`, ...) is never skipped
//! silently: it is refused when no config file is read, and reported as ignored otherwise, as
//! are the other config files a run does not read.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

use super::Config;
use crate::{Error, Result};

/// The names looked for in the working directory, in this order.
pub const NAMES: [&str; 7] = [
    "msr.config.js",
    "msr.config.cjs",
    "msr.config.mjs",
    "msr.config.ts",
    "msr.config.mts",
    "msr.config.cts",
    "msr.config.json",
];

/// Extensions a config file may have (JS and TypeScript modules, JSON).
pub const EXTENSIONS: [&str; 7] = ["js", "cjs", "mjs", "ts", "mts", "cts", "json"];

/// Names that look like an msr config file (`msr.conf.js`, `msr-config.json`, `.msrrc`, ...).
static LOOKALIKE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\.?(?i-u:msr)[._-]?(?i-u:config|conf|rc)\b").expect("config name pattern")
});

/// The config file a run reads, and the candidates it does not read (each with the reason).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    /// Where the path came from: `--config-file`, `MSR_CONFIG_FILE`, or the working directory.
    pub source: &'static str,
    pub ignored: Vec<(PathBuf, String)>,
}

/// Find the config file. `flag`: `--config-file`; `env`: `MSR_CONFIG_FILE` (empty = unset).
pub fn find(flag: Option<&str>, env: Option<&str>, cwd: &Path) -> Result<ConfigFile> {
    let explicit = flag.map(|f| (f, "--config-file")).or_else(|| {
        env.filter(|v| !v.trim().is_empty())
            .map(|v| (v, "MSR_CONFIG_FILE"))
    });
    let candidates = candidates(cwd);
    if let Some((file, source)) = explicit {
        if file.trim().is_empty() {
            return Err(Error::config(format!(
                "{source} is empty: give the path of the config file, or leave it out to read msr.config.js (or another of {}) from the working directory",
                NAMES.join(", ")
            )));
        }
        let path = Config::resolve(cwd, file);
        if !path.is_file() {
            return Err(Error::config(format!(
                "Config file not found: {} (given by {source}). Check the path; it is resolved against {}",
                path.display(),
                cwd.display()
            )));
        }
        check_extension(&path, source)?;
        let ignored = candidates
            .into_iter()
            .filter(|c| !same_file(c, &path))
            .map(|c| {
                let why = format!("the config file is {} (given by {source})", path.display());
                (c, why)
            })
            .collect();
        return Ok(ConfigFile {
            path: Some(path),
            source,
            ignored,
        });
    }
    let used = NAMES.iter().map(|n| cwd.join(n)).find(|p| p.is_file());
    let Some(used) = used else {
        if candidates.is_empty() {
            return Ok(ConfigFile::default());
        }
        let names: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        return Err(Error::config(format!(
            "{} look(s) like a config file, but msr-firebase reads only {} from the working directory, so it would \
             run without these settings (the lock among them). Rename the file to one of those names, or pass it with \
             --config-file (or MSR_CONFIG_FILE)",
            names.join(", "),
            NAMES.join(", ")
        )));
    };
    let ignored = candidates
        .into_iter()
        .filter(|c| c != &used)
        .map(|c| {
            let why = if NAMES.iter().any(|n| c.file_name().is_some_and(|f| f == *n)) {
                format!(
                    "{} is read instead (the first of {})",
                    used.display(),
                    NAMES.join(", ")
                )
            } else {
                format!(
                    "not a config file name msr-firebase reads; {} is read instead",
                    used.display()
                )
            };
            (c, why)
        })
        .collect();
    Ok(ConfigFile {
        path: Some(used),
        source: "the working directory",
        ignored,
    })
}

/// A config file must be a JS or TypeScript module or JSON.
fn check_extension(path: &Path, source: &str) -> Result<()> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if ext.as_deref().is_some_and(|e| EXTENSIONS.contains(&e)) {
        return Ok(());
    }
    Err(Error::config(format!(
        "Config file {} (given by {source}) cannot be read: a config file is a JS or TypeScript module or JSON ({}); \
         export the settings from e.g. msr.config.js",
        path.display(),
        EXTENSIONS.map(|e| format!(".{e}")).join(", ")
    )))
}

/// Files in `cwd` that are, or look like, config files (sorted).
fn candidates(cwd: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(cwd) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| LOOKALIKE.is_match(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            std::fs::write(d.path().join(f), "module.exports = {}").unwrap();
        }
        d
    }

    #[test]
    fn the_first_known_name_is_read_and_the_others_reported() {
        let d = dir(&[
            "msr.config.json",
            "msr.config.ts",
            "msr.conf.js",
            "README.md",
        ]);
        let f = find(None, None, d.path()).unwrap();
        assert_eq!(f.path, Some(d.path().join("msr.config.ts")));
        let ignored: Vec<_> = f.ignored.iter().map(|(p, _)| p.clone()).collect();
        assert_eq!(
            ignored,
            [
                d.path().join("msr.conf.js"),
                d.path().join("msr.config.json")
            ]
        );
        assert!(
            f.ignored[0].1.contains("not a config file name"),
            "{:?}",
            f.ignored
        );
    }

    #[test]
    fn a_lookalike_alone_is_refused() {
        for name in [
            "msr.conf.js",
            "msr-config.json",
            "msr.config.yaml",
            ".msrrc",
        ] {
            let d = dir(&[name]);
            let e = find(None, None, d.path()).unwrap_err();
            assert!(
                e.message.contains(name) && e.message.contains("--config-file"),
                "{name}: {}",
                e.message
            );
        }
        assert_eq!(
            find(None, None, dir(&[]).path()).unwrap(),
            ConfigFile::default()
        );
    }

    #[test]
    fn explicit_files_are_checked() {
        let d = dir(&["msr.config.js", "conf.yaml", "b.json"]);
        let f = find(Some("b.json"), Some("conf.yaml"), d.path()).unwrap();
        assert_eq!(f.path, Some(d.path().join("b.json")));
        assert_eq!(f.source, "--config-file");
        assert_eq!(f.ignored.len(), 1);
        let e = find(None, Some("conf.yaml"), d.path()).unwrap_err();
        assert!(
            e.message.contains("MSR_CONFIG_FILE") && e.message.contains(".json"),
            "{}",
            e.message
        );
        let e = find(Some(""), None, d.path()).unwrap_err();
        assert!(
            e.message.contains("--config-file is empty"),
            "{}",
            e.message
        );
        // An empty MSR_CONFIG_FILE is unset.
        assert_eq!(
            find(None, Some(""), d.path()).unwrap().path,
            Some(d.path().join("msr.config.js"))
        );
    }
}
