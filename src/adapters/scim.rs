//! Generic SCIM 2.0 adapter: any service provider that speaks RFC 7643 (schema) and RFC 7644
//! (protocol) with a bearer token.
//!
//! `base_url` is the SCIM root, the URL that `/ServiceProviderConfig`, `/Users` and `/Groups`
//! hang off (scim2-server: `http://HOST:PORT/v2`). The credential is a bearer token.
//!
//! # Discovery and how the adapter adapts
//!
//! On first use, and on every [`Adapter::authenticate`], the adapter reads
//! `/ServiceProviderConfig` and `/ResourceTypes` (falling back to `/Schemas/{enterprise}`)
//! and caches what it learns as [`Capabilities`]:
//!
//! | Advertised | Used for | When not supported |
//! |---|---|---|
//! | `patch` | updates, (de)activation, membership: PATCH operations | GET, edit, PUT the whole resource |
//! | `etag` | `If-Match` with the version just read, on every PUT | PUT without a precondition |
//! | `filter`, `filter.maxResults` | `userName eq`, `displayName eq`, `members.value eq`, `id eq .. or ..` lookups; page size cap | page through the collection and match here |
//! | `sort` | `sortBy=meta.created` on paged listings, so resources created meanwhile land on the last page | provider order |
//! | enterprise User extension (ResourceTypes / Schemas) | `department`, `costCenter`, `employeeNumber`, `manager` (the manager's SCIM id, when accessdesk knows their account) | those attributes are not sent |
//! | `bulk`, `changePassword` | not used | - |
//!
//! `[systems.NAME.settings]` may turn features off for providers that advertise more than they
//! do (`use_patch`, `use_filter`, `use_etag` = false; `sort_by = ""`), set `page_size` (by
//! default a listing asks for the provider's `filter.maxResults`, the most it says a page
//! holds, or 100 where it names none), and force `enterprise_extension`. A filter or sort that the provider rejects at run time
//! (400 `invalidFilter`, 501) falls back to scanning / provider order for that call.
//!
//! # Decisions
//!
//! - **ETags.** `If-Match` guards the writes that are derived from a read: the PUT fallback
//!   (read, edit, write back). PATCH operations are absolute (`replace active=false`,
//!   `add member X`, `remove member X`); they are not built from a read, so a precondition
//!   would cost an extra GET per write and turn concurrent, commuting membership changes on
//!   a large group into spurious failures. On 412 (or a 409 that is not `uniqueness`, which
//!   RFC 7644 §3.12 also allows for a version mismatch) the adapter re-reads and retries once.
//!   A second 412 is **Transient**: the write did not happen, so Conflict (which the engine
//!   treats as "already done") would lose it, and Permanent would fail a grant that is fine;
//!   a later retry with a fresh read will win once the other writer is done.
//! - **Idempotent membership.** Adding a member who is already in the group and removing one
//!   who is not both return `Ok(())`, whatever the provider says: success (RFC 7644 §3.5.2.1
//!   says an add of an existing value changes nothing), 409 on add, or 400 `noTarget` on
//!   remove (§3.5.2.2).
//! - **Create** of a userName that exists is **Conflict** (409 / `uniqueness`). A 409
//!   `uniqueness` on an *update* (renaming to a taken userName) is **Permanent**: nothing
//!   was changed, so it must not read as "already done".
//! - **Memberships** are read from `/Groups` (by `members.value eq` filter, or by scanning),
//!   never from `User.groups`, which providers (scim2-server among them) do not keep in sync.
//!   Nested groups (`members[type eq "Group"]`) are not expanded.
//! - **Reading back** (`RemoteAccount::attributes`): what this adapter writes, as the
//!   provider holds it: email (the primary address), givenName, familyName, displayName,
//!   title, and with the enterprise extension department and costCenter; an attribute the
//!   provider leaves out reads as "". `location` (no SCIM attribute) and `manager` (SCIM
//!   holds the manager's SCIM id, not their HR id) are never filled. Listings ask for
//!   exactly these attributes (`attributes=`).
//! - **Groups** are listed (`list_entitlements`) from `/Groups?excludedAttributes=members`,
//!   paged by startIndex like users, so a large group's members are not sent along.
//! - **Deactivation** is `active: false`; accounts are never deleted.
//! - **Identity.** SCIM has no token introspection. The principal is the `/Me` user where the
//!   provider serves `/Me` for this token (RFC 7644 §3.11, optional), otherwise the provider's
//!   host. Scopes are the features the provider advertises. Because `/ServiceProviderConfig`
//!   may be served without authentication (§4), `authenticate` also reads one page of
//!   `/Users` to prove the token.
//! - **Secrets** live only in the `Authorization` header (marked sensitive); `Debug` shows the
//!   system and URL only; error excerpts and messages are redacted.

use super::auth::HeaderAuth;
use super::error::{AdapterError, ErrorClass};
use super::http::{HttpClient, HttpResponse, Req, RetryPolicy, redact_text};
use super::kit::context::AdapterContext;
use super::kit::errors::{VendorProfile, classify_status};
use super::kit::paging::scim_next_start;
use super::kit::settings;
use super::{
    AResult, AccountSpec, Adapter, EntitlementTarget, Identity, Page, RemoteAccount,
    RemoteEntitlement, RemoteMembership,
};
use crate::config::SystemEntry;
use crate::model::EntitlementKind;
use crate::{Error, Result};
use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, IF_MATCH};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The SCIM protocol version this adapter speaks. Every schema URN below is built from it.
macro_rules! scim_version {
    () => {
        "2.0"
    };
}

/// The one place the SCIM version is pinned.
pub const SCIM_VERSION: &str = scim_version!();
pub const SCHEMA_USER: &str = concat!(
    "urn:ietf:params:scim:schemas:core:",
    scim_version!(),
    ":User"
);
pub const SCHEMA_GROUP: &str = concat!(
    "urn:ietf:params:scim:schemas:core:",
    scim_version!(),
    ":Group"
);
pub const SCHEMA_ENTERPRISE_USER: &str = concat!(
    "urn:ietf:params:scim:schemas:extension:enterprise:",
    scim_version!(),
    ":User"
);
pub const SCHEMA_SERVICE_PROVIDER_CONFIG: &str = concat!(
    "urn:ietf:params:scim:schemas:core:",
    scim_version!(),
    ":ServiceProviderConfig"
);
pub const SCHEMA_PATCH_OP: &str = concat!(
    "urn:ietf:params:scim:api:messages:",
    scim_version!(),
    ":PatchOp"
);
pub const SCHEMA_ERROR: &str = concat!(
    "urn:ietf:params:scim:api:messages:",
    scim_version!(),
    ":Error"
);
pub const SCHEMA_LIST_RESPONSE: &str = concat!(
    "urn:ietf:params:scim:api:messages:",
    scim_version!(),
    ":ListResponse"
);

/// RFC 7644 §3.1. Requests carry it; responses in plain `application/json` are accepted.
pub const MEDIA_TYPE: &str = "application/scim+json";
const ACCEPT_VALUE: &str = "application/scim+json, application/json;q=0.9";

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;
/// How many ids go into one `id eq "a" or id eq "b" ...` filter (keeps URLs well under 8 KiB).
const MAX_IDS_PER_FILTER: u32 = 50;
/// What a user listing asks for (`id` is always returned), without the extension.
const USER_ATTRIBUTES: &str = "userName,externalId,active,emails,name,displayName,title";
/// The enterprise extension attributes a user listing asks for as well, where supported.
const ENTERPRISE_ATTRIBUTES: [&str; 3] = ["employeeNumber", "department", "costCenter"];
/// The most a page asks for by default when the provider advertises a larger maxResults.
const MAX_DEFAULT_PAGE_SIZE: u32 = 10_000;
/// A scan that has not ended after this many pages is refused rather than looping forever.
const MAX_SCAN_PAGES: u32 = 100_000;

// ---------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------

/// What the provider says it supports (RFC 7643 §5), plus the resource types it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub patch: bool,
    pub bulk: bool,
    pub filter: bool,
    /// `filter.maxResults`: the most resources one response returns.
    pub filter_max_results: Option<u32>,
    pub change_password: bool,
    pub sort: bool,
    pub etag: bool,
    /// `authenticationSchemes[].type` (e.g. `oauthbearertoken`).
    pub auth_schemes: Vec<String>,
    pub documentation_uri: Option<String>,
    /// The User resource type lists the enterprise extension.
    pub enterprise_user: bool,
    /// Endpoints from /ResourceTypes (default `/Users`, `/Groups`).
    pub users_endpoint: String,
    pub groups_endpoint: String,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            patch: false,
            bulk: false,
            filter: false,
            filter_max_results: None,
            change_password: false,
            sort: false,
            etag: false,
            auth_schemes: Vec::new(),
            documentation_uri: None,
            enterprise_user: false,
            users_endpoint: "/Users".into(),
            groups_endpoint: "/Groups".into(),
        }
    }
}

impl Capabilities {
    /// Read a ServiceProviderConfig body. A feature block that is missing, or whose
    /// `supported` is not `true`, counts as unsupported: assuming less is always safe.
    pub fn from_service_provider_config(v: &Value) -> std::result::Result<Self, String> {
        let obj = v.as_object().ok_or("the body is not a JSON object")?;
        let has_schema = obj
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s.as_str() == Some(SCHEMA_SERVICE_PROVIDER_CONFIG))
            });
        let features = ["patch", "bulk", "filter", "changePassword", "sort", "etag"];
        if !has_schema && !features.iter().any(|f| obj.contains_key(*f)) {
            return Err(format!(
                "it has neither the {SCHEMA_SERVICE_PROVIDER_CONFIG} schema nor any feature block"
            ));
        }
        let supported = |name: &str| {
            obj.get(name)
                .and_then(|f| f.get("supported"))
                .is_some_and(lenient_bool_true)
        };
        let filter_max_results = obj
            .get("filter")
            .and_then(|f| f.get("maxResults"))
            .and_then(lenient_u64)
            .filter(|n| *n > 0)
            .map(|n| n.min(u32::MAX as u64) as u32);
        let auth_schemes = obj
            .get("authenticationSchemes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("type").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Capabilities {
            patch: supported("patch"),
            bulk: supported("bulk"),
            filter: supported("filter"),
            filter_max_results,
            change_password: supported("changePassword"),
            sort: supported("sort"),
            etag: supported("etag"),
            auth_schemes,
            documentation_uri: obj
                .get("documentationUri")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Capabilities::default()
        })
    }

    /// Fill in endpoints and the enterprise extension from a /ResourceTypes ListResponse.
    pub fn apply_resource_types(&mut self, v: &Value) {
        let Some(types) = v.get("Resources").and_then(Value::as_array) else {
            return;
        };
        for t in types {
            let name = t
                .get("name")
                .or_else(|| t.get("id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let endpoint = t
                .get("endpoint")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty());
            let schema = t.get("schema").and_then(Value::as_str).unwrap_or("");
            if name.eq_ignore_ascii_case("User") || schema == SCHEMA_USER {
                if let Some(e) = endpoint {
                    self.users_endpoint = normalize_endpoint(e);
                }
                self.enterprise_user = t
                    .get("schemaExtensions")
                    .and_then(Value::as_array)
                    .is_some_and(|exts| {
                        exts.iter().any(|x| {
                            x.get("schema").and_then(Value::as_str) == Some(SCHEMA_ENTERPRISE_USER)
                        })
                    });
            } else if (name.eq_ignore_ascii_case("Group") || schema == SCHEMA_GROUP)
                && let Some(e) = endpoint
            {
                self.groups_endpoint = normalize_endpoint(e);
            }
        }
    }

    /// The advertised features, as the identity's scopes.
    pub fn features(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.patch {
            out.push("patch".to_string());
        }
        if self.filter {
            out.push(match self.filter_max_results {
                Some(n) => format!("filter(maxResults={n})"),
                None => "filter".to_string(),
            });
        }
        for (on, name) in [
            (self.sort, "sort"),
            (self.etag, "etag"),
            (self.bulk, "bulk"),
            (self.change_password, "changePassword"),
            (self.enterprise_user, "enterpriseUser"),
        ] {
            if on {
                out.push(name.to_string());
            }
        }
        out
    }
}

/// `/Users` stays relative to the base URL; a full URL is kept as is (same host only).
fn normalize_endpoint(e: &str) -> String {
    if e.starts_with("http://") || e.starts_with("https://") || e.starts_with('/') {
        e.trim_end_matches('/').to_string()
    } else {
        format!("/{}", e.trim_end_matches('/'))
    }
}

fn lenient_bool_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/// `[systems.NAME.settings]` for a scim system.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScimSettings {
    /// Resources per page (capped by `filter.maxResults`), 1 to 1000. None: the
    /// provider's `filter.maxResults` (at most 10,000), or 100 where it advertises none.
    #[serde(deserialize_with = "settings::optional_in::<_, 1, MAX_PAGE_SIZE>")]
    pub page_size: Option<u32>,
    /// Use PATCH when advertised (false: always GET + PUT).
    pub use_patch: bool,
    /// Use filters when advertised (false: always scan).
    pub use_filter: bool,
    /// Send If-Match when ETags are advertised.
    pub use_etag: bool,
    /// `sortBy` for paged listings when sorting is advertised (default `meta.created`);
    /// `""`: the provider's order.
    #[serde(deserialize_with = "settings::non_empty")]
    pub sort_by: Option<String>,
    /// Force the enterprise extension on or off; None: as /ResourceTypes says.
    pub enterprise_extension: Option<bool>,
}

impl Default for ScimSettings {
    fn default() -> Self {
        ScimSettings {
            page_size: None,
            use_patch: true,
            use_filter: true,
            use_etag: true,
            sort_by: Some("meta.created".into()),
            enterprise_extension: None,
        }
    }
}

impl ScimSettings {
    pub fn from_entry(entry: &SystemEntry) -> Result<Self> {
        settings::parse(entry)
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The parts of a SCIM error body (RFC 7644 §3.12) we use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimErrorBody {
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// `status` as the body states it (a string per the RFC; some providers send a number).
    pub status: Option<u16>,
}

/// Read a SCIM error body; also takes the `detail`/`message` of non-SCIM JSON errors
/// (gateways, the fault proxy). None when the body is not a JSON object.
pub fn parse_error_body(body: &[u8]) -> Option<ScimErrorBody> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(ScimErrorBody {
        scim_type: text("scimType"),
        detail: text("detail")
            .or_else(|| text("message"))
            .or_else(|| text("error_description"))
            .or_else(|| text("error")),
        status: obj
            .get("status")
            .and_then(lenient_u64)
            .and_then(|n| u16::try_from(n).ok()),
    })
}

fn looks_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .copied()
        .collect::<Vec<u8>>()
        .to_ascii_lowercase();
    head.windows(5).any(|w| w == b"<html" || w == b"<!doc")
}

/// Classify a non-2xx SCIM response.
///
/// 401 Unauthorized; 403 Permanent (the token works but may not do this); 404 NotFound;
/// 409 Conflict (`uniqueness`); 412 Permanent with code `preconditionFailed` (the adapter
/// re-reads and retries once, then reports Transient; see the module docs); 429 RateLimited
/// with Retry-After; 501 Permanent (`notImplemented`: the provider lacks the operation);
/// other 5xx Transient; 400 and other 4xx Permanent with `scimType` as the vendor code.
pub fn classify_error(system: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> AdapterError {
    let parsed = parse_error_body(body);
    let detail = parsed
        .as_ref()
        .and_then(|p| p.detail.clone())
        .map(|d| redact_text(&d))
        .unwrap_or_default();
    let mut code = parsed.as_ref().and_then(|p| p.scim_type.clone());
    let mut message = if !detail.is_empty() {
        detail
    } else if looks_html(body) {
        "the response is an HTML page (a proxy or gateway answered instead of the SCIM API)".into()
    } else if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else if parsed.is_none() {
        "the error body is not a SCIM error (not JSON)".into()
    } else {
        String::new()
    };
    match status {
        403 => {
            message = format!(
                "the token is valid but not allowed to do this{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )
        }
        412 => {
            code.get_or_insert_with(|| "preconditionFailed".into());
        }
        501 => {
            code.get_or_insert_with(|| "notImplemented".into());
        }
        _ => {}
    }
    let mut e = classify_status(system, status, headers, body, code, message);
    if status == 501 {
        e.class = ErrorClass::Permanent;
    }
    e
}

/// The SCIM vendor profile: generic rate signals (429 + Retry-After), SCIM error bodies.
pub struct ScimProfile;

impl VendorProfile for ScimProfile {
    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_error(system, status, headers, body)
    }
}

/// A 2xx body that is not JSON: truncated (Transient, per the shared rule) unless it is an
/// HTML page, which on a 2xx means base_url points at a web page (Permanent).
fn unreadable(system: &str, resp: &HttpResponse, what: &str) -> AdapterError {
    let mut e = AdapterError::bad_response(system, resp.status, what, &resp.body);
    if (200..300).contains(&resp.status) && looks_html(&resp.body) {
        e.class = ErrorClass::Permanent;
        e.message
            .push_str("; is base_url the SCIM root (e.g. https://host/scim/v2)?");
    }
    e
}

/// JSON that parsed but is not what we asked for. Retrying will not change it.
fn wrong_shape(system: &str, resp: &HttpResponse, what: &str, problem: &str) -> AdapterError {
    AdapterError::new(
        ErrorClass::Permanent,
        system,
        format!("expected {what}, but {problem}"),
    )
    .with_status(resp.status)
    .with_excerpt(&resp.body)
}

/// Parse a body that must be one JSON object.
pub fn parse_object(system: &str, resp: &HttpResponse, what: &str) -> AResult<Map<String, Value>> {
    let v: Value =
        serde_json::from_slice(&resp.body).map_err(|_| unreadable(system, resp, what))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(wrong_shape(
            system,
            resp,
            what,
            "the body is not a JSON object",
        )),
    }
}

/// One page of a ListResponse (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub resources: Vec<Value>,
    pub total: Option<u64>,
}

pub fn parse_list(system: &str, resp: &HttpResponse, what: &str) -> AResult<ListPage> {
    let obj = parse_object(system, resp, what)?;
    let total = obj.get("totalResults").and_then(lenient_u64);
    let resources = match obj.get("Resources") {
        Some(Value::Array(a)) => a.clone(),
        // RFC 7644: Resources is REQUIRED only when totalResults is not zero.
        None | Some(Value::Null) if total.is_some() => Vec::new(),
        None | Some(Value::Null) => {
            return Err(wrong_shape(
                system,
                resp,
                what,
                "it is not a ListResponse (no totalResults, no Resources)",
            ));
        }
        Some(_) => {
            return Err(wrong_shape(
                system,
                resp,
                what,
                "\"Resources\" is not a list",
            ));
        }
    };
    if let Some(bad) = resources.iter().position(|r| !r.is_object()) {
        return Err(wrong_shape(
            system,
            resp,
            what,
            &format!("Resources[{bad}] is not an object"),
        ));
    }
    Ok(ListPage { resources, total })
}

/// The next startIndex: from totalResults, or (when a provider omits it) from a full page.
fn next_start(start: u64, requested: u32, items: usize, total: Option<u64>) -> Option<u64> {
    match total {
        Some(t) => scim_next_start(start, items as u64, t),
        None => (items > 0 && items as u64 >= requested as u64).then_some(start + items as u64),
    }
}

// ---------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------

fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A SCIM User as a [`RemoteAccount`]; Err names what is missing. `attributes` holds the
/// core attributes the adapter writes; see [`account_from_user_with`].
pub fn account_from_user(v: &Value) -> std::result::Result<RemoteAccount, String> {
    account_from_user_with(v, false)
}

/// A SCIM User as a [`RemoteAccount`], its synced attributes read as the adapter writes
/// them: `enterprise` adds department and costCenter from the enterprise extension.
pub fn account_from_user_with(
    v: &Value,
    enterprise: bool,
) -> std::result::Result<RemoteAccount, String> {
    let mut a = account_core(v)?;
    let text = |x: Option<&Value>| match x {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let name = v.get("name");
    let attrs = &mut a.attributes;
    attrs.insert("email".into(), a.email.clone().unwrap_or_default());
    attrs.insert(
        "givenName".into(),
        text(name.and_then(|n| n.get("givenName"))),
    );
    attrs.insert(
        "familyName".into(),
        text(name.and_then(|n| n.get("familyName"))),
    );
    attrs.insert("displayName".into(), text(v.get("displayName")));
    attrs.insert("title".into(), text(v.get("title")));
    if enterprise {
        let ext = v.get(SCHEMA_ENTERPRISE_USER);
        for key in ["department", "costCenter"] {
            attrs.insert(key.into(), text(ext.and_then(|e| e.get(key))));
        }
    }
    Ok(a)
}

fn account_core(v: &Value) -> std::result::Result<RemoteAccount, String> {
    let external_id = id_of(v).ok_or("the user has no \"id\"")?;
    let login = v
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("user {external_id} has no \"userName\""))?
        .to_string();
    let active = match v.get("active") {
        // RFC 7643 leaves the default to the provider; absent means nobody turned it off.
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(format!("user {external_id}: \"active\" is not a boolean")),
    };
    Ok(RemoteAccount {
        external_id,
        login,
        email: primary_email(v),
        active,
        // The HR id: externalId (which this adapter sets), else the enterprise extension's
        // employeeNumber (which it also sets, and which some providers keep instead).
        hris_id: v
            .get("externalId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                v.get(SCHEMA_ENTERPRISE_USER)
                    .and_then(|e| e.get("employeeNumber"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .map(str::to_string),
        attributes: BTreeMap::new(),
    })
}

/// The `attributes` a user read asks for: the ones [`account_from_user_with`] reads.
fn user_attributes(enterprise: bool) -> String {
    let mut s = USER_ATTRIBUTES.to_string();
    if enterprise {
        for a in ENTERPRISE_ATTRIBUTES {
            s.push_str(&format!(",{SCHEMA_ENTERPRISE_USER}:{a}"));
        }
    }
    s
}

/// The primary email, else the work email, else the first one.
fn primary_email(v: &Value) -> Option<String> {
    let emails = v.get("emails")?.as_array()?;
    let value = |e: &Value| e.get("value").and_then(Value::as_str).map(str::to_string);
    emails
        .iter()
        .find(|e| e.get("primary").is_some_and(lenient_bool_true))
        .and_then(value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
                .and_then(value)
        })
        .or_else(|| emails.iter().find_map(value))
}

/// Where one account field goes in a SCIM User.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Top(&'static str),
    Sub(&'static str, &'static str),
    Enterprise(&'static str),
}

impl Field {
    fn path(self) -> String {
        match self {
            Field::Top(a) => a.to_string(),
            Field::Sub(a, b) => format!("{a}.{b}"),
            Field::Enterprise(a) => format!("{SCHEMA_ENTERPRISE_USER}:{a}"),
        }
    }

    /// Set the field in a User object (creating `name` / the extension object as needed).
    fn set(self, user: &mut Map<String, Value>, value: Value) {
        let (parent, attr) = match self {
            Field::Top(a) => {
                user.insert(a.into(), value);
                return;
            }
            Field::Sub(parent, attr) => (parent, attr),
            Field::Enterprise(attr) => (SCHEMA_ENTERPRISE_USER, attr),
        };
        let slot = user
            .entry(parent.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(m) = slot.as_object_mut() {
            m.insert(attr.into(), value);
        }
    }
}

/// Every field `spec` sets (non-empty), where it goes, and its value. Create, PATCH and the
/// PUT fallback all use this one mapping. `location` has no core User attribute and is not
/// sent; `title` is core; `department`, `costCenter`, `employeeNumber` and `manager` need
/// the enterprise extension.
fn spec_fields(spec: &AccountSpec, enterprise: bool) -> Vec<(Field, Value)> {
    let mut out = Vec::new();
    let mut put = |f: Field, v: &str| {
        if !v.trim().is_empty() {
            out.push((f, Value::String(v.to_string())));
        }
    };
    put(Field::Top("userName"), &spec.login);
    put(Field::Top("externalId"), &spec.hris_id);
    put(Field::Sub("name", "givenName"), &spec.given_name);
    put(Field::Sub("name", "familyName"), &spec.family_name);
    put(Field::Top("displayName"), &spec.display_name);
    if let Some(t) = spec.attributes.get("title") {
        put(Field::Top("title"), t);
    }
    if enterprise {
        // The HR id goes in employeeNumber too: some providers do not keep externalId.
        put(Field::Enterprise("employeeNumber"), &spec.hris_id);
        for (key, attr) in [("department", "department"), ("costCenter", "costCenter")] {
            if let Some(v) = spec.attributes.get(key) {
                put(Field::Enterprise(attr), v);
            }
        }
        // RFC 7643 §4.3: `manager.value` is the manager's id in this provider; left out
        // where their account here is not known.
        if let Some(m) = spec
            .manager_account
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            out.push((Field::Enterprise("manager"), json!({ "value": m })));
        }
    }
    if !spec.email.trim().is_empty() {
        // The work email is the primary one; replacing `emails` drops other addresses, which
        // accessdesk does not manage.
        out.push((
            Field::Top("emails"),
            json!([{"value": spec.email, "type": "work", "primary": true}]),
        ));
    }
    out
}

/// Apply fields to a User object, adding the extension schema when an extension field is set.
fn apply_fields(user: &mut Map<String, Value>, fields: Vec<(Field, Value)>) {
    let mut needs_ext = false;
    for (f, v) in fields {
        needs_ext |= matches!(f, Field::Enterprise(_));
        f.set(user, v);
    }
    let schemas = user
        .entry("schemas")
        .or_insert_with(|| json!([SCHEMA_USER]));
    if let Some(list) = schemas.as_array_mut() {
        if !list.iter().any(|s| s.as_str() == Some(SCHEMA_USER)) {
            list.insert(0, json!(SCHEMA_USER));
        }
        if needs_ext
            && !list
                .iter()
                .any(|s| s.as_str() == Some(SCHEMA_ENTERPRISE_USER))
        {
            list.push(json!(SCHEMA_ENTERPRISE_USER));
        }
    }
}

/// The body of POST /Users.
pub fn create_body(spec: &AccountSpec, enterprise: bool) -> Value {
    let mut user = Map::new();
    user.insert("schemas".into(), json!([SCHEMA_USER]));
    apply_fields(&mut user, spec_fields(spec, enterprise));
    user.insert("active".into(), Value::Bool(true));
    Value::Object(user)
}

/// PATCH `replace` operations for the fields `spec` sets.
pub fn update_ops(spec: &AccountSpec, enterprise: bool) -> Vec<Value> {
    spec_fields(spec, enterprise)
        .into_iter()
        .map(|(f, v)| json!({"op": "replace", "path": f.path(), "value": v}))
        .collect()
}

fn patch_body(ops: Vec<Value>) -> Value {
    json!({"schemas": [SCHEMA_PATCH_OP], "Operations": ops})
}

/// A SCIM filter string literal: a JSON string (RFC 7644 §3.4.2.2 compValue), so quotes,
/// backslashes and control characters are escaped.
pub fn filter_string(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

/// `attr eq "value"`, escaped.
pub fn filter_eq(attr: &str, value: &str) -> String {
    format!("{attr} eq {}", filter_string(value))
}

/// Percent-encode everything but RFC 3986 unreserved characters (spaces as %20, not '+').
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

/// The entity tag to send in If-Match: the ETag header, else `meta.version` (quoted if bare).
fn version_of(resp: &HttpResponse, resource: &Map<String, Value>) -> Option<String> {
    if let Some(e) = resp.header("etag").map(str::trim).filter(|e| !e.is_empty()) {
        return Some(e.to_string());
    }
    let v = resource
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())?;
    Some(if v.ends_with('"') {
        v.to_string()
    } else {
        format!("\"{v}\"")
    })
}

/// A filter the provider would not run (the attribute or operator is not supported even
/// though filtering is): fall back to a scan.
fn filter_rejected(e: &AdapterError) -> bool {
    e.status == Some(501)
        || (e.status == Some(400) && e.vendor_code.as_deref() == Some("invalidFilter"))
}

fn sort_rejected(e: &AdapterError) -> bool {
    e.status == Some(501)
        || (e.status == Some(400)
            && matches!(
                e.vendor_code.as_deref(),
                Some("invalidPath" | "invalidValue" | "invalidSyntax" | "invalidFilter") | None
            ))
}

/// The provider refused a write made with If-Match because the resource changed.
fn version_mismatch(e: &AdapterError, sent_if_match: bool) -> bool {
    e.status == Some(412)
        || (sent_if_match
            && e.status == Some(409)
            && e.vendor_code.as_deref() != Some("uniqueness"))
}

fn member_values(group: &Value) -> std::result::Result<Vec<(String, bool)>, String> {
    match group.get("members") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(|m| {
                let v = m.get("value").and_then(Value::as_str)?;
                let is_group = m
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("group"));
                Some((v.to_string(), is_group))
            })
            .collect()),
        Some(_) => Err("\"members\" is not a list".into()),
    }
}

/// Add or remove one member in a Group object. Ok(false): nothing to change.
fn edit_members(
    group: &mut Map<String, Value>,
    user_id: &str,
    add: bool,
) -> std::result::Result<bool, String> {
    let present = member_values(&Value::Object(group.clone()))?
        .iter()
        .any(|(v, _)| v == user_id);
    if add == present {
        return Ok(false);
    }
    let members = group
        .entry("members")
        .or_insert_with(|| Value::Array(Vec::new()));
    if members.is_null() {
        *members = Value::Array(Vec::new());
    }
    let list = members.as_array_mut().ok_or("\"members\" is not a list")?;
    if add {
        list.push(json!({"value": user_id}));
    } else {
        list.retain(|m| m.get("value").and_then(Value::as_str) != Some(user_id));
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------------------

pub struct ScimAdapter {
    system: String,
    /// Scheme, host, port and path of base_url (no userinfo, no query).
    base_display: String,
    host: String,
    http: HttpClient,
    settings: ScimSettings,
    caps: tokio::sync::Mutex<Option<Arc<Capabilities>>>,
    /// Group displayName -> id.
    groups: crate::adapters::NameCache,
    /// The provider advertised sorting but refused our sortBy once: stop sending it.
    sort_refused: AtomicBool,
}

impl std::fmt::Debug for ScimAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimAdapter")
            .field("system", &self.system)
            .field("base_url", &self.base_display)
            .field("credential", &self.http.auth_source())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(ScimAdapter::new(&ctx)?))
}

/// What a membership edit should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberEdit {
    Add,
    Remove,
}

impl ScimAdapter {
    pub fn new(ctx: &AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        ctx.require_api_version(SCIM_VERSION, "SCIM")?;
        let settings = ScimSettings::from_entry(ctx.entry)?;
        let base_url = ctx.base_url()?.trim_end_matches('/').to_string();
        let cred = ctx.credential()?.clone();
        let secret = ctx.secret()?;
        let auth = HeaderAuth {
            scheme: "Bearer",
            secret,
            source: cred.to_string(),
        };
        let http = HttpClient::new(
            &name,
            &base_url,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(auth),
            Arc::new(ScimProfile),
        )
        .map_err(|e| {
            Error::usage(
                e.message,
                format!(
                    "set base_url in [systems.{name}] to the SCIM root, e.g. https://host/scim/v2"
                ),
            )
        })?;
        let u = http.base().clone();
        let host = match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        };
        let base_display = format!(
            "{}://{}{}",
            u.scheme(),
            host,
            u.path().trim_end_matches('/')
        );
        Ok(ScimAdapter {
            system: name,
            base_display,
            host,
            http,
            settings,
            caps: tokio::sync::Mutex::new(None),
            groups: Default::default(),
            sort_refused: AtomicBool::new(false),
        })
    }

    /// Replace the retry policy (tests use short caps).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.http.retry = retry;
        self
    }

    pub fn settings(&self) -> &ScimSettings {
        &self.settings
    }

    /// The provider's capabilities, read once and cached.
    pub async fn capabilities(&self) -> AResult<Arc<Capabilities>> {
        let mut slot = self.caps.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = Arc::new(self.discover().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Read the capabilities again (authenticate does this).
    pub async fn refresh_capabilities(&self) -> AResult<Arc<Capabilities>> {
        let mut slot = self.caps.lock().await;
        let c = Arc::new(self.discover().await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn discover(&self) -> AResult<Capabilities> {
        let resp = self
            .http
            .send(get("/ServiceProviderConfig"))
            .await
            .map_err(|mut e| {
                if e.class == ErrorClass::NotFound {
                    e.class = ErrorClass::Permanent;
                    e.message = format!(
                        "{}: no /ServiceProviderConfig under {}; is base_url the SCIM root (e.g. https://host/scim/v2)?",
                        e.message, self.base_display
                    );
                }
                e
            })?;
        let what = "a SCIM ServiceProviderConfig";
        let obj = parse_object(&self.system, &resp, what)?;
        let mut caps = Capabilities::from_service_provider_config(&Value::Object(obj))
            .map_err(|p| wrong_shape(&self.system, &resp, what, &p))?;
        match self.http.send(get("/ResourceTypes")).await {
            Ok(r) => match serde_json::from_slice::<Value>(&r.body) {
                Ok(v) => caps.apply_resource_types(&v),
                Err(_) => {
                    tracing::warn!(system = %self.system, "unreadable /ResourceTypes; assuming /Users and /Groups without extensions")
                }
            },
            Err(e) if matches!(e.class, ErrorClass::NotFound | ErrorClass::Permanent) => {
                // Optional discovery endpoint: try the enterprise schema directly.
                let path = format!("/Schemas/{SCHEMA_ENTERPRISE_USER}");
                caps.enterprise_user = self.http.send(get(&path)).await.is_ok();
            }
            Err(e) => return Err(e),
        }
        if let Some(force) = self.settings.enterprise_extension {
            caps.enterprise_user = force;
        }
        Ok(caps)
    }

    fn patch_enabled(&self, c: &Capabilities) -> bool {
        c.patch && self.settings.use_patch
    }

    fn filter_enabled(&self, c: &Capabilities) -> bool {
        c.filter && self.settings.use_filter
    }

    fn etag_enabled(&self, c: &Capabilities) -> bool {
        c.etag && self.settings.use_etag
    }

    fn page_size(&self, c: &Capabilities) -> u32 {
        match self.settings.page_size {
            Some(n) => n.min(c.filter_max_results.unwrap_or(MAX_PAGE_SIZE)),
            None => c
                .filter_max_results
                .unwrap_or(DEFAULT_PAGE_SIZE)
                .min(MAX_DEFAULT_PAGE_SIZE),
        }
        .max(1)
    }

    fn user_path(c: &Capabilities, id: &str) -> String {
        format!("{}/{}", c.users_endpoint, percent_encode(id))
    }

    fn group_path(c: &Capabilities, id: &str) -> String {
        format!("{}/{}", c.groups_endpoint, percent_encode(id))
    }

    // -- listing ---------------------------------------------------------------------

    /// One page of a collection, sorted when the provider supports it.
    async fn list_page(
        &self,
        c: &Capabilities,
        endpoint: &str,
        params: &[(&str, String)],
        start: u64,
        count: u32,
        what: &str,
    ) -> AResult<(Vec<Value>, Option<u64>)> {
        loop {
            let mut q: Vec<(&str, String)> = params.to_vec();
            q.push(("startIndex", start.to_string()));
            q.push(("count", count.to_string()));
            let sorted = match &self.settings.sort_by {
                Some(by) if c.sort && !self.sort_refused.load(Ordering::Relaxed) => {
                    q.push(("sortBy", by.clone()));
                    q.push(("sortOrder", "ascending".into()));
                    true
                }
                _ => false,
            };
            let resp = match self.http.send(get(&with_query(endpoint, &q))).await {
                Err(e) if sorted && sort_rejected(&e) => {
                    tracing::warn!(system = %self.system, error = %e, "the provider refused sortBy; listing in provider order");
                    self.sort_refused.store(true, Ordering::Relaxed);
                    continue;
                }
                r => r?,
            };
            let page = parse_list(&self.system, &resp, what)?;
            let next = next_start(start, count, page.resources.len(), page.total);
            return Ok((page.resources, next));
        }
    }

    /// Visit every resource of a (filtered) collection; `visit` returns true to stop.
    async fn scan(
        &self,
        c: &Capabilities,
        endpoint: &str,
        params: &[(&str, String)],
        what: &str,
        mut visit: impl FnMut(&Value) -> AResult<bool> + Send,
    ) -> AResult<()> {
        let count = self.page_size(c);
        let mut start = 1u64;
        let mut previous_first: Option<String> = None;
        for _ in 0..MAX_SCAN_PAGES {
            let (items, next) = self
                .list_page(c, endpoint, params, start, count, what)
                .await?;
            let first = items.first().and_then(id_of);
            if first.is_some() && first == previous_first {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!(
                        "{endpoint}: startIndex {start} returned the same page again; the provider ignores startIndex"
                    ),
                ));
            }
            previous_first = first;
            for item in &items {
                if visit(item)? {
                    return Ok(());
                }
            }
            match next {
                Some(n) if n > start => start = n,
                _ => return Ok(()),
            }
        }
        Err(AdapterError::new(
            ErrorClass::Permanent,
            &self.system,
            format!("{endpoint}: more than {MAX_SCAN_PAGES} pages; refusing to go on"),
        ))
    }

    fn account(&self, c: &Capabilities, resp: &HttpResponse, v: &Value) -> AResult<RemoteAccount> {
        account_from_user_with(v, c.enterprise_user)
            .map_err(|p| wrong_shape(&self.system, resp, "a SCIM User", &p))
    }

    async fn fetch_user(&self, c: &Capabilities, id: &str) -> AResult<Option<RemoteAccount>> {
        match self.http.send(get(&Self::user_path(c, id))).await {
            Ok(resp) => {
                let obj = parse_object(&self.system, &resp, "a SCIM User")?;
                Ok(Some(self.account(c, &resp, &Value::Object(obj))?))
            }
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Accounts for a set of user ids: `id eq .. or ..` filters where possible, then a GET
    /// for each id a filter did not return (a provider may cap a page below what we asked
    /// for). Ids that do not exist (dangling member references) are skipped.
    async fn users_by_ids(&self, c: &Capabilities, ids: &[String]) -> AResult<Vec<RemoteAccount>> {
        let mut found: HashMap<String, RemoteAccount> = HashMap::new();
        let mut use_filter = self.filter_enabled(c);
        let chunk_size = self.page_size(c).min(MAX_IDS_PER_FILTER) as usize;
        for chunk in ids.chunks(chunk_size) {
            if !use_filter {
                break;
            }
            let f = chunk
                .iter()
                .map(|id| filter_eq("id", id))
                .collect::<Vec<_>>()
                .join(" or ");
            let q = [
                ("filter", f),
                ("attributes", user_attributes(c.enterprise_user)),
                ("count", chunk.len().to_string()),
            ];
            match self
                .http
                .send(get(&with_query(&c.users_endpoint, &q)))
                .await
            {
                Ok(resp) => {
                    let page = parse_list(&self.system, &resp, "a ListResponse of users")?;
                    for r in &page.resources {
                        let a = self.account(c, &resp, r)?;
                        found.insert(a.external_id.clone(), a);
                    }
                }
                Err(e) if filter_rejected(&e) => {
                    tracing::debug!(system = %self.system, "id filter refused; reading members one by one");
                    use_filter = false;
                }
                Err(e) => return Err(e),
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let account = match found.remove(id) {
                Some(a) => Some(a),
                None => self.fetch_user(c, id).await?,
            };
            match account {
                Some(a) => out.push(a),
                None => {
                    tracing::warn!(system = %self.system, member = %id, "group member is not a user the provider knows; skipped")
                }
            }
        }
        Ok(out)
    }

    // -- writes ------------------------------------------------------------------------

    /// PATCH a resource. Returns the resource when the provider answers 200 with a body.
    async fn patch(&self, path: &str, ops: Vec<Value>) -> AResult<Option<Map<String, Value>>> {
        let req = Req::patch(path)
            .header(ACCEPT, ACCEPT_VALUE)
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .json(patch_body(ops));
        let resp = self.http.send(req).await?;
        if resp.status == 204 || resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse_object(&self.system, &resp, "the patched resource").map(Some)
    }

    /// Read, edit and PUT back a whole resource, with If-Match when ETags are supported.
    /// `edit` returns Ok(false) when nothing needs to change (then nothing is written).
    /// A version mismatch is retried once from a fresh read; a second one is Transient.
    async fn put_edit(
        &self,
        c: &Capabilities,
        path: &str,
        what: &str,
        edit: impl Fn(&mut Map<String, Value>) -> std::result::Result<bool, String> + Send + Sync,
    ) -> AResult<Map<String, Value>> {
        let use_etag = self.etag_enabled(c);
        let mut round = 0;
        loop {
            round += 1;
            let resp = self.http.send(get(path)).await?;
            let mut resource = parse_object(&self.system, &resp, what)?;
            let version = if use_etag {
                version_of(&resp, &resource)
            } else {
                None
            };
            let changed =
                edit(&mut resource).map_err(|p| wrong_shape(&self.system, &resp, what, &p))?;
            if !changed {
                return Ok(resource);
            }
            let mut body = resource.clone();
            // Read-only attributes are ignored by a PUT (RFC 7644 §3.5.1); some providers
            // refuse them instead, so they are not sent.
            body.remove("meta");
            body.remove("groups");
            let mut req = Req::put(path)
                .header(ACCEPT, ACCEPT_VALUE)
                .header(CONTENT_TYPE, MEDIA_TYPE)
                .json(Value::Object(body));
            if let Some(v) = &version {
                req = req.header(IF_MATCH, v.clone());
            }
            match self.http.send(req).await {
                Ok(r) if r.status == 204 || r.body.iter().all(u8::is_ascii_whitespace) => {
                    return Ok(resource);
                }
                Ok(r) => return parse_object(&self.system, &r, what),
                Err(e) if version_mismatch(&e, version.is_some()) => {
                    if round >= 2 {
                        let mut e = e;
                        e.class = ErrorClass::Transient;
                        e.message = format!(
                            "{what} changed on the server between our read and our write, twice in a row; try again later ({})",
                            e.message
                        );
                        return Err(e);
                    }
                    tracing::debug!(system = %self.system, "version mismatch on PUT; re-reading once");
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn set_active(&self, id: &str, active: bool) -> AResult<()> {
        let c = self.capabilities().await?;
        let path = Self::user_path(&c, id);
        if self.patch_enabled(&c) {
            self.patch(
                &path,
                vec![json!({"op": "replace", "path": "active", "value": active})],
            )
            .await?;
        } else {
            self.put_edit(&c, &path, "a SCIM User", |u| {
                let now = u.get("active").map(lenient_bool_true).unwrap_or(true);
                if now == active && u.contains_key("active") {
                    return Ok(false);
                }
                u.insert("active".into(), Value::Bool(active));
                Ok(true)
            })
            .await?;
        }
        Ok(())
    }

    // -- groups ------------------------------------------------------------------------

    /// The group id for an entitlement, and whether it came from name resolution (and so may
    /// be stale).
    async fn group_id(
        &self,
        c: &Capabilities,
        target: &EntitlementTarget,
    ) -> AResult<(String, bool)> {
        if target.kind != EntitlementKind::Group {
            return Err(AdapterError::unsupported(
                &self.system,
                &format!("{} entitlements (SCIM has groups only)", target.kind),
            ));
        }
        if !target.external_id.is_empty() && target.external_id != target.name {
            return Ok((target.external_id.clone(), false));
        }
        if let Some(id) = self.cached_group(&target.name) {
            return Ok((id, true));
        }
        let mut matches: Vec<(String, String)> = Vec::new();
        let mut scanned = false;
        if self.filter_enabled(c) {
            let q = [
                ("filter", filter_eq("displayName", &target.name)),
                ("attributes", "displayName".to_string()),
            ];
            let res = self
                .scan(c, &c.groups_endpoint, &q, "a ListResponse of groups", |g| {
                    if let (Some(id), Some(n)) =
                        (id_of(g), g.get("displayName").and_then(Value::as_str))
                    {
                        matches.push((id, n.to_string()));
                    }
                    Ok(false)
                })
                .await;
            match res {
                Ok(()) => {}
                Err(e) if filter_rejected(&e) => scanned = true,
                Err(e) => return Err(e),
            }
        } else {
            scanned = true;
        }
        if scanned {
            matches.clear();
            let mut all: Vec<(String, String)> = Vec::new();
            let q = [("attributes", "displayName".to_string())];
            self.scan(c, &c.groups_endpoint, &q, "a ListResponse of groups", |g| {
                if let (Some(id), Some(n)) =
                    (id_of(g), g.get("displayName").and_then(Value::as_str))
                {
                    all.push((id, n.to_string()));
                }
                Ok(false)
            })
            .await?;
            self.groups
                .remember(all.iter().map(|(id, n)| (n.as_str(), id.as_str())));
            matches = all
                .into_iter()
                .filter(|(_, n)| n.eq_ignore_ascii_case(&target.name))
                .collect();
        }
        // displayName is case-insensitive in RFC 7643; prefer the exact spelling.
        let exact: Vec<&(String, String)> =
            matches.iter().filter(|(_, n)| *n == target.name).collect();
        let id = match (exact.len(), matches.len()) {
            (1, _) => exact[0].0.clone(),
            (0, 1) => matches[0].0.clone(),
            (_, 0) => {
                return Err(AdapterError::new(
                    ErrorClass::NotFound,
                    &self.system,
                    format!("no group named {:?} in {}", target.name, self.system),
                ));
            }
            _ => {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!(
                        "{} groups are named {:?}; set external_id on the entitlement to the group id",
                        matches.len(),
                        target.name
                    ),
                ));
            }
        };
        self.groups.insert(&target.name, &id);
        Ok((id, true))
    }

    fn cached_group(&self, name: &str) -> Option<String> {
        self.groups.get(name)
    }

    fn forget_group(&self, name: &str) {
        self.groups.forget(name);
    }

    async fn edit_membership(
        &self,
        c: &Capabilities,
        group_id: &str,
        user_id: &str,
        edit: MemberEdit,
    ) -> AResult<()> {
        let path = Self::group_path(c, group_id);
        if self.patch_enabled(c) {
            let op = match edit {
                MemberEdit::Add => {
                    json!({"op": "add", "path": "members", "value": [{"value": user_id}]})
                }
                MemberEdit::Remove => json!({
                    "op": "remove",
                    "path": format!("members[value eq {}]", filter_string(user_id)),
                }),
            };
            return match self.patch(&path, vec![op]).await {
                Ok(_) => Ok(()),
                // Already a member.
                Err(e) if edit == MemberEdit::Add && e.class == ErrorClass::Conflict => Ok(()),
                // Not a member: the filter matched nothing (RFC 7644 §3.5.2.2).
                Err(e)
                    if edit == MemberEdit::Remove
                        && e.status == Some(400)
                        && e.vendor_code.as_deref() == Some("noTarget") =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        self.put_edit(c, &path, "a SCIM Group", |g| {
            edit_members(g, user_id, edit == MemberEdit::Add)
        })
        .await
        .map(|_| ())
    }

    async fn membership(
        &self,
        account_id: &str,
        target: &EntitlementTarget,
        edit: MemberEdit,
    ) -> AResult<()> {
        let c = self.capabilities().await?;
        let (gid, resolved) = self.group_id(&c, target).await?;
        match self.edit_membership(&c, &gid, account_id, edit).await {
            // The cached id may belong to a group that was deleted and re-created.
            Err(e) if e.class == ErrorClass::NotFound && resolved => {
                self.forget_group(&target.name);
                let (gid, _) = self.group_id(&c, target).await?;
                self.edit_membership(&c, &gid, account_id, edit).await
            }
            r => r,
        }
    }

    async fn whoami(&self) -> std::result::Result<String, String> {
        match self.http.send(get("/Me")).await {
            Ok(resp) => {
                let v: Value = serde_json::from_slice(&resp.body)
                    .map_err(|_| "/Me answered with a body that is not JSON".to_string())?;
                v.get("userName")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| "/Me has no userName".to_string())
            }
            Err(e) => Err(format!(
                "/Me answered {}",
                e.status
                    .map(|s| format!("HTTP {s}"))
                    .unwrap_or_else(|| e.class.name().to_string())
            )),
        }
    }
}

fn get(path: &str) -> Req {
    Req::get(path).header(ACCEPT, ACCEPT_VALUE)
}

#[async_trait]
impl Adapter for ScimAdapter {
    fn limiter(&self) -> Option<std::sync::Arc<crate::adapters::http::RateLimiter>> {
        Some(self.http.limiter.clone())
    }

    fn system(&self) -> &str {
        &self.system
    }

    fn api_version(&self) -> &str {
        SCIM_VERSION
    }

    async fn authenticate(&self) -> AResult<Identity> {
        let c = self.refresh_capabilities().await?;
        // /ServiceProviderConfig may be public (RFC 7644 §4): prove the token on /Users.
        let q = [
            ("startIndex", "1".to_string()),
            ("count", "1".to_string()),
            ("attributes", "userName".to_string()),
        ];
        let resp = self
            .http
            .send(get(&with_query(&c.users_endpoint, &q)))
            .await?;
        let users = parse_list(&self.system, &resp, "a ListResponse of users")?;
        let me = self.whoami().await;
        let mut details = BTreeMap::new();
        details.insert("scim_version".into(), SCIM_VERSION.to_string());
        details.insert("base_url".into(), self.base_display.clone());
        details.insert("credential".into(), self.http.auth_source());
        if !c.auth_schemes.is_empty() {
            details.insert("auth_schemes".into(), c.auth_schemes.join(", "));
        }
        if let Some(t) = users.total {
            details.insert("users".into(), t.to_string());
        }
        details.insert(
            "writes".into(),
            match (self.patch_enabled(&c), self.etag_enabled(&c)) {
                (true, _) => "PATCH".into(),
                (false, true) => "GET + PUT with If-Match".into(),
                (false, false) => "GET + PUT".into(),
            },
        );
        details.insert(
            "lookups".into(),
            if self.filter_enabled(&c) {
                "filter".into()
            } else {
                "paged scan, matched client-side".into()
            },
        );
        details.insert("page_size".into(), self.page_size(&c).to_string());
        details.insert(
            "listing_order".into(),
            match &self.settings.sort_by {
                Some(by) if c.sort => format!("sortBy={by}"),
                _ => "provider order".into(),
            },
        );
        details.insert(
            "enterprise_extension".into(),
            if c.enterprise_user { "yes" } else { "no" }.into(),
        );
        if let Some(d) = &c.documentation_uri {
            details.insert("documentation".into(), d.clone());
        }
        let principal = match &me {
            Ok(user) => {
                details.insert("identity".into(), "/Me".into());
                user.clone()
            }
            Err(why) => {
                details.insert(
                    "identity".into(),
                    format!("not knowable over SCIM ({why}); principal is the provider host"),
                );
                self.host.clone()
            }
        };
        Ok(Identity {
            principal,
            scopes: c.features(),
            details,
        })
    }

    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let c = self.capabilities().await?;
        let req = Req::post(c.users_endpoint.clone())
            .header(ACCEPT, ACCEPT_VALUE)
            .header(CONTENT_TYPE, MEDIA_TYPE)
            .json(create_body(spec, c.enterprise_user));
        let resp = self.http.send(req).await.map_err(|mut e| {
            if e.class == ErrorClass::Conflict {
                e.message = format!("userName {:?} already exists: {}", spec.login, e.message);
            }
            e
        })?;
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            // A 201 without a body (not RFC-compliant): read it back.
            return self
                .get_account_by_login(&spec.login)
                .await?
                .ok_or_else(|| {
                    AdapterError::new(
                        ErrorClass::Transient,
                        &self.system,
                        format!("created {:?} but cannot read it back yet", spec.login),
                    )
                    .with_status(resp.status)
                });
        }
        let obj = parse_object(&self.system, &resp, "the created SCIM User")?;
        self.account(&c, &resp, &Value::Object(obj))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let c = self.capabilities().await?;
        let path = Self::user_path(&c, external_id);
        let fields = spec_fields(spec, c.enterprise_user);
        let uniqueness = |mut e: AdapterError| {
            if e.class == ErrorClass::Conflict {
                e.class = ErrorClass::Permanent;
                e.message = format!(
                    "cannot rename to userName {:?}: another account has it ({})",
                    spec.login, e.message
                );
            }
            e
        };
        if fields.is_empty() {
            return self.fetch_user(&c, external_id).await?.ok_or_else(|| {
                AdapterError::new(
                    ErrorClass::NotFound,
                    &self.system,
                    format!("no user {external_id}"),
                )
            });
        }
        if self.patch_enabled(&c) {
            let ops = update_ops(spec, c.enterprise_user);
            if let Some(obj) = self.patch(&path, ops).await.map_err(uniqueness)? {
                // Some providers answer 200 with the resource; use it if it is one.
                if let Ok(a) = account_from_user_with(&Value::Object(obj), c.enterprise_user) {
                    return Ok(a);
                }
            }
            return self.fetch_user(&c, external_id).await?.ok_or_else(|| {
                AdapterError::new(
                    ErrorClass::NotFound,
                    &self.system,
                    format!("no user {external_id}"),
                )
            });
        }
        let obj = self
            .put_edit(&c, &path, "a SCIM User", |u| {
                apply_fields(u, fields.clone());
                Ok(true)
            })
            .await
            .map_err(uniqueness)?;
        account_from_user_with(&Value::Object(obj), c.enterprise_user).map_err(|p| {
            AdapterError::new(
                ErrorClass::Permanent,
                &self.system,
                format!("expected a SCIM User, but {p}"),
            )
        })
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_active(external_id, false).await
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_active(external_id, true).await
    }

    /// `DELETE /Users/{id}` (RFC 7644 §3.6); 404 means it is already gone.
    async fn delete_account(&self, external_id: &str) -> AResult<()> {
        let c = self.capabilities().await?;
        let path = Self::user_path(&c, external_id);
        match self
            .http
            .send(Req::delete(path).header(ACCEPT, ACCEPT_VALUE))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        let c = self.capabilities().await?;
        let mut found: Vec<RemoteAccount> = Vec::new();
        let mut scan_all = !self.filter_enabled(&c);
        if !scan_all {
            let q = [
                ("filter", filter_eq("userName", login)),
                ("attributes", user_attributes(c.enterprise_user)),
            ];
            let path = with_query(&c.users_endpoint, &q);
            match self.http.send(get(&path)).await {
                Ok(resp) => {
                    let page = parse_list(&self.system, &resp, "a ListResponse of users")?;
                    for r in &page.resources {
                        found.push(self.account(&c, &resp, r)?);
                    }
                }
                Err(e) if filter_rejected(&e) => scan_all = true,
                Err(e) => return Err(e),
            }
        }
        if scan_all {
            let q = [("attributes", user_attributes(c.enterprise_user))];
            let mut bad: Option<String> = None;
            self.scan(&c, &c.users_endpoint, &q, "a ListResponse of users", |u| {
                // userName is case-insensitive (RFC 7643 §4.1.1).
                if u.get("userName")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.eq_ignore_ascii_case(login))
                {
                    match account_from_user_with(u, c.enterprise_user) {
                        Ok(a) => found.push(a),
                        Err(p) => bad = Some(p),
                    }
                }
                Ok(false)
            })
            .await?;
            if let Some(p) = bad {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!("expected a SCIM User, but {p}"),
                ));
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            n => {
                let exact: Vec<RemoteAccount> =
                    found.iter().filter(|a| a.login == login).cloned().collect();
                if exact.len() == 1 {
                    return Ok(exact.into_iter().next());
                }
                Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!("{n} accounts match userName {login:?}"),
                ))
            }
        }
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        let c = self.capabilities().await?;
        self.fetch_user(&c, external_id).await
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.membership(account_id, target, MemberEdit::Add).await
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        self.membership(account_id, target, MemberEdit::Remove)
            .await
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let c = self.capabilities().await?;
        let mut out: Vec<RemoteMembership> = Vec::new();
        let to_membership = |g: &Value| -> Option<RemoteMembership> {
            Some(RemoteMembership {
                kind: EntitlementKind::Group,
                name: g.get("displayName").and_then(Value::as_str)?.to_string(),
                external_id: id_of(g)?,
            })
        };
        let mut scan_all = !self.filter_enabled(&c);
        if !scan_all {
            let q = [
                ("filter", filter_eq("members.value", account_id)),
                ("attributes", "displayName".to_string()),
            ];
            let res = self
                .scan(
                    &c,
                    &c.groups_endpoint,
                    &q,
                    "a ListResponse of groups",
                    |g| {
                        if let Some(m) = to_membership(g) {
                            out.push(m);
                        }
                        Ok(false)
                    },
                )
                .await;
            match res {
                Ok(()) => {}
                Err(e) if filter_rejected(&e) => scan_all = true,
                Err(e) => return Err(e),
            }
        }
        if scan_all {
            out.clear();
            let q = [("attributes", "displayName,members".to_string())];
            let mut bad: Option<String> = None;
            self.scan(
                &c,
                &c.groups_endpoint,
                &q,
                "a ListResponse of groups",
                |g| {
                    match member_values(g) {
                        Ok(ms) if ms.iter().any(|(v, _)| v == account_id) => {
                            if let Some(m) = to_membership(g) {
                                out.push(m);
                            }
                        }
                        Ok(_) => {}
                        Err(p) => bad = Some(p),
                    }
                    Ok(false)
                },
            )
            .await?;
            if let Some(p) = bad {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!("expected a SCIM Group, but {p}"),
                ));
            }
        }
        self.groups.remember(
            out.iter()
                .map(|m| (m.name.as_str(), m.external_id.as_str())),
        );
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.external_id.cmp(&b.external_id)));
        out.dedup();
        Ok(out)
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let c = self.capabilities().await?;
        let start = parse_cursor(&self.system, cursor.as_deref())?;
        let q = [("attributes", user_attributes(c.enterprise_user))];
        let count = self.page_size(&c);
        let (items, next) = self
            .list_page(
                &c,
                &c.users_endpoint,
                &q,
                start,
                count,
                "a ListResponse of users",
            )
            .await?;
        let mut accounts = Vec::with_capacity(items.len());
        for u in &items {
            accounts.push(account_from_user_with(u, c.enterprise_user).map_err(|p| {
                AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!("users page at startIndex {start}: {p}"),
                )
            })?);
        }
        Ok(Page {
            items: accounts,
            next: next.map(|n| n.to_string()),
        })
    }

    /// Members come from GET /Groups/{id} (`members` absent = empty), ordered by id; the
    /// cursor is the last member id returned, so members added or removed between pages do
    /// not shift the pages. A page holds as many members as a user listing page; its users
    /// are read with `id eq .. or ..` filters of at most 50 ids (URLs stay short).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let c = self.capabilities().await?;
        let (gid, _) = self.group_id(&c, target).await?;
        let path = with_query(
            &Self::group_path(&c, &gid),
            &[("attributes", "members".to_string())],
        );
        let resp = match self.http.send(get(&path)).await {
            Err(e) if e.class == ErrorClass::NotFound => {
                self.forget_group(&target.name);
                return Err(e);
            }
            r => r?,
        };
        let obj = parse_object(&self.system, &resp, "a SCIM Group")?;
        let members = member_values(&Value::Object(obj))
            .map_err(|p| wrong_shape(&self.system, &resp, "a SCIM Group", &p))?;
        let ids: BTreeSet<String> = members
            .into_iter()
            .filter(|(_, is_group)| !is_group)
            .map(|(v, _)| v)
            .filter(|v| cursor.as_ref().is_none_or(|after| v > after))
            .collect();
        let per_page = self.page_size(&c) as usize;
        let page: Vec<String> = ids.iter().take(per_page).cloned().collect();
        let next = (ids.len() > page.len())
            .then(|| page.last().cloned())
            .flatten();
        let items = self.users_by_ids(&c, &page).await?;
        Ok(Page { items, next })
    }

    /// `GET /Groups?excludedAttributes=members` by startIndex, sorted where the provider
    /// sorts (so groups created meanwhile land on the last page); the cursor is the next
    /// startIndex. Names and ids are remembered for membership changes.
    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let c = self.capabilities().await?;
        let start = parse_cursor(&self.system, cursor.as_deref())?;
        let q = [("excludedAttributes", "members".to_string())];
        let count = self.page_size(&c);
        let (items, next) = self
            .list_page(
                &c,
                &c.groups_endpoint,
                &q,
                start,
                count,
                "a ListResponse of groups",
            )
            .await?;
        let mut out = Vec::with_capacity(items.len());
        for g in &items {
            let (Some(id), Some(name)) = (id_of(g), g.get("displayName").and_then(Value::as_str))
            else {
                return Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &self.system,
                    format!(
                        "groups page at startIndex {start}: a group without an id or a displayName"
                    ),
                ));
            };
            out.push(RemoteEntitlement {
                kind: EntitlementKind::Group,
                name: name.to_string(),
                external_id: id,
            });
        }
        self.groups.remember(
            out.iter()
                .map(|e| (e.name.as_str(), e.external_id.as_str())),
        );
        Ok(Page {
            items: out,
            next: next.map(|n| n.to_string()),
        })
    }
}

fn parse_cursor(system: &str, cursor: Option<&str>) -> AResult<u64> {
    match cursor {
        None => Ok(1),
        Some(s) => s.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Permanent,
                system,
                format!("not a SCIM listing cursor: {s:?} (expected a startIndex)"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::http::{RateLimiter, Timeouts};
    use crate::config::SystemsConfig;
    use crate::secrets::Secret;
    use bytes::Bytes;
    use reqwest::header::HeaderValue;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::Duration;

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn classify(status: u16, body: &str) -> AdapterError {
        classify_error("scim", status, &HeaderMap::new(), body.as_bytes())
    }

    const SCIM2_SERVER_SPC: &str = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"], "meta": {"resourceType": "ServiceProviderConfig"}, "patch": {"supported": true}, "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576}, "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": true}, "sort": {"supported": true}, "etag": {"supported": true}, "authenticationSchemes": [{"type": "oauthbearertoken", "name": "bearer_token", "description": "HTTP Bearer Token"}]}"#;

    #[test]
    fn service_provider_config_is_parsed() {
        let v: Value = serde_json::from_str(SCIM2_SERVER_SPC).unwrap();
        let c = Capabilities::from_service_provider_config(&v).unwrap();
        assert!(c.patch && c.bulk && c.filter && c.sort && c.etag && c.change_password);
        assert_eq!(c.filter_max_results, Some(1000));
        assert_eq!(c.auth_schemes, vec!["oauthbearertoken".to_string()]);
        assert_eq!(c.users_endpoint, "/Users");
        assert_eq!(
            c.features(),
            [
                "patch",
                "filter(maxResults=1000)",
                "sort",
                "etag",
                "bulk",
                "changePassword"
            ]
        );
        // Missing blocks and odd spellings: missing = unsupported, "true" strings accepted.
        let v = json!({"schemas": [SCHEMA_SERVICE_PROVIDER_CONFIG], "patch": {"supported": "TRUE"},
                       "filter": {"supported": false, "maxResults": "7"}, "etag": {}});
        let c = Capabilities::from_service_provider_config(&v).unwrap();
        assert!(c.patch && !c.filter && !c.etag && !c.sort && !c.bulk);
        assert_eq!(c.filter_max_results, Some(7));
        // Not a ServiceProviderConfig at all.
        assert!(Capabilities::from_service_provider_config(&json!({"foo": 1})).is_err());
        assert!(Capabilities::from_service_provider_config(&json!([1])).is_err());
        let v = json!({"filter": {"supported": true, "maxResults": 0}});
        let c = Capabilities::from_service_provider_config(&v).unwrap();
        assert_eq!(
            c.filter_max_results, None,
            "0 is no limit, not a page size of 0"
        );
    }

    #[test]
    fn resource_types_give_endpoints_and_the_enterprise_extension() {
        let mut c = Capabilities::default();
        c.apply_resource_types(&json!({"Resources": [
            {"name": "User", "endpoint": "/Accounts/", "schema": SCHEMA_USER,
             "schemaExtensions": [{"schema": SCHEMA_ENTERPRISE_USER, "required": false}]},
            {"name": "Group", "endpoint": "Teams", "schema": SCHEMA_GROUP}
        ]}));
        assert_eq!(c.users_endpoint, "/Accounts");
        assert_eq!(c.groups_endpoint, "/Teams");
        assert!(c.enterprise_user);
        let mut c = Capabilities::default();
        c.apply_resource_types(&json!({"Resources": [{"name": "User", "endpoint": "/Users"}]}));
        assert!(!c.enterprise_user);
        c.apply_resource_types(&json!("garbage"));
        assert_eq!(c.users_endpoint, "/Users");
    }

    #[test]
    fn the_version_is_pinned_in_one_place() {
        assert_eq!(SCIM_VERSION, "2.0");
        for urn in [
            SCHEMA_USER,
            SCHEMA_GROUP,
            SCHEMA_ENTERPRISE_USER,
            SCHEMA_PATCH_OP,
            SCHEMA_ERROR,
            SCHEMA_LIST_RESPONSE,
        ] {
            assert!(urn.contains(":2.0:"), "{urn}");
        }
        assert_eq!(SCHEMA_USER, "urn:ietf:params:scim:schemas:core:2.0:User");
        assert_eq!(
            SCHEMA_PATCH_OP,
            "urn:ietf:params:scim:api:messages:2.0:PatchOp"
        );
    }

    #[test]
    fn scim_errors_are_classified() {
        let e = classify(
            409,
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409", "scimType": "uniqueness", "detail": "One or more of the attribute values are already in use or are reserved"}"#,
        );
        assert_eq!(e.class, ErrorClass::Conflict);
        assert_eq!(e.vendor_code.as_deref(), Some("uniqueness"));
        assert_eq!(e.status, Some(409));
        assert!(e.message.contains("already in use"), "{}", e.message);
        assert!(e.excerpt.contains("uniqueness"));

        let e = classify(
            404,
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "User 'x' not found"}"#,
        );
        assert_eq!(e.class, ErrorClass::NotFound);
        let e = classify(
            401,
            r#"{"status": "401", "detail": "Authorization failure"}"#,
        );
        assert_eq!(e.class, ErrorClass::Unauthorized);
        let e = classify(
            403,
            r#"{"status": 403, "detail": "scope users:write missing"}"#,
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("not allowed") && e.message.contains("users:write"));
        for t in [
            "invalidFilter",
            "invalidValue",
            "tooMany",
            "mutability",
            "invalidSyntax",
            "invalidPath",
            "noTarget",
            "invalidVers",
            "sensitive",
        ] {
            let e = classify(
                400,
                &format!(r#"{{"status": "400", "scimType": "{t}", "detail": "bad"}}"#),
            );
            assert_eq!(e.class, ErrorClass::Permanent, "{t}");
            assert_eq!(e.vendor_code.as_deref(), Some(t));
        }
        let e = classify(
            412,
            r#"{"status": "412", "detail": "Failed to update. Resource has changed on the server"}"#,
        );
        assert_eq!(
            e.class,
            ErrorClass::Permanent,
            "412 is handled by the adapter, not retried blindly"
        );
        assert_eq!(e.vendor_code.as_deref(), Some("preconditionFailed"));
        let e = classify(
            501,
            r#"{"status": "501", "detail": "PATCH is not supported"}"#,
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert_eq!(e.vendor_code.as_deref(), Some("notImplemented"));
        for s in [500, 502, 503, 504] {
            assert_eq!(classify(s, "").class, ErrorClass::Transient, "{s}");
        }
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        let e = classify_error(
            "scim",
            429,
            &h,
            br#"{"error": "rate_limited", "detail": "Too many requests"}"#,
        );
        assert_eq!(
            e.class,
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(e.message, "Too many requests");
    }

    #[test]
    fn bad_error_bodies_are_classified_with_status_and_excerpt() {
        // An HTML page from a gateway.
        let e = classify(
            502,
            "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
        );
        assert_eq!(e.class, ErrorClass::Transient);
        assert_eq!(e.status, Some(502));
        assert!(e.message.contains("HTML page"), "{}", e.message);
        assert!(e.excerpt.contains("Bad Gateway"));
        // Truncated JSON.
        let e = classify(
            400,
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimTy"#,
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("not JSON"), "{}", e.message);
        assert!(e.excerpt.contains("scimTy"));
        // Empty body.
        let e = classify(503, "");
        assert_eq!(
            (e.class.clone(), e.message.as_str()),
            (ErrorClass::Transient, "HTTP 503")
        );
        // JSON that is not an object; a status in the body that disagrees with HTTP.
        assert_eq!(classify(404, "[1,2]").class, ErrorClass::NotFound);
        assert_eq!(
            classify(500, r#"{"status": "400", "detail": "x"}"#).class,
            ErrorClass::Transient
        );
        // A detail that echoes a credential is redacted, in the message and the excerpt.
        let e = classify(401, r#"{"detail": "bad token=abc123secret"}"#);
        assert!(
            !e.message.contains("abc123secret") && !e.excerpt.contains("abc123secret"),
            "{e:?}"
        );
    }

    #[test]
    fn bad_success_bodies_are_classified() {
        // HTML with 200: base_url points at a web page. Permanent, with a hint.
        let e = parse_object(
            "scim",
            &resp(200, "<html><body>Sign in</body></html>"),
            "a SCIM User",
        )
        .unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(
            e.message.contains("HTML") && e.message.contains("SCIM root"),
            "{}",
            e.message
        );
        assert_eq!(e.status, Some(200));
        // Truncated JSON with 200: a cut transfer, retryable.
        let e = parse_object("scim", &resp(200, r#"{"id": "2819c2"#), "a SCIM User").unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient);
        assert!(e.excerpt.contains("2819c2"));
        // Valid JSON of the wrong shape.
        let e = parse_object("scim", &resp(200, "[]"), "a SCIM User").unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        let e = parse_list("scim", &resp(200, "{}"), "a ListResponse of users").unwrap_err();
        assert!(e.message.contains("not a ListResponse"), "{}", e.message);
        let e = parse_list(
            "scim",
            &resp(200, r#"{"totalResults": 1, "Resources": {"id": "x"}}"#),
            "l",
        )
        .unwrap_err();
        assert!(e.message.contains("not a list"), "{}", e.message);
        let e = parse_list(
            "scim",
            &resp(200, r#"{"totalResults": 1, "Resources": [7]}"#),
            "l",
        )
        .unwrap_err();
        assert!(e.message.contains("Resources[0]"), "{}", e.message);
        // Resources may be absent when there are none.
        let p = parse_list("scim", &resp(200, r#"{"totalResults": 0}"#), "l").unwrap();
        assert_eq!((p.resources.len(), p.total), (0, Some(0)));
        // Users missing what we need.
        assert!(
            account_from_user(&json!({"userName": "a"}))
                .unwrap_err()
                .contains("id")
        );
        assert!(
            account_from_user(&json!({"id": "1"}))
                .unwrap_err()
                .contains("userName")
        );
        assert!(account_from_user(&json!({"id": "1", "userName": "a", "active": 3})).is_err());
    }

    #[test]
    fn users_are_read_leniently() {
        let a = account_from_user(&json!({
            "id": "u1", "userName": "ada@example.com", "externalId": "E1", "active": "False",
            "emails": [{"value": "home@x", "type": "home"}, {"value": "ada@example.com", "primary": true}]
        }))
        .unwrap();
        assert_eq!(a.external_id, "u1");
        assert!(!a.active);
        assert_eq!(a.email.as_deref(), Some("ada@example.com"));
        assert_eq!(a.hris_id.as_deref(), Some("E1"));
        let a = account_from_user(
            &json!({"id": 42, "userName": "b", "emails": [{"value": "w@x", "type": "work"}]}),
        )
        .unwrap();
        assert!(a.active, "absent active is active");
        assert_eq!(
            (a.external_id.as_str(), a.email.as_deref()),
            ("42", Some("w@x"))
        );
    }

    #[test]
    fn filters_escape_quotes_backslashes_and_controls() {
        assert_eq!(
            filter_eq("userName", "ada@example.com"),
            r#"userName eq "ada@example.com""#
        );
        assert_eq!(
            filter_eq("userName", r#"we\ird"name"#),
            r#"userName eq "we\\ird\"name""#
        );
        assert_eq!(
            filter_eq("displayName", "a\nb\u{1}"),
            r#"displayName eq "a\nb\u0001""#
        );
        assert_eq!(
            filter_eq("displayName", "Eng \"core\" ü"),
            r#"displayName eq "Eng \"core\" ü""#
        );
        // In the URL: spaces are %20 (a '+' would be a literal plus to some providers).
        assert_eq!(
            percent_encode(r#"userName eq "a+b c""#),
            "userName%20eq%20%22a%2Bb%20c%22"
        );
        assert_eq!(percent_encode("ü&="), "%C3%BC%26%3D");
        assert_eq!(
            with_query(
                "/Users",
                &[
                    ("filter", filter_eq("userName", "x")),
                    ("count", "2".into())
                ]
            ),
            "/Users?filter=userName%20eq%20%22x%22&count=2"
        );
    }

    fn spec() -> AccountSpec {
        let mut attributes = BTreeMap::new();
        attributes.insert("department".to_string(), "R&D".to_string());
        attributes.insert("costCenter".to_string(), "CC-1".to_string());
        attributes.insert("title".to_string(), "Engineer".to_string());
        attributes.insert("location".to_string(), "Berlin".to_string());
        AccountSpec {
            hris_id: "E1".into(),
            login: "ada@example.com".into(),
            email: "ada@example.com".into(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            display_name: "Ada Lovelace".into(),
            attributes,
            manager_account: None,
        }
    }

    #[test]
    fn create_body_maps_the_spec() {
        let b = create_body(&spec(), true);
        assert_eq!(b["schemas"], json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER]));
        assert_eq!(b["userName"], "ada@example.com");
        assert_eq!(b["externalId"], "E1");
        assert_eq!(
            b["name"],
            json!({"givenName": "Ada", "familyName": "Lovelace"})
        );
        assert_eq!(
            b["emails"],
            json!([{"value": "ada@example.com", "type": "work", "primary": true}])
        );
        assert_eq!(b["active"], true);
        assert_eq!(b["title"], "Engineer");
        assert_eq!(
            b[SCHEMA_ENTERPRISE_USER],
            json!({"employeeNumber": "E1", "department": "R&D", "costCenter": "CC-1"})
        );
        assert!(b.get("location").is_none());
        let b = create_body(&spec(), false);
        assert_eq!(b["schemas"], json!([SCHEMA_USER]));
        assert!(b.get(SCHEMA_ENTERPRISE_USER).is_none());
    }

    #[test]
    fn updates_send_only_the_given_fields() {
        let only_name = AccountSpec {
            display_name: "Countess".into(),
            attributes: [("department".to_string(), "Math".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(
            update_ops(&only_name, true),
            vec![
                json!({"op": "replace", "path": "displayName", "value": "Countess"}),
                json!({"op": "replace", "path": format!("{SCHEMA_ENTERPRISE_USER}:department"), "value": "Math"}),
            ]
        );
        assert_eq!(update_ops(&only_name, false).len(), 1);
        assert!(update_ops(&AccountSpec::default(), true).is_empty());
        // The PUT fallback applies the same fields onto what it read, keeping the rest.
        let mut user = json!({"schemas": [SCHEMA_USER], "id": "u1", "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"}})
            .as_object()
            .unwrap()
            .clone();
        apply_fields(&mut user, spec_fields(&only_name, true));
        assert_eq!(user["name"]["familyName"], "L");
        assert_eq!(user["displayName"], "Countess");
        assert_eq!(
            user["schemas"],
            json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER])
        );
    }

    #[test]
    fn member_edits_are_idempotent() {
        let mut g = json!({"id": "g", "displayName": "eng"})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            edit_members(&mut g, "u1", false),
            Ok(false),
            "remove from absent members"
        );
        assert_eq!(edit_members(&mut g, "u1", true), Ok(true));
        assert_eq!(
            edit_members(&mut g, "u1", true),
            Ok(false),
            "already a member"
        );
        assert_eq!(edit_members(&mut g, "u2", true), Ok(true));
        assert_eq!(edit_members(&mut g, "u1", false), Ok(true));
        assert_eq!(g["members"], json!([{"value": "u2"}]));
        let mut bad = json!({"members": "u1"}).as_object().unwrap().clone();
        assert!(edit_members(&mut bad, "u1", true).is_err());
        let grp = json!({"members": [{"value": "u1"}, {"value": "g2", "type": "Group"}, {"display": "no value"}]});
        assert_eq!(
            member_values(&grp).unwrap(),
            vec![("u1".into(), false), ("g2".into(), true)]
        );
    }

    #[test]
    fn paging_and_versions() {
        assert_eq!(next_start(1, 10, 10, Some(25)), Some(11));
        assert_eq!(next_start(21, 10, 5, Some(25)), None);
        // maxResults smaller than asked: advance by what came back.
        assert_eq!(next_start(1, 10, 7, Some(25)), Some(8));
        // No totalResults: a full page means "maybe more".
        assert_eq!(next_start(1, 10, 10, None), Some(11));
        assert_eq!(next_start(11, 10, 3, None), None);
        assert_eq!(parse_cursor("s", Some("11")).unwrap(), 11);
        assert_eq!(parse_cursor("s", None).unwrap(), 1);
        assert_eq!(
            parse_cursor("s", Some("0")).unwrap_err().class,
            ErrorClass::Permanent
        );
        assert!(parse_cursor("s", Some("abc")).is_err());

        let mut r = resp(200, "{}");
        let meta = json!({"meta": {"version": "W/\"3\""}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(version_of(&r, &meta).as_deref(), Some("W/\"3\""));
        let bare = json!({"meta": {"version": "abc"}})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(version_of(&r, &bare).as_deref(), Some("\"abc\""));
        r.headers
            .insert("etag", HeaderValue::from_static("W/\"4\""));
        assert_eq!(
            version_of(&r, &meta).as_deref(),
            Some("W/\"4\""),
            "the header wins"
        );
        assert_eq!(version_of(&resp(200, "{}"), &Map::new()), None);
        let e = classify(409, r#"{"detail": "version mismatch"}"#);
        assert!(version_mismatch(&e, true) && !version_mismatch(&e, false));
        let e = classify(409, r#"{"scimType": "uniqueness"}"#);
        assert!(!version_mismatch(&e, true));
    }

    // -- an adapter against a small in-process provider ---------------------------------

    use crate::adapters::kit::testkit::FixedSecret as Fixed;

    const TOKEN: &str = "unit-test-token-5f1c9e";

    fn adapter(base_url: &str, settings: &str) -> ScimAdapter {
        let text = format!(
            "[systems.scim-unit]\nkind = \"scim\"\nbase_url = \"{base_url}\"\ncredential = \"keyring:scim-unit-token\"\n[systems.scim-unit.settings]\n{settings}\n"
        );
        let cfg = SystemsConfig::parse(Path::new("systems.toml"), &text).unwrap();
        let entry = &cfg.catalog.systems["scim-unit"];
        let secrets = Fixed(Secret::new(TOKEN));
        let ctx = AdapterContext {
            entry,
            secrets: &secrets,
            limiter: RateLimiter::new("scim-unit", None, 4),
            timeouts: Timeouts {
                connect: Duration::from_secs(2),
                request: Duration::from_secs(5),
            },
        };
        ScimAdapter::new(&ctx).unwrap().with_retry(RetryPolicy {
            max_attempts: 2,
            max_elapsed: Duration::from_secs(5),
            base: Duration::from_millis(10),
            cap: Duration::from_millis(50),
        })
    }

    #[test]
    fn settings_are_checked_and_debug_hides_the_token() {
        let a = adapter(
            "http://127.0.0.1:9/v2",
            "page_size = 10\nuse_patch = false\nsort_by = \"\"",
        );
        assert_eq!(a.settings().page_size, Some(10));
        assert!(!a.settings().use_patch && a.settings().sort_by.is_none());
        let dbg = format!("{a:?}");
        assert!(!dbg.contains(TOKEN), "{dbg}");
        assert!(
            dbg.contains("keyring:scim-unit-token") && dbg.contains("127.0.0.1:9/v2"),
            "{dbg}"
        );
        for (bad, why) in [
            ("page_size = 0", "1 to 1000"),
            ("use_filter = \"no\"", "setting use_filter: invalid type"),
            ("pagesize = 5", "unknown setting"),
        ] {
            let text = format!(
                "[systems.s]\nkind = \"scim\"\nbase_url = \"http://x\"\ncredential = \"keyring:t\"\n[systems.s.settings]\n{bad}\n"
            );
            let cfg = SystemsConfig::parse(Path::new("systems.toml"), &text).unwrap();
            let e = ScimSettings::from_entry(&cfg.catalog.systems["s"]).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        let text = "[systems.s]\nkind = \"scim\"\napi_version = \"1.1\"\nbase_url = \"http://x\"\ncredential = \"keyring:t\"\n";
        let cfg = SystemsConfig::parse(Path::new("systems.toml"), text).unwrap();
        let ctx = AdapterContext {
            entry: &cfg.catalog.systems["s"],
            secrets: &Fixed(Secret::new(TOKEN)),
            limiter: RateLimiter::new("s", None, 1),
            timeouts: Timeouts::default(),
        };
        let e = ScimAdapter::new(&ctx).unwrap_err();
        assert!(e.to_string().contains("SCIM 2.0"), "{e}");
    }

    /// A provider with one user, ETags, no PATCH; a "concurrent writer" bumps the version
    /// right after each of the next `bumps` reads.
    #[derive(Default)]
    struct Mock {
        version: u64,
        active: bool,
        bumps: u32,
        puts: u32,
        bad_if_match: u32,
    }

    async fn mock_provider(bumps: u32, active: bool) -> (crate::sim::SimServer, Arc<Mutex<Mock>>) {
        use axum::extract::State;
        use axum::http::{HeaderMap as AxHeaders, StatusCode};
        use axum::response::IntoResponse;
        use axum::routing::get as route_get;
        type S = Arc<Mutex<Mock>>;
        let state: S = Arc::new(Mutex::new(Mock {
            version: 1,
            active,
            bumps,
            ..Default::default()
        }));
        fn user(m: &Mock) -> axum::response::Response {
            let tag = format!("W/\"{}\"", m.version);
            let body = json!({"schemas": [SCHEMA_USER], "id": "u1", "userName": "ada", "active": m.active,
                              "meta": {"resourceType": "User", "version": tag}});
            let mut r = axum::Json(body).into_response();
            r.headers_mut()
                .insert("etag", HeaderValue::from_str(&tag).unwrap());
            r
        }
        let app = axum::Router::new()
            .route("/v2/ServiceProviderConfig", route_get(|| async {
                axum::Json(json!({"schemas": [SCHEMA_SERVICE_PROVIDER_CONFIG], "patch": {"supported": false},
                    "filter": {"supported": true, "maxResults": 50}, "etag": {"supported": true}, "sort": {"supported": false}}))
            }))
            .route(
                "/v2/Users/u1",
                route_get(|State(s): State<S>| async move {
                    let mut m = s.lock().unwrap();
                    let r = user(&m);
                    if m.bumps > 0 {
                        m.bumps -= 1;
                        m.version += 1;
                    }
                    r
                })
                .put(|State(s): State<S>, h: AxHeaders, axum::Json(body): axum::Json<Value>| async move {
                    let mut m = s.lock().unwrap();
                    m.puts += 1;
                    let want = format!("W/\"{}\"", m.version);
                    if h.get("if-match").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
                        m.bad_if_match += 1;
                        return (StatusCode::PRECONDITION_FAILED, axum::Json(json!({"schemas": [SCHEMA_ERROR], "status": "412",
                            "detail": "Failed to update. Resource has changed on the server"}))).into_response();
                    }
                    m.version += 1;
                    m.active = body["active"].as_bool().unwrap_or(true);
                    user(&m)
                }),
            )
            // /ResourceTypes and /Schemas/...: 404, so discovery falls back to defaults.
            .fallback(|| async {
                (StatusCode::NOT_FOUND, axum::Json(json!({"schemas": [SCHEMA_ERROR], "status": "404", "detail": "no such endpoint"})))
            })
            .with_state(state.clone());
        (crate::sim::SimServer::spawn(app).await.unwrap(), state)
    }

    #[tokio::test]
    async fn a_412_is_re_read_and_retried_once() {
        let (srv, st) = mock_provider(1, true).await;
        let a = adapter(&format!("{}/v2", srv.base_url()), "");
        a.deactivate_account("u1").await.unwrap();
        let m = st.lock().unwrap();
        assert_eq!((m.puts, m.bad_if_match, m.active), (2, 1, false));
    }

    #[tokio::test]
    async fn a_persistent_412_is_transient_after_one_retry() {
        let (srv, st) = mock_provider(100, true).await;
        let a = adapter(&format!("{}/v2", srv.base_url()), "");
        let e = a.deactivate_account("u1").await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        assert_eq!(e.status, Some(412));
        assert!(e.message.contains("twice in a row"), "{}", e.message);
        assert_eq!(st.lock().unwrap().puts, 2, "one retry, not a loop");
        let c = a.capabilities().await.unwrap();
        assert!(!c.patch && c.etag && !c.enterprise_user);
    }

    #[tokio::test]
    async fn a_no_op_put_is_not_sent() {
        let (srv, st) = mock_provider(0, false).await;
        let a = adapter(&format!("{}/v2", srv.base_url()), "");
        a.deactivate_account("u1").await.unwrap();
        assert_eq!(st.lock().unwrap().puts, 0);
        // Without ETags (turned off in settings) the PUT carries no If-Match and the mock
        // refuses it: proof that the setting is honoured.
        let a = adapter(&format!("{}/v2", srv.base_url()), "use_etag = false");
        let e = a.reactivate_account("u1").await.unwrap_err();
        assert_eq!(e.status, Some(412));
    }

    #[tokio::test]
    async fn a_wrong_base_url_says_so() {
        let (srv, _st) = mock_provider(0, true).await;
        let a = adapter(&format!("{}/scim", srv.base_url()), "");
        let e = a.authenticate().await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("SCIM root"), "{}", e.message);
    }
}
