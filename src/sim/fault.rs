//! Fault profiles: what can go wrong between an adapter and a vendor, and how often.
//!
//! A [`Faults`] handle is shared by a simulator (or the fault proxy) and whoever steers it
//! (a test, the demo). Its middleware decides per request, with a seeded RNG, whether to
//! answer normally or inject: a 429 burst, a 5xx, a timeout, a connection reset, a slow
//! answer, or an outage ("down"). Eventual-consistency delays are applied by the stateful
//! simulators themselves ([`Faults::visibility_delay`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often each fault happens. Rates are probabilities per request (0.0-1.0).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultProfile {
    /// Chance that a request starts a burst of 429s.
    pub burst_429_rate: f64,
    /// How many consecutive requests a 429 burst refuses.
    pub burst_429_len: u32,
    /// Retry-After the injected 429s carry, in seconds.
    pub burst_retry_after_secs: u64,
    pub error_5xx_rate: f64,
    /// Chance of holding the request past the client's timeout.
    pub timeout_rate: f64,
    pub timeout_delay: Duration,
    /// Chance of dropping the connection mid-response.
    pub reset_rate: f64,
    pub slow_rate: f64,
    pub slow_delay: Duration,
    /// How long a write takes to become visible to reads.
    pub visibility_delay: Duration,
    /// Every answer takes a uniformly random time in this range (network + vendor latency).
    pub latency: Option<(Duration, Duration)>,
    pub seed: u64,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            burst_429_rate: 0.0,
            burst_429_len: 5,
            burst_retry_after_secs: 1,
            error_5xx_rate: 0.0,
            timeout_rate: 0.0,
            timeout_delay: Duration::from_secs(35),
            reset_rate: 0.0,
            slow_rate: 0.0,
            slow_delay: Duration::from_millis(500),
            visibility_delay: Duration::ZERO,
            latency: None,
            seed: 7,
        }
    }
}

impl FaultProfile {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// An even mix of faults adding up to about `rate` of requests.
    pub fn mixed(rate: f64, seed: u64) -> Self {
        FaultProfile {
            burst_429_rate: rate * 0.2 / 3.0,
            burst_429_len: 3,
            error_5xx_rate: rate * 0.3,
            timeout_rate: rate * 0.1,
            timeout_delay: Duration::from_secs(3),
            reset_rate: rate * 0.2,
            slow_rate: rate * 0.2,
            slow_delay: Duration::from_millis(150),
            seed,
            ..Self::default()
        }
    }
}

/// How a rate-limit refusal (and an injected server error) looks, per vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleStyle {
    /// 429 with Retry-After and a generic JSON body (Slack, Graph).
    RetryAfter429,
    /// SCIM service providers: 429 with Retry-After and a SCIM error body (RFC 7644 §3.12;
    /// SCIM has no rate-limit headers of its own).
    Scim,
    /// Okta: 429 with X-Rate-Limit-* and errorCode E0000047.
    Okta,
    /// AWS query APIs (IAM, STS): HTTP 400, `<Code>Throttling</Code>`, no Retry-After.
    AwsQuery,
    /// AWS JSON 1.1 APIs (identity store): HTTP 400, `__type` ThrottlingException with
    /// `RetryAfterSeconds`.
    AwsJson,
    /// One endpoint serving both AWS protocols: JSON for requests with `X-Amz-Target`,
    /// query XML for the others.
    Aws,
    /// Google APIs (Admin SDK Directory): 403 with reason `userRateLimitExceeded` and no
    /// Retry-After or remaining headers; too many at once, 403 `quotaExceeded`; server
    /// errors 503 `backendError` (bodies from [`super::google::error`]).
    Google,
    /// Microsoft Graph: 429 `TooManyRequests` with Retry-After seconds; server errors 503
    /// `serviceNotAvailable` with Retry-After (bodies from [`super::entra::error`], with
    /// `innerError` dates and request ids).
    Graph,
    /// GitHub: 403 "You have exceeded a secondary rate limit" (with `retry-after`; a
    /// concurrency refusal without), server errors as GitHub's `{"message": …}` 503.
    GitHub,
    /// Slack's Web API: 429 with Retry-After and `{"ok": false, "error": "ratelimited"}`;
    /// a server error as Slack reports most failures, HTTP 200 with `ok: false`
    /// (`internal_error`).
    Slack,
}

const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

impl ThrottleStyle {
    /// The concrete style for one request (resolves [`ThrottleStyle::Aws`]).
    pub fn for_request(self, req: &HeaderMap) -> ThrottleStyle {
        match self {
            ThrottleStyle::Aws if req.contains_key("x-amz-target") => ThrottleStyle::AwsJson,
            ThrottleStyle::Aws => ThrottleStyle::AwsQuery,
            other => other,
        }
    }

    /// A rate-limit refusal that tells (where the vendor does) to wait `retry_after_secs`.
    pub fn refusal(self, retry_after_secs: u64, req: &HeaderMap) -> Response {
        match self.for_request(req) {
            ThrottleStyle::RetryAfter429 => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    axum::Json(
                        serde_json::json!({"error": "rate_limited", "detail": "Too many requests"}),
                    ),
                )
                    .into_response();
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(retry_after_secs));
                r
            }
            ThrottleStyle::Scim => {
                let mut r = scim_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests; retry after the time given in Retry-After.",
                );
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(retry_after_secs));
                r
            }
            ThrottleStyle::Okta => okta_429(600, retry_after_secs),
            ThrottleStyle::AwsQuery | ThrottleStyle::Aws => {
                let mut r = aws_query_error(
                    StatusCode::BAD_REQUEST,
                    "Sender",
                    "Throttling",
                    "Rate exceeded",
                );
                r.headers_mut().insert(
                    "x-amzn-errortype",
                    HeaderValue::from_static("ThrottlingException"),
                );
                r
            }
            ThrottleStyle::AwsJson => {
                let body = serde_json::json!({
                    "__type": "ThrottlingException",
                    "Message": "Rate exceeded",
                    "RequestId": request_id(),
                    "RetryAfterSeconds": retry_after_secs,
                });
                aws_json_response(StatusCode::BAD_REQUEST, "ThrottlingException", body)
            }
            ThrottleStyle::Google => super::google::error(
                StatusCode::FORBIDDEN,
                "userRateLimitExceeded",
                super::google::QPM_EXCEEDED,
            ),
            ThrottleStyle::Graph => {
                let mut r = super::entra::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests.",
                );
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(retry_after_secs));
                r
            }
            ThrottleStyle::GitHub => super::github::secondary_limit(Some(retry_after_secs)),
            ThrottleStyle::Slack => super::slack::failure(
                StatusCode::TOO_MANY_REQUESTS,
                "ratelimited",
                Some(retry_after_secs),
            ),
        }
    }

    /// A refusal because more than `limit` requests were in flight at once. Okta answers
    /// as for a spent rate limit (429, `E0000047`), with the X-Rate-Limit-* headers
    /// reporting the concurrency limit, none remaining, and an estimated reset a second
    /// away; other vendors as for any rate limit, come back in a second.
    pub fn concurrency_refusal(self, limit: u32, req: &HeaderMap) -> Response {
        match self.for_request(req) {
            ThrottleStyle::Okta => okta_429(limit, 1),
            ThrottleStyle::Google => super::google::error(
                StatusCode::FORBIDDEN,
                "quotaExceeded",
                super::google::CONCURRENCY_EXCEEDED,
            ),
            ThrottleStyle::GitHub => super::github::secondary_limit(None),
            other => other.refusal(1, req),
        }
    }

    /// An internal server error / service unavailable answer.
    pub fn server_error(self, req: &HeaderMap) -> Response {
        match self.for_request(req) {
            ThrottleStyle::Okta => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({
                "errorCode": "E0000009", "errorSummary": "Internal Server Error", "errorLink": "E0000009", "errorId": "sim-5xx", "errorCauses": []
            }))).into_response(),
            ThrottleStyle::AwsQuery | ThrottleStyle::Aws => aws_query_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Receiver",
                "ServiceUnavailable",
                "Service is unavailable",
            ),
            ThrottleStyle::AwsJson => aws_json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "The request processing has failed because of an unknown error.",
            ),
            ThrottleStyle::Scim => scim_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable.",
            ),
            ThrottleStyle::RetryAfter429 => (StatusCode::SERVICE_UNAVAILABLE, "service unavailable (injected)").into_response(),
            ThrottleStyle::Google => super::google::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "backendError",
                "The service is currently unavailable.",
            ),
            ThrottleStyle::Graph => {
                let mut r = super::entra::error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceNotAvailable",
                    "The service is temporarily unavailable. Try again later.",
                );
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from(1u32));
                r
            }
            ThrottleStyle::GitHub => super::github::server_error(),
            ThrottleStyle::Slack => super::slack::failure(StatusCode::OK, "internal_error", None),
        }
    }
}

/// Okta's 429: `E0000047`, and X-Rate-Limit-* saying `limit`, none left, and a reset
/// `reset_in_secs` from now (UTC epoch seconds).
fn okta_429(limit: u32, reset_in_secs: u64) -> Response {
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        + reset_in_secs;
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({
            "errorCode": "E0000047",
            "errorSummary": "API call exceeded rate limit due to too many requests.",
            "errorLink": "E0000047",
            "errorId": "sim-ratelimit",
            "errorCauses": []
        })),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("x-rate-limit-limit", HeaderValue::from(limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(0u32));
    h.insert("x-rate-limit-reset", HeaderValue::from(reset));
    r
}

/// A SCIM error response (RFC 7644 §3.12): `status` is a string.
pub fn scim_error(status: StatusCode, detail: &str) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": status.as_u16().to_string(),
            "detail": detail,
        })),
    )
        .into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/scim+json"),
    );
    r
}

/// An AWS query-protocol (IAM, STS) error document.
pub fn aws_query_error(status: StatusCode, kind: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"{IAM_XMLNS}\"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        xml_escape(message),
        request_id()
    );
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    r
}

/// An AWS JSON 1.1 error: `__type` names the exception; the `x-amzn-ErrorType` header too.
pub fn aws_json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"__type": code, "Message": message, "RequestId": request_id()});
    aws_json_response(status, code, body)
}

/// An AWS JSON 1.1 error with a body of the caller's making (extra members such as
/// `Reason` or `RetryAfterSeconds`).
pub fn aws_json_response(status: StatusCode, code: &str, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// A UUID-shaped request id, as AWS returns.
pub fn request_id() -> String {
    let mut rng = rand::rng();
    let hex: String = (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// XML text content with the five predefined entities escaped.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What the middleware decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Throttle,
    ServerError,
    Timeout,
    Reset,
    Slow,
    Down,
}

#[derive(Debug)]
pub struct Faults {
    profile: Mutex<FaultProfile>,
    rng: Mutex<rand::rngs::StdRng>,
    burst_left: Mutex<u32>,
    down: AtomicBool,
    pub style: ThrottleStyle,
    injected: AtomicU64,
    requests: AtomicU64,
}

impl Faults {
    pub fn new(profile: FaultProfile, style: ThrottleStyle) -> Arc<Self> {
        Arc::new(Faults {
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(profile.seed)),
            profile: Mutex::new(profile),
            burst_left: Mutex::new(0),
            down: AtomicBool::new(false),
            style,
            injected: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub fn set_profile(&self, p: FaultProfile) {
        *self.profile.lock().unwrap_or_else(|e| e.into_inner()) = p;
    }

    pub fn profile(&self) -> FaultProfile {
        self.profile
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Start a burst now: refuse the next `n` requests with the vendor's rate-limit answer,
    /// whatever the profile says (the demo's scheduled 429 storms). `0` ends a burst.
    pub fn throttle_next(&self, n: u32) {
        *self.burst_left.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }

    /// Take the system down (every request gets 503) or bring it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// This request's latency, drawn from the profile's range.
    pub fn latency(&self) -> Option<Duration> {
        let (lo, hi) = self.profile().latency?;
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let span = hi.saturating_sub(lo).as_secs_f64();
        Some(lo + Duration::from_secs_f64(rng.random::<f64>() * span))
    }

    pub fn visibility_delay(&self) -> Duration {
        self.profile().visibility_delay
    }

    /// (requests seen, faults injected)
    pub fn counts(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.injected.load(Ordering::Relaxed),
        )
    }

    /// Decide what happens to the next request.
    pub fn decide(&self) -> Option<Fault> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if self.is_down() {
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Some(Fault::Down);
        }
        let p = self.profile();
        let mut burst = self.burst_left.lock().unwrap_or_else(|e| e.into_inner());
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let fault = if *burst > 0 {
            *burst -= 1;
            Some(Fault::Throttle)
        } else {
            let r: f64 = rng.random();
            let mut acc = 0.0;
            let mut pick = None;
            for (rate, f) in [
                (p.burst_429_rate, Fault::Throttle),
                (p.error_5xx_rate, Fault::ServerError),
                (p.timeout_rate, Fault::Timeout),
                (p.reset_rate, Fault::Reset),
                (p.slow_rate, Fault::Slow),
            ] {
                acc += rate;
                if r < acc {
                    pick = Some(f);
                    break;
                }
            }
            if pick == Some(Fault::Throttle) {
                *burst = p.burst_429_len.saturating_sub(1);
            }
            pick
        };
        if fault.is_some() {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        fault
    }

    /// The response for an injected refusal, in this vendor's style.
    pub fn throttle_response(&self) -> Response {
        self.throttle_response_for(&HeaderMap::new())
    }

    /// The injected refusal for this request (its protocol, where the style depends on it).
    pub fn throttle_response_for(&self, req: &HeaderMap) -> Response {
        self.style
            .refusal(self.profile().burst_retry_after_secs, req)
    }

    fn server_error_response(&self, req: &HeaderMap) -> Response {
        self.style.server_error(req)
    }
}

/// A body that fails after zero bytes: hyper drops the connection before the status line
/// and headers it had buffered are sent, so the client gets no HTTP answer at all.
pub fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected reset",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// axum middleware: `Router::layer(axum::middleware::from_fn_with_state(faults, inject))`.
pub async fn inject(State(faults): State<Arc<Faults>>, req: Request, next: Next) -> Response {
    if let Some(d) = faults.latency() {
        tokio::time::sleep(d).await;
    }
    match faults.decide() {
        None => next.run(req).await,
        Some(Fault::Throttle) => faults.throttle_response_for(req.headers()),
        Some(Fault::ServerError) | Some(Fault::Down) => faults.server_error_response(req.headers()),
        Some(Fault::Timeout) => {
            tokio::time::sleep(faults.profile().timeout_delay).await;
            faults.server_error_response(req.headers())
        }
        Some(Fault::Reset) => reset_response(),
        Some(Fault::Slow) => {
            tokio::time::sleep(faults.profile().slow_delay).await;
            next.run(req).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_roughly_honoured_and_bursts_run_their_length() {
        let f = Faults::new(
            FaultProfile {
                error_5xx_rate: 0.1,
                seed: 1,
                ..Default::default()
            },
            ThrottleStyle::RetryAfter429,
        );
        let n = 10_000;
        let errors = (0..n)
            .filter(|_| f.decide() == Some(Fault::ServerError))
            .count();
        assert!((800..1200).contains(&errors), "{errors}");
        let f = Faults::new(
            FaultProfile {
                burst_429_rate: 1.0,
                burst_429_len: 4,
                seed: 1,
                ..Default::default()
            },
            ThrottleStyle::Okta,
        );
        assert!((0..4).all(|_| f.decide() == Some(Fault::Throttle)));
        f.set_profile(FaultProfile::none());
        assert_eq!(f.decide(), None);
        f.set_down(true);
        assert_eq!(f.decide(), Some(Fault::Down));
        f.set_down(false);
        f.throttle_next(2);
        assert!((0..2).all(|_| f.decide() == Some(Fault::Throttle)));
        assert_eq!(f.decide(), None);
    }
}
