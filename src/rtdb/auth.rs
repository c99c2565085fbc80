//! Authentication. The token only ever travels in an
//! `Authorization: Bearer` header; never in a URL, a log line or an error message.

use std::sync::Arc;

use gcp_auth::TokenProvider;

use crate::{Error, ErrorCode, Result};

/// OAuth2 scopes for the Realtime Database REST API.
pub const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/firebase.database",
    "https://www.googleapis.com/auth/userinfo.email",
];

#[derive(Clone)]
pub enum Auth {
    /// The emulator: `Authorization: Bearer owner`.
    EmulatorOwner,
    /// A service account key file, through gcp_auth (token cached and refreshed).
    ServiceAccount(Arc<gcp_auth::CustomServiceAccount>),
}

impl Auth {
    /// Load a service account key file (path relative to the working directory). Errors name
    /// the file and what is wrong with it, never its secret contents.
    pub fn service_account_file(path: &str) -> Result<Auth> {
        let shown = match std::env::current_dir() {
            Ok(cwd) if std::path::Path::new(path).is_relative() => {
                format!("{path} (in {})", cwd.display())
            }
            _ => path.to_string(),
        };
        let fail = |why: String| {
            Error::new(
                ErrorCode::AuthFailed,
                format!("Service account key file {shown}: {why}"),
            )
        };
        if path.trim().is_empty() {
            return Err(Error::new(
                ErrorCode::AuthFailed,
                "Service account key file path is empty",
            ));
        }
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text; expected the JSON key downloaded from the Firebase console".into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(fail("not found; download a key (Firebase console > Project settings > Service accounts) and give its path".into()))
            }
            Err(e) => return Err(fail(format!("cannot be read ({e})"))),
        };
        // Check the shape ourselves so the messages say what is wrong without quoting the contents.
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            fail(format!(
                "is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let obj = json
            .as_object()
            .ok_or_else(|| fail("is not a JSON object".into()))?;
        if let Some(t) = obj.get("type").and_then(|t| t.as_str()) {
            if t != "service_account" {
                return Err(fail(format!(
                    "has type \"{t}\", expected \"service_account\""
                )));
            }
        }
        for field in ["client_email", "private_key", "token_uri"] {
            match obj.get(field) {
                Some(serde_json::Value::String(v)) if !v.trim().is_empty() => {}
                _ => {
                    return Err(fail(format!(
                        "has no \"{field}\" string field; is it a service account key?"
                    )))
                }
            }
        }
        let key = obj
            .get("private_key")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if !key.contains("BEGIN PRIVATE KEY") {
            return Err(fail(
                "\"private_key\" is not a PKCS#8 PEM private key".into(),
            ));
        }
        let account = gcp_auth::CustomServiceAccount::from_json(&text).map_err(|_| {
            fail("\"private_key\" cannot be used (not a valid PKCS#8 RSA key)".into())
        })?;
        Ok(Auth::ServiceAccount(std::sync::Arc::new(account)))
    }
    /// The `Authorization` header value.
    pub async fn header(&self) -> Result<String> {
        match self {
            Auth::EmulatorOwner => Ok("Bearer owner".to_string()),
            Auth::ServiceAccount(sa) => {
                // gcp_auth caches the token per scope set and refreshes it shortly before expiry.
                let token = sa.token(&SCOPES).await.map_err(|e| {
                    Error::new(
                        ErrorCode::AuthFailed,
                        format!(
                            "Could not get an access token for the service account: {}; check the key file (a revoked or \
                             deleted key is refused) and that the token endpoint is reachable",
                            redact(&e.to_string())
                        ),
                    )
                })?;
                Ok(format!("Bearer {}", token.as_str()))
            }
        }
    }
}

/// gcp_auth error texts do not carry tokens or keys, but cut them short in case a token
/// endpoint echoes something long.
fn redact(s: &str) -> String {
    let mut out: String = s.chars().take(300).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::EmulatorOwner => f.write_str("Auth::EmulatorOwner"),
            Auth::ServiceAccount(_) => f.write_str("Auth::ServiceAccount(<redacted>)"),
        }
    }
}
