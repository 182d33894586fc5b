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

mod groups;
mod middleware;
mod oauth;
mod shapes;
mod users;
use groups::*;
pub use middleware::*;
use oauth::*;
use shapes::*;
use users::*;

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

#[cfg(test)]
mod tests;
