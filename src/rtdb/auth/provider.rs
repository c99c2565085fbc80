//! The credential types of Application Default Credentials, behind one `fetch`: each turns its
//! secret into an OAuth2 access token for the given scopes.

use std::future::Future;
use std::pin::Pin;

use super::external::ExternalAccount;
use super::impersonated::Impersonated;
use super::metadata::MetadataServer;
use super::service_account::ServiceAccount;
use super::token::AccessToken;
use super::user::AuthorizedUser;
use crate::Result;

pub(crate) enum Provider {
    /// `service_account` key file: a signed JWT exchanged at the key's `token_uri`.
    ServiceAccount(ServiceAccount),
    /// `authorized_user` (gcloud's application-default login): a refresh token grant.
    AuthorizedUser(AuthorizedUser),
    /// `external_account` (Workload Identity Federation): a subject token exchanged at STS,
    /// optionally impersonating a service account.
    External(ExternalAccount),
    /// `impersonated_service_account`: source credentials, then IAM `generateAccessToken`.
    Impersonated(Impersonated),
    /// The metadata server (GKE Workload Identity, Cloud Run, Cloud Build, GCE).
    Metadata(MetadataServer),
}

pub(crate) type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<AccessToken>> + Send + 'a>>;

impl Provider {
    /// A new access token for `scopes` (boxed: impersonation fetches its source's token first).
    pub fn fetch<'a>(&'a self, scopes: &'a [&'a str]) -> TokenFuture<'a> {
        match self {
            Provider::ServiceAccount(p) => Box::pin(p.fetch(scopes)),
            Provider::AuthorizedUser(p) => Box::pin(p.fetch()),
            Provider::External(p) => Box::pin(p.fetch(scopes)),
            Provider::Impersonated(p) => Box::pin(p.fetch(scopes)),
            Provider::Metadata(p) => Box::pin(p.fetch(scopes)),
        }
    }

    pub fn identity(&self) -> String {
        match self {
            Provider::ServiceAccount(p) => format!("service account {}", p.client_email),
            Provider::AuthorizedUser(p) => p.identity(),
            Provider::External(p) => p.identity(),
            Provider::Impersonated(p) => p.identity(),
            Provider::Metadata(p) => p.identity(),
        }
    }
}
