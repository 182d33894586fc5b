//! Fixed-window rate limits as vendors enforce them: N requests per bucket per window,
//! reported on every response. The limit can be changed at run time (a "sudden cut").
//! And concurrency limits: at most N requests in flight at once ([`ConcurrencyLimit`],
//! Okta's "concurrent rate limit"), refused in the vendor's style.

use super::fault::ThrottleStyle;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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

/// A limit on requests in flight at once, per org or account (Okta: 75 concurrent API
/// transactions by default). 0 means no limit. It can be changed at run time.
#[derive(Debug, Default)]
pub struct ConcurrencyLimit {
    limit: AtomicU32,
    in_flight: AtomicU32,
    peak: AtomicU32,
    refused: AtomicU64,
}

/// One admitted request; frees its slot when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<ConcurrencyLimit>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyLimit {
    /// `limit` requests at once (0: unlimited).
    pub fn new(limit: u32) -> Arc<Self> {
        Arc::new(ConcurrencyLimit {
            limit: AtomicU32::new(limit),
            ..Default::default()
        })
    }

    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Release);
    }

    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    /// Requests refused because too many were in flight.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The most requests admitted at once so far.
    pub fn peak(&self) -> u32 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Admit one request, or None when the limit is reached (counted as refused).
    pub fn try_enter(self: &Arc<Self>) -> Option<InFlight> {
        let mut current = self.in_flight.load(Ordering::Acquire);
        loop {
            let limit = self.limit();
            if limit > 0 && current >= limit {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.peak.fetch_max(current + 1, Ordering::Relaxed);
                    return Some(InFlight(self.clone()));
                }
                Err(now) => current = now,
            }
        }
    }
}

/// Enforcing a [`ConcurrencyLimit`] in front of a simulator: a request over the limit is
/// refused in the vendor's style ([`ThrottleStyle::concurrency_refusal`]). The slot is
/// held for the whole answer, so it belongs outside the latency and fault layers.
pub struct ConcurrencyEnforcer {
    pub limit: Arc<ConcurrencyLimit>,
    pub style: ThrottleStyle,
}

/// axum middleware: `layer(from_fn_with_state(Arc<ConcurrencyEnforcer>, limit_concurrency))`.
pub async fn limit_concurrency(
    State(e): State<Arc<ConcurrencyEnforcer>>,
    req: Request,
    next: Next,
) -> Response {
    match e.limit.try_enter() {
        Some(slot) => {
            let resp = next.run(req).await;
            drop(slot);
            resp
        }
        None => e.style.concurrency_refusal(e.limit.limit(), req.headers()),
    }
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

    #[test]
    fn concurrency_is_limited_and_slots_come_back() {
        let c = ConcurrencyLimit::new(2);
        let a = c.try_enter().expect("first");
        let b = c.try_enter().expect("second");
        assert!(c.try_enter().is_none(), "a third is refused");
        assert_eq!(c.refused(), 1);
        drop(a);
        let _c = c.try_enter().expect("a slot came back");
        drop(b);
        c.set_limit(0);
        let many: Vec<_> = (0..10).filter_map(|_| c.try_enter()).collect();
        assert_eq!(many.len(), 10, "0 is unlimited");
        assert_eq!(c.peak(), 11);
    }
}
