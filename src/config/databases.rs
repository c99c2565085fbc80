//! Many databases in one run (a sharded Realtime Database: one instance per shard, the same
//! migrations on each): the `databases` setting (`[{ name, databaseUrl, shift?, credentials? }]`,
//! the rest of the config shared) and its plain form `databaseUrls` (names taken from the URLs),
//! checked before anything runs — each entry's keys, names, URLs, duplicates, contradictions with
//! `databaseUrl` — and resolved into one `Config` per database ([`Config::members`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Config;
use crate::rtdb::database_url::{valid_namespace, DatabaseUrl};
use crate::{Error, Result};

/// One database of the set, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseEntry {
    /// What the reports, log lines and `--database <name>` call it: 1–128 of `[A-Za-z0-9_-]`.
    pub name: String,
    pub database_url: String,
    /// This database's shift (default: the shared `shift`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<String>,
    /// This database's credentials file (default: the shared `applicationCredentials`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
}

/// The keys of an entry of `databases`.
pub const ENTRY_KEYS: [&str; 4] = ["name", "databaseUrl", "shift", "credentials"];

/// One database of a run: its name and its own complete config (its URL, shift, credentials;
/// the rest shared).
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    pub cfg: Config,
}

impl Member {
    /// The configured URL (for reports).
    pub fn database_url(&self) -> &str {
        self.cfg.database_url.as_deref().unwrap_or_default()
    }
}

/// The schema's check of `databases` (its shape: types and keys; the rest is
/// [`Config::check_databases`]).
pub(super) fn check_entries(field: &str, v: &Value) -> Result<()> {
    let example = "e.g. [{ name: 'shard-1', databaseUrl: 'https://shard-1.firebaseio.com' }]";
    let Some(items) = v.as_array() else {
        return Err(Error::config(format!(
            "{field} must be an array of databases, {example} (got {})",
            super::schema::shown(v)
        )));
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let Some(m) = item.as_object() else {
            return Err(Error::config(format!(
                "{at} must be an object {{ name, databaseUrl, shift?, credentials? }} (got {})",
                super::schema::shown(item)
            )));
        };
        for key in m.keys() {
            if !ENTRY_KEYS.contains(&key.as_str()) {
                let close = ENTRY_KEYS
                    .iter()
                    .map(|k| {
                        (
                            strsim::osa_distance(
                                &key.to_ascii_lowercase(),
                                &k.to_ascii_lowercase(),
                            ),
                            k,
                        )
                    })
                    .filter(|(d, k)| *d <= (k.len() / 3).max(1))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, k)| format!("did you mean `{at}.{k}`? Fix its name or remove it."));
                return Err(Error::config(format!(
                    "unknown setting `{at}.{key}`; {}",
                    close.unwrap_or_else(|| format!(
                        "a database of the set has: {} (everything else is shared: set it at the top level).",
                        ENTRY_KEYS.join(", ")
                    ))
                )));
            }
        }
        for key in ["name", "databaseUrl"] {
            match m.get(key) {
                Some(Value::String(_)) => {}
                None => {
                    return Err(Error::config(format!(
                        "{at} has no `{key}`: every database of the set needs a name and a databaseUrl, {example}"
                    )))
                }
                Some(other) => {
                    return Err(Error::config(format!(
                        "{at}.{key} must be a string (got {})",
                        super::schema::shown(other)
                    )))
                }
            }
        }
        for key in ["shift", "credentials"] {
            match m.get(key) {
                None | Some(Value::Null | Value::String(_)) => {}
                Some(other) if key == "credentials" && crate::redact::is_credentials(other) => {
                    return Err(Error::config(format!(
                        "{at}.credentials must be the path of a credentials file (a string), not its content (got {})",
                        super::schema::shown(other)
                    )))
                }
                Some(other) => {
                    return Err(Error::config(format!(
                        "{at}.{key} must be a string or null (got {})",
                        super::schema::shown(other)
                    )))
                }
            }
        }
    }
    Ok(())
}

/// The schema's check of `databaseUrls`: an array of strings.
pub(super) fn check_urls(field: &str, v: &Value) -> Result<()> {
    match v.as_array() {
        Some(a) if a.iter().all(Value::is_string) => Ok(()),
        _ => Err(Error::config(format!(
            "{field} must be an array of database URLs, e.g. ['https://shard-1.firebaseio.com', 'https://shard-2.firebaseio.com'] (got {})",
            super::schema::shown(v)
        ))),
    }
}

/// A layer (or a config object) that sets `databaseUrl` beside a set of databases: which of the
/// two runs would be a guess, so it is refused.
pub(super) fn check_contradiction(merged_layers: &Value) -> Result<()> {
    let set = |k: &str| {
        merged_layers
            .get(k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    if set("databases") && set("databaseUrls") {
        return Err(Error::config(
            "Invalid configuration: databases and databaseUrls are both set; give the set once: databases \
             (with names, shifts, credentials) or databaseUrls (names taken from the URLs)",
        ));
    }
    // The environment's default (FIREBASE_DATABASE_URL, which `new FirebaseConfig()` shows)
    // gives way to a set; a databaseUrl given as a setting does not.
    let env_default = Config::from_env_defaults().database_url;
    let url = merged_layers
        .get("databaseUrl")
        .is_some_and(|v| !v.is_null() && v.as_str() != env_default.as_deref());
    if url && (set("databases") || set("databaseUrls")) {
        let which = if set("databases") {
            "databases"
        } else {
            "databaseUrls"
        };
        return Err(Error::config(format!(
            "Invalid configuration: databaseUrl and {which} are both set, so which databases to run on is unclear; \
             remove databaseUrl (or {which}), and pick databases of the set with --database <name>"
        )));
    }
    Ok(())
}

/// The name a `databaseUrls` entry gets: the instance (`<db>` of `https://<db>.firebaseio.com`,
/// an emulator's `?ns=`).
fn derived_name(url: &str) -> Option<String> {
    DatabaseUrl::parse(url).ok().and_then(|u| u.instance())
}

impl Config {
    /// True when the config names a set of databases (`databases` or `databaseUrls`).
    pub fn is_many(&self) -> bool {
        !self.databases.is_empty() || !self.database_urls.is_empty()
    }

    /// The set as entries (`databaseUrls` with their derived names).
    fn entries(&self) -> Vec<DatabaseEntry> {
        if !self.databases.is_empty() {
            return self.databases.clone();
        }
        self.database_urls
            .iter()
            .map(|u| DatabaseEntry {
                name: derived_name(u).unwrap_or_default(),
                database_url: u.clone(),
                shift: None,
                credentials: None,
            })
            .collect()
    }

    /// The semantic checks of the set (run by `validate`): names valid and distinct, URLs valid
    /// and distinct, `concurrency` at least 1.
    pub(super) fn check_databases(&self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(Error::config(
                "Invalid configuration: concurrency must be at least 1 (how many databases run at a time; the default is 4)",
            ));
        }
        let field = if self.databases.is_empty() {
            "databaseUrls"
        } else {
            "databases"
        };
        let mut seen: Vec<(String, (String, Option<String>))> = Vec::new();
        for (i, e) in self.entries().iter().enumerate() {
            let at = format!("{field}[{i}]");
            let url = DatabaseUrl::parse(&e.database_url).map_err(|err| {
                Error::config(format!("Invalid configuration: {at}: {}", err.message))
            })?;
            if e.name.is_empty() && field == "databaseUrls" {
                return Err(Error::config(format!(
                    "Invalid configuration: {at}: no database name can be taken from {:?}; use databases with a name",
                    e.database_url
                )));
            }
            if !valid_namespace(&e.name) {
                return Err(Error::config(format!(
                    "Invalid configuration: {at}.name {:?} must be 1–128 letters, digits, '-' or '_' (it names the database in reports, \
                     log lines and --database <name>)",
                    e.name
                )));
            }
            if let Some(shift) = &e.shift {
                if shift.trim().trim_matches('/').trim().is_empty() {
                    return Err(Error::config(format!(
                        "Invalid configuration: {at}.shift {shift:?} would put the migrations at the database root; leave it unset \
                         for the shared shift, or give a path such as 'production'"
                    )));
                }
                crate::rtdb::path::segments(shift).map_err(|err| {
                    Error::config(format!(
                        "Invalid configuration: {at}.shift: {}",
                        err.message
                    ))
                })?;
            }
            if e.credentials
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                return Err(Error::config(format!(
                    "Invalid configuration: {at}.credentials is empty; give the path of a credentials file, or leave it unset \
                     for the shared applicationCredentials"
                )));
            }
            let key = (url.origin.clone(), url.namespace.clone());
            if let Some((j, _)) = seen.iter().enumerate().find(|(_, (n, _))| *n == e.name) {
                let fix = if field == "databaseUrls" {
                    "; list them under databases with names of their own"
                } else {
                    ""
                };
                return Err(Error::config(format!(
                    "Invalid configuration: {field}[{j}] and {at} are both named {:?}: every database of the set needs its own name{fix}",
                    e.name
                )));
            }
            if let Some((j, _)) = seen.iter().enumerate().find(|(_, (_, k))| *k == key) {
                return Err(Error::config(format!(
                    "Invalid configuration: {field}[{j}] and {at} are the same database ({}): each database is listed once \
                     (its lock and history are its own)",
                    e.database_url
                )));
            }
            seen.push((e.name.clone(), key));
        }
        Ok(())
    }

    /// The databases of a run, each with its own complete config: the set's (in configured
    /// order), or the one database of `databaseUrl` (named after its instance).
    pub fn members(&self) -> Vec<Member> {
        if !self.is_many() {
            let name = self
                .database_url
                .as_deref()
                .and_then(derived_name)
                .unwrap_or_else(|| "default".to_string());
            return vec![Member {
                name,
                cfg: self.clone(),
            }];
        }
        self.entries()
            .into_iter()
            .map(|e| {
                let mut cfg = self.clone();
                cfg.databases = Vec::new();
                cfg.database_urls = Vec::new();
                cfg.database_url = Some(e.database_url.clone());
                if e.shift.is_some() {
                    cfg.shift = e.shift.clone();
                }
                if e.credentials.is_some() {
                    cfg.application_credentials = e.credentials.clone();
                }
                // Each database's backups in a folder of its own, so two files never share a
                // name and a restore never takes another database's data.
                cfg.backup.folder = std::path::Path::new(&cfg.backup.folder)
                    .join(&e.name)
                    .to_string_lossy()
                    .into_owned();
                Member { name: e.name, cfg }
            })
            .collect()
    }

    /// The databases `picked` names (`--database <name>`, repeatable; none picked: all), in
    /// configured order. An unknown name is refused with the names there are.
    pub fn pick(&self, picked: &[String]) -> Result<Vec<Member>> {
        let all = self.members();
        if picked.is_empty() {
            return Ok(all);
        }
        let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
        for p in picked {
            if !names.contains(&p.as_str()) {
                let listed = if self.is_many() {
                    format!("the databases of the set are: {}", names.join(", "))
                } else {
                    format!(
                        "the configuration names one database ({}); --database picks from databases or databaseUrls",
                        names.join(", ")
                    )
                };
                return Err(Error::config(format!(
                    "--database {p:?} is not a database of this configuration; {listed}"
                )));
            }
        }
        Ok(all
            .into_iter()
            .filter(|m| picked.contains(&m.name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        Config::from_value(&v).unwrap_err().message
    }

    #[test]
    fn a_set_of_databases_resolves_to_one_config_each() {
        let c = Config::from_value(&json!({
            "shift": "prod",
            "applicationCredentials": "./sa.json",
            "databases": [
                {"name": "eu", "databaseUrl": "https://app-eu.europe-west1.firebasedatabase.app"},
                {"name": "us", "databaseUrl": "https://app-us.firebaseio.com", "shift": "live", "credentials": "./us.json"},
            ],
            "concurrency": 2,
            "failFast": true,
        }))
        .unwrap();
        assert!(c.is_many() && c.fail_fast && c.concurrency == 2);
        let m = c.members();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "eu");
        assert_eq!(m[0].cfg.shift.as_deref(), Some("prod"));
        assert_eq!(
            m[0].cfg.application_credentials.as_deref(),
            Some("./sa.json")
        );
        assert_eq!(m[0].cfg.backup.folder, "./backups/eu");
        let abs = Config::from_value(
            &json!({"databaseUrls": ["https://a.firebaseio.com"], "backup": {"folder": "/srv/b"}}),
        )
        .unwrap();
        assert_eq!(abs.members()[0].cfg.backup.folder, "/srv/b/a");
        assert_eq!(m[1].cfg.shift.as_deref(), Some("live"));
        assert_eq!(
            m[1].cfg.application_credentials.as_deref(),
            Some("./us.json")
        );
        assert_eq!(m[1].database_url(), "https://app-us.firebaseio.com");
        assert!(!m[1].cfg.is_many());
        assert_eq!(c.pick(&["us".into()]).unwrap().len(), 1);
        let e = c.pick(&["asia".into()]).unwrap_err();
        assert!(e.message.contains("eu, us"), "{}", e.message);
    }

    #[test]
    fn database_urls_take_their_names_from_the_urls() {
        let c = Config::from_value(&json!({"databaseUrls": [
            "http://127.0.0.1:9000?ns=shard-1", "https://shard-2.firebaseio.com"
        ]}))
        .unwrap();
        let names: Vec<String> = c.members().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["shard-1", "shard-2"]);
        // One databaseUrl: as today, one member with the config itself.
        let one =
            Config::from_value(&json!({"databaseUrl": "https://solo.firebaseio.com"})).unwrap();
        assert!(!one.is_many());
        assert_eq!(one.members()[0].name, "solo");
        assert_eq!(one.members()[0].cfg, one);
    }

    #[test]
    fn bad_sets_are_refused_before_anything_runs() {
        let u = |n: &str| format!("https://{n}.firebaseio.com");
        for (v, says) in [
            (
                json!({"databases": [{"name": "a", "databaseUrl": u("a"), "shft": "x"}]}),
                "did you mean `databases[0].shift`?",
            ),
            (
                json!({"databases": [{"name": "a", "databaseUrl": u("a"), "tableName": "x"}]}),
                "everything else is shared",
            ),
            (
                json!({"databases": [{"databaseUrl": u("a")}]}),
                "databases[0] has no `name`",
            ),
            (
                json!({"databases": [{"name": "a", "databaseUrl": u("a")}, {"name": "a", "databaseUrl": u("b")}]}),
                "both named \"a\"",
            ),
            (
                json!({"databases": [{"name": "a", "databaseUrl": u("a")}, {"name": "b", "databaseUrl": u("a")}]}),
                "are the same database",
            ),
            (
                json!({"databases": [{"name": "a b", "databaseUrl": u("a")}]}),
                "letters, digits",
            ),
            (
                json!({"databases": [{"name": "a", "databaseUrl": "ftp://x"}]}),
                "databases[0]: databaseUrl",
            ),
            (json!({"databases": "a,b"}), "must be an array of databases"),
            (
                json!({"databaseUrls": [u("a"), u("a")]}),
                "both named \"a\"",
            ),
            (
                json!({"databaseUrls": [u("a")], "databaseUrl": u("b")}),
                "databaseUrl and databaseUrls are both set",
            ),
            (
                json!({"databaseUrls": [u("a")], "databases": [{"name": "b", "databaseUrl": u("b")}]}),
                "both set",
            ),
            (json!({"concurrency": 0}), "concurrency must be at least 1"),
            (
                json!({"databases": [{"name": "a", "databaseUrl": u("a"), "credentials": {"type": "service_account", "private_key": "K"}}]}),
                "not its content",
            ),
        ] {
            let m = err(v.clone());
            assert!(m.contains(says), "{v}: {m}");
            assert!(!m.contains("\"K\""), "{m}");
        }
        // A later layer's databaseUrl beside an earlier layer's set: the layer is named.
        let e = Config::from_layers(&[
            (
                "config file msr.config.js",
                json!({"databaseUrls": [u("a"), u("b")]}),
            ),
            ("command-line flags", json!({"databaseUrl": u("c")})),
        ])
        .unwrap_err();
        assert!(
            e.message.contains("command-line flags") && e.message.contains("--database"),
            "{}",
            e.message
        );
    }

    #[test]
    fn msr_databases_is_json() {
        let l = crate::config::env_layer([
            (
                "MSR_DATABASES".to_string(),
                r#"[{"name":"a","databaseUrl":"https://a.firebaseio.com"}]"#.to_string(),
            ),
            ("MSR_CONCURRENCY".to_string(), "8".to_string()),
            ("MSR_FAIL_FAST".to_string(), "true".to_string()),
        ])
        .unwrap();
        let c = Config::from_value(&l).unwrap();
        assert_eq!(c.members()[0].name, "a");
        assert_eq!(c.concurrency, 8);
        assert!(c.fail_fast);
        let e = crate::config::env_layer([("MSR_DATABASES".to_string(), "a,b".to_string())])
            .unwrap_err();
        assert!(
            e.message.contains("MSR_DATABASES") && e.message.contains("JSON"),
            "{}",
            e.message
        );
        let l = crate::config::env_layer([(
            "MSR_DATABASE_URLS".to_string(),
            "https://a.firebaseio.com, https://b.firebaseio.com".to_string(),
        )])
        .unwrap();
        assert_eq!(Config::from_value(&l).unwrap().members().len(), 2);
    }
}
