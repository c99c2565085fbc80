//! `--env-file <path>`: variables from a `.env` file, loaded before the configuration so that
//! config files, `MSR_*` variables and migration scripts all see them. A variable already set in
//! the real environment wins (a deploy's own settings are never overridden by a file).

use std::path::Path;

use crate::config::Config;
use crate::{Error, Result};

/// The variables of `file` that the environment does not set yet, in file order.
/// `is_set(name)` says whether the real environment has `name`.
pub fn missing_vars(
    file: &str,
    cwd: &Path,
    is_set: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>> {
    let path = Config::resolve(cwd, file);
    let iter = dotenvy::from_path_iter(&path).map_err(|e| {
        Error::config(format!(
            "Cannot read the env file {} (given by --env-file): {}. Check the path; it is resolved against {}",
            path.display(),
            describe(&e),
            cwd.display()
        ))
    })?;
    let mut out: Vec<(String, String)> = Vec::new();
    for item in iter {
        let (k, v) = item.map_err(|e| {
            Error::config(format!(
                "The env file {} is not valid: {}. Use NAME=value lines (# for comments)",
                path.display(),
                describe(&e)
            ))
        })?;
        if is_set(&k) {
            continue;
        }
        // A later line for the same name wins within the file.
        out.retain(|(name, _)| name != &k);
        out.push((k, v));
    }
    Ok(out)
}

fn describe(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::LineParse(line, at) => {
            format!("cannot parse line {line:?} at position {at}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_fill_only_what_the_environment_lacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nA=1\nexport B=\"two words\"\nC=3\nA=again\n",
        )
        .unwrap();
        let got = missing_vars(".env", dir.path(), |k| k == "C").unwrap();
        assert_eq!(
            got,
            vec![
                ("B".to_string(), "two words".to_string()),
                ("A".to_string(), "again".to_string())
            ]
        );
        let missing = missing_vars("nope.env", dir.path(), |_| false).unwrap_err();
        assert!(missing.message.contains("nope.env"), "{}", missing.message);
        std::fs::write(dir.path().join("bad.env"), "A=1\nthis is not a line\n").unwrap();
        let bad = missing_vars("bad.env", dir.path(), |_| false).unwrap_err();
        assert!(bad.message.contains("bad.env"), "{}", bad.message);
    }
}
