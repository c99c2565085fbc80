//! The rules files a Firebase project's `firebase.json` names for the Realtime Database:
//! `"database": {"rules": "database.rules.json"}` (one file) or the per-instance form
//! `"database": [{"instance": "my-db", "rules": "my-db.rules.json"}, ...]`. Paths are relative
//! to the folder of firebase.json.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// A rules file and the namespace (database instance) it is for; `None`: every namespace that
/// has no rules of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFile {
    pub namespace: Option<String>,
    pub path: PathBuf,
}

/// The rules files `file` (a firebase.json) names; empty when it has no `database` rules.
pub fn rules_files(file: &Path) -> Result<Vec<RulesFile>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::io(format!("Cannot read {}", file.display()), e))?;
    let doc = super::doc::parse(&text)
        .map_err(|e| Error::config(format!("{}:{e}", file.display())))?
        .to_json();
    let dir = file.parent().unwrap_or(Path::new("."));
    let bad = |what: String| Error::config(format!("{}: {what}", file.display()));
    let rules_path = |v: Option<&Value>, at: &str| -> Result<Option<PathBuf>> {
        match v {
            None => Ok(None),
            Some(Value::String(p)) if !p.is_empty() => Ok(Some(dir.join(p))),
            Some(_) => Err(bad(format!("{at}.rules must be the path of a rules file"))),
        }
    };
    match doc.get("database") {
        None => Ok(Vec::new()),
        Some(Value::Object(db)) => Ok(rules_path(db.get("rules"), "database")?
            .map(|path| RulesFile {
                namespace: None,
                path,
            })
            .into_iter()
            .collect()),
        Some(Value::Array(entries)) => {
            let mut out = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                let at = format!("database[{i}]");
                let Some(instance) = e.get("instance").and_then(Value::as_str) else {
                    let hint = if e.get("target").is_some() {
                        " (deploy targets are not resolved here: name the database instance)"
                    } else {
                        ""
                    };
                    return Err(bad(format!("{at} has no \"instance\"{hint}")));
                };
                if !crate::rtdb::database_url::valid_namespace(instance) {
                    return Err(bad(format!("{at}.instance {instance:?} is not a database name")));
                }
                if let Some(path) = rules_path(e.get("rules"), &at)? {
                    out.push(RulesFile {
                        namespace: Some(instance.to_string()),
                        path,
                    });
                }
            }
            Ok(out)
        }
        Some(_) => Err(bad(
            "\"database\" must be an object ({\"rules\": \"<file>\"}) or a list of {\"instance\", \"rules\"}".into(),
        )),
    }
}

/// The rules file the firebase.json in `dir` names for database `instance`: the file of the
/// one-database form, else the entry for that instance (or the only entry). `Ok(None)` without
/// firebase.json or without rules for it.
pub fn rules_file_for(dir: &Path, instance: Option<&str>) -> Result<Option<PathBuf>> {
    let file = dir.join("firebase.json");
    if !file.is_file() {
        return Ok(None);
    }
    let files = rules_files(&file)?;
    let pick = files
        .iter()
        .find(|f| f.namespace.is_none())
        .or_else(|| {
            files
                .iter()
                .find(|f| instance.is_some() && f.namespace.as_deref() == instance)
        })
        .or_else(|| files.first().filter(|_| files.len() == 1));
    Ok(pick.map(|f| f.path.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(json: &str) -> Result<Vec<RulesFile>> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("firebase.json");
        std::fs::write(&f, json).unwrap();
        rules_files(&f).map(|v| {
            v.into_iter()
                .map(|r| RulesFile {
                    path: r.path.strip_prefix(dir.path()).unwrap().to_path_buf(),
                    ..r
                })
                .collect()
        })
    }

    #[test]
    fn both_forms() {
        assert_eq!(
            with(r#"{"database": {"rules": "db.rules.json"}, "hosting": {}}"#).unwrap(),
            vec![RulesFile {
                namespace: None,
                path: "db.rules.json".into()
            }]
        );
        assert_eq!(
            with(r#"// a comment
            {"database": [{"instance": "a", "rules": "a.json"}, {"instance": "b", "rules": "rules/b.json"}]}"#)
            .unwrap(),
            vec![
                RulesFile {
                    namespace: Some("a".into()),
                    path: "a.json".into()
                },
                RulesFile {
                    namespace: Some("b".into()),
                    path: "rules/b.json".into()
                }
            ]
        );
        assert_eq!(with(r#"{"hosting": {}}"#).unwrap(), vec![]);
        let e = with(r#"{"database": [{"target": "main", "rules": "a.json"}]}"#).unwrap_err();
        assert!(
            e.message
                .contains("database[0] has no \"instance\" (deploy targets"),
            "{}",
            e.message
        );
        let e = with("{\"database\": 5}").unwrap_err();
        assert!(
            e.message.contains("\"database\" must be an object"),
            "{}",
            e.message
        );
        let e = with("{\"database\": {").unwrap_err();
        assert!(
            e.message
                .ends_with("firebase.json:1:15: Expected a property name in double quotes"),
            "{}",
            e.message
        );
    }
}
