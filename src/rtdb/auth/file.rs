//! Reading a credentials JSON file (any ADC type) into a `Provider`. Every error names the file,
//! where its path came from, and what is wrong — never its contents.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::external::ExternalAccount;
use super::impersonated::Impersonated;
use super::provider::Provider;
use super::service_account::ServiceAccount;
use super::user::AuthorizedUser;
use super::Env;
use crate::{Error, ErrorCode, Result};

pub(crate) const SUPPORTED_TYPES: &str =
    "service_account, authorized_user, external_account, impersonated_service_account";

/// A parsed credentials object and how to name it in messages.
pub(crate) struct CredentialFile {
    /// `Credentials file /path (from GOOGLE_APPLICATION_CREDENTIALS)`.
    pub shown: String,
    pub obj: Map<String, Value>,
    /// Directory relative paths inside the file (`credential_source.file`) resolve against.
    pub dir: PathBuf,
    /// Identifies these credentials within the process (a digest of path and contents), so
    /// every client built from the same file shares one token cache.
    pub key: String,
}

impl CredentialFile {
    pub fn fail(&self, why: impl std::fmt::Display) -> Error {
        Error::new(ErrorCode::AuthFailed, format!("{}: {why}", self.shown))
    }
    /// A non-empty string field.
    pub fn str(&self, field: &str) -> Option<String> {
        self.obj
            .get(field)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
    /// The same file's nested object (`source_credentials`), named as part of it.
    pub fn nested(&self, field: &str) -> Result<CredentialFile> {
        match self.obj.get(field) {
            Some(Value::Object(o)) => Ok(CredentialFile {
                shown: format!("{} (its \"{field}\")", self.shown),
                obj: o.clone(),
                dir: self.dir.clone(),
                key: format!("{}/{field}", self.key),
            }),
            _ => Err(self.fail(format!("has no \"{field}\" object"))),
        }
    }
}

pub(crate) fn required_str(f: &CredentialFile, field: &str) -> Result<String> {
    f.str(field).ok_or_else(|| {
        f.fail(format!(
            "has no \"{field}\" string field; is it a complete {} credentials file?",
            f.str("type").unwrap_or_else(|| "Google".into())
        ))
    })
}

/// Read and check `path`; `source` says where the path came from ("GOOGLE_APPLICATION_CREDENTIALS").
pub(crate) fn read(path: &Path, source: &str) -> Result<CredentialFile> {
    let shown = if source.is_empty() {
        format!("Credentials file {}", path.display())
    } else {
        format!("Credentials file {} (from {source})", path.display())
    };
    let fail = |why: &str| Error::new(ErrorCode::AuthFailed, format!("{shown}: {why}"));
    if path.as_os_str().is_empty() {
        return Err(Error::new(
            ErrorCode::AuthFailed,
            format!(
                "The credentials file path{} is empty",
                if source.is_empty() {
                    String::new()
                } else {
                    format!(" from {source}")
                }
            ),
        ));
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(
                "not found; give the path of a service account key (Firebase console > Project settings > \
                 Service accounts) or another Application Default Credentials file",
            ))
        }
        Err(e) => return Err(fail(&format!("cannot be read ({e})"))),
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| fail("is not UTF-8 text; expected a JSON credentials file"))?;
    // Checked here so that messages say what is wrong without quoting the contents.
    let json: Value = serde_json::from_str(&text).map_err(|e| {
        fail(&format!(
            "is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(obj) = json else {
        return Err(fail("is not a JSON object"));
    };
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let key = {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(path.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        format!("file:{}", hex::encode(h.finalize()))
    };
    Ok(CredentialFile {
        shown,
        obj,
        dir,
        key,
    })
}

/// The provider for a parsed credentials object, by its `type`.
pub(crate) fn provider(f: &CredentialFile, env: &Env) -> Result<Provider> {
    let Some(kind) = f.str("type") else {
        return Err(f.fail(format!(
            "has no \"type\" field; expected one of: {SUPPORTED_TYPES}"
        )));
    };
    match kind.as_str() {
        "service_account" => Ok(Provider::ServiceAccount(ServiceAccount::parse(f)?)),
        "authorized_user" => Ok(Provider::AuthorizedUser(AuthorizedUser::parse(f)?)),
        "external_account" => Ok(Provider::External(ExternalAccount::parse(f, env)?)),
        "impersonated_service_account" => Ok(Provider::Impersonated(Impersonated::parse(f, env)?)),
        other => Err(f.fail(format!(
            "has type \"{other}\", which this runner cannot use; supported: {SUPPORTED_TYPES}"
        ))),
    }
}
