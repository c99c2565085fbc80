//! Fake Google token services on loopback, strict the way the real ones are: one server with an
//! OAuth2 token endpoint (`/token`: the JWT-bearer grant, whose RS256 signature, `aud`, `iss`
//! and scopes are checked, and the refresh-token grant), a Security Token Service (`/sts`), IAM
//! Credentials (`/v1/projects/-/serviceAccounts/<email>:generateAccessToken`), a URL subject
//! token source (`/subject`) and a metadata server (`/computeMetadata/v1/...`, answering only
//! `Metadata-Flavor: Google` requests, and saying so in its answer).
//!
//! Every grant hands out `state.token` (tokens asked for with the cloud-platform scope, which
//! only feed an impersonation, get `src-` in front; those with the firebase.readonly scope get
//! `ro-`), so a test decides what the database sees.
//!
//! It is also the Firebase Realtime Database Management API's instance list
//! (`/v1beta/projects/<project>/locations/-/instances`, `state.instances` served
//! `state.page_size` at a time with page tokens, only to a `ro-` token; `state.refusals` are
//! answered first, one per request).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};

use super::{answer, fake_server, Answer, Fake, Seen};

pub const SA_EMAIL: &str = "migrations@test-project.iam.gserviceaccount.com";
pub const TARGET_EMAIL: &str = "deployer@test-project.iam.gserviceaccount.com";
pub const USER_CLIENT_ID: &str = "client-id-1.apps.googleusercontent.com";
pub const USER_CLIENT_SECRET: &str = "SECRET-client-secret";
pub const USER_REFRESH_TOKEN: &str = "SECRET-refresh-token";
pub const AUDIENCE: &str =
    "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/ci/providers/github";
pub const SUBJECT_TOKEN: &str = "SECRET-subject-token.eyJpc3MiOiJnaXRodWIifQ";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const DB_SCOPES: &str =
    "https://www.googleapis.com/auth/firebase.database https://www.googleapis.com/auth/userinfo.email";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const FIREBASE_READONLY: &str = "https://www.googleapis.com/auth/firebase.readonly";

pub fn test_key_pem() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test-sa-key.pem"
    ))
    .unwrap()
}

#[derive(Default)]
pub struct State {
    /// What every grant hands out (default `ya29.SECRET-access-1`).
    pub token: String,
    pub expires_in: u64,
    /// Requests per route: "jwt-bearer", "refresh_token", "sts", "iam", "metadata", "subject".
    pub calls: Vec<String>,
    /// The `scope` of each STS exchange.
    pub sts_scopes: Vec<String>,
    /// How many more metadata token requests get a 503 (a metadata server still starting).
    pub metadata_unavailable: u32,
    /// The Management API: the project whose instances are listed, the instances, how many a
    /// page holds (0: all), and answers given instead of a page, one per request, first.
    pub project: String,
    pub instances: Vec<Value>,
    pub page_size: usize,
    pub refusals: std::collections::VecDeque<(u16, Value)>,
}

pub struct FakeGoogle {
    pub server: Fake,
    pub state: Arc<Mutex<State>>,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(Mutex::new(State {
            token: "ya29.SECRET-access-1".into(),
            expires_in: 3600,
            ..State::default()
        }));
        let public = {
            let pem = test_key_pem();
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            RsaKeyPair::from_pkcs8(&der)
                .unwrap()
                .public()
                .as_ref()
                .to_vec()
        };
        let st = state.clone();
        let base = Arc::new(Mutex::new(String::new()));
        let base2 = base.clone();
        let server = fake_server(Arc::new(move |s, _| {
            let base = base2.lock().unwrap().clone();
            route(s, &base, &public, &mut st.lock().unwrap())
        }))
        .await;
        *base.lock().unwrap() = server.base.clone();
        FakeGoogle { server, state }
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }
    /// `host:port`, the value for `GCE_METADATA_HOST`.
    pub fn host(&self) -> String {
        self.server.base.trim_start_matches("http://").to_string()
    }
    pub fn calls(&self, route: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| *c == route)
            .count()
    }
    pub fn set_token(&self, t: &str) {
        self.state.lock().unwrap().token = t.to_string();
    }
    pub fn impersonation_url(&self) -> String {
        self.url(&format!(
            "/v1/projects/-/serviceAccounts/{TARGET_EMAIL}:generateAccessToken"
        ))
    }

    // ---- credentials files pointing at this fake ----

    pub fn service_account_json(&self) -> Value {
        json!({
            "type": "service_account",
            "project_id": "test-project",
            "private_key_id": "0123456789abcdef",
            "private_key": test_key_pem(),
            "client_email": SA_EMAIL,
            "client_id": "1",
            "token_uri": self.url("/token"),
        })
    }
    pub fn authorized_user_json(&self) -> Value {
        json!({
            "type": "authorized_user",
            "client_id": USER_CLIENT_ID,
            "client_secret": USER_CLIENT_SECRET,
            "refresh_token": USER_REFRESH_TOKEN,
            "token_uri": self.url("/token"),
        })
    }
    /// An `external_account` whose subject token comes from `credential_source`.
    pub fn external_account_json(&self, credential_source: Value, impersonate: bool) -> Value {
        let mut v = json!({
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": ID_TOKEN_TYPE,
            "token_url": self.url("/sts"),
            "credential_source": credential_source,
        });
        if impersonate {
            v["service_account_impersonation_url"] = json!(self.impersonation_url());
        }
        v
    }
    pub fn impersonated_json(&self, source: Value) -> Value {
        json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": self.impersonation_url(),
            "delegates": [],
            "source_credentials": source,
        })
    }
}

fn form(body: &str) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn json_answer(status: u16, v: Value) -> Answer {
    let mut a = answer(status, v.to_string());
    a.headers.push(("Content-Type", "application/json".into()));
    a
}

fn grant_error(why: &str) -> Answer {
    json_answer(
        400,
        json!({"error": "invalid_grant", "error_description": why}),
    )
}

fn issue(st: &mut State, scope: &str) -> Answer {
    let token = if scope == CLOUD_PLATFORM {
        format!("src-{}", st.token)
    } else if scope == FIREBASE_READONLY {
        format!("ro-{}", st.token)
    } else {
        st.token.clone()
    };
    json_answer(
        200,
        json!({"access_token": token, "expires_in": st.expires_in, "token_type": "Bearer"}),
    )
}

fn route(s: &Seen, base: &str, public: &[u8], st: &mut State) -> Answer {
    let path = s.uri.split('?').next().unwrap_or("");
    match (s.method.as_str(), path) {
        ("POST", "/token") => {
            let f = form(&s.body);
            match f.get("grant_type").map(String::as_str) {
                Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                    st.calls.push("jwt-bearer".into());
                    match check_assertion(f.get("assertion"), base, public) {
                        Ok(scope) => issue(st, &scope),
                        Err(why) => grant_error(&why),
                    }
                }
                Some("refresh_token") => {
                    st.calls.push("refresh_token".into());
                    let ok = f.get("client_id").map(String::as_str) == Some(USER_CLIENT_ID)
                        && f.get("client_secret").map(String::as_str) == Some(USER_CLIENT_SECRET)
                        && f.get("refresh_token").map(String::as_str) == Some(USER_REFRESH_TOKEN);
                    if ok {
                        issue(st, DB_SCOPES)
                    } else {
                        grant_error("Bad Request")
                    }
                }
                _ => json_answer(400, json!({"error": "unsupported_grant_type"})),
            }
        }
        ("POST", "/sts") => {
            st.calls.push("sts".into());
            let f = form(&s.body);
            let get = |k: &str| f.get(k).map(String::as_str);
            if get("grant_type") != Some("urn:ietf:params:oauth:grant-type:token-exchange")
                || get("requested_token_type")
                    != Some("urn:ietf:params:oauth:token-type:access_token")
                || get("subject_token_type") != Some(ID_TOKEN_TYPE)
            {
                return json_answer(
                    400,
                    json!({"error": "invalid_request", "error_description": "bad token exchange"}),
                );
            }
            if get("audience") != Some(AUDIENCE) {
                return json_answer(
                    400,
                    json!({"error": "invalid_target", "error_description": "The target service indicated by the \"audience\" parameters is invalid."}),
                );
            }
            if get("subject_token") != Some(SUBJECT_TOKEN) {
                return json_answer(
                    400,
                    json!({"error": "invalid_grant", "error_description": "The ID Token could not be verified."}),
                );
            }
            let scope = get("scope").unwrap_or("").to_string();
            st.sts_scopes.push(scope.clone());
            issue(st, &scope)
        }
        ("POST", p) if p.ends_with(":generateAccessToken") => {
            st.calls.push("iam".into());
            let expected = format!("Bearer src-{}", st.token);
            let user = format!("Bearer {}", st.token);
            let auth = s.header("authorization").unwrap_or("");
            if auth != expected && auth != user {
                return json_answer(
                    401,
                    json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
                );
            }
            if !p.contains(TARGET_EMAIL) {
                return json_answer(
                    404,
                    json!({"error": {"code": 404, "message": "Not found; Gaia id not found for email"}}),
                );
            }
            let body: Value = serde_json::from_str(&s.body).unwrap_or(Value::Null);
            let scopes: Vec<&str> = body["scope"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if scopes.join(" ") != DB_SCOPES {
                return json_answer(
                    400,
                    json!({"error": {"code": 400, "message": format!("unexpected scopes {scopes:?}")}}),
                );
            }
            let expire = chrono::Utc::now() + chrono::Duration::seconds(st.expires_in as i64);
            json_answer(
                200,
                json!({"accessToken": st.token, "expireTime": expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}),
            )
        }
        ("GET", "/subject") => {
            st.calls.push("subject".into());
            if s.header("x-subject-key") != Some("ci") {
                return answer(403, "missing header");
            }
            json_answer(200, json!({"id_token": SUBJECT_TOKEN}))
        }
        ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") => {
            st.calls.push("metadata".into());
            if st.metadata_unavailable > 0 {
                st.metadata_unavailable -= 1;
                let mut a = answer(503, "The metadata server is starting.");
                a.headers.push(("Metadata-Flavor", "Google".into()));
                return a;
            }
            if s.header("metadata-flavor") != Some("Google") {
                return answer(403, "Missing Metadata-Flavor:Google header.");
            }
            let scopes = s
                .uri
                .split_once("scopes=")
                .map(|(_, q)| {
                    percent_encoding::percent_decode_str(q)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .unwrap_or_default();
            let scopes = scopes.replace(',', " ");
            if scopes != DB_SCOPES && scopes != FIREBASE_READONLY {
                return answer(400, format!("unexpected scopes {scopes}"));
            }
            let mut a = issue(st, &scopes);
            a.headers.push(("Metadata-Flavor", "Google".into()));
            a
        }
        ("GET", p) if p.starts_with("/v1beta/projects/") => {
            st.calls.push("instances".into());
            management(s, p, st)
        }
        _ => answer(404, "not found"),
    }
}

/// The Management API's `instances.list`.
fn management(s: &Seen, path: &str, st: &mut State) -> Answer {
    if let Some((status, body)) = st.refusals.pop_front() {
        return json_answer(status, body);
    }
    if s.header("authorization") != Some(format!("Bearer ro-{}", st.token).as_str()) {
        return json_answer(
            401,
            json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
        );
    }
    if path != format!("/v1beta/projects/{}/locations/-/instances", st.project) {
        return json_answer(
            403,
            json!({"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}),
        );
    }
    let query: std::collections::HashMap<String, String> = s
        .uri
        .split_once('?')
        .map(|(_, q)| form(q))
        .unwrap_or_default();
    let start: usize = match query.get("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("after-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                return json_answer(
                    400,
                    json!({"error": {"code": 400, "message": "Invalid page token", "status": "INVALID_ARGUMENT"}}),
                )
            }
        },
    };
    let asked: usize = query
        .get("pageSize")
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let size = if st.page_size == 0 {
        asked
    } else {
        st.page_size.min(asked)
    };
    let end = (start + size).min(st.instances.len());
    let mut page = json!({"instances": st.instances[start..end]});
    if end < st.instances.len() {
        page["nextPageToken"] = json!(format!("after-{end}"));
    }
    json_answer(200, page)
}

/// Verify a JWT-bearer assertion; returns its scope.
fn check_assertion(a: Option<&String>, base: &str, public: &[u8]) -> Result<String, String> {
    let a = a.ok_or("no assertion")?;
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() != 3 {
        return Err("Invalid JWT".into());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let sig = b64.decode(parts[2]).map_err(|_| "Invalid JWT")?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.")?;
    let claims: Value = serde_json::from_slice(&b64.decode(parts[1]).map_err(|_| "Invalid JWT")?)
        .map_err(|_| "Invalid JWT")?;
    if claims["aud"] != format!("{base}/token") {
        return Err(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (aud)"
                .into(),
        );
    }
    if claims["iss"] != SA_EMAIL {
        return Err("Invalid issuer".into());
    }
    let now = chrono::Utc::now().timestamp();
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    if iat > now + 60 || exp <= now || exp - iat > 3600 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.".into());
    }
    let scope = claims["scope"].as_str().unwrap_or("").to_string();
    if scope != DB_SCOPES && scope != CLOUD_PLATFORM && scope != FIREBASE_READONLY {
        return Err(format!("unexpected scope {scope}"));
    }
    Ok(scope)
}
