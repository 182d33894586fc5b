//! A stateful Google Workspace Admin SDK Directory API simulator: users, groups and
//! members behind Google's OAuth 2.0 token endpoint for service accounts with domain-wide
//! delegation, on the wire paths of Google's description
//! (`tests/specs/google/admin.directory_v1.openapi.json`, made from the discovery document
//! `admin.directory_v1.json`) so that Stoplight Prism in proxy mode reports no violations
//! (`tests/sim_google.rs`).
//!
//! What it enforces, as Google documents or answers it:
//! - `POST /token` (`auth.rs`): the RFC 7523 JWT bearer grant. The assertion is RS256,
//!   checked against the service account's registered public key, `aud` (Google's token
//!   URL or this simulator's), `exp` no more than an hour after `iat`, `sub` an existing
//!   user, every scope in the account's domain-wide delegation allow-list. Refusals as
//!   Google's token endpoint gives them (400 `invalid_grant`, 401 `unauthorized_client`).
//!   As at Google, a `sub` who is not an admin (or no `sub`) still gets a token; the
//!   Directory then answers 403 `forbidden`.
//!   Access tokens expire ([`GoogleHandle::set_token_ttl`]), can be revoked, and carry
//!   their scopes: each method accepts the scopes its discovery entry lists.
//! - Google's error body everywhere (`{"error": {"code", "message", "errors": [{"message",
//!   "domain", "reason"}], "status"}}`): 401 `authError` "Invalid Credentials" (401
//!   `required` "Login Required." without a token) with `WWW-Authenticate`, 403
//!   `insufficientPermissions`, 403 `forbidden` "Not Authorized to access this
//!   resource/api" (the impersonated user is not an admin, no `sub` was delegated, or an
//!   e-mail outside the simulator's domains, creating or reading: Google's answer to a
//!   user in a domain the account does not own), 404 `notFound` "Resource Not Found:
//!   userKey" (`groupKey`, `memberKey`; also a member to add who does not exist), 409
//!   `duplicate` ("Entity already exists.", "Member already exists."), 400 `invalid`
//!   naming the field, 400 `required`, 400 `badRequest` (a listing without `customer` or
//!   `domain`), 404 "Domain not found.", 400 `parseError`.
//! - Listings: `users.list` by `customer` (`my_customer` or the id) or `domain`, with
//!   `orderBy` (`email`, `givenName`, `familyName`), `sortOrder` and a `query` of
//!   `email:` (`x*` a prefix), `externalId:`, `givenName:`, `familyName:`, `isAdmin=`,
//!   `isSuspended=`, `orgUnitPath=` terms; `groups.list` by customer, domain or
//!   `userKey` (a user's groups); `members.list` with `roles`.
//! - Quotas: a per-user queries-per-minute window (2,400 by default; the user is
//!   `quotaUser` when given, else the impersonated admin) answered 403
//!   `userRateLimitExceeded` with no Retry-After or remaining headers; an optional limit of
//!   requests in flight per operation, 403 `quotaExceeded`; injected server errors 503
//!   `backendError` ([`ThrottleStyle::Google`]). Google also sends a plain 429
//!   `rateLimitExceeded` at times: not injected on its own; a [`FailRule`] with
//!   `BodyFault::reject(429, "rateLimitExceeded", ..)` makes one.
//! - Eventual consistency: a created user or membership is listed, and a created user is
//!   found by `users.get`, only after [`Faults::visibility_delay`]; writes, `members.get`
//!   and `members.hasMember` see the truth. For [`GoogleSimOptions::creation_settle`]
//!   after a create (0 by default), updating or deleting that user answers 412
//!   `conditionNotMet` "User creation is not complete.", as Google does.
//! - Paging: `maxResults` (users 1..=500, default 100, out of range a 400; groups and
//!   members capped at 200) and opaque `pageToken`s that name the last key returned, so a
//!   listing neither repeats nor skips anyone when others are added while it pages; an
//!   empty page leaves its array out, as Google does.
//! - Deprecation signals (off by default): `Deprecation` (RFC 9745, `@epoch`) and
//!   `Sunset` headers on every answer ([`GoogleHandle::set_deprecation`]).
//!
//! E-mails are kept lower-cased, as Google returns them, and matched case-insensitively.
//!
//! Simplifications (deliberate): users are deleted at once (no 20-day undelete window;
//! `showDeleted` is ignored); renaming `primaryEmail` keeps no alias; `fields`,
//! `projection`, `customFieldMask` and `viewType` are ignored (the whole resource is
//! returned); `orgUnitPath` is any path starting with `/`; members are users only (no
//! nested groups, no external members); `directMembersCount` counts the true members;
//! groups are visible at once; `users.update` merges like `users.patch` (Google's own
//! description says so), except that `patch` cannot clear a repeated field.
//!
//! Faults: the shared [`inject`] middleware (style [`ThrottleStyle::Google`]) and
//! test-steered [`FailRule`]s (malformed JSON, a 200 of the wrong shape, an HTML page, a
//! body cut off, a lost response, Google-shaped refusals via `BodyFault::reject`).

// Handlers bail out early with a ready Google error response; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod auth;
mod groups;
mod handle;
mod paging;
mod users;

pub use self::auth::{GOOGLE_TOKEN_URL, accepted_scopes, scopes};
pub use self::groups::{SimGroup, SimMember};
pub use self::handle::GoogleHandle;
pub use self::users::SimUser;
use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
pub use super::log::LoggedRequest;
use super::log::{RequestLog, record};
use super::ratelimit::{ConcurrencyLimit, RateWindows};
use super::rules::{self, Rules, VendorBodies};
pub use super::rules::{BodyFault, FailRule};
use super::{SimServer, WriteCounts};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Google's message for a spent per-user queries-per-minute quota.
pub const QPM_EXCEEDED: &str = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service 'admin.googleapis.com' for consumer 'project_number:100000000001'.";
/// The message of a refusal for too many requests of one operation in flight.
pub const CONCURRENCY_EXCEEDED: &str = "Quota exceeded for quota metric 'Concurrent requests' and limit 'Concurrent requests per operation' of service 'admin.googleapis.com'.";
/// Google's message when the caller may not touch a resource.
pub const NOT_AUTHORIZED: &str = "Not Authorized to access this resource/api";
/// The local part of the super admin every simulator starts with (at the first domain).
pub const ADMIN_LOCAL_PART: &str = "accessdesk.admin";

const PREFIX: &str = "/admin/directory/v1/";

#[derive(Debug, Clone)]
pub struct GoogleSimOptions {
    pub faults: FaultProfile,
    /// The account's domains; a primary e-mail elsewhere is refused (403 `forbidden`).
    pub domains: Vec<String>,
    /// The customer id (`my_customer` stands for it), returned as users' `customerId`.
    pub customer_id: String,
    /// Queries per user per window (Google: 2,400 per minute).
    pub queries_per_minute: u32,
    /// Length of the quota window (Google: one minute). Tests use a second or two.
    pub rate_window: Duration,
    /// Requests of one operation (e.g. `directory.members.insert`) in flight at once;
    /// beyond, 403 `quotaExceeded`. None: no limit.
    pub concurrency_limit: Option<u32>,
    /// How long an access token lives (Google: one hour; `expires_in` says a second less).
    pub token_ttl: Duration,
    /// How long after a create the user answers 412 "User creation is not complete." to
    /// updates and deletes. Zero: never.
    pub creation_settle: Duration,
    /// Send `Deprecation` and `Sunset` on every answer from the start.
    pub deprecation: Option<Deprecation>,
    /// Chance that a request is carried out but its response is lost (connection reset).
    pub lost_response_rate: f64,
    pub seed: u64,
}

impl Default for GoogleSimOptions {
    fn default() -> Self {
        GoogleSimOptions {
            faults: FaultProfile::none(),
            domains: vec!["example.com".into()],
            customer_id: "C01b2c3d4".into(),
            queries_per_minute: 2400,
            rate_window: Duration::from_secs(60),
            concurrency_limit: None,
            token_ttl: Duration::from_secs(3600),
            creation_settle: Duration::ZERO,
            deprecation: None,
            lost_response_rate: 0.0,
            seed: 7,
        }
    }
}

/// A deprecation notice: `Deprecation: @<since, epoch seconds>` (RFC 9745) and
/// `Sunset: <HTTP date>` (RFC 8594), with a `Link: <link>; rel="deprecation"` when given.
#[derive(Debug, Clone, PartialEq)]
pub struct Deprecation {
    pub since: SystemTime,
    pub sunset: SystemTime,
    pub link: Option<String>,
}

/// What can change at run time besides the directory.
#[derive(Debug)]
struct Settings {
    token_ttl: Duration,
    creation_settle: Duration,
    deprecation: Option<Deprecation>,
}

#[derive(Debug, Default)]
struct Directory {
    next_id: u64,
    users: BTreeMap<String, SimUser>,
    /// Lower-cased primary e-mail -> user id.
    by_email: HashMap<String, String>,
    groups: BTreeMap<String, SimGroup>,
    /// (group id, user id) -> the membership.
    members: BTreeMap<(String, String), groups::Membership>,
    accounts: HashMap<String, auth::ServiceAccount>,
    tokens: HashMap<String, auth::AccessToken>,
    counts: WriteCounts,
    token_requests: u64,
}

struct Inner {
    state: Mutex<Directory>,
    faults: Arc<Faults>,
    limits: Arc<RateWindows>,
    /// One limit per operation id.
    concurrency: HashMap<&'static str, Arc<ConcurrencyLimit>>,
    settings: Mutex<Settings>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    domains: Vec<String>,
    customer_id: String,
    /// Keys the page tokens' checksums.
    page_secret: u64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `email`'s domain is one of the account's.
    fn owns(&self, email: &str) -> bool {
        email
            .rsplit_once('@')
            .is_some_and(|(_, d)| self.domains.iter().any(|x| x.eq_ignore_ascii_case(d)))
    }

    /// When a resource created now becomes visible to reads.
    fn visible_at(&self) -> Instant {
        Instant::now() + self.faults.visibility_delay()
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port), with one super admin,
/// `accessdesk.admin@<first domain>`.
pub async fn spawn(opts: GoogleSimOptions) -> std::io::Result<(SimServer, GoogleHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Google);
    let concurrency = OPERATIONS
        .iter()
        .map(|op| {
            (
                *op,
                ConcurrencyLimit::new(opts.concurrency_limit.unwrap_or(0)),
            )
        })
        .collect();
    let domains = match opts.domains.is_empty() {
        true => vec!["example.com".to_string()],
        false => opts.domains.clone(),
    };
    let inner = Arc::new(Inner {
        state: Mutex::new(Directory::default()),
        faults: faults.clone(),
        limits: Arc::new(RateWindows::new(opts.queries_per_minute, opts.rate_window)),
        concurrency,
        settings: Mutex::new(Settings {
            token_ttl: opts.token_ttl,
            creation_settle: opts.creation_settle,
            deprecation: opts.deprecation.clone(),
        }),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(GoogleBodies, opts.lost_response_rate, opts.seed ^ 0x6006),
        customer_id: opts.customer_id.clone(),
        page_secret: opts.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5151,
        domains,
    });
    let handle = GoogleHandle::new(inner.clone());
    handle
        .seed_admin(&handle.admin_email(), "Accessdesk", "Admin")
        .map_err(std::io::Error::other)?;
    let app = router(inner, faults);
    let server = SimServer::spawn(app).await?;
    Ok((server, handle))
}

fn router(inner: Arc<Inner>, faults: Arc<Faults>) -> axum::Router {
    let d = |p: &str| format!("{PREFIX}{p}");
    axum::Router::new()
        .route(&d("users"), get(users::list).post(users::insert))
        .route(
            &d("users/{user_key}"),
            get(users::get_one)
                .put(users::write)
                .patch(users::write)
                .delete(users::delete),
        )
        .route(&d("groups"), get(groups::list).post(groups::insert))
        .route(&d("groups/{group_key}"), get(groups::get_one))
        .route(
            &d("groups/{group_key}/members"),
            get(groups::list_members).post(groups::insert_member),
        )
        .route(
            &d("groups/{group_key}/members/{member_key}"),
            get(groups::get_member).delete(groups::delete_member),
        )
        .route(
            &d("groups/{group_key}/hasMember/{member_key}"),
            get(groups::has_member),
        )
        .route("/token", post(auth::token))
        .fallback(fallback)
        .layer(from_fn_with_state(inner.clone(), auth::authenticate))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        // Outside the faults: a slow or held answer keeps its slot.
        .layer(from_fn_with_state(inner.clone(), limit_operations))
        .layer(from_fn_with_state(inner.clone(), deprecation_headers))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

/// The discovery ids of the methods the simulator serves.
pub const OPERATIONS: &[&str] = &[
    "directory.users.list",
    "directory.users.insert",
    "directory.users.get",
    "directory.users.update",
    "directory.users.patch",
    "directory.users.delete",
    "directory.groups.list",
    "directory.groups.insert",
    "directory.groups.get",
    "directory.members.list",
    "directory.members.insert",
    "directory.members.get",
    "directory.members.delete",
    "directory.members.hasMember",
];

/// The discovery method a request calls, if the simulator serves it.
pub fn operation(method: &Method, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix(PREFIX)?;
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let m = method.as_str();
    let op = match (segs.as_slice(), m) {
        (["users"], "GET") => "directory.users.list",
        (["users"], "POST") => "directory.users.insert",
        (["users", _], "GET") => "directory.users.get",
        (["users", _], "PUT") => "directory.users.update",
        (["users", _], "PATCH") => "directory.users.patch",
        (["users", _], "DELETE") => "directory.users.delete",
        (["groups"], "GET") => "directory.groups.list",
        (["groups"], "POST") => "directory.groups.insert",
        (["groups", _], "GET") => "directory.groups.get",
        (["groups", _, "members"], "GET") => "directory.members.list",
        (["groups", _, "members"], "POST") => "directory.members.insert",
        (["groups", _, "members", _], "GET") => "directory.members.get",
        (["groups", _, "members", _], "DELETE") => "directory.members.delete",
        (["groups", _, "hasMember", _], "GET") => "directory.members.hasMember",
        _ => return None,
    };
    Some(op)
}

// ---------------------------------------------------------------------------------------
// Google's shapes
// ---------------------------------------------------------------------------------------

/// The canonical status Google puts beside an HTTP status.
fn canonical(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// Google's JSON error body with one entry in `errors`, as the Admin SDK answers.
/// Quota reasons are in the `usageLimits` domain, the rest in `global`.
pub fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    error_with(
        status,
        json!({"message": message, "reason": reason}),
        message,
    )
}

/// Google's error body with this `errors` entry (its `domain` filled in when missing).
fn error_with(status: StatusCode, mut entry: Value, message: &str) -> Response {
    let quota = [
        "userRateLimitExceeded",
        "rateLimitExceeded",
        "quotaExceeded",
        "dailyLimitExceeded",
    ];
    if entry.get("domain").is_none() {
        let reason = entry["reason"].as_str().unwrap_or("");
        entry["domain"] = json!(if quota.contains(&reason) {
            "usageLimits"
        } else {
            "global"
        });
    }
    json_response(
        status,
        json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [entry],
            "status": canonical(status),
        }}),
    )
}

fn not_found(key: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Resource Not Found: {key}"),
    )
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid", message)
}

fn forbidden() -> Response {
    error(StatusCode::FORBIDDEN, "forbidden", NOT_AUTHORIZED)
}

fn duplicate(message: &str) -> Response {
    error(StatusCode::CONFLICT, "duplicate", message)
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Google's timestamps: RFC 3339 with milliseconds, UTC.
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A quoted etag derived from the resource's content.
fn etag(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    format!("\"{}\"", &hex::encode(digest)[..27])
}

/// `v` with its `etag`.
fn with_etag(mut v: Value) -> Value {
    let tag = etag(&v);
    v["etag"] = json!(tag);
    v
}

fn parse_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "parseError",
            "Invalid JSON payload received.",
        )),
    }
}

/// The query string's parameters (the last value of each wins); never refuses.
fn query_map(raw: Option<String>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Middleware
// ---------------------------------------------------------------------------------------

/// Per-operation concurrency: a request beyond its operation's limit gets 403
/// `quotaExceeded`.
async fn limit_operations(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let limit = operation(req.method(), req.uri().path()).and_then(|op| inner.concurrency.get(op));
    let slot = match limit {
        Some(l) => match l.try_enter() {
            Some(slot) => Some(slot),
            None => return ThrottleStyle::Google.concurrency_refusal(l.limit(), req.headers()),
        },
        None => None,
    };
    let resp = next.run(req).await;
    drop(slot);
    resp
}

/// `Deprecation`, `Sunset` (and a deprecation `Link`) on every answer while set.
async fn deprecation_headers(
    State(inner): State<Arc<Inner>>,
    req: Request,
    next: Next,
) -> Response {
    let notice = inner.settings().deprecation.clone();
    let mut resp = next.run(req).await;
    if let Some(d) = notice {
        let since = d
            .since
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("@{since}")) {
            h.insert("deprecation", v);
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(d.sunset)) {
            h.insert("sunset", v);
        }
        if let Some(Ok(v)) = d
            .link
            .map(|l| HeaderValue::from_str(&format!("<{l}>; rel=\"deprecation\"")))
        {
            h.append("link", v);
        }
    }
    resp
}

async fn fallback(req: Request) -> Response {
    // Never 501: Prism answers a 501 from upstream with a mock.
    error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Method not found: {} {}", req.method(), req.uri().path()),
    )
}

/// Google's shapes for [`FailRule`] faults.
struct GoogleBodies;

impl VendorBodies for GoogleBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            "{\"kind\": \"admin#directory#user\", \"id\": \"100000000000000000001\", \"primaryEmail\": ",
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    /// Breaks every schema it is read as: a User, a Group, a Member and the listings.
    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        json_response(
            StatusCode::OK,
            json!({"kind": "admin#directory#user", "id": 42, "primaryEmail": ["unexpected"],
                   "suspended": "yes", "email": 7, "users": "unexpected", "groups": "unexpected",
                   "members": "unexpected", "isMember": "unexpected"}),
        )
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        error(status, code, message)
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backendError",
            "Internal error encountered.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_recognised_from_method_and_path() {
        let users = "/admin/directory/v1/users";
        let groups = "/admin/directory/v1/groups";
        for (method, path, want) in [
            (Method::GET, users.to_string(), Some("directory.users.list")),
            (
                Method::PATCH,
                format!("{users}/a@example.com"),
                Some("directory.users.patch"),
            ),
            (
                Method::GET,
                format!("{groups}/g1/hasMember/u1"),
                Some("directory.members.hasMember"),
            ),
            (
                Method::DELETE,
                format!("{groups}/g1/members/u1"),
                Some("directory.members.delete"),
            ),
            (Method::DELETE, format!("{groups}/g1"), None),
            (Method::POST, "/token".to_string(), None),
        ] {
            assert_eq!(operation(&method, &path), want, "{method} {path}");
        }
        assert!(OPERATIONS.iter().all(|o| o.starts_with("directory.")));
    }

    /// A response's status and JSON body (Null when not JSON).
    pub(super) fn read(r: Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let bytes = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap_or_default();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn errors_have_google_s_shape() {
        let (st, v) = read(error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            QPM_EXCEEDED,
        ));
        assert_eq!((st, &v["error"]["code"]), (403, &json!(403)));
        assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(v["error"]["errors"][0]["domain"], "usageLimits");
        assert_eq!(v["error"]["errors"][0]["reason"], "userRateLimitExceeded");
        let (st, v) = read(not_found("userKey"));
        assert_eq!(st, 404);
        assert_eq!(v["error"]["message"], "Resource Not Found: userKey");
        assert_eq!(v["error"]["errors"][0]["domain"], "global");
        assert_eq!(v["error"]["status"], "NOT_FOUND");
    }
}
