//! The metadata server: the identity of GKE Workload Identity, Cloud Run, Cloud Build and GCE.
//! Its address is `GCE_METADATA_HOST` when set (as Google's client libraries honour it), else
//! `metadata.google.internal`. Off Google Cloud nothing answers there, so every request to it is
//! bounded by a few seconds rather than the database request deadline.

use std::time::Duration;

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::oauth;
use super::token::AccessToken;
use crate::{Error, ErrorCode, Result};

pub const METADATA_HOST_ENV: &str = "GCE_METADATA_HOST";
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// How long the metadata server gets to answer (connect and response together).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(3);
/// Pauses before the retries of a refused connection or a 5xx (1.75 s in all).
const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
];

/// How one request to the metadata server failed.
enum Attempt {
    /// Worth another try soon (not ready yet).
    Transient(Error),
    /// The answer for this run.
    Final(Error),
}

/// A connection the host refused or dropped (it is there but not serving yet), as opposed to a
/// name that does not resolve.
fn refused_or_reset(e: &reqwest::Error) -> bool {
    use std::error::Error as _;
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            );
        }
        src = s.source();
    }
    false
}

pub(crate) struct MetadataServer {
    host: String,
    /// When the chain fell through to the metadata server: what was tried before, for the
    /// "no credentials found" message.
    tried: Option<Vec<String>>,
    http: reqwest::Client,
}

impl MetadataServer {
    pub fn new(host: String, tried: Option<Vec<String>>) -> MetadataServer {
        MetadataServer {
            host,
            tried,
            http: oauth::client(METADATA_TIMEOUT, METADATA_TIMEOUT),
        }
    }

    pub fn identity(&self) -> String {
        format!(
            "the default service account of the metadata server at {}",
            self.host
        )
    }

    pub async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let scopes = scopes.join(",");
        let url = format!(
            "http://{}/computeMetadata/v1/instance/service-accounts/default/token?scopes={}",
            self.host,
            utf8_percent_encode(&scopes, NON_ALPHANUMERIC)
        );
        // GKE's metadata server needs a few seconds after a pod starts before it answers
        // (Google's documentation says to retry): a refused connection or a 5xx is retried
        // briefly. Silence (a timeout) and a name that does not resolve are not: off Google
        // Cloud they are the normal answer, and the chain must end quickly there.
        let mut delays = RETRY_DELAYS.iter();
        loop {
            match self.fetch_once(&url).await {
                Ok(token) => return Ok(token),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Transient(e)) => match delays.next() {
                    Some(d) => tokio::time::sleep(*d).await,
                    None => return Err(e),
                },
            }
        }
    }

    async fn fetch_once(&self, url: &str) -> std::result::Result<AccessToken, Attempt> {
        let what = format!(
            "Getting an access token from the metadata server at {}",
            self.host
        );
        let timed_out = || {
            Attempt::Final(
                self.unreachable(&format!("no answer within {}s", METADATA_TIMEOUT.as_secs())),
            )
        };
        // The overall bound covers DNS as well, which reqwest's timeouts do not.
        let sent = tokio::time::timeout(
            METADATA_TIMEOUT,
            self.http
                .get(url)
                .header("Metadata-Flavor", "Google")
                .send(),
        )
        .await;
        let resp = match sent {
            Err(_) => return Err(timed_out()),
            Ok(Err(e)) if e.is_timeout() => return Err(timed_out()),
            Ok(Err(e)) => {
                let err = self.unreachable(&oauth::describe(&e));
                return Err(if refused_or_reset(&e) {
                    Attempt::Transient(err)
                } else {
                    Attempt::Final(err)
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = resp.status();
        if status.is_server_error() {
            return Err(Attempt::Transient(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{what} failed: HTTP {} (the metadata server is not ready; on GKE it needs a few \
                     seconds after the pod starts)",
                    status.as_u16()
                ),
            )));
        }
        // A real metadata server says so; anything else (a proxy, a captive portal) is not one.
        let flavor = resp
            .headers()
            .get("metadata-flavor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if flavor.as_deref() != Some("Google") {
            return Err(Attempt::Final(self.unreachable(&format!(
                "HTTP {} without the Metadata-Flavor: Google header, so it is not a metadata server",
                status.as_u16()
            ))));
        }
        if status.as_u16() == 404 {
            return Err(Attempt::Final(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{what} failed: no service account is attached (HTTP 404); attach one to the workload \
                     (GKE: bind the Kubernetes service account with Workload Identity)"
                ),
            )));
        }
        let body = tokio::time::timeout(METADATA_TIMEOUT, resp.bytes())
            .await
            .map_err(|_| Attempt::Final(self.unreachable("the answer stalled")))?
            .map_err(|e| Attempt::Final(self.unreachable(&oauth::describe(&e))))?;
        if !status.is_success() {
            return Err(Attempt::Final(Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "{what} failed: HTTP {}; on GKE check that the Kubernetes service account is bound to a \
                     Google service account (Workload Identity)",
                    status.as_u16()
                ),
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            Attempt::Final(Error::new(
                ErrorCode::AuthFailed,
                format!("{what} failed: the answer is not JSON"),
            ))
        })?;
        oauth::oauth_token(&v, &what, url).map_err(Attempt::Final)
    }

    /// Nothing usable answered: as the last step of the chain this means "no credentials".
    fn unreachable(&self, why: &str) -> Error {
        match &self.tried {
            Some(tried) => super::adc::not_found(tried, &self.host, why),
            None => Error::new(
                ErrorCode::AuthFailed,
                format!(
                    "The metadata server at {} did not give a token ({why})",
                    self.host
                ),
            ),
        }
    }
}
