//! The HTTP stack every REST adapter stands on.
//!
//! - reqwest with rustls, connect and request timeouts;
//! - one adaptive [`RateLimiter`] per system, shared by all of that system's workers: a
//!   token bucket for the budget in systems.toml, plus the vendor's own signals (Okta's
//!   X-Rate-Limit-*, GitHub's x-ratelimit-*, Retry-After, AWS Throttling);
//! - retries with exponential backoff and full jitter, honouring Retry-After, capped in
//!   attempts and total time;
//! - structured tracing of every request (method, path, status, duration, attempt) with
//!   credentials redacted;
//! - pagination helpers (Link headers, SCIM startIndex/count).

use super::AResult;
use super::error::{AdapterError, ErrorClass};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Redaction lives in the leaf module [`crate::redact`]; re-exported for the adapters.
pub use crate::redact::{redact_text, redact_url};

// ---------------------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------------------

/// What one response said about the vendor's rate limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateSignal {
    /// Requests allowed in the current window.
    pub limit: Option<u32>,
    /// Requests left in the current window.
    pub remaining: Option<u32>,
    /// When the window resets (from an epoch-seconds header).
    pub reset_at: Option<SystemTime>,
    /// Retry-After, where sent.
    pub retry_after: Option<Duration>,
    /// The vendor refused this request for rate (429, AWS Throttling, GitHub 403 + remaining 0).
    pub throttled: bool,
}

impl RateSignal {
    /// Read Retry-After (seconds or an HTTP date) and a 429 status.
    pub fn generic(status: u16, headers: &HeaderMap) -> RateSignal {
        RateSignal {
            retry_after: retry_after(headers),
            throttled: status == 429,
            ..Default::default()
        }
    }

    /// Read a vendor's limit/remaining/reset triple (reset in epoch seconds), e.g.
    /// `X-Rate-Limit-*` (Okta) or `x-ratelimit-*` (GitHub). Header names are case-insensitive.
    pub fn from_triple(
        status: u16,
        headers: &HeaderMap,
        limit: &str,
        remaining: &str,
        reset: &str,
    ) -> RateSignal {
        let num = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let mut s = RateSignal::generic(status, headers);
        s.limit = num(limit).map(|v| v.min(u32::MAX as u64) as u32);
        s.remaining = num(remaining).map(|v| v.min(u32::MAX as u64) as u32);
        s.reset_at = num(reset).map(|secs| UNIX_EPOCH + Duration::from_secs(secs));
        s
    }
}

/// Parse Retry-After: delta-seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The vendor's window, as we track it between responses.
#[derive(Debug, Clone, Copy)]
struct VendorWindow {
    limit: u32,
    /// Our own count of what is left, decremented as we send.
    remaining: u32,
    reset_at: Instant,
    /// How long a window lasts (learned from consecutive resets; default 60 s).
    length: Duration,
    /// Set when we rolled over on our own: the reset we rolled over from. `reset_at` is
    /// then only a guess, and the first response from a newer window replaces it.
    rolled_from: Option<Instant>,
}

#[derive(Debug)]
struct LimiterState {
    /// Configured budget, requests per second (f64::INFINITY when none is configured).
    budget_rps: f64,
    /// Current token-bucket rate; below the budget after throttling without headers (AIMD).
    rate: f64,
    burst: f64,
    tokens: f64,
    last_refill: Instant,
    blocked_until: Option<Instant>,
    in_flight: u32,
    /// The window of the bucket being worked on (swapped in from `windows`).
    window: Option<VendorWindow>,
    /// The vendor's windows by bucket (Okta counts per endpoint family; most vendors
    /// have one bucket, "").
    windows: HashMap<String, VendorWindow>,
    throttled_count: u64,
    /// The vendor's concurrent limit, learned from a refusal that reported a limit below
    /// what we had in flight, and when: at most that many requests in flight until it
    /// has gone [`CONCURRENCY_CAP_TTL`] without another such refusal.
    in_flight_cap: Option<(u32, Instant)>,
}

/// How long a learned concurrent limit holds without a new refusal (then we find out
/// again whether it still applies).
const CONCURRENCY_CAP_TTL: Duration = Duration::from_secs(60);

/// One per system, shared by all its workers.
#[derive(Debug)]
pub struct RateLimiter {
    system: String,
    state: Mutex<LimiterState>,
    concurrency: Arc<tokio::sync::Semaphore>,
}

/// Held while a request is in flight; returns the concurrency slot when dropped.
pub struct Permit {
    limiter: Arc<RateLimiter>,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.limiter.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
    }
}

/// A snapshot for the console's rate-limit gauge.
#[derive(Debug, Clone, PartialEq)]
pub struct LimiterSnapshot {
    pub limit: Option<u32>,
    pub remaining: Option<u32>,
    pub reset_in: Option<Duration>,
    pub rate_per_sec: f64,
    pub in_flight: u32,
    pub throttled: u64,
}

/// Two resets within a second of each other name the same vendor window.
fn same_window(a: Instant, b: Instant) -> bool {
    a <= b + Duration::from_millis(1000) && a + Duration::from_millis(1000) >= b
}

/// A window length learned from two resets, when it is believable (1 s to an hour).
fn plausible_length(learned: Duration) -> Option<Duration> {
    (learned >= Duration::from_secs(1) && learned <= Duration::from_secs(3600)).then_some(learned)
}

impl RateLimiter {
    /// `requests_per_minute`: the configured budget (None: only the vendor's signals limit us).
    pub fn new(system: &str, requests_per_minute: Option<u32>, concurrency: u32) -> Arc<Self> {
        let budget_rps = requests_per_minute
            .map(|r| r.max(1) as f64 / 60.0)
            .unwrap_or(f64::INFINITY);
        let burst = if budget_rps.is_finite() {
            (budget_rps).clamp(1.0, concurrency.max(1) as f64)
        } else {
            f64::INFINITY
        };
        Arc::new(RateLimiter {
            system: system.to_string(),
            state: Mutex::new(LimiterState {
                budget_rps,
                rate: budget_rps,
                burst,
                tokens: if burst.is_finite() { burst } else { 0.0 },
                last_refill: Instant::now(),
                blocked_until: None,
                in_flight: 0,
                window: None,
                windows: HashMap::new(),
                throttled_count: 0,
                in_flight_cap: None,
            }),
            concurrency: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1) as usize)),
        })
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    /// Wait until a request may be sent.
    pub async fn acquire(self: &Arc<Self>) -> Permit {
        self.acquire_for("").await
    }

    /// Wait until a request counted against the vendor's `bucket` may be sent.
    pub async fn acquire_for(self: &Arc<Self>, bucket: &str) -> Permit {
        let slot = match self.concurrency.clone().acquire_owned().await {
            Ok(s) => s,
            // The semaphore is never closed; if it were, fall back to a fresh one-slot permit.
            Err(_) => Arc::new(tokio::sync::Semaphore::new(1))
                .try_acquire_owned()
                .expect("fresh semaphore has a permit"),
        };
        loop {
            let wait = self.try_take_in(Instant::now(), bucket);
            match wait {
                None => {
                    return Permit {
                        limiter: self.clone(),
                        _slot: slot,
                    };
                }
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }

    /// Take a token if one is available now; otherwise say how long to wait.
    #[cfg(test)]
    fn try_take(&self, now: Instant) -> Option<Duration> {
        self.try_take_in(now, "")
    }

    fn try_take_in(&self, now: Instant, bucket: &str) -> Option<Duration> {
        let mut guard = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let s = &mut *guard;
        s.window = s.windows.remove(bucket);
        let out = Self::take_locked(s, now);
        if let Some(w) = s.window.take() {
            s.windows.insert(bucket.to_string(), w);
        }
        out
    }

    fn take_locked(s: &mut LimiterState, now: Instant) -> Option<Duration> {
        if let Some(b) = s.blocked_until {
            if b > now {
                return Some(b - now);
            }
            s.blocked_until = None;
        }
        if let Some((cap, since)) = s.in_flight_cap {
            if now.saturating_duration_since(since) >= CONCURRENCY_CAP_TTL {
                s.in_flight_cap = None;
            } else if s.in_flight >= cap {
                // Wait for a request in flight to finish.
                return Some(Duration::from_millis(10));
            }
        }
        if let Some(w) = s.window.as_mut() {
            if now >= w.reset_at {
                // The vendor's window has rolled over: assume a fresh allowance until a
                // response tells us otherwise.
                let periods =
                    ((now - w.reset_at).as_secs_f64() / w.length.as_secs_f64()).floor() as u32 + 1;
                w.rolled_from = Some(w.reset_at + w.length * (periods - 1));
                w.reset_at += w.length * periods;
                w.remaining = w.limit;
            }
            if w.remaining == 0 {
                return Some(w.reset_at - now + Duration::from_millis(20));
            }
        }
        if s.rate.is_finite() {
            let dt = now.saturating_duration_since(s.last_refill).as_secs_f64();
            s.tokens = (s.tokens + dt * s.rate).min(s.burst);
            s.last_refill = now;
            if s.tokens < 1.0 {
                return Some(Duration::from_secs_f64((1.0 - s.tokens) / s.rate));
            }
            s.tokens -= 1.0;
        }
        if let Some(w) = s.window.as_mut() {
            w.remaining -= 1;
        }
        s.in_flight += 1;
        None
    }

    /// Feed back what a response said.
    pub fn observe(&self, sig: &RateSignal) {
        self.observe_in(sig, "", Instant::now(), SystemTime::now());
    }

    /// Feed back what a response to a request in `bucket` said.
    pub fn observe_for(&self, bucket: &str, sig: &RateSignal) {
        self.observe_in(sig, bucket, Instant::now(), SystemTime::now());
    }

    #[cfg(test)]
    fn observe_at(&self, sig: &RateSignal, now: Instant, wall: SystemTime) {
        self.observe_in(sig, "", now, wall)
    }

    fn observe_in(&self, sig: &RateSignal, bucket: &str, now: Instant, wall: SystemTime) {
        let mut guard = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let s = &mut *guard;
        s.window = s.windows.remove(bucket);
        Self::observe_locked(s, sig, now, wall);
        if let Some(w) = s.window.take() {
            s.windows.insert(bucket.to_string(), w);
        }
    }

    fn observe_locked(s: &mut LimiterState, sig: &RateSignal, now: Instant, wall: SystemTime) {
        // Our own count already includes every request we sent, so when we are the only
        // client of this quota it is never above the vendor's. The vendor's lower figure wins
        // when someone else spends the same quota or the limit was cut; requests still in
        // flight may then overshoot by at most the concurrency, and the 429 that follows
        // blocks until the reset. (Subtracting every in-flight request instead wastes up to
        // the concurrency in every window; measured: 93.5% of N instead of 100%.)
        let others = 0u32;
        // A refusal reporting a limit below what we have in flight (this request
        // included) is about concurrency, not the window: Okta's concurrent-limit 429s
        // carry the concurrent values in the same X-Rate-Limit-* headers, with a reset
        // that is only an estimate. Keep at most that many in flight; the window we track
        // is left as it is (the refusal is still a refusal: it blocks until its reset).
        let concurrency = sig.throttled && sig.limit.is_some_and(|l| l < s.in_flight);
        if concurrency && let Some(limit) = sig.limit {
            let cap = limit.max(1);
            let cap = s.in_flight_cap.map_or(cap, |(c, _)| c.min(cap));
            s.in_flight_cap = Some((cap, now));
        }
        if !concurrency
            && let (Some(limit), Some(remaining), Some(reset)) =
                (sig.limit, sig.remaining, sig.reset_at)
        {
            let until = reset.duration_since(wall).unwrap_or(Duration::ZERO);
            let reset_at = now + until;
            let reported = remaining.saturating_sub(others);
            match s.window.as_mut() {
                // We rolled over on a guess and the vendor reports a window other than the
                // guessed one: its reset replaces the guess, and the distance from the reset
                // we rolled over from teaches the window's length (when plausible). Our count
                // since the rollover belongs to the window after the one we rolled from, so
                // it only caps a report from that window; a late answer from the window we
                // rolled from stands on its own.
                Some(w)
                    if w.rolled_from.is_some_and(|from| {
                        reset_at > from + Duration::from_millis(500)
                            || !same_window(reset_at, w.reset_at)
                    }) =>
                {
                    let from = w.rolled_from.unwrap_or(reset_at);
                    let length = plausible_length(reset_at.saturating_duration_since(from))
                        .unwrap_or(w.length);
                    let ours = if reset_at > from + Duration::from_millis(500) {
                        w.remaining
                    } else {
                        u32::MAX
                    };
                    *w = VendorWindow {
                        limit,
                        remaining: ours.min(reported).min(limit),
                        reset_at,
                        length,
                        rolled_from: None,
                    };
                }
                // Same window: trust the lower count.
                Some(w) if same_window(reset_at, w.reset_at) => {
                    w.limit = limit;
                    w.remaining = w.remaining.min(reported).min(limit);
                    w.rolled_from = None;
                }
                // A newer window than the one we track: the vendor's word, and the length.
                Some(w) if reset_at > w.reset_at => {
                    *w = VendorWindow {
                        limit,
                        remaining: reported.min(limit),
                        reset_at,
                        length: plausible_length(reset_at - w.reset_at).unwrap_or(w.length),
                        rolled_from: None,
                    };
                }
                Some(_) => {} // a stale response from an older window
                None => {
                    s.window = Some(VendorWindow {
                        limit,
                        remaining: reported.min(limit),
                        reset_at,
                        length: Duration::from_secs(60),
                        rolled_from: None,
                    });
                }
            }
        }
        if sig.throttled {
            s.throttled_count += 1;
            // The refusal's own reset says when to come back. It can be earlier than the
            // window we track (Okta's concurrency 429s carry an estimated reset; another
            // bucket may roll over sooner); then the tracked window is not spent.
            let own_reset = sig
                .reset_at
                .map(|r| now + r.duration_since(wall).unwrap_or(Duration::ZERO));
            let wait = sig
                .retry_after
                .or_else(|| own_reset.map(|r| r.saturating_duration_since(now)))
                .or_else(|| s.window.map(|w| w.reset_at.saturating_duration_since(now)));
            match wait {
                Some(d) => {
                    let until = now + d;
                    s.blocked_until = Some(s.blocked_until.map_or(until, |b| b.max(until)));
                    if let Some(w) = s.window.as_mut()
                        && own_reset.is_none_or(|r| r + Duration::from_millis(1000) >= w.reset_at)
                    {
                        w.remaining = 0;
                    }
                }
                None => {
                    // No signal but "slow down" (AWS Throttling): halve our rate (AIMD).
                    let base = if s.rate.is_finite() { s.rate } else { 10.0 };
                    s.rate = (base / 2.0).max(0.2);
                    s.burst = s.burst.min(s.rate.max(1.0));
                    s.tokens = s.tokens.min(1.0);
                }
            }
        } else if s.rate < s.budget_rps {
            // Additive increase back toward the budget after successes.
            let step = if s.budget_rps.is_finite() {
                s.budget_rps * 0.05
            } else {
                0.5
            };
            s.rate = (s.rate + step).min(s.budget_rps);
            if !s.rate.is_finite() {
                s.burst = f64::INFINITY;
            }
        }
    }

    pub fn snapshot(&self) -> LimiterSnapshot {
        let s = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        // The most constrained bucket.
        let w = s.windows.values().min_by_key(|w| w.remaining).copied();
        LimiterSnapshot {
            limit: w.map(|w| w.limit),
            remaining: w.map(|w| w.remaining),
            reset_in: w.map(|w| w.reset_at.saturating_duration_since(now)),
            rate_per_sec: s.rate,
            in_flight: s.in_flight,
            throttled: s.throttled_count,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Retry policy
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            base: Duration::from_millis(200),
            cap: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(cap, base * 2^(attempt-1))], but never less
    /// than what the vendor asked for.
    pub fn delay(&self, attempt: u32, vendor_wait: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.cap);
        let jitter = Duration::from_secs_f64(rand::random::<f64>() * exp.as_secs_f64());
        match vendor_wait {
            Some(v) => v.max(jitter),
            None => jitter,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Auth and vendor profiles
// ---------------------------------------------------------------------------------------

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

/// How one vendor reports rate limits and errors.
pub trait VendorProfile: Send + Sync {
    /// Which of the vendor's rate-limit buckets a request counts against (most vendors
    /// have one; Okta counts per endpoint family).
    fn bucket(&self, _method: &reqwest::Method, _path: &str) -> String {
        String::new()
    }

    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        RateSignal::generic(status, headers)
    }

    /// Classify a non-2xx response. The default goes by status code.
    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_status(
            system,
            status,
            headers,
            body,
            None,
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string(),
        )
    }
}

/// Classification by HTTP status alone, with the vendor's code and message if known.
pub fn classify_status(
    system: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    code: Option<String>,
    message: String,
) -> AdapterError {
    let class = match status {
        401 => ErrorClass::Unauthorized,
        404 | 410 => ErrorClass::NotFound,
        409 => ErrorClass::Conflict,
        429 => ErrorClass::RateLimited {
            retry_after: retry_after(headers),
        },
        408 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    };
    let message = if message.is_empty() {
        format!("HTTP {status}")
    } else {
        message
    };
    let mut e = AdapterError::new(class, system, message)
        .with_status(status)
        .with_excerpt(body);
    e.vendor_code = code;
    e
}

/// Status-only profile.
pub struct GenericProfile;
impl VendorProfile for GenericProfile {}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

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
        })
    }

    pub fn system(&self) -> &str {
        &self.system
    }

    pub fn base(&self) -> &url::Url {
        &self.base
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

// ---------------------------------------------------------------------------------------
// Pagination helpers
// ---------------------------------------------------------------------------------------

/// The `rel="next"` target of an RFC 8288 Link header (Okta, GitHub).
pub fn link_next(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(reqwest::header::LINK) {
        let Ok(v) = value.to_str() else { continue };
        for part in v.split(',') {
            let mut segs = part.split(';');
            let target = segs.next()?.trim();
            let is_next = segs.any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next && target.starts_with('<') && target.ends_with('>') {
                return Some(target[1..target.len() - 1].to_string());
            }
        }
    }
    None
}

/// SCIM (RFC 7644 §3.4.2.4): the next startIndex, or None when this page was the last.
pub fn scim_next_start(start_index: u64, items_on_page: u64, total_results: u64) -> Option<u64> {
    if items_on_page == 0 {
        return None;
    }
    let next = start_index + items_on_page;
    (next <= total_results).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn okta_and_github_triples_parse() {
        let h = headers(&[
            ("X-Rate-Limit-Limit", "600"),
            ("X-Rate-Limit-Remaining", "599"),
            ("X-Rate-Limit-Reset", "1700000060"),
        ]);
        let s = RateSignal::from_triple(
            200,
            &h,
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
        );
        assert_eq!((s.limit, s.remaining), (Some(600), Some(599)));
        assert_eq!(
            s.reset_at,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_060))
        );
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            RateSignal::generic(429, &h),
            RateSignal {
                retry_after: Some(Duration::from_secs(7)),
                throttled: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn limiter_stops_at_the_vendor_window_and_resumes_after_reset() {
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        assert_eq!(l.try_take(now), None);
        l.observe_at(
            &RateSignal {
                limit: Some(3),
                remaining: Some(2),
                reset_at: Some(wall + Duration::from_secs(10)),
                ..Default::default()
            },
            now,
            wall,
        );
        drop_in_flight(&l);
        assert_eq!(l.try_take(now), None);
        assert_eq!(l.try_take(now), None);
        let wait = l.try_take(now).expect("window exhausted");
        assert!(
            wait >= Duration::from_secs(9) && wait <= Duration::from_secs(11),
            "{wait:?}"
        );
        // After the reset a fresh allowance is assumed.
        assert_eq!(l.try_take(now + Duration::from_secs(11)), None);
    }

    #[test]
    fn limiter_follows_vendor_windows_shorter_than_assumed() {
        // A 2 s window: after our own rollover (which assumes 60 s), the vendor's next
        // reset must replace the guess instead of being ignored as stale.
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        let sig = |remaining, reset_in: u64| RateSignal {
            limit: Some(2),
            remaining: Some(remaining),
            reset_at: Some(wall + Duration::from_secs(reset_in)),
            ..Default::default()
        };
        l.observe_at(&sig(1, 2), now, wall);
        drop_in_flight(&l);
        assert_eq!(l.try_take(now), None);
        assert!(l.try_take(now).is_some(), "window spent");
        let later = now + Duration::from_millis(2100);
        assert_eq!(l.try_take(later), None, "rolled over");
        drop_in_flight(&l);
        l.observe_at(&sig(1, 4), later, wall + Duration::from_millis(2100));
        drop_in_flight(&l);
        assert_eq!(l.try_take(later), None);
        let wait = l.try_take(later).expect("second window spent");
        assert!(
            wait < Duration::from_secs(3),
            "waits for the vendor's reset: {wait:?}"
        );
    }

    #[test]
    fn a_refusal_with_an_earlier_reset_blocks_only_until_that_reset() {
        // The tracked window resets in 40 s; a 429 (a concurrency limit, a burst) says
        // come back in 1 s. Wait 1 s, not 40.
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        l.observe_at(
            &RateSignal {
                limit: Some(1000),
                remaining: Some(900),
                reset_at: Some(wall + Duration::from_secs(40)),
                ..Default::default()
            },
            now,
            wall,
        );
        l.observe_at(
            &RateSignal {
                limit: Some(600),
                remaining: Some(0),
                reset_at: Some(wall + Duration::from_secs(1)),
                throttled: true,
                ..Default::default()
            },
            now,
            wall,
        );
        drop_in_flight(&l);
        let wait = l.try_take(now).expect("blocked");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(l.try_take(now + Duration::from_millis(1100)), None);
        // A refusal for the tracked window itself spends it until its reset.
        l.observe_at(
            &RateSignal {
                limit: Some(1000),
                remaining: Some(0),
                reset_at: Some(wall + Duration::from_secs(40)),
                throttled: true,
                ..Default::default()
            },
            now,
            wall,
        );
        drop_in_flight(&l);
        let wait = l.try_take(now + Duration::from_secs(2)).expect("spent");
        assert!(wait > Duration::from_secs(30), "{wait:?}");
    }

    fn drop_in_flight(l: &RateLimiter) {
        l.state.lock().unwrap().in_flight = 0;
    }

    #[test]
    fn buckets_are_limited_separately() {
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        let spent = RateSignal {
            limit: Some(10),
            remaining: Some(0),
            reset_at: Some(wall + Duration::from_secs(30)),
            ..Default::default()
        };
        l.observe_in(&spent, "users", now, wall);
        assert!(
            l.try_take_in(now, "users").is_some(),
            "the spent bucket waits"
        );
        assert_eq!(
            l.try_take_in(now, "group"),
            None,
            "another bucket is not held up"
        );
        assert_eq!(l.snapshot().remaining, Some(0));
    }

    #[test]
    fn limiter_learns_short_windows_after_rolling_over() {
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        let sig = |remaining, reset| RateSignal {
            limit: Some(2),
            remaining: Some(remaining),
            reset_at: Some(reset),
            ..Default::default()
        };
        l.observe_at(&sig(2, wall + Duration::from_secs(5)), now, wall);
        drop_in_flight(&l);
        assert_eq!(l.try_take(now), None);
        assert_eq!(l.try_take(now), None);
        assert!(l.try_take(now).is_some());
        drop_in_flight(&l);
        // Roll over on our own, then hear from the next (5 s) window.
        let later = now + Duration::from_secs(5) + Duration::from_millis(10);
        assert_eq!(l.try_take(later), None);
        l.observe_at(
            &sig(1, wall + Duration::from_secs(10)),
            later,
            wall + Duration::from_secs(5),
        );
        drop_in_flight(&l);
        assert_eq!(l.snapshot().remaining, Some(1));
        assert_eq!(l.try_take(later), None);
        let wait = l.try_take(later).expect("window used up");
        assert!(
            wait <= Duration::from_millis(5100),
            "waited for a 60 s guess: {wait:?}"
        );
    }

    #[test]
    fn limiter_after_rolling_over_takes_a_late_answer_from_the_old_window_on_its_own() {
        // A response from the window we rolled over from, answered after the rollover,
        // says nothing about the requests we sent since: its count replaces ours instead
        // of being capped by it, and its reset (too close to teach a length) replaces the
        // guess until the next rollover.
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        let sig = |remaining, reset| RateSignal {
            limit: Some(10),
            remaining: Some(remaining),
            reset_at: Some(reset),
            ..Default::default()
        };
        l.observe_at(&sig(10, wall + Duration::from_secs(5)), now, wall);
        drop_in_flight(&l);
        for _ in 0..8 {
            assert_eq!(l.try_take(now), None);
        }
        drop_in_flight(&l);
        // Roll over on our own (guessing 60 s), then spend some of the new window.
        let later = now + Duration::from_millis(5200);
        for _ in 0..7 {
            assert_eq!(l.try_take(later), None);
        }
        drop_in_flight(&l);
        assert_eq!(l.snapshot().remaining, Some(3));
        // The late answer: the old window, 4 left.
        l.observe_at(
            &sig(4, wall + Duration::from_secs(5)),
            later,
            wall + Duration::from_millis(5200),
        );
        assert_eq!(l.snapshot().remaining, Some(4), "not capped by our count");
        // Its reset has passed: the next request rolls over again, to a full window.
        assert_eq!(l.try_take(later + Duration::from_millis(10)), None);
        drop_in_flight(&l);
        assert_eq!(l.snapshot().remaining, Some(9));
    }

    #[test]
    fn a_refusal_below_what_is_in_flight_caps_concurrency_and_spares_the_window() {
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        l.observe_at(
            &RateSignal {
                limit: Some(600),
                remaining: Some(500),
                reset_at: Some(wall + Duration::from_secs(40)),
                ..Default::default()
            },
            now,
            wall,
        );
        drop_in_flight(&l);
        for _ in 0..5 {
            assert_eq!(l.try_take(now), None);
        }
        // Okta's concurrent limit: 2 in flight at once, come back in about a second.
        l.observe_at(
            &RateSignal {
                limit: Some(2),
                remaining: Some(0),
                reset_at: Some(wall + Duration::from_secs(1)),
                throttled: true,
                ..Default::default()
            },
            now,
            wall,
        );
        let snap = l.snapshot();
        assert_eq!(
            (snap.limit, snap.remaining),
            (Some(600), Some(495)),
            "the window is not the concurrent limit"
        );
        assert!(l.try_take(now).is_some(), "blocked until the estimate");
        let later = now + Duration::from_millis(1100);
        assert!(l.try_take(later).is_some(), "5 in flight, 2 allowed");
        l.state.lock().unwrap().in_flight = 1;
        assert_eq!(l.try_take(later), None);
        assert!(l.try_take(later).is_some(), "2 in flight");
        // The cap lapses after a minute without another refusal.
        let much_later = now + CONCURRENCY_CAP_TTL + Duration::from_secs(1);
        assert_eq!(l.try_take(much_later), None);
    }

    #[test]
    fn limiter_adapts_to_a_lowered_limit_within_the_window() {
        let l = RateLimiter::new("s", None, 8);
        let now = Instant::now();
        let wall = SystemTime::now();
        l.observe_at(
            &RateSignal {
                limit: Some(100),
                remaining: Some(90),
                reset_at: Some(wall + Duration::from_secs(30)),
                ..Default::default()
            },
            now,
            wall,
        );
        // The vendor halves its limit: the next response says 50 with 5 left.
        l.observe_at(
            &RateSignal {
                limit: Some(50),
                remaining: Some(5),
                reset_at: Some(wall + Duration::from_secs(30)),
                ..Default::default()
            },
            now,
            wall,
        );
        drop_in_flight(&l);
        for _ in 0..5 {
            assert_eq!(l.try_take(now), None);
        }
        assert!(l.try_take(now).is_some());
        assert_eq!(l.snapshot().limit, Some(50));
    }

    #[test]
    fn retry_after_blocks_and_throttling_without_headers_halves_the_rate() {
        let l = RateLimiter::new("s", Some(600), 4);
        let now = Instant::now();
        l.observe_at(
            &RateSignal {
                retry_after: Some(Duration::from_secs(5)),
                throttled: true,
                ..Default::default()
            },
            now,
            SystemTime::now(),
        );
        let w = l.try_take(now).unwrap();
        assert!(w > Duration::from_secs(4));
        let l = RateLimiter::new("s", Some(600), 4);
        l.observe_at(
            &RateSignal {
                throttled: true,
                ..Default::default()
            },
            now,
            SystemTime::now(),
        );
        assert!((l.snapshot().rate_per_sec - 5.0).abs() < 1e-9);
        for _ in 0..100 {
            l.observe_at(&RateSignal::default(), now, SystemTime::now());
        }
        assert!(
            (l.snapshot().rate_per_sec - 10.0).abs() < 1e-9,
            "recovers to the budget"
        );
    }

    #[test]
    fn budget_bucket_paces_requests() {
        let l = RateLimiter::new("s", Some(60), 1); // 1 per second, burst 1
        let now = Instant::now();
        assert_eq!(l.try_take(now), None);
        let w = l.try_take(now).unwrap();
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
    }

    #[test]
    fn backoff_is_jittered_capped_and_honours_the_vendor() {
        let p = RetryPolicy {
            max_attempts: 5,
            max_elapsed: Duration::from_secs(60),
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let d = p.delay(attempt, None);
            assert!(d <= Duration::from_secs(1));
        }
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn link_header_next() {
        let h = headers(&[(
            "link",
            "<https://x.okta.com/api/v1/users?after=abc&limit=2>; rel=\"next\", <https://x.okta.com/api/v1/users?limit=2>; rel=\"self\"",
        )]);
        assert_eq!(
            link_next(&h).as_deref(),
            Some("https://x.okta.com/api/v1/users?after=abc&limit=2")
        );
        let h = headers(&[("link", "<https://x/a>; rel=\"self\"")]);
        assert_eq!(link_next(&h), None);
    }

    #[test]
    fn scim_paging() {
        assert_eq!(scim_next_start(1, 10, 25), Some(11));
        assert_eq!(scim_next_start(21, 5, 25), None);
        assert_eq!(scim_next_start(1, 0, 25), None);
    }
}
