//! A stateful AWS account for the demo and the tests: IAM ([`super::aws_iam`]) and STS over
//! the query protocol, and the IAM Identity Center identity store
//! ([`super::aws_identitystore`]) over JSON 1.1, all on one endpoint as the AWS adapters
//! address it when `base_url` is set.
//!
//! Like AWS (and moto), a request is routed by the service its SigV4 credential scope
//! names: `iam` and `sts` take form-encoded `Action=...` POSTs and answer XML in their
//! namespaces; `identitystore` takes `X-Amz-Target: AWSIdentityStore.<Operation>` with an
//! `application/x-amz-json-1.1` body and answers JSON, errors as `__type`.
//!
//! Authentication: every request must carry a well-formed `Authorization: AWS4-HMAC-SHA256
//! Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...` and
//! `X-Amz-Date` within five minutes of now, naming an active access key of this account;
//! the signature is recomputed with the `aws-sigv4` crate and compared. Failures are the
//! vendor's: `MissingAuthenticationToken`, `IncompleteSignature`, `InvalidClientTokenId`,
//! `SignatureDoesNotMatch` (403, query) and their JSON 1.1 counterparts (400).
//!
//! Faults: the shared [`inject`] middleware and an optional fixed-window limit, both in
//! style [`ThrottleStyle::Aws`] (IAM and STS: 400 `Throttling` with no Retry-After, as
//! AWS documents; the identity store: 400 `ThrottlingException` with `RetryAfterSeconds`);
//! IAM and STS share one account-wide bucket, the identity store has its own.
//! [`FailRule`]s and lost responses ([`super::rules`]); [`AwsHandle::reject_user`] makes
//! both services refuse to create one user (400 `InvalidInput` / `ValidationException`);
//! eventual consistency: new users and memberships reach reads after
//! [`Faults::visibility_delay`], writes see the true state.

#![allow(clippy::result_large_err)]

use super::fault::{
    FaultProfile, Faults, ThrottleStyle, aws_json_response, aws_query_error, inject, request_id,
    xml_escape,
};
use super::log::{LoggedRequest, RequestLog, record};
use super::ratelimit::{Enforcer, RateWindows, enforce};
use super::rules::{self, FailRule, Rules, VendorBodies};
use super::{SimServer, WriteCounts, aws_iam, aws_identitystore};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const IAM_VERSION: &str = "2010-05-08";
pub const STS_VERSION: &str = "2011-06-15";
/// How far `X-Amz-Date` may be from the server's clock.
const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone)]
pub struct AwsSimOptions {
    pub account_id: String,
    /// The region the identity store lives in (IAM is global).
    pub region: String,
    pub identity_store_id: String,
    /// The IAM user that owns the access key below (it exists in IAM from the start).
    pub admin_user: String,
    /// The admin's access key; the default is a fresh random key for every simulator.
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Recompute and compare every SigV4 signature (false: check form, key and date only).
    pub verify_signatures: bool,
    pub faults: FaultProfile,
    /// Requests per `rate_window`, for the IAM+STS bucket and (separately) the identity
    /// store's; None: unlimited.
    pub rate_limit: Option<u32>,
    pub rate_window: Duration,
    pub lost_response_rate: f64,
    pub seed: u64,
}

impl Default for AwsSimOptions {
    fn default() -> Self {
        AwsSimOptions {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            identity_store_id: "d-1234567890".into(),
            admin_user: "accessdesk-admin".into(),
            // Fresh for every simulator, like every simulator's credential.
            access_key_id: aws_id("AKIA", 16),
            secret_access_key: secret_key(),
            verify_signatures: true,
            faults: FaultProfile::none(),
            rate_limit: None,
            rate_window: Duration::from_secs(1),
            lost_response_rate: 0.0,
            seed: 7,
        }
    }
}

/// An access key of the account.
#[derive(Debug, Clone)]
pub(crate) struct AccessKey {
    pub(crate) user: String,
    pub(crate) secret: String,
    pub(crate) active: bool,
    pub(crate) created: chrono::DateTime<chrono::Utc>,
}

/// Everything the account holds; one lock for both services.
#[derive(Debug, Default)]
pub(crate) struct Account {
    pub(crate) iam: aws_iam::Iam,
    pub(crate) store: aws_identitystore::Store,
    /// Access key id -> key.
    pub(crate) keys: BTreeMap<String, AccessKey>,
    /// User names whose creation both services refuse: name (lowercase) -> message.
    pub(crate) rejected: HashMap<String, String>,
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<Account>,
    pub(crate) opts: AwsSimOptions,
    pub(crate) faults: Arc<Faults>,
    limits: Arc<RateWindows>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    base_url: OnceLock<String>,
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Account> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn visible_from(&self) -> Instant {
        Instant::now() + self.faults.visibility_delay()
    }
}

/// Who signed the request (put into request extensions by [`authenticate`]).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) user: String,
    pub(crate) service: String,
}

/// Steers and inspects a running AWS simulator.
#[derive(Clone)]
pub struct AwsHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AwsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsHandle")
    }
}

impl AwsHandle {
    /// What systems.toml's `base_url` names, for both AWS adapters.
    pub fn base_url(&self) -> String {
        self.inner.base_url.get().cloned().unwrap_or_default()
    }

    pub fn options(&self) -> &AwsSimOptions {
        &self.inner.opts
    }

    pub fn account_id(&self) -> &str {
        &self.inner.opts.account_id
    }

    pub fn identity_store_id(&self) -> &str {
        &self.inner.opts.identity_store_id
    }

    /// The admin's key pair as the keychain holds it: `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
    pub fn credential(&self) -> String {
        format!(
            "{}:{}",
            self.inner.opts.access_key_id, self.inner.opts.secret_access_key
        )
    }

    /// The admin's ARN (what `GetUser` and `GetCallerIdentity` name).
    pub fn admin_arn(&self) -> String {
        aws_iam::user_arn(
            &self.inner.opts.account_id,
            "/",
            &self.inner.opts.admin_user,
        )
    }

    /// A new active access key for an existing IAM user: (id, secret).
    pub fn add_access_key(&self, user: &str) -> Option<(String, String)> {
        let mut a = self.inner.lock();
        aws_iam::create_access_key(&mut a, user)
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The rate windows (buckets `iam` and `identitystore`).
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    pub fn clear_rules(&self) {
        self.inner.rules.clear();
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    /// Refuse every creation of a user named `user_name` (case-insensitive) in IAM (400
    /// `InvalidInput`) and the identity store (400 `ValidationException`) with `message`:
    /// a failure no retry fixes, for an admin to triage.
    pub fn reject_user(&self, user_name: &str, message: &str) {
        self.inner
            .lock()
            .rejected
            .insert(user_name.to_lowercase(), message.to_string());
    }

    /// IAM users (the admin included), by name.
    pub fn iam_users(&self) -> Vec<aws_iam::IamUser> {
        self.inner.lock().iam.users.values().cloned().collect()
    }

    pub fn iam_user(&self, name: &str) -> Option<aws_iam::IamUser> {
        self.inner
            .lock()
            .iam
            .users
            .get(&name.to_lowercase())
            .cloned()
    }

    /// Create an IAM group directly (seeding without a request).
    pub fn seed_iam_group(&self, name: &str) {
        let account = self.inner.opts.account_id.clone();
        aws_iam::new_group(&mut self.inner.lock(), &account, name, "/");
    }

    /// Put an IAM user in a group directly, as an admin in the AWS console would (no
    /// request, not counted). False when either does not exist.
    pub fn iam_add_to_group(&self, group: &str, user: &str) -> bool {
        let mut a = self.inner.lock();
        let Some(name) = a
            .iam
            .users
            .get(&user.to_lowercase())
            .map(|u| u.user_name.clone())
        else {
            return false;
        };
        match a.iam.groups.get_mut(&group.to_lowercase()) {
            Some(g) => {
                g.members.insert(name, Instant::now());
                true
            }
            None => false,
        }
    }

    /// The true (not eventually consistent) members of an IAM group, by user name.
    pub fn iam_group_members(&self, group: &str) -> Vec<String> {
        self.inner
            .lock()
            .iam
            .groups
            .get(&group.to_lowercase())
            .map(|g| g.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// IAM user creations and group additions, for "nothing happened twice" checks.
    pub fn iam_counts(&self) -> WriteCounts {
        self.inner.lock().iam.counts.clone()
    }

    /// Identity store users, in creation order.
    pub fn store_users(&self) -> Vec<aws_identitystore::StoreUser> {
        self.inner.lock().store.users_in_order()
    }

    /// Create an identity store group directly; returns its GroupId.
    pub fn seed_store_group(&self, display_name: &str) -> String {
        let store_id = self.inner.opts.identity_store_id.clone();
        aws_identitystore::new_group(&mut self.inner.lock().store, &store_id, display_name)
    }

    /// The true member UserIds of an identity store group (by display name).
    pub fn store_group_members(&self, display_name: &str) -> Vec<String> {
        self.inner.lock().store.members_of_named(display_name)
    }

    /// Identity store user creations and membership creations.
    pub fn store_counts(&self) -> WriteCounts {
        self.inner.lock().store.counts.clone()
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.count(f)
    }

    pub fn clear_log(&self) {
        self.inner.log.clear();
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: AwsSimOptions) -> std::io::Result<(SimServer, AwsHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Aws);
    let limits = Arc::new(RateWindows::new(
        opts.rate_limit.unwrap_or(u32::MAX),
        opts.rate_window,
    ));
    let mut account = Account::default();
    aws_iam::new_user(
        &mut account,
        &opts.admin_user,
        "/",
        Vec::new(),
        Instant::now(),
        &opts,
    );
    account.keys.insert(
        opts.access_key_id.clone(),
        AccessKey {
            user: opts.admin_user.clone(),
            secret: opts.secret_access_key.clone(),
            active: true,
            created: chrono::Utc::now(),
        },
    );
    // The admin is not counted as a create: it was there before the test.
    account.iam.counts = WriteCounts::default();
    let inner = Arc::new(Inner {
        state: Mutex::new(account),
        rules: Rules::new(AwsBodies, opts.lost_response_rate, opts.seed ^ 0xa3a5),
        opts,
        faults: faults.clone(),
        limits,
        log: Arc::new(RequestLog::default()),
        base_url: OnceLock::new(),
    });
    let app = axum::Router::new()
        .route("/", axum::routing::any(dispatch))
        .fallback(not_found)
        .layer(from_fn_with_state(inner.clone(), authenticate))
        .layer(from_fn_with_state(
            Arc::new(Enforcer {
                windows: inner.limits.clone(),
                style: ThrottleStyle::Aws,
                bucket: |_, _, h| {
                    if is_json(h) { "identitystore" } else { "iam" }
                },
            }),
            enforce,
        ))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner.clone());
    let server = SimServer::spawn(app).await?;
    let _ = inner.base_url.set(server.base_url());
    Ok((server, AwsHandle { inner }))
}

// ---------------------------------------------------------------------------------------
// Responses in both protocols
// ---------------------------------------------------------------------------------------

fn is_json(h: &HeaderMap) -> bool {
    h.contains_key("x-amz-target")
}

/// An error in the protocol the request used.
#[derive(Debug, Clone)]
pub(crate) struct AwsError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    /// Extra members of a JSON error (`Reason`, `ResourceType`, ...).
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl AwsError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }
    pub(crate) fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// An extra member of the JSON error body (`Reason`, `ResourceType`, ...).
    pub(crate) fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
    pub(crate) fn query(&self) -> Response {
        let kind = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        aws_query_error(self.status, kind, &self.code, &self.message)
    }
    pub(crate) fn json(&self) -> Response {
        let mut body =
            json!({"__type": self.code, "Message": self.message, "RequestId": request_id()});
        for (k, v) in &self.extra {
            body[k] = v.clone();
        }
        aws_json_response(self.status, &self.code, body)
    }
}

/// A query-protocol success: `<{action}Response xmlns=NS>[<{action}Result>result</...>]
/// <ResponseMetadata>...`.
pub(crate) fn query_ok(action: &str, ns: &str, result: Option<String>) -> Response {
    let result = result
        .map(|r| format!("<{action}Result>{r}</{action}Result>"))
        .unwrap_or_default();
    let body = format!(
        "<{action}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        request_id()
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    r
}

/// `<name>escaped text</name>`.
pub(crate) fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(text))
}

pub(crate) fn json_ok(body: serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

/// AWS's shapes for [`FailRule`] faults, by the protocol of the request.
struct AwsBodies;

impl VendorBodies for AwsBodies {
    fn malformed(&self, req: &HeaderMap) -> Response {
        let (ct, body) = if is_json(req) {
            (
                "application/x-amz-json-1.1",
                "{\"Users\":[{\"UserId\":\"12345".to_string(),
            )
        } else {
            (
                "text/xml",
                format!(
                    "<ListUsersResponse xmlns=\"{IAM_XMLNS}\"><ListUsersResult><Users><member><UserName>a"
                ),
            )
        };
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(ct));
        r
    }
    fn unexpected_shape(&self, req: &HeaderMap) -> Response {
        if is_json(req) {
            json_ok(json!({"Users": "none", "UserId": 42, "GroupMemberships": {"x": 1}}))
        } else {
            query_ok(
                "Unexpected",
                IAM_XMLNS,
                Some("<Surprise>1</Surprise>".into()),
            )
        }
    }
    fn error(&self, req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        let e = AwsError::new(status, code, message);
        if is_json(req) { e.json() } else { e.query() }
    }
    fn server_error(&self, req: &HeaderMap) -> Response {
        ThrottleStyle::Aws.server_error(req)
    }
}

async fn not_found(req: Request) -> Response {
    let e = AwsError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("No operation at {} {}", req.method(), req.uri().path()),
    );
    if is_json(req.headers()) {
        e.json()
    } else {
        e.query()
    }
}

// ---------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Authorization {
    pub(crate) key_id: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

pub(crate) fn parse_authorization(v: &str) -> Option<Authorization> {
    let rest = v.trim().strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    let signature = signature?;
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_string).collect();
    let ok = !key_id.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !service.is_empty()
        && signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && signed_headers.iter().any(|h| h == "host")
        && signed_headers.iter().all(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    ok.then(|| Authorization {
        key_id: key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// A refused signature, as the protocol of the request shows it.
fn auth_error(json_protocol: bool, kind: AuthFailure, detail: &str) -> Response {
    let (query_code, json_code, json_status) = match kind {
        AuthFailure::Missing => (
            "MissingAuthenticationToken",
            "MissingAuthenticationTokenException",
            StatusCode::FORBIDDEN,
        ),
        AuthFailure::Incomplete => (
            "IncompleteSignature",
            "IncompleteSignatureException",
            StatusCode::BAD_REQUEST,
        ),
        AuthFailure::UnknownKey => (
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            StatusCode::BAD_REQUEST,
        ),
        AuthFailure::Signature => (
            "SignatureDoesNotMatch",
            "InvalidSignatureException",
            StatusCode::BAD_REQUEST,
        ),
    };
    if json_protocol {
        AwsError::new(json_status, json_code, detail).json()
    } else {
        // As IAM's common errors list them: a malformed signature is a bad request, the
        // others are refusals.
        let status = if kind == AuthFailure::Incomplete {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::FORBIDDEN
        };
        AwsError::new(status, query_code, detail).query()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthFailure {
    Missing,
    Incomplete,
    UnknownKey,
    Signature,
}

const BAD_TOKEN: &str = "The security token included in the request is invalid.";
const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Check the request's SigV4 signature; the caller goes into the request's extensions.
async fn authenticate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return AwsError::bad("ValidationError", "The request body could not be read").query();
    };
    let json_protocol = is_json(&parts.headers);
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authz) = header("authorization") else {
        return auth_error(
            json_protocol,
            AuthFailure::Missing,
            "Request is missing Authentication Token",
        );
    };
    let Some(a) = parse_authorization(authz) else {
        return auth_error(
            json_protocol,
            AuthFailure::Incomplete,
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' (with host) parameters, in the AWS4-HMAC-SHA256 form.",
        );
    };
    let json_protocol = json_protocol || a.service == "identitystore";
    let Some(date) = header("x-amz-date").and_then(parse_amz_date) else {
        return auth_error(
            json_protocol,
            AuthFailure::Incomplete,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    };
    let now = SystemTime::now();
    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return auth_error(
            json_protocol,
            AuthFailure::Signature,
            &format!(
                "Signature expired: {} is now earlier or later than 5 minutes from {} (check this machine's clock).",
                header("x-amz-date").unwrap_or(""),
                chrono::DateTime::<chrono::Utc>::from(now).format("%Y%m%dT%H%M%SZ")
            ),
        );
    }
    if !header("x-amz-date").is_some_and(|d| d.starts_with(&a.date)) {
        return auth_error(
            json_protocol,
            AuthFailure::Signature,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        );
    }
    if parts.headers.contains_key("x-amz-security-token") {
        // The simulator issues no temporary credentials.
        return auth_error(json_protocol, AuthFailure::UnknownKey, BAD_TOKEN);
    }
    let key = inner.lock().keys.get(&a.key_id).cloned();
    let Some(key) = key.filter(|k| k.active) else {
        return auth_error(json_protocol, AuthFailure::UnknownKey, BAD_TOKEN);
    };
    if inner.opts.verify_signatures {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        match expected_signature(
            &a,
            &key.secret,
            parts.method.as_str(),
            path,
            &parts.headers,
            &body,
            date,
        ) {
            Some(sig) if sig == a.signature => {}
            _ => return auth_error(json_protocol, AuthFailure::Signature, BAD_SIGNATURE),
        }
    }
    parts.extensions.insert(Caller {
        user: key.user,
        service: a.service,
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(body)))
        .await
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(SystemTime::from(t.and_utc()))
}

/// The signature the client should have sent, recomputed by the `aws-sigv4` crate from
/// what the request says it signed.
fn expected_signature(
    a: &Authorization,
    secret: &str,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    time: SystemTime,
) -> Option<String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let host = headers.get("host")?.to_str().ok()?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return None;
    }
    let url = format!("http://{host}{path_and_query}");
    url.parse::<axum::http::Uri>().ok()?.authority()?;
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &a.signed_headers {
        // The signer adds these two itself (from the time, and the session token).
        if name == "x-amz-date" || name == "x-amz-security-token" {
            continue;
        }
        let values = headers.get_all(name.as_str());
        let mut any = false;
        for v in values {
            signed.push((name.as_str(), v.to_str().ok()?));
            any = true;
        }
        if !any {
            return None;
        }
    }
    let creds = aws_credential_types::Credentials::new(
        a.key_id.clone(),
        secret.to_string(),
        None,
        None,
        "accessdesk-sim",
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&a.region)
        .name(&a.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let req = SignableRequest::new(
        method,
        url.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (_, signature) = sign(req, &params).ok()?.into_parts();
    Some(signature)
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

/// The form parameters of a query-protocol request (body and URL query together).
pub(crate) type Params = BTreeMap<String, String>;

async fn dispatch(
    State(inner): State<Arc<Inner>>,
    caller: Option<axum::Extension<Caller>>,
    req: Request,
) -> Response {
    let Some(axum::Extension(caller)) = caller else {
        return auth_error(
            false,
            AuthFailure::Missing,
            "Request is missing Authentication Token",
        );
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return AwsError::bad("ValidationError", "The request body could not be read").query();
    };
    match caller.service.as_str() {
        "identitystore" => {
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match aws_identitystore::handle(&inner, target, &body) {
                Ok(v) => json_ok(v),
                Err(e) => e.json(),
            }
        }
        service @ ("iam" | "sts") => {
            let mut params = Params::new();
            for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .chain(url::form_urlencoded::parse(&body))
            {
                params.insert(k.into_owned(), v.into_owned());
            }
            let Some(action) = params.get("Action").cloned() else {
                return AwsError::bad(
                    "MissingAction",
                    "The request must contain the parameter Action.",
                )
                .query();
            };
            let (version, ns) = if service == "iam" {
                (IAM_VERSION, IAM_XMLNS)
            } else {
                (STS_VERSION, STS_XMLNS)
            };
            if params.get("Version").map(String::as_str) != Some(version) {
                return AwsError::bad(
                    "InvalidAction",
                    format!(
                        "Could not find operation {action} for version {}",
                        params
                            .get("Version")
                            .map(String::as_str)
                            .unwrap_or("(none)")
                    ),
                )
                .query();
            }
            let result = if service == "iam" {
                aws_iam::handle(&inner, &caller, &action, &params)
            } else {
                sts(&inner, &caller, &action)
            };
            match result {
                Ok(xml) => query_ok(&action, ns, xml),
                Err(e) => e.query(),
            }
        }
        other => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("This endpoint does not serve the service {other:?}"),
        )
        .query(),
    }
}

fn sts(inner: &Inner, caller: &Caller, action: &str) -> Result<Option<String>, AwsError> {
    match action {
        "GetCallerIdentity" => {
            let a = inner.lock();
            let user = a
                .iam
                .users
                .get(&caller.user.to_lowercase())
                .ok_or_else(|| {
                    AwsError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", BAD_TOKEN)
                })?;
            Ok(Some(format!(
                "{}{}{}",
                el("Arn", &user.arn),
                el("UserId", &user.user_id),
                el("Account", &inner.opts.account_id)
            )))
        }
        other => Err(AwsError::bad(
            "InvalidAction",
            format!("Could not find operation {other} for version {STS_VERSION}"),
        )),
    }
}

/// `PREFIX` + `n` characters of `[A-Z0-9]`, like IAM's unique ids and key ids.
pub(crate) fn aws_id(prefix: &str, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A random secret access key (40 characters of base64).
pub(crate) fn secret_key() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub(crate) fn iso8601(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_headers_are_parsed_strictly() {
        let good = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
        let a = parse_authorization(good).unwrap();
        assert_eq!(
            (
                a.key_id.as_str(),
                a.date.as_str(),
                a.region.as_str(),
                a.service.as_str()
            ),
            ("AKIDEXAMPLE", "20150830", "us-east-1", "iam")
        );
        assert_eq!(a.signed_headers, ["content-type", "host", "x-amz-date"]);
        for bad in [
            "",
            "Bearer abc",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request",
            &good.replace("aws4_request", "aws5_request"),
            &good.replace("20150830", "2015083"),
            &good.replace("Signature=5d", "Signature=zz"),
            &good.replace("content-type;host;x-amz-date", "content-type;x-amz-date"),
            &good.replace(", Signature=", ", Sig="),
        ] {
            assert!(parse_authorization(bad).is_none(), "{bad}");
        }
    }

    /// The documented SigV4 example (IAM ListUsers, GET): the recomputation agrees.
    #[test]
    fn the_documented_example_verifies() {
        let a = parse_authorization("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7").unwrap();
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        h.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let t = parse_amz_date("20150830T123600Z").unwrap();
        let sig = expected_signature(
            &a,
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "GET",
            "/?Action=ListUsers&Version=2010-05-08",
            &h,
            b"",
            t,
        );
        assert_eq!(sig.as_deref(), Some(a.signature.as_str()));
        let wrong = expected_signature(
            &a,
            "not-the-secret",
            "GET",
            "/?Action=ListUsers&Version=2010-05-08",
            &h,
            b"",
            t,
        );
        assert_ne!(wrong.as_deref(), Some(a.signature.as_str()));
        // A host the signer could not use is a refusal, not a panic.
        h.insert("host", HeaderValue::from_static(""));
        assert_eq!(expected_signature(&a, "x", "GET", "/", &h, b"", t), None);
    }
}
