//! IAM Identity Center's identity store: users and group memberships over the AWS JSON 1.1
//! protocol (`X-Amz-Target: AWSIdentityStore.<Operation>`, API [`API_VERSION`]), signed
//! with SigV4 for the service `identitystore`.
//!
//! ## Configuration
//!
//! ```toml
//! [systems.sso]
//! kind = "aws_identity_store"
//! credential = "keyring:aws-sso"        # ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]
//! # base_url = "https://identitystore.eu-west-1.amazonaws.com"   (the default for region)
//! [systems.sso.settings]
//! region = "eu-west-1"
//! identity_store_id = "d-1234567890"
//! deactivate = "remove_memberships"     # or "delete_user"
//! page_size = 100                       # MaxResults per listing page (1-100)
//! ```
//!
//! ## What the operations mean here
//!
//! - **Accounts** are identity-store users; the external id is the `UserId`, the login is
//!   the `UserName`. The API offers no field accessdesk can write an HRIS id to
//!   (`CreateUser` takes no `ExternalIds`; they are set only by SCIM provisioning), so an
//!   existing user is this person's only when accessdesk's own record says it created it
//!   (see engine/identity.rs), or it has an `ExternalIds` entry whose issuer is
//!   `accessdesk` naming them. A user with the same UserName and neither is an identity
//!   conflict, never adopted.
//! - **The identity store has no enabled/disabled state in its API.** (The console's
//!   "disable user" and SCIM's `active` are not exposed to `identitystore:*`.) So:
//!   - `deactivate = "remove_memberships"` (default): remove every group membership. The
//!     user keeps a directory entry and can reach the access portal but holds no
//!     group-based permission sets. Assignments made to the user directly (sso-admin) are
//!     outside this API and are not touched. `reactivate` does nothing by itself: the
//!     memberships come back through policy like any grant. `active` is always reported
//!     true, because the store keeps no such state.
//!   - `deactivate = "delete_user"`: remove the memberships, then delete the user. This
//!     cannot be undone; `reactivate` then fails with a message saying so.
//!
//!   For a real on/off switch, provision Identity Center through its SCIM endpoint with
//!   the SCIM adapter, which sets `active`.
//! - **update** sends `UpdateUser` replace operations for displayName, name.givenName,
//!   name.familyName, title and emails (the work address, in the shape `CreateUser` takes;
//!   checked against the simulator only: moto has no identity-store `UpdateUser`). The
//!   engine never renames a user here (see `SystemKind::rename_refusal`): the login stays
//!   as assigned when the e-mail changes.
//! - **Memberships** are groups (kind `group`); the entitlement's `external_id` is used as
//!   the GroupId when it differs from the name, otherwise the name is resolved with
//!   `GetGroupId` (DisplayName) and cached. Adding checks `GetGroupMembershipId` before
//!   every attempt (the HTTP layer does not resend `CreateGroupMembership` on its own), so
//!   a retry after a lost answer never creates a second membership, even on a store that
//!   does not refuse duplicates (moto); removing one that is not there counts as done.
//! - Listings (`ListUsers`, `ListGroupMemberships`, `ListGroups`) page with
//!   `NextToken`/`MaxResults` (the cursor is the NextToken), `MaxResults` 100 by default:
//!   the model's maximum (`MaxResults`: 1-100).
//! - Read back (`RemoteAccount::attributes`): what `CreateUser`/`UpdateUser` write, as the
//!   store holds it: displayName, givenName, familyName, title and email (the primary
//!   address); an attribute the store does not return reads as "". The create answer
//!   carries only the new UserId, so its attributes are the values the store accepted.
//!   Department, cost centre, location and manager are not written (the adapter sends
//!   no enterprise attributes) and are left out.
//! - `list_entitlements` is `ListGroups`: name the DisplayName, id the GroupId.

use super::aws::{self, AwsProfile, CommonSettings, SigV4Auth};
use super::error::{AdapterError, ErrorClass};
use super::error::{Edit, already_done, ok_if_not_found};
use super::http::{HttpClient, HttpResponse, Req, RetryPolicy};
use super::kit::context::AdapterContext;
use super::kit::settings;
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, Page,
    Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership, collect_all,
};
use crate::model::EntitlementKind;
use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderName};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

mod provisioner;
mod reader;

/// The identity store API version this adapter speaks.
pub const API_VERSION: &str = "2020-06-15";
const TARGET_PREFIX: &str = "AWSIdentityStore";
const CONTENT_TYPE_JSON11: &str = "application/x-amz-json-1.1";
/// The `ExternalIds` issuer read as the HRIS id.
pub const HRIS_ISSUER: &str = "accessdesk";

/// What deactivation does (see the module docs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeactivateMode {
    #[default]
    RemoveMemberships,
    DeleteUser,
}

/// `[systems.NAME.settings]` of an `aws_identity_store` system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityStoreSettings {
    /// The region the identity store lives in (default us-east-1).
    pub region: Option<String>,
    /// The store's id, as IAM Identity Center > Settings shows it (d-xxxxxxxxxx); required.
    pub identity_store_id: Option<String>,
    /// `"remove_memberships"` (default) or `"delete_user"`.
    #[serde(default)]
    pub deactivate: DeactivateMode,
    /// MaxResults per listing page, 1 to 100 (default 100).
    #[serde(default, deserialize_with = "settings::optional_in::<_, 1, 100>")]
    pub page_size: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreUser {
    pub user_id: String,
    pub user_name: String,
    #[serde(default)]
    pub emails: Option<Vec<StoreEmail>>,
    #[serde(default)]
    pub external_ids: Option<Vec<StoreExternalId>>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub name: Option<StoreName>,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreName {
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub family_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreEmail {
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub primary: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreExternalId {
    pub issuer: String,
    pub id: String,
}

impl StoreUser {
    fn to_remote(&self) -> RemoteAccount {
        let emails = self.emails.as_deref().unwrap_or_default();
        let email = emails
            .iter()
            .find(|e| e.primary == Some(true))
            .or_else(|| emails.first())
            .and_then(|e| e.value.clone())
            .filter(|e| !e.is_empty());
        let name = self.name.clone().unwrap_or_default();
        let attributes = synced(
            email.as_deref().unwrap_or(""),
            self.display_name.as_deref().unwrap_or(""),
            name.given_name.as_deref().unwrap_or(""),
            name.family_name.as_deref().unwrap_or(""),
            self.title.as_deref().unwrap_or(""),
        );
        RemoteAccount {
            external_id: self.user_id.clone(),
            login: self.user_name.clone(),
            email,
            active: true,
            hris_id: self
                .external_ids
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|x| x.issuer == HRIS_ISSUER)
                .map(|x| x.id.clone()),
            attributes,
        }
    }
}

/// `RemoteAccount::attributes` for the fields this adapter writes.
fn synced(
    email: &str,
    display: &str,
    given: &str,
    family: &str,
    title: &str,
) -> BTreeMap<String, String> {
    [
        ("email", email),
        ("displayName", display),
        ("givenName", given),
        ("familyName", family),
        ("title", title),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGroupsOut {
    groups: Vec<DescribeGroupOut>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListUsersOut {
    users: Vec<StoreUser>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserIdOut {
    user_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GroupIdOut {
    group_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MembershipIdOut {
    membership_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeGroupOut {
    group_id: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Membership {
    pub membership_id: String,
    pub group_id: String,
    #[serde(default)]
    pub member_id: Option<MemberId>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemberId {
    #[serde(default)]
    pub user_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListMembershipsOut {
    group_memberships: Vec<Membership>,
    #[serde(default)]
    next_token: Option<String>,
}

/// Decode a 2xx JSON body as `T`; anything else is a classified error with an excerpt.
pub fn decode<T: DeserializeOwned>(system: &str, op: &str, status: u16, body: &[u8]) -> AResult<T> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|_| {
        AdapterError::bad_response(
            system,
            status,
            &format!("an identity store {op} JSON response"),
            body,
        )
    })
}

/// Identity store ids: `d-` and ten hex digits, or a UUID.
pub fn valid_store_id(s: &str) -> bool {
    let hex = |t: &str| {
        t.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(rest) = s.strip_prefix("d-") {
        return rest.len() == 10 && hex(rest);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p))
}

/// The `UpdateUser` operations for a spec: replace what the spec has, leave the rest.
pub fn update_operations(spec: &AccountSpec, current_user_name: &str) -> Vec<Value> {
    let mut ops = Vec::new();
    let mut put = |path: &str, v: &str| {
        if !v.is_empty() {
            ops.push(json!({"AttributePath": path, "AttributeValue": v}));
        }
    };
    if spec.login != current_user_name {
        put("userName", &spec.login);
    }
    put("displayName", &spec.display_name);
    put("name.givenName", &spec.given_name);
    put("name.familyName", &spec.family_name);
    if let Some(t) = spec.attributes.get("title") {
        put("title", t);
    }
    if !spec.email.is_empty() {
        // The same shape CreateUser takes; it replaces the user's e-mail list.
        ops.push(json!({"AttributePath": "emails",
            "AttributeValue": [{"Value": spec.email, "Type": "work", "Primary": true}]}));
    }
    ops
}

/// The `CreateUser` request body for a spec.
pub fn create_user_body(store_id: &str, spec: &AccountSpec) -> Value {
    let mut body = json!({
        "IdentityStoreId": store_id,
        "UserName": spec.login,
        "DisplayName": spec.display_name,
        "Name": {"GivenName": spec.given_name, "FamilyName": spec.family_name},
    });
    if !spec.email.is_empty() {
        body["Emails"] = json!([{"Value": spec.email, "Type": "work", "Primary": true}]);
    }
    if let Some(t) = spec.attributes.get("title").filter(|t| !t.is_empty()) {
        body["Title"] = json!(t);
    }
    body
}

/// The identity store deletes users (its leaver policy may be `delete`), lists groups, and
/// holds no HR id accessdesk can write: proof is our record of creating the account.
const CAPABILITIES: Capabilities = Capabilities {
    suspend: false,
    delete: true,
    list_entitlements: true,
    stores_hris_id: false,
};

pub struct AwsIdentityStore {
    about: About,
    http: HttpClient,
    /// The same endpoint with a single attempt per send, for `CreateGroupMembership`: after
    /// an ambiguous failure (timeout, reset) the membership may exist, so the adapter looks
    /// before it sends again instead of letting the HTTP layer resend blindly.
    once: HttpClient,
    sts: HttpClient,
    settings: CommonSettings,
    store_id: String,
    mode: DeactivateMode,
    page_size: u32,
    /// Group display name → GroupId, and GroupId → display name.
    by_name: Mutex<HashMap<String, String>>,
    by_id: Mutex<HashMap<String, String>>,
}

pub fn from_config(ctx: AdapterContext<'_>) -> crate::Result<Arc<dyn Adapter>> {
    Ok(Arc::new(AwsIdentityStore::from_context(ctx)?))
}

impl AwsIdentityStore {
    pub fn from_context(ctx: AdapterContext<'_>) -> crate::Result<Self> {
        let name = ctx.entry.system.name.clone();
        let usage =
            |m: String, hint: &str| crate::Error::usage(format!("system {name}: {m}"), hint);
        ctx.require_api_version(API_VERSION, "identitystore")?;
        let set: IdentityStoreSettings = settings::parse(ctx.entry)?;
        let (settings, creds, source) = aws::common_settings(&ctx, set.region)?;
        let store_id = set.identity_store_id.ok_or_else(|| {
            usage(
                "settings.identity_store_id is missing".into(),
                "set it to the id shown in IAM Identity Center > Settings (d-xxxxxxxxxx)",
            )
        })?;
        if !valid_store_id(&store_id) {
            return Err(usage(
                format!("settings.identity_store_id {store_id:?} is not an identity store id"),
                "it looks like d-1234567890 (d- and ten hex digits) or a UUID",
            ));
        }
        let mode = set.deactivate;
        let page_size = set.page_size.unwrap_or(100);
        let base = settings
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://identitystore.{}.amazonaws.com", settings.region));
        let sts_base = settings
            .base_url
            .clone()
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", settings.region));
        let profile = |what| {
            Arc::new(AwsProfile {
                source: source.clone(),
                what,
            })
        };
        let to_usage = |e: AdapterError| usage(e.message, "check base_url in systems.toml");
        let store_client = || {
            HttpClient::new(
                &name,
                &base,
                ctx.timeouts,
                ctx.limiter.clone(),
                Arc::new(SigV4Auth::new(
                    "identitystore",
                    &settings.region,
                    &creds,
                    &source,
                )),
                profile("an identity store JSON response"),
            )
            .map_err(to_usage)
        };
        let mut http = store_client()?;
        http.retry = aws::default_retry();
        let mut once = store_client()?;
        once.retry = RetryPolicy {
            max_attempts: 1,
            ..http.retry
        };
        let mut sts = HttpClient::new(
            &name,
            &sts_base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(SigV4Auth::new("sts", &settings.region, &creds, &source)),
            profile("an STS XML response"),
        )
        .map_err(to_usage)?;
        sts.retry = aws::default_retry();
        Ok(AwsIdentityStore {
            about: About::of(&http, API_VERSION, CAPABILITIES),
            http,
            once,
            sts,
            settings,
            store_id,
            mode,
            page_size,
            by_name: Mutex::new(HashMap::new()),
            by_id: Mutex::new(HashMap::new()),
        })
    }

    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
        self.sts.retry = retry;
        self.once.retry = RetryPolicy {
            max_attempts: 1,
            ..retry
        };
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    fn system_name(&self) -> &str {
        self.http.system()
    }

    /// One signed JSON 1.1 call; `IdentityStoreId` is added to the body.
    pub async fn call(&self, op: &str, body: Value) -> AResult<HttpResponse> {
        self.call_with(&self.http, op, body).await
    }

    async fn call_with(
        &self,
        client: &HttpClient,
        op: &str,
        mut body: Value,
    ) -> AResult<HttpResponse> {
        if let Value::Object(m) = &mut body {
            m.entry("IdentityStoreId")
                .or_insert_with(|| Value::String(self.store_id.clone()));
        }
        client
            .send(
                Req::post("/")
                    .header(
                        HeaderName::from_static("x-amz-target"),
                        format!("{TARGET_PREFIX}.{op}"),
                    )
                    .header(CONTENT_TYPE, CONTENT_TYPE_JSON11)
                    .json(body),
            )
            .await
            .map_err(|e| self.store_not_found(e))
    }

    /// "Not found" about the identity store itself is a configuration error, not a
    /// missing user or group: say which setting is wrong.
    fn store_not_found(&self, mut e: AdapterError) -> AdapterError {
        let about_store = e.vendor_code.as_deref() == Some("ResourceNotFoundException")
            && serde_json::from_str::<Value>(&e.excerpt)
                .ok()
                .and_then(|v| {
                    v.get("ResourceType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .is_some_and(|t| t == "IDENTITY_STORE");
        if about_store {
            e.class = ErrorClass::Permanent;
            e.message = format!(
                "settings.identity_store_id {:?} names no identity store this credential can reach ({}); check the id in the IAM Identity Center console (Settings > Identity source)",
                self.store_id, e.message
            );
        }
        e
    }

    async fn call_as<T: DeserializeOwned>(&self, op: &str, body: Value) -> AResult<T> {
        let r = self.call(op, body).await?;
        decode(self.system_name(), op, r.status, &r.body)
    }

    /// `DescribeUser`; ResourceNotFound is `Ok(None)`.
    pub async fn describe_user(&self, user_id: &str) -> AResult<Option<StoreUser>> {
        match self
            .call_as::<StoreUser>("DescribeUser", json!({"UserId": user_id}))
            .await
        {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn require_user(&self, user_id: &str) -> AResult<StoreUser> {
        self.describe_user(user_id).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                self.system_name(),
                format!("identity store user {user_id} does not exist"),
            )
        })
    }

    /// The GroupId for an entitlement (see the module docs).
    pub async fn group_id(&self, target: &EntitlementTarget) -> AResult<String> {
        if target.kind != EntitlementKind::Group {
            return Err(AdapterError::unsupported(
                self.system_name(),
                &format!(
                    "entitlement kind {} (identity store memberships are groups)",
                    target.kind.as_str()
                ),
            ));
        }
        if !target.external_id.is_empty() && target.external_id != target.name {
            return Ok(target.external_id.clone());
        }
        if let Some(id) = lock(&self.by_name).get(&target.name) {
            return Ok(id.clone());
        }
        let out: GroupIdOut = self
            .call_as(
                "GetGroupId",
                json!({"AlternateIdentifier": {"UniqueAttribute": {
                    "AttributePath": "DisplayName", "AttributeValue": target.name}}}),
            )
            .await
            .map_err(|mut e| {
                if e.class == ErrorClass::NotFound {
                    e.class = ErrorClass::Permanent;
                    e.message = format!(
                        "no group named {:?} in identity store {}: {}",
                        target.name, self.store_id, e.message
                    );
                }
                e
            })?;
        lock(&self.by_name).insert(target.name.clone(), out.group_id.clone());
        lock(&self.by_id).insert(out.group_id.clone(), target.name.clone());
        Ok(out.group_id)
    }

    async fn group_name_of(&self, group_id: &str) -> AResult<String> {
        if let Some(n) = lock(&self.by_id).get(group_id) {
            return Ok(n.clone());
        }
        let g: DescribeGroupOut = self
            .call_as("DescribeGroup", json!({"GroupId": group_id}))
            .await?;
        let name = g.display_name.unwrap_or_else(|| g.group_id.clone());
        lock(&self.by_id).insert(group_id.to_string(), name.clone());
        Ok(name)
    }

    /// The membership of `user_id` in `group_id`, if any.
    async fn membership_id(&self, group_id: &str, user_id: &str) -> AResult<Option<String>> {
        match self
            .call_as::<MembershipIdOut>(
                "GetGroupMembershipId",
                json!({"GroupId": group_id, "MemberId": {"UserId": user_id}}),
            )
            .await
        {
            Ok(m) => Ok(Some(m.membership_id)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every membership of a user.
    pub async fn memberships_of(&self, user_id: &str) -> AResult<Vec<Membership>> {
        collect_all(
            |cursor: Option<String>| async move {
                let mut body =
                    json!({"MemberId": {"UserId": user_id}, "MaxResults": self.page_size});
                if let Some(t) = cursor {
                    body["NextToken"] = json!(t);
                }
                let out: ListMembershipsOut =
                    self.call_as("ListGroupMembershipsForMember", body).await?;
                Ok(Page {
                    items: out.group_memberships,
                    next: out.next_token.filter(|t| !t.is_empty()),
                })
            },
            0,
        )
        .await
    }

    async fn remove_all_memberships(&self, user_id: &str) -> AResult<()> {
        for m in self.memberships_of(user_id).await? {
            ok_if_not_found(
                self.call(
                    "DeleteGroupMembership",
                    json!({"MembershipId": m.membership_id}),
                )
                .await
                .map(|_| ()),
            )?;
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests;
