//! The access-token cache shared by every Google credential type: one token at a time, fetched
//! on first use, replaced shortly before it expires, dropped when the database refuses it.
//! Concurrent requests wait for one fetch instead of each starting their own.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::provider::Provider;
use crate::Result;

/// Refresh this long before expiry (Google's client libraries use a few minutes) — or after half
/// the lifetime for short-lived tokens.
const REFRESH_MARGIN: Duration = Duration::from_secs(240);

/// An OAuth2 access token. Its `Debug` never shows the secret.
pub(crate) struct AccessToken {
    pub secret: String,
    /// Lifetime the issuer gave (`expires_in`), counted from when the answer arrived.
    pub lifetime: Duration,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccessToken(<redacted>, {:?})", self.lifetime)
    }
}

struct Cached {
    header: String,
    refresh_at: Instant,
}

/// A credential plus its cached token.
pub struct TokenSource {
    provider: Provider,
    /// What its tokens are for (the database's scopes, or another Google API's).
    scopes: &'static [&'static str],
    cache: Mutex<Option<Cached>>,
}

/// An `Authorization` header value and whether it was fetched for this very call (a token that
/// was just issued cannot be fixed by fetching another).
pub struct Bearer {
    pub header: String,
    pub fresh: bool,
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bearer(<redacted>, fresh: {})", self.fresh)
    }
}

impl TokenSource {
    pub(crate) fn new(provider: Provider, scopes: &'static [&'static str]) -> TokenSource {
        TokenSource {
            provider,
            scopes,
            cache: Mutex::new(None),
        }
    }

    /// The cached token, or a new one when there is none or it is close to expiry.
    pub async fn bearer(&self) -> Result<Bearer> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(Bearer {
                    header: c.header.clone(),
                    fresh: false,
                });
            }
        }
        let token = self.provider.fetch(self.scopes).await?;
        let margin = REFRESH_MARGIN.min(token.lifetime / 2);
        let header = format!("Bearer {}", token.secret);
        *cache = Some(Cached {
            header: header.clone(),
            refresh_at: Instant::now() + token.lifetime.saturating_sub(margin),
        });
        Ok(Bearer {
            header,
            fresh: true,
        })
    }

    /// Forget the cached token if it is still `header` (the database refused it), so the next
    /// request fetches a new one; a token another request already replaced is kept.
    pub async fn invalidate(&self, header: &str) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| c.header == header) {
            *cache = None;
        }
    }

    /// Who this credential is, for error messages (an email, "the metadata server's default
    /// service account", an external account's audience) — never a secret.
    pub fn identity(&self) -> String {
        self.provider.identity()
    }
}
