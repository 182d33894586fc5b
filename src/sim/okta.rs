//! A stateful Okta simulator: users, groups, memberships, SSWS API tokens and OAuth 2.0
//! client credentials with `private_key_jwt`, shaped per Okta's Management API description
//! (`specs/okta/management.prism.json`) so that Prism in proxy mode reports no violations.
//!
//! What it enforces, as Okta documents it:
//! - per-endpoint, per-window rate-limit buckets with `X-Rate-Limit-Limit/Remaining/Reset`
//!   on every response and `429` + `E0000047` when a bucket is spent ([`buckets`]);
//! - Okta's error object (`errorCode`, `errorSummary`, `errorLink`, `errorId`,
//!   `errorCauses`): `E0000001` validation (a duplicate login gets the "An object with this
//!   field already exists" cause), `E0000007` not found, `E0000011` invalid token,
//!   `E0000006` missing permission, `E0000038` a lifecycle call the user's status forbids;
//! - OAuth: `POST /oauth2/v1/token` with `grant_type=client_credentials` and a signed
//!   client assertion (RS256/ES256, checked against the registered public key, `aud`,
//!   `exp`, one use per `jti`), returning scoped, expiring access tokens; scopes are checked
//!   per route (`okta.users.read`, `okta.groups.manage`, ...);
//! - eventual consistency: a created user or membership becomes visible to reads after
//!   [`Faults::visibility_delay`]; writes always see the true state (a login stays unique);
//! - the concurrent limit ([`OktaSimOptions::concurrency_limit`], off by default): a
//!   request beyond it is refused with `429` + `E0000047`, the X-Rate-Limit-* headers
//!   reporting the concurrent limit, none left and an estimated reset
//!   ([`OktaHandle::concurrency`]);
//! - user status as Okta's creation table and lifecycle operations say: created with
//!   `activate=false`, `STAGED`; with `activate=true` (the default), `ACTIVE` when a password
//!   is given (`credentials.password.value`), else `PROVISIONED` (the user has yet to
//!   finish the welcome flow); `activate` on a `STAGED` user likewise (`ACTIVE` with a
//!   password, else `PROVISIONED`) and on a `DEPROVISIONED` one `PROVISIONED` (they set up
//!   again); `deactivate` of anyone not `DEPROVISIONED` gives `DEPROVISIONED`; a transition
//!   the status does not allow gets Okta's error (`E0000016` activating a user who is
//!   already activated, `E0000038` otherwise, `E0000001` for suspend/unsuspend). Passwords
//!   are checked against the default policy (8 characters) and never kept: only whether
//!   the user has one.
//!
//! Simplifications (documented, deliberate): activation completes at once (no
//! `transitioningToStatus`); a `PROVISIONED` user stays so until a test moves them on
//! ([`OktaHandle::set_status`]); access tokens are opaque strings, not JWTs; the
//! `Everyone` group is `BUILT_IN` and contains every user implicitly.
//!
//! Faults: the shared [`inject`] middleware (style [`ThrottleStyle::Okta`]) plus
//! deterministic, test-steered [`FailRule`]s (malformed JSON, a 200 of the wrong shape, an
//! HTML page from a proxy, a body cut off mid-transfer, a lost response after the write was
//! done) and a random lost-response rate.

// Handlers bail out early with a ready Okta error response; boxing it buys nothing here.
#![allow(clippy::result_large_err)]

use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
use super::filter;
pub use super::log::LoggedRequest;
use super::log::{RequestLog, record};
use super::ratelimit::{
    ConcurrencyEnforcer, ConcurrencyLimit, Enforcer, RateWindows, enforce, limit_concurrency,
};
use super::rules::{self, Rules, VendorBodies};
pub use super::rules::{BodyFault, FailRule};
use super::{SimServer, WriteCounts};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use chrono::{DateTime, SecondsFormat, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Okta's documented per-minute buckets (Workforce Identity), by the name used with
/// [`RateWindows::set_limit`].
pub mod buckets {
    /// `GET/POST /api/v1/users`: 600/min.
    pub const USERS: &str = "/api/v1/users";
    /// `GET /api/v1/users/{idOrLogin}`: 2,000/min.
    pub const USER_GET: &str = "GET /api/v1/users/{id}";
    /// `POST/PUT/DELETE /api/v1/users/{id}`: 600/min.
    pub const USER_WRITE: &str = "/api/v1/users/{id}";
    /// Create and list `/api/v1/groups`: 500/min.
    pub const GROUPS: &str = "/api/v1/groups";
    /// `/api/v1/groups/{id}` and below (members, membership changes): 1,000/min.
    pub const GROUP: &str = "/api/v1/groups/{id}";
    /// `/oauth2/v1/token`: 600/min.
    pub const TOKEN: &str = "/oauth2/v1/token";
    /// Every other `/api/v1` endpoint (lifecycle, a user's groups): 1,200/min.
    pub const OTHER: &str = "/api/v1";

    pub const DEFAULTS: &[(&str, u32)] = &[
        (USERS, 600),
        (USER_GET, 2000),
        (USER_WRITE, 600),
        (GROUPS, 500),
        (GROUP, 1000),
        (TOKEN, 600),
        (OTHER, 1200),
    ];
}

/// The login of the admin who owns the SSWS API tokens added with
/// [`OktaHandle::add_api_token`].
pub const ADMIN_LOGIN: &str = "accessdesk.admin@example.com";

const ALL_SCOPES: &[&str] = &[
    "okta.users.read",
    "okta.users.manage",
    "okta.groups.read",
    "okta.groups.manage",
];

#[derive(Debug, Clone)]
pub struct OktaSimOptions {
    pub faults: FaultProfile,
    /// Length of a rate-limit window (Okta: one minute). Tests use a second or two.
    pub rate_window: Duration,
    /// One limit for every bucket instead of Okta's documented per-bucket limits.
    pub rate_limit: Option<u32>,
    /// How long an issued access token lives (Okta: one hour).
    pub token_ttl: Duration,
    /// Chance that a request is carried out but its response is lost (connection reset).
    pub lost_response_rate: f64,
    /// Okta's concurrent limit: at most this many requests in flight at once (Okta's
    /// default is 75 per org). None: no limit.
    pub concurrency_limit: Option<u32>,
    pub seed: u64,
}

impl Default for OktaSimOptions {
    fn default() -> Self {
        OktaSimOptions {
            faults: FaultProfile::none(),
            rate_window: Duration::from_secs(60),
            rate_limit: None,
            token_ttl: Duration::from_secs(3600),
            lost_response_rate: 0.0,
            concurrency_limit: None,
            seed: 7,
        }
    }
}

/// A user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: String,
    pub status: String,
    pub profile: Map<String, Value>,
    pub created: DateTime<Utc>,
    pub activated: Option<DateTime<Utc>>,
    pub status_changed: Option<DateTime<Utc>>,
    pub last_updated: DateTime<Utc>,
    /// Whether the user has a password (the value itself is never kept).
    pub has_password: bool,
    visible_at: Instant,
}

impl SimUser {
    pub fn login(&self) -> &str {
        self.profile
            .get("login")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct SimGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    /// OKTA_GROUP, BUILT_IN or APP_GROUP.
    pub kind: String,
    pub created: DateTime<Utc>,
    pub last_updated: DateTime<Utc>,
    pub last_membership_updated: DateTime<Utc>,
}

#[derive(Debug)]
struct OAuthClient {
    public_key_pem: String,
    scopes: Vec<String>,
}

#[derive(Debug)]
struct AccessToken {
    client_id: String,
    scopes: Vec<String>,
    expires: SystemTime,
    revoked: bool,
}

#[derive(Debug, Default)]
struct Org {
    next_id: u64,
    users: BTreeMap<String, SimUser>,
    groups: BTreeMap<String, SimGroup>,
    /// (group id, user id) -> when the membership becomes visible to reads.
    memberships: BTreeMap<(String, String), Instant>,
    everyone: String,
    admin: String,
    api_tokens: HashMap<String, bool>,
    clients: HashMap<String, OAuthClient>,
    access_tokens: HashMap<String, AccessToken>,
    used_jtis: HashSet<String>,
    counts: WriteCounts,
    token_requests: u64,
}

struct Inner {
    state: Mutex<Org>,
    faults: Arc<Faults>,
    limits: Arc<RateWindows>,
    concurrency: Arc<ConcurrencyLimit>,
    token_ttl: Mutex<Duration>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Org> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Steers and inspects a running simulator.
#[derive(Clone)]
pub struct OktaHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OktaHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OktaHandle")
    }
}

impl OktaHandle {
    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The rate-limit windows; [`RateWindows::set_limit`] changes a limit at run time.
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    /// The concurrent limit; [`ConcurrencyLimit::set_limit`] changes it at run time (0: none).
    pub fn concurrency(&self) -> Arc<ConcurrencyLimit> {
        self.inner.concurrency.clone()
    }

    /// Accept `token` as `Authorization: SSWS token`, acting as [`ADMIN_LOGIN`].
    pub fn add_api_token(&self, token: &str) {
        self.inner.lock().api_tokens.insert(token.to_string(), true);
    }

    /// Revoke an SSWS API token or an issued access token.
    pub fn revoke_token(&self, token: &str) {
        let mut s = self.inner.lock();
        if let Some(valid) = s.api_tokens.get_mut(token) {
            *valid = false;
        }
        if let Some(t) = s.access_tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Revoke every access token issued so far (the clients stay registered).
    pub fn revoke_access_tokens(&self) {
        for t in self.inner.lock().access_tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Register an OAuth service app that authenticates with `private_key_jwt`.
    pub fn register_client(&self, client_id: &str, public_key_pem: &str, scopes: &[&str]) {
        self.inner.lock().clients.insert(
            client_id.to_string(),
            OAuthClient {
                public_key_pem: public_key_pem.to_string(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    pub fn remove_client(&self, client_id: &str) {
        self.inner.lock().clients.remove(client_id);
    }

    pub fn set_token_ttl(&self, ttl: Duration) {
        *self
            .inner
            .token_ttl
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = ttl;
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    /// Every access token issued so far (for leak tests: none may appear in logs or errors).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.inner.lock().access_tokens.keys().cloned().collect()
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.inner.lock().token_requests
    }

    /// Add a deterministic fault rule (checked before the random faults' effects reach the
    /// handlers; first matching rule wins).
    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    pub fn clear_rules(&self) {
        self.inner.rules.clear();
    }

    /// Every user (including the admin), whether or not visible yet.
    pub fn users(&self) -> Vec<SimUser> {
        self.inner.lock().users.values().cloned().collect()
    }

    pub fn user_by_login(&self, login: &str) -> Option<SimUser> {
        let s = self.inner.lock();
        find_by_login(&s, login).and_then(|id| s.users.get(&id).cloned())
    }

    pub fn groups(&self) -> Vec<SimGroup> {
        self.inner.lock().groups.values().cloned().collect()
    }

    pub fn group_by_name(&self, name: &str) -> Option<SimGroup> {
        self.inner
            .lock()
            .groups
            .values()
            .find(|g| g.name == name)
            .cloned()
    }

    /// The true (not eventually consistent) member ids of a group.
    pub fn members(&self, group_id: &str) -> Vec<String> {
        self.inner
            .lock()
            .memberships
            .keys()
            .filter(|(g, _)| g == group_id)
            .map(|(_, u)| u.clone())
            .collect()
    }

    /// How many times a user with this login was created (more than 1 is a duplicate).
    pub fn creates_for(&self, login: &str) -> u32 {
        self.inner.lock().counts.creates_for(login)
    }

    /// The highest create count of any login.
    pub fn max_creates_per_login(&self) -> u32 {
        self.inner.lock().counts.max_creates()
    }

    /// How many times this membership was added (a PUT for an existing member adds nothing).
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

    /// Create an OKTA_GROUP directly (seeding without a request).
    pub fn seed_group(&self, name: &str) -> String {
        let mut s = self.inner.lock();
        new_group(&mut s, name, "", "OKTA_GROUP")
    }

    /// Create an APP_GROUP directly (a group imported from an app: read-only through the
    /// Management API's membership routes at Okta, listed by `GET /api/v1/groups`).
    pub fn seed_app_group(&self, name: &str) -> String {
        let mut s = self.inner.lock();
        new_group(&mut s, name, "", "APP_GROUP")
    }

    /// Create an ACTIVE user directly, visible at once.
    pub fn seed_user(&self, login: &str, first: &str, last: &str) -> String {
        let mut s = self.inner.lock();
        let mut profile = Map::new();
        profile.insert("login".into(), json!(login));
        profile.insert("email".into(), json!(login));
        profile.insert("firstName".into(), json!(first));
        profile.insert("lastName".into(), json!(last));
        new_user(&mut s, profile, "ACTIVE", true, Instant::now())
    }

    /// Create many ACTIVE users directly (seeding at scale without requests), each visible
    /// at once, with the given profiles (`login` required; `email`, `firstName`... as
    /// Okta's base schema has them). Returns their ids, in order. A login missing, or held
    /// by another user (case-insensitively, as Okta compares them), is refused before
    /// anything is created.
    pub fn seed_users(&self, profiles: Vec<Map<String, Value>>) -> Result<Vec<String>, String> {
        let mut s = self.inner.lock();
        let mut taken: HashSet<String> =
            s.users.values().map(|u| u.login().to_lowercase()).collect();
        for p in &profiles {
            let login = p.get("login").and_then(Value::as_str).unwrap_or("");
            if login.is_empty() {
                return Err("a seeded user has no login".into());
            }
            if !taken.insert(login.to_lowercase()) {
                return Err(format!("login {login:?} is already taken"));
            }
        }
        let now = Instant::now();
        Ok(profiles
            .into_iter()
            .map(|p| new_user(&mut s, p, "ACTIVE", true, now))
            .collect())
    }

    /// Put users into an OKTA_GROUP directly, visible at once (seeding without requests;
    /// not counted as membership adds). Returns how many were not members before. An
    /// unknown group or user is refused before anything changes.
    pub fn seed_members(&self, group_id: &str, user_ids: &[String]) -> Result<usize, String> {
        let mut s = self.inner.lock();
        if !s.groups.contains_key(group_id) {
            return Err(format!("no group {group_id}"));
        }
        if let Some(u) = user_ids.iter().find(|u| !s.users.contains_key(*u)) {
            return Err(format!("no user {u}"));
        }
        let now = Instant::now();
        let mut added = 0;
        for u in user_ids {
            if s.memberships
                .insert((group_id.to_string(), u.clone()), now)
                .is_none()
            {
                added += 1;
            }
        }
        if let Some(g) = s.groups.get_mut(group_id) {
            g.last_membership_updated = Utc::now();
        }
        Ok(added)
    }

    /// Force a user's status (e.g. PROVISIONED, to exercise reactivation).
    pub fn set_status(&self, user_id: &str, status: &str) {
        if let Some(u) = self.inner.lock().users.get_mut(user_id) {
            u.status = status.to_string();
            u.status_changed = Some(Utc::now());
        }
    }

    pub fn everyone_group_id(&self) -> String {
        self.inner.lock().everyone.clone()
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: OktaSimOptions) -> std::io::Result<(SimServer, OktaHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Okta);
    let limits = Arc::new(RateWindows::new(
        opts.rate_limit.unwrap_or(1200),
        opts.rate_window,
    ));
    match opts.rate_limit {
        Some(l) => limits.set_limit(None, l),
        None => {
            for (b, l) in buckets::DEFAULTS {
                limits.set_limit(Some(b), *l);
            }
        }
    }
    let mut state = Org::default();
    state.everyone = new_group(
        &mut state,
        "Everyone",
        "All users in your organization",
        "BUILT_IN",
    );
    let mut admin = Map::new();
    admin.insert("login".into(), json!(ADMIN_LOGIN));
    admin.insert("email".into(), json!(ADMIN_LOGIN));
    admin.insert("firstName".into(), json!("Accessdesk"));
    admin.insert("lastName".into(), json!("Admin"));
    state.admin = new_user(&mut state, admin, "ACTIVE", true, Instant::now());
    let inner = Arc::new(Inner {
        state: Mutex::new(state),
        faults: faults.clone(),
        limits,
        concurrency: ConcurrencyLimit::new(opts.concurrency_limit.unwrap_or(0)),
        token_ttl: Mutex::new(opts.token_ttl),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(OktaBodies, opts.lost_response_rate, opts.seed ^ 0x0c7a),
    });
    let app = router(inner.clone(), faults);
    let server = SimServer::spawn(app).await?;
    Ok((server, OktaHandle { inner }))
}

fn router(inner: Arc<Inner>, faults: Arc<Faults>) -> axum::Router {
    axum::Router::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route(
            "/api/v1/users/{id}",
            get(get_user).post(update_user).delete(delete_user),
        )
        .route("/api/v1/users/{id}/lifecycle/{op}", post(lifecycle))
        .route("/api/v1/users/{id}/groups", get(user_groups))
        .route("/api/v1/groups", get(list_groups).post(create_group))
        .route("/api/v1/groups/{gid}/users", get(group_users))
        .route(
            "/api/v1/groups/{gid}/users/{uid}",
            put(add_member).delete(remove_member),
        )
        .route("/oauth2/v1/token", post(token))
        .fallback(fallback)
        .layer(from_fn_with_state(inner.clone(), authenticate))
        .layer(from_fn_with_state(
            Arc::new(Enforcer {
                windows: inner.limits.clone(),
                style: ThrottleStyle::Okta,
                bucket: |m, p, _| bucket_for(m, p),
            }),
            enforce,
        ))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        // Outside the faults: a slow or held answer keeps its slot, as at Okta.
        .layer(from_fn_with_state(
            Arc::new(ConcurrencyEnforcer {
                limit: inner.concurrency.clone(),
                style: ThrottleStyle::Okta,
            }),
            limit_concurrency,
        ))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Okta-like ids (`00u...`, `00g...`): 20 characters, increasing, so sorting by id is
/// creation order (which is how the listings page).
fn next_id(s: &mut Org, prefix: &str) -> String {
    s.next_id += 1;
    format!("{prefix}{:017}", s.next_id)
}

fn new_group(s: &mut Org, name: &str, description: &str, kind: &str) -> String {
    let id = next_id(s, "00g");
    let now = Utc::now();
    s.groups.insert(
        id.clone(),
        SimGroup {
            id: id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            kind: kind.to_string(),
            created: now,
            last_updated: now,
            last_membership_updated: now,
        },
    );
    id
}

fn new_user(
    s: &mut Org,
    profile: Map<String, Value>,
    status: &str,
    has_password: bool,
    visible_at: Instant,
) -> String {
    let id = next_id(s, "00u");
    let now = Utc::now();
    let active = status != "STAGED";
    s.users.insert(
        id.clone(),
        SimUser {
            id: id.clone(),
            status: status.to_string(),
            profile,
            created: now,
            activated: active.then_some(now),
            status_changed: active.then_some(now),
            last_updated: now,
            has_password,
            visible_at,
        },
    );
    id
}

fn find_by_login(s: &Org, login: &str) -> Option<String> {
    s.users
        .values()
        .find(|u| u.login().eq_ignore_ascii_case(login))
        .map(|u| u.id.clone())
}

fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn user_json(u: &SimUser, base: &str) -> Value {
    let href = format!("{base}/api/v1/users/{}", u.id);
    let mut links = json!({ "self": { "href": href } });
    let actions: &[&str] = match u.status.as_str() {
        "ACTIVE" => &["suspend", "deactivate"],
        "SUSPENDED" => &["unsuspend", "deactivate"],
        "DEPROVISIONED" => &["activate"],
        "PROVISIONED" | "RECOVERY" => &["reactivate", "deactivate"],
        _ => &["activate", "deactivate"],
    };
    for a in actions {
        links[*a] =
            json!({ "href": format!("{href}/lifecycle/{a}"), "hints": { "allow": ["POST"] } });
    }
    json!({
        "id": u.id,
        "status": u.status,
        "created": ts(u.created),
        "activated": u.activated.map(ts),
        "statusChanged": u.status_changed.map(ts),
        "lastLogin": null,
        "lastUpdated": ts(u.last_updated),
        "passwordChanged": null,
        "type": { "id": "oty00000000000000001" },
        "profile": u.profile,
        "credentials": if u.has_password {
            json!({ "password": {}, "provider": { "type": "OKTA", "name": "OKTA" } })
        } else {
            json!({ "provider": { "type": "OKTA", "name": "OKTA" } })
        },
        "_links": links,
    })
}

fn group_json(g: &SimGroup, base: &str) -> Value {
    let href = format!("{base}/api/v1/groups/{}", g.id);
    json!({
        "id": g.id,
        "created": ts(g.created),
        "lastUpdated": ts(g.last_updated),
        "lastMembershipUpdated": ts(g.last_membership_updated),
        "objectClass": ["okta:user_group"],
        "type": g.kind,
        "profile": { "name": g.name, "description": g.description },
        "_links": {
            "self": { "href": href },
            "users": { "href": format!("{href}/users") },
            "apps": { "href": format!("{href}/apps") },
        },
    })
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Okta's error object.
fn okta_error(status: StatusCode, code: &str, summary: &str, causes: &[String]) -> Response {
    let causes: Vec<Value> = causes
        .iter()
        .map(|c| json!({ "errorSummary": c }))
        .collect();
    json_response(
        status,
        json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", random_alnum(19)),
            "errorCauses": causes,
        }),
    )
}

fn not_found(what: &str, kind: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {what} ({kind})"),
        &[],
    )
}

fn validation_failed(field: &str, causes: &[String]) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        &format!("Api validation failed: {field}"),
        causes,
    )
}

fn already_exists(field: &str) -> Response {
    validation_failed(
        field,
        &[format!(
            "{field}: An object with this field already exists in the current organization"
        )],
    )
}

fn bad_body() -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000003",
        "The request body was not well-formed.",
        &[],
    )
}

fn already_activated() -> Response {
    okta_error(
        StatusCode::FORBIDDEN,
        "E0000016",
        "Activation failed because the user is already active",
        &[],
    )
}

fn status_forbids() -> Response {
    okta_error(
        StatusCode::FORBIDDEN,
        "E0000038",
        "This operation is not allowed in the user's current status.",
        &[],
    )
}

fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Okta's shapes for [`FailRule`] faults.
struct OktaBodies;

impl VendorBodies for OktaBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            "{\"id\":\"00u00000000000000999\",\"status\":\"ACTIVE\",\"profile\":{\"login\":",
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        json_response(
            StatusCode::OK,
            json!({ "id": 42, "status": ["ACTIVE"], "profile": "unexpected", "result": { "kind": "unexpected" } }),
        )
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        okta_error(status, code, message, &[])
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        okta_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error",
            &[],
        )
    }
}

// ---------------------------------------------------------------------------------------
// Middleware
// ---------------------------------------------------------------------------------------

pub fn bucket_for(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["oauth2", "v1", "token"] => buckets::TOKEN,
        ["api", "v1", "users"] => buckets::USERS,
        ["api", "v1", "users", _] if method == Method::GET => buckets::USER_GET,
        ["api", "v1", "users", _] => buckets::USER_WRITE,
        ["api", "v1", "groups"] => buckets::GROUPS,
        ["api", "v1", "groups", _, ..] => buckets::GROUP,
        _ => buckets::OTHER,
    }
}

/// Who is calling, put into request extensions by [`authenticate`].
#[derive(Debug, Clone)]
enum Caller {
    /// An SSWS API token: the admin's full permissions.
    Admin,
    /// An OAuth access token with these scopes.
    Service { scopes: Vec<String> },
}

fn scope_granted(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| {
        g == required
            || (required.ends_with(".read")
                && g.strip_suffix(".manage") == required.strip_suffix(".read"))
    })
}

fn required_scope(method: &Method, path: &str) -> &'static str {
    let groups = path.starts_with("/api/v1/groups");
    match (groups, method == Method::GET) {
        (true, true) => "okta.groups.read",
        (true, false) => "okta.groups.manage",
        (false, true) => "okta.users.read",
        (false, false) => "okta.users.manage",
    }
}

fn invalid_token(bearer: bool, description: &str, base: &str, path: &str) -> Response {
    let mut r = okta_error(
        StatusCode::UNAUTHORIZED,
        "E0000011",
        "Invalid token provided",
        &[],
    );
    if bearer {
        let v = format!(
            "Bearer authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"IdentityProvider\", scope=\"okta.users.read\", error=\"invalid_token\", error_description=\"{description}\", resource=\"{path}\""
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert("www-authenticate", v);
        }
    }
    r
}

async fn authenticate(State(inner): State<Arc<Inner>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let base = base(req.headers());
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let caller = {
        let s = inner.lock();
        if let Some(tok) = header.strip_prefix("SSWS ") {
            match s.api_tokens.get(tok.trim()) {
                Some(true) => Ok(Caller::Admin),
                _ => Err(invalid_token(false, "", &base, &path)),
            }
        } else if let Some(tok) = header.strip_prefix("Bearer ") {
            match s.access_tokens.get(tok.trim()) {
                Some(t) if t.revoked => Err(invalid_token(
                    true,
                    "The token has been revoked.",
                    &base,
                    &path,
                )),
                Some(t) if t.expires <= SystemTime::now() => {
                    Err(invalid_token(true, "The token has expired.", &base, &path))
                }
                Some(t) if s.clients.contains_key(&t.client_id) => Ok(Caller::Service {
                    scopes: t.scopes.clone(),
                }),
                _ => Err(invalid_token(
                    true,
                    "The access token is invalid.",
                    &base,
                    &path,
                )),
            }
        } else {
            Err(invalid_token(false, "", &base, &path))
        }
    };
    let caller = match caller {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Caller::Service { scopes } = &caller {
        let need = required_scope(req.method(), &path);
        if !scope_granted(scopes, need) {
            let mut r = okta_error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            );
            let v = format!(
                "Bearer realm=\"IdentityProvider\", error=\"insufficient_scope\", error_description=\"The access token provided does not contain the required scopes.\", resource=\"{path}\", scope=\"{need}\""
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert("www-authenticate", v);
            }
            return r;
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn fallback(req: Request) -> Response {
    // Never 501: Prism answers a 501 from upstream with a mock.
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000022",
        &format!(
            "The endpoint does not support the provided HTTP method: {} {}",
            req.method(),
            req.uri().path()
        ),
        &[],
    )
}

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

fn parse_json_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_body()),
    }
}

fn query_flag(q: &HashMap<String, String>, name: &str, default: bool) -> bool {
    match q.get(name).map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "false" => false,
        Some(v) if v == "true" => true,
        _ => default,
    }
}

/// Validate profile fields the way Okta's base user schema does.
fn profile_problems(p: &Map<String, Value>, creating: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let str_field = |k: &str| p.get(k).and_then(Value::as_str);
    for (field, min, max) in [
        ("login", 5usize, 100usize),
        ("email", 5, 100),
        ("firstName", 1, 50),
        ("lastName", 1, 50),
    ] {
        match p.get(field) {
            None if creating => out.push((
                field.to_string(),
                format!("{field}: The field cannot be left blank"),
            )),
            None => {}
            Some(Value::Null) if field == "login" || field == "email" || creating => out.push((
                field.to_string(),
                format!("{field}: The field cannot be left blank"),
            )),
            Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 {
                    out.push((
                        field.to_string(),
                        format!("{field}: The field cannot be left blank"),
                    ));
                } else if n < min || n > max {
                    out.push((
                        field.to_string(),
                        format!("{field}: The field must be between {min} and {max} characters"),
                    ));
                }
            }
            Some(_) => out.push((
                field.to_string(),
                format!("{field}: The field must be a string"),
            )),
        }
    }
    for field in ["login", "email"] {
        if let Some(s) = str_field(field)
            && !s.is_empty()
            && !looks_like_email(s)
        {
            let why = if field == "login" {
                "login: Username must be in the form of an email address"
            } else {
                "email: Does not match required pattern"
            };
            out.push((field.to_string(), why.to_string()));
        }
    }
    out
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn problems_response(problems: Vec<(String, String)>) -> Option<Response> {
    if problems.is_empty() {
        return None;
    }
    let fields: Vec<String> = problems
        .iter()
        .map(|(f, _)| f.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let causes: Vec<String> = problems.into_iter().map(|(_, c)| c).collect();
    Some(validation_failed(&fields.join(", "), &causes))
}

async fn create_user(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(Value::Object(profile)) = body.get("profile").cloned() else {
        return validation_failed(
            "profile",
            &["profile: The field cannot be left blank".into()],
        );
    };
    if let Some(r) = problems_response(profile_problems(&profile, true)) {
        return r;
    }
    let has_password = match password_given(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let login = profile
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let activate = query_flag(&q, "activate", true);
    let visible_at = Instant::now() + inner.faults.visibility_delay();
    let mut s = inner.lock();
    if find_by_login(&s, &login).is_some() {
        return already_exists("login");
    }
    let mut group_ids = Vec::new();
    if let Some(ids) = body.get("groupIds") {
        let Some(ids) = ids.as_array() else {
            return bad_body();
        };
        for id in ids {
            match id.as_str().and_then(|g| s.groups.get(g)) {
                Some(g) if g.kind == "OKTA_GROUP" => group_ids.push(g.id.clone()),
                _ => {
                    return validation_failed(
                        "groupIds",
                        &[format!(
                            "groupIds: Group not found or not an OKTA_GROUP: {id}"
                        )],
                    );
                }
            }
        }
    }
    // Okta's creation table: not activated, STAGED; activated with a password, ACTIVE;
    // activated without one, PROVISIONED until the user finishes the welcome flow.
    let status = match (activate, has_password) {
        (false, _) => "STAGED",
        (true, true) => "ACTIVE",
        (true, false) => "PROVISIONED",
    };
    let id = new_user(&mut s, profile, status, has_password, visible_at);
    s.counts.created(&login);
    for g in group_ids {
        add_membership(&mut s, &g, &id, visible_at);
    }
    let u = s.users.get(&id).cloned();
    drop(s);
    match u {
        Some(u) => json_response(StatusCode::OK, user_json(&u, &base(&headers))),
        None => not_found(&id, "User"),
    }
}

/// Whether the create body sets a password (`credentials.password.value`), checked against
/// Okta's default password policy. The value is not kept.
fn password_given(body: &Map<String, Value>) -> Result<bool, Response> {
    let Some(password) = body.get("credentials").and_then(|c| c.get("password")) else {
        return Ok(false);
    };
    match password.get("value") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(v)) if v.chars().count() >= 8 => Ok(true),
        Some(Value::String(_)) => Err(validation_failed(
            "password",
            &["password: Password requirements were not met. Password requirements: at least 8 characters.".into()],
        )),
        Some(_) => Err(bad_body()),
    }
}

/// Resolve an id, a login or `me`, among the users visible to reads.
fn lookup_visible(s: &Org, id_or_login: &str, caller: Option<&Caller>) -> Option<SimUser> {
    let now = Instant::now();
    let id = if id_or_login == "me" {
        match caller {
            Some(Caller::Admin) => Some(s.admin.clone()),
            _ => None,
        }
    } else if s.users.contains_key(id_or_login) {
        Some(id_or_login.to_string())
    } else {
        find_by_login(s, id_or_login)
    }?;
    s.users.get(&id).filter(|u| u.visible_at <= now).cloned()
}

/// Resolve an id or login among all users (writes see the true state).
fn lookup_any(s: &Org, id_or_login: &str) -> Option<String> {
    if s.users.contains_key(id_or_login) {
        Some(id_or_login.to_string())
    } else {
        find_by_login(s, id_or_login)
    }
}

async fn get_user(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    let u = lookup_visible(&inner.lock(), &id, caller.as_ref());
    match u {
        Some(u) => json_response(StatusCode::OK, user_json(&u, &base(&headers))),
        None => not_found(&id, "User"),
    }
}

async fn update_user(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let changes = match body.get("profile") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return bad_body(),
    };
    if let Some(r) = problems_response(profile_problems(&changes, false)) {
        return r;
    }
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    if let Some(new_login) = changes.get("login").and_then(Value::as_str)
        && let Some(other) = find_by_login(&s, new_login)
        && other != uid
    {
        return already_exists("login");
    }
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    for (k, v) in changes {
        if v.is_null() {
            u.profile.remove(&k);
        } else {
            u.profile.insert(k, v);
        }
    }
    u.last_updated = Utc::now();
    let u = u.clone();
    drop(s);
    json_response(StatusCode::OK, user_json(&u, &base(&headers)))
}

/// `DELETE /api/v1/users/{id}`: a deprovisioned user is deleted for good (with their
/// memberships); anyone else is deactivated first, as Okta does.
async fn delete_user(State(inner): State<Arc<Inner>>, Path(id): Path<String>) -> Response {
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    if u.status != "DEPROVISIONED" {
        u.status = "DEPROVISIONED".into();
        u.status_changed = Some(Utc::now());
        u.last_updated = Utc::now();
        return empty(StatusCode::NO_CONTENT);
    }
    s.users.remove(&uid);
    s.memberships.retain(|(_, member), _| *member != uid);
    empty(StatusCode::NO_CONTENT)
}

async fn lifecycle(
    State(inner): State<Arc<Inner>>,
    Path((id, op)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    let now = Utc::now();
    let current = u.status.clone();
    let token_body = |send_email: bool| {
        if send_email {
            json_response(StatusCode::OK, json!({}))
        } else {
            let token = random_alnum(20);
            json_response(
                StatusCode::OK,
                json!({
                    "activationToken": token,
                    "activationUrl": format!("{}/welcome/{token}", base(&headers)),
                }),
            )
        }
    };
    let (next, resp) = match op.as_str() {
        // A staged user with a password is active at once; without one (and anyone coming
        // back from DEPROVISIONED) they must finish the welcome flow: PROVISIONED.
        "activate" => match current.as_str() {
            "STAGED" if u.has_password => ("ACTIVE", token_body(query_flag(&q, "sendEmail", true))),
            "STAGED" | "DEPROVISIONED" => {
                ("PROVISIONED", token_body(query_flag(&q, "sendEmail", true)))
            }
            "SUSPENDED" => return status_forbids(),
            _ => return already_activated(),
        },
        "deactivate" => match current.as_str() {
            "DEPROVISIONED" => return status_forbids(),
            _ => ("DEPROVISIONED", empty(StatusCode::OK)),
        },
        "reactivate" => match current.as_str() {
            "PROVISIONED" | "RECOVERY" => (
                "PROVISIONED",
                token_body(query_flag(&q, "sendEmail", false)),
            ),
            _ => return status_forbids(),
        },
        "suspend" => match current.as_str() {
            "ACTIVE" => ("SUSPENDED", empty(StatusCode::OK)),
            _ => {
                return validation_failed(
                    "status",
                    &["status: Cannot suspend a user that is not active".into()],
                );
            }
        },
        "unsuspend" => match current.as_str() {
            "SUSPENDED" => ("ACTIVE", empty(StatusCode::OK)),
            _ => {
                return validation_failed(
                    "status",
                    &["status: Cannot unsuspend a user that is not suspended".into()],
                );
            }
        },
        _ => return not_found(&op, "Lifecycle operation"),
    };
    u.status = next.to_string();
    u.status_changed = Some(now);
    u.last_updated = now;
    if next == "DEPROVISIONED" {
        // Deactivation ends every credential: back, they set up again.
        u.has_password = false;
    }
    if (next == "ACTIVE" || next == "PROVISIONED") && u.activated.is_none() {
        u.activated = Some(now);
    }
    resp
}

/// `after`-cursor paging over items sorted by id. Returns the page and the next cursor.
/// One page of users already in id order, starting after the cursor: the first `limit`
/// rendered, and the last one's id as the next cursor when more follow (as [`page`]).
fn lazy_page<'a>(
    mut rows: impl Iterator<Item = &'a SimUser>,
    limit: usize,
    base: &str,
) -> (Vec<Value>, Option<String>) {
    let mut items = Vec::with_capacity(limit.min(1000));
    let mut last: Option<&SimUser> = None;
    for u in rows.by_ref().take(limit) {
        items.push(user_json(u, base));
        last = Some(u);
    }
    let next = match (last, rows.next()) {
        (Some(l), Some(_)) => Some(l.id.clone()),
        _ => None,
    };
    (items, next)
}

fn page<T: Clone>(
    items: &[(String, T)],
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let start = match after {
        Some(a) => items.partition_point(|(id, _)| id.as_str() <= a),
        None => 0,
    };
    let end = (start + limit).min(items.len());
    let page: Vec<T> = items[start..end].iter().map(|(_, t)| t.clone()).collect();
    let next = (end < items.len() && end > start).then(|| items[end - 1].0.clone());
    (page, next)
}

/// The Link header: `self`, and `next` carrying every original parameter with a new `after`.
fn link_header(base: &str, path: &str, q: &HashMap<String, String>, next: Option<&str>) -> String {
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    let encode = |after: Option<&str>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for k in &keys {
            if k.as_str() != "after" {
                ser.append_pair(k, &q[*k]);
            }
        }
        if let Some(a) = after {
            ser.append_pair("after", a);
        }
        let qs = ser.finish();
        if qs.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{qs}")
        }
    };
    let mut out = format!(
        "<{}>; rel=\"self\"",
        encode(q.get("after").map(String::as_str))
    );
    if let Some(n) = next {
        out.push_str(&format!(", <{}>; rel=\"next\"", encode(Some(n))));
    }
    out
}

fn list_response(items: Vec<Value>, link: String) -> Response {
    let mut r = json_response(StatusCode::OK, Value::Array(items));
    if let Ok(v) = HeaderValue::from_str(&link) {
        r.headers_mut().insert("link", v);
    }
    r
}

fn limit_param(q: &HashMap<String, String>, default: usize, max: usize) -> Result<usize, Response> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(max)),
            _ => Err(validation_failed(
                "limit",
                &["limit: The limit must be a positive integer".into()],
            )),
        },
    }
}

fn invalid_search() -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000031",
        "Invalid search criteria.",
        &[],
    )
}

async fn list_users(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let expr = match (q.get("search"), q.get("filter")) {
        (Some(e), _) => match filter::parse(e) {
            Ok(x) => Some((x, true)),
            Err(_) => return invalid_search(),
        },
        (None, Some(e)) => match filter::parse(e) {
            Ok(x) => Some((x, false)),
            Err(_) => return invalid_search(),
        },
        (None, None) => None,
    };
    let now = Instant::now();
    let s = inner.lock();
    let visible = s.users.values().filter(|u| u.visible_at <= now);
    if let Some(term) = q.get("q") {
        // A startsWith match on firstName, lastName or email; no paging; no DEPROVISIONED.
        let limit = match limit_param(&q, 10, 200) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let t = term.to_lowercase();
        let items: Vec<Value> = visible
            .filter(|u| u.status != "DEPROVISIONED")
            .filter(|u| {
                ["firstName", "lastName", "email"].iter().any(|f| {
                    u.profile
                        .get(*f)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.to_lowercase().starts_with(&t))
                })
            })
            .take(limit)
            .map(|u| user_json(u, &base))
            .collect();
        return list_response(items, link_header(&base, "/api/v1/users", &q, None));
    }
    let limit = match limit_param(&q, 200, 200) {
        Ok(l) => l,
        Err(r) => return r,
    };
    drop(visible);
    // Walk the users in id order from the cursor and render only what the page needs
    // (a listing of 50,000 users stays linear, not quadratic).
    use std::ops::Bound;
    let from = q
        .get("after")
        .map_or(Bound::Unbounded, |a| Bound::Excluded(a.as_str()));
    let mut items: Vec<Value> = Vec::with_capacity(limit);
    let mut last: Option<String> = None;
    let mut more = false;
    for u in s
        .users
        .range::<str, _>((from, Bound::Unbounded))
        .map(|(_, u)| u)
        .filter(|u| u.visible_at <= now)
    {
        let json = match &expr {
            // Without search or filter, Okta omits DEPROVISIONED users.
            None if u.status == "DEPROVISIONED" => continue,
            None => None,
            Some((x, ci)) => {
                let j = user_json(u, &base);
                if !x.matches(&j, *ci) {
                    continue;
                }
                Some(j)
            }
        };
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(json.unwrap_or_else(|| user_json(u, &base)));
        last = Some(u.id.clone());
    }
    drop(s);
    let next = if more { last } else { None };
    list_response(
        items,
        link_header(&base, "/api/v1/users", &q, next.as_deref()),
    )
}

async fn user_groups(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let base = base(&headers);
    let caller = caller.map(|c| c.0);
    let s = inner.lock();
    let Some(u) = lookup_visible(&s, &id, caller.as_ref()) else {
        return not_found(&id, "User");
    };
    let now = Instant::now();
    let items: Vec<Value> = s
        .groups
        .values()
        .filter(|g| {
            g.id == s.everyone
                || s.memberships
                    .get(&(g.id.clone(), u.id.clone()))
                    .is_some_and(|at| *at <= now)
        })
        .map(|g| group_json(g, &base))
        .collect();
    json_response(StatusCode::OK, Value::Array(items))
}

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

async fn list_groups(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let s = inner.lock();
    if let Some(term) = q.get("q") {
        // A name prefix match; "paging and searching are mutually exclusive": no next link.
        let limit = match limit_param(&q, 300, 10_000) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let t = term.to_lowercase();
        let items: Vec<Value> = s
            .groups
            .values()
            .filter(|g| g.name.to_lowercase().starts_with(&t))
            .take(limit)
            .map(|g| group_json(g, &base))
            .collect();
        return list_response(items, link_header(&base, "/api/v1/groups", &q, None));
    }
    let expr = match q.get("search").or(q.get("filter")) {
        Some(e) => match filter::parse(e) {
            Ok(x) => Some((x, q.contains_key("search"))),
            Err(_) => return invalid_search(),
        },
        None => None,
    };
    let limit = match limit_param(&q, 10_000, 10_000) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let items: Vec<(String, Value)> = s
        .groups
        .values()
        .map(|g| (g.id.clone(), group_json(g, &base)))
        .filter(|(_, v)| expr.as_ref().is_none_or(|(x, ci)| x.matches(v, *ci)))
        .collect();
    drop(s);
    let (items, next) = page(&items, q.get("after").map(String::as_str), limit);
    list_response(
        items,
        link_header(&base, "/api/v1/groups", &q, next.as_deref()),
    )
}

async fn create_group(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let profile = body.get("profile").and_then(Value::as_object);
    let name = profile
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    if name.is_empty() {
        return validation_failed("name", &["name: The field cannot be left blank".into()]);
    }
    let description = profile
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut s = inner.lock();
    if s.groups
        .values()
        .any(|g| g.kind == "OKTA_GROUP" && g.name.eq_ignore_ascii_case(&name))
    {
        return already_exists("name");
    }
    let id = new_group(&mut s, &name, &description, "OKTA_GROUP");
    let g = s.groups.get(&id).cloned();
    drop(s);
    match g {
        Some(g) => json_response(StatusCode::OK, group_json(&g, &base(&headers))),
        None => not_found(&id, "UserGroup"),
    }
}

async fn group_users(
    State(inner): State<Arc<Inner>>,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let limit = match limit_param(&q, 1000, 1000) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let s = inner.lock();
    if !s.groups.contains_key(&gid) {
        return not_found(&gid, "UserGroup");
    }
    let now = Instant::now();
    let everyone = gid == s.everyone;
    // Members in user id order from the cursor; only the page is rendered.
    use std::ops::Bound;
    let after = q.get("after").cloned();
    let (items, next) = if everyone {
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows = s
            .users
            .range::<str, _>((from, Bound::Unbounded))
            .map(|(_, u)| u)
            .filter(|u| u.visible_at <= now);
        lazy_page(rows, limit, &base)
    } else {
        let from = match &after {
            Some(a) => Bound::Excluded((gid.clone(), a.clone())),
            None => Bound::Included((gid.clone(), String::new())),
        };
        let rows = s
            .memberships
            .range((from, Bound::Unbounded))
            .take_while(|((g, _), _)| *g == gid)
            .filter(|(_, at)| **at <= now)
            .filter_map(|((_, uid), _)| s.users.get(uid))
            .filter(|u| u.visible_at <= now);
        lazy_page(rows, limit, &base)
    };
    drop(s);
    list_response(
        items,
        link_header(
            &base,
            &format!("/api/v1/groups/{gid}/users"),
            &q,
            next.as_deref(),
        ),
    )
}

fn add_membership(s: &mut Org, gid: &str, uid: &str, visible_at: Instant) {
    let key = (gid.to_string(), uid.to_string());
    if s.memberships.contains_key(&key) {
        return;
    }
    s.memberships.insert(key.clone(), visible_at);
    s.counts.added(gid, uid);
    if let Some(g) = s.groups.get_mut(gid) {
        g.last_membership_updated = Utc::now();
    }
}

fn membership_target(s: &Org, gid: &str, uid: &str) -> Result<String, Response> {
    let Some(g) = s.groups.get(gid) else {
        return Err(not_found(gid, "UserGroup"));
    };
    let Some(uid) = lookup_any(s, uid) else {
        return Err(not_found(uid, "User"));
    };
    if g.kind != "OKTA_GROUP" {
        return Err(okta_error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
            &[format!(
                "Memberships of {} groups cannot be changed through the API",
                g.kind
            )],
        ));
    }
    Ok(uid)
}

async fn add_member(
    State(inner): State<Arc<Inner>>,
    Path((gid, uid)): Path<(String, String)>,
) -> Response {
    let visible_at = Instant::now() + inner.faults.visibility_delay();
    let mut s = inner.lock();
    let uid = match membership_target(&s, &gid, &uid) {
        Ok(u) => u,
        Err(r) => return r,
    };
    add_membership(&mut s, &gid, &uid, visible_at);
    empty(StatusCode::NO_CONTENT)
}

async fn remove_member(
    State(inner): State<Arc<Inner>>,
    Path((gid, uid)): Path<(String, String)>,
) -> Response {
    let mut s = inner.lock();
    let uid = match membership_target(&s, &gid, &uid) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if s.memberships.remove(&(gid.clone(), uid)).is_some()
        && let Some(g) = s.groups.get_mut(&gid)
    {
        g.last_membership_updated = Utc::now();
    }
    empty(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------------------------
// OAuth 2.0 token endpoint (client credentials with private_key_jwt)
// ---------------------------------------------------------------------------------------

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

#[derive(serde::Deserialize)]
struct AssertionClaims {
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    exp: Option<u64>,
    iat: Option<u64>,
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.lock().token_requests += 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion_type is missing or not supported; use urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        );
    }
    let assertion = field("client_assertion");
    let claims: AssertionClaims = match jsonwebtoken::dangerous::insecure_decode_claims(assertion) {
        Ok(c) => c,
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token is not a valid JWT.",
            );
        }
    };
    let client_id = claims.iss.clone().unwrap_or_default();
    if claims.sub.as_deref() != Some(client_id.as_str())
        || (!field("client_id").is_empty() && field("client_id") != client_id)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token's 'iss' and 'sub' claims must both be the client_id.",
        );
    }
    let (pem, allowed) = {
        let s = inner.lock();
        match s.clients.get(&client_id) {
            Some(c) => (c.public_key_pem.clone(), c.scopes.clone()),
            None => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Invalid value for 'client_id' parameter.",
                );
            }
        }
    };
    let header = match jsonwebtoken::decode_header(assertion) {
        Ok(h) => h,
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token is not a valid JWT.",
            );
        }
    };
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = match header.alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            DecodingKey::from_rsa_pem(pem.as_bytes())
        }
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token's signing algorithm is not supported.",
            );
        }
    };
    let Ok(key) = key else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion signature is invalid.",
        );
    };
    let base = base(&headers);
    let audience = [
        format!("{base}/oauth2/v1/token"),
        format!(
            "{}/oauth2/v1/token",
            base.replacen("http://", "https://", 1)
        ),
    ];
    let mut v = Validation::new(header.alg);
    v.leeway = 5;
    v.set_audience(&audience);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    if let Err(e) = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v) {
        use jsonwebtoken::errors::ErrorKind as K;
        let why = match e.kind() {
            K::ExpiredSignature => "The client_assertion token is expired.",
            K::InvalidAudience => {
                "The audience claim for client_assertion must be the endpoint invoked for the request."
            }
            K::InvalidSignature => "The client_assertion signature is invalid.",
            K::MissingRequiredClaim(_) => "The client_assertion token is missing a required claim.",
            _ => "The client_assertion token is invalid.",
        };
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let (Some(exp), iat) = (claims.exp, claims.iat.unwrap_or(now))
        && exp > iat.max(now) + 3600
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token has an expiration too far into the future.",
        );
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token must have a 'jti' claim.",
        );
    };
    let requested: Vec<String> = field("scope")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if requested.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let denied: Vec<&String> = requested
        .iter()
        .filter(|r| !allowed.contains(r) || !ALL_SCOPES.contains(&r.as_str()))
        .collect();
    if !denied.is_empty() {
        let names: Vec<&str> = denied.iter().map(|s| s.as_str()).collect();
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("The following scopes are not allowed: {}", names.join(", ")),
        );
    }
    let ttl = *inner.token_ttl.lock().unwrap_or_else(|p| p.into_inner());
    let access = random_alnum(48);
    {
        let mut s = inner.lock();
        if !s.used_jtis.insert(jti) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token has already been used.",
            );
        }
        s.access_tokens.insert(
            access.clone(),
            AccessToken {
                client_id,
                scopes: requested.clone(),
                expires: SystemTime::now() + ttl,
                revoked: false,
            },
        );
    }
    let mut r = json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": ttl.as_secs().max(1),
            "access_token": access,
            "scope": requested.join(" "),
        }),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("pragma", HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_okta_documentation() {
        assert_eq!(bucket_for(&Method::GET, "/api/v1/users"), buckets::USERS);
        assert_eq!(bucket_for(&Method::POST, "/api/v1/users"), buckets::USERS);
        assert_eq!(
            bucket_for(&Method::GET, "/api/v1/users/00u1"),
            buckets::USER_GET
        );
        assert_eq!(
            bucket_for(&Method::POST, "/api/v1/users/00u1"),
            buckets::USER_WRITE
        );
        assert_eq!(
            bucket_for(&Method::POST, "/api/v1/users/00u1/lifecycle/suspend"),
            buckets::OTHER
        );
        assert_eq!(bucket_for(&Method::POST, "/api/v1/groups"), buckets::GROUPS);
        assert_eq!(
            bucket_for(&Method::PUT, "/api/v1/groups/00g1/users/00u1"),
            buckets::GROUP
        );
        assert_eq!(
            bucket_for(&Method::POST, "/oauth2/v1/token"),
            buckets::TOKEN
        );
    }

    #[test]
    fn paging_by_id_cursor() {
        let items: Vec<(String, u32)> = (1..=5).map(|i| (format!("id{i}"), i)).collect();
        let (p, n) = page(&items, None, 2);
        assert_eq!((p, n.as_deref()), (vec![1, 2], Some("id2")));
        let (p, n) = page(&items, Some("id4"), 2);
        assert_eq!((p, n), (vec![5], None));
        let (p, n) = page(&items, Some("id2"), 3);
        assert_eq!((p, n), (vec![3, 4, 5], None));
    }

    #[test]
    fn manage_scopes_include_read() {
        let g = vec!["okta.users.manage".to_string()];
        assert!(scope_granted(&g, "okta.users.read"));
        assert!(scope_granted(&g, "okta.users.manage"));
        assert!(!scope_granted(&g, "okta.groups.read"));
    }

    /// A client for the running simulator, as the admin (SSWS).
    struct Client {
        http: reqwest::Client,
        base: String,
    }

    impl Client {
        async fn start(opts: OktaSimOptions) -> (SimServer, OktaHandle, Client) {
            crate::adapters::http::install_crypto_provider();
            let (server, handle) = spawn(opts).await.expect("sim");
            handle.add_api_token("t0ken-for-tests");
            let client = Client {
                http: reqwest::Client::new(),
                base: server.base_url(),
            };
            (server, handle, client)
        }

        /// POST `path` with `body`: the status and the JSON answer (Null when empty).
        async fn post(&self, path: &str, body: Value) -> (u16, Value) {
            let r = self
                .http
                .post(format!("{}{path}", self.base))
                .header("authorization", "SSWS t0ken-for-tests")
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let bytes = r.bytes().await.expect("body");
            (
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            )
        }

        async fn create(&self, query: &str, login: &str, password: Option<&str>) -> (u16, Value) {
            let mut body = json!({ "profile": {
                "login": login, "email": login, "firstName": "Ada", "lastName": "Lovelace"
            }});
            if let Some(p) = password {
                body["credentials"] = json!({ "password": { "value": p } });
            }
            self.post(&format!("/api/v1/users{query}"), body).await
        }

        async fn lifecycle(&self, id: &str, op: &str) -> (u16, Value) {
            self.post(&format!("/api/v1/users/{id}/lifecycle/{op}"), json!({}))
                .await
        }
    }

    fn status_of(h: &OktaHandle, id: &str) -> String {
        h.users()
            .into_iter()
            .find(|u| u.id == id)
            .map(|u| u.status)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn users_are_created_staged_provisioned_or_active_as_okta_says() {
        let (server, h, c) = Client::start(OktaSimOptions::default()).await;
        let (st, u) = c
            .create("?activate=false", "staged@example.com", None)
            .await;
        assert_eq!((st, u["status"].as_str()), (200, Some("STAGED")), "{u}");
        let (_, u) = c.create("", "pending@example.com", None).await;
        assert_eq!(
            u["status"], "PROVISIONED",
            "activated without a password: {u}"
        );
        let (_, u) = c
            .create("?activate=true", "active@example.com", Some("Tr0ub4dor&3x"))
            .await;
        assert_eq!(u["status"], "ACTIVE", "{u}");
        assert_eq!(u["credentials"]["password"], json!({}), "never echoed: {u}");
        assert!(!u.to_string().contains("Tr0ub4dor"), "{u}");
        let (st, e) = c.create("", "weak@example.com", Some("short")).await;
        assert_eq!(
            (st, e["errorCode"].as_str()),
            (400, Some("E0000001")),
            "{e}"
        );
        assert!(h.user_by_login("weak@example.com").is_none());
        server.stop().await;
    }

    #[tokio::test]
    async fn lifecycle_moves_follow_okta_and_refusals_carry_its_errors() {
        let (server, h, c) = Client::start(OktaSimOptions::default()).await;
        let id = |u: &Value| u["id"].as_str().unwrap_or_default().to_string();
        // STAGED without a password: activation leaves them to the welcome flow.
        let staged = id(&c.create("?activate=false", "a@example.com", None).await.1);
        let (st, body) = c.lifecycle(&staged, "activate?sendEmail=false").await;
        assert_eq!(st, 200);
        assert!(body["activationToken"].is_string(), "{body}");
        assert_eq!(status_of(&h, &staged), "PROVISIONED");
        let (st, e) = c.lifecycle(&staged, "activate").await;
        assert_eq!(
            (st, e["errorCode"].as_str()),
            (403, Some("E0000016")),
            "{e}"
        );
        // PROVISIONED cannot be suspended; reactivate restarts the flow.
        let (st, e) = c.lifecycle(&staged, "suspend").await;
        assert_eq!(
            (st, e["errorCode"].as_str()),
            (400, Some("E0000001")),
            "{e}"
        );
        assert_eq!(
            c.lifecycle(&staged, "reactivate?sendEmail=false").await.0,
            200
        );
        assert_eq!(status_of(&h, &staged), "PROVISIONED");

        // STAGED with a password: active at once.
        let with_pw = id(&c
            .create("?activate=false", "b@example.com", Some("C0rrectHorse"))
            .await
            .1);
        assert_eq!(c.lifecycle(&with_pw, "activate").await.0, 200);
        assert_eq!(status_of(&h, &with_pw), "ACTIVE");
        let (st, e) = c.lifecycle(&with_pw, "reactivate").await;
        assert_eq!(
            (st, e["errorCode"].as_str()),
            (403, Some("E0000038")),
            "{e}"
        );

        // ACTIVE -> DEPROVISIONED; again is refused; activation brings them back to set up.
        assert_eq!(c.lifecycle(&with_pw, "deactivate").await.0, 200);
        assert_eq!(status_of(&h, &with_pw), "DEPROVISIONED");
        let (st, e) = c.lifecycle(&with_pw, "deactivate").await;
        assert_eq!(
            (st, e["errorCode"].as_str()),
            (403, Some("E0000038")),
            "{e}"
        );
        assert_eq!(c.lifecycle(&with_pw, "activate").await.0, 200);
        assert_eq!(status_of(&h, &with_pw), "PROVISIONED");

        // A STAGED user can be deactivated too.
        let other = id(&c.create("?activate=false", "c@example.com", None).await.1);
        assert_eq!(c.lifecycle(&other, "deactivate").await.0, 200);
        assert_eq!(status_of(&h, &other), "DEPROVISIONED");
        server.stop().await;
    }

    #[tokio::test]
    async fn too_many_requests_in_flight_get_okta_s_concurrency_429() {
        let (server, h, c) = Client::start(OktaSimOptions {
            concurrency_limit: Some(1),
            faults: FaultProfile {
                latency: Some((Duration::from_millis(300), Duration::from_millis(300))),
                ..FaultProfile::none()
            },
            ..Default::default()
        })
        .await;
        let get = || {
            c.http
                .get(format!("{}/api/v1/users/me", c.base))
                .header("authorization", "SSWS t0ken-for-tests")
                .send()
        };
        let (a, b, d) = tokio::join!(get(), get(), get());
        let answers = [a.unwrap(), b.unwrap(), d.unwrap()];
        let refused: Vec<&reqwest::Response> =
            answers.iter().filter(|r| r.status() == 429).collect();
        assert_eq!(refused.len(), 2, "one in flight at a time");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for r in &refused {
            let header = |n: &str| {
                r.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
            };
            assert_eq!(
                header("x-rate-limit-limit"),
                Some(1),
                "the concurrent limit"
            );
            assert_eq!(header("x-rate-limit-remaining"), Some(0));
            let reset = header("x-rate-limit-reset").unwrap_or(0);
            assert!(
                reset >= now && reset <= now + 2,
                "an estimate: {reset} vs {now}"
            );
        }
        let body: Value = answers
            .into_iter()
            .find(|r| r.status() == 429)
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["errorCode"], "E0000047");
        assert_eq!(h.concurrency().refused(), 2);
        assert_eq!(h.concurrency().peak(), 1);
        // Lifted at run time.
        h.concurrency().set_limit(0);
        let (a, b) = tokio::join!(get(), get());
        assert!(a.unwrap().status().is_success() && b.unwrap().status().is_success());
        server.stop().await;
    }
}
