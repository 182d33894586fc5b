//! Auth providers, shared by every adapter: how a credential from the keychain becomes the
//! `Authorization` of a request.
//!
//! - [`HeaderAuth`]: a fixed header credential (`Bearer`, Okta's `SSWS`, GitHub's PATs);
//! - [`oauth::TokenAuth`]: an OAuth 2.0 access token fetched by a [`oauth::Grant`] and
//!   cached until shortly before it expires: client credentials with a secret (Entra),
//!   with a `private_key_jwt` client assertion (Okta), the JWT bearer grant (Google's
//!   domain-wide delegation), or any vendor exchange (a GitHub App's installation token);
//! - [`github_app::AppInstallation`]: a GitHub App's JWT exchanged for an installation
//!   token (a [`oauth::Grant`]);
//! - [`jwt`]: signing keys and JWTs (RS256, ES256).

pub mod github_app;
pub mod jwt;
pub mod oauth;

use super::error::{AResult, AdapterError, ErrorClass};
use async_trait::async_trait;
use reqwest::header::HeaderValue;

/// Puts credentials on a request. Implementations hold a [`crate::secrets::Secret`].
#[async_trait]
pub trait Auth: Send + Sync {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()>;
    /// Drop any cached token after a 401, so the next attempt fetches a new one. Returns
    /// whether retrying could help.
    async fn invalidate(&self) -> bool {
        false
    }
    /// Where the credential comes from, for error messages (`keyring:okta-token`). Never the value.
    fn source(&self) -> String;
}

/// No credential (for probing, and tests of unauthenticated endpoints).
pub struct NoAuth;

#[async_trait]
impl Auth for NoAuth {
    async fn authorize(&self, _req: &mut reqwest::Request) -> AResult<()> {
        Ok(())
    }
    fn source(&self) -> String {
        "no credential".into()
    }
}

/// A fixed header credential: `Authorization: Bearer ...` or `Authorization: SSWS ...`.
pub struct HeaderAuth {
    pub scheme: &'static str,
    pub secret: crate::secrets::Secret,
    pub source: String,
}

#[async_trait]
impl Auth for HeaderAuth {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        let mut v = HeaderValue::from_str(&format!("{} {}", self.scheme, self.secret.expose()))
            .map_err(|_| {
                AdapterError::new(
                    ErrorClass::Unauthorized,
                    "",
                    format!(
                        "the credential from {} contains characters not allowed in a header",
                        self.source
                    ),
                )
            })?;
        v.set_sensitive(true);
        req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }
    fn source(&self) -> String {
        self.source.clone()
    }
}

/// `Authorization: Basic base64(user:password)`, marked sensitive; None when the pair
/// cannot be a header value.
pub fn basic(user: &str, password: &str) -> Option<HeaderValue> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    authorization("Basic", &encoded)
}

/// `Authorization: <scheme> <value>`, marked sensitive so that it never reaches a log.
pub fn authorization(scheme: &str, value: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(&format!("{scheme} {value}")).ok()?;
    v.set_sensitive(true);
    Some(v)
}
