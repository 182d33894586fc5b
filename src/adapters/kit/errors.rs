//! How a vendor's answers become [`ErrorClass`]es: the rate-limit signal family each vendor
//! speaks, its bucket, and the error-class mapping table.

use crate::adapters::error::{AdapterError, ErrorClass};
use crate::adapters::http::{RateSignal, retry_after};
use reqwest::header::HeaderMap;
use std::time::Duration;

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

/// What an answer means, before the vendor's wait is attached: the column of an error table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    RateLimited,
    Transient,
    Permanent,
    NotFound,
    Conflict,
    Unauthorized,
}

impl Class {
    /// The engine's class, with the vendor's wait where it is a rate limit.
    pub fn with_wait(self, wait: Option<Duration>) -> ErrorClass {
        match self {
            Class::RateLimited => ErrorClass::RateLimited { retry_after: wait },
            Class::Transient => ErrorClass::Transient,
            Class::Permanent => ErrorClass::Permanent,
            Class::NotFound => ErrorClass::NotFound,
            Class::Conflict => ErrorClass::Conflict,
            Class::Unauthorized => ErrorClass::Unauthorized,
        }
    }
}

/// One row of a vendor's error-class mapping table: an answer with this status (any, if
/// `None`) and this vendor code (any, if `None`) is of this class. A vendor's table lists
/// only what differs from the HTTP status alone ([`status_class`]): Google's 403
/// `userRateLimitExceeded`, GitHub's 403 secondary limit, Slack's 200 `ok:false`.
#[derive(Debug, Clone, Copy)]
pub struct ErrorRule {
    pub status: Option<u16>,
    pub code: Option<&'static str>,
    pub class: Class,
}

/// A rule for a vendor code, whatever the status.
pub const fn code(code: &'static str, class: Class) -> ErrorRule {
    ErrorRule {
        status: None,
        code: Some(code),
        class,
    }
}

/// A rule for a status and vendor code together.
pub const fn status_code(status: u16, code: &'static str, class: Class) -> ErrorRule {
    ErrorRule {
        status: Some(status),
        code: Some(code),
        class,
    }
}

/// The class of an answer: the first rule of `table` that matches, else the status alone.
pub fn classify_by(table: &[ErrorRule], status: u16, vendor_code: Option<&str>) -> Class {
    table
        .iter()
        .find(|r| {
            r.status.is_none_or(|s| s == status)
                && r.code
                    .is_none_or(|c| vendor_code.is_some_and(|v| v.eq_ignore_ascii_case(c)))
        })
        .map(|r| r.class)
        .unwrap_or_else(|| status_class(status))
}

/// The class an HTTP status means on its own.
pub fn status_class(status: u16) -> Class {
    match status {
        401 => Class::Unauthorized,
        404 | 410 => Class::NotFound,
        409 => Class::Conflict,
        429 => Class::RateLimited,
        408 | 500..=599 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// OAuth 2.0 token and bearer errors (RFC 6749 §5.2, RFC 6750 §3.1), for any vendor's
/// token endpoint or `WWW-Authenticate` answer.
pub const OAUTH_ERRORS: &[ErrorRule] = &[
    code("invalid_client", Class::Unauthorized),
    code("invalid_grant", Class::Unauthorized),
    code("unauthorized_client", Class::Unauthorized),
    code("invalid_token", Class::Unauthorized),
    code("access_denied", Class::Unauthorized),
    code("slow_down", Class::Transient),
    code("temporarily_unavailable", Class::Transient),
];

/// Classification by HTTP status alone, with the vendor's code and message if known.
pub fn classify_status(
    system: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    code: Option<String>,
    message: String,
) -> AdapterError {
    let class = status_class(status).with_wait(retry_after(headers));
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

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[ErrorRule] = &[
        status_code(403, "userRateLimitExceeded", Class::RateLimited),
        code("backendError", Class::Transient),
    ];

    #[test]
    fn the_first_matching_rule_wins_then_the_status() {
        assert_eq!(
            classify_by(TABLE, 403, Some("userRateLimitExceeded")),
            Class::RateLimited
        );
        assert_eq!(classify_by(TABLE, 403, Some("forbidden")), Class::Permanent);
        assert_eq!(classify_by(TABLE, 403, None), Class::Permanent);
        assert_eq!(
            classify_by(TABLE, 400, Some("backendError")),
            Class::Transient
        );
        assert_eq!(classify_by(TABLE, 404, Some("other")), Class::NotFound);
        assert_eq!(
            classify_by(OAUTH_ERRORS, 400, Some("invalid_grant")),
            Class::Unauthorized
        );
        assert_eq!(
            Class::RateLimited
                .with_wait(Some(Duration::from_secs(2)))
                .retry_after(),
            Some(Duration::from_secs(2))
        );
    }
}
