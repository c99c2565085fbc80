//! `authorized_user` credentials (what `gcloud auth application-default login` writes): a
//! refresh token exchanged at the OAuth2 token endpoint.

use super::file::{required_str, CredentialFile};
use super::oauth;
use super::token::AccessToken;
use crate::Result;

const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

pub(crate) struct AuthorizedUser {
    client_id: String,
    client_secret: String,
    refresh_token: String,
    token_uri: String,
    account: Option<String>,
    shown: String,
    http: reqwest::Client,
}

impl AuthorizedUser {
    pub fn parse(f: &CredentialFile) -> Result<AuthorizedUser> {
        Ok(AuthorizedUser {
            client_id: required_str(f, "client_id")?,
            client_secret: required_str(f, "client_secret")?,
            refresh_token: required_str(f, "refresh_token")?,
            token_uri: f
                .str("token_uri")
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.into()),
            account: f.str("account"),
            shown: f.shown.clone(),
            http: oauth::default_client(),
        })
    }

    pub fn identity(&self) -> String {
        match &self.account {
            Some(a) => format!("user {a}"),
            None => format!(
                "the user credentials of {}",
                self.shown.trim_start_matches("Credentials file ")
            ),
        }
    }

    pub async fn fetch(&self) -> Result<AccessToken> {
        let what = format!("Refreshing the access token of {}", self.identity());
        let v = oauth::post_form(
            &self.http,
            &self.token_uri,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", &self.client_secret),
                ("refresh_token", &self.refresh_token),
            ],
            None,
            &what,
        )
        .await
        .map_err(|e| {
            oauth::hint(
                e,
                "log in again with `gcloud auth application-default login --scopes=https://www.googleapis.com/auth/firebase.database,https://www.googleapis.com/auth/userinfo.email,https://www.googleapis.com/auth/cloud-platform`",
            )
        })?;
        oauth::oauth_token(&v, &what, &self.token_uri)
    }
}
