//! Database URL forms (`DatabaseUrl`):
//! - production `https://<db>.firebaseio.com`, `https://<db>.<region>.firebasedatabase.app`
//! - emulator `http://host:port?ns=<ns>` (also `http://host:port/?ns=<ns>`)
//! - `FIREBASE_DATABASE_EMULATOR_HOST=host:port` (no scheme) with the namespace taken from the
//!   configured URL's host (`<ns>.firebaseio.com`) or its `?ns=`.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::{Error, Result};

/// Namespace used with `FIREBASE_DATABASE_EMULATOR_HOST` when the configured URL names none.
pub const DEFAULT_EMULATOR_NAMESPACE: &str = "default";

const ACCEPTED: &str =
    "accepted forms: https://<db>.firebaseio.com, https://<db>.<region>.firebasedatabase.app, \
http://<host>:<port>?ns=<namespace> (emulator), or FIREBASE_DATABASE_EMULATOR_HOST=<host>:<port>";

/// Characters escaped inside one path segment of a data URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'+')
    .add(b'&')
    .add(b'=')
    .add(b';');

fn invalid(url: &str, why: &str) -> Error {
    Error::config(format!(
        "databaseUrl \"{url}\" is invalid: {why}; {ACCEPTED}"
    ))
}

/// A database namespace (`?ns=`): 1–128 of `[A-Za-z0-9_-]`. The emulator accepts the same.
pub fn valid_namespace(ns: &str) -> bool {
    !ns.is_empty()
        && ns.len() <= 128
        && ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_label(l: &str) -> bool {
    !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `<db>` when `host` is a production host (`<db>.firebaseio.com`, `<db>.<region>.firebasedatabase.app`).
fn production_db(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [db, "firebaseio", "com"] if valid_label(db) => Some(db),
        [db, region, "firebasedatabase", "app"] if valid_label(db) && valid_label(region) => {
            Some(db)
        }
        _ => None,
    }
}

pub(crate) fn is_production_domain(host: &str) -> bool {
    host == "firebaseio.com"
        || host.ends_with(".firebaseio.com")
        || host == "firebasedatabase.app"
        || host.ends_with(".firebasedatabase.app")
}

/// Parsed pieces of a configured URL.
struct Parsed {
    origin: String,
    host: String,
    scheme: String,
    ns: Option<String>,
}

fn parse_parts(raw: &str) -> Result<Parsed> {
    let url = raw.trim();
    if url.is_empty() {
        return Err(invalid(raw, "it is empty"));
    }
    if !url.contains("://") {
        return Err(invalid(raw, "it has no scheme (https:// or http://)"));
    }
    let parsed =
        ::url::Url::parse(url).map_err(|e| invalid(raw, &format!("it is not a URL ({e})")))?;
    let scheme = parsed.scheme().to_string();
    if scheme != "https" && scheme != "http" {
        return Err(invalid(
            raw,
            &format!("scheme \"{scheme}\" is not https or http"),
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(raw, "it must not contain credentials"));
    }
    if parsed.fragment().is_some() {
        return Err(invalid(raw, "it must not contain a #fragment"));
    }
    if parsed.path() != "/" && !parsed.path().is_empty() {
        return Err(invalid(
            raw,
            &format!("it must not contain a path (\"{}\"); name the database only, paths belong to the data", parsed.path()),
        ));
    }
    let host = match parsed.host_str() {
        Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
        _ => return Err(invalid(raw, "it has no host")),
    };
    let mut ns = None;
    for (k, v) in parsed.query_pairs() {
        if k == "ns" && ns.is_none() {
            if !valid_namespace(&v) {
                return Err(invalid(
                    raw,
                    "the ns= namespace must be letters, digits, '-' or '_'",
                ));
            }
            ns = Some(v.into_owned());
        } else {
            return Err(invalid(
                raw,
                &format!(
                    "unexpected query parameter \"{k}\" (only ?ns=<namespace> for an emulator)"
                ),
            ));
        }
    }
    let origin = match parsed.port() {
        Some(p) => format!("{scheme}://{}:{p}", host_for_origin(&parsed)),
        None => format!("{scheme}://{}", host_for_origin(&parsed)),
    };
    Ok(Parsed {
        origin,
        host,
        scheme,
        ns,
    })
}

fn host_for_origin(u: &::url::Url) -> String {
    match u.host() {
        Some(::url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string().to_ascii_lowercase(),
        None => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// `scheme://host[:port]`, no trailing slash.
    pub origin: String,
    /// `Some(ns)` for the emulator (sent as `?ns=`), `None` for production.
    pub namespace: Option<String>,
    /// True when talking to an emulator (auth is `Bearer owner`).
    pub emulator: bool,
}

impl DatabaseUrl {
    /// Parse a configured database URL. Errors name the accepted forms.
    pub fn parse(url: &str) -> Result<DatabaseUrl> {
        let p = parse_parts(url)?;
        if let Some(_db) = production_db(&p.host) {
            if p.scheme != "https" {
                return Err(invalid(url, "a production database must use https://"));
            }
            if p.ns.is_some() {
                return Err(invalid(url, "?ns= is only for an emulator URL"));
            }
            if p.origin != format!("https://{}", p.host) {
                return Err(invalid(
                    url,
                    "a production database URL must not name a port",
                ));
            }
            return Ok(DatabaseUrl {
                origin: p.origin,
                namespace: None,
                emulator: false,
            });
        }
        if is_production_domain(&p.host) {
            return Err(invalid(
                url,
                "the host is not <db>.firebaseio.com or <db>.<region>.firebasedatabase.app",
            ));
        }
        if p.scheme != "http" {
            return Err(invalid(url, "https is only for a production database; an emulator URL is http://<host>:<port>?ns=<namespace>"));
        }
        match p.ns {
            Some(ns) => Ok(DatabaseUrl {
                origin: p.origin,
                namespace: Some(ns),
                emulator: true,
            }),
            None => Err(invalid(
                url,
                "an emulator URL must pick its database with ?ns=<namespace>",
            )),
        }
    }
    /// The database's name: an emulator's namespace, or `<db>` of `https://<db>.firebaseio.com`.
    pub fn instance(&self) -> Option<String> {
        if let Some(ns) = &self.namespace {
            return Some(ns.clone());
        }
        let host = self.origin.split("://").nth(1)?;
        host.split('.').next().map(str::to_string)
    }
    /// Apply `FIREBASE_DATABASE_EMULATOR_HOST` (value `host:port`) to an optional configured URL.
    pub fn for_emulator_host(host: &str, configured: Option<&str>) -> Result<DatabaseUrl> {
        let h = host.trim();
        let bad = |why: &str| {
            Error::config(format!(
                "FIREBASE_DATABASE_EMULATOR_HOST \"{h}\" is invalid: {why}; expected <host>:<port> without a scheme, e.g. 127.0.0.1:9000"
            ))
        };
        if h.is_empty() {
            return Err(bad("it is empty"));
        }
        if h.contains("://") {
            return Err(bad("it must not contain a scheme"));
        }
        if h.contains(['/', '?', '#', '@']) || h.chars().any(char::is_whitespace) {
            return Err(bad("it must be host:port only"));
        }
        let parsed = ::url::Url::parse(&format!("http://{h}")).map_err(|e| bad(&e.to_string()))?;
        let port = parsed.port_or_known_default().filter(|_| {
            h.rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        let Some(port) = port else {
            return Err(bad("it has no port"));
        };
        let origin = format!("http://{}:{port}", host_for_origin(&parsed));
        let namespace = match configured.map(str::trim).filter(|c| !c.is_empty()) {
            None => DEFAULT_EMULATOR_NAMESPACE.to_string(),
            Some(c) => {
                let p = parse_parts(c)?;
                match p.ns {
                    Some(ns) => ns,
                    None => {
                        let first = p.host.split('.').next().unwrap_or_default();
                        if valid_namespace(first)
                            && p.host.parse::<std::net::IpAddr>().is_err()
                            && p.host.contains('.')
                        {
                            first.to_string()
                        } else {
                            DEFAULT_EMULATOR_NAMESPACE.to_string()
                        }
                    }
                }
            }
        };
        Ok(DatabaseUrl {
            origin,
            namespace: Some(namespace),
            emulator: true,
        })
    }
    /// Resolve from config + environment: the emulator host env var wins when set.
    pub fn resolve(configured: Option<&str>) -> Result<DatabaseUrl> {
        match std::env::var("FIREBASE_DATABASE_EMULATOR_HOST") {
            Ok(host) if !host.trim().is_empty() => Self::for_emulator_host(host.trim(), configured),
            _ => match configured {
                Some(u) => Self::parse(u),
                None => Err(crate::Error::config(
                    "databaseUrl is not set: set FirebaseConfig.databaseUrl, --database-url, FIREBASE_DATABASE_URL or DATABASE_URL \
                     (e.g. https://<db>.firebaseio.com), or FIREBASE_DATABASE_EMULATOR_HOST=host:port for an emulator",
                )),
            },
        }
    }
    /// `host[:port]`, for messages.
    pub fn host_port(&self) -> String {
        self.origin
            .split_once("://")
            .map_or(self.origin.as_str(), |(_, h)| h)
            .to_string()
    }
    /// `<origin>/<path>.json` (no query string; the client adds `ns` and other params).
    pub fn data_url(&self, path: &str) -> String {
        let mut out = self.origin.clone();
        out.push('/');
        let segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
            .collect();
        out.push_str(&segs.join("/"));
        out.push_str(".json");
        out
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}?ns={}", self.origin, ns),
            None => f.write_str(&self.origin),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn ok(u: &str) -> DatabaseUrl {
        DatabaseUrl::parse(u).unwrap_or_else(|e| panic!("{u}: {e}"))
    }

    fn err(u: &str) -> String {
        let e = DatabaseUrl::parse(u).expect_err(u);
        assert_eq!(e.code, ErrorCode::ConfigInvalid, "{u}");
        assert!(e.message.contains("databaseUrl"), "{}", e.message);
        assert!(
            e.message.contains("firebaseio.com") && e.message.contains("?ns="),
            "{}",
            e.message
        );
        e.message
    }

    #[test]
    fn production_forms() {
        let u = ok("https://my-db.firebaseio.com");
        assert_eq!(
            u,
            DatabaseUrl {
                origin: "https://my-db.firebaseio.com".into(),
                namespace: None,
                emulator: false
            }
        );
        assert_eq!(
            ok("https://my-db.firebaseio.com/").origin,
            "https://my-db.firebaseio.com"
        );
        assert_eq!(
            ok("  https://My-DB.firebaseio.com  ").origin,
            "https://my-db.firebaseio.com"
        );
        let r = ok("https://proj-default-rtdb.europe-west1.firebasedatabase.app");
        assert_eq!(
            r.origin,
            "https://proj-default-rtdb.europe-west1.firebasedatabase.app"
        );
        assert!(!r.emulator);
        assert_eq!(
            r.to_string(),
            "https://proj-default-rtdb.europe-west1.firebasedatabase.app"
        );
    }

    #[test]
    fn emulator_forms() {
        let u = ok("http://localhost:9000?ns=test-integration");
        assert_eq!(
            u,
            DatabaseUrl {
                origin: "http://localhost:9000".into(),
                namespace: Some("test-integration".into()),
                emulator: true
            }
        );
        assert_eq!(
            ok("http://127.0.0.1:9000/?ns=x").origin,
            "http://127.0.0.1:9000"
        );
        assert_eq!(ok("http://[::1]:9000?ns=x").origin, "http://[::1]:9000");
        assert_eq!(u.to_string(), "http://localhost:9000?ns=test-integration");
    }

    #[test]
    fn rejected_forms() {
        assert!(err("my-db.firebaseio.com").contains("no scheme"));
        assert!(err("http://my-db.firebaseio.com").contains("https"));
        assert!(err("https://my-db.firebaseio.com/some/path").contains("path"));
        assert!(err("https://my-db.firebaseio.com?ns=x").contains("ns="));
        assert!(err("http://localhost:9000").contains("?ns="));
        assert!(err("http://localhost:9000/data?ns=x").contains("path"));
        assert!(err("http://localhost:9000?ns=x&foo=1").contains("foo"));
        assert!(err("http://localhost:9000?ns=a/b").contains("namespace"));
        err("ftp://my-db.firebaseio.com");
        err("https://example.com");
        err("https://a.b.firebaseio.com");
        err("https://firebaseio.com");
        err("https://my-db.firebaseio.com:8443");
        err("https://user:pw@my-db.firebaseio.com");
        err("https://my-db.firebaseio.com#x");
        err("");
        err("not a url at all");
        err("https://");
    }

    #[test]
    fn emulator_host_env_forms() {
        let u =
            DatabaseUrl::for_emulator_host("127.0.0.1:9000", Some("https://my-db.firebaseio.com"))
                .unwrap();
        assert_eq!(
            u,
            DatabaseUrl {
                origin: "http://127.0.0.1:9000".into(),
                namespace: Some("my-db".into()),
                emulator: true
            }
        );
        let u = DatabaseUrl::for_emulator_host(
            "localhost:9000",
            Some("https://db2.us-central1.firebasedatabase.app"),
        )
        .unwrap();
        assert_eq!(u.namespace.as_deref(), Some("db2"));
        let u =
            DatabaseUrl::for_emulator_host("localhost:9000", Some("http://localhost:1234?ns=abc"))
                .unwrap();
        assert_eq!(u.origin, "http://localhost:9000");
        assert_eq!(u.namespace.as_deref(), Some("abc"));
        let u = DatabaseUrl::for_emulator_host("localhost:9000", None).unwrap();
        assert_eq!(u.namespace.as_deref(), Some(DEFAULT_EMULATOR_NAMESPACE));
        for bad in [
            "",
            "http://localhost:9000",
            "localhost",
            "localhost:",
            "localhost:9000/x",
            "local host:9000",
            "localhost:abc",
        ] {
            let e = DatabaseUrl::for_emulator_host(bad, None).expect_err(bad);
            assert_eq!(e.code, ErrorCode::ConfigInvalid);
            assert!(
                e.message.contains("FIREBASE_DATABASE_EMULATOR_HOST"),
                "{}",
                e.message
            );
        }
        // A garbage configured URL is still reported.
        assert!(DatabaseUrl::for_emulator_host("localhost:9000", Some("garbage")).is_err());
    }

    #[test]
    fn data_urls() {
        let p = ok("https://my-db.firebaseio.com");
        assert_eq!(p.data_url(""), "https://my-db.firebaseio.com/.json");
        assert_eq!(p.data_url("/"), "https://my-db.firebaseio.com/.json");
        assert_eq!(p.data_url("a/b"), "https://my-db.firebaseio.com/a/b.json");
        assert_eq!(p.data_url("/a/b/"), "https://my-db.firebaseio.com/a/b.json");
        assert_eq!(
            p.data_url("a b/%c?d"),
            "https://my-db.firebaseio.com/a%20b/%25c%3Fd.json"
        );
        assert_eq!(p.data_url("é"), "https://my-db.firebaseio.com/%C3%A9.json");
        let e = ok("http://localhost:9000?ns=x");
        assert_eq!(e.data_url("x"), "http://localhost:9000/x.json");
    }
}
