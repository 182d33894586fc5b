//! Deterministic, test-steered faults: a [`FailRule`] matches requests (method, path,
//! query, body) and makes the next `times` of them fail in a chosen way: a broken body, an
//! HTML page from a proxy, a lost response after the write was done, a connection reset
//! with no answer at all, or a vendor-shaped refusal (the "failures that need triage" of
//! the demo: a 400 that no retry will fix). [`FailRule::on_nth`] lets the first matches
//! through, so a rule can cut a listing off at its Nth page. Plus a random lost-response
//! rate.
//!
//! For example, reset the connection on the 40th page of one group's member listing, for
//! the 5 attempts an adapter makes at it, then answer normally again:
//! `handle.fail(FailRule::new(Some(Method::GET), "/api/v1/groups/00g1/users",
//! BodyFault::Reset, 5).on_nth(40))`; or on the page a given cursor asks for:
//! `.with_query("after=00u123")`.
//!
//! Bodies are rendered in each vendor's format by its [`VendorBodies`].

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A deterministic fault for the next `times` requests that match.
#[derive(Debug, Clone, PartialEq)]
pub struct FailRule {
    pub method: Option<Method>,
    /// Matches when the request path contains this.
    pub path_contains: String,
    /// Matches when the raw query string contains this (e.g. `after=00u...`).
    pub query_contains: Option<String>,
    /// Matches when the request body contains this.
    pub body_contains: Option<String>,
    pub fault: BodyFault,
    pub times: u32,
    /// Matching requests let through before the rule starts to fire (see [`Self::on_nth`]).
    pub skip: u32,
}

impl FailRule {
    pub fn new(method: Option<Method>, path_contains: &str, fault: BodyFault, times: u32) -> Self {
        FailRule {
            method,
            path_contains: path_contains.to_string(),
            query_contains: None,
            body_contains: None,
            fault,
            times,
            skip: 0,
        }
    }

    /// Fire first on the `n`th matching request (1 = the next one): the `n - 1` before it
    /// are answered normally, then the rule fails `times` matching requests in a row.
    pub fn on_nth(mut self, n: u32) -> Self {
        self.skip = n.saturating_sub(1);
        self
    }

    pub fn with_query(mut self, q: &str) -> Self {
        self.query_contains = Some(q.to_string());
        self
    }

    pub fn with_body(mut self, b: &str) -> Self {
        self.body_contains = Some(b.to_string());
        self
    }

    /// Every matching request, for as long as the rule is in place.
    pub fn always(mut self) -> Self {
        self.times = u32::MAX;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyFault {
    /// 200 with a body that is not valid in the vendor's format (cut-off JSON or XML).
    MalformedJson,
    /// 200 with a well-formed body of the wrong shape.
    UnexpectedShape,
    /// An HTML error page from a proxy or gateway, with this status.
    Html(u16),
    /// The real response, but the connection drops halfway through the body.
    Truncated,
    /// 500 with the vendor's internal-error body.
    ServerError,
    /// The request is carried out, then the connection drops before the response.
    LostResponse,
    /// The connection is reset at once: no status line, no headers, no body. The request
    /// is not carried out (a load balancer or the network cut it off).
    Reset,
    /// The vendor refuses the request with its own error body: this status, error code
    /// (SCIM `scimType`, AWS `Code`, Okta `errorCode`) and message. Nothing is changed.
    Reject {
        status: u16,
        code: String,
        message: String,
    },
}

impl BodyFault {
    pub fn reject(status: u16, code: &str, message: &str) -> Self {
        BodyFault::Reject {
            status,
            code: code.to_string(),
            message: message.to_string(),
        }
    }
}

/// How a vendor's bodies look. `req` holds the request's headers, for simulators that speak
/// more than one protocol on one endpoint (AWS query and JSON).
pub trait VendorBodies: Send + Sync {
    /// A 200 body cut off mid-document, in the vendor's format.
    fn malformed(&self, req: &HeaderMap) -> Response;
    /// A 200 with a well-formed document of the wrong shape.
    fn unexpected_shape(&self, req: &HeaderMap) -> Response;
    /// The vendor's error body, with this status.
    fn error(&self, req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response;
    /// 500 with the vendor's internal-error body.
    fn server_error(&self, req: &HeaderMap) -> Response;
}

/// The rules of one simulator, shared by its handle and its middleware.
pub struct Rules {
    rules: Mutex<Vec<FailRule>>,
    lost_rate: Mutex<f64>,
    rng: Mutex<rand::rngs::StdRng>,
    bodies: Box<dyn VendorBodies>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("rules", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl Rules {
    pub fn new(bodies: impl VendorBodies + 'static, lost_rate: f64, seed: u64) -> Arc<Self> {
        Arc::new(Rules {
            rules: Mutex::new(Vec::new()),
            lost_rate: Mutex::new(lost_rate),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
            bodies: Box::new(bodies),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<FailRule>> {
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a rule (first matching rule wins).
    pub fn add(&self, rule: FailRule) {
        self.lock().push(rule);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        *self.lost_rate.lock().unwrap_or_else(|p| p.into_inner()) = rate;
    }

    fn needs_body(&self) -> bool {
        self.lock()
            .iter()
            .any(|r| r.times > 0 && r.body_contains.is_some())
    }

    fn take(&self, method: &Method, path: &str, query: &str, body: &[u8]) -> Option<BodyFault> {
        let mut rules = self.lock();
        let body = String::from_utf8_lossy(body);
        let matching = rules.iter_mut().filter(|r| {
            r.times > 0
                && r.method.as_ref().is_none_or(|m| m == method)
                && path.contains(&r.path_contains)
                && r.query_contains
                    .as_ref()
                    .is_none_or(|q| query.contains(q.as_str()))
                && r.body_contains
                    .as_ref()
                    .is_none_or(|b| body.contains(b.as_str()))
        });
        // Every matching rule still letting requests through counts this one; the first
        // matching rule that is armed fires.
        let mut fired = None;
        for rule in matching {
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            if fired.is_none() {
                if rule.times != u32::MAX {
                    rule.times -= 1;
                }
                fired = Some(rule.fault.clone());
            }
        }
        fired
    }

    fn lose_this_one(&self) -> bool {
        let rate = *self.lost_rate.lock().unwrap_or_else(|p| p.into_inner());
        rate > 0.0
            && self
                .rng
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .random::<f64>()
                < rate
    }
}

/// axum middleware: `layer(from_fn_with_state(rules, apply))`, inside the random faults.
pub async fn apply(State(rules): State<Arc<Rules>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = if rules.needs_body() {
        match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
            Ok(b) => b,
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    } else {
        // Not read: handed on untouched.
        let req = Request::from_parts(parts, body);
        return run(&rules, req, Bytes::new(), next).await;
    };
    let req = Request::from_parts(parts, Body::from(bytes.clone()));
    run(&rules, req, bytes, next).await
}

async fn run(rules: &Rules, req: Request, body: Bytes, next: Next) -> Response {
    let fault = rules.take(
        req.method(),
        req.uri().path(),
        req.uri().query().unwrap_or(""),
        &body,
    );
    let headers = req.headers().clone();
    let b = &rules.bodies;
    match fault {
        None if rules.lose_this_one() => {
            let _ = next.run(req).await;
            dropped_connection(Bytes::new())
        }
        None => next.run(req).await,
        Some(BodyFault::MalformedJson) => b.malformed(&headers),
        Some(BodyFault::UnexpectedShape) => b.unexpected_shape(&headers),
        Some(BodyFault::Html(status)) => html_page(status),
        Some(BodyFault::ServerError) => b.server_error(&headers),
        Some(BodyFault::Reject {
            status,
            code,
            message,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            b.error(&headers, status, &code, &message)
        }
        Some(BodyFault::LostResponse) => {
            let _ = next.run(req).await;
            dropped_connection(Bytes::new())
        }
        Some(BodyFault::Reset) => super::fault::reset_response(),
        Some(BodyFault::Truncated) => {
            let resp = next.run(req).await;
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 16 * 1024 * 1024)
                .await
                .unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            parts.headers.remove("content-length");
            let mut r = dropped_connection(half);
            *r.status_mut() = parts.status;
            for (k, v) in parts.headers.iter() {
                r.headers_mut().insert(k, v.clone());
            }
            r
        }
    }
}

/// An nginx error page with this status.
pub fn html_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let reason = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{} {reason}</title></head><body><center><h1>{} {reason}</h1></center><hr><center>nginx</center></body></html>\n",
        status.as_u16(),
        status.as_u16()
    );
    let mut r = (status, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/html"));
    r
}

/// A response whose body sends `first` and then fails: the connection drops.
pub fn dropped_connection(first: Bytes) -> Response {
    use futures::StreamExt;
    // The pause lets hyper flush the status line, the headers and the first bytes before
    // the connection goes down.
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(first) }).chain(
        futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "simulated connection drop",
            ))
        }),
    );
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;
    impl VendorBodies for Plain {
        fn malformed(&self, _: &HeaderMap) -> Response {
            StatusCode::OK.into_response()
        }
        fn unexpected_shape(&self, _: &HeaderMap) -> Response {
            StatusCode::OK.into_response()
        }
        fn error(&self, _: &HeaderMap, status: StatusCode, _: &str, _: &str) -> Response {
            status.into_response()
        }
        fn server_error(&self, _: &HeaderMap) -> Response {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }

    #[test]
    fn a_rule_fires_from_its_nth_match_for_its_times_and_counts_every_match() {
        let r = Rules::new(Plain, 0.0, 1);
        r.add(FailRule::new(Some(Method::GET), "/groups/g1/users", BodyFault::Reset, 2).on_nth(3));
        let get = |path: &str, q: &str| r.take(&Method::GET, path, q, b"");
        let fired: Vec<bool> = (0..6)
            .map(|_| get("/api/v1/groups/g1/users", "limit=3").is_some())
            .collect();
        assert_eq!(fired, [false, false, true, true, false, false]);
        // Other paths and methods do not count.
        r.clear();
        r.add(FailRule::new(None, "/users", BodyFault::ServerError, 1).with_query("after=x"));
        r.add(FailRule::new(None, "/users", BodyFault::Reset, 1).on_nth(2));
        assert_eq!(r.take(&Method::POST, "/groups", "", b""), None);
        // The first rule fires; the second counts this match all the same.
        assert_eq!(get("/users", "after=x"), Some(BodyFault::ServerError));
        assert_eq!(get("/users", ""), Some(BodyFault::Reset));
        assert_eq!(get("/users", ""), None);
    }
}
