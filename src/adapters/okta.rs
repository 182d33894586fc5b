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
use super::error::{AdapterError, ErrorClass};
use super::http::{HttpClient, HttpResponse, RateLimiter, RateSignal, Req, RetryPolicy, Timeouts};
use super::kit::context::AdapterContext;
use super::kit::errors::{
    Class, ErrorRule, OAUTH_ERRORS, VendorProfile, classify_by, classify_status, code,
};
use super::kit::paging::link_next;
use super::kit::settings;
use super::{
    AResult, AccountSpec, Adapter, EntitlementTarget, Identity, Page, RemoteAccount,
    RemoteEntitlement, RemoteMembership,
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
// Vendor profile
// ---------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OktaErrorBody {
    error_code: Option<String>,
    error_summary: Option<String>,
    #[serde(default)]
    error_causes: Vec<OktaErrorCause>,
    /// OAuth endpoints answer `{"error": ..., "error_description": ...}` instead.
    error: Option<String>,
    #[serde(rename = "error_description")]
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OktaErrorCause {
    error_summary: Option<String>,
}

fn looks_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .copied()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .collect::<Vec<u8>>()
        .to_ascii_lowercase();
    head.starts_with(b"<!doctype") || head.starts_with(b"<html")
}

/// Reset-based wait from Okta's headers.
fn wait_until_reset(headers: &HeaderMap) -> Option<Duration> {
    let reset = headers
        .get("x-rate-limit-reset")?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()?;
    let at = UNIX_EPOCH + Duration::from_secs(reset);
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Okta's rate-limit headers and error codes.
pub struct OktaProfile;

impl VendorProfile for OktaProfile {
    /// Okta counts requests per endpoint family, each with its own X-Rate-Limit-* window
    /// (rate-limit documentation: /api/v1/users, /api/v1/users/{id}, /api/v1/groups,
    /// /api/v1/groups/{id}, ...). The limiter keeps one window per family.
    fn bucket(&self, method: &reqwest::Method, path: &str) -> String {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segs.as_slice() {
            ["oauth2", ..] => "oauth2",
            ["api", "v1", "users"] => "users",
            ["api", "v1", "users", _] if method == reqwest::Method::GET => "user-get",
            ["api", "v1", "users", ..] => "user-write",
            ["api", "v1", "groups"] => "groups",
            ["api", "v1", "groups", ..] => "group",
            _ => "other",
        }
        .to_string()
    }

    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        RateSignal::from_triple(
            status,
            headers,
            "x-rate-limit-limit",
            "x-rate-limit-remaining",
            "x-rate-limit-reset",
        )
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_okta(system, status, headers, body)
    }
}

/// Classify a non-2xx Okta response (Management API or OAuth endpoint).
/// Okta's error codes that say more than their status.
const OKTA_ERRORS: &[ErrorRule] = &[
    code("E0000047", Class::RateLimited),
    code("E0000011", Class::Unauthorized),
    code("E0000004", Class::Unauthorized),
    code("E0000005", Class::Unauthorized),
    code("E0000007", Class::NotFound),
];

pub fn classify_okta(system: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> AdapterError {
    let www = headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed = serde_json::from_slice::<OktaErrorBody>(body)
        .ok()
        .filter(|e| e.error_code.is_some() || e.error.is_some());
    let Some(err) = parsed else {
        // Not Okta's error object: a proxy, a gateway, a load balancer or a cut-off body.
        let what = if looks_html(body) {
            format!(
                "HTTP {status} with an HTML page instead of an Okta error (a proxy or gateway answered)"
            )
        } else if body.is_empty() {
            format!("HTTP {status} with an empty body")
        } else {
            format!("HTTP {status} with a body that is not an Okta error object")
        };
        let mut e = classify_status(system, status, headers, body, None, what);
        if status == 429 {
            e.class = ErrorClass::RateLimited {
                retry_after: wait_until_reset(headers).or(e.class.retry_after()),
            };
        }
        return e;
    };
    if let Some(code) = err.error.as_deref() {
        // OAuth error ({"error": "invalid_client", ...}).
        let message = match err.error_description.as_deref() {
            Some(d) => format!("{code}: {d}"),
            None => code.to_string(),
        };
        let class = match classify_by(OAUTH_ERRORS, status, Some(code)) {
            Class::RateLimited => Class::RateLimited.with_wait(wait_until_reset(headers)),
            c => c.with_wait(None),
        };
        return AdapterError::new(class, system, message)
            .with_status(status)
            .with_code(code)
            .with_excerpt(body);
    }
    let code = err.error_code.clone().unwrap_or_default();
    let causes: Vec<String> = err
        .error_causes
        .iter()
        .filter_map(|c| c.error_summary.clone())
        .collect();
    let summary = err.error_summary.clone().unwrap_or_default();
    let message = if causes.is_empty() {
        summary.clone()
    } else {
        format!("{summary} ({})", causes.join("; "))
    };
    let already_exists = causes
        .iter()
        .chain(std::iter::once(&summary))
        .any(|c| c.to_ascii_lowercase().contains("already exists"));
    let class = if already_exists && !OKTA_ERRORS.iter().any(|r| r.code == Some(code.as_str())) {
        Class::Conflict
    } else if status == 401 || www.contains("invalid_token") {
        Class::Unauthorized
    } else {
        classify_by(OKTA_ERRORS, status, Some(&code))
    };
    let class = class.with_wait(wait_until_reset(headers));
    let message = if www.contains("insufficient_scope") {
        format!("{message} (the access token lacks a scope this call needs)")
    } else {
        message
    };
    AdapterError::new(class, system, message)
        .with_status(status)
        .with_code(code)
        .with_excerpt(body)
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

pub struct OktaAdapter {
    system: String,
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
            .field("system", &self.system)
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
                let j = Arc::new(TokenAuth::new(
                    &opts.system,
                    &opts.credential_source,
                    endpoint,
                    Box::new(grant),
                )?);
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
        Ok(OktaAdapter {
            system: opts.system,
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
        AdapterError::new(class, &self.system, msg)
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
        let u: OktaUser = resp.json(&self.system, "an Okta user object")?;
        if u.id.is_empty() {
            return Err(AdapterError::bad_response(
                &self.system,
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
                tracing::debug!(system = %self.system, attribute = %k, "not an Okta base attribute and not in custom_attributes; not sent");
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
                    &self.system,
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
        let users: Vec<OktaUser> = resp.json(&self.system, "a JSON array of Okta users")?;
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
                &self.system,
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
        let mut groups: Vec<OktaGroup> = resp.json(&self.system, "a JSON array of Okta groups")?;
        if groups.len() >= limit
            && !groups
                .iter()
                .any(|g| g.profile.name.as_deref() == Some(name))
        {
            let s = query_string(&[("search", &format!("profile.name eq {}", quoted(name)))]);
            let resp = self.send(Req::get(api(&format!("/groups?{s}")))).await?;
            groups = resp.json(&self.system, "a JSON array of Okta groups")?;
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

#[async_trait]
impl Adapter for OktaAdapter {
    fn limiter(&self) -> Option<std::sync::Arc<crate::adapters::http::RateLimiter>> {
        Some(self.http.limiter.clone())
    }

    fn system(&self) -> &str {
        &self.system
    }

    fn api_version(&self) -> &str {
        API_VERSION
    }

    async fn authenticate(&self) -> AResult<Identity> {
        let mut details = BTreeMap::new();
        details.insert("org".to_string(), self.base_url.clone());
        details.insert("api_version".to_string(), API_VERSION.to_string());
        match &self.auth {
            AuthKind::Ssws => {
                details.insert("auth".into(), "ssws (API token)".into());
                let resp = self.send(Req::get(api("/users/me"))).await?;
                let u = self.user(&resp)?;
                details.insert("user_id".into(), u.id.clone());
                details.insert(
                    "permissions".into(),
                    "those of the admin who created the token".into(),
                );
                let principal = u
                    .profile
                    .get("login")
                    .and_then(Value::as_str)
                    .unwrap_or(&u.id)
                    .to_string();
                Ok(Identity {
                    principal,
                    scopes: Vec::new(),
                    details,
                })
            }
            AuthKind::Jwt(j) => {
                details.insert("auth".into(), "private_key_jwt (OAuth service app)".into());
                details.insert("token_url".into(), j.token_url.clone());
                details.insert("alg".into(), format!("{:?}", j.alg));
                if let Some(k) = &j.key_id {
                    details.insert("key_id".into(), k.clone());
                }
                // Check the credential for real: a fresh token, then one cheap call with it.
                j.auth.invalidate().await;
                let scopes = j
                    .auth
                    .token()
                    .await
                    .map_err(|mut e| {
                        if e.class == ErrorClass::Unauthorized {
                            e.message = format!(
                                "{} rejected the credential from {}: {}",
                                self.system,
                                j.auth.source(),
                                e.message
                            );
                        }
                        e
                    })?
                    .scopes;
                let q = query_string(&[("limit", "1")]);
                self.send(Req::get(api(&format!("/users?{q}")))).await?;
                Ok(Identity {
                    principal: j.client_id.clone(),
                    scopes,
                    details,
                })
            }
        }
    }

    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let body = json!({ "profile": self.profile(spec) });
        let path = api(&format!("/users?{}", query_string(&[("activate", "true")])));
        // "Already exists" comes back as Conflict; the engine reads the account and
        // decides from its HR id whether it is this person's (engine/identity.rs).
        let resp = self.send(Req::post(path).json(body)).await?;
        Ok(self.account(self.user(&resp)?))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let body = json!({ "profile": self.profile(spec) });
        let resp = self
            .send(Req::post(api(&format!("/users/{}", segment(external_id)))).json(body))
            .await?;
        Ok(self.account(self.user(&resp)?))
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        self.lifecycle_to(external_id, "deactivate", &["DEPROVISIONED"])
            .await
    }

    /// Back to active, by the route Okta allows from the current status: `unsuspend` from
    /// SUSPENDED, `activate` from DEPROVISIONED or STAGED, `reactivate` from PROVISIONED or
    /// RECOVERY (which restarts the activation flow). No activation email is sent.
    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        let Some(u) = self.get_user(external_id).await? else {
            return Err(self.err(ErrorClass::NotFound, format!("no Okta user {external_id}")));
        };
        let no_email = format!("?{}", query_string(&[("sendEmail", "false")]));
        match u.status.as_str() {
            "SUSPENDED" => {
                self.lifecycle_to(external_id, "unsuspend", ACTIVE_STATUSES)
                    .await
            }
            "DEPROVISIONED" | "STAGED" => self.lifecycle(external_id, "activate", &no_email).await,
            "PROVISIONED" | "RECOVERY" => {
                self.lifecycle(external_id, "reactivate", &no_email).await
            }
            _ => Ok(()),
        }
    }

    async fn suspend_account(&self, external_id: &str) -> AResult<()> {
        self.lifecycle_to(external_id, "suspend", &["SUSPENDED"])
            .await
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        if login.is_empty() {
            return Ok(None);
        }
        let found = if login.contains('/') {
            // Okta cannot take a login with '/' in the path; filter instead.
            let f = query_string(&[("filter", &format!("profile.login eq {}", quoted(login)))]);
            let resp = self.send(Req::get(api(&format!("/users?{f}")))).await?;
            let users: Vec<OktaUser> = resp.json(&self.system, "a JSON array of Okta users")?;
            users.into_iter().next()
        } else {
            self.get_user(login).await?
        };
        // GET /users/{x} also matches ids and login short names: insist on the login.
        Ok(found
            .map(|u| self.account(u))
            .filter(|a| a.login.eq_ignore_ascii_case(login)))
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        if external_id.is_empty() {
            return Ok(None);
        }
        Ok(self.get_user(external_id).await?.map(|u| self.account(u)))
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.membership(reqwest::Method::PUT, account_id, target)
            .await
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.membership(reqwest::Method::DELETE, account_id, target)
            .await
    }

    /// OKTA_GROUP memberships only: BUILT_IN (Everyone) and APP_GROUP memberships are not
    /// managed through this API.
    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let resp = self
            .send(Req::get(api(&format!(
                "/users/{}/groups",
                segment(account_id)
            ))))
            .await?;
        let groups: Vec<OktaGroup> = resp.json(&self.system, "a JSON array of Okta groups")?;
        Ok(groups
            .into_iter()
            .filter(|g| g.kind.as_deref().is_none_or(|k| k == "OKTA_GROUP"))
            .map(|g| RemoteMembership {
                kind: EntitlementKind::Group,
                name: g.profile.name.unwrap_or_default(),
                external_id: g.id,
            })
            .collect())
    }

    /// Every user, DEPROVISIONED included.
    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &api("/users?"))?,
            None => api(&format!(
                "/users?{}",
                query_string(&[
                    ("limit", &self.limit(USERS_PAGE_MAX)),
                    ("filter", ALL_STATUSES_FILTER),
                ])
            )),
        };
        self.list_users_page(path).await
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let gid = self.group_id(target).await?;
        let prefix = api(&format!("/groups/{}/users", segment(&gid)));
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &prefix)?,
            None => format!(
                "{prefix}?{}",
                query_string(&[("limit", &self.limit(GROUP_USERS_PAGE_MAX))])
            ),
        };
        self.list_users_page(path).await
    }

    /// `GET /api/v1/groups` with the largest `limit` and Link paging; OKTA_GROUP groups
    /// only (see the module docs). Their ids are remembered for name look-ups.
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let path = match cursor {
            Some(c) => self.check_cursor(&c, &api("/groups?"))?,
            None => api(&format!(
                "/groups?{}",
                query_string(&[("limit", &self.limit(GROUPS_PAGE_MAX))])
            )),
        };
        let resp = self.send(Req::get(path)).await?;
        let groups: Vec<OktaGroup> = resp.json(&self.system, "a JSON array of Okta groups")?;
        let next = self.cursor_from(&resp)?;
        let mut items = Vec::with_capacity(groups.len());
        for g in groups {
            if g.kind.as_deref().is_some_and(|k| k != "OKTA_GROUP") {
                continue;
            }
            let Some(name) = g.profile.name.filter(|n| !n.is_empty() && !g.id.is_empty()) else {
                return Err(AdapterError::bad_response(
                    &self.system,
                    resp.status,
                    &format!(
                        "Okta groups each with an id and a profile.name (group {:?} has not)",
                        g.id
                    ),
                    &resp.body,
                ));
            };
            items.push(RemoteEntitlement {
                kind: EntitlementKind::Group,
                name,
                external_id: g.id,
            });
        }
        self.groups.remember(
            items
                .iter()
                .map(|e| (e.name.as_str(), e.external_id.as_str())),
        );
        Ok(Page { items, next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn okta_body(code: &str, summary: &str, causes: &[&str]) -> Vec<u8> {
        let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
        serde_json::to_vec(&json!({
            "errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae1", "errorCauses": causes
        }))
        .unwrap()
    }

    #[test]
    fn classification_follows_okta_error_codes() {
        let none = HeaderMap::new();
        let c =
            |status, body: &[u8], headers: &HeaderMap| classify_okta("okta", status, headers, body);
        let reset = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 5)
        .to_string();
        let e = c(
            429,
            &okta_body(
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                &[],
            ),
            &h(&[("x-rate-limit-reset", &reset)]),
        );
        let wait = e.class.retry_after().expect("waits for the reset");
        assert!(
            wait > Duration::from_secs(3) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
        assert_eq!(e.vendor_code.as_deref(), Some("E0000047"));
        assert_eq!(
            c(
                401,
                &okta_body("E0000011", "Invalid token provided", &[]),
                &none
            )
            .class,
            ErrorClass::Unauthorized
        );
        assert_eq!(
            c(
                404,
                &okta_body("E0000007", "Not found: Resource not found: x (User)", &[]),
                &none
            )
            .class,
            ErrorClass::NotFound
        );
        let dup = c(
            400,
            &okta_body(
                "E0000001",
                "Api validation failed: login",
                &["login: An object with this field already exists in the current organization"],
            ),
            &none,
        );
        assert_eq!(dup.class, ErrorClass::Conflict);
        assert!(dup.message.contains("already exists"), "{}", dup.message);
        assert_eq!(
            c(
                400,
                &okta_body(
                    "E0000001",
                    "Api validation failed: email",
                    &["email: Does not match required pattern"]
                ),
                &none
            )
            .class,
            ErrorClass::Permanent
        );
        assert_eq!(
            c(
                403,
                &okta_body("E0000006", "You do not have permission", &[]),
                &none
            )
            .class,
            ErrorClass::Permanent
        );
        assert_eq!(
            c(
                500,
                &okta_body("E0000009", "Internal Server Error", &[]),
                &none
            )
            .class,
            ErrorClass::Transient
        );
        let e = c(
            401,
            br#"{"error":"invalid_client","error_description":"The client_assertion signature is invalid."}"#,
            &none,
        );
        assert_eq!(e.class, ErrorClass::Unauthorized);
        assert!(e.message.contains("signature is invalid"));
        assert_eq!(
            c(
                400,
                br#"{"error":"invalid_scope","error_description":"nope"}"#,
                &none
            )
            .class,
            ErrorClass::Permanent
        );
    }

    #[test]
    fn bodies_that_are_not_okta_errors_are_classified() {
        let none = HeaderMap::new();
        let html = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
        let e = classify_okta("okta", 502, &none, html);
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(e.message.contains("HTML page"), "{}", e.message);
        assert!(e.excerpt.contains("502 Bad Gateway"));
        let e = classify_okta("okta", 403, &none, html);
        assert_eq!(e.class, ErrorClass::Permanent);
        let e = classify_okta("okta", 400, &none, b"{\"errorCode\": \"E00");
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("not an Okta error"), "{}", e.message);
        assert_eq!(
            classify_okta("okta", 503, &none, b"").class,
            ErrorClass::Transient
        );
        assert!(matches!(
            classify_okta("okta", 429, &none, b"").class,
            ErrorClass::RateLimited { .. }
        ));
        assert_eq!(
            classify_okta("okta", 401, &none, b"").class,
            ErrorClass::Unauthorized
        );
    }

    #[test]
    fn paths_and_expressions_are_encoded() {
        assert_eq!(api("/users"), "/api/v1/users");
        assert_eq!(segment("a.b+c@x.com"), "a.b%2Bc@x.com");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn keys_are_recognised_and_never_shown() {
        let rsa = include_str!("../../tests/fixtures/okta/test-rsa-private.pem");
        let ec = include_str!("../../tests/fixtures/okta/test-ec-private.pem");
        assert_eq!(
            crate::adapters::auth::jwt::signing_key(rsa).unwrap().0,
            jsonwebtoken::Algorithm::RS256
        );
        assert_eq!(
            crate::adapters::auth::jwt::signing_key(ec).unwrap().0,
            jsonwebtoken::Algorithm::ES256
        );
        assert!(crate::adapters::auth::jwt::signing_key("00abc-not-a-key").is_err());
        let mut o = OktaOptions::new(
            "okta",
            "http://127.0.0.1:1",
            Secret::new(rsa),
            "keyring:okta-key",
        );
        o.auth = OktaAuthConfig::PrivateKeyJwt {
            client_id: "0oa1".into(),
            scopes: vec!["okta.users.read".into()],
            key_id: None,
            token_url: None,
        };
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );
        let a = OktaAdapter::new(o).unwrap();
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
            "{shown}"
        );
        let bad = OktaOptions {
            auth: OktaAuthConfig::PrivateKeyJwt {
                client_id: "0oa1".into(),
                scopes: vec![],
                key_id: None,
                token_url: None,
            },
            ..OktaOptions::new(
                "okta",
                "http://127.0.0.1:1",
                Secret::new("00secretSSWS"),
                "keyring:okta-key",
            )
        };
        let e = OktaAdapter::new(bad).unwrap_err();
        assert_eq!(e.class, ErrorClass::Unauthorized);
        assert!(
            e.message.contains("keyring:okta-key") && !e.message.contains("00secret"),
            "{}",
            e.message
        );
    }

    #[test]
    fn profile_sends_only_filled_known_fields() {
        let a = OktaAdapter::new(OktaOptions {
            custom_attributes: vec!["location".into()],
            ..OktaOptions::new("okta", "http://127.0.0.1:1", Secret::new("t"), "keyring:t")
        })
        .unwrap();
        let mut spec = AccountSpec {
            hris_id: "E1".into(),
            login: "a@x.com".into(),
            given_name: "A".into(),
            ..Default::default()
        };
        spec.attributes.insert("department".into(), "Eng".into());
        spec.attributes.insert("location".into(), "Berlin".into());
        spec.attributes.insert("shoeSize".into(), "44".into());
        let p = a.profile(&spec);
        assert_eq!(p.get("employeeNumber"), Some(&json!("E1")));
        assert_eq!(p.get("department"), Some(&json!("Eng")));
        assert_eq!(p.get("location"), Some(&json!("Berlin")));
        assert!(
            !p.contains_key("shoeSize") && !p.contains_key("email") && !p.contains_key("lastName")
        );
    }
}
