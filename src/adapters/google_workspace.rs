//! The Google Workspace adapter: the Admin SDK Directory API (`directory_v1`), acting as an
//! admin through a service account with domain-wide delegation.
//!
//! What accessdesk's operations mean here:
//! - **create**: `users.insert` with the login as `primaryEmail`, the HR id as an
//!   `externalIds` entry of type `organization` (Google's "employee ID"), the job fields in
//!   the primary `organizations` entry, a random password the person never sees
//!   (`changePasswordAtNextLogin`; they sign in through SSO or an admin's reset), in
//!   `org_unit`. Google's 409 `duplicate` is "already exists": the engine reads the
//!   account back and adopts it only with proof (the HR id on it).
//! - **update**: `users.patch` of the name and job fields (the login is never changed).
//! - **deactivate / suspend**: `users.patch {"suspended": true}` (Google keeps the data and
//!   frees no licence; deleting is a separate, manual decision); **reactivate** clears it.
//! - **grant / revoke**: `members.insert` / `members.delete` of the user's id in the
//!   group (a catalogue name is the group's e-mail, or its `external_id` the group id).
//!   "Member already exists" and "not a member" are done.
//! - **observe**: `users.list` of the customer, `groups.list`, `members.list` of each
//!   group, `groups.list?userKey=` for one user's groups.
//!
//! Auth (`adapters/auth/oauth.rs`, `JwtBearer`): the keychain entry holds the service
//! account's JSON key as Google issues it (`client_email`, `private_key`, `token_uri`),
//! or only its PEM private key with `service_account` set. The assertion asks for the
//! minimal scopes (`admin.directory.user`, `admin.directory.group.member`,
//! `admin.directory.group.readonly`) as `admin`; the token is cached until shortly before
//! it expires.
//!
//! Limits and errors (`GOOGLE_ERRORS`): Google signals its quotas as 403
//! `userRateLimitExceeded` / `quotaExceeded` / `rateLimitExceeded` with no wait header,
//! as well as 429 and 503 `backendError`; all are retried with backoff and slow the
//! limiter. 412 `conditionNotMet` ("User creation is not complete.") is transient.
//!
//! Settings: `admin` (required: the admin user to act as), `service_account` (with a PEM
//! credential), `customer` (default `my_customer`), `org_unit` (default `/`), `token_url`,
//! `page_size` (1-500). `base_url` defaults to `https://admin.googleapis.com`.

use super::auth::jwt::Signer;
use super::auth::oauth::{JwtBearer, TokenAuth, TokenEndpoint};
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, RateSignal, Req, RetryPolicy, path_segment};
use super::kit::context::AdapterContext;
use super::kit::errors::{
    Class, ErrorRule, OAUTH_ERRORS, VendorProfile, classify_by, classify_status, status_code,
};
use super::kit::settings::{self, optional_in};
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

pub const API_VERSION: &str = "directory_v1";
const DEFAULT_BASE: &str = "https://admin.googleapis.com";
const DEFAULT_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const PREFIX: &str = "/admin/directory/v1";
/// The minimal scopes: users, group members, and reading groups.
pub const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.group.member",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
];
pub const USERS_PAGE_MAX: u32 = 500;
pub const MEMBERS_PAGE_MAX: u32 = 200;

/// `[systems.NAME.settings]` of a `google_workspace` system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// The admin user the service account acts as (domain-wide delegation's `sub`).
    pub admin: Option<String>,
    /// The service account's e-mail, when the credential is only its PEM private key.
    pub service_account: Option<String>,
    /// The customer to list (`my_customer`: the admin's own).
    pub customer: Option<String>,
    /// The organisational unit new users are created in (default `/`).
    pub org_unit: Option<String>,
    /// The token endpoint (default: the key's `token_uri`, else Google's).
    pub token_url: Option<String>,
    /// A cap on listing pages (users up to 500, groups and members up to 200).
    #[serde(default, deserialize_with = "optional_in::<_, 1, 500>")]
    pub page_size: Option<u32>,
}

/// The service account key file's fields accessdesk reads.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
}

/// Google answers `403 userRateLimitExceeded` and its kin for quotas; the rest by status.
const GOOGLE_ERRORS: &[ErrorRule] = &[
    status_code(403, "userRateLimitExceeded", Class::RateLimited),
    status_code(403, "rateLimitExceeded", Class::RateLimited),
    status_code(403, "quotaExceeded", Class::RateLimited),
    status_code(412, "conditionNotMet", Class::Transient),
    status_code(503, "backendError", Class::Transient),
    status_code(500, "backendError", Class::Transient),
    status_code(409, "duplicate", Class::Conflict),
    status_code(401, "authError", Class::Unauthorized),
    status_code(401, "required", Class::Unauthorized),
];

/// The reason and message of a Google error body, or an OAuth error's code.
fn reason(body: &[u8]) -> Option<(String, String)> {
    let v: Value = serde_json::from_slice(body).ok()?;
    match &v["error"] {
        Value::Object(e) => {
            let first = e.get("errors").and_then(|x| x.get(0));
            let reason = first
                .and_then(|f| f["reason"].as_str())
                .or_else(|| e.get("status").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            Some((reason, msg.to_string()))
        }
        Value::String(code) => {
            let d = v["error_description"].as_str().unwrap_or("");
            Some((code.clone(), format!("{code}: {d}")))
        }
        _ => None,
    }
}

/// Google's error and quota dialect.
pub struct GoogleProfile;

impl VendorProfile for GoogleProfile {
    fn rate_signal(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> RateSignal {
        let mut s = RateSignal::generic(status, headers);
        if status == 403
            && let Some((r, _)) = reason(body)
        {
            s.throttled |= classify_by(GOOGLE_ERRORS, 403, Some(&r)) == Class::RateLimited;
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
        let Some((code, message)) = reason(body) else {
            return classify_status(system, status, headers, body, None, String::new());
        };
        let table = if message.starts_with(&format!("{code}: ")) {
            OAUTH_ERRORS
        } else {
            GOOGLE_ERRORS
        };
        let wait = super::http::retry_after(headers);
        let message = if code == "insufficientPermissions" {
            format!("{message} (the token lacks a scope this call needs)")
        } else {
            message
        };
        AdapterError::new(
            classify_by(table, status, Some(&code)).with_wait(wait),
            system,
            message,
        )
        .with_status(status)
        .with_code(code)
        .with_excerpt(body)
    }
}

pub struct GoogleWorkspace {
    about: About,
    http: HttpClient,
    auth: Arc<TokenAuth>,
    admin: String,
    customer: String,
    org_unit: String,
    page_size: Option<u32>,
    groups: NameCache,
}

impl std::fmt::Debug for GoogleWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleWorkspace")
            .field("system", &self.about.system)
            .field("admin", &self.admin)
            .field("auth", &self.auth)
            .finish()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(GoogleWorkspace::from_context(ctx)?))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

impl GoogleWorkspace {
    pub fn from_context(ctx: AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        let usage = |msg: String, hint: &str| Error::usage(format!("system {name}: {msg}"), hint);
        ctx.require_api_version(API_VERSION, "the Admin SDK Directory API")?;
        let set: GoogleSettings = settings::parse(ctx.entry)?;
        let admin = set.admin.filter(|a| a.contains('@')).ok_or_else(|| {
            usage(
                "settings.admin is required: the admin user the service account acts as".into(),
                "admin = \"it-automation@example.com\"",
            )
        })?;
        let source = ctx.credential()?.to_string();
        let secret = ctx.secret()?;
        let (email, pem, kid, key_token_url) = match serde_json::from_str::<KeyFile>(
            secret.expose(),
        ) {
            Ok(k) => (k.client_email, k.private_key, k.private_key_id, k.token_uri),
            Err(_) => {
                let email = set.service_account.clone().ok_or_else(|| {
                    usage(
                        format!("the credential from {source} is not a service account JSON key, and settings.service_account is not set"),
                        "store the JSON key file as the secret, or set service_account with a PEM key",
                    )
                })?;
                (email, secret.expose().to_string(), None, None)
            }
        };
        let signer = Signer::rsa_from_pem(&pem, kid).map_err(|why| {
            usage(
                format!("the credential from {source} {why}"),
                "a service account key is RSA",
            )
        })?;
        let token_url = set
            .token_url
            .or(key_token_url)
            .unwrap_or_else(|| DEFAULT_TOKEN_URL.to_string());
        let base = ctx
            .entry
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.into());
        let to_usage = |e: AdapterError| Error::usage(e.to_string(), "");
        let mut http = HttpClient::new(
            &name,
            &base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(super::auth::NoAuth),
            Arc::new(GoogleProfile),
        )
        .map_err(to_usage)?;
        let grant = JwtBearer {
            issuer: email,
            subject: admin.clone(),
            scopes: SCOPES.iter().map(|s| s.to_string()).collect(),
            signer,
            token_url: token_url.clone(),
        };
        let endpoint = TokenEndpoint {
            url: token_url,
            timeouts: ctx.timeouts,
            limiter: ctx.limiter.clone(),
            retry: RetryPolicy::default(),
            profile: Arc::new(GoogleProfile),
        };
        let auth = Arc::new(
            TokenAuth::new(&name, &source, endpoint, Box::new(grant))
                .map_err(to_usage)?
                .with_watch(http.watch.clone()),
        );
        http.set_auth(auth.clone());
        Ok(GoogleWorkspace {
            about: About::of(&http, API_VERSION, CAPABILITIES).needing(&SCOPES),
            http,
            auth,
            admin,
            customer: set.customer.unwrap_or_else(|| "my_customer".into()),
            org_unit: set.org_unit.unwrap_or_else(|| "/".into()),
            page_size: set.page_size,
            groups: NameCache::default(),
        })
    }

    /// Replace the retry policy (tests use short ones).
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
    }

    fn page(&self, max: u32) -> String {
        self.page_size.unwrap_or(max).min(max).to_string()
    }

    async fn send(&self, req: Req) -> AResult<HttpResponse> {
        self.http.send(req).await
    }

    fn json(&self, resp: &HttpResponse, what: &str) -> AResult<Value> {
        resp.json(&self.about.system, what)
    }

    fn account(&self, u: &Value) -> RemoteAccount {
        let email = text(u, "primaryEmail").unwrap_or_default();
        let hris_id = u["externalIds"].as_array().and_then(|ids| {
            ids.iter()
                .find(|x| x["type"] == "organization")
                .and_then(|x| text(x, "value"))
        });
        let mut attributes = BTreeMap::new();
        attributes.insert("email".into(), email.clone());
        attributes.insert(
            "givenName".into(),
            text(&u["name"], "givenName").unwrap_or_default(),
        );
        attributes.insert(
            "familyName".into(),
            text(&u["name"], "familyName").unwrap_or_default(),
        );
        let org = u["organizations"].as_array().and_then(|o| {
            o.iter()
                .find(|x| x["primary"] == true)
                .or_else(|| o.first())
        });
        for key in ["department", "title", "costCenter", "location"] {
            let v = org.and_then(|o| text(o, key)).unwrap_or_default();
            attributes.insert(key.into(), v);
        }
        RemoteAccount {
            external_id: text(u, "id").unwrap_or_default(),
            login: email.clone(),
            email: Some(email),
            active: u["suspended"] != true,
            hris_id,
            attributes,
        }
    }

    /// The fields accessdesk writes: names and the job fields.
    fn fields(spec: &AccountSpec) -> serde_json::Map<String, Value> {
        let a = |k: &str| spec.attributes.get(k).cloned().unwrap_or_default();
        let mut m = serde_json::Map::new();
        m.insert(
            "name".into(),
            json!({"givenName": spec.given_name, "familyName": spec.family_name}),
        );
        m.insert(
            "organizations".into(),
            json!([{"primary": true, "department": a("department"), "title": a("title"),
                    "costCenter": a("costCenter"), "location": a("location")}]),
        );
        m
    }

    async fn user(&self, key: &str) -> AResult<Option<RemoteAccount>> {
        match self
            .send(Req::get(format!("{PREFIX}/users/{}", path_segment(key))))
            .await
        {
            Ok(r) => Ok(Some(self.account(&self.json(&r, "a Directory user")?))),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn set_suspended(&self, id: &str, suspended: bool) -> AResult<()> {
        let req = Req::patch(format!("{PREFIX}/users/{}", path_segment(id)))
            .json(json!({"suspended": suspended}));
        self.send(req).await.map(|_| ())
    }

    /// The group key a target names: its configured id, else its name (a group e-mail);
    /// a name that is not an e-mail is looked up among the customer's groups once.
    async fn group_key(&self, t: &EntitlementTarget) -> AResult<String> {
        if !t.external_id.is_empty() && t.external_id != t.name {
            return Ok(t.external_id.clone());
        }
        if t.name.contains('@') {
            return Ok(t.name.clone());
        }
        if let Some(id) = self.groups.get(&t.name) {
            return Ok(id);
        }
        let all = collect_all(|c| self.groups_page(c), 3).await?;
        let found = all
            .iter()
            .find(|g| g.external_id == t.name || g.name == t.name);
        match found {
            Some(g) => {
                self.groups.insert(&t.name, &g.external_id);
                Ok(g.external_id.clone())
            }
            None => Err(AdapterError::new(
                ErrorClass::NotFound,
                &self.about.system,
                format!(
                    "no Google group named {:?}; name groups by their e-mail",
                    t.name
                ),
            )),
        }
    }

    async fn groups_page(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let mut q = vec![
            ("customer", self.customer.clone()),
            ("maxResults", self.page(MEMBERS_PAGE_MAX)),
        ];
        q.extend(cursor.map(|c| ("pageToken", c)));
        let v = self
            .get_page(&format!("{PREFIX}/groups"), &q, "a page of groups")
            .await?;
        let items = v["groups"].as_array().cloned().unwrap_or_default();
        Ok(Page {
            items: items
                .iter()
                .map(|g| RemoteEntitlement {
                    kind: EntitlementKind::Group,
                    name: text(g, "email").unwrap_or_default(),
                    external_id: text(g, "id").unwrap_or_default(),
                })
                .collect(),
            next: text(&v, "nextPageToken"),
        })
    }

    async fn get_page(&self, path: &str, q: &[(&str, String)], what: &str) -> AResult<Value> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let resp = self.send(Req::get(format!("{path}?{query}"))).await?;
        self.json(&resp, what)
    }
}

/// Suspension is Google's deactivation; users are not deleted by accessdesk.
const CAPABILITIES: Capabilities = Capabilities {
    suspend: true,
    delete: false,
    list_entitlements: true,
    stores_hris_id: true,
};

#[async_trait]
impl Reader for GoogleWorkspace {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        use super::auth::Auth;
        self.auth.invalidate().await;
        let token = self.auth.token().await?;
        let me = self.user(&self.admin).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::Permanent,
                &self.about.system,
                format!("admin {} was not found", self.admin),
            )
        })?;
        let mut details = BTreeMap::new();
        details.insert("customer".into(), self.customer.clone());
        details.insert("api_version".into(), API_VERSION.into());
        details.insert("credential".into(), self.auth.source());
        Ok(Identity {
            // The account the credentials act as: never deactivated as an orphan.
            principal: me.login,
            scopes: token.scopes,
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
        let groups = collect_all(
            |c| async move {
                let mut q = vec![("userKey", account_id.to_string())];
                q.extend(c.map(|c| ("pageToken", c)));
                let v = self
                    .get_page(&format!("{PREFIX}/groups"), &q, "a user's groups")
                    .await?;
                let items = v["groups"].as_array().cloned().unwrap_or_default();
                Ok(Page {
                    items,
                    next: text(&v, "nextPageToken"),
                })
            },
            3,
        )
        .await?;
        Ok(groups
            .iter()
            .map(|g| RemoteMembership {
                kind: EntitlementKind::Group,
                name: text(g, "email").unwrap_or_default(),
                external_id: text(g, "id").unwrap_or_default(),
            })
            .collect())
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let mut q = vec![
            ("customer", self.customer.clone()),
            ("maxResults", self.page(USERS_PAGE_MAX)),
            ("orderBy", "email".to_string()),
        ];
        q.extend(cursor.map(|c| ("pageToken", c)));
        let v = self
            .get_page(&format!("{PREFIX}/users"), &q, "a page of users")
            .await?;
        let users = v["users"].as_array().cloned().unwrap_or_default();
        Ok(Page {
            items: users.iter().map(|u| self.account(u)).collect(),
            next: text(&v, "nextPageToken"),
        })
    }

    /// Members as the group lists them: id, e-mail and status (ACTIVE or SUSPENDED); the
    /// rest of each account comes from `list_accounts`.
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let key = self.group_key(target).await?;
        let mut q = vec![("maxResults", self.page(MEMBERS_PAGE_MAX))];
        q.extend(cursor.map(|c| ("pageToken", c)));
        let path = format!("{PREFIX}/groups/{}/members", path_segment(&key));
        let v = self.get_page(&path, &q, "a page of group members").await?;
        let members = v["members"].as_array().cloned().unwrap_or_default();
        Ok(Page {
            items: members
                .iter()
                .filter(|m| m["type"] == "USER" || m["type"].is_null())
                .map(|m| RemoteAccount {
                    external_id: text(m, "id").unwrap_or_default(),
                    login: text(m, "email").unwrap_or_default(),
                    email: text(m, "email"),
                    active: m["status"] != "SUSPENDED",
                    hris_id: None,
                    attributes: BTreeMap::new(),
                })
                .collect(),
            next: text(&v, "nextPageToken"),
        })
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        self.groups_page(cursor).await
    }
}

#[async_trait]
impl Provisioner for GoogleWorkspace {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let mut body = Self::fields(spec);
        body.insert("primaryEmail".into(), json!(spec.login));
        body.insert("password".into(), json!(super::auth::jwt::random_jti()));
        body.insert("changePasswordAtNextLogin".into(), json!(true));
        body.insert("orgUnitPath".into(), json!(self.org_unit));
        body.insert(
            "externalIds".into(),
            json!([{"type": "organization", "value": spec.hris_id}]),
        );
        let resp = self
            .send(Req::post(format!("{PREFIX}/users")).json(Value::Object(body)))
            .await?;
        Ok(self.account(&self.json(&resp, "the created user")?))
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let req = Req::patch(format!("{PREFIX}/users/{}", path_segment(external_id)))
            .json(Value::Object(Self::fields(spec)));
        let resp = self.send(req).await?;
        Ok(self.account(&self.json(&resp, "the updated user")?))
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        already_done(
            Edit::Deactivate,
            self.set_suspended(external_id, true).await,
        )
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_suspended(external_id, false).await
    }

    async fn suspend_account(&self, external_id: &str) -> AResult<()> {
        self.set_suspended(external_id, true).await
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let key = self.group_key(target).await?;
        let req = Req::post(format!("{PREFIX}/groups/{}/members", path_segment(&key)))
            .json(json!({"id": account_id, "role": "MEMBER"}));
        already_done(Edit::Grant, self.send(req).await.map(|_| ()))
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let key = self.group_key(target).await?;
        let path = format!(
            "{PREFIX}/groups/{}/members/{}",
            path_segment(&key),
            path_segment(account_id)
        );
        already_done(Edit::Revoke, self.send(Req::delete(path)).await.map(|_| ()))
    }
}
