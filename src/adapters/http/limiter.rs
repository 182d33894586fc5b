//! One adaptive rate limiter per system, shared by all of that system's workers: a token
//! bucket for the budget in systems.toml, plus the vendor's own signals (Okta's
//! X-Rate-Limit-*, GitHub's x-ratelimit-*, Retry-After, AWS Throttling), per bucket.

use reqwest::header::HeaderMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
                    // A refusal that says requests remain (GitHub's secondary limits
                    // carry the primary window's headers) leaves that window unspent.
                    if let Some(w) = s.window.as_mut()
                        && own_reset.is_none_or(|r| r + Duration::from_millis(1000) >= w.reset_at)
                        && sig.remaining.is_none_or(|r| r == 0)
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

#[cfg(test)]
mod tests;
