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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

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
}
