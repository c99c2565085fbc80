//! The HTTP side of token services (OAuth2 token endpoints, STS, IAM Credentials, the metadata
//! server): one client with bounded timeouts, form and JSON posts, and error texts that carry
//! the service's own `error` / `error_description` but never a token, a key or a whole body.

use std::time::Duration;

use serde_json::Value;

use super::token::AccessToken;
pub(crate) use crate::rtdb::http_error::describe;
use crate::{Error, ErrorCode, Result};

/// Token endpoints answer in well under a second; these bound a hung one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_DETAIL: usize = 200;

pub(crate) fn client(connect: Duration, total: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        // Tokens and subject tokens are never sent on to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("msr-firebase/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client without custom TLS settings always builds")
}

pub(crate) fn default_client() -> reqwest::Client {
    client(CONNECT_TIMEOUT, REQUEST_TIMEOUT)
}

pub(crate) fn auth_failed(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::AuthFailed, message)
}

/// `e` with what to do about it appended.
pub(crate) fn hint(e: Error, fix: &str) -> Error {
    Error::new(e.code, format!("{}; {fix}", e.message))
}

/// `scheme://host[:port]/path` of a URL, without its query (which could carry parameters a
/// person should not see in a log).
pub(crate) fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            match u.port() {
                Some(p) => format!("{}://{host}:{p}{}", u.scheme(), u.path()),
                None => format!("{}://{host}{}", u.scheme(), u.path()),
            }
        }
        Err(_) => "<an invalid URL>".to_string(),
    }
}

/// The `error` / `error_description` (OAuth2, STS) or `error.message` (Google JSON APIs) of an
/// error body, cut short.
fn error_detail(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => {
            let field = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            match (o.get("error"), field("error_description")) {
                (Some(Value::String(e)), Some(d)) => format!("{e}: {d}"),
                (Some(Value::String(e)), None) => e.clone(),
                (Some(Value::Object(e)), _) => e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
                    .to_string(),
                _ => "no error text".to_string(),
            }
        }
        _ => "no error text".to_string(),
    };
    let mut out: String = text.chars().take(MAX_DETAIL).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Send `rb`, expecting a JSON object back; failures say what was asked (`what`) of whom.
pub(crate) async fn send_json(rb: reqwest::RequestBuilder, what: &str, url: &str) -> Result<Value> {
    let shown = shown_url(url);
    let resp = rb.send().await.map_err(|e| {
        auth_failed(format!(
            "{what} failed: {shown} could not be reached ({})",
            describe(&e)
        ))
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| {
        auth_failed(format!(
            "{what} failed: the answer from {shown} was cut off ({})",
            describe(&e)
        ))
    })?;
    if !status.is_success() {
        return Err(auth_failed(format!(
            "{what} was refused by {shown}: HTTP {} ({})",
            status.as_u16(),
            error_detail(&body)
        )));
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err(auth_failed(format!(
            "{what} failed: {shown} answered HTTP {} with something that is not a JSON object",
            status.as_u16()
        ))),
    }
}

/// POST an `application/x-www-form-urlencoded` body.
pub(crate) async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    what: &str,
) -> Result<Value> {
    let body = ::url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form.iter())
        .finish();
    let mut rb = http
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    send_json(rb, what, url).await
}

/// `{"access_token": ..., "expires_in": n}` (OAuth2, STS, metadata server).
pub(crate) fn oauth_token(v: &Value, what: &str, url: &str) -> Result<AccessToken> {
    let secret = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            auth_failed(format!(
                "{what} failed: the answer from {} has no access_token",
                shown_url(url)
            ))
        })?;
    let secs = v.get("expires_in").and_then(Value::as_u64).unwrap_or(3600);
    Ok(AccessToken {
        secret: secret.to_string(),
        lifetime: Duration::from_secs(secs),
    })
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_keep_the_reason_only() {
        assert_eq!(
            error_detail(br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature.","access_token":"x"}"#),
            "invalid_grant: Invalid JWT Signature."
        );
        assert_eq!(
            error_detail(br#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied"}}"#),
            "Permission 'iam.serviceAccounts.getAccessToken' denied"
        );
        assert_eq!(error_detail(b"<html>token=abc</html>"), "no error text");
        assert!(
            error_detail(format!(r#"{{"error":"{}"}}"#, "x".repeat(900)).as_bytes()).len() < 300
        );
    }

    #[test]
    fn shown_urls_drop_the_query() {
        assert_eq!(
            shown_url("http://127.0.0.1:8080/token?key=secret"),
            "http://127.0.0.1:8080/token"
        );
        assert_eq!(
            shown_url("https://sts.googleapis.com/v1/token"),
            "https://sts.googleapis.com/v1/token"
        );
    }
}
