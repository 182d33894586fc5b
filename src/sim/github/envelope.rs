//! What every answer goes through: the API version, the caller, the primary and secondary
//! rate limits, the concurrency cap, the route's permission, and the headers GitHub puts
//! on every response (request id, version selected, rate limit, scopes, token expiry,
//! deprecation). Also `GET /rate_limit`.

use super::auth::{self, Caller, Need};
use super::shapes::{self, DOCS, DOCS_RATE, error, json_response};
use super::{GitHubSimOptions, Inner, SecondaryRetryAfter};
use crate::sim::ratelimit::{ConcurrencyLimit, RateWindows, WindowState};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The simulator's rate limits: the shared fixed windows of [`crate::sim::ratelimit`], one
/// set per kind, keyed by caller.
pub(super) struct Limits {
    pub primary: RateWindows,
    pub unauthenticated: RateWindows,
    pub points: RateWindows,
    pub content: RateWindows,
    pub concurrency: Arc<ConcurrencyLimit>,
    /// The primary limits as set (the windows do not say until hit).
    primary_limit: AtomicU32,
    unauthenticated_limit: AtomicU32,
    primary_window_secs: u64,
    /// Each key's primary window after its last counted request (for `GET /rate_limit`).
    last: Mutex<HashMap<String, WindowState>>,
    /// Secondary refusals so far (for [`SecondaryRetryAfter::Alternate`]).
    secondary_refusals: AtomicU64,
}

impl Limits {
    pub(super) fn new(o: &GitHubSimOptions) -> Limits {
        Limits {
            primary: RateWindows::new(o.primary_limit, o.primary_window),
            unauthenticated: RateWindows::new(o.unauthenticated_limit, o.primary_window),
            points: RateWindows::new(o.points_per_window, o.secondary_window),
            content: RateWindows::new(o.content_per_window, o.secondary_window),
            concurrency: ConcurrencyLimit::new(o.concurrency_limit),
            primary_limit: AtomicU32::new(o.primary_limit),
            unauthenticated_limit: AtomicU32::new(o.unauthenticated_limit),
            primary_window_secs: o.primary_window.as_secs().max(1),
            last: Mutex::new(HashMap::new()),
            secondary_refusals: AtomicU64::new(0),
        }
    }

    pub(super) fn set_primary_limit(&self, limit: u32) {
        self.primary.set_limit(None, limit);
        self.primary_limit.store(limit, Ordering::Release);
    }

    /// Count one request against `key`'s primary window.
    fn hit(&self, key: &str, authenticated: bool) -> WindowState {
        let w = if authenticated {
            self.primary.hit(key)
        } else {
            self.unauthenticated.hit(key)
        };
        self.last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), w);
        w
    }

    /// `key`'s primary window without counting (a new window when the last one ended).
    pub(super) fn peek(&self, key: &str, authenticated: bool) -> WindowState {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let last = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied();
        match last {
            Some(w) if w.reset_epoch > now => w,
            _ => {
                let limit = if authenticated {
                    self.primary_limit.load(Ordering::Acquire)
                } else {
                    self.unauthenticated_limit.load(Ordering::Acquire)
                };
                let w = self.primary_window_secs;
                WindowState {
                    allowed: true,
                    limit,
                    remaining: limit,
                    reset_epoch: (now / w + 1) * w,
                    retry_after_secs: w,
                }
            }
        }
    }

    /// Charge `points` (and one content-creating request when `creates`) against `key`'s
    /// secondary windows; the seconds until the spent window ends when refused.
    fn secondary(&self, key: &str, points: u32, creates: bool) -> Option<u64> {
        for _ in 0..points {
            let w = self.points.hit(key);
            if !w.allowed {
                return Some(w.retry_after_secs);
            }
        }
        if creates {
            let w = self.content.hit(key);
            if !w.allowed {
                return Some(w.retry_after_secs);
            }
        }
        None
    }

    /// Whether this secondary refusal carries `retry-after`.
    fn tells_retry_after(&self, mode: SecondaryRetryAfter) -> bool {
        let n = self.secondary_refusals.fetch_add(1, Ordering::Relaxed);
        match mode {
            SecondaryRetryAfter::Always => true,
            SecondaryRetryAfter::Never => false,
            SecondaryRetryAfter::Alternate => n.is_multiple_of(2),
        }
    }
}

/// Marks a response whose `x-ratelimit-reset` must be left out (a secondary refusal
/// without `retry-after`).
#[derive(Debug, Clone, Copy)]
struct NoReset;

/// `E4A2:3B1F7:1C9D2E4:1D2A6F0:6650F2A1`, the shape of GitHub's request ids.
fn request_id() -> String {
    let mut rng = rand::rng();
    format!(
        "{:04X}:{:05X}:{:07X}:{:07X}:{:08X}",
        rng.random::<u16>(),
        rng.random::<u32>() & 0xFFFFF,
        rng.random::<u32>() & 0xFFFFFFF,
        rng.random::<u32>() & 0xFFFFFFF,
        rng.random::<u32>()
    )
}

/// The version a request selects, or GitHub's 400 (unsupported) / 410 (retired).
fn select_version(inner: &Inner, headers: &HeaderMap) -> Result<String, Response> {
    let settings = inner.settings();
    let Some(asked) = headers.get("x-github-api-version") else {
        return Ok(super::DEFAULT_API_VERSION.to_string());
    };
    let asked = asked.to_str().unwrap_or("").trim().to_string();
    if settings.retired_versions.contains(&asked) {
        return Err(error(
            StatusCode::GONE,
            &format!("API version {asked} is no longer supported."),
            "https://docs.github.com/rest/about-the-rest-api/api-versions",
        ));
    }
    if settings.api_versions.contains(&asked) {
        return Ok(asked);
    }
    let mut versions: Vec<&String> = settings.api_versions.iter().collect();
    versions.sort_by(|a, b| b.cmp(a));
    let listed: Vec<String> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if i == 0 {
                format!("\"{v}\" (most recent)")
            } else {
                format!("\"{v}\"")
            }
        })
        .collect();
    Err(error(
        StatusCode::BAD_REQUEST,
        &format!(
            "The version you specified in the \"X-GitHub-API-Version\" request header, \"{asked}\", is not a supported version. The following versions are currently supported: {}.",
            listed.join(", ")
        ),
        DOCS,
    ))
}

fn primary_refusal(inner: &Inner, subject: &str, request_id: &str) -> Response {
    let status =
        StatusCode::from_u16(inner.settings().rate_limit_status).unwrap_or(StatusCode::FORBIDDEN);
    let at = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC");
    error(
        status,
        &format!(
            "API rate limit exceeded for {subject}. If you reach out to GitHub Support for help, please include the request ID {request_id} and timestamp {at}."
        ),
        DOCS_RATE,
    )
}

/// A secondary-limit refusal. `wait` is the seconds until the spent window ends, told in
/// `retry-after` as [`SecondaryRetryAfter`] says; None (too many requests in flight) is
/// never told.
fn secondary_refusal(inner: &Inner, wait: Option<u64>) -> Response {
    let (status, mode) = {
        let s = inner.settings();
        (s.rate_limit_status, s.secondary_retry_after)
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    match wait.filter(|_| inner.limits.tells_retry_after(mode)) {
        Some(secs) => shapes::secondary_limit_with(status, Some(secs)),
        None => {
            let mut r = shapes::secondary_limit_with(status, None);
            r.extensions_mut().insert(NoReset);
            r
        }
    }
}

/// axum middleware around every route (inside the request log, outside the faults).
pub(super) async fn envelope(
    State(inner): State<Arc<Inner>>,
    mut req: Request,
    next: Next,
) -> Response {
    let request_id = request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".into());
    let (caller, auth_refusal) = split(auth::authenticate(&inner, req.headers()));
    let (key, authenticated) = match &caller {
        Some(c) => (c.rate_key(), true),
        None => (format!("ip:{peer}"), false),
    };
    let window = if path == "/rate_limit" {
        inner.limits.peek(&key, authenticated)
    } else {
        inner.limits.hit(&key, authenticated)
    };
    let need = auth::need(&method, &path);
    let (version, version_refusal) = split(select_version(&inner, req.headers()));
    let resp = match (version_refusal.or(auth_refusal), &caller) {
        (Some(refusal), _) => refusal,
        (None, None) => shapes::not_found(DOCS),
        (None, Some(c)) if !window.allowed => {
            primary_refusal(&inner, &c.rate_subject(), &request_id)
        }
        (None, Some(c)) => {
            let write = method != Method::GET && method != Method::HEAD;
            let creates = method == Method::POST || method == Method::PUT;
            let points = if write { 5 } else { 1 };
            if let Some(wait) = inner.limits.secondary(&key, points, creates) {
                secondary_refusal(&inner, Some(wait))
            } else if let Err(r) = auth::authorize(&inner, c, need) {
                r
            } else if let Some(slot) = inner.limits.concurrency.try_enter() {
                req.extensions_mut().insert(c.clone());
                let r = next.run(req).await;
                drop(slot);
                r
            } else {
                secondary_refusal(&inner, None)
            }
        }
    };
    let stamp = Stamp {
        request_id,
        version,
        caller,
        window,
        need,
    };
    stamp.apply(&inner, resp)
}

fn split<T>(r: Result<T, Response>) -> (Option<T>, Option<Response>) {
    match r {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    }
}

/// The headers GitHub puts on every answer.
struct Stamp {
    request_id: String,
    version: Option<String>,
    caller: Option<Caller>,
    window: WindowState,
    need: Need,
}

fn set(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(HeaderName::from_static(name), v);
    }
}

impl Stamp {
    fn apply(self, inner: &Inner, mut resp: Response) -> Response {
        let no_reset = resp.extensions().get::<NoReset>().is_some();
        let h = resp.headers_mut();
        let w = self.window;
        set(h, "x-github-request-id", &self.request_id);
        set(h, "x-github-media-type", "github.v3; format=json");
        set(h, "x-ratelimit-limit", &w.limit.to_string());
        set(h, "x-ratelimit-remaining", &w.remaining.to_string());
        set(h, "x-ratelimit-used", &(w.limit - w.remaining).to_string());
        set(h, "x-ratelimit-resource", "core");
        if !no_reset {
            set(h, "x-ratelimit-reset", &w.reset_epoch.to_string());
        }
        if let Some(v) = &self.version {
            set(h, "x-github-api-version-selected", v);
            let settings = inner.settings();
            if let Some(d) = settings
                .deprecated_versions
                .iter()
                .find(|d| &d.version == v)
            {
                set(h, "deprecation", &httpdate::fmt_http_date(d.deprecation));
                set(h, "sunset", &httpdate::fmt_http_date(d.sunset));
            }
        }
        match &self.caller {
            Some(Caller::User {
                fine_grained: false,
                scopes,
                expires_at,
                ..
            }) => {
                set(h, "x-oauth-scopes", &scopes.join(", "));
                set(
                    h,
                    "x-accepted-oauth-scopes",
                    auth::accepted_scopes(self.need),
                );
                set_expiry(h, expires_at);
            }
            Some(Caller::User {
                fine_grained: true,
                expires_at,
                ..
            }) => {
                set_permissions_header(h, self.need);
                set_expiry(h, expires_at);
            }
            Some(Caller::Installation { .. }) => set_permissions_header(h, self.need),
            _ => {}
        }
        resp
    }
}

fn set_expiry(h: &mut HeaderMap, expires_at: &Option<chrono::DateTime<chrono::Utc>>) {
    if let Some(at) = expires_at {
        let v = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        set(h, "github-authentication-token-expiration", &v);
    }
}

fn set_permissions_header(h: &mut HeaderMap, need: Need) {
    if let Need::Members { write, .. } = need {
        let v = if write {
            "members=write"
        } else {
            "members=read"
        };
        set(h, "x-accepted-github-permissions", v);
    }
}

/// `GET /rate_limit`: the caller's primary window (not counted) per resource.
pub(super) async fn rate_limit(
    State(inner): State<Arc<Inner>>,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let Some(caller) = caller else {
        return error(StatusCode::UNAUTHORIZED, "Requires authentication", DOCS);
    };
    let w = inner.limits.peek(&caller.0.rate_key(), true);
    let core = json!({
        "limit": w.limit, "remaining": w.remaining, "reset": w.reset_epoch,
        "used": w.limit - w.remaining, "resource": "core",
    });
    let other = |name: &str, limit: u32| json!({"limit": limit, "remaining": limit, "reset": w.reset_epoch, "used": 0, "resource": name});
    json_response(
        StatusCode::OK,
        json!({
            "resources": {
                "core": core,
                "search": other("search", 30),
                "graphql": other("graphql", 5000),
                "integration_manifest": other("integration_manifest", 5000),
            },
            "rate": core,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(points: u32, content: u32) -> Limits {
        Limits::new(&GitHubSimOptions {
            primary_limit: 3,
            points_per_window: points,
            content_per_window: content,
            secondary_window: Duration::from_secs(60),
            ..Default::default()
        })
    }

    #[test]
    fn primary_counts_per_key_and_peek_does_not_count() {
        let l = limits(900, 80);
        assert_eq!(l.peek("user:1", true).remaining, 3, "never hit: full");
        assert!(l.hit("user:1", true).allowed);
        let w = l.hit("user:1", true);
        assert_eq!((w.limit, w.remaining), (3, 1));
        assert_eq!(
            l.peek("user:1", true).remaining,
            1,
            "peeking counts nothing"
        );
        assert!(l.hit("user:1", true).allowed);
        let spent = l.hit("user:1", true);
        assert_eq!((spent.allowed, spent.remaining), (false, 0));
        assert!(l.hit("user:2", true).allowed, "another user has their own");
        assert_eq!(l.peek("ip:1.2.3.4", false).limit, 60);
        l.set_primary_limit(10);
        assert_eq!(l.peek("user:3", true).limit, 10);
    }

    #[test]
    fn secondary_charges_points_and_content_creating_requests() {
        let l = limits(10, 2);
        // Two writes (5 points each) spend the points.
        assert_eq!(l.secondary("k", 5, false), None);
        assert_eq!(l.secondary("k", 5, false), None);
        assert!(
            l.secondary("k", 1, false)
                .is_some_and(|s| (1..=60).contains(&s))
        );
        // Content-creating requests have their own count.
        let l = limits(900, 2);
        assert_eq!(l.secondary("k", 5, true), None);
        assert_eq!(l.secondary("k", 5, true), None);
        assert!(l.secondary("k", 5, true).is_some());
        assert_eq!(l.secondary("k", 1, false), None, "reads still go");
    }

    #[test]
    fn alternate_refusals_tell_retry_after_every_other_time() {
        let l = limits(1, 1);
        let told: Vec<bool> = (0..4)
            .map(|_| l.tells_retry_after(SecondaryRetryAfter::Alternate))
            .collect();
        assert_eq!(told, [true, false, true, false]);
        assert!(!l.tells_retry_after(SecondaryRetryAfter::Never));
        assert!(l.tells_retry_after(SecondaryRetryAfter::Always));
    }

    #[test]
    fn request_ids_have_githubs_shape() {
        let id = request_id();
        let parts: Vec<&str> = id.split(':').collect();
        assert_eq!(parts.len(), 5, "{id}");
        assert!(
            parts.iter().all(|p| u64::from_str_radix(p, 16).is_ok()),
            "{id}"
        );
    }
}
