//! What every adapter notices about its vendor while it works, for the API-version watch
//! and credential hygiene: the deprecation signals the vendor sends (RFC 9745
//! `Deprecation`, RFC 8594 `Sunset`, `Warning: 299`), when a request last succeeded, when
//! the credential expires where the vendor says (GitHub's token-expiration header, an
//! OAuth token's lifetime) and the scopes it was granted.
//!
//! [`crate::adapters::http::HttpClient`] feeds every response to its system's [`Watch`];
//! auth providers report token lifetimes and scopes. The engine persists a changed
//! [`Signals`] per system (`store::signals`), where `system list` and the console's
//! Systems view read it.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// At most this many distinct deprecation signals are kept per system (the newest win).
const MAX_SIGNALS: usize = 20;

/// One deprecation signal a vendor sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deprecation {
    /// `Deprecation`, `Sunset`, `Warning` or a vendor's own header name.
    pub signal: String,
    /// What the vendor sent, as sent (cut to 200 characters).
    pub value: String,
    /// The date it names (deprecated since, or sunset on), RFC 3339, where it names one.
    pub date: Option<String>,
    /// The request that got it (`GET /api/v1/users`), without the query.
    pub request: String,
    pub first_seen: String,
    pub last_seen: String,
}

/// Everything a system's watch holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signals {
    /// The last 2xx answer, RFC 3339.
    pub last_success_at: Option<String>,
    /// When the credential (or the token it yields) expires, where the vendor says.
    pub credential_expires_at: Option<String>,
    /// Where that expiry came from (`github-authentication-token-expiration`, `OAuth
    /// token lifetime`).
    pub credential_expiry_source: Option<String>,
    /// The scopes or permissions the vendor says the credential has.
    pub scopes_granted: Option<Vec<String>>,
    /// How long the access tokens the credential yields live (OAuth), in seconds: not the
    /// credential's own expiry, which only the vendor's word sets.
    #[serde(default)]
    pub token_lifetime_secs: Option<u64>,
    /// Those the adapter needs (from its [`crate::adapters::About`]), kept beside them so
    /// that readers need not build the adapter.
    #[serde(default)]
    pub scopes_needed: Vec<String>,
    pub deprecations: Vec<Deprecation>,
}

#[derive(Debug, Default)]
struct State {
    signals: Signals,
    /// Changed since the engine last took it (a success's timestamp alone counts once a
    /// minute, so that persisting stays cheap).
    dirty: bool,
    success_written: Option<DateTime<Utc>>,
}

/// One system's watch, shared by its adapter's HTTP clients and auth providers.
#[derive(Debug, Default)]
pub struct Watch(Mutex<State>);

/// A date a header names: RFC 9745's `@<epoch seconds>`, an HTTP-date, or RFC 3339.
pub fn header_date(v: &str) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Some(secs) = v.strip_prefix('@') {
        return DateTime::from_timestamp(secs.parse().ok()?, 0);
    }
    if let Ok(t) = httpdate::parse_http_date(v) {
        return Some(t.into());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    // GitHub's token expiry: `2027-01-31 12:00:00 UTC` (also seen with `+0000`).
    let v = v.trim_end_matches(" UTC").trim_end_matches(" +0000");
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

fn cut(s: &str) -> String {
    s.chars().take(200).collect()
}

impl Watch {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything one response says. `request` is `METHOD /path` without the query.
    pub fn observe(&self, request: &str, status: u16, headers: &HeaderMap) {
        let now = Utc::now();
        let mut found: Vec<(String, String, Option<DateTime<Utc>>)> = Vec::new();
        for name in ["deprecation", "sunset"] {
            for v in headers.get_all(name) {
                let Ok(v) = v.to_str() else { continue };
                // `Deprecation: true` (the draft's form) names no date.
                let date = header_date(v);
                let signal = if name == "deprecation" {
                    "Deprecation"
                } else {
                    "Sunset"
                };
                found.push((signal.into(), cut(v), date));
            }
        }
        for v in headers.get_all("warning") {
            let Ok(v) = v.to_str() else { continue };
            if v.trim_start().starts_with("299") {
                found.push(("Warning".into(), cut(v), None));
            }
        }
        let expiry = headers
            .get("github-authentication-token-expiration")
            .and_then(|v| v.to_str().ok())
            .and_then(header_date);
        let mut s = self.state();
        if (200..300).contains(&status) {
            s.signals.last_success_at = Some(now.to_rfc3339());
            let stale = s
                .success_written
                .is_none_or(|t| now - t > chrono::Duration::seconds(60));
            if stale {
                s.dirty = true;
            }
        }
        if let Some(at) = expiry {
            self.set_expiry(&mut s, at, "github-authentication-token-expiration");
        }
        for (signal, value, date) in found {
            let seen = now.to_rfc3339();
            let known = s
                .signals
                .deprecations
                .iter_mut()
                .find(|d| d.signal == signal && d.value == value);
            match known {
                Some(d) => d.last_seen = seen,
                None => {
                    tracing::warn!(request, signal = %signal, value = %value, "the vendor sent a deprecation signal");
                    s.signals.deprecations.push(Deprecation {
                        signal,
                        value,
                        date: date.map(|d| d.to_rfc3339()),
                        request: request.to_string(),
                        first_seen: seen.clone(),
                        last_seen: seen,
                    });
                    if s.signals.deprecations.len() > MAX_SIGNALS {
                        s.signals.deprecations.remove(0);
                    }
                    s.dirty = true;
                }
            }
        }
    }

    fn set_expiry(&self, s: &mut State, at: DateTime<Utc>, source: &str) {
        let at = Some(at.to_rfc3339());
        if s.signals.credential_expires_at != at {
            s.signals.credential_expires_at = at;
            s.signals.credential_expiry_source = Some(source.to_string());
            s.dirty = true;
        }
    }

    /// The credential (or the token it yields) expires at `at`, as `source` says.
    pub fn credential_expires(&self, at: DateTime<Utc>, source: &str) {
        let mut s = self.state();
        self.set_expiry(&mut s, at, source);
    }

    /// An access token was issued from the credential, living `lifetime`.
    pub fn token_issued(&self, lifetime: std::time::Duration) {
        let mut s = self.state();
        let secs = Some(lifetime.as_secs());
        if s.signals.token_lifetime_secs != secs {
            s.signals.token_lifetime_secs = secs;
            s.dirty = true;
        }
    }

    /// The scopes the vendor says the credential has.
    pub fn scopes_granted(&self, scopes: Vec<String>) {
        let mut s = self.state();
        let mut scopes = scopes;
        scopes.sort();
        scopes.dedup();
        if s.signals.scopes_granted.as_ref() != Some(&scopes) {
            s.signals.scopes_granted = Some(scopes);
            s.dirty = true;
        }
    }

    pub fn snapshot(&self) -> Signals {
        self.state().signals.clone()
    }

    /// The signals, if they changed since the last call (for persisting).
    pub fn take_if_changed(&self) -> Option<Signals> {
        let mut s = self.state();
        if !s.dirty {
            return None;
        }
        s.dirty = false;
        s.success_written = Some(Utc::now());
        Some(s.signals.clone())
    }
}

/// How the scopes granted compare with those an adapter needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeCheck {
    /// `ok`, `warning` (more than needed) or `error` (some needed scope is missing).
    pub status: &'static str,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
}

/// Compare granted with needed. A granted scope that implies a needed one (Google's
/// `…/admin.directory.user` covers `…/admin.directory.user.readonly`, GitHub's
/// `admin:org` covers `read:org`) counts as that one, not as extra.
pub fn check_scopes(granted: &[String], needed: &[String]) -> ScopeCheck {
    let covers = |g: &str, n: &str| {
        g == n
            || n.strip_suffix(".readonly") == Some(g)
            || (n.starts_with("read:") && g.starts_with("admin:") && n[5..] == g[6..])
            || (n.starts_with("read:") && g.starts_with("write:") && n[5..] == g[6..])
    };
    let missing: Vec<String> = needed
        .iter()
        .filter(|n| !granted.iter().any(|g| covers(g, n)))
        .cloned()
        .collect();
    let extra: Vec<String> = granted
        .iter()
        .filter(|g| !needed.iter().any(|n| covers(g, n)))
        .cloned()
        .collect();
    let status = if !missing.is_empty() {
        "error"
    } else if !extra.is_empty() {
        "warning"
    } else {
        "ok"
    };
    ScopeCheck {
        status,
        missing,
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kit::testkit::headers;

    #[test]
    fn dates_in_every_form_vendors_send() {
        assert_eq!(
            header_date("@1767225600").unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            header_date("Thu, 01 Jul 2027 00:00:00 GMT")
                .unwrap()
                .to_rfc3339(),
            "2027-07-01T00:00:00+00:00"
        );
        assert_eq!(
            header_date("2027-01-31 12:00:00 UTC").unwrap().to_rfc3339(),
            "2027-01-31T12:00:00+00:00"
        );
        assert!(header_date("true").is_none());
        assert!(header_date("soon").is_none());
    }

    #[test]
    fn deprecations_are_kept_once_with_first_and_last_seen() {
        let w = Watch::default();
        let h = headers(&[
            ("deprecation", "@1767225600"),
            ("sunset", "Thu, 01 Jul 2027 00:00:00 GMT"),
        ]);
        w.observe("GET /v1/users", 200, &h);
        let first = w.take_if_changed().expect("new signals are a change");
        assert_eq!(first.deprecations.len(), 2);
        assert_eq!(
            first.deprecations[1].date.as_deref(),
            Some("2027-07-01T00:00:00+00:00")
        );
        assert!(first.last_success_at.is_some());
        w.observe("GET /v1/users", 200, &h);
        assert_eq!(w.snapshot().deprecations.len(), 2, "the same signal once");
        assert!(
            w.take_if_changed().is_none(),
            "seen again within a minute is not a change worth writing"
        );
        w.observe(
            "GET /v1/groups",
            200,
            &headers(&[("warning", "299 - \"this API is deprecated\"")]),
        );
        assert_eq!(w.take_if_changed().unwrap().deprecations.len(), 3);
        w.observe("GET /x", 200, &headers(&[("warning", "199 - \"misc\"")]));
        assert_eq!(
            w.snapshot().deprecations.len(),
            3,
            "only 299 is a deprecation"
        );
    }

    #[test]
    fn a_failure_is_not_a_success_and_expiry_headers_are_read() {
        let w = Watch::default();
        w.observe(
            "GET /orgs/acme/members",
            401,
            &headers(&[(
                "github-authentication-token-expiration",
                "2027-01-31 12:00:00 UTC",
            )]),
        );
        let s = w.snapshot();
        assert!(s.last_success_at.is_none());
        assert_eq!(
            s.credential_expires_at.as_deref(),
            Some("2027-01-31T12:00:00+00:00")
        );
        assert_eq!(
            s.credential_expiry_source.as_deref(),
            Some("github-authentication-token-expiration")
        );
    }

    #[test]
    fn scopes_more_than_needed_warn_and_fewer_are_an_error() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let needed = v(&["a.user", "a.group.readonly"]);
        assert_eq!(
            check_scopes(&v(&["a.user", "a.group"]), &needed).status,
            "ok"
        );
        let c = check_scopes(&v(&["a.user", "a.group", "a.domain"]), &needed);
        assert_eq!((c.status, c.extra.clone()), ("warning", v(&["a.domain"])));
        let c = check_scopes(&v(&["a.user"]), &needed);
        assert_eq!((c.status, c.missing), ("error", v(&["a.group.readonly"])));
        assert_eq!(
            check_scopes(&v(&["admin:org"]), &v(&["read:org"])).status,
            "ok"
        );
    }
}
