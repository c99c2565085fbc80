//! `external_account` credentials (Workload Identity Federation: GitHub Actions, AWS/Azure via
//! OIDC, other clouds): a subject token read from a file, a URL or an executable is exchanged
//! at the Security Token Service (RFC 8693), and optionally traded for a service account's token
//! through `service_account_impersonation_url`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use super::file::{required_str, CredentialFile};
use super::impersonated;
use super::oauth;
use super::token::AccessToken;
use super::Env;
use crate::Result;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const ALLOW_EXECUTABLES_ENV: &str = "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES";
const EXECUTABLE_TIMEOUT_DEFAULT_MS: u64 = 30_000;
const EXECUTABLE_TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 5_000..=120_000;

pub(crate) struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    token_url: String,
    source: SubjectSource,
    impersonation_url: Option<String>,
    lifetime_secs: u64,
    client: Option<(String, String)>,
    user_project: Option<String>,
    shown: String,
    http: reqwest::Client,
}

enum Format {
    Text,
    Json(String),
}

enum SubjectSource {
    File(PathBuf, Format),
    Url(String, Vec<(String, String)>, Format),
    Executable {
        command: Vec<String>,
        timeout: Duration,
        output_file: Option<PathBuf>,
        allowed: bool,
    },
}

impl ExternalAccount {
    pub fn parse(f: &CredentialFile, env: &Env) -> Result<ExternalAccount> {
        let audience = required_str(f, "audience")?;
        let subject_token_type = required_str(f, "subject_token_type")?;
        let token_url = required_str(f, "token_url")?;
        let Some(Value::Object(src)) = f.obj.get("credential_source") else {
            return Err(f.fail("has no \"credential_source\" object"));
        };
        let format = match src.get("format") {
            None => Format::Text,
            Some(fmt) => match fmt.get("type").and_then(Value::as_str) {
                None | Some("text") => Format::Text,
                Some("json") => match fmt.get("subject_token_field_name").and_then(Value::as_str) {
                    Some(field) if !field.is_empty() => Format::Json(field.to_string()),
                    _ => return Err(f.fail(
                        "credential_source.format of type json needs \"subject_token_field_name\"",
                    )),
                },
                Some(other) => {
                    return Err(f.fail(format!(
                        "credential_source.format type \"{other}\" is not text or json"
                    )))
                }
            },
        };
        let str_field = |k: &str| src.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
        let source = if src.contains_key("environment_id") {
            return Err(f.fail(
                "uses an AWS credential_source (environment_id), which this runner does not support; \
                 use an OIDC file/URL source or a service account key",
            ));
        } else if let Some(path) = str_field("file") {
            SubjectSource::File(f.dir.join(path), format)
        } else if let Some(url) = str_field("url") {
            let headers = src
                .get("headers")
                .and_then(Value::as_object)
                .map(|h| {
                    h.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            SubjectSource::Url(url.to_string(), headers, format)
        } else if let Some(Value::Object(exe)) = src.get("executable") {
            let command: Vec<String> = exe
                .get("command")
                .and_then(Value::as_str)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if command.is_empty() {
                return Err(f.fail("credential_source.executable has no \"command\""));
            }
            let ms = exe
                .get("timeout_millis")
                .and_then(Value::as_u64)
                .unwrap_or(EXECUTABLE_TIMEOUT_DEFAULT_MS);
            if !EXECUTABLE_TIMEOUT_RANGE_MS.contains(&ms) {
                return Err(f.fail(format!(
                    "credential_source.executable.timeout_millis must be between 5000 and 120000 (got {ms})"
                )));
            }
            SubjectSource::Executable {
                command,
                timeout: Duration::from_millis(ms),
                output_file: exe
                    .get("output_file")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from),
                allowed: env.allow_executables,
            }
        } else {
            return Err(f.fail("credential_source has none of \"file\", \"url\" or \"executable\""));
        };
        let client = match (f.str("client_id"), f.str("client_secret")) {
            (Some(id), Some(secret)) => Some((id, secret)),
            _ => None,
        };
        let lifetime_secs = f
            .obj
            .get("service_account_impersonation")
            .and_then(|s| s.get("token_lifetime_seconds"))
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok(ExternalAccount {
            audience,
            subject_token_type,
            token_url,
            source,
            impersonation_url: f.str("service_account_impersonation_url"),
            lifetime_secs,
            client,
            user_project: f.str("workforce_pool_user_project"),
            shown: f.shown.clone(),
            http: oauth::default_client(),
        })
    }

    pub fn identity(&self) -> String {
        match &self.impersonation_url {
            Some(url) => format!(
                "external account {} (as {})",
                self.audience,
                impersonated::target_of(url)
            ),
            None => format!("external account {}", self.audience),
        }
    }

    pub async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let subject = self.subject_token().await?;
        let sts_scope = match &self.impersonation_url {
            Some(_) => impersonated::CLOUD_PLATFORM.to_string(),
            None => scopes.join(" "),
        };
        let options = match (&self.user_project, &self.client) {
            (Some(p), None) => Some(json!({"userProject": p}).to_string()),
            _ => None,
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", TOKEN_EXCHANGE),
            ("audience", &self.audience),
            ("scope", &sts_scope),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("subject_token", &subject),
            ("subject_token_type", &self.subject_token_type),
        ];
        if let Some(o) = &options {
            form.push(("options", o));
        }
        let what = format!(
            "Exchanging the subject token of {} at the Security Token Service",
            self.identity()
        );
        let basic = self.client.as_ref().map(|(i, s)| (i.as_str(), s.as_str()));
        let v = oauth::post_form(&self.http, &self.token_url, &form, basic, &what)
            .await
            .map_err(|e| {
                oauth::hint(
                    e,
                    "check the workload identity pool provider (audience) and that it trusts this subject token's issuer",
                )
            })?;
        let sts = oauth::oauth_token(&v, &what, &self.token_url)?;
        match &self.impersonation_url {
            None => Ok(sts),
            Some(url) => {
                impersonated::generate(
                    &self.http,
                    url,
                    &sts.secret,
                    scopes,
                    &[],
                    self.lifetime_secs,
                )
                .await
            }
        }
    }

    /// The subject token (an OIDC ID token, a JWT or a SAML response) — a secret as well.
    async fn subject_token(&self) -> Result<String> {
        let fail =
            |why: String| oauth::auth_failed(format!("{}: the subject token {why}", self.shown));
        match &self.source {
            SubjectSource::File(path, format) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| fail(format!("file {} cannot be read ({e})", path.display())))?;
                extract(&text, format).map_err(|why| fail(format!("file {} {why}", path.display())))
            }
            SubjectSource::Url(url, headers, format) => {
                let mut rb = self.http.get(url);
                for (k, v) in headers {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                let shown = oauth::shown_url(url);
                let resp = rb.send().await.map_err(|e| {
                    fail(format!(
                        "URL {shown} could not be reached ({})",
                        oauth::describe(&e)
                    ))
                })?;
                let status = resp.status();
                let text = resp.text().await.map_err(|e| {
                    fail(format!(
                        "URL {shown}: answer cut off ({})",
                        oauth::describe(&e)
                    ))
                })?;
                if !status.is_success() {
                    return Err(fail(format!(
                        "URL {shown} answered HTTP {}",
                        status.as_u16()
                    )));
                }
                extract(&text, format).map_err(|why| fail(format!("URL {shown} {why}")))
            }
            SubjectSource::Executable {
                command,
                timeout,
                output_file,
                allowed,
            } => {
                if !allowed {
                    return Err(fail(format!(
                        "comes from an executable, which runs only with {ALLOW_EXECUTABLES_ENV}=1 set"
                    )));
                }
                self.run_executable(command, *timeout, output_file.as_deref())
                    .await
            }
        }
    }

    async fn run_executable(
        &self,
        command: &[String],
        timeout: Duration,
        output_file: Option<&std::path::Path>,
    ) -> Result<String> {
        let name = &command[0];
        let fail = |why: String| {
            oauth::auth_failed(format!(
                "{}: the subject token executable {name} {why}",
                self.shown
            ))
        };
        // A still-valid answer the executable saved earlier is used as is.
        if let Some(out) = output_file {
            if let Ok(text) = tokio::fs::read_to_string(out).await {
                if let Ok(token) = self.executable_answer(&text, true) {
                    return Ok(token);
                }
            }
        }
        let mut cmd = tokio::process::Command::new(name);
        cmd.args(&command[1..])
            .env("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE", &self.audience)
            .env(
                "GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE",
                &self.subject_token_type,
            )
            .env("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE", "0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            // Its error output could hold secrets: not shown, not kept.
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        if let Some(url) = &self.impersonation_url {
            if let Some(email) = impersonated::target_of(url).strip_prefix("service account ") {
                cmd.env("GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL", email);
            }
        }
        if let Some(out) = output_file {
            cmd.env("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE", out);
        }
        let child = cmd
            .spawn()
            .map_err(|e| fail(format!("could not be started ({e})")))?;
        let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Err(_) => {
                return Err(fail(format!(
                    "gave no answer within {} ms (timeout_millis)",
                    timeout.as_millis()
                )))
            }
            Ok(Err(e)) => return Err(fail(format!("failed ({e})"))),
            Ok(Ok(o)) => o,
        };
        if !out.status.success() {
            return Err(fail(format!("exited with {}", out.status)));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        self.executable_answer(&text, output_file.is_some())
            .map_err(fail)
    }

    /// `{"version": 1, "success": true, "token_type": ..., "id_token" | "saml_response": ...,
    /// "expiration_time": <unix s>}` or `{"success": false, "code": ..., "message": ...}`.
    fn executable_answer(
        &self,
        text: &str,
        need_expiry: bool,
    ) -> std::result::Result<String, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| "printed something that is not JSON".to_string())?;
        if v.get("version").and_then(Value::as_u64) != Some(1) {
            return Err("answered without \"version\": 1".into());
        }
        if v.get("success").and_then(Value::as_bool) != Some(true) {
            return Err(format!(
                "reported failure ({}: {})",
                v.get("code").and_then(Value::as_str).unwrap_or("no code"),
                v.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            ));
        }
        let token_type = v.get("token_type").and_then(Value::as_str).unwrap_or("");
        if token_type != self.subject_token_type {
            return Err(format!(
                "answered token_type \"{token_type}\", but the file's subject_token_type is \"{}\"",
                self.subject_token_type
            ));
        }
        match v.get("expiration_time").and_then(Value::as_u64) {
            Some(t) if t <= oauth::unix_now() => return Err("answered an expired token".into()),
            None if need_expiry => {
                return Err("answered without expiration_time (required with output_file)".into())
            }
            _ => {}
        }
        v.get("id_token")
            .or_else(|| v.get("saml_response"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| "answered no id_token or saml_response".into())
    }
}

fn extract(text: &str, format: &Format) -> std::result::Result<String, String> {
    let token = match format {
        Format::Text => text.trim().to_string(),
        Format::Json(field) => {
            let v: Value = serde_json::from_str(text).map_err(|_| "is not JSON".to_string())?;
            v.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("has no \"{field}\" string field"))?
        }
    };
    if token.is_empty() {
        return Err("is empty".into());
    }
    Ok(token)
}
