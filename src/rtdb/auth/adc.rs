//! Application Default Credentials, resolved in firebase-admin's order:
//! 1. the explicit credentials file (`applicationCredentials` in the config, `--credentials`);
//! 2. `GOOGLE_APPLICATION_CREDENTIALS`;
//! 3. gcloud's application-default file (`$CLOUDSDK_CONFIG/application_default_credentials.json`,
//!    else `~/.config/gcloud/...`, `%APPDATA%\gcloud\...` on Windows), written by
//!    `gcloud auth application-default login`;
//! 4. the metadata server (`GCE_METADATA_HOST`, else `metadata.google.internal`).
//!
//! A file that is named but unusable is an error (the chain does not silently fall through);
//! when nothing is found, the metadata server's silence is reported with every step tried.

use std::path::{Path, PathBuf};

use super::metadata::{DEFAULT_METADATA_HOST, METADATA_HOST_ENV};
use super::{external::ALLOW_EXECUTABLES_ENV, file, metadata::MetadataServer, provider::Provider};
use crate::{Error, ErrorCode, Result};

pub const CREDENTIALS_ENV: &str = "GOOGLE_APPLICATION_CREDENTIALS";
const GCLOUD_FILE: &str = "application_default_credentials.json";

/// What the chain reads from the environment. Production takes it from the process
/// (`Env::from_process`); tests build one, so they never change the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub credentials_file: Option<PathBuf>,
    /// Where gcloud's application-default file would be (it may not exist).
    pub gcloud_file: Option<PathBuf>,
    /// `GCE_METADATA_HOST`, else `metadata.google.internal`.
    pub metadata_host: String,
    /// `GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`.
    pub allow_executables: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Env {
    pub fn from_process() -> Env {
        let gcloud_dir = var("CLOUDSDK_CONFIG").map(PathBuf::from).or_else(|| {
            if cfg!(windows) {
                var("APPDATA").map(|d| Path::new(&d).join("gcloud"))
            } else {
                var("HOME").map(|h| Path::new(&h).join(".config").join("gcloud"))
            }
        });
        Env {
            credentials_file: var(CREDENTIALS_ENV).map(PathBuf::from),
            gcloud_file: gcloud_dir.map(|d| d.join(GCLOUD_FILE)),
            metadata_host: var(METADATA_HOST_ENV)
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string()),
            allow_executables: var(ALLOW_EXECUTABLES_ENV).as_deref() == Some("1"),
        }
    }
}

/// Resolve the chain. `explicit` is the configured file when it did not come from
/// `GOOGLE_APPLICATION_CREDENTIALS` (relative paths already resolved by the caller, as
/// `env.credentials_file` should be).
/// Returns the provider and its process-wide key (see `Auth::shared`).
pub(crate) fn resolve(explicit: Option<&Path>, env: &Env) -> Result<(Provider, String)> {
    let from_file = |path: &Path, source: &str| {
        let f = file::read(path, source)?;
        Ok((file::provider(&f, env)?, f.key))
    };
    let mut tried = Vec::new();
    match explicit {
        Some(p) => return from_file(p, "applicationCredentials / --credentials"),
        None => tried.push("applicationCredentials / --credentials: not set".to_string()),
    }
    match &env.credentials_file {
        Some(p) => return from_file(p, CREDENTIALS_ENV),
        None => tried.push(format!("{CREDENTIALS_ENV}: not set")),
    }
    match &env.gcloud_file {
        Some(p) if p.exists() => return from_file(p, "gcloud's application-default credentials"),
        Some(p) => tried.push(format!(
            "gcloud's application-default credentials: {} does not exist",
            p.display()
        )),
        None => tried.push(
            "gcloud's application-default credentials: no home directory (HOME / CLOUDSDK_CONFIG unset)".to_string(),
        ),
    }
    let key = format!("metadata:{}:{}", env.metadata_host, tried.join("|"));
    Ok((
        Provider::Metadata(MetadataServer::new(env.metadata_host.clone(), Some(tried))),
        key,
    ))
}

/// The chain came up empty: every step and how to fix each.
pub(crate) fn not_found(tried: &[String], metadata_host: &str, why: &str) -> Error {
    let mut msg = String::from("No Google credentials found. Tried, in order:\n");
    for (i, t) in tried.iter().enumerate() {
        msg.push_str(&format!("  {}. {t}\n", i + 1));
    }
    msg.push_str(&format!(
        "  {}. the metadata server at {metadata_host}: {why}\n",
        tried.len() + 1
    ));
    msg.push_str(
        "Fix one of them: set applicationCredentials in the config or pass --credentials <file> (a service account \
         key or another Application Default Credentials file); or set GOOGLE_APPLICATION_CREDENTIALS to such a file; \
         or run `gcloud auth application-default login`; or run on GKE (Workload Identity), Cloud Run, Cloud Build \
         or GCE, where the metadata server answers (GCE_METADATA_HOST sets its address). For an emulator, set \
         FIREBASE_DATABASE_EMULATOR_HOST.",
    );
    Error::new(ErrorCode::AuthFailed, msg)
}
