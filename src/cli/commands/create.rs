//! `create <name> [--ext js|cjs|mjs|ts]`: a new timestamped migration script from a template,
//! in the configured folder.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde_json::json;

use crate::cli::output::Io;
use crate::config::Config;
use crate::{Error, ErrorCode, ExitStatus, Result};

pub fn run(cfg: &Config, name: &str, ext: &str, io: &mut Io, cwd: &Path, json: bool) -> ExitStatus {
    let now = chrono::Local::now().naive_local();
    match create_script(&cfg.folder_path(cwd), name, ext, now) {
        Ok(path) => {
            if json {
                io.json(&json!({"path": path}));
            } else {
                io.line(format!("{} Created {}", io.green("✓"), path.display()));
            }
            ExitStatus::Success
        }
        Err(e) => io.fail_plain("Create failed", &e, ExitStatus::GeneralError),
    }
}

/// `V<YYYYMMDDHHmm>_<name>.<ext>` in `folder` (created when missing). The name is reduced to
/// `[a-z0-9_]`; a clash with an existing version moves the timestamp forward by a minute.
pub fn create_script(folder: &Path, name: &str, ext: &str, now: NaiveDateTime) -> Result<PathBuf> {
    let slug: String = name
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if slug.is_empty() {
        return Err(Error::config(format!(
            "'{name}' cannot be a migration name: use letters, digits and underscores, e.g. add_user_roles"
        )));
    }
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::io(format!("Cannot create {}", folder.display()), e))?;
    let existing: Vec<String> = std::fs::read_dir(folder)
        .map_err(|e| Error::io(format!("Cannot read {}", folder.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let mut t = now;
    loop {
        let version = t.format("%Y%m%d%H%M").to_string();
        if !existing
            .iter()
            .any(|f| f.starts_with(&format!("V{version}_")))
        {
            let path = folder.join(format!("V{version}_{slug}.{ext}"));
            std::fs::write(&path, template(ext, &slug)).map_err(|e| {
                Error::new(
                    ErrorCode::Io,
                    format!("Cannot write {}: {e}", path.display()),
                )
            })?;
            return Ok(path);
        }
        t += chrono::Duration::minutes(1);
    }
}

fn template(ext: &str, slug: &str) -> String {
    let body = format!(
        r#"  /**
   * @param db       {{ database, checkConnection() }} — db.database is the firebase-admin Database API
   * @param info     this migration: name, filepath, timestamp, startedAt, username
   * @param handler  {{ cfg, db, lockingService }} — handler.cfg.buildPath('x') puts 'x' under the shift
   */
  async up(db, info, handler) {{
    // e.g. await db.database.ref(handler.cfg.buildPath('{slug}')).set({{ createdAt: Date.now() }})
    return '{slug} applied'
  }}

  async down(db, info, handler) {{
    // undo what up() did, e.g. await db.database.ref(handler.cfg.buildPath('{slug}')).remove()
    return '{slug} reverted'
  }}
"#
    );
    match ext {
        "mjs" | "ts" => format!("export default class Migration {{\n{body}}}\n"),
        _ => format!("module.exports = class Migration {{\n{body}}}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_timestamped_and_unique() {
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::NaiveDate::from_ymd_opt(2025, 1, 1)
            .unwrap()
            .and_hms_opt(0, 1, 0)
            .unwrap();
        let a = create_script(dir.path(), "Add user roles!", "js", now).unwrap();
        assert_eq!(a.file_name().unwrap(), "V202501010001_add_user_roles.js");
        let b = create_script(dir.path(), "second", "js", now).unwrap();
        assert_eq!(b.file_name().unwrap(), "V202501010002_second.js");
        assert!(std::fs::read_to_string(&a)
            .unwrap()
            .contains("async up(db, info, handler)"));
        assert!(create_script(dir.path(), "!!!", "js", now).is_err());
    }
}
