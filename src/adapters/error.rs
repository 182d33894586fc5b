//! Classified adapter errors.

use serde::Serialize;
use std::time::Duration;

pub type AResult<T> = std::result::Result<T, AdapterError>;

/// What kind of failure this is; the engine decides what to do from the class alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum ErrorClass {
    /// The vendor asked us to slow down.
    RateLimited {
        #[serde(with = "opt_secs")]
        retry_after: Option<Duration>,
    },
    /// 5xx, timeout, connection reset: try again later.
    Transient,
    /// 4xx validation: retrying will not help.
    Permanent,
    /// The object does not exist.
    NotFound,
    /// Already exists / already a member. The engine treats this as success.
    Conflict,
    /// Bad or expired credential. Never retried in a loop.
    Unauthorized,
    /// An account exists that the target does not prove belongs to this person (it carries
    /// another person's HR id, or none and accessdesk did not create it). Nothing is
    /// attached to it; an admin settles it with `account link` or by removing it.
    IdentityConflict,
}

mod opt_secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

impl ErrorClass {
    pub fn name(&self) -> &'static str {
        match self {
            ErrorClass::RateLimited { .. } => "rate_limited",
            ErrorClass::Transient => "transient",
            ErrorClass::Permanent => "permanent",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Conflict => "conflict",
            ErrorClass::Unauthorized => "unauthorized",
            ErrorClass::IdentityConflict => "identity_conflict",
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, ErrorClass::RateLimited { .. } | ErrorClass::Transient)
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ErrorClass::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// An adapter failure with everything an admin needs to triage it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{system}: {} {}{}: {message}", class.name(), status.map(|s| format!("(HTTP {s})")).unwrap_or_default(), vendor_code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default())]
pub struct AdapterError {
    #[serde(flatten)]
    pub class: ErrorClass,
    /// The configured system name.
    pub system: String,
    /// The vendor's HTTP status, where there was a response.
    pub status: Option<u16>,
    /// The vendor's own error code (Okta E0000047, AWS Throttling, SCIM scimType, ...).
    pub vendor_code: Option<String>,
    pub message: String,
    /// The first few hundred bytes of the body, with secrets redacted.
    pub excerpt: String,
    /// The request that got this answer (`POST /api/v1/users`), query values redacted.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request: String,
}

/// The code `unsupported` errors carry (no vendor answered; the adapter lacks it).
const UNSUPPORTED: &str = "accessdesk:unsupported";

/// How much of a response body an error keeps.
pub const EXCERPT_BYTES: usize = 300;

impl AdapterError {
    pub fn new(class: ErrorClass, system: &str, message: impl Into<String>) -> Self {
        AdapterError {
            class,
            system: system.to_string(),
            status: None,
            vendor_code: None,
            message: message.into(),
            excerpt: String::new(),
            request: String::new(),
        }
    }

    /// The same answer seen differently: another class and message, keeping what the
    /// vendor said (status, code, body excerpt, request) for triage.
    pub fn reclassified(&self, class: ErrorClass, message: impl Into<String>) -> Self {
        AdapterError {
            class,
            message: message.into(),
            ..self.clone()
        }
    }

    pub fn unsupported(system: &str, what: &str) -> Self {
        let mut e = Self::new(
            ErrorClass::Permanent,
            system,
            format!("{what} is not supported by this system"),
        );
        e.vendor_code = Some(UNSUPPORTED.to_string());
        e
    }

    /// The system cannot do this at all (the adapter said so; no request was sent).
    pub fn is_unsupported(&self) -> bool {
        self.vendor_code.as_deref() == Some(UNSUPPORTED)
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.vendor_code = Some(code.into());
        self
    }

    pub fn with_excerpt(mut self, body: &[u8]) -> Self {
        self.excerpt = excerpt(body);
        self
    }

    /// A response body that did not have the shape we expected (malformed JSON, HTML from a
    /// proxy, a truncated body, a 200 with the wrong fields).
    pub fn bad_response(system: &str, status: u16, what: &str, body: &[u8]) -> Self {
        let looks_html = body
            .iter()
            .take(64)
            .copied()
            .collect::<Vec<u8>>()
            .to_ascii_lowercase()
            .windows(5)
            .any(|w| w == b"<html" || w == b"<!doc");
        let message = if looks_html {
            format!(
                "expected {what}, got an HTML page (a proxy or gateway answered instead of the API)"
            )
        } else {
            format!("expected {what}; the response body could not be read as that")
        };
        // A 2xx with a body we cannot read may be a truncated transfer: retryable.
        // A 5xx HTML page from a proxy is transient too. Anything else is permanent.
        let class = if status >= 500 || (200..300).contains(&status) {
            ErrorClass::Transient
        } else {
            ErrorClass::Permanent
        };
        AdapterError::new(class, system, message)
            .with_status(status)
            .with_excerpt(body)
    }
}

/// What a provisioning call asked for, for [`already_done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    /// Add a membership.
    Grant,
    /// Remove a membership.
    Revoke,
    /// Deactivate (or delete) an account.
    Deactivate,
}

/// The adapter's idempotency, in one place: an answer that says the wanted state already
/// holds is success. A grant answered "already a member" (Conflict) is done; a revoke
/// answered "not found" (not a member, or the group or account is gone: either way nobody
/// holds it) is done; so is deactivating an account that is gone. Everything else is the
/// error it was; the engine takes every error as a failure.
pub fn already_done(edit: Edit, r: Result<(), AdapterError>) -> Result<(), AdapterError> {
    match (edit, r) {
        (Edit::Grant, Err(e)) if e.class == ErrorClass::Conflict => Ok(()),
        (Edit::Revoke | Edit::Deactivate, Err(e)) if e.class == ErrorClass::NotFound => Ok(()),
        (_, r) => r,
    }
}

/// "Already gone" is success for removals and deactivations.
pub fn ok_if_not_found(r: Result<(), AdapterError>) -> Result<(), AdapterError> {
    match r {
        Err(e) if e.class == ErrorClass::NotFound => Ok(()),
        other => other,
    }
}

/// A short, single-line, redacted excerpt of a body.
pub fn excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(EXCERPT_BYTES)];
    let text = String::from_utf8_lossy(cut);
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut s = crate::redact::redact_text(&one_line);
    if body.len() > EXCERPT_BYTES {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_class_status_and_code() {
        let e = AdapterError::new(
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
            "okta",
            "slow down",
        )
        .with_status(429)
        .with_code("E0000047");
        assert_eq!(
            e.to_string(),
            "okta: rate_limited (HTTP 429) [E0000047]: slow down"
        );
    }

    #[test]
    fn html_and_truncated_bodies_are_classified() {
        let e = AdapterError::bad_response(
            "s",
            502,
            "a JSON user",
            b"<!DOCTYPE html><html><body>Bad gateway</body></html>",
        );
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(e.message.contains("HTML page"));
        assert!(e.excerpt.contains("Bad gateway"));
        let e = AdapterError::bad_response("s", 400, "a JSON user", b"{\"id\": \"0");
        assert_eq!(e.class, ErrorClass::Permanent);
        let long = vec![b'x'; 1000];
        assert!(excerpt(&long).ends_with('…'));
    }
}
