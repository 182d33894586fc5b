//! Fixed-window rate limits as vendors enforce them: N requests per bucket per window,
//! reported on every response. The limit can be changed at run time (a "sudden cut").

use super::fault::ThrottleStyle;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
struct Bucket {
    limit: u32,
    used: u32,
    window_start: SystemTime,
}

/// The outcome of counting one request against a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// When the window resets, as UTC epoch seconds (what X-Rate-Limit-Reset carries).
    pub reset_epoch: u64,
    /// Seconds until reset, rounded up (for Retry-After).
    pub retry_after_secs: u64,
}

/// Windows are aligned to multiples of the window length since the epoch, like Okta's
/// per-minute buckets.
#[derive(Debug)]
pub struct RateWindows {
    window: Duration,
    default_limit: u32,
    limits: Mutex<HashMap<String, u32>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Total requests refused, for tests and benches.
    refused: std::sync::atomic::AtomicU64,
}

impl RateWindows {
    pub fn new(default_limit: u32, window: Duration) -> Self {
        RateWindows {
            window: window.max(Duration::from_secs(1)),
            default_limit,
            limits: Mutex::new(HashMap::new()),
            buckets: Mutex::new(HashMap::new()),
            refused: Default::default(),
        }
    }

    /// Set one bucket's limit (or every bucket's, with `None`), effective immediately.
    pub fn set_limit(&self, bucket: Option<&str>, limit: u32) {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match bucket {
            Some(b) => {
                limits.insert(b.to_string(), limit);
                if let Some(bk) = buckets.get_mut(b) {
                    bk.limit = limit;
                }
            }
            None => {
                limits.clear();
                limits.insert("*".into(), limit);
                for bk in buckets.values_mut() {
                    bk.limit = limit;
                }
            }
        }
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn window_start(&self, now: SystemTime) -> SystemTime {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let w = self.window.as_millis().max(1);
        let start_ms = since.as_millis() / w * w;
        UNIX_EPOCH + Duration::from_millis(start_ms as u64)
    }

    /// Count one request against `bucket`.
    pub fn hit(&self, bucket: &str) -> WindowState {
        self.hit_at(bucket, SystemTime::now())
    }

    pub fn hit_at(&self, bucket: &str, now: SystemTime) -> WindowState {
        let limit = {
            let limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
            limits
                .get(bucket)
                .or_else(|| limits.get("*"))
                .copied()
                .unwrap_or(self.default_limit)
        };
        let start = self.window_start(now);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let b = buckets.entry(bucket.to_string()).or_insert(Bucket {
            limit,
            used: 0,
            window_start: start,
        });
        if b.window_start != start {
            b.window_start = start;
            b.used = 0;
            b.limit = limit;
        }
        let reset = start + self.window;
        let reset_epoch = reset
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            .ceil() as u64;
        let retry_after_secs = reset
            .duration_since(now)
            .unwrap_or_default()
            .as_secs_f64()
            .ceil()
            .max(1.0) as u64;
        let allowed = b.used < b.limit;
        if allowed {
            b.used += 1;
        } else {
            self.refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        WindowState {
            allowed,
            limit: b.limit,
            remaining: b.limit.saturating_sub(b.used),
            reset_epoch,
            retry_after_secs,
        }
    }
}

/// Enforcing [`RateWindows`] in front of a simulator: which bucket a request counts
/// against, and how a refusal looks.
pub struct Enforcer {
    pub windows: Arc<RateWindows>,
    pub style: ThrottleStyle,
    pub bucket: fn(&Method, &str, &HeaderMap) -> &'static str,
}

/// axum middleware: `layer(from_fn_with_state(Arc<Enforcer>, enforce))`. A spent bucket is
/// refused in the vendor's style ([`ThrottleStyle::refusal`]) with the seconds until its
/// window resets; Okta-style limits also report the bucket on every response.
pub async fn enforce(State(e): State<Arc<Enforcer>>, req: Request, next: Next) -> Response {
    let bucket = (e.bucket)(req.method(), req.uri().path(), req.headers());
    let w = e.windows.hit(bucket);
    let mut resp = if w.allowed {
        next.run(req).await
    } else {
        e.style.refusal(w.retry_after_secs, req.headers())
    };
    if e.style == ThrottleStyle::Okta {
        let h = resp.headers_mut();
        h.insert("x-rate-limit-limit", HeaderValue::from(w.limit));
        h.insert("x-rate-limit-remaining", HeaderValue::from(w.remaining));
        h.insert("x-rate-limit-reset", HeaderValue::from(w.reset_epoch));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_refuses_and_resets() {
        let w = RateWindows::new(2, Duration::from_secs(60));
        let t = UNIX_EPOCH + Duration::from_secs(6000);
        assert!(w.hit_at("a", t).allowed);
        let s = w.hit_at("a", t);
        assert_eq!((s.allowed, s.remaining, s.reset_epoch), (true, 0, 6060));
        assert!(!w.hit_at("a", t).allowed);
        assert!(w.hit_at("b", t).allowed, "buckets are separate");
        assert!(
            w.hit_at("a", t + Duration::from_secs(60)).allowed,
            "new window"
        );
        assert_eq!(w.refused(), 1);
    }

    #[test]
    fn limit_can_be_cut_mid_window() {
        let w = RateWindows::new(10, Duration::from_secs(60));
        let t = UNIX_EPOCH + Duration::from_secs(6000);
        for _ in 0..4 {
            assert!(w.hit_at("a", t).allowed);
        }
        w.set_limit(None, 5);
        let s = w.hit_at("a", t);
        assert_eq!((s.allowed, s.limit, s.remaining), (true, 5, 0));
        assert!(!w.hit_at("a", t).allowed);
    }
}
