//! Service account impersonation: a source credential's token (scope cloud-platform) buys the
//! target account's token from IAM Credentials `generateAccessToken`. Used by
//! `impersonated_service_account` files and by `external_account`'s
//! `service_account_impersonation_url`.

use std::time::Duration;

use serde_json::{json, Value};

use super::file::{self, required_str, CredentialFile};
use super::oauth;
use super::provider::Provider;
use super::token::AccessToken;
use super::Env;
use crate::Result;

pub(crate) const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const DEFAULT_LIFETIME_SECS: u64 = 3600;

pub(crate) struct Impersonated {
    url: String,
    delegates: Vec<String>,
    source: Box<Provider>,
    http: reqwest::Client,
}

impl Impersonated {
    pub fn parse(f: &CredentialFile, env: &Env) -> Result<Impersonated> {
        let url = required_str(f, "service_account_impersonation_url")?;
        let source_file = f.nested("source_credentials")?;
        let source = match source_file.str("type").as_deref() {
            Some("impersonated_service_account") => {
                return Err(source_file.fail("cannot itself be impersonated_service_account"))
            }
            _ => file::provider(&source_file, env)?,
        };
        let delegates = f
            .obj
            .get("delegates")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Impersonated {
            url,
            delegates,
            source: Box::new(source),
            http: oauth::default_client(),
        })
    }

    pub fn identity(&self) -> String {
        format!(
            "{} impersonated by {}",
            target_of(&self.url),
            self.source.identity()
        )
    }

    pub async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let source = self.source.fetch(&[CLOUD_PLATFORM]).await?;
        generate(
            &self.http,
            &self.url,
            &source.secret,
            scopes,
            &self.delegates,
            DEFAULT_LIFETIME_SECS,
        )
        .await
    }
}

/// `projects/-/serviceAccounts/<email>:generateAccessToken` -> `service account <email>`.
pub(crate) fn target_of(url: &str) -> String {
    let email = url
        .rsplit('/')
        .next()
        .map(|s| s.trim_end_matches(":generateAccessToken"))
        .filter(|s| s.contains('@'));
    match email {
        Some(e) => format!("service account {e}"),
        None => format!("the service account of {}", oauth::shown_url(url)),
    }
}

/// POST `{scope, delegates, lifetime}` with the source token; the answer is
/// `{"accessToken": ..., "expireTime": "<RFC 3339>"}`.
pub(crate) async fn generate(
    http: &reqwest::Client,
    url: &str,
    source_token: &str,
    scopes: &[&str],
    delegates: &[String],
    lifetime_secs: u64,
) -> Result<AccessToken> {
    let what = format!("Impersonating {}", target_of(url));
    let mut body = json!({"scope": scopes, "lifetime": format!("{lifetime_secs}s")});
    if !delegates.is_empty() {
        body["delegates"] = json!(delegates);
    }
    let rb = http.post(url).bearer_auth(source_token).json(&body);
    let v = oauth::send_json(rb, &what, url).await.map_err(|e| {
        oauth::hint(
            e,
            "the source identity needs roles/iam.serviceAccountTokenCreator on the target service account",
        )
    })?;
    let secret = v
        .get("accessToken")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            oauth::auth_failed(format!("{what} failed: the answer has no accessToken"))
        })?;
    let lifetime = v
        .get("expireTime")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            let secs = t.timestamp() - oauth::unix_now() as i64;
            Duration::from_secs(secs.max(0) as u64)
        })
        .unwrap_or(Duration::from_secs(lifetime_secs));
    Ok(AccessToken {
        secret: secret.to_string(),
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_named_by_email() {
        assert_eq!(
            target_of("https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/m@p.iam.gserviceaccount.com:generateAccessToken"),
            "service account m@p.iam.gserviceaccount.com"
        );
        assert_eq!(
            target_of("http://127.0.0.1:9/x?y=z"),
            "the service account of http://127.0.0.1:9/x"
        );
    }
}
