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

mod discovery;
mod endpoints;
mod errors;
mod input;
mod operations;
mod patch;
mod shapes;
use discovery::*;
use endpoints::*;
pub use errors::*;
use input::*;
use operations::*;
use shapes::*;

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
    /// How resource ids look.
    pub id_style: IdStyle,
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
            id_style: IdStyle::Uuid,
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
    /// Ids in a vendor's style (Slack's `U…`/`S…`) instead of UUIDs.
    id_style: IdStyle,
}

/// How the provider makes resource ids.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IdStyle {
    /// UUID-shaped (most providers).
    #[default]
    Uuid,
    /// Slack's: `U` and 10 upper-case letters and digits for users, `S` for groups.
    Slack,
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
    /// Where the server answers (`http://127.0.0.1:PORT`); locations are built from it.
    pub fn set_base_url(&self, server: &str) {
        let _ = self
            .inner
            .base_url
            .set(format!("{server}{}", self.inner.opts.root));
    }

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
    let (app, handle) = app(opts);
    let server = SimServer::spawn(app).await?;
    handle.set_base_url(&server.base_url());
    Ok((server, handle))
}

/// The provider as a router, for a simulator that serves SCIM beside its own API (Slack);
/// call [`ScimHandle::set_base_url`] once the server is up.
pub fn app(opts: ScimSimOptions) -> (axum::Router, ScimHandle) {
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
        state: Mutex::new(Provider {
            id_style: opts.id_style,
            ..Provider::default()
        }),
        rules: Rules::new(ScimBodies, opts.lost_response_rate, opts.seed ^ 0x5c1a),
        opts,
        faults: faults.clone(),
        limits,
        log: Arc::new(RequestLog::default()),
        base_url: OnceLock::new(),
    });
    let app = router(inner.clone(), faults);
    (app, ScimHandle { inner })
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

#[cfg(test)]
mod tests;
