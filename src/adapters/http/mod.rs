//! The HTTP stack every REST adapter stands on.
//!
//! - reqwest with rustls, connect and request timeouts;
//! - one adaptive [`RateLimiter`] per system ([`limiter`]);
//! - retries with exponential backoff and full jitter, honouring Retry-After, capped in
//!   attempts and total time ([`retry`]);
//! - structured tracing of every request (method, path, status, duration, attempt) with
//!   credentials redacted.
//!
//! Credentials come from [`crate::adapters::auth`], the vendor's error and rate-limit
//! dialect from [`crate::adapters::kit::errors`], paging from [`crate::adapters::kit::paging`].

pub mod limiter;
pub mod retry;

pub use limiter::{LimiterSnapshot, Permit, RateLimiter, RateSignal, retry_after};
pub use retry::RetryPolicy;

use super::auth::Auth;
use super::error::{AResult, AdapterError, ErrorClass};
use super::kit::errors::VendorProfile;
use super::kit::watch::Watch;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One path segment, percent-encoded (everything but RFC 3986's unreserved characters):
/// an e-mail's `@` and `+`, a space, a slash never change the path's shape.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Redaction lives in the leaf module [`crate::redact`]; re-exported for the adapters.
pub use crate::redact::{redact_text, redact_url};

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(serde_json::Value),
    Form(Vec<(String, String)>),
}

/// A request to send through [`HttpClient::send`].
#[derive(Debug, Clone)]
pub struct Req {
    pub method: reqwest::Method,
    /// Path and query, relative to the base URL (`/api/v1/users?limit=200`), or an
    /// absolute URL on the same host (a `next` Link).
    pub path: String,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Option<Body>,
}

impl Req {
    pub fn new(method: reqwest::Method, path: impl Into<String>) -> Self {
        Req {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::GET, path)
    }
    pub fn post(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::POST, path)
    }
    pub fn put(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::PUT, path)
    }
    pub fn patch(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::PATCH, path)
    }
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(reqwest::Method::DELETE, path)
    }
    pub fn json(mut self, v: serde_json::Value) -> Self {
        self.body = Some(Body::Json(v));
        self
    }
    pub fn form(mut self, v: Vec<(String, String)>) -> Self {
        self.body = Some(Body::Form(v));
        self
    }
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A response that arrived whole.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResponse {
    /// Decode the body as `what`; an unreadable body is a classified error, never a panic.
    pub fn json<T: DeserializeOwned>(&self, system: &str, what: &str) -> AResult<T> {
        serde_json::from_slice(&self.body)
            .map_err(|_| AdapterError::bad_response(system, self.status, what, &self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Everything one system's adapter needs to make requests.
pub struct HttpClient {
    client: reqwest::Client,
    base: url::Url,
    system: String,
    pub limiter: Arc<RateLimiter>,
    pub retry: RetryPolicy,
    auth: Arc<dyn Auth>,
    profile: Arc<dyn VendorProfile>,
    /// What this system's answers said of the vendor (deprecations, last success,
    /// credential expiry); shared with the adapter's other clients and auth providers.
    pub watch: Arc<Watch>,
}

/// Install rustls's ring provider once per process (reqwest is built without a default one).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl HttpClient {
    pub fn new(
        system: &str,
        base_url: &str,
        timeouts: Timeouts,
        limiter: Arc<RateLimiter>,
        auth: Arc<dyn Auth>,
        profile: Arc<dyn VendorProfile>,
    ) -> AResult<Self> {
        install_crypto_provider();
        let base = url::Url::parse(base_url).map_err(|e| {
            AdapterError::new(
                ErrorClass::Permanent,
                system,
                format!("base_url {base_url:?} is not a URL: {e}"),
            )
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .user_agent(concat!("accessdesk/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                AdapterError::new(
                    ErrorClass::Permanent,
                    system,
                    format!("building the HTTP client: {e}"),
                )
            })?;
        Ok(HttpClient {
            client,
            base,
            system: system.to_string(),
            limiter,
            retry: RetryPolicy::default(),
            auth,
            profile,
            watch: Arc::new(Watch::default()),
        })
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// Put another credential on this client's requests (an auth provider that needs the
    /// client's watch is made after the client).
    pub fn set_auth(&mut self, auth: Arc<dyn Auth>) {
        self.auth = auth;
    }

    pub fn auth_source(&self) -> String {
        self.auth.source()
    }

    fn url_for(&self, path: &str) -> AResult<url::Url> {
        if path.starts_with("http://") || path.starts_with("https://") {
            let u = url::Url::parse(path).map_err(|e| {
                AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!("bad URL {}: {e}", redact_url(path)),
                )
            })?;
            if u.host_str() != self.base.host_str()
                || u.port_or_known_default() != self.base.port_or_known_default()
            {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!(
                        "refusing to follow a link to another host: {}",
                        redact_url(path)
                    ),
                ));
            }
            return Ok(u);
        }
        let mut base = self.base.as_str().trim_end_matches('/').to_string();
        base.push_str(path);
        url::Url::parse(&base).map_err(|e| {
            AdapterError::new(
                ErrorClass::Permanent,
                &self.system,
                format!("bad path {}: {e}", redact_url(path)),
            )
        })
    }

    fn build(&self, req: &Req) -> AResult<reqwest::Request> {
        let url = self.url_for(&req.path)?;
        let mut b = self.client.request(req.method.clone(), url);
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        b = match &req.body {
            Some(Body::Json(v)) => b.json(v),
            Some(Body::Form(f)) => b.form(f),
            None => b,
        };
        b.build().map_err(|e| {
            AdapterError::new(
                ErrorClass::Permanent,
                &self.system,
                format!("building the request: {e}"),
            )
        })
    }

    /// Send with rate limiting and retries. 2xx is `Ok`; anything else a classified error.
    pub async fn send(&self, req: Req) -> AResult<HttpResponse> {
        let started = Instant::now();
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self.attempt(&req, attempt).await;
            let mut err = match outcome {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            if err.request.is_empty() {
                err.request = format!("{} {}", req.method, redact_url(&req.path));
            }
            if err.class == ErrorClass::Unauthorized {
                if !refreshed && self.auth.invalidate().await {
                    refreshed = true;
                    continue;
                }
                return Err(self.unauthorized(err));
            }
            if !err.class.is_retryable() {
                return Err(err);
            }
            if attempt >= self.retry.max_attempts {
                return Err(gave_up(err, attempt, started.elapsed()));
            }
            let delay = self.retry.delay(attempt, err.class.retry_after());
            if started.elapsed() + delay > self.retry.max_elapsed {
                return Err(gave_up(err, attempt, started.elapsed()));
            }
            tracing::debug!(system = %self.system, attempt, delay_ms = delay.as_millis() as u64, class = err.class.name(), "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn unauthorized(&self, mut e: AdapterError) -> AdapterError {
        e.message = format!(
            "{} rejected the credential from {} (expired or revoked?): {}",
            self.system,
            self.auth.source(),
            e.message
        );
        e
    }

    async fn attempt(&self, req: &Req, attempt: u32) -> AResult<HttpResponse> {
        let mut request = self.build(req)?;
        self.auth.authorize(&mut request).await.map_err(|mut e| {
            e.system = self.system.clone();
            e
        })?;
        let method = request.method().clone();
        let path = redact_url(request.url().path());
        let bucket = self.profile.bucket(&method, request.url().path());
        let permit = self.limiter.acquire_for(&bucket).await;
        let t = Instant::now();
        let result = self.client.execute(request).await;
        let (status, headers, body) = match result {
            Err(e) => {
                drop(permit);
                let what = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "connection failed"
                };
                tracing::info!(system = %self.system, %method, path = %path, attempt, duration_ms = t.elapsed().as_millis() as u64, error = what, "http");
                return Err(AdapterError::new(
                    ErrorClass::Transient,
                    &self.system,
                    format!("{method} {path}: {what}"),
                ));
            }
            Ok(mut resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                // Read chunk by chunk so that a body cut off mid-transfer still leaves what
                // did arrive for the error excerpt.
                let mut got = bytes::BytesMut::new();
                let cut = loop {
                    match resp.chunk().await {
                        Ok(Some(c)) => got.extend_from_slice(&c),
                        Ok(None) => break false,
                        Err(_) => break true,
                    }
                };
                if cut {
                    drop(permit);
                    tracing::info!(system = %self.system, %method, path = %path, status, attempt, received = got.len(), "http body truncated");
                    return Err(AdapterError::new(
                        ErrorClass::Transient,
                        &self.system,
                        format!(
                            "{method} {path}: the response body was cut off after {} bytes",
                            got.len()
                        ),
                    )
                    .with_status(status)
                    .with_excerpt(&got));
                }
                (status, headers, got.freeze())
            }
        };
        self.watch
            .observe(&format!("{method} {path}"), status, &headers);
        let signal = self.profile.rate_signal(status, &headers, &body);
        self.limiter.observe_for(&bucket, &signal);
        drop(permit);
        tracing::info!(system = %self.system, %method, path = %path, status, attempt, duration_ms = t.elapsed().as_millis() as u64, "http");
        if (200..300).contains(&status) {
            return Ok(HttpResponse {
                status,
                headers,
                body,
            });
        }
        let mut e = self.profile.classify(&self.system, status, &headers, &body);
        if signal.throttled && !matches!(e.class, ErrorClass::RateLimited { .. }) {
            e.class = ErrorClass::RateLimited {
                retry_after: signal.retry_after,
            };
        }
        Err(e)
    }
}

fn gave_up(mut e: AdapterError, attempts: u32, elapsed: Duration) -> AdapterError {
    e.message = format!(
        "{} (gave up after {attempts} attempts in {:.1} s)",
        e.message,
        elapsed.as_secs_f64()
    );
    e
}
