//! Unit tests of `limiter`.

use super::*;
use crate::adapters::kit::testkit::headers;

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

#[test]
fn a_secondary_limit_refusal_blocks_for_its_wait_and_leaves_the_primary_window_unspent() {
    // GitHub: the primary window (an hour, plenty left) rides on a secondary-limit 403
    // whose wait is a minute. Come back in a minute, not in an hour.
    let l = RateLimiter::new("gh", None, 8);
    let now = Instant::now();
    let wall = SystemTime::now();
    let primary = |throttled: bool, retry_after: Option<Duration>| RateSignal {
        limit: Some(5000),
        remaining: Some(4990),
        reset_at: Some(wall + Duration::from_secs(3600)),
        throttled,
        retry_after,
    };
    l.observe_at(&primary(false, None), now, wall);
    l.observe_at(&primary(true, Some(Duration::from_secs(60))), now, wall);
    drop_in_flight(&l);
    let wait = l.try_take(now).expect("blocked");
    assert!(wait <= Duration::from_secs(60), "{wait:?}");
    assert_eq!(
        l.try_take(now + Duration::from_secs(61)),
        None,
        "not an hour"
    );
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
