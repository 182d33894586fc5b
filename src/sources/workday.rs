//! A Workday client for the HR-source poller: the tenant's workers through the REST API
//! (`GET {rest endpoint}/workers`, `limit`/`offset` pages of at most 100) or a RaaS JSON
//! report (`GET /ccx/service/customreport2/{tenant}/{owner}/{report}?format=json`), and a
//! connection test.
//!
//! - **Where:** `base_url` is the tenant's REST API endpoint as Workday's `View API
//!   Clients` task shows it (`https://wd2-impl-services1.workday.com/ccx/api/v1/northwind`).
//!   The token endpoint is derived from it (`/ccx/oauth2/{tenant}/token`) unless
//!   `token_url` says otherwise; a `report = "owner/Report_Name"` reads that RaaS report
//!   on the same host instead of `/workers`.
//! - **Auth:** OAuth 2.0. The credential (keychain) is a JSON object: `client_id`,
//!   `client_secret` and, for an API client for integrations, `refresh_token`; without a
//!   refresh token the client-credentials grant is used. The token endpoint is asked with
//!   the client authenticated by HTTP Basic; the access token is cached until shortly
//!   before it expires and fetched again after a 401 ([`TokenAuth`]). The secrets reach
//!   only the token request's body and `Authorization` headers.
//! - **Errors and limits** ([`WorkdayProfile`]): Workday publishes no rate limits; a
//!   refusal is 429 with `Retry-After` (honoured, retried with backoff), a 503 is
//!   transient; 401/403 are refusals of the credential; the message comes from Workday's
//!   `error` (or OAuth's `error_description`) and names the HTTP status, never a secret.
//! - **A consistent snapshot:** offset paging over a collection that changes between
//!   pages can skip or repeat a worker, and a skipped worker would look like a leaver. A
//!   read whose `total` moves between pages, or whose ids repeat or fall short of it, is
//!   read again; if it is still inconsistent the snapshot is marked incomplete, and the
//!   poller infers no leaver from it ([`Snapshot::complete`]).

use crate::adapters::auth::oauth::{
    BasicClientCredentials, Grant, RefreshToken, TokenAuth, TokenEndpoint,
};
use crate::adapters::error::{AResult, AdapterError, ErrorClass};
use crate::adapters::http::{
    HttpClient, RateLimiter, RateSignal, Req, RetryPolicy, Timeouts, path_segment, retry_after,
};
use crate::adapters::kit::errors::{Class, VendorProfile, status_class};
use crate::secrets::Secret;
use reqwest::header::{ACCEPT, HeaderMap};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The largest page Workday's REST APIs give.
pub const PAGE: usize = 100;

/// Workday's error and rate-limit dialect.
pub struct WorkdayProfile;

impl VendorProfile for WorkdayProfile {
    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        RateSignal::generic(status, headers)
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        // OAuth errors say `error` (a code) and `error_description`; REST errors `error`.
        let detail = match (text("error"), text("error_description")) {
            (Some(code), Some(d)) => Some(format!("{code}: {d}")),
            (a, b) => a.or(b),
        };
        let class = match status {
            429 => Class::RateLimited,
            401 | 403 => Class::Unauthorized,
            // OAuth's invalid_grant (a revoked or wrong refresh token) is the credential's
            // fault, not a bad request to retry differently.
            400 if text("error").as_deref() == Some("invalid_grant") => Class::Unauthorized,
            _ => status_class(status),
        };
        let message = detail.unwrap_or_else(|| format!("HTTP {status}"));
        AdapterError::new(class.with_wait(retry_after(headers)), system, message)
            .with_status(status)
            .with_excerpt(body)
    }
}

/// The keychain entry's JSON.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A Workday API client's credential.
pub struct WorkdayCredential {
    pub client_id: String,
    pub client_secret: Secret,
    pub refresh_token: Option<Secret>,
}

impl std::fmt::Debug for WorkdayCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkdayCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl WorkdayCredential {
    /// Read the keychain entry's JSON; the error names what is wrong, never a value.
    pub fn parse(secret: &Secret, source: &str) -> Result<WorkdayCredential, String> {
        let raw: RawCredential = serde_json::from_str(secret.expose()).map_err(|e| {
            // serde's message can quote the input; keep only its category and place.
            let what = match e.classify() {
                serde_json::error::Category::Data => "is missing a field or has an unknown one (client_id, client_secret, refresh_token)",
                _ => "is not a JSON object",
            };
            format!(
                "the Workday credential from {source} {what} (line {}, column {}); it holds {{\"client_id\", \"client_secret\", \"refresh_token\"}}",
                e.line(),
                e.column()
            )
        })?;
        if raw.client_id.trim().is_empty() || raw.client_secret.is_empty() {
            return Err(format!(
                "the Workday credential from {source} has an empty client_id or client_secret"
            ));
        }
        Ok(WorkdayCredential {
            client_id: raw.client_id,
            client_secret: Secret::new(raw.client_secret),
            refresh_token: raw.refresh_token.filter(|r| !r.is_empty()).map(Secret::new),
        })
    }
}

/// What one read of the tenant gave.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub records: Vec<Value>,
    /// Every worker was read exactly once: the ones missing are no longer there.
    pub complete: bool,
}

/// The tenant's REST API endpoint split into its origin and tenant.
fn split_endpoint(base: &str) -> Option<(String, String)> {
    let url = url::Url::parse(base).ok()?;
    let segs: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
    let tenant = segs.last()?.to_string();
    let origin = url.origin().ascii_serialization();
    Some((origin, tenant))
}

/// A Workday tenant's API.
pub struct WorkdayClient {
    http: HttpClient,
    auth: Arc<TokenAuth>,
    source: String,
    /// `/ccx/api/v1/northwind` (the REST endpoint's path).
    rest_path: String,
    /// The RaaS report's path and query, when reading one.
    report: Option<String>,
}

impl std::fmt::Debug for WorkdayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkdayClient")
            .field("base", &self.http.base().as_str())
            .field("credential", &self.source)
            .finish()
    }
}

impl WorkdayClient {
    /// A client for the tenant whose REST API endpoint is `rest_endpoint`. `name` is the
    /// source's name (errors start with it); `source` names where the credential came from.
    pub fn new(
        name: &str,
        rest_endpoint: &str,
        cred: WorkdayCredential,
        source: &str,
        report: Option<&str>,
        token_url: Option<&str>,
    ) -> AResult<WorkdayClient> {
        let bad = |m: String| AdapterError::new(ErrorClass::Permanent, name, m);
        let (origin, tenant) = split_endpoint(rest_endpoint).ok_or_else(|| {
            bad(format!(
                "base_url {rest_endpoint:?} is not a Workday REST API endpoint (https://HOST/ccx/api/v1/TENANT)"
            ))
        })?;
        let rest_path = url::Url::parse(rest_endpoint)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        let report = match report {
            None => None,
            Some(r) => {
                let (owner, rep) = r
                    .split_once('/')
                    .filter(|(o, n)| !o.is_empty() && !n.is_empty() && !n.contains('/'))
                    .ok_or_else(|| {
                        bad(format!(
                            "report {r:?} is not OWNER/REPORT_NAME (as in the report's RaaS URL)"
                        ))
                    })?;
                Some(format!(
                    "/ccx/service/customreport2/{}/{}/{}?format=json",
                    path_segment(&tenant),
                    path_segment(owner),
                    path_segment(rep)
                ))
            }
        };
        let token_url = token_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("{origin}/ccx/oauth2/{}/token", path_segment(&tenant)));
        let limiter = RateLimiter::new(name, None, 4);
        let mut http = HttpClient::new(
            name,
            &origin,
            Timeouts::default(),
            limiter.clone(),
            Arc::new(crate::adapters::auth::NoAuth),
            Arc::new(WorkdayProfile),
        )?;
        let grant: Box<dyn Grant> = match cred.refresh_token {
            Some(refresh_token) => Box::new(RefreshToken {
                client_id: cred.client_id.clone(),
                refresh_token,
                token_url: token_url.clone(),
            }),
            None => Box::new(BasicClientCredentials {
                client_id: cred.client_id.clone(),
                token_url: token_url.clone(),
            }),
        };
        let endpoint = TokenEndpoint {
            url: token_url,
            timeouts: Timeouts::default(),
            limiter,
            retry: RetryPolicy::default(),
            profile: Arc::new(WorkdayProfile),
        };
        let auth = Arc::new(TokenAuth::with_basic_client(
            name,
            source,
            endpoint,
            grant,
            &cred.client_id,
            cred.client_secret,
        )?);
        http.set_auth(auth.clone());
        Ok(WorkdayClient {
            http,
            auth,
            source: source.to_string(),
            rest_path,
            report,
        })
    }

    /// How failures are retried (attempts, total time, backoff).
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
    }

    /// Whether it reads a RaaS report (else the Workers REST API).
    pub fn reads_report(&self) -> bool {
        self.report.is_some()
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

    /// One read of the Workers collection (`limit` per page): the workers and whether the
    /// pages were consistent.
    async fn read_workers(&self, limit: usize, most: usize) -> AResult<Snapshot> {
        let mut records = Vec::new();
        let mut seen = HashSet::new();
        let mut total = None::<u64>;
        let mut consistent = true;
        let mut offset = 0usize;
        loop {
            let path = format!("{}/workers?limit={limit}&offset={offset}", self.rest_path);
            let v = self.get_json(path, "a page of workers").await?;
            let (Some(t), Some(data)) = (
                v.get("total").and_then(Value::as_u64),
                v.get("data").and_then(Value::as_array),
            ) else {
                return Err(self.bad("a page of workers with total and data", &v));
            };
            if total.is_some_and(|was| was != t) {
                consistent = false;
            }
            total = Some(t);
            for w in data {
                let Some(id) = w.get("id").and_then(Value::as_str) else {
                    return Err(self.bad("a worker with an id", w));
                };
                if !seen.insert(id.to_string()) {
                    consistent = false;
                    continue;
                }
                records.push(w.clone());
            }
            offset += data.len();
            if data.is_empty() || offset as u64 >= t || records.len() >= most {
                break;
            }
        }
        let complete = consistent && Some(records.len() as u64) == total;
        Ok(Snapshot { records, complete })
    }

    /// Every current worker (`GET /workers`), read again once if the pages moved.
    pub async fn workers(&self) -> AResult<Snapshot> {
        let first = self.read_workers(PAGE, usize::MAX).await?;
        if first.complete {
            return Ok(first);
        }
        tracing::warn!(source = %self.http.system(), "the worker list changed while it was read; reading it again");
        self.read_workers(PAGE, usize::MAX).await
    }

    /// The RaaS report's entries (one response: a report is not paged).
    pub async fn report(&self) -> AResult<Snapshot> {
        let Some(path) = &self.report else {
            return Err(AdapterError::new(
                ErrorClass::Permanent,
                self.http.system(),
                "this source reads /workers, not a report",
            ));
        };
        let v = self.get_json(path.clone(), "a RaaS report").await?;
        let Some(entries) = v.get("Report_Entry").and_then(Value::as_array) else {
            return Err(self.bad("a report with a Report_Entry array", &v));
        };
        Ok(Snapshot {
            records: entries.clone(),
            complete: true,
        })
    }

    /// What the source reads: the report if one is named, else the workers.
    pub async fn snapshot(&self) -> AResult<Snapshot> {
        if self.report.is_some() {
            self.report().await
        } else {
            self.workers().await
        }
    }

    /// A few records, for `source preview`.
    pub async fn sample(&self, limit: usize) -> AResult<Vec<Value>> {
        if self.report.is_some() {
            let mut s = self.report().await?;
            s.records.truncate(limit);
            return Ok(s.records);
        }
        let mut s = self.read_workers(limit.clamp(1, PAGE), limit).await?;
        s.records.truncate(limit);
        Ok(s.records)
    }

    /// A token, then one small read: whether the credential and the endpoint work.
    pub async fn test_connection(&self) -> AResult<String> {
        let checked = if self.report.is_some() {
            self.report()
                .await
                .map(|s| format!("the report lists {}", s.records.len()))
        } else {
            self.get_json(
                format!("{}/workers?limit=1", self.rest_path),
                "a page of workers",
            )
            .await
            .map(|v| format!("{} current workers", v["total"].as_u64().unwrap_or(0)))
        };
        match checked {
            Ok(what) => Ok(format!(
                "{}: {} from {} was issued a token by {}'s token endpoint; {what}",
                self.http.system(),
                self.auth.who(),
                self.source,
                self.http.base()
            )),
            Err(mut e) if e.class == ErrorClass::Unauthorized => {
                e.message = format!(
                    "Workday refused the API client from {} (check the client id and secret, the refresh token, and the client's scopes): {}",
                    self.source, e.message
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }
}

/// The record id a poll keeps digests by: the WID (`id` from /workers, `WID` in a
/// report), else a report's `Employee_ID`.
pub fn record_id(record: &Value) -> Option<String> {
    ["id", "WID", "Employee_ID"]
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn endpoints_split_into_origin_and_tenant() {
        assert_eq!(
            split_endpoint("https://wd2-impl-services1.workday.com/ccx/api/v1/northwind"),
            Some((
                "https://wd2-impl-services1.workday.com".to_string(),
                "northwind".to_string()
            ))
        );
        assert_eq!(
            split_endpoint("http://127.0.0.1:9/ccx/api/v1/acme/"),
            Some(("http://127.0.0.1:9".to_string(), "acme".to_string()))
        );
        assert_eq!(split_endpoint("not a url"), None);
    }

    #[test]
    fn the_dialect_classifies_as_workday_answers() {
        let p = WorkdayProfile;
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        let e = p.classify("wd", 429, &h, br#"{"error":"limit"}"#);
        assert_eq!(
            e.class.retry_after(),
            Some(std::time::Duration::from_secs(3))
        );
        let e = p.classify(
            "wd",
            400,
            &HeaderMap::new(),
            br#"{"error":"invalid_grant","error_description":"revoked"}"#,
        );
        assert_eq!(e.class, ErrorClass::Unauthorized);
        assert!(e.to_string().contains("invalid_grant: revoked"), "{e}");
        assert!(e.to_string().contains("HTTP 400"), "{e}");
        let e = p.classify("wd", 400, &HeaderMap::new(), br#"{"error":"limit: bad"}"#);
        assert_eq!(e.class, ErrorClass::Permanent);
        assert_eq!(
            p.classify("wd", 503, &HeaderMap::new(), b"").class,
            ErrorClass::Transient
        );
    }

    #[test]
    fn credentials_parse_without_echoing_values() {
        let ok = WorkdayCredential::parse(
            &Secret::new(r#"{"client_id":"c1","client_secret":"s3cr3t","refresh_token":"r"}"#),
            "keyring:wd",
        )
        .unwrap();
        assert_eq!(ok.client_id, "c1");
        assert!(ok.refresh_token.is_some());
        let cc = WorkdayCredential::parse(
            &Secret::new(r#"{"client_id":"c1","client_secret":"s3cr3t"}"#),
            "keyring:wd",
        )
        .unwrap();
        assert!(cc.refresh_token.is_none());
        for bad in [
            "TOPSECRETVALUE",
            r#"{"client_id":"c1","client_secret":"TOPSECRETVALUE","extra":"TOPSECRETVALUE"}"#,
            r#"{"client_id":"","client_secret":"TOPSECRETVALUE"}"#,
        ] {
            let e = WorkdayCredential::parse(&Secret::new(bad), "keyring:wd").unwrap_err();
            assert!(e.contains("keyring:wd"), "{e}");
            assert!(!e.contains("TOPSECRETVALUE"), "{e}");
        }
    }

    #[test]
    fn record_ids_prefer_the_wid() {
        assert_eq!(
            record_id(&serde_json::json!({"id": "w1", "workerId": "21001"})),
            Some("w1".into())
        );
        assert_eq!(
            record_id(&serde_json::json!({"WID": "w2", "Employee_ID": "21002"})),
            Some("w2".into())
        );
        assert_eq!(
            record_id(&serde_json::json!({"Employee_ID": "21003"})),
            Some("21003".into())
        );
        assert_eq!(record_id(&serde_json::json!({"name": "x"})), None);
    }
}
