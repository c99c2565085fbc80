//! Discovery: the Realtime Database instances of a Firebase project, for
//! `--all-instances --project <id>`. One source of a run's set of databases, beside naming them
//! in the config.
//!
//! The list comes from the Firebase Realtime Database Management API
//! (`GET {base}/v1beta/projects/{project}/locations/-/instances`, every location, paged with
//! `pageToken` / `nextPageToken`), authorised by the same Application Default Credentials chain
//! as the database client, with a read-only Firebase scope and a token cache of its own
//! (`rtdb::auth::FIREBASE_READONLY_SCOPES`). The API's address is
//! `MSR_FIREBASE_MANAGEMENT_API` when set (`https://...`, or `http://` on loopback only: a
//! token is sent there), else [`DEFAULT_MANAGEMENT_API`]; tests point it at a fake on loopback,
//! as `GCE_METADATA_HOST` does for the metadata server.
//!
//! A run takes the instances that hold data and serve: `type` `USER_DATABASE` or
//! `DEFAULT_DATABASE`, `state` `ACTIVE`, with a `databaseUrl` this client accepts. Every other
//! instance (disabled, deleted, of an unknown type) is listed as skipped with the reason.
//! Errors name the project, the identity and the fix (a 403: the role to grant or the API to
//! enable), never a token.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::rtdb::auth::{self, FIREBASE_READONLY_SCOPES};
use crate::rtdb::{Auth, DatabaseUrl, RetryPolicy};
use crate::{Error, ErrorCode, Result};

/// The environment variable naming the Management API's base URL (tests: a fake on loopback).
pub const MANAGEMENT_API_ENV: &str = "MSR_FIREBASE_MANAGEMENT_API";
/// The Firebase Realtime Database Management API.
pub const DEFAULT_MANAGEMENT_API: &str = "https://firebasedatabase.googleapis.com";
/// Instances per page (the API's maximum).
const PAGE_SIZE: u32 = 100;
/// A bound on pages, against a server that hands back the same page token forever.
const MAX_PAGES: usize = 1000;
/// Attempts after the first one for a connection failure, a 429 or a 5xx.
const RETRIES: u32 = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The API's `type` values a run takes.
const DATA_TYPES: [&str; 2] = ["USER_DATABASE", "DEFAULT_DATABASE"];
const MAX_DETAIL: usize = 300;

/// One instance as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// The instance id (the last part of its resource name): the database's name in a run.
    pub name: String,
    /// `projects/{project-number}/locations/{location}/instances/{id}`.
    pub resource: String,
    /// The location (`us-central1`, `europe-west1`, ...).
    pub location: String,
    pub database_url: Option<String>,
    /// `USER_DATABASE`, `DEFAULT_DATABASE`, `DATABASE_INSTANCE_TYPE_UNSPECIFIED`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `ACTIVE`, `DISABLED`, `DELETED`, `LIFECYCLE_STATE_UNSPECIFIED`.
    pub state: String,
}

impl Instance {
    fn from_json(v: &Value) -> Option<Instance> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let resource = text("name")?;
        let parts: Vec<&str> = resource.split('/').collect();
        let name = parts.last().filter(|n| !n.is_empty())?.to_string();
        let location = match parts.as_slice() {
            ["projects", _, "locations", loc, "instances", _] => loc.to_string(),
            _ => String::new(),
        };
        Some(Instance {
            name,
            resource,
            location,
            database_url: text("databaseUrl").filter(|u| !u.trim().is_empty()),
            kind: text("type").unwrap_or_else(|| "DATABASE_INSTANCE_TYPE_UNSPECIFIED".into()),
            state: text("state").unwrap_or_else(|| "LIFECYCLE_STATE_UNSPECIFIED".into()),
        })
    }

    /// Why a run leaves this instance out (`None`: it runs there).
    pub fn skip_reason(&self) -> Option<String> {
        if !DATA_TYPES.contains(&self.kind.as_str()) {
            return Some(format!(
                "type {} (only USER_DATABASE and DEFAULT_DATABASE instances hold data)",
                self.kind
            ));
        }
        if self.state != "ACTIVE" {
            return Some(format!("state {} (not ACTIVE)", self.state));
        }
        match &self.database_url {
            None => Some("no databaseUrl in the API's answer".into()),
            Some(u) => DatabaseUrl::parse(u)
                .err()
                .map(|e| format!("its databaseUrl is not usable: {}", e.message)),
        }
    }
}

/// An instance a run leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Skipped {
    pub instance: Instance,
    pub reason: String,
}

/// What discovery found: the instances a run takes, in the API's order, and the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Discovered {
    pub project: String,
    pub instances: Vec<Instance>,
    pub skipped: Vec<Skipped>,
    /// Requests made (pages, retries included).
    pub requests: u32,
}

impl Discovered {
    /// `(name, databaseUrl)` of each instance a run takes.
    pub fn databases(&self) -> Vec<(String, String)> {
        self.instances
            .iter()
            .filter_map(|i| Some((i.name.clone(), i.database_url.clone()?)))
            .collect()
    }

    /// One line per skipped instance, for a run's log.
    pub fn skipped_lines(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|s| format!("{} skipped: {}", s.instance.name, s.reason))
            .collect()
    }
}

/// A project id (`my-app-1234`, a domain-scoped `example.com:my-app`) or number: refused
/// otherwise, before any request, so it can never reshape the API's path.
pub fn check_project(project: &str) -> Result<()> {
    let ok = !project.is_empty()
        && project.len() <= 100
        && project
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.' | ':'))
        && project
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "--project {project:?} is not a Google Cloud project id: use the project's id \
             (lowercase letters, digits and hyphens, e.g. my-app-1234; as `firebase projects:list` \
             shows it) or its number"
        )))
    }
}

/// The Management API's base URL: `MSR_FIREBASE_MANAGEMENT_API` (`configured`) or the real one.
/// An access token goes there, so plain `http://` is accepted on loopback only, and a base with
/// credentials, a query or a fragment is refused.
pub fn base_url(configured: Option<&str>) -> Result<url::Url> {
    let raw = match configured.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => DEFAULT_MANAGEMENT_API,
    };
    let bad = |why: &str| {
        Error::config(format!(
            "{MANAGEMENT_API_ENV}={raw} {why}; set it to the API's base URL (https://host[:port], \
             or http://127.0.0.1:<port> for a local fake), or unset it for {DEFAULT_MANAGEMENT_API}"
        ))
    };
    let u = url::Url::parse(raw).map_err(|_| bad("is not a URL"))?;
    let loopback = matches!(
        u.host_str(),
        Some("127.0.0.1") | Some("localhost") | Some("[::1]")
    );
    match u.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "uses plain http to a host other than loopback, and an access token is sent there",
            ))
        }
        _ => return Err(bad("is not an http(s) URL")),
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("carries credentials"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    Ok(u)
}

/// The Firebase Realtime Database Management API, as one identity.
pub struct ManagementApi {
    base: url::Url,
    auth: Auth,
    http: reqwest::Client,
    retry: RetryPolicy,
}

impl ManagementApi {
    /// The API at `base` (see [`base_url`]) as `auth` (a token source with a Firebase scope:
    /// [`ManagementApi::application_default`] makes one).
    pub fn new(base: url::Url, auth: Auth) -> ManagementApi {
        ManagementApi {
            base,
            auth,
            http: reqwest::Client::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                // The token is never sent on to another host.
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("msr-firebase/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("an HTTP client without custom TLS settings always builds"),
            retry: RetryPolicy {
                max_retries: RETRIES,
                base_delay: Duration::from_millis(200),
                max_delay: Duration::from_secs(4),
                window: Some(Duration::from_secs(60)),
            },
        }
    }

    /// The API named by the process environment (`MSR_FIREBASE_MANAGEMENT_API`), as the
    /// Application Default Credentials chain of `env` (`explicit`: the configured credentials
    /// file, as for the database).
    pub fn application_default(explicit: Option<&Path>, env: &auth::Env) -> Result<ManagementApi> {
        let base = base_url(std::env::var(MANAGEMENT_API_ENV).ok().as_deref())?;
        let auth = Auth::application_default_for(explicit, env, &FIREBASE_READONLY_SCOPES)?;
        Ok(ManagementApi::new(base, auth))
    }

    /// A shorter retry pause (tests).
    pub fn with_retry(mut self, retry: RetryPolicy) -> ManagementApi {
        self.retry = retry;
        self
    }

    /// Every instance of `project`, all pages, in the API's order.
    pub async fn list(&self, project: &str) -> Result<(Vec<Instance>, u32)> {
        check_project(project)?;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut requests = 0;
        for _ in 0..MAX_PAGES {
            let (page, sent) = self.page(project, token.as_deref()).await?;
            requests += sent;
            if let Some(items) = page.get("instances").and_then(Value::as_array) {
                out.extend(items.iter().filter_map(Instance::from_json));
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(t) if !t.is_empty() => {
                    if token.as_deref() == Some(t) {
                        return Err(self.odd(project, "handed back the same page token twice"));
                    }
                    token = Some(t.to_string());
                }
                _ => return Ok((out, requests)),
            }
        }
        Err(self.odd(project, &format!("listed more than {MAX_PAGES} pages")))
    }

    /// The instances a run over `project` takes, and the rest with the reason. None to take is
    /// an error naming what was listed.
    pub async fn discover(&self, project: &str) -> Result<Discovered> {
        let (all, requests) = self.list(project).await?;
        let (mut instances, mut skipped) = (Vec::new(), Vec::new());
        for i in all {
            match i.skip_reason() {
                None => instances.push(i),
                Some(reason) => skipped.push(Skipped {
                    instance: i,
                    reason,
                }),
            }
        }
        if instances.is_empty() {
            let listed = if skipped.is_empty() {
                "it lists none".to_string()
            } else {
                let why: Vec<String> = skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.instance.name, s.reason))
                    .collect();
                format!("every instance listed is skipped ({})", why.join("; "))
            };
            return Err(Error::config(format!(
                "Project {project} has no active Realtime Database instance to run on: {listed}. \
                 Check --project, or name the databases in the config instead of --all-instances"
            )));
        }
        Ok(Discovered {
            project: project.to_string(),
            instances,
            skipped,
            requests,
        })
    }

    fn page_url(&self, project: &str, token: Option<&str>) -> url::Url {
        let mut u = self.base.clone();
        let path = format!(
            "{}/v1beta/projects/{project}/locations/-/instances",
            u.path().trim_end_matches('/')
        );
        u.set_path(&path);
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("pageSize", &PAGE_SIZE.to_string());
            if let Some(t) = token {
                q.append_pair("pageToken", t);
            }
        }
        u
    }

    /// One page, retried on connection failures, 429 and 5xx; a refused cached token is
    /// replaced once. Returns the page and the requests it took.
    async fn page(&self, project: &str, token: Option<&str>) -> Result<(Value, u32)> {
        let url = self.page_url(project, token);
        let started = std::time::Instant::now();
        let (mut sent, mut retries, mut replaced) = (0u32, 0u32, false);
        loop {
            let bearer = self.auth.bearer().await?;
            sent += 1;
            let res = self
                .http
                .get(url.clone())
                .header("Authorization", &bearer.header)
                .header("Accept", "application/json")
                .send()
                .await;
            let transient = match res {
                Err(e) => self.unreachable(&crate::rtdb::http_error::describe(&e)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    match status {
                        200..=299 => {
                            return match serde_json::from_slice::<Value>(&body) {
                                Ok(v @ Value::Object(_)) => Ok((v, sent)),
                                _ => Err(self.odd(
                                    project,
                                    "answered with something that is not a JSON object",
                                )),
                            }
                        }
                        401 if !bearer.fresh && !replaced => {
                            self.auth.invalidate(&bearer.header).await;
                            replaced = true;
                            continue;
                        }
                        429 | 500..=599 => {
                            self.unreachable(&format!("HTTP {status} ({})", detail(&body)))
                        }
                        _ => return Err(self.refused(project, status, &body)),
                    }
                }
            };
            retries += 1;
            let within = self.retry.window.is_none_or(|w| started.elapsed() < w);
            if retries > self.retry.max_retries || !within {
                return Err(transient);
            }
            tokio::time::sleep(self.retry.delay(retries)).await;
        }
    }

    fn shown(&self) -> String {
        let u = &self.base;
        match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => DEFAULT_MANAGEMENT_API.to_string(),
        }
    }

    fn unreachable(&self, why: &str) -> Error {
        Error::new(
            ErrorCode::ConnectionFailed,
            format!(
                "Could not list the Realtime Database instances: the Management API at {} did not \
                 answer ({why}). Try again; {MANAGEMENT_API_ENV} sets its address",
                self.shown()
            ),
        )
    }

    fn odd(&self, project: &str, what: &str) -> Error {
        Error::new(
            ErrorCode::BadRequest,
            format!(
                "Listing the Realtime Database instances of project {project}: the Management API \
                 at {} {what}",
                self.shown()
            ),
        )
    }

    /// A refusal, with what to do about it.
    fn refused(&self, project: &str, status: u16, body: &[u8]) -> Error {
        let who = self.auth.identity();
        let why = detail(body);
        let head = format!(
            "Listing the Realtime Database instances of project {project} was refused by {}: HTTP \
             {status} ({why})",
            self.shown()
        );
        match status {
            401 => Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{head}. The token of {who} was not accepted: check the credentials \
                     (GOOGLE_APPLICATION_CREDENTIALS, --credentials, `gcloud auth application-default login`)"
                ),
            ),
            403 => {
                let fix = if why.contains("has not been used") || why.contains("is disabled") || why.contains("SERVICE_DISABLED") {
                    format!(
                        "enable the API: `gcloud services enable firebasedatabase.googleapis.com --project {project}`"
                    )
                } else if why.contains("quota project") {
                    format!(
                        "set a quota project for these user credentials: `gcloud auth application-default set-quota-project {project}`"
                    )
                } else {
                    format!(
                        "grant {who} a role with the permission firebasedatabase.instances.list on \
                         project {project}, e.g. `gcloud projects add-iam-policy-binding {project} \
                         --member=<that identity> --role=roles/firebasedatabase.viewer` (Firebase \
                         Realtime Database Viewer); check that the Firebase Realtime Database \
                         Management API (firebasedatabase.googleapis.com) is enabled"
                    )
                };
                Error::new(
                    ErrorCode::PermissionDenied,
                    format!("{head}. To list the project's instances, {fix}. Or name the databases in the config instead of --all-instances"),
                )
            }
            404 => Error::new(
                ErrorCode::DatabaseNotFound,
                format!("{head}. No such project: check --project (the project id as `firebase projects:list` shows it)"),
            ),
            _ => Error::new(ErrorCode::BadRequest, head),
        }
    }
}

/// `error.message` (and `error.status`) of a Google JSON API error body, cut short; never the
/// whole body.
fn detail(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let e = &v["error"];
            match (e["status"].as_str(), e["message"].as_str()) {
                (Some(s), Some(m)) => format!("{s}: {m}"),
                (None, Some(m)) => m.to_string(),
                (Some(s), None) => s.to_string(),
                _ => "no error text".to_string(),
            }
        }
        Err(_) => "no error text".to_string(),
    };
    let mut out: String = text.chars().take(MAX_DETAIL).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn instance(kind: &str, state: &str, url: Option<&str>) -> Instance {
        Instance::from_json(&json!({
            "name": "projects/123/locations/europe-west1/instances/shard-1",
            "project": "projects/123",
            "databaseUrl": url,
            "type": kind,
            "state": state,
        }))
        .unwrap()
    }

    #[test]
    fn only_active_data_instances_with_a_url_are_taken() {
        let url = Some("https://shard-1.europe-west1.firebasedatabase.app");
        let i = instance("USER_DATABASE", "ACTIVE", url);
        assert_eq!(i.name, "shard-1");
        assert_eq!(i.location, "europe-west1");
        assert_eq!(i.skip_reason(), None);
        assert_eq!(
            instance("DEFAULT_DATABASE", "ACTIVE", url).skip_reason(),
            None
        );
        let r = instance("USER_DATABASE", "DISABLED", url)
            .skip_reason()
            .unwrap();
        assert!(r.contains("DISABLED"), "{r}");
        let r = instance("DATABASE_INSTANCE_TYPE_UNSPECIFIED", "ACTIVE", url)
            .skip_reason()
            .unwrap();
        assert!(r.contains("only USER_DATABASE and DEFAULT_DATABASE"), "{r}");
        let r = instance("USER_DATABASE", "ACTIVE", None)
            .skip_reason()
            .unwrap();
        assert!(r.contains("no databaseUrl"), "{r}");
        let r = instance("USER_DATABASE", "ACTIVE", Some("ftp://x"))
            .skip_reason()
            .unwrap();
        assert!(r.contains("not usable"), "{r}");
    }

    #[test]
    fn project_ids_cannot_reshape_the_path() {
        for ok in ["my-app-1234", "123456789012", "example.com:my-app"] {
            check_project(ok).unwrap();
        }
        for bad in ["", "My-App", "a/../b", "x?y", "-lead", "a b"] {
            let e = check_project(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::ConfigInvalid);
            assert!(e.message.contains("project id"), "{}", e.message);
        }
    }

    #[test]
    fn the_base_url_takes_a_token_only_over_https_or_to_loopback() {
        assert_eq!(
            base_url(None).unwrap().as_str(),
            "https://firebasedatabase.googleapis.com/"
        );
        assert_eq!(
            base_url(Some("  ")).unwrap().as_str(),
            "https://firebasedatabase.googleapis.com/"
        );
        base_url(Some("http://127.0.0.1:8123")).unwrap();
        base_url(Some("https://proxy.example.com/firebase")).unwrap();
        for (bad, why) in [
            ("http://example.com", "plain http"),
            ("https://u:SECRET@example.com", "credentials"),
            ("https://example.com?key=SECRET", "query"),
            ("ftp://example.com", "not an http(s) URL"),
            ("nope", "not a URL"),
        ] {
            let e = base_url(Some(bad)).unwrap_err();
            assert!(e.message.contains(why), "{bad}: {}", e.message);
            assert!(e.message.contains(MANAGEMENT_API_ENV), "{}", e.message);
            assert!(!e.message.contains("SECRET"), "{}", e.message);
        }
    }

    #[test]
    fn error_details_keep_the_reason_only() {
        assert_eq!(
            detail(br#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}"#),
            "PERMISSION_DENIED: The caller does not have permission"
        );
        assert_eq!(detail(b"<html>Bearer ya29.x</html>"), "no error text");
    }
}
