//! A stateful Slack simulator: the SCIM API that Slack offers for the user lifecycle
//! (the SCIM simulator, [`super::scim`], with Slack-style `U…` ids under `/scim/v2`) and
//! the Web API methods accessdesk uses for channels, on their own server under `/api`:
//! `auth.test`, `users.lookupByEmail`, `users.conversations`, `conversations.list`,
//! `conversations.members`, `conversations.invite`, `conversations.kick`.
//!
//! What it enforces, as Slack documents it (`tests/specs/slack/`, checked through Prism in
//! `tests/slack_adapter.rs`):
//! - tokens: `Authorization: Bearer xoxb-…` (a bot token), each with its scopes; every
//!   answer to a good token carries `x-oauth-scopes`; a bad or revoked token answers
//!   `{"ok": false, "error": "invalid_auth"}` (none: `not_authed`) with **HTTP 200**, as
//!   every Web API failure does; a method the token lacks a scope for answers
//!   `missing_scope` with `needed` and `provided`;
//! - rate tiers per method and token (Tier 2 20/min: `conversations.list`,
//!   `users.conversations`; Tier 3 50/min: `conversations.invite`, `conversations.kick`,
//!   `conversations.members`; Tier 4 100/min: `users.lookupByEmail`), a window's worth
//!   each ([`SlackSimOptions::rate_window`]); beyond it **HTTP 429** with `Retry-After`
//!   and `{"ok": false, "error": "ratelimited"}`;
//! - method errors: `channel_not_found`, `user_not_found`, `users_not_found`,
//!   `already_in_channel`, `not_in_channel`, `cant_kick_self`, `invalid_cursor`,
//!   `is_archived`; cursors are opaque (`response_metadata.next_cursor`, empty at the end).
//!
//! Faults: [`SlackSimOptions::web_faults`] on the Web API side, in Slack's style (429
//! `ratelimited` with Retry-After; HTTP 200 `internal_error`); the SCIM side's own.
//!
//! Simplifications: channels are public or private, never shared or archived on their own;
//! the bot is a member of every channel; users are the SCIM side's (deactivated users
//! cannot be invited: `user_is_inactive`).

use super::SimServer;
use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
use super::log::{LoggedRequest, RequestLog, record};
use super::ratelimit::RateWindows;
use super::scim::{IdStyle, ScimHandle, ScimSimOptions};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SlackSimOptions {
    /// The SCIM side (its ids are made Slack-style).
    pub scim: ScimSimOptions,
    /// The Web API's tier windows (Slack: one minute; tests use a second).
    pub rate_window: Duration,
    /// Tier limits per window: (Tier 2, Tier 3, Tier 4).
    pub tiers: (u32, u32, u32),
    pub team: String,
    /// Faults injected on the Web API side (the SCIM side has `scim.faults`), in Slack's
    /// style: 429 `ratelimited` with Retry-After, and HTTP 200 `internal_error`.
    pub web_faults: FaultProfile,
}

impl Default for SlackSimOptions {
    fn default() -> Self {
        SlackSimOptions {
            scim: ScimSimOptions::default(),
            rate_window: Duration::from_secs(60),
            tiers: (20, 50, 100),
            team: "northwind".into(),
            web_faults: FaultProfile::none(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub id: String,
    pub name: String,
    pub is_private: bool,
    pub members: BTreeSet<String>,
}

#[derive(Default)]
struct Web {
    channels: BTreeMap<String, Channel>,
    tokens: HashMap<String, Vec<String>>,
    seq: u64,
    invites: HashMap<(String, String), u32>,
}

struct Inner {
    web: Mutex<Web>,
    faults: Arc<Faults>,
    failures: Mutex<Vec<(String, Value)>>,
    scim: ScimHandle,
    limits: RateWindows,
    opts: SlackSimOptions,
    log: Arc<RequestLog>,
}

/// Steers and inspects the Web API side; `scim` is the SCIM side's handle.
#[derive(Clone)]
pub struct SlackHandle {
    inner: Arc<Inner>,
    pub scim: ScimHandle,
}

/// The bot user's id (a member of every channel).
pub const BOT_USER: &str = "UBOT0000001";

impl Inner {
    fn web(&self) -> MutexGuard<'_, Web> {
        self.web.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SlackHandle {
    /// The Web API side's fault injector.
    pub fn web_faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }
    /// A bot token with these scopes.
    pub fn add_token(&self, token: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        self.inner.web().tokens.insert(token.to_string(), scopes);
    }
    pub fn revoke_token(&self, token: &str) {
        self.inner.web().tokens.remove(token);
    }
    pub fn seed_channel(&self, name: &str, is_private: bool) -> String {
        let mut w = self.inner.web();
        w.seq += 1;
        let id = format!("C{:09X}", w.seq);
        let members = BTreeSet::from([BOT_USER.to_string()]);
        w.channels.insert(
            id.clone(),
            Channel {
                id: id.clone(),
                name: name.into(),
                is_private,
                members,
            },
        );
        id
    }
    pub fn channel(&self, name: &str) -> Option<Channel> {
        self.inner
            .web()
            .channels
            .values()
            .find(|c| c.name == name)
            .cloned()
    }
    /// Change a channel's members behind the adapter's back.
    pub fn set_member(&self, channel: &str, user: &str, member: bool) -> bool {
        let mut w = self.inner.web();
        let Some(c) = w
            .channels
            .values_mut()
            .find(|c| c.name == channel || c.id == channel)
        else {
            return false;
        };
        if member {
            c.members.insert(user.into())
        } else {
            c.members.remove(user)
        }
    }
    /// How often `user` was invited into `channel` while not a member.
    pub fn invites(&self, channel: &str, user: &str) -> u32 {
        self.inner
            .web()
            .invites
            .get(&(channel.to_string(), user.to_string()))
            .copied()
            .unwrap_or(0)
    }
    /// The most often anyone was invited into any channel while not a member (1 when
    /// nobody was invited twice).
    pub fn max_invites(&self) -> u32 {
        self.inner
            .web()
            .invites
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
    /// Every `ok: false` answer so far: (method, body).
    pub fn web_failures(&self) -> Vec<(String, Value)> {
        self.inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }
    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.entries().iter().filter(|r| f(r)).count()
    }
}

/// Start both sides on one server: the Web API under `/api` (and at the root, for Prism),
/// SCIM under `/scim/v2`.
pub async fn spawn(opts: SlackSimOptions) -> std::io::Result<(SimServer, SlackHandle)> {
    let scim_opts = ScimSimOptions {
        id_style: IdStyle::Slack,
        root: "/scim/v2".into(),
        ..opts.scim.clone()
    };
    let (scim_app, scim) = super::scim::app(scim_opts);
    let faults = Faults::new(opts.web_faults.clone(), ThrottleStyle::Slack);
    let inner = Arc::new(Inner {
        web: Mutex::new(Web::default()),
        faults: faults.clone(),
        failures: Mutex::new(Vec::new()),
        scim: scim.clone(),
        limits: RateWindows::new(opts.tiers.1, opts.rate_window),
        opts,
        log: Arc::new(RequestLog::default()),
    });
    // Slack serves the methods under /api; Prism (which ignores Swagger 2's basePath)
    // forwards them without it, so both are served.
    let methods = axum::Router::new()
        .route("/auth.test", get(auth_test).post(auth_test))
        .route("/users.lookupByEmail", get(lookup_by_email))
        .route("/users.conversations", get(users_conversations))
        .route("/conversations.list", get(conversations_list))
        .route("/conversations.members", get(conversations_members))
        .route("/conversations.invite", post(invite))
        .route("/conversations.kick", post(kick))
        .layer(from_fn_with_state(faults, inject));
    let app = axum::Router::new()
        .nest("/api", methods.clone())
        .merge(methods)
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner.clone())
        .merge(scim_app);
    let server = SimServer::spawn(app).await?;
    scim.set_base_url(&server.base_url());
    Ok((server, SlackHandle { inner, scim }))
}

/// A Web API failure as Slack sends it: `{"ok": false, "error": …}` with `status`, and a
/// `Retry-After` where one is given (the fault injector's refusals and server errors).
pub fn failure(status: StatusCode, error: &str, retry_after_secs: Option<u64>) -> Response {
    let mut r = (status, axum::Json(json!({"ok": false, "error": error}))).into_response();
    if let Some(secs) = retry_after_secs {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    r
}

/// A Web API failure: HTTP 200 and `ok: false`, kept for [`SlackHandle::web_failures`].
fn fail(inner: &Inner, method: &str, error: &str) -> Response {
    // Its own lock: handlers answer failures while holding the state's.
    inner
        .failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((method.to_string(), json!({"ok": false, "error": error})));
    failure(StatusCode::OK, error, None)
}

/// The token's scopes, or the Web API's refusal (HTTP 200, `ok: false`); then the
/// method's tier window (HTTP 429 with Retry-After).
fn admit(
    inner: &Inner,
    headers: &HeaderMap,
    method: &str,
    needs: &[&str],
) -> Result<Vec<String>, Response> {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return Err(fail(inner, method, "not_authed"));
    };
    let Some(scopes) = inner.web().tokens.get(token).cloned() else {
        return Err(fail(inner, method, "invalid_auth"));
    };
    if !needs.is_empty() && !needs.iter().any(|n| scopes.iter().any(|s| s == n)) {
        let mut r = axum::Json(json!({"ok": false, "error": "missing_scope", "needed": needs.join(","), "provided": scopes.join(",")})).into_response();
        r.headers_mut().insert(
            "x-oauth-scopes",
            HeaderValue::from_str(&scopes.join(",")).unwrap_or(HeaderValue::from_static("")),
        );
        return Err(r);
    }
    let (t2, t3, t4) = inner.opts.tiers;
    let limit = match method {
        "conversations.list" | "users.conversations" => t2,
        "users.lookupByEmail" => t4,
        _ => t3,
    };
    let bucket = format!("{method}:{token}");
    inner.limits.set_limit(Some(&bucket), limit);
    let state = inner.limits.hit(&bucket);
    if !state.allowed {
        return Err(failure(
            StatusCode::TOO_MANY_REQUESTS,
            "ratelimited",
            Some(state.retry_after_secs.max(1)),
        ));
    }
    Ok(scopes)
}

fn ok(scopes: &[String], mut body: Value) -> Response {
    body["ok"] = json!(true);
    let mut r = axum::Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&scopes.join(",")) {
        r.headers_mut().insert("x-oauth-scopes", v);
    }
    r
}

/// A page of `items` after `cursor` (an index in base 10, opaque to clients).
fn page<T: Clone>(
    inner: &Inner,
    method: &str,
    items: &[T],
    cursor: Option<&str>,
    limit: Option<&str>,
) -> Result<(Vec<T>, String), Response> {
    let start = match cursor.filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c
            .strip_prefix("dXNlcj")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| fail(inner, method, "invalid_cursor"))?,
    };
    let limit = limit
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0)
        .unwrap_or(100)
        .min(1000);
    let end = (start + limit).min(items.len());
    let next = if end < items.len() {
        format!("dXNlcj{end}")
    } else {
        String::new()
    };
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next))
}

/// One page of a listing as the method answers it: `{key: [...], "response_metadata":
/// {"next_cursor": ...}}`, or the method's `invalid_cursor`.
fn listing<T: Clone + serde::Serialize>(
    inner: &Inner,
    method: &str,
    scopes: &[String],
    key: &str,
    items: &[T],
    q: &HashMap<String, String>,
) -> Response {
    let cursor = q.get("cursor").map(String::as_str);
    match page(
        inner,
        method,
        items,
        cursor,
        q.get("limit").map(String::as_str),
    ) {
        Ok((items, next)) => ok(
            scopes,
            json!({key: items, "response_metadata": {"next_cursor": next}}),
        ),
        Err(r) => r,
    }
}

fn channel_json(c: &Channel) -> Value {
    json!({"id": c.id, "name": c.name, "is_channel": !c.is_private, "is_group": c.is_private, "is_private": c.is_private,
           "is_archived": false, "is_member": true, "num_members": c.members.len(), "created": 1_700_000_000})
}

fn user_exists(inner: &Inner, id: &str) -> Option<bool> {
    if id == BOT_USER {
        return Some(true);
    }
    inner
        .scim
        .users()
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.active())
}

async fn auth_test(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    match admit(&inner, &headers, "auth.test", &[]) {
        Ok(scopes) => ok(
            &scopes,
            json!({"url": format!("https://{}.slack.com/", inner.opts.team), "team": inner.opts.team,
            "user": "accessdesk", "team_id": "T0000NWND", "user_id": BOT_USER, "bot_id": "B0000ACCD", "is_enterprise_install": false}),
        ),
        Err(r) => r,
    }
}

async fn lookup_by_email(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "users.lookupByEmail",
        &["users:read.email"],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let email = q.get("email").map(|e| e.to_lowercase()).unwrap_or_default();
    let found = inner.scim.users().into_iter().find(|u| {
        u.user_name().is_some_and(|n| n.to_lowercase() == email)
            || u.attributes
                .get("emails")
                .and_then(Value::as_array)
                .is_some_and(|es| {
                    es.iter().any(|e| {
                        e["value"]
                            .as_str()
                            .is_some_and(|v| v.to_lowercase() == email)
                    })
                })
    });
    match found {
        Some(u) => ok(
            &scopes,
            json!({"user": {"id": u.id, "team_id": "T0000NWND", "name": u.user_name().unwrap_or(""),
            "deleted": !u.active(), "profile": {"email": email}}}),
        ),
        None => fail(&inner, "users.lookupByEmail", "users_not_found"),
    }
}

async fn users_conversations(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "users.conversations",
        &["channels:read", "groups:read"],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let user = q.get("user").cloned().unwrap_or_default();
    if user_exists(&inner, &user).is_none() {
        return fail(&inner, "users.conversations", "user_not_found");
    }
    let all: Vec<Value> = inner
        .web()
        .channels
        .values()
        .filter(|c| c.members.contains(&user))
        .map(channel_json)
        .collect();
    listing(&inner, "users.conversations", &scopes, "channels", &all, &q)
}

async fn conversations_list(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "conversations.list",
        &["channels:read", "groups:read"],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let all: Vec<Value> = inner.web().channels.values().map(channel_json).collect();
    listing(&inner, "conversations.list", &scopes, "channels", &all, &q)
}

async fn conversations_members(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "conversations.members",
        &["channels:read", "groups:read"],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let channel = q.get("channel").cloned().unwrap_or_default();
    let Some(members) = inner
        .web()
        .channels
        .get(&channel)
        .map(|c| c.members.iter().cloned().collect::<Vec<_>>())
    else {
        return fail(&inner, "conversations.members", "channel_not_found");
    };
    listing(
        &inner,
        "conversations.members",
        &scopes,
        "members",
        &members,
        &q,
    )
}

async fn invite(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "conversations.invite",
        &[
            "channels:write",
            "groups:write",
            "channels:manage",
            "groups:write.invites",
        ],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let channel = f.get("channel").cloned().unwrap_or_default();
    let users: Vec<String> = f
        .get("users")
        .map(|u| u.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    for u in &users {
        match user_exists(&inner, u) {
            None => return fail(&inner, "conversations.invite", "user_not_found"),
            Some(false) => return fail(&inner, "conversations.invite", "user_is_inactive"),
            Some(true) => {}
        }
    }
    let mut w = inner.web();
    let Some(c) = w.channels.get_mut(&channel) else {
        return fail(&inner, "conversations.invite", "channel_not_found");
    };
    if users.iter().all(|u| c.members.contains(u)) {
        return fail(&inner, "conversations.invite", "already_in_channel");
    }
    let mut fresh = Vec::new();
    for u in &users {
        if c.members.insert(u.clone()) {
            fresh.push(u.clone());
        }
    }
    let body = json!({"channel": channel_json(c)});
    for u in fresh {
        *w.invites.entry((channel.clone(), u)).or_insert(0) += 1;
    }
    ok(&scopes, body)
}

async fn kick(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let scopes = match admit(
        &inner,
        &headers,
        "conversations.kick",
        &["channels:write", "groups:write", "channels:manage"],
    ) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let channel = f.get("channel").cloned().unwrap_or_default();
    let user = f.get("user").cloned().unwrap_or_default();
    if user == BOT_USER {
        return fail(&inner, "conversations.kick", "cant_kick_self");
    }
    if user_exists(&inner, &user).is_none() {
        return fail(&inner, "conversations.kick", "user_not_found");
    }
    let mut w = inner.web();
    let Some(c) = w.channels.get_mut(&channel) else {
        return fail(&inner, "conversations.kick", "channel_not_found");
    };
    if !c.members.remove(&user) {
        return fail(&inner, "conversations.kick", "not_in_channel");
    }
    ok(&scopes, json!({}))
}
