//! Okta's dialect: its error object and codes, rate-limit headers and per-endpoint buckets.

use super::*;

// ---------------------------------------------------------------------------------------
// Vendor profile
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OktaErrorBody {
    pub(super) error_code: Option<String>,
    pub(super) error_summary: Option<String>,
    #[serde(default)]
    pub(super) error_causes: Vec<OktaErrorCause>,
    /// OAuth endpoints answer `{"error": ..., "error_description": ...}` instead.
    pub(super) error: Option<String>,
    #[serde(rename = "error_description")]
    pub(super) error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct OktaErrorCause {
    pub(super) error_summary: Option<String>,
}

pub(super) fn looks_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .collect::<Vec<u8>>()
        .to_ascii_lowercase();
    head.starts_with(b"<!doctype") || head.starts_with(b"<html")
}

/// Reset-based wait from Okta's headers.
pub(super) fn wait_until_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset = headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(reset);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Okta's rate-limit headers and error codes.
pub struct OktaProfile;

impl VendorProfile for OktaProfile {
    /// Okta counts requests per endpoint family, each with its own X-Rate-Limit-* window
    /// (rate-limit documentation: /api/v1/users, /api/v1/users/{id}, /api/v1/groups,
    /// /api/v1/groups/{id}, ...). The limiter keeps one window per family.
    fn bucket(&self, method: &reqwest::Method, path: &str) -> String {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            ["oauth2", ..] => "oauth2",
            ["api", "v1", "users"] => "users",
            ["api", "v1", "users", _] if method == reqwest::Method::GET => "user-get",
            ["api", "v1", "users", ..] => "user-write",
            ["api", "v1", "groups"] => "groups",
            ["api", "v1", "groups", ..] => "group",
            _ => "other",
        }
        .to_string()
    }

    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        RateSignal::from_triple(
            status,
            headers,
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
        )
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_okta(system, status, headers, body)
    }
}

/// Classify a non-2xx Okta response (Management API or OAuth endpoint).
/// Okta's error codes that say more than their status.
pub(super) const OKTA_ERRORS: &[ErrorRule] = &[
    code("E0000047", Class::RateLimited),
    code("E0000011", Class::Unauthorized),
    code("E0000004", Class::Unauthorized),
    code("E0000005", Class::Unauthorized),
    code("E0000007", Class::NotFound),
];

pub fn classify_okta(system: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> AdapterError {
    let www = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = serde_json::from_slice::<OktaErrorBody>(body)
        .ok()
        .filter(|e| e.error_code.is_some() || e.error.is_some());
    let Some(err) = parsed else {
        // Not Okta's error object: a proxy, a gateway, a load balancer or a cut-off body.
        let what = if looks_html(body) {
            format!(
                "HTTP {status} with an HTML page instead of an Okta error (a proxy or gateway answered)"
            )
        } else if body.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            format!("HTTP {status} with a body that is not an Okta error object")
        };
        let mut e = classify_status(system, status, headers, body, None, what);
        if status == 429 {
            e.class = ErrorClass::RateLimited {
                retry_after: wait_until_reset(headers).or(e.class.retry_after()),
            };
        }
        return e;
    };
    if let Some(code) = err.error.as_deref() {
        // OAuth error ({"error": "invalid_client", ...}).
        let message = match err.error_description.as_deref() {
            Some(d) => format!("{code}: {d}"),
            None => code.to_string(),
        };
        let class = match classify_by(OAUTH_ERRORS, status, Some(code)) {
            Class::RateLimited => Class::RateLimited.with_wait(wait_until_reset(headers)),
            c => c.with_wait(None),
        };
        return AdapterError::new(class, system, message)
            .with_status(status)
            .with_code(code)
            .with_excerpt(body);
    }
    let code = err.error_code.clone().unwrap_or_default();
    let causes: Vec<String> = err
        .error_causes
        .iter()
        .filter_map(|c| c.error_summary.clone())
        .collect();
    let summary = err.error_summary.clone().unwrap_or_default();
    let message = if causes.is_empty() {
        summary.clone()
    } else {
        format!("{summary} ({})", causes.join("; "))
    };
    let already_exists = causes
        .iter()
        .chain(std::iter::once(&summary))
        .any(|c| c.to_ascii_lowercase().contains("already exists"));
    let class = if already_exists && !OKTA_ERRORS.iter().any(|r| r.code == Some(code.as_str())) {
        Class::Conflict
    } else if status == 401 || www.contains("invalid_token") {
        Class::Unauthorized
    } else {
        classify_by(OKTA_ERRORS, status, Some(&code))
    };
    let class = class.with_wait(wait_until_reset(headers));
    let message = if www.contains("insufficient_scope") {
        format!("{message} (the access token lacks a scope this call needs)")
    } else {
        message
    };
    AdapterError::new(class, system, message)
        .with_status(status)
        .with_code(code)
        .with_excerpt(body)
}
