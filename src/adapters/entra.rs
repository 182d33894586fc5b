//! The Microsoft Entra ID adapter: Microsoft Graph v1.0, as an app registration with
//! application permissions (OAuth 2.0 client credentials).
//!
//! What accessdesk's operations mean here:
//! - **create**: `POST /users` with the login as `userPrincipalName`, its local part as
//!   `mailNickname`, the HR id as `employeeId`, the job fields (`department`, `jobTitle`,
//!   `officeLocation`, `employeeOrgData.costCenter`) and a random password the person
//!   must change (`forceChangePasswordNextSignIn`; they sign in through SSO or a reset).
//!   Graph's 400 "Another object with the same value for property userPrincipalName
//!   already exists" is Conflict: the engine reads the user back and adopts it only with
//!   proof (their `employeeId`).
//! - **update**: `PATCH /users/{id}` of the names and job fields (the UPN never changes).
//! - **deactivate**: `PATCH {"accountEnabled": false}` (sign-in blocked, sessions
//!   revocable, the object and its licences stay); **reactivate** sets it back.
//! - **grant / revoke**: `POST /groups/{id}/members/$ref` / `DELETE
//!   /groups/{id}/members/{user}/$ref`. "One or more added object references already
//!   exist" and a 404 on removal are done. Right after a user is created Graph may not
//!   know them yet (404 on `$ref`): that is retried, not failed.
//! - **observe**: `/users` and `/groups` with `$top` and `@odata.nextLink`,
//!   `/groups/{id}/members`, `/users/{id}/memberOf`.
//!
//! Auth: the keychain entry holds the client secret of the app registration (`client_id`,
//! `tenant_id` in settings), exchanged for a token for `https://graph.microsoft.com/.default`
//! (adapters/auth/oauth.rs, `ClientSecret`), cached until shortly before it expires.
//! `authenticate` also reads the app's own `passwordCredentials` (where the app may read
//! applications) so the Systems view shows when the secret expires.
//!
//! Throttling: 429 with `Retry-After` (honoured); `x-ms-throttle-limit-percentage` above
//! 80% of the budget slows the limiter before the 429s start.

use super::auth::oauth::{ClientSecret, TokenAuth, TokenEndpoint};
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, RateSignal, Req, RetryPolicy, path_segment};
use super::kit::context::AdapterContext;
use super::kit::errors::{
    Class, ErrorRule, OAUTH_ERRORS, VendorProfile, classify_by, classify_status, code,
};
use super::kit::settings;
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, NameCache,
    Page, Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership, collect_all,
};
use crate::model::EntitlementKind;
use crate::{Error, Result};
use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const API_VERSION: &str = "v1.0";
const DEFAULT_BASE: &str = "https://graph.microsoft.com/v1.0";
const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The application permissions the adapter needs.
pub const ROLES: [&str; 3] = [
    "User.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
];
const USER_FIELDS: &str = "id,userPrincipalName,mail,displayName,givenName,surname,accountEnabled,employeeId,department,jobTitle,officeLocation,employeeOrgData";

/// `[systems.NAME.settings]` of an `entra` system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraSettings {
    /// The directory (tenant) id.
    pub tenant_id: String,
    /// The app registration's application (client) id.
    pub client_id: String,
    /// The token endpoint (default `https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`).
    #[serde(default)]
    pub token_url: Option<String>,
    /// Listing page size (`$top`, 1-999, default 999).
    #[serde(default, deserialize_with = "settings::optional_in::<_, 1, 999>")]
    pub page_size: Option<u32>,
}

/// Graph's error codes that say more than their status.
const GRAPH_ERRORS: &[ErrorRule] = &[
    code("Request_ResourceNotFound", Class::NotFound),
    code("InvalidAuthenticationToken", Class::Unauthorized),
    code("TooManyRequests", Class::RateLimited),
    code("serviceNotAvailable", Class::Transient),
];

/// Graph's dialect: its error object, AADSTS errors at the token endpoint, and the
/// throttle headers.
pub struct GraphProfile;

impl VendorProfile for GraphProfile {
    fn rate_signal(&self, status: u16, headers: &HeaderMap, _body: &[u8]) -> RateSignal {
        let mut s = RateSignal::generic(status, headers);
        // Above 80% of the budget Graph says how far (0.8-1.8): slow down before the 429s.
        if let Some(p) = headers
            .get("x-ms-throttle-limit-percentage")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
        {
            s.throttled |= p >= 1.0;
        }
        s
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let wait = super::http::retry_after(headers);
        let (code, message, table) = match &v["error"] {
            Value::Object(e) => (
                e.get("code")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                e.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                GRAPH_ERRORS,
            ),
            Value::String(c) => (
                c.clone(),
                v["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                OAUTH_ERRORS,
            ),
            _ => return classify_status(system, status, headers, body, None, String::new()),
        };
        let already = message.contains("already exist");
        let class = if already && status == 400 {
            Class::Conflict
        } else {
            classify_by(table, status, Some(&code))
        };
        let message = if code == "Authorization_RequestDenied" {
            format!(
                "{message} (the app lacks an application permission this call needs: {})",
                ROLES.join(", ")
            )
        } else {
            message
        };
        AdapterError::new(class.with_wait(wait), system, message)
            .with_status(status)
            .with_code(code)
            .with_excerpt(body)
    }
}

pub struct Entra {
    about: About,
    http: HttpClient,
    auth: Arc<TokenAuth>,
    client_id: String,
    secret_hint: String,
    top: String,
    groups: NameCache,
}

impl std::fmt::Debug for Entra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entra")
            .field("system", &self.about.system)
            .field("client_id", &self.client_id)
            .field("auth", &self.auth)
            .finish()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(Entra::from_context(ctx)?))
}

fn text(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

impl Entra {
    pub fn from_context(ctx: AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        ctx.require_api_version(API_VERSION, "Microsoft Graph")?;
        let set: EntraSettings = settings::parse(ctx.entry)?;
        let source = ctx.credential()?.to_string();
        let secret = ctx.secret()?;
        let secret_hint: String = secret.expose().chars().take(3).collect();
        let base = ctx
            .entry
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.into());
        // Entra's token endpoint is on login.microsoftonline.com; anywhere else (a proxy, the
        // simulator) it is on the Graph base's host.
        let token_url = set
            .token_url
            .clone()
            .unwrap_or_else(|| match url::Url::parse(&base) {
                Ok(u) if u.host_str() != Some("graph.microsoft.com") => format!(
                    "{}/{}/oauth2/v2.0/token",
                    u.origin().ascii_serialization(),
                    set.tenant_id
                ),
                _ => format!(
                    "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                    set.tenant_id
                ),
            });
        let to_usage = |e: AdapterError| Error::usage(e.to_string(), "");
        let mut http = HttpClient::new(
            &name,
            &base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(super::auth::NoAuth),
            Arc::new(GraphProfile),
        )
        .map_err(to_usage)?;
        let grant = ClientSecret {
            client_id: set.client_id.clone(),
            secret,
            scopes: vec![GRAPH_SCOPE.to_string()],
            token_url: token_url.clone(),
        };
        let endpoint = TokenEndpoint {
            url: token_url,
            timeouts: ctx.timeouts,
            limiter: ctx.limiter.clone(),
            retry: RetryPolicy::default(),
            profile: Arc::new(GraphProfile),
        };
        let auth = Arc::new(
            TokenAuth::new(&name, &source, endpoint, Box::new(grant))
                .map_err(to_usage)?
                .with_watch(http.watch.clone()),
        );
        http.set_auth(auth.clone());
        let caps = Capabilities {
            suspend: false,
            delete: false,
            list_entitlements: true,
            stores_hris_id: true,
        };
        Ok(Entra {
            about: About::of(&http, API_VERSION, caps).needing(&ROLES),
            http,
            auth,
            client_id: set.client_id,
            secret_hint,
            top: set.page_size.unwrap_or(999).to_string(),
            groups: NameCache::default(),
        })
    }

    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
    }

    fn json(&self, r: &HttpResponse, what: &str) -> AResult<Value> {
        r.json(&self.about.system, what)
    }

    fn account(&self, u: &Value) -> RemoteAccount {
        let upn = text(u, "userPrincipalName").unwrap_or_default();
        let mut attributes = BTreeMap::new();
        for (key, field) in [
            ("email", "mail"),
            ("givenName", "givenName"),
            ("familyName", "surname"),
            ("displayName", "displayName"),
            ("department", "department"),
            ("title", "jobTitle"),
            ("location", "officeLocation"),
        ] {
            attributes.insert(key.to_string(), text(u, field).unwrap_or_default());
        }
        attributes.insert(
            "costCenter".into(),
            text(&u["employeeOrgData"], "costCenter").unwrap_or_default(),
        );
        RemoteAccount {
            external_id: text(u, "id").unwrap_or_default(),
            login: upn,
            email: text(u, "mail"),
            active: u["accountEnabled"] != false,
            hris_id: text(u, "employeeId"),
            attributes,
        }
    }

    fn fields(spec: &AccountSpec) -> serde_json::Map<String, Value> {
        let a = |k: &str| spec.attributes.get(k).cloned().filter(|v| !v.is_empty());
        let mut m = serde_json::Map::new();
        m.insert("displayName".into(), json!(spec.display_name));
        m.insert("givenName".into(), json!(spec.given_name));
        m.insert("surname".into(), json!(spec.family_name));
        m.insert("department".into(), json!(a("department")));
        m.insert("jobTitle".into(), json!(a("title")));
        m.insert("officeLocation".into(), json!(a("location")));
        m.insert(
            "employeeOrgData".into(),
            json!({"costCenter": a("costCenter")}),
        );
        if !spec.email.is_empty() {
            m.insert("mail".into(), json!(spec.email));
        }
        m
    }

    async fn user(&self, key: &str) -> AResult<Option<RemoteAccount>> {
        match self
            .http
            .send(Req::get(format!(
                "/users/{}?$select={USER_FIELDS}",
                path_segment(key)
            )))
            .await
        {
            Ok(r) => Ok(Some(self.account(&self.json(&r, "a Graph user")?))),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_enabled(&self, id: &str, enabled: bool) -> AResult<()> {
        let req = Req::patch(format!("/users/{}", path_segment(id)))
            .json(json!({"accountEnabled": enabled}));
        self.http.send(req).await.map(|_| ())
    }

    /// One page of a Graph collection: `path` the first time, then `@odata.nextLink`.
    async fn page(
        &self,
        first: String,
        cursor: Option<String>,
        what: &str,
    ) -> AResult<(Vec<Value>, Option<String>)> {
        let v = self.json(
            &self.http.send(Req::get(cursor.unwrap_or(first))).await?,
            what,
        )?;
        let items = v["value"].as_array().cloned().unwrap_or_default();
        Ok((items, text(&v, "@odata.nextLink")))
    }

    async fn groups_page(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let first = format!("/groups?$top={}&$select=id,displayName", self.top);
        let (items, next) = self.page(first, cursor, "a page of groups").await?;
        Ok(Page {
            items: items
                .iter()
                .map(|g| RemoteEntitlement {
                    kind: EntitlementKind::Group,
                    name: text(g, "displayName").unwrap_or_default(),
                    external_id: text(g, "id").unwrap_or_default(),
                })
                .collect(),
            next,
        })
    }

    /// A group's id: the configured one, else found by display name once (and cached).
    async fn group_id(&self, t: &EntitlementTarget) -> AResult<String> {
        if !t.external_id.is_empty() && t.external_id != t.name {
            return Ok(t.external_id.clone());
        }
        if let Some(id) = self.groups.get(&t.name) {
            return Ok(id);
        }
        let all = collect_all(|c| self.groups_page(c), 3).await?;
        self.groups.remember(
            all.iter()
                .map(|g| (g.name.as_str(), g.external_id.as_str())),
        );
        self.groups.get(&t.name).ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                &self.about.system,
                format!("no Entra group named {:?}", t.name),
            )
        })
    }

    /// The app's own secret's end date, where the app may read applications.
    async fn secret_end(&self) {
        let path = format!(
            "/applications?$filter={}&$select=passwordCredentials",
            path_segment(&format!("appId eq '{}'", self.client_id))
        );
        let Ok(r) = self.http.send(Req::get(path)).await else {
            return;
        };
        let Ok(v) = self.json(&r, "applications") else {
            return;
        };
        let creds = v["value"][0]["passwordCredentials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ours = creds
            .iter()
            .find(|c| c["hint"].as_str() == Some(self.secret_hint.as_str()))
            .or(creds.first());
        if let Some(end) = ours
            .and_then(|c| c["endDateTime"].as_str())
            .and_then(super::kit::watch::header_date)
            && let Some(w) = self.watch()
        {
            w.credential_expires(end, "Entra application secret endDateTime");
        }
    }
}

#[async_trait]
impl Reader for Entra {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        use super::auth::Auth;
        self.auth.invalidate().await;
        self.auth.token().await?;
        self.http.send(Req::get("/users?$top=1&$select=id")).await?;
        self.secret_end().await;
        let mut details = BTreeMap::new();
        details.insert("client_id".into(), self.client_id.clone());
        details.insert("credential".into(), self.auth.source());
        Ok(Identity {
            principal: format!("app {}", self.client_id),
            scopes: Vec::new(),
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        self.user(login).await
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        self.user(external_id).await
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let first = format!(
            "/users/{}/memberOf?$top={}",
            path_segment(account_id),
            self.top
        );
        let all = collect_all(
            |c| async {
                self.page(first.clone(), c, "a user's groups")
                    .await
                    .map(|(items, next)| Page { items, next })
            },
            3,
        )
        .await?;
        Ok(all
            .iter()
            .filter(|g| g["@odata.type"] == "#microsoft.graph.group")
            .map(|g| RemoteMembership {
                kind: EntitlementKind::Group,
                name: text(g, "displayName").unwrap_or_default(),
                external_id: text(g, "id").unwrap_or_default(),
            })
            .collect())
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let first = format!("/users?$top={}&$select={USER_FIELDS}", self.top);
        let (items, next) = self.page(first, cursor, "a page of users").await?;
        Ok(Page {
            items: items.iter().map(|u| self.account(u)).collect(),
            next,
        })
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let gid = self.group_id(target).await?;
        let first = format!(
            "/groups/{}/members?$top={}&$select={USER_FIELDS}",
            path_segment(&gid),
            self.top
        );
        let (items, next) = self.page(first, cursor, "a page of group members").await?;
        Ok(Page {
            items: items
                .iter()
                .filter(|m| m["@odata.type"] == "#microsoft.graph.user")
                .map(|u| self.account(u))
                .collect(),
            next,
        })
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        self.groups_page(cursor).await
    }
}

#[async_trait]
impl Provisioner for Entra {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let mut body = Self::fields(spec);
        let nickname: String = spec
            .login
            .split('@')
            .next()
            .unwrap_or(&spec.login)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || ".-_".contains(*c))
            .collect();
        body.insert("accountEnabled".into(), json!(true));
        body.insert("userPrincipalName".into(), json!(spec.login));
        body.insert("mailNickname".into(), json!(nickname));
        body.insert("employeeId".into(), json!(spec.hris_id));
        body.insert("passwordProfile".into(), json!({"forceChangePasswordNextSignIn": true, "password": format!("Ad-{}!", super::auth::jwt::random_jti())}));
        let r = self
            .http
            .send(Req::post("/users").json(Value::Object(body.clone())))
            .await?;
        // Graph answers a create with the default projection only (no employeeId, no
        // accountEnabled), and may not serve a GET of the new user for a while: the
        // account is its answer plus what it accepted from us.
        let mut created = self.json(&r, "the created user")?;
        if let Value::Object(m) = &mut created {
            for (k, v) in body {
                m.entry(k).or_insert(v);
            }
        }
        Ok(self.account(&created))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let req = Req::patch(format!("/users/{}", path_segment(external_id)))
            .json(Value::Object(Self::fields(spec)));
        self.http.send(req).await?;
        self.user(external_id).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Transient,
                &self.about.system,
                format!("user {external_id} was updated but cannot be read back yet"),
            )
        })
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        already_done(Edit::Deactivate, self.set_enabled(external_id, false).await)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_enabled(external_id, true).await
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let gid = self.group_id(target).await?;
        let body = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{account_id}")});
        let r = self
            .http
            .send(Req::post(format!("/groups/{}/members/$ref", path_segment(&gid))).json(body))
            .await
            .map(|_| ());
        // A user Graph has not replicated yet answers 404 here for a while: retry it.
        let r = r.map_err(|e| match e.class {
            ErrorClass::NotFound => e.reclassified(
                ErrorClass::Transient,
                format!(
                    "{} (a new user may not have reached every replica yet)",
                    e.message
                ),
            ),
            _ => e,
        });
        already_done(Edit::Grant, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let gid = self.group_id(target).await?;
        let r = self
            .http
            .send(Req::delete(format!(
                "/groups/{}/members/{}/$ref",
                path_segment(&gid),
                path_segment(account_id)
            )))
            .await
            .map(|_| ());
        already_done(Edit::Revoke, r)
    }
}
