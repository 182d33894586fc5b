//! `accessdesk bench limiter`: the adaptive rate limiter against a simulated vendor.
//!
//! 8 workers share one system whose simulator allows N requests per window and reports it
//! with Okta's X-Rate-Limit-* headers. Halfway through, the simulator halves its limit.
//! We measure, for our adaptive limiter and for a fixed-window limiter like the seed
//! design's (N per window counted from its own start, ignoring the vendor's headers), in
//! the same run against two identical simulators:
//! - steady throughput as a share of N, and 429s after the first window;
//! - after the cut, 429s from the first full window after it, and throughput as a share of N/2.
//!
//! Windows are scaled down (default 5 s) so the bench takes half a minute; the vendor's
//! per-minute semantics are the same at any window length.

use super::BenchReport;
use crate::adapters::auth::NoAuth;
use crate::adapters::http::{HttpClient, RateLimiter, RateSignal, Req, RetryPolicy, Timeouts};
use crate::adapters::kit::errors::VendorProfile;
use crate::sim::SimServer;
use crate::sim::ratelimit::RateWindows;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The baseline does not read the vendor's headers at all.
struct Blind;
impl VendorProfile for Blind {
    fn rate_signal(
        &self,
        _status: u16,
        _headers: &reqwest::header::HeaderMap,
        _body: &[u8],
    ) -> RateSignal {
        RateSignal::default()
    }
}

struct OktaHeaders;
impl VendorProfile for OktaHeaders {
    fn rate_signal(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        _body: &[u8],
    ) -> RateSignal {
        RateSignal::from_triple(
            status,
            headers,
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
        )
    }
}

async fn spawn_sim(windows: Arc<RateWindows>, latency: Duration) -> std::io::Result<SimServer> {
    let app = axum::Router::new().route(
        "/api/v1/ping",
        axum::routing::get(move || {
            let windows = windows.clone();
            async move {
                tokio::time::sleep(latency).await;
                let s = windows.hit("ping");
                let mut h = HeaderMap::new();
                h.insert("x-rate-limit-limit", HeaderValue::from(s.limit));
                h.insert("x-rate-limit-remaining", HeaderValue::from(s.remaining));
                h.insert("x-rate-limit-reset", HeaderValue::from(s.reset_epoch));
                if s.allowed {
                    (StatusCode::OK, h, "{}").into_response()
                } else {
                    (StatusCode::TOO_MANY_REQUESTS, h, r#"{"errorCode":"E0000047","errorSummary":"API call exceeded rate limit due to too many requests."}"#).into_response()
                }
            }
        }),
    );
    SimServer::spawn(app).await
}

/// The seed design's limiter: N per fixed window counted from its own first request.
struct FixedWindow {
    limit: u32,
    window: Duration,
    state: Mutex<(Instant, u32)>,
}

impl FixedWindow {
    async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                if now >= s.0 + self.window {
                    let periods =
                        ((now - s.0).as_secs_f64() / self.window.as_secs_f64()).floor() as u32;
                    s.0 += self.window * periods;
                    s.1 = 0;
                }
                if s.1 < self.limit {
                    s.1 += 1;
                    None
                } else {
                    Some(s.0 + self.window - now)
                }
            };
            match wait {
                None => return,
                Some(d) => tokio::time::sleep(d).await,
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: SystemTime,
    ok: bool,
}

/// Which window (index since the epoch) a time falls in.
fn window_of(t: SystemTime, w: Duration) -> u64 {
    (t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() / w.as_millis().max(1)) as u64
}

struct Figures {
    steady_pct: f64,
    steady_429: usize,
    cut_429_after_one_window: usize,
    cut_pct: f64,
    total_429: usize,
}

fn figures(
    samples: &[Sample],
    w: Duration,
    n: u32,
    first: u64,
    cut_window: u64,
    last: u64,
) -> Figures {
    let count = |pred: &dyn Fn(u64, bool) -> bool| {
        samples
            .iter()
            .filter(|s| pred(window_of(s.at, w), s.ok))
            .count()
    };
    // Steady: the full windows after the first and before the cut.
    let steady_windows = cut_window.saturating_sub(first + 1).max(1);
    let steady_ok = count(&|wi, ok| ok && wi > first && wi < cut_window);
    let steady_429 = count(&|wi, ok| !ok && wi > first && wi < cut_window);
    // After the cut: from the first full window after the cut window.
    let after_windows = last.saturating_sub(cut_window + 1).max(1);
    let after_ok = count(&|wi, ok| ok && wi > cut_window && wi < last);
    let after_429 = count(&|wi, ok| !ok && wi > cut_window && wi < last);
    Figures {
        steady_pct: 100.0 * steady_ok as f64 / (n as f64 * steady_windows as f64),
        steady_429,
        cut_429_after_one_window: after_429,
        cut_pct: 100.0 * after_ok as f64 / ((n / 2) as f64 * after_windows as f64),
        total_429: samples.iter().filter(|s| !s.ok).count(),
    }
}

/// Run the scenario for one limiter kind. `adaptive` picks ours or the fixed window.
async fn scenario(
    adaptive: bool,
    n: u32,
    w: Duration,
    windows_total: u64,
    workers: usize,
) -> std::io::Result<(Vec<Sample>, u64, u64, u64)> {
    let rw = Arc::new(RateWindows::new(n, w));
    let sim = spawn_sim(rw.clone(), Duration::from_millis(5)).await?;
    let limiter = RateLimiter::new("bench", None, workers as u32);
    let profile: Arc<dyn VendorProfile> = if adaptive {
        Arc::new(OktaHeaders)
    } else {
        Arc::new(Blind)
    };
    let mut client = HttpClient::new(
        "bench",
        &sim.base_url(),
        Timeouts::default(),
        limiter,
        Arc::new(NoAuth),
        profile,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    // Count every refusal: no retries inside the client.
    client.retry = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let client = Arc::new(client);
    let fixed = Arc::new(FixedWindow {
        limit: n,
        window: w,
        state: Mutex::new((Instant::now(), 0)),
    });
    let start_window = window_of(SystemTime::now(), w);
    let end_window = start_window + windows_total;
    let cut_window = start_window + windows_total / 2;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (client, fixed, samples) = (client.clone(), fixed.clone(), samples.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if window_of(SystemTime::now(), w) >= end_window {
                    break;
                }
                if !adaptive {
                    fixed.acquire().await;
                }
                let r = client.send(Req::get("/api/v1/ping")).await;
                let s = Sample {
                    at: SystemTime::now(),
                    ok: r.is_ok(),
                };
                samples.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            }
        }));
    }
    // The sudden cut, at the start of the cut window.
    let cut_at = UNIX_EPOCH + w * cut_window as u32;
    if let Ok(d) = cut_at.duration_since(SystemTime::now()) {
        tokio::time::sleep(d).await;
    }
    rw.set_limit(None, n / 2);
    for t in tasks {
        let _ = t.await;
    }
    sim.stop().await;
    let v = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((v, start_window, cut_window, end_window))
}

pub fn run(n: u32, window: Duration, windows_total: u64) -> crate::Result<BenchReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| crate::Error::io("starting the async runtime", e))?;
    let (ours, base) = rt.block_on(async {
        let a = scenario(true, n, window, windows_total, 8);
        let b = scenario(false, n, window, windows_total, 8);
        tokio::join!(a, b)
    });
    let (ours, s0, cut, end) =
        ours.map_err(|e| crate::Error::io("running the limiter bench", e))?;
    let (base, b0, bcut, bend) =
        base.map_err(|e| crate::Error::io("running the limiter bench", e))?;
    let f = figures(&ours, window, n, s0, cut, end);
    let g = figures(&base, window, n, b0, bcut, bend);
    let mut r = BenchReport::new("limiter");
    let label = format!("N={n} per {} s window, 8 workers", window.as_secs());
    r.push(
        &format!("adaptive: steady throughput, % of N ({label})"),
        f.steady_pct,
        "%",
        Some(95.0),
        "higher",
    );
    r.push(
        "adaptive: 429s after the first window (steady)",
        f.steady_429 as f64,
        "429s",
        Some(0.0),
        "lower",
    );
    r.push(
        "adaptive: 429s from one window after the cut",
        f.cut_429_after_one_window as f64,
        "429s",
        Some(0.0),
        "lower",
    );
    r.push(
        "adaptive: throughput after the cut, % of N/2",
        f.cut_pct,
        "%",
        Some(95.0),
        "higher",
    );
    r.push(
        "adaptive: 429s in the whole run",
        f.total_429 as f64,
        "429s",
        None,
        "lower",
    );
    r.push(
        "fixed window (seed): steady throughput, % of N",
        g.steady_pct,
        "%",
        None,
        "higher",
    );
    r.push(
        "fixed window (seed): 429s after the first window (steady)",
        g.steady_429 as f64,
        "429s",
        None,
        "lower",
    );
    r.push(
        "fixed window (seed): 429s from one window after the cut",
        g.cut_429_after_one_window as f64,
        "429s",
        None,
        "lower",
    );
    r.push(
        "fixed window (seed): throughput after the cut, % of N/2",
        g.cut_pct,
        "%",
        None,
        "higher",
    );
    r.push(
        "fixed window (seed): 429s in the whole run",
        g.total_429 as f64,
        "429s",
        None,
        "lower",
    );
    Ok(r)
}
