//! `service_account` key files: an RS256-signed JWT assertion exchanged at the key's `token_uri`
//! for an OAuth2 access token (the JWT-bearer grant, RFC 7523), as firebase-admin does. The RTDB
//! REST API takes that access token; a self-signed JWT is not one.

use std::sync::Arc;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

use super::file::{required_str, CredentialFile};
use super::oauth;
use super::token::AccessToken;
use crate::Result;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ASSERTION_LIFETIME_SECS: u64 = 3600;

pub(crate) struct ServiceAccount {
    pub client_email: String,
    key_id: Option<String>,
    key: Arc<RsaKeyPair>,
    token_uri: String,
    http: reqwest::Client,
}

impl ServiceAccount {
    pub fn parse(f: &CredentialFile) -> Result<ServiceAccount> {
        let client_email = required_str(f, "client_email")?;
        let token_uri = required_str(f, "token_uri")?;
        let pem = required_str(f, "private_key")?;
        let key = parse_key(&pem).map_err(|why| f.fail(format!("\"private_key\" {why}")))?;
        Ok(ServiceAccount {
            client_email,
            key_id: f.str("private_key_id"),
            key: Arc::new(key),
            token_uri,
            http: oauth::default_client(),
        })
    }

    pub async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let assertion = self.assertion(scopes, oauth::unix_now())?;
        let what = format!("Getting an access token for {}", self.client_email);
        let v = oauth::post_form(
            &self.http,
            &self.token_uri,
            &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            None,
            &what,
        )
        .await
        .map_err(|e| {
            oauth::hint(
                e,
                "check the key file (a revoked or deleted key is refused) and that the token endpoint is reachable",
            )
        })?;
        oauth::oauth_token(&v, &what, &self.token_uri)
    }

    /// The signed JWT: `iss` the account, `aud` the token endpoint, `scope` space-separated.
    fn assertion(&self, scopes: &[&str], now: u64) -> Result<String> {
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = Value::String(kid.clone());
        }
        let claims = json!({
            "iss": self.client_email,
            "scope": scopes.join(" "),
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        sign_jwt(&self.key, &header, &claims)
    }
}

/// `base64url(header).base64url(claims).base64url(RS256 signature)`.
pub(crate) fn sign_jwt(key: &RsaKeyPair, header: &Value, claims: &Value) -> Result<String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signing_input = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut sig = vec![0u8; key.public().modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| {
        oauth::auth_failed("Signing the token request with the service account key failed")
    })?;
    Ok(format!("{signing_input}.{}", b64.encode(sig)))
}

/// A PEM `PRIVATE KEY` (PKCS#8, as Google issues them) or `RSA PRIVATE KEY` (PKCS#1). The
/// reason given never quotes the key.
fn parse_key(pem: &str) -> std::result::Result<RsaKeyPair, String> {
    let (label, der) =
        pem_body(pem).ok_or("is not a PEM private key (-----BEGIN PRIVATE KEY-----, PKCS#8)")?;
    let parsed = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        _ => {
            return Err(format!(
                "is a PEM \"{label}\", expected a PRIVATE KEY (PKCS#8)"
            ))
        }
    };
    parsed.map_err(|_| "cannot be used (not a valid RSA private key in PKCS#8 form)".to_string())
}

/// The label and decoded bytes of the first PEM block.
fn pem_body(pem: &str) -> Option<(String, Vec<u8>)> {
    let begin = pem.find("-----BEGIN ")?;
    let rest = &pem[begin + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body = &rest[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    fn fixture_pem() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-sa-key.pem"
        ))
        .unwrap()
    }

    #[test]
    fn assertion_is_a_verifiable_rs256_jwt_for_the_token_endpoint() {
        let key = parse_key(&fixture_pem()).unwrap();
        let public = key.public().as_ref().to_vec();
        let sa = ServiceAccount {
            client_email: "m@p.iam.gserviceaccount.com".into(),
            key_id: Some("kid1".into()),
            key: Arc::new(key),
            token_uri: "http://127.0.0.1:1/token".into(),
            http: oauth::default_client(),
        };
        let jwt = sa.assertion(&super::super::SCOPES, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT", "kid": "kid1"}));
        assert_eq!(claims["iss"], "m@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(
            claims["scope"],
            "https://www.googleapis.com/auth/firebase.database https://www.googleapis.com/auth/userinfo.email"
        );
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            3600
        );
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &b64.decode(parts[2]).unwrap(),
            )
            .expect("signature verifies with the key's public half");
    }

    #[test]
    fn bad_keys_are_described_without_quoting_them() {
        for (pem, why) in [
            ("SECRET-ISH", "not a PEM private key"),
            (
                "-----BEGIN CERTIFICATE-----\nU0VDUkVU\n-----END CERTIFICATE-----\n",
                "CERTIFICATE",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\nU0VDUkVULUlTSA==\n-----END PRIVATE KEY-----\n",
                "not a valid RSA private key",
            ),
        ] {
            let e = parse_key(pem).err().unwrap();
            assert!(e.contains(why), "{e}");
            assert!(!e.contains("SECRET") && !e.contains("U0VDUkVU"), "{e}");
        }
    }
}
