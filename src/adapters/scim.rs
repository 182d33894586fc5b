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
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, Req, RetryPolicy, redact_text};
use super::kit::context::AdapterContext;
use super::kit::errors::{VendorProfile, classify_status};
use super::kit::paging::scim_next_start;
use super::kit::settings;
use super::{
    AResult, About, AccountSpec, Adapter, EntitlementTarget, Identity, Page, Provisioner, Reader,
    RemoteAccount, RemoteEntitlement, RemoteMembership,
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

mod errors;
mod ops;
mod provider;
mod provisioner;
mod reader;
mod resources;
pub use errors::*;
pub use provider::*;
pub use resources::*;

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
// The adapter
// ---------------------------------------------------------------------------------------

/// SCIM has no suspend (only `active`); DELETE and the Groups listing are core, though a
/// provider may refuse them, which is reported per request; externalId holds the HR id.
const CAPABILITIES: super::Capabilities = super::Capabilities {
    suspend: false,
    delete: true,
    list_entitlements: true,
    stores_hris_id: true,
};

pub struct ScimAdapter {
    about: About,
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
            .field("system", &self.about.system)
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
            about: About::of(&http, SCIM_VERSION, CAPABILITIES),
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
    pub async fn provider(&self) -> AResult<Arc<Capabilities>> {
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
        let obj = parse_object(&self.about.system, &resp, what)?;
        let mut caps = Capabilities::from_service_provider_config(&Value::Object(obj))
            .map_err(|p| wrong_shape(&self.about.system, &resp, what, &p))?;
        match self.http.send(get("/ResourceTypes")).await {
            Ok(r) => match serde_json::from_slice::<Value>(&r.body) {
                Ok(v) => caps.apply_resource_types(&v),
                Err(_) => {
                    tracing::warn!(system = %self.about.system, "unreadable /ResourceTypes; assuming /Users and /Groups without extensions")
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
}

fn get(path: &str) -> Req {
    Req::get(path).header(ACCEPT, ACCEPT_VALUE)
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
mod tests;
