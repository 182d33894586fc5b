//! A stateful SCIM 2.0 service provider (RFC 7643 schema, RFC 7644 protocol), for the demo
//! and the tests: what the SCIM adapter talks to when no Python peer is around.
//!
//! What it serves, under a root path (default `/scim/v2`):
//! - discovery: `/ServiceProviderConfig` (advertising exactly the features turned on in
//!   [`ScimSimOptions`], and enforcing them: an unadvertised PATCH, filter or sort is a
//!   501), `/ResourceTypes` (User with the enterprise extension, Group) and a minimal
//!   `/Schemas`;
//! - `/Users` and `/Groups`: POST, GET by id, GET listings with `filter` (the full RFC
//!   7644 §3.4.2.2 grammar: `and`/`or`/`not`, value paths, all operators; `caseExact` as
//!   RFC 7643 defines it per attribute), `startIndex`/`count` paging with `totalResults`,
//!   `sortBy`/`sortOrder`, `attributes`/`excludedAttributes`; `POST /.search`; PUT; PATCH
//!   (`add`/`remove`/`replace`, with or without a path, value-path filters such as
//!   `members[value eq "id"]`, sub-attributes, extension attributes); DELETE;
//! - `/Bulk` when bulk is turned on (with `bulkId` references and `failOnErrors`);
//! - `/Me` answers 501 (RFC 7644 §3.11 makes it optional).
//!
//! What it enforces: a bearer token on every request (401 with `WWW-Authenticate`
//! otherwise); `userName` unique case-insensitively (409 `uniqueness`, on create, replace
//! and patch); required attributes and attribute types (400 `invalidValue` /
//! `invalidSyntax`); `If-Match` against the resource version when ETags are on (412);
//! `maxResults` as the page size cap; SCIM error bodies everywhere (`status` is a string).
//! Every resource carries `meta` (`resourceType`, `created`, `lastModified`, `location`,
//! `version`) and single-resource answers an `ETag` header.
//!
//! Faults: the shared [`inject`] middleware (style [`ThrottleStyle::Scim`]: SCIM has no
//! rate-limit headers, so refusals are 429 with `Retry-After`), an optional fixed-window
//! rate limit in the same style, [`FailRule`]s (see [`ScimHandle::reject_user`] for a
//! permanent, vendor-shaped refusal of one user), lost responses, and eventual
//! consistency: created resources and added members become visible to reads after
//! [`Faults::visibility_delay`]; writes always see the true state.
//!
//! `User.groups` is computed from the groups' members (read-only, always in sync).

// Operations bail out early with a ready SCIM error; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use super::fault::{FaultProfile, Faults, ThrottleStyle, inject, scim_error};
use super::filter::{self, Semantics};
use super::log::{LoggedRequest, RequestLog, record};
use super::ratelimit::{Enforcer, RateWindows, enforce};
use super::rules::{self, BodyFault, FailRule, Rules, VendorBodies};
use super::{SimServer, WriteCounts};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

// The URNs, from RFC 7643/7644 (not from the adapter: the simulator is an independent
// reading of the RFCs).
pub const SCHEMA_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const SCHEMA_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const SCHEMA_ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SCHEMA_SPC: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const SCHEMA_RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
const SCHEMA_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCHEMA_PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SCHEMA_SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
const SCHEMA_BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const SCHEMA_BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const MEDIA_TYPE: &str = "application/scim+json";

/// What the provider advertises in `/ServiceProviderConfig` (and enforces), and how it
/// misbehaves.
#[derive(Debug, Clone)]
pub struct ScimSimOptions {
    pub patch: bool,
    pub filter: bool,
    /// `filter.maxResults`: the most resources one listing returns.
    pub max_results: u32,
    pub sort: bool,
    pub etag: bool,
    pub bulk: bool,
    pub bulk_max_operations: u32,
    /// The User resource type lists the enterprise extension.
    pub enterprise_extension: bool,
    /// Where the SCIM root is served (`/scim/v2`).
    pub root: String,
    pub faults: FaultProfile,
    /// Requests per `rate_window` (one bucket for the whole provider); None: unlimited.
    pub rate_limit: Option<u32>,
    pub rate_window: Duration,
    /// Chance that a request is carried out but its response is lost.
    pub lost_response_rate: f64,
    pub seed: u64,
}

impl Default for ScimSimOptions {
    fn default() -> Self {
        ScimSimOptions {
            patch: true,
            filter: true,
            max_results: 200,
            sort: true,
            etag: true,
            bulk: false,
            bulk_max_operations: 100,
            enterprise_extension: true,
            root: "/scim/v2".into(),
            faults: FaultProfile::none(),
            rate_limit: None,
            rate_window: Duration::from_secs(60),
            lost_response_rate: 0.0,
            seed: 7,
        }
    }
}

impl ScimSimOptions {
    /// The least a provider can offer: no PATCH, no filter, no sort, no bulk; ETags on;
    /// at most `max_results` resources a page.
    pub fn minimal(max_results: u32) -> Self {
        ScimSimOptions {
            patch: false,
            filter: false,
            sort: false,
            bulk: false,
            max_results,
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    fn from_endpoint(e: &str) -> Option<Kind> {
        match e {
            "Users" => Some(Kind::User),
            "Groups" => Some(Kind::Group),
            _ => None,
        }
    }
    pub fn endpoint(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    fn schema(self) -> &'static str {
        match self {
            Kind::User => SCHEMA_USER,
            Kind::Group => SCHEMA_GROUP,
        }
    }
    /// The attribute a resource of this kind cannot do without.
    fn required(self) -> &'static str {
        match self {
            Kind::User => "userName",
            Kind::Group => "displayName",
        }
    }
    fn attributes(self) -> &'static [&'static str] {
        match self {
            Kind::User => USER_ATTRIBUTES,
            Kind::Group => GROUP_ATTRIBUTES,
        }
    }
}

const USER_ATTRIBUTES: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
];
const GROUP_ATTRIBUTES: &[&str] = &[
    "schemas",
    "id",
    "externalId",
    "meta",
    "displayName",
    "members",
];
/// Multi-valued attributes (RFC 7643 §4).
const MULTI_VALUED: &[&str] = &[
    "schemas",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    "members",
];
const STRING_ATTRIBUTES: &[&str] = &[
    "externalId",
    "userName",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "password",
];

/// RFC 7643: these compare case-sensitively; every other string attribute does not.
fn case_exact(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    p == "id"
        || p == "externalid"
        || p.starts_with("meta.")
        || p.ends_with("$ref")
        || p == "members.value"
        || p == "groups.value"
        || p == "password"
}

/// A resource as the provider holds it.
#[derive(Debug, Clone)]
pub struct ScimResource {
    pub id: String,
    pub kind: Kind,
    /// Every attribute but `id`, `meta` and the computed `groups`, as stored.
    pub attributes: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
    pub version: u64,
    seq: u64,
    visible_at: Instant,
    /// Group members: user id -> when the membership becomes visible to reads.
    member_visible_at: HashMap<String, Instant>,
}

impl ScimResource {
    fn text(&self, attr: &str) -> Option<&str> {
        self.attributes.get(attr).and_then(Value::as_str)
    }
    pub fn user_name(&self) -> Option<&str> {
        self.text("userName")
    }
    pub fn display_name(&self) -> Option<&str> {
        self.text("displayName")
    }
    pub fn external_id(&self) -> Option<&str> {
        self.text("externalId")
    }
    /// A missing `active` counts as active.
    pub fn active(&self) -> bool {
        self.attributes
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true)
    }
    /// The member values (true state, visible or not yet).
    pub fn member_ids(&self) -> Vec<String> {
        member_values(&self.attributes)
    }
    fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

fn member_values(attrs: &Map<String, Value>) -> Vec<String> {
    attrs
        .get("members")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Default)]
struct Provider {
    seq: u64,
    users: BTreeMap<String, ScimResource>,
    groups: BTreeMap<String, ScimResource>,
    /// token -> still valid
    tokens: HashMap<String, bool>,
    counts: WriteCounts,
}

impl Provider {
    fn table(&self, kind: Kind) -> &BTreeMap<String, ScimResource> {
        match kind {
            Kind::User => &self.users,
            Kind::Group => &self.groups,
        }
    }
    fn table_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, ScimResource> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Group => &mut self.groups,
        }
    }
    fn user_named(&self, name: &str) -> Option<&ScimResource> {
        self.users
            .values()
            .find(|u| u.user_name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

struct Inner {
    state: Mutex<Provider>,
    opts: ScimSimOptions,
    faults: Arc<Faults>,
    limits: Arc<RateWindows>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    base_url: OnceLock<String>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Provider> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Steers and inspects a running SCIM simulator.
#[derive(Clone)]
pub struct ScimHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ScimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScimHandle")
    }
}

impl ScimHandle {
    /// The SCIM root, what systems.toml's `base_url` names (`http://127.0.0.1:PORT/scim/v2`).
    pub fn base_url(&self) -> String {
        self.inner.base_url.get().cloned().unwrap_or_default()
    }

    pub fn options(&self) -> &ScimSimOptions {
        &self.inner.opts
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The rate window; [`RateWindows::set_limit`] with `None` changes the limit at run time.
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    /// Accept `token` as `Authorization: Bearer token`.
    pub fn add_token(&self, token: &str) {
        self.inner.lock().tokens.insert(token.to_string(), true);
    }

    pub fn revoke_token(&self, token: &str) {
        if let Some(valid) = self.inner.lock().tokens.get_mut(token) {
            *valid = false;
        }
    }

    /// Add a deterministic fault rule (first matching rule wins).
    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    pub fn clear_rules(&self) {
        self.inner.rules.clear();
    }

    /// Refuse every creation of the user `user_name` with 400 and this `scimType` (e.g.
    /// `invalidValue`) and detail, for as long as the rule stands: a failure that retrying
    /// does not fix and an admin has to triage.
    pub fn reject_user(&self, user_name: &str, scim_type: &str, detail: &str) {
        let quoted = Value::String(user_name.to_string()).to_string();
        self.fail(
            FailRule::new(
                Some(Method::POST),
                &format!("{}/Users", self.inner.opts.root),
                BodyFault::reject(400, scim_type, detail),
                1,
            )
            .with_body(&format!("\"userName\":{quoted}"))
            .always(),
        );
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    /// Every user, visible yet or not, in creation order.
    pub fn users(&self) -> Vec<ScimResource> {
        sorted(self.inner.lock().users.values().cloned().collect())
    }

    pub fn user_by_name(&self, user_name: &str) -> Option<ScimResource> {
        self.inner.lock().user_named(user_name).cloned()
    }

    pub fn groups(&self) -> Vec<ScimResource> {
        sorted(self.inner.lock().groups.values().cloned().collect())
    }

    pub fn group_by_name(&self, display_name: &str) -> Option<ScimResource> {
        self.inner
            .lock()
            .groups
            .values()
            .find(|g| g.display_name() == Some(display_name))
            .cloned()
    }

    /// The true (not eventually consistent) member ids of a group.
    pub fn members(&self, group_id: &str) -> Vec<String> {
        self.inner
            .lock()
            .groups
            .get(group_id)
            .map(ScimResource::member_ids)
            .unwrap_or_default()
    }

    /// How many times a user with this userName was created (more than 1 is a duplicate).
    pub fn creates_for(&self, user_name: &str) -> u32 {
        self.inner.lock().counts.creates_for(user_name)
    }

    /// The highest create count of any userName.
    pub fn max_creates_per_user(&self) -> u32 {
        self.inner.lock().counts.max_creates()
    }

    /// How many times this user was added to this group (re-adding a member adds nothing).
    pub fn membership_adds(&self, group_id: &str, user_id: &str) -> u32 {
        self.inner.lock().counts.adds_for(group_id, user_id)
    }

    pub fn max_membership_adds(&self) -> u32 {
        self.inner.lock().counts.max_adds()
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

    /// Create a group directly (seeding without a request), visible at once.
    pub fn seed_group(&self, display_name: &str) -> String {
        let mut attrs = Map::new();
        attrs.insert("schemas".into(), json!([SCHEMA_GROUP]));
        attrs.insert("displayName".into(), json!(display_name));
        insert_new(&mut self.inner.lock(), Kind::Group, attrs, Instant::now())
    }

    /// Set (or replace) one attribute of a user directly, as an admin in the app would:
    /// `path` is a top-level attribute or `urn:...:User:attribute` of an extension.
    pub fn set_user_attribute(&self, user_id: &str, path: &str, value: Value) -> bool {
        let mut p = self.inner.lock();
        let Some(u) = p.users.get_mut(user_id) else {
            return false;
        };
        match path.rsplit_once(':') {
            Some((schema, attr)) if path.starts_with("urn:") => {
                let ext = u
                    .attributes
                    .entry(schema.to_string())
                    .or_insert_with(|| json!({}));
                if let Some(o) = ext.as_object_mut() {
                    o.insert(attr.to_string(), value);
                }
            }
            _ => {
                u.attributes.insert(path.to_string(), value);
            }
        }
        u.version += 1;
        u.last_modified = Utc::now();
        true
    }

    /// Create an active user directly, visible at once (not counted as a create).
    pub fn seed_user(&self, user_name: &str, given: &str, family: &str) -> String {
        let mut attrs = Map::new();
        attrs.insert("schemas".into(), json!([SCHEMA_USER]));
        attrs.insert("userName".into(), json!(user_name));
        attrs.insert(
            "name".into(),
            json!({"givenName": given, "familyName": family}),
        );
        attrs.insert("displayName".into(), json!(format!("{given} {family}")));
        attrs.insert(
            "emails".into(),
            json!([{"value": user_name, "type": "work", "primary": true}]),
        );
        attrs.insert("active".into(), json!(true));
        insert_new(&mut self.inner.lock(), Kind::User, attrs, Instant::now())
    }
}

fn sorted(mut v: Vec<ScimResource>) -> Vec<ScimResource> {
    v.sort_by_key(|r| r.seq);
    v
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: ScimSimOptions) -> std::io::Result<(SimServer, ScimHandle)> {
    let mut opts = opts;
    opts.root = format!("/{}", opts.root.trim_matches('/'));
    if opts.root == "/" {
        opts.root.clear();
    }
    opts.max_results = opts.max_results.max(1);
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Scim);
    let limits = Arc::new(RateWindows::new(
        opts.rate_limit.unwrap_or(u32::MAX),
        opts.rate_window,
    ));
    let inner = Arc::new(Inner {
        state: Mutex::new(Provider::default()),
        rules: Rules::new(ScimBodies, opts.lost_response_rate, opts.seed ^ 0x5c1a),
        opts,
        faults: faults.clone(),
        limits,
        log: Arc::new(RequestLog::default()),
        base_url: OnceLock::new(),
    });
    let app = router(inner.clone(), faults);
    let server = SimServer::spawn(app).await?;
    let _ = inner
        .base_url
        .set(format!("{}{}", server.base_url(), inner.opts.root));
    Ok((server, ScimHandle { inner }))
}

fn router(inner: Arc<Inner>, faults: Arc<Faults>) -> axum::Router {
    let root = inner.opts.root.clone();
    let r = |p: &str| format!("{root}{p}");
    axum::Router::new()
        .route(&r("/ServiceProviderConfig"), get(service_provider_config))
        .route(&r("/ResourceTypes"), get(resource_types))
        .route(&r("/ResourceTypes/{id}"), get(resource_type))
        .route(&r("/Schemas"), get(schemas))
        .route(&r("/Schemas/{id}"), get(schema))
        .route(&r("/Me"), get(me).post(me).put(me).patch(me).delete(me))
        .route(&r("/Bulk"), post(bulk))
        .route(&r("/.search"), post(search_all))
        .route(&r("/{endpoint}"), get(list).post(create))
        .route(&r("/{endpoint}/.search"), post(search))
        .route(
            &r("/{endpoint}/{id}"),
            get(read).put(replace).patch(patch).delete(delete),
        )
        .fallback(fallback)
        .layer(from_fn_with_state(inner.clone(), authenticate))
        .layer(from_fn_with_state(
            Arc::new(Enforcer {
                windows: inner.limits.clone(),
                style: ThrottleStyle::Scim,
                bucket: |_, _, _| "scim",
            }),
            enforce,
        ))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

// ---------------------------------------------------------------------------------------
// Errors and responses
// ---------------------------------------------------------------------------------------

/// A SCIM error (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<String>,
    pub detail: String,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&str>, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: scim_type.map(str::to_string),
            detail: detail.into(),
        }
    }
    fn bad(scim_type: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    fn not_found(kind: Kind, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            None,
            format!("{} {id} not found", kind.name()),
        )
    }
    fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            None,
            format!("{what} is not supported by this service provider"),
        )
    }
    fn body(&self) -> Value {
        let mut v = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = &self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
    fn response(&self) -> Response {
        scim_json(self.status, &self.body())
    }
}

fn scim_json(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// What an operation answers: status, body, and the ETag / Location headers.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    body: Option<Value>,
    etag: Option<String>,
    location: Option<String>,
}

impl Reply {
    fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            etag: None,
            location: None,
        }
    }
    fn response(self) -> Response {
        let mut r = match &self.body {
            Some(b) => scim_json(self.status, b),
            None => self.status.into_response(),
        };
        for (name, v) in [("etag", &self.etag), ("location", &self.location)] {
            if let Some(v) = v
                && let Ok(h) = HeaderValue::from_str(v)
            {
                r.headers_mut().insert(name, h);
            }
        }
        r
    }
}

fn respond(r: Result<Reply, ScimError>) -> Response {
    match r {
        Ok(reply) => reply.response(),
        Err(e) => e.response(),
    }
}

/// SCIM's shapes for [`FailRule`] faults.
struct ScimBodies;

impl VendorBodies for ScimBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            format!("{{\"schemas\":[\"{SCHEMA_USER}\"],\"id\":\"2819c223-7f76"),
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(MEDIA_TYPE));
        r
    }
    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        scim_json(
            StatusCode::OK,
            &json!({"id": 42, "userName": ["not", "a", "string"], "active": "maybe", "Resources": "none", "totalResults": "many"}),
        )
    }
    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        let t = (!code.is_empty()).then_some(code);
        ScimError::new(status, t, message).response()
    }
    fn server_error(&self, _req: &HeaderMap) -> Response {
        scim_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}

// ---------------------------------------------------------------------------------------
// Middleware and discovery
// ---------------------------------------------------------------------------------------

async fn authenticate(State(inner): State<Arc<Inner>>, req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("")
        .to_string();
    let ok = !token.is_empty() && inner.lock().tokens.get(&token) == Some(&true);
    if ok {
        return next.run(req).await;
    }
    let mut r = ScimError::new(
        StatusCode::UNAUTHORIZED,
        None,
        "Authorization failure. The authorization header is invalid or missing.",
    )
    .response();
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"accessdesk-scim-sim\""),
    );
    r
}

async fn fallback(req: Request) -> Response {
    ScimError::new(
        StatusCode::NOT_FOUND,
        None,
        format!("No such endpoint: {} {}", req.method(), req.uri().path()),
    )
    .response()
}

async fn me() -> Response {
    ScimError::not_implemented("/Me").response()
}

fn base(inner: &Inner, headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{}", inner.opts.root)
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

async fn service_provider_config(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let o = &inner.opts;
    let base = base(&inner, &headers);
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [SCHEMA_SPC],
            "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
            "patch": {"supported": o.patch},
            "bulk": {"supported": o.bulk, "maxOperations": if o.bulk { o.bulk_max_operations } else { 0 }, "maxPayloadSize": if o.bulk { 1_048_576 } else { 0 }},
            "filter": {"supported": o.filter, "maxResults": o.max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": o.sort},
            "etag": {"supported": o.etag},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication scheme using the OAuth Bearer Token Standard",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
        }),
    )
}

fn resource_type_json(inner: &Inner, base: &str, kind: Kind) -> Value {
    let mut v = json!({
        "schemas": [SCHEMA_RESOURCE_TYPE],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": format!("/{}", kind.endpoint()),
        "description": format!("{} Account", kind.name()),
        "schema": kind.schema(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", kind.name())},
    });
    if kind == Kind::User && inner.opts.enterprise_extension {
        v["schemaExtensions"] = json!([{"schema": SCHEMA_ENTERPRISE, "required": false}]);
    }
    v
}

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA_LIST],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// A discovery listing. RFC 7644 §4: paging is ignored; a filter is refused with 403.
fn discovery_list(q: &Option<String>, items: impl FnOnce() -> Vec<Value>) -> Response {
    let has_filter = url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "filter");
    if has_filter {
        return ScimError::new(
            StatusCode::FORBIDDEN,
            None,
            "Filtering is not allowed on discovery endpoints",
        )
        .response();
    }
    scim_json(StatusCode::OK, &list_of(items()))
}

async fn resource_types(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    discovery_list(&q, || {
        let base = base(&inner, &headers);
        [Kind::User, Kind::Group]
            .into_iter()
            .map(|k| resource_type_json(&inner, &base, k))
            .collect()
    })
}

async fn resource_type(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let base = base(&inner, &headers);
    match [Kind::User, Kind::Group]
        .into_iter()
        .find(|k| k.name() == id)
    {
        Some(k) => scim_json(StatusCode::OK, &resource_type_json(&inner, &base, k)),
        None => ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("ResourceType {id} not found"),
        )
        .response(),
    }
}

/// The sub-attributes of a complex attribute (RFC 7643 §4, §8.7).
fn sub_attributes(attr: &str) -> &'static [&'static str] {
    match attr {
        "name" => &[
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
        ],
        "addresses" => &[
            "formatted",
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "type",
            "primary",
        ],
        "groups" | "members" => &["value", "$ref", "display", "type"],
        "manager" => &["value", "$ref", "displayName"],
        "emails" | "phoneNumbers" | "ims" | "photos" | "entitlements" | "roles"
        | "x509Certificates" => &["value", "display", "type", "primary"],
        _ => &[],
    }
}

/// One attribute's description: type, multiplicity, case-exactness, mutability and
/// returnability as RFC 7643 defines them for the core schemas.
fn attribute_json(parent: Option<&str>, name: &str) -> Value {
    let full = match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    };
    let subs = if parent.is_none() {
        sub_attributes(name)
    } else {
        &[]
    };
    let ty = match name {
        "active" | "primary" => "boolean",
        "$ref" => "reference",
        _ if !subs.is_empty() => "complex",
        _ => "string",
    };
    let (mutability, returned) = match (parent, name) {
        // A password is written, never returned; `groups` is computed from the groups.
        (None, "password") => ("writeOnly", "never"),
        (None, "groups") | (Some("groups"), _) => ("readOnly", "default"),
        // A member is an id (its display name is the server's to say).
        (Some("members"), "display") => ("readOnly", "default"),
        (Some("members"), _) => ("immutable", "default"),
        _ => ("readWrite", "default"),
    };
    let required = matches!(
        (parent, name),
        (None, "userName" | "displayName") | (Some("members"), "value")
    );
    let mut v = json!({
        "name": name,
        "type": ty,
        "multiValued": parent.is_none() && MULTI_VALUED.contains(&name),
        "required": required,
        "caseExact": case_exact(&full),
        "mutability": mutability,
        "returned": returned,
        "uniqueness": if parent.is_none() && name == "userName" { "server" } else { "none" },
    });
    if ty == "reference" {
        v["referenceTypes"] = json!(["User", "Group"]);
    }
    if !subs.is_empty() {
        v["subAttributes"] = Value::Array(
            subs.iter()
                .map(|sub| attribute_json(Some(name), sub))
                .collect(),
        );
    }
    v
}

/// A schema: the attributes the provider knows, as RFC 7643 §7 describes them.
fn schema_json(inner: &Inner, base: &str, id: &str) -> Option<Value> {
    let describe = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .filter(|a| !matches!(**a, "schemas" | "id" | "meta"))
            .map(|a| attribute_json(None, a))
            .collect()
    };
    let (name, attributes) = match id {
        SCHEMA_USER => ("User", describe(USER_ATTRIBUTES)),
        SCHEMA_GROUP => ("Group", describe(GROUP_ATTRIBUTES)),
        SCHEMA_ENTERPRISE if inner.opts.enterprise_extension => (
            "EnterpriseUser",
            describe(&[
                "employeeNumber",
                "costCenter",
                "organization",
                "division",
                "department",
                "manager",
            ]),
        ),
        _ => return None,
    };
    Some(json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    }))
}

async fn schemas(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    discovery_list(&q, || {
        let base = base(&inner, &headers);
        [SCHEMA_USER, SCHEMA_GROUP, SCHEMA_ENTERPRISE]
            .iter()
            .filter_map(|s| schema_json(&inner, &base, s))
            .collect()
    })
}

async fn schema(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match schema_json(&inner, &base(&inner, &headers), &id) {
        Some(s) => scim_json(StatusCode::OK, &s),
        None => ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("Schema {id} not found"),
        )
        .response(),
    }
}

// ---------------------------------------------------------------------------------------
// Resources: shapes
// ---------------------------------------------------------------------------------------

/// What one request needs to know besides the state.
struct Ctx<'a> {
    opts: &'a ScimSimOptions,
    base: String,
    now: Instant,
    visibility: Duration,
}

fn new_id(seq: u64) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let r: u64 = rng.random();
    // UUID-shaped; the counter keeps ids unique, the random part keeps them opaque.
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (r >> 32) as u32,
        (r >> 16) as u16,
        (r & 0xfff) as u16,
        (seq >> 48) & 0xfff,
        seq & 0xffff_ffff_ffff
    )
}

fn insert_new(
    p: &mut Provider,
    kind: Kind,
    attrs: Map<String, Value>,
    visible_at: Instant,
) -> String {
    p.seq += 1;
    let seq = p.seq;
    let id = new_id(seq);
    let now = Utc::now();
    let member_visible_at = member_values(&attrs)
        .into_iter()
        .map(|m| (m, visible_at))
        .collect();
    for m in member_values(&attrs) {
        p.counts.added(&id, &m);
    }
    p.table_mut(kind).insert(
        id.clone(),
        ScimResource {
            id: id.clone(),
            kind,
            attributes: attrs,
            created: now,
            last_modified: now,
            version: 1,
            seq,
            visible_at,
            member_visible_at,
        },
    );
    id
}

fn meta(r: &ScimResource, base: &str) -> Value {
    json!({
        "resourceType": r.kind.name(),
        "created": ts(r.created),
        "lastModified": ts(r.last_modified),
        "location": format!("{base}/{}/{}", r.kind.endpoint(), r.id),
        "version": r.etag(),
    })
}

/// A resource as reads see it: members and group links only once visible; `password`
/// never returned; `groups` computed.
fn view(p: &Provider, r: &ScimResource, base: &str, now: Instant) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id));
    for (k, v) in &r.attributes {
        if k == "password" {
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    match r.kind {
        Kind::Group => {
            let members: Vec<Value> = member_objects(&r.attributes)
                .into_iter()
                .filter(|m| {
                    m.get("value")
                        .and_then(Value::as_str)
                        .and_then(|v| r.member_visible_at.get(v))
                        .is_none_or(|at| *at <= now)
                })
                .map(|mut m| {
                    if let Some(obj) = m.as_object_mut() {
                        let v = obj
                            .get("value")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string();
                        let kind = if p.users.contains_key(&v) {
                            Kind::User
                        } else {
                            Kind::Group
                        };
                        obj.entry("type").or_insert_with(|| json!(kind.name()));
                        obj.entry("$ref")
                            .or_insert_with(|| json!(format!("{base}/{}/{v}", kind.endpoint())));
                    }
                    m
                })
                .collect();
            if members.is_empty() {
                out.remove("members");
            } else {
                out.insert("members".into(), Value::Array(members));
            }
        }
        Kind::User => {
            let groups: Vec<Value> = p
                .groups
                .values()
                .filter(|g| g.visible_at <= now)
                .filter(|g| g.member_visible_at.get(&r.id).is_some_and(|at| *at <= now))
                .map(|g| {
                    json!({
                        "value": g.id,
                        "$ref": format!("{base}/Groups/{}", g.id),
                        "display": g.display_name().unwrap_or(""),
                        "type": "direct",
                    })
                })
                .collect();
            if !groups.is_empty() {
                out.insert("groups".into(), Value::Array(groups));
            }
        }
    }
    out.insert("meta".into(), meta(r, base));
    Value::Object(out)
}

fn member_objects(attrs: &Map<String, Value>) -> Vec<Value> {
    attrs
        .get("members")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5). `id` and `schemas` are always
/// returned. Extension attributes may be named with their schema URN.
fn project(v: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let Value::Object(obj) = v else { return v };
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let find_key = |obj: &Map<String, Value>, name: &str| {
        obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
    };
    // (top-level key, optional sub-attribute of it)
    let resolve = |obj: &Map<String, Value>, name: &str| -> Option<(String, Option<String>)> {
        if let Some(k) = find_key(obj, name) {
            return Some((k, None));
        }
        let lower = name.to_ascii_lowercase();
        if let Some(k) = obj
            .keys()
            .filter(|k| {
                k.starts_with("urn:") && lower.starts_with(&format!("{}:", k.to_ascii_lowercase()))
            })
            .max_by_key(|k| k.len())
        {
            let sub = name[k.len() + 1..]
                .split('.')
                .next()
                .unwrap_or("")
                .to_string();
            return Some((k.clone(), Some(sub)));
        }
        let plain = if lower.starts_with("urn:") {
            name.rsplit(':').next().unwrap_or(name)
        } else {
            name
        };
        let top = plain.split('.').next().unwrap_or(plain);
        find_key(obj, top).map(|k| (k, None))
    };
    let mut out = obj.clone();
    if let Some(list) = attributes.filter(|l| !l.trim().is_empty()) {
        out = Map::new();
        for always in ["schemas", "id"] {
            if let Some(v) = obj.get(always) {
                out.insert(always.to_string(), v.clone());
            }
        }
        for name in names(list) {
            let Some((key, sub)) = resolve(&obj, &name) else {
                continue;
            };
            match sub {
                None => {
                    if let Some(v) = obj.get(&key) {
                        out.insert(key, v.clone());
                    }
                }
                Some(sub) => {
                    let src = obj.get(&key).and_then(Value::as_object);
                    if let Some((sk, sv)) =
                        src.and_then(|s| s.iter().find(|(k, _)| k.eq_ignore_ascii_case(&sub)))
                    {
                        let slot = out.entry(key).or_insert_with(|| json!({}));
                        if let Some(m) = slot.as_object_mut() {
                            m.insert(sk.clone(), sv.clone());
                        }
                    }
                }
            }
        }
    }
    if let Some(list) = excluded {
        for name in names(list) {
            if let Some((key, sub)) = resolve(&out, &name) {
                if key == "id" || key == "schemas" {
                    continue;
                }
                match sub {
                    None => {
                        out.remove(&key);
                    }
                    Some(sub) => {
                        if let Some(m) = out.get_mut(&key).and_then(Value::as_object_mut) {
                            m.retain(|k, _| !k.eq_ignore_ascii_case(&sub));
                        }
                    }
                }
            }
        }
    }
    Value::Object(out)
}

// ---------------------------------------------------------------------------------------
// Resources: input checking
// ---------------------------------------------------------------------------------------

/// The attribute's canonical spelling (attribute names are case-insensitive).
fn canonical(kind: Kind, name: &str) -> String {
    if let Some(c) = kind
        .attributes()
        .iter()
        .find(|a| a.eq_ignore_ascii_case(name))
    {
        return c.to_string();
    }
    if name.eq_ignore_ascii_case(SCHEMA_ENTERPRISE) {
        return SCHEMA_ENTERPRISE.to_string();
    }
    name.to_string()
}

/// The body of a create or replace: an object, canonical names, read-only attributes
/// dropped (RFC 7644 §3.5.1: they are ignored), schemas checked.
fn incoming(kind: Kind, body: &Bytes) -> Result<Map<String, Value>, ScimError> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let k = canonical(kind, &k);
        if matches!(k.as_str(), "id" | "meta" | "groups") {
            continue;
        }
        out.insert(k, v);
    }
    let has_schema = out
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(kind.schema()))
            })
        });
    if !has_schema {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("\"schemas\" must list {}", kind.schema()),
        ));
    }
    Ok(out)
}

/// Types and required attributes; the extension schema listed when its attributes are set.
fn check(
    kind: Kind,
    attrs: &mut Map<String, Value>,
    opts: &ScimSimOptions,
) -> Result<(), ScimError> {
    let required = kind.required();
    match attrs.get(required) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{required}\" is required"),
            ));
        }
        Some(_) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{required}\" must be a string"),
            ));
        }
    }
    for (k, v) in attrs.iter() {
        if v.is_null() {
            continue;
        }
        let ok = match k.as_str() {
            "active" => v.is_boolean(),
            "name" => v.is_object(),
            a if STRING_ATTRIBUTES.contains(&a) => v.is_string(),
            "schemas" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            a if MULTI_VALUED.contains(&a) => {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_object))
            }
            SCHEMA_ENTERPRISE => v.is_object(),
            _ => true,
        };
        if !ok {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{k}\" has the wrong type"),
            ));
        }
    }
    if attrs.contains_key(SCHEMA_ENTERPRISE) {
        if kind != Kind::User || !opts.enterprise_extension {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("The {SCHEMA_ENTERPRISE} extension is not supported here"),
            ));
        }
        if let Some(list) = attrs.get_mut("schemas").and_then(Value::as_array_mut)
            && !list.iter().any(|s| s.as_str() == Some(SCHEMA_ENTERPRISE))
        {
            list.push(json!(SCHEMA_ENTERPRISE));
        }
    }
    if let Some(members) = attrs.get("members").and_then(Value::as_array)
        && members
            .iter()
            .any(|m| !m.get("value").is_some_and(Value::is_string))
    {
        return Err(ScimError::bad(
            "invalidValue",
            "Every member needs a \"value\" (the member's id)",
        ));
    }
    Ok(())
}

/// Writes that must hold against the rest of the state: userName unique (case-insensitive),
/// members that exist.
fn check_against(
    p: &Provider,
    kind: Kind,
    self_id: Option<&str>,
    attrs: &Map<String, Value>,
) -> Result<(), ScimError> {
    match kind {
        Kind::User => {
            let name = attrs.get("userName").and_then(Value::as_str).unwrap_or("");
            if let Some(other) = p.user_named(name)
                && Some(other.id.as_str()) != self_id
            {
                return Err(ScimError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "One or more of the attribute values are already in use or are reserved.",
                ));
            }
        }
        Kind::Group => {
            for m in member_values(attrs) {
                if !p.users.contains_key(&m) && !p.groups.contains_key(&m) {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("Member {m} is neither a User nor a Group of this provider"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// RFC 7644 §3.14: a write with If-Match must name the current version.
fn check_if_match(headers: &HeaderMap, r: &ScimResource, etag_on: bool) -> Result<(), ScimError> {
    if !etag_on {
        return Ok(());
    }
    let Some(v) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let strip = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let current = strip(&r.etag());
    if v.trim() == "*" || v.split(',').any(|t| strip(t) == current) {
        return Ok(());
    }
    Err(ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "Failed to update. Resource has changed on the server.",
    ))
}

/// Store new attributes on an existing resource: version, timestamps, and the visibility
/// and add counts of members that are new.
fn store(p: &mut Provider, kind: Kind, id: &str, attrs: Map<String, Value>, ctx: &Ctx<'_>) {
    let new_members: HashSet<String> = member_values(&attrs).into_iter().collect();
    let Some(r) = p.table_mut(kind).get_mut(id) else {
        return;
    };
    let added: Vec<String> = new_members
        .iter()
        .filter(|m| !r.member_visible_at.contains_key(*m))
        .cloned()
        .collect();
    r.member_visible_at.retain(|m, _| new_members.contains(m));
    for m in &added {
        r.member_visible_at
            .insert(m.clone(), ctx.now + ctx.visibility);
    }
    r.attributes = attrs;
    r.version += 1;
    r.last_modified = Utc::now();
    for m in added {
        p.counts.added(id, &m);
    }
}

/// Members listed twice count once (an add of an existing value changes nothing).
fn dedup_members(attrs: &mut Map<String, Value>) {
    if let Some(list) = attrs.get_mut("members").and_then(Value::as_array_mut) {
        let mut seen = HashSet::new();
        list.retain(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .is_none_or(|v| seen.insert(v.to_string()))
        });
    }
}

// ---------------------------------------------------------------------------------------
// Resources: operations (shared by the endpoints and /Bulk)
// ---------------------------------------------------------------------------------------

fn single(
    p: &Provider,
    kind: Kind,
    id: &str,
    ctx: &Ctx<'_>,
    status: StatusCode,
) -> Result<Reply, ScimError> {
    let r = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    Ok(Reply {
        status,
        body: Some(view(p, r, &ctx.base, ctx.now)),
        etag: ctx.opts.etag.then(|| r.etag()),
        location: Some(format!("{}/{}/{}", ctx.base, kind.endpoint(), r.id)),
    })
}

fn op_create(
    p: &mut Provider,
    kind: Kind,
    body: &Bytes,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let mut attrs = incoming(kind, body)?;
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, None, &attrs)?;
    let visible_at = ctx.now + ctx.visibility;
    let name = attrs
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = insert_new(p, kind, attrs, visible_at);
    if let Some(n) = name {
        p.counts.created(&n);
    }
    let mut reply = single(p, kind, &id, ctx, StatusCode::CREATED)?;
    // The creator sees what it created, members included.
    if let Some(r) = p.table(kind).get(&id) {
        let mut shown = r.clone();
        shown.member_visible_at.clear();
        reply.body = Some(view(p, &shown, &ctx.base, ctx.now));
    }
    Ok(reply)
}

fn op_replace(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    body: &Bytes,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    let mut attrs = incoming(kind, body)?;
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, Some(id), &attrs)?;
    store(p, kind, id, attrs, ctx);
    single(p, kind, id, ctx, StatusCode::OK)
}

fn op_patch(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    body: &Bytes,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    if !ctx.opts.patch {
        return Err(ScimError::not_implemented("PATCH"));
    }
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let is_patch = req
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SCHEMA_PATCH))
            })
        });
    if !is_patch {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("\"schemas\" must be [\"{SCHEMA_PATCH}\"]"),
        ));
    }
    let ops = match req.get("Operations").or_else(|| req.get("operations")) {
        Some(Value::Array(ops)) if !ops.is_empty() => ops.clone(),
        _ => {
            return Err(ScimError::bad(
                "invalidSyntax",
                "\"Operations\" must be a non-empty list",
            ));
        }
    };
    let mut attrs = current.attributes.clone();
    for op in &ops {
        let Some(o) = op.as_object() else {
            return Err(ScimError::bad(
                "invalidSyntax",
                "An operation is not an object",
            ));
        };
        let name = o.get("op").and_then(Value::as_str).unwrap_or("");
        let path = match o.get("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim()),
            Some(_) => return Err(ScimError::bad("invalidPath", "\"path\" must be a string")),
        };
        let value = o.get("value").cloned();
        patch::apply(kind, &mut attrs, name, path, value)?;
    }
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, Some(id), &attrs)?;
    store(p, kind, id, attrs, ctx);
    single(p, kind, id, ctx, StatusCode::OK)
}

fn op_delete(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    p.table_mut(kind).remove(id);
    // A deleted resource is nobody's member any more.
    let groups: Vec<String> = p
        .groups
        .values()
        .filter(|g| g.member_visible_at.contains_key(id))
        .map(|g| g.id.clone())
        .collect();
    for gid in groups {
        if let Some(g) = p.groups.get(&gid) {
            let mut attrs = g.attributes.clone();
            if let Some(list) = attrs.get_mut("members").and_then(Value::as_array_mut) {
                list.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
            }
            store(p, Kind::Group, &gid, attrs, ctx);
        }
    }
    Ok(Reply {
        status: StatusCode::NO_CONTENT,
        body: None,
        etag: None,
        location: None,
    })
}

/// The query of a listing, from the URL or a `.search` body.
#[derive(Debug, Default)]
struct ListQuery {
    filter: Option<String>,
    sort_by: Option<String>,
    descending: bool,
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    excluded: Option<String>,
}

impl ListQuery {
    fn from_url(q: Option<&str>) -> Self {
        let mut out = ListQuery::default();
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "filter" => out.filter = v,
                "sortBy" => out.sort_by = v,
                "sortOrder" => {
                    out.descending = v.is_some_and(|o| o.eq_ignore_ascii_case("descending"))
                }
                "startIndex" => out.start_index = v,
                "count" => out.count = v,
                "attributes" => out.attributes = v,
                "excludedAttributes" => out.excluded = v,
                _ => {}
            }
        }
        out
    }

    fn from_search(body: &Bytes) -> Result<Self, ScimError> {
        let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
            return Err(ScimError::bad(
                "invalidSyntax",
                "The request body is not a JSON object",
            ));
        };
        let is_search = b
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SCHEMA_SEARCH)));
        if !is_search {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("\"schemas\" must be [\"{SCHEMA_SEARCH}\"]"),
            ));
        }
        let text = |k: &str| match b.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        };
        Ok(ListQuery {
            filter: text("filter"),
            sort_by: text("sortBy"),
            descending: text("sortOrder").is_some_and(|o| o.eq_ignore_ascii_case("descending")),
            start_index: text("startIndex"),
            count: text("count"),
            attributes: text("attributes"),
            excluded: text("excludedAttributes"),
        })
    }
}

static NOT_CASE_EXACT: fn(&str) -> bool = |p| !case_exact(p);

fn scim_semantics() -> Semantics<'static> {
    Semantics {
        names_ci: true,
        values_ci: &NOT_CASE_EXACT,
    }
}

fn op_list(p: &Provider, kind: Kind, q: &ListQuery, ctx: &Ctx<'_>) -> Result<Reply, ScimError> {
    op_list_kinds(p, &[kind], q, ctx)
}

fn op_list_kinds(
    p: &Provider,
    kinds: &[Kind],
    q: &ListQuery,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let o = ctx.opts;
    let expr = match &q.filter {
        Some(_) if !o.filter => return Err(ScimError::not_implemented("Filtering")),
        Some(f) => Some(filter::parse(f).map_err(|why| {
            ScimError::bad("invalidFilter", format!("The filter is not valid: {why}"))
        })?),
        None => None,
    };
    if q.sort_by.is_some() && !o.sort {
        return Err(ScimError::not_implemented("Sorting"));
    }
    let int =
        |v: &Option<String>, what: &str| -> Result<Option<i64>, ScimError> {
            match v {
                None => Ok(None),
                Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                    ScimError::bad("invalidValue", format!("{what} must be an integer"))
                }),
            }
        };
    let start = int(&q.start_index, "startIndex")?.unwrap_or(1).max(1) as usize;
    let count = int(&q.count, "count")?
        .unwrap_or(o.max_results as i64)
        .clamp(0, o.max_results as i64) as usize;
    let sem = scim_semantics();
    let mut items: Vec<(&ScimResource, Value)> = kinds
        .iter()
        .flat_map(|k| p.table(*k).values())
        .filter(|r| r.visible_at <= ctx.now)
        .map(|r| (r, view(p, r, &ctx.base, ctx.now)))
        .filter(|(_, v)| expr.as_ref().is_none_or(|e| e.matches_with(v, &sem)))
        .collect();
    items.sort_by_key(|(r, _)| r.seq);
    if let Some(by) = &q.sort_by {
        let key = |v: &Value| -> Option<String> {
            filter::lookup(v, by, true).first().map(|x| match x {
                Value::String(s) if !case_exact(by) => s.to_lowercase(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        // Stable: ties (and equal timestamps) keep creation order. Missing values last.
        items.sort_by(|(_, a), (_, b)| match (key(a), key(b)) {
            (Some(x), Some(y)) if q.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|(_, v)| project(v, q.attributes.as_deref(), q.excluded.as_deref()))
        .collect();
    let mut body = json!({
        "schemas": [SCHEMA_LIST],
        "totalResults": total,
        "itemsPerPage": page.len(),
        "startIndex": start,
    });
    if !page.is_empty() || count > 0 {
        body["Resources"] = Value::Array(page);
    }
    Ok(Reply::json(StatusCode::OK, body))
}

fn ctx<'a>(inner: &'a Inner, headers: &HeaderMap) -> Ctx<'a> {
    Ctx {
        opts: &inner.opts,
        base: base(inner, headers),
        now: Instant::now(),
        visibility: inner.faults.visibility_delay(),
    }
}

fn kind_of(endpoint: &str) -> Result<Kind, ScimError> {
    Kind::from_endpoint(endpoint).ok_or_else(|| {
        ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("No such endpoint: /{endpoint}"),
        )
    })
}

// ---------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------

async fn list(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint)
            .and_then(|k| op_list(&inner.lock(), k, &ListQuery::from_url(q.as_deref()), &ctx)),
    )
}

async fn search(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| {
        let q = ListQuery::from_search(&body)?;
        op_list(&inner.lock(), k, &q, &ctx)
    }))
}

/// `POST /.search` at the root (RFC 7644 §3.4.3): Users and Groups together, filtered,
/// sorted and paged as one listing.
async fn search_all(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        ListQuery::from_search(&body)
            .and_then(|q| op_list_kinds(&inner.lock(), &[Kind::User, Kind::Group], &q, &ctx)),
    )
}

async fn create(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| op_create(&mut inner.lock(), k, &body, &ctx)))
}

async fn read(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let ctx = ctx(&inner, &headers);
    let q = ListQuery::from_url(q.as_deref());
    respond(kind_of(&endpoint).and_then(|k| {
        let p = inner.lock();
        match p.table(k).get(&id) {
            Some(r) if r.visible_at <= ctx.now => {}
            _ => return Err(ScimError::not_found(k, &id)),
        }
        let mut reply = single(&p, k, &id, &ctx, StatusCode::OK)?;
        reply.body = reply
            .body
            .map(|b| project(b, q.attributes.as_deref(), q.excluded.as_deref()));
        Ok(reply)
    }))
}

async fn replace(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint)
            .and_then(|k| op_replace(&mut inner.lock(), k, &id, &body, &headers, &ctx)),
    )
}

async fn patch(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint).and_then(|k| op_patch(&mut inner.lock(), k, &id, &body, &headers, &ctx)),
    )
}

async fn delete(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| op_delete(&mut inner.lock(), k, &id, &headers, &ctx)))
}

/// RFC 7644 §3.7: operations in order, `bulkId:` references resolved to the ids created
/// earlier in the request, stopping after `failOnErrors` errors.
async fn bulk(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(run_bulk(&mut inner.lock(), &body, &ctx))
}

fn run_bulk(p: &mut Provider, body: &Bytes, ctx: &Ctx<'_>) -> Result<Reply, ScimError> {
    if !ctx.opts.bulk {
        return Err(ScimError::not_implemented("Bulk"));
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let is_bulk = req
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SCHEMA_BULK_REQUEST)));
    let Some(ops) = req
        .get("Operations")
        .and_then(Value::as_array)
        .filter(|_| is_bulk)
    else {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("A BulkRequest lists {SCHEMA_BULK_REQUEST} and has \"Operations\""),
        ));
    };
    if ops.len() > ctx.opts.bulk_max_operations as usize {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "The bulk request has {} operations; the maximum is {}",
                ops.len(),
                ctx.opts.bulk_max_operations
            ),
        ));
    }
    let fail_on = req
        .get("failOnErrors")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let mut bulk_ids: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    let mut errors = 0u64;
    for op in ops {
        if errors >= fail_on {
            break;
        }
        let method = op
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let bulk_id = op.get("bulkId").and_then(Value::as_str).map(str::to_string);
        let resolve = |s: &str| {
            let mut out = s.to_string();
            for (b, id) in &bulk_ids {
                out = out.replace(&format!("bulkId:{b}"), id);
            }
            out
        };
        let path = resolve(op.get("path").and_then(Value::as_str).unwrap_or(""));
        let data = op.get("data").map(|d| Bytes::from(resolve(&d.to_string())));
        let mut segs = path.trim_matches('/').splitn(2, '/');
        let endpoint = segs.next().unwrap_or("");
        let id = segs.next();
        let mut op_headers = HeaderMap::new();
        if let Some(v) = op.get("version").and_then(Value::as_str)
            && let Ok(h) = HeaderValue::from_str(v)
        {
            op_headers.insert("if-match", h);
        }
        let outcome = kind_of(endpoint).and_then(|k| {
            let data = data.clone().unwrap_or_default();
            match (method.as_str(), id) {
                ("POST", None) => op_create(p, k, &data, ctx),
                ("PUT", Some(id)) => op_replace(p, k, id, &data, &op_headers, ctx),
                ("PATCH", Some(id)) => op_patch(p, k, id, &data, &op_headers, ctx),
                ("DELETE", Some(id)) => op_delete(p, k, id, &op_headers, ctx),
                _ => Err(ScimError::bad(
                    "invalidSyntax",
                    format!("Unsupported bulk operation {method} {path}"),
                )),
            }
        });
        let mut result = json!({"method": method});
        if let Some(b) = &bulk_id {
            result["bulkId"] = json!(b);
        }
        match outcome {
            Ok(reply) => {
                if let (Some(b), "POST") = (&bulk_id, method.as_str())
                    && let Some(new_id) = reply
                        .body
                        .as_ref()
                        .and_then(|v| v.get("id"))
                        .and_then(Value::as_str)
                {
                    bulk_ids.insert(b.clone(), new_id.to_string());
                }
                if let Some(l) = reply.location {
                    result["location"] = json!(l);
                }
                if let Some(v) = reply.etag {
                    result["version"] = json!(v);
                }
                result["status"] = json!(reply.status.as_u16().to_string());
            }
            Err(e) => {
                errors += 1;
                result["status"] = json!(e.status.as_u16().to_string());
                result["response"] = e.body();
            }
        }
        results.push(result);
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"schemas": [SCHEMA_BULK_RESPONSE], "Operations": results}),
    ))
}

// ---------------------------------------------------------------------------------------
// PATCH (RFC 7644 §3.5.2)
// ---------------------------------------------------------------------------------------

mod patch {
    use super::{Kind, MULTI_VALUED, SCHEMA_ENTERPRISE, ScimError, canonical, scim_semantics};
    use crate::sim::filter::{self, Expr};
    use serde_json::{Map, Value, json};

    /// Where a path points.
    #[derive(Debug)]
    struct Target {
        /// The extension object the attribute lives in (None: the top level).
        ext: Option<String>,
        attr: String,
        filter: Option<Expr>,
        sub: Option<String>,
    }

    fn invalid_path(path: &str) -> ScimError {
        ScimError::bad("invalidPath", format!("The path {path:?} is not valid"))
    }

    fn parse(kind: Kind, path: &str) -> Result<Target, ScimError> {
        let lower = path.to_ascii_lowercase();
        let core = format!("{}:", kind.schema().to_ascii_lowercase());
        let ext_prefix = format!("{}:", SCHEMA_ENTERPRISE.to_ascii_lowercase());
        let (ext, rest) = if lower.starts_with(&core) {
            (None, &path[core.len()..])
        } else if lower.starts_with(&ext_prefix) {
            (
                Some(SCHEMA_ENTERPRISE.to_string()),
                &path[ext_prefix.len()..],
            )
        } else if lower == SCHEMA_ENTERPRISE.to_ascii_lowercase() && kind == Kind::User {
            // The whole extension object (its URN contains a '.', so not split below).
            return Ok(Target {
                ext: None,
                attr: SCHEMA_ENTERPRISE.to_string(),
                filter: None,
                sub: None,
            });
        } else if lower.starts_with("urn:") {
            return Err(invalid_path(path));
        } else {
            (None, path)
        };
        let (attr, filter, sub) = match rest.find('[') {
            Some(open) => {
                let close = rest.rfind(']').ok_or_else(|| invalid_path(path))?;
                if close < open {
                    return Err(invalid_path(path));
                }
                let inner = &rest[open + 1..close];
                let expr = filter::parse(inner).map_err(|why| {
                    ScimError::bad(
                        "invalidFilter",
                        format!("The path filter is not valid: {why}"),
                    )
                })?;
                let after = &rest[close + 1..];
                let sub = match after.strip_prefix('.') {
                    Some(s) if !s.is_empty() => Some(s.to_string()),
                    None if after.is_empty() => None,
                    _ => return Err(invalid_path(path)),
                };
                (rest[..open].to_string(), Some(expr), sub)
            }
            None => match rest.split_once('.') {
                Some((a, s)) if !s.is_empty() => (a.to_string(), None, Some(s.to_string())),
                Some(_) => return Err(invalid_path(path)),
                None => (rest.to_string(), None, None),
            },
        };
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        if !name_ok(&attr) || sub.as_deref().is_some_and(|s| !name_ok(s)) {
            return Err(invalid_path(path));
        }
        let attr = if ext.is_some() {
            attr
        } else {
            canonical(kind, &attr)
        };
        if ext.is_none() && matches!(attr.as_str(), "id" | "meta" | "groups" | "schemas") {
            return Err(ScimError::bad(
                "mutability",
                format!("The attribute {attr} is read-only"),
            ));
        }
        Ok(Target {
            ext,
            attr,
            filter,
            sub,
        })
    }

    fn multi(attr: &str) -> bool {
        MULTI_VALUED.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }

    fn key_in(obj: &Map<String, Value>, name: &str) -> String {
        obj.keys()
            .find(|k| k.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }

    /// The same multi-valued element: same `value` when both have one, else equal.
    fn same(a: &Value, b: &Value) -> bool {
        match (a.get("value"), b.get("value")) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        }
    }

    /// `add` / `replace` of one attribute in `container`.
    fn set(container: &mut Map<String, Value>, attr: &str, value: Value, add: bool) {
        let key = key_in(container, attr);
        if multi(attr) {
            let items = match value {
                Value::Array(a) => a,
                other => vec![other],
            };
            if add {
                let list = container.entry(key).or_insert_with(|| json!([]));
                if !list.is_array() {
                    *list = json!([]);
                }
                if let Some(list) = list.as_array_mut() {
                    for v in items {
                        if !list.iter().any(|x| same(x, &v)) {
                            list.push(v);
                        }
                    }
                }
            } else {
                container.insert(key, Value::Array(items));
            }
            return;
        }
        match (container.get_mut(&key), value) {
            // A complex attribute: the given sub-attributes replace or add; others stay.
            (Some(Value::Object(existing)), Value::Object(new)) => {
                for (k, v) in new {
                    let k = key_in(existing, &k);
                    existing.insert(k, v);
                }
            }
            (_, v) => {
                container.insert(key, v);
            }
        }
    }

    fn container<'a>(
        attrs: &'a mut Map<String, Value>,
        ext: &Option<String>,
        create: bool,
    ) -> Option<&'a mut Map<String, Value>> {
        match ext {
            None => Some(attrs),
            Some(e) => {
                if create {
                    let slot = attrs.entry(e.clone()).or_insert_with(|| json!({}));
                    if !slot.is_object() {
                        *slot = json!({});
                    }
                }
                attrs.get_mut(e).and_then(Value::as_object_mut)
            }
        }
    }

    fn matching(list: &[Value], f: &Expr, attr: &str) -> Vec<usize> {
        let sem = scim_semantics();
        let wrap_attr = attr.to_string();
        list.iter()
            .enumerate()
            .filter(|(_, el)| {
                // Paths inside the filter are relative to the element; the semantics see the
                // full path (`members.value`) through a wrapper object.
                let mut wrapped = Map::new();
                wrapped.insert(wrap_attr.clone(), json!([el]));
                let wrapped = Value::Object(wrapped);
                let e = Expr::ValuePath {
                    path: wrap_attr.clone(),
                    filter: Box::new(f.clone()),
                };
                e.matches_with(&wrapped, &sem)
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn no_target(path: &str) -> ScimError {
        ScimError::bad(
            "noTarget",
            format!("The path {path:?} did not match any value"),
        )
    }

    /// Apply one operation to a copy of the resource's attributes.
    pub fn apply(
        kind: Kind,
        attrs: &mut Map<String, Value>,
        op: &str,
        path: Option<&str>,
        value: Option<Value>,
    ) -> Result<(), ScimError> {
        let op = op.to_ascii_lowercase();
        match op.as_str() {
            "add" | "replace" => {
                let add = op == "add";
                let Some(value) = value else {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("A {op} operation needs a \"value\""),
                    ));
                };
                let Some(path) = path else {
                    let Value::Object(obj) = value else {
                        return Err(ScimError::bad(
                            "invalidValue",
                            format!("A {op} operation without a path needs an object value"),
                        ));
                    };
                    for (k, v) in obj {
                        let k = canonical(kind, &k);
                        if matches!(k.as_str(), "id" | "meta" | "groups" | "schemas") {
                            continue;
                        }
                        set(attrs, &k, v, add);
                    }
                    return Ok(());
                };
                let t = parse(kind, path)?;
                let Some(c) = container(attrs, &t.ext, true) else {
                    return Err(no_target(path));
                };
                match (&t.filter, &t.sub) {
                    (Some(f), sub) => {
                        if add {
                            return Err(ScimError::bad(
                                "invalidPath",
                                "A value filter is for replace and remove, not add",
                            ));
                        }
                        let key = key_in(c, &t.attr);
                        let Some(list) = c.get_mut(&key).and_then(Value::as_array_mut) else {
                            return Err(no_target(path));
                        };
                        let hits = matching(list, f, &t.attr);
                        if hits.is_empty() {
                            return Err(no_target(path));
                        }
                        for i in hits {
                            match (sub, list.get_mut(i)) {
                                (Some(s), Some(Value::Object(el))) => {
                                    let k = key_in(el, s);
                                    el.insert(k, value.clone());
                                }
                                (None, Some(el)) => match (el.as_object_mut(), &value) {
                                    (Some(el), Value::Object(new)) => {
                                        for (k, v) in new {
                                            let k = key_in(el, k);
                                            el.insert(k, v.clone());
                                        }
                                    }
                                    (_, v) => *el = v.clone(),
                                },
                                _ => return Err(no_target(path)),
                            }
                        }
                    }
                    (None, Some(sub)) => {
                        if multi(&t.attr) {
                            return Err(ScimError::bad(
                                "invalidPath",
                                format!(
                                    "{path:?} names a sub-attribute of a multi-valued attribute without a filter"
                                ),
                            ));
                        }
                        let key = key_in(c, &t.attr);
                        let slot = c.entry(key).or_insert_with(|| json!({}));
                        if !slot.is_object() {
                            *slot = json!({});
                        }
                        if let Some(obj) = slot.as_object_mut() {
                            let k = key_in(obj, sub);
                            obj.insert(k, value);
                        }
                    }
                    (None, None) => set(c, &t.attr, value, add),
                }
                Ok(())
            }
            "remove" => {
                let Some(path) = path else {
                    return Err(ScimError::bad(
                        "noTarget",
                        "A remove operation needs a \"path\"",
                    ));
                };
                let t = parse(kind, path)?;
                let Some(c) = container(attrs, &t.ext, false) else {
                    return Ok(()); // nothing there to remove
                };
                let key = key_in(c, &t.attr);
                match (&t.filter, &t.sub) {
                    (Some(f), sub) => {
                        let Some(list) = c.get_mut(&key).and_then(Value::as_array_mut) else {
                            return Ok(());
                        };
                        let hits = matching(list, f, &t.attr);
                        // No match: nothing to change, and a success (RFC 7644 §3.5.2.2's
                        // example of removing someone who is not a member).
                        for i in hits.into_iter().rev() {
                            match sub {
                                Some(s) => {
                                    if let Some(el) = list.get_mut(i).and_then(Value::as_object_mut)
                                    {
                                        el.retain(|k, _| !k.eq_ignore_ascii_case(s));
                                    }
                                }
                                None => {
                                    list.remove(i);
                                }
                            }
                        }
                        if list.is_empty() {
                            c.remove(&key);
                        }
                    }
                    (None, Some(sub)) => {
                        if let Some(obj) = c.get_mut(&key).and_then(Value::as_object_mut) {
                            obj.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                        }
                    }
                    (None, None) => match (value, c.get_mut(&key)) {
                        // Some clients name the values to remove in "value" instead of a
                        // filter: {"op": "remove", "path": "members", "value": [{"value": "id"}]}
                        (Some(Value::Array(gone)), Some(Value::Array(list))) if multi(&t.attr) => {
                            list.retain(|x| !gone.iter().any(|g| same(x, g)));
                            if list.is_empty() {
                                c.remove(&key);
                            }
                        }
                        _ => {
                            c.remove(&key);
                        }
                    },
                }
                if t.ext.is_none()
                    && t.filter.is_none()
                    && t.sub.is_none()
                    && key.eq_ignore_ascii_case(kind.required())
                {
                    return Err(ScimError::bad(
                        "mutability",
                        format!("The attribute {key} is required and cannot be removed"),
                    ));
                }
                Ok(())
            }
            other => Err(ScimError::bad(
                "invalidSyntax",
                format!("Unknown PATCH operation {other:?} (add, remove or replace)"),
            )),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn user() -> Map<String, Value> {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada", "active": true, "name": {"givenName": "Ada", "familyName": "L"},
                "emails": [{"value": "a@x", "type": "work", "primary": true}, {"value": "h@x", "type": "home"}]
            })
            .as_object()
            .cloned()
            .unwrap_or_default()
        }

        #[test]
        fn replace_add_remove_by_path_and_filter() {
            let mut u = user();
            apply(
                Kind::User,
                &mut u,
                "replace",
                Some("active"),
                Some(json!(false)),
            )
            .unwrap();
            assert_eq!(u["active"], false);
            apply(
                Kind::User,
                &mut u,
                "Replace",
                Some("name.familyName"),
                Some(json!("Lovelace")),
            )
            .unwrap();
            assert_eq!(
                u["name"],
                json!({"givenName": "Ada", "familyName": "Lovelace"})
            );
            apply(
                Kind::User,
                &mut u,
                "replace",
                Some("emails[type eq \"work\"].value"),
                Some(json!("ada@x")),
            )
            .unwrap();
            assert_eq!(u["emails"][0]["value"], "ada@x");
            let e = apply(
                Kind::User,
                &mut u,
                "replace",
                Some("emails[type eq \"other\"].value"),
                Some(json!("z")),
            )
            .unwrap_err();
            assert_eq!(e.scim_type.as_deref(), Some("noTarget"));
            apply(
                Kind::User,
                &mut u,
                "remove",
                Some("emails[type eq \"home\"]"),
                None,
            )
            .unwrap();
            assert_eq!(u["emails"].as_array().map(Vec::len), Some(1));
            apply(
                Kind::User,
                &mut u,
                "add",
                Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                Some(json!("R&D")),
            )
            .unwrap();
            assert_eq!(u[SCHEMA_ENTERPRISE]["department"], "R&D");
            apply(
                Kind::User,
                &mut u,
                "add",
                None,
                Some(json!({"displayName": "Ada L", "emails": [{"value": "ada@x"}]})),
            )
            .unwrap();
            assert_eq!(u["displayName"], "Ada L");
            assert_eq!(
                u["emails"].as_array().map(Vec::len),
                Some(1),
                "an existing value is not added again"
            );
            let e = apply(Kind::User, &mut u, "remove", Some("userName"), None).unwrap_err();
            assert_eq!(e.scim_type.as_deref(), Some("mutability"));
            let e = apply(Kind::User, &mut u, "remove", None, None).unwrap_err();
            assert_eq!(e.scim_type.as_deref(), Some("noTarget"));
            for bad in ["emails[type eq", "urn:x:y:z", "a..b", "meta"] {
                assert!(
                    apply(Kind::User, &mut u, "replace", Some(bad), Some(json!(1))).is_err(),
                    "{bad}"
                );
            }
            assert!(
                apply(
                    Kind::User,
                    &mut u,
                    "frobnicate",
                    Some("active"),
                    Some(json!(1))
                )
                .is_err()
            );
        }

        proptest::proptest! {
            #[test]
            fn any_operation_is_applied_or_refused_never_panics(
                op in "(add|remove|replace|x)",
                path in proptest::option::of("[a-zA-Z.:\\[\\]\" 0-9ü$]{0,40}"),
                value in proptest::option::of(proptest::prop_oneof![
                    proptest::strategy::Just(json!(null)),
                    proptest::strategy::Just(json!({"value": "u1"})),
                    proptest::strategy::Just(json!([{"value": "u1"}, 3])),
                    proptest::strategy::Just(json!("text")),
                ]),
            ) {
                let mut u = user();
                let _ = apply(Kind::User, &mut u, &op, path.as_deref(), value.clone());
                let mut g = json!({"displayName": "g", "members": [{"value": "u1"}]}).as_object().cloned().unwrap_or_default();
                let _ = apply(Kind::Group, &mut g, &op, path.as_deref(), value);
            }
        }

        #[test]
        fn members_add_once_and_remove_by_filter_or_value() {
            let mut g = json!({"displayName": "eng"})
                .as_object()
                .cloned()
                .unwrap_or_default();
            for _ in 0..2 {
                apply(
                    Kind::Group,
                    &mut g,
                    "add",
                    Some("members"),
                    Some(json!([{"value": "u1"}, {"value": "u2"}])),
                )
                .unwrap();
            }
            assert_eq!(g["members"], json!([{"value": "u1"}, {"value": "u2"}]));
            apply(
                Kind::Group,
                &mut g,
                "remove",
                Some("members[value eq \"u1\"]"),
                None,
            )
            .unwrap();
            // Not a member: no change, no error.
            apply(
                Kind::Group,
                &mut g,
                "remove",
                Some("members[value eq \"u9\"]"),
                None,
            )
            .unwrap();
            assert_eq!(g["members"], json!([{"value": "u2"}]));
            apply(
                Kind::Group,
                &mut g,
                "remove",
                Some("members"),
                Some(json!([{"value": "u2"}])),
            )
            .unwrap();
            assert!(g.get("members").is_none());
            // Member values are case-exact.
            apply(
                Kind::Group,
                &mut g,
                "add",
                Some("members"),
                Some(json!({"value": "U1"})),
            )
            .unwrap();
            apply(
                Kind::Group,
                &mut g,
                "remove",
                Some("members[value eq \"u1\"]"),
                None,
            )
            .unwrap();
            assert_eq!(g["members"], json!([{"value": "U1"}]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_keeps_id_and_schemas_and_reads_urns() {
        let v = json!({"schemas": [SCHEMA_USER], "id": "1", "userName": "a", "emails": [], "meta": {},
                       SCHEMA_ENTERPRISE: {"department": "D", "costCenter": "C"}});
        let p = project(
            v.clone(),
            Some("userName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
            None,
        );
        assert_eq!(
            p,
            json!({"schemas": [SCHEMA_USER], "id": "1", "userName": "a", SCHEMA_ENTERPRISE: {"department": "D"}})
        );
        let p = project(v, None, Some("emails,meta,id"));
        assert!(p.get("emails").is_none() && p.get("meta").is_none() && p.get("id").is_some());
    }

    #[test]
    fn case_exactness_follows_rfc_7643() {
        assert!(case_exact("id") && case_exact("externalId") && case_exact("members.value"));
        assert!(case_exact("meta.created"));
        assert!(
            !case_exact("userName") && !case_exact("displayName") && !case_exact("emails.value")
        );
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let a = new_id(1);
        let b = new_id(2);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
