//! OAuth 2.0 access tokens: a [`Grant`] asks the vendor for one, [`TokenAuth`] caches it
//! until shortly before it expires and puts it on every request, and drops it after a 401
//! so that the next attempt fetches a new one.
//!
//! Grants here: [`ClientAssertion`] (client credentials with a `private_key_jwt` client
//! assertion, RFC 7523 §2.2: Okta service apps), [`JwtBearer`] (the JWT bearer
//! authorization grant, RFC 7523 §2.1: Google's domain-wide delegation) and
//! [`ClientSecret`] (client credentials with a secret, RFC 6749 §4.4: Entra ID; Workday with
//! the client authenticated by HTTP Basic, [`TokenAuth::with_basic_client`]) and
//! [`RefreshToken`] (RFC 6749 §6: Workday's API clients for integrations). A vendor's own
//! exchange (a GitHub App's installation token) implements [`Grant`] in its adapter.

use super::Auth;
use super::jwt::{Signer, now_secs, random_jti};
use crate::adapters::error::{AResult, AdapterError, ErrorClass};
use crate::adapters::http::{HttpClient, RateLimiter, Req, RetryPolicy, Timeouts};
use crate::adapters::kit::errors::VendorProfile;
use crate::adapters::kit::watch::Watch;
use crate::secrets::Secret;
use async_trait::async_trait;
use reqwest::header::ACCEPT;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// An access token as the vendor issued it.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: Secret,
    /// How long it lives from when it was asked for.
    pub lifetime: Duration,
    /// The scopes (or permissions) it carries, as the vendor names them.
    pub scopes: Vec<String>,
}

/// How one vendor issues access tokens.
#[async_trait]
pub trait Grant: Send + Sync {
    /// Ask for a new token through `http` (a client for the token endpoint's host).
    async fn fetch(&self, http: &HttpClient) -> AResult<Token>;
    /// Who asks, for error messages (`client 0oa1`, `service account x as admin y`).
    fn who(&self) -> String;
}

/// What a token request's error message starts with when [`HttpClient`] reports it; the API
/// request that needed the token says that itself, so it is cut from the token's error.
fn strip_rejected_prefix(e: &mut AdapterError, system: &str, source: &str) {
    let prefix = format!("{system} rejected the credential from {source} (expired or revoked?): ");
    if let Some(rest) = e.message.strip_prefix(&prefix) {
        e.message = rest.to_string();
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    expires_in: u64,
    #[serde(default)]
    scope: Option<String>,
}

/// POST an RFC 6749 §4 token request as a form and read the §5.1 answer. `scopes` are what
/// the token carries when the answer does not say.
pub async fn form_token(
    http: &HttpClient,
    token_url: &str,
    form: Vec<(String, String)>,
    scopes: &[String],
) -> AResult<Token> {
    let resp = http
        .send(
            Req::post(token_url.to_string())
                .form(form)
                .header(ACCEPT, "application/json"),
        )
        .await?;
    let t: TokenResponse = resp.json(http.system(), "an OAuth token response")?;
    if !t.token_type.eq_ignore_ascii_case("bearer") || t.access_token.is_empty() {
        return Err(AdapterError::bad_response(
            http.system(),
            resp.status,
            "a Bearer access token",
            b"(token response withheld)",
        ));
    }
    Ok(Token {
        value: Secret::new(t.access_token),
        lifetime: Duration::from_secs(t.expires_in.max(1)),
        scopes: match t.scope {
            Some(s) => s.split_whitespace().map(str::to_string).collect(),
            None => scopes.to_vec(),
        },
    })
}

fn pair(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_string(), v.into())
}

/// Sign `claims`; a failure is Unauthorized (the key cannot be used).
pub fn sign<T: Serialize>(signer: &Signer, claims: &T, system: &str) -> AResult<String> {
    signer.sign(claims).map_err(|e| {
        AdapterError::new(
            ErrorClass::Unauthorized,
            system,
            format!("could not sign a JWT assertion: {e}"),
        )
    })
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
}

/// Client credentials with a `private_key_jwt` client assertion (Okta service apps).
pub struct ClientAssertion {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub signer: Signer,
    pub token_url: String,
}

#[async_trait]
impl Grant for ClientAssertion {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let now = now_secs();
        let claims = AssertionClaims {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.token_url,
            iat: now,
            exp: now + 300,
            jti: random_jti(),
        };
        let form = vec![
            pair("grant_type", "client_credentials"),
            pair("scope", self.scopes.join(" ")),
            pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            pair(
                "client_assertion",
                sign(&self.signer, &claims, http.system())?,
            ),
        ];
        form_token(http, &self.token_url, form, &self.scopes).await
    }
    fn who(&self) -> String {
        format!("client {}", self.client_id)
    }
}

#[derive(Serialize)]
struct BearerClaims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    sub: &'a str,
    scope: String,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// The JWT bearer authorization grant (Google service accounts with domain-wide
/// delegation: `iss` the service account, `sub` the admin it acts as).
pub struct JwtBearer {
    pub issuer: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub signer: Signer,
    pub token_url: String,
}

#[async_trait]
impl Grant for JwtBearer {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let now = now_secs();
        let claims = BearerClaims {
            iss: &self.issuer,
            sub: &self.subject,
            scope: self.scopes.join(" "),
            aud: &self.token_url,
            iat: now,
            exp: now + 3600,
        };
        let form = vec![
            pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            pair("assertion", sign(&self.signer, &claims, http.system())?),
        ];
        form_token(http, &self.token_url, form, &self.scopes).await
    }
    fn who(&self) -> String {
        format!("service account {} acting as {}", self.issuer, self.subject)
    }
}

/// Client credentials with a client secret (Entra ID app registrations).
pub struct ClientSecret {
    pub client_id: String,
    pub secret: Secret,
    pub scopes: Vec<String>,
    pub token_url: String,
}

#[async_trait]
impl Grant for ClientSecret {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let form = vec![
            pair("grant_type", "client_credentials"),
            pair("client_id", self.client_id.clone()),
            pair("client_secret", self.secret.expose().to_string()),
            pair("scope", self.scopes.join(" ")),
        ];
        form_token(http, &self.token_url, form, &self.scopes).await
    }
    fn who(&self) -> String {
        format!("client {}", self.client_id)
    }
}

/// A refresh token exchanged for access tokens (RFC 6749 §6), the client authenticated by
/// HTTP Basic ([`TokenAuth::with_basic_client`]) as Workday documents it.
pub struct RefreshToken {
    pub client_id: String,
    pub refresh_token: Secret,
    pub token_url: String,
}

#[async_trait]
impl Grant for RefreshToken {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let form = vec![
            pair("grant_type", "refresh_token"),
            pair("refresh_token", self.refresh_token.expose().to_string()),
        ];
        form_token(http, &self.token_url, form, &[]).await
    }
    fn who(&self) -> String {
        format!("client {} (refresh token)", self.client_id)
    }
}

/// Client credentials (RFC 6749 §4.4) with the client authenticated by HTTP Basic
/// ([`TokenAuth::with_basic_client`]): the form carries only the grant type.
pub struct BasicClientCredentials {
    pub client_id: String,
    pub token_url: String,
}

#[async_trait]
impl Grant for BasicClientCredentials {
    async fn fetch(&self, http: &HttpClient) -> AResult<Token> {
        let form = vec![pair("grant_type", "client_credentials")];
        form_token(http, &self.token_url, form, &[]).await
    }
    fn who(&self) -> String {
        format!("client {}", self.client_id)
    }
}

/// How the token request authenticates the client: in the body (the grant's form), or by
/// HTTP Basic with the client id and secret. It names where the key came from in errors.
struct TokenClient {
    source: String,
    basic: Option<(String, Secret)>,
}

#[async_trait]
impl Auth for TokenClient {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        let Some((id, secret)) = &self.basic else {
            return Ok(());
        };
        let v = super::basic(id, secret.expose()).ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Unauthorized,
                "",
                format!(
                    "the client credentials from {} contain characters not allowed in a header",
                    self.source
                ),
            )
        })?;
        req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }
    fn source(&self) -> String {
        self.source.clone()
    }
}

struct Cached {
    token: Token,
    expires_at: Instant,
}

/// What the credential looked like the last time a token was issued (credential hygiene).
#[derive(Debug, Clone)]
pub struct Issued {
    pub at: SystemTime,
    pub lifetime: Duration,
    pub scopes: Vec<String>,
}

/// An OAuth access token from a [`Grant`], cached and put on each request.
pub struct TokenAuth {
    system: String,
    source: String,
    scheme: &'static str,
    http: HttpClient,
    grant: Box<dyn Grant>,
    cache: tokio::sync::Mutex<Option<Cached>>,
    issued: std::sync::Mutex<Option<Issued>>,
    watch: Option<Arc<Watch>>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("grant", &self.grant.who())
            .field("source", &self.source)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// Where a [`TokenAuth`] sends its token requests and how it reads the answers.
pub struct TokenEndpoint {
    /// Any URL on the token endpoint's host (the grant names the full URL).
    pub url: String,
    pub timeouts: Timeouts,
    pub limiter: Arc<RateLimiter>,
    pub retry: RetryPolicy,
    pub profile: Arc<dyn VendorProfile>,
}

impl TokenAuth {
    /// `source` names the keychain entry the grant's key or secret came from.
    pub fn new(
        system: &str,
        source: &str,
        endpoint: TokenEndpoint,
        grant: Box<dyn Grant>,
    ) -> AResult<Self> {
        Self::build(system, source, endpoint, grant, None)
    }

    /// As [`TokenAuth::new`], the token requests authenticating the client by HTTP Basic
    /// with `client_id` and `client_secret` (Workday).
    pub fn with_basic_client(
        system: &str,
        source: &str,
        endpoint: TokenEndpoint,
        grant: Box<dyn Grant>,
        client_id: &str,
        client_secret: Secret,
    ) -> AResult<Self> {
        Self::build(
            system,
            source,
            endpoint,
            grant,
            Some((client_id.to_string(), client_secret)),
        )
    }

    fn build(
        system: &str,
        source: &str,
        endpoint: TokenEndpoint,
        grant: Box<dyn Grant>,
        basic: Option<(String, Secret)>,
    ) -> AResult<Self> {
        let mut http = HttpClient::new(
            system,
            &endpoint.url,
            endpoint.timeouts,
            endpoint.limiter,
            Arc::new(TokenClient {
                source: source.to_string(),
                basic,
            }),
            endpoint.profile,
        )?;
        http.retry = endpoint.retry;
        Ok(TokenAuth {
            system: system.to_string(),
            source: source.to_string(),
            scheme: "Bearer",
            http,
            grant,
            cache: tokio::sync::Mutex::new(None),
            issued: std::sync::Mutex::new(None),
            watch: None,
        })
    }

    /// Report each token's expiry and scopes to the system's watch (credential hygiene).
    pub fn with_watch(mut self, watch: Arc<Watch>) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Send the token as `Authorization: <scheme> <token>` (GitHub takes `token` as well).
    pub fn with_scheme(mut self, scheme: &'static str) -> Self {
        self.scheme = scheme;
        self
    }

    /// A valid token: the cached one unless it expires within a margin, else a new one.
    pub async fn token(&self) -> AResult<Token> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref() {
            let left = c.expires_at.saturating_duration_since(Instant::now());
            // Refresh a little early: a quarter of a short lifetime, at most a minute.
            let margin = Duration::from_secs(60).min(c.token.lifetime / 4);
            if left > margin {
                return Ok(c.token.clone());
            }
        }
        let sent = Instant::now();
        let token = self.grant.fetch(&self.http).await.map_err(|mut e| {
            strip_rejected_prefix(&mut e, &self.system, &self.source);
            e.message = format!(
                "the token endpoint refused {} (key from {}): {}",
                self.grant.who(),
                self.source,
                e.message
            );
            e
        })?;
        if let Some(w) = &self.watch {
            w.token_issued(token.lifetime);
            w.scopes_granted(token.scopes.clone());
        }
        *self.issued.lock().unwrap_or_else(|p| p.into_inner()) = Some(Issued {
            at: SystemTime::now(),
            lifetime: token.lifetime,
            scopes: token.scopes.clone(),
        });
        *cache = Some(Cached {
            token: token.clone(),
            expires_at: sent + token.lifetime,
        });
        Ok(token)
    }

    /// Who asks for the tokens (the grant's account, client or App).
    pub fn who(&self) -> String {
        self.grant.who()
    }

    /// The last token issued: when, for how long, with which scopes.
    pub fn issued(&self) -> Option<Issued> {
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[async_trait]
impl Auth for TokenAuth {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        let token = self.token().await?;
        let v = super::authorization(self.scheme, token.value.expose()).ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Unauthorized,
                &self.system,
                "the access token contains characters not allowed in a header",
            )
        })?;
        req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }

    /// After a 401: drop the cached token so that the next attempt fetches a new one. If
    /// there was none (the token request itself was refused), retrying cannot help.
    async fn invalidate(&self) -> bool {
        self.cache.lock().await.take().is_some()
    }

    fn source(&self) -> String {
        self.source.clone()
    }
}
