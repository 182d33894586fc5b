//! A BambooHR API client for the HR-source poller: the directory, the employees changed
//! since a time, one employee's fields, and a connection test.
//!
//! On the paths of BambooHR's published description (`tests/specs/bamboohr/public.yaml`):
//! the base URL is the company's (`https://northwind.bamboohr.com`) and paths are
//! `/api/v1/...`. Auth is HTTP Basic with the API key as the user name and `x` as the
//! password, as BambooHR documents; the key lives in a [`Secret`] and reaches only the
//! `Authorization` header (marked sensitive). Every request asks for JSON
//! (`Accept: application/json`; BambooHR answers XML otherwise).
//!
//! Requests go through the shared [`HttpClient`] (rate limiter, retries with full jitter)
//! with BambooHR's dialect ([`BambooProfile`]): a rate-limit refusal is 429 with
//! `Retry-After` (from 2026-09-16) or, historically, 503; both are retried, honouring
//! `Retry-After` (a 503 without one is a plain transient failure); 401 and 403 are
//! refusals of the credential; 404 is not found; BambooHR's error detail comes from the
//! `X-BambooHR-Error-Message` header (or `X-BambooHR-Message`, the name the description's
//! shared error responses use). Errors are [`AdapterError`]s: their text names the
//! class and the HTTP status, never the key.

use crate::adapters::auth::{Auth, basic};
use crate::adapters::error::{AResult, AdapterError, ErrorClass};
use crate::adapters::http::{
    HttpClient, RateLimiter, RateSignal, Req, RetryPolicy, Timeouts, path_segment, retry_after,
};
use crate::adapters::kit::errors::{Class, VendorProfile, status_class};
use crate::secrets::Secret;
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::header::{ACCEPT, HeaderMap};
use serde_json::Value;
use std::sync::Arc;

/// The header BambooHR puts its error detail in.
pub const ERROR_HEADER: &str = "x-bamboohr-error-message";
/// The name the description's shared error responses give that header (read when the
/// other is absent).
pub const MESSAGE_HEADER: &str = "x-bamboohr-message";

/// BambooHR's error and rate-limit dialect.
pub struct BambooProfile;

impl BambooProfile {
    /// 429, or 503 with a Retry-After (BambooHR's rate limit before 2026-09-16).
    fn throttled(status: u16, headers: &HeaderMap) -> bool {
        status == 429 || (status == 503 && retry_after(headers).is_some())
    }
}

impl VendorProfile for BambooProfile {
    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        let mut s = RateSignal::generic(status, headers);
        s.throttled = Self::throttled(status, headers);
        s
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        let detail = [ERROR_HEADER, MESSAGE_HEADER]
            .iter()
            .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
            .map(str::trim)
            .find(|m| !m.is_empty());
        let class = if Self::throttled(status, headers) {
            Class::RateLimited
        } else {
            match status {
                401 | 403 => Class::Unauthorized,
                _ => status_class(status),
            }
        };
        let message = match detail {
            Some(d) => d.to_string(),
            None => format!(
                "HTTP {status}{}",
                match status {
                    401 => " (the API key was not accepted)",
                    403 => " (the API key's user may not see this)",
                    404 => " (not found)",
                    429 | 503 => " (throttled or unavailable)",
                    _ => "",
                }
            ),
        };
        AdapterError::new(class.with_wait(retry_after(headers)), system, message)
            .with_status(status)
            .with_excerpt(body)
    }
}

/// HTTP Basic with the API key as the user name and `x` as the password.
pub struct BasicKeyAuth {
    pub key: Secret,
    pub source: String,
}

#[async_trait]
impl Auth for BasicKeyAuth {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        let v = basic(self.key.expose(), "x").ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Unauthorized,
                "",
                format!(
                    "the API key from {} contains characters not allowed in a header",
                    self.source
                ),
            )
        })?;
        req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
        Ok(())
    }

    fn source(&self) -> String {
        self.source.clone()
    }
}

/// What `changed` answered: the newest change it reported, and each employee changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub latest: Option<DateTime<Utc>>,
    pub employees: Vec<ChangedEmployee>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedEmployee {
    pub id: String,
    pub action: ChangeAction,
    pub last_changed: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAction {
    Inserted,
    Updated,
    Deleted,
    /// An action this client does not know, as BambooHR spelled it.
    Other(String),
}

impl ChangeAction {
    fn parse(s: &str) -> ChangeAction {
        match s {
            "Inserted" => ChangeAction::Inserted,
            "Updated" => ChangeAction::Updated,
            "Deleted" => ChangeAction::Deleted,
            other => ChangeAction::Other(other.to_string()),
        }
    }
}

/// An RFC 3339 / ISO 8601 time as BambooHR writes it (`+00:00`, `Z` or `+0000`).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .or_else(|_| DateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%z"))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A BambooHR company's API.
pub struct BambooClient {
    http: HttpClient,
    source: String,
}

impl std::fmt::Debug for BambooClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BambooClient")
            .field("base", &self.http.base().as_str())
            .field("credential", &self.source)
            .finish()
    }
}

impl BambooClient {
    /// A client for the company at `base_url` with the API key `key`; `source` is where
    /// the key came from (`keyring:bamboohr-api-key`), for error messages. `name` is the
    /// source's name in sources.toml (errors start with it).
    pub fn new(name: &str, base_url: &str, key: Secret, source: &str) -> AResult<BambooClient> {
        let limiter = RateLimiter::new(name, None, 4);
        let auth = Arc::new(BasicKeyAuth {
            key,
            source: source.to_string(),
        });
        let http = HttpClient::new(
            name,
            base_url,
            Timeouts::default(),
            limiter,
            auth,
            Arc::new(BambooProfile),
        )?;
        Ok(BambooClient {
            http,
            source: source.to_string(),
        })
    }

    /// How failures are retried (attempts, total time, backoff).
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
    }

    pub fn limiter(&self) -> Arc<RateLimiter> {
        self.http.limiter.clone()
    }

    async fn get_json(&self, path: String, what: &str) -> AResult<Value> {
        let resp = self
            .http
            .send(Req::get(path).header(ACCEPT, "application/json"))
            .await?;
        resp.json(self.http.system(), what)
    }

    fn bad(&self, what: &str, body: &Value) -> AdapterError {
        AdapterError::bad_response(self.http.system(), 200, what, body.to_string().as_bytes())
    }

    /// `GET /api/v1/employees/directory`: the employee objects (Active employees only).
    /// BambooHR answers 404 when nobody is listed; that stays an error (NotFound), because
    /// a wrong company URL looks the same and an empty directory must never be mistaken
    /// for everyone having left.
    pub async fn directory(&self) -> AResult<Vec<Value>> {
        let v = self
            .get_json("/api/v1/employees/directory".into(), "a directory")
            .await
            .map_err(|mut e| {
                if e.class == ErrorClass::NotFound {
                    e.message = format!(
                        "{} (BambooHR answers 404 for an empty directory, and for a wrong company URL)",
                        e.message
                    );
                }
                e
            })?;
        match v.get("employees").and_then(Value::as_array) {
            Some(list) => Ok(list.clone()),
            None => Err(self.bad("a directory with an employees array", &v)),
        }
    }

    /// `GET /api/v1/employees/changed?since=…`: each employee changed after `since`.
    pub async fn changed_since(&self, since: DateTime<Utc>) -> AResult<Changed> {
        let since = since.to_rfc3339_opts(SecondsFormat::Secs, false);
        let path = format!("/api/v1/employees/changed?since={}", path_segment(&since));
        let v = self.get_json(path, "a list of changed employees").await?;
        let Some(map) = v.get("employees").and_then(Value::as_object) else {
            return Err(self.bad("a changed list with an employees map", &v));
        };
        let mut employees = Vec::with_capacity(map.len());
        for (key, entry) in map {
            let id = entry
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(key)
                .to_string();
            let Some(action) = entry.get("action").and_then(Value::as_str) else {
                return Err(self.bad("an action for each changed employee", &v));
            };
            employees.push(ChangedEmployee {
                id,
                action: ChangeAction::parse(action),
                last_changed: entry
                    .get("lastChanged")
                    .and_then(Value::as_str)
                    .and_then(parse_time),
            });
        }
        let latest = v.get("latest").and_then(Value::as_str).and_then(parse_time);
        Ok(Changed { latest, employees })
    }

    /// `GET /api/v1/employees/{id}?fields=…`: the fields BambooHR returned (always `id`).
    pub async fn employee(&self, id: &str, fields: &[&str]) -> AResult<Value> {
        let list: Vec<String> = fields.iter().map(|f| path_segment(f)).collect();
        let path = format!(
            "/api/v1/employees/{}?fields={}",
            path_segment(id),
            list.join(",")
        );
        let v = self.get_json(path, "an employee").await?;
        if !v.is_object() {
            return Err(self.bad("an employee object", &v));
        }
        Ok(v)
    }

    /// A cheap authenticated call (`changed` since now, which lists nothing): whether the
    /// key is accepted. A refused key's error says so and names where the key came from.
    pub async fn test_connection(&self) -> AResult<String> {
        match self.changed_since(Utc::now()).await {
            Ok(_) => Ok(format!(
                "{}: the API key from {} was accepted by {}",
                self.http.system(),
                self.source,
                self.http.base()
            )),
            Err(mut e) if e.class == ErrorClass::Unauthorized => {
                // The shared client has already said "<system> rejected the credential
                // from <source> (expired or revoked?): <detail>"; keep only the detail.
                let detail = e
                    .message
                    .split_once("(expired or revoked?): ")
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| e.message.clone());
                e.message = format!(
                    "BambooHR refused the API key from {} (check the key, and that its user may use the API): {detail}",
                    self.source
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_dialect_classifies_as_bamboohr_answers() {
        let p = BambooProfile;
        let e = p.classify("hr", 429, &headers(&[("retry-after", "7")]), b"");
        assert_eq!(
            e.class.retry_after(),
            Some(std::time::Duration::from_secs(7))
        );
        let e = p.classify("hr", 503, &headers(&[("retry-after", "2")]), b"");
        assert!(matches!(e.class, ErrorClass::RateLimited { .. }), "{e}");
        let e = p.classify("hr", 503, &headers(&[]), b"");
        assert_eq!(e.class, ErrorClass::Transient);
        let e = p.classify("hr", 403, &headers(&[(ERROR_HEADER, "No access")]), b"");
        assert_eq!(e.class, ErrorClass::Unauthorized);
        assert_eq!(e.message, "No access");
        assert!(e.to_string().contains("HTTP 403"), "{e}");
        assert_eq!(
            p.classify("hr", 404, &headers(&[]), b"").class,
            ErrorClass::NotFound
        );
        let e = p.classify("hr", 400, &headers(&[(MESSAGE_HEADER, "Bad field")]), b"");
        assert_eq!(e.message, "Bad field");
        assert_eq!(
            p.classify("hr", 400, &headers(&[]), b"").class,
            ErrorClass::Permanent
        );
        assert!(
            p.rate_signal(503, &headers(&[("retry-after", "1")]), b"")
                .throttled
        );
        assert!(!p.rate_signal(500, &headers(&[]), b"").throttled);
    }

    #[test]
    fn times_parse_in_bamboohr_spellings() {
        let want = DateTime::parse_from_rfc3339("2026-01-31T18:42:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for s in [
            "2026-01-31T18:42:00+00:00",
            "2026-01-31T18:42:00Z",
            "2026-01-31T18:42:00+0000",
        ] {
            assert_eq!(parse_time(s), Some(want), "{s}");
        }
        assert_eq!(parse_time("yesterday"), None);
    }
}
