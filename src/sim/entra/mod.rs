//! A stateful Microsoft Entra ID simulator: the Microsoft Graph v1.0 users, groups and
//! memberships an `entra` adapter needs, behind the Microsoft identity platform's OAuth 2.0
//! client-credentials token endpoint. Its answers are checked against Graph's CSDL
//! (`tests/specs/msgraph/v1.0-Prod.csdl`) by `tests/sim_entra.rs`.
//!
//! What it enforces, as Graph documents or answers it:
//! - `POST /{tenant}/oauth2/v2.0/token` (`auth.rs`, the path of
//!   `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`): the client-credentials
//!   grant with a client secret and `scope=https://graph.microsoft.com/.default`. The
//!   tenant is the simulator's id or one of its domains (else 400 `invalid_request`
//!   AADSTS90002); an unknown client 400 `unauthorized_client` AADSTS700016; a wrong secret
//!   401 `invalid_client` AADSTS7000215; an expired secret 401 `invalid_client`
//!   AADSTS7000222; a scope without `/.default` 400 `invalid_scope` AADSTS1002012; other
//!   grant types 400 `unsupported_grant_type` AADSTS70003. Bodies carry `error_codes`,
//!   `timestamp`, `trace_id`, `correlation_id` and `error_uri`, as Entra's do.
//!   Access tokens expire ([`EntraHandle::set_token_ttl`]), can be revoked, and carry the
//!   app's application permissions (`roles`); each route accepts the permissions Graph's
//!   reference lists for it (reads also take the ReadWrite ones).
//! - Graph's error body everywhere (`{"error": {"code", "message", "innerError": {"date",
//!   "request-id", "client-request-id"}}}`; `request-id` and `client-request-id` also as
//!   headers, the client's own `client-request-id` echoed): 401 `InvalidAuthenticationToken`
//!   (missing, unknown, expired or revoked token) with `WWW-Authenticate`, 403
//!   `Authorization_RequestDenied` "Insufficient privileges to complete the operation.",
//!   404 `Request_ResourceNotFound` "Resource '…' does not exist or one of its queried
//!   reference-property objects are not present.", 400 `Request_BadRequest` (a duplicate
//!   `userPrincipalName` with `details` naming it, a membership that already exists, a
//!   missing required property, an unknown property, a UPN outside the verified domains),
//!   400 `BadRequest` (malformed JSON, wrong value types, an unknown `$select` property),
//!   400 `Request_UnsupportedQuery` (a `$filter` it does not support).
//! - Users: create, get by id or `userPrincipalName`, PATCH (204), DELETE (204), list with
//!   `$top` (1..=999, default 100), `$select`, `$filter` (`eq` on `userPrincipalName`,
//!   `mail`, `mailNickname`, `displayName`, `employeeId`, `accountEnabled`, joined with
//!   `and`). Without `$select` a user carries Graph's default properties only
//!   (`businessPhones`, `displayName`, `givenName`, `id`, `jobTitle`, `mail`,
//!   `mobilePhone`, `officeLocation`, `preferredLanguage`, `surname`,
//!   `userPrincipalName`): `accountEnabled`, `employeeId`, `department`... must be asked for.
//! - Groups: list (`$filter` on `displayName`/`mailNickname`), get, `members` (users as
//!   `#microsoft.graph.user` with `@odata.type`), `members/$ref` add (204; already a member
//!   400) and remove (204; not a member 404), a user's `memberOf` (groups as
//!   `#microsoft.graph.group`); `GET /v1.0/applications?$filter=appId eq '…'` with the
//!   app's `passwordCredentials` (their end dates set through the handle).
//! - Paging: `@odata.nextLink`, an absolute URL back to the simulator keeping `$top`,
//!   `$filter` and `$select`, with an opaque `$skiptoken` naming the last key returned (so
//!   nothing repeats or is skipped when others are added while it pages), bound to its
//!   listing; `@odata.context` on every answer.
//! - Throttling: a per-app window ([`EntraSimOptions::requests_per_window`] per
//!   [`EntraSimOptions::rate_window`]) answered 429 `TooManyRequests` with `Retry-After`
//!   seconds and `x-ms-throttle-scope`; above 80% of the window `x-ms-throttle-limit-
//!   percentage` (0.8..=1.0); `x-ms-resource-unit: 1` on every Graph answer. Injected
//!   faults ([`ThrottleStyle::Graph`]): 429 as above, 503 `serviceNotAvailable` with
//!   `Retry-After`; a 504 through a [`FailRule`] with `BodyFault::reject(504, ..)`.
//! - Eventual consistency: a created user or membership is listed, a created user found
//!   by a direct GET (404 `Request_ResourceNotFound` until then, as right after a create
//!   at Graph) and usable in `members/$ref`, only after [`Faults::visibility_delay`].
//!   PATCH and DELETE see the truth.
//! - Deprecation signals (off by default): `Deprecation` and `Sunset` (HTTP dates, as
//!   Graph sends them) and a deprecation `Link` on every answer
//!   ([`EntraHandle::set_deprecation`]).
//!
//! Simplifications (deliberate): one tenant; users are deleted at once (no 30-day deleted
//! items); members are users only (no nested groups, devices or service principals);
//! groups are read-only over the API (seeded through the handle) and visible at once;
//! `$filter` knows `eq` and `and` only, no `ConsistencyLevel: eventual` advanced queries,
//! `$count`, `$orderby`, `$search` or `$expand`; lists are in id order; one throttle
//! window per app for reads and writes alike (Graph charges writes more resource units);
//! `x-ms-throttle-limit-percentage` never goes above 1.0; passwords are checked for
//! presence only and never kept.

// Handlers bail out early with a ready Graph error response; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod auth;
mod groups;
mod handle;
mod paging;
mod users;

pub use self::auth::{GRAPH_SCOPE, accepted_roles};
pub use self::groups::SimGroup;
pub use self::handle::EntraHandle;
pub use self::users::SimUser;
use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
pub use super::google::Deprecation;
pub use super::log::LoggedRequest;
use super::log::{RequestLog, record};
use super::ratelimit::RateWindows;
use super::rules::{self, Rules, VendorBodies};
pub use super::rules::{BodyFault, FailRule};
use super::{SimServer, WriteCounts};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Where Graph's answers say they come from (`@odata.context`, `@odata.id`).
pub const GRAPH_ROOT: &str = "https://graph.microsoft.com/v1.0";
const PREFIX: &str = "/v1.0/";

#[derive(Debug, Clone)]
pub struct EntraSimOptions {
    pub faults: FaultProfile,
    /// The directory (tenant) id, a GUID.
    pub tenant_id: String,
    /// Verified domains: a `userPrincipalName` must end in one; the first also names the
    /// tenant in token requests.
    pub domains: Vec<String>,
    /// Requests per app per window before 429s.
    pub requests_per_window: u32,
    /// Length of the throttle window (Graph's identity limits count per 10 seconds).
    pub rate_window: Duration,
    /// How long an access token lives (Entra: 60 to 90 minutes; `expires_in` 3599).
    pub token_ttl: Duration,
    /// Send `Deprecation` and `Sunset` on every answer from the start.
    pub deprecation: Option<Deprecation>,
    /// Chance that a request is carried out but its response is lost (connection reset).
    pub lost_response_rate: f64,
    pub seed: u64,
}

impl Default for EntraSimOptions {
    fn default() -> Self {
        EntraSimOptions {
            faults: FaultProfile::none(),
            tenant_id: "8f5b6c1e-2d3a-4b7c-9e0f-1a2b3c4d5e6f".into(),
            domains: vec!["example.com".into(), "example.onmicrosoft.com".into()],
            requests_per_window: 3500,
            rate_window: Duration::from_secs(10),
            token_ttl: Duration::from_secs(3600),
            deprecation: None,
            lost_response_rate: 0.0,
            seed: 7,
        }
    }
}

/// What can change at run time besides the directory.
#[derive(Debug)]
struct Settings {
    token_ttl: Duration,
    deprecation: Option<Deprecation>,
}

#[derive(Debug, Default)]
struct Directory {
    next_id: u64,
    users: BTreeMap<String, SimUser>,
    /// Lower-cased userPrincipalName -> user id.
    by_upn: HashMap<String, String>,
    groups: BTreeMap<String, SimGroup>,
    /// (group id, user id) -> when the membership becomes visible to reads.
    members: BTreeMap<(String, String), Instant>,
    apps: BTreeMap<String, auth::App>,
    tokens: HashMap<String, auth::AccessToken>,
    counts: WriteCounts,
    token_requests: u64,
}

struct Inner {
    state: Mutex<Directory>,
    faults: Arc<Faults>,
    limits: Arc<RateWindows>,
    settings: Mutex<Settings>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    tenant_id: String,
    domains: Vec<String>,
    /// Keys the skip tokens' checksums and seeds the ids.
    secret: u64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `upn`'s domain is a verified domain of the tenant.
    fn verified(&self, upn: &str) -> bool {
        upn.rsplit_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && self.domains.iter().any(|x| x.eq_ignore_ascii_case(d))
        })
    }

    /// When a resource created now becomes visible to reads.
    fn visible_at(&self) -> Instant {
        Instant::now() + self.faults.visibility_delay()
    }

    /// A new object id: a GUID unique per call, reproducible per seed.
    fn new_id(&self, d: &mut Directory) -> String {
        d.next_id += 1;
        guid(self.secret, d.next_id)
    }
}

/// A GUID (version 4 layout) made from a seed and a counter.
fn guid(seed: u64, n: u64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(n.to_le_bytes());
    let mut b: [u8; 16] = h.finalize()[..16].try_into().unwrap_or([0; 16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// A random GUID (request ids, key ids).
fn random_guid() -> String {
    guid(rand::random(), rand::random())
}

/// Start the simulator on 127.0.0.1 (ephemeral port), with no apps, users or groups.
pub async fn spawn(opts: EntraSimOptions) -> std::io::Result<(SimServer, EntraHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Graph);
    let domains = match opts.domains.is_empty() {
        true => vec!["example.com".to_string()],
        false => opts.domains.clone(),
    };
    let inner = Arc::new(Inner {
        state: Mutex::new(Directory::default()),
        faults: faults.clone(),
        limits: Arc::new(RateWindows::new(opts.requests_per_window, opts.rate_window)),
        settings: Mutex::new(Settings {
            token_ttl: opts.token_ttl,
            deprecation: opts.deprecation.clone(),
        }),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(GraphBodies, opts.lost_response_rate, opts.seed ^ 0xe17a),
        tenant_id: opts.tenant_id.clone(),
        secret: opts.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xe17a,
        domains,
    });
    let handle = EntraHandle::new(inner.clone());
    let app = router(inner, faults);
    let server = SimServer::spawn(app).await?;
    Ok((server, handle))
}

fn router(inner: Arc<Inner>, faults: Arc<Faults>) -> axum::Router {
    let v = |p: &str| format!("{PREFIX}{p}");
    axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token))
        .route(&v("users"), get(users::list).post(users::create))
        .route(
            &v("users/{key}"),
            get(users::get_one)
                .patch(users::update)
                .delete(users::delete),
        )
        .route(&v("users/{key}/memberOf"), get(groups::member_of))
        .route(&v("groups"), get(groups::list))
        .route(&v("groups/{id}"), get(groups::get_one))
        .route(&v("groups/{id}/members"), get(groups::members))
        .route(&v("groups/{id}/members/$ref"), post(groups::add_member))
        .route(
            &v("groups/{id}/members/{member}/$ref"),
            axum::routing::delete(groups::remove_member),
        )
        .route(&v("applications"), get(auth::applications))
        .fallback(fallback)
        .layer(from_fn_with_state(inner.clone(), auth::authenticate))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        .layer(from_fn_with_state(inner.clone(), graph_headers))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

/// What a request does, for the permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ReadUsers,
    WriteUsers,
    ReadGroups,
    ReadMembers,
    WriteMembers,
    ReadApplications,
}

/// The operation a Graph request performs, None for other paths (the token endpoint).
pub fn operation(method: &Method, path: &str) -> Option<Operation> {
    let rest = path.strip_prefix(PREFIX)?;
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let read = *method == Method::GET;
    Some(match (segs.as_slice(), read) {
        (["users"] | ["users", _] | ["users", _, "memberOf"], true) => Operation::ReadUsers,
        (["users"] | ["users", _], false) => Operation::WriteUsers,
        (["groups"] | ["groups", _], true) => Operation::ReadGroups,
        (["groups", _, "members"], true) => Operation::ReadMembers,
        (["groups", _, "members", ..], false) => Operation::WriteMembers,
        (["applications"], true) => Operation::ReadApplications,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------
// Graph's shapes
// ---------------------------------------------------------------------------------------

/// This request's `request-id` and `client-request-id`.
#[derive(Debug, Clone)]
struct RequestIds {
    request: String,
    client: String,
}

tokio::task_local! {
    static IDS: RequestIds;
}

fn request_ids() -> RequestIds {
    IDS.try_with(Clone::clone).unwrap_or_else(|_| {
        let id = random_guid();
        RequestIds {
            request: id.clone(),
            client: id,
        }
    })
}

/// Graph's timestamps: RFC 3339 UTC, whole seconds, `Z`.
fn ts(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Graph's JSON error body.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    error_with(status, code, message, None)
}

/// Graph's error body with `details`, when given.
fn error_with(status: StatusCode, code: &str, message: &str, details: Option<Value>) -> Response {
    let ids = request_ids();
    let mut e = json!({
        "code": code,
        "message": message,
        "innerError": {
            "date": ts(Utc::now()),
            "request-id": ids.request,
            "client-request-id": ids.client,
        },
    });
    if let Some(d) = details {
        e["details"] = d;
    }
    json_response(status, json!({ "error": e }))
}

fn not_found(key: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

fn json_response(status: StatusCode, v: Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static(
            "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
        ),
    );
    r
}

fn no_content() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// A request body that must be a JSON object: anything else is Graph's 400 `BadRequest`.
fn parse_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        )),
    }
}

/// The query string's parameters (the last value of each wins); never refuses.
fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

// ---------------------------------------------------------------------------------------
// Middleware
// ---------------------------------------------------------------------------------------

/// Request ids for every answer (and the error bodies made while answering),
/// `x-ms-resource-unit` on Graph's answers, and the deprecation notice while set.
async fn graph_headers(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let request = random_guid();
    let client = req
        .headers()
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .map_or_else(|| request.clone(), str::to_string);
    let graph = req.uri().path().starts_with(PREFIX);
    let ids = RequestIds { request, client };
    let notice = inner.settings().deprecation.clone();
    let mut resp = IDS.scope(ids.clone(), next.run(req)).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("request-id", &ids.request),
        ("client-request-id", &ids.client),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    if graph {
        h.insert("x-ms-resource-unit", HeaderValue::from(1u32));
    }
    if let Some(d) = notice {
        for (name, at) in [("deprecation", d.since), ("sunset", d.sunset)] {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
                h.insert(name, v);
            }
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
    let segment = req.uri().path().trim_start_matches(PREFIX).to_string();
    error(
        StatusCode::BAD_REQUEST,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

/// Graph's shapes for [`FailRule`] faults.
struct GraphBodies;

impl VendorBodies for GraphBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\",\"value\":[{\"id\":",
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    /// Breaks every shape it is read as: a user, a group, a collection.
    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        json_response(
            StatusCode::OK,
            json!({"id": 42, "userPrincipalName": ["unexpected"], "accountEnabled": "yes",
                   "displayName": 7, "value": "unexpected", "@odata.nextLink": 3}),
        )
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        error(status, code, message)
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "An unspecified error has occurred.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn operations_are_recognised_from_method_and_path() {
        for (method, path, want) in [
            (Method::GET, "/v1.0/users", Some(Operation::ReadUsers)),
            (Method::POST, "/v1.0/users", Some(Operation::WriteUsers)),
            (Method::PATCH, "/v1.0/users/u1", Some(Operation::WriteUsers)),
            (
                Method::GET,
                "/v1.0/users/u1/memberOf",
                Some(Operation::ReadUsers),
            ),
            (Method::GET, "/v1.0/groups/g1", Some(Operation::ReadGroups)),
            (
                Method::GET,
                "/v1.0/groups/g1/members",
                Some(Operation::ReadMembers),
            ),
            (
                Method::POST,
                "/v1.0/groups/g1/members/$ref",
                Some(Operation::WriteMembers),
            ),
            (
                Method::DELETE,
                "/v1.0/groups/g1/members/u1/$ref",
                Some(Operation::WriteMembers),
            ),
            (
                Method::GET,
                "/v1.0/applications",
                Some(Operation::ReadApplications),
            ),
            (Method::POST, "/v1.0/groups", None),
            (Method::POST, "/t/oauth2/v2.0/token", None),
        ] {
            assert_eq!(operation(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn guids_are_version_4_shaped_and_unique() {
        let ids: std::collections::HashSet<String> = (1..2000).map(|n| guid(3, n)).collect();
        assert_eq!(ids.len(), 1999);
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{id}");
            assert!(
                parts[2].starts_with('4') && "89ab".contains(&parts[3][..1]),
                "{id}"
            );
        }
        assert_ne!(guid(3, 1), guid(4, 1), "the seed matters");
    }

    #[test]
    fn errors_have_graph_s_shape_and_carry_the_request_s_ids() {
        let ids = RequestIds {
            request: "r-1".into(),
            client: "c-1".into(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let r = rt.block_on(IDS.scope(ids, async { not_found("abc") }));
        let (st, v) = read(r);
        assert_eq!(st, 404);
        assert_eq!(v["error"]["code"], "Request_ResourceNotFound");
        assert_eq!(
            v["error"]["message"],
            "Resource 'abc' does not exist or one of its queried reference-property objects are not present."
        );
        assert_eq!(v["error"]["innerError"]["request-id"], "r-1");
        assert_eq!(v["error"]["innerError"]["client-request-id"], "c-1");
        let date = v["error"]["innerError"]["date"].as_str().unwrap_or("");
        assert!(chrono::DateTime::parse_from_rfc3339(date).is_ok(), "{date}");
        // Outside a request, fresh ids.
        let (_, v) = read(bad_request("x"));
        assert_eq!(
            v["error"]["innerError"]["request-id"]
                .as_str()
                .map(str::len),
            Some(36)
        );
    }
}
