//! Okta (Management API v1): users, lifecycle and OKTA_GROUP memberships.
//!
//! - Auth: an SSWS API token (`auth = "ssws"`, the default), or OAuth 2.0 client
//!   credentials with `private_key_jwt` (`auth = "private_key_jwt"`): the keychain entry
//!   holds a PEM private key (RSA for RS256, P-256 for ES256); the adapter signs a short
//!   client assertion, exchanges it at `/oauth2/v1/token` for an access token with the
//!   configured scopes, caches the token until shortly before it expires and fetches a new
//!   one once after a 401.
//! - Rate limits: Okta's `X-Rate-Limit-Limit/Remaining/Reset` feed the system's shared
//!   limiter; a 429 (`E0000047`) blocks it until the reset instead of retrying blindly.
//! - Errors are classified from Okta's `errorCode`: `E0000047` rate limited, `E0000011`
//!   (and any 401) unauthorized, `E0000007` not found, "already exists" causes conflict,
//!   other 4xx permanent, 5xx transient. Bodies that are not what Okta sends (HTML from a
//!   proxy, malformed or truncated JSON, a 200 of the wrong shape) are classified too.
//! - Lists page with `limit` and the `rel="next"` Link; the cursor is the next link's path
//!   and query, so a failed page can be fetched again on its own. Each listing asks for
//!   the largest page its endpoint documents (Okta's API description,
//!   tests/specs/okta/management.prism.json): `GET /api/v1/users` 200 (its default; Okta's
//!   reference gives 200 as the most a page holds), `GET /api/v1/groups/{id}/users` 1000
//!   (its default; no maximum is declared, and Okta now recommends 200 for it),
//!   `GET /api/v1/groups` 10000 (its declared maximum). `page_size` caps all three.
//! - Users read back carry the synced attributes the adapter writes (`RemoteAccount::
//!   attributes`): email, givenName (`firstName`), familyName (`lastName`), displayName,
//!   department, title, costCenter, and `location`/`manager` where `custom_attributes`
//!   lets them be sent; a profile property that is unset reads as "".
//! - [`Adapter::list_entitlements`] lists the OKTA_GROUP groups (not `Everyone`, which is
//!   BUILT_IN and holds every user, nor APP_GROUPs imported from apps: memberships in
//!   those are not managed through this API, as in `list_memberships`).
//! - Groups named in the catalogue without an id are found by name (`q=`, exact match,
//!   then `search=profile.name eq` when the prefix query may have been cut short) and cached.
//!
//! Settings (`[systems.NAME.settings]`): `auth`, `client_id`, `scopes` (array or
//! space-separated string), `key_id`, `token_url` (default `{base_url}/oauth2/v1/token`),
//! `page_size` (1-200: a cap on every listing's page; default each endpoint's maximum),
//! `hris_id_attribute` (default `employeeNumber`),
//! `custom_attributes` (profile attributes beyond Okta's base schema that may be sent).

use super::auth::jwt::Signer;
use super::auth::oauth::{ClientAssertion, TokenAuth, TokenEndpoint};
use super::auth::{Auth, HeaderAuth};
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, RateLimiter, RateSignal, Req, RetryPolicy, Timeouts};
use super::kit::context::AdapterContext;
use super::kit::errors::{
    Class, ErrorRule, OAUTH_ERRORS, VendorProfile, classify_by, classify_status, code,
};
use super::kit::paging::link_next;
use super::kit::settings;
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, Page,
    Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership,
};
use crate::model::EntitlementKind;
use crate::secrets::Secret;
use crate::{Error, Result};
use async_trait::async_trait;
use reqwest::header::{ACCEPT, HeaderMap};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod profile;
mod provisioner;
mod reader;
pub use profile::*;

/// The Okta Management API version this adapter speaks. Every path is built from it.
pub const API_VERSION: &str = "v1";

/// A Management API path: `/api/v1{rest}`.
fn api(rest: &str) -> String {
    format!("/api/{API_VERSION}{rest}")
}

/// Okta's base user profile attributes (besides the ones the adapter sets itself), which
/// may be sent from `AccountSpec::attributes` without being declared as custom.
const BASE_ATTRIBUTES: &[&str] = &[
    "city",
    "costCenter",
    "countryCode",
    "department",
    "division",
    "employeeNumber",
    "honorificPrefix",
    "honorificSuffix",
    "locale",
    "manager",
    "managerId",
    "middleName",
    "mobilePhone",
    "nickName",
    "organization",
    "postalAddress",
    "preferredLanguage",
    "primaryPhone",
    "profileUrl",
    "secondEmail",
    "state",
    "streetAddress",
    "timezone",
    "title",
    "userType",
    "zipCode",
];

/// Statuses in which an Okta user counts as active (may sign in, or is being activated).
const ACTIVE_STATUSES: &[&str] = &[
    "ACTIVE",
    "PROVISIONED",
    "RECOVERY",
    "PASSWORD_EXPIRED",
    "LOCKED_OUT",
];

/// Every user status, for a listing that includes DEPROVISIONED users (the plain listing
/// omits them; a filter includes them).
const ALL_STATUSES_FILTER: &str = "status eq \"STAGED\" or status eq \"PROVISIONED\" or status eq \"ACTIVE\" or status eq \"RECOVERY\" or status eq \"PASSWORD_EXPIRED\" or status eq \"LOCKED_OUT\" or status eq \"SUSPENDED\" or status eq \"DEPROVISIONED\"";

/// `[systems.NAME.settings]` of an `okta` system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OktaSettings {
    /// `"ssws"` (an API token, the default) or `"private_key_jwt"` (an OAuth service app
    /// whose private key is the credential).
    #[serde(default)]
    pub auth: OktaAuthKind,
    /// The service app's client ID (private_key_jwt).
    pub client_id: Option<String>,
    /// The scopes to ask for (private_key_jwt), e.g. `["okta.users.manage", "okta.groups.manage"]`.
    #[serde(default, deserialize_with = "settings::words")]
    pub scopes: Vec<String>,
    /// The key's `kid`, when the app holds several keys (private_key_jwt).
    pub key_id: Option<String>,
    /// The token endpoint; default `{base_url}/oauth2/v1/token`.
    pub token_url: Option<String>,
    /// A cap on every listing's page; default each endpoint's documented maximum.
    #[serde(
        default,
        deserialize_with = "settings::optional_in::<_, 1, USERS_PAGE_MAX>"
    )]
    pub page_size: Option<u32>,
    /// The profile attribute holding the HR id; default `employeeNumber`.
    pub hris_id_attribute: Option<String>,
    /// Custom profile attributes the adapter reads and writes.
    #[serde(default, deserialize_with = "settings::words")]
    pub custom_attributes: Vec<String>,
}

/// `auth` in an okta system's settings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OktaAuthKind {
    #[default]
    Ssws,
    PrivateKeyJwt,
}

/// How the adapter authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OktaAuthConfig {
    /// `Authorization: SSWS {API token}`.
    Ssws,
    /// OAuth 2.0 client credentials, client authentication `private_key_jwt`.
    PrivateKeyJwt {
        client_id: String,
        scopes: Vec<String>,
        key_id: Option<String>,
        /// Absolute token endpoint URL; `None`: `{base_url}/oauth2/v1/token`.
        token_url: Option<String>,
    },
}

/// Everything [`OktaAdapter::new`] needs. Build it with [`options_from_config`] or by hand
/// (tests). Debug never shows the credential.
#[derive(Debug, Clone)]
pub struct OktaOptions {
    pub system: String,
    pub base_url: String,
    /// The SSWS token or the PEM private key.
    pub credential: Secret,
    /// Where the credential came from (`keyring:okta-token`), for error messages.
    pub credential_source: String,
    pub auth: OktaAuthConfig,
    pub timeouts: Timeouts,
    pub limiter: Arc<RateLimiter>,
    pub retry: RetryPolicy,
    /// A cap on every listing's page; None: each endpoint's documented maximum
    /// ([`USERS_PAGE_MAX`], [`GROUP_USERS_PAGE_MAX`], [`GROUPS_PAGE_MAX`]).
    pub page_size: Option<u32>,
    pub hris_attribute: String,
    pub custom_attributes: Vec<String>,
}

/// `GET /api/v1/users`: `limit` defaults to 200, the most Okta returns in a page.
pub const USERS_PAGE_MAX: u32 = 200;
/// `GET /api/v1/groups/{groupId}/users`: `limit` defaults to 1000 (no maximum declared).
pub const GROUP_USERS_PAGE_MAX: u32 = 1000;
/// `GET /api/v1/groups`: `limit` has `maximum: 10000`.
pub const GROUPS_PAGE_MAX: u32 = 10_000;

impl OktaOptions {
    /// Defaults for everything but the essentials.
    pub fn new(system: &str, base_url: &str, credential: Secret, credential_source: &str) -> Self {
        OktaOptions {
            system: system.to_string(),
            base_url: base_url.to_string(),
            credential,
            credential_source: credential_source.to_string(),
            auth: OktaAuthConfig::Ssws,
            timeouts: Timeouts::default(),
            limiter: RateLimiter::new(system, None, 4),
            retry: RetryPolicy::default(),
            page_size: None,
            hris_attribute: "employeeNumber".into(),
            custom_attributes: Vec::new(),
        }
    }
}

/// Read the adapter's options from systems.toml (the constructor's context).
pub fn options_from_config(ctx: &AdapterContext<'_>) -> Result<OktaOptions> {
    let name = ctx.entry.system.name.clone();
    let usage = |msg: String, hint: &str| Error::usage(format!("system {name}: {msg}"), hint);
    ctx.require_api_version(API_VERSION, "Okta Management API")?;
    let set: OktaSettings = settings::parse(ctx.entry)?;
    let base_url = ctx.base_url()?.trim_end_matches('/').to_string();
    let source = ctx.credential()?.to_string();
    let secret = ctx.secret()?;
    let auth = match set.auth {
        OktaAuthKind::Ssws => OktaAuthConfig::Ssws,
        OktaAuthKind::PrivateKeyJwt => {
            let client_id = set.client_id.filter(|c| !c.is_empty()).ok_or_else(|| {
                usage(
                    "auth = \"private_key_jwt\" needs client_id".into(),
                    "set client_id to the service app's client ID",
                )
            })?;
            if set.scopes.is_empty() {
                return Err(usage(
                    "auth = \"private_key_jwt\" needs scopes".into(),
                    "scopes = [\"okta.users.manage\", \"okta.groups.manage\"]",
                ));
            }
            if let Some(t) = &set.token_url
                && url::Url::parse(t).is_err()
            {
                return Err(usage(
                    "token_url is not an absolute URL".into(),
                    "for example https://example.okta.com/oauth2/v1/token",
                ));
            }
            OktaAuthConfig::PrivateKeyJwt {
                client_id,
                scopes: set.scopes,
                key_id: set.key_id.filter(|k| !k.is_empty()),
                token_url: set.token_url,
            }
        }
    };
    Ok(OktaOptions {
        system: name.clone(),
        base_url,
        credential: secret,
        credential_source: source,
        auth,
        timeouts: ctx.timeouts,
        limiter: ctx.limiter.clone(),
        retry: RetryPolicy::default(),
        page_size: set.page_size,
        hris_attribute: set
            .hris_id_attribute
            .unwrap_or_else(|| "employeeNumber".into()),
        custom_attributes: set.custom_attributes,
    })
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    let opts = options_from_config(&ctx)?;
    let adapter = OktaAdapter::new(opts).map_err(|e| Error::usage(e.to_string(), ""))?;
    Ok(Arc::new(adapter))
}

// ---------------------------------------------------------------------------------------
// Response shapes
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct OktaUser {
    id: String,
    status: String,
    profile: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
struct OktaGroup {
    id: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    profile: OktaGroupProfile,
}

#[derive(Debug, Deserialize)]
struct OktaGroupProfile {
    name: Option<String>,
}

/// `RemoteAccount::attributes` keys and the Okta profile properties that hold them.
const SYNCED_FIELDS: [(&str, &str); 9] = [
    ("email", "email"),
    ("givenName", "firstName"),
    ("familyName", "lastName"),
    ("displayName", "displayName"),
    ("department", "department"),
    ("title", "title"),
    ("costCenter", "costCenter"),
    ("location", "location"),
    ("manager", "manager"),
];

/// The synced keys the adapter always writes (from the spec's own fields).
const CORE_FIELDS: [&str; 4] = ["email", "givenName", "familyName", "displayName"];

/// A profile property as text: a string as it is, a number or boolean written out, unset
/// (missing or null) as ""; None for a list or an object (not a value accessdesk writes).
fn profile_text(profile: &Map<String, Value>, field: &str) -> Option<String> {
    match profile.get(field) {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(_) => None,
    }
}

/// Percent-encode one path segment (ids, logins).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// A JSON string literal for an Okta filter/search expression.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

/// The OAuth service app's token source and what `authenticate` reports of it.
#[derive(Debug)]
struct JwtAuth {
    auth: Arc<TokenAuth>,
    client_id: String,
    token_url: String,
    alg: jsonwebtoken::Algorithm,
    key_id: Option<String>,
}

enum AuthKind {
    Ssws,
    Jwt(Box<JwtAuth>),
}

/// Okta suspends and lists every group; users are never deleted (deactivation keeps them);
/// the HR id lives in a profile attribute.
const CAPABILITIES: Capabilities = Capabilities {
    suspend: true,
    delete: false,
    list_entitlements: true,
    stores_hris_id: true,
};

pub struct OktaAdapter {
    about: About,
    base_url: String,
    http: HttpClient,
    auth: AuthKind,
    /// A cap on every listing's page (None: each endpoint's maximum).
    page_size: Option<u32>,
    hris_attribute: String,
    custom_attributes: Vec<String>,
    /// Group name -> id, for catalogue entries without an external id.
    groups: crate::adapters::NameCache,
}

impl std::fmt::Debug for OktaAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OktaAdapter")
            .field("system", &self.about.system)
            .field("base_url", &self.base_url)
            .field(
                "auth",
                &match &self.auth {
                    AuthKind::Ssws => "ssws".to_string(),
                    AuthKind::Jwt(j) => format!("{j:?}"),
                },
            )
            .field("credential", &"[redacted]")
            .finish()
    }
}

impl OktaAdapter {
    pub fn new(opts: OktaOptions) -> AResult<Self> {
        let watch = Arc::new(crate::adapters::kit::watch::Watch::default());
        let (auth, kind): (Arc<dyn Auth>, AuthKind) = match &opts.auth {
            OktaAuthConfig::Ssws => (
                Arc::new(HeaderAuth {
                    scheme: "SSWS",
                    secret: opts.credential.clone(),
                    source: opts.credential_source.clone(),
                }),
                AuthKind::Ssws,
            ),
            OktaAuthConfig::PrivateKeyJwt {
                client_id,
                scopes,
                key_id,
                token_url,
            } => {
                let token_url = token_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/oauth2/v1/token", opts.base_url));
                let signer =
                    Signer::from_pem(opts.credential.expose(), key_id.clone()).map_err(|why| {
                        AdapterError::new(
                            ErrorClass::Unauthorized,
                            &opts.system,
                            format!("the credential from {} {why}", opts.credential_source),
                        )
                    })?;
                let alg = signer.alg;
                let grant = ClientAssertion {
                    client_id: client_id.clone(),
                    scopes: scopes.clone(),
                    signer,
                    token_url: token_url.clone(),
                };
                let endpoint = TokenEndpoint {
                    url: token_url.clone(),
                    timeouts: opts.timeouts,
                    limiter: opts.limiter.clone(),
                    retry: opts.retry,
                    profile: Arc::new(OktaProfile),
                };
                let j = Arc::new(
                    TokenAuth::new(
                        &opts.system,
                        &opts.credential_source,
                        endpoint,
                        Box::new(grant),
                    )?
                    .with_watch(watch.clone()),
                );
                let info = JwtAuth {
                    auth: j.clone(),
                    client_id: client_id.clone(),
                    token_url,
                    alg,
                    key_id: key_id.clone(),
                };
                (j, AuthKind::Jwt(Box::new(info)))
            }
        };
        let mut http = HttpClient::new(
            &opts.system,
            &opts.base_url,
            opts.timeouts,
            opts.limiter.clone(),
            auth,
            Arc::new(OktaProfile),
        )?;
        http.retry = opts.retry;
        http.watch = watch;
        let needed: &[&str] = match &opts.auth {
            OktaAuthConfig::Ssws => &[],
            OktaAuthConfig::PrivateKeyJwt { .. } => &["okta.users.manage", "okta.groups.manage"],
        };
        Ok(OktaAdapter {
            about: About::of(&http, API_VERSION, CAPABILITIES).needing(needed),
            base_url: opts.base_url,
            http,
            auth: kind,
            page_size: opts.page_size.map(|n| n.max(1)),
            hris_attribute: opts.hris_attribute,
            custom_attributes: opts.custom_attributes,
            groups: Default::default(),
        })
    }

    fn err(&self, class: ErrorClass, msg: impl Into<String>) -> AdapterError {
        AdapterError::new(class, &self.about.system, msg)
    }

    async fn send(&self, req: Req) -> AResult<HttpResponse> {
        self.http.send(req.header(ACCEPT, "application/json")).await
    }

    fn account(&self, u: OktaUser) -> RemoteAccount {
        let get = |k: &str| {
            u.profile
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut attributes = BTreeMap::new();
        for (key, field) in SYNCED_FIELDS {
            // The first four are always sent (when the spec has them); the rest as profile()
            // decides.
            let written = CORE_FIELDS.contains(&key) || self.writes_attribute(key);
            if let Some(v) = profile_text(&u.profile, field).filter(|_| written) {
                attributes.insert(key.to_string(), v);
            }
        }
        RemoteAccount {
            login: get("login").unwrap_or_default(),
            email: get("email"),
            active: ACTIVE_STATUSES.contains(&u.status.as_str()),
            hris_id: get(&self.hris_attribute),
            external_id: u.id,
            attributes,
        }
    }

    /// Whether `profile` sends this `AccountSpec::attributes` key to Okta: a base profile
    /// attribute (the HR id of a `manager` is not what Okta's base `manager` holds), or one
    /// named in `custom_attributes`.
    fn writes_attribute(&self, key: &str) -> bool {
        if self.custom_attributes.iter().any(|c| c == key) {
            return true;
        }
        key != "manager" && BASE_ATTRIBUTES.contains(&key)
    }

    /// The `limit` for a listing whose endpoint allows at most `max`.
    fn limit(&self, max: u32) -> String {
        self.page_size.unwrap_or(max).min(max).to_string()
    }

    fn user(&self, resp: &HttpResponse) -> AResult<OktaUser> {
        let u: OktaUser = resp.json(&self.about.system, "an Okta user object")?;
        if u.id.is_empty() {
            return Err(AdapterError::bad_response(
                &self.about.system,
                resp.status,
                "an Okta user object with an id",
                &resp.body,
            ));
        }
        Ok(u)
    }

    /// The profile to send: only non-empty fields.
    fn profile(&self, spec: &AccountSpec) -> Map<String, Value> {
        let mut p = Map::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                p.insert(k.to_string(), json!(v));
            }
        };
        put("login", &spec.login);
        put("email", &spec.email);
        put("firstName", &spec.given_name);
        put("lastName", &spec.family_name);
        put("displayName", &spec.display_name);
        put(&self.hris_attribute, &spec.hris_id);
        // The manager by their Okta id; `manager` in the spec is their HR id, which is
        // not what Okta's `manager` (a display name) holds.
        put("managerId", spec.manager_account.as_deref().unwrap_or(""));
        for (k, v) in &spec.attributes {
            if k == "manager" && !self.custom_attributes.contains(k) {
                continue;
            }
            if self.writes_attribute(k) {
                put(k, v);
            } else {
                tracing::debug!(system = %self.about.system, attribute = %k, "not an Okta base attribute and not in custom_attributes; not sent");
            }
        }
        p
    }

    async fn get_user(&self, id_or_login: &str) -> AResult<Option<OktaUser>> {
        match self
            .send(Req::get(api(&format!("/users/{}", segment(id_or_login)))))
            .await
        {
            Ok(resp) => Ok(Some(self.user(&resp)?)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn lifecycle(&self, id: &str, op: &str, query: &str) -> AResult<()> {
        let path = api(&format!("/users/{}/lifecycle/{op}{query}", segment(id)));
        // The body (an activation token, for activate/reactivate) is not kept or logged.
        self.send(Req::post(path)).await.map(|_| ())
    }

    /// Run a lifecycle change; if Okta refuses it because of the user's status, succeed
    /// when the user is already in the wanted status.
    async fn lifecycle_to(&self, id: &str, op: &str, wanted: &[&str]) -> AResult<()> {
        match self.lifecycle(id, op, "").await {
            Ok(()) => Ok(()),
            Err(e) if e.class == ErrorClass::Permanent => match self.get_user(id).await? {
                Some(u) if wanted.contains(&u.status.as_str()) => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// The cursor for a next Link: its path and query (the host is ours, whatever the link
    /// says; a proxy or gateway in between may have rewritten it).
    fn cursor_from(&self, resp: &HttpResponse) -> AResult<Option<String>> {
        let Some(next) = link_next(&resp.headers) else {
            return Ok(None);
        };
        let u = url::Url::parse(&next)
            .or_else(|_| url::Url::parse(&format!("{}{}", self.base_url, next)))
            .map_err(|_| {
                AdapterError::bad_response(
                    &self.about.system,
                    resp.status,
                    "a next Link with a URL",
                    next.as_bytes(),
                )
            })?;
        Ok(Some(match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }))
    }

    /// A cursor handed back to us must be one of our own listing paths.
    fn check_cursor(&self, cursor: &str, prefix: &str) -> AResult<String> {
        if cursor.starts_with(prefix) && !cursor.contains("..") {
            Ok(cursor.to_string())
        } else {
            Err(self.err(
                ErrorClass::Permanent,
                format!(
                    "not a cursor for this listing: {}",
                    super::http::redact_url(cursor)
                ),
            ))
        }
    }

    async fn list_users_page(&self, path: String) -> AResult<Page<RemoteAccount>> {
        let resp = self.send(Req::get(path)).await?;
        let users: Vec<OktaUser> = resp.json(&self.about.system, "a JSON array of Okta users")?;
        let next = self.cursor_from(&resp)?;
        Ok(Page {
            items: users.into_iter().map(|u| self.account(u)).collect(),
            next,
        })
    }

    /// The group id for a catalogue entry: its external id, or found by name.
    async fn group_id(&self, target: &EntitlementTarget) -> AResult<String> {
        if target.kind != EntitlementKind::Group {
            return Err(AdapterError::unsupported(
                &self.about.system,
                &format!("{} entitlements", target.kind),
            ));
        }
        if !target.external_id.is_empty() && target.external_id != target.name {
            return Ok(target.external_id.clone());
        }
        let name = target.name.as_str();
        if let Some(id) = self.cached_group(name) {
            return Ok(id);
        }
        // `q` is a prefix match that does not page (at most `limit` results); if the
        // result may have been cut short, ask for the exact name with `search`.
        let limit = 200usize;
        let q = query_string(&[("q", name), ("limit", &limit.to_string())]);
        let resp = self.send(Req::get(api(&format!("/groups?{q}")))).await?;
        let mut groups: Vec<OktaGroup> =
            resp.json(&self.about.system, "a JSON array of Okta groups")?;
        if groups.len() >= limit
            && !groups
                .iter()
                .any(|g| g.profile.name.as_deref() == Some(name))
        {
            let s = query_string(&[("search", &format!("profile.name eq {}", quoted(name)))]);
            let resp = self.send(Req::get(api(&format!("/groups?{s}")))).await?;
            groups = resp.json(&self.about.system, "a JSON array of Okta groups")?;
        }
        let exact: Vec<&OktaGroup> = groups
            .iter()
            .filter(|g| g.profile.name.as_deref() == Some(name))
            .collect();
        let okta: Vec<&&OktaGroup> = exact
            .iter()
            .filter(|g| g.kind.as_deref().is_none_or(|k| k == "OKTA_GROUP"))
            .collect();
        match (okta.as_slice(), exact.first()) {
            ([one], _) => {
                self.groups.insert(name, &one.id);
                Ok(one.id.clone())
            }
            ([], Some(other)) => Err(self.err(
                ErrorClass::Permanent,
                format!(
                    "group {name:?} is of type {}; only OKTA_GROUP memberships can be managed",
                    other.kind.as_deref().unwrap_or("unknown")
                ),
            )),
            ([], None) => Err(self.err(
                ErrorClass::NotFound,
                format!("no Okta group is named {name:?}"),
            )),
            (many, _) => Err(self.err(
                ErrorClass::Permanent,
                format!(
                    "{} Okta groups are named {name:?}; set external_id in systems.toml",
                    many.len()
                ),
            )),
        }
    }

    fn cached_group(&self, name: &str) -> Option<String> {
        self.groups.get(name)
    }

    fn forget_group(&self, name: &str) {
        self.groups.forget(name);
    }

    /// Change a membership; a group id that came from the name cache and is now unknown
    /// (the group was recreated) is looked up again once.
    async fn membership(
        &self,
        method: reqwest::Method,
        uid: &str,
        target: &EntitlementTarget,
    ) -> AResult<()> {
        let by_name = target.external_id.is_empty() || target.external_id == target.name;
        let was_cached = by_name && self.cached_group(&target.name).is_some();
        let gid = self.group_id(target).await?;
        let path = |gid: &str| api(&format!("/groups/{}/users/{}", segment(gid), segment(uid)));
        match self.send(Req::new(method.clone(), path(&gid))).await {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound && was_cached => {
                self.forget_group(&target.name);
                let fresh = self.group_id(target).await?;
                if fresh == gid {
                    return Err(e);
                }
                self.send(Req::new(method, path(&fresh))).await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
